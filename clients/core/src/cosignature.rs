//! C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), Ed25519
//! `cosignature/v1`: a witness's timestamped statement that a checkpoint is
//! the largest consistent tree head it has seen for that log.
//!
//! The signature type byte is 0x04, so a witness key never verifies a plain
//! note signature and the reverse. The signed message is
//! `cosignature/v1\ntime <seconds>\n` followed by the checkpoint body; the
//! note signature is `key id (4) || timestamp (8, big-endian) || Ed25519
//! signature (64)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::note::{Note, NoteError, NoteSignature, check_name, key_id};

/// Signature type of timestamped Ed25519 cosignatures.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The bytes a cosigner signs for `checkpoint_body` at `timestamp` (POSIX
/// seconds).
pub fn signed_message(checkpoint_body: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_body}").into_bytes()
}

fn alg_and_key(key: &VerifyingKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = ALG_COSIGNATURE_V1;
    out[1..].copy_from_slice(key.as_bytes());
    out
}

/// A witness's public key: verifies its cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &alg_and_key(&key)),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x04 || key)>`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey(
                "expected <name>+<key id>+<base64 key>",
            ));
        };
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::BadVerifierKey("key is not base64"))?;
        if STANDARD.encode(&raw) != b64 {
            return Err(NoteError::BadVerifierKey("key is not canonical base64"));
        }
        let key = match raw.split_first() {
            Some((&ALG_COSIGNATURE_V1, key)) => <[u8; 32]>::try_from(key)
                .map_err(|_| NoteError::BadVerifierKey("Ed25519 key must be 32 bytes"))?,
            Some((&alg, _)) => return Err(NoteError::UnsupportedAlgorithm(alg)),
            None => return Err(NoteError::BadVerifierKey("empty key")),
        };
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::BadVerifierKey("not an Ed25519 public key"))?;
        let v = CosignatureVerifier::new(name, key)?;
        if format!("{:08x}", v.key_id) != id {
            return Err(NoteError::BadVerifierKey("key id does not match the key"));
        }
        Ok(v)
    }

    pub fn vkey(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(alg_and_key(&self.key))
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The timestamp of `sig`, if it is this witness's valid cosignature of
    /// `note`'s text.
    pub fn verify(&self, note: &Note, sig: &NoteSignature) -> Option<u64> {
        if sig.name != self.name || sig.key_id != self.key_id || sig.signature.len() != 72 {
            return None;
        }
        let (ts, signature) = sig.signature.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().ok()?);
        if timestamp > i64::MAX as u64 {
            return None;
        }
        let signature = Signature::from_slice(signature).ok()?;
        self.key
            .verify_strict(&signed_message(&note.text, timestamp), &signature)
            .ok()
            .map(|()| timestamp)
    }
}

/// A witness's signing key.
#[derive(Clone)]
pub struct Cosigner {
    verifier: CosignatureVerifier,
    key: SigningKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cosigner({}+{:08x})",
            self.verifier.name, self.verifier.key_id
        )
    }
}

impl Cosigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        Ok(Cosigner {
            verifier: CosignatureVerifier::new(name, key.verifying_key())?,
            key,
        })
    }

    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// Cosigns a checkpoint body (the note text) at `timestamp`.
    pub fn cosign(&self, checkpoint_body: &str, timestamp: u64) -> NoteSignature {
        let sig = self.key.sign(&signed_message(checkpoint_body, timestamp));
        let mut signature = Vec::with_capacity(72);
        signature.extend_from_slice(&timestamp.to_be_bytes());
        signature.extend_from_slice(&sig.to_bytes());
        NoteSignature {
            name: self.verifier.name.clone(),
            key_id: self.verifier.key_id,
            signature,
        }
    }
}

/// Cosignatures of `note` by the given witnesses: the witnesses that signed,
/// each once, with the timestamp of its cosignature.
pub fn cosigners<'a>(
    note: &Note,
    witnesses: &'a [CosignatureVerifier],
) -> Vec<(&'a CosignatureVerifier, u64)> {
    let mut out: Vec<(&CosignatureVerifier, u64)> = Vec::new();
    for w in witnesses {
        if out.iter().any(|(v, _)| *v == w) {
            continue;
        }
        if let Some(ts) = note.signatures.iter().find_map(|s| w.verify(note, s)) {
            out.push((w, ts));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    // The spec's example cosignature line carries key id, the timestamp of its example message, and 64 signature bytes.
    #[test]
    fn spec_example_line_layout() {
        let note = format!(
            "{BODY}\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        );
        let parsed = Note::parse(&note).unwrap();
        let w = &parsed.signatures[1];
        assert_eq!(w.name, "witness.example.com/w1");
        assert_eq!(w.signature.len(), 72);
        let ts = u64::from_be_bytes(w.signature[..8].try_into().unwrap());
        assert_eq!(ts, 1_679_315_147);
        assert_eq!(
            signed_message(BODY, ts),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    // A cosignature verifies for its note and timestamp, and not for another body, name or key type.
    #[test]
    fn cosign_and_verify() {
        let c = Cosigner::new("witness.test/w1", SigningKey::from_bytes(&[5; 32])).unwrap();
        let line = c.cosign(BODY, 1_700_000_000);
        let note = Note::parse(&format!("{BODY}\n{}", line.to_line())).unwrap();
        assert_eq!(
            c.verifier().verify(&note, &note.signatures[0]),
            Some(1_700_000_000)
        );
        let vkey = c.verifier().vkey();
        assert_eq!(
            CosignatureVerifier::from_vkey(&vkey).unwrap(),
            *c.verifier()
        );
        // Base64 of the 0x04 type byte starts with 'B'.
        assert!(vkey.split('+').nth(2).unwrap().starts_with('B'));
        let other = Note::parse(&format!(
            "{}\n{}",
            BODY.replace("20852163", "20852164"),
            line.to_line()
        ))
        .unwrap();
        assert_eq!(c.verifier().verify(&other, &other.signatures[0]), None);
        // The same key as a plain note key has another key id.
        let plain = NoteSigner::new("witness.test/w1", SigningKey::from_bytes(&[5; 32])).unwrap();
        assert_ne!(plain.key_id(), c.verifier().key_id());
        assert!(CosignatureVerifier::from_vkey(&plain.verifier().vkey()).is_err());
        assert_eq!(
            cosigners(&note, std::slice::from_ref(c.verifier())).len(),
            1
        );
    }
}
