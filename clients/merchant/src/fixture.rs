//! Test support for the engine's unit tests: a merchant opened without a
//! bank (its key given) on a log URL that leads nowhere, with a seeded
//! generator, and the bank's signature on an offer's terms.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use acd_core::bank_api::{LogInfo, OfferRequest, OfferResponse, PurchaseRequest};
use acd_core::note::NoteSigner;
use ed25519_dalek::SigningKey;
use rand::SeedableRng;

use crate::clock::SystemClock;
use crate::shop::Shop;
use crate::store::Purchase;
use crate::{Behaviour, CatalogEntry, Merchant, MerchantConfig};

pub const GOODS: &[u8] = b"the goods: a song in MP3";

pub fn bank() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

pub fn customer() -> [u8; 32] {
    SigningKey::from_bytes(&[12; 32]).verifying_key().to_bytes()
}

/// A configuration in `dir`; deposits go to `bank_url`, commits to a log
/// nobody listens for (port 1).
pub fn config(dir: &Path, bank_url: &str, behaviour: Behaviour) -> MerchantConfig {
    let goods = dir.join("song.mp3");
    std::fs::write(&goods, GOODS).unwrap();
    let log = NoteSigner::new("log.test/merchant", SigningKey::from_bytes(&[13; 32])).unwrap();
    let mut c = MerchantConfig::new(
        dir.join("merchant"),
        bank_url.into(),
        LogInfo {
            vkey: log.verifier().vkey(),
            url: "http://127.0.0.1:1".into(),
        },
        vec![CatalogEntry {
            id: "song".into(),
            description: "a song".into(),
            price: 250,
            file: goods,
        }],
    );
    c.bank_key = Some(bank().verifying_key().to_bytes());
    // sled, or PostgreSQL when the suite runs on it (ACD_TEST_BACKEND).
    c.database = acd_testkit::pgdb::backend_database(&c.data).map(|u| u.parse().unwrap());
    c.behaviour = behaviour;
    c
}

/// The engine of a merchant whose randomness comes from `seed`.
pub async fn shop(dir: &Path, bank_url: &str, behaviour: Behaviour, seed: u64) -> Arc<Shop> {
    let rng = Box::new(rand::rngs::StdRng::seed_from_u64(seed));
    let m = Merchant::open_with(config(dir, bank_url, behaviour), Arc::new(SystemClock), rng)
        .await
        .unwrap();
    m.shop().clone()
}

/// P1 for the song, to [`customer`].
pub async fn offer(shop: &Shop) -> OfferResponse {
    shop.offer(OfferRequest {
        item: "song".into(),
        customer: customer(),
    })
    .await
    .unwrap()
}

/// The bank's escrow terms for `o`, as P2 leaves them with the customer.
pub fn terms(o: &OfferResponse) -> PurchaseRequest {
    let terms = o.offer.offer.terms();
    PurchaseRequest {
        terms_signature: terms.sign(&bank()),
        terms,
    }
}

/// The record an escrow for `o` starts from (not stored).
pub fn record(shop: &Shop, o: &OfferResponse) -> Purchase {
    Purchase {
        terms: o.offer.offer.terms(),
        key: shop.offer_secret.goods_key(&o.offer.offer.tid),
        escrow: None,
        commit: None,
        deposit: None,
        abort: None,
        unpaid: None,
        conflict: None,
    }
}
