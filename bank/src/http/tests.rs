//! Router-level tests: garbage bodies on every route and hostile path
//! segments never panic and never reach 500; every refusal is a JSON error
//! naming the problem. (Mutations of valid requests, which get past the
//! JSON shape, are in `tests/hostile.rs`.)

#![allow(clippy::unwrap_used)]

use acd_core::note::NoteSigner;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower::ServiceExt;

use crate::Bank;
use crate::config::{BankConfig, TrustedLog};

const POSTS: &[&str] = &[
    "/api/v1/withdraw",
    "/api/v1/register",
    "/api/v1/spend",
    "/api/v1/deposit",
    "/api/v1/refund",
    "/api/v1/dispute",
    "/admin/v1/accounts",
    "/admin/v1/credit",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        "\\PC{0,200}".prop_map(String::into_bytes),
        Just(b"{}".to_vec()),
        Just(b"null".to_vec()),
        Just(b"[]".to_vec()),
    ]
}

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

fn open_bank(dir: &std::path::Path) -> Bank {
    let mut config = BankConfig::new(dir.to_owned());
    // sled, or PostgreSQL when the suite runs on it (ACD_TEST_BACKEND).
    config.database = acd_testkit::pgdb::backend_database(dir).map(|u| u.parse().unwrap());
    config.denominations = vec![1, 10];
    // A log that is never reachable: checks that need it answer 503.
    let log = NoteSigner::new("log.test/hostile", SigningKey::from_bytes(&[4; 32])).unwrap();
    config.logs = vec![TrustedLog {
        vkey: log.verifier().vkey(),
        url: "http://127.0.0.1:9".into(),
    }];
    Bank::open(&config).unwrap()
}

/// A bank in a temporary directory and a runtime to call it from.
fn setup() -> (tempfile::TempDir, Bank, tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let bank = open_bank(&dir.path().join("bank"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (dir, bank, rt)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

use acd_testkit::mutation;

fn check_refusal(status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    let what = format!("a garbage request ({status})");
    mutation::check_answer(status.as_u16(), &String::from_utf8_lossy(body), &what)?;
    Ok(())
}

// Any body on any POST route, with and without the admin token, is refused
// with a JSON error (or, for an admin route, accepted), never a 500; the
// sums stay conserved.
#[test]
fn hostile_bodies_are_refused() {
    let (_dir, bank, rt) = setup();
    let token = bank.admin_token().to_owned();
    let app = bank.router();
    let mut runner = TestRunner::new(cases(400));
    let cases = (
        prop::sample::select(POSTS),
        body(),
        any::<bool>(),
        any::<bool>(),
    );
    runner
        .run(&cases, |(route, body, admin, json_type)| {
            rt.block_on(async {
                let mut req = Request::post(route);
                if json_type {
                    req = req.header("content-type", "application/json");
                }
                if admin {
                    req = req.header("authorization", format!("Bearer {token}"));
                }
                let (status, answer) = send(&app, req.body(Body::from(body)).unwrap()).await;
                check_refusal(status, &answer)
            })
        })
        .unwrap();
    let sums = bank.state().ledger().sums().unwrap();
    assert!(sums.conserved, "{sums:?}");
}

// Any path segment where the admin routes take an account key is refused
// with a JSON error.
#[test]
fn hostile_account_paths_are_refused() {
    let (_dir, bank, rt) = setup();
    let token = bank.admin_token().to_owned();
    let app = bank.router();
    let mut runner = TestRunner::new(cases(200));
    runner
        .run(&"[0-9a-fA-Fxz%./-]{0,70}", |segment| {
            rt.block_on(async {
                let Ok(req) = Request::get(format!("/admin/v1/accounts/{segment}"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                else {
                    return Ok(());
                };
                let (status, answer) = send(&app, req).await;
                prop_assert!(!status.is_success());
                check_refusal(status, &answer)
            })
        })
        .unwrap();
}

/// A request body whose bytes never come.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

// Past the cap of disputes read at once, a dispute is answered 503 `busy`
// at once; a declared dispute body over the limit is 413 before that.
#[test]
fn disputes_beyond_the_cap_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BankConfig::new(dir.path().join("bank"));
    config.denominations = vec![1];
    config.max_concurrent_disputes = 1;
    let bank = Bank::open(&config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = bank.router();
    let dispute = |body: Body| {
        Request::post("/api/v1/dispute")
            .header("content-type", "application/json")
            .body(body)
            .unwrap()
    };
    rt.block_on(async {
        let held = tokio::spawn(app.clone().oneshot(dispute(Body::new(Stalled))));
        tokio::task::yield_now().await;
        let (status, answer) = send(&app, dispute(Body::from("{}"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(String::from_utf8_lossy(&answer).contains("\"busy\""));
        let over = Request::post("/api/v1/dispute")
            .header("content-type", "application/json")
            .header(
                "content-length",
                (config.max_dispute_body_bytes + 1).to_string(),
            )
            .body(Body::new(Stalled))
            .unwrap();
        let (status, _) = send(&app, over).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        held.abort();
        let _ = held.await;
        let (status, _) = send(&app, dispute(Body::from("{}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    });
}
