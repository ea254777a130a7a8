//! The log's entries and the signed messages they carry (paper figure 2).
//!
//! - [`KeyCommit`] (P4): the merchant signs expiration, goods key k and TID
//!   for one log. The log appends it as a [`LogEntry::Commit`] (P5) if its
//!   clock is before the expiration and the TID has no outcome yet.
//! - [`EscrowNotice`] (P3, the log's copy): the bank signs that it escrowed a
//!   token for this TID, merchant, log and expiration. It carries no price,
//!   so the log never learns an amount. After the expiration, with no commit,
//!   the log appends it as a [`LogEntry::Abort`].
//!
//! Every entry carries the log's timestamp (milliseconds since the Unix
//! epoch). The bytes are fixed-size and canonical; `docs/formats.md` gives
//! them field by field.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::encoding::{DecodeError, Reader, Writer};

/// Context label of the merchant's key commit (P4).
pub const KEY_COMMIT_LABEL: &str = "acd/v1/key-commit";
/// Context label of the bank's escrow notice for the log.
pub const ESCROW_NOTICE_LABEL: &str = "acd/v1/escrow-notice";
/// Kind byte of a commit entry.
pub const ENTRY_COMMIT: u8 = 0x01;
/// Kind byte of an abort entry.
pub const ENTRY_ABORT: u8 = 0x02;
/// Size of every entry: kind, timestamp, TID, merchant, expiration, key or
/// bank, signature.
pub const ENTRY_SIZE: usize = 1 + 8 + 16 + 32 + 8 + 32 + 64;

/// Errors of entries and their signatures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryError {
    #[error("malformed entry: {0}")]
    Decode(#[from] DecodeError),
    #[error("unknown entry kind 0x{0:02x}")]
    UnknownKind(u8),
    #[error("{0} is not a valid ed25519 public key")]
    BadKey(&'static str),
    #[error("{0} signature does not verify")]
    BadSignature(&'static str),
    #[error("malformed TID: {0}")]
    BadTid(String),
}

/// A transaction id: 16 bytes chosen at random by the merchant, written as
/// 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(pub [u8; 16]);

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tid({self})")
    }
}

impl FromStr for Tid {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(EntryError::BadTid(
                "expected 32 lowercase hex digits".into(),
            ));
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|e| EntryError::BadTid(e.to_string()))?;
        Ok(Tid(out))
    }
}

impl Serialize for Tid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Tid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn verifying_key(bytes: &[u8; 32], what: &'static str) -> Result<VerifyingKey, EntryError> {
    VerifyingKey::from_bytes(bytes).map_err(|_| EntryError::BadKey(what))
}

pub(crate) fn verify(
    key: &[u8; 32],
    msg: &[u8],
    sig: &[u8; 64],
    what: &'static str,
) -> Result<(), EntryError> {
    let vk = verifying_key(key, what)?;
    vk.verify_strict(msg, &Signature::from_bytes(sig))
        .map_err(|_| EntryError::BadSignature(what))
}

/// P4: the merchant commits goods key `key` for `tid` on log `log_origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCommit {
    pub log_origin: String,
    pub tid: Tid,
    pub merchant: [u8; 32],
    pub expiration_ms: u64,
    pub key: [u8; 32],
}

impl KeyCommit {
    /// The bytes the merchant signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        Writer::labelled(KEY_COMMIT_LABEL)
            .var(self.log_origin.as_bytes())
            .fixed(&self.tid.0)
            .fixed(&self.merchant)
            .u64(self.expiration_ms)
            .fixed(&self.key)
            .finish()
    }

    pub fn sign(&self, merchant: &SigningKey) -> [u8; 64] {
        merchant.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(&self.merchant, &self.signed_bytes(), signature, "merchant")
    }
}

/// The bank's notice to the log that it escrowed a token for `tid`; the log
/// accepts an abort only with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowNotice {
    pub log_origin: String,
    pub tid: Tid,
    pub merchant: [u8; 32],
    pub expiration_ms: u64,
}

impl EscrowNotice {
    /// The bytes the bank signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        Writer::labelled(ESCROW_NOTICE_LABEL)
            .var(self.log_origin.as_bytes())
            .fixed(&self.tid.0)
            .fixed(&self.merchant)
            .u64(self.expiration_ms)
            .finish()
    }

    pub fn sign(&self, bank: &SigningKey) -> [u8; 64] {
        bank.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, bank: &[u8; 32], signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(bank, &self.signed_bytes(), signature, "bank")
    }
}

/// The outcome recorded for a TID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Commit,
    Abort,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Commit => "commit",
            Outcome::Abort => "abort",
        })
    }
}

/// One leaf of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// P5: the merchant's key commit, as the log accepted it.
    Commit {
        timestamp_ms: u64,
        tid: Tid,
        merchant: [u8; 32],
        expiration_ms: u64,
        key: [u8; 32],
        signature: [u8; 64],
    },
    /// The transaction failed: the bank's escrow notice, logged at or after
    /// the expiration.
    Abort {
        timestamp_ms: u64,
        tid: Tid,
        merchant: [u8; 32],
        expiration_ms: u64,
        bank: [u8; 32],
        signature: [u8; 64],
    },
}

impl LogEntry {
    pub fn tid(&self) -> Tid {
        match self {
            LogEntry::Commit { tid, .. } | LogEntry::Abort { tid, .. } => *tid,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            LogEntry::Commit { .. } => Outcome::Commit,
            LogEntry::Abort { .. } => Outcome::Abort,
        }
    }

    pub fn timestamp_ms(&self) -> u64 {
        match self {
            LogEntry::Commit { timestamp_ms, .. } | LogEntry::Abort { timestamp_ms, .. } => {
                *timestamp_ms
            }
        }
    }

    pub fn merchant(&self) -> [u8; 32] {
        match self {
            LogEntry::Commit { merchant, .. } | LogEntry::Abort { merchant, .. } => *merchant,
        }
    }

    pub fn expiration_ms(&self) -> u64 {
        match self {
            LogEntry::Commit { expiration_ms, .. } | LogEntry::Abort { expiration_ms, .. } => {
                *expiration_ms
            }
        }
    }

    /// The leaf bytes (what the log hashes with 0x00 and serves in bundles).
    pub fn encode(&self) -> Vec<u8> {
        let (kind, ts, tid, merchant, exp, key, sig) = match self {
            LogEntry::Commit {
                timestamp_ms,
                tid,
                merchant,
                expiration_ms,
                key,
                signature,
            } => (
                ENTRY_COMMIT,
                timestamp_ms,
                tid,
                merchant,
                expiration_ms,
                key,
                signature,
            ),
            LogEntry::Abort {
                timestamp_ms,
                tid,
                merchant,
                expiration_ms,
                bank,
                signature,
            } => (
                ENTRY_ABORT,
                timestamp_ms,
                tid,
                merchant,
                expiration_ms,
                bank,
                signature,
            ),
        };
        Writer::new()
            .u8(kind)
            .u64(*ts)
            .fixed(&tid.0)
            .fixed(merchant)
            .u64(*exp)
            .fixed(key)
            .fixed(sig)
            .finish()
    }

    /// Strict decoding: exact size, known kind.
    pub fn decode(bytes: &[u8]) -> Result<LogEntry, EntryError> {
        let mut r = Reader::new(bytes);
        let kind = r.u8("kind")?;
        if kind != ENTRY_COMMIT && kind != ENTRY_ABORT {
            return Err(EntryError::UnknownKind(kind));
        }
        let timestamp_ms = r.u64("timestamp")?;
        let tid = Tid(r.fixed("tid")?);
        let merchant = r.fixed("merchant")?;
        let expiration_ms = r.u64("expiration")?;
        let key_or_bank = r.fixed("key")?;
        let signature = r.fixed("signature")?;
        r.finish()?;
        Ok(if kind == ENTRY_COMMIT {
            LogEntry::Commit {
                timestamp_ms,
                tid,
                merchant,
                expiration_ms,
                key: key_or_bank,
                signature,
            }
        } else {
            LogEntry::Abort {
                timestamp_ms,
                tid,
                merchant,
                expiration_ms,
                bank: key_or_bank,
                signature,
            }
        })
    }

    /// Checks the signature the entry carries, for a log named `log_origin`.
    /// Whether an abort's bank is trusted is the caller's policy.
    pub fn verify_signature(&self, log_origin: &str) -> Result<(), EntryError> {
        match self {
            LogEntry::Commit {
                tid,
                merchant,
                expiration_ms,
                key,
                signature,
                ..
            } => KeyCommit {
                log_origin: log_origin.to_owned(),
                tid: *tid,
                merchant: *merchant,
                expiration_ms: *expiration_ms,
                key: *key,
            }
            .verify(signature),
            LogEntry::Abort {
                tid,
                merchant,
                expiration_ms,
                bank,
                signature,
                ..
            } => EscrowNotice {
                log_origin: log_origin.to_owned(),
                tid: *tid,
                merchant: *merchant,
                expiration_ms: *expiration_ms,
            }
            .verify(bank, signature),
        }
    }

    /// Invariant 4 of the protocol: a commit before its expiration, an abort
    /// at or after it.
    pub fn timely(&self) -> bool {
        match self {
            LogEntry::Commit {
                timestamp_ms,
                expiration_ms,
                ..
            } => timestamp_ms < expiration_ms,
            LogEntry::Abort {
                timestamp_ms,
                expiration_ms,
                ..
            } => timestamp_ms >= expiration_ms,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn commit_entry(ts: u64) -> LogEntry {
        let m = key(1);
        let kc = KeyCommit {
            log_origin: "log.example/a".into(),
            tid: Tid([9; 16]),
            merchant: m.verifying_key().to_bytes(),
            expiration_ms: 1000,
            key: [5; 32],
        };
        let signature = kc.sign(&m);
        LogEntry::Commit {
            timestamp_ms: ts,
            tid: kc.tid,
            merchant: kc.merchant,
            expiration_ms: kc.expiration_ms,
            key: kc.key,
            signature,
        }
    }

    // A commit entry signed by the merchant verifies for its log and no other.
    #[test]
    fn commit_signature_is_bound_to_the_log() {
        let e = commit_entry(10);
        e.verify_signature("log.example/a").unwrap();
        assert_eq!(
            e.verify_signature("log.example/b"),
            Err(EntryError::BadSignature("merchant"))
        );
        assert!(e.timely());
        assert!(!commit_entry(1000).timely());
    }

    // The key-commit layout is the label, NUL, then origin, TID, merchant, expiration and key.
    #[test]
    fn key_commit_layout() {
        let kc = KeyCommit {
            log_origin: "L".into(),
            tid: Tid([1; 16]),
            merchant: [2; 32],
            expiration_ms: 3,
            key: [4; 32],
        };
        let b = kc.signed_bytes();
        let mut want = b"acd/v1/key-commit\0\0\x01L".to_vec();
        want.extend([1; 16]);
        want.extend([2; 32]);
        want.extend(3u64.to_be_bytes());
        want.extend([4; 32]);
        assert_eq!(b, want);
    }

    // An escrow notice signature cannot be passed off as a key commit, or the reverse.
    #[test]
    fn signatures_are_domain_separated() {
        let k = key(3);
        let notice = EscrowNotice {
            log_origin: "L".into(),
            tid: Tid([1; 16]),
            merchant: [2; 32],
            expiration_ms: 3,
        };
        let sig = notice.sign(&k);
        notice.verify(&k.verifying_key().to_bytes(), &sig).unwrap();
        let as_commit = LogEntry::Commit {
            timestamp_ms: 0,
            tid: notice.tid,
            merchant: k.verifying_key().to_bytes(),
            expiration_ms: 3,
            key: [0; 32],
            signature: sig,
        };
        assert!(as_commit.verify_signature("L").is_err());
    }

    // TIDs are exactly 32 lowercase hex digits.
    #[test]
    fn tid_text_form() {
        let t: Tid = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
        assert_eq!(t.0[15], 15);
        assert_eq!(t.to_string(), "000102030405060708090a0b0c0d0e0f");
        for bad in [
            "",
            "00",
            "000102030405060708090A0B0C0D0E0F",
            "zz0102030405060708090a0b0c0d0e0f",
        ] {
            assert!(bad.parse::<Tid>().is_err(), "{bad}");
        }
    }

    proptest! {
        // Every entry round-trips through its bytes, which are always ENTRY_SIZE long.
        #[test]
        fn entry_round_trip(commit in any::<bool>(), ts in any::<u64>(), exp in any::<u64>(),
                            tid in any::<[u8; 16]>(), m in any::<[u8; 32]>(), k in any::<[u8; 32]>(),
                            s1 in any::<[u8; 32]>(), s2 in any::<[u8; 32]>()) {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&s1);
            signature[32..].copy_from_slice(&s2);
            let e = if commit {
                LogEntry::Commit { timestamp_ms: ts, tid: Tid(tid), merchant: m, expiration_ms: exp, key: k, signature }
            } else {
                LogEntry::Abort { timestamp_ms: ts, tid: Tid(tid), merchant: m, expiration_ms: exp, bank: k, signature }
            };
            let b = e.encode();
            prop_assert_eq!(b.len(), ENTRY_SIZE);
            prop_assert_eq!(LogEntry::decode(&b).unwrap(), e);
        }

        // Decoding never panics and accepts only exact-size entries of a known kind.
        #[test]
        fn decode_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            match LogEntry::decode(&bytes) {
                Ok(e) => prop_assert_eq!(e.encode(), bytes),
                Err(_) => prop_assert!(bytes.len() != ENTRY_SIZE || (bytes[0] != ENTRY_COMMIT && bytes[0] != ENTRY_ABORT)),
            }
        }
    }
}
