//! The merchant's ed25519 signing key, kept in `<data>/merchant.key`
//! (mode 0600) as 64 hex digits of the secret seed and a newline. The
//! public half is the merchant's identity at the bank and in the log.
//! Created only in a new data directory ([`acd_serve::secret`]): a missing
//! key beside an existing database is an error naming the file.

use std::path::{Path, PathBuf};

use acd_serve::secret::{DataDir, SecretError};
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
    #[error(transparent)]
    Secret(#[from] SecretError),
}

pub fn key_path(data: &Path) -> PathBuf {
    data.join("merchant.key")
}

/// Loads the merchant's key, creating it (and `data`) on first use.
pub fn load_or_create(data: &Path) -> Result<SigningKey, KeyError> {
    load_or_create_in(&DataDir::inspect(data))
}

/// [`load_or_create`] in `dir`, creating the key only if `dir` is new.
pub fn load_or_create_in(dir: &DataDir) -> Result<SigningKey, KeyError> {
    let path = key_path(dir.path());
    let text = dir.secret("merchant.key", || {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        format!("{}\n", hex::encode(seed)).into_bytes()
    })?;
    let mut seed = [0u8; 32];
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| hex::decode_to_slice(t.trim(), &mut seed).ok())
        .ok_or_else(|| KeyError::Invalid(path.clone()))?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs;
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

    // Beside an existing database a missing key is refused and not created.
    #[test]
    fn a_missing_key_beside_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("db")).unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, KeyError::Secret(_)), "{e}");
        assert!(e.to_string().contains("merchant.key"), "{e}");
        assert!(!key_path(dir.path()).exists());
    }
}
