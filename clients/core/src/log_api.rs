//! JSON bodies of the log's HTTP API (everything outside the C2SP read
//! path), shared by the log server and its clients. Binary fields are
//! lowercase hex; checkpoints are the signed-note text as served at
//! `/checkpoint`.

use serde::{Deserialize, Serialize};

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
