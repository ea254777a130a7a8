//! Opening the embedded database (sled) so that a damaged one is an error
//! naming its path, never a panic: sled panics inside `open` and inside
//! reads on some corruptions, so both run under [`guard`], which turns the
//! panic into [`DatabaseError::Damaged`] without the panic message on
//! stderr.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Why a database could not be opened or read.
#[derive(Debug, Error)]
pub enum DatabaseError {
    /// Its files are corrupt: restore it from a backup.
    #[error("the database at {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    /// Another process holds it: a server already running on this data
    /// directory (or a backup being made of it).
    #[error(
        "the database at {} is in use by another process: is a server already running on this data directory?",
        path.display()
    )]
    InUse { path: PathBuf },
    /// It could not be reached (no permission, a full disk).
    #[error("cannot open the database at {path}: {source}")]
    Unavailable { path: PathBuf, source: sled::Error },
}

impl DatabaseError {
    /// Classifies an error sled returned for the database at `path`.
    pub fn from_sled(path: &Path, e: sled::Error) -> DatabaseError {
        match e {
            // One of ours, carried through sled's error type.
            sled::Error::Io(io)
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<DatabaseError>()) =>
            {
                match io
                    .into_inner()
                    .map(|inner| inner.downcast::<DatabaseError>())
                {
                    Some(Ok(ours)) => *ours,
                    _ => DatabaseError::Damaged {
                        path: path.to_owned(),
                        reason: "unreadable".to_owned(),
                    },
                }
            }
            e if is_lock_error(&e) => DatabaseError::InUse {
                path: path.to_owned(),
            },
            sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => {
                DatabaseError::Damaged {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }
            }
            e => DatabaseError::Unavailable {
                path: path.to_owned(),
                source: e,
            },
        }
    }
}

/// Callers whose errors wrap `sled::Error` keep their `?`: the message,
/// path included, travels inside an I/O error.
impl From<DatabaseError> for sled::Error {
    fn from(e: DatabaseError) -> sled::Error {
        let kind = match &e {
            DatabaseError::Damaged { .. } => std::io::ErrorKind::InvalidData,
            DatabaseError::InUse { .. } => std::io::ErrorKind::WouldBlock,
            DatabaseError::Unavailable {
                source: sled::Error::Io(io),
                ..
            } => io.kind(),
            DatabaseError::Unavailable { .. } => std::io::ErrorKind::Other,
        };
        sled::Error::Io(std::io::Error::new(kind, e))
    }
}

thread_local! {
    /// Set while this thread runs under [`guard`]: its panics are caught
    /// and reported as errors, so the default hook must not print them.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once per process) a panic hook that stays silent for guarded
/// threads and hands every other panic to the hook it replaced.
fn install_quiet_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "sled panicked".to_owned()
    }
}

/// Runs `f`, which reads the database at `path`; a panic inside it (sled's
/// answer to some corruptions) becomes [`DatabaseError::Damaged`].
pub fn guard<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, DatabaseError> {
    install_quiet_hook();
    let was = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|payload| DatabaseError::Damaged {
        path: path.to_owned(),
        reason: panic_message(payload.as_ref()),
    })
}

/// [`guard`] for a function returning sled's result: its errors are
/// classified too.
pub fn guard_sled<T>(path: &Path, f: impl FnOnce() -> sled::Result<T>) -> Result<T, DatabaseError> {
    guard(path, f)?.map_err(|e| DatabaseError::from_sled(path, e))
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Opens the sled database `config` describes. A database this process
/// just closed can stay locked for a moment while sled's I/O threads finish
/// (an in-process restart, as tests and the demo do); that is waited for,
/// up to 2 s. A lock another process holds is reported, and so is a
/// damaged database, by its path.
pub fn open(config: &sled::Config) -> Result<sled::Db, DatabaseError> {
    let path = config.get_path();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match guard(&path, || config.open())? {
            Err(e) if is_lock_error(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(db) => return Ok(db),
            Err(e) => return Err(DatabaseError::from_sled(&path, e)),
        }
    }
}

/// [`open`] for callers whose errors wrap `sled::Error`.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    open(config).map_err(sled::Error::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // A database reopened right after it was closed opens; while another
    // handle holds it, opening fails with the lock error after the wait.
    #[test]
    fn sled_reopens_and_reports_a_held_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = sled::Config::new().path(dir.path());
        for _ in 0..3 {
            drop(open_sled(&config).unwrap());
        }
        let held = open_sled(&config).unwrap();
        let started = Instant::now();
        let err = open_sled(&config).err().unwrap().to_string();
        assert!(err.contains("in use by another process"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(2));
        drop(held);
        drop(open_sled(&config).unwrap());
    }

    // A panic under the guard is an error naming the path; the thread's
    // later panics are not swallowed by the guard's state.
    #[test]
    fn a_panic_under_the_guard_is_a_damaged_database() {
        let path = Path::new("/nowhere/db");
        let err = guard(path, || -> u32 { panic!("bad page") }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the database at /nowhere/db is damaged: bad page"
        );
        assert!(!GUARDED.with(Cell::get));
        assert_eq!(guard(path, || 7).unwrap(), 7);
        let e = guard_sled(path, || -> sled::Result<()> {
            Err(sled::Error::Corruption { at: None, bt: () })
        })
        .unwrap_err();
        assert!(matches!(e, DatabaseError::Damaged { .. }), "{e}");
    }

    // A database whose files are overwritten with garbage opens as an
    // error, never a panic, whichever file and offset is hit.
    #[test]
    fn a_damaged_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = open(&sled::Config::new().path(&path)).unwrap();
            let tree = db.open_tree("t").unwrap();
            for i in 0u32..2000 {
                tree.insert(i.to_be_bytes(), vec![7u8; 100]).unwrap();
            }
            db.flush().unwrap();
        }
        let original = copy_dir(&path);
        let mut noticed = 0;
        for (name, bytes) in &original {
            for fraction in [1, 3, 5, 7] {
                restore(&path, &original);
                let mut damaged = bytes.clone();
                let at = damaged.len() * fraction / 8;
                for b in damaged.iter_mut().skip(at).take(64) {
                    *b ^= 0x5a;
                }
                std::fs::write(path.join(name), &damaged).unwrap();
                let outcome = guard_sled(&path, || {
                    let db = open_sled(&sled::Config::new().path(&path))?;
                    let tree = db.open_tree("t")?;
                    for kv in tree.iter() {
                        kv?;
                    }
                    Ok(())
                });
                if let Err(e) = outcome {
                    let text = e.to_string();
                    assert!(
                        text.starts_with(&format!("the database at {} is damaged", path.display())),
                        "{text}"
                    );
                    noticed += 1;
                }
            }
        }
        assert!(noticed > 0, "no damage was noticed");
    }

    fn copy_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for e in std::fs::read_dir(dir.join(&rel)).unwrap() {
                let e = e.unwrap();
                let name = rel.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    stack.push(name);
                } else {
                    out.push((name.clone(), std::fs::read(dir.join(&name)).unwrap()));
                }
            }
        }
        out
    }

    fn restore(dir: &Path, files: &[(PathBuf, Vec<u8>)]) {
        let _ = std::fs::remove_dir_all(dir);
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
}
