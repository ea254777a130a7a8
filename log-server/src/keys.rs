//! The log's signing key: a C2SP signed-note ed25519 key named after the
//! origin, kept in `<data>/log.key` (mode 0600) in the
//! `PRIVATE+KEY+<name>+<id>+<base64>` text form.

use std::fs;
use std::path::{Path, PathBuf};

use acd_core::note::NoteSigner;
use acd_serve::secret::{DataDir, SecretError};
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
    #[error("the key file {path} is not a valid signed-note private key: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("the key in {path} is for origin {found:?}, not {wanted:?}")]
    OtherOrigin {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("no key in {0}; start the log once with `acd-log serve` to create it")]
    Missing(PathBuf),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

pub fn key_path(data: &Path) -> PathBuf {
    data.join("log.key")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the log's key.
pub fn load(data: &Path) -> Result<NoteSigner, KeyError> {
    let path = key_path(data);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyError::Missing(path)),
        Err(e) => return Err(io(&path)(e)),
    };
    NoteSigner::from_private_key(text.trim()).map_err(|e| KeyError::Invalid {
        path,
        reason: e.to_string(),
    })
}

/// Loads the log's key, creating it from the OS's randomness on first
/// start (in a new data directory only, see [`acd_serve::secret`]). The
/// key's name is the origin; a key for another origin is an error.
pub fn load_or_create(data: &Path, origin: &str) -> Result<NoteSigner, KeyError> {
    load_or_create_in(&mut rand::rng(), &DataDir::inspect(data), origin)
}

/// [`load_or_create`] in `dir`, drawing a new key from `rng`.
pub fn load_or_create_in<R: CryptoRng + ?Sized>(
    rng: &mut R,
    dir: &DataDir,
    origin: &str,
) -> Result<NoteSigner, KeyError> {
    let path = key_path(dir.path());
    let invalid = |e: acd_core::note::NoteError| KeyError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    // Made before the file is looked at, so that a bad origin is refused
    // before anything is written.
    let fresh = NoteSigner::new(origin, SigningKey::from_bytes(&seed)).map_err(invalid)?;
    dir.secret("log.key", || {
        format!("{}\n", fresh.private_key()).into_bytes()
    })?;
    let signer = load(dir.path())?;
    if signer.name() != origin {
        return Err(KeyError::OtherOrigin {
            path,
            found: signer.name().to_owned(),
            wanted: origin.to_owned(),
        });
    }
    Ok(signer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    // The first start creates a 0600 key named after the origin; later starts load the same key.
    #[test]
    fn key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), "log.test/a").unwrap();
        let mode = fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create(dir.path(), "log.test/a").unwrap();
        assert_eq!(a.verifier().vkey(), b.verifier().vkey());
        assert!(matches!(
            load_or_create(dir.path(), "log.test/b"),
            Err(KeyError::OtherOrigin { .. })
        ));
    }

    // Beside an existing database a missing key is refused and not created.
    #[test]
    fn a_missing_key_beside_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), "log.test/a").unwrap();
        fs::create_dir(dir.path().join("db")).unwrap();
        fs::remove_file(key_path(dir.path())).unwrap();
        let e = load_or_create(dir.path(), "log.test/a").unwrap_err();
        assert!(matches!(e, KeyError::Secret(_)), "{e}");
        assert!(e.to_string().contains("log.key"), "{e}");
        assert!(!key_path(dir.path()).exists());
    }
}
