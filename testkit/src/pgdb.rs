//! Scratch PostgreSQL databases for tests: `scripts/services/postgres.sh`
//! starts a cluster and exports `ACD_TEST_POSTGRES_URL` (a superuser URL);
//! each test makes its own database under it.

use sqlx::Connection;

/// A new, empty database on the test cluster, as a URL. Without
/// `ACD_TEST_POSTGRES_URL` this fails when `CI` is set and otherwise
/// prints why `test` is skipped and returns `None`.
pub fn scratch_database(test: &str) -> Option<String> {
    let Ok(url) = std::env::var("ACD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: ACD_TEST_POSTGRES_URL is not set (scripts/services/postgres.sh sets it)"
        );
        eprintln!(
            "skipping {test}: ACD_TEST_POSTGRES_URL is not set (see scripts/services/postgres.sh)"
        );
        return None;
    };
    let name = format!("acd_{:016x}", rand::random::<u64>());
    // On a thread of its own: callers may be inside a runtime already.
    let (url_c, name_c) = (url.clone(), name.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url_c)
                .await
                .expect("the test cluster at ACD_TEST_POSTGRES_URL answers");
            sqlx::query(&format!("CREATE DATABASE {name_c}"))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
            let _ = conn.close().await;
        });
    })
    .join()
    .expect("the database is created");
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (url.as_str(), String::new()),
    };
    let (base, _) = path.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}{query}"))
}
