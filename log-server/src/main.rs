//! `acd-log`: run the transaction log, or print its verifier key.

use std::path::PathBuf;
use std::sync::Arc;

use acd_log_server::clock::SystemClock;
use acd_log_server::config::LogConfig;
use acd_log_server::{Log, keys};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "acd-log", version = acd_serve::ops::VERSION,
    about = "The acd transaction log (a C2SP transparency log)"
)]
struct Cli {
    #[command(flatten)]
    logging: acd_serve::ops::LogFlags,
    #[command(subcommand)]
    command: Command,
}

/// Where the log's state lives when it is not sled.
#[derive(clap::Args)]
struct DatabaseFlags {
    /// PostgreSQL database instead of sled, `postgres://...`; shared by
    /// an active log and its standbys (same key). Also ACD_LOG_DATABASE.
    #[arg(long, env = "ACD_LOG_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// On a shared database: how long the sequencer's lease lasts (ms).
    #[arg(long)]
    lease_ms: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the log over HTTP; creates the key and database on first start.
    Serve {
        /// TOML configuration file (see log-server/log.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (database and key).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Listen address, e.g. 127.0.0.1:8700 (port 0: any free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The log's origin (checkpoint first line and key name).
        #[arg(long)]
        origin: Option<String>,
        /// Trust this bank key (64 hex digits) for aborts; repeatable (replaces the file's list).
        #[arg(long = "trust-bank")]
        trust_bank: Vec<String>,
        /// Ask this witness to cosign checkpoints, as `<vkey>@<url>`; repeatable (replaces the file's list).
        #[arg(long = "witness")]
        witness: Vec<acd_log_server::config::WitnessConfig>,
        /// Upper bound in milliseconds before an accepted entry is published.
        #[arg(long)]
        checkpoint_interval_ms: Option<u64>,
        /// Microseconds appends may gather before a group commit.
        #[arg(long)]
        batch_window_us: Option<u64>,
        /// Also publish the read path to `file:///DIR` or
        /// `s3://BUCKET/PREFIX` (S3 settings from the `AWS_*` variables).
        #[arg(long)]
        tiles: Option<String>,
        #[command(flatten)]
        database: Box<DatabaseFlags>,
        #[command(flatten)]
        http: Box<acd_serve::HttpFlags>,
    },
    /// Print the log's verifier key (signed-note vkey form).
    Vkey {
        /// The log's data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Write the explorer's static files (`index.html`, `explorer/…`) into a
    /// directory, to serve beside a mirror of the read path.
    Explorer {
        /// The directory, such as the one given to `serve --tiles file:///DIR`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a backup of a stopped log's data directory (key, entries,
    /// checkpoints) to one archive.
    Backup(acd_serve::backup::BackupArgs),
    /// Restore a backup into a new data directory.
    Restore(acd_serve::backup::RestoreArgs),
}

fn config_from(
    config: Option<PathBuf>,
    data: Option<PathBuf>,
    origin: Option<String>,
) -> anyhow::Result<LogConfig> {
    match config {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut c = LogConfig::from_toml(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            if let Some(d) = data {
                c.data = d;
            }
            if let Some(o) = origin {
                c.origin = o;
            }
            Ok(c)
        }
        None => {
            let data = data.context("--data is required without --config")?;
            let origin = origin.context("--origin is required without --config")?;
            Ok(LogConfig::new(data, origin))
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    acd_serve::ops::init_tracing_as(cli.logging.log_format);
    match cli.command {
        Command::Vkey { data } => {
            let signer = keys::load(&data)?;
            println!("{}", signer.verifier().vkey());
        }
        Command::Explorer { out } => {
            let written = acd_log_server::http::explorer::write_files(&out)
                .with_context(|| format!("writing the explorer into {}", out.display()))?;
            for path in written {
                println!("wrote {}", path.display());
            }
        }
        Command::Backup(args) => {
            acd_serve::backup::backup_command(&args, "log")?;
        }
        Command::Restore(args) => {
            acd_serve::backup::restore_command(&args, &["log"])?;
        }
        Command::Serve {
            config,
            data,
            listen,
            origin,
            trust_bank,
            witness,
            checkpoint_interval_ms,
            batch_window_us,
            tiles,
            database,
            http,
        } => {
            let mut c = config_from(config, data, origin)?;
            if let Some(l) = listen {
                c.listen = l;
            }
            c.replace_lists(trust_bank, witness);
            if let Some(i) = checkpoint_interval_ms {
                c.checkpoint_interval_ms = i;
            }
            if let Some(w) = batch_window_us {
                c.batch_window_us = w;
            }
            if tiles.is_some() {
                c.tiles = tiles;
            }
            if database.database.is_some() {
                c.database = database.database;
            }
            if let Some(l) = database.lease_ms {
                c.lease_ms = l;
            }
            http.apply(&mut c.http);
            // Nothing is written before the configuration is checked and
            // the port is bound.
            Log::check_config(&c)?;
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .with_context(|| format!("binding {}", c.listen))?;
            let log = Log::open(&c, Arc::new(SystemClock))?;
            // Installed before anything is announced: a SIGTERM right after
            // the `listening on` line stops the server cleanly.
            let shutdown = acd_serve::shutdown_signal();
            let addr = listener.local_addr()?;
            // Scripts and tests read these two lines.
            println!("listening on http://{addr}");
            println!("vkey {}", log.state().verifier.vkey());
            tracing::info!(%addr, origin = %c.origin, "log serving");
            log.run(listener, c.max_body_bytes, shutdown).await?;
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
