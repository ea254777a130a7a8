//! The bank's secrets on disk, all created on first start with mode 0600
//! and reused afterwards:
//!
//! - `<data>/bank.key`: the ed25519 signing key (receipts, escrow terms,
//!   escrow notices) as 64 hex digits of its seed.
//! - `<data>/rsa-<value>.der`: the RFC 9474 blind-signing key of the
//!   denomination of that value, PKCS#8 DER.
//! - `<data>/admin.token`: the bearer token of the admin routes, 64 hex
//!   digits (32 random bytes).
//!
//! Each is created atomically ([`acd_serve::secret`]), so a crash never
//! leaves half a key, and only in a new data directory: beside an existing
//! database a missing one is an error (a new denomination key would leave
//! every token of that denomination unspendable).

use std::path::{Path, PathBuf};

use acd_serve::secret::{DataDir, SecretError};

use acd_core::token::{self, BlindSecretKey};
use ed25519_dalek::SigningKey;
use rand_core::CryptoRng;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
}

pub fn bank_key_path(data: &Path) -> PathBuf {
    data.join("bank.key")
}

pub fn rsa_key_path(data: &Path, value: u64) -> PathBuf {
    data.join(format!("rsa-{value}.der"))
}

pub fn admin_token_path(data: &Path) -> PathBuf {
    data.join("admin.token")
}

fn parse_hex32(path: &Path, bytes: &[u8]) -> Result<[u8; 32], KeyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| KeyError::Invalid {
        path: path.to_owned(),
        reason: "not text".into(),
    })?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|_| KeyError::Invalid {
        path: path.to_owned(),
        reason: "expected 64 hex digits".into(),
    })?;
    Ok(out)
}

fn random32(rng: &mut (impl CryptoRng + ?Sized)) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

/// The bank's ed25519 key, created on first use (in a new data directory)
/// from the OS's RNG.
pub fn load_or_create_bank_key(data: &Path) -> Result<SigningKey, KeyError> {
    load_or_create_bank_key_with(&DataDir::inspect(data), &mut rand::rng())
}

/// The same in `dir`, created from `rng`.
pub fn load_or_create_bank_key_with(
    dir: &DataDir,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<SigningKey, KeyError> {
    let path = bank_key_path(dir.path());
    let bytes = dir.secret("bank.key", || {
        format!("{}\n", hex::encode(random32(rng))).into_bytes()
    })?;
    Ok(SigningKey::from_bytes(&parse_hex32(&path, &bytes)?))
}

/// The blind-signing key of the denomination `value`, created with `bits`
/// bits on first use (in a new data directory) from the OS's RNG.
pub fn load_or_create_rsa_key(
    data: &Path,
    value: u64,
    bits: usize,
) -> Result<BlindSecretKey, KeyError> {
    load_or_create_rsa_key_with(&DataDir::inspect(data), value, bits, &mut rand::rng())
}

/// The same in `dir`, created from `rng`.
pub fn load_or_create_rsa_key_with(
    dir: &DataDir,
    value: u64,
    bits: usize,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<BlindSecretKey, KeyError> {
    let path = rsa_key_path(dir.path(), value);
    let invalid = |reason: String| KeyError::Invalid {
        path: path.clone(),
        reason,
    };
    let name = format!("rsa-{value}.der");
    let der = dir.secret_or(&name, || {
        let pair = token::generate_key(rng, bits).map_err(|e| invalid(e.to_string()))?;
        pair.sk.to_der().map_err(|e| invalid(e.to_string()))
    })?;
    BlindSecretKey::from_der(&der).map_err(|e| invalid(e.to_string()))
}

/// The admin token (64 hex digits), created on first use (in a new data
/// directory) from the OS's RNG.
pub fn load_or_create_admin_token(data: &Path) -> Result<String, KeyError> {
    load_or_create_admin_token_with(&DataDir::inspect(data), &mut rand::rng())
}

/// The same in `dir`, created from `rng`.
pub fn load_or_create_admin_token_with(
    dir: &DataDir,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<String, KeyError> {
    let path = admin_token_path(dir.path());
    let bytes = dir.secret("admin.token", || {
        format!("{}\n", hex::encode(random32(rng))).into_bytes()
    })?;
    Ok(hex::encode(parse_hex32(&path, &bytes)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    // Keys and token are created once with mode 0600 and read back unchanged.
    #[test]
    fn secrets_are_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_bank_key(dir.path()).unwrap();
        let b = load_or_create_bank_key(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(mode(&bank_key_path(dir.path())), 0o600);
        let t1 = load_or_create_admin_token(dir.path()).unwrap();
        let t2 = load_or_create_admin_token(dir.path()).unwrap();
        assert_eq!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(mode(&admin_token_path(dir.path())), 0o600);
        let k1 = load_or_create_rsa_key(dir.path(), 5, 2048).unwrap();
        let k2 = load_or_create_rsa_key(dir.path(), 5, 2048).unwrap();
        assert!(k1 == k2);
        assert_eq!(mode(&rsa_key_path(dir.path(), 5)), 0o600);
    }

    // Beside an existing database no secret is created: each missing one is
    // an error naming its file.
    #[test]
    fn no_secret_is_created_beside_a_database() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("db")).unwrap();
        let refused = |e: KeyError, path: PathBuf| {
            assert!(matches!(e, KeyError::Secret(_)), "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            assert!(!path.exists());
        };
        refused(
            load_or_create_bank_key(dir.path()).unwrap_err(),
            bank_key_path(dir.path()),
        );
        refused(
            load_or_create_admin_token(dir.path()).unwrap_err(),
            admin_token_path(dir.path()),
        );
        refused(
            load_or_create_rsa_key(dir.path(), 10, 2048).unwrap_err(),
            rsa_key_path(dir.path(), 10),
        );
    }
}
