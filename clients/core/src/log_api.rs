//! JSON bodies of the log's HTTP API (everything outside the C2SP read
//! path), shared by the log server and its clients. Binary fields are
//! lowercase hex; checkpoints are the signed-note text as served at
//! `/checkpoint`.

use serde::{Deserialize, Serialize};

use crate::encoding::{DecodeError, Reader};
use crate::entry::{Outcome, Tid};
use crate::merkle::Hash;

/// `POST /api/v1/commit`: the merchant's key commit (P4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    pub tid: Tid,
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    pub expiration_ms: u64,
    #[serde(with = "hex_array")]
    pub key: [u8; 32],
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// The size of a [`CommitRequest`] in its binary form.
pub const COMMIT_REQUEST_SIZE: usize = 16 + 32 + 8 + 32 + 64;

/// The most commits one `POST /api/v1/commits` may carry.
pub const MAX_BATCH_COMMITS: usize = 1000;

impl CommitRequest {
    /// The binary form (`Content-Type: application/octet-stream`): TID (16)
    /// || merchant (32) || expiration_ms (u64 big-endian) || key (32) ||
    /// signature (64), 152 bytes; a batch is several of these end to end.
    /// A transport encoding only: what the signature covers is the
    /// labelled `acd/v1/key-commit` message (see `docs/formats.md`).
    pub fn to_bytes(&self) -> [u8; COMMIT_REQUEST_SIZE] {
        let mut out = [0u8; COMMIT_REQUEST_SIZE];
        out[..16].copy_from_slice(&self.tid.0);
        out[16..48].copy_from_slice(&self.merchant);
        out[48..56].copy_from_slice(&self.expiration_ms.to_be_bytes());
        out[56..88].copy_from_slice(&self.key);
        out[88..].copy_from_slice(&self.signature);
        out
    }

    /// Parses exactly one binary commit request.
    pub fn from_bytes(bytes: &[u8]) -> Result<CommitRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        let req = CommitRequest {
            tid: Tid(r.fixed("tid")?),
            merchant: r.fixed("merchant")?,
            expiration_ms: r.u64("expiration_ms")?,
            key: r.fixed("key")?,
            signature: r.fixed("signature")?,
        };
        r.finish()?;
        Ok(req)
    }

    /// Parses a binary batch: a whole number of requests, at least one and
    /// at most `max`.
    pub fn batch_from_bytes(bytes: &[u8], max: usize) -> Result<Vec<CommitRequest>, BatchError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(COMMIT_REQUEST_SIZE) {
            return Err(BatchError::Length(bytes.len()));
        }
        let n = bytes.len() / COMMIT_REQUEST_SIZE;
        if n > max {
            return Err(BatchError::TooMany { n, max });
        }
        bytes
            .chunks_exact(COMMIT_REQUEST_SIZE)
            .map(|c| CommitRequest::from_bytes(c).map_err(BatchError::Decode))
            .collect()
    }
}

/// Why a binary batch of commits is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(
        "a body of {0} bytes is not a whole number of {COMMIT_REQUEST_SIZE}-byte commit requests"
    )]
    Length(usize),
    #[error("{n} commits in one request; at most {max}")]
    TooMany { n: usize, max: usize },
    #[error(transparent)]
    Decode(DecodeError),
}

/// `POST /api/v1/commits` as JSON: several key commits at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBatch {
    pub commits: Vec<CommitRequest>,
}

/// The answer to `POST /api/v1/commits`: one result per commit, in the
/// order sent; each is what `POST /api/v1/commit` would have answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBatchResponse {
    pub results: Vec<CommitResult>,
}

/// One commit's result in a batch: its entry proof, or the refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<EntryProof>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `POST /api/v1/abort`: the bank's escrow notice for a TID past its
/// expiration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    pub tid: Tid,
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    pub expiration_ms: u64,
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// An entry with its inclusion proof under a signed checkpoint: the answer to
/// an append, to `GET /tx/<TID>` (Q1/Q2) and to inclusion queries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryProof {
    pub index: u64,
    pub tid: Tid,
    pub outcome: Outcome,
    pub timestamp_ms: u64,
    /// The leaf bytes, as in the entry bundles.
    #[serde(with = "hex_vec")]
    pub entry: Vec<u8>,
    #[serde(with = "hex_array")]
    pub leaf_hash: Hash,
    pub tree_size: u64,
    #[serde(with = "hex_hashes")]
    pub inclusion: Vec<Hash>,
    /// Signed note of a checkpoint of `tree_size` entries.
    pub checkpoint: String,
}

/// `GET /api/v1/consistency?from=M&to=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    #[serde(with = "hex_hashes")]
    pub proof: Vec<Hash>,
}

/// One entry of `GET /api/v1/entries?start=S&end=E`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedEntry {
    pub index: u64,
    #[serde(with = "hex_vec")]
    pub entry: Vec<u8>,
}

/// `GET /api/v1/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entries {
    pub entries: Vec<IndexedEntry>,
}

/// Every API error: a stable machine-readable code, a sentence for people,
/// and for 409 conflicts the outcome already recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<Box<EntryProof>>,
}

/// Serde for fixed-size byte arrays as lowercase hex.
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|_| serde::de::Error::custom(format!("expected {} hex digits", 2 * N)))?;
        Ok(out)
    }
}

/// Serde for byte strings as lowercase hex.
pub mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde for lists of hashes as lists of hex strings.
pub mod hex_hashes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::merkle::Hash;

    pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(hex::encode).collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| serde::de::Error::custom("expected 64 hex digits"))?;
                Ok(out)
            })
            .collect()
    }
}

/// Serde for large byte strings (goods) as standard base64.
pub mod base64_vec {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// Serde for lists of byte strings as lists of hex strings.
pub mod hex_vecs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(hex::encode).collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(b: u8) -> CommitRequest {
        CommitRequest {
            tid: Tid([b; 16]),
            merchant: [b.wrapping_add(1); 32],
            expiration_ms: 0x0102_0304_0506_0708,
            key: [b.wrapping_add(2); 32],
            signature: [b.wrapping_add(3); 64],
        }
    }

    #[test]
    fn the_binary_commit_layout_is_fixed() {
        // Field order and widths as docs/formats.md gives them.
        let bytes = request(0x10).to_bytes();
        assert_eq!(bytes.len(), 152);
        assert_eq!(bytes[..16], [0x10; 16]);
        assert_eq!(bytes[16..48], [0x11; 32]);
        assert_eq!(bytes[48..56], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(bytes[56..88], [0x12; 32]);
        assert_eq!(bytes[88..], [0x13; 64]);
    }

    #[test]
    fn batches_are_whole_and_bounded() {
        let mut body = request(1).to_bytes().to_vec();
        body.extend(request(2).to_bytes());
        assert_eq!(
            CommitRequest::batch_from_bytes(&body, 2).unwrap(),
            vec![request(1), request(2)]
        );
        assert_eq!(
            CommitRequest::batch_from_bytes(&body, 1),
            Err(BatchError::TooMany { n: 2, max: 1 })
        );
        assert_eq!(
            CommitRequest::batch_from_bytes(&body[..200], 2),
            Err(BatchError::Length(200))
        );
        assert_eq!(
            CommitRequest::batch_from_bytes(&[], 2),
            Err(BatchError::Length(0))
        );
    }

    proptest! {
        // Any request round-trips; any other length is refused, never a panic.
        #[test]
        fn binary_commits_round_trip(
            tid in any::<[u8; 16]>(),
            merchant in any::<[u8; 32]>(),
            expiration_ms in any::<u64>(),
            key in any::<[u8; 32]>(),
            sig in proptest::collection::vec(any::<u8>(), 64),
            junk in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&sig);
            let req = CommitRequest { tid: Tid(tid), merchant, expiration_ms, key, signature };
            prop_assert_eq!(CommitRequest::from_bytes(&req.to_bytes()).unwrap(), req);
            if junk.len() != COMMIT_REQUEST_SIZE {
                prop_assert!(CommitRequest::from_bytes(&junk).is_err());
            }
            let _ = CommitRequest::batch_from_bytes(&junk, 2);
        }
    }
}
