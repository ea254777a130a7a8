//! Running a purchase to its end: [`Wallet::step`] runs the next step for
//! a purchase's state, [`Wallet::drive`] runs steps until it is final (and
//! cancels when a failure left nothing at stake), and [`Wallet::resume`]
//! finishes whatever a crash or an outage left: pending withdrawals and
//! unfinished purchases.

use acd_core::purchase::RefundReason;

use crate::error::WalletError;
use crate::file::PurchaseState;
use crate::report::{PurchaseOutcome, PurchaseReport, ResumeReport, Step};
use crate::wallet::Wallet;

impl Wallet {
    /// Runs the next step for the purchase's state.
    pub async fn step(&mut self, id: u64, wait: bool) -> Result<Vec<Step>, WalletError> {
        Ok(match self.purchase(id)?.state {
            PurchaseState::Registering => vec![self.register(id).await?],
            PurchaseState::Registered => vec![self.request_offer(id).await?],
            PurchaseState::Offered | PurchaseState::Spending => vec![self.spend(id).await?],
            PurchaseState::Escrowed => self.deliver(id).await?,
            PurchaseState::AwaitingOutcome => self.settle(id, wait).await?,
            PurchaseState::Refunding => vec![self.refund(id).await?],
            PurchaseState::Unwritten => vec![self.write_goods(id, None)?],
            PurchaseState::Delivered | PurchaseState::Refunded | PurchaseState::Cancelled => {
                vec![]
            }
        })
    }

    /// Runs the steps of purchase `id` until it is final (or, without
    /// `wait`, until only waiting for the log is left). A failure before
    /// the spend, or the bank's refusal of the spend, cancels the purchase
    /// and is returned; other failures leave it for [`Wallet::resume`].
    pub async fn drive(&mut self, id: u64, wait: bool) -> Result<PurchaseReport, WalletError> {
        let mut steps = Vec::new();
        loop {
            let state = self.purchase(id)?.state;
            if state.is_final() {
                break;
            }
            match self.step(id, wait).await {
                Ok(s) => steps.extend(s),
                Err(e) => {
                    // The state the failure left (a spend saves `spending`
                    // before it sends), not the one it started from.
                    let cancel = match self.purchase(id)?.state {
                        PurchaseState::Registering
                        | PurchaseState::Registered
                        | PurchaseState::Offered => true,
                        PurchaseState::Spending => e.is_refusal(),
                        _ => false,
                    };
                    if cancel {
                        self.cancel(id, &e.to_string())?;
                    }
                    return Err(e);
                }
            }
            if !wait && self.purchase(id)?.state == PurchaseState::AwaitingOutcome {
                break;
            }
        }
        let r = self.purchase(id)?;
        let outcome = match r.state {
            PurchaseState::Delivered => PurchaseOutcome::Delivered {
                path: self.resolve(&r.out_path),
                bytes: std::fs::metadata(self.resolve(&r.out_path))
                    .map(|m| m.len() as usize)
                    .unwrap_or(0),
            },
            PurchaseState::Refunded => PurchaseOutcome::Refunded {
                reason: r
                    .refund
                    .as_ref()
                    .map(|p| p.reason)
                    .unwrap_or(RefundReason::Abort),
                amount: r.price,
            },
            PurchaseState::Cancelled => PurchaseOutcome::Cancelled {
                reason: r.note.clone().unwrap_or_default(),
            },
            state => PurchaseOutcome::Pending { state },
        };
        Ok(PurchaseReport {
            id,
            tid: r.tid(),
            steps,
            outcome,
        })
    }

    /// Finishes every pending withdrawal and drives every unfinished
    /// purchase (see [`Wallet::drive`]); without `wait`, purchases still
    /// waiting for the log's outcome are left pending.
    pub async fn resume(&mut self, wait: bool) -> ResumeReport {
        let mut report = ResumeReport::default();
        let ids: Vec<[u8; 16]> = self.data.withdrawals.iter().map(|w| w.request_id).collect();
        for id in ids {
            report.withdrawals.push(self.finish_withdrawal(&id).await);
        }
        let ids: Vec<u64> = self
            .data
            .purchases
            .iter()
            .filter(|p| !p.state.is_final())
            .map(|p| p.id)
            .collect();
        for id in ids {
            let r = self.drive(id, wait).await;
            report.purchases.push((id, r));
        }
        report
    }
}
