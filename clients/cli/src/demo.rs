//! `acd demo`: the whole protocol in one process, on embedded storage.
//!
//! Starts a transaction log, a bank and four merchants (one honest, one that
//! withholds the key, one that never commits, one that commits a bogus key)
//! on loopback, each with its own sled database in a temporary folder (or
//! `--data DIR`), and a customer wallet. Then it runs a purchase and each
//! failure path of the paper, printing for every step what was sent and what
//! the receiver verified, and finally the balances and the bank's
//! conservation sums.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::fresh_key;
use acd_bank::Bank;
use acd_bank::config::{BankConfig, TrustedLog};
use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{
    AccountKind, CreateAccount, Credit, LogInfo, OfferRequest, RegisterRequest, SpendRequest,
    WithdrawRequest,
};
use acd_core::purchase::{RefundReason, Spend, Withdrawal};
use acd_core::token::{BlindedToken, Denomination};
use acd_log_server::Log;
use acd_log_server::clock::SystemClock;
use acd_log_server::config::LogConfig;
use acd_merchant::{Behaviour, CatalogEntry, Merchant, MerchantConfig};
use acd_wallet::{PurchaseOutcome, Wallet};
use anyhow::{Context, anyhow, bail};
use tokio::sync::oneshot;

const ORIGIN: &str = "demo.acd.example/log";
/// Price of the demo's item; 3 × 10 + 5 × 1 in the bank's denominations.
const PRICE: u64 = 35;

fn section(n: u32, title: &str) {
    outln!("\n== {n}. {title}");
}

fn short(key: &[u8]) -> String {
    // Enough of a key to tell parties apart in the output.
    hex::encode(&key[..key.len().min(6)])
}

/// A server task and the switch that stops it.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn listener() -> anyhow::Result<(tokio::net::TcpListener, String)> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", l.local_addr()?);
    Ok((l, url))
}

struct Shop {
    name: &'static str,
    url: String,
    key: [u8; 32],
    server: Running,
}

async fn start_merchant(
    dir: &Path,
    name: &'static str,
    bank_url: &str,
    log: &LogInfo,
    goods: &Path,
    behaviour: Behaviour,
    offer_lifetime: Duration,
) -> anyhow::Result<Shop> {
    let mut config = MerchantConfig::new(
        dir.join(name),
        bank_url.to_owned(),
        log.clone(),
        vec![CatalogEntry {
            id: "essay".into(),
            description: "An essay on atomic anonymous payments (PDF)".into(),
            price: PRICE,
            file: goods.to_owned(),
        }],
    );
    config.behaviour = behaviour;
    config.offer_lifetime = offer_lifetime;
    config.retry_interval = Duration::from_millis(300);
    let merchant = Merchant::open(config).await?;
    let key = merchant.public_key();
    let (l, url) = listener().await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(merchant.run(l, async {
        let _ = stopped.await;
    }));
    Ok(Shop {
        name,
        url,
        key,
        server: Running { stop, task },
    })
}

fn print_report(report: &acd_wallet::PurchaseReport) {
    for s in &report.steps {
        outln!("   customer: {s}");
    }
    outln!("   outcome: {}", report.outcome);
}

/// Fails the demo unless the purchase was refunded for `reason`, in full.
fn expect_refund(report: &acd_wallet::PurchaseReport, reason: RefundReason) -> anyhow::Result<()> {
    match &report.outcome {
        PurchaseOutcome::Refunded { reason: r, amount } if *r == reason && *amount == PRICE => {
            Ok(())
        }
        other => bail!("expected a refund of {PRICE} ({reason:?}), got: {other}"),
    }
}

/// The balance of `key` once it is `want`: merchants deposit in the
/// background, so give them a few seconds.
async fn settled_balance(admin: &BankClient, key: &[u8; 32], want: i64) -> anyhow::Result<i64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let balance = admin.account(key).await?.balance;
        if balance == want || tokio::time::Instant::now() >= deadline {
            return Ok(balance);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the demo; `data` keeps every party's files, otherwise a temporary
/// directory is used and removed.
pub async fn run(data: Option<PathBuf>) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = data.unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;

    section(
        1,
        "Start a log, a bank and four merchants (sled storage, HTTP on loopback)",
    );
    let bank_dir = dir.join("bank");
    let bank_key = acd_bank::keys::load_or_create_bank_key(&bank_dir)?;
    let bank_pub = bank_key.verifying_key().to_bytes();

    let mut log_config = LogConfig::new(dir.join("log"), ORIGIN.into());
    log_config.trusted_banks = vec![hex::encode(bank_pub)];
    let log = Log::open(&log_config, Arc::new(SystemClock))?;
    let (l, log_url) = listener().await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let log_server = Running {
        stop,
        task: tokio::spawn(log.run(l, log_config.max_body_bytes, async {
            let _ = stopped.await;
        })),
    };
    let log_vkey = LogClient::fetch_vkey(&log_url).await?;
    let log_client = LogClient::new(&log_url, log_vkey.clone());
    outln!("   log {ORIGIN} at {log_url}");
    outln!("   log key {}", log_vkey.vkey());

    let mut bank_config = BankConfig::new(bank_dir.clone());
    bank_config.logs = vec![TrustedLog {
        vkey: log_vkey.vkey(),
        url: log_url.clone(),
    }];
    bank_config.denominations = vec![1, 10, 100];
    bank_config.min_expiration_ms = 1_000;
    bank_config.sweep_interval_ms = 250;
    outln!("   bank: creating its keys (one RSA-2048 blind-signing key per denomination)…");
    let bank = tokio::task::spawn_blocking(move || Bank::open(&bank_config)).await??;
    let admin_token = bank.admin_token().to_owned();
    let (l, bank_url) = listener().await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let bank_server = Running {
        stop,
        task: tokio::spawn(bank.run(l, async {
            let _ = stopped.await;
        })),
    };
    let admin = BankClient::new(&bank_url).with_admin_token(&admin_token);
    let info = admin.info().await?;
    outln!(
        "   bank at {bank_url}, key {}…, denominations {:?}; trusts the log for aborts",
        short(&bank_pub),
        info.denominations
            .iter()
            .map(|d| d.value)
            .collect::<Vec<_>>()
    );

    let goods = dir.join("essay.pdf");
    let mut essay = b"%PDF-1.4 An essay on atomic anonymous payments.\n".to_vec();
    essay.extend((0..4096u32).map(|i| (i % 251) as u8));
    std::fs::write(&goods, &essay)?;
    let log_info = LogInfo {
        vkey: log_vkey.vkey(),
        url: log_url.clone(),
    };
    let lifetime = Duration::from_secs(60);
    let short_lifetime = Duration::from_secs(3);
    let mut shops = Vec::new();
    for (name, behaviour, life) in [
        ("honest", Behaviour::default(), lifetime),
        (
            "withholding",
            Behaviour {
                withhold_key: true,
                ..Behaviour::default()
            },
            lifetime,
        ),
        (
            "silent",
            Behaviour {
                never_commit: true,
                ..Behaviour::default()
            },
            short_lifetime,
        ),
        (
            "bogus",
            Behaviour {
                bogus_key: true,
                ..Behaviour::default()
            },
            lifetime,
        ),
    ] {
        let shop =
            start_merchant(&dir, name, &bank_url, &log_info, &goods, behaviour, life).await?;
        admin
            .create_account(&CreateAccount {
                key: shop.key,
                kind: AccountKind::Merchant,
            })
            .await?;
        outln!(
            "   merchant {:<11} at {}, key {}…, account registered at the bank",
            shop.name,
            shop.url,
            short(&shop.key)
        );
        shops.push(shop);
    }

    section(
        2,
        "The customer opens an account and withdraws anonymous tokens (paper figure 1)",
    );
    let wallet_path = dir.join("wallet.json");
    let mut wallet = Wallet::create(&wallet_path, &bank_url)
        .await?
        .with_poll_interval(Duration::from_millis(250));
    let account = wallet.account_key();
    admin
        .create_account(&CreateAccount {
            key: account,
            kind: AccountKind::Customer,
        })
        .await?;
    admin
        .credit(&Credit::new(&mut rand::rng(), account, 500))
        .await?;
    outln!(
        "   bank: account {}… credited 500 (money entering the system)",
        short(&account)
    );
    let w = wallet.withdraw(4 * PRICE + 10).await?;
    outln!(
        "   customer: sent {} blinded token message(s) signed by the account key; {w}",
        w.tokens.len()
    );
    outln!(
        "   verified: every unblinded token verifies under its denomination's RSA key (RFC 9474)"
    );
    outln!("   customer wallet: {}", wallet.balance());

    section(
        3,
        "A purchase: offer P1, escrow P2/P3, key commit P4/P5, key P6",
    );
    let out = dir.join("bought-honest.pdf");
    let report = wallet.buy(&shops[0].url, "essay", &out).await?;
    print_report(&report);
    if std::fs::read(&out)? != essay {
        bail!("the delivered goods differ from the merchant's file");
    }
    outln!(
        "   verified: the goods written to {} are the merchant's file",
        out.display()
    );
    let tid = report.tid.ok_or_else(|| anyhow!("no TID"))?;
    let bundle = wallet.proof(&tid)?;
    let checked = bundle.verify(&log_vkey, &acd_core::proof::WitnessPolicy::none())?;
    outln!(
        "   certified delivery: the proof bundle (offer + C2SP tlog-proof) verifies offline: entry #{} in a tree of {}",
        checked.index,
        checked.checkpoint.checkpoint.size
    );

    section(
        4,
        "The merchant withholds the key: the customer reads it from the log (Q1/Q2)",
    );
    let out = dir.join("bought-withholding.pdf");
    let report = wallet.buy(&shops[1].url, "essay", &out).await?;
    print_report(&report);
    if std::fs::read(&out)? != essay {
        bail!("the goods from the log's key differ from the merchant's file");
    }

    section(
        5,
        "The merchant never commits: the escrow expires, the log aborts, the bank refunds",
    );
    outln!(
        "   (this merchant's offers expire after 3 s; the bank's sweeper asks the log to abort)"
    );
    let out = dir.join("bought-silent.pdf");
    let report = wallet.buy(&shops[2].url, "essay", &out).await?;
    print_report(&report);
    expect_refund(&report, RefundReason::Abort)?;

    section(
        6,
        "The merchant commits a bogus key: the customer disputes and is refunded",
    );
    let out = dir.join("bought-bogus.pdf");
    let report = wallet.buy(&shops[3].url, "essay", &out).await?;
    print_report(&report);
    expect_refund(&report, RefundReason::Dispute)?;

    section(
        7,
        "Double spending: one token offered in two purchases at once",
    );
    double_spend(&admin, &shops[0].url).await?;

    section(8, "Final balances");
    outln!("   customer wallet: {}", wallet.balance());
    let customer = admin.account(&account).await?;
    outln!("   customer account at the bank: {}", customer.balance);
    if customer.balance != 500 - (4 * PRICE + 10) as i64 {
        bail!("the customer's account should hold what was not withdrawn");
    }
    // Paid: the two merchants whose key opened the goods. Not paid: the one
    // that never committed, and the one whose key was disputed.
    let price = PRICE as i64;
    let mut unexpected = Vec::new();
    for (shop, want) in shops.iter().zip([price, price, 0, 0]) {
        let balance = settled_balance(&admin, &shop.key, want).await?;
        outln!("   merchant {:<11} balance: {balance}", shop.name);
        if balance != want {
            unexpected.push(format!("{} holds {balance}, not {want}", shop.name));
        }
    }
    let sums = admin.sums().await?;
    outln!(
        "   bank sums: credited {} = customers {} + merchants {} + live tokens {} + escrowed {}: {}",
        sums.credited,
        sums.customer_balances,
        sums.merchant_balances,
        sums.live_tokens,
        sums.escrowed,
        if sums.conserved {
            "conserved"
        } else {
            "NOT CONSERVED"
        }
    );
    let checkpoint = log_client.checkpoint().await?;
    outln!(
        "   log: {} entries under checkpoint root {}… (the log saw TIDs, merchants and keys; never a price, an item or a customer)",
        checkpoint.checkpoint.size,
        short(&checkpoint.checkpoint.root)
    );

    for shop in shops {
        shop.server.stop().await;
    }
    bank_server.stop().await;
    log_server.stop().await;
    if !sums.conserved {
        bail!("the bank's sums do not hold");
    }
    if !unexpected.is_empty() {
        bail!("merchant balances: {}", unexpected.join("; "));
    }
    outln!(
        "\nEverything above was verified; the files are in {}",
        dir.display()
    );
    Ok(())
}

/// Withdraws one token by hand, registers it to Q, takes two offers for Q
/// and sends both spends at once: the bank escrows exactly one.
async fn double_spend(admin: &BankClient, merchant_url: &str) -> anyhow::Result<()> {
    let info = admin.info().await?;
    let account = fresh_key();
    let key = account.verifying_key().to_bytes();
    admin
        .create_account(&CreateAccount {
            key,
            kind: AccountKind::Customer,
        })
        .await?;
    admin
        .credit(&Credit::new(&mut rand::rng(), key, 100))
        .await?;
    let denomination = change_denomination(&info, 100)?;
    let blinded = BlindedToken::new(&mut rand::rng(), &denomination)?;
    let mut request_id = [0u8; 16];
    rand::fill(&mut request_id);
    let withdrawal = Withdrawal {
        bank: info.bank,
        account: key,
        request_id,
        blinded: vec![blinded.request()],
    };
    let signature = withdrawal.sign(&account);
    let sigs = admin
        .withdraw(&WithdrawRequest {
            withdrawal,
            signature,
        })
        .await?;
    let token = blinded.finish(
        &denomination,
        sigs.blind_signatures.first().context("a blind signature")?,
    )?;
    let q = fresh_key();
    let customer = q.verifying_key().to_bytes();
    admin
        .register(&RegisterRequest {
            token: token.clone(),
            customer,
        })
        .await?;
    outln!("   customer: withdrew one token of 100 and registered it to Q");
    let merchant = MerchantClient::new(merchant_url);
    let mut spends = Vec::new();
    for _ in 0..2 {
        let offer = merchant
            .offer(&OfferRequest {
                item: "essay".into(),
                customer,
            })
            .await?;
        let o = offer.offer.offer;
        // 100 paid for 35: the change of 65 comes back as 6 × 10 + 5 × 1.
        let tens = change_denomination(&info, 10)?;
        let ones = change_denomination(&info, 1)?;
        let mut change_msgs = Vec::new();
        for _ in 0..6 {
            change_msgs.push(BlindedToken::new(&mut rand::rng(), &tens)?.request());
        }
        for _ in 0..5 {
            change_msgs.push(BlindedToken::new(&mut rand::rng(), &ones)?.request());
        }
        let spend = Spend {
            terms: o.terms(),
            customer,
            token_ids: vec![token.id()],
            change: change_msgs,
        };
        let signature = spend.sign(&q);
        spends.push(SpendRequest {
            spend,
            tokens: vec![token.clone()],
            signature,
        });
    }
    let (a, b) = tokio::join!(admin.spend(&spends[0]), admin.spend(&spends[1]));
    let mut escrowed = 0;
    for (i, r) in [a, b].into_iter().enumerate() {
        match r {
            Ok(s) => {
                escrowed += 1;
                outln!(
                    "   spend {}: escrowed for TID {} (price {}, change {} tokens)",
                    i + 1,
                    s.terms.tid,
                    s.terms.price,
                    s.change.len()
                );
            }
            Err(e) => outln!("   spend {}: refused as it must be: {e}", i + 1),
        }
    }
    if escrowed != 1 {
        bail!("expected exactly one escrow, got {escrowed}");
    }
    outln!("   verified: the bank's single writer decided the race; the token is escrowed once");
    outln!(
        "   (nobody completes that purchase: its 35 stay escrowed until the expiration, then the sweeper aborts it)"
    );
    Ok(())
}

fn change_denomination(
    info: &acd_core::bank_api::BankInfo,
    value: u64,
) -> anyhow::Result<Denomination> {
    let d = info
        .denominations
        .iter()
        .find(|d| d.value == value)
        .ok_or_else(|| anyhow!("no denomination of {value}"))?;
    Ok(Denomination::from_spki(d.value, &d.spki)?)
}
