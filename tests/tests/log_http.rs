//! Hostile and out-of-rule requests over real HTTP: each gets the right 4xx
//! with a JSON error naming the problem, and none changes the log.

#![allow(clippy::unwrap_used)]

use acd_core::log_api::CommitRequest;
use acd_tests::{LogProcess, abort, commit, fresh_tid, key, now_ms};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ORIGIN: &str = "http.test/log";

struct Log {
    process: LogProcess,
    http: reqwest::Client,
}

impl Log {
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.process.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.process.url))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn size(&self) -> String {
        let text = self
            .http
            .get(format!("{}/checkpoint", self.process.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines().nth(1).unwrap().to_owned()
    }
}

fn refused(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
}

fn body(req: &CommitRequest) -> String {
    serde_json::to_string(req).unwrap()
}

// Every kind of bad request is refused with its own status and code, and the log's size does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_without_writes() {
    let dir = tempfile::tempdir().unwrap();
    let bank = key(7);
    let process = LogProcess::start(dir.path(), ORIGIN, &[bank.verifying_key().to_bytes()]);
    let log = Log {
        process,
        http: reqwest::Client::new(),
    };
    let merchant = key(1);
    let m = merchant.verifying_key().to_bytes();
    let good = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [5; 32]);
    let (status, first) = log.post("/api/v1/commit", body(&good)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(log.size().await, "1");

    let (s, b) = log.post("/api/v1/commit", "{not json").await;
    refused(s, &b, StatusCode::BAD_REQUEST, "bad_json");
    let (s, b) = log.post("/api/v1/commit", r#"{"tid": 5}"#).await;
    refused(s, &b, StatusCode::BAD_REQUEST, "bad_json");
    let mut extra: Value = serde_json::from_str(&body(&good)).unwrap();
    extra["price"] = json!(100);
    let (s, b) = log.post("/api/v1/commit", extra.to_string()).await;
    refused(s, &b, StatusCode::BAD_REQUEST, "bad_json");

    let mut forged = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [5; 32]);
    forged.key[0] ^= 1;
    let (s, b) = log.post("/api/v1/commit", body(&forged)).await;
    refused(s, &b, StatusCode::BAD_REQUEST, "bad_signature");
    let other_log = commit(
        "other.test/log",
        &merchant,
        fresh_tid(),
        now_ms() + 600_000,
        [5; 32],
    );
    let (s, b) = log.post("/api/v1/commit", body(&other_log)).await;
    refused(s, &b, StatusCode::BAD_REQUEST, "bad_signature");

    let (s, b) = log.post("/api/v1/commit", vec![b'{'; 20 * 1024]).await;
    refused(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    let late = commit(ORIGIN, &merchant, fresh_tid(), now_ms() - 1, [5; 32]);
    let (s, b) = log.post("/api/v1/commit", body(&late)).await;
    refused(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "expired");

    let conflicting = commit(ORIGIN, &merchant, good.tid, good.expiration_ms, [6; 32]);
    let (s, b) = log.post("/api/v1/commit", body(&conflicting)).await;
    refused(s, &b, StatusCode::CONFLICT, "conflict");
    assert_eq!(b["existing"]["index"], 0);
    assert_eq!(b["existing"]["outcome"], "commit");

    let early = abort(ORIGIN, &bank, m, fresh_tid(), now_ms() + 600_000);
    let (s, b) = log
        .post("/api/v1/abort", serde_json::to_string(&early).unwrap())
        .await;
    refused(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "not_expired");
    let stranger = abort(ORIGIN, &key(8), m, fresh_tid(), now_ms() - 1);
    let (s, b) = log
        .post("/api/v1/abort", serde_json::to_string(&stranger).unwrap())
        .await;
    refused(s, &b, StatusCode::FORBIDDEN, "untrusted_bank");

    let (s, b) = log.get("/api/v1/inclusion?index=5").await;
    refused(s, &b, StatusCode::NOT_FOUND, "out_of_range");
    let (s, b) = log.get("/api/v1/consistency?from=2&to=1").await;
    refused(s, &b, StatusCode::BAD_REQUEST, "out_of_range");
    let (s, b) = log.get("/api/v1/entries?start=0&end=9").await;
    refused(s, &b, StatusCode::BAD_REQUEST, "out_of_range");
    let (s, b) = log.get(&format!("/tx/{}", fresh_tid())).await;
    refused(s, &b, StatusCode::NOT_FOUND, "unknown_tid");
    let (s, b) = log.get("/tx/NOT-A-TID").await;
    refused(s, &b, StatusCode::BAD_REQUEST, "bad_tid");
    for path in [
        "/tile/0/0",
        "/tile/0/0000",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/0/001",
    ] {
        let (s, b) = log.get(path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
    }

    // None of that wrote anything; the identical repeat is the same entry.
    assert_eq!(log.size().await, "1");
    let (status, again) = log.post("/api/v1/commit", body(&good)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["index"], first["index"]);
    assert_eq!(again["entry"], first["entry"]);
    assert_eq!(log.size().await, "1");

    // After its expiration, the bank's notice aborts the TID, exactly once.
    let expired = abort(ORIGIN, &bank, m, fresh_tid(), now_ms() - 1);
    let text = serde_json::to_string(&expired).unwrap();
    let (s, b) = log.post("/api/v1/abort", text.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["outcome"], "abort");
    let (s, again) = log.post("/api/v1/abort", text).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["index"], b["index"]);
    assert_eq!(log.size().await, "2");
}
