//! The merchant's ed25519 signing key, kept in `<data>/merchant.key`
//! (mode 0600) as 64 hex digits of the secret seed and a newline. The
//! public half is the merchant's identity at the bank and in the log.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key file {0} does not hold 64 hex digits")]
    Invalid(PathBuf),
}

pub fn key_path(data: &Path) -> PathBuf {
    data.join("merchant.key")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the merchant's key, creating it (and `data`) on first use.
pub fn load_or_create(data: &Path) -> Result<SigningKey, KeyError> {
    fs::create_dir_all(data).map_err(io(data))?;
    let path = key_path(data);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed)
                .map_err(|_| KeyError::Invalid(path.clone()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path))?;
            f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io(&path))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    // The first use creates a 0600 key file; later uses load the same key; garbage is refused.
    #[test]
    fn key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.verifying_key(), b.verifying_key());
        fs::write(key_path(dir.path()), "nonsense").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyError::Invalid(_))
        ));
    }
}
