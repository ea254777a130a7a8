//! The witness's rules on its sled state: what it cosigns, what it
//! refuses with evidence, and what gossip makes it freeze.

#![allow(clippy::unwrap_used)]

use super::*;
use acd_core::checkpoint::Checkpoint;
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::merkle;
use acd_core::merkle::MemoryTree;
use acd_core::note::{Note, NoteSigner};
use acd_core::witness::AddCheckpoint;
use ed25519_dalek::SigningKey;

const ORIGIN: &str = "log.test/w";

fn log_key() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap()
}

fn witness(dir: &Path) -> Witness {
    let cosigner = Cosigner::new("witness.test/w1", SigningKey::from_bytes(&[2; 32])).unwrap();
    Witness::open(dir, cosigner, vec![log_key().verifier()]).unwrap()
}

fn tree(n: u64, salt: u8) -> MemoryTree {
    let mut t = MemoryTree::new();
    for i in 0..n {
        t.push(merkle::leaf_hash(&[salt, i as u8, (i >> 8) as u8]));
    }
    t
}

fn signed(t: &MemoryTree, signer: &NoteSigner) -> String {
    let c = Checkpoint {
        origin: ORIGIN.into(),
        size: t.len(),
        root: t.root(),
        extensions: vec![],
    };
    SignedCheckpoint::sign(c, signer).unwrap().to_text()
}

fn request(old: u64, t: &MemoryTree, signer: &NoteSigner) -> String {
    AddCheckpoint {
        old_size: old,
        proof: if old == 0 {
            vec![]
        } else {
            t.consistency_proof(old, t.len()).unwrap()
        },
        checkpoint: signed(t, signer),
    }
    .to_body()
}

// What the witness keeps (and gossips) is the checkpoint as the log
// signed it: a sender's repeated signature line or another key's line
// is accepted, as signed-note allows, but not stored.
#[test]
fn keeps_only_the_logs_signature() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    let t = tree(10, 0);
    let genuine = signed(&t, &log_key());
    let sig_line = genuine.lines().last().unwrap();
    let other = NoteSigner::new("other.test/k", SigningKey::from_bytes(&[9; 32])).unwrap();
    let foreign = other.sign(&format!("{ORIGIN}\n")).unwrap();
    let foreign_line = foreign.lines().last().unwrap();
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: format!("{genuine}{sig_line}\n{foreign_line}\n"),
    }
    .to_body();
    w.add_checkpoint(&body).unwrap();
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().note, genuine);
}

// The witness cosigns a first checkpoint, then only consistent extensions of it; its cosignatures verify.
#[test]
fn cosigns_consistent_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    let t = tree(300, 0);
    let first = tree(10, 0);
    let line = w.add_checkpoint(&request(0, &first, &log_key())).unwrap();
    let note = Note::parse(&format!("{}{line}", signed(&first, &log_key()))).unwrap();
    let cosigned =
        acd_core::cosignature::cosigners(&note, std::slice::from_ref(w.cosigner().verifier()));
    assert_eq!(cosigned.len(), 1);
    w.add_checkpoint(&request(10, &t, &log_key())).unwrap();
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 300);
    // The same checkpoint again is fine (cosigned anew).
    w.add_checkpoint(&request(300, &t, &log_key())).unwrap();
}

// An ML-DSA-44 witness cosigns the same way, with lines of its type; a
// checkpoint with an extension line, which its signature would not cover,
// is refused as malformed and records nothing.
#[test]
fn an_ml_dsa_44_witness_cosigns_and_refuses_extensions() {
    use acd_core::cosignature::{CosignatureKind, cosigners};
    let dir = tempfile::tempdir().unwrap();
    let cosigner =
        Cosigner::from_seed(CosignatureKind::MlDsa44, "witness.test/pq", &[2; 32]).unwrap();
    let w = Witness::open(dir.path(), cosigner, vec![log_key().verifier()]).unwrap();
    let t = tree(10, 0);
    let extended = SignedCheckpoint::sign(
        Checkpoint {
            origin: ORIGIN.into(),
            size: t.len(),
            root: t.root(),
            extensions: vec!["ext".into()],
        },
        &log_key(),
    )
    .unwrap()
    .to_text();
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: extended,
    }
    .to_body();
    assert!(matches!(
        w.add_checkpoint(&body),
        Err(WitnessError::Malformed(_))
    ));
    assert!(w.latest(ORIGIN).unwrap().is_none());

    let line = w.add_checkpoint(&request(0, &t, &log_key())).unwrap();
    let note = Note::parse(&format!("{}{line}", signed(&t, &log_key()))).unwrap();
    assert_eq!(note.signatures.last().unwrap().signature.len(), 8 + 2420);
    assert_eq!(
        cosigners(&note, std::slice::from_ref(w.cosigner().verifier())).len(),
        1
    );
    let more = tree(300, 0);
    w.add_checkpoint(&request(10, &more, &log_key())).unwrap();
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 300);
}

// A log whose first cosigned checkpoint is the empty tree gets its next one cosigned without a proof.
#[test]
fn from_the_empty_tree() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    w.add_checkpoint(&request(0, &tree(0, 0), &log_key()))
        .unwrap();
    w.add_checkpoint(&request(0, &tree(3, 0), &log_key()))
        .unwrap();
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 3);
    assert!(w.evidence().unwrap().is_empty());
}

// Wrong old sizes, unknown origins, untrusted signatures and shrinking trees are refused as the spec says.
#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    let t = tree(20, 0);
    w.add_checkpoint(&request(0, &tree(5, 0), &log_key()))
        .unwrap();
    assert!(matches!(
        w.add_checkpoint(&request(4, &t, &log_key())),
        Err(WitnessError::SizeMismatch { old: 4, latest: 5 })
    ));
    let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    assert!(matches!(
        w.add_checkpoint(&request(5, &t, &stranger)),
        Err(WitnessError::Unsigned(_))
    ));
    let other = NoteSigner::new("other.test/log", SigningKey::from_bytes(&[1; 32])).unwrap();
    let c = SignedCheckpoint::sign(
        Checkpoint {
            origin: "other.test/log".into(),
            size: 1,
            root: [0; 32],
            extensions: vec![],
        },
        &other,
    )
    .unwrap();
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: c.to_text(),
    }
    .to_body();
    assert!(matches!(
        w.add_checkpoint(&body),
        Err(WitnessError::UnknownOrigin(_))
    ));
    assert!(matches!(
        w.add_checkpoint(&request(5, &tree(5, 0), &log_key()).replace("old 5", "old 6")),
        Err(WitnessError::OldTooLarge { .. })
    ));
    assert!(matches!(
        w.add_checkpoint("garbage"),
        Err(WitnessError::Malformed(_))
    ));
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 5);
}

// A fork is refused with evidence and the state does not move: a larger tree with a proof that does not verify freezes nothing (anyone can send a bad proof), a checkpoint of the same size with another root freezes the origin.
#[test]
fn forks_are_refused_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    w.add_checkpoint(&request(0, &tree(8, 0), &log_key()))
        .unwrap();
    let bigger_fork = tree(12, 1);
    assert!(matches!(
        w.add_checkpoint(&request(8, &bigger_fork, &log_key())),
        Err(WitnessError::Inconsistent { .. })
    ));
    assert!(!w.frozen().is_frozen(ORIGIN).unwrap());
    let same_size = AddCheckpoint {
        old_size: 8,
        proof: vec![],
        checkpoint: signed(&tree(8, 1), &log_key()),
    };
    assert!(matches!(
        w.add_checkpoint(&same_size.to_body()),
        Err(WitnessError::RootMismatch { size: 8 })
    ));
    assert!(w.frozen().is_frozen(ORIGIN).unwrap());
    let record = w.frozen().get(ORIGIN).unwrap().unwrap();
    assert_eq!(record.kind, acd_core::evidence::Kind::SplitView);
    assert_eq!(record.checkpoints[1], same_size.checkpoint);
    assert!(matches!(
        w.add_checkpoint(&request(8, &tree(9, 0), &log_key())),
        Err(WitnessError::Frozen { .. })
    ));
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().root, tree(8, 0).root());
    let evidence = w.evidence().unwrap();
    assert_eq!(evidence.len(), 2);
    assert!(evidence[0].1.contains(&signed(&tree(8, 0), &log_key())));

    // Cleared, the same contradiction (acknowledged) does not freeze again.
    assert!(w.frozen().clear(ORIGIN).unwrap());
    assert!(matches!(
        w.add_checkpoint(&same_size.to_body()),
        Err(WitnessError::RootMismatch { size: 8 })
    ));
    assert!(!w.frozen().is_frozen(ORIGIN).unwrap());
    w.add_checkpoint(&request(8, &tree(9, 0), &log_key()))
        .unwrap();
}

// The cosigned state survives a restart.
#[test]
fn state_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let w = witness(dir.path());
        w.add_checkpoint(&request(0, &tree(3, 0), &log_key()))
            .unwrap();
    }
    let w = witness(dir.path());
    assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 3);
    assert!(matches!(
        w.add_checkpoint(&request(0, &tree(4, 0), &log_key())),
        Err(WitnessError::SizeMismatch { latest: 3, .. })
    ));
}

// Of two racing requests from the same old size, exactly one is cosigned: the witness never rolls back.
#[test]
fn racing_requests_do_not_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let w = std::sync::Arc::new(witness(dir.path()));
    w.add_checkpoint(&request(0, &tree(4, 0), &log_key()))
        .unwrap();
    let a = request(4, &tree(10, 0), &log_key());
    let b = request(4, &tree(20, 0), &log_key());
    let (wa, wb) = (w.clone(), w.clone());
    let ta = std::thread::spawn(move || wa.add_checkpoint(&a).is_ok());
    let tb = std::thread::spawn(move || wb.add_checkpoint(&b).is_ok());
    let oks = [ta.join().unwrap(), tb.join().unwrap()];
    assert_eq!(oks.iter().filter(|x| **x).count(), 1);
    let size = w.latest(ORIGIN).unwrap().unwrap().size;
    assert!(size == 10 || size == 20);
}

// A peer's checkpoint of the same size with another root freezes the origin: evidence verifies offline, requests are refused, a restart stays frozen, and clearing acknowledges that evidence so the same peer checkpoint does not freeze it again.
#[test]
fn split_view_from_a_peer_freezes_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let evidence_dir = dir.path().join("evidence");
    let db = dir.path().join("db");
    let w = witness(&db).with_evidence_dir(evidence_dir.clone());
    w.add_checkpoint(&request(0, &tree(8, 0), &log_key()))
        .unwrap();
    assert!(matches!(
        w.check_peer(&signed(&tree(8, 0), &log_key())).unwrap(),
        PeerCheck::Agrees
    ));
    let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    assert!(matches!(
        w.check_peer(&signed(&tree(8, 1), &stranger)).unwrap(),
        PeerCheck::Unsigned(_)
    ));
    let theirs = signed(&tree(8, 1), &log_key());
    let PeerCheck::SplitView(ev) = w.check_peer(&theirs).unwrap() else {
        panic!("not a split view");
    };
    let path = w.freeze(&ev).unwrap().unwrap();
    let on_disk: Evidence = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let finding = acd_core::evidence::verify(&on_disk, &log_key().verifier()).unwrap();
    assert!(finding.conclusive);
    assert!(matches!(
        w.add_checkpoint(&request(8, &tree(9, 0), &log_key())),
        Err(WitnessError::Frozen { .. })
    ));
    assert!(matches!(w.check_peer(&theirs).unwrap(), PeerCheck::Settled));
    drop(w);

    let w = witness(&db);
    assert!(matches!(
        w.add_checkpoint(&request(8, &tree(9, 0), &log_key())),
        Err(WitnessError::Frozen { .. })
    ));
    assert!(w.frozen().clear(ORIGIN).unwrap());
    assert!(!w.frozen().clear(ORIGIN).unwrap());
    assert!(matches!(w.check_peer(&theirs).unwrap(), PeerCheck::Settled));
    w.add_checkpoint(&request(8, &tree(9, 0), &log_key()))
        .unwrap();
    // A new contradiction is a new split view.
    assert!(matches!(
        w.check_peer(&signed(&tree(9, 2), &log_key())).unwrap(),
        PeerCheck::SplitView(_)
    ));
}

// A peer's checkpoint of another size needs a consistency proof: a valid one settles it, a failing one is evidence.
#[test]
fn peer_of_another_size_needs_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    w.add_checkpoint(&request(0, &tree(8, 0), &log_key()))
        .unwrap();
    let grown = tree(20, 0);
    let PeerCheck::NeedsProof {
        from,
        to,
        ours,
        theirs,
    } = w.check_peer(&signed(&grown, &log_key())).unwrap()
    else {
        panic!("no proof asked");
    };
    assert_eq!((from, to), (8, 20));
    let proof = grown.consistency_proof(8, 20).unwrap();
    assert!(w.conclude(&ours, &theirs, proof).unwrap().is_none());

    let fork = tree(20, 1);
    let PeerCheck::NeedsProof { ours, theirs, .. } =
        w.check_peer(&signed(&fork, &log_key())).unwrap()
    else {
        panic!("no proof asked");
    };
    let ev = w
        .conclude(&ours, &theirs, fork.consistency_proof(8, 20).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(ev.kind, acd_core::evidence::Kind::Inconsistent);
    let finding = acd_core::evidence::verify(&ev, &log_key().verifier()).unwrap();
    assert!(!finding.conclusive);
}
