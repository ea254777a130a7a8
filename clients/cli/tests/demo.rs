//! The README's first command: `acd demo` runs every step and every failure
//! path to the end, and fails if any outcome, balance or sum is not the
//! one the protocol promises.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = acd::demo::run(Some(dir.path().join("demo"))).await;
    assert!(result.is_ok(), "{result:?}");
}
