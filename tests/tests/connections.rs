//! What a client may hold of a real server process: half-open requests,
//! idle keep-alive connections, bodies that never finish and bodies over
//! a route's limit (issue 10, "Connections and bodies"). Timeouts are set
//! small through the `--http-*` flags.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use acd_tests::{ServerProcess, seed_bank_keys};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ORIGIN: &str = "conn.example/log";

/// Descriptors this test process needs: `n` sockets and some to spare.
/// Without them the test fails under CI and is skipped elsewhere.
fn enough_descriptors(n: u64) -> bool {
    let limit = acd_serve::limits::raise_fd_limit();
    if limit >= n + 256 {
        return true;
    }
    let why = format!("the descriptor limit is {limit}; {n} sockets need more");
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}

fn addr(server: &ServerProcess) -> String {
    server.addr()
}

async fn connect(server: &ServerProcess) -> TcpStream {
    TcpStream::connect(addr(server)).await.expect("connects")
}

/// Waits up to `within` for the server to close `s`; whether it did.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Reads one answer's head and as much of its body as arrives at once.
async fn answer(s: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while !String::from_utf8_lossy(&out).contains("\r\n\r\n{") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    // The rest of a short JSON body follows in the same segment or soon.
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long a fresh `GET /checkpoint` takes to answer 200.
async fn checkpoint_time(server: &ServerProcess) -> Duration {
    let client = acd_client::http_client_with(Duration::from_secs(10));
    let started = Instant::now();
    let r = client
        .get(format!("{}/checkpoint", server.url))
        .send()
        .await
        .expect("the checkpoint answers");
    assert_eq!(r.status(), 200);
    started.elapsed()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

// 3,000 half-open requests do not lock the log out: a fresh /checkpoint
// answers within 2 s while they are open, and after the header-read
// timeout the server has closed every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_requests_do_not_lock_the_log_out() {
    const N: usize = 3000;
    if !enough_descriptors(N as u64) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start_log_with(
        dir.path(),
        ORIGIN,
        &["--http-header-read-timeout-ms", "3000"],
    );
    let mut half_open = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = connect(&log).await;
        s.write_all(b"GET /checkpoint HTTP/1.1\r\nhost: x\r\nuser-agent: sl")
            .await
            .unwrap();
        half_open.push(s);
    }
    let took = checkpoint_time(&log).await;
    eprintln!("/checkpoint beside {N} half-open requests: {took:?}");
    assert!(took < Duration::from_secs(2), "/checkpoint took {took:?}");
    let started = Instant::now();
    let mut open = 0;
    for s in &mut half_open {
        let left = Duration::from_secs(15).saturating_sub(started.elapsed());
        if !closed_within(s, left).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "half-open requests still open after the timeout");
    let took = checkpoint_time(&log).await;
    assert!(took < Duration::from_secs(2), "/checkpoint took {took:?}");
}

// With the connection cap far below the flood, new clients still get in:
// each new connection evicts the oldest half-open one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_half_open_requests_make_room() {
    const N: usize = 400;
    if !enough_descriptors(N as u64) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start_log_with(
        dir.path(),
        ORIGIN,
        &[
            "--http-max-connections",
            "100",
            "--http-header-read-timeout-ms",
            "60000",
        ],
    );
    let mut half_open = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = connect(&log).await;
        s.write_all(b"GET /checkpoint HTTP/1.1\r\nhost")
            .await
            .unwrap();
        half_open.push(s);
    }
    let took = checkpoint_time(&log).await;
    assert!(took < Duration::from_secs(2), "/checkpoint took {took:?}");
    // The oldest ones were evicted long before their header timeout.
    assert!(closed_within(&mut half_open[0], Duration::from_secs(5)).await);
}

// An idle keep-alive connection is closed after the idle timeout, and not
// by the (shorter) header-read timeout.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start_log_with(
        dir.path(),
        ORIGIN,
        &[
            "--http-header-read-timeout-ms",
            "500",
            "--http-idle-timeout-ms",
            "2000",
        ],
    );
    let mut s = connect(&log).await;
    s.write_all(b"GET /checkpoint HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        !closed_within(&mut s, Duration::from_millis(1000)).await,
        "closed by the header timeout"
    );
    assert!(closed_within(&mut s, Duration::from_secs(10)).await);
}

// A declared Content-Length over the route's limit is answered 413 with
// the JSON error at once, without a byte of the body sent.
#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start_log_with(dir.path(), ORIGIN, &[]);
    let mut s = connect(&log).await;
    s.write_all(
        b"POST /api/v1/commit HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n",
    )
    .await
    .unwrap();
    let a = answer(&mut s, Duration::from_secs(2)).await;
    assert!(a.starts_with("HTTP/1.1 413"), "{a}");
    assert!(a.contains("\"too_large\""), "{a}");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
}

// Sixty 16 MB dispute bodies are refused at once (the dispute's limit is
// what a dispute needs, 1.5 MiB) and the bank's memory stays small; a
// chunked dispute body is cut off at the limit; a body that stops half
// way is answered 408 after the body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispute_bodies_cannot_fill_the_banks_memory() {
    let dir = tempfile::tempdir().unwrap();
    seed_bank_keys(dir.path());
    let bank = ServerProcess::start_bank_with(
        dir.path(),
        "127.0.0.1:0",
        &[],
        &["--http-body-timeout-ms".into(), "1000".into()],
    );
    let before = rss_kib(bank.pid());
    let chunk = vec![b' '; 1 << 20];
    let mut refused = 0;
    for _ in 0..60 {
        let mut s = connect(&bank).await;
        s.write_all(
            b"POST /api/v1/dispute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 16777216\r\n\r\n",
        )
        .await
        .unwrap();
        // Send all but the last MiB of the body, as long as the bank reads.
        for _ in 0..15 {
            let sent = tokio::time::timeout(Duration::from_secs(2), s.write_all(&chunk)).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
        let a = answer(&mut s, Duration::from_secs(2)).await;
        if a.starts_with("HTTP/1.1 413") && a.contains("too_large") {
            refused += 1;
        }
    }
    let after = rss_kib(bank.pid());
    eprintln!("bank RSS before {before} KiB, after 60 disputes of 16 MB {after} KiB");
    assert_eq!(refused, 60);
    assert!(
        after < 300 * 1024,
        "the bank grew from {before} KiB to {after} KiB"
    );

    // Chunked: 2 MiB, over the limit, refused once the limit is passed.
    let mut s = connect(&bank).await;
    s.write_all(
        b"POST /api/v1/dispute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let _ = s.write_all(b"100000\r\n").await;
        let _ = s.write_all(&chunk).await;
        let _ = s.write_all(b"\r\n").await;
    }
    let a = answer(&mut s, Duration::from_secs(5)).await;
    assert!(a.starts_with("HTTP/1.1 413"), "{a}");

    // A body that stops half way: 408 after the body timeout, then closed.
    let mut s = connect(&bank).await;
    s.write_all(
        b"POST /api/v1/dispute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"refund\"",
    )
    .await
    .unwrap();
    let a = answer(&mut s, Duration::from_secs(10)).await;
    assert!(a.starts_with("HTTP/1.1 408"), "{a}");
    assert!(a.contains("\"body_timeout\""), "{a}");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
}
