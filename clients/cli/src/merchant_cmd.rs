//! `acd merchant`: run a merchant's shop (`serve`), or print the merchant's
//! public key (`key`) so that the bank's operator can open its account.
//! `serve` reads a TOML file ([`MerchantConfigFile`],
//! `clients/merchant/merchant.example.toml`) and/or flags; a flag given
//! beside `--config` overrides the file's field.

use std::net::SocketAddr;
use std::path::PathBuf;

use acd_core::bank_api::LogInfo;
use acd_merchant::config::{parse_key, parse_log};
use acd_merchant::{CatalogFile, Merchant, MerchantConfigFile};
use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Serve the shop over HTTP; creates the key and database on first start.
    Serve(Box<ServeArgs>),
    /// Print the merchant's public key (64 hex digits), creating it if needed.
    Key {
        /// The merchant's data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Write a backup of a stopped merchant's data directory (key, offer
    /// secret, purchases, goods cache) to one archive.
    Backup(acd_serve::backup::BackupArgs),
    /// Restore a backup into a new data directory.
    Restore(acd_serve::backup::RestoreArgs),
}

/// Without `--config`, `--data`, `--listen`, `--bank`, `--log` and
/// `--catalog` are required.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The merchant's TOML configuration file (see merchant.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (merchant.key and the database).
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// Keep the purchases in this PostgreSQL database (postgres://...)
    /// instead of DATA/db; then DATA holds only the keys, and several
    /// merchants with the same DATA and database serve as one shop.
    #[arg(long)]
    database: Option<acd_serve::database_owner::DatabaseUrl>,
    /// Listen address, e.g. 127.0.0.1:8800 (port 0: any free port).
    #[arg(long, required_unless_present = "config")]
    listen: Option<SocketAddr>,
    /// The bank's base URL.
    #[arg(long, required_unless_present = "config")]
    bank: Option<String>,
    /// The log that records this shop's purchases, as `<vkey>@<url>`.
    #[arg(long, value_parser = parse_log, required_unless_present = "config")]
    log: Option<LogInfo>,
    /// Catalog TOML file: `[[items]]` with id, description, price, file.
    #[arg(long, required_unless_present = "config")]
    catalog: Option<PathBuf>,
    /// How long an offer stays open, in milliseconds (default 60000).
    #[arg(long)]
    offer_lifetime_ms: Option<u64>,
    /// The bank's ed25519 key (64 hex digits), if known: start without
    /// asking the bank (nor checking that it trusts the log).
    #[arg(long, value_parser = parse_key)]
    bank_key: Option<[u8; 32]>,
    #[command(flatten)]
    http: acd_serve::HttpFlags,
    #[command(flatten)]
    logging: acd_serve::ops::LogFlags,
}

impl ServeArgs {
    /// The configuration file, or one made of the flags alone, with the
    /// flags given applied over it.
    fn file(self) -> anyhow::Result<MerchantConfigFile> {
        let missing = |flag: &str| anyhow::anyhow!("{flag} is required without --config");
        let mut file = match &self.config {
            Some(path) => MerchantConfigFile::load(path)?,
            None => MerchantConfigFile {
                listen: self.listen.ok_or_else(|| missing("--listen"))?,
                data: self.data.clone().ok_or_else(|| missing("--data"))?,
                database: None,
                bank_url: self.bank.clone().ok_or_else(|| missing("--bank"))?,
                log: self.log.clone().ok_or_else(|| missing("--log"))?,
                bank_key: None,
                catalog: None,
                items: vec![],
                offer_lifetime_ms: acd_merchant::config::DEFAULT_OFFER_LIFETIME_MS,
                retry_interval_ms: acd_merchant::config::DEFAULT_RETRY_INTERVAL_MS,
                max_body_bytes: acd_merchant::config::DEFAULT_MAX_BODY_BYTES,
                http: acd_serve::HttpLimits::default(),
            },
        };
        if let Some(v) = self.listen {
            file.listen = v;
        }
        if let Some(v) = self.data {
            file.data = v;
        }
        if let Some(v) = self.database {
            file.database = Some(v);
        }
        if let Some(v) = self.bank {
            file.bank_url = v;
        }
        if let Some(v) = self.log {
            file.log = v;
        }
        if let Some(path) = self.catalog {
            // The flag's catalog replaces the file's, inline items included.
            file.items = CatalogFile::load(&path)?;
            file.catalog = None;
        }
        if let Some(v) = self.offer_lifetime_ms {
            file.offer_lifetime_ms = v;
        }
        if self.bank_key.is_some() {
            file.bank_key = self.bank_key;
        }
        self.http.apply(&mut file.http);
        Ok(file)
    }
}

/// Runs an `acd merchant` command.
pub async fn run(command: MerchantCommand) -> anyhow::Result<()> {
    match command {
        MerchantCommand::Key { data } => {
            let key = acd_merchant::keys::load_or_create(&data)?;
            outln!("{}", hex::encode(key.verifying_key().to_bytes()));
        }
        MerchantCommand::Backup(args) => {
            acd_serve::backup::backup_command(&args, "merchant")?;
        }
        MerchantCommand::Restore(args) => {
            acd_serve::backup::restore_command(&args, &["merchant"])?;
        }
        MerchantCommand::Serve(args) => {
            acd_serve::ops::init_tracing_as(args.logging.log_format);
            let file = (*args).file()?;
            let listen = file.listen;
            let config = file.into_config()?;
            // Nothing is written before the port is bound; the rest of the
            // configuration is checked before the data directory is looked at.
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let merchant = Merchant::open(config).await?;
            // Installed before anything is announced: a SIGTERM right after
            // the `listening on` line stops the server cleanly.
            let shutdown = acd_serve::shutdown_signal();
            let addr = listener.local_addr()?;
            // Scripts and tests read these two lines.
            outln!("listening on http://{addr}");
            outln!("vkey {}", hex::encode(merchant.public_key()));
            merchant.run(listener, shutdown).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    // The --log flag takes a signed-note vkey and a URL joined by '@'.
    #[test]
    fn log_flag_parses() {
        let signer = acd_core::note::NoteSigner::new(
            "log.test/a",
            ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        )
        .expect("signer");
        let vkey = signer.verifier().vkey();
        let l = parse_log(&format!("{vkey}@http://127.0.0.1:8700")).expect("parses");
        assert_eq!(
            (l.vkey.as_str(), l.url.as_str()),
            (vkey.as_str(), "http://127.0.0.1:8700")
        );
        assert!(parse_log("http://127.0.0.1:8700").is_err());
        assert!(parse_log("nonsense@http://x").is_err());
    }

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: MerchantCommand,
    }

    fn serve_args(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["merchant", "serve"].iter().chain(args))?;
        match cli.command {
            MerchantCommand::Serve(a) => Ok(*a),
            other => panic!("parsed as {other:?}"),
        }
    }

    // `serve --config FILE` reads the example file; flags override its
    // fields; without a file the flags are required.
    #[test]
    fn config_file_and_flags() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../merchant/merchant.example.toml"
        );
        let file = serve_args(&["--config", example, "--listen", "127.0.0.1:0"])
            .expect("parses")
            .file()
            .expect("loads");
        assert_eq!(file.listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(file.bank_url, "http://127.0.0.1:8800");
        assert_eq!(file.offer_lifetime_ms, 60_000);
        assert!(serve_args(&["--listen", "127.0.0.1:0"]).is_err());
    }

    // --catalog replaces the file's catalog, its inline items included.
    #[test]
    fn the_catalog_flag_replaces_the_files() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../merchant/merchant.example.toml"
        );
        let kept = serve_args(&["--config", example])
            .expect("parses")
            .file()
            .expect("loads");
        assert!(kept.catalog.is_some());
        let dir = tempfile::tempdir().expect("dir");
        let catalog = dir.path().join("catalog.toml");
        std::fs::write(
            &catalog,
            "[[items]]\nid = \"only\"\ndescription = \"O\"\nprice = 3\nfile = \"o.txt\"\n",
        )
        .expect("write");
        let file = serve_args(&[
            "--config",
            example,
            "--catalog",
            catalog.to_str().expect("utf-8"),
        ])
        .expect("parses")
        .file()
        .expect("loads");
        assert_eq!(file.catalog, None);
        assert_eq!(
            file.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["only"]
        );
    }
}
