//! HTTP tests of the merchant without a bank or a log: the bank's key is
//! given in the configuration and the log's URL leads nowhere, so
//! everything up to the commit can be checked.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use acd_core::bank_api::{Catalog, OfferResponse, PurchaseRequest};
use acd_core::entry::Tid;
use acd_core::goods;
use acd_core::log_api::ErrorBody;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::clock::OffsetClock;
use crate::purchase::commit_request;
use crate::store::Stage;
use crate::{Behaviour, Merchant, MerchantConfig};

use crate::fixture::{GOODS, bank, customer};

/// The engine tests' configuration; the bank is never asked here.
fn config(dir: &Path, behaviour: Behaviour) -> MerchantConfig {
    crate::fixture::config(dir, "http://127.0.0.1:1", behaviour)
}

async fn open(dir: &Path, behaviour: Behaviour) -> Merchant {
    Merchant::open(config(dir, behaviour)).await.unwrap()
}

async fn call(m: &Merchant, method: &str, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = m.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

async fn refused(m: &Merchant, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let (status, bytes) = call(m, method, uri, body).await;
    let err: ErrorBody = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not an error body: {}", String::from_utf8_lossy(&bytes)));
    (status, err.error)
}

async fn offer(m: &Merchant) -> OfferResponse {
    let body = format!(
        r#"{{"item":"song","customer":"{}"}}"#,
        hex::encode(customer())
    );
    let (status, bytes) = call(m, "POST", "/api/v1/offer", &body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

fn purchase_body(o: &OfferResponse) -> String {
    let terms = o.offer.offer.terms();
    let req = PurchaseRequest {
        terms_signature: terms.sign(&bank()),
        terms,
    };
    serde_json::to_string(&req).unwrap()
}

// An offer is signed by the merchant for the customer's key, carries the hashes of what was sent, stores nothing, and is still known by its tag after a restart.
#[tokio::test]
async fn offer_is_signed_hashed_and_stateless() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), Behaviour::default()).await;
    let (status, bytes) = call(&m, "GET", "/api/v1/catalog", "").await;
    assert_eq!(status, StatusCode::OK);
    let catalog: Catalog = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(catalog.merchant, m.public_key());
    assert_eq!(catalog.log_origin, "log.test/merchant");
    assert_eq!(catalog.items[0].price, 250);

    let o = offer(&m).await;
    let offer = &o.offer.offer;
    offer.verify(&o.offer.signature).unwrap();
    assert_eq!(offer.merchant, m.public_key());
    assert_eq!(offer.bank, bank().verifying_key().to_bytes());
    assert_eq!(offer.customer, customer());
    assert_eq!((offer.price, offer.description.as_str()), (250, "a song"));
    assert_eq!(offer.ciphertext_hash, goods::hash(&o.ciphertext));
    assert_eq!(offer.plaintext_hash, goods::hash(GOODS));
    assert!(m.shop.store.get(&offer.tid).await.unwrap().is_none());
    let key = m.shop.offer_secret.goods_key(&offer.tid);
    assert_eq!(
        goods::decrypt(&key, &offer.tid, &o.ciphertext).unwrap(),
        GOODS
    );
    // The default lifetime is 60 s.
    let now = m.shop.now_ms();
    assert!(offer.expiration_ms > now + 59_000 && offer.expiration_ms <= now + 60_000);
    // Two offers never share a TID or a key.
    let o2 = offer_again(&m).await;
    assert_ne!(o2.offer.offer.tid, offer.tid);
    assert_ne!(o2.offer.offer.ciphertext_hash, offer.ciphertext_hash);

    drop(m);
    let m = open(dir.path(), Behaviour::default()).await;
    assert!(m.shop.offer_secret.made(&offer.terms()));
    assert_eq!(m.shop.offer_secret.goods_key(&offer.tid), key);
}

async fn offer_again(m: &Merchant) -> OfferResponse {
    offer(m).await
}

// Escrow terms that are not exactly the offer's (its TID's tag does not match them), not signed by the merchant's bank, or for an unknown TID are refused, and nothing is recorded.
#[tokio::test]
async fn terms_must_be_the_offers() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), Behaviour::default()).await;
    let o = offer(&m).await;
    let tid = o.offer.offer.tid;

    let mut terms = o.offer.offer.terms();
    terms.price -= 1;
    let req = PurchaseRequest {
        terms_signature: terms.sign(&bank()),
        terms: terms.clone(),
    };
    let body = serde_json::to_string(&req).unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &body).await,
        (StatusCode::NOT_FOUND, "unknown_tid".into())
    );
    let mut terms = o.offer.offer.terms();
    terms.expiration_ms += 1;
    let req = PurchaseRequest {
        terms_signature: terms.sign(&bank()),
        terms,
    };
    let body = serde_json::to_string(&req).unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &body).await,
        (StatusCode::NOT_FOUND, "unknown_tid".into())
    );

    // Signed by someone else, claiming to be the bank.
    let terms = o.offer.offer.terms();
    let req = PurchaseRequest {
        terms_signature: terms.sign(&SigningKey::from_bytes(&[99; 32])),
        terms: terms.clone(),
    };
    let body = serde_json::to_string(&req).unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &body).await,
        (StatusCode::FORBIDDEN, "bad_terms_signature".into())
    );
    // Signed by another bank, naming it.
    let other = SigningKey::from_bytes(&[98; 32]);
    let mut terms = o.offer.offer.terms();
    terms.bank = other.verifying_key().to_bytes();
    let req = PurchaseRequest {
        terms_signature: terms.sign(&other),
        terms,
    };
    let body = serde_json::to_string(&req).unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &body).await,
        (StatusCode::FORBIDDEN, "wrong_bank".into())
    );
    // An unknown TID.
    let mut terms = o.offer.offer.terms();
    terms.tid = Tid([0; 16]);
    let req = PurchaseRequest {
        terms_signature: terms.sign(&bank()),
        terms,
    };
    let body = serde_json::to_string(&req).unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &body).await,
        (StatusCode::NOT_FOUND, "unknown_tid".into())
    );
    // A TID of the merchant's own with one bit of its tag changed.
    let mut terms = o.offer.offer.terms();
    terms.tid.0[15] ^= 1;
    let req = PurchaseRequest {
        terms_signature: terms.sign(&bank()),
        terms,
    };
    let body = serde_json::to_string(&req).unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &body).await,
        (StatusCode::NOT_FOUND, "unknown_tid".into())
    );
    assert!(m.shop.store.get(&tid).await.unwrap().is_none());
    assert!(m.shop.store.pending().await.unwrap().is_empty());

    // The right terms are recorded as escrowed before the commit is tried;
    // the log is unreachable, so the answer is 503 and the escrow stays.
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &purchase_body(&o)).await,
        (StatusCode::SERVICE_UNAVAILABLE, "log_unavailable".into())
    );
    let record = m.shop.store.get(&tid).await.unwrap().unwrap();
    assert_eq!(record.stage(), Stage::Escrowed);
    assert_eq!(m.shop.store.pending().await.unwrap(), vec![tid]);
    let escrow = record.escrow.as_ref().unwrap();
    assert_eq!(record.key, m.shop.offer_secret.goods_key(&tid));
    assert_eq!(escrow.commit_key, record.key);
    assert_eq!(commit_request(&m.shop, &record, escrow).key, record.key);
    assert_eq!(
        refused(&m, "GET", &format!("/api/v1/delivery/{tid}"), "").await,
        (StatusCode::NOT_FOUND, "not_committed".into())
    );
}

// An escrow that arrives after the offer's expiration is refused and not recorded.
#[tokio::test]
async fn late_escrow_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), Behaviour::default());
    c.offer_lifetime = Duration::from_millis(1000);
    let m = Merchant::open(c.clone()).await.unwrap();
    let o = offer(&m).await;
    drop(m);
    // The same merchant, its clock now two seconds later.
    let m = Merchant::open_with_clock(c, Arc::new(OffsetClock(2000)))
        .await
        .unwrap();
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &purchase_body(&o)).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "expired".into())
    );
    assert!(
        m.shop
            .store
            .get(&o.offer.offer.tid)
            .await
            .unwrap()
            .is_none()
    );
}

// Hostile requests get a JSON error body naming the problem, never a panic or an HTML page.
#[tokio::test]
async fn hostile_input_is_refused_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), Behaviour::default()).await;
    let cust = hex::encode(customer());
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            "POST",
            "/api/v1/offer",
            format!(r#"{{"item":"nope","customer":"{cust}"}}"#),
            StatusCode::NOT_FOUND,
            "unknown_item",
        ),
        (
            "POST",
            "/api/v1/offer",
            format!(r#"{{"item":"song","customer":"01{}"}}"#, "00".repeat(31)),
            StatusCode::BAD_REQUEST,
            "bad_customer_key",
        ),
        (
            "POST",
            "/api/v1/offer",
            r#"{"item":"song","customer":"zz"}"#.into(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/offer",
            format!(r#"{{"item":"song","customer":"{cust}","x":1}}"#),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/offer",
            "{".into(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/offer",
            format!(r#"{{"item":"{}","customer":"{cust}"}}"#, "a".repeat(20_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "POST",
            "/api/v1/purchase",
            "[]".into(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/purchase",
            r#"{"terms":{},"terms_signature":""}"#.into(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "GET",
            "/api/v1/delivery/xyz",
            String::new(),
            StatusCode::BAD_REQUEST,
            "bad_tid",
        ),
        (
            "GET",
            "/api/v1/delivery/000102030405060708090A0B0C0D0E0F",
            String::new(),
            StatusCode::BAD_REQUEST,
            "bad_tid",
        ),
        (
            "GET",
            "/api/v1/delivery/000102030405060708090a0b0c0d0e0f",
            String::new(),
            StatusCode::NOT_FOUND,
            "unknown_tid",
        ),
        (
            "GET",
            "/api/v1/nothing",
            String::new(),
            StatusCode::NOT_FOUND,
            "no_route",
        ),
        (
            "GET",
            "/api/v1/offer",
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "DELETE",
            "/api/v1/catalog",
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        assert_eq!(
            refused(&m, method, uri, &body).await,
            (status, code.to_owned()),
            "{method} {uri} {}",
            &body[..body.len().min(80)]
        );
    }
    // Without a JSON content type.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/offer")
        .body(Body::from("{}"))
        .unwrap();
    let resp = m.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

// never_commit records the escrow but answers 503 and never sends a commit, not even from recovery.
#[tokio::test]
async fn never_commit_keeps_the_escrow_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let m = open(dir.path(), behaviour).await;
    let o = offer(&m).await;
    assert_eq!(
        refused(&m, "POST", "/api/v1/purchase", &purchase_body(&o)).await,
        (StatusCode::SERVICE_UNAVAILABLE, "not_committed".into())
    );
    m.retry_pending().await.unwrap();
    let record = m.shop.store.get(&o.offer.offer.tid).await.unwrap().unwrap();
    assert_eq!(record.stage(), Stage::Escrowed);
}

// bogus_key commits a key other than the k that encrypted the goods; wrong_goods encrypts goods that do not hash to the contract.
#[tokio::test]
async fn misbehaviour_switches_change_what_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let behaviour = Behaviour {
        bogus_key: true,
        ..Behaviour::default()
    };
    let m = open(dir.path(), behaviour).await;
    let o = offer(&m).await;
    let _ = call(&m, "POST", "/api/v1/purchase", &purchase_body(&o)).await;
    let record = m.shop.store.get(&o.offer.offer.tid).await.unwrap().unwrap();
    let escrow = record.escrow.as_ref().unwrap();
    let req = commit_request(&m.shop, &record, escrow);
    assert_ne!(req.key, record.key);
    assert!(goods::decrypt(&req.key, &req.tid, &o.ciphertext).is_err());
    drop(m);

    let dir = tempfile::tempdir().unwrap();
    let behaviour = Behaviour {
        wrong_goods: true,
        ..Behaviour::default()
    };
    let m = open(dir.path(), behaviour).await;
    let o = offer(&m).await;
    let key = m.shop.offer_secret.goods_key(&o.offer.offer.tid);
    assert_eq!(o.offer.offer.ciphertext_hash, goods::hash(&o.ciphertext));
    let plain = goods::decrypt(&key, &o.offer.offer.tid, &o.ciphertext).unwrap();
    assert_ne!(goods::hash(&plain), o.offer.offer.plaintext_hash);
}

// Start-up refuses a catalog it cannot sell from.
#[tokio::test]
async fn bad_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), Behaviour::default());
    c.catalog.push(c.catalog[0].clone());
    assert!(Merchant::open(c).await.is_err());
    let mut c = config(dir.path(), Behaviour::default());
    c.catalog[0].file = dir.path().join("missing");
    assert!(Merchant::open(c).await.is_err());
    let mut c = config(dir.path(), Behaviour::default());
    c.catalog[0].description = "x".repeat(2000);
    assert!(Merchant::open(c).await.is_err());
}
