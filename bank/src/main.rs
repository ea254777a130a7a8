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
    /// Print the bank's ed25519 public key (hex), creating keys if needed;
    /// with --denomination, that denomination's RSA public key as PEM.
    Key {
        /// The bank's data directory.
        #[arg(long)]
        data: PathBuf,
        /// Print the blind-signing key of the denomination of this value
        /// (which must exist) instead: RFC 9474's SubjectPublicKeyInfo
        /// (id-RSASSA-PSS, SHA-384, salt 48), as the bank publishes it.
        #[arg(long)]
        denomination: Option<u64>,
        /// With --denomination: the plain rsaEncryption
        /// SubjectPublicKeyInfo instead, for tools that do not read PSS
        /// parameters (they must then use PSS, SHA-384 and salt 48).
        #[arg(long, requires = "denomination")]
        rsa_encryption: bool,
    },
    /// Write a backup of a stopped bank's data directory (keys, admin
    /// token, ledger) to one archive.
    Backup(acd_serve::backup::BackupArgs),
    /// Restore a backup into a new data directory.
    Restore(acd_serve::backup::RestoreArgs),
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
        /// What the account is for: a customer withdraws, a merchant
        /// deposits.
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
        /// The account's ed25519 public key, 64 hex digits.
        #[arg(long)]
        key: String,
        /// How much to credit, in the bank's units.
        #[arg(long)]
        amount: u64,
        /// 32 hex digits; a fresh random one if absent.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Show an account.
    Account {
        /// The account's ed25519 public key, 64 hex digits.
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

/// The public key of the denomination `value` in `data`, as PEM.
fn denomination_pem(data: &std::path::Path, value: u64, rsa: bool) -> anyhow::Result<String> {
    let path = acd_bank::keys::rsa_key_path(data, value);
    let der = std::fs::read(&path).with_context(|| {
        format!(
            "no key of the denomination {value} at {} (the bank creates one per configured denomination on first start)",
            path.display()
        )
    })?;
    let secret = acd_core::token::BlindSecretKey::from_der(&der)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let public = secret
        .public_key()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let d = acd_core::token::Denomination::new(value, public)?;
    Ok(if rsa { d.rsa_pem()? } else { d.spki_pem() })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    acd_serve::ops::init_tracing_as(cli.logging.log_format);
    match cli.command {
        Command::Key {
            data,
            denomination: None,
            ..
        } => {
            let key = acd_bank::keys::load_or_create_bank_key(&data)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
        }
        Command::Key {
            data,
            denomination: Some(value),
            rsa_encryption,
        } => print!("{}", denomination_pem(&data, value, rsa_encryption)?),
        Command::Admin {
            url,
            token_file,
            command,
        } => admin(&url, &token_file, command).await?,
        Command::Backup(args) => {
            acd_serve::backup::backup_command(&args, "bank")?;
        }
        Command::Restore(args) => {
            acd_serve::backup::restore_command(&args, &["bank"])?;
        }
        Command::Serve { config, overrides } => {
            let c = BankConfig::load(config.as_deref(), overrides)?;
            // Nothing is written before the configuration is checked and
            // the port is bound.
            Bank::check_config(&c)?;
            // Installed before anything is announced: a SIGTERM right after
            // the `listening on` line stops the server cleanly.
            let shutdown = acd_serve::shutdown_signal();
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
            bank.run(listener, shutdown).await?;
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
