//! The wallet against the real log, bank and merchant, in process on
//! loopback: a delivered purchase with change and its proof bundle, a key
//! withheld by the merchant (read from the log), a merchant that never
//! commits (abort and refund), a bogus key (dispute), crashes in the
//! middle of a withdrawal and of a purchase, finished by `resume`, and a
//! merchant's and a bank's answers tampered with on the way.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use acd_bank::Bank;
use acd_bank::config::{BankConfig, TrustedLog};
use acd_client::bank::BankClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit, LogInfo, WithdrawRequest};
use acd_core::note::NoteVerifier;
use acd_core::proof::WitnessPolicy;
use acd_core::purchase::{RefundReason, Withdrawal};
use acd_core::token::{BlindedToken, Denomination};
use acd_log_server::Log;
use acd_log_server::clock::SystemClock;
use acd_log_server::config::LogConfig;
use acd_merchant::{Behaviour, CatalogEntry, Merchant, MerchantConfig};
use acd_wallet::file::{PendingWithdrawal, WalletFile};
use acd_wallet::{PurchaseOutcome, PurchaseState, Step, Wallet};
use tokio::sync::oneshot;

const VALUES: [u64; 3] = [1, 5, 10];
const ORIGIN: &str = "wallet-test.acd.example/log";
const GOODS: &[u8] = b"an information good, delivered atomically";
const PRICE: u64 = 7;

/// Denomination keys made once per test binary (RSA key generation is the
/// slow part of a bank's first start) and copied into each bank.
fn seed_keys(data: &Path) {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for v in VALUES {
            acd_bank::keys::load_or_create_rsa_key(dir.path(), v, 2048).unwrap();
        }
        dir
    });
    std::fs::create_dir_all(data).unwrap();
    for v in VALUES {
        let to = acd_bank::keys::rsa_key_path(data, v);
        if !to.exists() {
            std::fs::copy(acd_bank::keys::rsa_key_path(template.path(), v), &to).unwrap();
        }
    }
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// A log, a bank trusting it, a merchant selling one item, and a funded
/// customer account with its wallet file.
struct World {
    dir: tempfile::TempDir,
    log: LogInfo,
    bank_url: String,
    admin: BankClient,
    merchant_url: String,
    wallet_path: PathBuf,
    _stops: Vec<oneshot::Sender<()>>,
}

impl World {
    async fn start(behaviour: Behaviour, offer_lifetime: Duration) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut stops = Vec::new();

        let bank_data = dir.path().join("bank");
        seed_keys(&bank_data);
        let bank_key = acd_bank::keys::load_or_create_bank_key(&bank_data).unwrap();

        let mut config = LogConfig::new(dir.path().join("log"), ORIGIN.into());
        config.trusted_banks = vec![hex::encode(bank_key.verifying_key().to_bytes())];
        config.batch_window_us = 100;
        let log = Log::open(&config, Arc::new(SystemClock)).unwrap();
        let vkey = log.state().verifier.vkey();
        let (l, log_url) = listener().await;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(log.run(l, config.max_body_bytes, async {
            let _ = stopped.await;
        }));
        stops.push(stop);
        let log = LogInfo { vkey, url: log_url };

        let mut config = BankConfig::new(bank_data);
        config.logs = vec![TrustedLog {
            vkey: log.vkey.clone(),
            url: log.url.clone(),
        }];
        config.denominations = VALUES.to_vec();
        config.min_expiration_ms = 0;
        config.sweep_interval_ms = 200;
        let bank = Bank::open(&config).unwrap();
        let admin_token = bank.admin_token().to_owned();
        let (l, bank_url) = listener().await;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bank.run(l, async {
            let _ = stopped.await;
        }));
        stops.push(stop);
        let admin = BankClient::new(&bank_url).with_admin_token(&admin_token);

        let goods = dir.path().join("goods.bin");
        std::fs::write(&goods, GOODS).unwrap();
        let mut config = MerchantConfig::new(
            dir.path().join("merchant"),
            bank_url.clone(),
            log.clone(),
            vec![CatalogEntry {
                id: "item".into(),
                description: "an information good".into(),
                price: PRICE,
                file: goods,
            }],
        );
        config.offer_lifetime = offer_lifetime;
        config.retry_interval = Duration::from_millis(100);
        config.behaviour = behaviour;
        let merchant = Merchant::open(config).await.unwrap();
        admin
            .create_account(&CreateAccount {
                key: merchant.public_key(),
                kind: AccountKind::Merchant,
            })
            .await
            .unwrap();
        let (l, merchant_url) = listener().await;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(merchant.run(l, async {
            let _ = stopped.await;
        }));
        stops.push(stop);

        World {
            wallet_path: dir.path().join("wallet.json"),
            dir,
            log,
            bank_url,
            admin,
            merchant_url,
            _stops: stops,
        }
    }

    /// Creates the wallet file, opens the customer's account and credits it.
    async fn wallet(&self, funds: u64) -> Wallet {
        let wallet = Wallet::create(&self.wallet_path, &self.bank_url)
            .await
            .unwrap();
        let key = wallet.account_key();
        self.admin
            .create_account(&CreateAccount {
                key,
                kind: AccountKind::Customer,
            })
            .await
            .unwrap();
        self.admin
            .credit(&Credit::new(&mut rand::rng(), key, funds))
            .await
            .unwrap();
        wallet.with_poll_interval(Duration::from_millis(100))
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.bin")
    }

    async fn conserved(&self) {
        let sums = self.admin.sums().await.unwrap();
        assert!(sums.conserved, "{sums:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_with_change_and_a_proof_bundle() {
    // A purchase paid with a larger token delivers the goods, returns the
    // change, and yields a proof bundle that verifies offline.
    let w = World::start(Behaviour::default(), Duration::from_secs(60)).await;
    let mut wallet = w.wallet(100).await;
    let r = wallet.withdraw(23).await.unwrap();
    assert_eq!(r.tokens, vec![10, 10, 1, 1, 1]);
    assert_eq!(wallet.balance().spendable, 23);

    let report = wallet.buy(&w.merchant_url, "item", &w.out()).await.unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    assert_eq!(std::fs::read(w.out()).unwrap(), GOODS);
    assert!(
        report
            .steps
            .iter()
            .any(|s| matches!(s, Step::Escrowed { change: 3, .. }))
    );
    assert_eq!(wallet.balance().spendable, 23 - PRICE);
    assert_eq!(wallet.balance().in_purchases, 0);

    let tid = report.tid.unwrap();
    let bundle = wallet.proof(&tid).unwrap();
    let log = NoteVerifier::from_vkey(&w.log.vkey).unwrap();
    let v = bundle.verify(&log, &WitnessPolicy::none()).unwrap();
    assert_eq!(v.entry.tid(), tid);

    // Everything is on disk: a reopened wallet has the same state.
    let again = Wallet::open_read_only(&w.wallet_path).unwrap();
    assert_eq!(again.file(), wallet.file());
    assert!(again.file().checkpoints.contains_key(ORIGIN));
    w.conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_key_is_read_from_the_log() {
    // The merchant commits but answers the purchase with an error: the
    // wallet finds the commit by TID in the log and decrypts.
    let behaviour = Behaviour {
        withhold_key: true,
        ..Behaviour::default()
    };
    let w = World::start(behaviour, Duration::from_secs(60)).await;
    let mut wallet = w.wallet(100).await;
    wallet.withdraw(PRICE).await.unwrap();
    let report = wallet.buy(&w.merchant_url, "item", &w.out()).await.unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| matches!(s, Step::MerchantFailed { .. }))
    );
    assert!(report.steps.iter().any(|s| matches!(
        s,
        Step::Commit {
            source: acd_wallet::Source::Log,
            ..
        }
    )));
    assert_eq!(std::fs::read(w.out()).unwrap(), GOODS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_commit_means_abort_and_refund() {
    // The merchant never commits: after the expiration the log records an
    // abort and the bank refunds the price as fresh tokens.
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let w = World::start(behaviour, Duration::from_millis(2500)).await;
    let mut wallet = w.wallet(100).await;
    wallet.withdraw(10).await.unwrap();
    let report = wallet.buy(&w.merchant_url, "item", &w.out()).await.unwrap();
    assert_eq!(
        report.outcome,
        PurchaseOutcome::Refunded {
            reason: RefundReason::Abort,
            amount: PRICE
        },
        "{report}"
    );
    assert!(report.steps.iter().any(|s| matches!(s, Step::Abort { .. })));
    assert_eq!(wallet.balance().spendable, 10);
    assert!(!w.out().exists());
    w.conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_key_is_disputed() {
    // The merchant logs a key that does not decrypt: the wallet disputes
    // with the evidence and the bank refunds.
    let behaviour = Behaviour {
        bogus_key: true,
        ..Behaviour::default()
    };
    let w = World::start(behaviour, Duration::from_secs(60)).await;
    let mut wallet = w.wallet(100).await;
    wallet.withdraw(PRICE).await.unwrap();
    let report = wallet.buy(&w.merchant_url, "item", &w.out()).await.unwrap();
    assert_eq!(
        report.outcome,
        PurchaseOutcome::Refunded {
            reason: RefundReason::Dispute,
            amount: PRICE
        },
        "{report}"
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| matches!(s, Step::BadGoods { .. }))
    );
    assert_eq!(wallet.balance().spendable, PRICE);
    w.conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_are_finished_by_resume() {
    // A withdrawal whose answer was lost is repeated without a second
    // debit; a purchase stopped right after the spend is finished from the
    // file alone.
    let w = World::start(Behaviour::default(), Duration::from_secs(60)).await;
    // One command at a time has the file: this one ends here.
    drop(w.wallet(20).await);

    // The request reached the bank, the answer was lost.
    let mut file = WalletFile::load(&w.wallet_path).unwrap();
    let d = &file
        .bank
        .denominations
        .iter()
        .find(|d| d.value == 10)
        .unwrap();
    let d = Denomination::from_spki(d.value, &d.spki).unwrap();
    let blinded = vec![BlindedToken::new(&mut rand::rng(), &d).unwrap()];
    let request_id = [7; 16];
    file.withdrawals.push(PendingWithdrawal {
        request_id,
        blinded: blinded.clone(),
        amount: 10,
    });
    file.save(&w.wallet_path).unwrap();
    let account = ed25519_dalek::SigningKey::from_bytes(&file.account_key);
    let withdrawal = Withdrawal {
        bank: file.bank.bank,
        account: account.verifying_key().to_bytes(),
        request_id,
        blinded: blinded.iter().map(BlindedToken::request).collect(),
    };
    let signature = withdrawal.sign(&account);
    BankClient::new(&w.bank_url)
        .withdraw(&WithdrawRequest {
            withdrawal,
            signature,
        })
        .await
        .unwrap();

    let mut reopened = Wallet::open(&w.wallet_path).unwrap();
    let report = reopened.resume(true).await;
    assert!(!report.has_errors(), "{report}");
    assert_eq!(reopened.balance().spendable, 10);
    let account_info = w.admin.account(&reopened.account_key()).await.unwrap();
    assert_eq!(account_info.balance, 10, "debited once");

    // A purchase that stops after the spend, as if the process died.
    let (id, _) = reopened
        .start_purchase(&w.merchant_url, "item", &w.out())
        .await
        .unwrap();
    reopened.register(id).await.unwrap();
    reopened.request_offer(id).await.unwrap();
    reopened.spend(id).await.unwrap();
    assert_eq!(
        reopened.purchase(id).unwrap().state,
        PurchaseState::Escrowed
    );
    drop(reopened);

    let mut after = Wallet::open(&w.wallet_path).unwrap();
    let report = after.resume(true).await;
    assert!(!report.has_errors(), "{report}");
    assert_eq!(after.purchase(id).unwrap().state, PurchaseState::Delivered);
    assert_eq!(std::fs::read(w.out()).unwrap(), GOODS);
    assert_eq!(after.balance().spendable, 10 - PRICE);
    w.conserved().await;
}

/// A URL where nothing listens.
async fn dead_url() -> String {
    let (l, url) = listener().await;
    drop(l);
    url
}

fn set_bank_url(path: &Path, url: &str) {
    let mut file = WalletFile::load(path).unwrap();
    file.bank_url = url.to_owned();
    file.save(path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_saved_before_requests_during_an_outage() {
    // With the bank unreachable, a withdrawal and a spend fail but leave
    // their blinding secrets on disk; once it is back, resume finishes both.
    let w = World::start(Behaviour::default(), Duration::from_secs(60)).await;
    let mut wallet = w.wallet(30).await;
    wallet.withdraw(10).await.unwrap();
    drop(wallet);

    set_bank_url(&w.wallet_path, &dead_url().await);
    let mut down = Wallet::open(&w.wallet_path).unwrap();
    let e = down.withdraw(20).await.unwrap_err();
    assert!(!e.is_refusal(), "{e}");
    let file = WalletFile::load(&w.wallet_path).unwrap();
    assert_eq!(file.withdrawals.len(), 1);
    assert_eq!(file.withdrawals[0].amount, 20);
    drop(down);

    // The purchase gets its offer from the merchant, but the spend cannot
    // reach the bank: it stays in `spending` with the change's secrets.
    set_bank_url(&w.wallet_path, &w.bank_url);
    let mut up = Wallet::open(&w.wallet_path).unwrap();
    let (id, _) = up
        .start_purchase(&w.merchant_url, "item", &w.out())
        .await
        .unwrap();
    up.register(id).await.unwrap();
    up.request_offer(id).await.unwrap();
    drop(up);
    set_bank_url(&w.wallet_path, &dead_url().await);
    let mut down = Wallet::open(&w.wallet_path).unwrap();
    let e = down.drive(id, true).await.unwrap_err();
    assert!(!e.is_refusal(), "{e}");
    let file = WalletFile::load(&w.wallet_path).unwrap();
    let record = file.purchase(id).unwrap();
    assert_eq!(record.state, PurchaseState::Spending);
    assert_eq!(record.change.len(), 3, "change 3 = 1 + 1 + 1");
    drop(down);

    set_bank_url(&w.wallet_path, &w.bank_url);
    let mut back = Wallet::open(&w.wallet_path).unwrap();
    let report = back.resume(true).await;
    assert!(!report.has_errors(), "{report}");
    assert_eq!(back.purchase(id).unwrap().state, PurchaseState::Delivered);
    assert_eq!(back.balance().spendable, 30 - PRICE);
    assert_eq!(back.balance().withdrawing, 0);
    w.conserved().await;
}

use acd_testkit::mutation;

/// A proxy in front of the merchant that changes one answer at one place
/// when told to: which route's answer, and how.
struct Tamper {
    url: String,
    next: Arc<std::sync::Mutex<Option<(&'static str, mutation::Mutation)>>>,
}

impl Tamper {
    async fn start(merchant_url: &str) -> Tamper {
        use axum::body::{Body, Bytes};
        use axum::http::{Method, StatusCode, Uri};

        let next: Arc<std::sync::Mutex<Option<(&'static str, mutation::Mutation)>>> =
            Arc::default();
        let upstream = merchant_url.to_owned();
        let http = reqwest::Client::new();
        let plan = next.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let (upstream, http, plan) = (upstream.clone(), http.clone(), plan.clone());
            async move {
                let resp = http
                    .request(method, format!("{upstream}{uri}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                let mut bytes = resp.bytes().await.unwrap().to_vec();
                let tamper = {
                    let mut plan = plan.lock().unwrap();
                    match plan.as_ref() {
                        Some((route, _)) if uri.path() == *route && status.is_success() => {
                            plan.take()
                        }
                        _ => None,
                    }
                };
                if let Some((_, m)) = tamper
                    && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                {
                    bytes = mutation::apply(&v, &m);
                }
                axum::response::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(bytes))
                    .unwrap()
            }
        });
        let (l, url) = listener().await;
        tokio::spawn(async move { axum::serve(l, app).await });
        Tamper { url, next }
    }
}

/// Runs `resume` to the end; every purchase must then be final, each
/// delivered one with the right goods. Returns how many were delivered.
async fn finish_all(wallet: &mut Wallet) -> u64 {
    let report = wallet.resume(true).await;
    assert!(!report.has_errors(), "{report}");
    let mut delivered = 0;
    for p in &wallet.file().purchases {
        assert!(p.state.is_final(), "{:?}", p.state);
        if p.state == PurchaseState::Delivered {
            delivered += 1;
            assert_eq!(std::fs::read(wallet.resolve(&p.out_path)).unwrap(), GOODS);
        }
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_merchant_answers_cost_nothing() {
    // The merchant's offer or delivery is changed at one place on its way
    // to the wallet. Whatever the change, every purchase ends delivered
    // with the right goods or refunded in full (after `resume`), and the
    // customer's money adds up.
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    const CASES: u64 = 16;
    let w = World::start(Behaviour::default(), Duration::from_millis(1500)).await;
    let proxy = Tamper::start(&w.merchant_url).await;
    let mut wallet = w.wallet((CASES + 1) * PRICE).await;
    wallet.withdraw((CASES + 1) * PRICE).await.unwrap();
    // Untouched, the proxy passes a purchase through.
    let report = wallet
        .buy(&proxy.url, "item", &w.dir.path().join("out.bin"))
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    let mut runner = TestRunner::default();
    let cases = (
        proptest::sample::select(vec!["/api/v1/offer", "/api/v1/purchase"]),
        mutation::mutation(),
    );
    let mut outs = Vec::new();
    for i in 0..CASES {
        let (route, m) = cases.new_tree(&mut runner).unwrap().current();
        *proxy.next.lock().unwrap() = Some((route, m.clone()));
        let out = w.dir.path().join(format!("out-{i}.bin"));
        let result = wallet.buy(&proxy.url, "item", &out).await;
        *proxy.next.lock().unwrap() = None;
        if let Ok(report) = &result
            && matches!(report.outcome, PurchaseOutcome::Delivered { .. })
        {
            assert_eq!(std::fs::read(&out).unwrap(), GOODS, "{route} {m:?}");
        }
        outs.push((out, route, m));
    }
    let delivered = finish_all(&mut wallet).await;
    let balance = wallet.balance();
    assert_eq!(balance.in_purchases, 0);
    assert_eq!(
        balance.spendable + delivered * PRICE,
        (CASES + 1) * PRICE,
        "{outs:?}"
    );
    w.conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_bank_answers_cost_nothing() {
    // The bank's answers to a withdrawal, a registration or a spend are
    // changed at one place on their way to the wallet (the bank did its
    // part). After `resume`, every debit of the account is in the wallet as
    // tokens, spent on delivered goods, or refunded: nothing is lost.
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    const CASES: u64 = 12;
    const FUNDS: u64 = CASES * PRICE;
    let w = World::start(Behaviour::default(), Duration::from_millis(1500)).await;
    let proxy = Tamper::start(&w.bank_url).await;
    let mut wallet = Wallet::create(&w.wallet_path, &proxy.url).await.unwrap();
    let key = wallet.account_key();
    w.admin
        .create_account(&CreateAccount {
            key,
            kind: AccountKind::Customer,
        })
        .await
        .unwrap();
    w.admin
        .credit(&Credit::new(&mut rand::rng(), key, FUNDS))
        .await
        .unwrap();
    wallet = wallet.with_poll_interval(Duration::from_millis(100));
    let mut runner = TestRunner::default();
    let cases = (
        proptest::sample::select(vec![
            "/api/v1/withdraw",
            "/api/v1/register",
            "/api/v1/spend",
        ]),
        mutation::mutation(),
    );
    for i in 0..CASES {
        let (route, m) = cases.new_tree(&mut runner).unwrap().current();
        *proxy.next.lock().unwrap() = Some((route, m));
        // Either may fail on the tampered answer; `resume` finishes both.
        if wallet.withdraw(PRICE).await.is_ok() {
            let out = w.dir.path().join(format!("b{i}.bin"));
            let _ = wallet.buy(&w.merchant_url, "item", &out).await;
        }
        *proxy.next.lock().unwrap() = None;
    }
    let delivered = finish_all(&mut wallet).await;
    let balance = wallet.balance();
    assert_eq!((balance.in_purchases, balance.withdrawing), (0, 0));
    let account = w.admin.account(&key).await.unwrap().balance;
    assert_eq!(
        u64::try_from(account).unwrap() + balance.spendable + delivered * PRICE,
        FUNDS
    );
    w.conserved().await;
}
