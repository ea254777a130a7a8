//! Registration (paper figure 1, steps 3 and 4): the customer shows a token
//! and a fresh key Q; the bank binds the token to Q and signs a receipt
//! saying so. Only Q can then spend the token (P2), and a token binds to
//! one key only.

use std::sync::Arc;

use acd_core::bank_api::{RegisterRequest, SignedReceipt};
use acd_core::error::DomainError;
use acd_core::purchase::Receipt;

use super::{BankState, check_key};
use crate::ledger::{LedgerOp, Tx};
use crate::records::{self, Registration};

/// What a registration answers: the bank's receipt binding the token to Q.
pub type Registered = SignedReceipt;

/// The binding of a token to Q, with the receipt's signature.
#[derive(Debug, Clone)]
pub struct RegisterOp {
    pub token_id: [u8; 32],
    pub customer: [u8; 32],
    pub signature: [u8; 64],
}

impl BankState {
    /// `POST /api/v1/register`.
    pub async fn register(
        self: &Arc<Self>,
        req: RegisterRequest,
    ) -> Result<Registered, DomainError> {
        check_key(&req.customer, "the customer key Q")?;
        let token_id = req.token.id();
        self.verify_tokens(vec![req.token]).await?;
        let receipt = Receipt {
            bank: self.public,
            token_id,
            customer: req.customer,
        };
        let signature = receipt.sign(&self.signing);
        let op = RegisterOp {
            token_id,
            customer: req.customer,
            signature,
        };
        let signature = self.writer.submit(op, None).await?;
        Ok(SignedReceipt { receipt, signature })
    }
}

impl LedgerOp for RegisterOp {
    /// The receipt's signature: the first one, on a repeat.
    type Reply = [u8; 64];
    const KIND: &'static str = "register";

    fn apply(self, tx: &mut Tx<'_>) -> Result<[u8; 64], DomainError> {
        if tx.raw(&records::spent_key(&self.token_id))?.is_some() {
            return Err(DomainError::conflict("token_spent", "the token is spent"));
        }
        let key = records::registration_key(&self.token_id);
        if let Some(r) = tx.get::<Registration>(&key)? {
            return if r.customer == self.customer {
                Ok(r.signature)
            } else {
                Err(DomainError::conflict(
                    "already_registered",
                    "the token is registered to another key",
                ))
            };
        }
        tx.put(
            key,
            &Registration {
                customer: self.customer,
                signature: self.signature,
            },
        )?;
        Ok(self.signature)
    }
}
