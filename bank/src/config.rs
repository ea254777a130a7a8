//! The bank's configuration: one struct whose field docs are the
//! operator's manual. Read from a TOML file (`--config`), with command-line
//! flags ([`Overrides`]) taking precedence; see `bank/bank.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("--data is required without --config")]
    NoData,
}

/// The settings `acd-bank serve` takes on its command line; each one given
/// replaces the file's (a list of `--log` or `--witness` replaces the whole list).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Overrides {
    /// Data directory (database, keys, admin token).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Keep the ledger in this PostgreSQL database
    /// (`postgres://user:password@host:port/db`) instead of sled in the
    /// data directory.
    #[arg(long)]
    pub database: Option<DatabaseUrl>,
    /// Listen address, e.g. 127.0.0.1:8800 (port 0: any free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Trust this log, as `<note-vkey>@<url>`; repeatable.
    #[arg(long = "log")]
    pub logs: Vec<TrustedLog>,
    /// A witness cosignature vkey counted by the policy; repeatable.
    #[arg(long = "witness")]
    pub witnesses: Vec<String>,
    /// How many of the witnesses must cosign a checkpoint.
    #[arg(long)]
    pub witness_threshold: Option<usize>,
    /// Denomination values, comma-separated, e.g. 1,10,100,1000.
    #[arg(long, value_delimiter = ',')]
    pub denominations: Option<Vec<u64>>,
    /// Modulus size of newly created denomination keys.
    #[arg(long)]
    pub rsa_bits: Option<usize>,
    /// Shortest time from now to an escrow's expiration, in ms.
    #[arg(long)]
    pub min_expiration_ms: Option<u64>,
    /// Longest time from now to an escrow's expiration, in ms.
    #[arg(long)]
    pub max_expiration_ms: Option<u64>,
    /// How often the sweeper aborts expired escrows, in ms.
    #[arg(long)]
    pub sweep_interval_ms: Option<u64>,
    #[command(flatten)]
    pub http: acd_serve::HttpFlags,
}

impl Overrides {
    /// Applies the settings given to `c`.
    pub fn apply(self, c: &mut BankConfig) {
        if let Some(d) = self.data {
            c.data = d;
        }
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(d) = self.database {
            c.database = Some(d);
        }
        // A list given on the command line replaces the file's: what the
        // operator typed is what the bank trusts.
        if !self.logs.is_empty() {
            c.logs = self.logs;
        }
        if !self.witnesses.is_empty() {
            c.witnesses = self.witnesses;
        }
        if let Some(k) = self.witness_threshold {
            c.witness_threshold = k;
        }
        if let Some(d) = self.denominations {
            c.denominations = d;
        }
        if let Some(b) = self.rsa_bits {
            c.rsa_bits = b;
        }
        if let Some(v) = self.min_expiration_ms {
            c.min_expiration_ms = v;
        }
        if let Some(v) = self.max_expiration_ms {
            c.max_expiration_ms = v;
        }
        if let Some(v) = self.sweep_interval_ms {
            c.sweep_interval_ms = v;
        }
        self.http.apply(&mut c.http);
    }
}

/// Everything `acd-bank serve` needs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    /// Directory holding the ledger (`db/`), the bank's ed25519 key
    /// (`bank.key`), one RSA key per denomination value (`rsa-<value>.der`)
    /// and the admin token (`admin.token`), all created on first start with
    /// mode 0600. Back it up: the keys are the bank's identity and its
    /// money, the database its books.
    pub data: PathBuf,
    /// The ledger in PostgreSQL instead of sled: `postgres://...`. The data
    /// directory then holds only the keys and the admin token, and any
    /// number of banks started with the same keys and database serve as
    /// one bank. The URL may carry a password; it is never logged.
    #[serde(default)]
    pub database: Option<DatabaseUrl>,
    /// Address the HTTP server listens on; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The logs the bank trusts to serialize purchases. A merchant picks one
    /// per transaction; the bank pays only on a commit proven in one of
    /// these, and aborts expired escrows there.
    #[serde(default)]
    pub logs: Vec<TrustedLog>,
    /// Cosignature vkeys of the witnesses whose cosignatures count toward
    /// `witness_threshold`.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// How many of `witnesses` must have cosigned a checkpoint before the
    /// bank pays or refunds on a proof under it; 0 trusts the log's
    /// signature alone (consistency is checked either way).
    #[serde(default)]
    pub witness_threshold: usize,
    /// Values of the denominations, one RSA key each. A key is created the
    /// first time its value appears; keys of values removed later stay on
    /// disk but are no longer served or accepted.
    #[serde(default = "default_denominations")]
    pub denominations: Vec<u64>,
    /// Modulus size of newly created denomination keys (2048 to 4096).
    #[serde(default = "default_rsa_bits")]
    pub rsa_bits: usize,
    /// Shortest time from now, in milliseconds, to an expiration the bank
    /// escrows for.
    #[serde(default = "default_min_expiration_ms")]
    pub min_expiration_ms: u64,
    /// Longest time from now, in milliseconds, to an expiration the bank
    /// escrows for: it bounds how long money stays escrowed.
    #[serde(default = "default_max_expiration_ms")]
    pub max_expiration_ms: u64,
    /// How often, in milliseconds, the sweeper asks the logs to abort the
    /// escrows that expired without a deposit.
    #[serde(default = "default_sweep_interval_ms")]
    pub sweep_interval_ms: u64,
    /// Largest request body of every route but the dispute, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest dispute body, in bytes. A dispute carries the whole
    /// ciphertext of the goods (base64, 4/3 of its size) beside at most
    /// [`DISPUTE_EVIDENCE_BYTES`] of other evidence, so the default
    /// (1.5 MiB) takes goods up to [`DISPUTE_GOODS_BYTES`] (1 MiB); a bank
    /// whose shops sell larger goods raises it to 4/3 of their size plus
    /// 128 KiB.
    #[serde(default = "default_max_dispute_body")]
    pub max_dispute_body_bytes: usize,
    /// Disputes read and checked at once; more are answered 503 `busy`
    /// with Retry-After. Each holds its body and the decoded ciphertext in
    /// memory, so this bounds what disputes can cost: about 4 times
    /// `max_dispute_body_bytes` each. Default 16.
    #[serde(default = "default_max_concurrent_disputes")]
    pub max_concurrent_disputes: usize,
    /// Requests that may wait for the ledger's writer; beyond this the bank
    /// answers 503 with Retry-After.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Most requests decided in one group commit (one flush).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Timeouts and the connection cap (`[http]` table).
    #[serde(default)]
    pub http: acd_serve::HttpLimits,
}

/// The goods a dispute under the default body limit can carry.
pub const DISPUTE_GOODS_BYTES: usize = 1024 * 1024;

/// A bound, with margin, on a dispute's evidence besides the ciphertext:
/// the refund's blinded messages (at most 64 of at most 4096 bits, in hex:
/// 66 KB), the signed offer (a description of at most 1 KiB, JSON-escaped
/// to at most 6 KiB), the commit's entry, inclusion proof (at most 64
/// hashes, 4.3 KB) and checkpoint (at most 100 signature lines, about
/// 15 KB): about 94 KB in all.
pub const DISPUTE_EVIDENCE_BYTES: usize = 128 * 1024;

pub use acd_serve::database_owner::DatabaseUrl;

/// A log the bank trusts.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedLog {
    /// The log's signed-note verifier key, `<origin>+<id>+<base64>`.
    pub vkey: String,
    /// Where to reach it, e.g. `http://127.0.0.1:8700`.
    pub url: String,
}

impl std::str::FromStr for TrustedLog {
    type Err = String;
    /// The command-line form `<vkey>@<url>`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (vkey, url) = acd_core::note::split_vkey_url(s)
            .ok_or_else(|| format!("expected <vkey>@<http(s) url>, got {s:?}"))?;
        Ok(TrustedLog {
            vkey: vkey.to_owned(),
            url: url.to_owned(),
        })
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8800))
}
fn default_denominations() -> Vec<u64> {
    vec![1, 10, 100, 1000]
}
fn default_rsa_bits() -> usize {
    acd_core::token::DEFAULT_RSA_BITS
}
fn default_min_expiration_ms() -> u64 {
    1000
}
fn default_max_expiration_ms() -> u64 {
    86_400_000
}
fn default_sweep_interval_ms() -> u64 {
    1000
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_max_dispute_body() -> usize {
    // base64 of the ciphertext (goods and a 16-byte tag), then the rest.
    let ciphertext = (DISPUTE_GOODS_BYTES + 16).div_ceil(3) * 4;
    (ciphertext + DISPUTE_EVIDENCE_BYTES).next_multiple_of(512 * 1024)
}
fn default_max_concurrent_disputes() -> usize {
    16
}
fn default_queue() -> usize {
    65536
}
fn default_max_batch() -> usize {
    4096
}

impl BankConfig {
    /// A configuration with every default, for `data`.
    pub fn new(data: PathBuf) -> Self {
        BankConfig {
            data,
            database: None,
            listen: default_listen(),
            logs: Vec::new(),
            witnesses: Vec::new(),
            witness_threshold: 0,
            denominations: default_denominations(),
            rsa_bits: default_rsa_bits(),
            min_expiration_ms: default_min_expiration_ms(),
            max_expiration_ms: default_max_expiration_ms(),
            sweep_interval_ms: default_sweep_interval_ms(),
            max_body_bytes: default_max_body(),
            max_dispute_body_bytes: default_max_dispute_body(),
            max_concurrent_disputes: default_max_concurrent_disputes(),
            queue: default_queue(),
            max_batch: default_max_batch(),
            http: acd_serve::HttpLimits::default(),
        }
    }

    /// Parses a TOML configuration file's text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// What `acd-bank serve` runs with: the TOML file at `path` (or the
    /// defaults for `overrides.data`), then `overrides` over it.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut c = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                BankConfig::from_toml(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
            None => BankConfig::new(overrides.data.clone().ok_or(ConfigError::NoData)?),
        };
        overrides.apply(&mut c);
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The example configuration checked into the repository parses and sets every field.
    #[test]
    fn example_config_parses() {
        let c = BankConfig::from_toml(include_str!("../bank.example.toml")).unwrap();
        assert_eq!(c.logs.len(), 1);
        assert_eq!(c.denominations, vec![1, 10, 100, 1000]);
        assert_eq!(c.witness_threshold, 0);
        assert_eq!(c.max_dispute_body_bytes, 1536 * 1024);
        assert_eq!(c.max_dispute_body_bytes, default_max_dispute_body());
        assert_eq!(c.max_concurrent_disputes, 16);
        assert_eq!(c.http, acd_serve::HttpLimits::default());
    }

    // A misspelt field is an error, not silently ignored.
    #[test]
    fn unknown_fields_are_refused() {
        assert!(BankConfig::from_toml("data = 'x'\nrsa_bit = 2048\n").is_err());
    }

    // Flags override the file's settings, and a list of logs given replaces
    // the file's; without a file, the data directory is required.
    #[test]
    fn flags_override_the_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bank.example.toml");
        let overrides = Overrides {
            data: Some("/tmp/elsewhere".into()),
            logs: vec!["log.example+1234+AAAA@http://127.0.0.1:1".parse().unwrap()],
            min_expiration_ms: Some(5),
            ..Overrides::default()
        };
        let c = BankConfig::load(Some(Path::new(path)), overrides).unwrap();
        assert_eq!(c.data, PathBuf::from("/tmp/elsewhere"));
        assert_eq!((c.logs.len(), c.min_expiration_ms), (1, 5));
        assert_eq!(c.logs[0].url, "http://127.0.0.1:1");
        assert_eq!(c.denominations, vec![1, 10, 100, 1000]);
        assert!(matches!(
            BankConfig::load(None, Overrides::default()),
            Err(ConfigError::NoData)
        ));
        let c = BankConfig::load(
            None,
            Overrides {
                data: Some("/tmp/d".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c, BankConfig::new("/tmp/d".into()));
    }

    // Lists given as flags replace the file's whole lists (logs, witnesses);
    // lists not given keep the file's.
    #[test]
    fn flag_lists_replace_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        std::fs::write(
            &path,
            "data = \"/tmp/b\"\nwitnesses = [\"w1+00000000+AA\", \"w2+00000000+AA\"]\nwitness_threshold = 2\n",
        )
        .unwrap();
        let kept = BankConfig::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(kept.witnesses.len(), 2);
        let c = BankConfig::load(
            Some(&path),
            Overrides {
                witnesses: vec!["w3+00000000+AA".into()],
                witness_threshold: Some(1),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.witnesses, vec!["w3+00000000+AA".to_owned()]);
        assert_eq!(c.witness_threshold, 1);
    }

    // A database URL never shows its password, in Debug or Display.
    #[test]
    fn database_url_hides_its_password() {
        let u: DatabaseUrl = "postgres://bank:s3cret@db.example:5433/ledger?password=x2"
            .parse()
            .unwrap();
        assert_eq!(u.to_string(), "postgres://db.example:5433/ledger");
        let c =
            BankConfig::from_toml("data = 'x'\ndatabase = 'postgres://a:s3cret@h/d'\n").unwrap();
        let shown = format!("{c:?} {u:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("x2"),
            "{shown}"
        );
        assert_eq!(
            c.database.as_ref().map(DatabaseUrl::expose),
            Some("postgres://a:s3cret@h/d")
        );
        assert!("mysql://h/d".parse::<DatabaseUrl>().is_err());
    }

    // The flag form of a trusted log splits at the first '@'.
    #[test]
    fn trusted_log_flag_form() {
        let l: TrustedLog = "log.example+1234+AAAA@http://127.0.0.1:1".parse().unwrap();
        assert_eq!(l.vkey, "log.example+1234+AAAA");
        assert_eq!(l.url, "http://127.0.0.1:1");
        assert!("nourl".parse::<TrustedLog>().is_err());
    }
}
