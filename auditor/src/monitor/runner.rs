//! The monitor's run loop: check every followed log, pull every gossip peer
//! now and then, report each result as a line of text or JSON, and stop on
//! a violation, after one round (`--once`), or when shutdown is asked for
//! (SIGTERM): then it returns instead of exiting, and the binary maps the
//! [`RunOutcome`] to its exit code. Stopping in the middle of a check is
//! safe: a check stores its progress so that a restarted one resumes.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::evidence::Evidence;
use tokio::net::TcpListener;

use super::{FollowedLog, Monitor, MonitorError, Outcome, PeerOutcome};
use crate::gossip;
use crate::metrics::inc;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// One round (`once`) checked every log and found nothing wrong.
    Verified,
    /// Shutdown was asked for.
    Stopped,
    /// A violation was found and its evidence file written: a log's own
    /// misbehaviour (always ends the run) or a split view shown by a peer
    /// (ends a `once` run).
    Violation,
}

/// What the loop does, besides the logs it follows.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Peers whose gossip is pulled.
    pub peers: Vec<String>,
    /// Time between two pulls of every peer.
    pub gossip_every: Duration,
    /// Time between two rounds of checks.
    pub interval: Duration,
    /// Run one round, then return.
    pub once: bool,
    /// Report one JSON object per line instead of text.
    pub json: bool,
}

/// The monitor's run loop over the logs it follows.
pub struct MonitorRunner {
    monitor: Arc<Monitor>,
    logs: Vec<FollowedLog>,
    settings: RunSettings,
    http: reqwest::Client,
    listener: Option<TcpListener>,
    limits: acd_serve::HttpLimits,
    out: Box<dyn Write + Send>,
    /// Logs reported on at least once: later rounds that found nothing
    /// new stay quiet.
    reported: std::collections::HashSet<String>,
}

impl MonitorRunner {
    /// A run of `monitor` over `logs`, reporting on standard output.
    pub fn new(monitor: Arc<Monitor>, logs: Vec<FollowedLog>, settings: RunSettings) -> Self {
        MonitorRunner {
            monitor,
            logs,
            settings,
            http: acd_serve::http_client_with(gossip::PEER_TIMEOUT),
            listener: None,
            limits: acd_serve::HttpLimits::default(),
            out: Box::new(std::io::stdout()),
            reported: Default::default(),
        }
    }

    /// Also serves the monitor's gossip and metrics on `listener` while it
    /// runs.
    pub fn with_listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Serves under the HTTP limits `limits`.
    pub fn with_http_limits(mut self, limits: acd_serve::HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Reports to `out` instead of standard output.
    pub fn with_output(mut self, out: Box<dyn Write + Send>) -> Self {
        self.out = out;
        self
    }

    /// Runs until a violation, the end of a `once` round, or `shutdown`.
    /// A check that fails in a `once` run is an error; otherwise it is
    /// logged and retried next round.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<RunOutcome, MonitorError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = self.listener.take().map(|listener| {
            let router = crate::http::monitor::router(self.monitor.clone());
            let mut stopped = stopped.clone();
            tokio::spawn(acd_serve::serve_with(
                listener,
                router,
                self.limits,
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ))
        });
        let outcome = tokio::select! {
            outcome = self.rounds() => outcome,
            () = shutdown => Ok(RunOutcome::Stopped),
        };
        let _ = stop.send(true);
        if let Some(server) = server {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "the monitor's server stopped"),
                Err(e) => tracing::error!(error = %e, "the monitor's server failed"),
            }
        }
        outcome
    }

    async fn rounds(&mut self) -> Result<RunOutcome, MonitorError> {
        let mut last_gossip: Option<Instant> = None;
        loop {
            for i in 0..self.logs.len() {
                let log = &self.logs[i];
                let name = log.verifier.name().to_owned();
                match self.monitor.check(log).await {
                    Ok(Outcome::Verified { size, new_entries }) => {
                        self.verified(&name, size, new_entries);
                    }
                    Ok(Outcome::Violation { evidence, path }) => {
                        self.violation(&name, &evidence, &path, None);
                        return Ok(RunOutcome::Violation);
                    }
                    Err(e) => {
                        tracing::warn!(origin = %name, error = %e, "check failed; will retry");
                        if self.settings.once {
                            return Err(e);
                        }
                    }
                }
            }
            if !self.settings.peers.is_empty()
                && last_gossip.is_none_or(|t| t.elapsed() >= self.settings.gossip_every)
            {
                last_gossip = Some(Instant::now());
                if self.gossip().await && self.settings.once {
                    return Ok(RunOutcome::Violation);
                }
            }
            if self.settings.once {
                return Ok(RunOutcome::Verified);
            }
            tokio::time::sleep(self.settings.interval).await;
        }
    }

    /// One pull of every peer, for every log followed; whether a
    /// violation was found.
    async fn gossip(&mut self) -> bool {
        let mut violation = false;
        for peer in self.settings.peers.clone() {
            let held = match gossip::fetch(&self.http, &peer).await {
                Ok(h) => {
                    inc(&self.monitor.metrics().gossip_pulls);
                    h
                }
                Err(e) => {
                    inc(&self.monitor.metrics().gossip_errors);
                    tracing::warn!(peer, error = %e, "gossip pull failed");
                    continue;
                }
            };
            for h in held {
                let Some(log) = self.logs.iter().find(|l| l.verifier.name() == h.origin) else {
                    continue;
                };
                match self.monitor.compare_peer(log, &h.checkpoint).await {
                    Ok(PeerOutcome::Violation { evidence, path }) => {
                        self.violation(&h.origin, &evidence, &path, Some(&peer));
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

    fn verified(&mut self, origin: &str, size: u64, new_entries: u64) {
        // A watch of a quiet log says so once, not every round.
        let first = self.reported.insert(origin.to_owned());
        if new_entries == 0 && !first && !self.settings.once {
            return;
        }
        let line = if self.settings.json {
            serde_json::json!({"origin": origin, "verified_size": size, "new_entries": new_entries})
                .to_string()
        } else {
            format!("{origin}: verified size {size} (+{new_entries} entries audited)")
        };
        self.report(&line);
    }

    fn violation(&mut self, origin: &str, evidence: &Evidence, path: &Path, peer: Option<&str>) {
        let line = if self.settings.json {
            serde_json::json!({"origin": origin, "violation": evidence.kind, "detail": evidence.detail, "evidence": path, "peer": peer})
                .to_string()
        } else {
            format!(
                "{origin}: VIOLATION {}: {} (evidence: {}{})",
                evidence.kind,
                evidence.detail,
                path.display(),
                peer.map(|p| format!("; from peer {p}")).unwrap_or_default()
            )
        };
        self.report(&line);
    }

    fn report(&mut self, line: &str) {
        if let Err(e) = writeln!(self.out, "{line}").and_then(|()| self.out.flush()) {
            tracing::warn!(error = %e, "cannot write the monitor's report");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use acd_core::note::NoteSigner;
    use ed25519_dalek::SigningKey;

    fn down_log() -> FollowedLog {
        let signer = NoteSigner::new("runner.test/log", SigningKey::from_bytes(&[3; 32])).unwrap();
        FollowedLog {
            url: "http://127.0.0.1:1".into(),
            verifier: signer.verifier(),
        }
    }

    fn settings(once: bool) -> RunSettings {
        RunSettings {
            peers: vec!["http://127.0.0.1:1".into()],
            gossip_every: Duration::from_millis(10),
            interval: Duration::from_millis(10),
            once,
            json: true,
        }
    }

    // A `once` run whose check cannot reach the log is an error; a
    // continuing run retries until shutdown, then returns `Stopped` and
    // stops serving its gossip.
    #[tokio::test]
    async fn once_fails_and_shutdown_stops() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = Arc::new(Monitor::open(dir.path()).unwrap());
        let runner = MonitorRunner::new(monitor.clone(), vec![down_log()], settings(true))
            .with_output(Box::new(std::io::sink()));
        assert!(matches!(
            runner.run(std::future::pending()).await,
            Err(MonitorError::Fetch { .. })
        ));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let runner = MonitorRunner::new(monitor, vec![down_log()], settings(false))
            .with_listener(listener)
            .with_output(Box::new(std::io::sink()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(runner.run(async {
            let _ = stopped.await;
        }));
        let held = gossip::fetch(&acd_serve::http_client(), &format!("http://{addr}")).await;
        assert_eq!(held.unwrap(), Vec::new());
        stop.send(()).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.unwrap(), RunOutcome::Stopped);
        assert!(
            gossip::fetch(&acd_serve::http_client(), &format!("http://{addr}"))
                .await
                .is_err()
        );
    }
}
