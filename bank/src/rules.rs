//! The rules of every ledger op (paper figure 1 steps 1 and 4, P2,
//! deposit, refund, dispute): each reads and writes through one op's
//! [`Tx`], so a refused op leaves no trace in its batch.

use acd_core::bank_api::{AccountKind, DepositResponse, DisputeResponse};
use acd_core::entry::Tid;
use acd_core::log_api::EntryProof;

use crate::error::ApiError;
use crate::ledger::{
    Answer, Decision, Op, Tx, account_info, add_balance, corrupt_totals, overflow, to_i64,
    wrong_state,
};
use crate::records::{self, Account, Escrow, EscrowStatus, RefundRecord, Registration, Totals};
use crate::records::{CreditRecord, WithdrawalRecord, account_key, due_key, escrow_key};

pub(crate) fn apply(tx: &mut Tx<'_>, op: Op) -> Decision {
    match op {
        Op::CreateAccount { key, kind } => create_account(tx, key, kind),
        Op::Credit {
            key,
            amount,
            request_id,
        } => credit(tx, key, amount, request_id),
        Op::Withdraw {
            account,
            request_id,
            digest,
            total,
            blind_signatures,
        } => withdraw(tx, account, request_id, digest, total, blind_signatures),
        Op::Register {
            token_id,
            customer,
            signature,
        } => register(tx, token_id, customer, signature),
        Op::Spend {
            escrow,
            total,
            change_total,
        } => spend(tx, *escrow, total, change_total),
        Op::Deposit {
            tid,
            merchant,
            expiration_ms,
            log_origin,
        } => deposit(tx, tid, merchant, expiration_ms, &log_origin),
        Op::AbortLogged { tid, proof } => abort_logged(tx, tid, *proof),
        Op::Refund {
            tid,
            customer,
            total,
            record,
            abort,
        } => refund(tx, tid, customer, total, record, abort.map(|b| *b)),
        Op::Dispute {
            tid,
            customer,
            total,
            record,
        } => dispute(tx, tid, customer, total, record),
        Op::Sync => Ok(Answer::Recorded),
    }
}

fn create_account(tx: &mut Tx<'_>, key: [u8; 32], kind: AccountKind) -> Decision {
    if let Some(a) = tx.get::<Account>(&account_key(&key))? {
        return if a.kind == kind {
            Ok(Answer::Account(account_info(key, &a)))
        } else {
            Err(ApiError::conflict(
                "account_exists",
                format!("account {} exists with another kind", hex::encode(key)),
            ))
        };
    }
    let a = Account { kind, balance: 0 };
    tx.put(account_key(&key), &a)?;
    Ok(Answer::Account(account_info(key, &a)))
}

fn credit(tx: &mut Tx<'_>, key: [u8; 32], amount: u64, request_id: [u8; 16]) -> Decision {
    let mut a = tx.account(&key)?;
    let record_key = records::credit_key(&key, &request_id);
    if let Some(c) = tx.get::<CreditRecord>(&record_key)? {
        return if c.amount == amount {
            Ok(Answer::Account(account_info(key, &a)))
        } else {
            Err(ApiError::conflict(
                "request_id_reused",
                "this request id was used for another credit",
            ))
        };
    }
    let delta = to_i64(amount)?;
    a.balance = a.balance.checked_add(delta).ok_or_else(overflow)?;
    let mut t = tx.totals()?;
    t.credited = t.credited.checked_add(amount).ok_or_else(overflow)?;
    add_balance(&mut t, a.kind, delta).map_err(|_| overflow())?;
    tx.put(account_key(&key), &a)?;
    tx.put(records::TOTALS.to_vec(), &t)?;
    tx.put(record_key, &CreditRecord { amount })?;
    Ok(Answer::Account(account_info(key, &a)))
}

fn withdraw(
    tx: &mut Tx<'_>,
    account: [u8; 32],
    request_id: [u8; 16],
    digest: [u8; 32],
    total: u64,
    blind_signatures: Vec<Vec<u8>>,
) -> Decision {
    let mut a = tx.account(&account)?;
    if a.kind != AccountKind::Customer {
        return Err(ApiError::forbidden(
            "not_a_customer",
            "only customer accounts withdraw",
        ));
    }
    let key = records::withdrawal_key(&account, &request_id);
    if let Some(w) = tx.get::<WithdrawalRecord>(&key)? {
        return if w.digest == digest {
            Ok(Answer::BlindSignatures(w.blind_signatures))
        } else {
            Err(ApiError::conflict(
                "request_id_reused",
                "this request id was used for another withdrawal",
            ))
        };
    }
    let amount = to_i64(total)?;
    if a.balance < amount {
        return Err(ApiError::conflict(
            "insufficient_funds",
            format!("the balance {} does not cover {total}", a.balance),
        ));
    }
    a.balance -= amount;
    let mut t = tx.totals()?;
    add_balance(&mut t, AccountKind::Customer, -amount)?;
    t.live_tokens = t
        .live_tokens
        .checked_add(total)
        .ok_or_else(corrupt_totals)?;
    tx.put(account_key(&account), &a)?;
    tx.put(records::TOTALS.to_vec(), &t)?;
    tx.put(
        key,
        &WithdrawalRecord {
            digest,
            blind_signatures: blind_signatures.clone(),
        },
    )?;
    Ok(Answer::BlindSignatures(blind_signatures))
}

fn register(
    tx: &mut Tx<'_>,
    token_id: [u8; 32],
    customer: [u8; 32],
    signature: [u8; 64],
) -> Decision {
    if tx.raw(&records::spent_key(&token_id))?.is_some() {
        return Err(ApiError::conflict("token_spent", "the token is spent"));
    }
    let key = records::registration_key(&token_id);
    if let Some(r) = tx.get::<Registration>(&key)? {
        return if r.customer == customer {
            Ok(Answer::Receipt(r.signature))
        } else {
            Err(ApiError::conflict(
                "already_registered",
                "the token is registered to another key",
            ))
        };
    }
    tx.put(
        key,
        &Registration {
            customer,
            signature,
        },
    )?;
    Ok(Answer::Receipt(signature))
}

fn spend(tx: &mut Tx<'_>, escrow: Escrow, total: u64, change_total: u64) -> Decision {
    let tid = escrow.terms.tid;
    if let Some(e) = tx.get::<Escrow>(&escrow_key(&tid))? {
        return if e.spend_digest == escrow.spend_digest {
            Ok(Answer::Spend(Box::new(e.response)))
        } else {
            Err(ApiError::conflict(
                "tid_conflict",
                format!("TID {tid} is already escrowed for another spend"),
            ))
        };
    }
    let merchant: Option<Account> = tx.get(&account_key(&escrow.terms.merchant))?;
    if merchant.is_none_or(|m| m.kind != AccountKind::Merchant) {
        return Err(ApiError::bad(
            "unknown_merchant",
            "the terms' merchant has no merchant account",
        ));
    }
    for id in &escrow.token_ids {
        let reg: Option<Registration> = tx.get(&records::registration_key(id))?;
        if reg.is_none_or(|r| r.customer != escrow.customer) {
            return Err(ApiError::forbidden(
                "not_registered",
                format!(
                    "token {} is not registered to the spending key",
                    hex::encode(id)
                ),
            ));
        }
        if tx.raw(&records::spent_key(id))?.is_some() {
            return Err(ApiError::conflict(
                "double_spend",
                format!("token {} is already spent", hex::encode(id)),
            ));
        }
    }
    let price = escrow.terms.price;
    let mut t = tx.totals()?;
    t.live_tokens = t
        .live_tokens
        .checked_sub(total)
        .and_then(|v| v.checked_add(change_total))
        .ok_or_else(corrupt_totals)?;
    t.escrowed = t.escrowed.checked_add(price).ok_or_else(corrupt_totals)?;
    for id in &escrow.token_ids {
        tx.put_raw(records::spent_key(id), tid.0.to_vec());
    }
    tx.put_raw(due_key(escrow.terms.expiration_ms, &tid), Vec::new());
    tx.put(records::TOTALS.to_vec(), &t)?;
    tx.put_escrow(&escrow)?;
    Ok(Answer::Spend(Box::new(escrow.response)))
}

/// Releases the escrowed price from the held total and the due index.
fn release(tx: &mut Tx<'_>, e: &Escrow, t: &mut Totals) -> Result<(), ApiError> {
    t.escrowed = t
        .escrowed
        .checked_sub(e.terms.price)
        .ok_or_else(corrupt_totals)?;
    if e.status == EscrowStatus::Escrowed {
        tx.delete(due_key(e.terms.expiration_ms, &e.terms.tid));
    }
    Ok(())
}

fn deposit(
    tx: &mut Tx<'_>,
    tid: Tid,
    merchant: [u8; 32],
    expiration_ms: u64,
    log_origin: &str,
) -> Decision {
    let mut e = tx.escrow(&tid)?;
    if e.terms.merchant != merchant
        || e.terms.expiration_ms != expiration_ms
        || e.terms.log_origin != log_origin
    {
        return Err(ApiError::bad(
            "entry_mismatch",
            "the commit's merchant, expiration or log differ from the escrow's terms",
        ));
    }
    let answer = DepositResponse {
        tid,
        merchant,
        amount: e.terms.price,
    };
    match e.status {
        EscrowStatus::Paid => return Ok(Answer::Deposit(answer)),
        EscrowStatus::Escrowed => {}
        _ => return Err(wrong_state(&e, "only an open escrow is paid")),
    }
    let mut m = tx.account(&merchant)?;
    let amount = to_i64(e.terms.price)?;
    m.balance = m.balance.checked_add(amount).ok_or_else(overflow)?;
    let mut t = tx.totals()?;
    release(tx, &e, &mut t)?;
    add_balance(&mut t, m.kind, amount)?;
    e.status = EscrowStatus::Paid;
    tx.put(account_key(&merchant), &m)?;
    tx.put(records::TOTALS.to_vec(), &t)?;
    tx.put_escrow(&e)?;
    Ok(Answer::Deposit(answer))
}

fn abort_logged(tx: &mut Tx<'_>, tid: Tid, proof: EntryProof) -> Decision {
    let mut e = tx.escrow(&tid)?;
    match e.status {
        EscrowStatus::AbortLogged => Ok(Answer::Recorded),
        EscrowStatus::Escrowed => {
            tx.delete(due_key(e.terms.expiration_ms, &tid));
            e.status = EscrowStatus::AbortLogged;
            e.abort = Some(proof);
            tx.put_escrow(&e)?;
            Ok(Answer::Recorded)
        }
        _ => Err(wrong_state(
            &e,
            "an abort is recorded only for an open escrow",
        )),
    }
}

fn check_refund_owner(e: &Escrow, customer: &[u8; 32]) -> Result<(), ApiError> {
    if &e.customer != customer {
        return Err(ApiError::forbidden(
            "not_escrow_customer",
            "the refund is not signed by the key that spent",
        ));
    }
    Ok(())
}

fn check_refund_total(e: &Escrow, total: u64) -> Result<(), ApiError> {
    if total != e.terms.price {
        return Err(ApiError::bad(
            "bad_refund_amount",
            format!(
                "the blinded tokens are worth {total}, the escrow {}",
                e.terms.price
            ),
        ));
    }
    Ok(())
}

/// An earlier refund of this escrow: the same answer or a conflict.
fn repeat_refund(e: &Escrow, digest: &[u8; 32]) -> Decision {
    match &e.refund {
        Some(r) if &r.digest == digest => Ok(match r.finding {
            Some(finding) => Answer::Dispute(DisputeResponse {
                finding,
                blind_signatures: r.blind_signatures.clone(),
            }),
            None => Answer::BlindSignatures(r.blind_signatures.clone()),
        }),
        _ => Err(ApiError::conflict(
            "already_refunded",
            format!("the escrow of TID {} was refunded already", e.terms.tid),
        )),
    }
}

fn refund(
    tx: &mut Tx<'_>,
    tid: Tid,
    customer: [u8; 32],
    total: u64,
    record: RefundRecord,
    abort: Option<EntryProof>,
) -> Decision {
    let mut e = tx.escrow(&tid)?;
    check_refund_owner(&e, &customer)?;
    match e.status {
        EscrowStatus::Refunded => return repeat_refund(&e, &record.digest),
        EscrowStatus::AbortLogged => {}
        EscrowStatus::Escrowed => match abort {
            Some(p) => e.abort = Some(p),
            None => {
                return Err(ApiError::bad(
                    "abort_proof_required",
                    "no abort is known for this TID; show the abort entry with its proof",
                ));
            }
        },
        EscrowStatus::Paid | EscrowStatus::Disputed => {
            return Err(wrong_state(&e, "only an aborted escrow is refunded"));
        }
    }
    check_refund_total(&e, total)?;
    let mut t = tx.totals()?;
    release(tx, &e, &mut t)?;
    t.live_tokens = t
        .live_tokens
        .checked_add(total)
        .ok_or_else(corrupt_totals)?;
    let sigs = record.blind_signatures.clone();
    e.status = EscrowStatus::Refunded;
    e.refund = Some(record);
    tx.put(records::TOTALS.to_vec(), &t)?;
    tx.put_escrow(&e)?;
    Ok(Answer::BlindSignatures(sigs))
}

fn dispute(
    tx: &mut Tx<'_>,
    tid: Tid,
    customer: [u8; 32],
    total: u64,
    record: RefundRecord,
) -> Decision {
    let mut e = tx.escrow(&tid)?;
    check_refund_owner(&e, &customer)?;
    let mut t = tx.totals()?;
    match e.status {
        EscrowStatus::Disputed => return repeat_refund(&e, &record.digest),
        EscrowStatus::Escrowed => {
            check_refund_total(&e, total)?;
            release(tx, &e, &mut t)?;
        }
        EscrowStatus::Paid => {
            check_refund_total(&e, total)?;
            let mut m = tx.account(&e.terms.merchant)?;
            let amount = to_i64(e.terms.price)?;
            m.balance = m.balance.checked_sub(amount).ok_or_else(overflow)?;
            add_balance(&mut t, m.kind, -amount)?;
            tx.put(account_key(&e.terms.merchant), &m)?;
        }
        EscrowStatus::AbortLogged | EscrowStatus::Refunded => {
            return Err(wrong_state(&e, "an aborted purchase is not disputed"));
        }
    }
    t.live_tokens = t
        .live_tokens
        .checked_add(total)
        .ok_or_else(corrupt_totals)?;
    let answer = DisputeResponse {
        finding: record
            .finding
            .ok_or_else(|| ApiError::internal("dispute without finding"))?,
        blind_signatures: record.blind_signatures.clone(),
    };
    e.status = EscrowStatus::Disputed;
    e.refund = Some(record);
    tx.put(records::TOTALS.to_vec(), &t)?;
    tx.put_escrow(&e)?;
    Ok(Answer::Dispute(answer))
}
