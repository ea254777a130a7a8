//! What a client may hold of a server: [`HttpLimits`], the `[http]` table
//! of every server's configuration file, and [`HttpFlags`], the `--http-*`
//! flags that override it. [`raise_fd_limit`] lifts the soft descriptor
//! limit to the hard one, as Go servers do at start, so that the default
//! connection cap can sit below a limit worth having.

use std::time::Duration;

use serde::Deserialize;

/// Timeouts and the connection cap of one HTTP server. Every field has a
/// default; an `[http]` table names only what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Milliseconds a client has to send a whole request head (request
    /// line and headers), counted from the connection's accept or from the
    /// first byte of a later request. Then the connection is closed: a
    /// half-open request holds a descriptor no longer. Default 10000.
    pub header_read_timeout_ms: u64,
    /// Milliseconds from a request's head to the last byte of its body.
    /// Past it the request is answered `408 body_timeout` and the
    /// connection closed. The handler's own work after the body has
    /// arrived is not cut. Default 30000.
    pub body_timeout_ms: u64,
    /// Milliseconds a keep-alive connection may wait for its next request
    /// (or for the client to read an answer) before it is closed.
    /// Default 60000; the project's HTTP client drops pooled connections
    /// sooner (30 s), so it never reuses one the server is closing.
    pub idle_timeout_ms: u64,
    /// Most connections open at once. At the cap, a new connection evicts
    /// the oldest one that has no request in progress (idle or still
    /// sending its head); if every one is busy, the new one is closed at
    /// once. Default: the descriptor limit (raised to the hard limit at
    /// start) less an eighth of it, and at least 128, kept for the
    /// database, logs and outgoing connections.
    pub max_connections: Option<usize>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: None,
        }
    }
}

impl HttpLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The connection cap in force under a descriptor limit of `fd_limit`.
    pub fn connection_cap(&self, fd_limit: u64) -> usize {
        self.max_connections
            .unwrap_or_else(|| default_max_connections(fd_limit))
            .max(1)
    }
}

/// The default cap: below the descriptor limit by an eighth of it (at
/// least 128), so that a full house of clients never starves the database
/// or the outgoing HTTP client of descriptors.
pub fn default_max_connections(fd_limit: u64) -> usize {
    let reserve = (fd_limit / 8).max(128);
    usize::try_from(fd_limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(16)
}

/// The `--http-*` flags of every server; each one given replaces the
/// configuration file's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct HttpFlags {
    /// Milliseconds to send a request head before the connection is closed.
    #[arg(long = "http-header-read-timeout-ms")]
    pub header_read_timeout_ms: Option<u64>,
    /// Milliseconds from a request head to the end of its body (then 408).
    #[arg(long = "http-body-timeout-ms")]
    pub body_timeout_ms: Option<u64>,
    /// Milliseconds an idle keep-alive connection is kept open.
    #[arg(long = "http-idle-timeout-ms")]
    pub idle_timeout_ms: Option<u64>,
    /// Most connections open at once.
    #[arg(long = "http-max-connections")]
    pub max_connections: Option<usize>,
}

impl HttpFlags {
    /// Applies the flags given to `limits`.
    pub fn apply(&self, limits: &mut HttpLimits) {
        if let Some(v) = self.header_read_timeout_ms {
            limits.header_read_timeout_ms = v;
        }
        if let Some(v) = self.body_timeout_ms {
            limits.body_timeout_ms = v;
        }
        if let Some(v) = self.idle_timeout_ms {
            limits.idle_timeout_ms = v;
        }
        if let Some(v) = self.max_connections {
            limits.max_connections = Some(v);
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the limit
/// now in force (1024, the usual soft default, if it cannot be read).
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An `[http]` table sets what it names and keeps every other default;
    // a misspelt key is refused; flags override the file.
    #[test]
    fn table_defaults_and_flags() {
        let l: HttpLimits = toml::from_str("idle_timeout_ms = 5").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            l,
            HttpLimits {
                idle_timeout_ms: 5,
                ..HttpLimits::default()
            }
        );
        assert!(toml::from_str::<HttpLimits>("idle_timeout = 5").is_err());
        let mut l = HttpLimits::default();
        HttpFlags {
            header_read_timeout_ms: Some(7),
            max_connections: Some(9),
            ..HttpFlags::default()
        }
        .apply(&mut l);
        assert_eq!(l.header_read_timeout(), Duration::from_millis(7));
        assert_eq!(l.body_timeout_ms, 30_000);
        assert_eq!(l.connection_cap(1024), 9);
    }

    // The default cap stays below the descriptor limit with room to spare.
    #[test]
    fn default_cap_is_below_the_descriptor_limit() {
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(20_000), 17_500);
        assert_eq!(default_max_connections(100), 16);
        assert!(raise_fd_limit() >= 16);
    }
}
