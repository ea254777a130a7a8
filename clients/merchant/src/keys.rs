//! The merchant's secrets, each 32 random bytes kept as 64 hex digits and a
//! newline in a file of mode 0600 beside the database:
//!
//! - `<data>/merchant.key`: the ed25519 signing key's seed. The public half
//!   is the merchant's identity at the bank and in the log.
//! - `<data>/offer.secret`: the key of the offers' TID tags and goods keys
//!   ([`crate::offer_secret`]). Losing it loses every open offer.

//!
//! Both are created only in a new data directory ([`acd_serve::secret`]): a
//! missing one beside an existing database is an error naming the file.

use std::path::{Path, PathBuf};

use acd_serve::secret::{DataDir, SecretError};
use ed25519_dalek::SigningKey;
use thiserror::Error;

use crate::offer_secret::OfferSecret;

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

pub fn offer_secret_path(data: &Path) -> PathBuf {
    data.join("offer.secret")
}

/// Loads the merchant's key, creating it (and `data`) on first use.
pub fn load_or_create(data: &Path) -> Result<SigningKey, KeyError> {
    load_or_create_in(&DataDir::inspect(data))
}

/// [`load_or_create`] in `dir`, creating the key only if `dir` is new.
pub fn load_or_create_in(dir: &DataDir) -> Result<SigningKey, KeyError> {
    read_or_create_secret(dir, "merchant.key").map(|seed| SigningKey::from_bytes(&seed))
}

/// Loads the offer secret, creating it (and `data`) on first use.
pub fn load_or_create_offer_secret(data: &Path) -> Result<OfferSecret, KeyError> {
    load_or_create_offer_secret_in(&DataDir::inspect(data))
}

/// [`load_or_create_offer_secret`] in `dir`, creating it only if `dir` is new.
pub fn load_or_create_offer_secret_in(dir: &DataDir) -> Result<OfferSecret, KeyError> {
    read_or_create_secret(dir, "offer.secret").map(OfferSecret::new)
}

/// The one place where the merchant's secret files are read or created.
fn read_or_create_secret(dir: &DataDir, name: &str) -> Result<[u8; 32], KeyError> {
    let path = dir.path().join(name);
    let text = dir.secret(name, || {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        format!("{}\n", hex::encode(seed)).into_bytes()
    })?;
    let mut seed = [0u8; 32];
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| hex::decode_to_slice(t.trim(), &mut seed).ok())
        .ok_or_else(|| KeyError::Invalid(path.clone()))?;
    Ok(seed)
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

    // The offer secret is created once with mode 0600, apart from the signing key, and kept.
    #[test]
    fn offer_secret_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_offer_secret(dir.path()).unwrap();
        let path = offer_secret_path(dir.path());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = load_or_create_offer_secret(dir.path()).unwrap();
        let tid = acd_core::entry::Tid([5; 16]);
        assert_eq!(a.goods_key(&tid), b.goods_key(&tid));
        let seed = load_or_create(dir.path()).unwrap().to_bytes();
        assert_ne!(
            fs::read(&path).unwrap(),
            fs::read(key_path(dir.path())).unwrap()
        );
        assert_ne!(a.goods_key(&tid), OfferSecret::new(seed).goods_key(&tid));
        fs::write(&path, "short").unwrap();
        assert!(matches!(
            load_or_create_offer_secret(dir.path()),
            Err(KeyError::Invalid(_))
        ));
    }
}
