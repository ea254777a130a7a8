//! `acd merchant`: run a merchant's shop (`serve`), or print the merchant's
//! public key (`key`) so that the bank's operator can open its account.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_core::bank_api::LogInfo;
use acd_merchant::{CatalogFile, Merchant, MerchantConfig};
use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Serve the shop over HTTP; creates the key and database on first start.
    Serve {
        /// Data directory (merchant.key and the database).
        #[arg(long)]
        data: PathBuf,
        /// Listen address, e.g. 127.0.0.1:8800 (port 0: any free port).
        #[arg(long)]
        listen: SocketAddr,
        /// The bank's base URL.
        #[arg(long)]
        bank: String,
        /// The log that records this shop's purchases, as `<vkey>@<url>`.
        #[arg(long, value_parser = parse_log)]
        log: LogInfo,
        /// Catalog TOML file: `[[items]]` with id, description, price, file.
        #[arg(long)]
        catalog: PathBuf,
        /// How long an offer stays open, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        offer_lifetime_ms: u64,
        /// The bank's ed25519 key (64 hex digits), if known: start without
        /// asking the bank (nor checking that it trusts the log).
        #[arg(long, value_parser = parse_key)]
        bank_key: Option<[u8; 32]>,
    },
    /// Print the merchant's public key (64 hex digits), creating it if needed.
    Key {
        #[arg(long)]
        data: PathBuf,
    },
}

/// `<vkey>@<url>`.
fn parse_log(s: &str) -> Result<LogInfo, String> {
    let (vkey, url) = acd_core::note::split_vkey_url(s)
        .ok_or_else(|| format!("expected <vkey>@<http(s) url>, got {s:?}"))?;
    acd_core::note::NoteVerifier::from_vkey(vkey).map_err(|e| format!("log vkey: {e}"))?;
    Ok(LogInfo {
        vkey: vkey.to_owned(),
        url: url.to_owned(),
    })
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(s, &mut key).map_err(|_| "expected 64 hex digits".to_owned())?;
    Ok(key)
}

fn load_catalog(path: &Path) -> anyhow::Result<Vec<acd_merchant::CatalogEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    CatalogFile::from_toml(&text, base).with_context(|| format!("parsing {}", path.display()))
}

/// Runs an `acd merchant` command.
pub async fn run(command: MerchantCommand) -> anyhow::Result<()> {
    match command {
        MerchantCommand::Key { data } => {
            let key = acd_merchant::keys::load_or_create(&data)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
        }
        MerchantCommand::Serve {
            data,
            listen,
            bank,
            log,
            catalog,
            offer_lifetime_ms,
            bank_key,
        } => {
            acd_serve::init_tracing();
            let mut config = MerchantConfig::new(data, bank, log, load_catalog(&catalog)?);
            config.offer_lifetime = Duration::from_millis(offer_lifetime_ms);
            config.bank_key = bank_key;
            let merchant = Merchant::open(config).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            // Scripts and tests read these two lines.
            println!("listening on http://{addr}");
            println!("vkey {}", hex::encode(merchant.public_key()));
            merchant.run(listener, acd_serve::shutdown_signal()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
