//! The ledger's table in PostgreSQL ([`PgStore`]), so that any number of
//! bank processes on one database are one bank.
//!
//! Each record kind of [`crate::records`] has its own table (the schema is
//! `bank/migrations/`, embedded and applied at start, versioned by sqlx).
//! A batch of [`crate::ledger::Ledger::decide`] is one transaction: it
//! first locks the `totals` table (EXCLUSIVE: plain reads go on, other
//! batches wait), so the batches of all processes are decided one at a
//! time, each reading (at READ COMMITTED, after the lock) everything
//! committed before it; then its reads, then one write of the accepted
//! changes, one commit (synchronous_commit on: committed means on disk).
//! Every rule that one writer thread makes atomic on sled (one escrow per
//! token, one deposit per TID, idempotent repeats, the sums) is therefore
//! atomic across processes. A serialization failure or deadlock
//! (SQLSTATE 40001, 40P01) is [`StoreError::Conflict`]: the ledger decides
//! the batch again from scratch.
//!
//! The ledger is synchronous (its writer is a thread); the driver is
//! async. The store owns a small tokio runtime of its own and every call
//! runs there, the caller waiting on a channel, so it works from the
//! writer thread and from the server's async handlers alike.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::config::DatabaseUrl;
use crate::records;
use crate::store::{Items, Store, StoreError, StoreTx, Writes};

/// Key prefix of each record kind and its table.
const TABLES: &[(&[u8], &str)] = &[
    (records::ACCOUNT, "accounts"),
    (records::CREDIT, "credits"),
    (records::WITHDRAWAL, "withdrawals"),
    (records::REGISTRATION, "registrations"),
    (records::SPENT, "spent_tokens"),
    (records::ESCROW, "escrows"),
    (records::DUE, "due"),
    (records::CHECKPOINT, "checkpoints"),
    (records::TOTALS, "totals"),
];

/// The table of `key` and the key within it.
fn split(key: &[u8]) -> Result<(usize, &[u8]), StoreError> {
    TABLES
        .iter()
        .position(|(p, _)| key.starts_with(p))
        .map(|i| (i, &key[TABLES[i].0.len()..]))
        .ok_or_else(|| StoreError::Corrupt("a key of no table".into()))
}

fn table(i: usize) -> &'static str {
    TABLES[i].1
}

fn full_key(i: usize, k: &[u8]) -> Vec<u8> {
    let mut key = TABLES[i].0.to_vec();
    key.extend_from_slice(k);
    key
}

/// Connection failures and a database shutting down may heal (503); a
/// conflict is decided again; anything else is a damaged or foreign
/// database.
fn error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            if code == "40001" || code == "40P01" {
                StoreError::Conflict(code.to_string())
            } else if ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c)) {
                StoreError::Io(format!("database: {code}"))
            } else {
                StoreError::Corrupt(format!("database: {code}: {}", d.message()))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Io(e.to_string()),
        _ => StoreError::Corrupt(e.to_string()),
    }
}

/// One read: the pairs it finds, keys within the table.
enum Read {
    Get(usize, Vec<u8>),
    Range(usize, Vec<u8>, Vec<u8>),
    Prefix(usize, Vec<u8>),
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

impl Read {
    fn table(&self) -> usize {
        match self {
            Read::Get(t, _) | Read::Range(t, _, _) | Read::Prefix(t, _) => *t,
        }
    }

    async fn run(&self, conn: &mut PgConnection) -> Result<Rows, sqlx::Error> {
        match self {
            Read::Get(t, k) => {
                let sql = format!("SELECT key, value FROM {} WHERE key = $1", table(*t));
                sqlx::query_as(&sql).bind(k).fetch_all(conn).await
            }
            Read::Range(t, lo, hi) => {
                let sql = format!(
                    "SELECT key, value FROM {} WHERE key >= $1 AND key <= $2 ORDER BY key",
                    table(*t)
                );
                sqlx::query_as(&sql).bind(lo).bind(hi).fetch_all(conn).await
            }
            Read::Prefix(t, p) => {
                let sql = format!(
                    "SELECT key, value FROM {} WHERE key >= $1 \
                     AND substr(key, 1, length($1)) = $1 ORDER BY key",
                    table(*t)
                );
                sqlx::query_as(&sql).bind(p).fetch_all(conn).await
            }
        }
    }
}

fn range_read(start: &[u8], end: &[u8]) -> Result<Read, StoreError> {
    let (t, lo) = split(start)?;
    let (u, hi) = split(end)?;
    if t != u {
        return Err(StoreError::Corrupt("a range across tables".into()));
    }
    Ok(Read::Range(t, lo.to_vec(), hi.to_vec()))
}

fn prefix_read(prefix: &[u8]) -> Result<Read, StoreError> {
    let (t, p) = split(prefix)?;
    Ok(Read::Prefix(t, p.to_vec()))
}

fn items(
    read: Result<Read, StoreError>,
    f: impl FnOnce(Read) -> Result<Rows, StoreError>,
) -> Items<'static> {
    let rows = read.and_then(|r| {
        let t = r.table();
        f(r).map(|rows| {
            rows.into_iter()
                .map(|(k, v)| (full_key(t, &k), v))
                .collect::<Vec<_>>()
        })
    });
    match rows {
        Ok(rows) => Box::new(rows.into_iter().map(Ok)),
        Err(e) => Box::new(std::iter::once(Err(e))),
    }
}

/// Writes a batch: per table, one upsert of all its new values and one
/// delete of its removed keys.
async fn write_batch(conn: &mut PgConnection, writes: &Writes) -> Result<(), StoreError> {
    // Per table: the keys and the values to upsert.
    type Column = Vec<Vec<u8>>;
    let mut puts: Vec<(Column, Column)> = vec![(Vec::new(), Vec::new()); TABLES.len()];
    let mut deletes: Vec<Vec<Vec<u8>>> = vec![Vec::new(); TABLES.len()];
    for (key, value) in writes {
        let (t, k) = split(key)?;
        match value {
            Some(v) => {
                puts[t].0.push(k.to_vec());
                puts[t].1.push(v.clone());
            }
            None => deletes[t].push(k.to_vec()),
        }
    }
    for (t, (keys, values)) in puts.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO {} (key, value) SELECT * FROM UNNEST($1::bytea[], $2::bytea[]) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            table(t)
        );
        sqlx::query(&sql)
            .bind(keys)
            .bind(values)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
    }
    for (t, keys) in deletes.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let sql = format!("DELETE FROM {} WHERE key = ANY($1)", table(t));
        sqlx::query(&sql)
            .bind(keys)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
    }
    Ok(())
}

/// The runtime and the pool; the runtime is shut down without waiting,
/// which is allowed where blocking is not (a store dropped in a handler).
struct Shared {
    pool: PgPool,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn gone() -> StoreError {
    StoreError::Io("the database runtime stopped".into())
}

/// Runs `f` on `rt` and waits for it, from any thread (`block_on` would
/// refuse inside another runtime).
fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    f: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().map_err(|_| gone())
}

/// The ledger in PostgreSQL. Clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
}

/// How long a request waits for a connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl PgStore {
    /// Connects to `url` and applies the embedded migrations (under
    /// sqlx's advisory lock, so processes starting together agree).
    pub fn connect(url: &DatabaseUrl) -> Result<PgStore, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ledger-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let options: PgConnectOptions = url
            .expose()
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("invalid database URL {url}")))?;
        // Acknowledged means committed on disk, whatever the server's
        // default.
        let options = options.options([("synchronous_commit", "on")]);
        let pool = run_on(&rt, async move {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(error)?;
            sqlx::migrate!("./migrations")
                .run(&pool)
                .await
                .map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(e) => error(e),
                    other => StoreError::Corrupt(format!("migrations: {other}")),
                })?;
            Ok::<_, StoreError>(pool)
        })??;
        tracing::info!(database = %url, "the ledger is in PostgreSQL");
        Ok(PgStore {
            shared: Arc::new(Shared { pool, rt: Some(rt) }),
        })
    }

    /// Runs `f` on the store's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.shared.rt {
            Some(rt) => run_on(rt, f),
            None => Err(gone()),
        }
    }

    fn read(&self, read: Read) -> Result<Rows, StoreError> {
        let pool = self.shared.pool.clone();
        self.run(async move {
            let mut conn = pool.acquire().await.map_err(error)?;
            read.run(&mut conn).await.map_err(error)
        })?
    }

    /// A transaction, begun at `setup`.
    fn transaction(&self, setup: &'static str) -> Result<PgTx<'_>, StoreError> {
        let pool = self.shared.pool.clone();
        let tx = self.run(async move {
            let mut tx = pool.begin().await.map_err(error)?;
            sqlx::query(setup).execute(&mut *tx).await.map_err(error)?;
            Ok::<_, StoreError>(tx)
        })??;
        Ok(PgTx {
            store: self,
            tx: Mutex::new(Some(tx)),
            failed: Mutex::new(None),
        })
    }

    /// The pool (tests reach the database through it).
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }
}

/// Batches lock the totals table: one at a time across processes; plain
/// reads are not blocked.
const LOCK: &str = "LOCK TABLE totals IN EXCLUSIVE MODE";
/// The sums' scan reads one snapshot.
const SNAPSHOT: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl Store for PgStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (t, k) = split(key)?;
        Ok(self
            .read(Read::Get(t, k.to_vec()))?
            .into_iter()
            .next()
            .map(|(_, v)| v))
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_> {
        items(range_read(start, end), |r| self.read(r))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_> {
        items(prefix_read(prefix), |r| self.read(r))
    }

    fn write(&self, writes: &Writes) -> Result<(), StoreError> {
        Box::new(self.transaction(LOCK)?).commit(writes)
    }

    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        Ok(Box::new(self.transaction(LOCK)?))
    }

    fn snapshot(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        Ok(Box::new(self.transaction(SNAPSHOT)?))
    }
}

/// A transaction in progress. After a failed statement PostgreSQL ignores
/// the rest of the transaction and turns its COMMIT into a rollback, so
/// the first failure is kept and is what [`StoreTx::commit`] answers.
struct PgTx<'a> {
    store: &'a PgStore,
    tx: Mutex<Option<Transaction<'static, Postgres>>>,
    failed: Mutex<Option<StoreError>>,
}

impl PgTx<'_> {
    fn take(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        if let Some(e) = lock(&self.failed).clone() {
            return Err(e);
        }
        lock(&self.tx)
            .take()
            .ok_or_else(|| StoreError::Io("the transaction was lost".into()))
    }

    fn fail(&self, e: StoreError) -> StoreError {
        lock(&self.failed).get_or_insert(e).clone()
    }

    fn read(&self, read: Read) -> Result<Rows, StoreError> {
        let mut tx = self.take()?;
        let (tx, rows) = self
            .store
            .run(async move {
                let rows = read.run(&mut tx).await.map_err(error);
                (tx, rows)
            })
            .map_err(|e| self.fail(e))?;
        *lock(&self.tx) = Some(tx);
        rows.map_err(|e| self.fail(e))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change under these locks is one assignment.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StoreTx for PgTx<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (t, k) = split(key)?;
        Ok(self
            .read(Read::Get(t, k.to_vec()))?
            .into_iter()
            .next()
            .map(|(_, v)| v))
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_> {
        items(range_read(start, end), |r| self.read(r))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_> {
        items(prefix_read(prefix), |r| self.read(r))
    }

    fn commit(self: Box<Self>, writes: &Writes) -> Result<(), StoreError> {
        let mut tx = self.take()?;
        let writes = writes.clone();
        self.store.run(async move {
            write_batch(&mut tx, &writes).await?;
            tx.commit().await.map_err(error)
        })?
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        // A transaction not committed is rolled back, on the runtime: the
        // driver returns its connection to the pool there.
        if let Some(tx) = lock(&self.tx).take()
            && let Some(rt) = &self.store.shared.rt
        {
            rt.spawn(async move {
                let _ = tx.rollback().await;
            });
        }
    }
}

/// Fresh databases for the tests.
#[cfg(test)]
pub(crate) mod testing {
    use sqlx::{Connection, Executor};

    use crate::config::DatabaseUrl;

    /// A new database under the server at `ACD_TEST_POSTGRES_URL`
    /// (`scripts/services/postgres.sh` starts one). Without it: a panic if
    /// `CI` is set, else a line saying the test is skipped, and `None`.
    #[allow(clippy::unwrap_used)]
    pub fn fresh_database() -> Option<DatabaseUrl> {
        let Ok(admin) = std::env::var("ACD_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "ACD_TEST_POSTGRES_URL is not set (scripts/services/postgres.sh starts a server)"
            );
            eprintln!("skipped: ACD_TEST_POSTGRES_URL is not set, no PostgreSQL to test on");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("acd_{}_{n}_{nanos}", std::process::id());
        let sql = format!("CREATE DATABASE {name}");
        let url = admin.clone();
        // On a thread of its own: a test may already be in a runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                c.execute(sql.as_str()).await.unwrap();
            });
        })
        .join()
        .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        Some(format!("{base}/{name}").parse().unwrap())
    }
}
