//! Backup and restore of a server's data directory (keys, admin token,
//! the embedded database), shared by every server binary as
//! `backup --data DIR --out FILE` and `restore --from FILE --data DIR`.
//!
//! A backup is made of a stopped server: it takes the database's lock
//! first (so a running server is refused by name, and none can start while
//! the copy is made), then writes one tar archive whose first member,
//! `acd-backup.json`, names the kind of server and the SHA-256 and size of
//! every file after it. The archive holds the private keys: it is written
//! with mode 0600 and never over an existing file.
//!
//! A restore checks everything before anything is where a server would
//! look: the manifest's kind, every member's path (relative, no `..`), its
//! size and hash, and that the members are exactly the manifest's files.
//! It unpacks into a fresh directory beside the target and renames it into
//! place, so a failed restore leaves nothing a server would start from.
//!
//! On PostgreSQL the data directory holds only the keys; the database is
//! backed up with PostgreSQL's own tools (`pg_dump`), see the README.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::storage::DatabaseError;

/// The name of the manifest, the archive's first member.
pub const MANIFEST: &str = "acd-backup.json";
/// The manifest's `format`.
pub const FORMAT: &str = "acd/v1/backup";

#[derive(Debug, Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} does not exist or is not a data directory", .0.display())]
    NoData(PathBuf),
    #[error("{} exists; a backup is never written over a file", .0.display())]
    OutExists(PathBuf),
    #[error(
        "{} is in use: stop the server before backing up its data directory",
        .0.display()
    )]
    InUse(PathBuf),
    #[error(transparent)]
    Database(DatabaseError),
    #[error(
        "{} is not empty; restore into a new directory (the one there is left as it is)",
        .0.display()
    )]
    NotEmpty(PathBuf),
    #[error("{}: not a backup of this server: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Which server's data (`bank`, `log`, `merchant`, `witness`,
    /// `monitor`): a restore refuses another kind.
    pub kind: String,
    /// The version of the program that made it.
    pub version: String,
    /// When it was made, ms since the Unix epoch.
    pub created_ms: u64,
    pub files: Vec<FileEntry>,
}

/// One file of the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
}

/// `backup` arguments, the same for every server.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The data directory of the stopped server.
    #[arg(long)]
    pub data: PathBuf,
    /// The archive to write (tar, mode 0600; it holds the private keys).
    #[arg(long)]
    pub out: PathBuf,
}

/// `restore` arguments, the same for every server.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The archive `backup` wrote.
    #[arg(long)]
    pub from: PathBuf,
    /// The data directory to create (absent or empty).
    #[arg(long)]
    pub data: PathBuf,
}

/// Every regular file under `dir`, relative, sorted.
fn list(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        for entry in std::fs::read_dir(&here).map_err(io(&here))? {
            let entry = entry.map_err(io(&here))?;
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            let name = rel.join(entry.file_name());
            if kind.is_dir() {
                stack.push(name);
            } else if kind.is_file() {
                out.push(name);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes the archive of the stopped `kind` server's data directory
/// `args.data` to `args.out`; returns its manifest.
pub fn backup(args: &BackupArgs, kind: &str) -> Result<Manifest, BackupError> {
    let data = &args.data;
    if !data.is_dir() {
        return Err(BackupError::NoData(data.clone()));
    }
    if args.out.exists() {
        return Err(BackupError::OutExists(args.out.clone()));
    }
    // Held until the archive is written: no server starts on it meanwhile.
    let db_path = data.join(crate::secret::DATABASE);
    let _lock = if db_path.exists() {
        match crate::storage::open(&sled::Config::new().path(&db_path)) {
            Ok(db) => Some(db),
            Err(DatabaseError::InUse { .. }) => return Err(BackupError::InUse(data.clone())),
            Err(e) => return Err(BackupError::Database(e)),
        }
    } else {
        None
    };
    let files = list(data)?;
    let mut manifest = Manifest {
        format: FORMAT.to_owned(),
        kind: kind.to_owned(),
        version: crate::ops::VERSION.to_owned(),
        created_ms: now_ms(),
        files: Vec::with_capacity(files.len()),
    };
    for rel in &files {
        let (size, sha256) = hash_file(&data.join(rel))?;
        manifest.files.push(FileEntry {
            path: slash_path(rel),
            size,
            sha256,
        });
    }
    let out_dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // tempfile creates it with mode 0600.
    let tmp = tempfile::Builder::new()
        .prefix(".acd-backup.")
        .tempfile_in(&out_dir)
        .map_err(io(&out_dir))?;
    let mut builder = tar::Builder::new(tmp);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Invalid {
        path: args.out.clone(),
        reason: e.to_string(),
    })?;
    append(&mut builder, MANIFEST, &json, &args.out)?;
    for (rel, entry) in files.iter().zip(&manifest.files) {
        // Streamed (a log's database is gigabytes) through a hash: the
        // file must not have changed since the manifest hashed it.
        let path = data.join(rel);
        let file = File::open(&path).map_err(io(&path))?;
        let mut header = header_of(entry.size);
        let mut reader = Hashing::new(file.take(entry.size));
        builder
            .append_data(&mut header, &entry.path, &mut reader)
            .map_err(io(&args.out))?;
        if reader.finish() != (entry.size, entry.sha256.clone()) {
            return Err(BackupError::Io {
                path,
                source: std::io::Error::other("changed while the backup was made"),
            });
        }
    }
    let mut tmp = builder.into_inner().map_err(io(&args.out))?;
    tmp.flush().map_err(io(&args.out))?;
    tmp.as_file().sync_all().map_err(io(&args.out))?;
    tmp.persist_noclobber(&args.out).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::OutExists(args.out.clone())
        } else {
            io(&args.out)(e.error)
        }
    })?;
    File::open(&out_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&out_dir))?;
    Ok(manifest)
}

/// The tar header of a private regular file of `size` bytes.
fn header_of(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    out: &Path,
) -> Result<(), BackupError> {
    let mut header = header_of(bytes.len() as u64);
    builder
        .append_data(&mut header, name, bytes)
        .map_err(io(out))
}

/// A reader that counts and hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The bytes read and their SHA-256 (hex).
    fn finish(self) -> (u64, String) {
        (self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// A member path that stays inside the directory it is unpacked in.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Restores the archive `args.from` of a server of one of `kinds` into
/// `args.data` (absent or empty); returns its manifest.
pub fn restore(args: &RestoreArgs, kinds: &[&str]) -> Result<Manifest, BackupError> {
    let data = &args.data;
    if data.exists() {
        let empty = std::fs::read_dir(data).map_err(io(data))?.next().is_none();
        if !empty {
            return Err(BackupError::NotEmpty(data.clone()));
        }
    }
    let invalid = |reason: String| BackupError::Invalid {
        path: args.from.clone(),
        reason,
    };
    let file = File::open(&args.from).map_err(io(&args.from))?;
    let mut archive = tar::Archive::new(file);
    let mut entries = archive.entries().map_err(io(&args.from))?;
    let mut first = entries
        .next()
        .ok_or_else(|| invalid("empty archive".into()))?
        .map_err(io(&args.from))?;
    if first.path().map_err(io(&args.from))?.as_os_str() != MANIFEST {
        return Err(invalid(format!("the first member is not {MANIFEST}")));
    }
    let mut json = Vec::new();
    first
        .by_ref()
        .take(1 << 24)
        .read_to_end(&mut json)
        .map_err(io(&args.from))?;
    let manifest: Manifest =
        serde_json::from_slice(&json).map_err(|e| invalid(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(invalid(format!("format {:?}", manifest.format)));
    }
    if !kinds.contains(&manifest.kind.as_str()) {
        return Err(invalid(format!(
            "it is a backup of a {}, not of a {}",
            manifest.kind,
            kinds.join(" or a ")
        )));
    }

    let parent = match data.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    // Removed if anything below fails.
    let staging = tempfile::Builder::new()
        .prefix(".acd-restore.")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let mut expected = manifest.files.iter();
    for entry in entries {
        let mut entry = entry.map_err(io(&args.from))?;
        let name = entry
            .path()
            .map_err(io(&args.from))?
            .to_string_lossy()
            .into_owned();
        let want = expected
            .next()
            .ok_or_else(|| invalid(format!("{name} is not in the manifest")))?;
        if want.path != name {
            return Err(invalid(format!(
                "{name} where the manifest has {}",
                want.path
            )));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid(format!("{name} is not a regular file")));
        }
        let rel = safe_relative(&name)
            .ok_or_else(|| invalid(format!("{name} leaves the data directory")))?;
        let target = staging.path().join(&rel);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        // Streamed into the staging directory through a hash; a member
        // that does not match is found before anything is renamed into
        // place (the staging directory goes with the error).
        let mut reader = Hashing::new(entry.by_ref().take(want.size.saturating_add(1)));
        write_private(&target, &mut reader)?;
        if reader.finish() != (want.size, want.sha256.clone()) {
            return Err(invalid(format!("{name} does not match its checksum")));
        }
    }
    if let Some(missing) = expected.next() {
        return Err(invalid(format!("{} is missing", missing.path)));
    }
    sync_tree(staging.path())?;
    if data.exists() {
        // Empty, checked above.
        std::fs::remove_dir(data).map_err(io(data))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, data).map_err(io(data))?;
    set_private_dir(data)?;
    File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io(&parent))?;
    Ok(manifest)
}

fn write_private(path: &Path, from: &mut impl Read) -> Result<(), BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    std::io::copy(from, &mut file).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn sync_tree(dir: &Path) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(unix)]
fn set_private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

#[cfg(not(unix))]
fn set_private_dir(_: &Path) -> Result<(), BackupError> {
    Ok(())
}

/// Every binary's `backup` command: [`backup`], then what it wrote.
pub fn backup_command(args: &BackupArgs, kind: &str) -> Result<(), BackupError> {
    let m = backup(args, kind)?;
    let bytes: u64 = m.files.iter().map(|f| f.size).sum();
    println!(
        "backed up the {} at {} to {}: {} files, {bytes} bytes (it holds the private keys: keep it private)",
        m.kind,
        args.data.display(),
        args.out.display(),
        m.files.len()
    );
    Ok(())
}

/// Every binary's `restore` command: [`restore`], then what it did.
pub fn restore_command(args: &RestoreArgs, kinds: &[&str]) -> Result<(), BackupError> {
    let m = restore(args, kinds)?;
    println!(
        "restored the {} backup of {} (made by {}) into {}: {} files, each checked",
        m.kind,
        m.created_ms,
        m.version,
        args.data.display(),
        m.files.len()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A data directory with a key file and a real sled database.
    fn sample(dir: &Path) -> PathBuf {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("bank.key"), b"secret\n").unwrap();
        let db = crate::storage::open(&sled::Config::new().path(data.join("db"))).unwrap();
        let tree = db.open_tree("accounts").unwrap();
        for i in 0u32..2000 {
            tree.insert(i.to_be_bytes(), vec![7u8; 50]).unwrap();
        }
        db.flush().unwrap();
        drop(db);
        data
    }

    /// Every file under `dir` as (path, size, SHA-256), as a manifest
    /// lists them.
    fn files(dir: &Path) -> Vec<FileEntry> {
        list(dir)
            .unwrap()
            .into_iter()
            .map(|rel| {
                let (size, sha256) = hash_file(&dir.join(&rel)).unwrap();
                FileEntry {
                    path: slash_path(&rel),
                    size,
                    sha256,
                }
            })
            .collect()
    }

    fn accounts(data: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = crate::storage::open(&sled::Config::new().path(data.join("db"))).unwrap();
        let tree = db.open_tree("accounts").unwrap();
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    #[test]
    fn a_backup_restores_byte_for_byte() {
        // Every file comes back identical, the archive is private, and
        // neither the archive nor a non-empty target is written over.
        let dir = tempfile::tempdir().unwrap();
        let data = sample(dir.path());
        let out = dir.path().join("b.tar");
        let b = BackupArgs {
            data: data.clone(),
            out: out.clone(),
        };
        let books = accounts(&data);
        let m = backup(&b, "bank").unwrap();
        assert!(m.files.iter().any(|f| f.path == "bank.key"));
        assert!(m.files.iter().any(|f| f.path.starts_with("db/")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(backup(&b, "bank"), Err(BackupError::OutExists(_))));
        let r = RestoreArgs {
            from: out.clone(),
            data: dir.path().join("restored"),
        };
        restore(&r, &["bank"]).unwrap();
        // Byte for byte what the archive holds, and the same books.
        assert_eq!(files(&r.data), m.files);
        assert_eq!(accounts(&r.data), books);
        assert!(matches!(
            restore(&r, &["bank"]),
            Err(BackupError::NotEmpty(_))
        ));
        let other = RestoreArgs {
            from: out,
            data: dir.path().join("as-log"),
        };
        let e = restore(&other, &["log"]).unwrap_err();
        assert!(
            e.to_string().contains("a backup of a bank, not of a log"),
            "{e}"
        );
        assert!(!other.data.exists());
    }

    #[test]
    fn a_damaged_archive_restores_nothing() {
        // One flipped byte in a file's contents is found by its checksum,
        // and no data directory (nor staging directory) is left behind.
        let dir = tempfile::tempdir().unwrap();
        let data = sample(dir.path());
        let out = dir.path().join("b.tar");
        backup(
            &BackupArgs {
                data,
                out: out.clone(),
            },
            "bank",
        )
        .unwrap();
        let mut bytes = std::fs::read(&out).unwrap();
        let at = bytes.windows(7).position(|w| w == b"secret\n").unwrap();
        bytes[at] ^= 1;
        std::fs::write(&out, &bytes).unwrap();
        let target = dir.path().join("restored");
        let e = restore(
            &RestoreArgs {
                from: out,
                data: target.clone(),
            },
            &["bank"],
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not match its checksum"), "{e}");
        assert!(!target.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".acd-restore"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_database_in_use_is_not_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let db = crate::storage::open(&sled::Config::new().path(data.join("db"))).unwrap();
        let e = backup(
            &BackupArgs {
                data: data.clone(),
                out: dir.path().join("b.tar"),
            },
            "log",
        )
        .unwrap_err();
        assert!(matches!(e, BackupError::InUse(_)), "{e}");
        assert!(!dir.path().join("b.tar").exists());
        drop(db);
    }

    #[test]
    fn member_paths_stay_inside() {
        assert_eq!(safe_relative("db/conf"), Some(PathBuf::from("db/conf")));
        assert_eq!(safe_relative("../x"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative("a/../../x"), None);
        assert_eq!(safe_relative(""), None);
    }
}
