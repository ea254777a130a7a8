//! The log server's configuration: one struct whose field docs are the
//! operator's manual. Read from a TOML file (`--config`), with command-line
//! flags taking precedence; see `log-server/log.example.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Everything `acd-log serve` needs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Directory holding the database (`db/`) and the signing key
    /// (`log.key`, created with mode 0600 on first start). Back it up: the
    /// key is the log's identity, the database its history.
    pub data: PathBuf,
    /// Address the HTTP server listens on; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The log's origin: the first line of every checkpoint and the name
    /// of its key, e.g. `log.example.com/acd/1`. Fixed at the first start.
    pub origin: String,
    /// Ed25519 public keys (64 hex digits) of the banks whose escrow notices
    /// may abort a transaction. An abort signed by any other key is refused.
    #[serde(default)]
    pub trusted_banks: Vec<String>,
    /// Witnesses asked to cosign every new checkpoint (C2SP tlog-witness);
    /// their cosignatures are served with the checkpoint at `/checkpoint`.
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
    /// Upper bound, in milliseconds, on how long an accepted entry waits for
    /// a checkpoint that includes it. Group commit normally publishes much
    /// sooner: every batch is committed as soon as the previous one is
    /// durable and publishes its own checkpoint. The interval also bounds how
    /// long entries of a failed-but-stored commit stay unpublished.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// Microseconds the sequencer lets appends gather after the first one
    /// arrives, before it commits the batch. Larger batches cost less CPU
    /// and fewer flushes per entry; every append waits this much longer.
    #[serde(default = "default_batch_window_us")]
    pub batch_window_us: u64,
    /// Most entries in one group commit (one flush, one checkpoint).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Appends that may wait for the sequencer; beyond this the log answers
    /// 503 with Retry-After instead of queueing without bound.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most entries returned by one `GET /api/v1/entries`.
    #[serde(default = "default_max_entries")]
    pub max_entries_per_request: u64,
    /// Also publish the read path (checkpoint, tiles, entry bundles) at
    /// their C2SP paths to `file:///DIR` or `s3://BUCKET/PREFIX` (S3
    /// endpoint and credentials from the standard `AWS_*` variables), for
    /// a static web server, bucket or CDN to serve. The log serves the read
    /// path itself as well.
    #[serde(default)]
    pub tiles: Option<String>,
    /// The database, when not the sled one in `data/db/`: a PostgreSQL URL
    /// `postgres://user:password@host:port/dbname`. Several `acd-log`
    /// processes with the same key (`data/log.key`) on one database form
    /// one log: the lease holder sequences, the others serve reads and
    /// take over when the lease expires.
    #[serde(default)]
    pub database: Option<String>,
    /// On a shared database: milliseconds a lease lasts. The holder renews
    /// it five times per lease; a standby takes over at most this long
    /// after the holder stopped renewing (was killed, hung, lost the
    /// network).
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Timeouts and the connection cap (`[http]` table).
    #[serde(default)]
    pub http: acd_serve::HttpLimits,
}

/// One witness of the log.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Submission prefix: `<url>/add-checkpoint` is posted to.
    pub url: String,
    /// The witness's cosignature key, `<name>+<id>+<base64(0x04 || key)>`.
    pub vkey: String,
}

impl std::str::FromStr for WitnessConfig {
    type Err = String;
    /// The command-line form `<vkey>@<url>`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (vkey, url) = acd_core::note::split_vkey_url(s)
            .ok_or_else(|| format!("expected <vkey>@<http(s) url>, got {s:?}"))?;
        Ok(WitnessConfig {
            url: url.to_owned(),
            vkey: vkey.to_owned(),
        })
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8700))
}
fn default_lease_ms() -> u64 {
    5000
}
fn default_checkpoint_interval_ms() -> u64 {
    1000
}
fn default_batch_window_us() -> u64 {
    2000
}
fn default_max_batch() -> usize {
    4096
}
fn default_queue() -> usize {
    65536
}
fn default_max_body() -> usize {
    16 * 1024
}
fn default_max_entries() -> u64 {
    1000
}

impl LogConfig {
    /// A configuration with every default, for `data` and `origin`.
    pub fn new(data: PathBuf, origin: String) -> Self {
        LogConfig {
            data,
            listen: default_listen(),
            origin,
            trusted_banks: Vec::new(),
            witnesses: Vec::new(),
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            batch_window_us: default_batch_window_us(),
            max_batch: default_max_batch(),
            queue: default_queue(),
            max_body_bytes: default_max_body(),
            max_entries_per_request: default_max_entries(),
            tiles: None,
            database: None,
            lease_ms: default_lease_ms(),
            http: acd_serve::HttpLimits::default(),
        }
    }

    /// Parses a TOML configuration file's text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The command line's `--trust-bank` and `--witness`: a list given
    /// there replaces the file's (an operator who names the banks or the
    /// witnesses on the command line means exactly those); none keeps it.
    pub fn replace_lists(&mut self, trusted_banks: Vec<String>, witnesses: Vec<WitnessConfig>) {
        if !trusted_banks.is_empty() {
            self.trusted_banks = trusted_banks;
        }
        if !witnesses.is_empty() {
            self.witnesses = witnesses;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The example configuration checked into the repository parses and sets every field.
    #[test]
    fn example_config_parses() {
        let text = include_str!("../log.example.toml");
        let c = LogConfig::from_toml(text).unwrap();
        assert_eq!(c.origin, "log.example.com/acd/1");
        assert_eq!(c.trusted_banks.len(), 1);
        assert_eq!(c.checkpoint_interval_ms, 1000);
        assert_eq!(c.lease_ms, 5000);
        assert_eq!(c.database, None);
        assert_eq!(c.http, acd_serve::HttpLimits::default());
    }

    // Lists given on the command line replace the file's; none keeps them.
    #[test]
    fn flags_replace_the_files_lists() {
        let mut c = LogConfig::from_toml(include_str!("../log.example.toml")).unwrap();
        let file_banks = c.trusted_banks.clone();
        c.replace_lists(Vec::new(), Vec::new());
        assert_eq!(c.trusted_banks, file_banks);
        let bank = "ab".repeat(32);
        c.replace_lists(vec![bank.clone()], Vec::new());
        assert_eq!(c.trusted_banks, vec![bank]);
    }

    // A misspelt field is an error, not silently ignored.
    #[test]
    fn unknown_fields_are_refused() {
        assert!(LogConfig::from_toml("data = 'x'\norigin = 'o'\nqueu = 1\n").is_err());
    }
}
