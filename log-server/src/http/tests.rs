//! Router-level tests: hostile bodies, paths and queries never panic and
//! never reach 5xx; every refusal is a JSON error naming the problem.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acd_core::note::NoteSigner;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

use crate::Log;
use crate::clock::ManualClock;
use crate::config::LogConfig;
use crate::storage::MemoryStorage;

fn app() -> (axum::Router, Log) {
    let config = LogConfig::new("/nonexistent".into(), "log.test/http".into());
    let signer = NoteSigner::new("log.test/http", SigningKey::from_bytes(&[4; 32])).unwrap();
    let log = Log::with_storage(
        &config,
        Arc::new(MemoryStorage::new()),
        signer,
        Arc::new(ManualClock::new(1_000_000)),
    )
    .unwrap();
    (log.router(config.max_body_bytes), log)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

fn assert_json_error(status: StatusCode, body: &[u8]) {
    assert!(status.is_client_error(), "status {status}");
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert!(!v["error"].as_str().unwrap().is_empty());
    assert!(!v["message"].as_str().unwrap().is_empty());
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    // Any body posted to the append endpoints is refused with a 4xx JSON error, and nothing is appended.
    #[test]
    fn random_bodies_are_refused(body in proptest::collection::vec(any::<u8>(), 0..600), abort in any::<bool>()) {
        let rt = rt();
        rt.block_on(async {
            let (app, log) = app();
            let uri = if abort { "/api/v1/abort" } else { "/api/v1/commit" };
            let req = Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let (status, body) = send(&app, req).await;
            assert_json_error(status, &body);
            assert_eq!(log.sequencer().published().size, 0);
        });
    }

    // Any path under /tile/ is either served or refused with 404, never an error of the server.
    #[test]
    fn random_tile_paths_are_refused(path in "[0-9a-z./x%]{0,40}") {
        let rt = rt();
        rt.block_on(async {
            let (app, _log) = app();
            let Ok(req) = Request::get(format!("/tile/{path}")).body(Body::empty()) else {
                return;
            };
            let (status, body) = send(&app, req).await;
            assert_json_error(status, &body);
        });
    }

    // Any query on the proof and entry endpoints is refused with a 4xx JSON error on an empty log.
    #[test]
    fn random_queries_are_refused(q in "[a-z_=&0-9%-]{0,40}", which in 0usize..3) {
        let rt = rt();
        rt.block_on(async {
            let (app, _log) = app();
            let base = ["/api/v1/inclusion", "/api/v1/consistency", "/api/v1/entries"][which];
            let Ok(req) = Request::get(format!("{base}?{q}")).body(Body::empty()) else {
                return;
            };
            let (status, body) = send(&app, req).await;
            if status.is_success() {
                // Only a trivial range of an empty log can succeed.
                assert!(base != "/api/v1/inclusion", "{q}");
            } else {
                assert_json_error(status, &body);
            }
        });
    }
}

// A body over the limit is refused with 413 and a JSON error.
#[tokio::test]
async fn oversize_body_is_413() {
    let (app, _log) = app();
    let req = Request::post("/api/v1/commit")
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; 64 * 1024]))
        .unwrap();
    let (status, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_json_error(status, &body);
}

// Unknown routes and malformed TIDs are JSON errors too.
#[tokio::test]
async fn unknown_route_and_bad_tid() {
    let (app, _log) = app();
    let (status, body) = send(&app, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_json_error(status, &body);
    let (status, body) = send(&app, Request::get("/tx/xyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_error(status, &body);
    // A path that does not percent-decode to UTF-8.
    for uri in ["/tx/%ff", "/tile/0/%ff"] {
        let (status, body) = send(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_json_error(status, &body);
    }
}

use acd_testkit::mutation;

// Valid commit and abort requests mutated at one random place: never a
// 500, every refusal a JSON error, and the stored log still checks out
// entry by entry (every entry appended had a valid signature).
#[test]
fn mutated_requests_are_refused_cleanly() {
    use acd_core::entry::{EscrowNotice, KeyCommit, Tid};
    use acd_core::log_api::{AbortRequest, CommitRequest};
    use proptest::test_runner::{Config, TestRunner};

    const ORIGIN: &str = "log.test/http";
    let bank = SigningKey::from_bytes(&[6; 32]);
    let merchant = SigningKey::from_bytes(&[7; 32]);
    let mut config = LogConfig::new("/nonexistent".into(), ORIGIN.into());
    config.trusted_banks = vec![hex::encode(bank.verifying_key().to_bytes())];
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[4; 32])).unwrap();
    let verifier = signer.verifier();
    let storage = Arc::new(MemoryStorage::new());
    let log = Log::with_storage(
        &config,
        storage.clone(),
        signer,
        Arc::new(ManualClock::new(1_000_000)),
    )
    .unwrap();
    let app = log.router(config.max_body_bytes);

    let commit = {
        let kc = KeyCommit {
            log_origin: ORIGIN.into(),
            tid: Tid([1; 16]),
            merchant: merchant.verifying_key().to_bytes(),
            expiration_ms: 2_000_000,
            key: [9; 32],
        };
        CommitRequest {
            tid: kc.tid,
            merchant: kc.merchant,
            expiration_ms: kc.expiration_ms,
            key: kc.key,
            signature: kc.sign(&merchant),
        }
    };
    let abort = {
        let notice = EscrowNotice {
            log_origin: ORIGIN.into(),
            tid: Tid([2; 16]),
            merchant: merchant.verifying_key().to_bytes(),
            expiration_ms: 500_000,
        };
        AbortRequest {
            tid: notice.tid,
            merchant: notice.merchant,
            expiration_ms: notice.expiration_ms,
            bank: bank.verifying_key().to_bytes(),
            signature: notice.sign(&bank),
        }
    };
    let templates = [
        ("/api/v1/commit", serde_json::to_value(&commit).unwrap()),
        ("/api/v1/abort", serde_json::to_value(&abort).unwrap()),
    ];
    let rt = rt();
    let config = Config {
        cases: 600,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&(0..templates.len(), mutation::mutation()), |(t, m)| {
            let (route, template) = &templates[t];
            let req = Request::post(*route)
                .header("content-type", "application/json")
                .body(Body::from(mutation::apply(template, &m)))
                .unwrap();
            let (status, body) = rt.block_on(send(&app, req));
            let text = String::from_utf8_lossy(&body);
            mutation::check_answer(status.as_u16(), &text, &format!("{route} after {m:?}"))?;
            Ok(())
        })
        .unwrap();
    let size = crate::check::check_log(&*storage, &verifier).unwrap();
    assert!(size <= 2, "only the two valid requests append: {size}");
    let (status, page) = rt.block_on(send(
        &app,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    ));
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("status=\"500\""), "{page}");
    assert!(
        page.contains(&format!("\nacd_log_tree_size {size}\n")),
        "{page}"
    );
}

// The checked-in example configuration starts a real log on sled (data
// directory and address swapped for a test's), which serves its checkpoint
// and stops cleanly on shutdown.
#[tokio::test]
async fn example_config_starts_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::from_toml(include_str!("../../log.example.toml")).unwrap();
    config.data = dir.path().to_owned();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let log = Log::open(&config, Arc::new(crate::clock::SystemClock)).unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(log.run(listener, config.max_body_bytes, async {
        let _ = stopped.await;
    }));
    let note = acd_serve::http_client()
        .get(format!("http://{addr}/checkpoint"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(note.starts_with("log.example.com/acd/1\n0\n"), "{note}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A commit signed for the log of [`app`], expiring far ahead.
fn signed_commit(tid: u8) -> acd_core::log_api::CommitRequest {
    use acd_core::entry::{KeyCommit, Tid};
    let merchant = SigningKey::from_bytes(&[7; 32]);
    let kc = KeyCommit {
        log_origin: "log.test/http".into(),
        tid: Tid([tid; 16]),
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms: 10_000_000,
        key: [9; 32],
    };
    acd_core::log_api::CommitRequest {
        tid: kc.tid,
        merchant: kc.merchant,
        expiration_ms: kc.expiration_ms,
        key: kc.key,
        signature: kc.sign(&merchant),
    }
}

fn octets(uri: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/octet-stream")
        .body(Body::from(body))
        .unwrap()
}

// The 152-byte binary commit appends like its JSON form; a body of any
// other length is `400 bad_commit` and appends nothing.
#[tokio::test]
async fn binary_commits_append_like_json_ones() {
    let (app, log) = app();
    let req = signed_commit(1);
    let (status, body) = send(&app, octets("/api/v1/commit", req.to_bytes().to_vec())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let proof: acd_core::log_api::EntryProof = serde_json::from_slice(&body).unwrap();
    assert_eq!((proof.index, proof.tid), (0, req.tid));
    for len in [0, 151, 153, 304] {
        let mut bytes = req.to_bytes().to_vec();
        bytes.resize(len, 0);
        let (status, body) = send(&app, octets("/api/v1/commit", bytes)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{len}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "bad_commit", "{len}");
    }
    assert_eq!(log.sequencer().published().size, 1);
}

// A batch answers each commit in order: proofs for the good ones (one
// checkpoint for all, being one group commit) and the refusal of a forged
// one, which is not appended; JSON and binary batches agree; an empty,
// ragged or oversized batch is refused whole.
#[tokio::test]
async fn a_batch_answers_each_commit_in_order() {
    use acd_core::log_api::{CommitBatch, CommitBatchResponse, MAX_BATCH_COMMITS};
    let (app, log) = app();
    let mut forged = signed_commit(3);
    forged.key[0] ^= 1;
    let batch = vec![signed_commit(1), signed_commit(2), forged, signed_commit(4)];
    let body: Vec<u8> = batch.iter().flat_map(|r| r.to_bytes()).collect();
    let (status, bytes) = send(&app, octets("/api/v1/commits", body)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let answer: CommitBatchResponse = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer.results.len(), 4);
    for (i, r) in answer.results.iter().enumerate() {
        if i == 2 {
            assert_eq!(r.error.as_ref().unwrap().error, "bad_signature");
            assert!(r.proof.is_none());
        } else {
            let p = r.proof.as_ref().unwrap();
            assert_eq!(p.tid, batch[i].tid);
            assert!(r.error.is_none());
        }
    }
    assert_eq!(log.sequencer().published().size, 3);

    // The same commits again as JSON: each answered with its entry.
    let json = serde_json::to_vec(&CommitBatch {
        commits: batch.clone(),
    })
    .unwrap();
    let req = Request::post("/api/v1/commits")
        .header("content-type", "application/json")
        .body(Body::from(json))
        .unwrap();
    let (status, bytes) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    let again: CommitBatchResponse = serde_json::from_slice(&bytes).unwrap();
    for (a, b) in again.results.iter().zip(&answer.results) {
        assert_eq!(
            a.proof.as_ref().map(|p| p.index),
            b.proof.as_ref().map(|p| p.index)
        );
        assert_eq!(a.error.is_some(), b.error.is_some());
    }
    assert_eq!(log.sequencer().published().size, 3);

    let too_many: Vec<u8> = (0..=MAX_BATCH_COMMITS)
        .flat_map(|_| signed_commit(9).to_bytes())
        .collect();
    for body in [vec![], vec![0u8; 200], too_many] {
        let (status, bytes) = send(&app, octets("/api/v1/commits", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"], "bad_batch");
    }
    let empty = Request::post("/api/v1/commits")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"commits": []}"#))
        .unwrap();
    let (status, _) = send(&app, empty).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(log.sequencer().published().size, 3);
}
