//! The auditor's configuration file (`--config FILE`, TOML), shared by the
//! witness and the monitor; command-line flags add to it. One struct whose
//! field docs are the operator's manual; `auditor/auditor.example.toml` is
//! the checked-in example.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Default milliseconds between two pulls of every peer.
pub const DEFAULT_GOSSIP_INTERVAL_MS: u64 = 10_000;

/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Everything in the auditor's configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URLs of peers (other monitors or witnesses) whose
    /// `/gossip/v1/checkpoints` is pulled, to catch a log that shows
    /// different histories to different parties (`--peer` adds to these).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Milliseconds between two pulls of every peer (default 10000;
    /// `--gossip-interval-ms` overrides it).
    #[serde(default)]
    pub gossip_interval_ms: Option<u64>,
    /// Witness only: a file whose first line is the token that
    /// `POST /admin/clear?origin=ORIGIN` must bear (`Authorization: Bearer
    /// TOKEN`), at least 16 characters. Without it the endpoint is
    /// disabled; `acd-auditor witness clear` works on a stopped witness
    /// either way. `--admin-token-file` overrides it.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// Witness only: the type of a new witness's key, `"ml-dsa-44"` (the
    /// default, as tlog-cosignature recommends for new deployments) or
    /// `"ed25519"`; an existing witness keeps its key's type and refuses
    /// another (`--key-type` overrides it).
    #[serde(default)]
    pub key_type: Option<acd_core::cosignature::CosignatureKind>,
    /// Timeouts and the connection cap of the witness's or the monitor's
    /// HTTP server (`[http]` table; `--http-*` flags override it).
    #[serde(default)]
    pub http: acd_serve::HttpLimits,
}

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("the admin token in {0} is shorter than 16 characters")]
    ShortToken(PathBuf),
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Config {
    /// Parses a configuration file's text.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_toml(&read(path)?).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The time between two pulls of every peer.
    pub fn gossip_interval(&self) -> Duration {
        Duration::from_millis(
            self.gossip_interval_ms
                .unwrap_or(DEFAULT_GOSSIP_INTERVAL_MS),
        )
    }

    /// The admin token from [`Config::admin_token_file`], if one is set.
    pub fn admin_token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(None);
        };
        let text = read(path)?;
        let token = text.lines().next().unwrap_or_default().trim().to_owned();
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(ConfigError::ShortToken(path.clone()));
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The checked-in example configuration parses, and unknown fields are refused.
    #[test]
    fn example_config_parses() {
        let c = Config::from_toml(include_str!("../auditor.example.toml")).unwrap();
        assert!(c.peers.is_empty());
        assert_eq!(c.gossip_interval_ms, Some(10_000));
        assert_eq!(c.admin_token_file, None);
        assert!(Config::from_toml("peer = []\n").is_err());
    }

    // The admin token is the file's first line, and a short one is refused.
    #[test]
    fn admin_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let mut c = Config {
            admin_token_file: Some(path.clone()),
            ..Config::default()
        };
        std::fs::write(&path, "0123456789abcdef\nignored\n").unwrap();
        assert_eq!(
            c.admin_token().unwrap().as_deref(),
            Some("0123456789abcdef")
        );
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(c.admin_token(), Err(ConfigError::ShortToken(_))));
        c.admin_token_file = None;
        assert_eq!(c.admin_token().unwrap(), None);
    }
}
