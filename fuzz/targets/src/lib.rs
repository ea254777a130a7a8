//! Fuzz targets for every parser of outside input in `acd-core`: signed
//! notes and vkeys (C2SP signed-note), checkpoints (tlog-checkpoint), tile
//! paths, tiles and entry bundles (tlog-tiles), log entries, tlog-proof
//! texts and proof bundles, evidence files, tlog-witness request bodies,
//! every JSON body of the HTTP APIs, and Merkle proof checks (RFC 9162) at
//! arbitrary sizes.
//!
//! Each target takes arbitrary bytes and must never panic. Where a parser
//! has an encoder, a parsed value must encode back to the same bytes (the
//! formats are canonical: one value, one text) or at least parse again to
//! the same value. The `fuzz/` cargo-fuzz crate drives these functions on
//! nightly; `tests/corpus.rs` replays the committed corpora on stable.

#![allow(clippy::panic)]

use acd_core::bank_api;
use acd_core::bundle::ProofBundle;
use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::cosignature::CosignatureVerifier;
use acd_core::entry::LogEntry;
use acd_core::evidence::{self, Evidence};
use acd_core::log_api;
use acd_core::merkle::{self, Hash};
use acd_core::note::{self, Note, NoteSigner, NoteVerifier};
use acd_core::proof::WitnessPolicy;
use acd_core::tile;
use acd_core::tlog_proof::TlogProof;
use acd_core::witness::{self, AddCheckpoint};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A fuzz target: arbitrary bytes in, a panic if a check fails.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/` call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("note", note),
    ("checkpoint", checkpoint),
    ("tile", tile),
    ("entry", entry),
    ("tlog_proof", tlog_proof),
    ("evidence", evidence),
    ("witness_request", witness_request),
    ("json_api", json_api),
    ("merkle_proofs", merkle_proofs),
];

/// The log key the targets verify against: fixed, so that inputs built
/// with it (the seed corpora) reach the code behind the signature checks.
pub fn log_signer() -> NoteSigner {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    match NoteSigner::new("fuzz.example/log", key) {
        Ok(signer) => signer,
        Err(e) => panic!("fixed log key: {e}"),
    }
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Signed notes, vkeys and private keys (C2SP signed-note).
pub fn note(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(parsed) = Note::parse(s) {
        let again = Note::parse(&parsed.to_text());
        assert_eq!(again.as_ref(), Ok(&parsed), "note does not round-trip");
        let _ = note::open(s, &[log_signer().verifier()]);
    }
    if let Ok(v) = NoteVerifier::from_vkey(s) {
        let again = NoteVerifier::from_vkey(&v.vkey()).map(|w| (w.name().to_owned(), w.key_id()));
        assert_eq!(again, Ok((v.name().to_owned(), v.key_id())));
    }
    if let Ok(v) = CosignatureVerifier::from_vkey(s) {
        let again = CosignatureVerifier::from_vkey(&v.vkey()).map(|w| w.key_id());
        assert_eq!(again, Ok(v.key_id()));
    }
    if let Ok(signer) = NoteSigner::from_private_key(s) {
        let again = NoteSigner::from_private_key(&signer.private_key()).map(|t| t.key_id());
        assert_eq!(again, Ok(signer.key_id()));
    }
    let _ = note::split_vkey_url(s);
}

/// Checkpoint bodies and signed checkpoints (C2SP tlog-checkpoint).
pub fn checkpoint(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(c) = Checkpoint::parse(s) {
        assert_eq!(c.to_text(), s, "checkpoint text is not canonical");
    }
    if let Ok(signed) = SignedCheckpoint::open(s, &log_signer().verifier()) {
        let again = SignedCheckpoint::open(&signed.to_text(), &log_signer().verifier());
        assert!(again.is_ok(), "a signed checkpoint does not reopen");
    }
}

/// Tile paths, hash tiles and entry bundles (C2SP tlog-tiles).
pub fn tile(data: &[u8]) {
    if let Some(s) = text(data)
        && let Ok(path) = tile::parse_tile_path(s)
    {
        let written = path.to_path();
        assert_eq!(tile::parse_tile_path(&written), Ok(path));
        assert_eq!(
            written.strip_prefix("tile/").unwrap_or(&written),
            s.strip_prefix("tile/").unwrap_or(s)
        );
    }
    if let Ok(hashes) = tile::tile_hashes(data) {
        assert_eq!(tile::tile_bytes(&hashes), data);
    }
    if let Ok(entries) = tile::decode_bundle(data) {
        assert_eq!(tile::encode_bundle(&entries).as_deref(), Ok(data));
    }
}

/// Log entries (commit P4/P5 and abort), strictly decoded.
pub fn entry(data: &[u8]) {
    if let Ok(e) = LogEntry::decode(data) {
        assert_eq!(e.encode(), data, "entry encoding is not canonical");
        let _ = e.verify_signature("fuzz.example/log");
    }
}

/// tlog-proof texts, and proof bundles (JSON) verified offline.
pub fn tlog_proof(data: &[u8]) {
    if let Some(s) = text(data)
        && let Ok(p) = TlogProof::parse(s)
    {
        assert_eq!(TlogProof::parse(&p.to_text()), Ok(p));
    }
    if let Ok(bundle) = serde_json::from_slice::<ProofBundle>(data) {
        let _ = bundle.verify(&log_signer().verifier(), &WitnessPolicy::none());
    }
}

/// Evidence files of a log's misbehaviour, verified offline.
pub fn evidence(data: &[u8]) {
    if let Ok(e) = serde_json::from_slice::<Evidence>(data) {
        round_trip(&e);
        let _ = evidence::verify(&e, &log_signer().verifier());
    }
}

/// tlog-witness request bodies (`add-checkpoint`) and the 409 size body.
pub fn witness_request(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(req) = AddCheckpoint::parse(s) {
        assert_eq!(req.to_body(), s, "add-checkpoint body is not canonical");
    }
    let _ = witness::parse_size_body(s);
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = match serde_json::to_vec(value) {
        Ok(json) => json,
        Err(e) => panic!("a parsed body does not serialize: {e}"),
    };
    match serde_json::from_slice::<T>(&json) {
        Ok(again) => assert_eq!(&again, value, "body does not round-trip"),
        Err(e) => panic!("a serialized body does not parse: {e}"),
    }
}

fn json_as<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        round_trip(&v);
    }
}

/// Every JSON body the servers and clients accept. The first byte picks
/// the type, so that one corpus covers them all.
pub fn json_api(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 26 {
        0 => json_as::<log_api::CommitRequest>(body),
        1 => json_as::<log_api::AbortRequest>(body),
        2 => json_as::<log_api::EntryProof>(body),
        3 => json_as::<log_api::ConsistencyProof>(body),
        4 => json_as::<log_api::Entries>(body),
        5 => json_as::<log_api::ErrorBody>(body),
        6 => json_as::<bank_api::BankInfo>(body),
        7 => json_as::<bank_api::WithdrawRequest>(body),
        8 => json_as::<bank_api::BlindSignatures>(body),
        9 => json_as::<bank_api::RegisterRequest>(body),
        10 => json_as::<bank_api::SignedReceipt>(body),
        11 => json_as::<bank_api::SpendRequest>(body),
        12 => json_as::<bank_api::SpendResponse>(body),
        13 => json_as::<bank_api::DepositRequest>(body),
        14 => json_as::<bank_api::DepositResponse>(body),
        15 => json_as::<bank_api::RefundRequest>(body),
        16 => {
            if let Ok(offer) = serde_json::from_slice::<bank_api::SignedOffer>(body) {
                round_trip(&offer);
                let _ = offer.offer.verify(&offer.signature);
            }
        }
        17 => json_as::<bank_api::DisputeRequest>(body),
        18 => json_as::<bank_api::DisputeResponse>(body),
        19 => json_as::<bank_api::CreateAccount>(body),
        20 => json_as::<bank_api::Credit>(body),
        21 => json_as::<bank_api::AccountInfo>(body),
        22 => json_as::<bank_api::Sums>(body),
        23 => json_as::<bank_api::Catalog>(body),
        24 => json_as::<bank_api::OfferRequest>(body),
        _ => {
            json_as::<bank_api::OfferResponse>(body);
            json_as::<bank_api::PurchaseRequest>(body);
            json_as::<bank_api::Delivery>(body);
        }
    }
}

/// Reads little-endian numbers and hashes off the input, zero past its end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }
    fn hash(&mut self) -> Hash {
        let mut h = [0u8; 32];
        let n = self.0.len().min(32);
        h[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        h
    }
}

/// Merkle proofs (RFC 9162 2.1.3, 2.1.4): verification of arbitrary proofs
/// at arbitrary (u64) sizes never panics; proofs generated for a real tree
/// of up to 512 leaves verify, and any changed hash in them does not.
pub fn merkle_proofs(data: &[u8]) {
    let mut c = Cursor(data);
    let (a, b, index) = (c.u64(), c.u64(), c.u64());
    let leaf = c.hash();
    let root1 = c.hash();
    let root2 = c.hash();
    let proof: Vec<Hash> =
        c.0.chunks(32)
            .take(70)
            .map(|ch| Cursor(ch).hash())
            .collect();
    let _ = merkle::verify_inclusion(&leaf, index, a, &proof, &root1);
    let _ = merkle::root_from_inclusion_proof(&leaf, index, b, &proof);
    let _ = merkle::verify_consistency(a, b, &proof, &root1, &root2);

    // A real tree: sizes and the index taken small from the same input.
    let size2 = b % 512 + 1;
    let size1 = a % size2 + 1;
    let index = index % size2;
    let leaves: Vec<Hash> = (0..size2)
        .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
        .collect();
    let subtree = |level: u8, i: u64| -> Result<Hash, ()> {
        let start = (i << level) as usize;
        let end = ((i + 1) << level) as usize;
        match leaves.get(start..end) {
            Some(part) => Ok(merkle::root_from_leaf_hashes(part)),
            None => Err(()),
        }
    };
    let root_at = |n: u64| merkle::root_from_leaf_hashes(&leaves[..n as usize]);
    let (r1, r2) = (root_at(size1), root_at(size2));
    let Ok(incl) = merkle::inclusion_proof(index, size2, subtree) else {
        panic!("inclusion proof for {index} in {size2} failed");
    };
    assert_eq!(
        merkle::verify_inclusion(&leaves[index as usize], index, size2, &incl, &r2),
        Ok(())
    );
    let Ok(cons) = merkle::consistency_proof(size1, size2, subtree) else {
        panic!("consistency proof {size1} -> {size2} failed");
    };
    assert_eq!(
        merkle::verify_consistency(size1, size2, &cons, &r1, &r2),
        Ok(())
    );
    // One changed bit anywhere in a proof is caught.
    let flip = (leaf[0] as usize) % (incl.len() + cons.len()).max(1);
    if flip < incl.len() {
        let mut bad = incl.clone();
        bad[flip][0] ^= 1;
        assert!(
            merkle::verify_inclusion(&leaves[index as usize], index, size2, &bad, &r2).is_err()
        );
    } else if flip - incl.len() < cons.len() {
        let mut bad = cons.clone();
        bad[flip - incl.len()][0] ^= 1;
        assert!(merkle::verify_consistency(size1, size2, &bad, &r1, &r2).is_err());
    }
}

/// Valid inputs for every target, built with the fixed log key: the seeds
/// from which a campaign starts, replayed by `cargo test` as well.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use acd_core::entry::Tid;
    let signer = log_signer();
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let leaves: Vec<Vec<u8>> = (0..300u64)
        .map(|i| {
            LogEntry::Commit {
                timestamp_ms: 1_700_000_000_000 + i,
                tid: Tid([i as u8; 16]),
                merchant: [2; 32],
                expiration_ms: 1_700_000_600_000,
                key: [3; 32],
                signature: [4; 64],
            }
            .encode()
        })
        .collect();
    let hashes: Vec<Hash> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
    let checkpoint_at = |n: usize| {
        let body = Checkpoint {
            origin: signer.name().to_owned(),
            size: n as u64,
            root: merkle::root_from_leaf_hashes(&hashes[..n]),
            extensions: Vec::new(),
        };
        SignedCheckpoint::sign(body, &signer)
    };
    let (Ok(small), Ok(big)) = (checkpoint_at(100), checkpoint_at(300)) else {
        return out;
    };
    out.push(("note", small.to_text().into_bytes()));
    out.push(("note", signer.verifier().vkey().into_bytes()));
    out.push(("note", signer.private_key().into_bytes()));
    out.push(("checkpoint", small.checkpoint.to_text().into_bytes()));
    out.push(("checkpoint", big.to_text().into_bytes()));
    for path in [
        "tile/0/000",
        "tile/1/x001/234.p/7",
        "tile/entries/012.p/255",
        "3/x123/x456/789",
    ] {
        out.push(("tile", path.as_bytes().to_vec()));
    }
    out.push(("tile", tile::tile_bytes(&hashes[..4])));
    let refs: Vec<&[u8]> = leaves[..3].iter().map(Vec::as_slice).collect();
    if let Ok(bundle) = tile::encode_bundle(&refs) {
        out.push(("tile", bundle));
    }
    out.push(("entry", leaves[0].clone()));
    out.push((
        "entry",
        LogEntry::Abort {
            timestamp_ms: 1,
            tid: Tid([9; 16]),
            merchant: [2; 32],
            expiration_ms: 2,
            bank: [5; 32],
            signature: [6; 64],
        }
        .encode(),
    ));
    let subtree = |level: u8, i: u64| -> Result<Hash, ()> {
        let (start, end) = ((i << level) as usize, ((i + 1) << level) as usize);
        hashes
            .get(start..end)
            .map(merkle::root_from_leaf_hashes)
            .ok_or(())
    };
    if let Ok(inclusion) = merkle::inclusion_proof(42, 300, subtree) {
        let proof = TlogProof {
            extra: Some(leaves[42].clone()),
            index: 42,
            hashes: inclusion.clone(),
            checkpoint: big.to_text(),
        };
        out.push(("tlog_proof", proof.to_text().into_bytes()));
        let entry_proof = log_api::EntryProof {
            index: 42,
            tid: Tid([42; 16]),
            outcome: acd_core::entry::Outcome::Commit,
            timestamp_ms: 1_700_000_000_042,
            entry: leaves[42].clone(),
            leaf_hash: hashes[42],
            tree_size: 300,
            inclusion,
            checkpoint: big.to_text(),
        };
        if let Ok(json) = serde_json::to_vec(&entry_proof) {
            out.push(("json_api", [&[2u8][..], &json].concat()));
        }
    }
    if let Ok(consistency) = merkle::consistency_proof(100, 300, subtree) {
        let body = AddCheckpoint {
            old_size: 100,
            proof: consistency.clone(),
            checkpoint: big.to_text(),
        };
        out.push(("witness_request", body.to_body().into_bytes()));
        out.push(("witness_request", b"100\n".to_vec()));
        let proof = log_api::ConsistencyProof {
            from: 100,
            to: 300,
            proof: consistency,
        };
        if let Ok(json) = serde_json::to_vec(&proof) {
            out.push(("json_api", [&[3u8][..], &json].concat()));
        }
        let mut e = Evidence::new(
            evidence::Kind::Inconsistent,
            signer.name(),
            "seed".to_owned(),
            vec![small.to_text(), big.to_text()],
        );
        e.proof = body.proof.clone();
        if let Ok(json) = serde_json::to_vec(&e) {
            out.push(("evidence", json));
        }
    }
    let commit = log_api::CommitRequest {
        tid: Tid([1; 16]),
        merchant: [2; 32],
        expiration_ms: 3,
        key: [4; 32],
        signature: [5; 64],
    };
    if let Ok(json) = serde_json::to_vec(&commit) {
        out.push(("json_api", [&[0u8][..], &json].concat()));
    }
    out.push((
        "json_api",
        [&[5u8][..], br#"{"error":"bad_request","message":"m"}"#].concat(),
    ));
    let mut m = Vec::new();
    for v in [0u64, 1, 7, 100, 255, 256, 1 << 20, u64::MAX] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    out.push(("merkle_proofs", m));
    out
}
