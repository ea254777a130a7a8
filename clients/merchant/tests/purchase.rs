//! The merchant against the real log, in process, and a stand-in bank that
//! publishes its info and records deposits: commit, delivery, deposit,
//! repeats, restarts, an abort and the misbehaviour switches.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_client::ClientError;
use acd_client::log::{LogClient, verify_entry_proof};
use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{
    BankInfo, DepositRequest, DepositResponse, LogInfo, OfferRequest, OfferResponse, PolicyInfo,
    PurchaseRequest,
};
use acd_core::entry::{LogEntry, Outcome};
use acd_core::goods;
use acd_core::log_api::{AbortRequest, ErrorBody};
use acd_core::note::NoteVerifier;
use acd_log_server::Log;
use acd_log_server::clock::SystemClock;
use acd_log_server::config::LogConfig;
use acd_merchant::clock::OffsetClock;
use acd_merchant::{Behaviour, CatalogEntry, Merchant, MerchantConfig};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const GOODS: &[u8] = b"a song, as an MP3 file";

/// A bank that answers `GET /api/v1/info` and records deposits; deposits
/// fail with 503 while `fail` is set, and are refused for good (409
/// `wrong_escrow_state`, as after a dispute) while `refuse` is set.
struct Bank {
    key: SigningKey,
    info: BankInfo,
    fail: AtomicBool,
    refuse: AtomicBool,
    attempts: AtomicUsize,
    deposits: Mutex<Vec<DepositRequest>>,
    url: String,
}

impl Bank {
    async fn start(log: &LogInfo) -> Arc<Bank> {
        let key = SigningKey::from_bytes(&[21; 32]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bank = Arc::new(Bank {
            info: BankInfo {
                bank: key.verifying_key().to_bytes(),
                denominations: vec![],
                logs: vec![log.clone()],
                max_expiration_ms: 3_600_000,
                min_expiration_ms: 0,
                witness_policy: PolicyInfo::default(),
            },
            key,
            fail: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            attempts: AtomicUsize::new(0),
            deposits: Mutex::new(vec![]),
            url: format!("http://{}", listener.local_addr().unwrap()),
        });
        let app = Router::new()
            .route(
                "/api/v1/info",
                get(|State(b): State<Arc<Bank>>| async move { Json(b.info.clone()) }),
            )
            .route("/api/v1/deposit", post(deposit))
            .with_state(bank.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        bank
    }

    fn deposited(&self) -> Vec<DepositRequest> {
        self.deposits.lock().unwrap().clone()
    }

    fn purchase(&self, o: &OfferResponse) -> PurchaseRequest {
        let terms = o.offer.offer.terms();
        PurchaseRequest {
            terms_signature: terms.sign(&self.key),
            terms,
        }
    }
}

async fn deposit(
    State(b): State<Arc<Bank>>,
    Json(req): Json<DepositRequest>,
) -> Result<Json<DepositResponse>, (StatusCode, Json<ErrorBody>)> {
    b.attempts.fetch_add(1, Ordering::SeqCst);
    if b.refuse.load(Ordering::SeqCst) {
        return Err((
            StatusCode::CONFLICT,
            Json(ErrorBody {
                error: "wrong_escrow_state".into(),
                message: "the escrow is Disputed; a deposit needs an Escrowed one".into(),
                existing: None,
            }),
        ));
    }
    if b.fail.load(Ordering::SeqCst) {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ErrorBody {
                error: "unavailable".into(),
                message: "down for the test".into(),
                existing: None,
            }),
        ));
    }
    let entry = LogEntry::decode(&req.proof.entry).unwrap();
    b.deposits.lock().unwrap().push(req.clone());
    Ok(Json(DepositResponse {
        tid: entry.tid(),
        merchant: entry.merchant(),
        amount: 250,
    }))
}

struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    log: LogInfo,
    verifier: NoteVerifier,
    bank: Arc<Bank>,
}

impl World {
    async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let bank_key = SigningKey::from_bytes(&[21; 32]);
        let mut config = LogConfig::new(path.join("log"), "log.test/merchant".into());
        config.trusted_banks = vec![hex::encode(bank_key.verifying_key().to_bytes())];
        config.batch_window_us = 100;
        let log = Log::open(&config, Arc::new(SystemClock)).unwrap();
        let verifier = log.state().verifier.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(log.run(listener, config.max_body_bytes, std::future::pending()));
        let log = LogInfo {
            vkey: verifier.vkey(),
            url,
        };
        let bank = Bank::start(&log).await;
        std::fs::write(path.join("song.mp3"), GOODS).unwrap();
        World {
            _dir: dir,
            dir: path,
            log,
            verifier,
            bank,
        }
    }

    fn config(&self, behaviour: Behaviour) -> MerchantConfig {
        let mut c = MerchantConfig::new(
            self.dir.join("merchant"),
            self.bank.url.clone(),
            self.log.clone(),
            vec![CatalogEntry {
                id: "song".into(),
                description: "a song".into(),
                price: 250,
                file: self.dir.join("song.mp3"),
            }],
        );
        c.retry_interval = Duration::from_millis(50);
        // sled, or PostgreSQL when the suite runs on it (ACD_TEST_BACKEND).
        c.database = acd_testkit::pgdb::backend_database(&c.data).map(|u| u.parse().unwrap());
        c.behaviour = behaviour;
        c
    }

    fn log_client(&self) -> LogClient {
        LogClient::new(&self.log.url, self.verifier.clone())
    }
}

/// A merchant serving on loopback, stopped by [`Running::stop`].
struct Running {
    client: MerchantClient,
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(merchant: Merchant) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = MerchantClient::new(&url);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(merchant.run(listener, async {
            let _ = stopped.await;
        }));
        Running {
            client,
            url,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn offer(m: &MerchantClient) -> OfferResponse {
    let q = SigningKey::from_bytes(&[22; 32]).verifying_key().to_bytes();
    let o = m
        .offer(&OfferRequest {
            item: "song".into(),
            customer: q,
        })
        .await
        .unwrap();
    o.offer.offer.verify(&o.offer.signature).unwrap();
    assert_eq!(o.offer.offer.ciphertext_hash, goods::hash(&o.ciphertext));
    o
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Refused { status, body }) => (status, body.error),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// An honest purchase: the key is committed once, delivered with a proof that verifies, decrypts the goods, is delivered again on repeats, and is deposited once the bank accepts.
#[tokio::test]
async fn purchase_commits_delivers_and_deposits() {
    let w = World::start().await;
    w.bank.fail.store(true, Ordering::SeqCst);
    let merchant = Merchant::open(w.config(Behaviour::default()))
        .await
        .unwrap();
    assert_eq!(merchant.bank_key(), w.bank.info.bank);
    let me = merchant.public_key();
    let run = Running::start(merchant).await;
    let m = &run.client;

    let catalog = m.catalog().await.unwrap();
    assert_eq!(catalog.merchant, me);
    assert_eq!(catalog.log_origin, "log.test/merchant");
    let o = offer(m).await;
    let tid = o.offer.offer.tid;
    let d = m.purchase(&w.bank.purchase(&o)).await.unwrap();
    let v = verify_entry_proof(&d.commit, &w.verifier).unwrap();
    match v.entry {
        LogEntry::Commit { key, merchant, .. } => {
            assert_eq!((key, merchant), (d.key, me));
        }
        other => panic!("not a commit: {other:?}"),
    }
    let plain = goods::decrypt(&d.key, &tid, &o.ciphertext).unwrap();
    assert_eq!(goods::hash(&plain), o.offer.offer.plaintext_hash);

    // Repeats answer the same delivery; the log holds one entry.
    assert_eq!(m.purchase(&w.bank.purchase(&o)).await.unwrap(), d);
    assert_eq!(m.delivery(&tid).await.unwrap(), d);
    let size = w.log_client().checkpoint().await.unwrap().checkpoint.size;
    assert_eq!(size, 1);

    // The bank was down; the background task deposits once it is back.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(w.bank.deposited().is_empty());
    w.bank.fail.store(false, Ordering::SeqCst);
    eventually("the deposit", || w.bank.deposited().len() == 1).await;
    let dep = &w.bank.deposited()[0];
    assert_eq!(dep.proof.tid, tid);
    assert_eq!(dep.proof.outcome, Outcome::Commit);
    verify_entry_proof(&dep.proof, &w.verifier).unwrap();
    // Paid purchases are not deposited again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(w.bank.deposited().len(), 1);
    assert_eq!(m.delivery(&tid).await.unwrap(), d);
    // The merchant's page counts the sale through to its payment.
    let page = metrics_without_500(&reqwest::Client::new(), &run.url, None).await;
    for (name, value) in [
        ("acd_merchant_offers_total", 1.0),
        ("acd_merchant_committed_total", 1.0),
        ("acd_merchant_deposited_total", 1.0),
        ("acd_merchant_unpaid_total", 0.0),
        ("acd_merchant_pending", 0.0),
    ] {
        assert_eq!(
            acd_serve::metrics::read(&page, name),
            Some(value),
            "{name}\n{page}"
        );
    }
    run.stop().await;
}

// A deposit the bank refuses for good (the customer disputed first) is not retried, not after a restart either; the key is still delivered.
#[tokio::test]
async fn a_deposit_refused_for_good_is_not_retried() {
    let w = World::start().await;
    w.bank.refuse.store(true, Ordering::SeqCst);
    let run = Running::start(
        Merchant::open(w.config(Behaviour::default()))
            .await
            .unwrap(),
    )
    .await;
    let o = offer(&run.client).await;
    let d = run.client.purchase(&w.bank.purchase(&o)).await.unwrap();
    eventually("a deposit attempt", || {
        w.bank.attempts.load(Ordering::SeqCst) >= 1
    })
    .await;
    // At 50 ms between retries, a merchant that retried would have tried
    // several times by now.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(w.bank.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(run.client.delivery(&o.offer.offer.tid).await.unwrap(), d);
    run.stop().await;

    let run = Running::start(
        Merchant::open(w.config(Behaviour::default()))
            .await
            .unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.bank.attempts.load(Ordering::SeqCst), 1);
    assert!(w.bank.deposited().is_empty());
    run.stop().await;
}

// A merchant stopped after its commit still delivers after restart and deposits then; a merchant stopped after the escrow but before the commit commits on restart.
#[tokio::test]
async fn restart_recovers_commit_and_deposit() {
    let w = World::start().await;

    // Committed, not deposited (the bank is down), then stopped.
    w.bank.fail.store(true, Ordering::SeqCst);
    let run = Running::start(
        Merchant::open(w.config(Behaviour::default()))
            .await
            .unwrap(),
    )
    .await;
    let o1 = offer(&run.client).await;
    let d1 = run.client.purchase(&w.bank.purchase(&o1)).await.unwrap();
    run.stop().await;

    // Escrowed, not committed, then stopped.
    let lazy = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let run = Running::start(Merchant::open(w.config(lazy)).await.unwrap()).await;
    let o2 = offer(&run.client).await;
    assert_eq!(
        refusal(run.client.purchase(&w.bank.purchase(&o2)).await),
        (503, "not_committed".into())
    );
    run.stop().await;
    assert!(
        w.log_client()
            .transaction(&o2.offer.offer.tid)
            .await
            .unwrap()
            .is_none()
    );
    assert!(w.bank.deposited().is_empty());

    // Restart, honest, with the bank back.
    w.bank.fail.store(false, Ordering::SeqCst);
    let run = Running::start(
        Merchant::open(w.config(Behaviour::default()))
            .await
            .unwrap(),
    )
    .await;
    let m = &run.client;
    assert_eq!(m.delivery(&o1.offer.offer.tid).await.unwrap(), d1);
    assert_eq!(m.purchase(&w.bank.purchase(&o1)).await.unwrap(), d1);
    let tid2 = o2.offer.offer.tid;
    let log = w.log_client();
    for _ in 0..200 {
        if log.transaction(&tid2).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let d2 = m.delivery(&tid2).await.unwrap();
    assert_eq!(
        goods::decrypt(&d2.key, &tid2, &o2.ciphertext).unwrap(),
        GOODS
    );
    eventually("both deposits", || w.bank.deposited().len() == 2).await;
    assert_eq!(log.checkpoint().await.unwrap().checkpoint.size, 2);
    run.stop().await;
}

// When the log has aborted the TID before the merchant commits, the purchase is answered 409 aborted and no key is delivered.
#[tokio::test]
async fn abort_in_the_log_wins() {
    let w = World::start().await;
    let mut c = w.config(Behaviour::default());
    c.offer_lifetime = Duration::from_millis(2000);
    // The merchant's clock is ten seconds behind the log's: its offer has
    // already expired for the log, not for the merchant.
    let merchant = Merchant::open_with_clock(c, Arc::new(OffsetClock(-10_000)))
        .await
        .unwrap();
    let run = Running::start(merchant).await;
    let o = offer(&run.client).await;
    let terms = o.offer.offer.terms();
    let notice = terms.notice();
    let abort = AbortRequest {
        tid: terms.tid,
        merchant: terms.merchant,
        expiration_ms: terms.expiration_ms,
        bank: w.bank.info.bank,
        signature: notice.sign(&w.bank.key),
    };
    w.log_client().abort(&abort).await.unwrap();
    assert_eq!(
        refusal(run.client.purchase(&w.bank.purchase(&o)).await),
        (409, "aborted".into())
    );
    assert_eq!(
        refusal(run.client.delivery(&terms.tid).await),
        (409, "aborted".into())
    );
    assert!(w.bank.deposited().is_empty());
    run.stop().await;
}

// withhold_key commits but gives no key (the customer reads it from the log); bogus_key delivers a committed key that does not decrypt.
#[tokio::test]
async fn misbehaving_merchants_are_visible_in_the_log() {
    let w = World::start().await;
    let withhold = Behaviour {
        withhold_key: true,
        ..Behaviour::default()
    };
    let run = Running::start(Merchant::open(w.config(withhold)).await.unwrap()).await;
    let o = offer(&run.client).await;
    let tid = o.offer.offer.tid;
    assert_eq!(
        refusal(run.client.purchase(&w.bank.purchase(&o)).await),
        (503, "key_withheld".into())
    );
    assert_eq!(
        refusal(run.client.delivery(&tid).await),
        (503, "key_withheld".into())
    );
    let v = w.log_client().transaction(&tid).await.unwrap().unwrap();
    let LogEntry::Commit { key, .. } = v.entry else {
        panic!("not a commit")
    };
    assert_eq!(goods::decrypt(&key, &tid, &o.ciphertext).unwrap(), GOODS);
    eventually("the deposit", || w.bank.deposited().len() == 1).await;
    run.stop().await;

    let bogus = Behaviour {
        bogus_key: true,
        ..Behaviour::default()
    };
    let run = Running::start(Merchant::open(w.config(bogus)).await.unwrap()).await;
    let o = offer(&run.client).await;
    let tid = o.offer.offer.tid;
    let d = run.client.purchase(&w.bank.purchase(&o)).await.unwrap();
    verify_entry_proof(&d.commit, &w.verifier).unwrap();
    assert!(goods::decrypt(&d.key, &tid, &o.ciphertext).is_err());
    run.stop().await;
}

// A merchant refuses to start with a log its bank does not trust.
#[tokio::test]
async fn untrusted_log_is_refused_at_start() {
    let w = World::start().await;
    let mut c = w.config(Behaviour::default());
    let other = acd_core::note::NoteSigner::new("log.test/other", SigningKey::from_bytes(&[5; 32]))
        .unwrap();
    c.log.vkey = other.verifier().vkey();
    let err = Merchant::open(c).await.err().expect("refused");
    assert!(err.to_string().contains("does not trust"), "{err}");
}

// The checked-in example configuration starts a merchant: the example file
// with only what differs in this world (data directory, bank, log, the goods)
// replaced in it, opened through the library and served; it sells.
#[tokio::test]
async fn the_example_config_starts_a_merchant() {
    let w = World::start().await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/merchant.example.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let text = text
        .replace("/var/lib/acd-merchant", &w.dir.join("merchant").display().to_string())
        .replace("http://127.0.0.1:8800", &w.bank.url)
        .replace(
            "log.example.com/acd/1+5e89bb2c+AdCRR2Rfc+oIt1CEPLp8K59dHoGO/k+DOxJ3giVLZbYn@http://127.0.0.1:8700",
            &format!("{}@{}", w.log.vkey, w.log.url),
        )
        .replace("catalog = \"catalog.example.toml\"", "")
        .replace("# [[items]]", "[[items]]")
        .replace("# id = ", "id = ")
        .replace("# description = ", "description = ")
        .replace("# price = ", "price = ")
        .replace("# file = \"goods/song.mp3\"", "file = \"song.mp3\"");
    let file = acd_merchant::MerchantConfigFile::from_toml(&text, &w.dir).unwrap();
    assert_eq!(file.offer_lifetime_ms, 60_000);
    let merchant = Merchant::open(file.into_config().unwrap()).await.unwrap();
    assert_eq!(merchant.bank_key(), w.bank.info.bank);
    let run = Running::start(merchant).await;
    let o = offer(&run.client).await;
    assert_eq!(o.offer.offer.price, 250);
    run.stop().await;
}

// Hostile clients: valid offer and purchase requests mutated at one random
// place, and random delivery paths. The merchant never answers 500, every
// refusal is a JSON error, and the log holds a commit only for a TID the
// merchant offered, at most one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_cleanly() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let w = World::start().await;
    let merchant = Merchant::open(w.config(Behaviour::default()))
        .await
        .unwrap();
    let run = Running::start(merchant).await;
    let url = run.url.clone();
    let o = offer(&run.client).await;
    let templates = [
        (
            "/api/v1/offer",
            serde_json::to_value(OfferRequest {
                item: "song".into(),
                customer: [5; 32],
            })
            .unwrap(),
        ),
        (
            "/api/v1/purchase",
            serde_json::to_value(w.bank.purchase(&o)).unwrap(),
        ),
    ];
    let http = reqwest::Client::new();
    let offers = std::cell::Cell::new(1u64);
    let handle = tokio::runtime::Handle::current();
    let send = |req: reqwest::RequestBuilder| {
        handle.block_on(async {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let config = Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    };
    tokio::task::block_in_place(|| {
        TestRunner::new(config.clone())
            .run(&(0..templates.len(), mutation()), |(t, m)| {
                let (route, template) = &templates[t];
                let req = http
                    .post(format!("{url}{route}"))
                    .header("content-type", "application/json")
                    .body(apply(template, &m));
                let (status, text) = send(req);
                let code = check_answer(status, &text, &format!("{route} after {m:?}"))?;
                if code.is_none() && *route == "/api/v1/offer" {
                    offers.set(offers.get() + 1);
                }
                Ok(())
            })
            .unwrap();
        TestRunner::new(config)
            .run(&"[0-9a-fA-Fxz%./-]{0,40}", |segment| {
                let (status, text) = send(http.get(format!("{url}/api/v1/delivery/{segment}")));
                prop_assert!(!(200..300).contains(&status), "{segment}");
                check_answer(status, &text, &format!("delivery/{segment}"))?;
                Ok(())
            })
            .unwrap();
    });
    let size = w.log_client().checkpoint().await.unwrap().checkpoint.size;
    assert!(
        size <= offers.get(),
        "{size} commits for {} offers",
        offers.get()
    );
    let page = metrics_without_500(&http, &url, None).await;
    let deliveries = "acd_merchant_http_requests_total{method=\"GET\",route=\"/api/v1/delivery/{tid}\",status=\"400\"}";
    assert!(page.contains(deliveries), "{page}");
    run.stop().await;
}

use acd_testkit::mutation;
use mutation::{apply, check_answer, metrics_without_500, mutation};
