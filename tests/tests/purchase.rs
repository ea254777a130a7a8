//! Whole purchases against the real servers on loopback: the log and the
//! bank run as processes (`acd-log`, `acd-bank`), merchants run in process
//! (so that their misbehaviour can be switched on), customers use the
//! wallet library or send the protocol's messages by hand.
//!
//! Covered: a delivered purchase paid to the merchant with a proof bundle
//! that verifies offline; a key withheld by the merchant and read from the
//! log; a merchant that never commits (the bank's sweeper aborts, the
//! refund comes as fresh, unlinkable tokens); disputes over a bogus key and
//! over wrong goods; one token spent twice at once; replays of the spend,
//! of the merchant's purchase and commit, and of the deposit; a commit
//! after its expiration; deposits under forged and forked checkpoints;
//! a whole purchase under a witness policy; deposits under that policy
//! (refused until cosigned, stopped by a split view the witness freezes,
//! paid once an operator clears it); a
//! purchase with the bank killed and restarted between every step; and
//! what the log and the bank keep on disk. Every test ends with the bank's
//! conservation sums.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use acd_client::ClientError;
use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{
    AccountKind, CreateAccount, Credit, DepositRequest, DisputeFinding, LogInfo, OfferRequest,
    OfferResponse, PurchaseRequest, RefundRequest, RegisterRequest, SignedReceipt, SpendRequest,
    Sums,
};
use acd_core::bundle::ProofBundle;
use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::cosignature::{CosignatureKind, CosignatureVerifier};
use acd_core::entry::{LogEntry, Tid};
use acd_core::goods;
use acd_core::log_api::{CommitRequest, EntryProof};
use acd_core::note::{Note, NoteSigner, NoteVerifier};
use acd_core::proof::WitnessPolicy;
use acd_core::purchase::{Offer, Refund, RefundReason, Spend};
use acd_core::tile::TilePath;
use acd_core::token::{BlindedToken, Denomination, Token};
use acd_merchant::{Behaviour, CatalogEntry, Merchant, MerchantConfig};
use acd_tests::{
    ServerProcess, admin_token, bank_key, binary, commit, contains, files_containing, fresh_tid,
    key, now_ms, seed_bank_keys, wait_for_metric,
};
use acd_wallet::file::{PendingWithdrawal, WalletFile};
use acd_wallet::{PurchaseOutcome, PurchaseState, Source, Step, Wallet};
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

const ORIGIN: &str = "purchase.test/log";
const ITEM: &str = "tides";
/// Distinctive, so that the privacy test can look for it on disk.
const DESCRIPTION: &str = "Tide tables of the northern sea routes, 1923 edition";
const GOODS: &[u8] = b"high water at Lerwick: 04:12 and 16:31; low water: 10:20 and 22:45";
/// The price of most tests: paid with a 10 and a 1.
const PRICE: u64 = 11;
/// The price of the tests that send the messages by hand: one token of 10.
const TOKEN_PRICE: u64 = 10;
/// Offer lifetime where expiration does not matter.
const LONG: Duration = Duration::from_secs(60);
/// Offer lifetime where the test waits for the expiration. The bank escrows
/// only expirations at least 1 s ahead, so the spend must follow the offer
/// within 3 s.
const SHORT: Duration = Duration::from_secs(4);
/// How long a poll waits for something that should happen.
const WAIT: Duration = Duration::from_secs(20);

fn fresh_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// Runs blocking harness code (process start-up) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A merchant running in this process.
struct Shop {
    url: String,
    key: [u8; 32],
    data: PathBuf,
    _stop: oneshot::Sender<()>,
}

impl Shop {
    fn client(&self) -> MerchantClient {
        MerchantClient::new(&self.url)
    }

    /// The merchant's signing key, read from its data directory.
    fn signing_key(&self) -> SigningKey {
        acd_merchant::keys::load_or_create(&self.data).unwrap()
    }
}

/// A log and a bank (processes) in one temporary directory, and the
/// merchants added to them; with a witness, the bank's policy needs its
/// cosignature.
struct World {
    dir: tempfile::TempDir,
    log: ServerProcess,
    witness: Option<ServerProcess>,
    bank: Option<ServerProcess>,
    bank_data: PathBuf,
    bank_url: String,
    bank_key: [u8; 32],
    /// The bank's `--log` arguments.
    logs: Vec<String>,
    /// The bank's other arguments (its witness policy).
    bank_args: Vec<String>,
    admin: BankClient,
}

/// The witness's name in [`World::start_witnessed`].
const WITNESS: &str = "witness.test/w1";

impl World {
    async fn start() -> World {
        Self::start_with(false, false, CosignatureKind::MlDsa44).await
    }

    /// A log cosigned by a witness (a process), and a bank that accepts only
    /// checkpoints that witness cosigned.
    async fn start_witnessed() -> World {
        Self::start_with(true, true, CosignatureKind::MlDsa44).await
    }

    /// [`World::start_witnessed`] with a witness key of `kind`.
    async fn start_witnessed_by(kind: CosignatureKind) -> World {
        Self::start_with(true, true, kind).await
    }

    /// A log cosigned by a witness, and a bank whose policy does not name
    /// it (only customers who ask for it want its cosignature).
    async fn start_witnessed_log() -> World {
        Self::start_with(true, false, CosignatureKind::MlDsa44).await
    }

    async fn start_with(witnessed: bool, bank_needs_witness: bool, kind: CosignatureKind) -> World {
        let dir = tempfile::tempdir().unwrap();
        let bank_data = dir.path().join("bank");
        let log_data = dir.path().join("log");
        let witness_data = dir.path().join("witness");
        let (log, witness, bank, bank_key, logs, bank_args) = blocking(|| {
            seed_bank_keys(&bank_data);
            let bank_key = bank_key(&bank_data);
            let (log, witness, bank_args) = if witnessed {
                // The log's key exists before the witness is told to trust it.
                let vkey = ServerProcess::start(&log_data, ORIGIN, &[]).vkey.clone();
                let witness = ServerProcess::start_witness_with(
                    &witness_data,
                    WITNESS,
                    &[&vkey],
                    "127.0.0.1:0",
                    &["--key-type", kind.as_str()],
                );
                let spec = format!("{}@{}", witness.vkey, witness.url);
                let log = ServerProcess::start_log(&log_data, ORIGIN, &[bank_key], &[spec]);
                let args = if bank_needs_witness {
                    vec![
                        "--witness".to_owned(),
                        witness.vkey.clone(),
                        "--witness-threshold".to_owned(),
                        "1".to_owned(),
                    ]
                } else {
                    Vec::new()
                };
                (log, Some(witness), args)
            } else {
                let log = ServerProcess::start(&log_data, ORIGIN, &[bank_key]);
                (log, None, Vec::new())
            };
            let logs = vec![format!("{}@{}", log.vkey, log.url)];
            let mut bank_args = bank_args;
            // sled, or PostgreSQL when the suite runs on it (ACD_TEST_BACKEND).
            if let Some(url) = acd_testkit::pgdb::backend_database(&bank_data) {
                bank_args.extend(["--database".to_owned(), url]);
            }
            let bank = ServerProcess::start_bank_with(&bank_data, "127.0.0.1:0", &logs, &bank_args);
            (log, witness, bank, bank_key, logs, bank_args)
        });
        let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&bank_data));
        World {
            bank_url: bank.url.clone(),
            bank: Some(bank),
            dir,
            log,
            witness,
            bank_data,
            bank_key,
            logs,
            bank_args,
            admin,
        }
    }

    fn log_info(&self) -> LogInfo {
        LogInfo {
            vkey: self.log.vkey.clone(),
            url: self.log.url.clone(),
        }
    }

    fn log_verifier(&self) -> NoteVerifier {
        NoteVerifier::from_vkey(&self.log.vkey).unwrap()
    }

    fn log_client(&self) -> LogClient {
        LogClient::new(&self.log.url, self.log_verifier())
    }

    /// A fresh client of the bank (its own connections).
    fn bank(&self) -> BankClient {
        BankClient::new(&self.bank_url)
    }

    /// Starts a merchant selling [`ITEM`] at `price`, with a merchant
    /// account at the bank.
    async fn add_merchant(&self, behaviour: Behaviour, lifetime: Duration, price: u64) -> Shop {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let data = self.dir.path().join(format!("merchant-{n}"));
        std::fs::create_dir_all(&data).unwrap();
        let file = data.join("goods.txt");
        std::fs::write(&file, GOODS).unwrap();
        let mut config = MerchantConfig::new(
            data.clone(),
            self.bank_url.clone(),
            self.log_info(),
            vec![CatalogEntry {
                id: ITEM.into(),
                description: DESCRIPTION.into(),
                price,
                file,
            }],
        );
        config.offer_lifetime = lifetime;
        // sled, or PostgreSQL when the suite runs on it (ACD_TEST_BACKEND).
        config.database = acd_testkit::pgdb::backend_database(&data).map(|u| u.parse().unwrap());
        config.retry_interval = Duration::from_millis(100);
        config.behaviour = behaviour;
        let merchant = Merchant::open(config).await.unwrap();
        let key = merchant.public_key();
        assert_eq!(merchant.bank_key(), self.bank_key);
        self.admin
            .create_account(&CreateAccount {
                key,
                kind: AccountKind::Merchant,
            })
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(merchant.run(listener, async {
            let _ = stopped.await;
        }));
        Shop {
            url,
            key,
            data,
            _stop: stop,
        }
    }

    /// A customer account credited with `funds`, and its wallet file.
    async fn customer(&self, name: &str, funds: u64) -> Wallet {
        let path = self.dir.path().join(format!("{name}.wallet.json"));
        let wallet = Wallet::create(&path, &self.bank_url).await.unwrap();
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

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn balance(&self, account: &[u8; 32]) -> i64 {
        self.admin.account(account).await.unwrap().balance
    }

    /// Waits until `account`'s balance is `expected`.
    async fn wait_balance(&self, account: &[u8; 32], expected: i64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let balance = self.balance(account).await;
            if balance == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the balance stayed {balance}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The conservation sums, which must hold: everything credited is in
    /// balances, live tokens or escrows.
    async fn conserved(&self) -> Sums {
        let s = self.admin.sums().await.unwrap();
        assert!(s.conserved, "{s:?}");
        assert_eq!(
            i128::from(s.credited),
            i128::from(s.customer_balances)
                + i128::from(s.merchant_balances)
                + i128::from(s.live_tokens)
                + i128::from(s.escrowed),
            "{s:?}"
        );
        s
    }

    /// Kills the bank (SIGKILL).
    fn kill_bank(&mut self) {
        self.bank.take().expect("the bank is running").kill();
    }

    /// Starts the bank again on its data and address.
    fn start_bank(&mut self) {
        assert!(self.bank.is_none(), "the bank is running");
        let addr = self.bank_url.trim_start_matches("http://").to_owned();
        let bank = blocking(|| {
            ServerProcess::start_bank_with(&self.bank_data, &addr, &self.logs, &self.bank_args)
        });
        assert_eq!(bank.url, self.bank_url);
        self.bank = Some(bank);
    }

    /// `kill -9` and a start on the same address with the same data.
    fn restart_bank(&mut self) {
        self.kill_bank();
        self.start_bank();
    }

    /// The log's proof of `tid`'s outcome once its checkpoint carries the
    /// witness's cosignature (polls `/tx/<TID>`).
    async fn cosigned_proof(&self, tid: &Tid) -> EntryProof {
        let witness = self.witness.as_ref().expect("a witnessed world");
        let policy = WitnessPolicy::new(
            1,
            vec![CosignatureVerifier::from_vkey(&witness.vkey).unwrap()],
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let proof = self
                .log_client()
                .transaction(tid)
                .await
                .unwrap()
                .unwrap()
                .proof;
            if acd_core::proof::verify_entry_proof(&proof, &self.log_verifier(), &policy).is_ok() {
                return proof;
            }
            assert!(Instant::now() < deadline, "never cosigned: {proof:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What an operator does after a split view: stops the witness, clears
    /// the origin (`acd-auditor witness clear`) and starts it again where
    /// the log expects it.
    async fn clear_witness(&mut self) {
        let witness = self.witness.take().expect("a witnessed world");
        let (data, addr, vkey) = (witness.data.clone(), witness.addr(), self.log.vkey.clone());
        assert!(witness.terminate(WAIT).unwrap().success());
        let out = std::process::Command::new(binary("acd-auditor"))
            .args(["witness", "clear", "--origin", ORIGIN, "--data"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("cleared"));
        let witness = blocking(|| ServerProcess::start_witness_at(&data, WITNESS, &[&vkey], &addr));
        self.witness = Some(witness);
    }

    /// The log's latest checkpoint size.
    async fn log_size(&self) -> u64 {
        self.log_client()
            .checkpoint()
            .await
            .unwrap()
            .checkpoint
            .size
    }
}

/// The tokens a wallet holds, in its order.
fn tokens(wallet: &Wallet) -> Vec<Token> {
    wallet
        .file()
        .tokens
        .iter()
        .map(|t| t.token.clone())
        .collect()
}

/// Steps 3 and 4 by hand: registers `token` to `q`'s public key.
/// A customer withdraws `n` tokens of [`TOKEN_PRICE`] and spends each on
/// its own offer of `shop`: `n` escrows; returns their offers.
async fn escrows(w: &World, shop: &Shop, customer: &str, n: u64) -> Vec<Offer> {
    let mut wallet = w.customer(customer, n * TOKEN_PRICE).await;
    wallet.withdraw(n * TOKEN_PRICE).await.unwrap();
    let q = fresh_key();
    let mut offers = Vec::new();
    for token in tokens(&wallet) {
        register(&w.bank(), &token, &q).await;
        let o = offer(shop, &q).await;
        w.bank()
            .spend(&spend_request(&o.offer.offer, &[token], &q))
            .await
            .unwrap();
        offers.push(o.offer.offer);
    }
    assert_eq!(offers.len() as u64, n);
    offers
}

async fn register(bank: &BankClient, token: &Token, q: &SigningKey) -> SignedReceipt {
    let customer = q.verifying_key().to_bytes();
    let receipt = bank
        .register(&RegisterRequest {
            token: token.clone(),
            customer,
        })
        .await
        .unwrap();
    receipt.receipt.verify(&receipt.signature).unwrap();
    assert_eq!(receipt.receipt.token_id, token.id());
    assert_eq!(receipt.receipt.customer, customer);
    receipt
}

/// P1 by hand: an offer for `q`'s public key, checked.
async fn offer(shop: &Shop, q: &SigningKey) -> OfferResponse {
    let resp = shop
        .client()
        .offer(&OfferRequest {
            item: ITEM.into(),
            customer: q.verifying_key().to_bytes(),
        })
        .await
        .unwrap();
    resp.offer.offer.verify(&resp.offer.signature).unwrap();
    assert_eq!(
        goods::hash(&resp.ciphertext),
        resp.offer.offer.ciphertext_hash
    );
    assert_eq!(resp.offer.offer.merchant, shop.key);
    resp
}

/// P2 by hand: spends `tokens` (worth the price exactly) on `offer`.
fn spend_request(offer: &Offer, tokens: &[Token], q: &SigningKey) -> SpendRequest {
    let spend = Spend {
        terms: offer.terms(),
        customer: q.verifying_key().to_bytes(),
        token_ids: tokens.iter().map(Token::id).collect(),
        change: vec![],
    };
    let signature = spend.sign(q);
    SpendRequest {
        spend,
        tokens: tokens.to_vec(),
        signature,
    }
}

/// The status and error code of a refusal.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Refused { status, body }) => (status, body.error),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The merchant's P4 for `tid`, signed with its own key.
fn key_commit(shop: &Shop, tid: Tid, expiration_ms: u64, k: [u8; 32]) -> CommitRequest {
    commit(ORIGIN, &shop.signing_key(), tid, expiration_ms, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_paid_and_provable_offline() {
    // Withdraw, buy with change, goods decrypt to the contract; the
    // merchant's deposit lands; the proof bundle verifies offline and
    // opens the ciphertext the customer holds.
    let w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG, PRICE).await;
    let mut wallet = w.customer("alice", 100).await;
    let r = wallet.withdraw(20).await.unwrap();
    assert_eq!(r.tokens, vec![10, 10]);
    assert_eq!(w.balance(&wallet.account_key()).await, 80);

    let out = w.out("alice.goods");
    let report = wallet.buy(&shop.url, ITEM, &out).await.unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { bytes, .. } if bytes == GOODS.len()),
        "{report}"
    );
    assert!(report.steps.iter().any(|s| matches!(
        s,
        Step::Commit {
            source: Source::Merchant,
            ..
        }
    )));
    assert!(report.steps.iter().any(|s| matches!(
        s,
        Step::Escrowed {
            price: PRICE,
            change: 9,
            ..
        }
    )));
    assert_eq!(std::fs::read(&out).unwrap(), GOODS);
    assert_eq!(wallet.balance().spendable, 20 - PRICE);
    assert_eq!(wallet.balance().in_purchases, 0);

    // The merchant is paid once its deposit lands.
    w.wait_balance(&shop.key, PRICE as i64).await;

    // The bundle, as a third party receives it, verifies offline.
    let tid = report.tid.unwrap();
    let text = serde_json::to_string(&wallet.proof(&tid).unwrap()).unwrap();
    let bundle: ProofBundle = serde_json::from_str(&text).unwrap();
    let v = bundle
        .verify(&w.log_verifier(), &WitnessPolicy::none())
        .unwrap();
    assert_eq!(v.entry.tid(), tid);
    assert_eq!(v.entry.merchant(), shop.key);
    assert_eq!(bundle.offer.offer.price, PRICE);
    let record = wallet.purchase_by_tid(&tid).unwrap();
    let ciphertext = std::fs::read(wallet.resolve(record.ciphertext.as_ref().unwrap())).unwrap();
    assert_eq!(goods::decrypt(&v.key, &tid, &ciphertext).unwrap(), GOODS);
    // Altered, or under another log's key, it does not verify.
    let mut altered = bundle.clone();
    altered.offer.offer.price += 1;
    assert!(
        altered
            .verify(&w.log_verifier(), &WitnessPolicy::none())
            .is_err()
    );
    let other_log = NoteSigner::new(ORIGIN, fresh_key()).unwrap().verifier();
    assert!(bundle.verify(&other_log, &WitnessPolicy::none()).is_err());

    let s = w.conserved().await;
    assert_eq!(s.credited, 100);
    assert_eq!(s.customer_balances, 80);
    assert_eq!(s.merchant_balances, PRICE as i64);
    assert_eq!(s.live_tokens, 20 - PRICE, "the change is live");
    assert_eq!(s.escrowed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witnessed_purchase_is_delivered_and_paid_under_cosigned_checkpoints() {
    // With a bank whose policy needs the witness, the whole purchase still
    // goes through on its own: the wallet accepts the key only under a
    // cosigned checkpoint, the merchant's deposit retries until its proof
    // is cosigned, and the proof bundle satisfies the policy offline; with
    // a witness of either key type.
    for kind in [CosignatureKind::MlDsa44, CosignatureKind::Ed25519] {
        a_witnessed_purchase(kind).await;
    }
}

async fn a_witnessed_purchase(kind: CosignatureKind) {
    let w = World::start_witnessed_by(kind).await;
    let shop = w.add_merchant(Behaviour::default(), LONG, PRICE).await;
    let mut wallet = w.customer("judy", 20).await;
    wallet.withdraw(20).await.unwrap();
    let out = w.out("judy.goods");
    let report = wallet.buy(&shop.url, ITEM, &out).await.unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), GOODS);
    w.wait_balance(&shop.key, PRICE as i64).await;

    let witness = w.witness.as_ref().unwrap();
    let verifier = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    assert_eq!(verifier.kind(), kind);
    let policy = WitnessPolicy::new(1, vec![verifier]);
    let bundle = wallet.proof(&report.tid.unwrap()).unwrap();
    bundle.verify(&w.log_verifier(), &policy).unwrap();
    let s = w.conserved().await;
    assert_eq!(s.merchant_balances, PRICE as i64);
    assert_eq!(s.escrowed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_asked_with_a_witness_is_refreshed_to_a_cosigned_checkpoint() {
    // The bank does not need the witness, so the wallet keeps the commit
    // proof the merchant handed over, under a checkpoint no witness has
    // seen yet. `acd wallet proof --witness W` fetches the log's cosigned
    // proof of the same entry, saves it, and writes a bundle that
    // `acd verify --witness W` accepts; the bundle written without
    // --witness is refused by that check.
    let w = World::start_witnessed_log().await;
    let shop = w.add_merchant(Behaviour::default(), LONG, PRICE).await;
    let mut wallet = w.customer("ivan", 20).await;
    wallet.withdraw(20).await.unwrap();
    let report = wallet
        .buy(&shop.url, ITEM, &w.out("ivan.goods"))
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    let tid = report.tid.unwrap();
    let witness = w.witness.as_ref().unwrap().vkey.clone();
    let policy = WitnessPolicy::new(1, vec![CosignatureVerifier::from_vkey(&witness).unwrap()]);
    let stored = wallet
        .purchase_by_tid(&tid)
        .unwrap()
        .commit
        .clone()
        .unwrap();
    let stored_cp = SignedCheckpoint::open(&stored.checkpoint, &w.log_verifier()).unwrap();
    assert!(
        policy.check(&stored_cp).is_err(),
        "the stored proof is already cosigned; this test would prove nothing"
    );
    let path = wallet.path().to_owned();
    drop(wallet);

    let acd = |args: &[&str]| {
        let out = std::process::Command::new(binary("acd"))
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        (out.status.success(), format!("{out:?}"))
    };
    let file = path.to_str().unwrap();
    let tid_hex = tid.to_string();
    let plain = w.out("plain.json");
    let (ok, out) = blocking(|| {
        acd(&[
            "wallet",
            "--file",
            file,
            "proof",
            &tid_hex,
            "--out",
            plain.to_str().unwrap(),
        ])
    });
    assert!(ok, "{out}");
    let verify = |bundle: &Path| {
        acd(&[
            "verify",
            bundle.to_str().unwrap(),
            "--log",
            &w.log.vkey,
            "--witness",
            &witness,
        ])
    };
    let (ok, out) = blocking(|| verify(&plain));
    assert!(!ok, "a bundle without the cosignature passed: {out}");

    // The witness cosigns the log's next checkpoint within its round.
    let cosigned = w.out("cosigned.json");
    let deadline = Instant::now() + WAIT;
    loop {
        let (ok, out) = blocking(|| {
            acd(&[
                "wallet",
                "--file",
                file,
                "--witness",
                &witness,
                "proof",
                &tid_hex,
                "--out",
                cosigned.to_str().unwrap(),
            ])
        });
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "never cosigned: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, out) = blocking(|| verify(&cosigned));
    assert!(ok, "{out}");
    // The refreshed proof is saved, for the same entry.
    let wallet = Wallet::open_read_only(&path).unwrap();
    let saved = wallet
        .purchase_by_tid(&tid)
        .unwrap()
        .commit
        .clone()
        .unwrap();
    assert_eq!(saved.entry, stored.entry);
    let saved_cp = SignedCheckpoint::open(&saved.checkpoint, &w.log_verifier()).unwrap();
    policy.check(&saved_cp).unwrap();
    w.conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_key_is_read_from_the_log() {
    // The merchant commits k but does not answer it: the wallet reads the
    // commit by TID from the log (Q1/Q2); the goods check out and the
    // merchant is paid all the same.
    let w = World::start().await;
    let behaviour = Behaviour {
        withhold_key: true,
        ..Behaviour::default()
    };
    let shop = w.add_merchant(behaviour, LONG, PRICE).await;
    let mut wallet = w.customer("bob", PRICE).await;
    wallet.withdraw(PRICE).await.unwrap();
    let out = w.out("bob.goods");
    let report = wallet.buy(&shop.url, ITEM, &out).await.unwrap();
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
            source: Source::Log,
            ..
        }
    )));
    assert_eq!(std::fs::read(&out).unwrap(), GOODS);
    // The key came from the log's entry for this TID.
    let tid = report.tid.unwrap();
    let logged = w.log_client().transaction(&tid).await.unwrap().unwrap();
    let LogEntry::Commit { key, merchant, .. } = logged.entry else {
        panic!("not a commit: {:?}", logged.entry);
    };
    assert_eq!(merchant, shop.key);
    assert!(report.steps.iter().any(|s| matches!(
        s,
        Step::Commit { key: k, .. } if *k == key
    )));

    w.wait_balance(&shop.key, PRICE as i64).await;
    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.live_tokens, 0);
    assert_eq!(s.customer_balances, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_commit_the_sweeper_aborts_and_the_refund_is_unlinkable() {
    // The merchant takes the escrow but never commits. After the
    // expiration the bank's sweeper logs the abort (the wallet asks for
    // nothing meanwhile); the wallet then gets the price back as fresh blind
    // tokens that the bank cannot link to anything it saw before.
    let w = World::start().await;
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let shop = w.add_merchant(behaviour, SHORT, PRICE).await;
    let wallet = w.customer("carol", 50).await;
    let path = wallet.path().to_owned();
    drop(wallet);

    // Withdraw with blinded messages the test knows: saved as a pending
    // withdrawal, then sent by the wallet.
    let mut file = WalletFile::load(&path).unwrap();
    let denomination = |value: u64| {
        let d = file
            .bank
            .denominations
            .iter()
            .find(|d| d.value == value)
            .unwrap();
        Denomination::from_spki(d.value, &d.spki).unwrap()
    };
    let blinded = vec![
        BlindedToken::new(&mut rand::rng(), &denomination(10)).unwrap(),
        BlindedToken::new(&mut rand::rng(), &denomination(1)).unwrap(),
    ];
    let request_id = [9; 16];
    file.withdrawals.push(PendingWithdrawal {
        request_id,
        blinded: blinded.clone(),
        amount: PRICE,
    });
    file.save(&path).unwrap();
    let mut wallet = Wallet::open(&path)
        .unwrap()
        .with_poll_interval(Duration::from_millis(100));
    wallet.finish_withdrawal(&request_id).await.unwrap();
    assert_eq!(wallet.balance().spendable, PRICE);
    let sent_before: Vec<Vec<u8>> = blinded.iter().map(|b| b.blinded.clone()).collect();
    let spent: Vec<[u8; 32]> = tokens(&wallet).iter().map(Token::id).collect();

    let out = w.out("carol.goods");
    let (id, _) = wallet.start_purchase(&shop.url, ITEM, &out).await.unwrap();
    let report = wallet.drive(id, false).await.unwrap();
    assert_eq!(
        report.outcome,
        PurchaseOutcome::Pending {
            state: PurchaseState::AwaitingOutcome
        },
        "{report}"
    );
    let tid = report.tid.unwrap();
    let terms = wallet
        .purchase(id)
        .unwrap()
        .spend
        .as_ref()
        .unwrap()
        .terms
        .clone();
    let log = w.log_client();
    assert!(log.transaction(&tid).await.unwrap().is_none());
    assert_eq!(w.conserved().await.escrowed, PRICE);

    // The sweeper logs the abort once the expiration has passed.
    let deadline = Instant::now() + WAIT;
    let abort = loop {
        if let Some(v) = log.transaction(&tid).await.unwrap() {
            break v;
        }
        assert!(Instant::now() < deadline, "no abort was logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    match abort.entry {
        LogEntry::Abort {
            bank,
            merchant,
            expiration_ms,
            timestamp_ms,
            ..
        } => {
            assert_eq!(bank, w.bank_key);
            assert_eq!(merchant, shop.key);
            assert_eq!(expiration_ms, terms.expiration_ms);
            assert!(timestamp_ms >= expiration_ms);
        }
        other => panic!("expected an abort, got {other:?}"),
    }
    // The aborted escrow still holds the price until the refund.
    assert_eq!(w.conserved().await.escrowed, PRICE);

    let report = wallet.drive(id, true).await.unwrap();
    assert_eq!(
        report.outcome,
        PurchaseOutcome::Refunded {
            reason: RefundReason::Abort,
            amount: PRICE
        },
        "{report}"
    );
    assert!(!report.steps.contains(&Step::AbortRequested));
    assert!(!out.exists());
    assert_eq!(wallet.balance().spendable, PRICE, "the balance is restored");

    // Fresh blinded messages, new tokens that verify and were never spent.
    let record = wallet.purchase(id).unwrap().clone();
    let refund = record.refund.clone().unwrap();
    assert_eq!(refund.blinded.len(), 2);
    for b in &refund.blinded {
        assert!(!sent_before.contains(&b.blinded));
    }
    let new_tokens = tokens(&wallet);
    assert_eq!(new_tokens.len(), refund.blinded.len());
    for (t, b) in new_tokens.iter().zip(&refund.blinded) {
        let d = wallet
            .bank_info()
            .denominations
            .iter()
            .find(|d| d.id == t.denomination)
            .unwrap();
        t.verify(&Denomination::from_spki(d.value, &d.spki).unwrap())
            .unwrap();
        assert!(!spent.contains(&t.id()));
        assert_eq!(t.serial, b.serial);
    }

    // What the bank signed is not what the customer now holds: the same
    // refund again answers the same blind signatures, and none of them is
    // a token's signature. It pays once.
    let q = SigningKey::from_bytes(&record.q);
    let signed = |blinded: &[BlindedToken]| {
        let refund = Refund {
            bank: w.bank_key,
            tid,
            reason: RefundReason::Abort,
            customer: record.customer,
            blinded: blinded.iter().map(BlindedToken::request).collect(),
        };
        let signature = refund.sign(&q);
        RefundRequest {
            refund,
            signature,
            abort: record.abort.clone(),
        }
    };
    let again = w.bank().refund(&signed(&refund.blinded)).await.unwrap();
    assert_eq!(again.blind_signatures.len(), new_tokens.len());
    for (t, s) in new_tokens.iter().zip(&again.blind_signatures) {
        assert_ne!(&t.signature, s);
    }
    let other = vec![
        BlindedToken::new(&mut rand::rng(), &denomination(10)).unwrap(),
        BlindedToken::new(&mut rand::rng(), &denomination(1)).unwrap(),
    ];
    assert_eq!(
        refusal(w.bank().refund(&signed(&other)).await),
        (409, "already_refunded".to_owned())
    );

    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.merchant_balances, 0);
    assert_eq!(s.live_tokens, PRICE);
    assert_eq!(s.customer_balances, 50 - PRICE as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disputes_refund_the_customer_and_debit_the_merchant() {
    // Two merchants cheat after the escrow: one logs a key that does not
    // decrypt, one encrypted other goods than the contract names. Each is
    // paid on its commit, then the customer's dispute refunds the price
    // and debits it; the disputed escrow cannot be paid again.
    let w = World::start().await;
    let bogus = w
        .add_merchant(
            Behaviour {
                bogus_key: true,
                ..Behaviour::default()
            },
            LONG,
            PRICE,
        )
        .await;
    let wrong = w
        .add_merchant(
            Behaviour {
                wrong_goods: true,
                ..Behaviour::default()
            },
            LONG,
            PRICE,
        )
        .await;
    let mut wallet = w.customer("dave", 100).await;
    wallet.withdraw(2 * PRICE).await.unwrap();

    for (shop, finding) in [
        (&bogus, DisputeFinding::KeyDoesNotDecrypt),
        (&wrong, DisputeFinding::WrongGoods),
    ] {
        let out = w.out(&format!("dave-{finding:?}.goods"));
        let (id, _) = wallet.start_purchase(&shop.url, ITEM, &out).await.unwrap();
        wallet.register(id).await.unwrap();
        wallet.request_offer(id).await.unwrap();
        wallet.spend(id).await.unwrap();
        let steps = wallet.deliver(id).await.unwrap();
        assert!(
            steps.contains(&Step::BadGoods { finding }),
            "{finding:?}: {steps:?}"
        );
        assert_eq!(wallet.purchase(id).unwrap().state, PurchaseState::Refunding);
        assert!(!out.exists());
        // The merchant deposits its commit and is paid ...
        w.wait_balance(&shop.key, PRICE as i64).await;
        // ... until the dispute.
        let step = wallet.refund(id).await.unwrap();
        assert_eq!(
            step,
            Step::Refunded {
                reason: RefundReason::Dispute,
                amount: PRICE,
                tokens: 2
            }
        );
        assert_eq!(w.balance(&shop.key).await, 0, "{finding:?}: debited");
        // The commit cannot be paid again.
        let commit = wallet.purchase(id).unwrap().commit.clone().unwrap();
        assert_eq!(
            refusal(w.bank().deposit(&DepositRequest { proof: commit }).await),
            (409, "wrong_escrow_state".to_owned())
        );
        assert_eq!(w.balance(&shop.key).await, 0);
    }
    assert_eq!(wallet.balance().spendable, 2 * PRICE);
    let s = w.conserved().await;
    assert_eq!(s.merchant_balances, 0);
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.live_tokens, 2 * PRICE);
    assert_eq!(s.customer_balances, 100 - 2 * PRICE as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_in_two_purchases_at_once_is_escrowed_once() {
    // Three rounds: one token, registered to Q, is spent at the same
    // moment on two offers (two TIDs). Exactly one spend is escrowed, the
    // other is refused with 409; the winner completes and is paid.
    let w = World::start().await;
    let shop = w
        .add_merchant(Behaviour::default(), LONG, TOKEN_PRICE)
        .await;
    let mut wallet = w.customer("eve", 3 * TOKEN_PRICE).await;
    wallet.withdraw(3 * TOKEN_PRICE).await.unwrap();
    let all = tokens(&wallet);
    assert_eq!(all.len(), 3);

    for (round, token) in all.iter().enumerate() {
        let q = fresh_key();
        register(&w.bank(), token, &q).await;
        let (a, b) = (offer(&shop, &q).await, offer(&shop, &q).await);
        assert_ne!(a.offer.offer.tid, b.offer.offer.tid);
        let sa = spend_request(&a.offer.offer, std::slice::from_ref(token), &q);
        let sb = spend_request(&b.offer.offer, std::slice::from_ref(token), &q);
        let (bank_a, bank_b) = (w.bank(), w.bank());
        let (ra, rb) = tokio::join!(bank_a.spend(&sa), bank_b.spend(&sb));
        let (won, lost) = match (ra, rb) {
            (Ok(r), Err(e)) => ((a, r), e),
            (Err(e), Ok(r)) => ((b, r), e),
            (ra, rb) => panic!("round {round}: expected one winner: {ra:?} / {rb:?}"),
        };
        assert_eq!(
            refusal::<()>(Err(lost)),
            (409, "double_spend".to_owned()),
            "round {round}"
        );
        let s = w.conserved().await;
        assert_eq!(s.escrowed, TOKEN_PRICE, "round {round}: one escrow");

        // The winner's purchase completes.
        let (won_offer, escrow) = won;
        escrow.terms.verify(&escrow.terms_signature).unwrap();
        assert_eq!(escrow.terms, won_offer.offer.offer.terms());
        let delivery = shop
            .client()
            .purchase(&PurchaseRequest {
                terms: escrow.terms.clone(),
                terms_signature: escrow.terms_signature,
            })
            .await
            .unwrap();
        let tid = won_offer.offer.offer.tid;
        let plain = goods::decrypt(&delivery.key, &tid, &won_offer.ciphertext).unwrap();
        assert_eq!(plain, GOODS);
        w.wait_balance(&shop.key, (round as i64 + 1) * TOKEN_PRICE as i64)
            .await;
    }
    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.live_tokens, 0);
    assert_eq!(s.merchant_balances, 3 * TOKEN_PRICE as i64);
    assert_eq!(s.customer_balances, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_give_the_same_answer_and_move_money_once() {
    // The spend (P2), the merchant's purchase (P3 → P4 → P6), the
    // merchant's key commit and the deposit, each sent again, alone and
    // concurrently: the same answers, one escrow, one log entry, one
    // payment.
    let w = World::start().await;
    let shop = w
        .add_merchant(Behaviour::default(), LONG, TOKEN_PRICE)
        .await;
    let mut wallet = w.customer("frank", TOKEN_PRICE).await;
    wallet.withdraw(TOKEN_PRICE).await.unwrap();
    let token = tokens(&wallet).remove(0);
    let q = fresh_key();
    register(&w.bank(), &token, &q).await;
    // Registering again to the same key is answered with the same receipt.
    let receipt = register(&w.bank(), &token, &q).await;
    assert_eq!(receipt, register(&w.bank(), &token, &q).await);
    let o = offer(&shop, &q).await;
    let tid = o.offer.offer.tid;

    // P2, three times (two at once).
    let spend = spend_request(&o.offer.offer, std::slice::from_ref(&token), &q);
    let first = w.bank().spend(&spend).await.unwrap();
    let (bank_a, bank_b) = (w.bank(), w.bank());
    let (again, concurrent) = tokio::join!(bank_a.spend(&spend), bank_b.spend(&spend));
    assert_eq!(again.unwrap(), first);
    assert_eq!(concurrent.unwrap(), first);
    let s = w.conserved().await;
    assert_eq!(s.escrowed, TOKEN_PRICE, "one escrow");
    assert_eq!(s.live_tokens, 0);

    // P4 through the merchant, three times (two at once).
    let purchase = PurchaseRequest {
        terms: first.terms.clone(),
        terms_signature: first.terms_signature,
    };
    let delivery = shop.client().purchase(&purchase).await.unwrap();
    let (shop_a, shop_b) = (shop.client(), shop.client());
    let (d2, d3) = tokio::join!(shop_a.purchase(&purchase), shop_b.purchase(&purchase));
    assert_eq!(d2.unwrap(), delivery);
    assert_eq!(d3.unwrap(), delivery);
    assert_eq!(shop.client().delivery(&tid).await.unwrap(), delivery);
    assert_eq!(
        goods::decrypt(&delivery.key, &tid, &o.ciphertext).unwrap(),
        GOODS
    );
    assert_eq!(delivery.commit.index, 0);
    assert_eq!(w.log_size().await, 1, "one log entry");

    // The merchant's key commit itself, sent to the log again.
    let LogEntry::Commit {
        merchant,
        expiration_ms,
        key,
        signature,
        ..
    } = LogEntry::decode(&delivery.commit.entry).unwrap()
    else {
        panic!("the delivery's entry is not a commit");
    };
    let replayed = w
        .log_client()
        .commit(&CommitRequest {
            tid,
            merchant,
            expiration_ms,
            key,
            signature,
        })
        .await
        .unwrap();
    assert_eq!(replayed.proof.index, 0);
    assert_eq!(replayed.proof.entry, delivery.commit.entry);
    assert_eq!(w.log_size().await, 1, "still one log entry");

    // The merchant's own deposit pays once; the same deposit again (and
    // twice at once) answers the same and pays nothing more.
    w.wait_balance(&shop.key, TOKEN_PRICE as i64).await;
    let deposit = DepositRequest {
        proof: delivery.commit.clone(),
    };
    let paid = w.bank().deposit(&deposit).await.unwrap();
    assert_eq!(
        (paid.tid, paid.merchant, paid.amount),
        (tid, shop.key, TOKEN_PRICE)
    );
    let (p2, p3) = tokio::join!(bank_a.deposit(&deposit), bank_b.deposit(&deposit));
    assert_eq!(p2.unwrap(), paid);
    assert_eq!(p3.unwrap(), paid);
    // The spend, replayed after the payment, still answers the same and
    // escrows nothing.
    assert_eq!(w.bank().spend(&spend).await.unwrap(), first);
    assert_eq!(w.balance(&shop.key).await, TOKEN_PRICE as i64);
    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.merchant_balances, TOKEN_PRICE as i64);
    assert_eq!(s.live_tokens, 0);
    assert_eq!(s.customer_balances, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_refuses_a_commit_after_its_expiration() {
    // An escrowed purchase whose merchant signs its key commit with an
    // expiration in the past: the log answers 422 `expired` and records
    // nothing, so the bank has nothing to pay on. In time, the same TID is
    // committed and paid.
    let w = World::start().await;
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let shop = w.add_merchant(behaviour, LONG, TOKEN_PRICE).await;
    let mut wallet = w.customer("grace", TOKEN_PRICE).await;
    wallet.withdraw(TOKEN_PRICE).await.unwrap();
    let token = tokens(&wallet).remove(0);
    let q = fresh_key();
    register(&w.bank(), &token, &q).await;
    let o = offer(&shop, &q).await;
    let tid = o.offer.offer.tid;
    w.bank()
        .spend(&spend_request(
            &o.offer.offer,
            std::slice::from_ref(&token),
            &q,
        ))
        .await
        .unwrap();

    let late = key_commit(&shop, tid, now_ms() - 1_000, [7; 32]);
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/commit", w.log.url))
        .json(&late)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "expired", "{body}");
    assert!(w.log_client().transaction(&tid).await.unwrap().is_none());
    assert_eq!(w.log_size().await, 0);
    assert_eq!(w.conserved().await.escrowed, TOKEN_PRICE);
    assert_eq!(w.balance(&shop.key).await, 0);

    // Before the offer's expiration the commit is accepted and paid.
    let in_time = key_commit(&shop, tid, o.offer.offer.expiration_ms, [7; 32]);
    let v = w.log_client().commit(&in_time).await.unwrap();
    let paid = w
        .bank()
        .deposit(&DepositRequest { proof: v.proof })
        .await
        .unwrap();
    assert_eq!(paid.amount, TOKEN_PRICE);
    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.merchant_balances, TOKEN_PRICE as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_under_forged_or_forked_checkpoints_are_refused() {
    // Two escrows with a merchant that leaves the commits to the test.
    // A deposit whose checkpoint is signed by another key, or whose root was
    // altered, is refused (400). A second log instance with the same key
    // and origin, fed another history, proves a commit under a checkpoint
    // of the size the bank has seen but another root, then under a larger
    // one that does not extend it: both refused (409
    // inconsistent_checkpoint). Nothing is paid on them; the genuine log's
    // proofs are paid.
    let w = World::start().await;
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let shop = w.add_merchant(behaviour, LONG, TOKEN_PRICE).await;
    let offers = escrows(&w, &shop, "heidi", 2).await;
    let (o1, o2) = (&offers[0], &offers[1]);
    let log_a = w.log_client();
    let genuine = log_a
        .commit(&key_commit(&shop, o1.tid, o1.expiration_ms, [1; 32]))
        .await
        .unwrap()
        .proof;

    let deposit = |proof: &EntryProof| {
        let bank = w.bank();
        let proof = proof.clone();
        async move { bank.deposit(&DepositRequest { proof }).await }
    };

    // Signed by an impostor key of the same name.
    let checkpoint = SignedCheckpoint::open(&genuine.checkpoint, &w.log_verifier()).unwrap();
    let impostor = NoteSigner::new(ORIGIN, fresh_key()).unwrap();
    let mut forged = genuine.clone();
    forged.checkpoint = SignedCheckpoint::sign(checkpoint.checkpoint.clone(), &impostor)
        .unwrap()
        .to_text();
    assert_eq!(
        refusal(deposit(&forged).await),
        (400, "bad_proof".to_owned())
    );
    // The log's signature over an altered root.
    let mut note = Note::parse(&genuine.checkpoint).unwrap();
    let mut body = Checkpoint::parse(&note.text).unwrap();
    body.root[0] ^= 1;
    note.text = body.to_text();
    let mut altered = genuine.clone();
    altered.checkpoint = note.to_text();
    assert_eq!(
        refusal(deposit(&altered).await),
        (400, "bad_proof".to_owned())
    );
    assert_eq!(w.balance(&shop.key).await, 0);
    assert_eq!(w.conserved().await.escrowed, 2 * TOKEN_PRICE);

    // The genuine proof is paid; then the bank sees the log at size 2.
    assert_eq!(deposit(&genuine).await.unwrap().amount, TOKEN_PRICE);
    let filler = |salt: u8| {
        commit(
            ORIGIN,
            &key(salt),
            fresh_tid(),
            now_ms() + 600_000,
            [salt; 32],
        )
    };
    log_a.commit(&filler(3)).await.unwrap();
    let latest = log_a.transaction(&o1.tid).await.unwrap().unwrap().proof;
    assert_eq!(latest.tree_size, 2);
    assert_eq!(deposit(&latest).await.unwrap().amount, TOKEN_PRICE);
    assert_eq!(w.balance(&shop.key).await, TOKEN_PRICE as i64);

    // The fork: the same key and origin, another history of size 2 that
    // holds a commit for the second escrow.
    let fork_dir = w.dir.path().join("fork");
    std::fs::create_dir_all(&fork_dir).unwrap();
    std::fs::copy(w.log.data.join("log.key"), fork_dir.join("log.key")).unwrap();
    let fork = blocking(|| ServerProcess::start(&fork_dir, ORIGIN, &[w.bank_key]));
    assert_eq!(fork.vkey, w.log.vkey);
    let log_b = LogClient::new(&fork.url, w.log_verifier());
    log_b.commit(&filler(4)).await.unwrap();
    let split = log_b
        .commit(&key_commit(&shop, o2.tid, o2.expiration_ms, [2; 32]))
        .await
        .unwrap()
        .proof;
    assert_eq!(split.tree_size, 2);
    assert_eq!(
        refusal(deposit(&split).await),
        (409, "inconsistent_checkpoint".to_owned())
    );
    // Both grow to 3: the fork's checkpoint does not extend the one the
    // bank accepted.
    log_a.commit(&filler(5)).await.unwrap();
    log_b.commit(&filler(6)).await.unwrap();
    let grown = log_b.transaction(&o2.tid).await.unwrap().unwrap().proof;
    assert_eq!(grown.tree_size, 3);
    assert_eq!(
        refusal(deposit(&grown).await),
        (409, "inconsistent_checkpoint".to_owned())
    );
    assert_eq!(w.balance(&shop.key).await, TOKEN_PRICE as i64);
    assert_eq!(w.conserved().await.escrowed, TOKEN_PRICE);

    // The genuine log's commit of the second escrow is paid.
    let real = log_a
        .commit(&key_commit(&shop, o2.tid, o2.expiration_ms, [2; 32]))
        .await
        .unwrap()
        .proof;
    assert_eq!(deposit(&real).await.unwrap().amount, TOKEN_PRICE);
    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.merchant_balances, 2 * TOKEN_PRICE as i64);
    assert_eq!(s.live_tokens, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_wait_for_the_witness_and_stop_at_a_split_view() {
    // The bank pays only under checkpoints its witness cosigned. A commit's
    // own proof (its checkpoint not cosigned yet) is refused (422
    // insufficient_cosignatures); the log's proof once cosigned is paid. A
    // second instance of the log (same key and origin) shows the witness
    // another root for the same size: the witness freezes the log. The
    // fork's proof of the second escrow is refused, also with a cosignature
    // line copied from the genuine checkpoint, and so is the genuine log's
    // proof, since the frozen witness cosigns nothing more. Once the
    // operator has stopped the fork and cleared the witness, the genuine
    // proof is cosigned and paid.
    let mut w = World::start_witnessed().await;
    let witness = w.witness.as_ref().unwrap();
    let kind = CosignatureVerifier::from_vkey(&witness.vkey)
        .unwrap()
        .kind();
    assert_eq!(
        kind,
        CosignatureKind::MlDsa44,
        "the bank's witness is post-quantum"
    );
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let shop = w.add_merchant(behaviour, LONG, TOKEN_PRICE).await;
    let offers = escrows(&w, &shop, "ivan", 2).await;
    let (o1, o2) = (&offers[0], &offers[1]);
    let bank_url = w.bank_url.clone();
    let deposit = |proof: &EntryProof| {
        let bank = BankClient::new(&bank_url);
        let proof = proof.clone();
        async move { bank.deposit(&DepositRequest { proof }).await }
    };
    let uncosigned = || (422, "insufficient_cosignatures".to_owned());

    let log_a = w.log_client();
    let committed = log_a
        .commit(&key_commit(&shop, o1.tid, o1.expiration_ms, [1; 32]))
        .await
        .unwrap()
        .proof;
    assert_eq!(refusal(deposit(&committed).await), uncosigned());
    let cosigned = w.cosigned_proof(&o1.tid).await;
    assert_eq!(deposit(&cosigned).await.unwrap().amount, TOKEN_PRICE);

    // The fork asks the same witness, with another entry at index 0.
    let fork_dir = w.dir.path().join("fork");
    std::fs::create_dir_all(&fork_dir).unwrap();
    std::fs::copy(w.log.data.join("log.key"), fork_dir.join("log.key")).unwrap();
    let witness = w.witness.as_ref().unwrap();
    let spec = format!("{}@{}", witness.vkey, witness.url);
    let witness_url = witness.url.clone();
    let fork = blocking(|| ServerProcess::start_log(&fork_dir, ORIGIN, &[w.bank_key], &[spec]));
    let log_b = LogClient::new(&fork.url, w.log_verifier());
    let split = log_b
        .commit(&key_commit(&shop, o2.tid, o2.expiration_ms, [2; 32]))
        .await
        .unwrap()
        .proof;
    assert_eq!(split.tree_size, 1);
    wait_for_metric(&witness_url, "acd_auditor_frozen_origins", 1).await;
    assert_eq!(refusal(deposit(&split).await), uncosigned());
    let line = cosigned
        .checkpoint
        .lines()
        .find(|l| l.starts_with(&format!("— {WITNESS} ")))
        .unwrap();
    let mut copied = split.clone();
    copied.checkpoint = format!("{}{line}\n", split.checkpoint);
    assert_eq!(refusal(deposit(&copied).await), uncosigned());

    // The genuine log goes on; the frozen witness cosigns none of it.
    let real = log_a
        .commit(&key_commit(&shop, o2.tid, o2.expiration_ms, [2; 32]))
        .await
        .unwrap()
        .proof;
    assert_eq!(real.tree_size, 2);
    // `/checkpoint` moves to size 2 once the witness round for it is over.
    let deadline = Instant::now() + WAIT;
    while w.log_size().await < 2 {
        assert!(Instant::now() < deadline, "no witness round for size 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latest = log_a.transaction(&o2.tid).await.unwrap().unwrap().proof;
    assert_eq!(refusal(deposit(&latest).await), uncosigned());
    assert_eq!(w.balance(&shop.key).await, TOKEN_PRICE as i64);
    assert_eq!(w.conserved().await.escrowed, TOKEN_PRICE);

    // The operator stops the fork and clears the witness.
    drop(fork);
    w.clear_witness().await;
    let paid = deposit(&w.cosigned_proof(&o2.tid).await).await.unwrap();
    assert_eq!(paid.amount, TOKEN_PRICE);
    let s = w.conserved().await;
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.merchant_balances, 2 * TOKEN_PRICE as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_restarted_between_every_step() {
    // One purchase driven step by step, with the bank killed (SIGKILL) and
    // started again on the same address and data between every pair of
    // steps: withdraw | register | offer | spend | purchase | deposit. The
    // purchase is made with the bank down, so the deposit waits for its
    // return. It completes; no money is created or lost.
    let mut w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG, PRICE).await;
    let mut wallet = w.customer("ivan", 100).await;
    let account = wallet.account_key();

    w.restart_bank();
    wallet.withdraw(PRICE).await.unwrap();
    w.restart_bank();
    assert_eq!(w.balance(&account).await, 100 - PRICE as i64);
    let out = w.out("ivan.goods");
    let (id, _) = wallet.start_purchase(&shop.url, ITEM, &out).await.unwrap();
    wallet.register(id).await.unwrap();
    w.restart_bank();
    wallet.request_offer(id).await.unwrap();
    w.restart_bank();
    wallet.spend(id).await.unwrap();
    assert_eq!(wallet.purchase(id).unwrap().state, PurchaseState::Escrowed);
    w.restart_bank();
    assert_eq!(w.conserved().await.escrowed, PRICE);

    w.kill_bank();
    let steps = wallet.deliver(id).await.unwrap();
    assert!(
        steps.iter().any(|s| matches!(s, Step::Goods { .. })),
        "{steps:?}"
    );
    assert_eq!(wallet.purchase(id).unwrap().state, PurchaseState::Delivered);
    assert_eq!(std::fs::read(&out).unwrap(), GOODS);
    w.start_bank();
    w.wait_balance(&shop.key, PRICE as i64).await;
    w.restart_bank();

    assert_eq!(w.balance(&shop.key).await, PRICE as i64);
    assert_eq!(w.balance(&account).await, 100 - PRICE as i64);
    let s = w.conserved().await;
    assert_eq!(s.credited, 100);
    assert_eq!(s.escrowed, 0);
    assert_eq!(s.live_tokens, 0);
    assert_eq!(s.merchant_balances, PRICE as i64);
    assert_eq!(s.customer_balances, 100 - PRICE as i64);
    assert_eq!(wallet.balance().spendable, 0);
}

/// Key-value pairs of one record kind.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// The rows of the bank's record kinds `prefixes` (`acct/`, `reg/`, ...),
/// keys without their prefix, read from a copy of its sled database or
/// from its PostgreSQL tables, whichever it runs on.
fn bank_tables(w: &World, prefixes: &[&'static str]) -> Vec<(&'static str, Rows)> {
    if let Some(url) = acd_testkit::pgdb::backend_database(&w.bank_data) {
        let pg = acd_tests::Postgres::from_env().unwrap();
        return prefixes
            .iter()
            .map(|&prefix| {
                let table = match prefix {
                    "acct/" => "accounts",
                    "reg/" => "registrations",
                    "spent/" => "spent_tokens",
                    "escrow/" => "escrows",
                    "due/" => "due",
                    other => panic!("no table for {other}"),
                };
                let out = pg.psql(
                    &url,
                    &format!(
                        "SELECT encode(key, 'hex') || ' ' || encode(value, 'hex') FROM {table}"
                    ),
                );
                let rows = out
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once(' ').unwrap();
                        (hex::decode(k).unwrap(), hex::decode(v).unwrap())
                    })
                    .collect();
                (prefix, rows)
            })
            .collect();
    }
    let copy = w.dir.path().join("bank-db-copy");
    copy_dir(&w.bank_data.join("db"), &copy);
    let db = sled::open(&copy).unwrap();
    prefixes
        .iter()
        .map(|&prefix| {
            let rows = db
                .scan_prefix(prefix.as_bytes())
                .map(|item| {
                    let (k, v) = item.unwrap();
                    (k[prefix.len()..].to_vec(), v.to_vec())
                })
                .collect();
            (prefix, rows)
        })
        .collect()
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_and_the_bank_keep_what_they_may_learn_only() {
    // After a purchase at a distinctive price: the log's files and its
    // entry bundles hold no price, no item (description or goods hashes)
    // and no customer key; the bank's registrations, spends and escrows
    // hold no account key, and its files no item.
    let mut w = World::start().await;
    let price = 3141;
    let shop = w.add_merchant(Behaviour::default(), LONG, price).await;
    let mut wallet = w.customer("judy", price).await;
    wallet.withdraw(price).await.unwrap();
    let out = w.out("judy.goods");
    let report = wallet.buy(&shop.url, ITEM, &out).await.unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report}"
    );
    w.wait_balance(&shop.key, price as i64).await;
    let s = w.conserved().await;
    assert_eq!((s.escrowed, s.live_tokens), (0, 0));

    let tid = report.tid.unwrap();
    let record = wallet.purchase_by_tid(&tid).unwrap().clone();
    let offer = record.offer.clone().unwrap().offer;
    let account = wallet.account_key();
    let q = record.customer;
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("description", DESCRIPTION.as_bytes().to_vec()),
        ("plaintext hash", offer.plaintext_hash.to_vec()),
        ("ciphertext hash", offer.ciphertext_hash.to_vec()),
        ("account key", account.to_vec()),
        ("account key (hex)", hex::encode(account).into_bytes()),
        ("Q", q.to_vec()),
        ("Q (hex)", hex::encode(q).into_bytes()),
    ];

    // The log: its entry bundle (the read path) ...
    let size = w.log_size().await;
    assert_eq!(size, 1);
    let path = TilePath::Entries {
        index: 0,
        width: size as u16,
    }
    .to_path();
    let bundle = reqwest::get(format!("{}/{path}", w.log.url))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let entries = acd_core::tile::decode_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = LogEntry::decode(entries[0]).unwrap();
    assert!(matches!(entry, LogEntry::Commit { .. }));
    assert_eq!(entry.tid(), tid);
    assert!(!contains(entries[0], &price.to_be_bytes()));
    assert!(!contains(entries[0], &price.to_le_bytes()));
    for (what, bytes) in &secrets {
        assert!(
            !contains(entries[0], bytes),
            "the log's entry holds the {what}"
        );
    }
    // ... and its files on disk.
    assert!(
        !files_containing(&w.log.data, &tid.0).is_empty(),
        "the scan does not see the log's data"
    );
    for (what, bytes) in &secrets {
        let found = files_containing(&w.log.data, bytes);
        assert!(found.is_empty(), "the log stores the {what} in {found:?}");
    }

    // The bank, stopped: its purchase records hold no account identity.
    let bank = w.bank.take().unwrap();
    assert!(bank.terminate(Duration::from_secs(10)).is_some());
    let tables = bank_tables(&w, &["acct/", "reg/", "spent/", "escrow/", "due/"]);
    assert!(
        tables[0].1.iter().any(|(k, _)| k == &account),
        "the account is in the books"
    );
    let mut counts = Vec::new();
    for (table, rows) in &tables[1..] {
        for (k, v) in rows {
            for needle in [account.to_vec(), hex::encode(account).into_bytes()] {
                assert!(!contains(k, &needle), "a {table} key holds the account key");
                assert!(
                    !contains(v, &needle),
                    "a {table} record holds the account key"
                );
            }
        }
        counts.push((*table, rows.len()));
    }
    // 9 tokens (3 x 1000, 100, 4 x 10, 1), one escrow, none due.
    assert_eq!(
        counts,
        vec![("reg/", 9), ("spent/", 9), ("escrow/", 1), ("due/", 0)]
    );
    // The escrow holds Q in hex: the scan would see a key stored that way.
    let escrow = &tables[3].1.iter().find(|(k, _)| k == &tid.0).unwrap().1;
    assert!(contains(escrow, hex::encode(q).as_bytes()));
    for (what, bytes) in &secrets[..3] {
        let found = files_containing(&w.bank_data, bytes);
        assert!(found.is_empty(), "the bank stores the {what} in {found:?}");
    }

    w.start_bank();
    let s = w.conserved().await;
    assert_eq!(s.merchant_balances, price as i64);
}
