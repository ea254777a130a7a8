//! The expiry sweeper: every sweep interval, each escrow still `Escrowed`
//! whose expiration has passed goes through the abort step
//! ([`crate::engine::abort`]) at its log. A failure (the log's clock is
//! behind, network trouble, a proof that does not check) is logged at warn
//! and retried next round.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::BankState;

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
        if let Err(e) = state.abort_expired(&escrow).await {
            tracing::warn!(%tid, error = %e, "sweeper: escrow not settled; retrying next round");
        }
    }
}
