//! Offers against the real servers on loopback: the log (and, for whole
//! purchases, the bank) run as processes, merchants run in process and
//! answer over HTTP.
//!
//! Covered: a flood of offers costs the merchant no storage and one read of
//! the goods file while an honest purchase completes; escrow terms for a
//! forged or altered TID, or altered terms, are refused and record nothing;
//! a commit conflict (another commit for the TID in the log) ends the
//! purchase as failed with 409 and is not retried.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_client::ClientError;
use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{
    AccountKind, CreateAccount, Credit, LogInfo, OfferRequest, OfferResponse, PurchaseRequest,
};
use acd_core::goods;
use acd_core::note::NoteVerifier;
use acd_merchant::{CatalogEntry, Merchant, MerchantConfig};
use acd_tests::{ServerProcess, admin_token, bank_key, commit, metric, seed_bank_keys};
use acd_wallet::{PurchaseOutcome, Wallet};
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

const ORIGIN: &str = "offers.test/log";
const ITEM: &str = "atlas";
const GOODS: &[u8] = b"an atlas of the offshore banks, with soundings";
/// One token of 10.
const PRICE: u64 = 10;
/// How many offers the flood asks for, and how many at once.
const FLOOD: usize = 8_000;
const FLOOD_CONCURRENCY: usize = 32;

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn fresh_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// Bytes of every file under `dir`.
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_usage(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// A merchant running in this process.
struct Shop {
    url: String,
    data: PathBuf,
    goods: PathBuf,
    merchant: Merchant,
    _stop: oneshot::Sender<()>,
}

impl Shop {
    /// Opens and serves a merchant selling [`ITEM`] in `data`. With
    /// `bank_key`, it takes that key for the bank's (no bank is asked).
    async fn start(
        data: PathBuf,
        bank_url: &str,
        log: LogInfo,
        bank_key: Option<[u8; 32]>,
    ) -> Shop {
        std::fs::create_dir_all(&data).unwrap();
        let file = data.join("goods.txt");
        std::fs::write(&file, GOODS).unwrap();
        let mut config = MerchantConfig::new(
            data.clone(),
            bank_url.into(),
            log,
            vec![CatalogEntry {
                id: ITEM.into(),
                description: "an atlas".into(),
                price: PRICE,
                file: file.clone(),
            }],
        );
        config.bank_key = bank_key;
        config.retry_interval = Duration::from_millis(100);
        let merchant = Merchant::open(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(merchant.clone().run(listener, async {
            let _ = stopped.await;
        }));
        Shop {
            url,
            data,
            goods: file,
            merchant,
            _stop: stop,
        }
    }

    fn client(&self) -> MerchantClient {
        MerchantClient::new(&self.url)
    }

    async fn offer(&self, customer: [u8; 32]) -> OfferResponse {
        self.client()
            .offer(&OfferRequest {
                item: ITEM.into(),
                customer,
            })
            .await
            .unwrap()
    }
}

/// The status and error code of a refusal.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Refused { status, body }) => (status, body.error),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A log trusting `bank` for aborts, and a merchant on it that takes
/// `bank`'s key for its bank's (no bank runs): the test signs the escrow
/// terms itself.
async fn log_and_shop(dir: &Path, bank: &SigningKey) -> (ServerProcess, Shop) {
    let bank_pub = bank.verifying_key().to_bytes();
    let log = blocking(|| ServerProcess::start(&dir.join("log"), ORIGIN, &[bank_pub]));
    let info = LogInfo {
        vkey: log.vkey.clone(),
        url: log.url.clone(),
    };
    let shop = Shop::start(
        dir.join("merchant"),
        "http://127.0.0.1:1",
        info,
        Some(bank_pub),
    )
    .await;
    (log, shop)
}

fn signed(terms: acd_core::purchase::EscrowTerms, bank: &SigningKey) -> PurchaseRequest {
    PurchaseRequest {
        terms_signature: terms.sign(bank),
        terms,
    }
}

/// The log's answered commit requests, by any status.
async fn log_commit_requests(log_url: &str) -> u64 {
    let page = reqwest::get(format!("{log_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .filter(|l| l.starts_with("acd_log_http_requests_total{") && l.contains("/api/v1/commit"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_flood_costs_no_storage_while_an_honest_purchase_completes() {
    // 8,000 offers over HTTP leave the merchant's data directory as it was
    // but for the one honest purchase bought meanwhile, read the goods file
    // once, and a changed goods file is read again.
    let dir = tempfile::tempdir().unwrap();
    let bank_data = dir.path().join("bank");
    let (log, bank) = blocking(|| {
        seed_bank_keys(&bank_data);
        let key = bank_key(&bank_data);
        let log = ServerProcess::start(&dir.path().join("log"), ORIGIN, &[key]);
        let bank = ServerProcess::start_bank(
            &bank_data,
            "127.0.0.1:0",
            &[format!("{}@{}", log.vkey, log.url)],
        );
        (log, bank)
    });
    let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&bank_data));
    let info = LogInfo {
        vkey: log.vkey.clone(),
        url: log.url.clone(),
    };
    let shop = Shop::start(dir.path().join("merchant"), &bank.url, info, None).await;
    let merchant_key = shop.merchant.public_key();
    admin
        .create_account(&CreateAccount {
            key: merchant_key,
            kind: AccountKind::Merchant,
        })
        .await
        .unwrap();
    let wallet_path = dir.path().join("alice.wallet.json");
    let wallet = Wallet::create(&wallet_path, &bank.url).await.unwrap();
    let account = wallet.account_key();
    admin
        .create_account(&CreateAccount {
            key: account,
            kind: AccountKind::Customer,
        })
        .await
        .unwrap();
    admin
        .credit(&Credit::new(&mut rand::rng(), account, PRICE))
        .await
        .unwrap();
    let mut wallet = wallet.with_poll_interval(Duration::from_millis(100));
    wallet.withdraw(PRICE).await.unwrap();
    let before = disk_usage(&shop.data);

    let customer = fresh_key().verifying_key().to_bytes();
    let client = shop.client();
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood: Vec<_> = (0..FLOOD_CONCURRENCY)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let req = OfferRequest {
                    item: ITEM.into(),
                    customer,
                };
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < FLOOD {
                    let o = client.offer(&req).await.unwrap();
                    assert_eq!(o.offer.offer.plaintext_hash, goods::hash(GOODS));
                }
            })
        })
        .collect();
    let out = dir.path().join("alice.goods");
    let report = wallet.buy(&shop.url, ITEM, &out).await.unwrap();
    let bought_at = start.elapsed();
    for task in flood {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), GOODS);
    let after = disk_usage(&shop.data);
    println!(
        "{FLOOD} offers in {elapsed:.2?} ({:.0} offers/s over HTTP); the purchase took {bought_at:.2?}; data {before} -> {after} bytes",
        FLOOD as f64 / elapsed.as_secs_f64()
    );
    // One purchase's record and its sled overhead; the flood stored once
    // cost about 2 KB an offer (16 MB here).
    assert!(
        after.saturating_sub(before) < 1024 * 1024,
        "the data grew from {before} to {after} bytes"
    );
    assert_eq!(
        metric(&shop.url, "acd_merchant_offers_total").await,
        FLOOD as u64 + 1
    );
    assert_eq!(metric(&shop.url, "acd_merchant_goods_reads_total").await, 1);

    // New goods, by a rename: read once more, and what the offers carry.
    let new = shop.data.join("goods.new");
    std::fs::write(&new, b"the second edition").unwrap();
    std::fs::rename(&new, &shop.goods).unwrap();
    for _ in 0..3 {
        let o = shop.offer(customer).await;
        assert_eq!(
            o.offer.offer.plaintext_hash,
            goods::hash(b"the second edition")
        );
    }
    assert_eq!(metric(&shop.url, "acd_merchant_goods_reads_total").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_altered_tids_and_terms_are_refused() {
    // Escrow terms whose TID the merchant did not make, or that differ from
    // the offer's in any field, are refused with 404 and record nothing;
    // the offer's own terms are committed at the log and delivered.
    let dir = tempfile::tempdir().unwrap();
    let bank = fresh_key();
    let (log, shop) = log_and_shop(dir.path(), &bank).await;
    let o = shop.offer(fresh_key().verifying_key().to_bytes()).await;
    let terms = o.offer.offer.terms();
    let client = shop.client();

    let mut forged = Vec::new();
    let mut t = terms.clone();
    rand::fill(&mut t.tid.0);
    forged.push(t);
    for byte in [0, 7, 8, 15] {
        let mut t = terms.clone();
        t.tid.0[byte] ^= 1;
        forged.push(t);
    }
    let mut t = terms.clone();
    t.price -= 1;
    forged.push(t);
    let mut t = terms.clone();
    t.expiration_ms += 60_000;
    forged.push(t);
    for t in forged {
        let tid = t.tid;
        assert_eq!(
            refusal(client.purchase(&signed(t, &bank)).await),
            (404, "unknown_tid".into())
        );
        assert_eq!(
            refusal(client.delivery(&tid).await),
            (404, "unknown_tid".into())
        );
    }
    // Right terms, signed by another key than the bank's.
    assert_eq!(
        refusal(client.purchase(&signed(terms.clone(), &fresh_key())).await).0,
        403
    );
    assert_eq!(metric(&shop.url, "acd_merchant_pending").await, 0);
    assert_eq!(log_commit_requests(&log.url).await, 0);

    let d = client
        .purchase(&signed(terms.clone(), &bank))
        .await
        .unwrap();
    assert_eq!(
        goods::decrypt(&d.key, &terms.tid, &o.ciphertext).unwrap(),
        GOODS
    );
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let entry = LogClient::new(&log.url, verifier)
        .transaction(&terms.tid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.entry.merchant(), shop.merchant.public_key());
    assert_eq!(client.delivery(&terms.tid).await.unwrap().key, d.key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_conflict_fails_the_purchase_with_409_and_is_not_retried() {
    // Someone else commits the offer's TID at the log first: the purchase
    // ends as failed (409 commit_conflict with the other commit as
    // evidence, counted), repeats and the delivery lookup say so, and the
    // background task sends the log nothing more, also after a restart.
    let dir = tempfile::tempdir().unwrap();
    let bank = fresh_key();
    let (log, shop) = log_and_shop(dir.path(), &bank).await;
    let o = shop.offer(fresh_key().verifying_key().to_bytes()).await;
    let terms = o.offer.offer.terms();
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let log_client = LogClient::new(&log.url, verifier);
    let squatter = fresh_key();
    log_client
        .commit(&commit(
            ORIGIN,
            &squatter,
            terms.tid,
            terms.expiration_ms,
            [5; 32],
        ))
        .await
        .unwrap();

    let client = shop.client();
    let r = client.purchase(&signed(terms.clone(), &bank)).await;
    match r {
        Err(ClientError::Refused { status: 409, body }) => {
            assert_eq!(body.error, "commit_conflict");
            let existing = body.existing.expect("the other commit as evidence");
            assert_eq!(existing.tid, terms.tid);
        }
        other => panic!("expected 409 commit_conflict, got {other:?}"),
    }
    assert_eq!(metric(&shop.url, "acd_merchant_failed_total").await, 1);
    assert_eq!(metric(&shop.url, "acd_merchant_pending").await, 0);
    assert_eq!(
        refusal(client.purchase(&signed(terms.clone(), &bank)).await),
        (409, "commit_conflict".into())
    );
    assert_eq!(
        refusal(client.delivery(&terms.tid).await),
        (409, "commit_conflict".into())
    );
    // The squatter's commit and the merchant's one refused attempt.
    let sent = log_commit_requests(&log.url).await;
    assert_eq!(sent, 2);
    // Ten retry intervals: no more commits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(log_commit_requests(&log.url).await, sent);
    assert_eq!(metric(&shop.url, "acd_merchant_failed_total").await, 1);

    // Reopened on the same data, the purchase is still failed.
    let Shop {
        data,
        merchant,
        _stop,
        ..
    } = shop;
    drop(_stop);
    drop(merchant);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = LogInfo {
        vkey: log.vkey.clone(),
        url: log.url.clone(),
    };
    let bank_pub = bank.verifying_key().to_bytes();
    let shop = Shop::start(data, "http://127.0.0.1:1", info, Some(bank_pub)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        refusal(shop.client().delivery(&terms.tid).await),
        (409, "commit_conflict".into())
    );
    assert_eq!(log_commit_requests(&log.url).await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release -p acd-tests --test offers -- --ignored --nocapture"]
async fn offer_rate_of_the_engine() {
    // Offers per second through the engine alone (no HTTP), 32 at once.
    let dir = tempfile::tempdir().unwrap();
    let bank = fresh_key();
    let (_log, shop) = log_and_shop(dir.path(), &bank).await;
    let engine = shop.merchant.shop().clone();
    let customer = fresh_key().verifying_key().to_bytes();
    let n = 20_000;
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..FLOOD_CONCURRENCY)
        .map(|_| {
            let (engine, next) = (engine.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let req = OfferRequest {
                        item: ITEM.into(),
                        customer,
                    };
                    engine.offer(req).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "{n} offers through the engine in {elapsed:.2?}: {:.0} offers/s; data {} bytes",
        n as f64 / elapsed.as_secs_f64(),
        disk_usage(&shop.data)
    );
}
