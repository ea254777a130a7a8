//! HTTP clients of the three servers, shared by the wallet, the merchant,
//! the bank (which reads logs) and the command line.
//!
//! - [`log`]: the log's API; every entry it returns is verified against a
//!   checkpoint signed by the log's key.
//! - [`bank`]: the bank's API.
//! - [`merchant`]: a merchant's shop.
//! - [`error`]: the one error type, with the server's JSON error body.
//! - [`retry`]: repeating idempotent requests after transient failures.

pub mod bank;
pub mod error;
pub mod log;
pub mod merchant;
pub mod retry;

pub use error::ClientError;
pub use retry::RetryPolicy;

use std::time::Duration;

/// How long a request may take, end to end, before it fails: long enough
/// for a dispute's upload or a bank under load, short enough that a peer
/// that accepted the connection and went silent does not hang a wallet;
/// every request the clients make can be repeated.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an unused pooled connection is kept: shorter than the servers'
/// idle timeout (60 s by default), so that the client never sends a request
/// down a connection the server is closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client the `new` constructors use: [`REQUEST_TIMEOUT`] and
/// [`CONNECT_TIMEOUT`].
pub fn http_client() -> reqwest::Client {
    http_client_with(REQUEST_TIMEOUT)
}

/// An HTTP client whose requests fail after `timeout`.
pub fn http_client_with(timeout: Duration) -> reqwest::Client {
    http_client_builder(timeout)
        .build()
        // Building fails only if the TLS backend cannot start, which
        // `Client::new` reports the same way; there is no client without it.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The builder behind [`http_client_with`], for a caller that tunes more
/// (a load generator's connection pool): the timeouts are already set.
pub fn http_client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A server that accepts the connection and never answers: the request
    // fails when its time is up instead of hanging.
    #[tokio::test]
    async fn a_silent_server_times_out() {
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            panic!("bind");
        };
        let Ok(addr) = listener.local_addr() else {
            panic!("addr");
        };
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let client = bank::BankClient::with_http(
            http_client_with(Duration::from_millis(300)),
            &format!("http://{addr}"),
        );
        let started = std::time::Instant::now();
        let result = client.info().await;
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
        silent.abort();
    }

    /// A server answering every request with `answer` (a whole HTTP/1.1
    /// response), once per connection.
    async fn answering(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            panic!("bind");
        };
        let Ok(addr) = listener.local_addr() else {
            panic!("addr");
        };
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    // The common mistakes read as what to do: a URL without a scheme, a
    // server that is not running, a server that is not an acd bank or
    // merchant (a web server's page, another acd server's "no_route").
    #[tokio::test]
    async fn mistakes_are_named() {
        let e = bank::BankClient::new("127.0.0.1:1").info().await.err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("give it as http://HOST:PORT"), "{text}");

        let e = bank::BankClient::new("http://127.0.0.1:1")
            .info()
            .await
            .err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("cannot connect to http://127.0.0.1:1")
                && text.contains("is the bank running at http://127.0.0.1:1?"),
            "{text}"
        );
        let e = merchant::MerchantClient::new("http://127.0.0.1:1")
            .catalog()
            .await
            .err();
        assert!(e.as_ref().is_some_and(ClientError::is_transient));
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("is the merchant running at http://127.0.0.1:1?"),
            "{text}"
        );

        let web = answering(
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: 9\r\nconnection: close\r\n\r\n<h1>?</h1",
        )
        .await;
        let e = bank::BankClient::new(&web).info().await.err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains(&format!("{web} is not an acd bank")),
            "{text}"
        );

        let other = answering(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 49\r\nconnection: close\r\n\r\n{\"error\":\"no_route\",\"message\":\"no such endpoint\"}",
        )
        .await;
        let e = merchant::MerchantClient::new(&other).catalog().await.err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains(&format!("{other} is not an acd merchant")),
            "{text}"
        );

        // The log: not running, or a web server that is no log.
        let e = log::LogClient::fetch_vkey("http://127.0.0.1:1").await.err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("is the log running at http://127.0.0.1:1?"),
            "{text}"
        );
        let web = answering(
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: 9\r\nconnection: close\r\n\r\n<h1>?</h1",
        )
        .await;
        let e = log::LogClient::fetch_vkey(&web).await.err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains(&format!("{web} is not an acd log")), "{text}");
        let page = answering(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 9\r\nconnection: close\r\n\r\n<h1>!</h1",
        )
        .await;
        let e = log::LogClient::fetch_vkey(&page).await.err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains(&format!("{page} is not an acd log")),
            "{text}"
        );
    }
}
