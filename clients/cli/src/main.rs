//! `acd`: the command line of anonymous certified delivery.

use std::time::Duration;

use acd::loadgen::{self, LoadSpec};
use anyhow::bail;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "acd",
    version,
    about = "Anonymous certified delivery: client tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a log in this process and walk through the protocol's log steps.
    Demo {
        /// Keep the log's files here instead of a temporary directory.
        #[arg(long)]
        data: Option<std::path::PathBuf>,
    },
    /// Generate load against a running server and report throughput.
    Loadgen {
        #[command(subcommand)]
        target: LoadTarget,
    },
    /// Run a merchant's shop, or print its key.
    Merchant {
        #[command(subcommand)]
        command: acd::merchant_cmd::MerchantCommand,
    },
    /// The customer's wallet: withdraw, buy, resume, prove delivery.
    Wallet(acd::wallet_cmd::WalletArgs),
    /// Check a proof bundle offline; exits 1 if it does not verify.
    Verify(acd::verify::VerifyArgs),
}

#[derive(Subcommand)]
enum LoadTarget {
    /// Append merchant-signed commits with fresh TIDs to a log.
    Log {
        /// The log's base URL, e.g. http://127.0.0.1:8700.
        #[arg(long)]
        url: String,
        /// How many commits to append.
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
    /// Complete anonymous purchases against a running bank, merchant and log.
    Purchases {
        /// The bank's base URL.
        #[arg(long)]
        bank: String,
        /// File holding the bank's admin token (creates and credits the
        /// load's customer account).
        #[arg(long)]
        admin_token_file: std::path::PathBuf,
        /// The merchant's base URL.
        #[arg(long)]
        merchant: String,
        /// Catalog item to buy; its price must be one denomination.
        #[arg(long)]
        item: String,
        /// How many purchases (and withdrawals).
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo { data } => acd::demo::run(data).await?,
        Command::Merchant { command } => acd::merchant_cmd::run(command).await?,
        Command::Wallet(args) => acd::wallet_cmd::run(args).await?,
        Command::Verify(args) => {
            if !acd::verify::run(&args)? {
                std::process::exit(1);
            }
        }
        Command::Loadgen {
            target:
                LoadTarget::Purchases {
                    bank,
                    admin_token_file,
                    merchant,
                    item,
                    count,
                    concurrency,
                },
        } => {
            let admin_token = std::fs::read_to_string(&admin_token_file)?;
            let spec = acd::loadgen_purchases::PurchaseSpec {
                bank,
                admin_token: admin_token.trim().to_owned(),
                merchant,
                item,
                count,
                concurrency,
            };
            eprintln!("{count} withdrawals, then {count} purchases, concurrency {concurrency}");
            let report = acd::loadgen_purchases::run(&spec).await?;
            println!("{report}");
            if report.purchases.errors > 0 || report.withdrawals.errors > 0 || !report.conserved {
                bail!("the run had errors or the bank's sums do not hold");
            }
        }
        Command::Loadgen {
            target:
                LoadTarget::Log {
                    url,
                    entries,
                    concurrency,
                },
        } => {
            let spec = LoadSpec {
                url,
                entries,
                concurrency,
                expiry: Duration::from_secs(3600),
            };
            eprintln!("signing {entries} commits, then appending with concurrency {concurrency}");
            let report = loadgen::run(&spec).await?;
            println!("{report}");
            if report.errors > 0 {
                bail!("{} appends failed", report.errors);
            }
        }
    }
    Ok(())
}
