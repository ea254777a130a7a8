//! The merchant's secrets, each 32 random bytes kept as 64 hex digits and a
//! newline in a file of mode 0600 beside the database:
//!
//! - `<data>/merchant.key`: the ed25519 signing key's seed. The public half
//!   is the merchant's identity at the bank and in the log.
//! - `<data>/offer.secret`: the key of the offers' TID tags and goods keys
//!   ([`crate::offer_secret`]). Losing it loses every open offer.

use std::path::{Path, PathBuf};

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
}

pub fn key_path(data: &Path) -> PathBuf {
    data.join("merchant.key")
}

pub fn offer_secret_path(data: &Path) -> PathBuf {
    data.join("offer.secret")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the merchant's key, creating it (and `data`) on first use.
pub fn load_or_create(data: &Path) -> Result<SigningKey, KeyError> {
    read_or_create_secret(&key_path(data)).map(|seed| SigningKey::from_bytes(&seed))
}

/// Loads the offer secret, creating it (and `data`) on first use.
pub fn load_or_create_offer_secret(data: &Path) -> Result<OfferSecret, KeyError> {
    read_or_create_secret(&offer_secret_path(data)).map(OfferSecret::new)
}

/// The one place where the merchant's secret files are read or created.
fn read_or_create_secret(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = acd_serve::secret::read_or_create(path, || {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        format!("{}\n", hex::encode(seed)).into_bytes()
    })
    .map_err(io(path))?;
    let mut seed = [0u8; 32];
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| hex::decode_to_slice(t.trim(), &mut seed).ok())
        .ok_or_else(|| KeyError::Invalid(path.to_owned()))?;
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
