//! Frozen origins: once the witness has found a split view of a log, it
//! refuses to cosign that log until an operator clears it. The state is in
//! the witness's sled database, so a restart stays frozen.
//!
//! Clearing acknowledges the checkpoints of the recorded evidence: the same
//! contradicting checkpoints, still held by a peer, do not freeze the
//! origin again; any new contradiction does.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use acd_core::checkpoint::Checkpoint;
use acd_core::evidence::{Evidence, Kind};
use acd_core::note::Note;
use serde::{Deserialize, Serialize};

/// Why an origin is frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenRecord {
    pub kind: Kind,
    /// Milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// The evidence file written, if any.
    pub evidence_file: Option<String>,
    /// The contradicting signed checkpoints.
    pub checkpoints: Vec<String>,
}

/// The frozen origins and the acknowledged checkpoints, in sled.
#[derive(Debug, Clone)]
pub struct Frozen {
    db: sled::Db,
    frozen: sled::Tree,
    acknowledged: sled::Tree,
}

fn ack_key(origin: &str, c: &Checkpoint) -> Vec<u8> {
    let mut k = origin.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&c.size.to_be_bytes());
    k.extend_from_slice(&c.root);
    k
}

fn body(note: &str) -> Option<Checkpoint> {
    Checkpoint::parse(&Note::parse(note).ok()?.text).ok()
}

impl Frozen {
    pub fn open(db: &sled::Db) -> sled::Result<Frozen> {
        Ok(Frozen {
            db: db.clone(),
            frozen: db.open_tree("frozen")?,
            acknowledged: db.open_tree("acknowledged")?,
        })
    }

    /// Opens the state of a stopped witness (`acd-auditor witness clear`).
    pub fn open_dir(dir: &Path) -> sled::Result<Frozen> {
        Frozen::open(&acd_serve::open_sled(&sled::Config::new().path(dir))?)
    }

    /// Freezes `origin` for `evidence`; false if it was frozen already (the
    /// first record is kept).
    pub fn freeze(&self, evidence: &Evidence, evidence_file: Option<&Path>) -> sled::Result<bool> {
        let record = FrozenRecord {
            kind: evidence.kind,
            since_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            evidence_file: evidence_file.map(|p| p.display().to_string()),
            checkpoints: evidence.checkpoints.clone(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let fresh = self
            .frozen
            .compare_and_swap(evidence.origin.as_bytes(), None::<&[u8]>, Some(value))?
            .is_ok();
        self.db.flush()?;
        Ok(fresh)
    }

    pub fn get(&self, origin: &str) -> sled::Result<Option<FrozenRecord>> {
        Ok(self
            .frozen
            .get(origin.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    pub fn is_frozen(&self, origin: &str) -> sled::Result<bool> {
        self.frozen.contains_key(origin.as_bytes())
    }

    /// The frozen origins with their records.
    pub fn list(&self) -> sled::Result<Vec<(String, FrozenRecord)>> {
        let mut out = Vec::new();
        for kv in self.frozen.iter() {
            let (k, v) = kv?;
            if let Ok(record) = serde_json::from_slice(&v) {
                out.push((String::from_utf8_lossy(&k).into_owned(), record));
            }
        }
        Ok(out)
    }

    pub fn count(&self) -> usize {
        self.frozen.len()
    }

    /// Unfreezes `origin` and acknowledges the checkpoints of its evidence;
    /// false if it was not frozen.
    pub fn clear(&self, origin: &str) -> sled::Result<bool> {
        let Some(old) = self.frozen.remove(origin.as_bytes())? else {
            return Ok(false);
        };
        if let Ok(record) = serde_json::from_slice::<FrozenRecord>(&old) {
            for c in record.checkpoints.iter().filter_map(|n| body(n)) {
                self.acknowledged.insert(ack_key(origin, &c), &[])?;
            }
        }
        self.db.flush()?;
        Ok(true)
    }

    /// Whether an operator already cleared evidence with this checkpoint.
    pub fn acknowledged(&self, origin: &str, c: &Checkpoint) -> sled::Result<bool> {
        self.acknowledged.contains_key(ack_key(origin, c))
    }
}
