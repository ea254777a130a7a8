//! `acd verify FILE`: checks, offline, a file that proves something about a
//! log. Today that is a proof bundle (`acd wallet proof`): certified
//! delivery, checkable by anyone with the log's key. The file's `kind`
//! chooses the check, so another kind (an auditor's evidence file) is one
//! more arm in [`verify_file`].

use std::fmt;
use std::path::PathBuf;

use acd_core::bundle::{BUNDLE_KIND, BundleError, ProofBundle};
use acd_core::cosignature::CosignatureVerifier;
use acd_core::entry::Tid;
use acd_core::note::NoteVerifier;
use acd_core::proof::WitnessPolicy;
use clap::Args;
use thiserror::Error;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The file to check (JSON with a `kind` field).
    pub file: PathBuf,
    /// The log's note verifier key (`<origin>+<id>+<key>`).
    #[arg(long)]
    pub log: String,
    /// A witness's cosignature verifier key; repeat for several.
    #[arg(long = "witness")]
    pub witnesses: Vec<String>,
    /// How many of the witnesses must have cosigned the checkpoint
    /// (default: all that are listed).
    #[arg(long)]
    pub threshold: Option<usize>,
}

/// Whom the verifier trusts.
#[derive(Debug, Clone)]
pub struct Trust {
    pub log: NoteVerifier,
    pub policy: WitnessPolicy,
}

impl Trust {
    /// From the command line's keys.
    pub fn from_keys(
        log: &str,
        witnesses: &[String],
        threshold: Option<usize>,
    ) -> Result<Trust, VerifyError> {
        let log =
            NoteVerifier::from_vkey(log).map_err(|e| VerifyError::Key(format!("log: {e}")))?;
        let witnesses = witnesses
            .iter()
            .map(|w| {
                CosignatureVerifier::from_vkey(w)
                    .map_err(|e| VerifyError::Key(format!("witness {w:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let threshold = threshold.unwrap_or(witnesses.len());
        if threshold > witnesses.len() {
            return Err(VerifyError::Key(format!(
                "a threshold of {threshold} needs at least as many witnesses, {} given",
                witnesses.len()
            )));
        }
        Ok(Trust {
            log,
            policy: WitnessPolicy::new(threshold, witnesses),
        })
    }
}

#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("bad key: {0}")]
    Key(String),
    #[error("not a JSON object with a kind: {0}")]
    NotJson(String),
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    #[error("malformed {kind} file: {reason}")]
    Malformed { kind: String, reason: String },
    #[error("the proof bundle does not verify: {0}")]
    Bundle(#[from] BundleError),
    #[error("the evidence does not show what it claims: {0}")]
    Evidence(#[from] acd_core::evidence::EvidenceError),
}

/// What a proof bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryProof {
    pub log_origin: String,
    pub merchant: [u8; 32],
    pub tid: Tid,
    pub description: String,
    pub price: u64,
    pub expiration_ms: u64,
    /// When the log recorded the commit.
    pub logged_ms: u64,
    pub index: u64,
    pub checkpoint_size: u64,
    pub key: [u8; 32],
    pub ciphertext_hash: [u8; 32],
    pub plaintext_hash: [u8; 32],
}

/// A verified file, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    ProofBundle(DeliveryProof),
    /// An auditor's evidence file that shows what it claims.
    Evidence(acd_core::evidence::Finding),
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verified::Evidence(finding) => write!(
                f,
                "valid evidence against the log: {finding}{}",
                if finding.conclusive {
                    " (proven by the log's own signatures)"
                } else {
                    " (rests also on data the log served unsigned)"
                }
            ),
            Verified::ProofBundle(p) => {
                writeln!(f, "valid proof bundle: certified delivery")?;
                writeln!(f, "  merchant   {}", hex::encode(p.merchant))?;
                writeln!(f, "  TID        {}", p.tid)?;
                writeln!(f, "  goods      {:?} for {}", p.description, p.price)?;
                writeln!(
                    f,
                    "  log        {}: entry #{} in the checkpoint of size {}",
                    p.log_origin, p.index, p.checkpoint_size
                )?;
                writeln!(
                    f,
                    "  committed  at {}, before the expiration {}",
                    acd_wallet::report::time(p.logged_ms),
                    acd_wallet::report::time(p.expiration_ms)
                )?;
                writeln!(f, "  key        {}", hex::encode(p.key))?;
                writeln!(
                    f,
                    "  the key decrypts goods whose ciphertext hashes to {} and plaintext to {}",
                    hex::encode(p.ciphertext_hash),
                    hex::encode(p.plaintext_hash)
                )?;
                write!(
                    f,
                    "  (the merchant signed the offer and published this key in the log on time)"
                )
            }
        }
    }
}

/// Checks the contents of a file under `trust`.
pub fn verify_file(contents: &str, trust: &Trust) -> Result<Verified, VerifyError> {
    let value: serde_json::Value =
        serde_json::from_str(contents).map_err(|e| VerifyError::NotJson(e.to_string()))?;
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| VerifyError::NotJson("no \"kind\" field".into()))?
        .to_owned();
    let malformed = |e: serde_json::Error| VerifyError::Malformed {
        kind: kind.clone(),
        reason: e.to_string(),
    };
    match kind.as_str() {
        BUNDLE_KIND => {
            let bundle: ProofBundle = serde_json::from_value(value).map_err(malformed)?;
            let v = bundle.verify(&trust.log, &trust.policy)?;
            let o = &bundle.offer.offer;
            Ok(Verified::ProofBundle(DeliveryProof {
                log_origin: v.checkpoint.checkpoint.origin.clone(),
                merchant: o.merchant,
                tid: o.tid,
                description: o.description.clone(),
                price: o.price,
                expiration_ms: o.expiration_ms,
                logged_ms: v.entry.timestamp_ms(),
                index: v.index,
                checkpoint_size: v.checkpoint.checkpoint.size,
                key: v.key,
                ciphertext_hash: o.ciphertext_hash,
                plaintext_hash: o.plaintext_hash,
            }))
        }
        _ => {
            // Auditor evidence files name the violation in `kind`.
            let known: Result<acd_core::evidence::Kind, _> =
                serde_json::from_value(serde_json::Value::String(kind.clone()));
            if known.is_err() {
                return Err(VerifyError::UnknownKind(kind));
            }
            let evidence: acd_core::evidence::Evidence =
                serde_json::from_value(value).map_err(malformed)?;
            Ok(Verified::Evidence(acd_core::evidence::verify(
                &evidence, &trust.log,
            )?))
        }
    }
}

/// `acd verify`: prints what the file proves and returns true, or prints
/// why it does not verify and returns false.
pub fn run(args: &VerifyArgs) -> anyhow::Result<bool> {
    let trust = Trust::from_keys(&args.log, &args.witnesses, args.threshold)?;
    let contents = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.file.display()))?;
    match verify_file(&contents, &trust) {
        Ok(v) => {
            outln!("{v}");
            Ok(true)
        }
        Err(e) => {
            outln!("INVALID: {e}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_core::bank_api::SignedOffer;
    use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
    use acd_core::cosignature::CosignatureKind;
    use acd_core::cosignature::Cosigner;
    use acd_core::entry::{KeyCommit, LogEntry};
    use acd_core::goods;
    use acd_core::merkle::{self, MemoryTree};
    use acd_core::note::NoteSigner;
    use acd_core::purchase::Offer;
    use acd_core::tlog_proof::TlogProof;
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "log.test/verify";

    struct Fixture {
        log: NoteSigner,
        witness: Cosigner,
        bundle: ProofBundle,
    }

    /// A log of five entries whose entry 3 commits the key of an offer.
    fn fixture(cosign: bool) -> Fixture {
        let log = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).expect("log key");
        let witness =
            Cosigner::from_seed(CosignatureKind::MlDsa44, "witness.test", &[5; 32]).expect("w");
        let merchant = SigningKey::from_bytes(&[2; 32]);
        let k = [9; 32];
        let tid = Tid([3; 16]);
        let ciphertext = goods::encrypt(&k, &tid, b"goods").expect("encrypt");
        let offer = Offer {
            bank: SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes(),
            log_origin: ORIGIN.into(),
            tid,
            merchant: merchant.verifying_key().to_bytes(),
            customer: [6; 32],
            expiration_ms: 2_000,
            price: 7,
            description: "goods".into(),
            ciphertext_hash: goods::hash(&ciphertext),
            plaintext_hash: goods::hash(b"goods"),
        };
        let kc = KeyCommit {
            log_origin: ORIGIN.into(),
            tid,
            merchant: offer.merchant,
            expiration_ms: offer.expiration_ms,
            key: k,
        };
        let entry = LogEntry::Commit {
            timestamp_ms: 1_000,
            tid,
            merchant: offer.merchant,
            expiration_ms: offer.expiration_ms,
            key: k,
            signature: kc.sign(&merchant),
        }
        .encode();
        let mut tree = MemoryTree::new();
        for i in 0..5u8 {
            if i == 3 {
                tree.push(merkle::leaf_hash(&entry));
            } else {
                tree.push(merkle::leaf_hash(&[i]));
            }
        }
        let mut cp = SignedCheckpoint::sign(
            Checkpoint {
                origin: ORIGIN.into(),
                size: 5,
                root: tree.root(),
                extensions: vec![],
            },
            &log,
        )
        .expect("checkpoint");
        if cosign {
            let sig = witness.cosign(&cp.note.text, 1_500).expect("cosign");
            cp.note.signatures.push(sig);
        }
        let proof = TlogProof {
            extra: Some(entry),
            index: 3,
            hashes: tree.inclusion_proof(3, 5).expect("inclusion"),
            checkpoint: cp.to_text(),
        };
        let signature = offer.sign(&merchant);
        Fixture {
            log,
            witness,
            bundle: ProofBundle::new(SignedOffer { offer, signature }, &proof),
        }
    }

    impl Fixture {
        fn trust(&self, witnesses: &[String], threshold: Option<usize>) -> Trust {
            Trust::from_keys(&self.log.verifier().vkey(), witnesses, threshold).expect("trust")
        }

        fn text(&self) -> String {
            serde_json::to_string(&self.bundle).expect("json")
        }
    }

    #[test]
    fn a_bundle_proves_its_delivery() {
        // A valid bundle verifies and reports merchant, TID, index, size
        // and key.
        let f = fixture(false);
        let Verified::ProofBundle(p) = verify_file(&f.text(), &f.trust(&[], None)).expect("valid")
        else {
            panic!("a proof bundle verifies as one");
        };
        assert_eq!(p.tid, Tid([3; 16]));
        assert_eq!(p.index, 3);
        assert_eq!(p.checkpoint_size, 5);
        assert_eq!(p.key, [9; 32]);
        assert_eq!(p.merchant, f.bundle.offer.offer.merchant);
        let shown = Verified::ProofBundle(p).to_string();
        assert!(
            shown.contains("entry #3 in the checkpoint of size 5"),
            "{shown}"
        );
        // Times as times, not epoch milliseconds.
        assert!(
            shown.contains("at 1970-01-01T00:00:01Z, before the expiration 1970-01-01T00:00:02Z"),
            "{shown}"
        );
    }

    #[test]
    fn witness_policy_is_applied() {
        // Without the witness's cosignature the bundle fails a policy that
        // requires it; with it, it passes.
        let w = vec![fixture(false).witness.verifier().vkey()];
        let f = fixture(false);
        assert!(matches!(
            verify_file(&f.text(), &f.trust(&w, None)),
            Err(VerifyError::Bundle(BundleError::Proof(_)))
        ));
        let f = fixture(true);
        verify_file(&f.text(), &f.trust(&w, Some(1))).expect("cosigned");
        assert!(Trust::from_keys(&f.log.verifier().vkey(), &w, Some(2)).is_err());
    }

    #[test]
    fn a_k_of_n_policy_mixes_both_cosignature_types() {
        // An ML-DSA-44 and an Ed25519 witness both cosign: a policy of 2 of
        // the two passes, and fails with either line missing or altered.
        let ed = Cosigner::new("witness.test/ed", SigningKey::from_bytes(&[8; 32])).expect("ed");
        let mut f = fixture(true);
        let w = vec![f.witness.verifier().vkey(), ed.verifier().vkey()];
        let with_both = |f: &Fixture, lines: &[String]| {
            let mut bundle = f.bundle.clone();
            let mut text = bundle.tlog_proof.clone();
            for l in lines {
                text.push_str(l);
            }
            bundle.tlog_proof = text;
            serde_json::to_string(&bundle).expect("json")
        };
        let proof = acd_core::tlog_proof::TlogProof::parse(&f.bundle.tlog_proof).expect("proof");
        let body = proof
            .checkpoint
            .split_once("\n\n")
            .expect("note")
            .0
            .to_owned()
            + "\n";
        let ed_line = ed.cosign(&body, 1_600).expect("cosign").to_line();
        verify_file(
            &with_both(&f, std::slice::from_ref(&ed_line)),
            &f.trust(&w, Some(2)),
        )
        .expect("2 of 2");
        verify_file(&f.text(), &f.trust(&w, Some(1))).expect("1 of 2: the ML-DSA-44 one");
        assert!(verify_file(&f.text(), &f.trust(&w, Some(2))).is_err());
        let forged = ed_line.replacen("witness.test/ed", "witness.test", 1);
        assert!(verify_file(&with_both(&f, &[forged]), &f.trust(&w, Some(2))).is_err());
        f.bundle.tlog_proof = f.bundle.tlog_proof.replacen("\n5\n", "\n6\n", 1);
        assert!(verify_file(&with_both(&f, &[ed_line]), &f.trust(&w, Some(2))).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        // Any change to the offer, the entry, the proof or the checkpoint,
        // or another log's key, fails verification.
        let f = fixture(false);
        let trust = f.trust(&[], None);
        let mut b = f.bundle.clone();
        b.offer.offer.price = 1;
        assert!(verify_file(&serde_json::to_string(&b).expect("json"), &trust).is_err());

        let proof = TlogProof::parse(&f.bundle.tlog_proof).expect("parse");
        let mut p = proof.clone();
        if let Some(e) = p.extra.as_mut() {
            e[40] ^= 1;
        }
        let mut b = f.bundle.clone();
        b.tlog_proof = p.to_text();
        assert!(verify_file(&serde_json::to_string(&b).expect("json"), &trust).is_err());

        let mut p = proof.clone();
        p.index = 2;
        b.tlog_proof = p.to_text();
        assert!(verify_file(&serde_json::to_string(&b).expect("json"), &trust).is_err());

        let mut p = proof.clone();
        p.hashes[0][0] ^= 1;
        b.tlog_proof = p.to_text();
        assert!(verify_file(&serde_json::to_string(&b).expect("json"), &trust).is_err());

        let mut p = proof;
        p.checkpoint = p.checkpoint.replacen("\n5\n", "\n6\n", 1);
        b.tlog_proof = p.to_text();
        assert!(verify_file(&serde_json::to_string(&b).expect("json"), &trust).is_err());

        let other = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8; 32])).expect("other");
        let trust = Trust::from_keys(&other.verifier().vkey(), &[], None).expect("trust");
        assert!(verify_file(&f.text(), &trust).is_err());
    }

    #[test]
    fn other_files_are_named_not_misread() {
        // Files that are not JSON, have no kind, an unknown kind, or the
        // right kind and the wrong shape each get their own error.
        let f = fixture(false);
        let trust = f.trust(&[], None);
        assert!(matches!(
            verify_file("not json", &trust),
            Err(VerifyError::NotJson(_))
        ));
        assert!(matches!(
            verify_file("{}", &trust),
            Err(VerifyError::NotJson(_))
        ));
        assert!(matches!(
            verify_file(r#"{"kind":"acd/v1/no-such-kind"}"#, &trust),
            Err(VerifyError::UnknownKind(k)) if k == "acd/v1/no-such-kind"
        ));
        assert!(matches!(
            verify_file(&format!(r#"{{"kind":"{BUNDLE_KIND}"}}"#), &trust),
            Err(VerifyError::Malformed { .. })
        ));
    }
}
