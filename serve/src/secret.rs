//! Secret files (signing keys, the bank's RSA keys, its admin token):
//! created once with mode 0600, atomically (a synced temporary file renamed
//! into place, then the directory synced), so that a crash while creating
//! one leaves either no file or the whole file, never a truncated key that
//! would stop the next start, and a second creator never replaces the
//! first one's key.
//!
//! A secret file is created only in a new data directory, one whose
//! database does not exist yet ([`DataDir`]): beside existing data a
//! missing key is an error naming the file, and nothing is written, since a
//! new key would not match the data (tokens signed by the old one, a log
//! signed by the old one).

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

/// The name of every server's database inside its data directory.
pub const DATABASE: &str = "db";

/// Why a secret file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The data directory is not new, so the file must not be created.
    #[error(
        "{path} is missing but the database {database} exists: restore the file \
         from a backup (a new key would not match the data), or start with a new data directory"
    )]
    Missing { path: PathBuf, database: String },
    #[error("cannot read or create the key file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A server's data directory, with the fact that decides whether secret
/// files may be created in it: whether its database [`DATABASE`] exists.
/// Decided before the server opens or creates anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    path: PathBuf,
    new: bool,
    /// The database that decides, as named in errors.
    database: String,
}

impl DataDir {
    /// Looks at `path`. A database that cannot be looked at (no permission)
    /// counts as existing: when in doubt, never create a key.
    pub fn inspect(path: &Path) -> DataDir {
        let new = matches!(
            fs::symlink_metadata(path.join(DATABASE)),
            Err(e) if e.kind() == io::ErrorKind::NotFound
        );
        DataDir {
            path: path.to_owned(),
            new,
            database: path.join(DATABASE).display().to_string(),
        }
    }

    /// The data directory of a server whose database lives elsewhere (a
    /// PostgreSQL URL, shown without its password as `database`): it is new
    /// exactly when that database holds no server's data yet
    /// ([`crate::database_owner`]).
    pub fn with_database(path: &Path, database: &str, new: bool) -> DataDir {
        DataDir {
            path: path.to_owned(),
            new,
            database: database.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the database did not exist when the directory was inspected.
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// The database's path.
    pub fn database(&self) -> PathBuf {
        self.path.join(DATABASE)
    }

    /// Reads the secret file `name`; in a new directory a missing one is
    /// created with `make()`'s bytes (and the directory with it), and if
    /// another process creates it first its bytes are returned.
    pub fn secret(
        &self,
        name: &str,
        make: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, SecretError> {
        self.secret_or(name, || Ok::<_, SecretError>(make()))
    }

    /// [`DataDir::secret`] with a `make` that may fail (a key generation).
    pub fn secret_or<E: From<SecretError>>(
        &self,
        name: &str,
        make: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let path = self.path.join(name);
        let io = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        match fs::read(&path) {
            Ok(bytes) => return Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e).into()),
        }
        if !self.new {
            return Err(SecretError::Missing {
                path,
                database: self.database.clone(),
            }
            .into());
        }
        fs::create_dir_all(&self.path).map_err(io)?;
        let bytes = make()?;
        match create(&path, &bytes) {
            Ok(()) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(fs::read(&path).map_err(io)?),
            Err(e) => Err(io(e).into()),
        }
    }
}

impl From<SecretError> for io::Error {
    fn from(e: SecretError) -> io::Error {
        match e {
            SecretError::Io { source, .. } => source,
            e @ SecretError::Missing { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        }
    }
}

/// [`DataDir::secret`] for the file `path` in the data directory holding
/// it: read, or created if that directory has no database yet.
pub fn read_or_create(path: &Path, make: impl FnOnce() -> Vec<u8>) -> io::Result<Vec<u8>> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a key file needs a name"))?;
    DataDir::inspect(dir)
        .secret(&name.to_string_lossy(), make)
        .map_err(io::Error::from)
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

    // In a new directory a missing secret is created; once the database
    // exists a missing one is an error naming the file, and nothing is
    // written; a present one is read either way.
    #[test]
    fn secrets_are_created_only_in_a_new_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let new = DataDir::inspect(&data);
        assert!(new.is_new());
        assert_eq!(new.secret("a.key", || b"a".to_vec()).unwrap(), b"a");
        fs::create_dir(data.join(DATABASE)).unwrap();
        // Decided at inspection: the same value still creates.
        assert_eq!(new.secret("b.key", || b"b".to_vec()).unwrap(), b"b");
        let existing = DataDir::inspect(&data);
        assert!(!existing.is_new());
        assert_eq!(existing.secret("a.key", || b"x".to_vec()).unwrap(), b"a");
        fs::remove_file(data.join("a.key")).unwrap();
        let e = existing.secret("a.key", || b"x".to_vec()).unwrap_err();
        assert!(matches!(e, SecretError::Missing { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&data.join("a.key").display().to_string()),
            "{e}"
        );
        assert!(!data.join("a.key").exists());
        let e = read_or_create(&data.join("a.key"), || b"x".to_vec()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("a.key"), "{e}");
        assert!(!data.join("a.key").exists());
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
