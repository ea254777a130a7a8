//! `acd-bank`: the bank of anonymous certified delivery. It issues
//! blind-RSA tokens (RFC 9474) against account balances (paper figure 1,
//! step 1), registers tokens to a fresh customer key Q (steps 3, 4),
//! escrows them for a purchase (P2, P3), pays the merchant on a proven
//! commit in a trusted log (deposit), refunds with fresh blind tokens after
//! an abort or an upheld dispute, and asks the log to abort escrows that
//! expired (the sweeper). Money is conserved (invariant 5) and checkable
//! at `/admin/v1/sums`.
//!
//! Layout:
//! - [`engine`]: the protocol steps, one file each, named after the step:
//!   `withdraw`, `register`, `spend`, `deposit`, `abort`, `refund`,
//!   `dispute`, and `account` for the operator's. Each holds the step's
//!   checks, its crypto and its ledger rule, and returns a
//!   [`DomainError`]; [`BankState`] is the
//!   engine's shared state.
//! - [`ledger`]: the books: every state change is a typed
//!   [`LedgerOp`](ledger::LedgerOp), decided in order and written in one
//!   atomic batch per group commit.
//! - [`writer`]: the single writer thread in front of the ledger.
//! - [`store`]: the table under the ledger (sled, or memory with failure
//!   injection for tests); [`postgres`]: the same in PostgreSQL, for
//!   several bank processes on one database.
//! - [`records`]: what the ledger stores and the key layout.
//! - [`logs`]: the trusted logs and the checking of their proofs and
//!   checkpoints.
//! - [`http`]: the routes and their few-line handlers on the `acd-serve`
//!   shell; [`metrics`]: what `/metrics` shows.
//! - [`sweeper`]: runs the abort step for expired escrows every interval.
//! - [`config`]: the operator's settings (TOML); [`keys`]: the bank's
//!   ed25519 key, its denomination RSA keys and the admin token on disk;
//!   [`clock`]: the injected clock.
//!
//! A server is [`Bank::open`] then [`Bank::run`] on a bound listener.

pub mod clock;
pub mod config;
pub mod engine;
pub mod http;
pub mod keys;
pub mod ledger;
pub mod logs;
pub mod metrics;
pub mod postgres;
pub mod records;
pub mod signer;
pub mod store;
pub mod sweeper;
pub mod writer;

pub use engine::BankState;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use acd_core::bank_api::{BankInfo, DenominationInfo, LogInfo, PolicyInfo};
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::cosignature::CosignatureVerifier;
use acd_core::error::DomainError;
use acd_core::note::NoteVerifier;
use acd_core::proof::WitnessPolicy;
use acd_core::token::Denomination;
use acd_serve::AdminToken;
use axum::Router;
use rand_core::CryptoRng;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::BankConfig;
use crate::ledger::Ledger;
use crate::logs::{LogPeer, Logs};

/// Why a bank could not start.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("the ledger's database: {0}")]
    Storage(#[from] sled::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot start the ledger writer: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the ledger: {0}")]
    Ledger(#[from] DomainError),
    #[error(transparent)]
    Database(#[from] acd_serve::storage::DatabaseError),
    #[error("the database at {path}: {reason}")]
    DatabaseAt {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Owner(#[from] acd_serve::database_owner::OwnerError),
    #[error("the ledger's PostgreSQL database {url}: {reason}")]
    Postgres {
        /// Shown without its password.
        url: config::DatabaseUrl,
        reason: String,
    },
}

/// This server's row in a shared database's `acd_owner` table.
const OWNER: &str = "bank";

/// One denomination: its public description and its blind signer.
pub struct DenominationKey {
    pub denomination: Denomination,
    pub(crate) signer: Arc<signer::BlindSigner>,
}

/// An opened bank: its state, its writer thread and its settings.
pub struct Bank {
    state: Arc<BankState>,
    writer: std::thread::JoinHandle<()>,
    admin_token: String,
    max_body_bytes: usize,
    max_dispute_body_bytes: usize,
    max_concurrent_disputes: usize,
    sweep_interval: Duration,
    http: acd_serve::HttpLimits,
}

fn parse_policy(config: &BankConfig) -> Result<WitnessPolicy, OpenError> {
    let witnesses = config
        .witnesses
        .iter()
        .map(|v| {
            CosignatureVerifier::from_vkey(v)
                .map_err(|e| OpenError::Config(format!("witness vkey {v:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if config.witness_threshold > witnesses.len() {
        return Err(OpenError::Config(format!(
            "witness threshold {} exceeds the {} witnesses listed",
            config.witness_threshold,
            witnesses.len()
        )));
    }
    Ok(WitnessPolicy::new(config.witness_threshold, witnesses))
}

/// The configuration's checks that need no key and no storage, with the
/// witness policy and the log verifiers it names.
fn check_config(config: &BankConfig) -> Result<(WitnessPolicy, Vec<NoteVerifier>), OpenError> {
    if config.denominations.is_empty() || config.denominations.contains(&0) {
        return Err(OpenError::Config(
            "denominations must be a non-empty list of positive values".into(),
        ));
    }
    if config.min_expiration_ms > config.max_expiration_ms {
        return Err(OpenError::Config(
            "min_expiration_ms exceeds max_expiration_ms".into(),
        ));
    }
    if config.sweep_interval_ms == 0 {
        return Err(OpenError::Config(
            "sweep_interval_ms must be positive".into(),
        ));
    }
    let policy = parse_policy(config)?;
    let mut verifiers = Vec::new();
    let mut origins = std::collections::HashSet::new();
    for l in &config.logs {
        let verifier = NoteVerifier::from_vkey(&l.vkey)
            .map_err(|e| OpenError::Config(format!("log vkey {:?}: {e}", l.vkey)))?;
        if !origins.insert(verifier.name().to_owned()) {
            return Err(OpenError::Config(format!(
                "log {} is listed twice",
                verifier.name()
            )));
        }
        verifiers.push(verifier);
    }
    Ok((policy, verifiers))
}

impl Bank {
    /// Checks `config` without touching its data directory: what
    /// [`Bank::open`] would refuse before reading a key.
    pub fn check_config(config: &BankConfig) -> Result<(), OpenError> {
        check_config(config).map(drop)
    }

    /// Opens the bank in `config.data` on sled with the system clock,
    /// creating keys, token and database on first start.
    pub fn open(config: &BankConfig) -> Result<Bank, OpenError> {
        Bank::open_with_clock(config, Arc::new(SystemClock))
    }

    /// The same with an injected clock (tests of expiration).
    pub fn open_with_clock(config: &BankConfig, clock: Arc<dyn Clock>) -> Result<Bank, OpenError> {
        Bank::open_with(config, clock, &mut rand::rng())
    }

    /// The same with an injected clock and the RNG that creates missing
    /// keys and the admin token (deterministic tests). The whole
    /// configuration is checked before the data directory is looked at, so
    /// that a refused one leaves nothing behind; keys are created only in a
    /// new data directory; a damaged database is an error naming it.
    pub fn open_with(
        config: &BankConfig,
        clock: Arc<dyn Clock>,
        rng: &mut dyn CryptoRng,
    ) -> Result<Bank, OpenError> {
        let (policy, verifiers) = check_config(config)?;
        // On PostgreSQL the database, not the data directory, says whether
        // this bank is new (and so whether missing keys may be created).
        let dir = acd_serve::database_owner::data_dir(
            &config.data,
            config
                .database
                .as_ref()
                .map(acd_serve::database_owner::DatabaseUrl::expose),
            OWNER,
        )?;
        let signing = keys::load_or_create_bank_key_with(&dir, rng)?;
        let public = signing.verifying_key().to_bytes();
        let admin_token = keys::load_or_create_admin_token_with(&dir, rng)?;
        let mut values = config.denominations.clone();
        values.sort_unstable();
        values.dedup();
        let mut denominations = HashMap::new();
        let mut published = Vec::new();
        for value in values {
            let secret = keys::load_or_create_rsa_key_with(&dir, value, config.rsa_bits, rng)?;
            let invalid = |e: String| OpenError::Config(format!("denomination {value}: {e}"));
            let public_key = secret.public_key().map_err(|e| invalid(e.to_string()))?;
            let pem = public_key.to_pem().map_err(|e| invalid(e.to_string()))?;
            let der = secret.to_der().map_err(|e| invalid(e.to_string()))?;
            let signer =
                signer::BlindSigner::from_pkcs8_der(&der).map_err(|e| invalid(e.to_string()))?;
            let denomination =
                Denomination::new(value, public_key).map_err(|e| invalid(e.to_string()))?;
            published.push(DenominationInfo {
                id: denomination.id(),
                value,
                spki: denomination.spki().to_vec(),
                pem,
            });
            denominations.insert(
                denomination.id(),
                DenominationKey {
                    denomination,
                    signer: Arc::new(signer),
                },
            );
        }
        let (ledger, stored) = match &config.database {
            // The data directory holds only the keys and the admin token.
            Some(url) => {
                let at = |reason: String| OpenError::Postgres {
                    url: url.clone(),
                    reason,
                };
                let ledger = Ledger::open_postgres(url).map_err(|e| at(e.to_string()))?;
                // Claimed once the RSA keys exist too: a start that stopped
                // before leaves the database new, and the next creates them.
                acd_serve::database_owner::claim(
                    url.expose(),
                    &url.to_string(),
                    OWNER,
                    &hex::encode(public),
                )?;
                let stored: HashMap<String, String> = ledger
                    .checkpoints()
                    .map_err(|e| at(e.to_string()))?
                    .into_iter()
                    .collect();
                (Arc::new(ledger), stored)
            }
            None => {
                let path = dir.database();
                // The start-up reads run under the guard too: sled panics on some
                // damaged pages.
                let (ledger, stored) = acd_serve::storage::guard(&path, || {
                    let at = |reason: String| OpenError::DatabaseAt {
                        path: path.clone(),
                        reason,
                    };
                    let ledger = Ledger::open(&path).map_err(|e| at(e.to_string()))?;
                    let stored: HashMap<String, String> = ledger
                        .checkpoints()
                        .map_err(|e| at(e.to_string()))?
                        .into_iter()
                        .collect();
                    Ok::<_, OpenError>((Arc::new(ledger), stored))
                })??;
                (ledger, stored)
            }
        };
        let http = acd_serve::http_client_with(Duration::from_secs(10));
        let mut logs = Logs::new();
        let mut log_infos = Vec::new();
        for (l, verifier) in config.logs.iter().zip(verifiers) {
            let origin = verifier.name().to_owned();
            let latest = match stored.get(&origin) {
                Some(text) => Some(SignedCheckpoint::open(text, &verifier).map_err(|e| {
                    OpenError::Config(format!("stored checkpoint of {origin}: {e}"))
                })?),
                None => None,
            };
            log_infos.push(LogInfo {
                vkey: l.vkey.clone(),
                url: l.url.clone(),
            });
            if logs
                .insert(
                    origin.clone(),
                    LogPeer::new(verifier, &l.url, http.clone(), latest),
                )
                .is_some()
            {
                return Err(OpenError::Config(format!("log {origin} is listed twice")));
            }
        }
        let info = BankInfo {
            bank: public,
            denominations: published,
            logs: log_infos,
            max_expiration_ms: config.max_expiration_ms,
            min_expiration_ms: config.min_expiration_ms,
            witness_policy: PolicyInfo {
                threshold: config.witness_threshold,
                witnesses: config.witnesses.clone(),
            },
        };
        let metrics = Arc::new(metrics::BankMetrics::new());
        let (writer, thread) = writer::start(
            ledger.clone(),
            metrics.clone(),
            config.queue,
            config.max_batch,
        )?;
        Ok(Bank {
            state: Arc::new(BankState {
                signing,
                public,
                denominations,
                logs,
                policy,
                info,
                admin_token: AdminToken::new(&admin_token),
                ledger,
                writer,
                clock,
                metrics,
                min_expiration_ms: config.min_expiration_ms,
                max_expiration_ms: config.max_expiration_ms,
                http,
            }),
            writer: thread,
            admin_token,
            max_body_bytes: config.max_body_bytes,
            max_dispute_body_bytes: config.max_dispute_body_bytes,
            max_concurrent_disputes: config.max_concurrent_disputes,
            sweep_interval: Duration::from_millis(config.sweep_interval_ms),
            http: config.http,
        })
    }

    /// The bank's ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.state.public
    }

    /// What `GET /api/v1/info` serves.
    pub fn info(&self) -> &BankInfo {
        &self.state.info
    }

    /// The bearer token of the admin routes (also in `<data>/admin.token`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The handlers' shared state.
    pub fn state(&self) -> &Arc<BankState> {
        &self.state
    }

    /// The bank's HTTP routes.
    pub fn router(&self) -> Router {
        let ledger = self.state.ledger.clone();
        let peers = self
            .state
            .info
            .logs
            .iter()
            .map(|l| {
                let url = format!("{}/checkpoint", l.url.trim_end_matches('/'));
                (format!("log {}", l.url), url)
            })
            .collect();
        let ready = acd_serve::ops::readiness(
            move || {
                let ledger = ledger.clone();
                acd_serve::ops::blocking_check("storage", move || ledger.totals().map(drop))
            },
            peers,
        );
        http::router(
            self.state.clone(),
            self.max_body_bytes,
            self.max_dispute_body_bytes,
            self.max_concurrent_disputes,
        )
        .merge(acd_serve::ops::health_routes(ready))
    }

    /// One round of the sweeper (the server runs one per sweep interval).
    pub async fn sweep_once(&self) {
        sweeper::sweep_once(&self.state).await;
    }

    /// Serves HTTP on `listener` and sweeps expired escrows until
    /// `shutdown` resolves, then stops the writer after the last in-flight
    /// request is answered.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self.router();
        let Bank {
            state,
            writer,
            sweep_interval,
            http,
            ..
        } = self;
        let (stop_sweeper, sweeper_stopped) = tokio::sync::watch::channel(false);
        let sweeper = tokio::spawn(sweeper::run(state.clone(), sweep_interval, sweeper_stopped));
        let served = acd_serve::serve_with(listener, app, http, shutdown).await;
        let _ = stop_sweeper.send(true);
        if sweeper.await.is_err() {
            tracing::error!("the sweeper panicked");
        }
        // No request is in flight any more: the writer answers what is
        // queued and stops, even if a caller still holds the state.
        state.writer.stop();
        drop(state);
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("the ledger writer panicked");
        }
        served
    }
}
