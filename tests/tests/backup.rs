//! Backup and restore of real servers' data directories with their own
//! binaries: a running bank or log is refused; a stopped one (SIGKILLed,
//! the worst case) is archived, restored into a new directory and started
//! there with the same books (accounts, sums, conserved) and the same tree;
//! the customer withdraws again from the restored bank; a damaged archive, another
//! server's archive, and a non-empty target restore nothing. The merchant's
//! and the witness's commands round-trip their directories.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit};
use acd_core::note::NoteVerifier;
use acd_tests::{ServerProcess, admin_token, bank_key, binary, seed_bank_keys};
use acd_wallet::Wallet;

const ORIGIN: &str = "backup.test/log";

/// Runs `bin args…`; returns success and everything it printed.
fn run(bin: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary(bin))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes, sorted.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bank_and_log_restore_with_the_same_books_and_tree() {
    let dir = tempfile::tempdir().unwrap();
    let bank_data = dir.path().join("bank");
    let log_data = dir.path().join("log");
    seed_bank_keys(&bank_data);
    let key = bank_key(&bank_data);
    let log = blocking(|| ServerProcess::start(&log_data, ORIGIN, &[key]));
    let logs = vec![format!("{}@{}", log.vkey, log.url)];
    let bank = blocking(|| ServerProcess::start_bank(&bank_data, "127.0.0.1:0", &logs));
    let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&bank_data));

    // Books worth restoring: an account credited, tokens withdrawn.
    let wallet_path = dir.path().join("wallet.json");
    let mut wallet = Wallet::create(&wallet_path, &bank.url).await.unwrap();
    let account = wallet.account_key();
    admin
        .create_account(&CreateAccount {
            key: account,
            kind: AccountKind::Customer,
        })
        .await
        .unwrap();
    admin
        .credit(&Credit::new(&mut rand::rng(), account, 100))
        .await
        .unwrap();
    wallet.withdraw(30).await.unwrap();
    let sums = admin.sums().await.unwrap();
    let books = admin.account(&account).await.unwrap();
    assert!(sums.conserved);
    assert_eq!(books.balance, 70);
    let log_vkey = log.vkey.clone();
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let checkpoint = LogClient::new(&log.url, verifier.clone())
        .checkpoint()
        .await
        .unwrap()
        .checkpoint;

    // Running servers are not backed up.
    let archive = dir.path().join("bank.tar");
    let (ok, out) = blocking(|| {
        run(
            "acd-bank",
            &["backup", "--data", s(&bank_data), "--out", s(&archive)],
        )
    });
    assert!(!ok && out.contains("stop the server"), "{out}");
    assert!(!archive.exists());

    let bank_url = bank.url.clone();
    bank.kill();
    log.kill();
    let (ok, out) = blocking(|| {
        run(
            "acd-bank",
            &["backup", "--data", s(&bank_data), "--out", s(&archive)],
        )
    });
    assert!(ok, "{out}");
    let log_archive = dir.path().join("log.tar");
    let (ok, out) = blocking(|| {
        run(
            "acd-log",
            &["backup", "--data", s(&log_data), "--out", s(&log_archive)],
        )
    });
    assert!(ok, "{out}");
    // Never over an existing file.
    let (ok, out) = blocking(|| {
        run(
            "acd-log",
            &["backup", "--data", s(&log_data), "--out", s(&log_archive)],
        )
    });
    assert!(!ok && out.contains("exists"), "{out}");

    // Refusals: another server's archive, a non-empty target, a damaged
    // archive. None leaves a data directory.
    let restored = dir.path().join("bank-restored");
    let (ok, out) = blocking(|| {
        run(
            "acd-log",
            &["restore", "--from", s(&archive), "--data", s(&restored)],
        )
    });
    assert!(!ok && out.contains("not of a log"), "{out}");
    assert!(!restored.exists());
    let (ok, out) = blocking(|| {
        run(
            "acd-bank",
            &["restore", "--from", s(&archive), "--data", s(&log_data)],
        )
    });
    assert!(!ok && out.contains("is not empty"), "{out}");
    let damaged = dir.path().join("damaged.tar");
    let mut bytes = std::fs::read(&archive).unwrap();
    let admin_token_text = admin_token(&bank_data);
    let at = bytes
        .windows(admin_token_text.len())
        .position(|w| w == admin_token_text.as_bytes())
        .unwrap();
    bytes[at] ^= 1;
    std::fs::write(&damaged, bytes).unwrap();
    let (ok, out) = blocking(|| {
        run(
            "acd-bank",
            &["restore", "--from", s(&damaged), "--data", s(&restored)],
        )
    });
    assert!(!ok && out.contains("does not match its checksum"), "{out}");
    assert!(!restored.exists());

    let (ok, out) = blocking(|| {
        run(
            "acd-bank",
            &["restore", "--from", s(&archive), "--data", s(&restored)],
        )
    });
    assert!(ok, "{out}");
    let log_restored = dir.path().join("log-restored");
    let (ok, out) = blocking(|| {
        run(
            "acd-log",
            &[
                "restore",
                "--from",
                s(&log_archive),
                "--data",
                s(&log_restored),
            ],
        )
    });
    assert!(ok, "{out}");
    // The keys and the admin token come back byte for byte.
    for name in ["bank.key", "admin.token", "rsa-10.der"] {
        assert_eq!(
            std::fs::read(restored.join(name)).unwrap(),
            std::fs::read(bank_data.join(name)).unwrap(),
            "{name}"
        );
    }

    // The restored log serves the same tree, the restored bank the same
    // books, at the old bank's address (the wallet knows that one).
    let log = blocking(|| ServerProcess::start(&log_restored, ORIGIN, &[key]));
    assert_eq!(log.vkey, log_vkey, "the same log key");
    let after = LogClient::new(&log.url, verifier)
        .checkpoint()
        .await
        .unwrap()
        .checkpoint;
    assert_eq!((after.size, after.root), (checkpoint.size, checkpoint.root));
    let logs = vec![format!("{}@{}", log.vkey, log.url)];
    let addr = bank_url.trim_start_matches("http://").to_owned();
    let bank = blocking(|| ServerProcess::start_bank(&restored, &addr, &logs));
    let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&restored));
    assert_eq!(admin.account(&account).await.unwrap(), books);
    let again = admin.sums().await.unwrap();
    assert_eq!(again, sums);
    assert!(again.conserved);
    // The customer goes on at the restored bank: another withdrawal from
    // the same account.
    drop(wallet);
    let mut wallet = Wallet::open(&wallet_path).unwrap();
    wallet.withdraw(10).await.unwrap();
    assert_eq!(admin.account(&account).await.unwrap().balance, 60);
    assert!(admin.sums().await.unwrap().conserved);
    drop(bank);
    drop(log);
}

#[test]
fn the_merchant_and_the_witness_round_trip_their_directories() {
    // A merchant's and a witness's data directories, made by their own
    // binaries, come back file for file; a witness archive restores with
    // the auditor only.
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shop");
    let (ok, out) = run("acd", &["merchant", "key", "--data", s(&shop)]);
    assert!(ok, "{out}");
    let archive = dir.path().join("shop.tar");
    let (ok, out) = run(
        "acd",
        &[
            "merchant",
            "backup",
            "--data",
            s(&shop),
            "--out",
            s(&archive),
        ],
    );
    assert!(ok, "{out}");
    let back = dir.path().join("shop-restored");
    let (ok, out) = run(
        "acd",
        &[
            "merchant",
            "restore",
            "--from",
            s(&archive),
            "--data",
            s(&back),
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(files(&back), files(&shop));

    let witness = dir.path().join("witness");
    let log_vkey =
        acd_core::note::NoteSigner::new(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[3; 32]))
            .unwrap()
            .verifier()
            .vkey();
    let w = ServerProcess::start_witness(&witness, "backup.test/witness", &[&log_vkey]);
    let vkey = w.vkey.clone();
    w.kill();
    let archive = dir.path().join("witness.tar");
    let (ok, out) = run(
        "acd-auditor",
        &["backup", "--data", s(&witness), "--out", s(&archive)],
    );
    assert!(ok && out.contains("witness"), "{out}");
    let wrong = dir.path().join("as-merchant");
    let (ok, out) = run(
        "acd",
        &[
            "merchant",
            "restore",
            "--from",
            s(&archive),
            "--data",
            s(&wrong),
        ],
    );
    assert!(!ok && out.contains("a backup of a witness"), "{out}");
    let back = dir.path().join("witness-restored");
    let (ok, out) = run(
        "acd-auditor",
        &["restore", "--from", s(&archive), "--data", s(&back)],
    );
    assert!(ok, "{out}");
    let w = ServerProcess::start_witness(&back, "backup.test/witness", &[&log_vkey]);
    assert_eq!(w.vkey, vkey, "the same witness key");
}

#[test]
fn a_monitors_directory_round_trips_and_it_goes_on_from_there() {
    // A monitor that audited a real log is backed up (named a monitor's
    // backup: it has no key), restored file for file, and the restored
    // monitor goes on auditing the grown log from where it was.
    let dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start(&dir.path().join("log"), ORIGIN, &[]);
    acd_tests::loadgen_log(&log.url, 300, 256);
    let monitor = dir.path().join("monitor");
    let (ok, out) = acd_tests::monitor_once(&monitor, &log.vkey, &log.url);
    assert!(ok, "{out}");
    let archive = dir.path().join("monitor.tar");
    let (ok, out) = run(
        "acd-auditor",
        &["backup", "--data", s(&monitor), "--out", s(&archive)],
    );
    assert!(ok && out.contains("monitor"), "{out}");
    let back = dir.path().join("monitor-restored");
    let (ok, out) = run(
        "acd-auditor",
        &["restore", "--from", s(&archive), "--data", s(&back)],
    );
    assert!(ok, "{out}");
    assert_eq!(files(&back), files(&monitor));
    acd_tests::loadgen_log(&log.url, 100, 256);
    let (ok, out) = acd_tests::monitor_once(&back, &log.vkey, &log.url);
    assert!(ok, "{out}");
    assert!(
        out.contains("400"),
        "the restored monitor reached size 400: {out}"
    );
}
