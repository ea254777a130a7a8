//! The merchant on PostgreSQL beside the bank on PostgreSQL, as real
//! processes: two `acd-bank serve` front-ends on one database and two
//! `acd merchant serve` front-ends (one data directory, `--database`) on
//! another. Customers withdraw and spend at bank front-end 0 while the
//! merchants deposit at front-end 1, buying from both merchant front-ends
//! at once; one merchant front-end is SIGKILLed in the middle and started
//! again in its place. Every purchase ends delivered or refunded, every
//! delivered one is paid once, and the sums conserve at both bank
//! front-ends.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use acd_client::bank::BankClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit, Sums};
use acd_tests::{Postgres, ServerProcess, admin_token, bank_key, binary, seed_bank_keys};
use acd_wallet::{PurchaseOutcome, Wallet};

const ORIGIN: &str = "merchant-postgres.test/log";
const PRICE: u64 = 10;
const CUSTOMERS: usize = 4;
const PURCHASES: usize = 6;

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `acd merchant serve` on `data` and `database`, depositing at `bank`.
fn merchant(data: &Path, database: &str, listen: &str, bank: &str, log: &str) -> ServerProcess {
    let catalog = data.parent().unwrap().join("catalog.toml");
    let mut cmd = Command::new(binary("acd"));
    cmd.args(["merchant", "serve", "--listen", listen, "--bank", bank])
        .args(["--log", log, "--database", database])
        // Purchases cut off by the kill end by the log's abort soon.
        .args(["--offer-lifetime-ms", "4000"])
        .arg("--catalog")
        .arg(&catalog)
        .arg("--data")
        .arg(data);
    ServerProcess::start_command(cmd, data)
}

async fn sums(bank: &BankClient) -> Sums {
    let s = bank.sums().await.unwrap();
    assert!(s.conserved, "{s:?}");
    s
}

// Purchases from two merchant front-ends on one database through two bank
// front-ends, one merchant front-end SIGKILLed and restarted under them:
// nothing paid twice, nothing lost, the sums conserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_merchant_front_ends_sell_while_one_is_killed() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bank_data = dir.path().join("bank");
    seed_bank_keys(&bank_data);
    let key = bank_key(&bank_data);
    let (bank_db, shop_db) = (pg.fresh_database(), pg.fresh_database());
    let log = blocking(|| ServerProcess::start(&dir.path().join("log"), ORIGIN, &[key]));
    let log_spec = format!("{}@{}", log.vkey, log.url);
    let extra = ["--database".to_owned(), bank_db.clone()];
    let banks: Vec<ServerProcess> = blocking(|| {
        (0..2)
            .map(|_| {
                ServerProcess::start_bank_with(
                    &bank_data,
                    "127.0.0.1:0",
                    std::slice::from_ref(&log_spec),
                    &extra,
                )
            })
            .collect()
    });
    let token = admin_token(&bank_data);
    let admin: Vec<BankClient> = banks
        .iter()
        .map(|b| BankClient::new(&b.url).with_admin_token(&token))
        .collect();

    std::fs::write(dir.path().join("goods.txt"), "the goods").unwrap();
    std::fs::write(
        dir.path().join("catalog.toml"),
        format!(
            "[[items]]\nid = \"a\"\ndescription = \"A\"\nprice = {PRICE}\nfile = \"goods.txt\"\n"
        ),
    )
    .unwrap();
    let shop_data = dir.path().join("shop");
    let deposit_at = banks[1].url.clone();
    let mut shops: Vec<Option<ServerProcess>> = blocking(|| {
        (0..2)
            .map(|_| {
                Some(merchant(
                    &shop_data,
                    &shop_db,
                    "127.0.0.1:0",
                    &deposit_at,
                    &log_spec,
                ))
            })
            .collect()
    });
    let shop_urls: Vec<String> = shops.iter().flatten().map(|s| s.url.clone()).collect();
    let shop_key: [u8; 32] = hex::decode(&shops[0].as_ref().unwrap().vkey)
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        shops[0].as_ref().unwrap().vkey,
        shops[1].as_ref().unwrap().vkey
    );
    assert!(!shop_data.join("db").exists(), "no sled database");
    admin[1]
        .create_account(&CreateAccount {
            key: shop_key,
            kind: AccountKind::Merchant,
        })
        .await
        .unwrap();

    let mut buyers = tokio::task::JoinSet::new();
    for c in 0..CUSTOMERS {
        let path = dir.path().join(format!("c{c}.wallet.json"));
        let mut wallet = Wallet::create(&path, &banks[0].url).await.unwrap();
        admin[0]
            .create_account(&CreateAccount {
                key: wallet.account_key(),
                kind: AccountKind::Customer,
            })
            .await
            .unwrap();
        admin[0]
            .credit(&Credit::new(
                &mut rand::rng(),
                wallet.account_key(),
                PRICE * PURCHASES as u64,
            ))
            .await
            .unwrap();
        wallet.withdraw(PRICE * PURCHASES as u64).await.unwrap();
        let mut wallet = wallet.with_poll_interval(Duration::from_millis(100));
        let (urls, out): (Vec<String>, PathBuf) = (shop_urls.clone(), dir.path().join("out"));
        buyers.spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..PURCHASES {
                let file = out.join(format!("c{c}-{i}.txt"));
                std::fs::create_dir_all(&out).unwrap();
                // Each purchase at the other front-end than the last.
                let url = &urls[(c + i) % 2];
                outcomes.push(wallet.buy(url, "a", &file).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (wallet, outcomes)
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let addr = shops[1].as_ref().unwrap().addr();
    shops[1].take().unwrap().kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    shops[1] = Some(blocking(|| {
        merchant(&shop_data, &shop_db, &addr, &deposit_at, &log_spec)
    }));

    let (mut delivered, mut refunded, mut failed) = (0u64, 0u64, Vec::new());
    while let Some(done) = buyers.join_next().await {
        let (_wallet, outcomes) = done.unwrap();
        for o in outcomes {
            match o {
                Ok(r) => match r.outcome {
                    PurchaseOutcome::Delivered { .. } => delivered += 1,
                    PurchaseOutcome::Refunded { .. } => refunded += 1,
                    other => failed.push(format!("{other:?}")),
                },
                Err(e) => failed.push(e.to_string()),
            }
        }
    }
    println!("{delivered} delivered, {refunded} refunded, failed: {failed:?}");
    // A purchase refused on the way (the merchant was gone) leaves the
    // tokens in the wallet; none is lost.
    assert!(delivered > 0, "nothing was delivered");

    // Every delivered purchase is paid, each TID once: once the deposits
    // and sweeps are done, the merchant's balance is the price of each
    // deposited record, at least each delivery's.
    let deposited = || {
        pg.psql(
            &shop_db,
            "SELECT count(*) FROM purchases \
             WHERE convert_from(record, 'UTF8')::jsonb->'deposit' <> 'null'::jsonb",
        )
        .parse::<u64>()
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (sums(&admin[0]).await, sums(&admin[1]).await);
        assert_eq!(a, b, "the front-ends disagree");
        let pending = pg.psql(&shop_db, "SELECT count(*) FROM purchases WHERE pending");
        let balance = admin[0].account(&shop_key).await.unwrap().balance;
        if a.escrowed == 0 && pending == "0" {
            let paid = blocking(deposited);
            assert_eq!(balance, i64::try_from(paid * PRICE).unwrap(), "{a:?}");
            assert!(paid >= delivered, "{paid} paid, {delivered} delivered");
            assert_eq!(a.merchant_balances, balance, "{a:?}");
            assert_eq!(a.credited, PRICE * (CUSTOMERS * PURCHASES) as u64, "{a:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: balance {balance}, {pending} pending, {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(log);
}
