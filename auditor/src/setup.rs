//! Turning an operator's settings (the command line and [`crate::config`])
//! into a witness or a monitor: the logs to follow, the witness's key
//! (Ed25519 or ML-DSA-44, drawn once from an injected RNG, kept with mode
//! 0600), the witness with its evidence directory, log URLs and admin token.

use std::path::{Path, PathBuf};

use acd_core::cosignature::{CosignatureKind, Cosigner};
use acd_core::note::{NoteError, NoteVerifier};
use acd_serve::secret::{DataDir, SecretError};
use acd_serve::storage::DatabaseError;
use rand_core::CryptoRng;
use thiserror::Error;

use crate::monitor::FollowedLog;
use crate::witness::{Witness, WitnessError};

/// Why a witness or monitor could not be set up.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("expected <vkey>@<http(s) url>, got {0}")]
    LogSpec(String),
    #[error("log vkey {vkey}: {source}")]
    LogKey { vkey: String, source: NoteError },
    #[error("reading or creating {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("{0} is not a 32-byte key")]
    BadKey(PathBuf),
    #[error("witness name: {0}")]
    Name(NoteError),
    #[error(
        "this witness's key is {have} ({path}); it cannot become an {want} witness (a new key needs a new data directory and a new name or vkey for every log and client)"
    )]
    KeyType {
        have: CosignatureKind,
        want: CosignatureKind,
        path: PathBuf,
    },
    #[error(transparent)]
    Witness(#[from] WitnessError),
}

fn verifier(vkey: &str) -> Result<NoteVerifier, SetupError> {
    NoteVerifier::from_vkey(vkey).map_err(|source| SetupError::LogKey {
        vkey: vkey.to_owned(),
        source,
    })
}

/// The monitor's logs, each given as `<vkey>@<url>`.
pub fn followed_logs(specs: &[String]) -> Result<Vec<FollowedLog>, SetupError> {
    specs
        .iter()
        .map(|spec| {
            let (vkey, url) = acd_core::note::split_vkey_url(spec)
                .ok_or_else(|| SetupError::LogSpec(spec.clone()))?;
            Ok(FollowedLog {
                url: url.trim_end_matches('/').to_owned(),
                verifier: verifier(vkey)?,
            })
        })
        .collect()
}

/// The key file of each cosignature type: the type of a witness's key is
/// fixed when it is created (its logs and clients trust it by that key).
pub fn key_file(kind: CosignatureKind) -> &'static str {
    match kind {
        CosignatureKind::Ed25519 => "witness.key",
        CosignatureKind::MlDsa44 => "witness.ml-dsa-44.key",
    }
}

/// The type of the witness key in `data`, if it has one.
pub fn existing_key_type(data: &Path) -> Option<CosignatureKind> {
    [CosignatureKind::Ed25519, CosignatureKind::MlDsa44]
        .into_iter()
        .find(|&k| data.join(key_file(k)).exists())
}

/// The type a witness in `data` uses: the one asked for, which must be the
/// existing key's if there is one; else the existing key's; else, for a new
/// witness, ML-DSA-44 (tlog-cosignature: it SHOULD be used for new
/// deployments).
pub fn key_type(
    data: &Path,
    asked: Option<CosignatureKind>,
) -> Result<CosignatureKind, SetupError> {
    match (existing_key_type(data), asked) {
        (Some(have), Some(want)) if have != want => Err(SetupError::KeyType {
            have,
            want,
            path: data.join(key_file(have)),
        }),
        (Some(have), _) => Ok(have),
        (None, Some(want)) => Ok(want),
        (None, None) => Ok(CosignatureKind::MlDsa44),
    }
}

/// The witness key of `kind` in `data` (see [`key_file`]): a 32-byte seed
/// (the Ed25519 secret key, or the FIPS 204 ML-DSA-44 seed) from `rng`,
/// created once with mode 0600, in a new data directory only.
pub fn load_or_create_key<R: CryptoRng + ?Sized>(
    rng: &mut R,
    data: &Path,
    kind: CosignatureKind,
) -> Result<[u8; 32], SetupError> {
    let file = key_file(kind);
    let path = data.join(file);
    let bytes = DataDir::inspect(data).secret(file, || {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        seed.to_vec()
    })?;
    bytes.try_into().map_err(|_| SetupError::BadKey(path))
}

/// A witness's logs: their verifiers and the URLs known, by origin.
type WitnessedLogs = (Vec<NoteVerifier>, Vec<(String, String)>);

/// The logs a witness is given, each a vkey, optionally `<vkey>@<url>`.
fn witnessed_logs(logs: &[String]) -> Result<WitnessedLogs, SetupError> {
    let mut urls = Vec::new();
    let mut verifiers = Vec::new();
    for spec in logs {
        let (vkey, url) = match acd_core::note::split_vkey_url(spec) {
            Some((v, u)) => (v, Some(u)),
            None => (spec.as_str(), None),
        };
        let v = verifier(vkey)?;
        if let Some(u) = url {
            urls.push((v.name().to_owned(), u.to_owned()));
        }
        verifiers.push(v);
    }
    Ok((verifiers, urls))
}

/// Checks a witness's name and logs without touching its data directory:
/// what [`open_witness`] would refuse before reading its key.
pub fn check_witness(
    data: &Path,
    name: &str,
    logs: &[String],
    kind: Option<CosignatureKind>,
) -> Result<CosignatureKind, SetupError> {
    let kind = key_type(data, kind)?;
    Cosigner::from_seed(kind, name, &[0; 32]).map_err(SetupError::Name)?;
    witnessed_logs(logs)?;
    Ok(kind)
}

/// Opens the witness `name` in `data` (state in `db/`, evidence files in
/// `evidence/`) for `logs`, each a vkey, optionally `<vkey>@<url>` so that
/// it can ask the log for consistency proofs, with a key of `kind` (see
/// [`key_type`]); with `admin_token`,
/// `POST /admin/clear` is enabled. Warns about every frozen origin.
pub fn open_witness<R: CryptoRng + ?Sized>(
    rng: &mut R,
    data: &Path,
    name: &str,
    logs: &[String],
    kind: Option<CosignatureKind>,
    admin_token: Option<String>,
) -> Result<Witness, SetupError> {
    let kind = check_witness(data, name, logs, kind)?;
    let (verifiers, urls) = witnessed_logs(logs)?;
    let seed = load_or_create_key(rng, data, kind)?;
    let cosigner = Cosigner::from_seed(kind, name, &seed).map_err(SetupError::Name)?;
    let path = data.join(acd_serve::secret::DATABASE);
    // The start-up reads run under the guard too: sled panics on some
    // damaged pages.
    let (witness, frozen) = acd_serve::storage::guard(&path, || {
        let damaged = |e: &dyn std::fmt::Display| DatabaseError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        };
        let witness = Witness::open(&path, cosigner, verifiers).map_err(|e| damaged(&e))?;
        let frozen = witness.frozen().list().map_err(|e| damaged(&e))?;
        Ok::<_, DatabaseError>((witness, frozen))
    })??;
    let mut witness = witness.with_evidence_dir(data.join("evidence"));
    for (origin, url) in &urls {
        witness = witness.with_log_url(origin, url);
    }
    if let Some(token) = admin_token {
        witness = witness.with_admin_token(token);
    }
    for (origin, record) in frozen {
        tracing::warn!(%origin, kind = %record.kind, evidence = ?record.evidence_file, "origin is frozen after a split view; not cosigning it");
    }
    Ok(witness)
}
