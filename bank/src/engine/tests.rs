//! Every bank step called on the engine directly, without HTTP: a success
//! and refusals each, on a bank in a temporary directory with a manual
//! clock and seeded randomness. The log's proofs are made here, all under
//! one signed checkpoint per test (so the bank never needs a consistency
//! proof from the log, which is not running).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use acd_core::bank_api::{
    AccountKind, CreateAccount, Credit, DepositRequest, DisputeFinding, DisputeRequest,
    RefundRequest, RegisterRequest, SignedOffer, SpendRequest, WithdrawRequest,
};
use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::clock::{Clock, ManualClock};
use acd_core::entry::{KeyCommit, LogEntry, Tid};
use acd_core::error::{DomainError, ErrorKind};
use acd_core::goods;
use acd_core::log_api::EntryProof;
use acd_core::merkle::{self, MemoryTree};
use acd_core::note::NoteSigner;
use acd_core::purchase::{EscrowTerms, Offer, Refund, RefundReason, Spend, Withdrawal};
use acd_core::token::{BlindedToken, Denomination, Token};
use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::abort::Aborted;
use crate::Bank;
use crate::BankState;
use crate::config::{BankConfig, TrustedLog};
use crate::records::EscrowStatus;

const VALUES: [u64; 2] = [1, 10];
const ORIGIN: &str = "engine-test.acd.example/log";
const NOW: u64 = 1_700_000_000_000;

/// Denomination keys made once (from a seeded RNG) and copied into every
/// bank's data directory: key generation is the slow part of opening.
fn seed_keys(data: &Path) {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for v in VALUES {
            crate::keys::load_or_create_rsa_key_with(
                &acd_serve::secret::DataDir::inspect(dir.path()),
                v,
                2048,
                &mut rng,
            )
            .unwrap();
        }
        dir
    });
    std::fs::create_dir_all(data).unwrap();
    for v in VALUES {
        let from = crate::keys::rsa_key_path(template.path(), v);
        std::fs::copy(from, crate::keys::rsa_key_path(data, v)).unwrap();
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn code<T: std::fmt::Debug>(r: Result<T, DomainError>) -> (ErrorKind, &'static str) {
    let e = r.unwrap_err();
    (e.kind, e.code)
}

/// A bank with a funded customer and a merchant, and the other parties'
/// sides of the protocol.
struct Fixture {
    _dir: tempfile::TempDir,
    _bank: Bank,
    state: Arc<BankState>,
    clock: Arc<ManualClock>,
    rng: StdRng,
    log: NoteSigner,
    denominations: HashMap<u64, Denomination>,
    customer: SigningKey,
    merchant: SigningKey,
}

/// Where a behaviour test's bank keeps its books: each runs on both.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    Postgres,
}

/// Each behaviour test, on sled and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::Sled).await
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::Postgres).await
            })*
        }
    };
}

impl Fixture {
    /// None: no PostgreSQL to test on, and CI unset (the helper said so).
    async fn on(b: Backend, funds: u64) -> Option<Fixture> {
        let database = match b {
            Backend::Sled => None,
            Backend::Postgres => Some(crate::postgres::testing::fresh_database()?),
        };
        Some(Fixture::with_database(database, funds).await)
    }

    async fn with_database(database: Option<crate::config::DatabaseUrl>, funds: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bank");
        seed_keys(&data);
        let log = NoteSigner::new(ORIGIN, key(4)).unwrap();
        let mut config = BankConfig::new(data);
        config.database = database;
        config.denominations = VALUES.to_vec();
        config.min_expiration_ms = 0;
        config.logs = vec![TrustedLog {
            vkey: log.verifier().vkey(),
            // Never reached: the abort step's refusal when it is down.
            url: "http://127.0.0.1:9".into(),
        }];
        let clock = Arc::new(ManualClock::new(NOW));
        let bank = Bank::open_with(&config, clock.clone(), &mut StdRng::seed_from_u64(2)).unwrap();
        let state = bank.state().clone();
        let denominations = state
            .info()
            .denominations
            .iter()
            .map(|d| (d.value, Denomination::from_spki(d.value, &d.spki).unwrap()))
            .collect();
        let f = Fixture {
            _dir: dir,
            _bank: bank,
            state,
            clock,
            rng: StdRng::seed_from_u64(3),
            log,
            denominations,
            customer: key(0xc0),
            merchant: key(0xa0),
        };
        for (k, kind) in [
            (&f.customer, AccountKind::Customer),
            (&f.merchant, AccountKind::Merchant),
        ] {
            f.state
                .create_account(CreateAccount {
                    key: k.verifying_key().to_bytes(),
                    kind,
                })
                .await
                .unwrap();
        }
        if funds > 0 {
            f.state
                .credit(Credit {
                    key: f.customer_key(),
                    amount: funds,
                    request_id: [0xcc; 16],
                })
                .await
                .unwrap();
        }
        f
    }

    fn customer_key(&self) -> [u8; 32] {
        self.customer.verifying_key().to_bytes()
    }

    fn merchant_key(&self) -> [u8; 32] {
        self.merchant.verifying_key().to_bytes()
    }

    fn balance(&self, key: &[u8; 32]) -> i64 {
        self.state.ledger().account(key).unwrap().unwrap().balance
    }

    fn blinded(&mut self, values: &[u64]) -> Vec<BlindedToken> {
        values
            .iter()
            .map(|v| BlindedToken::new(&mut self.rng, &self.denominations[v]).unwrap())
            .collect()
    }

    fn withdraw_request(&self, request_id: u8, blinded: &[BlindedToken]) -> WithdrawRequest {
        let withdrawal = Withdrawal {
            bank: self.state.public,
            account: self.customer_key(),
            request_id: [request_id; 16],
            blinded: blinded.iter().map(|b| b.request()).collect(),
        };
        WithdrawRequest {
            signature: withdrawal.sign(&self.customer),
            withdrawal,
        }
    }

    fn finish(&self, blinded: &[BlindedToken], sigs: &[Vec<u8>]) -> Vec<Token> {
        blinded
            .iter()
            .zip(sigs)
            .map(|(b, s)| {
                let d = self
                    .denominations
                    .values()
                    .find(|d| d.id() == b.denomination)
                    .unwrap();
                b.finish(d, s).unwrap()
            })
            .collect()
    }

    /// Withdraws tokens of `values` and registers them to `q`.
    async fn tokens(&mut self, request_id: u8, values: &[u64], q: &SigningKey) -> Vec<Token> {
        let blinded = self.blinded(values);
        let req = self.withdraw_request(request_id, &blinded);
        let sigs = self.state.withdraw(req).await.unwrap();
        let tokens = self.finish(&blinded, &sigs.blind_signatures);
        for t in &tokens {
            self.state
                .register(RegisterRequest {
                    token: t.clone(),
                    customer: q.verifying_key().to_bytes(),
                })
                .await
                .unwrap();
        }
        tokens
    }

    fn terms(&self, tid: u8, price: u64) -> EscrowTerms {
        EscrowTerms {
            bank: self.state.public,
            log_origin: ORIGIN.into(),
            tid: Tid([tid; 16]),
            merchant: self.merchant_key(),
            expiration_ms: self.clock.now_ms() + 60_000,
            price,
        }
    }

    fn spend_request(
        &self,
        q: &SigningKey,
        tokens: &[Token],
        terms: &EscrowTerms,
        change: &[BlindedToken],
    ) -> SpendRequest {
        let spend = Spend {
            terms: terms.clone(),
            customer: q.verifying_key().to_bytes(),
            token_ids: tokens.iter().map(|t| t.id()).collect(),
            change: change.iter().map(|b| b.request()).collect(),
        };
        SpendRequest {
            signature: spend.sign(q),
            spend,
            tokens: tokens.to_vec(),
        }
    }

    /// Spends tokens of `price` (no change) from `q` for `tid`.
    async fn escrow(&mut self, request_id: u8, tid: u8, price: u64, q: &SigningKey) -> EscrowTerms {
        let tokens = self.tokens(request_id, &vec![1; price as usize], q).await;
        let terms = self.terms(tid, price);
        let req = self.spend_request(q, &tokens, &terms, &[]);
        self.state.spend(req).await.unwrap();
        terms
    }

    fn commit_entry(&self, terms: &EscrowTerms, key: [u8; 32]) -> LogEntry {
        let kc = KeyCommit {
            log_origin: ORIGIN.into(),
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            key,
        };
        LogEntry::Commit {
            timestamp_ms: terms.expiration_ms - 1,
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            key,
            signature: kc.sign(&self.merchant),
        }
    }

    fn abort_entry(&self, terms: &EscrowTerms) -> LogEntry {
        LogEntry::Abort {
            timestamp_ms: terms.expiration_ms,
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            bank: self.state.public,
            signature: terms.notice().sign(&self.state.signing),
        }
    }

    /// The log's proofs of `entries`, all under one signed checkpoint.
    fn prove(&self, entries: &[LogEntry]) -> Vec<EntryProof> {
        let mut tree = MemoryTree::new();
        let leaves: Vec<Vec<u8>> = entries.iter().map(LogEntry::encode).collect();
        for leaf in &leaves {
            tree.push(merkle::leaf_hash(leaf));
        }
        let size = tree.len();
        let checkpoint = SignedCheckpoint::sign(
            Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: tree.root(),
                extensions: vec![],
            },
            &self.log,
        )
        .unwrap()
        .to_text();
        entries
            .iter()
            .zip(leaves)
            .enumerate()
            .map(|(i, (entry, leaf))| EntryProof {
                index: i as u64,
                tid: entry.tid(),
                outcome: entry.outcome(),
                timestamp_ms: entry.timestamp_ms(),
                leaf_hash: merkle::leaf_hash(&leaf),
                entry: leaf,
                tree_size: size,
                inclusion: tree.inclusion_proof(i as u64, size).unwrap(),
                checkpoint: checkpoint.clone(),
            })
            .collect()
    }

    fn refund_request(
        &mut self,
        q: &SigningKey,
        terms: &EscrowTerms,
        reason: RefundReason,
    ) -> (Refund, [u8; 64], Vec<BlindedToken>) {
        let blinded = self.blinded(&vec![1; terms.price as usize]);
        let refund = Refund {
            bank: self.state.public,
            tid: terms.tid,
            reason,
            customer: q.verifying_key().to_bytes(),
            blinded: blinded.iter().map(|b| b.request()).collect(),
        };
        let signature = refund.sign(q);
        (refund, signature, blinded)
    }

    fn assert_conserved(&self) {
        let s = self.state.ledger().sums().unwrap();
        assert!(s.conserved, "{s:?}");
    }
}

// Figure 1 step 1: a withdrawal debits once and its signatures finish into
// valid tokens; a retry gets the same ones; overdrafts and a reused request
// id are refused.
async fn withdraw_debits_once_and_refuses_overdrafts(b: Backend) {
    let Some(mut f) = Fixture::on(b, 25).await else {
        return;
    };
    let blinded = f.blinded(&[10, 10, 1]);
    let req = f.withdraw_request(1, &blinded);
    let w = f.state.withdraw(req.clone()).await.unwrap();
    assert_eq!(w.blind_signatures.len(), 3);
    let tokens = f.finish(&blinded, &w.blind_signatures);
    assert_eq!(tokens.len(), 3);
    assert_eq!(f.state.withdraw(req).await.unwrap(), w);
    assert_eq!(f.balance(&f.customer_key()), 4);

    let other = f.blinded(&[1]);
    let reused = f.withdraw_request(1, &other);
    assert_eq!(
        code(f.state.withdraw(reused).await),
        (ErrorKind::Conflict, "request_id_reused")
    );
    let big = f.blinded(&[10]);
    let overdraft = f.withdraw_request(2, &big);
    assert_eq!(
        code(f.state.withdraw(overdraft).await),
        (ErrorKind::Conflict, "insufficient_funds")
    );
    let mut wrong_bank = f.withdraw_request(3, &other);
    wrong_bank.withdrawal.bank = [9; 32];
    assert_eq!(
        code(f.state.withdraw(wrong_bank).await),
        (ErrorKind::BadRequest, "wrong_bank")
    );
    let s = f.state.ledger().sums().unwrap();
    assert_eq!((s.customer_balances, s.live_tokens), (4, 21));
    f.assert_conserved();
}

// Figure 1 steps 3, 4: a token registers to one Q with a receipt the bank
// signed; another Q and a forged token are refused.
async fn register_binds_a_token_to_one_key(b: Backend) {
    let Some(mut f) = Fixture::on(b, 10).await else {
        return;
    };
    let blinded = f.blinded(&[10]);
    let req = f.withdraw_request(1, &blinded);
    let sigs = f.state.withdraw(req).await.unwrap();
    let token = f.finish(&blinded, &sigs.blind_signatures).remove(0);
    let q = key(0x51);
    let register = RegisterRequest {
        token: token.clone(),
        customer: q.verifying_key().to_bytes(),
    };
    let r = f.state.register(register.clone()).await.unwrap();
    r.receipt.verify(&r.signature).unwrap();
    assert_eq!(
        (r.receipt.bank, r.receipt.token_id, r.receipt.customer),
        (f.state.public, token.id(), q.verifying_key().to_bytes())
    );
    assert_eq!(f.state.register(register).await.unwrap(), r);
    let another = RegisterRequest {
        token: token.clone(),
        customer: key(0x52).verifying_key().to_bytes(),
    };
    assert_eq!(
        code(f.state.register(another).await),
        (ErrorKind::Conflict, "already_registered")
    );
    let mut forged = token;
    forged.serial[0] ^= 1;
    assert_eq!(
        code(
            f.state
                .register(RegisterRequest {
                    token: forged,
                    customer: q.verifying_key().to_bytes(),
                })
                .await
        ),
        (ErrorKind::BadRequest, "bad_token")
    );
}

// P2/P3: a spend escrows the price, signs the terms, the notice and the
// change; a second spend of the same token and a wrong change are refused.
async fn spend_escrows_with_change_and_refuses_a_double_spend(b: Backend) {
    let Some(mut f) = Fixture::on(b, 20).await else {
        return;
    };
    let q = key(0x51);
    let tokens = f.tokens(1, &[10, 10], &q).await;
    let terms = f.terms(1, 15);
    let change = f.blinded(&[1, 1, 1, 1, 1]);
    let req = f.spend_request(&q, &tokens, &terms, &change);

    let wrong_change = f.spend_request(&q, &tokens, &terms, &change[..4]);
    assert_eq!(
        code(f.state.spend(wrong_change).await),
        (ErrorKind::BadRequest, "bad_change")
    );
    let spent = f.state.spend(req.clone()).await.unwrap();
    assert_eq!(spent.terms, terms);
    terms.verify(&spent.terms_signature).unwrap();
    terms
        .notice()
        .verify(&f.state.public, &spent.notice_signature)
        .unwrap();
    assert_eq!(f.finish(&change, &spent.change).len(), 5);
    assert_eq!(f.state.spend(req).await.unwrap(), spent);

    let again = f.spend_request(&q, &tokens, &f.terms(2, 20), &[]);
    assert_eq!(
        code(f.state.spend(again).await),
        (ErrorKind::Conflict, "double_spend")
    );
    let s = f.state.ledger().sums().unwrap();
    assert_eq!((s.escrowed, s.live_tokens), (15, 5));
    f.assert_conserved();
}

// Deposit: a proven commit pays the merchant once; an abort entry is not a
// commit, and an unknown TID has no escrow.
async fn deposit_pays_on_a_proven_commit(b: Backend) {
    let Some(mut f) = Fixture::on(b, 10).await else {
        return;
    };
    let q = key(0x51);
    let terms = f.escrow(1, 1, 3, &q).await;
    let unknown = f.terms(9, 3);
    let proofs = f.prove(&[
        f.commit_entry(&terms, [7; 32]),
        f.abort_entry(&terms),
        f.commit_entry(&unknown, [7; 32]),
    ]);
    let deposit = DepositRequest {
        proof: proofs[0].clone(),
    };
    let d = f.state.deposit(deposit.clone()).await.unwrap();
    assert_eq!(
        (d.tid, d.merchant, d.amount),
        (terms.tid, f.merchant_key(), 3)
    );
    assert_eq!(f.state.deposit(deposit).await.unwrap(), d);
    assert_eq!(f.balance(&f.merchant_key()), 3);
    assert_eq!(
        code(
            f.state
                .deposit(DepositRequest {
                    proof: proofs[1].clone()
                })
                .await
        ),
        (ErrorKind::BadRequest, "not_commit")
    );
    assert_eq!(
        code(
            f.state
                .deposit(DepositRequest {
                    proof: proofs[2].clone()
                })
                .await
        ),
        (ErrorKind::NotFound, "unknown_escrow")
    );
    f.assert_conserved();
}

// The abort step: the log's abort is recorded, a commit found at expiry
// pays the merchant, an entry for other terms is refused, and a log that
// cannot be reached leaves the escrow open (retryable).
async fn abort_records_the_logs_outcome(b: Backend) {
    let Some(mut f) = Fixture::on(b, 10).await else {
        return;
    };
    let q = key(0x51);
    let aborted = f.escrow(1, 1, 2, &q).await;
    let committed = f.escrow(2, 2, 3, &q).await;
    let mut other = aborted.clone();
    other.expiration_ms += 1;
    let proofs = f.prove(&[
        f.abort_entry(&aborted),
        f.commit_entry(&committed, [7; 32]),
        f.abort_entry(&other),
    ]);
    let escrow = |tid| f.state.ledger().escrow(&tid).unwrap().unwrap();
    f.clock.advance(60_000);
    assert_eq!(f.state.ledger().due(f.clock.now_ms(), 10).unwrap().len(), 2);

    assert_eq!(
        code(f.state.abort_expired(&escrow(aborted.tid)).await),
        (ErrorKind::Unavailable, "log_unreachable")
    );
    assert_eq!(escrow(aborted.tid).status, EscrowStatus::Escrowed);
    assert_eq!(
        code(
            f.state
                .record_outcome(&escrow(aborted.tid), &proofs[2])
                .await
        ),
        (ErrorKind::BadRequest, "entry_mismatch")
    );
    assert_eq!(
        f.state
            .record_outcome(&escrow(aborted.tid), &proofs[0])
            .await
            .unwrap(),
        Aborted::AbortLogged
    );
    assert_eq!(escrow(aborted.tid).status, EscrowStatus::AbortLogged);
    assert_eq!(
        f.state
            .record_outcome(&escrow(committed.tid), &proofs[1])
            .await
            .unwrap(),
        Aborted::Paid
    );
    assert_eq!(escrow(committed.tid).status, EscrowStatus::Paid);
    assert_eq!(f.balance(&f.merchant_key()), 3);
    assert!(f.state.ledger().due(u64::MAX, 10).unwrap().is_empty());
    f.assert_conserved();
}

// Refund: after an abort (recorded, or shown by Q) Q gets fresh blind
// tokens worth the price once; an open escrow without a proof, the other
// route's reason and a second refund are refused.
async fn refund_after_an_abort(b: Backend) {
    let Some(mut f) = Fixture::on(b, 10).await else {
        return;
    };
    let q = key(0x51);
    let recorded = f.escrow(1, 1, 2, &q).await;
    let shown = f.escrow(2, 2, 3, &q).await;
    let proofs = f.prove(&[f.abort_entry(&recorded), f.abort_entry(&shown)]);

    let (refund, signature, blinded) = f.refund_request(&q, &shown, RefundReason::Abort);
    let without_proof = RefundRequest {
        refund: refund.clone(),
        signature,
        abort: None,
    };
    assert_eq!(
        code(f.state.refund(without_proof).await),
        (ErrorKind::BadRequest, "abort_proof_required")
    );
    let (dispute, dispute_signature, _) = f.refund_request(&q, &shown, RefundReason::Dispute);
    assert_eq!(
        code(
            f.state
                .refund(RefundRequest {
                    refund: dispute,
                    signature: dispute_signature,
                    abort: Some(proofs[1].clone()),
                })
                .await
        ),
        (ErrorKind::BadRequest, "wrong_reason")
    );
    let with_proof = RefundRequest {
        refund,
        signature,
        abort: Some(proofs[1].clone()),
    };
    let r = f.state.refund(with_proof.clone()).await.unwrap();
    assert_eq!(f.finish(&blinded, &r.blind_signatures).len(), 3);
    assert_eq!(f.state.refund(with_proof).await.unwrap(), r);

    let escrow = f.state.ledger().escrow(&recorded.tid).unwrap().unwrap();
    f.state.record_outcome(&escrow, &proofs[0]).await.unwrap();
    let (refund, signature, _) = f.refund_request(&q, &recorded, RefundReason::Abort);
    let r = f
        .state
        .refund(RefundRequest {
            refund,
            signature,
            abort: None,
        })
        .await
        .unwrap();
    assert_eq!(r.blind_signatures.len(), 2);
    let (again, signature, _) = f.refund_request(&q, &recorded, RefundReason::Abort);
    assert_eq!(
        code(
            f.state
                .refund(RefundRequest {
                    refund: again,
                    signature,
                    abort: None,
                })
                .await
        ),
        (ErrorKind::Conflict, "already_refunded")
    );
    let s = f.state.ledger().sums().unwrap();
    assert_eq!((s.escrowed, s.live_tokens, s.customer_balances), (0, 5, 5));
    f.assert_conserved();
}

// Dispute: a logged key that does not open the offered goods is upheld and
// refunds Q (debiting the merchant already paid); a key that does is 422.
async fn dispute_upholds_a_bogus_key_only(b: Backend) {
    let Some(mut f) = Fixture::on(b, 10).await else {
        return;
    };
    let q = key(0x51);
    let goods_bytes = b"a song".to_vec();
    let k = goods::fresh_key(&mut f.rng);
    let mut sales = Vec::new();
    for (rid, tid) in [(1, 1), (2, 2)] {
        let terms = f.escrow(rid, tid, 4, &q).await;
        let ciphertext = goods::encrypt(&k, &terms.tid, &goods_bytes).unwrap();
        let offer = Offer {
            bank: terms.bank,
            log_origin: terms.log_origin.clone(),
            tid: terms.tid,
            merchant: terms.merchant,
            customer: q.verifying_key().to_bytes(),
            expiration_ms: terms.expiration_ms,
            price: terms.price,
            description: "a song".into(),
            ciphertext_hash: goods::hash(&ciphertext),
            plaintext_hash: goods::hash(&goods_bytes),
        };
        let signature = offer.sign(&f.merchant);
        sales.push((terms, SignedOffer { offer, signature }, ciphertext));
    }
    // The first sale's log holds a bogus key, the second's the real one.
    let proofs = f.prove(&[
        f.commit_entry(&sales[0].0, [0xbb; 32]),
        f.commit_entry(&sales[1].0, k),
    ]);
    f.state
        .deposit(DepositRequest {
            proof: proofs[0].clone(),
        })
        .await
        .unwrap();
    assert_eq!(f.balance(&f.merchant_key()), 4);

    let mut requests = Vec::new();
    for ((terms, offer, ciphertext), commit) in sales.iter().zip(&proofs) {
        let (refund, signature, blinded) = f.refund_request(&q, terms, RefundReason::Dispute);
        let req = DisputeRequest {
            refund,
            signature,
            offer: offer.clone(),
            ciphertext: ciphertext.clone(),
            commit: commit.clone(),
        };
        requests.push((req, blinded));
    }
    let d = f.state.dispute(requests[0].0.clone()).await.unwrap();
    assert_eq!(d.finding, DisputeFinding::KeyDoesNotDecrypt);
    assert_eq!(f.finish(&requests[0].1, &d.blind_signatures).len(), 4);
    assert_eq!(f.state.dispute(requests[0].0.clone()).await.unwrap(), d);
    assert_eq!(f.balance(&f.merchant_key()), 0);
    assert_eq!(
        code(f.state.dispute(requests[1].0.clone()).await),
        (ErrorKind::Unprocessable, "dispute_rejected")
    );
    let mut tampered = requests[1].0.clone();
    tampered.ciphertext.push(0);
    assert_eq!(
        code(f.state.dispute(tampered).await),
        (ErrorKind::BadRequest, "ciphertext_mismatch")
    );
    f.assert_conserved();
}

// The operator's steps: accounts open idempotently, credits apply once per
// request id; a kind change, a zero amount, an unknown account and a bad
// key are refused.
async fn accounts_and_credits(b: Backend) {
    let Some(f) = Fixture::on(b, 0).await else {
        return;
    };
    let m = f.merchant_key();
    let again = f
        .state
        .create_account(CreateAccount {
            key: m,
            kind: AccountKind::Merchant,
        })
        .await
        .unwrap();
    assert_eq!(
        (again.key, again.kind, again.balance),
        (m, AccountKind::Merchant, 0)
    );
    assert_eq!(
        code(
            f.state
                .create_account(CreateAccount {
                    key: m,
                    kind: AccountKind::Customer,
                })
                .await
        ),
        (ErrorKind::Conflict, "account_exists")
    );
    let credit = Credit {
        key: f.customer_key(),
        amount: 40,
        request_id: [1; 16],
    };
    assert_eq!(f.state.credit(credit.clone()).await.unwrap().balance, 40);
    assert_eq!(f.state.credit(credit.clone()).await.unwrap().balance, 40);
    assert_eq!(
        code(
            f.state
                .credit(Credit {
                    amount: 41,
                    ..credit.clone()
                })
                .await
        ),
        (ErrorKind::Conflict, "request_id_reused")
    );
    assert_eq!(
        code(
            f.state
                .credit(Credit {
                    amount: 0,
                    ..credit.clone()
                })
                .await
        ),
        (ErrorKind::BadRequest, "bad_amount")
    );
    assert_eq!(
        code(
            f.state
                .credit(Credit {
                    key: key(0x77).verifying_key().to_bytes(),
                    ..credit
                })
                .await
        ),
        (ErrorKind::NotFound, "unknown_account")
    );
    let shown = f.state.account(&hex::encode(f.customer_key())).unwrap();
    assert_eq!((shown.kind, shown.balance), (AccountKind::Customer, 40));
    assert_eq!(
        code(f.state.account("zz")),
        (ErrorKind::BadRequest, "bad_key")
    );
    let sums = f.state.sums().await.unwrap();
    assert_eq!((sums.credited, sums.customer_balances), (40, 40));
    assert!(sums.conserved);
}

on_both_backends!(
    withdraw_debits_once_and_refuses_overdrafts,
    register_binds_a_token_to_one_key,
    spend_escrows_with_change_and_refuses_a_double_spend,
    deposit_pays_on_a_proven_commit,
    abort_records_the_logs_outcome,
    refund_after_an_abort,
    dispute_upholds_a_bogus_key_only,
    accounts_and_credits,
);
