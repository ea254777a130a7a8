//! C2SP signed-note and tlog-checkpoint interoperability: the checkpoints of
//! transparency-dev/tessera's test log (`testdata/note/tessera-log`) open with
//! its public key and are reproduced byte for byte with its private key.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use acd_core::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use acd_core::note::{self, NoteError, NoteSigner, NoteVerifier};

const LOG_SKEY: &str =
    "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg";
const LOG_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// Every checkpoint file, with the tree size its name announces (`None` for
/// the latest, `checkpoint`).
fn checkpoints() -> Vec<(Option<u64>, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/note/tessera-log");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let size = match name.strip_prefix("checkpoint") {
            Some("") => None,
            Some(n) => Some(n.strip_prefix('.').unwrap().parse().unwrap()),
            None => continue,
        };
        out.push((size, std::fs::read_to_string(dir.join(&name)).unwrap()));
    }
    out.sort();
    out
}

#[test]
fn log_keys_parse_and_match() {
    // The published private and public keys of the log belong together and
    // encode back to the same text.
    let signer = NoteSigner::from_private_key(LOG_SKEY).unwrap();
    let verifier = NoteVerifier::from_vkey(LOG_VKEY).unwrap();
    assert_eq!(signer.verifier(), verifier);
    assert_eq!(verifier.key_id(), 0x33d7_b496);
    assert_eq!(signer.private_key(), LOG_SKEY);
    assert_eq!(verifier.vkey(), LOG_VKEY);
}

#[test]
fn every_checkpoint_opens_with_the_log_key() {
    // All 17 files open with the public key, carry the size their name
    // announces, and re-encode to the same bytes.
    let log = NoteVerifier::from_vkey(LOG_VKEY).unwrap();
    let files = checkpoints();
    assert_eq!(files.len(), 17);
    for (size, text) in &files {
        let signed = SignedCheckpoint::open(text, &log).unwrap();
        assert_eq!(signed.checkpoint.origin, "example.com/log/testdata");
        assert_eq!(signed.checkpoint.size, size.unwrap_or(15));
        assert!(signed.checkpoint.extensions.is_empty());
        assert_eq!(&signed.to_text(), text);
        let (_, by) = note::open(text, std::slice::from_ref(&log)).unwrap();
        assert_eq!(by, vec![log.clone()]);
    }
}

#[test]
fn re_signing_reproduces_every_checkpoint() {
    // Parsing each body and signing it again with the private key gives the
    // file back byte for byte.
    let signer = NoteSigner::from_private_key(LOG_SKEY).unwrap();
    for (_, text) in checkpoints() {
        let body = note::Note::parse(&text).unwrap().text;
        let cp = Checkpoint::parse(&body).unwrap();
        assert_eq!(SignedCheckpoint::sign(cp, &signer).unwrap().to_text(), text);
        assert_eq!(signer.sign(&body).unwrap(), text);
    }
}

#[test]
fn checkpoints_are_rejected_under_other_keys() {
    // The files do not open with a key of the same name but another secret,
    // nor with a key of another name.
    let same_name = NoteSigner::new(
        "example.com/log/testdata",
        ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap()
    .verifier();
    let other_name = NoteVerifier::new(
        "example.com/log/other",
        *NoteVerifier::from_vkey(LOG_VKEY).unwrap().key(),
    )
    .unwrap();
    for (_, text) in checkpoints() {
        for key in [&same_name, &other_name] {
            assert_eq!(
                SignedCheckpoint::open(&text, key),
                Err(CheckpointError::Note(NoteError::NoValidSignature))
            );
        }
    }
}
