//! `acd`: the command line of anonymous certified delivery. A thin binary:
//! it parses the arguments and hands each command to the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "acd",
    version = acd_serve::ops::VERSION,
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
        target: acd::loadgen_cmd::LoadTarget,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo { data } => acd::demo::run(data).await?,
        Command::Loadgen { target } => acd::loadgen_cmd::run(target).await?,
        Command::Merchant { command } => acd::merchant_cmd::run(command).await?,
        Command::Wallet(args) => acd::wallet_cmd::run(args).await?,
        Command::Verify(args) => {
            if !acd::verify::run(&args)? {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help() {
        use clap::CommandFactory as _;
        let missing = acd_serve::ops::undocumented(&super::Cli::command());
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
