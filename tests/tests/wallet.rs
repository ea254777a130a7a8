//! The customer's wallet against the real servers on loopback (the log and
//! the bank as processes, merchants in process), as the `acd wallet`
//! command line and as the library: several commands on one wallet file at
//! once, goods that cannot be written, `resume` from another directory, a
//! token spent from a restored backup, the log restarted while a purchase
//! waits for it, and `acd loadgen purchases` through a bank restart. Every
//! test ends with the bank's conservation sums.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use acd_client::bank::BankClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit, LogInfo, Sums};
use acd_core::cosignature::CosignatureVerifier;
use acd_merchant::{Behaviour, CatalogEntry, Merchant, MerchantConfig};
use acd_tests::{ServerProcess, admin_token, bank_key, binary, key, seed_bank_keys};
use acd_wallet::{PurchaseOutcome, PurchaseState, Step, Wallet, WalletError};
use tokio::sync::oneshot;

const ORIGIN: &str = "wallet.test/log";
const ITEM: &str = "charts";
const GOODS: &[u8] = b"soundings of the outer harbour, in fathoms, at low water springs";
/// One token of 10.
const PRICE: u64 = 10;
const LONG: Duration = Duration::from_secs(60);
/// The bank escrows only expirations at least 1 s ahead.
const SHORT: Duration = Duration::from_secs(4);
const WAIT: Duration = Duration::from_secs(30);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

struct Shop {
    url: String,
    key: [u8; 32],
    _stop: oneshot::Sender<()>,
}

/// A log and a bank (processes) in one temporary directory.
struct World {
    dir: tempfile::TempDir,
    log: Option<ServerProcess>,
    log_url: String,
    log_data: PathBuf,
    bank: Option<ServerProcess>,
    bank_data: PathBuf,
    bank_url: String,
    bank_key: [u8; 32],
    logs: Vec<String>,
    admin: BankClient,
}

impl World {
    async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let bank_data = dir.path().join("bank");
        let log_data = dir.path().join("log");
        let (log, bank, bank_key, logs) = blocking(|| {
            seed_bank_keys(&bank_data);
            let bank_key = bank_key(&bank_data);
            let log = ServerProcess::start(&log_data, ORIGIN, &[bank_key]);
            let logs = vec![format!("{}@{}", log.vkey, log.url)];
            let bank = ServerProcess::start_bank(&bank_data, "127.0.0.1:0", &logs);
            (log, bank, bank_key, logs)
        });
        let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&bank_data));
        World {
            log_url: log.url.clone(),
            log: Some(log),
            log_data,
            bank_url: bank.url.clone(),
            bank: Some(bank),
            dir,
            bank_data,
            bank_key,
            logs,
            admin,
        }
    }

    fn log_info(&self) -> LogInfo {
        let log = self.log.as_ref().unwrap();
        LogInfo {
            vkey: log.vkey.clone(),
            url: log.url.clone(),
        }
    }

    async fn add_merchant(&self, behaviour: Behaviour, lifetime: Duration) -> Shop {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let data = self.dir.path().join(format!("merchant-{n}"));
        std::fs::create_dir_all(&data).unwrap();
        let file = data.join("charts.txt");
        std::fs::write(&file, GOODS).unwrap();
        let mut config = MerchantConfig::new(
            data,
            self.bank_url.clone(),
            self.log_info(),
            vec![CatalogEntry {
                id: ITEM.into(),
                description: "harbour charts".into(),
                price: PRICE,
                file,
            }],
        );
        config.offer_lifetime = lifetime;
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
            _stop: stop,
        }
    }

    /// A credited customer account and its wallet file in `dir` (created,
    /// then closed).
    async fn customer(&self, dir: &Path, funds: u64) -> (PathBuf, [u8; 32]) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("wallet.json");
        let wallet = Wallet::create(&path, &self.bank_url).await.unwrap();
        let key = wallet.account_key();
        drop(wallet);
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
        (path, key)
    }

    async fn balance(&self, account: &[u8; 32]) -> i64 {
        self.admin.account(account).await.unwrap().balance
    }

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

    /// The conservation sums, which must hold, once nothing is escrowed.
    async fn settled(&self) -> Sums {
        let deadline = Instant::now() + WAIT;
        loop {
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
            if s.escrowed == 0 {
                return s;
            }
            assert!(Instant::now() < deadline, "still escrowed: {s:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn restart_bank(&mut self) {
        self.bank.take().unwrap().kill();
        let addr = self.bank_url.trim_start_matches("http://").to_owned();
        let bank = blocking(|| ServerProcess::start_bank(&self.bank_data, &addr, &self.logs));
        assert_eq!(bank.url, self.bank_url);
        self.bank = Some(bank);
    }

    fn restart_log(&mut self) {
        self.log.take().unwrap().kill();
        let addr = self.log_url.trim_start_matches("http://").to_owned();
        let log = blocking(|| {
            ServerProcess::start_log_at(&self.log_data, ORIGIN, &[self.bank_key], &[], &addr)
        });
        assert_eq!(log.url, self.log_url);
        self.log = Some(log);
    }
}

/// `acd wallet --file FILE ARGS…` run in `cwd`.
fn wallet_cmd(cwd: &Path, file: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("acd"));
    cmd.current_dir(cwd)
        .arg("wallet")
        .arg("--file")
        .arg(file)
        .args(args)
        .args(["--poll-ms", "100"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Output {
    blocking(|| cmd.output().unwrap())
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the commands at once; returns how many succeeded. Each failure must
/// be the wallet refusing as busy.
fn all_at_once(cmds: Vec<Command>) -> usize {
    blocking(|| {
        let children: Vec<_> = cmds
            .into_iter()
            .map(|mut c| {
                c.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut ok = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            if out.status.success() {
                ok += 1;
            } else {
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains("in use by another command"),
                    "{}",
                    text(&out)
                );
            }
        }
        ok
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_at_once_on_one_wallet_neither_lose_nor_double_count() {
    // Six withdrawals and then three purchases started at once on one
    // wallet file: each finishes or is refused as busy, and the wallet
    // holds exactly what the bank debited, less what was bought.
    let w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG).await;
    let home = w.dir.path().join("home");
    let (file, account) = w.customer(&home, 100).await;

    let withdrawals = all_at_once(
        (0..6)
            .map(|_| wallet_cmd(&home, &file, &["withdraw", "10"]))
            .collect(),
    );
    assert!(withdrawals > 0);
    let withdrawn = withdrawals as u64 * PRICE;
    assert_eq!(w.balance(&account).await, 100 - withdrawn as i64);
    let wallet = Wallet::open_read_only(&file).unwrap();
    assert_eq!(wallet.balance().spendable, withdrawn);
    assert_eq!(wallet.balance().withdrawing, 0);

    let buys = all_at_once(
        (0..3)
            .map(|i| {
                let out = format!("goods-{i}.txt");
                wallet_cmd(
                    &home,
                    &file,
                    &[
                        "buy",
                        "--merchant",
                        &shop.url,
                        "--item",
                        ITEM,
                        "--out",
                        &out,
                        "--again",
                    ],
                )
            })
            .collect(),
    );
    assert!(buys > 0);
    let wallet = Wallet::open_read_only(&file).unwrap();
    let balance = wallet.balance();
    assert_eq!(balance.spendable, withdrawn - buys as u64 * PRICE);
    assert_eq!(balance.in_purchases, 0);
    let delivered: Vec<_> = wallet
        .purchases()
        .iter()
        .filter(|p| p.state == PurchaseState::Delivered)
        .collect();
    assert_eq!(delivered.len(), buys);
    for p in delivered {
        assert_eq!(std::fs::read(wallet.resolve(&p.out_path)).unwrap(), GOODS);
    }
    w.wait_balance(&shop.key, (buys as u64 * PRICE) as i64)
        .await;
    let s = w.settled().await;
    assert_eq!(s.live_tokens, withdrawn - buys as u64 * PRICE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_again_fresh_outputs_backups_and_an_exported_token() {
    // A second purchase of the same item asks for --again, an existing
    // --out is never written over, `history` lists both purchases with
    // TID, item, price, state and time, every save leaves the previous
    // wallet as NAME.bak, and an exported token verifies under OpenSSL's
    // RSASSA-PSS with the PEM it names (no acd code involved).
    let w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG).await;
    let home = w.dir.path().join("home");
    let (file, _) = w.customer(&home, 40).await;
    let ok = |args: &[&str]| {
        let out = run(wallet_cmd(&home, &file, args));
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["withdraw", "30"]);
    let buy = |out: &str, again: bool| {
        let mut args = vec!["buy", "--merchant", &shop.url, "--item", ITEM, "--out", out];
        if again {
            args.push("--again");
        }
        run(wallet_cmd(&home, &file, &args))
    };
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let first = buy("a.txt", false);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        stdout(&first).contains("expires at 20"),
        "expirations as times: {}",
        text(&first)
    );
    let before = std::fs::read(&file).unwrap();

    let again = buy("b.txt", false);
    assert!(!again.status.success(), "{}", text(&again));
    let e = stderr(&again);
    assert!(e.contains("--again") && e.contains("purchase 1"), "{e}");
    let over = buy("a.txt", true);
    assert!(!over.status.success(), "{}", text(&over));
    assert!(stderr(&over).contains("a.txt exists"), "{}", text(&over));
    assert_eq!(std::fs::read(home.join("a.txt")).unwrap(), GOODS);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "refusals change nothing"
    );
    assert!(!home.join("b.txt").exists());
    let second = buy("b.txt", true);
    assert!(second.status.success(), "{}", text(&second));

    let history = ok(&["history"]);
    let wallet = Wallet::open_read_only(&file).unwrap();
    assert_eq!(wallet.purchases().len(), 2);
    for p in wallet.purchases() {
        let line = history
            .lines()
            .find(|l| l.contains(&p.tid().unwrap().to_string()))
            .unwrap_or_else(|| panic!("no line for purchase {}: {history}", p.id));
        assert!(line.contains(ITEM) && line.contains("delivered"), "{line}");
        assert!(line.contains(&PRICE.to_string()), "{line}");
        let started = p.started_ms.unwrap();
        assert!(line.contains(&acd_wallet::report::time(started)), "{line}");
        assert!(p.ended_ms.unwrap() >= started);
    }
    let balance = ok(&["balance"]);
    assert!(balance.contains("spendable 10"), "{balance}");
    assert!(!balance.contains("unfinished"), "{balance}");

    // The backup is the wallet one save back: it opens, and holds what the
    // wallet held before its last change.
    let backup = acd_wallet::file::backup_path(&file);
    let previous = acd_wallet::WalletFile::load(&backup).unwrap();
    assert_ne!(previous, *wallet.file());
    assert_eq!(previous.purchases.len(), 2);

    // An exported token, checked with OpenSSL alone.
    let exported = home.join("token.json");
    ok(&["export-token", "--out", exported.to_str().unwrap()]);
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    let bytes = |k: &str| hex::decode(e[k].as_str().unwrap()).unwrap();
    let mut prepared = bytes("randomizer");
    prepared.extend(bytes("message"));
    assert_eq!(prepared, bytes("prepared_message"));
    let check = |pem: &str, msg: &[u8], sig: &[u8]| {
        use openssl::{
            hash::MessageDigest,
            pkey::PKey,
            rsa::Padding,
            sign::{RsaPssSaltlen, Verifier},
        };
        let key = PKey::public_key_from_pem(pem.as_bytes()).unwrap();
        let mut v = Verifier::new(MessageDigest::sha384(), &key).unwrap();
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(48)).unwrap();
        v.set_rsa_mgf1_md(MessageDigest::sha384()).unwrap();
        v.update(msg).unwrap();
        v.verify(sig).unwrap_or(false)
    };
    let signature = bytes("signature");
    for pem in ["public_key_pem", "public_key_rsa_pem"] {
        let pem = e[pem].as_str().unwrap();
        assert!(check(pem, &prepared, &signature), "{pem}");
        let mut other = prepared.clone();
        other[40] ^= 1;
        assert!(!check(pem, &other, &signature), "{pem}");
    }
    assert_eq!(e["value"], 10);
    w.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goods_that_cannot_be_written_cost_nothing_and_resume_writes_them() {
    // A `buy` whose --out cannot be written is refused before anything is
    // paid. A purchase whose goods cannot be written after paying waits in
    // `unwritten`, and `resume --out PATH` writes them there.
    let w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG).await;
    let home = w.dir.path().join("home");
    let (file, account) = w.customer(&home, 30).await;
    let out = run(wallet_cmd(&home, &file, &["withdraw", "20"]));
    assert!(out.status.success(), "{}", text(&out));

    // A regular file where the goods' directory should be.
    std::fs::write(home.join("blocker"), b"not a directory").unwrap();
    let out = run(wallet_cmd(
        &home,
        &file,
        &[
            "buy",
            "--merchant",
            &shop.url,
            "--item",
            ITEM,
            "--out",
            "blocker/charts.txt",
        ],
    ));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write the goods to"),
        "{}",
        text(&out)
    );
    let wallet = Wallet::open_read_only(&file).unwrap();
    assert_eq!(wallet.balance().spendable, 20);
    assert!(wallet.purchases().is_empty());
    assert_eq!(w.balance(&account).await, 10);
    drop(wallet);

    // The path is fine when checked and gone when the goods arrive.
    let mut wallet = Wallet::open(&file).unwrap();
    let later = home.join("later");
    let (id, _) = wallet
        .start_purchase(&shop.url, ITEM, &later.join("charts.txt"))
        .await
        .unwrap();
    assert!(later.is_dir());
    std::fs::remove_dir(&later).unwrap();
    std::fs::write(&later, b"in the way").unwrap();
    let e = wallet.drive(id, true).await.unwrap_err();
    assert!(matches!(e, WalletError::Output { .. }), "{e}");
    assert_eq!(wallet.purchase(id).unwrap().state, PurchaseState::Unwritten);
    drop(wallet);
    // Paid: the merchant deposits.
    w.wait_balance(&shop.key, PRICE as i64).await;

    let out = run(wallet_cmd(
        &home,
        &file,
        &["resume", "--out", "written/charts.txt"],
    ));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(home.join("written/charts.txt")).unwrap(),
        GOODS
    );
    let wallet = Wallet::open_read_only(&file).unwrap();
    assert_eq!(wallet.purchase(id).unwrap().state, PurchaseState::Delivered);
    assert_eq!(wallet.balance().spendable, 10);
    w.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_another_directory_finds_the_goods() {
    // A purchase left pending by a command run beside the wallet (its own
    // witness requirement is never met) is finished by `resume` run from
    // another directory: the ciphertext and the goods' path are found
    // relative to the wallet file.
    let w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG).await;
    let home = w.dir.path().join("home");
    let (_, _) = w.customer(&home, 20).await;
    let file = Path::new("wallet.json");
    let out = run(wallet_cmd(&home, file, &["withdraw", "10"]));
    assert!(out.status.success(), "{}", text(&out));

    let absent = CosignatureVerifier::new("absent.test/witness", key(5).verifying_key())
        .unwrap()
        .vkey();
    let out = run(wallet_cmd(
        &home,
        file,
        &[
            "--witness",
            &absent,
            "buy",
            "--merchant",
            &shop.url,
            "--item",
            ITEM,
            "--out",
            "charts.txt",
            "--no-wait",
        ],
    ));
    let wallet = Wallet::open_read_only(home.join(file)).unwrap();
    assert_eq!(
        wallet.purchases()[0].state,
        PurchaseState::AwaitingOutcome,
        "{}",
        text(&out)
    );
    drop(wallet);

    let elsewhere = w.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = run(wallet_cmd(&elsewhere, &home.join(file), &["resume"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(home.join("charts.txt")).unwrap(), GOODS);
    assert!(!elsewhere.join("charts.txt").exists());
    w.wait_balance(&shop.key, PRICE as i64).await;
    w.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_spent_since_a_backup_is_set_aside() {
    // A wallet restored from a backup holds a token it spent since: the
    // bank refuses it, the wallet sets it aside (out of the balance, never
    // picked again) and pays with the other token.
    let w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG).await;
    let home = w.dir.path().join("home");
    let (file, _) = w.customer(&home, 20).await;
    let mut wallet = Wallet::open(&file).unwrap();
    wallet.withdraw(20).await.unwrap();
    drop(wallet);
    let backup = home.join("backup.json");
    std::fs::copy(&file, &backup).unwrap();

    let mut wallet = Wallet::open(&file).unwrap();
    let report = wallet.buy(&shop.url, ITEM, &home.join("one.txt")).await;
    assert!(matches!(
        report.unwrap().outcome,
        PurchaseOutcome::Delivered { .. }
    ));
    drop(wallet);
    std::fs::copy(&backup, &file).unwrap();

    let mut wallet = Wallet::open(&file)
        .unwrap()
        .with_poll_interval(Duration::from_millis(100));
    assert_eq!(wallet.balance().spendable, 20);
    let report = wallet
        .buy(&shop.url, ITEM, &home.join("two.txt"))
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Delivered { .. }),
        "{report:?}"
    );
    assert_eq!(std::fs::read(home.join("two.txt")).unwrap(), GOODS);
    let balance = wallet.balance();
    assert_eq!(balance.spendable, 0);
    assert_eq!(balance.set_aside, PRICE);
    assert_eq!(wallet.file().set_aside.len(), 1);
    assert_eq!(wallet.file().set_aside[0].reason, "token_spent");
    // Nothing left to pay with: an error, not a loop over the spent token.
    let e = wallet
        .buy(&shop.url, ITEM, &home.join("three.txt"))
        .await
        .unwrap_err();
    assert!(matches!(e, WalletError::Coins(_)), "{e}");
    w.wait_balance(&shop.key, 2 * PRICE as i64).await;
    w.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_restarted_while_a_purchase_waits_costs_nothing() {
    // The merchant never commits, so the wallet polls the log for the
    // outcome until the expiration; the log is killed and started again
    // meanwhile. The failed polls are repeated and the purchase ends in
    // its refund.
    let mut w = World::start().await;
    let behaviour = Behaviour {
        never_commit: true,
        ..Behaviour::default()
    };
    let shop = w.add_merchant(behaviour, SHORT).await;
    let home = w.dir.path().join("home");
    let (file, _) = w.customer(&home, 10).await;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut wallet = Wallet::open(&file)
        .unwrap()
        .with_poll_interval(Duration::from_millis(100))
        .on_step(Box::new(move |s| {
            if matches!(s, Step::NoOutcomeYet { .. }) {
                let _ = tx.send(());
            }
        }));
    wallet.withdraw(PRICE).await.unwrap();
    let out = home.join("charts.txt");
    let buying = tokio::spawn(async move {
        let r = wallet.buy(&shop.url, ITEM, &out).await;
        (wallet, r)
    });
    blocking(|| rx.recv_timeout(WAIT)).unwrap();
    w.restart_log();
    let (wallet, report) = buying.await.unwrap();
    let report = report.unwrap();
    assert!(
        matches!(report.outcome, PurchaseOutcome::Refunded { .. }),
        "{report:?}"
    );
    assert_eq!(wallet.balance().spendable, PRICE);
    w.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_purchases_survive_a_bank_restart() {
    // `acd loadgen purchases` runs while the bank is killed and started
    // again: requests that failed on the way are repeated, the run reports
    // no errors and the bank's sums hold.
    let mut w = World::start().await;
    let shop = w.add_merchant(Behaviour::default(), LONG).await;
    let shop_url = shop.url.clone();
    let token_file = w.bank_data.join("admin.token");
    let mut child = Command::new(binary("acd"))
        .args(["loadgen", "purchases", "--bank", &w.bank_url])
        .arg("--admin-token-file")
        .arg(&token_file)
        .args([
            "--merchant",
            &shop_url,
            "--item",
            ITEM,
            "--count",
            "150",
            "--concurrency",
            "4",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Purchases are under way once the merchant has been paid for one.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = w.admin.sums().await.unwrap();
        if s.merchant_balances > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(Instant::now() < deadline, "no purchase happened: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(child.try_wait().unwrap().is_none(), "the run ended early");
    w.restart_bank();
    let out = blocking(|| child.wait_with_output()).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("bank sums conserved: true"), "{report}");
    w.settled().await;
}
