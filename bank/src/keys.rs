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
//! leaves half a key.

use std::fs;
use std::path::{Path, PathBuf};

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
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
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

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    acd_serve::secret::create(path, bytes).map_err(io(path))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, KeyError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
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

/// The bank's ed25519 key, created on first use from the OS's RNG.
pub fn load_or_create_bank_key(data: &Path) -> Result<SigningKey, KeyError> {
    load_or_create_bank_key_with(data, &mut rand::rng())
}

/// The same, created from `rng`.
pub fn load_or_create_bank_key_with(
    data: &Path,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<SigningKey, KeyError> {
    fs::create_dir_all(data).map_err(io(data))?;
    let path = bank_key_path(data);
    let seed = match read_optional(&path)? {
        Some(bytes) => parse_hex32(&path, &bytes)?,
        None => {
            let seed = random32(rng);
            write_secret(&path, format!("{}\n", hex::encode(seed)).as_bytes())?;
            seed
        }
    };
    Ok(SigningKey::from_bytes(&seed))
}

/// The blind-signing key of the denomination `value`, created with `bits`
/// bits on first use from the OS's RNG.
pub fn load_or_create_rsa_key(
    data: &Path,
    value: u64,
    bits: usize,
) -> Result<BlindSecretKey, KeyError> {
    load_or_create_rsa_key_with(data, value, bits, &mut rand::rng())
}

/// The same, created from `rng`.
pub fn load_or_create_rsa_key_with(
    data: &Path,
    value: u64,
    bits: usize,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<BlindSecretKey, KeyError> {
    fs::create_dir_all(data).map_err(io(data))?;
    let path = rsa_key_path(data, value);
    let invalid = |reason: String| KeyError::Invalid {
        path: path.clone(),
        reason,
    };
    match read_optional(&path)? {
        Some(der) => BlindSecretKey::from_der(&der).map_err(|e| invalid(e.to_string())),
        None => {
            let pair = token::generate_key(rng, bits).map_err(|e| invalid(e.to_string()))?;
            let der = pair.sk.to_der().map_err(|e| invalid(e.to_string()))?;
            write_secret(&path, &der)?;
            Ok(pair.sk)
        }
    }
}

/// The admin token (64 hex digits), created on first use from the OS's
/// RNG.
pub fn load_or_create_admin_token(data: &Path) -> Result<String, KeyError> {
    load_or_create_admin_token_with(data, &mut rand::rng())
}

/// The same, created from `rng`.
pub fn load_or_create_admin_token_with(
    data: &Path,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<String, KeyError> {
    fs::create_dir_all(data).map_err(io(data))?;
    let path = admin_token_path(data);
    match read_optional(&path)? {
        Some(bytes) => Ok(hex::encode(parse_hex32(&path, &bytes)?)),
        None => {
            let token = hex::encode(random32(rng));
            write_secret(&path, format!("{token}\n").as_bytes())?;
            Ok(token)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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
}
