use super::*;
use acd_core::checkpoint::Checkpoint;
use acd_core::cosignature::Cosigner;
use acd_core::entry::{KeyCommit, Tid};
use acd_core::merkle::{self, MemoryTree};
use acd_core::note::NoteSigner;
use ed25519_dalek::SigningKey;

const ORIGIN: &str = "explorer.test/log";

struct Log {
    signer: NoteSigner,
    leaves: Vec<Vec<u8>>,
}

fn commit_entry(i: u8, merchant: &SigningKey) -> Vec<u8> {
    let kc = KeyCommit {
        log_origin: ORIGIN.into(),
        tid: Tid([i; 16]),
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms: 2_000_000,
        key: [i; 32],
    };
    LogEntry::Commit {
        timestamp_ms: 1_000_000 + u64::from(i),
        tid: kc.tid,
        merchant: kc.merchant,
        expiration_ms: kc.expiration_ms,
        key: kc.key,
        signature: kc.sign(merchant),
    }
    .encode()
}

impl Log {
    fn new(n: u8, salt: u8) -> Log {
        let merchant = SigningKey::from_bytes(&[salt; 32]);
        Log {
            signer: NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap(),
            leaves: (0..n).map(|i| commit_entry(i, &merchant)).collect(),
        }
    }
    fn tree(&self, size: usize) -> MemoryTree {
        let mut t = MemoryTree::new();
        for l in &self.leaves[..size] {
            t.push(merkle::leaf_hash(l));
        }
        t
    }
    fn checkpoint(&self, size: usize) -> SignedCheckpoint {
        SignedCheckpoint::sign(
            Checkpoint {
                origin: ORIGIN.into(),
                size: size as u64,
                root: self.tree(size).root(),
                extensions: vec![],
            },
            &self.signer,
        )
        .unwrap()
    }
    fn note(&self, size: usize) -> String {
        self.checkpoint(size).note.to_text()
    }
    fn consistency(&self, from: u64, to: usize) -> Vec<String> {
        self.tree(to)
            .consistency_proof(from, to as u64)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect()
    }
    fn entry_proof(&self, index: usize, size: usize) -> EntryProof {
        let e = LogEntry::decode(&self.leaves[index]).unwrap();
        EntryProof {
            index: index as u64,
            tid: e.tid(),
            outcome: e.outcome(),
            timestamp_ms: e.timestamp_ms(),
            entry: self.leaves[index].clone(),
            leaf_hash: merkle::leaf_hash(&self.leaves[index]),
            tree_size: size as u64,
            inclusion: self
                .tree(size)
                .inclusion_proof(index as u64, size as u64)
                .unwrap(),
            checkpoint: self.note(size),
        }
    }
    fn vkey(&self) -> String {
        self.signer.verifier().vkey()
    }
}

fn ask(req: Value) -> Answer {
    serde_json::from_slice(&call(&serde_json::to_vec(&req).unwrap())).unwrap()
}

fn ok(req: Value) -> Value {
    let a = ask(req);
    assert_eq!(a.error, None);
    a.ok.unwrap()
}

fn err(req: Value) -> String {
    let a = ask(req);
    assert!(a.ok.is_none(), "{:?}", a.ok);
    a.error.unwrap()
}

#[test]
fn a_checkpoint_is_described_with_every_signature() {
    let log = Log::new(5, 1);
    let w1 = Cosigner::new("w1.test", SigningKey::from_bytes(&[2; 32])).unwrap();
    let w2 = Cosigner::new("w2.test", SigningKey::from_bytes(&[3; 32])).unwrap();
    let stranger = Cosigner::new("stranger.test", SigningKey::from_bytes(&[4; 32])).unwrap();
    let mut cp = log.checkpoint(5);
    cp.note
        .signatures
        .push(w1.cosign(&cp.note.text, 1_700_000_000).unwrap());
    // A line under w2's name and id whose signature is w1's: not verified.
    let mut forged = w1.cosign(&cp.note.text, 1_700_000_001).unwrap();
    forged.name = "w2.test".into();
    forged.key_id = w2.verifier().key_id();
    cp.note.signatures.push(forged);
    cp.note
        .signatures
        .push(stranger.cosign(&cp.note.text, 5).unwrap());
    let trust = json!({"log": log.vkey(), "witnesses": [w1.verifier().vkey(), w2.verifier().vkey()], "threshold": 1});
    let a = ok(json!({"op": "checkpoint", "note": cp.note.to_text(), "trust": trust}));
    assert_eq!(a["origin"], ORIGIN);
    assert_eq!(a["size"], 5);
    assert_eq!(a["root"], hex::encode(log.tree(5).root()));
    assert_eq!(a["cosigned"], 1);
    assert_eq!(a["policy_met"], true);
    assert_eq!(a["view"]["state"], "first");
    let sigs = a["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 4);
    assert_eq!(sigs[0]["role"], "log");
    assert_eq!(sigs[0]["verified"], true);
    assert_eq!(sigs[1]["verified"], true);
    assert_eq!(sigs[1]["timestamp"], 1_700_000_000u64);
    assert_eq!(sigs[2]["role"], "witness");
    assert_eq!(sigs[2]["verified"], false);
    assert_eq!(sigs[3]["role"], "unknown");
    // Two of two required: not met.
    let trust = json!({"log": log.vkey(), "witnesses": [w1.verifier().vkey(), w2.verifier().vkey()], "threshold": 2});
    let a = ok(json!({"op": "checkpoint", "note": cp.note.to_text(), "trust": trust}));
    assert_eq!(a["policy_met"], false);
}

#[test]
fn a_checkpoint_under_another_key_or_garbage_is_refused() {
    let log = Log::new(3, 1);
    let other = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8; 32])).unwrap();
    let trust = json!({"log": other.verifier().vkey()});
    assert!(
        err(json!({"op": "checkpoint", "note": log.note(3), "trust": trust}))
            .contains("checkpoint")
    );
    let trust = json!({"log": log.vkey()});
    let mut tampered = log.note(3).into_bytes();
    tampered[ORIGIN.len() + 1] = b'4';
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(
        err(json!({"op": "checkpoint", "note": tampered, "trust": trust})).contains("checkpoint")
    );
    assert!(
        err(json!({"op": "checkpoint", "note": log.note(3), "trust": {"log": "nonsense"}}))
            .contains("log's key")
    );
    let too_many = json!({"log": log.vkey(), "threshold": 1});
    assert!(
        err(json!({"op": "checkpoint", "note": log.note(3), "trust": too_many}))
            .contains("names 0")
    );
    assert!(err(json!({"op": "launch"})).starts_with("bad request"));
    let answer: Answer = serde_json::from_slice(&call(b"\xff{")).unwrap();
    assert!(answer.error.unwrap().starts_with("bad request"));
}

#[test]
fn the_view_moves_forward_only_on_a_consistency_proof() {
    let log = Log::new(12, 1);
    let trust = || json!({"log": log.vkey()});
    let step = |prev: usize, size: usize, proof: Option<Vec<String>>| {
        let mut req = json!({"op": "checkpoint", "note": log.note(size), "trust": trust(), "previous": log.note(prev)});
        if let Some(p) = proof {
            req["consistency"] = json!(p);
        }
        ok(req)["view"].clone()
    };
    assert_eq!(step(5, 5, None)["state"], "same");
    let need = step(5, 12, None);
    assert_eq!(need["state"], "needs_consistency");
    assert_eq!(
        (need["from"].as_u64(), need["to"].as_u64()),
        (Some(5), Some(12))
    );
    assert_eq!(step(5, 12, Some(log.consistency(5, 12)))["state"], "newer");
    assert_eq!(step(12, 5, Some(log.consistency(5, 12)))["state"], "older");
    // A tampered proof: not consistent, and not proof of a fork by itself.
    let mut bad = log.consistency(5, 12);
    bad[0] = hex::encode([0u8; 32]);
    let v = step(5, 12, Some(bad));
    assert_eq!(v["state"], "split");
    assert_eq!(v["definite"], false);
}

#[test]
fn a_fork_is_shown_with_both_signed_notes() {
    let a = Log::new(6, 1);
    let b = Log::new(8, 2);
    let trust = json!({"log": a.vkey()});
    let v = ok(
        json!({"op": "checkpoint", "note": b.note(6), "trust": trust, "previous": a.note(6)}),
    )["view"]
        .clone();
    assert_eq!(v["state"], "split");
    assert_eq!(v["definite"], true);
    assert_eq!(v["previous"], a.note(6));
    assert_eq!(v["current"], b.note(6));
    // The fork grows: its own consistency proof does not lead from A's root.
    let trust = json!({"log": a.vkey()});
    let v = ok(
        json!({"op": "checkpoint", "note": b.note(8), "trust": trust, "previous": a.note(6),
        "consistency": b.consistency(6, 8)}),
    )["view"]
        .clone();
    assert_eq!(v["state"], "split");
    assert_eq!(v["definite"], false);
}

#[test]
fn an_entry_proof_is_verified_and_a_tampered_one_refused() {
    let log = Log::new(7, 1);
    let trust = || json!({"log": log.vkey()});
    let proof = log.entry_proof(3, 7);
    let a = ok(json!({"op": "entry", "proof": proof, "trust": trust()}));
    assert_eq!(a["tid"], Tid([3; 16]).to_string());
    assert_eq!(a["outcome"], "commit");
    assert_eq!(a["index"], 3);
    assert_eq!(a["checkpoint"]["size"], 7);
    assert_eq!(a["timely"], true);
    let mut bad = proof.clone();
    bad.inclusion[0][5] ^= 1;
    assert!(err(json!({"op": "entry", "proof": bad, "trust": trust()})).contains("inclusion"));
    let mut bad = proof.clone();
    bad.entry[40] ^= 1;
    assert!(err(json!({"op": "entry", "proof": bad, "trust": trust()})).contains("leaf hash"));
    let mut bad = proof;
    bad.index = 4;
    assert!(err(json!({"op": "entry", "proof": bad, "trust": trust()})).contains("inclusion"));
}

#[test]
fn entries_are_decoded_with_their_signatures_checked() {
    let log = Log::new(3, 1);
    let mut entries: Vec<IndexedEntry> = log
        .leaves
        .iter()
        .enumerate()
        .map(|(i, e)| IndexedEntry {
            index: i as u64,
            entry: e.clone(),
        })
        .collect();
    entries[1].entry[30] ^= 1;
    entries[2].entry.truncate(10);
    let a = ok(json!({"op": "entries", "origin": ORIGIN, "entries": entries}));
    let list = a["entries"].as_array().unwrap();
    assert_eq!(list[0]["signature_ok"], true);
    assert_eq!(list[0]["expiration_ms"], 2_000_000);
    assert_eq!(list[1]["signature_ok"], false);
    assert!(list[2]["error"].is_string());
}

/// The hex contents of tile (`level`, `index`) of `tree` at `width` hashes.
fn tile_hex(tree: &MemoryTree, level: u8, index: u64, width: u64) -> String {
    let hashes: Vec<Hash> = (0..width)
        .map(|i| tree.subtree_hash(level * 8, index * 256 + i))
        .collect();
    hex::encode(acd_core::tile::tile_bytes(&hashes))
}

/// Serves the tiles `consistency_tiles` names from `tree` (of at least the
/// size asked), as a mirror would: partial tiles at their width, or the
/// full tile when `full` is set.
fn serve_tiles(tiles: &Value, tree: &MemoryTree, full: bool) -> Value {
    let mut out = serde_json::Map::new();
    for t in tiles["tiles"].as_array().unwrap() {
        let path = t[if full { "full" } else { "path" }].as_str().unwrap();
        let parsed = acd_core::tile::parse_tile_path(path).unwrap();
        let acd_core::tile::TilePath::Hashes(id) = parsed else {
            panic!("{path}")
        };
        out.insert(
            path.to_owned(),
            json!(tile_hex(tree, id.level, id.index, u64::from(id.width))),
        );
    }
    Value::Object(out)
}

// On a mirror of the read path only, the consistency proof is computed from
// the hash tiles (partial ones, or the full ones that replace them once the
// tree grew) and equals RFC 9162's; a wrong tile gives a proof that does not
// verify, and a missing one is named.
#[test]
fn a_consistency_proof_is_computed_from_tiles() {
    let mut big = MemoryTree::new();
    for i in 0u32..70_000 {
        big.push(merkle::leaf_hash(&i.to_be_bytes()));
    }
    let mut tree = MemoryTree::new();
    for h in &big.leaves()[..66_000] {
        tree.push(*h);
    }
    for (from, to) in [
        (1u64, 66_000u64),
        (300, 700),
        (256, 65_536),
        (65_537, 66_000),
        (5, 6),
    ] {
        let tiles = ok(json!({"op": "consistency_tiles", "from": from, "to": to}));
        assert!(!tiles["tiles"].as_array().unwrap().is_empty());
        let want: Vec<String> = tree
            .consistency_proof(from, to)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
        for (source, full) in [(&tree, false), (&big, true)] {
            let got = ok(
                json!({"op": "consistency_from_tiles", "from": from, "to": to,
                "tiles": serve_tiles(&tiles, source, full)}),
            );
            assert_eq!(
                got["proof"],
                json!(want),
                "{from}..{to}, full tiles: {full}"
            );
        }
    }
    let tiles = ok(json!({"op": "consistency_tiles", "from": 300, "to": 700}));
    assert_eq!(
        tiles["tiles"][0],
        json!({"path": "tile/0/001", "full": "tile/0/001"})
    );
    let mut served = serve_tiles(&tiles, &tree, false);
    let first = tiles["tiles"][0]["path"].as_str().unwrap().to_owned();
    let mut bytes = hex::decode(served[&first].as_str().unwrap()).unwrap();
    bytes[40] ^= 1;
    served[&first] = json!(hex::encode(&bytes));
    let got = ok(json!({"op": "consistency_from_tiles", "from": 300, "to": 700, "tiles": served}));
    let proof: Vec<Hash> = serde_json::from_value::<Vec<String>>(got["proof"].clone())
        .unwrap()
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect();
    assert!(
        merkle::verify_consistency(300, 700, &proof, &tree.root_at(300), &tree.root_at(700))
            .is_err()
    );
    served.as_object_mut().unwrap().remove(&first);
    assert!(
        err(json!({"op": "consistency_from_tiles", "from": 300, "to": 700, "tiles": served}))
            .contains("was not fetched")
    );
    assert!(
        err(json!({"op": "consistency_tiles", "from": 7, "to": 7}))
            .contains("no consistency proof")
    );
    assert!(
        err(json!({"op": "consistency_tiles", "from": 0, "to": 7}))
            .contains("no consistency proof")
    );
}

// Entries come from the entry bundles a mirror serves: the page is told
// which (partial for the last one), and gets each entry decoded and its
// signature checked, exactly the range asked.
#[test]
fn entries_are_read_from_entry_bundles() {
    let b = ok(json!({"op": "entry_bundles", "start": 250, "end": 270, "size": 300}));
    assert_eq!(
        b["bundles"],
        json!([
            {"index": 0, "path": "tile/entries/000", "full": "tile/entries/000"},
            {"index": 1, "path": "tile/entries/001.p/44", "full": "tile/entries/001"}
        ])
    );
    assert!(
        err(json!({"op": "entry_bundles", "start": 0, "end": 301, "size": 300}))
            .contains("inside the tree")
    );
    assert!(
        err(json!({"op": "entry_bundles", "start": 0, "end": 1001, "size": 5000}))
            .contains("at most 1000")
    );

    let log = Log::new(30, 1);
    let refs: Vec<&[u8]> = log.leaves.iter().map(Vec::as_slice).collect();
    let bundle = hex::encode(acd_core::tile::encode_bundle(&refs).unwrap());
    let a = ok(
        json!({"op": "bundle_entries", "origin": ORIGIN, "start": 10, "end": 30, "bundles": [bundle]}),
    );
    let list = a["entries"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(list[0]["index"], 10);
    assert!(list.iter().all(|e| e["signature_ok"] == true));
    assert!(err(json!({"op": "bundle_entries", "origin": ORIGIN, "start": 10, "end": 31, "bundles": [bundle]})).contains("hold 20 of the entries"));
    assert!(err(json!({"op": "bundle_entries", "origin": ORIGIN, "start": 0, "end": 3, "bundles": ["zz"]})).contains("not hex"));
}
