//! Harness of the end-to-end tests: starts the real `acd-log` and
//! `acd-auditor` binaries on ephemeral loopback ports, each in its own data
//! directory, and signs the requests a merchant and a bank would send. The tests themselves are in
//! `tests/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acd_core::entry::{EscrowNotice, KeyCommit, Tid};
use acd_core::log_api::{AbortRequest, CommitRequest};
use ed25519_dalek::SigningKey;

/// The bank's public key for `data`, creating its keys (`acd-bank key`).
pub fn bank_key(data: &Path) -> [u8; 32] {
    let out = Command::new(binary("acd-bank"))
        .arg("key")
        .arg("--data")
        .arg(data)
        .output()
        .expect("acd-bank key runs");
    assert!(out.status.success(), "acd-bank key failed");
    let mut key = [0u8; 32];
    hex::decode_to_slice(String::from_utf8_lossy(&out.stdout).trim(), &mut key).expect("a hex key");
    key
}

/// The bank's admin token in `data`.
pub fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.token"))
        .expect("the bank wrote its admin token")
        .trim()
        .to_owned()
}

/// Runs `acd-auditor monitor --once` on `data` for one log; returns the
/// exit success and what it printed.
pub fn monitor_once(data: &Path, log_vkey: &str, log_url: &str) -> (bool, String) {
    let out = Command::new(binary("acd-auditor"))
        .args(["monitor", "--once", "--json", "--data"])
        .arg(data)
        .arg("--log")
        .arg(format!("{log_vkey}@{log_url}"))
        .env("RUST_LOG", "error")
        .output()
        .expect("the monitor runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `acd loadgen log`: appends `entries` fresh commits through the log at
/// `url`, `concurrency` requests in flight; panics with its output if it
/// fails.
pub fn loadgen_log(url: &str, entries: u64, concurrency: u64) {
    let out = Command::new(binary("acd"))
        .args(["loadgen", "log", "--url", url, "--entries"])
        .arg(entries.to_string())
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .env("RUST_LOG", "error")
        .output()
        .expect("acd loadgen runs");
    assert!(
        out.status.success(),
        "loadgen failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Path of a workspace binary, built (once per test process) so that a
/// stale binary is never tested: `cargo test -p acd-tests` alone does not
/// rebuild other packages' binaries.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "acd-log-server",
                "-p",
                "acd-auditor",
                "-p",
                "acd-bank",
                "-p",
                "acd",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the server binaries failed");
    });
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// How long a server may take to print its address and vkey.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process (`acd-log serve`, `acd-auditor witness`),
/// killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    pub url: String,
    pub vkey: String,
    pub data: PathBuf,
}

/// The log server's process.
pub type LogProcess = ServerProcess;

impl ServerProcess {
    /// Starts the log on `data` with `origin`, asking these witnesses
    /// (`<vkey>@<url>`) to cosign its checkpoints.
    pub fn start_witnessed(data: &Path, origin: &str, witnesses: &[String]) -> ServerProcess {
        Self::start_log(data, origin, &[], witnesses)
    }

    /// Starts the log on `data` with `origin`, trusting `banks` for aborts.
    pub fn start(data: &Path, origin: &str, banks: &[[u8; 32]]) -> ServerProcess {
        Self::start_log(data, origin, banks, &[])
    }

    /// Starts the log on `data` with `origin` and more flags (`extra`).
    pub fn start_log_with(data: &Path, origin: &str, extra: &[&str]) -> ServerProcess {
        let mut cmd = Command::new(binary("acd-log"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--origin", origin])
            .arg("--data")
            .arg(data)
            .args(extra);
        Self::spawn(cmd, data)
    }

    /// [`ServerProcess::start_log_with`] with these environment variables
    /// set for the server (such as the `AWS_*` settings of an S3 target).
    pub fn start_log_env(
        data: &Path,
        origin: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut cmd = Command::new(binary("acd-log"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--origin", origin])
            .arg("--data")
            .arg(data)
            .args(extra)
            .envs(env.iter().copied());
        Self::spawn(cmd, data)
    }

    /// Starts the log on `data` with `origin`, trusting `banks` for aborts
    /// and asking `witnesses` (`<vkey>@<url>`) to cosign.
    pub fn start_log(
        data: &Path,
        origin: &str,
        banks: &[[u8; 32]],
        witnesses: &[String],
    ) -> ServerProcess {
        Self::start_log_at(data, origin, banks, witnesses, "127.0.0.1:0")
    }

    /// [`ServerProcess::start_log`] listening on `listen` (to restart a log
    /// where its clients expect it).
    pub fn start_log_at(
        data: &Path,
        origin: &str,
        banks: &[[u8; 32]],
        witnesses: &[String],
        listen: &str,
    ) -> ServerProcess {
        let mut cmd = Command::new(binary("acd-log"));
        cmd.args(["serve", "--listen", listen, "--origin", origin, "--data"])
            .arg(data);
        for b in banks {
            cmd.arg("--trust-bank").arg(hex::encode(b));
        }
        for w in witnesses {
            cmd.arg("--witness").arg(w);
        }
        Self::spawn(cmd, data)
    }

    /// Starts the bank on `data`, listening on `listen` (`127.0.0.1:0` the
    /// first time; the same address to restart it where clients expect
    /// it), trusting the logs `<vkey>@<url>`. Denominations 1, 10, 100 and
    /// 1000; escrows may expire from 1 s ahead; the sweeper runs every
    /// 200 ms. `vkey` is the bank's key in hex.
    pub fn start_bank(data: &Path, listen: &str, logs: &[String]) -> ServerProcess {
        Self::start_bank_with(data, listen, logs, &[])
    }

    /// [`ServerProcess::start_bank`] with more flags (`extra`).
    pub fn start_bank_with(
        data: &Path,
        listen: &str,
        logs: &[String],
        extra: &[String],
    ) -> ServerProcess {
        let mut cmd = Command::new(binary("acd-bank"));
        cmd.args([
            "serve",
            "--listen",
            listen,
            "--denominations",
            "1,10,100,1000",
            "--min-expiration-ms",
            "1000",
            "--sweep-interval-ms",
            "200",
            "--data",
        ])
        .arg(data);
        for l in logs {
            cmd.arg("--log").arg(l);
        }
        cmd.args(extra);
        Self::spawn(cmd, data)
    }

    /// The listen address (`IP:PORT`) of a server, to restart it there.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Starts a witness named `name` on `data`, for the logs with these vkeys.
    pub fn start_witness(data: &Path, name: &str, log_vkeys: &[&str]) -> ServerProcess {
        Self::start_witness_at(data, name, log_vkeys, "127.0.0.1:0")
    }

    /// [`ServerProcess::start_witness`] listening on `listen` (to restart a
    /// witness where its logs expect it).
    pub fn start_witness_at(
        data: &Path,
        name: &str,
        log_vkeys: &[&str],
        listen: &str,
    ) -> ServerProcess {
        Self::start_witness_with(data, name, log_vkeys, listen, &[])
    }

    /// [`ServerProcess::start_witness_at`] with more flags (`extra`, such as
    /// `--key-type ed25519`; a new witness's key is ML-DSA-44 otherwise).
    pub fn start_witness_with(
        data: &Path,
        name: &str,
        log_vkeys: &[&str],
        listen: &str,
        extra: &[&str],
    ) -> ServerProcess {
        let mut cmd = Command::new(binary("acd-auditor"));
        cmd.args(["witness", "--listen", listen, "--name", name, "--data"])
            .arg(data)
            .args(extra);
        for v in log_vkeys {
            cmd.arg("--log").arg(v);
        }
        Self::spawn(cmd, data)
    }

    /// Starts `cmd`, a server on `data` that prints `listening on <url>`
    /// and `vkey <vkey>` (such as `acd merchant serve`).
    pub fn start_command(cmd: Command, data: &Path) -> ServerProcess {
        Self::spawn(cmd, data)
    }

    /// Spawns `cmd`, which prints `listening on <url>` and `vkey <vkey>`.
    /// Waits at most [`STARTUP_TIMEOUT`] for the two lines; afterwards a
    /// thread keeps draining stdout, so that a later print never meets a
    /// closed pipe.
    fn spawn(mut cmd: Command, data: &Path) -> ServerProcess {
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Once the two lines are read nobody listens; keep draining.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut next = |what: &str| match rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the server did not print its {what} line ({e:?}); exit: {status:?}");
            }
        };
        let url = next("address")
            .strip_prefix("listening on ")
            .expect("address line")
            .to_owned();
        let vkey = next("vkey")
            .strip_prefix("vkey ")
            .expect("vkey line")
            .to_owned();
        ServerProcess {
            child,
            url,
            vkey,
            data: data.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(mut self, within: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn fresh_tid() -> Tid {
    let mut t = [0u8; 16];
    rand::fill(&mut t);
    Tid(t)
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A merchant's signed key commit (P4).
pub fn commit(
    origin: &str,
    merchant: &SigningKey,
    tid: Tid,
    expiration_ms: u64,
    k: [u8; 32],
) -> CommitRequest {
    let kc = KeyCommit {
        log_origin: origin.to_owned(),
        tid,
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms,
        key: k,
    };
    CommitRequest {
        tid,
        merchant: kc.merchant,
        expiration_ms,
        key: k,
        signature: kc.sign(merchant),
    }
}

/// A bank's escrow notice, as an abort request.
pub fn abort(
    origin: &str,
    bank: &SigningKey,
    merchant: [u8; 32],
    tid: Tid,
    expiration_ms: u64,
) -> AbortRequest {
    let notice = EscrowNotice {
        log_origin: origin.to_owned(),
        tid,
        merchant,
        expiration_ms,
    };
    AbortRequest {
        tid,
        merchant,
        expiration_ms,
        bank: bank.verifying_key().to_bytes(),
        signature: notice.sign(bank),
    }
}

/// The denomination values [`ServerProcess::start_bank`] serves.
pub const BANK_DENOMINATIONS: [u64; 4] = [1, 10, 100, 1000];

/// Writes the RSA blind-signing keys of [`BANK_DENOMINATIONS`] into the
/// bank data directory `data` (as `acd-bank` would create them on its first
/// start), so that a new bank does not spend seconds generating them. The
/// keys are generated once per test process and shared by every bank it
/// starts; each bank still has its own ed25519 key and admin token. Files
/// that exist are left alone.
pub fn seed_bank_keys(data: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    static KEYS: OnceLock<Vec<(u64, Vec<u8>)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let threads: Vec<_> = BANK_DENOMINATIONS
            .iter()
            .map(|&v| {
                std::thread::spawn(move || {
                    let pair = acd_core::token::generate_key(
                        &mut rand::rng(),
                        acd_core::token::DEFAULT_RSA_BITS,
                    )
                    .expect("an RSA key");
                    (v, pair.sk.to_der().expect("DER of an RSA key"))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("key generation"))
            .collect()
    });
    std::fs::create_dir_all(data).expect("the bank's data directory");
    for (value, der) in keys {
        let path = data.join(format!("rsa-{value}.der"));
        if path.exists() {
            continue;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("a new key file");
        f.write_all(der).expect("the key is written");
        f.sync_all().expect("the key is synced");
    }
}

/// Every regular file under `dir` (recursively) whose raw bytes contain
/// `needle`: for checking what a server keeps on disk.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    fn walk(dir: &Path, needle: &[u8], out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&path, needle, out),
                Ok(t)
                    if t.is_file()
                        && std::fs::read(&path).is_ok_and(|bytes| contains(&bytes, needle)) =>
                {
                    out.push(path)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, needle, &mut out);
    out
}

/// Whether `needle` occurs in `haystack` (an empty needle always does).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A counter or gauge on `url`'s `/metrics` page (Prometheus text).
pub async fn metric(url: &str, name: &str) -> u64 {
    let page = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("the metrics page")
        .text()
        .await
        .expect("the metrics page's text");
    // Counters and gauges here are whole numbers.
    acd_serve::metrics::read(&page, name).unwrap_or_else(|| panic!("no {name} in\n{page}")) as u64
}

/// Polls `url`'s metric `name` until it reaches `at_least` (20 s at most).
pub async fn wait_for_metric(url: &str, name: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if metric(url, name).await >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The scratch PostgreSQL server of `scripts/services/postgres.sh`
/// (`ACD_TEST_POSTGRES_URL`, `ACD_TEST_PG_BIN`, `ACD_TEST_PG_DATA`).
pub struct Postgres {
    /// A superuser URL, database `postgres`.
    pub admin_url: String,
    pub bin: PathBuf,
    pub data: PathBuf,
}

impl Postgres {
    /// The server, or `None` after printing why the test is skipped; with
    /// `CI` set a missing server fails the test instead.
    pub fn from_env() -> Option<Postgres> {
        let vars = [
            "ACD_TEST_POSTGRES_URL",
            "ACD_TEST_PG_BIN",
            "ACD_TEST_PG_DATA",
        ]
        .map(|v| std::env::var(v).ok());
        let [Some(admin_url), Some(bin), Some(data)] = vars else {
            assert!(
                std::env::var_os("CI").is_none(),
                "ACD_TEST_POSTGRES_URL, ACD_TEST_PG_BIN and ACD_TEST_PG_DATA are not set \
                 (scripts/services/postgres.sh starts a server)"
            );
            eprintln!("skipped: no PostgreSQL to test on (ACD_TEST_POSTGRES_URL is not set)");
            return None;
        };
        Some(Postgres {
            admin_url,
            bin: bin.into(),
            data: data.into(),
        })
    }

    /// Runs `psql` on `url` with `sql`; its output.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new, empty database; its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("acd_e2e_{}_{n}_{}", std::process::id(), now_ms());
        self.psql(&self.admin_url, &format!("CREATE DATABASE {name}"));
        let (base, _) = self
            .admin_url
            .rsplit_once('/')
            .expect("a URL with a database");
        format!("{base}/{name}")
    }

    /// `pg_ctl` as the server's owner (PostgreSQL refuses to run as root).
    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let status = cmd
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    /// `pg_ctl -m immediate stop`: the server stops at once, as in a power
    /// cut (recovery replays its WAL at the next start).
    pub fn stop_immediately(&self) -> Vec<String> {
        // The options it was started with, to start it again the same way.
        let opts =
            std::fs::read_to_string(self.data.join("postmaster.opts")).expect("postmaster.opts");
        let mut args: Vec<String> = opts
            .split_whitespace()
            .skip(1)
            .map(|a| a.trim_matches('"').to_owned())
            .collect();
        if let Some(i) = args.iter().position(|a| a == "-D") {
            args.drain(i..(i + 2).min(args.len()));
        }
        self.pg_ctl(&["-m", "immediate", "stop"]);
        args
    }

    /// Starts the server again with the options [`Postgres::stop_immediately`] returned.
    pub fn start(&self, options: &[String]) {
        let log = self.data.with_file_name("server.log");
        let log = log.to_string_lossy().into_owned();
        let options = options.join(" ");
        self.pg_ctl(&["-w", "-t", "60", "-l", &log, "-o", &options, "start"]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The value of `var`, set by scripts/test.sh to a server (or browser) it
/// installed and started. Unset: the test fails when CI is set, and is
/// skipped (with a line saying so) otherwise.
pub fn outside(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{var} is not set (scripts/test.sh starts the server); CI is set, so this fails"
            );
            println!("skipped: {var} is not set (scripts/test.sh starts the server)");
            None
        }
    }
}

/// A free loopback port (bound and let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// nginx serving `root` as static files on a free loopback port, with the
/// cache headers the README recommends and the types the explorer's files
/// need (a module script must come as JavaScript); killed when dropped.
pub struct Nginx {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(bin: &str, root: &Path) -> Nginx {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let d = dir.path().display();
        let port = free_port();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # the explorer's files; tiles, bundles and the rest are bytes
    types {{
        text/html html;
        text/javascript js;
        text/css css;
        application/wasm wasm;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /checkpoint {{
            default_type "text/plain; charset=utf-8";
            add_header Cache-Control "no-cache";
        }}
        location ~ "^/tile/.*\.p/[0-9]+$" {{
            add_header Cache-Control "public, max-age=60";
        }}
        location /tile/ {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"#,
            root = root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf written");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
