//! The merchant's configuration: [`MerchantConfig`], what the library
//! opens with; [`MerchantConfigFile`], the TOML file an operator writes
//! (`merchant.example.toml`, read by `acd merchant serve --config FILE`),
//! whose field docs are the operator's manual; and the catalog file
//! (`catalog.example.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_core::bank_api::LogInfo;
use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// How long an offer stays open unless configured.
pub const DEFAULT_OFFER_LIFETIME_MS: u64 = 60_000;
/// How often pending work is retried unless configured.
pub const DEFAULT_RETRY_INTERVAL_MS: u64 = 5_000;
/// The largest request body unless configured.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything [`crate::Merchant::open`] needs.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    /// Directory holding the merchant's signing key (`merchant.key`, mode
    /// 0600, created on first start), its offer secret (`offer.secret`,
    /// likewise: it tags the offers' TIDs and derives their goods keys) and
    /// its database (`db/`: escrowed purchases, commit proofs, deposits;
    /// offers are not stored). Back it up: the key is the identity the bank
    /// pays, the offer secret is needed to honour offers already made.
    pub data: PathBuf,
    /// Keep the purchases in this PostgreSQL database (`postgres://...`)
    /// instead of `data/db/`; the data directory then holds only the keys.
    /// Any number of merchants started with the same data directory and
    /// database serve as one shop.
    pub database: Option<acd_serve::database_owner::DatabaseUrl>,
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
    /// Timeouts and the connection cap of the shop's HTTP server.
    pub http: acd_serve::HttpLimits,
    /// Deliberate misbehaviour, for tests and the demo only (the
    /// `misbehave` feature).
    #[cfg(any(test, feature = "misbehave"))]
    pub behaviour: crate::misbehave::Behaviour,
}

impl MerchantConfig {
    /// A configuration with every default.
    pub fn new(data: PathBuf, bank_url: String, log: LogInfo, catalog: Vec<CatalogEntry>) -> Self {
        MerchantConfig {
            data,
            database: None,
            bank_url,
            bank_key: None,
            log,
            catalog,
            offer_lifetime: Duration::from_millis(DEFAULT_OFFER_LIFETIME_MS),
            retry_interval: Duration::from_millis(DEFAULT_RETRY_INTERVAL_MS),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http: acd_serve::HttpLimits::default(),
            #[cfg(any(test, feature = "misbehave"))]
            behaviour: crate::misbehave::Behaviour::default(),
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
    /// The goods: this file's bytes, read once and kept in memory, read
    /// again when the file's size, modification time or inode changes.
    /// Relative paths in a catalog file are relative to the catalog file.
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

    /// Reads and parses the catalog file at `path`.
    pub fn load(path: &Path) -> Result<Vec<CatalogEntry>, ConfigError> {
        CatalogFile::from_toml(&read(path)?, parent(path)).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

/// The merchant's configuration file (TOML), as `acd merchant serve
/// --config FILE` reads it; flags given beside it override its fields.
/// Relative paths are relative to the file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantConfigFile {
    /// Where to listen for customers, e.g. `127.0.0.1:8900` (port 0: any
    /// free port).
    pub listen: SocketAddr,
    /// Directory of the merchant's key and database (see
    /// [`MerchantConfig::data`]).
    pub data: PathBuf,
    /// Keep the purchases in this PostgreSQL database instead of
    /// `data/db/` (see [`MerchantConfig::database`]).
    #[serde(default)]
    pub database: Option<acd_serve::database_owner::DatabaseUrl>,
    /// The bank's base URL, e.g. `http://127.0.0.1:8800`.
    pub bank_url: String,
    /// The log that records this shop's purchases, as `<vkey>@<url>`: its
    /// signed-note verifier key and base URL. The bank must trust it.
    #[serde(deserialize_with = "log_field")]
    pub log: LogInfo,
    /// The bank's ed25519 key as 64 hex digits, when known out of band:
    /// start without asking the bank (nor checking that it trusts the log).
    #[serde(default, deserialize_with = "key_field")]
    pub bank_key: Option<[u8; 32]>,
    /// A catalog file of `[[items]]` (see `catalog.example.toml`).
    #[serde(default)]
    pub catalog: Option<PathBuf>,
    /// Items for sale given here instead of (or besides) `catalog`.
    #[serde(default)]
    pub items: Vec<CatalogEntry>,
    /// How long an offer stays open, in milliseconds; within the bank's
    /// escrow bounds.
    #[serde(default = "default_offer_lifetime_ms")]
    pub offer_lifetime_ms: u64,
    /// How often failed commits and unpaid deposits are retried, in
    /// milliseconds.
    #[serde(default = "default_retry_interval_ms")]
    pub retry_interval_ms: u64,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Timeouts and the connection cap (`[http]` table; `--http-*` flags
    /// override it).
    #[serde(default)]
    pub http: acd_serve::HttpLimits,
}

fn default_offer_lifetime_ms() -> u64 {
    DEFAULT_OFFER_LIFETIME_MS
}

fn default_retry_interval_ms() -> u64 {
    DEFAULT_RETRY_INTERVAL_MS
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn log_field<'de, D: Deserializer<'de>>(d: D) -> Result<LogInfo, D::Error> {
    parse_log(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn key_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_key(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// A log as `<vkey>@<url>`.
pub fn parse_log(s: &str) -> Result<LogInfo, String> {
    let (vkey, url) = acd_core::note::split_vkey_url(s)
        .ok_or_else(|| format!("expected <vkey>@<http(s) url>, got {s:?}"))?;
    acd_core::note::NoteVerifier::from_vkey(vkey).map_err(|e| format!("log vkey: {e}"))?;
    Ok(LogInfo {
        vkey: vkey.to_owned(),
        url: url.to_owned(),
    })
}

/// An ed25519 key as 64 hex digits.
pub fn parse_key(s: &str) -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(s, &mut key).map_err(|_| "expected 64 hex digits".to_owned())?;
    Ok(key)
}

/// Why a configuration or catalog file could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

impl MerchantConfigFile {
    /// Parses the TOML text of a configuration file kept in `base`:
    /// relative paths are joined to it.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, toml::de::Error> {
        let mut file: MerchantConfigFile = toml::from_str(text)?;
        if file.data.is_relative() {
            file.data = base.join(&file.data);
        }
        if let Some(c) = file.catalog.as_mut().filter(|c| c.is_relative()) {
            *c = base.join(&*c);
        }
        for e in file.items.iter_mut().filter(|e| e.file.is_relative()) {
            e.file = base.join(&e.file);
        }
        Ok(file)
    }

    /// Reads and parses the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        MerchantConfigFile::from_toml(&read(path)?, parent(path)).map_err(|source| {
            ConfigError::Parse {
                path: path.to_owned(),
                source,
            }
        })
    }

    /// The library's configuration: the catalog file read (its items
    /// first, then the inline ones) and the durations set.
    pub fn into_config(self) -> Result<MerchantConfig, ConfigError> {
        let mut items = match &self.catalog {
            Some(path) => CatalogFile::load(path)?,
            None => vec![],
        };
        items.extend(self.items);
        let mut c = MerchantConfig::new(self.data, self.bank_url, self.log, items);
        c.bank_key = self.bank_key;
        c.database = self.database;
        c.offer_lifetime = Duration::from_millis(self.offer_lifetime_ms);
        c.retry_interval = Duration::from_millis(self.retry_interval_ms);
        c.max_body_bytes = self.max_body_bytes;
        c.http = self.http;
        Ok(c)
    }
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

    // The checked-in example configuration parses with its documented
    // values, resolves its paths against its directory, reads its catalog,
    // and unknown fields are refused.
    #[test]
    fn example_config_parses() {
        let text = include_str!("../merchant.example.toml");
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = MerchantConfigFile::from_toml(text, base).expect("parses");
        assert_eq!(file.listen, "127.0.0.1:8900".parse().expect("addr"));
        assert_eq!(file.data, Path::new("/var/lib/acd-merchant"));
        assert_eq!(file.bank_url, "http://127.0.0.1:8800");
        assert_eq!(file.log.url, "http://127.0.0.1:8700");
        assert!(file.log.vkey.starts_with("log.example.com/acd/1+"));
        assert_eq!(file.bank_key, None);
        assert_eq!(file.catalog, Some(base.join("catalog.example.toml")));
        assert_eq!(file.offer_lifetime_ms, DEFAULT_OFFER_LIFETIME_MS);
        let config = file.into_config().expect("reads the catalog");
        assert_eq!(config.catalog.len(), 2);
        assert_eq!(config.offer_lifetime, Duration::from_secs(60));
        assert_eq!(config.retry_interval, Duration::from_secs(5));
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(MerchantConfigFile::from_toml(&format!("{text}\nsurprise = 1\n"), base).is_err());
        let bad_log = text.replace("@http://127.0.0.1:8700", "");
        assert!(MerchantConfigFile::from_toml(&bad_log, base).is_err());
    }
}
