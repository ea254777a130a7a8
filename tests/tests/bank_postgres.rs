//! The bank on PostgreSQL, as real processes: two `acd-bank serve`
//! front-ends with the same keys (one data directory) and `--database`
//! are one bank. Covered: 50 concurrent spends of one token split between
//! the two (exactly one escrow); a SIGKILL of one front-end under a load of
//! credits at both; `pg_ctl -m immediate stop` under that load and a start
//! again: every acknowledged credit is there, every retried one counted
//! once, the sums conserve, and the same processes answer again.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acd_client::ClientError;
use acd_client::bank::BankClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit, RegisterRequest, SpendRequest, Sums};
use acd_core::purchase::{EscrowTerms, Spend};
use acd_tests::{
    Postgres, ServerProcess, admin_token, bank_key, fresh_tid, key, now_ms, seed_bank_keys,
};
use acd_wallet::Wallet;
use ed25519_dalek::SigningKey;

/// Tests that stop the server hold it alone; the others share it.
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Two front-ends on one database.
struct Banks {
    dir: tempfile::TempDir,
    data: PathBuf,
    database: String,
    fronts: Vec<Option<ServerProcess>>,
    urls: Vec<String>,
    token: String,
    key: [u8; 32],
    logs: Vec<String>,
    _log: ServerProcess,
}

const ORIGIN: &str = "bank-postgres.test/log";

impl Banks {
    fn start(pg: &Postgres) -> Banks {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bank");
        seed_bank_keys(&data);
        let database = pg.fresh_database();
        let key = bank_key(&data);
        let log = ServerProcess::start(&dir.path().join("log"), ORIGIN, &[key]);
        let mut banks = Banks {
            logs: vec![format!("{}@{}", log.vkey, log.url)],
            _log: log,
            dir,
            data,
            database,
            fronts: Vec::new(),
            urls: Vec::new(),
            token: String::new(),
            key,
        };
        for _ in 0..2 {
            let front = banks.spawn("127.0.0.1:0");
            banks.urls.push(front.url.clone());
            banks.fronts.push(Some(front));
        }
        banks.token = admin_token(&banks.data);
        banks
    }

    fn spawn(&self, listen: &str) -> ServerProcess {
        let extra = ["--database".to_owned(), self.database.clone()];
        ServerProcess::start_bank_with(&self.data, listen, &self.logs, &extra)
    }

    fn admin(&self, i: usize) -> BankClient {
        BankClient::new(&self.urls[i]).with_admin_token(&self.token)
    }

    /// Both front-ends' sums, which must agree and conserve.
    async fn conserved(&self) -> Sums {
        let a = self.admin(0).sums().await.unwrap();
        let b = self.admin(1).sums().await.unwrap();
        assert_eq!(a, b, "the front-ends disagree");
        assert!(a.conserved, "{a:?}");
        a
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn terms(bank: [u8; 32], merchant: [u8; 32], price: u64) -> EscrowTerms {
    EscrowTerms {
        bank,
        tid: fresh_tid(),
        merchant,
        price,
        expiration_ms: now_ms() + 60_000,
        log_origin: ORIGIN.into(),
    }
}

// 50 spends of one token at the same moment, 25 at each front-end:
// exactly one escrow, 49 refusals `double_spend`, and both front-ends
// show the same conserved sums. The data directory holds no database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_spends_of_one_token_at_two_front_ends_escrow_once() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let _shared = SERVER.read().await;
    let banks = blocking(|| Banks::start(&pg));
    let merchant = key(0xa1).verifying_key().to_bytes();
    banks
        .admin(1)
        .create_account(&CreateAccount {
            key: merchant,
            kind: AccountKind::Merchant,
        })
        .await
        .unwrap();
    let path = banks.dir.path().join("w.wallet.json");
    let mut wallet = Wallet::create(&path, &banks.urls[0]).await.unwrap();
    banks
        .admin(1)
        .create_account(&CreateAccount {
            key: wallet.account_key(),
            kind: AccountKind::Customer,
        })
        .await
        .unwrap();
    banks
        .admin(0)
        .credit(&Credit::new(&mut rand::rng(), wallet.account_key(), 10))
        .await
        .unwrap();
    wallet.withdraw(10).await.unwrap();
    let token = wallet.file().tokens[0].token.clone();
    let q: SigningKey = key(0x51);
    BankClient::new(&banks.urls[1])
        .register(&RegisterRequest {
            token: token.clone(),
            customer: q.verifying_key().to_bytes(),
        })
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u8 {
        let spend = Spend {
            terms: terms(banks.key, merchant, 10),
            customer: q.verifying_key().to_bytes(),
            token_ids: vec![token.id()],
            change: vec![],
        };
        let signature = spend.sign(&q);
        let req = SpendRequest {
            spend,
            tokens: vec![token.clone()],
            signature,
        };
        let bank = BankClient::new(&banks.urls[usize::from(i % 2)]);
        tasks.spawn(async move { bank.spend(&req).await });
    }
    let (mut won, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => won += 1,
            Err(ClientError::Refused { status: 409, body }) if body.error == "double_spend" => {
                refused += 1
            }
            Err(e) => panic!("unexpected answer: {e:?}"),
        }
    }
    assert_eq!((won, refused), (1, 49));
    let s = banks.conserved().await;
    assert_eq!(
        (s.escrowed, s.live_tokens, s.credited),
        (10, 0, 10),
        "{s:?}"
    );
    assert!(!banks.data.join("db").exists(), "no sled database");
}

/// Credits of 1 to `accounts` from 8 clients, alternately at each
/// front-end, until `stop`; each credit's request and whether it was
/// acknowledged.
type Ledger = Arc<Mutex<Vec<(Credit, bool)>>>;

fn credit_load(
    banks: &Banks,
    accounts: &[[u8; 32]],
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Ledger, tokio::task::JoinSet<()>) {
    let sent: Ledger = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, account) in accounts.iter().enumerate() {
        let clients = [banks.admin(0), banks.admin(1)];
        let (sent, stop, account) = (sent.clone(), stop.clone(), *account);
        tasks.spawn(async move {
            let mut i = n;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let c = Credit::new(&mut rand::rng(), account, 1);
                let ok = clients[i % 2].credit(&c).await.is_ok();
                sent.lock().unwrap().push((c, ok));
                if !ok {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                i += 1;
            }
        });
    }
    (sent, tasks)
}

/// After the load: every acknowledged credit is counted; retrying the
/// others (idempotent by request id) until they are acknowledged makes
/// the books exactly what was sent, once each.
async fn settle(banks: &Banks, accounts: &[[u8; 32]], sent: &Ledger) {
    let sent = sent.lock().unwrap().clone();
    let acked = sent.iter().filter(|(_, ok)| *ok).count() as u64;
    let before = banks.conserved().await;
    assert!(before.credited >= acked, "{before:?}, {acked} acknowledged");
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, (c, ok)) in sent.iter().enumerate() {
        if *ok {
            continue;
        }
        loop {
            match banks.admin(i % 2).credit(c).await {
                Ok(_) => break,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "a credit is still refused: {e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let s = banks.conserved().await;
    assert_eq!(s.credited, sent.len() as u64, "{s:?}");
    for a in accounts {
        let mine = sent.iter().filter(|(c, _)| c.key == *a).count() as i64;
        assert_eq!(banks.admin(0).account(a).await.unwrap().balance, mine);
    }
    println!(
        "{} credits, {acked} acknowledged under faults, {} retried",
        sent.len(),
        sent.len() as u64 - acked
    );
}

async fn accounts(banks: &Banks) -> Vec<[u8; 32]> {
    let keys: Vec<[u8; 32]> = (0..8u8)
        .map(|i| key(0x70 + i).verifying_key().to_bytes())
        .collect();
    for k in &keys {
        banks
            .admin(0)
            .create_account(&CreateAccount {
                key: *k,
                kind: AccountKind::Customer,
            })
            .await
            .unwrap();
    }
    keys
}

// A front-end SIGKILLed under load: what it acknowledged is in the books,
// the other front-end goes on, and a new process in its place serves the
// same books.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_front_end_killed_under_load_loses_nothing() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let _shared = SERVER.read().await;
    let mut banks = blocking(|| Banks::start(&pg));
    let keys = accounts(&banks).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sent, mut tasks) = credit_load(&banks, &keys, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let addr = banks.fronts[1].as_ref().unwrap().addr();
    banks.fronts[1].take().unwrap().kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let front = blocking(|| banks.spawn(&addr));
    banks.fronts[1] = Some(front);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}
    settle(&banks, &keys, &sent).await;
}

// PostgreSQL stopped at once (`pg_ctl -m immediate stop`) under load and
// started again: the front-ends answer 503 meanwhile, then serve again
// without a restart; every acknowledged credit is there and none counts
// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_at_once_under_load_loses_nothing() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let _alone = SERVER.write().await;
    let banks = blocking(|| Banks::start(&pg));
    let pids: Vec<u32> = banks
        .fronts
        .iter()
        .flatten()
        .map(ServerProcess::pid)
        .collect();
    let keys = accounts(&banks).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sent, mut tasks) = credit_load(&banks, &keys, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let options = blocking(|| pg.stop_immediately());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let refused = banks.admin(0).sums().await;
    assert!(
        matches!(&refused, Err(ClientError::Refused { status: 503, .. })),
        "{refused:?}"
    );
    blocking(|| pg.start(&options));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}
    settle(&banks, &keys, &sent).await;
    let now: Vec<u32> = banks
        .fronts
        .iter()
        .flatten()
        .map(ServerProcess::pid)
        .collect();
    assert_eq!(pids, now, "the same processes");
}
