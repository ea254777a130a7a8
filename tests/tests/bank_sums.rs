//! `GET /admin/v1/sums` on a real bank under concurrent credits: the
//! maintained totals and the scan come from one state, so every poll
//! conserves (a torn read would show `conserved: false`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use acd_client::bank::BankClient;
use acd_core::bank_api::{AccountKind, CreateAccount, Credit};
use acd_tests::{ServerProcess, admin_token, key, seed_bank_keys};

const ACCOUNTS: u8 = 16;

// Sixteen clients credit sixteen accounts for three seconds while the sums
// are polled: no poll is non-conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sums_conserve_under_concurrent_credits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank");
    seed_bank_keys(&data);
    let bank = ServerProcess::start_bank(&data, "127.0.0.1:0", &[]);
    let admin = BankClient::new(&bank.url).with_admin_token(&admin_token(&data));
    let keys: Vec<[u8; 32]> = (0..ACCOUNTS)
        .map(|i| key(100 + i).verifying_key().to_bytes())
        .collect();
    for k in &keys {
        admin
            .create_account(&CreateAccount {
                key: *k,
                kind: AccountKind::Customer,
            })
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let credited = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for k in keys {
        let (admin, stop, credited) = (admin.clone(), stop.clone(), credited.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let c = Credit::new(&mut rand::rng(), k, 3);
                admin.credit(&c).await.unwrap();
                credited.fetch_add(3, Ordering::SeqCst);
            }
        }));
    }
    let (mut polls, mut not_conserved) = (0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        polls += 1;
        if !admin.sums().await.unwrap().conserved {
            not_conserved += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let sums = admin.sums().await.unwrap();
    println!(
        "{not_conserved} of {polls} polls not conserved; {} credited",
        sums.credited
    );
    assert_eq!(sums.credited, credited.load(Ordering::SeqCst));
    assert!(sums.conserved, "{sums:?}");
    assert_eq!(not_conserved, 0, "of {polls} polls");
}
