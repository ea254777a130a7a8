//! `acd-auditor`: the witness (`witness`, `witness clear`) and the monitor
//! (`monitor`), each pulling gossip from its peers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_auditor::frozen::Frozen;
use acd_auditor::gossip::{self, Config};
use acd_auditor::monitor::{FollowedLog, Monitor, Outcome, PeerOutcome};
use acd_auditor::witness::Witness;
use acd_core::cosignature::Cosigner;
use acd_core::evidence::Evidence;
use acd_core::note::NoteVerifier;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
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

/// Gossip settings shared by both commands.
#[derive(Args)]
struct GossipArgs {
    /// A peer (monitor or witness) whose `/gossip/v1/checkpoints` is pulled; repeatable.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Milliseconds between two pulls of every peer [default: 10000].
    #[arg(long)]
    gossip_interval_ms: Option<u64>,
    /// A JSON configuration file (`peers`, `gossip_interval_ms`, `admin_token_file`); flags add to it.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl GossipArgs {
    /// The configuration file's settings with the flags added.
    fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?
            }
            None => Config::default(),
        };
        config.peers.extend(self.peers.iter().cloned());
        if self.gossip_interval_ms.is_some() {
            config.gossip_interval_ms = self.gossip_interval_ms;
        }
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
        /// Directory of the witness state and key (`witness.key`, mode 0600).
        #[arg(long, required = true)]
        data: Option<PathBuf>,
        /// The witness's name (its cosignature key name).
        #[arg(long, required = true)]
        name: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8800")]
        listen: std::net::SocketAddr,
        /// A log to witness, as its vkey `<origin>+<id>+<key>`, optionally
        /// `<vkey>@<url>` so that gossip can ask it for consistency proofs; repeatable.
        #[arg(long = "log")]
        logs: Vec<String>,
        /// A file whose first line is the token for `POST /admin/clear`.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
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

/// Prints a violation (text or JSON) for the monitor.
fn report_violation(
    json: bool,
    origin: &str,
    evidence: &Evidence,
    path: &Path,
    peer: Option<&str>,
) {
    if json {
        println!(
            "{}",
            serde_json::json!({"origin": origin, "violation": evidence.kind, "detail": evidence.detail, "evidence": path, "peer": peer})
        );
    } else {
        println!(
            "{origin}: VIOLATION {}: {} (evidence: {}{})",
            evidence.kind,
            evidence.detail,
            path.display(),
            peer.map(|p| format!("; from peer {p}")).unwrap_or_default()
        );
    }
}

/// One pull of every peer by the monitor, for every log it follows;
/// returns whether a violation was found.
async fn monitor_gossip(
    monitor: &Monitor,
    http: &reqwest::Client,
    logs: &[FollowedLog],
    peers: &[String],
    json: bool,
) -> bool {
    let mut violation = false;
    for peer in peers {
        let held = match gossip::fetch(http, peer).await {
            Ok(h) => {
                acd_auditor::metrics::inc(&monitor.metrics().gossip_pulls);
                h
            }
            Err(e) => {
                acd_auditor::metrics::inc(&monitor.metrics().gossip_errors);
                tracing::warn!(peer, error = %e, "gossip pull failed");
                continue;
            }
        };
        for h in held {
            let Some(log) = logs.iter().find(|l| l.verifier.name() == h.origin) else {
                continue;
            };
            match monitor.compare_peer(log, &h.checkpoint).await {
                Ok(PeerOutcome::Violation { evidence, path }) => {
                    report_violation(json, &h.origin, &evidence, &path, Some(peer));
                    violation = true;
                }
                Ok(PeerOutcome::Unsigned(e)) => {
                    tracing::warn!(peer, origin = %h.origin, error = %e, "a peer holds a checkpoint the log did not sign");
                }
                Ok(PeerOutcome::Consistent | PeerOutcome::NotYet) => {}
                Err(e) => {
                    tracing::warn!(peer, origin = %h.origin, error = %e, "cannot compare a peer's checkpoint yet");
                }
            }
        }
    }
    violation
}

/// The witness key: 32 random bytes, created once with mode 0600.
fn load_or_create_key(data: &Path) -> anyhow::Result<SigningKey> {
    let path = data.join("witness.key");
    let bytes = acd_serve::secret::read_or_create(&path, || {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        seed.to_vec()
    })
    .with_context(|| format!("reading or creating {}", path.display()))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    acd_serve::init_tracing();
    match Cli::parse().command {
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
            let logs = logs
                .iter()
                .map(|spec| {
                    let (vkey, url) = acd_core::note::split_vkey_url(spec)
                        .with_context(|| format!("expected <vkey>@<http(s) url>, got {spec}"))?;
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
            let monitor = Arc::new(Monitor::open(&data)?);
            if let Some(addr) = listen {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                println!("listening on http://{}", listener.local_addr()?);
                let router = acd_auditor::server::monitor_router(monitor.clone());
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::error!(error = %e, "the monitor's server stopped");
                    }
                });
            }
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?;
            let gossip_every = Duration::from_millis(
                config
                    .gossip_interval_ms
                    .unwrap_or(gossip::DEFAULT_INTERVAL_MS),
            );
            let mut last_gossip: Option<Instant> = None;
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
                            report_violation(json, log.verifier.name(), &evidence, &path, None);
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
                if !config.peers.is_empty()
                    && last_gossip.is_none_or(|t| t.elapsed() >= gossip_every)
                {
                    last_gossip = Some(Instant::now());
                    if monitor_gossip(&monitor, &http, &logs, &config.peers, json).await && once {
                        std::process::exit(1);
                    }
                }
                if once {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(interval_ms)).await;
            }
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
            gossip,
        } => {
            let (Some(data), Some(name)) = (data, name) else {
                bail!("give --data and --name");
            };
            let mut config = gossip.resolve()?;
            if admin_token_file.is_some() {
                config.admin_token_file = admin_token_file;
            }
            let key = load_or_create_key(&data)?;
            let cosigner = Cosigner::new(&name, key)?;
            let mut urls = Vec::new();
            let logs = logs
                .iter()
                .map(|spec| {
                    let (vkey, url) = match acd_core::note::split_vkey_url(spec) {
                        Some((v, u)) => (v, Some(u)),
                        None => (spec.as_str(), None),
                    };
                    let verifier = NoteVerifier::from_vkey(vkey)
                        .with_context(|| format!("log vkey {vkey}"))?;
                    if let Some(u) = url {
                        urls.push((verifier.name().to_owned(), u.to_owned()));
                    }
                    Ok(verifier)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut witness = Witness::open(&data.join("db"), cosigner, logs)?
                .with_evidence_dir(data.join("evidence"));
            for (origin, url) in &urls {
                witness = witness.with_log_url(origin, url);
            }
            if let Some(path) = &config.admin_token_file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let token = text.lines().next().unwrap_or_default().trim().to_owned();
                if token.len() < 16 {
                    bail!(
                        "the admin token in {} is shorter than 16 characters",
                        path.display()
                    );
                }
                witness = witness.with_admin_token(token);
            }
            for (origin, record) in witness.frozen().list()? {
                tracing::warn!(%origin, kind = %record.kind, evidence = ?record.evidence_file, "origin is frozen after a split view; not cosigning it");
            }
            let witness = Arc::new(witness);
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("listening on http://{}", listener.local_addr()?);
            println!("vkey {}", witness.cosigner().verifier().vkey());
            if !config.peers.is_empty() {
                let every = Duration::from_millis(
                    config
                        .gossip_interval_ms
                        .unwrap_or(gossip::DEFAULT_INTERVAL_MS),
                );
                tokio::spawn(gossip::run_witness(witness.clone(), config.peers, every));
            }
            acd_auditor::server::run(listener, witness, acd_serve::shutdown_signal()).await?;
        }
    }
    Ok(())
}
