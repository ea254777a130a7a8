//! `acd loadgen`: the command's arguments and what it runs, over the load
//! generators of [`crate::loadgen`] (log appends) and
//! [`crate::loadgen_purchases`] (whole purchases).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;

use crate::loadgen::{self, LoadSpec};
use crate::loadgen_purchases::{self, PurchaseSpec};

/// How `acd loadgen log` encodes its commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Body {
    Json,
    Binary,
}

#[derive(Debug, Subcommand)]
pub enum LoadTarget {
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
        /// Request bodies: `json`, or `binary` (the 152-byte commit).
        #[arg(long, value_enum, default_value_t = Body::Json)]
        body: Body,
        /// Commits per request: more than 1 sends batches to
        /// `POST /api/v1/commits` (binary, at most 1000).
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
    /// Complete anonymous purchases against a running bank, merchant and log.
    Purchases {
        /// The bank's base URL.
        #[arg(long)]
        bank: String,
        /// File holding the bank's admin token (creates and credits the
        /// load's customer account).
        #[arg(long)]
        admin_token_file: PathBuf,
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

/// Runs the load and prints its report; fails if any request failed (or,
/// for purchases, the bank's sums do not hold).
pub async fn run(target: LoadTarget) -> anyhow::Result<()> {
    match target {
        LoadTarget::Purchases {
            bank,
            admin_token_file,
            merchant,
            item,
            count,
            concurrency,
        } => {
            let admin_token = std::fs::read_to_string(&admin_token_file)?;
            let spec = PurchaseSpec {
                bank,
                admin_token: admin_token.trim().to_owned(),
                merchant,
                item,
                count,
                concurrency,
            };
            eprintln!("{count} withdrawals, then {count} purchases, concurrency {concurrency}");
            let report = loadgen_purchases::run(&spec).await?;
            outln!("{report}");
            if report.purchases.errors > 0 || report.withdrawals.errors > 0 || !report.conserved {
                bail!("the run had errors or the bank's sums do not hold");
            }
        }
        LoadTarget::Log {
            url,
            entries,
            concurrency,
            body,
            batch,
        } => {
            if !(1..=acd_core::log_api::MAX_BATCH_COMMITS).contains(&batch) {
                bail!(
                    "--batch must be from 1 to {}",
                    acd_core::log_api::MAX_BATCH_COMMITS
                );
            }
            let spec = LoadSpec {
                url,
                entries,
                concurrency,
                expiry: Duration::from_secs(3600),
                binary: body == Body::Binary || batch > 1,
                batch,
            };
            eprintln!(
                "signing {entries} commits, then appending with concurrency {concurrency}, {batch} per request"
            );
            let report = loadgen::run(&spec).await?;
            outln!("{report}");
            if report.errors > 0 {
                bail!("{} appends failed", report.errors);
            }
        }
    }
    Ok(())
}
