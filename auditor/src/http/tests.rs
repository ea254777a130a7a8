//! The witness's routes through the router, with hostile senders.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::metrics;
use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::cosignature::Cosigner;
use acd_core::merkle::MemoryTree;
use acd_core::note::NoteSigner;
use acd_core::witness::AddCheckpoint;
use axum::body::Body;
use axum::http::Request;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use tower::ServiceExt;

const ORIGIN: &str = "log.test/s";
const TOKEN: &str = "0123456789abcdef0123";

fn log_key() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap()
}

fn note(n: u64, salt: u8) -> String {
    let mut t = MemoryTree::new();
    for i in 0..n {
        t.push(acd_core::merkle::leaf_hash(&[salt, i as u8]));
    }
    let c = Checkpoint {
        origin: ORIGIN.into(),
        size: n,
        root: t.root(),
        extensions: vec![],
    };
    SignedCheckpoint::sign(c, &log_key()).unwrap().to_text()
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn add(note: String) -> Request<Body> {
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: note,
    }
    .to_body();
    Request::post("/add-checkpoint")
        .body(Body::from(body))
        .unwrap()
}

// The witness serves what it cosigned at /gossip/v1/checkpoints and its counters at /metrics; a frozen origin is refused with 403 "frozen" until a request with the admin token clears it.
#[tokio::test]
async fn gossip_metrics_frozen_and_admin_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cosigner = Cosigner::new("witness.test/s", SigningKey::from_bytes(&[2; 32])).unwrap();
    let witness = Arc::new(
        Witness::open(dir.path(), cosigner, vec![log_key().verifier()])
            .unwrap()
            .with_admin_token(TOKEN.into()),
    );
    let app = router(witness.clone());
    assert_eq!(call(&app, add(note(4, 0))).await.0, StatusCode::OK);

    let (status, body) = call(
        &app,
        Request::get(gossip::PATH).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let held: GossipCheckpoints = serde_json::from_str(&body).unwrap();
    assert_eq!(held.checkpoints[0].origin, ORIGIN);
    assert_eq!(held.checkpoints[0].checkpoint, note(4, 0));

    let crate::witness::PeerCheck::SplitView(ev) = witness.check_peer(&note(4, 1)).unwrap() else {
        panic!("not a split view");
    };
    witness.freeze(&ev).unwrap();
    let (status, body) = call(&app, add(note(5, 0))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "frozen");

    let (_, page) = call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(
        metrics::read(&page, "acd_auditor_split_views_total"),
        Some(1.0)
    );
    assert_eq!(
        metrics::read(&page, "acd_auditor_frozen_origins"),
        Some(1.0)
    );
    assert_eq!(
        metrics::read(&page, "acd_auditor_cosignatures_total"),
        Some(1.0)
    );

    let clear = |token: &str| {
        Request::post(format!("/admin/clear?origin={ORIGIN}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&app, clear("wrong")).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &app,
        Request::get("/add-checkpoint").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "method_not_allowed", "{body}");
    let no_origin = Request::post("/admin/clear")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&app, no_origin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "malformed", "{body}");
    assert!(witness.frozen().is_frozen(ORIGIN).unwrap());
    let (status, body) = call(&app, clear(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = AddCheckpoint {
        old_size: 4,
        proof: vec![],
        checkpoint: note(4, 0),
    }
    .to_body();
    let req = Request::post("/add-checkpoint")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
}

// Without a configured token the admin endpoint does not exist.
#[tokio::test]
async fn admin_clear_is_off_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let cosigner = Cosigner::new("witness.test/s", SigningKey::from_bytes(&[2; 32])).unwrap();
    let witness = Arc::new(Witness::open(dir.path(), cosigner, vec![]).unwrap());
    let req = Request::post("/admin/clear?origin=x")
        .header(header::AUTHORIZATION, "Bearer ")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&router(witness), req).await.0, StatusCode::NOT_FOUND);
}

// Hostile senders: a valid add-checkpoint request (old size, a real
// consistency proof, a signed checkpoint) with its text damaged at one
// place. The witness never answers 500, refuses with a JSON error (or the
// spec's 409 size body), never cosigns a checkpoint the log did not sign,
// and freezes nothing: a sender's garbage is no evidence.
#[test]
fn damaged_requests_are_refused_cleanly() {
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    #[derive(Debug, Clone)]
    enum Damage {
        Replace(Index, String),
        Delete(Index),
        Duplicate(Index),
        ChangeChar(Index, Index),
        Truncate(Index),
    }
    let damage = prop_oneof![
        (any::<Index>(), "\\PC{0,60}").prop_map(|(i, s)| Damage::Replace(i, s)),
        any::<Index>().prop_map(Damage::Delete),
        any::<Index>().prop_map(Damage::Duplicate),
        (any::<Index>(), any::<Index>()).prop_map(|(i, c)| Damage::ChangeChar(i, c)),
        any::<Index>().prop_map(Damage::Truncate),
    ];
    let apply = |body: &str, d: &Damage| -> Vec<u8> {
        let mut lines: Vec<String> = body.split('\n').map(str::to_owned).collect();
        let n = lines.len();
        match d {
            Damage::Replace(i, s) => lines[i.index(n)] = s.clone(),
            Damage::Delete(i) => {
                lines.remove(i.index(n));
            }
            Damage::Duplicate(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            Damage::ChangeChar(i, c) => {
                let line = &mut lines[i.index(n)];
                let mut chars: Vec<char> = line.chars().collect();
                if !chars.is_empty() {
                    let at = c.index(chars.len());
                    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
                    *line = chars.into_iter().collect();
                }
            }
            Damage::Truncate(i) => return body.as_bytes()[..i.index(body.len())].to_vec(),
        }
        lines.join("\n").into_bytes()
    };

    let dir = tempfile::tempdir().unwrap();
    let cosigner = Cosigner::new("witness.test/s", SigningKey::from_bytes(&[2; 32])).unwrap();
    let witness =
        Arc::new(Witness::open(dir.path(), cosigner, vec![log_key().verifier()]).unwrap());
    let app = router(witness.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(call(&app, add(note(4, 0)))).0, StatusCode::OK);
    let mut tree = acd_core::merkle::MemoryTree::new();
    for i in 0..8u64 {
        tree.push(acd_core::merkle::leaf_hash(&[0, i as u8]));
    }
    let template = AddCheckpoint {
        old_size: 4,
        proof: tree.consistency_proof(4, 8).unwrap(),
        checkpoint: note(8, 0),
    }
    .to_body();
    let genuine = [note(4, 0), note(8, 0)];
    // Cut inside the em dash of the signature line: not UTF-8 any more.
    let dash = template.find('\u{2014}').unwrap();
    let cut = template.as_bytes()[..dash + 1].to_vec();
    let (status, text) = rt.block_on(call(
        &app,
        Request::post("/add-checkpoint")
            .body(Body::from(cut))
            .unwrap(),
    ));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "malformed", "{text}");
    let config = Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&damage, |d| {
            let body = apply(&template, &d);
            let req = Request::post("/add-checkpoint")
                .body(Body::from(body))
                .unwrap();
            let (status, text) = rt.block_on(call(&app, req));
            prop_assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{d:?}: {text}");
            if status == StatusCode::CONFLICT && text.trim().parse::<u64>().is_ok() {
                return Ok(());
            }
            if !status.is_success() {
                prop_assert!(status.is_client_error(), "{status} after {d:?}: {text}");
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                prop_assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()));
            }
            let latest = witness.latest(ORIGIN).unwrap().unwrap();
            prop_assert!(genuine.contains(&latest.note), "cosigned {}", latest.note);
            prop_assert!(!witness.frozen().is_frozen(ORIGIN).unwrap());
            Ok(())
        })
        .unwrap();
}

// The checked-in example configuration (its token file and peers swapped
// for a test's) starts a witness that serves its key, gossip and the admin
// route the token enables, and stops on shutdown.
#[tokio::test]
async fn example_config_starts_a_witness() {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        crate::config::Config::from_toml(include_str!("../../auditor.example.toml")).unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    config.admin_token_file = Some(token_file);
    config.peers = vec!["http://127.0.0.1:1".into()];
    let witness = Arc::new(
        crate::setup::open_witness(
            &mut rand::rng(),
            dir.path(),
            "witness.test/example",
            &[log_key().verifier().vkey()],
            config.key_type,
            config.admin_token().unwrap(),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(
        listener,
        witness.clone(),
        config.peers.clone(),
        config.gossip_interval(),
        async {
            let _ = stopped.await;
        },
    ));
    let http = acd_serve::http_client();
    let vkey = http
        .get(format!("{base}/vkey"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(vkey.trim(), witness.cosigner().verifier().vkey());
    let cleared = http
        .post(format!("{base}/admin/clear?origin={ORIGIN}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), reqwest::StatusCode::OK);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
