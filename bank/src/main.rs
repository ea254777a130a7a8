//! `acd-bank`: run the bank, print its key, or administer it over HTTP.
//! Serving is: load the configuration, open the bank, bind, run until
//! SIGTERM or Ctrl-C; the bank itself is the library.

use std::path::PathBuf;

use acd_bank::Bank;
use acd_bank::config::{BankConfig, Overrides};
use acd_client::bank::BankClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "acd-bank", version = acd_serve::ops::VERSION, about = "The acd bank")]
struct Cli {
    #[command(flatten)]
    logging: acd_serve::ops::LogFlags,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of `Serve` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the bank over HTTP; creates keys, admin token and database on
    /// first start.
    Serve {
        /// TOML configuration file (see bank/bank.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Print the bank's ed25519 public key (hex), creating keys if needed.
    Key {
        #[arg(long)]
        data: PathBuf,
    },
    /// Administer a running bank over HTTP.
    Admin {
        /// The bank's URL, e.g. http://127.0.0.1:8800.
        #[arg(long)]
        url: String,
        /// File holding the admin token (`<data>/admin.token`).
        #[arg(long)]
        token_file: PathBuf,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Customer,
    Merchant,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Open an account for an ed25519 key.
    CreateAccount {
        #[arg(long, value_enum)]
        kind: Kind,
        /// The account's ed25519 public key, 64 hex digits.
        #[arg(long)]
        key: String,
    },
    /// Credit an account (money entering the system). Prints the request
    /// id first: give it again with --request-id to retry a credit whose
    /// answer was lost, and the bank credits it once.
    Credit {
        #[arg(long)]
        key: String,
        #[arg(long)]
        amount: u64,
        /// 32 hex digits; a fresh random one if absent.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Show an account.
    Account {
        #[arg(long)]
        key: String,
    },
    /// Show the conservation sums.
    Sums,
}

fn parse_key(hexkey: &str) -> anyhow::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(hexkey.trim(), &mut k).context("the key must be 64 hex digits")?;
    Ok(k)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn admin(url: &str, token_file: &PathBuf, command: AdminCommand) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let client = BankClient::new(url).with_admin_token(token.trim());
    match command {
        AdminCommand::CreateAccount { kind, key } => {
            let kind = match kind {
                Kind::Customer => AccountKind::Customer,
                Kind::Merchant => AccountKind::Merchant,
            };
            print_json(
                &client
                    .create_account(&CreateAccount {
                        key: parse_key(&key)?,
                        kind,
                    })
                    .await?,
            )
        }
        AdminCommand::Credit {
            key,
            amount,
            request_id,
        } => {
            let mut credit = Credit::new(&mut rand::rng(), parse_key(&key)?, amount);
            if let Some(id) = request_id {
                hex::decode_to_slice(id.trim(), &mut credit.request_id)
                    .context("the request id must be 32 hex digits")?;
            }
            eprintln!("request id {}", hex::encode(credit.request_id));
            print_json(&client.credit(&credit).await?)
        }
        AdminCommand::Account { key } => print_json(&client.account(&parse_key(&key)?).await?),
        AdminCommand::Sums => print_json(&client.sums().await?),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    acd_serve::ops::init_tracing_as(cli.logging.log_format);
    match cli.command {
        Command::Key { data } => {
            let key = acd_bank::keys::load_or_create_bank_key(&data)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
        }
        Command::Admin {
            url,
            token_file,
            command,
        } => admin(&url, &token_file, command).await?,
        Command::Serve { config, overrides } => {
            let c = BankConfig::load(config.as_deref(), overrides)?;
            // Nothing is written before the configuration is checked and
            // the port is bound.
            Bank::check_config(&c)?;
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .with_context(|| format!("binding {}", c.listen))?;
            let config = c.clone();
            let bank = tokio::task::spawn_blocking(move || Bank::open(&config)).await??;
            let addr = listener.local_addr()?;
            // Scripts and tests read these two lines.
            println!("listening on http://{addr}");
            println!("vkey {}", hex::encode(bank.public_key()));
            tracing::info!(%addr, logs = c.logs.len(), "bank serving");
            bank.run(listener, acd_serve::shutdown_signal()).await?;
        }
    }
    Ok(())
}
