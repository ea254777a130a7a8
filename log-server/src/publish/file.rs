//! The `file://` target: the read path as files under one directory, at
//! exactly their C2SP paths, for any static web server to serve.
//!
//! Each file is written durably and whole: a temporary file in the same
//! directory, written and fsynced, renamed over the final name, then the
//! directory fsynced, so a crash leaves the old file or the new one and
//! a rename that survives. New directories are fsynced into their parents
//! too. Temporary files are named `.acd-tmp*` (hidden, never a C2SP path);
//! the ones a crash left behind are removed when the target is opened.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::PublishError;

/// The prefix of temporary files, never that of a published name.
const TMP_PREFIX: &str = ".acd-tmp";

/// A directory the read path is published into.
#[derive(Debug, Clone)]
pub struct FileTarget {
    root: Arc<PathBuf>,
    /// The durability steps taken, in order (tests check them).
    #[cfg(test)]
    pub(crate) steps: Arc<std::sync::Mutex<Vec<String>>>,
}

fn io_err(path: &Path, e: std::io::Error) -> PublishError {
    PublishError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Makes a directory entry's creation or rename durable.
fn fsync_dir(dir: &Path) -> Result<(), PublishError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

impl FileTarget {
    /// Creates `root` if need be and removes temporary files a crash left.
    pub fn open(root: &Path) -> Result<FileTarget, PublishError> {
        let target = FileTarget {
            root: Arc::new(root.to_path_buf()),
            #[cfg(test)]
            steps: Arc::default(),
        };
        if let Some(parent) = root.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        target.create_dir(root)?;
        remove_temporaries(root)?;
        Ok(target)
    }

    fn step(&self, _what: &str, _path: &Path) {
        #[cfg(test)]
        if let Ok(mut steps) = self.steps.lock() {
            let rel = _path.strip_prefix(&*self.root).unwrap_or(_path);
            let name = rel.display().to_string();
            let name = if name.contains(TMP_PREFIX) {
                "<tmp>".to_owned()
            } else {
                name
            };
            steps.push(format!("{_what} {name}"));
        }
    }

    /// The file for a relative publication path such as `tile/0/x001/002`:
    /// only plain segments, so nothing lands outside the root.
    pub fn file_for(&self, path: &str) -> Result<PathBuf, PublishError> {
        let rel = Path::new(path);
        let plain = !path.is_empty()
            && rel.components().all(
                |c| matches!(c, Component::Normal(s) if !s.to_string_lossy().starts_with('.')),
            );
        if !plain {
            return Err(PublishError::Write {
                path: path.to_owned(),
                reason: "not a plain relative path".into(),
            });
        }
        Ok(self.root.join(rel))
    }

    /// Creates `dir` (its parent exists) durably, if it is missing.
    fn create_dir(&self, dir: &Path) -> Result<(), PublishError> {
        match fs::create_dir(dir) {
            Ok(()) => {
                self.step("mkdir", dir);
                if let Some(parent) = dir.parent() {
                    fsync_dir(parent)?;
                    self.step("fsync-dir", parent);
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_err(dir, e)),
        }
    }

    /// Writes `bytes` at `path`, durably and whole.
    pub fn put(&self, path: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let file = self.file_for(path)?;
        let dir = file.parent().unwrap_or(&self.root).to_path_buf();
        // Create the missing directories from the root down.
        let mut at = (*self.root).clone();
        if let Ok(rel) = dir.strip_prefix(&*self.root) {
            for part in rel.components() {
                at.push(part);
                self.create_dir(&at)?;
            }
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&dir)
            .map_err(|e| io_err(&dir, e))?;
        self.step("create", tmp.path());
        tmp.write_all(bytes).map_err(|e| io_err(tmp.path(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_err(tmp.path(), e))?;
        self.step("fsync", tmp.path());
        tmp.persist(&file).map_err(|e| io_err(&file, e.error))?;
        self.step("rename", &file);
        fsync_dir(&dir)?;
        self.step("fsync-dir", &dir);
        Ok(())
    }

    /// The bytes at `path`, if the file exists.
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let file = self.file_for(path)?;
        match fs::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PublishError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Removes the temporary files under `dir` (a crash's leftovers).
fn remove_temporaries(dir: &Path) -> Result<(), PublishError> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
        if kind.is_dir() {
            remove_temporaries(&path)?;
        } else if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
        }
    }
    Ok(())
}
