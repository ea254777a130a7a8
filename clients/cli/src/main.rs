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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo { data } => acd::demo::run(data).await?,
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
