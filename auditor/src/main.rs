//! `acd-auditor`: the witness (`witness`) and the monitor (`monitor`).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use acd_auditor::monitor::{FollowedLog, Monitor, Outcome};
use acd_auditor::witness::Witness;
use acd_core::cosignature::Cosigner;
use acd_core::note::NoteVerifier;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ed25519_dalek::SigningKey;

#[derive(Parser)]
#[command(
    name = "acd-auditor",
    version,
    about = "Witness and monitor of acd transaction logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a C2SP tlog-witness: cosign checkpoints consistent with the last one cosigned.
    Witness {
        /// Directory of the witness state and key (`witness.key`, mode 0600).
        #[arg(long)]
        data: PathBuf,
        /// The witness's name (its cosignature key name).
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "127.0.0.1:8800")]
        listen: std::net::SocketAddr,
        /// A log to witness, as its vkey `<origin>+<id>+<key>`; repeatable.
        #[arg(long = "log")]
        logs: Vec<String>,
    },
    /// Follow logs through their tiles: verify consistency, audit every entry.
    Monitor {
        /// Directory of the monitor's state and evidence files.
        #[arg(long)]
        data: PathBuf,
        /// A log to follow, as `<vkey>@<url>`; repeatable.
        #[arg(long = "log")]
        logs: Vec<String>,
        /// Check once and exit (0: all verified; 1: a violation, evidence written).
        #[arg(long)]
        once: bool,
        /// Milliseconds between checks.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one JSON object per check instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The witness key: 32 random bytes, created once with mode 0600.
fn load_or_create_key(data: &Path) -> anyhow::Result<SigningKey> {
    std::fs::create_dir_all(data)?;
    let path = data.join("witness.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&seed)?;
            f.sync_all()?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Monitor {
            data,
            logs,
            once,
            interval_ms,
            json,
        } => {
            let logs = logs
                .iter()
                .map(|spec| {
                    let (vkey, url) = spec
                        .rsplit_once('@')
                        .with_context(|| format!("expected <vkey>@<url>, got {spec}"))?;
                    Ok(FollowedLog {
                        url: url.trim_end_matches('/').to_owned(),
                        verifier: NoteVerifier::from_vkey(vkey)
                            .with_context(|| format!("log vkey {vkey}"))?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if logs.is_empty() {
                bail!("give at least one --log <vkey>@<url>");
            }
            let monitor = Monitor::open(&data)?;
            loop {
                for log in &logs {
                    match monitor.check(log).await {
                        Ok(Outcome::Verified { size, new_entries }) => {
                            if json {
                                println!(
                                    "{}",
                                    serde_json::json!({"origin": log.verifier.name(), "verified_size": size, "new_entries": new_entries})
                                );
                            } else {
                                println!(
                                    "{}: verified size {size} (+{new_entries} entries audited)",
                                    log.verifier.name()
                                );
                            }
                        }
                        Ok(Outcome::Violation { evidence, path }) => {
                            if json {
                                println!(
                                    "{}",
                                    serde_json::json!({"origin": log.verifier.name(), "violation": evidence.kind, "detail": evidence.detail, "evidence": path})
                                );
                            } else {
                                println!(
                                    "{}: VIOLATION {}: {} (evidence: {})",
                                    log.verifier.name(),
                                    evidence.kind,
                                    evidence.detail,
                                    path.display()
                                );
                            }
                            std::process::exit(1);
                        }
                        Err(e) => {
                            tracing::warn!(origin = log.verifier.name(), error = %e, "check failed; will retry");
                            if once {
                                return Err(e.into());
                            }
                        }
                    }
                }
                if once {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
            }
        }
        Command::Witness {
            data,
            name,
            listen,
            logs,
        } => {
            let key = load_or_create_key(&data)?;
            let cosigner = Cosigner::new(&name, key)?;
            let logs = logs
                .iter()
                .map(|v| NoteVerifier::from_vkey(v).with_context(|| format!("log vkey {v}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let witness = Arc::new(Witness::open(&data.join("db"), cosigner, logs)?);
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("listening on http://{}", listener.local_addr()?);
            println!("vkey {}", witness.cosigner().verifier().vkey());
            acd_auditor::server::run(listener, witness, shutdown_signal()).await?;
        }
    }
    Ok(())
}
