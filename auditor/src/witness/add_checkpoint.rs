//! C2SP tlog-witness `add-checkpoint`: cosign a log's checkpoint only with
//! a valid consistency proof from the one cosigned before (tlog-cosignature
//! v1). Checking the old size and persisting the new checkpoint happen
//! under one lock, so two racing requests cannot roll the witness back.

use std::time::{SystemTime, UNIX_EPOCH};

use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::evidence::Evidence;
use acd_core::merkle;
use acd_core::witness::AddCheckpoint;

use super::{CONFIRMED_LIMIT, Latest, Witness, WitnessError, encode_latest, parse_body};
use crate::metrics::inc;

impl Witness {
    /// Records a refused, contradicting request (stored with the note it
    /// contradicts) and returns it as evidence.
    fn keep_evidence(
        &self,
        origin: &str,
        stored: &Latest,
        request: &AddCheckpoint,
        signed: &SignedCheckpoint,
    ) -> Option<Evidence> {
        inc(&self.metrics.checkpoints_refused);
        let evidence = parse_body(&stored.note).ok().map(|mine| {
            let proof = if mine.size == signed.checkpoint.size {
                Vec::new()
            } else {
                request.proof.clone()
            };
            Evidence::contradiction(
                origin,
                (&mine, &stored.note),
                (&signed.checkpoint, &request.checkpoint),
                proof,
                None,
            )
        });
        let mut key = origin.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(
            &SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_be_bytes(),
        );
        let text = format!(
            "cosigned checkpoint:\n{}\nrefused add-checkpoint request:\n{}",
            stored.note,
            request.to_body()
        );
        let saved = self
            .evidence
            .insert(key, text.as_bytes())
            .and_then(|_| self.db.flush());
        if let Err(e) = saved {
            tracing::error!(error = %e, "cannot store evidence");
        }
        tracing::warn!(
            origin,
            "refused a checkpoint inconsistent with the cosigned one; evidence kept"
        );
        evidence
    }

    /// Whether a refused checkpoint should still be checked against the
    /// log's own consistency proof: once per checkpoint, so that requests
    /// replaying one bad proof do not make the witness hammer the log.
    pub fn should_confirm(&self, origin: &str, c: &Checkpoint) -> bool {
        if self.log_url(origin).is_none() {
            return false;
        }
        let mut key = origin.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&c.size.to_be_bytes());
        key.extend_from_slice(&c.root);
        let mut seen = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= CONFIRMED_LIMIT {
            seen.clear();
        }
        seen.insert(key)
    }

    /// Handles one `add-checkpoint` body; returns the cosignature lines.
    pub fn add_checkpoint(&self, body: &str) -> Result<String, WitnessError> {
        let request =
            AddCheckpoint::parse(body).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let first = request.checkpoint.lines().next().unwrap_or_default();
        let log = self
            .logs
            .get(first)
            .ok_or_else(|| WitnessError::UnknownOrigin(first.to_owned()))?;
        let signed = SignedCheckpoint::open(&request.checkpoint, log).map_err(|e| match e {
            acd_core::checkpoint::CheckpointError::Note(_) => {
                WitnessError::Unsigned(first.to_owned())
            }
            other => WitnessError::Malformed(other.to_string()),
        })?;
        inc(&self.metrics.checkpoints_verified);
        if let Some(record) = self.frozen.get(first)? {
            return Err(WitnessError::Frozen {
                origin: first.to_owned(),
                evidence_file: record.evidence_file,
            });
        }
        let (old, size, root) = (
            request.old_size,
            signed.checkpoint.size,
            signed.checkpoint.root,
        );
        if old > size {
            return Err(WitnessError::OldTooLarge { old, size });
        }
        // A checkpoint this key type cannot cosign (ML-DSA-44 does not cover
        // extension lines) is refused before anything is recorded.
        self.cosigner
            .can_cosign(&signed.note.text)
            .map_err(|e| WitnessError::Malformed(format!("cannot cosign this checkpoint: {e}")))?;

        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let stored = self.latest(first)?;
        let latest_size = stored.as_ref().map(|l| l.size).unwrap_or(0);
        if old != latest_size {
            return Err(WitnessError::SizeMismatch {
                old,
                latest: latest_size,
            });
        }
        match &stored {
            // Two checkpoints the log signed, of one size, with two roots:
            // conclusive on their own, whoever sent the second one.
            Some(s) if s.size == size && s.root != root => {
                if let Some(evidence) = self.keep_evidence(first, s, &request, &signed)
                    && !self.frozen.acknowledged(first, &signed.checkpoint)?
                {
                    self.freeze(&evidence)?;
                }
                return Err(WitnessError::RootMismatch { size });
            }
            Some(s) if s.size == size => {}
            // Every tree extends the empty one; the spec requires no proof.
            _ if old == 0 && !request.proof.is_empty() => {
                return Err(WitnessError::Inconsistent {
                    old,
                    size,
                    reason: "the proof must be empty from size 0".into(),
                });
            }
            _ if old == 0 => {}
            Some(s) => {
                if let Err(e) =
                    merkle::verify_consistency(s.size, size, &request.proof, &s.root, &root)
                {
                    // Anyone may send a signed checkpoint with a wrong proof,
                    // so this alone freezes nothing; the server asks the log
                    // for its own proof (see `crate::gossip::confirm`).
                    if let Some(evidence) = self.keep_evidence(first, s, &request, &signed) {
                        self.write_evidence(&evidence);
                    }
                    return Err(WitnessError::Inconsistent {
                        old,
                        size,
                        reason: e.to_string(),
                    });
                }
            }
            None => {}
        }
        // Keep the checkpoint as the log signed it: its text and the log's
        // own signature, not what else a sender attached (a repeated line,
        // other keys' lines), which gossip would otherwise pass on.
        let mut note = signed.note.clone();
        note.signatures
            .retain(|s| s.name == log.name() && s.key_id == log.key_id());
        note.signatures.truncate(1);
        let latest = Latest {
            size,
            root,
            note: note.to_text(),
        };
        self.latest
            .insert(first.as_bytes(), encode_latest(&latest))?;
        self.db.flush()?;
        drop(_guard);
        // Signed outside the lock (ML-DSA-44 signing takes half a
        // millisecond), once the record is durable; `can_cosign` above
        // made sure it signs.
        let line = self
            .cosigner
            .cosign(&signed.note.text, self.clock.now_ms() / 1000)
            .map_err(|e| WitnessError::Malformed(format!("cannot cosign this checkpoint: {e}")))?;
        inc(&self.metrics.cosignatures);
        Ok(line.to_line())
    }
}
