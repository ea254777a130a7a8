#![allow(clippy::unwrap_used)]

use super::*;
use crate::engine::abort::AbortLoggedOp;
use crate::engine::account::{CreateAccountOp, CreditOp};
use crate::engine::deposit::DepositOp;
use crate::engine::dispute::DisputeOp;
use crate::engine::refund::RefundOp;
use crate::engine::register::RegisterOp;
use crate::engine::spend::SpendOp;
use crate::engine::withdraw::WithdrawOp;
use crate::records::{EscrowStatus, RefundRecord};
use crate::store::{FailMode, MemoryStore};
use acd_core::bank_api::{DepositResponse, DisputeResponse, SpendResponse};
use acd_core::entry::Outcome;
use acd_core::log_api::EntryProof;
use acd_core::purchase::{EscrowTerms, RefundReason};
use proptest::prelude::*;

/// Any step's op, so that one batch can mix them as the writer's queue
/// does; each variant is decided by its step's own rule.
#[derive(Debug, Clone)]
enum Op {
    CreateAccount {
        key: [u8; 32],
        kind: AccountKind,
    },
    Credit {
        key: [u8; 32],
        amount: u64,
        request_id: [u8; 16],
    },
    Withdraw {
        account: [u8; 32],
        request_id: [u8; 16],
        digest: [u8; 32],
        total: u64,
        blind_signatures: Vec<Vec<u8>>,
    },
    Register {
        token_id: [u8; 32],
        customer: [u8; 32],
        signature: [u8; 64],
    },
    Spend {
        escrow: Box<Escrow>,
        total: u64,
        change_total: u64,
    },
    Deposit {
        tid: Tid,
        merchant: [u8; 32],
        expiration_ms: u64,
        log_origin: String,
    },
    AbortLogged {
        tid: Tid,
        proof: Box<EntryProof>,
    },
    Refund {
        tid: Tid,
        customer: [u8; 32],
        total: u64,
        record: RefundRecord,
        abort: Option<Box<EntryProof>>,
    },
    Dispute {
        tid: Tid,
        customer: [u8; 32],
        total: u64,
        record: RefundRecord,
    },
}

/// The typed replies of the ops above, comparable across banks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Account(AccountInfo),
    BlindSignatures(Vec<Vec<u8>>),
    Receipt([u8; 64]),
    Spend(Box<SpendResponse>),
    Deposit(DepositResponse),
    Dispute(DisputeResponse),
    Recorded,
}

type Decision = Result<Answer, DomainError>;

impl LedgerOp for Op {
    type Reply = Answer;
    const KIND: &'static str = "test";

    fn apply(self, tx: &mut Tx<'_>) -> Decision {
        match self {
            Op::CreateAccount { key, kind } => {
                CreateAccountOp { key, kind }.apply(tx).map(Answer::Account)
            }
            Op::Credit {
                key,
                amount,
                request_id,
            } => CreditOp {
                key,
                amount,
                request_id,
            }
            .apply(tx)
            .map(Answer::Account),
            Op::Withdraw {
                account,
                request_id,
                digest,
                total,
                blind_signatures,
            } => WithdrawOp {
                account,
                request_id,
                digest,
                total,
                blind_signatures,
            }
            .apply(tx)
            .map(Answer::BlindSignatures),
            Op::Register {
                token_id,
                customer,
                signature,
            } => RegisterOp {
                token_id,
                customer,
                signature,
            }
            .apply(tx)
            .map(Answer::Receipt),
            Op::Spend {
                escrow,
                total,
                change_total,
            } => SpendOp {
                escrow,
                total,
                change_total,
            }
            .apply(tx)
            .map(|r| Answer::Spend(Box::new(r))),
            Op::Deposit {
                tid,
                merchant,
                expiration_ms,
                log_origin,
            } => DepositOp {
                tid,
                merchant,
                expiration_ms,
                log_origin,
            }
            .apply(tx)
            .map(Answer::Deposit),
            Op::AbortLogged { tid, proof } => AbortLoggedOp { tid, proof }
                .apply(tx)
                .map(|()| Answer::Recorded),
            Op::Refund {
                tid,
                customer,
                total,
                record,
                abort,
            } => RefundOp {
                tid,
                customer,
                total,
                record,
                abort,
            }
            .apply(tx)
            .map(Answer::BlindSignatures),
            Op::Dispute {
                tid,
                customer,
                total,
                record,
            } => DisputeOp {
                tid,
                customer,
                total,
                record,
            }
            .apply(tx)
            .map(Answer::Dispute),
        }
    }
}

/// Decides one batch as the writer does, each op into its own slot.
fn decide(l: &Ledger, ops: Vec<(Op, Option<CheckpointUpdate>)>) -> Vec<Decision> {
    let (ops, checkpoints): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
    let mut slots: Vec<Slot<Op>> = ops.into_iter().map(Slot::new).collect();
    l.decide(
        slots
            .iter_mut()
            .zip(checkpoints)
            .map(|(s, c)| (s as &mut dyn Decide, c))
            .collect(),
    );
    slots.into_iter().map(Slot::into_decision).collect()
}

/// Where a behaviour test keeps its books: each runs on both.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    Postgres,
}

/// A fresh database of a backend, opened as often as a test restarts.
struct Opened {
    dir: Option<tempfile::TempDir>,
    url: Option<crate::config::DatabaseUrl>,
}

impl Opened {
    /// None: no PostgreSQL to test on, and CI unset (the helper said so).
    fn new(b: Backend) -> Option<Opened> {
        Some(match b {
            Backend::Sled => Opened {
                dir: Some(tempfile::tempdir().unwrap()),
                url: None,
            },
            Backend::Postgres => Opened {
                dir: None,
                url: Some(crate::postgres::testing::fresh_database()?),
            },
        })
    }

    fn ledger(&self) -> Ledger {
        match (&self.dir, &self.url) {
            (Some(dir), _) => Ledger::open(&dir.path().join("db")).unwrap(),
            (None, Some(url)) => Ledger::open_postgres(url).unwrap(),
            (None, None) => unreachable!("one backend"),
        }
    }
}

/// Each behaviour test, on sled and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(#[test]
            fn $name() {
                super::$name(super::Backend::Sled)
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $name() {
                super::$name(super::Backend::Postgres)
            })*
        }
    };
}

/// A ledger on memory; reopening its store is a crash and restart.
fn on_memory() -> (Arc<MemoryStore>, Ledger) {
    let store = Arc::new(MemoryStore::new());
    let reopened = store.clone();
    let ledger = Ledger::with_opener(store.clone(), move || {
        reopened.crash();
        Ok(reopened.clone() as Arc<dyn Store>)
    });
    (store, ledger)
}

fn one(l: &Ledger, op: Op) -> Decision {
    decide(l, vec![(op, None)]).pop().unwrap()
}

fn code(d: Decision) -> &'static str {
    d.err().map(|e| e.code).unwrap_or("ok")
}

const MERCHANT: [u8; 32] = [0xaa; 32];
const CUSTOMER: [u8; 32] = [0xcc; 32];
const Q: [u8; 32] = [0x51; 32];

fn setup(l: &Ledger, credit: u64) {
    for (key, kind) in [
        (MERCHANT, AccountKind::Merchant),
        (CUSTOMER, AccountKind::Customer),
    ] {
        one(l, Op::CreateAccount { key, kind }).unwrap();
    }
    if credit > 0 {
        one(
            l,
            Op::Credit {
                key: CUSTOMER,
                amount: credit,
                request_id: [0xc0; 16],
            },
        )
        .unwrap();
    }
}

fn withdraw(request: u8, total: u64) -> Op {
    Op::Withdraw {
        account: CUSTOMER,
        request_id: [request; 16],
        digest: [request; 32],
        total,
        blind_signatures: vec![vec![request; 4]],
    }
}

fn register(token: u8, customer: [u8; 32]) -> Op {
    Op::Register {
        token_id: [token; 32],
        customer,
        signature: [token; 64],
    }
}

fn escrow(tid: u8, tokens: &[u8], price: u64) -> Escrow {
    let terms = EscrowTerms {
        bank: [1; 32],
        log_origin: "log.test".into(),
        tid: Tid([tid; 16]),
        merchant: MERCHANT,
        expiration_ms: 1000 + u64::from(tid),
        price,
    };
    Escrow {
        response: SpendResponse {
            terms: terms.clone(),
            terms_signature: [2; 64],
            notice_signature: [3; 64],
            change: vec![],
        },
        terms,
        customer: Q,
        token_ids: tokens.iter().map(|t| [*t; 32]).collect(),
        spend_digest: [tid; 32],
        status: EscrowStatus::Escrowed,
        abort: None,
        refund: None,
    }
}

fn spend(tid: u8, tokens: &[u8], total: u64, price: u64) -> Op {
    Op::Spend {
        escrow: Box::new(escrow(tid, tokens, price)),
        total,
        change_total: total - price,
    }
}

fn deposit(tid: u8) -> Op {
    Op::Deposit {
        tid: Tid([tid; 16]),
        merchant: MERCHANT,
        expiration_ms: 1000 + u64::from(tid),
        log_origin: "log.test".into(),
    }
}

fn abort_proof(tid: u8) -> Box<EntryProof> {
    Box::new(EntryProof {
        index: 0,
        tid: Tid([tid; 16]),
        outcome: Outcome::Abort,
        timestamp_ms: 2000,
        entry: vec![],
        leaf_hash: [0; 32],
        tree_size: 1,
        inclusion: vec![],
        checkpoint: String::new(),
    })
}

fn refund(tid: u8, digest: u8, total: u64, abort: bool) -> Op {
    Op::Refund {
        tid: Tid([tid; 16]),
        customer: Q,
        total,
        record: RefundRecord {
            digest: [digest; 32],
            reason: RefundReason::Abort,
            finding: None,
            blind_signatures: vec![vec![digest]],
        },
        abort: abort.then(|| abort_proof(tid)),
    }
}

fn dispute(tid: u8, digest: u8, total: u64) -> Op {
    Op::Dispute {
        tid: Tid([tid; 16]),
        customer: Q,
        total,
        record: RefundRecord {
            digest: [digest; 32],
            reason: RefundReason::Dispute,
            finding: Some(acd_core::bank_api::DisputeFinding::WrongGoods),
            blind_signatures: vec![vec![digest]],
        },
    }
}

fn balance(l: &Ledger, key: &[u8; 32]) -> i64 {
    l.account(key).unwrap().unwrap().balance
}

fn assert_conserved(l: &Ledger) {
    let s = l.sums().unwrap();
    assert!(s.conserved, "{s:?}");
}

// A retried withdrawal returns the same signatures without a second debit; the refusals carry their codes.
fn withdrawal_is_idempotent_and_checked(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    assert_eq!(code(one(&l, withdraw(1, 10))), "unknown_account");
    setup(&l, 100);
    let first = one(&l, withdraw(1, 60)).unwrap();
    let again = one(&l, withdraw(1, 60)).unwrap();
    assert_eq!(first, again);
    assert_eq!(balance(&l, &CUSTOMER), 40);
    let mut other = withdraw(1, 60);
    if let Op::Withdraw { digest, .. } = &mut other {
        digest[0] ^= 1;
    }
    assert_eq!(code(one(&l, other)), "request_id_reused");
    assert_eq!(code(one(&l, withdraw(2, 41))), "insufficient_funds");
    assert_eq!(
        code(one(
            &l,
            Op::Withdraw {
                account: MERCHANT,
                request_id: [3; 16],
                digest: [3; 32],
                total: 1,
                blind_signatures: vec![],
            }
        )),
        "not_a_customer"
    );
    let s = l.sums().unwrap();
    assert_eq!(
        (s.credited, s.live_tokens, s.customer_balances),
        (100, 60, 40)
    );
    assert!(s.conserved);
}

// A token registers to one Q only; the same registration again returns the same receipt.
fn registration_binds_one_key(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 0);
    assert_eq!(one(&l, register(7, Q)).unwrap(), Answer::Receipt([7; 64]));
    let mut again = register(7, Q);
    if let Op::Register { signature, .. } = &mut again {
        *signature = [9; 64];
    }
    assert_eq!(one(&l, again).unwrap(), Answer::Receipt([7; 64]));
    assert_eq!(code(one(&l, register(7, [0x52; 32]))), "already_registered");
}

// Two spends of one token in one batch: exactly one escrow, the other is a double spend.
fn two_spends_of_one_token_in_one_batch(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 100);
    one(&l, withdraw(1, 100)).unwrap();
    one(&l, register(1, Q)).unwrap();
    let decisions = decide(
        &l,
        vec![
            (spend(10, &[1], 10, 10), None),
            (spend(11, &[1], 10, 10), None),
        ],
    );
    assert!(decisions[0].is_ok());
    assert_eq!(
        decisions[1].as_ref().err().map(|e| e.code),
        Some("double_spend")
    );
    assert!(l.escrow(&Tid([10; 16])).unwrap().is_some());
    assert!(l.escrow(&Tid([11; 16])).unwrap().is_none());
    assert_eq!(l.spent(&[1; 32]).unwrap(), Some(Tid([10; 16])));
    assert_eq!(l.sums().unwrap().escrowed, 10);
    assert_conserved(&l);
}

// A spend refused on its second token leaves no trace of the first; repeats and TID reuse are decided.
fn spend_rules_and_no_partial_write(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 100);
    one(&l, withdraw(1, 100)).unwrap();
    one(&l, register(1, Q)).unwrap();
    one(&l, register(2, [0x52; 32])).unwrap();
    assert_eq!(code(one(&l, spend(10, &[1, 2], 20, 20))), "not_registered");
    assert_eq!(code(one(&l, spend(10, &[1, 3], 20, 20))), "not_registered");
    assert_eq!(l.spent(&[1; 32]).unwrap(), None);
    assert!(l.escrow(&Tid([10; 16])).unwrap().is_none());
    let mut no_merchant = escrow(10, &[1], 5);
    no_merchant.terms.merchant = CUSTOMER;
    assert_eq!(
        code(one(
            &l,
            Op::Spend {
                escrow: Box::new(no_merchant),
                total: 10,
                change_total: 5
            }
        )),
        "unknown_merchant"
    );
    let first = one(&l, spend(10, &[1], 10, 4)).unwrap();
    assert_eq!(one(&l, spend(10, &[1], 10, 4)).unwrap(), first);
    let mut other = escrow(10, &[1], 4);
    other.spend_digest = [0; 32];
    assert_eq!(
        code(one(
            &l,
            Op::Spend {
                escrow: Box::new(other),
                total: 10,
                change_total: 6
            }
        )),
        "tid_conflict"
    );
    assert_eq!(code(one(&l, register(1, Q))), "token_spent");
    let s = l.sums().unwrap();
    assert_eq!((s.live_tokens, s.escrowed), (96, 4));
    assert!(s.conserved);
}

// A deposit pays the merchant once; its replay gives the same answer and no second credit.
fn deposit_pays_once(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 50);
    one(&l, withdraw(1, 50)).unwrap();
    one(&l, register(1, Q)).unwrap();
    one(&l, spend(10, &[1], 50, 30)).unwrap();
    let mut wrong = deposit(10);
    if let Op::Deposit { expiration_ms, .. } = &mut wrong {
        *expiration_ms += 1;
    }
    assert_eq!(code(one(&l, wrong)), "entry_mismatch");
    assert_eq!(code(one(&l, deposit(99))), "unknown_escrow");
    let a = one(&l, deposit(10)).unwrap();
    let b = one(&l, deposit(10)).unwrap();
    assert_eq!(a, b);
    assert_eq!(balance(&l, &MERCHANT), 30);
    assert_eq!(code(one(&l, refund(10, 1, 30, true))), "wrong_escrow_state");
    assert_eq!(l.due(u64::MAX, 10).unwrap().len(), 0);
    let s = l.sums().unwrap();
    assert_eq!(
        (s.merchant_balances, s.live_tokens, s.escrowed),
        (30, 20, 0)
    );
    assert!(s.conserved);
}

// A refund needs an abort, the escrow's key and the exact price; it is idempotent by digest.
fn refund_rules(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 50);
    one(&l, withdraw(1, 50)).unwrap();
    one(&l, register(1, Q)).unwrap();
    one(&l, spend(10, &[1], 50, 30)).unwrap();
    assert_eq!(l.due(1009, 10).unwrap().len(), 0);
    assert_eq!(l.due(1010, 10).unwrap().len(), 1);
    assert_eq!(
        code(one(&l, refund(10, 1, 30, false))),
        "abort_proof_required"
    );
    assert_eq!(code(one(&l, refund(10, 1, 29, true))), "bad_refund_amount");
    let mut stranger = refund(10, 1, 30, true);
    if let Op::Refund { customer, .. } = &mut stranger {
        *customer = [0x52; 32];
    }
    assert_eq!(code(one(&l, stranger)), "not_escrow_customer");
    one(
        &l,
        Op::AbortLogged {
            tid: Tid([10; 16]),
            proof: abort_proof(10),
        },
    )
    .unwrap();
    assert_eq!(l.due(u64::MAX, 10).unwrap().len(), 0);
    let a = one(&l, refund(10, 1, 30, false)).unwrap();
    assert_eq!(one(&l, refund(10, 1, 30, false)).unwrap(), a);
    assert_eq!(code(one(&l, refund(10, 2, 30, false))), "already_refunded");
    assert_eq!(code(one(&l, deposit(10))), "wrong_escrow_state");
    assert_eq!(code(one(&l, dispute(10, 3, 30))), "wrong_escrow_state");
    let s = l.sums().unwrap();
    assert_eq!((s.live_tokens, s.escrowed), (50, 0));
    assert!(s.conserved);
}

// An upheld dispute after payment debits the merchant, even below zero; before payment it releases the escrow.
fn dispute_debits_or_releases(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 100);
    one(&l, withdraw(1, 100)).unwrap();
    one(&l, register(1, Q)).unwrap();
    one(&l, register(2, Q)).unwrap();
    one(&l, spend(10, &[1], 50, 50)).unwrap();
    one(&l, spend(11, &[2], 50, 50)).unwrap();
    one(&l, deposit(10)).unwrap();
    one(
        &l,
        Op::Credit {
            key: MERCHANT,
            amount: 1,
            request_id: [0xc1; 16],
        },
    )
    .unwrap();
    assert_eq!(code(one(&l, dispute(10, 1, 49))), "bad_refund_amount");
    let a = one(&l, dispute(10, 1, 50)).unwrap();
    assert_eq!(one(&l, dispute(10, 1, 50)).unwrap(), a);
    assert_eq!(code(one(&l, dispute(10, 2, 50))), "already_refunded");
    one(&l, dispute(11, 3, 50)).unwrap();
    assert_eq!(balance(&l, &MERCHANT), 1);
    one(&l, withdraw(2, 0)).unwrap();
    let s = l.sums().unwrap();
    assert_eq!((s.live_tokens, s.escrowed, s.credited), (100, 0, 101));
    assert!(s.conserved);
}

// State survives closing and reopening the database.
fn restart_keeps_state(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    {
        let l = opened.ledger();
        setup(&l, 70);
        one(&l, withdraw(1, 20)).unwrap();
        decide(
            &l,
            vec![(
                register(1, Q),
                Some(CheckpointUpdate {
                    origin: "log.test".into(),
                    size: 5,
                    text: "log.test\n5\n...".into(),
                }),
            )],
        );
    }
    let l = opened.ledger();
    assert_eq!(balance(&l, &CUSTOMER), 50);
    assert!(l.registration(&[1; 32]).unwrap().is_some());
    assert_eq!(
        l.checkpoints().unwrap(),
        vec![("log.test".to_owned(), "log.test\n5\n...".to_owned())]
    );
    assert_eq!(code(one(&l, withdraw(1, 20))), "ok");
    assert_eq!(balance(&l, &CUSTOMER), 50);
    assert_conserved(&l);
}

#[derive(Debug, Clone)]
enum Action {
    Credit(u8, u64),
    Withdraw(u8, u64),
    Register(u8, bool),
    Spend(u8, Vec<u8>, u64, u64),
    Deposit(u8),
    Abort(u8),
    Refund(u8, u8, bool),
    Dispute(u8, u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..3, 1u64..200).prop_map(|(r, a)| Action::Credit(r, a)),
        (0u8..4, 0u64..120).prop_map(|(r, t)| Action::Withdraw(r, t)),
        (0u8..8, any::<bool>()).prop_map(|(t, q)| Action::Register(t, q)),
        (
            0u8..4,
            prop::collection::vec(0u8..8, 1..3),
            1u64..80,
            0u64..80
        )
            .prop_map(|(tid, toks, price, extra)| Action::Spend(
                tid,
                toks,
                price + extra,
                price
            )),
        (0u8..4).prop_map(Action::Deposit),
        (0u8..4).prop_map(Action::Abort),
        (0u8..4, 0u8..2, any::<bool>()).prop_map(|(t, d, a)| Action::Refund(t, d, a)),
        (0u8..4, 0u8..2).prop_map(|(t, d)| Action::Dispute(t, d)),
    ]
}

fn to_op(l: &Ledger, a: Action) -> Op {
    let price = |tid: u8| {
        l.escrow(&Tid([tid; 16]))
            .ok()
            .flatten()
            .map(|e| e.terms.price)
            .unwrap_or(1)
    };
    match a {
        Action::Credit(r, amount) => Op::Credit {
            key: CUSTOMER,
            amount,
            request_id: [r; 16],
        },
        Action::Withdraw(r, t) => withdraw(r, t),
        Action::Register(t, q) => register(t, if q { Q } else { [0x52; 32] }),
        Action::Spend(tid, toks, total, price) => spend(tid, &toks, total, price),
        Action::Deposit(tid) => deposit(tid),
        Action::Abort(tid) => Op::AbortLogged {
            tid: Tid([tid; 16]),
            proof: abort_proof(tid),
        },
        Action::Refund(tid, d, a) => refund(tid, d, price(tid), a),
        Action::Dispute(tid, d) => dispute(tid, d, price(tid)),
    }
}

// A credit is applied once per request id, whatever its retries.
fn credit_is_idempotent(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 0);
    let credit = |amount| Op::Credit {
        key: CUSTOMER,
        amount,
        request_id: [7; 16],
    };
    assert_eq!(code(one(&l, credit(40))), "ok");
    assert_eq!(code(one(&l, credit(40))), "ok");
    assert_eq!(balance(&l, &CUSTOMER), 40);
    assert_eq!(code(one(&l, credit(41))), "request_id_reused");
    assert_eq!(l.sums().unwrap().credited, 40);
    assert_conserved(&l);
}

fn is_storage_failure(d: &Decision) -> bool {
    matches!(d, Err(e) if e.code == "storage_unavailable")
}

// A write that fails before it is applied answers every op of the batch
// with a retryable 503 and leaves no trace.
#[test]
fn a_failed_write_changes_nothing() {
    let (store, l) = on_memory();
    setup(&l, 100);
    let before = store.contents();
    store.fail_next(FailMode::NotApplied);
    let decisions = decide(&l, vec![(withdraw(1, 30), None), (register(1, Q), None)]);
    assert!(decisions.iter().all(is_storage_failure), "{decisions:?}");
    assert_eq!(store.contents(), before);
    assert_eq!(code(one(&l, withdraw(1, 30))), "ok");
    assert_eq!(balance(&l, &CUSTOMER), 70);
}

// A write applied but not flushed is never shown: the ledger reopens its
// store as durable at once; the retry withdraws once, and the customer gets
// the signatures.
#[test]
fn a_batch_whose_flush_failed_is_dropped_whole() {
    let (store, l) = on_memory();
    setup(&l, 100);
    store.fail_next(FailMode::NotDurable);
    assert!(is_storage_failure(&one(&l, withdraw(1, 30))));
    assert!(l.is_open(), "reopened at once");
    assert_eq!(balance(&l, &CUSTOMER), 100);
    assert_conserved(&l);
    assert_eq!(
        one(&l, withdraw(1, 30)),
        Ok(Answer::BlindSignatures(vec![vec![1; 4]]))
    );
    assert_eq!(balance(&l, &CUSTOMER), 70);
    store.crash();
    assert_eq!(balance(&l, &CUSTOMER), 70);
    assert_conserved(&l);
}

// While writes fail (a full disk), a credit whose flush failed is never
// shown: every read and write answers 503 `storage_unavailable`, nothing
// of the failed batch. Once the disk takes writes, recovery shows exactly
// the durable books, and a restart shows the same.
#[test]
fn a_credit_whose_flush_failed_is_never_shown() {
    let (store, l) = on_memory();
    setup(&l, 100);
    store.fail_until_healed(FailMode::NotDurable);
    let credit = Op::Credit {
        key: CUSTOMER,
        amount: 1,
        request_id: [9; 16],
    };
    assert!(is_storage_failure(&one(&l, credit.clone())));
    assert!(!l.is_open());
    let read = l.account(&CUSTOMER).map(|a| a.map(|a| a.balance));
    assert!(
        matches!(&read, Err(e) if e.code == "storage_unavailable"),
        "{read:?}"
    );
    assert!(matches!(l.sums(), Err(e) if e.code == "storage_unavailable"));
    assert!(is_storage_failure(&one(&l, withdraw(1, 30))));
    assert!(l.recover().is_err(), "the probe write fails too");
    assert!(!l.is_open());

    store.heal();
    l.recover().unwrap();
    assert_eq!(balance(&l, &CUSTOMER), 100);
    assert_conserved(&l);
    store.crash();
    assert_eq!(balance(&l, &CUSTOMER), 100);
    assert_eq!(
        one(&l, credit),
        Ok(Answer::Account(AccountInfo {
            key: CUSTOMER,
            kind: AccountKind::Customer,
            balance: 101
        }))
    );
    store.crash();
    assert_eq!(balance(&l, &CUSTOMER), 101);
}

// The sums read the totals and the scan from one state: polled while
// credits and withdrawals are written, every answer conserves.
fn sums_conserve_under_concurrent_writes(b: Backend) {
    let Some(opened) = Opened::new(b) else {
        return;
    };
    let l = opened.ledger();
    setup(&l, 0);
    let accounts: Vec<[u8; 32]> = (0..32u8).map(|i| [i; 32]).collect();
    for key in &accounts {
        one(
            &l,
            Op::CreateAccount {
                key: *key,
                kind: AccountKind::Customer,
            },
        )
        .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (l, stop, accounts) = (l.clone(), stop.clone(), accounts.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut request_id = [0u8; 16];
                request_id[..4].copy_from_slice(&n.to_be_bytes());
                let ops = accounts
                    .iter()
                    .map(|key| {
                        let op = if n.is_multiple_of(2) {
                            Op::Credit {
                                key: *key,
                                amount: 10,
                                request_id,
                            }
                        } else {
                            Op::Withdraw {
                                account: *key,
                                request_id,
                                digest: [1; 32],
                                total: 5,
                                blind_signatures: vec![vec![1; 4]],
                            }
                        };
                        (op, None)
                    })
                    .collect();
                for d in decide(&l, ops) {
                    d.unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let (mut polls, mut not_conserved) = (0u32, 0u32);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline || polls < 50 {
        polls += 1;
        if !l.sums().unwrap().conserved {
            not_conserved += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let batches = writer.join().unwrap();
    println!("{not_conserved} of {polls} polls not conserved, {batches} batches");
    assert!(batches > 2, "the writer ran");
    assert_eq!(not_conserved, 0, "of {polls} polls");
    assert_conserved(&l);
}

/// How one batch's write fails, and whether the bank then restarts.
#[derive(Debug, Clone, Copy)]
struct Fault {
    mode: FailMode,
    crash: bool,
}

fn fault() -> impl Strategy<Value = Option<Fault>> {
    let mode = prop_oneof![
        Just(FailMode::NotApplied),
        Just(FailMode::NotDurable),
        Just(FailMode::Durable),
    ];
    prop::option::weighted(
        0.4,
        (mode, any::<bool>()).prop_map(|(mode, crash)| Fault { mode, crash }),
    )
}

/// Answers that carry value to their holder: a retry must hand out the
/// same ones, or money is lost.
fn carries_value(a: &Answer) -> bool {
    matches!(
        a,
        Answer::BlindSignatures(_) | Answer::Spend(_) | Answer::Dispute(_)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    // Whatever sequence of operations, in whatever batches, money is conserved and the scan agrees.
    #[test]
    fn conservation_holds(batches in prop::collection::vec(prop::collection::vec(action(), 1..5), 1..12)) {
        let opened = Opened::new(Backend::Sled).unwrap();
        let l = opened.ledger();
        setup(&l, 0);
        for batch in batches {
            let ops = batch.into_iter().map(|a| (to_op(&l, a), None)).collect();
            decide(&l, ops);
            let s = l.sums().unwrap();
            prop_assert!(s.conserved, "{:?}", s);
        }
    }

    // Writes that fail (applied or not, durable or not) with or without a
    // crash after them, then the ops answered 503 sent again, as a client
    // does: the books end byte for byte as those of a bank whose writes
    // never failed, and every answer that carries value is handed out again
    // the same.
    #[test]
    fn retried_failures_keep_the_books_of_a_bank_without_failures(
        batches in prop::collection::vec((prop::collection::vec(action(), 1..5), fault()), 1..12)
    ) {
        let (reference_store, reference) = on_memory();
        let (store, faulty) = on_memory();
        setup(&reference, 0);
        setup(&faulty, 0);
        for (batch, fault) in batches {
            let ops: Vec<Op> = batch.into_iter().map(|a| to_op(&reference, a)).collect();
            let with_none = |ops: &[Op]| ops.iter().cloned().map(|o| (o, None)).collect::<Vec<_>>();
            let expected = decide(&reference, with_none(&ops));
            match fault {
                None => prop_assert_eq!(decide(&faulty, with_none(&ops)), expected),
                Some(f) => {
                    store.fail_next(f.mode);
                    let failed = decide(&faulty, with_none(&ops));
                    store.heal();
                    if f.crash {
                        store.crash();
                    }
                    // The refusals are the same; every accepted op is a 503
                    // (unless the batch had nothing to write).
                    let mut retry = Vec::new();
                    for ((op, got), want) in ops.iter().zip(&failed).zip(&expected) {
                        if is_storage_failure(got) {
                            prop_assert!(want.is_ok());
                            retry.push((op.clone(), want));
                        } else {
                            prop_assert_eq!(got, want);
                        }
                    }
                    let (again, wants): (Vec<Op>, Vec<_>) = retry.into_iter().unzip();
                    let decided = decide(&faulty, with_none(&again));
                    for (got, want) in decided.iter().zip(wants) {
                        match want {
                            Ok(a) if carries_value(a) => prop_assert_eq!(got, want),
                            _ => prop_assert!(got.is_ok() || !is_storage_failure(got)),
                        }
                    }
                }
            }
            prop_assert_eq!(store.contents(), reference_store.contents());
            prop_assert!(faulty.sums().unwrap().conserved);
        }
    }
}

on_both_backends!(
    withdrawal_is_idempotent_and_checked,
    registration_binds_one_key,
    two_spends_of_one_token_in_one_batch,
    spend_rules_and_no_partial_write,
    deposit_pays_once,
    refund_rules,
    dispute_debits_or_releases,
    restart_keeps_state,
    credit_is_idempotent,
    sums_conserve_under_concurrent_writes,
);

// Two ledgers on one PostgreSQL database (two bank processes) are one
// bank: spends of one token decided by both at once have exactly one
// winner, and both see the same conserved sums.
#[test]
fn two_ledgers_on_one_database_are_one_bank() {
    let Some(opened) = Opened::new(Backend::Postgres) else {
        return;
    };
    let (a, b) = (opened.ledger(), opened.ledger());
    setup(&a, 100);
    one(&b, withdraw(1, 100)).unwrap();
    one(&a, register(1, Q)).unwrap();
    let decisions: Vec<Decision> = std::thread::scope(|s| {
        let spends: Vec<_> = (0..24u8)
            .map(|i| {
                let l = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || one(l, spend(100 + i, &[1], 10, 10)))
            })
            .collect();
        spends.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<_> = decisions.iter().filter(|d| d.is_ok()).collect();
    assert_eq!(won.len(), 1, "{decisions:?}");
    assert!(
        decisions
            .iter()
            .filter(|d| d.is_err())
            .all(|d| matches!(d, Err(e) if e.code == "double_spend")),
        "{decisions:?}"
    );
    let winner = a.spent(&[1; 32]).unwrap().unwrap();
    assert_eq!(b.spent(&[1; 32]).unwrap(), Some(winner));
    for l in [&a, &b] {
        let s = l.sums().unwrap();
        assert_eq!((s.escrowed, s.live_tokens), (10, 90), "{s:?}");
        assert!(s.conserved);
    }
    // A deposit decided by both at once pays once.
    let paid: Vec<Decision> = std::thread::scope(|s| {
        let hs: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .map(|l| s.spawn(move || one(l, deposit(winner.0[0]))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paid.iter().all(Result::is_ok), "{paid:?}");
    assert_eq!(balance(&b, &MERCHANT), 10);
    assert_conserved(&a);
}

/// A store shared with another front-end, which commits a batch once:
/// right after this one reads the totals outside a transaction, or, if it
/// reads them inside one, just before that transaction begins (where a
/// shared database's lock puts the other front-end's commit).
struct Racing {
    inner: Arc<MemoryStore>,
    other: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

use crate::store::{Items, StoreTx, Writes};

impl Store for Racing {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.inner.get(key)?;
        if key == records::TOTALS
            && let Some(other) = self.other.lock().unwrap().take()
        {
            other();
        }
        Ok(value)
    }
    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_> {
        self.inner.range(start, end)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_> {
        self.inner.scan_prefix(prefix)
    }
    fn write(&self, writes: &Writes) -> Result<(), StoreError> {
        self.inner.write(writes)
    }
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        if let Some(other) = self.other.lock().unwrap().take() {
            other();
        }
        self.inner.begin()
    }
}

// Two front-ends on one database: while one recovers from a failed write,
// the other commits a credit. The recovering one's probe must not write
// back totals it read before that commit (which would lose the credit from
// the sums while the account keeps it): the sums still agree with a scan.
#[test]
fn a_recovering_front_end_keeps_the_others_sums() {
    let shared = Arc::new(MemoryStore::new());
    let other = Arc::new(Ledger::with_opener(shared.clone(), {
        let s = shared.clone();
        move || Ok(s.clone() as Arc<dyn Store>)
    }));
    let credit_elsewhere = {
        let other = other.clone();
        move || {
            let d = one(
                &other,
                Op::Credit {
                    key: CUSTOMER,
                    amount: 7,
                    request_id: [7; 16],
                },
            );
            assert_eq!(code(d), "ok");
        }
    };
    let racing = Arc::new(Racing {
        inner: shared.clone(),
        other: std::sync::Mutex::new(Some(Box::new(credit_elsewhere))),
    });
    let this = Ledger::with_opener(shared.clone(), {
        let r = racing.clone();
        move || Ok(r.clone() as Arc<dyn Store>)
    });
    setup(&this, 100);
    // A write of this front-end fails; its gate shuts.
    shared.fail_next(FailMode::NotApplied);
    let d = one(
        &this,
        Op::Credit {
            key: CUSTOMER,
            amount: 1,
            request_id: [1; 16],
        },
    );
    // The failed batch recovered at once, through the racing store.
    assert!(is_storage_failure(&d));
    assert!(this.is_open());
    assert!(
        racing.other.lock().unwrap().is_none(),
        "the other commit ran"
    );
    assert_eq!(balance(&this, &CUSTOMER), 107);
    assert_conserved(&this);
    assert_conserved(&other);
}
