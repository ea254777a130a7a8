//! The log explorer (`GET /` on the log) in a real headless Chromium, driven
//! by playwright-core (`tests/browser/explorer.mjs`): a witnessed log filled
//! by loadgen shows its tree size and verified signatures; a TID lookup says
//! verified and a tampered inclusion proof is shown failed; a proof bundle
//! dropped onto the page verifies and a tampered one fails; then the log is
//! replaced by a fork under the same key and the same address, and the same
//! browser shows the split view with both signed notes. Between the two, the
//! same page from nginx serving the log's published read path (and the files
//! `acd-log explorer` writes): keys pasted, the checkpoint and the entries
//! verified from tiles and entry bundles, and, once the log grew past a tile,
//! its consistency proved from the hash tiles alone.
//!
//! Chromium, playwright-core and nginx come from scripts/test.sh
//! (scripts/services/): without them this fails when CI is set and skips
//! otherwise.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use acd::log_client::LogClient;
use acd_core::bank_api::SignedOffer;
use acd_core::bundle::ProofBundle;
use acd_core::log_api::EntryProof;
use acd_core::note::NoteVerifier;
use acd_core::proof::WitnessPolicy;
use acd_core::purchase::Offer;
use acd_tests::{
    Nginx, ServerProcess, binary, commit, fresh_tid, key, loadgen_log, now_ms, outside,
};
use acd_wallet::certify::tlog_proof;

const ORIGIN: &str = "explorer.test/log";
const FILL: u64 = 150;
/// Entries added while the mirror is watched: the tree crosses a tile.
const GROWTH: u64 = 300;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs one phase of `explorer.mjs`; panics with its output if it fails.
fn phase(chromium: &str, profile: &Path, url: &str, name: &str, env: &[(&str, String)]) {
    let started = Instant::now();
    let out = Command::new("node")
        .arg(browser_dir().join("explorer.mjs"))
        .env("ACD_TEST_CHROMIUM", chromium)
        .env("EXPLORER_PROFILE", profile)
        .env("EXPLORER_URL", format!("{url}/"))
        .env("EXPLORER_PHASE", name)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node runs (scripts/services/chromium.sh installs it)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("phase {name} ({:?}):\n{stdout}{stderr}", started.elapsed());
    assert!(
        out.status.success(),
        "phase {name} failed:\n{stdout}{stderr}"
    );
}

async fn get_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Waits until the mirror directory holds the cosigned checkpoint of `size`.
async fn mirrored_at(dir: &Path, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let note = std::fs::read_to_string(dir.join("checkpoint")).unwrap_or_default();
        if note.lines().nth(1) == Some(size.to_string().as_str())
            && note.matches("\n\u{2014} ").count() >= 2
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the mirror has no cosigned checkpoint of {size}: {note}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the log serves a cosigned checkpoint of `size` entries.
async fn cosigned_at(url: &str, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let note = get_text(&format!("{url}/checkpoint")).await;
        let lines: Vec<&str> = note.lines().collect();
        if lines.get(1) == Some(&size.to_string().as_str())
            && note.matches("\n\u{2014} ").count() >= 2
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no cosigned checkpoint of {size}: {note}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_verifies_in_a_browser_and_catches_a_fork() {
    let (Some(chromium), Some(nginx_bin)) =
        (outside("ACD_TEST_CHROMIUM"), outside("ACD_TEST_NGINX"))
    else {
        return;
    };
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules/playwright-core is missing: scripts/test.sh installs it (npm ci)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (log_a, log_b, wdir) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("w"),
    );
    let profile = dir.path().join("profile");

    // A log, its witness, and the log again asking the witness.
    let vkey = ServerProcess::start(&log_a, ORIGIN, &[]).vkey.clone();
    let witness = ServerProcess::start_witness(&wdir, "witness.test/w1", &[&vkey]);
    // The log also publishes its read path to a directory, which nginx
    // serves with the explorer's files beside it.
    let mirror_dir = dir.path().join("mirror");
    let a = ServerProcess::start_log_with(
        &log_a,
        ORIGIN,
        &[
            "--witness",
            &format!("{}@{}", witness.vkey, witness.url),
            "--tiles",
            &format!("file://{}", mirror_dir.display()),
        ],
    );
    let started = Instant::now();
    loadgen_log(&a.url, FILL, 16);
    println!("filled in {:?}", started.elapsed());

    // One real commit, for a TID lookup and a proof bundle.
    let merchant = key(3);
    let tid = fresh_tid();
    let expiration_ms = now_ms() + 600_000;
    let k = [5u8; 32];
    let client = LogClient::new(&a.url, NoteVerifier::from_vkey(&vkey).unwrap());
    client
        .commit(&commit(ORIGIN, &merchant, tid, expiration_ms, k))
        .await
        .unwrap();
    let size = FILL + 1;
    cosigned_at(&a.url, size).await;
    let proof: EntryProof =
        serde_json::from_str(&get_text(&format!("{}/tx/{tid}", a.url)).await).unwrap();
    let offer = Offer {
        bank: [7; 32],
        log_origin: ORIGIN.into(),
        tid,
        merchant: merchant.verifying_key().to_bytes(),
        customer: key(4).verifying_key().to_bytes(),
        expiration_ms,
        price: 10,
        description: "a song, in FLAC".into(),
        ciphertext_hash: [1; 32],
        plaintext_hash: [2; 32],
    };
    let signature = offer.sign(&merchant);
    let bundle = ProofBundle::new(SignedOffer { offer, signature }, &tlog_proof(&proof));
    let witness_key = acd_core::cosignature::CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    bundle
        .verify(
            &NoteVerifier::from_vkey(&vkey).unwrap(),
            &WitnessPolicy::new(1, vec![witness_key]),
        )
        .unwrap();
    let bundle_file = dir.path().join("bundle.json");
    std::fs::write(&bundle_file, serde_json::to_string_pretty(&bundle).unwrap()).unwrap();

    let mut env = vec![
        ("EXPLORER_SIZE", size.to_string()),
        ("EXPLORER_TID", tid.to_string()),
        ("EXPLORER_BUNDLE", bundle_file.display().to_string()),
        ("EXPLORER_LOG_KEY", vkey.clone()),
    ];
    if let Ok(shot) = std::env::var("ACD_EXPLORER_SCREENSHOT") {
        env.push(("EXPLORER_SCREENSHOT", shot));
    }
    phase(&chromium, &profile, &a.url, "honest", &env);

    // The mirror, before and after the log grows.
    mirrored_at(&mirror_dir, size).await;
    let out = Command::new(binary("acd-log"))
        .args(["explorer", "--out"])
        .arg(&mirror_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nginx = Nginx::start(&nginx_bin, &mirror_dir);
    let mut mirror_env = vec![
        ("EXPLORER_SIZE", size.to_string()),
        ("EXPLORER_LOG_KEY", vkey.clone()),
        ("EXPLORER_WITNESS_KEY", witness.vkey.clone()),
    ];
    phase(&chromium, &profile, &nginx.url, "mirror", &mirror_env);
    loadgen_log(&a.url, GROWTH, 16);
    let grown = size + GROWTH;
    cosigned_at(&a.url, grown).await;
    mirrored_at(&mirror_dir, grown).await;
    mirror_env[0].1 = grown.to_string();
    mirror_env.extend([
        ("EXPLORER_PREVIOUS_SIZE", size.to_string()),
        ("EXPLORER_TID", tid.to_string()),
    ]);
    phase(&chromium, &profile, &nginx.url, "mirror-grown", &mirror_env);
    drop(nginx);

    // The same key signs another history of the same size, which is then
    // served where the page saw the first.
    std::fs::create_dir_all(&log_b).unwrap();
    std::fs::copy(log_a.join("log.key"), log_b.join("log.key")).unwrap();
    let b = ServerProcess::start(&log_b, ORIGIN, &[]);
    assert_eq!(b.vkey, vkey);
    loadgen_log(&b.url, size, 16);
    b.kill();
    let addr = a.addr();
    a.kill();
    let b = ServerProcess::start_log_at(&log_b, ORIGIN, &[], &[], &addr);
    let note = get_text(&format!("{}/checkpoint", b.url)).await;
    assert_eq!(note.lines().nth(1), Some(size.to_string().as_str()));
    phase(&chromium, &profile, &b.url, "forked", &[]);
}
