//! What operators run the servers with, on every server binary (log, bank,
//! witness, monitor, merchant) as a real process: `--version` names the
//! commit; `GET /healthz` and `GET /readyz` answer, `/readyz` 503 naming a
//! configured peer that is down; the bank's `/metrics` is open and shows no
//! sums, which `/admin/v1/metrics` shows to the admin only; one request
//! line per request and an audit line per credit, in JSON with
//! `--log-format json`, with no token in them; SIGTERM exits 0; a monitor
//! watching a quiet log says so once.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acd_core::bank_api::{AccountKind, CreateAccount, Credit};
use acd_tests::{ServerProcess, admin_token, bank_key, binary, seed_bank_keys};
use serde_json::Value;

const ORIGIN: &str = "operations.test/log";

/// A server whose stdout lines come through a channel and whose stderr
/// goes to a file.
struct Running {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Running {
    fn start(mut cmd: Command, stderr: &Path, rust_log: &str) -> Running {
        let mut child = cmd
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no address line ({e}): {}", read(stderr)));
        let url = first.strip_prefix("listening on ").unwrap().to_owned();
        Running {
            child,
            url,
            lines,
            stderr: stderr.to_owned(),
        }
    }

    /// SIGTERM; the exit code.
    fn terminate(mut self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("did not stop on SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn status_and_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `/healthz` answers; `/readyz` answers 200 with every check passed.
async fn healthy_and_ready(url: &str) {
    let (status, body) = status_and_json(&format!("{url}/healthz")).await;
    assert_eq!((status, &body["alive"]), (200, &Value::Bool(true)), "{url}");
    let (status, body) = status_and_json(&format!("{url}/readyz")).await;
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(body["ready"], true);
    assert!(
        body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "storage" && c["ok"] == true),
        "{body}"
    );
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// Every binary's --version names the commit it was built from.
#[test]
fn every_binary_names_its_commit() {
    for bin in ["acd-log", "acd-bank", "acd-auditor", "acd"] {
        let out = Command::new(binary(bin)).arg("--version").output().unwrap();
        assert!(out.status.success(), "{bin}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("(commit "), "{bin}: {text}");
        assert!(!text.contains("(commit )"), "{bin}: {text}");
    }
}

// The log, the bank, a witness, a monitor and a merchant: healthy and
// ready while what they need is up; the bank's and merchant's readiness
// fail, naming the log, while it is down, and come back with it; the
// bank's metrics are open without the sums; request and audit lines in
// JSON carry no token; every one exits 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_logs_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let bank_data = p.join("bank");
    seed_bank_keys(&bank_data);
    let key = bank_key(&bank_data);
    let mut log = Some(blocking(|| {
        ServerProcess::start(&p.join("log"), ORIGIN, &[key])
    }));
    let (log_url, log_vkey) = {
        let l = log.as_ref().unwrap();
        (l.url.clone(), l.vkey.clone())
    };
    let log_addr = log.as_ref().unwrap().addr();
    let spec = format!("{log_vkey}@{log_url}");

    let mut bank_cmd = Command::new(binary("acd-bank"));
    bank_cmd
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--denominations", "1,10,100,1000", "--log", &spec, "--data"])
        .arg(&bank_data);
    let bank = blocking(|| Running::start(bank_cmd, &p.join("bank.err"), "info"));
    let token = admin_token(&bank_data);

    let mut witness_cmd = Command::new(binary("acd-auditor"));
    witness_cmd
        .args([
            "--log-format",
            "json",
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "operations.test/w",
        ])
        .args(["--log", &log_vkey, "--data"])
        .arg(p.join("witness"));
    let witness = blocking(|| Running::start(witness_cmd, &p.join("witness.err"), "info"));

    let mut monitor_cmd = Command::new(binary("acd-auditor"));
    monitor_cmd
        .args(["monitor", "--listen", "127.0.0.1:0", "--interval-ms", "100"])
        .args(["--log", &spec, "--data"])
        .arg(p.join("monitor"));
    let monitor = blocking(|| Running::start(monitor_cmd, &p.join("monitor.err"), "info"));

    std::fs::write(p.join("goods.txt"), "goods").unwrap();
    std::fs::write(
        p.join("catalog.toml"),
        "[[items]]\nid = \"a\"\ndescription = \"A\"\nprice = 10\nfile = \"goods.txt\"\n",
    )
    .unwrap();
    let mut merchant_cmd = Command::new(binary("acd"));
    merchant_cmd
        .args([
            "merchant",
            "serve",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--bank",
            &bank.url,
        ])
        .args(["--log", &spec, "--catalog"])
        .arg(p.join("catalog.toml"))
        .arg("--data")
        .arg(p.join("shop"));
    let merchant = blocking(|| Running::start(merchant_cmd, &p.join("shop.err"), "info"));

    for url in [
        &log_url,
        &bank.url,
        &witness.url,
        &monitor.url,
        &merchant.url,
    ] {
        healthy_and_ready(url).await;
    }

    // Metrics: open, with the build; the sums only for the admin.
    let page = reqwest::get(format!("{}/metrics", bank.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("acd_bank_build_info{"), "{page}");
    assert!(!page.contains("acd_bank_credited"), "{page}");
    let http = reqwest::Client::new();
    let admin_page = http
        .get(format!("{}/admin/v1/metrics", bank.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(admin_page.contains("acd_bank_credited"), "{admin_page}");
    for url in [&log_url, &witness.url, &monitor.url, &merchant.url] {
        let page = reqwest::get(format!("{url}/metrics")).await.unwrap();
        assert_eq!(page.status(), 200, "{url}");
        assert!(page.text().await.unwrap().contains("_build_info{"), "{url}");
    }

    // A credit: an audit line with its request id, and request lines.
    let admin = acd_client::bank::BankClient::new(&bank.url).with_admin_token(&token);
    let account = acd_tests::key(0x31).verifying_key().to_bytes();
    admin
        .create_account(&CreateAccount {
            key: account,
            kind: AccountKind::Customer,
        })
        .await
        .unwrap();
    let credit = Credit::new(&mut rand::rng(), account, 7);
    admin.credit(&credit).await.unwrap();
    let refused = http
        .post(format!("{}/admin/v1/credit", bank.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"nonsense": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // The log down: the bank and the merchant are alive but not ready,
    // naming it; back up, ready again.
    log.take().unwrap().kill();
    for url in [&bank.url, &merchant.url] {
        let (status, body) = status_and_json(&format!("{url}/healthz")).await;
        assert_eq!((status, &body["alive"]), (200, &Value::Bool(true)));
        let (status, body) = status_and_json(&format!("{url}/readyz")).await;
        assert_eq!(status, 503, "{url}: {body}");
        assert_eq!(body["error"], "not_ready");
        assert!(
            body["message"].as_str().unwrap().contains(&log_url),
            "{body}"
        );
    }
    let log_again =
        blocking(|| ServerProcess::start_log_at(&p.join("log"), ORIGIN, &[key], &[], &log_addr));
    for url in [&bank.url, &merchant.url] {
        healthy_and_ready(url).await;
    }

    // A quiet log: the monitor said it once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reports: Vec<String> = monitor.lines.try_iter().collect();
    assert_eq!(
        reports
            .iter()
            .filter(|l| l.contains("verified size"))
            .count(),
        1,
        "{reports:?}"
    );

    // SIGTERM: 0 everywhere.
    let bank_err = bank.stderr.clone();
    for (name, server) in [
        ("bank", bank),
        ("witness", witness),
        ("monitor", monitor),
        ("merchant", merchant),
    ] {
        assert_eq!(blocking(|| server.terminate()), Some(0), "{name}");
    }
    assert_eq!(
        blocking(|| log_again.terminate(Duration::from_secs(15))).and_then(|s| s.code()),
        Some(0),
        "log"
    );

    // The witness's and the merchant's log lines are JSON too, with a
    // request line for each request (here /healthz, /readyz, /metrics).
    for (name, file) in [("witness", "witness.err"), ("merchant", "shop.err")] {
        let text = read(&p.join(file));
        let lines: Vec<Value> = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {l}"))
            })
            .collect();
        assert!(
            lines.iter().any(|l| l["target"] == "acd_serve::request"
                && l["route"] == "/metrics"
                && l["method"] == "GET"
                && l["status"] == 200),
            "{name}: {lines:?}"
        );
    }

    // The bank's log lines: JSON, the credit audited with its request id,
    // one line per request with the route template, no token anywhere.
    let text = read(&bank_err);
    assert!(!text.contains(&token), "the admin token is in the log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let audit: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "acd_bank::audit")
        .collect();
    assert!(
        audit.iter().any(|l| l["action"] == "credit"
            && l["request_id"] == hex::encode(credit.request_id)
            && l["amount"] == 7
            && l["outcome"] == "accepted"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l["action"] == "create_account" && l["outcome"] == "accepted"),
        "{audit:?}"
    );
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "acd_serve::request")
        .collect();
    assert!(
        requests
            .iter()
            .any(|l| l["route"] == "/admin/v1/credit" && l["status"] == 200),
        "{requests:?}"
    );
    // Every request line has its method and its latency in milliseconds.
    assert!(
        requests.iter().all(|l| l["method"].is_string()
            && l["ms"]
                .as_str()
                .and_then(|ms| ms.parse::<f64>().ok())
                .is_some_and(|ms| ms >= 0.0)),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l["method"] == "POST" && l["route"] == "/admin/v1/credit"),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|l| l["route"] == "/admin/v1/credit"
            && l["status"] == 400
            && l["code"] == "bad_json"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l["route"] == "/admin/v1/accounts/{key}" || l["route"] == "/admin/v1/accounts"),
        "{requests:?}"
    );
}

// A monitor stopped by SIGTERM in the middle of its first catch-up exits
// 0, not 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_stopped_while_catching_up_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = blocking(|| ServerProcess::start(&dir.path().join("log"), ORIGIN, &[]));
    let status = Command::new(binary("acd"))
        .args(["loadgen", "log", "--url", &log.url, "--entries", "3000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut cmd = Command::new(binary("acd-auditor"));
    cmd.args(["monitor", "--listen", "127.0.0.1:0"])
        .args(["--log", &format!("{}@{}", log.vkey, log.url), "--data"])
        .arg(dir.path().join("monitor"));
    let monitor = blocking(|| Running::start(cmd, &dir.path().join("monitor.err"), "warn"));
    assert_eq!(blocking(|| monitor.terminate()), Some(0));
}

#[test]
fn the_bank_prints_a_denominations_key_in_both_pem_encodings() {
    // `acd-bank key --denomination V` prints the RFC 9474 SPKI the bank
    // publishes (its DER is what the denomination's id hashes);
    // `--rsa-encryption` the same modulus as a plain RSA key, which OpenSSL
    // loads as one. An absent denomination is an error naming its file,
    // and nothing is created.
    use acd_core::token::{BlindSecretKey, Denomination, denomination_id};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank");
    seed_bank_keys(&data);
    let key = |extra: &[&str]| {
        let out = Command::new(binary("acd-bank"))
            .arg("key")
            .arg("--data")
            .arg(&data)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let der = std::fs::read(data.join("rsa-10.der")).unwrap();
    let public = BlindSecretKey::from_der(&der)
        .unwrap()
        .public_key()
        .unwrap();
    let published = Denomination::new(10, public).unwrap();

    let (ok, pss, err) = key(&["--denomination", "10"]);
    assert!(ok, "{err}");
    assert!(pss.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pss}");
    // The PEM holds the published bytes themselves (OpenSSL would
    // re-encode the hash identifiers with NULL parameters: ids hash these).
    let body: String = pss.lines().filter(|l| !l.starts_with("-----")).collect();
    let pss_der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap();
    assert_eq!(pss_der, published.spki());
    assert_eq!(denomination_id(10, &pss_der), published.id());
    let pss_key = openssl::pkey::PKey::public_key_from_pem(pss.as_bytes()).unwrap();
    assert_eq!(pss_key.id(), openssl::pkey::Id::RSA_PSS);

    let (ok, rsa, err) = key(&["--denomination", "10", "--rsa-encryption"]);
    assert!(ok, "{err}");
    let rsa_key = openssl::pkey::PKey::public_key_from_pem(rsa.as_bytes()).unwrap();
    assert_eq!(rsa_key.id(), openssl::pkey::Id::RSA);
    assert_ne!(rsa, pss);
    assert_eq!(
        rsa_key.rsa().unwrap().n().to_vec(),
        published.public_key.components().n().to_vec()
    );

    let before: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let (ok, _, err) = key(&["--denomination", "3"]);
    assert!(!ok);
    assert!(
        err.contains("no key of the denomination 3") && err.contains("rsa-3.der"),
        "{err}"
    );
    let after: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

// Long work shows its progress without a terminal: `acd loadgen` prints
// lines with the rate and the time left, and a monitor's catch-up logs its
// entries/s and ETA (ACD_PROGRESS_INTERVAL_MS shortens their period).
#[test]
fn long_work_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start(&dir.path().join("log"), ORIGIN, &[]);
    let out = Command::new(binary("acd"))
        .args(["loadgen", "log", "--url", &log.url, "--entries", "1000"])
        .env("ACD_PROGRESS_INTERVAL_MS", "20")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("appends: ") && l.contains("/1000 (") && l.contains("/s, ETA")),
        "no progress line: {err}"
    );
    let out = Command::new(binary("acd-auditor"))
        .args(["monitor", "--once", "--data"])
        .arg(dir.path().join("monitor"))
        .args(["--log", &format!("{}@{}", log.vkey, log.url)])
        .env("RUST_LOG", "info")
        .env("ACD_PROGRESS_INTERVAL_MS", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("catching up: ") && err.contains("entries/s, ETA"),
        "no catch-up progress: {err}"
    );
}
