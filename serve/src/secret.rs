//! Secret files (signing keys, the bank's RSA keys, its admin token):
//! created once with mode 0600, atomically (a synced temporary file renamed
//! into place, then the directory synced), so that a crash while creating
//! one leaves either no file or the whole file, never a truncated key that
//! would stop the next start, and a second creator never replaces the
//! first one's key.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Creates `path` holding `bytes`, readable by its owner only. Fails with
/// [`io::ErrorKind::AlreadyExists`] if it exists, and leaves it alone.
pub fn create(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary(path);
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // A hard link fails if the target exists, where a rename would
        // replace it: the first creator wins.
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    written?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads `path`, or creates it with `make()`'s bytes if it does not exist
/// (creating its directory too). If another process creates it first, its
/// bytes are returned.
pub fn read_or_create(path: &Path, make: impl FnOnce() -> Vec<u8>) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let bytes = make();
    match create(path, &bytes) {
        Ok(()) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => fs::read(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_owner_only_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.key");
        assert_eq!(
            read_or_create(&path, || b"first".to_vec()).unwrap(),
            b"first"
        );
        assert_eq!(
            read_or_create(&path, || b"second".to_vec()).unwrap(),
            b"first"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = create(&path, b"third").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.key")]);
    }

    #[test]
    fn a_leftover_temporary_file_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        fs::write(temporary(&path), b"partial").unwrap();
        assert_eq!(
            read_or_create(&path, || b"whole".to_vec()).unwrap(),
            b"whole"
        );
    }
}
