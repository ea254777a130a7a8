//! The bank's public JSON API ([`acd_core::bank_api`]). Each handler does
//! the request's own checks and the CPU-heavy crypto (signatures, token
//! verification, proofs, blind signing on the blocking pool), then hands
//! one [`Op`] to the ledger's writer, which decides it against the books.
//! Blind signatures made here leave the bank only if the op commits.

use std::collections::HashSet;
use std::sync::Arc;

use acd_core::bank_api::{
    AccountKind, BankInfo, BlindSignatures, DepositRequest, DepositResponse, DisputeFinding,
    DisputeRequest, DisputeResponse, RefundRequest, RegisterRequest, SignedReceipt, SpendRequest,
    SpendResponse, WithdrawRequest,
};
use acd_core::entry::LogEntry;
use acd_core::goods;
use acd_core::purchase::{MAX_ITEMS, Receipt, Refund, RefundReason};
use acd_core::token::{self, BlindedMessage, Token};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use sha2::{Digest, Sha256};

use crate::BankState;
use crate::error::ApiError;
use crate::ledger::{Answer, Op};
use crate::logs::{self, Proven};
use crate::records::{Escrow, EscrowStatus, RefundRecord};

type AppState = State<Arc<BankState>>;

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn unexpected(answer: Answer) -> ApiError {
    // The answer's contents (signatures) stay out of the log.
    ApiError::internal(format!(
        "unexpected ledger answer {:?}",
        std::mem::discriminant(&answer)
    ))
}

/// Runs CPU-heavy work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("blocking task: {e}")))?
}

impl BankState {
    /// Hands out `value`, an earlier answer found in the books, only once
    /// the books it came from are durable: it may have been read from a
    /// batch whose flush is still running or failed.
    async fn settled<T>(&self, value: T) -> Result<T, ApiError> {
        match self.writer.submit(Op::Sync, None).await? {
            Answer::Recorded => Ok(value),
            other => Err(unexpected(other)),
        }
    }
}

fn bad_signature(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad("bad_signature", e.to_string())
}

impl BankState {
    fn check_ours(&self, bank: &[u8; 32]) -> Result<(), ApiError> {
        if bank != &self.public {
            return Err(ApiError::bad(
                "wrong_bank",
                "the message is addressed to another bank",
            ));
        }
        Ok(())
    }

    fn denomination_value(&self, id: &[u8; 32]) -> Result<u64, ApiError> {
        self.denominations
            .get(id)
            .map(|d| d.denomination.value)
            .ok_or_else(|| {
                ApiError::bad(
                    "unknown_denomination",
                    format!("no denomination {}", hex::encode(id)),
                )
            })
    }

    /// Checks a list of blinded messages (count, denominations, sizes) and
    /// returns their total value.
    fn check_blinded(&self, list: &[BlindedMessage], allow_empty: bool) -> Result<u64, ApiError> {
        if list.len() > MAX_ITEMS || (list.is_empty() && !allow_empty) {
            return Err(ApiError::bad(
                "bad_item_count",
                format!("between 1 and {MAX_ITEMS} blinded messages are needed"),
            ));
        }
        let mut total = 0u64;
        for b in list {
            let d = self.denominations.get(&b.denomination).ok_or_else(|| {
                ApiError::bad(
                    "unknown_denomination",
                    format!("no denomination {}", hex::encode(b.denomination)),
                )
            })?;
            if b.message.len() != d.denomination.modulus_bytes() {
                return Err(ApiError::bad(
                    "bad_blinded_message",
                    format!(
                        "a blinded message has {} bytes, the key {}",
                        b.message.len(),
                        d.denomination.modulus_bytes()
                    ),
                ));
            }
            total = total
                .checked_add(d.denomination.value)
                .ok_or_else(|| ApiError::bad("overflow", "the total is out of range"))?;
        }
        Ok(total)
    }

    /// Blind-signs `list` (already checked) on the blocking pool.
    async fn sign_blinded(
        self: &Arc<Self>,
        list: Vec<BlindedMessage>,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let keys = list
            .iter()
            .map(|b| {
                self.denominations
                    .get(&b.denomination)
                    .map(|d| d.secret.clone())
                    .ok_or_else(|| ApiError::bad("unknown_denomination", "unknown denomination"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        blocking(move || {
            list.iter()
                .zip(keys)
                .map(|(b, key)| {
                    token::blind_sign(&key, &b.message)
                        .map_err(|e| ApiError::bad("bad_blinded_message", e.to_string()))
                })
                .collect()
        })
        .await
    }

    /// Verifies tokens under their denominations on the blocking pool;
    /// returns their total value.
    async fn verify_tokens(self: &Arc<Self>, tokens: Vec<Token>) -> Result<u64, ApiError> {
        let mut total = 0u64;
        for t in &tokens {
            total = total
                .checked_add(self.denomination_value(&t.denomination)?)
                .ok_or_else(|| ApiError::bad("overflow", "the total is out of range"))?;
        }
        let state = self.clone();
        blocking(move || {
            for t in &tokens {
                let d = state
                    .denominations
                    .get(&t.denomination)
                    .ok_or_else(|| ApiError::bad("unknown_denomination", "unknown denomination"))?;
                t.verify(&d.denomination).map_err(|e| {
                    ApiError::bad("bad_token", format!("token {}: {e}", hex::encode(t.id())))
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(total)
    }

    async fn prove(&self, proof: &acd_core::log_api::EntryProof) -> Result<Proven, ApiError> {
        logs::prove(&self.logs, &self.http, proof, &self.policy).await
    }
}

fn check_key(key: &[u8; 32], what: &str) -> Result<(), ApiError> {
    ed25519_dalek::VerifyingKey::from_bytes(key)
        .map(|_| ())
        .map_err(|_| ApiError::bad("bad_key", format!("{what} is not an ed25519 key")))
}

/// `GET /api/v1/info`.
pub async fn info(State(state): AppState) -> Json<BankInfo> {
    Json(state.info.clone())
}

/// `POST /api/v1/withdraw` (step 1).
pub async fn withdraw(
    State(state): AppState,
    body: Result<Json<WithdrawRequest>, JsonRejection>,
) -> Result<Json<BlindSignatures>, ApiError> {
    let Json(req) = body?;
    let w = req.withdrawal;
    state.check_ours(&w.bank)?;
    let total = state.check_blinded(&w.blinded, false)?;
    w.verify(&req.signature).map_err(bad_signature)?;
    let digest = sha256(&w.signed_bytes());
    // Cheap answers from the committed books before any RSA work; the
    // writer decides again.
    if let Some(rec) = state.ledger.withdrawal(&w.account, &w.request_id)? {
        if rec.digest == digest {
            let answer = BlindSignatures {
                blind_signatures: rec.blind_signatures,
            };
            return Ok(Json(state.settled(answer).await?));
        }
        return Err(ApiError::conflict(
            "request_id_reused",
            "this request id was used for another withdrawal",
        ));
    }
    match state.ledger.account(&w.account)? {
        None => {
            return Err(ApiError::not_found("unknown_account", "no such account"));
        }
        Some(a) if a.kind != AccountKind::Customer => {
            return Err(ApiError::forbidden(
                "not_a_customer",
                "only customer accounts withdraw",
            ));
        }
        Some(a) if i128::from(a.balance) < i128::from(total) => {
            return Err(ApiError::conflict(
                "insufficient_funds",
                format!("the balance {} does not cover {total}", a.balance),
            ));
        }
        Some(_) => {}
    }
    let blind_signatures = state.sign_blinded(w.blinded).await?;
    let op = Op::Withdraw {
        account: w.account,
        request_id: w.request_id,
        digest,
        total,
        blind_signatures,
    };
    match state.writer.submit(op, None).await? {
        Answer::BlindSignatures(s) => Ok(Json(BlindSignatures {
            blind_signatures: s,
        })),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/register` (steps 3, 4).
pub async fn register(
    State(state): AppState,
    body: Result<Json<RegisterRequest>, JsonRejection>,
) -> Result<Json<SignedReceipt>, ApiError> {
    let Json(req) = body?;
    check_key(&req.customer, "the customer key Q")?;
    let token_id = req.token.id();
    state.verify_tokens(vec![req.token]).await?;
    let receipt = Receipt {
        bank: state.public,
        token_id,
        customer: req.customer,
    };
    let signature = receipt.sign(&state.signing);
    let op = Op::Register {
        token_id,
        customer: req.customer,
        signature,
    };
    match state.writer.submit(op, None).await? {
        Answer::Receipt(signature) => Ok(Json(SignedReceipt { receipt, signature })),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/spend` (P2, answering P3).
pub async fn spend(
    State(state): AppState,
    body: Result<Json<SpendRequest>, JsonRejection>,
) -> Result<Json<SpendResponse>, ApiError> {
    let Json(req) = body?;
    let spend = req.spend;
    let terms = &spend.terms;
    state.check_ours(&terms.bank)?;
    spend.verify(&req.signature).map_err(bad_signature)?;
    let digest = sha256(&spend.signed_bytes());
    if let Some(e) = state.ledger.escrow(&terms.tid)? {
        if e.spend_digest == digest {
            return Ok(Json(state.settled(e.response).await?));
        }
        return Err(ApiError::conflict(
            "tid_conflict",
            format!("TID {} is already escrowed for another spend", terms.tid),
        ));
    }
    if !state.logs.contains_key(&terms.log_origin) {
        return Err(ApiError::bad(
            "untrusted_log",
            format!("the bank does not trust a log named {:?}", terms.log_origin),
        ));
    }
    if req.tokens.is_empty() || req.tokens.len() > MAX_ITEMS {
        return Err(ApiError::bad(
            "bad_item_count",
            format!("between 1 and {MAX_ITEMS} tokens are needed"),
        ));
    }
    if req.tokens.len() != spend.token_ids.len()
        || req
            .tokens
            .iter()
            .zip(&spend.token_ids)
            .any(|(t, id)| &t.id() != id)
    {
        return Err(ApiError::bad(
            "token_ids_mismatch",
            "the tokens do not match the signed token ids, in order",
        ));
    }
    let mut seen = HashSet::new();
    if !spend.token_ids.iter().all(|id| seen.insert(*id)) {
        return Err(ApiError::bad(
            "duplicate_token",
            "a token appears twice in the spend",
        ));
    }
    check_key(&terms.merchant, "the merchant")?;
    if terms.price == 0 {
        return Err(ApiError::bad("bad_price", "the price must be positive"));
    }
    let now = state.now_ms();
    let earliest = now.saturating_add(state.min_expiration_ms);
    let latest = now.saturating_add(state.max_expiration_ms);
    if terms.expiration_ms < earliest || terms.expiration_ms > latest {
        return Err(ApiError::bad(
            "bad_expiration",
            format!(
                "the expiration must be between {} and {} ms from now",
                state.min_expiration_ms, state.max_expiration_ms
            ),
        ));
    }
    let change_total = state.check_blinded(&spend.change, true)?;
    let total = state.verify_tokens(req.tokens).await?;
    if total < terms.price {
        return Err(ApiError::bad(
            "insufficient_tokens",
            format!("the tokens are worth {total}, the price is {}", terms.price),
        ));
    }
    if change_total != total - terms.price {
        return Err(ApiError::bad(
            "bad_change",
            format!(
                "the change is worth {change_total}, it must be {}",
                total - terms.price
            ),
        ));
    }
    let change = state.sign_blinded(spend.change.clone()).await?;
    let response = SpendResponse {
        terms: terms.clone(),
        terms_signature: terms.sign(&state.signing),
        notice_signature: terms.notice().sign(&state.signing),
        change,
    };
    let escrow = Escrow {
        terms: terms.clone(),
        customer: spend.customer,
        token_ids: spend.token_ids.clone(),
        spend_digest: digest,
        response,
        status: EscrowStatus::Escrowed,
        abort: None,
        refund: None,
    };
    let op = Op::Spend {
        escrow: Box::new(escrow),
        total,
        change_total,
    };
    match state.writer.submit(op, None).await? {
        Answer::Spend(r) => Ok(Json(*r)),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/deposit`: pay the merchant on a proven commit.
pub async fn deposit(
    State(state): AppState,
    body: Result<Json<DepositRequest>, JsonRejection>,
) -> Result<Json<DepositResponse>, ApiError> {
    let Json(req) = body?;
    let proven = state.prove(&req.proof).await?;
    let LogEntry::Commit {
        tid,
        merchant,
        expiration_ms,
        ..
    } = proven.entry
    else {
        return Err(ApiError::bad("not_commit", "the entry is not a commit"));
    };
    if !proven.entry.timely() {
        return Err(ApiError::bad(
            "untimely_entry",
            "the commit was logged at or after its expiration",
        ));
    }
    let op = Op::Deposit {
        tid,
        merchant,
        expiration_ms,
        log_origin: proven.origin,
    };
    match state.writer.submit(op, proven.checkpoint).await? {
        Answer::Deposit(d) => Ok(Json(d)),
        other => Err(unexpected(other)),
    }
}

/// Checks what every refund shares: q's signature, our bank, the reason,
/// the escrow and its owner, the blinded tokens' total. Returns the escrow,
/// the total and the refund's digest.
fn check_refund(
    state: &BankState,
    refund: &Refund,
    signature: &[u8; 64],
    reason: RefundReason,
) -> Result<(Escrow, u64, [u8; 32]), ApiError> {
    state.check_ours(&refund.bank)?;
    if refund.reason != reason {
        return Err(ApiError::bad(
            "wrong_reason",
            format!("this route takes refunds for reason {reason:?}"),
        ));
    }
    refund.verify(signature).map_err(bad_signature)?;
    let escrow = state.ledger.escrow(&refund.tid)?.ok_or_else(|| {
        ApiError::not_found(
            "unknown_escrow",
            format!("no escrow for TID {}", refund.tid),
        )
    })?;
    if escrow.customer != refund.customer {
        return Err(ApiError::forbidden(
            "not_escrow_customer",
            "the refund is not signed by the key that spent",
        ));
    }
    let total = state.check_blinded(&refund.blinded, false)?;
    Ok((escrow, total, sha256(&refund.signed_bytes())))
}

fn repeated(escrow: &Escrow, digest: &[u8; 32]) -> Option<RefundRecord> {
    escrow.refund.clone().filter(|r| &r.digest == digest)
}

fn entry_matches(entry: &LogEntry, origin: &str, escrow: &Escrow) -> Result<(), ApiError> {
    let t = &escrow.terms;
    if entry.tid() != t.tid
        || entry.merchant() != t.merchant
        || entry.expiration_ms() != t.expiration_ms
        || origin != t.log_origin
    {
        return Err(ApiError::bad(
            "entry_mismatch",
            "the entry's TID, merchant, expiration or log differ from the escrow's terms",
        ));
    }
    if !entry.timely() {
        return Err(ApiError::bad(
            "untimely_entry",
            "the entry breaks the log's expiration rule",
        ));
    }
    Ok(())
}

/// `POST /api/v1/refund`: fresh blind tokens after an abort.
pub async fn refund(
    State(state): AppState,
    body: Result<Json<RefundRequest>, JsonRejection>,
) -> Result<Json<BlindSignatures>, ApiError> {
    let Json(req) = body?;
    let (escrow, total, digest) =
        check_refund(&state, &req.refund, &req.signature, RefundReason::Abort)?;
    if let Some(r) = repeated(&escrow, &digest) {
        let answer = BlindSignatures {
            blind_signatures: r.blind_signatures,
        };
        return Ok(Json(state.settled(answer).await?));
    }
    match escrow.status {
        EscrowStatus::Escrowed if req.abort.is_none() => {
            return Err(ApiError::bad(
                "abort_proof_required",
                "no abort is known for this TID; show the abort entry with its proof",
            ));
        }
        EscrowStatus::Refunded => {
            return Err(ApiError::conflict(
                "already_refunded",
                format!(
                    "the escrow of TID {} was refunded already",
                    escrow.terms.tid
                ),
            ));
        }
        EscrowStatus::Paid | EscrowStatus::Disputed => {
            return Err(ApiError::conflict(
                "wrong_escrow_state",
                format!(
                    "the escrow of TID {} is {:?}; only an aborted escrow is refunded",
                    escrow.terms.tid, escrow.status
                ),
            ));
        }
        EscrowStatus::Escrowed | EscrowStatus::AbortLogged => {}
    }
    let mut checkpoint = None;
    let abort = match (&req.abort, escrow.status) {
        (_, EscrowStatus::AbortLogged) => None,
        (Some(p), _) => {
            let proven = state.prove(p).await?;
            match proven.entry {
                LogEntry::Abort { bank, .. } if bank == state.public => {}
                LogEntry::Abort { .. } => {
                    return Err(ApiError::bad(
                        "not_abort",
                        "the abort was not logged on this bank's notice",
                    ));
                }
                LogEntry::Commit { .. } => {
                    return Err(ApiError::bad("not_abort", "the entry is not an abort"));
                }
            }
            entry_matches(&proven.entry, &proven.origin, &escrow)?;
            checkpoint = proven.checkpoint;
            Some(Box::new(p.clone()))
        }
        (None, _) => None,
    };
    let blind_signatures = state.sign_blinded(req.refund.blinded.clone()).await?;
    let op = Op::Refund {
        tid: req.refund.tid,
        customer: req.refund.customer,
        total,
        record: RefundRecord {
            digest,
            reason: RefundReason::Abort,
            finding: None,
            blind_signatures,
        },
        abort,
    };
    match state.writer.submit(op, checkpoint).await? {
        Answer::BlindSignatures(s) => Ok(Json(BlindSignatures {
            blind_signatures: s,
        })),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/dispute`: a bogus key, shown with the signed offer, the
/// ciphertext and the commit's proof.
pub async fn dispute(
    State(state): AppState,
    body: Result<Json<DisputeRequest>, JsonRejection>,
) -> Result<Json<DisputeResponse>, ApiError> {
    let Json(req) = body?;
    let (escrow, total, digest) =
        check_refund(&state, &req.refund, &req.signature, RefundReason::Dispute)?;
    if let Some(r) = repeated(&escrow, &digest)
        && let Some(finding) = r.finding
    {
        let answer = DisputeResponse {
            finding,
            blind_signatures: r.blind_signatures,
        };
        return Ok(Json(state.settled(answer).await?));
    }
    match escrow.status {
        EscrowStatus::Disputed => {
            return Err(ApiError::conflict(
                "already_refunded",
                format!(
                    "the escrow of TID {} was refunded already",
                    escrow.terms.tid
                ),
            ));
        }
        EscrowStatus::AbortLogged | EscrowStatus::Refunded => {
            return Err(ApiError::conflict(
                "wrong_escrow_state",
                format!(
                    "the escrow of TID {} is {:?}; an aborted purchase is not disputed",
                    escrow.terms.tid, escrow.status
                ),
            ));
        }
        EscrowStatus::Escrowed | EscrowStatus::Paid => {}
    }
    let offer = &req.offer.offer;
    offer
        .verify(&req.offer.signature)
        .map_err(|e| ApiError::bad("bad_offer", e.to_string()))?;
    if offer.terms() != escrow.terms || offer.customer != escrow.customer {
        return Err(ApiError::bad(
            "offer_mismatch",
            "the offer's terms or customer differ from the escrow's",
        ));
    }
    let proven = state.prove(&req.commit).await?;
    let LogEntry::Commit { key, .. } = proven.entry else {
        return Err(ApiError::bad("not_commit", "the entry is not a commit"));
    };
    entry_matches(&proven.entry, &proven.origin, &escrow)?;
    let tid = escrow.terms.tid;
    let (ciphertext_hash, plaintext_hash) = (offer.ciphertext_hash, offer.plaintext_hash);
    let ciphertext = req.ciphertext;
    let finding = blocking(move || {
        if goods::hash(&ciphertext) != ciphertext_hash {
            return Err(ApiError::bad(
                "ciphertext_mismatch",
                "the ciphertext does not hash to the offer's ciphertext hash",
            ));
        }
        Ok(match goods::decrypt(&key, &tid, &ciphertext) {
            Err(_) => Some(DisputeFinding::KeyDoesNotDecrypt),
            Ok(plain) if goods::hash(&plain) != plaintext_hash => Some(DisputeFinding::WrongGoods),
            Ok(_) => None,
        })
    })
    .await?;
    let Some(finding) = finding else {
        return Err(ApiError::unprocessable(
            "dispute_rejected",
            "the logged key decrypts the goods to the contract's hash",
        ));
    };
    let blind_signatures = state.sign_blinded(req.refund.blinded.clone()).await?;
    let op = Op::Dispute {
        tid,
        customer: req.refund.customer,
        total,
        record: RefundRecord {
            digest,
            reason: RefundReason::Dispute,
            finding: Some(finding),
            blind_signatures,
        },
    };
    match state.writer.submit(op, proven.checkpoint).await? {
        Answer::Dispute(d) => Ok(Json(d)),
        other => Err(unexpected(other)),
    }
}
