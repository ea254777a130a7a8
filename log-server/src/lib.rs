//! `acd-log`: the transaction log of anonymous certified delivery, a Merkle
//! transparency log (RFC 6962/9162 hashing, C2SP tlog-checkpoint signed
//! notes, C2SP tlog-tiles read path) that records exactly one outcome per
//! TID: the merchant's key commit (paper steps P4, P5) or an abort.
//!
//! Layout:
//! - [`config`]: the operator's settings.
//! - [`keys`]: the log's signed-note key on disk.
//! - [`storage`]: the storage contract, with sled, PostgreSQL (shared by
//!   an active log and its standbys: lease and compare-and-swap) and
//!   in-memory backends.
//! - [`tree`]: tiles as the tree's store; the append edge and proof reads.
//! - [`sequencer`]: the single writer: protocol rules (one outcome per
//!   TID, expiration), group commit, checkpoints.
//! - [`engine`]: the protocol steps, one file each: [`engine::commit`]
//!   (P4/P5), [`engine::abort`], [`engine::query`] (Q1/Q2 and proofs),
//!   [`engine::read`] (the tiles read path). No HTTP in it.
//! - [`http`]: the router and its few-line handlers over the engine, on
//!   the shared shell of `acd-serve`; [`http::read_path`] gives the read
//!   path's bytes their headers, [`http::metrics`] is `/metrics`
//!   (requests, latency, tree sizes).
//! - [`check`]: `check_log`, the from-scratch verification tests run.
//! - [`witnessing`]: asks witnesses to cosign each checkpoint (C2SP
//!   tlog-witness) and keeps the cosigned checkpoint `/checkpoint` serves.
//! - [`publish`]: with `--tiles`, writes the read path to a directory or
//!   an S3 bucket after each checkpoint, for static serving.
//! - [`clock`]: the injected clock that decides expirations.
//!
//! A server is [`Log::open`] then [`Log::run`] on a bound listener.

pub mod check;
pub mod clock;
pub mod config;
pub mod engine;
pub mod http;
pub mod keys;
pub mod publish;
pub mod sequencer;
pub mod storage;
pub mod tree;
pub mod witnessing;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::LogConfig;
use crate::engine::Engine;
use crate::http::AppState;
pub use crate::http::router;
#[cfg(any(test, feature = "faults"))]
use crate::sequencer::Faults;
use crate::sequencer::{SequencerConfig, SequencerHandle};
use crate::storage::{LeaseTiming, PgStorage, SledStorage, Storage, StorageError};

/// Why a log could not start.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Database(#[from] acd_serve::storage::DatabaseError),
    #[error("the database at {path}: {source}")]
    StorageAt {
        path: std::path::PathBuf,
        source: StorageError,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
    #[error(transparent)]
    Owner(#[from] acd_serve::database_owner::OwnerError),
}

/// This server's row in a shared database's `acd_owner` table.
const OWNER: &str = "log";

/// An opened log: its engine, its metrics and its sequencer thread.
pub struct Log {
    engine: Engine,
    metrics: Arc<http::metrics::LogMetrics>,
    sequencer: std::thread::JoinHandle<()>,
    /// With `tiles`: the task publishing the read path.
    publisher: Option<tokio::task::JoinHandle<()>>,
    http: acd_serve::HttpLimits,
    /// What `/readyz` probes beside storage: the witnesses.
    peers: Vec<(String, String)>,
}

/// How long a stopping log waits for its last checkpoint to be published.
const PUBLISH_ON_STOP: Duration = Duration::from_secs(10);

fn parse_banks(config: &LogConfig) -> Result<HashSet<[u8; 32]>, OpenError> {
    config
        .trusted_banks
        .iter()
        .map(|hexkey| {
            let mut key = [0u8; 32];
            hex::decode_to_slice(hexkey, &mut key).map_err(|_| {
                OpenError::Config(format!("trusted bank key {hexkey:?} is not 64 hex digits"))
            })?;
            ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| {
                OpenError::Config(format!("trusted bank key {hexkey} is not an ed25519 key"))
            })?;
            Ok(key)
        })
        .collect()
}

/// What a checked configuration names: trusted banks, witnesses and the
/// read path's publication target.
type Checked = (
    HashSet<[u8; 32]>,
    Vec<witnessing::WitnessPeer>,
    Option<publish::TilesUrl>,
);

/// The configuration's checks that need no key and no storage, with the
/// trusted banks, witnesses and `--tiles` target it names.
fn check_config(config: &LogConfig) -> Result<Checked, OpenError> {
    if config.checkpoint_interval_ms == 0 || config.max_batch == 0 {
        return Err(OpenError::Config(
            "checkpoint_interval_ms and max_batch must be positive".into(),
        ));
    }
    if config.batch_window_us >= config.checkpoint_interval_ms.saturating_mul(1000) {
        return Err(OpenError::Config(
            "batch_window_us must be shorter than the checkpoint interval".into(),
        ));
    }
    if config.lease_ms < 100 {
        return Err(OpenError::Config("lease_ms must be at least 100".into()));
    }
    if let Some(url) = &config.database
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        // The URL may hold a password: never repeat it.
        return Err(OpenError::Config(
            "database must be a postgres:// URL".into(),
        ));
    }
    let trusted_banks = parse_banks(config)?;
    let witnesses = config
        .witnesses
        .iter()
        .map(|w| {
            acd_core::cosignature::CosignatureVerifier::from_vkey(&w.vkey)
                .map(|verifier| witnessing::WitnessPeer {
                    url: w.url.clone(),
                    verifier,
                })
                .map_err(|e| OpenError::Config(format!("witness vkey {:?}: {e}", w.vkey)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tiles = config
        .tiles
        .as_deref()
        .map(publish::TilesUrl::parse)
        .transpose()?;
    Ok((trusted_banks, witnesses, tiles))
}

impl Log {
    /// Checks `config` without touching its data directory: what
    /// [`Log::open`] would refuse before reading a key.
    pub fn check_config(config: &LogConfig) -> Result<(), OpenError> {
        check_config(config).map(drop)
    }

    /// Opens the log in `config.data` on sled, or on the PostgreSQL
    /// database `config.database` (shared with standbys), creating key and
    /// database on first start (a new data directory, see [`acd_serve::secret`]). The
    /// configuration is checked first; a damaged database is an error
    /// naming it, never a panic.
    pub fn open(config: &LogConfig, clock: Arc<dyn Clock>) -> Result<Log, OpenError> {
        check_config(config)?;
        // On PostgreSQL the database, not the data directory, says whether
        // this log is new (and so whether its key may be created).
        let dir =
            acd_serve::database_owner::data_dir(&config.data, config.database.as_deref(), OWNER)?;
        let signer = keys::load_or_create_in(&mut rand::rng(), &dir, &config.origin)?;
        if let Some(url) = &config.database {
            let shown = acd_serve::database_owner::shown(url);
            acd_serve::database_owner::claim(url, &shown, OWNER, &signer.verifier().vkey())?;
            let timing = LeaseTiming::of(Duration::from_millis(config.lease_ms));
            let storage = Arc::new(PgStorage::connect(url, timing)?);
            return Log::with_storage(config, storage, signer, clock);
        }
        let path = dir.database();
        let at = |source| OpenError::StorageAt {
            path: path.clone(),
            source,
        };
        // The start-up reads (the latest checkpoint, the tree's edge) run
        // under the guard too: sled panics on some damaged pages.
        acd_serve::storage::guard(&path, || {
            let storage = Arc::new(SledStorage::open(&path).map_err(at)?);
            Log::with_storage(config, storage, signer, clock).map_err(|e| match e {
                OpenError::Storage(e) => at(e),
                e => e,
            })
        })?
    }

    /// Opens the log over any storage (tests use [`storage::MemoryStorage`]).
    /// Must be called within a tokio runtime: witnessing runs as a task.
    pub fn with_storage(
        config: &LogConfig,
        storage: Arc<dyn Storage>,
        signer: acd_core::note::NoteSigner,
        clock: Arc<dyn Clock>,
    ) -> Result<Log, OpenError> {
        Log::build(config, storage, signer, clock, sequencer::start)
    }

    /// A log that breaks the protocol's rules on purpose, for tests of
    /// auditors: only with the `faults` feature, which no binary enables.
    #[cfg(any(test, feature = "faults"))]
    pub fn with_faults(
        config: &LogConfig,
        storage: Arc<dyn Storage>,
        signer: acd_core::note::NoteSigner,
        clock: Arc<dyn Clock>,
        faults: Faults,
    ) -> Result<Log, OpenError> {
        Log::build(
            config,
            storage,
            signer,
            clock,
            |storage, signer, clock, c| {
                sequencer::start_with_faults(storage, signer, clock, c, faults)
            },
        )
    }

    fn build(
        config: &LogConfig,
        storage: Arc<dyn Storage>,
        signer: acd_core::note::NoteSigner,
        clock: Arc<dyn Clock>,
        start: impl FnOnce(
            Arc<dyn Storage>,
            acd_core::note::NoteSigner,
            Arc<dyn Clock>,
            SequencerConfig,
        )
            -> Result<(SequencerHandle, std::thread::JoinHandle<()>), StorageError>,
    ) -> Result<Log, OpenError> {
        if signer.name() != config.origin {
            return Err(OpenError::Config(format!(
                "key name {:?} differs from origin {:?}",
                signer.name(),
                config.origin
            )));
        }
        let (trusted_banks, witnesses, tiles) = check_config(config)?;
        // The target is opened before the sequencer starts, so that a bad
        // one fails the start-up.
        let target = tiles.as_ref().map(publish::Target::open).transpose()?;
        let verifier = signer.verifier();
        let (sequencer, thread) = start(
            storage.clone(),
            signer,
            clock,
            SequencerConfig {
                origin: config.origin.clone(),
                max_batch: config.max_batch,
                queue: config.queue,
                checkpoint_interval: Duration::from_millis(config.checkpoint_interval_ms),
                batch_window: Duration::from_micros(config.batch_window_us),
                lease_renew: LeaseTiming::of(Duration::from_millis(config.lease_ms)).renew,
            },
        )?;
        // The log asks every witness it names and counts a checkpoint as
        // witnessed only once all of them cosigned it.
        let threshold = witnesses.len();
        let cosigned = witnessing::start(sequencer.clone(), storage.clone(), witnesses, threshold);
        let publisher = target.map(|target| {
            publish::start(
                target,
                publish::Sources {
                    storage: storage.clone(),
                    verifier: verifier.clone(),
                    published: sequencer.subscribe(),
                    cosigned: cosigned.clone(),
                },
            )
        });
        Ok(Log {
            engine: Engine {
                cosigned,
                sequencer,
                storage,
                origin: Arc::from(config.origin.as_str()),
                verifier,
                trusted_banks: Arc::new(trusted_banks),
                max_entries_per_request: config.max_entries_per_request,
                witnesses: config.witnesses.iter().map(|w| w.vkey.clone()).collect(),
            },
            metrics: Arc::default(),
            sequencer: thread,
            publisher,
            http: config.http,
            peers: config
                .witnesses
                .iter()
                .map(|w| (format!("witness {}", w.url), w.url.clone()))
                .collect(),
        })
    }

    /// The engine: every protocol step, callable without HTTP.
    pub fn state(&self) -> &Engine {
        &self.engine
    }

    /// The sequencer, for in-process clients.
    pub fn sequencer(&self) -> &SequencerHandle {
        &self.engine.sequencer
    }

    /// The log's HTTP routes over this log.
    pub fn router(&self, max_body_bytes: usize) -> axum::Router {
        let storage = self.engine.storage.clone();
        let ready = acd_serve::ops::readiness(
            move || {
                let storage = storage.clone();
                acd_serve::ops::blocking_check("storage", move || {
                    storage.latest_checkpoint().map(drop)
                })
            },
            self.peers.clone(),
        );
        router(
            AppState {
                engine: self.engine.clone(),
                metrics: self.metrics.clone(),
            },
            max_body_bytes,
        )
        .merge(acd_serve::ops::health_routes(ready))
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then stops the
    /// sequencer after the last in-flight append is answered.
    pub async fn run(
        self,
        listener: TcpListener,
        max_body_bytes: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self.router(max_body_bytes);
        let Log {
            engine,
            sequencer,
            publisher,
            http,
            ..
        } = self;
        // Only the router may hold sequencer handles while serving.
        drop(engine);
        let served = acd_serve::serve_with(listener, app, http, shutdown).await;
        // The router (and with it every sequencer handle) is gone now, so
        // the sequencer drains its queue and stops.
        let joined = tokio::task::spawn_blocking(move || sequencer.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("the sequencer thread panicked");
        }
        // The publisher ends once it has published the last checkpoint.
        if let Some(p) = publisher
            && tokio::time::timeout(PUBLISH_ON_STOP, p).await.is_err()
        {
            tracing::warn!("the read path publisher did not finish; it catches up on start");
        }
        served
    }
}
