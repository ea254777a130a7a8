//! The merchant's engine state, which every protocol step ([`crate::offer`],
//! [`crate::purchase`], [`crate::deposit`]) and the background task share:
//! keys, the bank and the log, the catalog, the store, and the injected
//! clock and randomness. Nothing here knows about HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_core::bank_api::{Catalog, CatalogItem};
use acd_core::entry::Tid;
use acd_core::error::DomainError;
use ed25519_dalek::SigningKey;
use rand_core::Rng as _;

use crate::clock::Clock;
use crate::config::CatalogEntry;
use crate::goods_cache::GoodsCache;
use crate::locks::TidLocks;
use crate::misbehave::Behaviour;
use crate::offer_secret::OfferSecret;
use crate::store::{Purchase, Store};

/// Where the merchant draws its randomness (TIDs, goods keys): the
/// operating system's generator unless a test injects a seeded one.
pub type Rng = Box<dyn rand_core::CryptoRng + Send>;

/// The operating system's generator.
pub fn os_rng() -> Rng {
    Box::new(rand_core::UnwrapErr(rand::rngs::SysRng))
}

pub struct Shop {
    pub signing: SigningKey,
    /// Tags the offers' TIDs and derives their goods keys.
    pub offer_secret: OfferSecret,
    /// The catalog's goods, read once.
    pub goods: Arc<GoodsCache>,
    /// The merchant's public key.
    pub merchant: [u8; 32],
    /// The bank's public key.
    pub bank: [u8; 32],
    pub log_origin: String,
    pub log: LogClient,
    /// The log's base URL (probed by `/readyz`).
    pub log_url: String,
    pub bank_client: BankClient,
    pub catalog: Vec<CatalogEntry>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub rng: Mutex<Rng>,
    pub offer_lifetime: Duration,
    pub retry_interval: Duration,
    pub behaviour: Behaviour,
    pub max_body_bytes: usize,
    /// Serializes work on one purchase (offer state, escrow, commit).
    pub locks: TidLocks,
    /// Serializes deposits of one purchase.
    pub deposit_locks: TidLocks,
    /// The deposits started after a purchase, which a shutdown waits for.
    pub deposits: tokio_util::task::TaskTracker,
    /// What `/metrics` serves.
    pub metrics: crate::metrics::MerchantMetrics,
}

impl Shop {
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Fills `buf` from the injected generator.
    pub fn fill(&self, buf: &mut [u8]) {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.fill_bytes(buf);
    }

    /// A random key from the injected generator (the `bogus_key`
    /// misbehaviour commits one).
    pub fn fresh_key(&self) -> [u8; 32] {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        acd_core::goods::fresh_key(&mut **rng)
    }

    pub fn item(&self, id: &str) -> Option<&CatalogEntry> {
        self.catalog.iter().find(|e| e.id == id)
    }

    /// What `GET /api/v1/catalog` shows: the items, without their files.
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

    /// The record of `tid`, or 404 `unknown_tid`.
    pub async fn known(&self, tid: &Tid) -> Result<Purchase, DomainError> {
        self.store.get(tid).await?.ok_or_else(|| unknown_tid(tid))
    }
}

/// 404 `unknown_tid`: no escrowed purchase, nor an offer on the terms given.
pub fn unknown_tid(tid: &Tid) -> DomainError {
    DomainError::not_found(
        "unknown_tid",
        format!("no purchase with TID {tid}, nor an offer with it on these terms"),
    )
}
