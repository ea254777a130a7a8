//! Start-up of every server binary (log, bank, witness, monitor,
//! merchant) against its data directory: keys are created only in a new
//! one, a missing key or token beside existing data is refused by name and
//! never replaced, nothing is written before the configuration is checked
//! and the port bound, and a damaged database is an error exit naming it,
//! never a panic. On PostgreSQL (bank, log, merchant with `--database`) the
//! database decides what is new, and refuses another server's keys.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acd_tests::{binary, seed_bank_keys};

const ORIGIN: &str = "startup.test/log";
const LIMIT: Duration = Duration::from_secs(60);

/// How one run of a server ended.
enum Outcome {
    /// It printed its address (and was stopped); what it wrote on stderr.
    Started(String),
    /// It exited by itself, with what it wrote on stderr.
    Exited(ExitStatus, String),
}

fn drain(r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(r).read_to_string(&mut s);
        s
    })
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` until it prints `listening on` (then stops it with SIGTERM)
/// or exits.
fn attempt(mut cmd: Command) -> Outcome {
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = drain(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("listening on ") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    loop {
        if rx.recv_timeout(Duration::from_millis(20)).is_ok() {
            stop(child);
            return Outcome::Started(stderr.join().unwrap());
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Outcome::Exited(status, stderr.join().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "the server neither started nor exited"
        );
    }
}

/// Runs `cmd`, which must start.
fn starts(cmd: Command) {
    match attempt(cmd) {
        Outcome::Started(_) => {}
        Outcome::Exited(status, stderr) => panic!("did not start ({status}): {stderr}"),
    }
}

/// Runs `cmd`, which must refuse to start; returns its stderr.
fn refuses(cmd: Command) -> String {
    match attempt(cmd) {
        Outcome::Started(stderr) => panic!("started although it should not: {stderr}"),
        Outcome::Exited(status, stderr) => {
            assert!(!status.success(), "exited 0: {stderr}");
            assert_ne!(status.code(), Some(101), "panicked: {stderr}");
            assert!(!stderr.contains("panicked"), "panicked: {stderr}");
            stderr
        }
    }
}

/// While one server runs on `serve`'s data directory, a second one is
/// refused, naming the directory as in use.
fn in_use_is_refused(serve: &dyn Fn() -> Command) {
    let mut first = serve()
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = first.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("listening on ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(LIMIT).expect("the first server started");
    let stderr = refuses(serve());
    assert!(stderr.contains("is in use by another process"), "{stderr}");
    stop(first);
}

/// Every file under `dir`, relative to it, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let name = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(name);
            } else {
                out.push((name.clone(), std::fs::read(dir.join(&name)).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn restore(dir: &Path, files: &[(PathBuf, Vec<u8>)]) {
    let _ = std::fs::remove_dir_all(dir);
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// (a) With the database in place, each of `secrets` deleted in turn makes
/// `serve` refuse to start, naming the file, and leaves no new one.
fn missing_secrets_are_refused(data: &Path, serve: &dyn Fn() -> Command, secrets: &[&str]) {
    assert!(data.join("db").exists(), "the first start made no database");
    for name in secrets {
        let path = data.join(name);
        let kept = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::remove_file(&path).unwrap();
        let stderr = refuses(serve());
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(!path.exists(), "{name} was created again");
        std::fs::write(&path, kept).unwrap();
    }
    starts(serve());
}

/// (b) A run that must fail before anything exists on disk.
fn leaves_nothing(data: &Path, cmd: Command) -> String {
    let stderr = refuses(cmd);
    let left: Vec<_> = std::fs::read_dir(data)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?} ({stderr})");
    stderr
}

/// The refusal of a busy port names the address and says it is in use.
fn busy_is_named(stderr: &str, addr: &str) {
    assert!(
        stderr.contains(addr) && stderr.to_lowercase().contains("in use"),
        "the busy port is not named: {stderr}"
    );
}

/// A port another socket holds.
fn busy_port() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// (c) Bytes flipped in the middle of each database file at several
/// offsets: every run either starts or exits with an error naming the
/// database, never with a panic; at least one damage is noticed.
fn damage_is_an_error(data: &Path, serve: &dyn Fn() -> Command) {
    let db = data.join("db");
    let original = files(&db);
    assert!(!original.is_empty());
    let mut noticed = Vec::new();
    for (name, bytes) in &original {
        for eighth in [1, 2, 3, 4, 5, 6, 7] {
            restore(&db, &original);
            let mut damaged = bytes.clone();
            let at = damaged.len() * eighth / 8;
            for b in damaged.iter_mut().skip(at).take(64) {
                *b ^= 0x5a;
            }
            std::fs::write(db.join(name), &damaged).unwrap();
            match attempt(serve()) {
                Outcome::Started(stderr) => {
                    assert!(!stderr.contains("panicked"), "{name:?}: {stderr}");
                }
                Outcome::Exited(status, stderr) => {
                    assert_ne!(status.code(), Some(101), "{name:?} {eighth}/8: {stderr}");
                    assert!(!stderr.contains("panicked"), "{name:?}: {stderr}");
                    assert!(
                        stderr.contains(&db.display().to_string()),
                        "{name:?} {eighth}/8: {stderr}"
                    );
                    noticed.push(format!("{} at {eighth}/8", name.display()));
                }
            }
        }
    }
    restore(&db, &original);
    println!("damage noticed: {noticed:?}");
    assert!(!noticed.is_empty(), "no damage was noticed");
}

fn log_cmd(data: &Path, listen: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(binary("acd-log"));
    cmd.args(["serve", "--listen", listen, "--origin", ORIGIN, "--data"])
        .arg(data)
        .args(extra);
    cmd
}

fn log_vkey() -> String {
    acd_core::note::NoteSigner::new(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[3; 32]))
        .unwrap()
        .verifier()
        .vkey()
}

// The log: a missing log.key beside its database is refused and not
// replaced; a bad witness vkey or a busy port leaves no data directory; a
// damaged database is an error exit naming it.
#[test]
fn log_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let serve = || log_cmd(&data, "127.0.0.1:0", &[]);
    leaves_nothing(
        &data,
        log_cmd(&data, "127.0.0.1:0", &["--witness", "nonsense@http://x"]),
    );
    let (_held, busy) = busy_port();
    busy_is_named(&leaves_nothing(&data, log_cmd(&data, &busy, &[])), &busy);
    starts(serve());
    in_use_is_refused(&serve);
    missing_secrets_are_refused(&data, &serve, &["log.key"]);
    damage_is_an_error(&data, &serve);
}

fn bank_cmd(data: &Path, listen: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(binary("acd-bank"));
    cmd.args([
        "serve",
        "--listen",
        listen,
        "--denominations",
        "1,10,100,1000",
        "--data",
    ])
    .arg(data)
    .arg("--log")
    .arg(format!("{}@http://127.0.0.1:9", log_vkey()))
    .args(extra);
    cmd
}

// The bank: each of bank.key, admin.token and a denomination's RSA key,
// missing beside its database, is refused and not replaced; an impossible
// witness threshold or a busy port leaves no data directory; a damaged
// database is an error exit naming it.
#[test]
fn bank_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank");
    let serve = || bank_cmd(&data, "127.0.0.1:0", &[]);
    leaves_nothing(
        &data,
        bank_cmd(&data, "127.0.0.1:0", &["--witness-threshold", "1"]),
    );
    let (_held, busy) = busy_port();
    busy_is_named(&leaves_nothing(&data, bank_cmd(&data, &busy, &[])), &busy);
    seed_bank_keys(&data);
    starts(serve());
    in_use_is_refused(&serve);
    missing_secrets_are_refused(&data, &serve, &["bank.key", "admin.token", "rsa-10.der"]);
    damage_is_an_error(&data, &serve);
}

fn witness_cmd(data: &Path, listen: &str, log: &str) -> Command {
    let mut cmd = Command::new(binary("acd-auditor"));
    cmd.args([
        "witness",
        "--listen",
        listen,
        "--name",
        "startup.test/witness",
        "--log",
        log,
        "--data",
    ])
    .arg(data);
    cmd
}

// The witness: a missing key file beside its database is refused and
// not replaced; a bad log vkey or a busy port leaves no data directory; a
// damaged database is an error exit naming it.
#[test]
fn witness_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("witness");
    let vkey = log_vkey();
    let serve = || witness_cmd(&data, "127.0.0.1:0", &vkey);
    leaves_nothing(&data, witness_cmd(&data, "127.0.0.1:0", "nonsense"));
    let (_held, busy) = busy_port();
    busy_is_named(
        &leaves_nothing(&data, witness_cmd(&data, &busy, &vkey)),
        &busy,
    );
    starts(serve());
    in_use_is_refused(&serve);
    missing_secrets_are_refused(&data, &serve, &["witness.ml-dsa-44.key"]);
    damage_is_an_error(&data, &serve);
}

fn monitor_cmd(data: &Path, listen: &str, log: &str) -> Command {
    let mut cmd = Command::new(binary("acd-auditor"));
    cmd.args(["monitor", "--listen", listen, "--log", log, "--data"])
        .arg(data);
    cmd
}

// The monitor: a bad log or a busy port leaves no data directory; a
// damaged database is an error exit naming it.
#[test]
fn monitor_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("monitor");
    let log = format!("{}@http://127.0.0.1:9", log_vkey());
    let serve = || monitor_cmd(&data, "127.0.0.1:0", &log);
    leaves_nothing(
        &data,
        monitor_cmd(&data, "127.0.0.1:0", "nonsense@http://x"),
    );
    let (_held, busy) = busy_port();
    busy_is_named(
        &leaves_nothing(&data, monitor_cmd(&data, &busy, &log)),
        &busy,
    );
    starts(serve());
    in_use_is_refused(&serve);
    damage_is_an_error(&data, &serve);
}

fn merchant_cmd(data: &Path, listen: &str, catalog: &Path) -> Command {
    let bank = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key();
    let mut cmd = Command::new(binary("acd"));
    cmd.args(["merchant", "serve", "--listen", listen, "--bank"])
        .arg("http://127.0.0.1:9")
        .arg("--bank-key")
        .arg(hex::encode(bank.to_bytes()))
        .arg("--log")
        .arg(format!("{}@http://127.0.0.1:9", log_vkey()))
        .arg("--catalog")
        .arg(catalog)
        .arg("--data")
        .arg(data);
    cmd
}

// The merchant: a missing merchant.key beside its database is refused and
// not replaced; a catalog naming a missing file or a busy port leaves no
// data directory; a damaged database is an error exit naming it.
#[test]
fn merchant_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shop");
    std::fs::write(dir.path().join("goods.txt"), "goods").unwrap();
    let catalog = dir.path().join("catalog.toml");
    let item = |file: &str| {
        format!("[[items]]\nid = \"a\"\ndescription = \"A\"\nprice = 10\nfile = \"{file}\"\n")
    };
    std::fs::write(&catalog, item("missing.txt")).unwrap();
    leaves_nothing(&data, merchant_cmd(&data, "127.0.0.1:0", &catalog));
    std::fs::write(&catalog, item("goods.txt")).unwrap();
    let (_held, busy) = busy_port();
    busy_is_named(
        &leaves_nothing(&data, merchant_cmd(&data, &busy, &catalog)),
        &busy,
    );
    let serve = || merchant_cmd(&data, "127.0.0.1:0", &catalog);
    starts(serve());
    in_use_is_refused(&serve);
    missing_secrets_are_refused(&data, &serve, &["merchant.key"]);
    damage_is_an_error(&data, &serve);
}

/// On PostgreSQL the database, not the data directory, decides whether a
/// server is new. `serve(data, database)` runs one on `data`, with
/// `--database` when given; `seed` prepares a data directory. A first
/// start creates the keys and claims the database (and makes no sled
/// database); then each secret missing is refused by name and not created
/// again; a data directory holding another server's keys is refused
/// against the claimed database, and starts on a database of its own.
fn postgres_start_up(
    dir: &Path,
    serve: &dyn Fn(&Path, Option<&str>) -> Command,
    secrets: &[&str],
    seed: &dyn Fn(&Path),
) {
    let Some(pg) = acd_tests::Postgres::from_env() else {
        return;
    };
    let database = pg.fresh_database();
    let data = dir.join("on-postgres");
    seed(&data);
    starts(serve(&data, Some(&database)));
    assert!(
        !data.join("db").exists(),
        "a sled database beside --database"
    );
    for name in secrets {
        let path = data.join(name);
        let kept = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::remove_file(&path).unwrap();
        let stderr = refuses(serve(&data, Some(&database)));
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(!path.exists(), "{name} was created again");
        std::fs::write(&path, kept).unwrap();
    }
    starts(serve(&data, Some(&database)));
    let other = dir.join("other");
    seed(&other);
    starts(serve(&other, None));
    std::fs::remove_dir_all(other.join("db")).unwrap();
    let stderr = refuses(serve(&other, Some(&database)));
    assert!(stderr.contains("belongs to"), "{stderr}");
    let password = database.split_once('@').map(|(creds, _)| creds.to_owned());
    if let Some(creds) = password.filter(|c| c.contains(':')) {
        assert!(
            !stderr.contains(&creds),
            "the URL's credentials shown: {stderr}"
        );
    }
    starts(serve(&other, Some(&pg.fresh_database())));
}

fn with_database(mut cmd: Command, database: Option<&str>) -> Command {
    if let Some(url) = database {
        cmd.arg("--database").arg(url);
    }
    cmd
}

// The log on PostgreSQL: log.key is created only for a new database.
#[test]
fn log_start_up_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    postgres_start_up(
        dir.path(),
        &|data, db| with_database(log_cmd(data, "127.0.0.1:0", &[]), db),
        &["log.key"],
        &|_| {},
    );
}

// The bank on PostgreSQL: its keys and token are created only for a new
// database.
#[test]
fn bank_start_up_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    postgres_start_up(
        dir.path(),
        &|data, db| with_database(bank_cmd(data, "127.0.0.1:0", &[]), db),
        &["bank.key", "admin.token", "rsa-10.der"],
        &|data| seed_bank_keys(data),
    );
}

// The merchant on PostgreSQL: its key and offer secret are created only
// for a new database.
#[test]
fn merchant_start_up_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("goods.txt"), "goods").unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "[[items]]\nid = \"a\"\ndescription = \"A\"\nprice = 10\nfile = \"goods.txt\"\n",
    )
    .unwrap();
    postgres_start_up(
        dir.path(),
        &|data, db| with_database(merchant_cmd(data, "127.0.0.1:0", &catalog), db),
        &["merchant.key", "offer.secret"],
        &|_| {},
    );
}

// The auditor's example configuration, as checked in, starts a witness and
// a monitor (their data folders and ports given as flags, as an operator
// would).
#[test]
fn the_auditor_example_config_starts_a_witness_and_a_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("auditor/auditor.example.toml");
    let mut witness = witness_cmd(&dir.path().join("witness"), "127.0.0.1:0", &log_vkey());
    witness.arg("--config").arg(&example);
    starts(witness);
    let log = format!("{}@http://127.0.0.1:9", log_vkey());
    let mut monitor = monitor_cmd(&dir.path().join("monitor"), "127.0.0.1:0", &log);
    monitor.arg("--config").arg(&example);
    starts(monitor);
}

// The log's, the bank's and the merchant's example configuration files
// start their servers as they are, with only the data folder and the port
// given as flags (as an operator trying them would), and the merchant told
// where that bank listens.
#[test]
fn the_example_configs_of_the_log_bank_and_merchant_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let local = ["--listen", "127.0.0.1:0"];

    let mut log = Command::new(binary("acd-log"));
    log.args(["serve", "--config"])
        .arg(root.join("log-server/log.example.toml"))
        .arg("--data")
        .arg(dir.path().join("log"))
        .args(local);
    starts(log);

    let bank_data = dir.path().join("bank");
    seed_bank_keys(&bank_data);
    let mut bank = Command::new(binary("acd-bank"));
    bank.args(["serve", "--config"])
        .arg(root.join("bank/bank.example.toml"))
        .arg("--data")
        .arg(&bank_data)
        .args(local);
    // The merchant asks this bank for its keys at start.
    let bank = acd_tests::ServerProcess::start_command(bank, &bank_data);

    let mut merchant = Command::new(binary("acd"));
    merchant
        .args(["merchant", "serve", "--config"])
        .arg(root.join("clients/merchant/merchant.example.toml"))
        .arg("--data")
        .arg(dir.path().join("shop"))
        .args(local)
        .args(["--bank", &bank.url]);
    starts(merchant);
}
