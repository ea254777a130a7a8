//! The merchant's shared state, which every handler and the background
//! task use: keys, the bank and the log, the catalog and the store.

use std::sync::Arc;
use std::time::Duration;

use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_core::bank_api::{Catalog, CatalogItem, Delivery};
use ed25519_dalek::SigningKey;

use crate::clock::Clock;
use crate::config::{Behaviour, CatalogEntry};
use crate::error::ApiError;
use crate::locks::TidLocks;
use crate::store::{Purchase, Store};

pub struct Shop {
    pub signing: SigningKey,
    /// The merchant's public key.
    pub merchant: [u8; 32],
    /// The bank's public key.
    pub bank: [u8; 32],
    pub log_origin: String,
    pub log: LogClient,
    pub bank_client: BankClient,
    pub catalog: Vec<CatalogEntry>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub offer_lifetime: Duration,
    pub retry_interval: Duration,
    pub behaviour: Behaviour,
    pub max_body_bytes: usize,
    /// Serializes work on one purchase (offer state, escrow, commit).
    pub locks: TidLocks,
    /// Serializes deposits of one purchase.
    pub deposit_locks: TidLocks,
    /// What `/metrics` serves.
    pub metrics: crate::metrics::MerchantMetrics,
}

impl Shop {
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn item(&self, id: &str) -> Option<&CatalogEntry> {
        self.catalog.iter().find(|e| e.id == id)
    }

    /// `GET /api/v1/catalog`.
    pub fn public_catalog(&self) -> Catalog {
        Catalog {
            merchant: self.merchant,
            bank: self.bank,
            log_origin: self.log_origin.clone(),
            items: self
                .catalog
                .iter()
                .map(|e| CatalogItem {
                    id: e.id.clone(),
                    description: e.description.clone(),
                    price: e.price,
                })
                .collect(),
        }
    }

    /// P6: the committed key and its commit proof, for a committed purchase.
    pub fn deliver(&self, p: &Purchase) -> Result<Delivery, ApiError> {
        let (Some(escrow), Some(commit)) = (&p.escrow, &p.commit) else {
            return Err(ApiError::not_found(
                "not_committed",
                format!("no key has been committed for TID {}", p.tid()),
            ));
        };
        if self.behaviour.withhold_key {
            return Err(ApiError::unavailable(
                "key_withheld",
                "the key is not available from the merchant; it is in the log",
            ));
        }
        Ok(Delivery {
            key: escrow.commit_key,
            commit: commit.clone(),
        })
    }
}
