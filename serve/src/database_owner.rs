//! Which keys a shared PostgreSQL database belongs to.
//!
//! On sled a server's data directory is new when its database file does not
//! exist ([`crate::secret::DataDir`]). With `--database postgres://...` the
//! directory holds only keys, so its being empty says nothing: the
//! database decides. Each server records in the table `acd_owner` the
//! public key it serves under (one row per kind of server: `bank`, `log`,
//! `merchant`). A start finds one of three things:
//!
//! - no row: the database is new, missing keys may be created, and the
//!   start then claims the database with its key;
//! - a row with the same key: another front-end of the same server, or the
//!   same one again;
//! - a row with another key: refused, since this server's keys would not
//!   match the data (tokens, checkpoints, accounts made under the other).
//!
//! The calls are blocking (servers open their storage before they serve);
//! each runs on a thread of its own, so they work inside a runtime too.

use sqlx::Connection;
use thiserror::Error;

/// Why the owner of a database could not be read or set.
#[derive(Debug, Error)]
pub enum OwnerError {
    #[error("the database {database} cannot be reached: {reason}")]
    Unreachable { database: String, reason: String },
    #[error(
        "the database {database} belongs to the {server} with key {theirs}, \
         but the data directory holds the key {ours}: give the data directory of that {server} \
         (its keys), or a database of its own"
    )]
    Foreign {
        database: String,
        server: String,
        theirs: String,
        ours: String,
    },
}

/// `url` as logs and errors may show it: host, port and database, without
/// user, password or query (which may carry a password too).
pub fn shown(url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("postgres://{host}/{path}")
}

/// A PostgreSQL connection URL. It may carry a password, so it shows
/// (in `Debug` and `Display`, hence in logs) only its host, port and
/// database.
#[derive(Clone, serde::Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct DatabaseUrl(String);

impl TryFrom<String> for DatabaseUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl DatabaseUrl {
    /// The whole URL, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl(s.to_owned()))
        } else {
            Err("expected a postgres:// URL".into())
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shown(&self.0))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS acd_owner \
                      (server text PRIMARY KEY, key text NOT NULL)";

/// Serializes the schema's creation between front-ends starting at once
/// (`CREATE TABLE IF NOT EXISTS` can race with itself).
const SCHEMA_LOCK: i64 = 0x0061_6364_6f77_6e72;

fn on_thread<T: Send + 'static>(
    database: &str,
    f: impl AsyncFnOnce() -> Result<T, sqlx::Error> + Send + 'static,
) -> Result<T, OwnerError> {
    let unreachable = |reason: String| OwnerError::Unreachable {
        database: database.to_owned(),
        reason,
    };
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(f()).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| unreachable("the connecting thread failed".into()))?
    .map_err(unreachable)
}

async fn connect(url: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(conn)
}

/// The key the `server` at `url` serves under, if one has claimed it.
/// `shown` names the database in errors (no password).
pub fn owner(url: &str, shown: &str, server: &str) -> Result<Option<String>, OwnerError> {
    let (url, server) = (url.to_owned(), server.to_owned());
    on_thread(shown, async move || {
        let mut conn = connect(&url).await?;
        let key: Option<(String,)> = sqlx::query_as("SELECT key FROM acd_owner WHERE server = $1")
            .bind(&server)
            .fetch_optional(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(key.map(|(k,)| k))
    })
}

/// The data directory `data` of a `server` whose storage is the PostgreSQL
/// database `database` (the URL), or without one sled in `data/db`: new,
/// and so allowed to create missing keys, exactly when that storage holds
/// no data yet (for PostgreSQL: no server of this kind claimed it).
pub fn data_dir(
    data: &std::path::Path,
    database: Option<&str>,
    server: &str,
) -> Result<crate::secret::DataDir, OwnerError> {
    Ok(match database {
        Some(url) => {
            let shown = shown(url);
            let owner = owner(url, &shown, server)?;
            crate::secret::DataDir::with_database(data, &shown, owner.is_none())
        }
        None => crate::secret::DataDir::inspect(data),
    })
}

/// Records that the `server` at `url` serves under `key`, unless one has
/// already: then that one must be `key`.
pub fn claim(url: &str, shown: &str, server: &str, key: &str) -> Result<(), OwnerError> {
    let (url_c, server_c, key_c) = (url.to_owned(), server.to_owned(), key.to_owned());
    let theirs = on_thread(shown, async move || {
        let mut conn = connect(&url_c).await?;
        sqlx::query("INSERT INTO acd_owner (server, key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&server_c)
            .bind(&key_c)
            .execute(&mut conn)
            .await?;
        let (theirs,): (String,) = sqlx::query_as("SELECT key FROM acd_owner WHERE server = $1")
            .bind(&server_c)
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(theirs)
    })?;
    if theirs == key {
        Ok(())
    } else {
        Err(OwnerError::Foreign {
            database: shown.to_owned(),
            server: server.to_owned(),
            theirs,
            ours: key.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A scratch database on the test cluster, or `None` (skipped) when
    /// there is none and `CI` is not set.
    fn database() -> Option<String> {
        let Ok(url) = std::env::var("ACD_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "ACD_TEST_POSTGRES_URL is not set (scripts/services/postgres.sh sets it)"
            );
            eprintln!("skipping: ACD_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("acd_owner_{:016x}", rand_name());
        let admin = url.clone();
        let create = format!("CREATE DATABASE {name}");
        on_thread("test", async move || {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&create).execute(&mut conn).await?;
            Ok(())
        })
        .unwrap();
        let (base, query) = url
            .split_once('?')
            .map_or((url.as_str(), ""), |(b, q)| (b, q));
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        Some(if query.is_empty() {
            format!("{base}/{name}")
        } else {
            format!("{base}/{name}?{query}")
        })
    }

    fn rand_name() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.finish()
    }

    // A new database has no owner; the first claim sets it, the same key claims it again, another key is refused and changes nothing; each kind of server has its own row.
    #[test]
    fn the_first_key_owns_the_database() {
        let Some(url) = database() else { return };
        assert_eq!(owner(&url, "db", "bank").unwrap(), None);
        claim(&url, "db", "bank", "k1").unwrap();
        claim(&url, "db", "bank", "k1").unwrap();
        let e = claim(&url, "db", "bank", "k2").unwrap_err();
        assert!(
            matches!(&e, OwnerError::Foreign { theirs, ours, .. } if theirs == "k1" && ours == "k2"),
            "{e}"
        );
        assert_eq!(owner(&url, "db", "bank").unwrap().as_deref(), Some("k1"));
        assert_eq!(owner(&url, "db", "log").unwrap(), None);
    }

    // Front-ends starting at once all see the table and agree on one owner.
    #[test]
    fn concurrent_first_starts_agree() {
        let Some(url) = database() else { return };
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || claim(&url, "db", "merchant", &format!("k{i}")).is_ok())
            })
            .collect();
        let won = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(won, 1);
    }

    // The shown form keeps host, port and database only.
    #[test]
    fn shown_hides_credentials() {
        assert_eq!(
            shown("postgresql://u:p@w@db.example:5433/ledger?password=x#f"),
            "postgres://db.example:5433/ledger"
        );
        assert_eq!(shown("postgres://h/d"), "postgres://h/d");
    }

    // An unreachable database is an error naming it as shown, never the URL's password.
    #[test]
    fn an_unreachable_database_is_named_without_its_password() {
        let e = owner(
            "postgres://u:s3cret@127.0.0.1:1/x",
            "postgres://127.0.0.1:1/x",
            "log",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("postgres://127.0.0.1:1/x"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
