//! Withdrawal (paper figure 1, steps 1 and 2): blind tokens of the bank's
//! denominations for an amount debited from the customer's identified
//! account. The blinding secrets are saved before a request is sent, so a
//! crash repeats the identical request (the bank answers a repeated request
//! id with the same signatures) and [`Wallet::resume`] finishes it.

use acd_core::bank_api::WithdrawRequest;
use acd_core::purchase::{MAX_ITEMS, Withdrawal};
use acd_core::token::BlindedToken;

use crate::coins::CoinError;
use crate::error::WalletError;
use crate::file::PendingWithdrawal;
use crate::report::WithdrawReport;
use crate::wallet::Wallet;

impl Wallet {
    /// Step 1 and 2: withdraws `amount` from the account as tokens of the
    /// bank's denominations (largest first), in requests of at most
    /// [`MAX_ITEMS`] tokens. The blinding secrets of all requests are saved
    /// before the first is sent.
    pub async fn withdraw(&mut self, amount: u64) -> Result<WithdrawReport, WalletError> {
        if amount == 0 {
            return Err(CoinError::Zero.into());
        }
        let blinded = self.blind_amount(amount)?;
        let mut ids = Vec::new();
        for chunk in blinded.chunks(MAX_ITEMS) {
            let mut request_id = [0u8; 16];
            self.fill(&mut request_id);
            let mut amount = 0;
            for b in chunk {
                amount += self.denomination(&b.denomination)?.value;
            }
            self.data.withdrawals.push(PendingWithdrawal {
                request_id,
                blinded: chunk.to_vec(),
                amount,
            });
            ids.push(request_id);
        }
        self.save()?;
        let mut report = WithdrawReport {
            amount,
            tokens: vec![],
            requests: 0,
        };
        for id in ids {
            let r = self.finish_withdrawal(&id).await?;
            report.tokens.extend(r.tokens);
            report.requests += 1;
        }
        Ok(report)
    }

    /// Sends (or repeats) one saved withdrawal and unblinds the answer. A
    /// refusal (4xx: unknown account, insufficient funds) debited nothing,
    /// so the pending withdrawal is dropped; an unanswered request stays for
    /// [`Wallet::resume`].
    pub async fn finish_withdrawal(
        &mut self,
        request_id: &[u8; 16],
    ) -> Result<WithdrawReport, WalletError> {
        let pending = self
            .data
            .withdrawals
            .iter()
            .find(|w| &w.request_id == request_id)
            .cloned()
            .ok_or_else(|| {
                WalletError::UnknownPurchase(format!("withdrawal {}", hex::encode(request_id)))
            })?;
        let withdrawal = Withdrawal {
            bank: self.data.bank.bank,
            account: self.account_key(),
            request_id: *request_id,
            blinded: pending.blinded.iter().map(BlindedToken::request).collect(),
        };
        let signature = withdrawal.sign(&self.signing_key());
        let answer = match self
            .bank
            .withdraw(&WithdrawRequest {
                withdrawal,
                signature,
            })
            .await
        {
            Ok(a) => a,
            Err(e) => {
                let e = WalletError::from(e);
                if e.is_refusal() {
                    self.data
                        .withdrawals
                        .retain(|w| &w.request_id != request_id);
                    self.save()?;
                }
                return Err(e);
            }
        };
        let tokens = self.unblind(&pending.blinded, &answer.blind_signatures)?;
        let values = tokens.iter().map(|t| t.value).collect();
        self.data
            .withdrawals
            .retain(|w| &w.request_id != request_id);
        self.data.tokens.extend(tokens);
        self.save()?;
        Ok(WithdrawReport {
            amount: pending.amount,
            tokens: values,
            requests: 1,
        })
    }
}
