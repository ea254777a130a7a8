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

/// The storage the behaviour suites run on: with `ACD_TEST_BACKEND=postgres`
/// (`scripts/test.sh` runs them once more so), the scratch database of the
/// server whose data directory is `data`, the same one each time it is
/// asked so that a restarted server finds its data; otherwise `None`, sled.
pub fn backend_database(data: &std::path::Path) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static MADE: Mutex<Option<HashMap<std::path::PathBuf, String>>> = Mutex::new(None);
    match std::env::var("ACD_TEST_BACKEND").as_deref() {
        Ok("postgres") => {}
        Ok("sled") | Err(_) => return None,
        Ok(other) => panic!("ACD_TEST_BACKEND={other}: expected sled or postgres"),
    }
    assert!(
        std::env::var_os("ACD_TEST_POSTGRES_URL").is_some(),
        "ACD_TEST_BACKEND=postgres needs ACD_TEST_POSTGRES_URL (scripts/services/postgres.sh)"
    );
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let made = made.get_or_insert_with(HashMap::new);
    if let Some(url) = made.get(data) {
        return Some(url.clone());
    }
    let url = scratch_database("backend")?;
    made.insert(data.to_owned(), url.clone());
    Some(url)
}
