//! The PostgreSQL implementation of [`Storage`], shared by an active log and
//! its standbys (one sequencer at a time, guarded by a lease row, as in
//! Tessera and Sunlight).
//!
//! Each group commit is one transaction that first checks that this
//! process holds an unexpired lease (locking the lease row, so that a
//! standby cannot take it over until the transaction ends), then advances
//! the head row by compare-and-swap from the checkpoint the batch extends,
//! then writes the batch. A deposed sequencer's commit therefore fails and
//! stores nothing: it can never publish a checkpoint that forks the log.
//! Lease expiry is decided by the database's clock alone, so the
//! processes' clocks need not agree.
//!
//! The trait is synchronous (the sequencer is a thread, and sled is
//! synchronous); the queries run on a small runtime of this store's own and
//! the caller waits on a channel, which works from any thread, inside a
//! tokio runtime or not. The schema is in `log-server/migrations/`,
//! embedded and applied on connect.

use std::future::Future;
use std::time::Duration;

use acd_core::entry::Tid;
use acd_core::merkle::Hash;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{Batch, Storage, StorageError, StoredCheckpoint};

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A holder that renews no more for this long is taken over.
    pub lease: Duration,
    /// How often the holder renews (and a standby tries to take over).
    pub renew: Duration,
}

impl LeaseTiming {
    /// A lease of `lease`, renewed five times per lease.
    pub fn of(lease: Duration) -> Self {
        LeaseTiming {
            lease,
            renew: (lease / 5).max(Duration::from_millis(10)),
        }
    }
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming::of(Duration::from_secs(5))
    }
}

/// The log's state in a PostgreSQL database.
pub struct PgStorage {
    pool: PgPool,
    /// Runs the queries; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// This process's name in the lease row.
    holder: String,
    timing: LeaseTiming,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the URL, with its password.
        f.debug_struct("PgStorage")
            .field("holder", &self.holder)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn db(e: sqlx::Error) -> StorageError {
    StorageError::Io(format!("database: {e}"))
}

fn to_i64(v: u64) -> Result<i64, StorageError> {
    i64::try_from(v).map_err(|_| StorageError::Corrupt(format!("{v} does not fit the database")))
}

fn to_u64(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt(format!("negative index {v} stored")))
}

fn stored(row: Option<(i64, String)>) -> Result<Option<StoredCheckpoint>, StorageError> {
    row.map(|(size, note)| {
        Ok(StoredCheckpoint {
            size: to_u64(size)?,
            note,
        })
    })
    .transpose()
}

impl PgStorage {
    /// Connects to the database at `url` (`postgres://...`), applies the
    /// migrations, and names this process in the lease with a fresh random
    /// id. Takes no lease yet.
    pub fn connect(url: &str, timing: LeaseTiming) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Io(format!("cannot start the database runtime: {e}")))?;
        let options: sqlx::postgres::PgConnectOptions = url
            .parse()
            .map_err(|_| StorageError::Io("the database URL is not a PostgreSQL URL".into()))?;
        // A holder stopped inside a commit keeps the lease row locked; the
        // server ends such a transaction after one lease, and a standby's
        // takeover waits at most that long for the lock, then tries again.
        let lease_ms = timing.lease.as_millis().max(1).to_string();
        let options = options.options([
            ("idle_in_transaction_session_timeout", lease_ms.as_str()),
            ("lock_timeout", lease_ms.as_str()),
        ]);
        let pool = {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                let r = async {
                    let pool = PgPoolOptions::new()
                        .max_connections(16)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_with(options)
                        .await
                        .map_err(db)?;
                    sqlx::migrate!("./migrations")
                        .run(&pool)
                        .await
                        .map_err(|e| StorageError::Io(format!("database migration: {e}")))?;
                    Ok::<_, StorageError>(pool)
                }
                .await;
                let _ = tx.send(r);
            });
            rx.recv()
                .map_err(|_| StorageError::Io("the database task stopped".into()))??
        };
        let mut id = [0u8; 8];
        rand::fill(&mut id);
        Ok(PgStorage {
            pool,
            runtime: Some(runtime),
            holder: format!("{}-{}", std::process::id(), hex::encode(id)),
            timing,
        })
    }

    /// This process's name in the lease row.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease timing this store was opened with.
    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Runs `f` on the store's runtime and waits for it.
    fn block<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StorageError>> + Send + 'static,
    ) -> Result<T, StorageError> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| StorageError::Io("the database is closed".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| StorageError::Io("the database task stopped".into()))?
    }

    fn fetch_bytes(
        &self,
        sql: &'static str,
        a: i64,
        b: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let pool = self.pool.clone();
        self.block(async move {
            let mut q = sqlx::query_scalar::<_, Vec<u8>>(sql).bind(a);
            if let Some(b) = b {
                q = q.bind(b);
            }
            q.fetch_optional(&pool).await.map_err(db)
        })
    }

    fn fetch_index(&self, sql: &'static str, key: Vec<u8>) -> Result<Option<u64>, StorageError> {
        let pool = self.pool.clone();
        self.block(async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(key)
                .fetch_optional(&pool)
                .await
                .map_err(db)?
                .map(to_u64)
                .transpose()
        })
    }
}

/// The batch in the column arrays of one `INSERT ... SELECT FROM UNNEST`
/// per table: a group commit is a handful of statements whatever its size.
struct Rows {
    tile_levels: Vec<i16>,
    tile_indexes: Vec<i64>,
    tile_data: Vec<Vec<u8>>,
    bundle_indexes: Vec<i64>,
    bundle_data: Vec<Vec<u8>>,
    tids: Vec<Vec<u8>>,
    tid_indexes: Vec<i64>,
    leaves: Vec<Vec<u8>>,
    leaf_indexes: Vec<i64>,
    checkpoint: Option<(i64, String)>,
    previous: Option<(i64, String)>,
}

impl Rows {
    fn of(batch: &Batch) -> Result<Rows, StorageError> {
        let pair = |c: &StoredCheckpoint| Ok::<_, StorageError>((to_i64(c.size)?, c.note.clone()));
        Ok(Rows {
            tile_levels: batch.tiles.iter().map(|t| i16::from(t.0)).collect(),
            tile_indexes: batch
                .tiles
                .iter()
                .map(|t| to_i64(t.1))
                .collect::<Result<_, _>>()?,
            tile_data: batch.tiles.iter().map(|t| t.2.clone()).collect(),
            bundle_indexes: batch
                .bundles
                .iter()
                .map(|b| to_i64(b.0))
                .collect::<Result<_, _>>()?,
            bundle_data: batch.bundles.iter().map(|b| b.1.clone()).collect(),
            tids: batch.tids.iter().map(|t| t.0.0.to_vec()).collect(),
            tid_indexes: batch
                .tids
                .iter()
                .map(|t| to_i64(t.1))
                .collect::<Result<_, _>>()?,
            leaves: batch.leaves.iter().map(|l| l.0.to_vec()).collect(),
            leaf_indexes: batch
                .leaves
                .iter()
                .map(|l| to_i64(l.1))
                .collect::<Result<_, _>>()?,
            checkpoint: batch.checkpoint.as_ref().map(pair).transpose()?,
            previous: batch.previous.as_ref().map(pair).transpose()?,
        })
    }
}

async fn commit_rows(pool: PgPool, holder: String, rows: Rows) -> Result<(), StorageError> {
    let mut tx = pool.begin().await.map_err(db)?;
    // Locks the lease row until the transaction ends: a standby's takeover
    // waits for this commit, and this commit fails once the lease is gone.
    let held = sqlx::query_scalar::<_, i16>(
        "SELECT id FROM lease WHERE id = 1 AND holder = $1 AND expires_at > clock_timestamp() FOR UPDATE",
    )
    .bind(&holder)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    if held.is_none() {
        return Err(StorageError::NotSequencer(
            "this process does not hold the lease".into(),
        ));
    }
    // The compare-and-swap of the head: the batch extends what is latest,
    // or nothing is written.
    let swapped = match (&rows.checkpoint, &rows.previous) {
        (Some((size, note)), Some((old_size, old_note))) => sqlx::query(
            "UPDATE head SET size = $1, note = $2 WHERE id = 1 AND size = $3 AND note = $4",
        )
        .bind(size)
        .bind(note)
        .bind(old_size)
        .bind(old_note)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected(),
        (Some((size, note)), None) => sqlx::query(
            "INSERT INTO head (id, size, note) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(size)
        .bind(note)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected(),
        (None, previous) => {
            let head = sqlx::query_as::<_, (i64, String)>(
                "SELECT size, note FROM head WHERE id = 1 FOR UPDATE",
            )
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            u64::from(head.as_ref() == previous.as_ref())
        }
    };
    if swapped != 1 {
        return Err(StorageError::NotSequencer(
            "the latest checkpoint is no longer the one this batch extends".into(),
        ));
    }
    if !rows.tile_levels.is_empty() {
        sqlx::query(
            "INSERT INTO tiles (level, idx, data) SELECT * FROM UNNEST($1::int2[], $2::int8[], $3::bytea[]) \
             ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data",
        )
        .bind(&rows.tile_levels)
        .bind(&rows.tile_indexes)
        .bind(&rows.tile_data)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    if !rows.bundle_indexes.is_empty() {
        sqlx::query(
            "INSERT INTO bundles (idx, data) SELECT * FROM UNNEST($1::int8[], $2::bytea[]) \
             ON CONFLICT (idx) DO UPDATE SET data = EXCLUDED.data",
        )
        .bind(&rows.bundle_indexes)
        .bind(&rows.bundle_data)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    if !rows.tids.is_empty() {
        sqlx::query(
            "INSERT INTO tids (tid, idx) SELECT * FROM UNNEST($1::bytea[], $2::int8[]) \
             ON CONFLICT (tid) DO UPDATE SET idx = EXCLUDED.idx",
        )
        .bind(&rows.tids)
        .bind(&rows.tid_indexes)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    if !rows.leaves.is_empty() {
        sqlx::query(
            "INSERT INTO leaves (hash, idx) SELECT * FROM UNNEST($1::bytea[], $2::int8[]) \
             ON CONFLICT (hash) DO UPDATE SET idx = EXCLUDED.idx",
        )
        .bind(&rows.leaves)
        .bind(&rows.leaf_indexes)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    if let Some((size, note)) = &rows.checkpoint {
        sqlx::query(
            "INSERT INTO checkpoints (size, note) VALUES ($1, $2) \
             ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note",
        )
        .bind(size)
        .bind(note)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

impl Storage for PgStorage {
    fn commit(&self, batch: &Batch) -> Result<(), StorageError> {
        let rows = Rows::of(batch)?;
        let pool = self.pool.clone();
        let holder = self.holder.clone();
        self.block(commit_rows(pool, holder, rows))
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.fetch_bytes(
            "SELECT data FROM tiles WHERE level = $1 AND idx = $2",
            i64::from(level),
            Some(to_i64(index)?),
        )
    }

    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.fetch_bytes(
            "SELECT data FROM bundles WHERE idx = $1",
            to_i64(index)?,
            None,
        )
    }

    fn tid_index(&self, tid: &Tid) -> Result<Option<u64>, StorageError> {
        self.fetch_index("SELECT idx FROM tids WHERE tid = $1", tid.0.to_vec())
    }

    fn leaf_index(&self, leaf_hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.fetch_index("SELECT idx FROM leaves WHERE hash = $1", leaf_hash.to_vec())
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        let pool = self.pool.clone();
        let row = self.block(async move {
            sqlx::query_as::<_, (i64, String)>("SELECT size, note FROM head WHERE id = 1")
                .fetch_optional(&pool)
                .await
                .map_err(db)
        })?;
        stored(row)
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError> {
        let pool = self.pool.clone();
        let size = to_i64(size)?;
        let row = self.block(async move {
            sqlx::query_as::<_, (i64, String)>("SELECT size, note FROM checkpoints WHERE size = $1")
                .bind(size)
                .fetch_optional(&pool)
                .await
                .map_err(db)
        })?;
        stored(row)
    }

    fn lease(&self) -> Result<bool, StorageError> {
        let pool = self.pool.clone();
        let holder = self.holder.clone();
        let ms = self.timing.lease.as_secs_f64() * 1000.0;
        let taken = self.block(async move {
            sqlx::query(
                "INSERT INTO lease (id, holder, expires_at) \
                 VALUES (1, $1, clock_timestamp() + $2::float8 * interval '1 millisecond') \
                 ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
                 WHERE lease.holder = EXCLUDED.holder OR lease.expires_at <= clock_timestamp()",
            )
            .bind(holder)
            .bind(ms)
            .execute(&pool)
            .await
            .map_err(db)
        })?;
        Ok(taken.rows_affected() == 1)
    }

    fn release(&self) -> Result<(), StorageError> {
        let pool = self.pool.clone();
        let holder = self.holder.clone();
        self.block(async move {
            sqlx::query(
                "UPDATE lease SET expires_at = clock_timestamp() WHERE id = 1 AND holder = $1",
            )
            .bind(holder)
            .execute(&pool)
            .await
            .map_err(db)
        })?;
        Ok(())
    }
}
