//! The merchant's configuration: one struct whose field docs are the
//! operator's manual, and the catalog file (`catalog.example.toml`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_core::bank_api::LogInfo;
use serde::Deserialize;

/// Everything [`crate::Merchant::open`] needs.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    /// Directory holding the merchant's signing key (`merchant.key`, mode
    /// 0600, created on first start) and its database (`db/`: offers,
    /// escrowed purchases, commit proofs, deposits). Back it up: the key is
    /// the identity the bank pays, the database holds the goods keys of
    /// purchases not yet committed.
    pub data: PathBuf,
    /// The bank's base URL: its public key and trusted logs are read from
    /// `GET /api/v1/info` at start-up, deposits go to `POST /api/v1/deposit`.
    pub bank_url: String,
    /// The bank's ed25519 key, when known out of band. With it, start-up
    /// does not ask the bank (so the merchant starts while the bank is
    /// down) and does not check that the bank trusts `log`.
    pub bank_key: Option<[u8; 32]>,
    /// The log that serializes this merchant's purchases: its signed-note
    /// verifier key (`<origin>+<id>+<base64>`) and base URL. The bank must
    /// trust it.
    pub log: LogInfo,
    /// What is for sale.
    pub catalog: Vec<CatalogEntry>,
    /// How long an offer stays open: its expiration is the time of the offer
    /// plus this. The customer must get the bank's escrow and the merchant
    /// must commit before then. Must lie within the bank's escrow bounds.
    pub offer_lifetime: Duration,
    /// How often the background task retries commits that failed (log
    /// unreachable) and deposits the bank has not accepted yet.
    pub retry_interval: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deliberate misbehaviour, for tests and the demo only.
    pub behaviour: Behaviour,
}

impl MerchantConfig {
    /// A configuration with every default.
    pub fn new(data: PathBuf, bank_url: String, log: LogInfo, catalog: Vec<CatalogEntry>) -> Self {
        MerchantConfig {
            data,
            bank_url,
            bank_key: None,
            log,
            catalog,
            offer_lifetime: Duration::from_secs(60),
            retry_interval: Duration::from_secs(5),
            max_body_bytes: 16 * 1024,
            behaviour: Behaviour::default(),
        }
    }
}

/// One item for sale.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The id customers ask for in an offer request.
    pub id: String,
    /// What the customer sees and the offer carries (at most
    /// [`acd_core::purchase::MAX_DESCRIPTION`] bytes of UTF-8).
    pub description: String,
    /// The price, in the bank's units.
    pub price: u64,
    /// The goods: this file's bytes, read anew for every offer. Relative
    /// paths in a catalog file are relative to the catalog file.
    pub file: PathBuf,
}

/// The catalog file: `[[items]]` tables of [`CatalogEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub items: Vec<CatalogEntry>,
}

impl CatalogFile {
    /// Parses catalog TOML; relative goods paths are joined to `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Vec<CatalogEntry>, toml::de::Error> {
        let file: CatalogFile = toml::from_str(text)?;
        Ok(file
            .items
            .into_iter()
            .map(|mut e| {
                if e.file.is_relative() {
                    e.file = base.join(&e.file);
                }
                e
            })
            .collect())
    }
}

/// Misbehaviour on purpose, so that tests and the demo can show that the
/// protocol protects the customer anyway. Reachable only from code: no flag
/// or file sets it. All false by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Commit k to the log, but answer the purchase (and delivery queries)
    /// with 503 and no key: the customer must read k from the log.
    pub withhold_key: bool,
    /// Accept the purchase but never commit (answer 503): the escrow
    /// expires and the bank aborts.
    pub never_commit: bool,
    /// Commit a random key instead of the k that encrypted the goods: the
    /// customer's dispute finds that the logged key does not decrypt.
    pub bogus_key: bool,
    /// Encrypt goods whose hash differs from the offer's plain-goods hash:
    /// the customer's dispute finds the wrong goods.
    pub wrong_goods: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The checked-in example catalog parses, and its relative paths are resolved against its directory.
    #[test]
    fn example_catalog_parses() {
        let text = include_str!("../catalog.example.toml");
        let items = CatalogFile::from_toml(text, Path::new("/srv/shop")).expect("parses");
        assert!(!items.is_empty());
        assert!(items.iter().all(|i| i.file.starts_with("/srv/shop")));
        assert!(CatalogFile::from_toml("[[items]]\nid = \"a\"\n", Path::new("/")).is_err());
    }
}
