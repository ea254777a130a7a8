//! Abort at expiry (the abort step of paper figure 2): an escrow still
//! `Escrowed` after its expiration is aborted at its log with the bank's
//! escrow notice. The sweeper ([`crate::sweeper`]) runs this step for each
//! escrow due.
//!
//! - The log appends the abort: the bank checks the proof (log signature,
//!   inclusion, consistency with its view; the witness policy is not
//!   required of a proof the log just made) and records `AbortLogged`, so
//!   Q can be refunded without showing the abort itself.
//! - The log answers 409 with a commit: the merchant committed in time and
//!   has not deposited yet. On that proof (witness policy applied) the bank
//!   pays the merchant exactly as a deposit would: payment on positive
//!   proof of commit, never on silence.
//! - `not_expired` (the log's clock is behind), network trouble, a proof
//!   that does not check: an error, and the sweeper retries next round.

use acd_client::ClientError;
use acd_core::entry::{LogEntry, Tid};
use acd_core::error::DomainError;
use acd_core::log_api::{AbortRequest, EntryProof};
use acd_core::proof::WitnessPolicy;

use super::BankState;
use super::deposit::DepositOp;
use crate::ledger::{LedgerOp, Tx, wrong_state};
use crate::logs;
use crate::records::{Escrow, EscrowStatus, due_key};

/// How an expired escrow was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aborted {
    /// The log holds the abort: Q may be refunded.
    AbortLogged,
    /// The log holds a commit made in time: the merchant was paid.
    Paid,
}

/// Record the abort the log proved for an open escrow.
#[derive(Debug, Clone)]
pub struct AbortLoggedOp {
    pub tid: Tid,
    pub proof: Box<EntryProof>,
}

impl BankState {
    /// Asks the escrow's log to abort it, and records what the log holds.
    pub async fn abort_expired(&self, escrow: &Escrow) -> Result<Aborted, DomainError> {
        let terms = &escrow.terms;
        let peer = self.logs.get(&terms.log_origin).ok_or_else(|| {
            DomainError::unavailable("untrusted_log", "the escrow's log is no longer configured")
        })?;
        let req = AbortRequest {
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            bank: self.public,
            signature: escrow.response.notice_signature,
        };
        match peer.client.abort(&req).await {
            Ok(verified) => self.record_outcome(escrow, &verified.proof).await,
            Err(ClientError::Refused { status: 409, body }) => match body.existing {
                Some(existing) => self.record_outcome(escrow, &existing).await,
                None => Err(DomainError::unavailable(
                    "log_conflict",
                    "the log refused the abort without showing the existing outcome",
                )),
            },
            Err(ClientError::Refused { status, body }) => Err(DomainError::unavailable(
                "log_refused",
                format!("the log refused the abort ({status} {})", body.error),
            )),
            Err(e) => Err(DomainError::unavailable("log_unreachable", e.to_string())),
        }
    }

    /// Records what the log holds for the escrow's TID: an abort on our
    /// notice, or a commit (pay the merchant).
    pub async fn record_outcome(
        &self,
        escrow: &Escrow,
        proof: &EntryProof,
    ) -> Result<Aborted, DomainError> {
        let is_commit = matches!(LogEntry::decode(&proof.entry), Ok(LogEntry::Commit { .. }));
        // A payment needs the full policy; an abort only keeps money escrowed
        // for Q, so the log's signature suffices.
        let none = WitnessPolicy::none();
        let policy = if is_commit { &self.policy } else { &none };
        let proven = logs::prove(&self.logs, &self.http, proof, policy).await?;
        let t = &escrow.terms;
        if proven.entry.tid() != t.tid
            || proven.entry.merchant() != t.merchant
            || proven.entry.expiration_ms() != t.expiration_ms
            || proven.origin != t.log_origin
            || !proven.entry.timely()
        {
            return Err(DomainError::bad(
                "entry_mismatch",
                "the log's entry for the TID does not match the escrow",
            ));
        }
        match proven.entry {
            LogEntry::Commit {
                tid,
                merchant,
                expiration_ms,
                ..
            } => {
                let op = DepositOp {
                    tid,
                    merchant,
                    expiration_ms,
                    log_origin: proven.origin,
                };
                self.writer.submit(op, proven.checkpoint).await?;
                tracing::info!(tid = %t.tid, "sweeper: paid the merchant on a commit found at expiry");
                Ok(Aborted::Paid)
            }
            LogEntry::Abort { bank, tid, .. } if bank == self.public => {
                let op = AbortLoggedOp {
                    tid,
                    proof: Box::new(proof.clone()),
                };
                self.writer.submit(op, proven.checkpoint).await?;
                tracing::info!(tid = %t.tid, "sweeper: abort logged");
                Ok(Aborted::AbortLogged)
            }
            LogEntry::Abort { .. } => Err(DomainError::bad(
                "not_abort",
                "the abort was logged on another bank's notice",
            )),
        }
    }
}

impl LedgerOp for AbortLoggedOp {
    type Reply = ();
    const KIND: &'static str = "abort_logged";

    fn apply(self, tx: &mut Tx<'_>) -> Result<(), DomainError> {
        let mut e = tx.escrow(&self.tid)?;
        match e.status {
            EscrowStatus::AbortLogged => Ok(()),
            EscrowStatus::Escrowed => {
                tx.delete(due_key(e.terms.expiration_ms, &self.tid));
                e.status = EscrowStatus::AbortLogged;
                e.abort = Some(*self.proof);
                tx.put_escrow(&e)?;
                Ok(())
            }
            _ => Err(wrong_state(
                &e,
                "an abort is recorded only for an open escrow",
            )),
        }
    }
}
