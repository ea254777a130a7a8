//! The expiry sweeper: every sweep interval, each escrow still `Escrowed`
//! whose expiration has passed is aborted at its log with the bank's
//! escrow notice (the abort step of paper figure 2).
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
//!   that does not check: logged at warn, retried next round.

use std::sync::Arc;
use std::time::Duration;

use acd_client::ClientError;
use acd_core::entry::LogEntry;
use acd_core::log_api::{AbortRequest, EntryProof};
use acd_core::proof::WitnessPolicy;
use tokio::sync::watch;

use crate::BankState;
use crate::error::ApiError;
use crate::ledger::Op;
use crate::logs;
use crate::records::Escrow;

/// Most escrows handled in one round.
const ROUND_LIMIT: usize = 1000;

/// Runs rounds every `interval` until `stop` turns true.
pub async fn run(state: Arc<BankState>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => sweep_once(&state).await,
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// One round over the escrows due now.
pub async fn sweep_once(state: &Arc<BankState>) {
    let due = match state.ledger.due(state.now_ms(), ROUND_LIMIT) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "sweeper: cannot read the due escrows");
            return;
        }
    };
    for escrow in due {
        let tid = escrow.terms.tid;
        if let Err(e) = settle(state, &escrow).await {
            tracing::warn!(%tid, error = %e, "sweeper: escrow not settled; retrying next round");
        }
    }
}

async fn settle(state: &Arc<BankState>, escrow: &Escrow) -> Result<(), ApiError> {
    let terms = &escrow.terms;
    let peer = state.logs.get(&terms.log_origin).ok_or_else(|| {
        ApiError::unavailable("untrusted_log", "the escrow's log is no longer configured")
    })?;
    let req = AbortRequest {
        tid: terms.tid,
        merchant: terms.merchant,
        expiration_ms: terms.expiration_ms,
        bank: state.public,
        signature: escrow.response.notice_signature,
    };
    match peer.client.abort(&req).await {
        Ok(verified) => record_outcome(state, escrow, &verified.proof).await,
        Err(ClientError::Refused { status: 409, body }) => match body.existing {
            Some(existing) => record_outcome(state, escrow, &existing).await,
            None => Err(ApiError::unavailable(
                "log_conflict",
                "the log refused the abort without showing the existing outcome",
            )),
        },
        Err(ClientError::Refused { status, body }) => Err(ApiError::unavailable(
            "log_refused",
            format!("the log refused the abort ({status} {})", body.error),
        )),
        Err(e) => Err(ApiError::unavailable("log_unreachable", e.to_string())),
    }
}

/// Records what the log holds for the escrow's TID: an abort on our
/// notice, or a commit (pay the merchant).
async fn record_outcome(
    state: &Arc<BankState>,
    escrow: &Escrow,
    proof: &EntryProof,
) -> Result<(), ApiError> {
    let is_commit = matches!(
        acd_core::entry::LogEntry::decode(&proof.entry),
        Ok(LogEntry::Commit { .. })
    );
    // A payment needs the full policy; an abort only keeps money escrowed
    // for Q, so the log's signature suffices.
    let none = WitnessPolicy::none();
    let policy = if is_commit { &state.policy } else { &none };
    let proven = logs::prove(&state.logs, &state.http, proof, policy).await?;
    let t = &escrow.terms;
    if proven.entry.tid() != t.tid
        || proven.entry.merchant() != t.merchant
        || proven.entry.expiration_ms() != t.expiration_ms
        || proven.origin != t.log_origin
        || !proven.entry.timely()
    {
        return Err(ApiError::bad(
            "entry_mismatch",
            "the log's entry for the TID does not match the escrow",
        ));
    }
    let op = match proven.entry {
        LogEntry::Commit {
            tid,
            merchant,
            expiration_ms,
            ..
        } => Op::Deposit {
            tid,
            merchant,
            expiration_ms,
            log_origin: proven.origin,
        },
        LogEntry::Abort { bank, tid, .. } if bank == state.public => Op::AbortLogged {
            tid,
            proof: Box::new(proof.clone()),
        },
        LogEntry::Abort { .. } => {
            return Err(ApiError::bad(
                "not_abort",
                "the abort was logged on another bank's notice",
            ));
        }
    };
    let paid = matches!(op, Op::Deposit { .. });
    state.writer.submit(op, proven.checkpoint).await?;
    if paid {
        tracing::info!(tid = %t.tid, "sweeper: paid the merchant on a commit found at expiry");
    } else {
        tracing::info!(tid = %t.tid, "sweeper: abort logged");
    }
    Ok(())
}
