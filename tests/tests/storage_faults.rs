//! A full disk: the log and the bank, each on a small tmpfs of its own,
//! answer 503 `storage_unavailable` once the disk fills, recover by
//! themselves once space is freed (no restart), and after a restart still
//! hold everything they acknowledged; the bank never showed a balance that
//! a restart then lost, and its sums conserve.
//!
//! Mounting needs root. Without it the tests skip with a printed reason,
//! unless `CI` is set: then they fail.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use acd_client::ClientError;
use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit};
use acd_core::log_api::{CommitRequest, EntryProof};
use acd_core::note::NoteVerifier;
use acd_tests::{ServerProcess, admin_token, commit, fresh_tid, key, now_ms, seed_bank_keys};

const ORIGIN: &str = "faults.test/log";
/// How long a server may take to recover once space is back (its retries
/// back off to 5 s).
const RECOVERY: Duration = Duration::from_secs(30);

/// A tmpfs of 8 MiB on a fresh directory, unmounted when dropped (also
/// when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) if mounting is refused and `CI` is
    /// not set.
    fn mount(name: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "{name}: cannot mount a tmpfs ({why}); CI needs it"
        );
        eprintln!("skipping {name}: cannot mount a tmpfs ({why})");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        for chunk in [64 * 1024, 4096, 512, 1] {
            let block = vec![0u8; chunk];
            while f.write_all(&block).is_ok() {}
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // A server still holds a file: detach now, freed when it exits.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn is_storage_unavailable(e: &ClientError) -> bool {
    e.status() == Some(503) && e.code() == Some("storage_unavailable")
}

fn log_client(log: &ServerProcess) -> LogClient {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    LogClient::with_http(http, &log.url, NoteVerifier::from_vkey(&log.vkey).unwrap())
}

fn signed_commit() -> CommitRequest {
    let mut k = [0u8; 32];
    rand::fill(&mut k);
    commit(ORIGIN, &key(3), fresh_tid(), now_ms() + 600_000, k)
}

// The log on a disk that fills: appends get 503 storage_unavailable (reads
// of the published tree go on), then succeed again within seconds of the
// space being freed, without a restart; after a SIGKILL and restart every
// acknowledged entry is at its index with its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_recovers_from_a_full_disk() {
    let Some(disk) = Tmpfs::mount("log_recovers_from_a_full_disk") else {
        return;
    };
    let data = disk.path().join("log");
    let log = ServerProcess::start(&data, ORIGIN, &[]);
    let client = log_client(&log);
    let mut acked: Vec<(CommitRequest, EntryProof)> = Vec::new();
    for _ in 0..20 {
        let c = signed_commit();
        let v = client.commit(&c).await.unwrap();
        acked.push((c, v.proof));
    }

    disk.fill();
    let mut refused = Vec::new();
    for _ in 0..2000 {
        let c = signed_commit();
        match client.commit(&c).await {
            Ok(v) => acked.push((c, v.proof)),
            Err(e) if is_storage_unavailable(&e) => {
                refused.push(c);
                break;
            }
            Err(e) => panic!("unexpected answer on a full disk: {e}"),
        }
    }
    assert!(!refused.is_empty(), "the log never noticed the full disk");
    for _ in 0..5 {
        let c = signed_commit();
        match client.commit(&c).await {
            Ok(v) => acked.push((c, v.proof)),
            Err(e) if is_storage_unavailable(&e) => refused.push(c),
            Err(e) => panic!("unexpected answer on a full disk: {e}"),
        }
    }
    // The published checkpoint is still served. An entry's proof is
    // served or refused as unavailable, never wrong: sled may refuse reads
    // after a failed flush (a read can repair a page, which writes), and
    // serves them again once the disk takes writes (checked below).
    let published = client.checkpoint().await.unwrap();
    assert!(published.checkpoint.size >= acked.len() as u64);
    for (c, p) in [&acked[0], &acked[acked.len() - 1]] {
        match client.transaction(&c.tid).await {
            Ok(found) => assert_eq!(found.unwrap().proof.index, p.index),
            Err(e) => assert!(is_storage_unavailable(&e), "{e}"),
        }
    }

    disk.free();
    let retried = signed_commit();
    let deadline = Instant::now() + RECOVERY;
    let proof = loop {
        match client.commit(&retried).await {
            Ok(v) => break v.proof,
            Err(e) if is_storage_unavailable(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the log did not recover within {RECOVERY:?}: {e}"),
        }
    };
    acked.push((retried, proof));
    // Recovered without a restart: every acknowledged entry is served.
    for (c, p) in &acked {
        let found = client.transaction(&c.tid).await.unwrap().unwrap();
        assert_eq!(found.proof.index, p.index);
    }
    for _ in 0..20 {
        let c = signed_commit();
        let v = client.commit(&c).await.unwrap();
        acked.push((c, v.proof));
    }

    log.kill();
    let log = ServerProcess::start(&data, ORIGIN, &[]);
    let client = log_client(&log);
    let size = client.checkpoint().await.unwrap().checkpoint.size;
    for (c, p) in &acked {
        let found = client.transaction(&c.tid).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("acknowledged TID {} lost", c.tid));
        assert_eq!(found.proof.index, p.index);
        assert_eq!(found.proof.entry, p.entry);
        assert!(p.index < size);
    }
    println!(
        "log: {} acknowledged, {} refused while full, tree size {size}",
        acked.len(),
        refused.len()
    );
}

// The bank on a disk that fills: credits get 503 storage_unavailable, no
// read shows a credit that is not durable, a write succeeds again within
// seconds of the space being freed, without a restart; after a SIGKILL and
// restart the balance is the one shown before, the refused credits retried
// by their request ids count once each, and the sums conserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_recovers_from_a_full_disk() {
    let Some(disk) = Tmpfs::mount("bank_recovers_from_a_full_disk") else {
        return;
    };
    let data = disk.path().join("bank");
    seed_bank_keys(&data);
    let bank = ServerProcess::start_bank(&data, "127.0.0.1:0", &[]);
    let addr = bank.addr();
    let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&data));
    let customer = key(5).verifying_key().to_bytes();
    admin
        .create_account(&CreateAccount {
            key: customer,
            kind: AccountKind::Customer,
        })
        .await
        .unwrap();
    let mut acked = 0u64;
    for _ in 0..20 {
        admin
            .credit(&Credit::new(&mut rand::rng(), customer, 1))
            .await
            .unwrap();
        acked += 1;
    }

    disk.fill();
    let mut refused: Vec<Credit> = Vec::new();
    for _ in 0..2000 {
        let c = Credit::new(&mut rand::rng(), customer, 1);
        match admin.credit(&c).await {
            Ok(_) => acked += 1,
            Err(e) if is_storage_unavailable(&e) => {
                refused.push(c);
                break;
            }
            Err(e) => panic!("unexpected answer on a full disk: {e}"),
        }
    }
    assert!(!refused.is_empty(), "the bank never noticed the full disk");
    // While the disk is full, every read either shows durable books or is
    // refused the same way.
    let mut shown = Vec::new();
    for _ in 0..5 {
        let c = Credit::new(&mut rand::rng(), customer, 1);
        match admin.credit(&c).await {
            Ok(_) => acked += 1,
            Err(e) if is_storage_unavailable(&e) => refused.push(c),
            Err(e) => panic!("unexpected answer on a full disk: {e}"),
        }
        match admin.account(&customer).await {
            Ok(a) => shown.push(a.balance),
            Err(e) if is_storage_unavailable(&e) => {}
            Err(e) => panic!("unexpected read on a full disk: {e}"),
        }
        match admin.sums().await {
            Ok(s) => assert!(s.conserved, "{s:?}"),
            Err(e) if is_storage_unavailable(&e) => {}
            Err(e) => panic!("unexpected sums on a full disk: {e}"),
        }
    }

    // Space back: a write that leaves the customer's balance alone succeeds
    // within seconds, without a restart.
    disk.free();
    let other = CreateAccount {
        key: key(6).verifying_key().to_bytes(),
        kind: AccountKind::Merchant,
    };
    let deadline = Instant::now() + RECOVERY;
    loop {
        match admin.create_account(&other).await {
            Ok(_) => break,
            Err(e) if is_storage_unavailable(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the bank did not recover within {RECOVERY:?}: {e}"),
        }
    }
    let recovered = admin.account(&customer).await.unwrap().balance;
    shown.push(recovered);

    bank.kill();
    let bank = ServerProcess::start_bank(&data, &addr, &[]);
    let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&data));
    let restarted = admin.account(&customer).await.unwrap().balance;
    assert_eq!(restarted, recovered, "a restart changed the balance");
    for b in &shown {
        assert!(
            *b <= restarted,
            "a read showed {b}, which a restart did not keep ({restarted})"
        );
    }
    assert!(restarted >= acked as i64, "an acknowledged credit was lost");

    // The refused credits, retried, count once each.
    for c in &refused {
        admin.credit(c).await.unwrap();
    }
    let total = acked + refused.len() as u64;
    assert_eq!(
        admin.account(&customer).await.unwrap().balance,
        total as i64
    );
    let sums = admin.sums().await.unwrap();
    assert!(sums.conserved, "{sums:?}");
    assert_eq!(sums.credited, total);
    println!(
        "bank: {acked} credits acknowledged, {} refused while full, shown {shown:?}",
        refused.len()
    );
}
