//! `acd-auditor`: the witness (`witness`, `witness clear`) and the monitor
//! (`monitor`), each pulling gossip from its peers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use acd_auditor::config::Config;
use acd_auditor::frozen::Frozen;
use acd_auditor::monitor::{Monitor, MonitorRunner, RunOutcome, RunSettings};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "acd-auditor", version = acd_serve::ops::VERSION,
    about = "Witness and monitor of acd transaction logs"
)]
struct Cli {
    #[command(flatten)]
    logging: acd_serve::ops::LogFlags,
    #[command(subcommand)]
    command: Command,
}

/// Gossip settings shared by both commands.
#[derive(Args)]
struct GossipArgs {
    /// A peer (monitor or witness) whose `/gossip/v1/checkpoints` is pulled; repeatable (replaces the file's peers).
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Milliseconds between two pulls of every peer [default: 10000].
    #[arg(long)]
    gossip_interval_ms: Option<u64>,
    /// A TOML configuration file (`peers`, `gossip_interval_ms`, `admin_token_file`;
    /// see auditor/auditor.example.toml); flags given replace its settings.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    http: acd_serve::HttpFlags,
}

impl GossipArgs {
    /// The configuration file's settings with the flags added.
    fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        // Peers given on the command line replace the file's.
        if !self.peers.is_empty() {
            config.peers = self.peers.clone();
        }
        if self.gossip_interval_ms.is_some() {
            config.gossip_interval_ms = self.gossip_interval_ms;
        }
        self.http.apply(&mut config.http);
        Ok(config)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a C2SP tlog-witness: cosign checkpoints consistent with the last one cosigned.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Witness {
        #[command(subcommand)]
        action: Option<WitnessAction>,
        /// Directory of the witness state and key (`witness.ml-dsa-44.key` or
        /// `witness.key` for Ed25519, mode 0600).
        #[arg(long, required = true)]
        data: Option<PathBuf>,
        /// The witness's name (its cosignature key name).
        #[arg(long, required = true)]
        name: Option<String>,
        /// Where to listen for logs' add-checkpoint requests.
        #[arg(long, default_value = "127.0.0.1:8800")]
        listen: std::net::SocketAddr,
        /// A log to witness, as its vkey `<origin>+<id>+<key>`, optionally
        /// `<vkey>@<url>` so that gossip can ask it for consistency proofs; repeatable.
        #[arg(long = "log")]
        logs: Vec<String>,
        /// A file whose first line is the token for `POST /admin/clear`.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// Key type of a new witness: ml-dsa-44 (post-quantum, the default) or
        /// ed25519; an existing witness keeps the type of its key.
        #[arg(long)]
        key_type: Option<acd_core::cosignature::CosignatureKind>,
        #[command(flatten)]
        gossip: GossipArgs,
    },
    /// Follow logs through their tiles: verify consistency, audit every entry.
    Monitor {
        /// Directory of the monitor's state and evidence files.
        #[arg(long)]
        data: PathBuf,
        /// A log to follow, as `<vkey>@<url>`; repeatable.
        #[arg(long = "log")]
        logs: Vec<String>,
        /// Check (and pull every peer) once and exit (0: all verified; 1: a violation, evidence written).
        #[arg(long)]
        once: bool,
        /// Milliseconds between checks.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one JSON object per check instead of text.
        #[arg(long)]
        json: bool,
        /// Serve `/gossip/v1/checkpoints` and `/metrics` on this address.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        gossip: GossipArgs,
    },
    /// Write a backup of a stopped witness's or monitor's data directory
    /// (key, cosigned and frozen state, evidence) to one archive.
    Backup(acd_serve::backup::BackupArgs),
    /// Restore a witness or monitor backup into a new data directory.
    Restore(acd_serve::backup::RestoreArgs),
}

#[derive(Subcommand)]
enum WitnessAction {
    /// Unfreeze an origin frozen after a split view (the witness must be stopped).
    Clear {
        /// The witness's data directory.
        #[arg(long)]
        data: PathBuf,
        /// The log origin to cosign again.
        #[arg(long)]
        origin: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    acd_serve::ops::init_tracing_as(cli.logging.log_format);
    match cli.command {
        Command::Backup(args) => {
            // A witness has its key; a monitor has none.
            let kind = if acd_auditor::setup::existing_key_type(&args.data).is_some() {
                "witness"
            } else {
                "monitor"
            };
            acd_serve::backup::backup_command(&args, kind)?;
        }
        Command::Restore(args) => {
            acd_serve::backup::restore_command(&args, &["witness", "monitor"])?;
        }
        Command::Monitor {
            data,
            logs,
            once,
            interval_ms,
            json,
            listen,
            gossip,
        } => {
            let config = gossip.resolve()?;
            let logs = acd_auditor::setup::followed_logs(&logs)?;
            if logs.is_empty() {
                bail!("give at least one --log <vkey>@<url>");
            }
            let settings = RunSettings {
                peers: config.peers.clone(),
                gossip_every: config.gossip_interval(),
                interval: Duration::from_millis(interval_ms),
                once,
                json,
            };
            // Nothing is written before the port is bound.
            let listener = match listen {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("binding {addr}"))?,
                ),
                None => None,
            };
            // Installed before anything is announced: a SIGTERM right after
            // the `listening on` line stops the server cleanly.
            let shutdown = acd_serve::shutdown_signal();
            let mut runner = MonitorRunner::new(Arc::new(Monitor::open(&data)?), logs, settings);
            if let Some(listener) = listener {
                println!("listening on http://{}", listener.local_addr()?);
                runner = runner.with_listener(listener).with_http_limits(config.http);
            }
            // A violation exits 1, as a failed `--once` check does.
            return Ok(match runner.run(shutdown).await? {
                RunOutcome::Violation => ExitCode::FAILURE,
                RunOutcome::Verified | RunOutcome::Stopped => ExitCode::SUCCESS,
            });
        }
        Command::Witness {
            action: Some(WitnessAction::Clear { data, origin }),
            ..
        } => {
            if !data.join("db").exists() {
                bail!("{} holds no witness state", data.display());
            }
            let frozen = Frozen::open_dir(&data.join("db")).with_context(|| {
                format!(
                    "opening {} (is the witness still running?)",
                    data.join("db").display()
                )
            })?;
            if frozen.clear(&origin)? {
                println!("{origin}: cleared; the witness cosigns it again");
            } else {
                println!("{origin}: was not frozen");
            }
        }
        Command::Witness {
            action: None,
            data,
            name,
            listen,
            logs,
            admin_token_file,
            key_type,
            gossip,
        } => {
            let (Some(data), Some(name)) = (data, name) else {
                bail!("give --data and --name");
            };
            let mut config = gossip.resolve()?;
            if admin_token_file.is_some() {
                config.admin_token_file = admin_token_file;
            }
            let admin_token = config.admin_token()?;
            let key_type = key_type.or(config.key_type);
            // Nothing is written before the configuration is checked and
            // the port is bound.
            acd_auditor::setup::check_witness(&data, &name, &logs, key_type)?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let witness = Arc::new(acd_auditor::setup::open_witness(
                &mut rand::rng(),
                &data,
                &name,
                &logs,
                key_type,
                admin_token,
            )?);
            // Installed before anything is announced: a SIGTERM right after
            // the `listening on` line stops the server cleanly.
            let shutdown = acd_serve::shutdown_signal();
            println!("listening on http://{}", listener.local_addr()?);
            println!("vkey {}", witness.cosigner().verifier().vkey());
            acd_auditor::http::run_with(
                listener,
                witness,
                config.peers.clone(),
                config.gossip_interval(),
                config.http,
                shutdown,
            )
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser as _;

    // Peers given as flags replace the file's list; none keeps it.
    #[test]
    fn peers_given_replace_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auditor.toml");
        std::fs::write(&file, "peers = [\"http://127.0.0.1:1/\"]\n").unwrap();
        let peers = |extra: &[&str]| {
            let mut args = vec!["acd-auditor", "monitor", "--data", "/tmp/m", "--config"];
            args.push(file.to_str().unwrap());
            args.extend_from_slice(extra);
            match super::Cli::try_parse_from(args).unwrap().command {
                super::Command::Monitor { gossip, .. } => gossip.resolve().unwrap().peers,
                _ => unreachable!(),
            }
        };
        assert_eq!(peers(&[]), vec!["http://127.0.0.1:1/".to_owned()]);
        assert_eq!(
            peers(&["--peer", "http://127.0.0.1:2/"]),
            vec!["http://127.0.0.1:2/".to_owned()]
        );
    }

    #[test]
    fn every_argument_has_help() {
        use clap::CommandFactory as _;
        let missing = acd_serve::ops::undocumented(&super::Cli::command());
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
