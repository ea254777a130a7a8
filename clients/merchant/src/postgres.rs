//! The merchant's purchases in PostgreSQL ([`PgPurchases`]), so that any
//! number of merchant front-ends with the same keys (one data directory,
//! read only) on one database are one shop.
//!
//! One row per TID (`clients/merchant/migrations/`, embedded and applied at
//! start). A write is one upsert, committed with `synchronous_commit` on
//! before it is acknowledged. Front-ends do not lock a TID among
//! themselves: every step a merchant takes for a purchase is idempotent
//! where it is decided (the log keeps one commit per TID and answers a
//! repeat with the same entry, the bank pays one deposit per TID), and the
//! upsert never lowers a purchase's stage, so a front-end acting on an
//! older read cannot move a purchase backwards.

use std::time::Duration;

use acd_core::entry::Tid;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::store::{Purchase, StoreError};

/// How long a request waits for a free connection before it is answered
/// 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connection failures and a database shutting down may heal (503);
/// anything else is a damaged or foreign database.
fn error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            if ["08", "40", "53", "57", "58"]
                .iter()
                .any(|c| code.starts_with(c))
            {
                StoreError::Unavailable(format!("database: {code}"))
            } else {
                StoreError::Corrupt(format!("database: {code}: {}", d.message()))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Corrupt(e.to_string()),
    }
}

/// The purchases table through a connection pool.
#[derive(Clone)]
pub struct PgPurchases {
    pool: PgPool,
}

impl PgPurchases {
    /// Connects to `url` and applies the embedded migrations (under
    /// sqlx's advisory lock, so front-ends starting together agree).
    pub async fn connect(url: &str) -> Result<PgPurchases, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Corrupt("an invalid database URL".into()))?;
        // Acknowledged means committed on disk, whatever the server's
        // default.
        let options = options.options([("synchronous_commit", "on")]);
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
        Ok(PgPurchases { pool })
    }

    pub async fn get(&self, tid: &Tid) -> Result<Option<Purchase>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT record FROM purchases WHERE tid = $1")
            .bind(tid.0.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?;
        row.map(|(record,)| {
            serde_json::from_slice(&record)
                .map_err(|e| StoreError::Corrupt(format!("purchase {tid}: {e}")))
        })
        .transpose()
    }

    pub async fn put(&self, p: &Purchase) -> Result<(), StoreError> {
        let record = serde_json::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let stage = p.stage();
        sqlx::query(
            "INSERT INTO purchases (tid, stage, pending, record) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tid) DO UPDATE \
             SET stage = EXCLUDED.stage, pending = EXCLUDED.pending, record = EXCLUDED.record \
             WHERE purchases.stage <= EXCLUDED.stage",
        )
        .bind(p.tid().0.as_slice())
        .bind(stage.rank())
        .bind(stage.pending())
        .bind(record)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(())
    }

    pub async fn pending(&self) -> Result<Vec<Tid>, StoreError> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT tid FROM purchases WHERE pending ORDER BY tid")
                .fetch_all(&self.pool)
                .await
                .map_err(error)?;
        rows.into_iter()
            .map(|(tid,)| {
                <[u8; 16]>::try_from(tid.as_slice())
                    .map(Tid)
                    .map_err(|_| StoreError::Corrupt("a TID that is not 16 bytes".into()))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use acd_core::entry::Outcome;
    use acd_core::log_api::EntryProof;
    use acd_core::purchase::EscrowTerms;

    fn proof(tid: Tid, outcome: Outcome) -> EntryProof {
        EntryProof {
            index: 3,
            tid,
            outcome,
            timestamp_ms: 1,
            entry: vec![1, 2, 3],
            leaf_hash: [0; 32],
            tree_size: 4,
            inclusion: vec![],
            checkpoint: String::new(),
        }
    }

    fn purchase(tid: Tid) -> Purchase {
        Purchase {
            terms: EscrowTerms {
                bank: [1; 32],
                tid,
                merchant: [2; 32],
                price: 5,
                expiration_ms: 6,
                log_origin: "log.test/pg".into(),
            },
            key: [7; 32],
            escrow: None,
            commit: None,
            deposit: None,
            abort: None,
            unpaid: None,
            conflict: None,
        }
    }

    // A record reads back as written; a committed one is pending work, a
    // final one is not; a write of an earlier stage (a front-end acting on
    // an older read) leaves the later record as it is.
    #[tokio::test]
    async fn records_move_only_forward() {
        let Some(url) = acd_testkit::pgdb::scratch_database("records_move_only_forward") else {
            return;
        };
        let store = PgPurchases::connect(&url).await.unwrap();
        let tid = Tid([9; 16]);
        assert!(store.get(&tid).await.unwrap().is_none());
        let mut committed = purchase(tid);
        committed.commit = Some(proof(tid, Outcome::Commit));
        store.put(&committed).await.unwrap();
        assert_eq!(store.pending().await.unwrap(), vec![tid]);
        let mut aborted = purchase(tid);
        aborted.abort = Some(proof(tid, Outcome::Abort));
        store.put(&aborted).await.unwrap();
        assert!(store.pending().await.unwrap().is_empty());
        store.put(&committed).await.unwrap();
        let now = store.get(&tid).await.unwrap().unwrap();
        assert_eq!(now.stage(), crate::store::Stage::Aborted);
        assert!(store.pending().await.unwrap().is_empty());
        // A second connection (another front-end) migrates nothing again
        // and reads the same record.
        let other = PgPurchases::connect(&url).await.unwrap();
        let seen = other.get(&tid).await.unwrap().unwrap();
        assert_eq!((seen.terms, seen.key), (now.terms, now.key));
    }

    // A database that is not there is an error that may heal (503), not a
    // panic.
    #[tokio::test]
    async fn an_unreachable_database_is_unavailable() {
        let e = PgPurchases::connect("postgres://acd@127.0.0.1:1/none")
            .await
            .err()
            .unwrap();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }
}
