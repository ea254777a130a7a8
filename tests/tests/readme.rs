//! The README runs as written: its "Running a purchase by hand" block is
//! taken from the README itself and run by `sh` from the source tree,
//! unedited (`B` names the binaries of this build, as the block allows),
//! and must end with the goods bought, the proof verified, the sums
//! conserved, nothing left running and nothing written in the source tree.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use acd_tests::binary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The first `sh` block under the heading `heading`.
fn block(readme: &str, heading: &str) -> String {
    let section = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no heading {heading:?}"))
        .1;
    let start = section.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let len = section[start..].find("```").expect("the block's end");
    section[start..start + len].to_owned()
}

/// Files in the source tree that git does not know and does not ignore.
fn untracked() -> Vec<String> {
    let out = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(root())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("??"))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

// The by-hand block, as written, buys the poem and proves it.
#[test]
fn the_by_hand_block_runs_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let script = block(&readme, "## Running a purchase by hand");
    assert!(script.contains("kill "), "the block stops what it starts");
    let bin_dir = binary("acd").parent().unwrap().to_owned();
    // The block's ports are its own: nothing else may hold them.
    for port in [18700, 18800, 18900] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port}, which the block uses, is taken before it runs"
        );
    }
    let before = untracked();
    // Output to files, not pipes: a server left running would hold a pipe
    // open and the test would wait forever.
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let status = Command::new("sh")
        .args(["-e", "-c", &script])
        .current_dir(root())
        .env("B", &bin_dir)
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "{stdout}\n{stderr}");
    let poem = std::fs::read_to_string(root().join("clients/merchant/goods/poem.txt")).unwrap();
    assert!(stdout.contains(poem.trim()), "the goods: {stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("item ") && l.ends_with("description"))
            && stdout.lines().any(|l| l.starts_with("poem ")),
        "the catalog listed: {stdout}"
    );
    assert!(stdout.contains("\"conserved\": true"), "the sums: {stdout}");
    assert!(stdout.to_lowercase().contains("verified"), "{stdout}");
    assert_eq!(untracked(), before, "the block wrote into the source tree");
    for port in [18700, 18800, 18900] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port}"
        );
    }
}

// `git add -A` in the source tree can never pick up a key, a token, a
// wallet or a backup: the names the servers and the wallet write are all
// ignored (checked by git itself, against .gitignore).
#[test]
fn keys_wallets_and_backups_are_ignored_by_git() {
    let names = [
        "log.key",
        "witness.ml-dsa-44.key",
        "data/rsa-10.der",
        "data/admin.token",
        "data/offer.secret",
        "data/db/conf",
        "alice.wallet.json",
        "me.json",
        "me.json.bak",
        ".me.json.lock",
        "bank-2026-12-04.tar",
    ];
    let out = Command::new("git")
        .arg("check-ignore")
        .args(names)
        .current_dir(root())
        .output()
        .expect("git runs");
    let ignored = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !ignored.lines().any(|l| l == **n))
        .collect();
    assert!(missing.is_empty(), "not ignored by .gitignore: {missing:?}");
}
