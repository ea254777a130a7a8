//! Hostile and out-of-rule requests over real HTTP: each gets the right 4xx
//! with a JSON error naming the problem, and none changes the log: the
//! checkpoint after them is byte for byte the one before.

#![allow(clippy::unwrap_used)]

use acd::log_client::verify_entry_proof;
use acd_core::log_api::{AbortRequest, CommitRequest, EntryProof};
use acd_core::note::NoteVerifier;
use acd_tests::{LogProcess, abort, commit, fresh_tid, key, now_ms};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ORIGIN: &str = "http.test/log";
const MAX_BODY: usize = 16 * 1024;

struct Log {
    process: LogProcess,
    http: reqwest::Client,
}

/// A response: status, content type, and the body parsed as JSON (Null if
/// it is not JSON).
struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Log {
    async fn start(banks: &[[u8; 32]]) -> (Log, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let process = LogProcess::start(dir.path(), ORIGIN, banks);
        let log = Log {
            process,
            http: reqwest::Client::new(),
        };
        (log, dir)
    }

    async fn send(&self, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.process.url));
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.bytes().await.unwrap();
        Answer {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        self.send(Method::POST, path, Some(("application/json", body.into())))
            .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn checkpoint(&self) -> String {
        let a = self
            .http
            .get(format!("{}/checkpoint", self.process.url))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::OK);
        a.text().await.unwrap()
    }
}

/// An error answer: JSON with a non-empty code and message.
fn is_json_error(a: &Answer, what: &str) {
    assert!(
        a.content_type.starts_with("application/json"),
        "{what}: {} with content type {:?}",
        a.status,
        a.content_type
    );
    assert!(
        !a.body["error"].as_str().unwrap_or_default().is_empty(),
        "{what}: {}",
        a.body
    );
    assert!(
        !a.body["message"].as_str().unwrap_or_default().is_empty(),
        "{what}: {}",
        a.body
    );
}

/// `a` is the refusal `want` with error code `code`.
fn refused(a: &Answer, want: StatusCode, code: &str, what: &str) {
    assert_eq!(a.status, want, "{what}: {}", a.body);
    is_json_error(a, what);
    assert_eq!(a.body["error"], code, "{what}: {}", a.body);
}

fn body(req: &CommitRequest) -> String {
    serde_json::to_string(req).unwrap()
}

fn abort_body(req: &AbortRequest) -> String {
    serde_json::to_string(req).unwrap()
}

/// `req` as JSON with field `field` replaced by `value`.
fn with_field(req: &CommitRequest, field: &str, value: Value) -> String {
    let mut v: Value = serde_json::from_str(&body(req)).unwrap();
    v[field] = value;
    v.to_string()
}

// Malformed, mistyped, unsigned, oversized, expired and conflicting commits are each refused with their own status and JSON error, and leave the checkpoint byte for byte unchanged; an identical repeat gets the same index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commits_are_refused_without_writes() {
    let (log, _dir) = Log::start(&[]).await;
    let merchant = key(1);
    let good = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [5; 32]);
    let first = log.post("/api/v1/commit", body(&good)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["index"], 0);
    let before = log.checkpoint().await;

    // Not JSON, not an object, or not this object.
    let fresh = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [6; 32]);
    let text = body(&fresh);
    let malformed: Vec<(&str, String)> = vec![
        ("broken JSON", "{not json".into()),
        ("empty body", String::new()),
        ("null", "null".into()),
        ("array", "[]".into()),
        ("number", "42".into()),
        ("missing fields", format!(r#"{{"tid": "{}"}}"#, fresh.tid)),
        ("trailing bytes", format!("{text} x")),
        ("truncated", text[..text.len() / 2].to_owned()),
        ("tid as number", with_field(&fresh, "tid", json!(5))),
        (
            "tid in upper case",
            with_field(&fresh, "tid", json!(fresh.tid.to_string().to_uppercase())),
        ),
        ("tid too short", with_field(&fresh, "tid", json!("00ff"))),
        (
            "expiration as string",
            with_field(
                &fresh,
                "expiration_ms",
                json!(fresh.expiration_ms.to_string()),
            ),
        ),
        (
            "negative expiration",
            with_field(&fresh, "expiration_ms", json!(-1)),
        ),
        (
            "expiration beyond u64",
            text.replace(
                &format!("\"expiration_ms\":{}", fresh.expiration_ms),
                "\"expiration_ms\":18446744073709551616",
            ),
        ),
        (
            "fractional expiration",
            with_field(&fresh, "expiration_ms", json!(1.5)),
        ),
        ("key too short", with_field(&fresh, "key", json!("05"))),
        ("key as array", with_field(&fresh, "key", json!([5, 5]))),
        (
            "signature not hex",
            with_field(&fresh, "signature", json!("zz".repeat(64))),
        ),
        ("merchant null", with_field(&fresh, "merchant", Value::Null)),
        ("unknown field", with_field(&fresh, "price", json!(100))),
        (
            "duplicate field",
            text.replacen('{', &format!(r#"{{"tid":"{}","#, fresh_tid()), 1),
        ),
    ];
    for (what, b) in &malformed {
        let a = log.post("/api/v1/commit", b.clone()).await;
        refused(&a, StatusCode::BAD_REQUEST, "bad_json", what);
    }
    // The body must be declared JSON.
    let a = log
        .send(
            Method::POST,
            "/api/v1/commit",
            Some(("text/plain", text.clone().into_bytes())),
        )
        .await;
    assert!(a.status.is_client_error(), "text/plain: {}", a.status);
    is_json_error(&a, "text/plain");

    // Signatures that do not verify for this log and merchant.
    let mut forged = fresh.clone();
    forged.key[0] ^= 1;
    let other_log = commit(
        "other.test/log",
        &merchant,
        fresh.tid,
        fresh.expiration_ms,
        [6; 32],
    );
    let mut other_signer = commit(ORIGIN, &key(2), fresh.tid, fresh.expiration_ms, [6; 32]);
    other_signer.merchant = fresh.merchant;
    let mut not_a_key = fresh.clone();
    not_a_key.merchant = [0xff; 32];
    let mut zero_signature = fresh.clone();
    zero_signature.signature = [0; 64];
    for (what, req) in [
        ("altered key", &forged),
        ("signed for another log", &other_log),
        ("signed by another merchant", &other_signer),
        ("merchant is not a key", &not_a_key),
        ("zero signature", &zero_signature),
    ] {
        let a = log.post("/api/v1/commit", body(req)).await;
        refused(&a, StatusCode::BAD_REQUEST, "bad_signature", what);
    }

    // Over 16 KiB: refused by size, even when it is a valid commit.
    let a = log.post("/api/v1/commit", vec![b'{'; 20 * 1024]).await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "too_large", "20 KiB");
    let padded = format!("{text}{}", " ".repeat(MAX_BODY + 1 - text.len()));
    let a = log.post("/api/v1/commit", padded).await;
    refused(
        &a,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "padded commit",
    );

    // Past its expiration a commit is refused; so is one that expired long ago.
    for (what, exp) in [("expired", now_ms() - 1), ("expired at 0", 0)] {
        let late = commit(ORIGIN, &merchant, fresh_tid(), exp, [5; 32]);
        let a = log.post("/api/v1/commit", body(&late)).await;
        refused(&a, StatusCode::UNPROCESSABLE_ENTITY, "expired", what);
        let tx = log.get(&format!("/tx/{}", late.tid)).await;
        refused(&tx, StatusCode::NOT_FOUND, "unknown_tid", what);
    }

    // A second, different commit for a TID: 409 with the recorded outcome,
    // whose proof verifies under the log's key.
    let conflicting = commit(ORIGIN, &merchant, good.tid, good.expiration_ms, [6; 32]);
    let later = commit(ORIGIN, &merchant, good.tid, good.expiration_ms + 1, [5; 32]);
    for (what, req) in [("other key", &conflicting), ("other expiration", &later)] {
        let a = log.post("/api/v1/commit", body(req)).await;
        refused(&a, StatusCode::CONFLICT, "conflict", what);
        let existing: EntryProof = serde_json::from_str(&a.body["existing"].to_string()).unwrap();
        assert_eq!(existing.index, 0);
        assert_eq!(first.body["entry"], hex::encode(&existing.entry));
        verify_entry_proof(
            &existing,
            &NoteVerifier::from_vkey(&log.process.vkey).unwrap(),
        )
        .unwrap();
    }

    // None of that wrote anything; an identical repeat, even padded up to
    // just under the limit, is the same entry and writes nothing either.
    assert_eq!(log.checkpoint().await, before);
    let padded = format!("{}{}", body(&good), " ".repeat(1000));
    for b in [body(&good), padded] {
        let again = log.post("/api/v1/commit", b).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.body["index"], first.body["index"]);
        assert_eq!(again.body["entry"], first.body["entry"]);
    }
    assert_eq!(log.checkpoint().await, before);
}

// Aborts from an untrusted bank (403), with a bad bank signature (400), before the expiration (422) or for a committed TID (409) are refused without writes; an expired, trusted abort is logged once, repeats get its index, and a later commit for that TID is a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_aborts_are_refused_without_writes() {
    let bank = key(7);
    let (log, _dir) = Log::start(&[bank.verifying_key().to_bytes()]).await;
    let merchant = key(1);
    let m = merchant.verifying_key().to_bytes();
    let committed = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [5; 32]);
    let a = log.post("/api/v1/commit", body(&committed)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let before = log.checkpoint().await;

    let past = now_ms() - 1;
    let stranger = abort(ORIGIN, &key(8), m, fresh_tid(), past);
    let a = log.post("/api/v1/abort", abort_body(&stranger)).await;
    refused(
        &a,
        StatusCode::FORBIDDEN,
        "untrusted_bank",
        "untrusted bank",
    );
    let mut unsigned_stranger = stranger.clone();
    unsigned_stranger.signature = [0; 64];
    let a = log
        .post("/api/v1/abort", abort_body(&unsigned_stranger))
        .await;
    refused(
        &a,
        StatusCode::FORBIDDEN,
        "untrusted_bank",
        "untrusted, unsigned",
    );

    let mut forged = abort(ORIGIN, &bank, m, fresh_tid(), past);
    forged.expiration_ms -= 1;
    let other_log = abort("other.test/log", &bank, m, fresh_tid(), past);
    let mut claimed = abort(ORIGIN, &key(8), m, fresh_tid(), past);
    claimed.bank = bank.verifying_key().to_bytes();
    for (what, req) in [
        ("altered notice", &forged),
        ("notice for another log", &other_log),
        ("signed by another key", &claimed),
    ] {
        let a = log.post("/api/v1/abort", abort_body(req)).await;
        refused(&a, StatusCode::BAD_REQUEST, "bad_signature", what);
    }

    let early = abort(ORIGIN, &bank, m, fresh_tid(), now_ms() + 600_000);
    let a = log.post("/api/v1/abort", abort_body(&early)).await;
    refused(&a, StatusCode::UNPROCESSABLE_ENTITY, "not_expired", "early");
    let tx = log.get(&format!("/tx/{}", early.tid)).await;
    refused(&tx, StatusCode::NOT_FOUND, "unknown_tid", "early abort");

    let mut v: Value = serde_json::from_str(&abort_body(&early)).unwrap();
    v["amount"] = json!(10);
    let a = log.post("/api/v1/abort", v.to_string()).await;
    refused(&a, StatusCode::BAD_REQUEST, "bad_json", "unknown field");
    let a = log.post("/api/v1/abort", vec![b' '; MAX_BODY + 1]).await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "too_large", "oversize");

    // The committed TID keeps its commit, whatever the abort's expiration.
    for exp in [past, committed.expiration_ms] {
        let late = abort(ORIGIN, &bank, m, committed.tid, exp);
        let a = log.post("/api/v1/abort", abort_body(&late)).await;
        refused(&a, StatusCode::CONFLICT, "conflict", "abort after commit");
        assert_eq!(a.body["existing"]["outcome"], "commit");
        assert_eq!(a.body["existing"]["index"], 0);
    }
    assert_eq!(log.checkpoint().await, before);

    // After its expiration, the bank's notice aborts the TID, exactly once.
    let expired = abort(ORIGIN, &bank, m, fresh_tid(), past);
    let a = log.post("/api/v1/abort", abort_body(&expired)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["outcome"], "abort");
    assert_eq!(a.body["index"], 1);
    let after = log.checkpoint().await;
    let again = log.post("/api/v1/abort", abort_body(&expired)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["index"], 1);
    assert_eq!(again.body["entry"], a.body["entry"]);
    let merchant_late = commit(ORIGIN, &merchant, expired.tid, now_ms() + 600_000, [5; 32]);
    let c = log.post("/api/v1/commit", body(&merchant_late)).await;
    refused(&c, StatusCode::CONFLICT, "conflict", "commit after abort");
    assert_eq!(c.body["existing"]["outcome"], "abort");
    assert_eq!(c.body["existing"]["index"], 1);
    assert_eq!(log.checkpoint().await, after);
}

// Proof, entry and TID queries out of range or malformed, unknown routes and non-canonical tile paths are refused with JSON errors and leave the log unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_are_refused() {
    let (log, _dir) = Log::start(&[]).await;
    let merchant = key(1);
    let good = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [5; 32]);
    let first = log.post("/api/v1/commit", body(&good)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let before = log.checkpoint().await;
    let leaf = first.body["leaf_hash"].as_str().unwrap().to_owned();

    use StatusCode as S;
    let cases: Vec<(String, S, &str)> = vec![
        (
            "/api/v1/inclusion?index=1".into(),
            S::NOT_FOUND,
            "out_of_range",
        ),
        (
            "/api/v1/inclusion?index=5".into(),
            S::NOT_FOUND,
            "out_of_range",
        ),
        (
            "/api/v1/inclusion?index=18446744073709551615".into(),
            S::NOT_FOUND,
            "out_of_range",
        ),
        (
            "/api/v1/inclusion?index=18446744073709551616".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/inclusion?index=-1".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/inclusion?index=abc".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        ("/api/v1/inclusion".into(), S::BAD_REQUEST, "bad_query"),
        (
            format!("/api/v1/inclusion?index=0&leaf_hash={leaf}"),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/inclusion?index=0&x=1".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/inclusion?leaf_hash=zz".into(),
            S::BAD_REQUEST,
            "bad_hash",
        ),
        (
            format!("/api/v1/inclusion?leaf_hash={}", &leaf[..62]),
            S::BAD_REQUEST,
            "bad_hash",
        ),
        (
            format!("/api/v1/inclusion?leaf_hash={}", "0".repeat(64)),
            S::NOT_FOUND,
            "unknown_leaf",
        ),
        (
            "/api/v1/inclusion?index=0&size=2".into(),
            S::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/api/v1/inclusion?index=0&size=0".into(),
            S::NOT_FOUND,
            "out_of_range",
        ),
        (
            "/api/v1/consistency?from=2&to=1".into(),
            S::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/api/v1/consistency?from=0&to=2".into(),
            S::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/api/v1/consistency?from=2".into(),
            S::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/api/v1/consistency?to=1".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/entries?start=0&end=9".into(),
            S::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/api/v1/entries?start=1&end=0".into(),
            S::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/api/v1/entries?start=0".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/entries?start=0&end=x".into(),
            S::BAD_REQUEST,
            "bad_query",
        ),
        (format!("/tx/{}", fresh_tid()), S::NOT_FOUND, "unknown_tid"),
        ("/tx/NOT-A-TID".into(), S::BAD_REQUEST, "bad_tid"),
        (
            format!("/tx/{}", good.tid.to_string().to_uppercase()),
            S::BAD_REQUEST,
            "bad_tid",
        ),
        (
            format!("/tx/{}", &good.tid.to_string()[..31]),
            S::BAD_REQUEST,
            "bad_tid",
        ),
        (format!("/tx/{}00", good.tid), S::BAD_REQUEST, "bad_tid"),
        ("/api/v1/nothing".into(), S::NOT_FOUND, "no_route"),
        ("/tx".into(), S::NOT_FOUND, "no_route"),
    ];
    for (path, status, code) in &cases {
        let a = log.get(path).await;
        refused(&a, *status, code, path);
    }

    // Only the canonical path of a published tile or bundle is served.
    for ok in ["/tile/0/000.p/1", "/tile/entries/000.p/1"] {
        assert_eq!(log.get(ok).await.status, S::OK, "{ok}");
    }
    for path in [
        "/tile/0/000",
        "/tile/0/000.p/2",
        "/tile/entries/000",
        "/tile/1/000.p/1",
        "/tile/0/0",
        "/tile/0/00",
        "/tile/0/0000",
        "/tile/00/000.p/1",
        "/tile/+0/000.p/1",
        "/tile/64/000",
        "/tile/0/000.p/0",
        "/tile/0/000.p/01",
        "/tile/0/000.p/256",
        "/tile/0/000.p/",
        "/tile/0/000.p",
        "/tile/0/000.P/1",
        "/tile/0/000.p/1/",
        "/tile/0//000.p/1",
        "/tile/0/x000/000.p/1",
        "/tile/0/x001",
        "/tile/0/001/x002",
        "/tile/0/-01",
        "/tile/entries/0",
        "/tile/entries/000.p/0",
        "/tile/entries/x000/000.p/1",
        "/tile/data/000.p/1",
        "/tile/entries",
        "/tile/",
    ] {
        let a = log.get(path).await;
        assert_eq!(a.status, S::NOT_FOUND, "{path}: {}", a.body);
        is_json_error(&a, path);
    }
    assert_eq!(log.checkpoint().await, before);
}

// A tile path with a doubled `tile/` prefix is not the canonical path of any tile, so it must be 404 like every other non-canonical path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doubled_tile_prefix_is_not_served() {
    let (log, _dir) = Log::start(&[]).await;
    let good = commit(ORIGIN, &key(1), fresh_tid(), now_ms() + 600_000, [5; 32]);
    assert_eq!(
        log.post("/api/v1/commit", body(&good)).await.status,
        StatusCode::OK
    );
    for path in ["/tile/tile/0/000.p/1", "/tile/tile/entries/000.p/1"] {
        let a = log.get(path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path} is served");
        is_json_error(&a, path);
    }
}

// A request with a method the route does not take gets 405 with a JSON error body, like every other refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_gets_a_json_error() {
    let (log, _dir) = Log::start(&[]).await;
    for (method, path) in [
        (Method::GET, "/api/v1/commit"),
        (Method::PUT, "/api/v1/abort"),
        (Method::POST, "/checkpoint"),
        (Method::DELETE, "/tile/0/000"),
    ] {
        let what = format!("{method} {path}");
        let a = log.send(method, path, None).await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        is_json_error(&a, &what);
    }
}

// JSON strings with escapes are the same strings: a repeat of a commit whose hex fields are written with `\u00XX` escapes is the same commit, answered with its index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_json_strings_are_read_as_their_value() {
    let (log, _dir) = Log::start(&[]).await;
    let good = commit(ORIGIN, &key(1), fresh_tid(), now_ms() + 600_000, [5; 32]);
    let first = log.post("/api/v1/commit", body(&good)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    for field in ["tid", "merchant", "key", "signature"] {
        let text = body(&good);
        let needle = format!("\"{field}\":\"");
        let at = text.find(&needle).unwrap() + needle.len();
        let escaped = format!(
            "{}\\u{:04x}{}",
            &text[..at],
            text.as_bytes()[at],
            &text[at + 1..]
        );
        assert_eq!(
            serde_json::from_str::<Value>(&escaped).unwrap(),
            serde_json::from_str::<Value>(&text).unwrap()
        );
        let again = log.post("/api/v1/commit", escaped).await;
        assert_eq!(again.status, StatusCode::OK, "{field}: {}", again.body);
        assert_eq!(again.body["index"], first.body["index"], "{field}");
    }
}
