//! The merchant of anonymous certified delivery: sells information goods
//! for tokens the bank escrows, and makes the exchange atomic through the
//! transaction log (paper figure 2).
//!
//! - P1: `POST /api/v1/offer` signs an offer for a fresh TID and sends the
//!   goods encrypted under a fresh key k; nothing is stored until the
//!   bank's escrow for it arrives.
//! - P3 → P4 → P6: `POST /api/v1/purchase` takes the bank's escrow terms,
//!   commits k to the log and answers k with the commit's inclusion proof;
//!   `GET /api/v1/delivery/{tid}` answers it again.
//! - Deposit: the commit proof is shown to the bank, now and, until it is
//!   paid, by a background task that also finishes commits interrupted by
//!   a crash or an outage.
//!
//! Layout (one file per protocol step; no HTTP outside [`http`]):
//! - [`offer`]: P1, the signed offer and the goods encrypted under k;
//!   [`offer_secret`]: the TIDs that authenticate their terms and the keys
//!   derived from them; [`goods_cache`]: the goods files, read once.
//! - [`purchase`]: P3 → P4 → P6, the escrow terms checked and recorded,
//!   k committed at the log, the key delivered (and delivered again).
//! - [`deposit`]: the deposit at the bank, its retries, a deposit refused
//!   for good recorded, and the recovery pass.
//! - [`shop`]: the engine state the steps share, with the injected
//!   [`clock`] and randomness ([`shop::Rng`]); [`locks`]: one lock per TID.
//! - [`store`]: the purchase records on sled, one atomic flushed batch per
//!   state change, or in PostgreSQL ([`postgres`], several front-ends on
//!   one database); its errors convert into the domain error.
//! - [`keys`]: the merchant's ed25519 key and offer secret on disk.
//! - [`config`]: [`MerchantConfig`], the TOML file [`MerchantConfigFile`]
//!   (`merchant.example.toml`) and the catalog (`catalog.example.toml`).
//! - [`http`]: the router and its few-line handlers over `acd-serve`;
//!   [`metrics`]: what `/metrics` shows.
//! - `misbehave`: deliberate misbehaviour for tests and the demo, settable
//!   only with the `misbehave` feature.
//!
//! A server is [`Merchant::open`] then [`Merchant::run`] on a bound
//! listener; every step is also callable on [`Merchant::shop`] without HTTP.

pub mod clock;
pub mod config;
pub mod deposit;
#[cfg(test)]
mod fixture;
pub mod goods_cache;
pub mod http;
pub mod keys;
pub mod locks;
pub mod metrics;
#[cfg(any(test, feature = "misbehave"))]
pub mod misbehave;
#[cfg(not(any(test, feature = "misbehave")))]
mod misbehave;
pub mod offer;
pub mod offer_secret;
pub mod postgres;
pub mod purchase;
pub mod shop;
pub mod store;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_core::note::NoteVerifier;
use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;

pub use crate::clock::{Clock, SystemClock};
pub use crate::config::{CatalogEntry, CatalogFile, MerchantConfig, MerchantConfigFile};
#[cfg(any(test, feature = "misbehave"))]
pub use crate::misbehave::Behaviour;
use crate::shop::{Rng, Shop, os_rng};
use crate::store::{Store, StoreError};

/// How long a request to the bank or the log may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a merchant could not start.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] acd_serve::storage::DatabaseError),
    #[error("the database at {path}: {reason}")]
    DatabaseAt {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot read the bank's info at {url}: {source}")]
    Bank {
        url: String,
        source: acd_client::ClientError,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Owner(#[from] acd_serve::database_owner::OwnerError),
    #[error("the PostgreSQL database {url}: {reason}")]
    Postgres {
        /// Shown without its password.
        url: String,
        reason: String,
    },
}

/// This server's row in a shared database's `acd_owner` table.
const OWNER: &str = "merchant";

/// An opened merchant.
#[derive(Clone)]
pub struct Merchant {
    shop: Arc<Shop>,
    http: acd_serve::HttpLimits,
}

fn check_catalog(catalog: &[CatalogEntry]) -> Result<(), OpenError> {
    let mut ids = HashSet::new();
    for e in catalog {
        if e.id.is_empty() || !ids.insert(e.id.as_str()) {
            return Err(OpenError::Config(format!(
                "catalog item ids must be non-empty and unique: {:?}",
                e.id
            )));
        }
        if e.description.len() > acd_core::purchase::MAX_DESCRIPTION {
            return Err(OpenError::Config(format!(
                "the description of item {:?} is longer than {} bytes",
                e.id,
                acd_core::purchase::MAX_DESCRIPTION
            )));
        }
        if !e.file.is_file() {
            return Err(OpenError::Config(format!(
                "the goods of item {:?}, {}, are not a readable file",
                e.id,
                e.file.display()
            )));
        }
    }
    Ok(())
}

fn same_vkey(a: &str, b: &NoteVerifier) -> bool {
    NoteVerifier::from_vkey(a.trim()).is_ok_and(|v| v.vkey() == b.vkey())
}

impl Merchant {
    /// Opens the merchant in `config.data` with the system clock.
    pub async fn open(config: MerchantConfig) -> Result<Merchant, OpenError> {
        Merchant::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Opens the merchant with `clock` and the operating system's
    /// randomness.
    pub async fn open_with_clock(
        config: MerchantConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Merchant, OpenError> {
        Merchant::open_with(config, clock, os_rng()).await
    }

    /// Opens the merchant: checks the configuration, then loads its key and
    /// database (created only in a new data directory), learns
    /// the bank's key from the bank (unless `config.bank_key` gives it) and
    /// checks that the bank trusts the log and accepts the offer lifetime.
    /// TIDs and goods keys are drawn from `rng`.
    pub async fn open_with(
        config: MerchantConfig,
        clock: Arc<dyn Clock>,
        rng: Rng,
    ) -> Result<Merchant, OpenError> {
        check_catalog(&config.catalog)?;
        if config.offer_lifetime.is_zero() || config.retry_interval.is_zero() {
            return Err(OpenError::Config(
                "offer_lifetime and retry_interval must be positive".into(),
            ));
        }
        let log_verifier = NoteVerifier::from_vkey(config.log.vkey.trim())
            .map_err(|e| OpenError::Config(format!("log vkey {:?}: {e}", config.log.vkey)))?;
        let http = acd_serve::http_client_with(HTTP_TIMEOUT);
        let bank_client = BankClient::with_http(http.clone(), &config.bank_url);
        let bank = match config.bank_key {
            Some(key) => key,
            None => {
                let info = bank_client.info().await.map_err(|source| OpenError::Bank {
                    url: config.bank_url.clone(),
                    source,
                })?;
                if !info.logs.iter().any(|l| same_vkey(&l.vkey, &log_verifier)) {
                    return Err(OpenError::Config(format!(
                        "the bank does not trust the log {}",
                        log_verifier.vkey()
                    )));
                }
                let lifetime = u64::try_from(config.offer_lifetime.as_millis()).unwrap_or(u64::MAX);
                if lifetime < info.min_expiration_ms || lifetime > info.max_expiration_ms {
                    return Err(OpenError::Config(format!(
                        "the offer lifetime of {lifetime} ms is outside the bank's escrow bounds ({} to {} ms)",
                        info.min_expiration_ms, info.max_expiration_ms
                    )));
                }
                info.bank
            }
        };
        ed25519_dalek::VerifyingKey::from_bytes(&bank)
            .map_err(|_| OpenError::Config("the bank key is not an ed25519 key".into()))?;
        // On PostgreSQL the database, not the data directory, says whether
        // this merchant is new (and so whether its keys may be created).
        let dir = acd_serve::database_owner::data_dir(
            &config.data,
            config
                .database
                .as_ref()
                .map(acd_serve::database_owner::DatabaseUrl::expose),
            OWNER,
        )?;
        let signing = keys::load_or_create_in(&dir)?;
        let offer_secret = keys::load_or_create_offer_secret_in(&dir)?;
        let store = match &config.database {
            Some(url) => {
                let shown = url.to_string();
                let public = hex::encode(signing.verifying_key().to_bytes());
                acd_serve::database_owner::claim(url.expose(), &shown, OWNER, &public)?;
                let pg = postgres::PgPurchases::connect(url.expose())
                    .await
                    .map_err(|e| OpenError::Postgres {
                        url: shown.clone(),
                        reason: e.to_string(),
                    })?;
                tracing::info!(database = %shown, "the purchases are in PostgreSQL");
                Store::postgres(pg)
            }
            None => {
                let path = dir.database();
                // sled panics on some damaged pages: opening runs under the guard.
                acd_serve::storage::guard(&path, || Store::open(&path))?.map_err(|e| {
                    OpenError::DatabaseAt {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?
            }
        };
        let shop = Shop {
            merchant: signing.verifying_key().to_bytes(),
            signing,
            offer_secret,
            goods: Default::default(),
            bank,
            log_origin: log_verifier.name().to_owned(),
            log: LogClient::with_http(http, &config.log.url, log_verifier),
            log_url: config.log.url.trim_end_matches('/').to_owned(),
            bank_client,
            catalog: config.catalog,
            store,
            clock,
            rng: std::sync::Mutex::new(rng),
            offer_lifetime: config.offer_lifetime,
            retry_interval: config.retry_interval,
            #[cfg(any(test, feature = "misbehave"))]
            behaviour: config.behaviour,
            #[cfg(not(any(test, feature = "misbehave")))]
            behaviour: misbehave::Behaviour::default(),
            locks: Default::default(),
            deposit_locks: Default::default(),
            deposits: Default::default(),
            max_body_bytes: config.max_body_bytes,
            metrics: Default::default(),
        };
        Ok(Merchant {
            shop: Arc::new(shop),
            http: config.http,
        })
    }

    /// The merchant's ed25519 public key (its account at the bank).
    pub fn public_key(&self) -> [u8; 32] {
        self.shop.merchant
    }

    /// The bank's key this merchant sells for.
    pub fn bank_key(&self) -> [u8; 32] {
        self.shop.bank
    }

    /// The engine: every protocol step, callable without HTTP.
    pub fn shop(&self) -> &Arc<Shop> {
        &self.shop
    }

    /// The HTTP routes ([`http::router`]).
    pub fn router(&self) -> Router {
        let shop = self.shop.clone();
        let peers = vec![
            (
                format!("bank {}", self.shop.bank_client.base()),
                format!("{}/api/v1/info", self.shop.bank_client.base()),
            ),
            (
                format!("log {}", self.shop.log_url),
                format!("{}/checkpoint", self.shop.log_url),
            ),
        ];
        let ready = acd_serve::ops::readiness(
            move || {
                let shop = shop.clone();
                async move {
                    let read = shop.store.get(&acd_core::entry::Tid([0; 16])).await;
                    acd_serve::ops::Check::from_result("storage", read.map(drop))
                }
            },
            peers,
        );
        http::router(self.shop.clone()).merge(acd_serve::ops::health_routes(ready))
    }

    /// One pass of recovery: commit escrowed purchases, deposit committed
    /// ones, prune stale offers. [`Merchant::run`] does this at start-up
    /// and then every `retry_interval`.
    pub async fn retry_pending(&self) -> Result<(), StoreError> {
        self.shop.retry_pending().await
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, with the
    /// background task of [`Merchant::retry_pending`]; then waits for the
    /// deposits in flight.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let shop = self.shop.clone();
        let worker = tokio::spawn(async move {
            loop {
                if let Err(e) = shop.retry_pending().await {
                    tracing::error!(error = %e, "retrying pending purchases");
                }
                tokio::select! {
                    _ = tokio::time::sleep(shop.retry_interval) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        let served = acd_serve::serve_with(listener, self.router(), self.http, shutdown).await;
        let _ = stop.send(true);
        if worker.await.is_err() {
            tracing::error!("the background task panicked");
        }
        self.shop.deposits.close();
        self.shop.deposits.wait().await;
        served
    }
}
