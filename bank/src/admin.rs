//! The admin API (`Authorization: Bearer <token>`, the token in
//! `<data>/admin.token`): accounts, credits (money entering the system)
//! and the conservation check.

use std::sync::Arc;

use acd_core::bank_api::{AccountInfo, CreateAccount, Credit, Sums};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};

use crate::BankState;
use crate::error::{ApiError, Kind};
use crate::ledger::{Answer, Op};

type AppState = State<Arc<BankState>>;

pub(crate) fn authorize(state: &BankState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if state.admin_token_matches(t) => Ok(()),
        _ => Err(ApiError::new(
            Kind::Unauthorized,
            "unauthorized",
            "the admin routes need the bank's admin token as a bearer token",
        )),
    }
}

fn account_answer(answer: Answer) -> Result<Json<AccountInfo>, ApiError> {
    match answer {
        Answer::Account(a) => Ok(Json(a)),
        other => Err(ApiError::internal(format!(
            "unexpected ledger answer {:?}",
            std::mem::discriminant(&other)
        ))),
    }
}

/// `POST /admin/v1/accounts`: idempotent for the same key and kind.
pub async fn create_account(
    State(state): AppState,
    headers: HeaderMap,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<Json<AccountInfo>, ApiError> {
    authorize(&state, &headers)?;
    let Json(req) = body?;
    ed25519_dalek::VerifyingKey::from_bytes(&req.key)
        .map_err(|_| ApiError::bad("bad_key", "the account key is not an ed25519 key"))?;
    let op = Op::CreateAccount {
        key: req.key,
        kind: req.kind,
    };
    account_answer(state.writer.submit(op, None).await?)
}

/// `POST /admin/v1/credit`.
pub async fn credit(
    State(state): AppState,
    headers: HeaderMap,
    body: Result<Json<Credit>, JsonRejection>,
) -> Result<Json<AccountInfo>, ApiError> {
    authorize(&state, &headers)?;
    let Json(req) = body?;
    if req.amount == 0 {
        return Err(ApiError::bad("bad_amount", "the amount must be positive"));
    }
    let op = Op::Credit {
        key: req.key,
        amount: req.amount,
        request_id: req.request_id,
    };
    account_answer(state.writer.submit(op, None).await?)
}

/// `GET /admin/v1/accounts/{key}`.
pub async fn account(
    State(state): AppState,
    headers: HeaderMap,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<AccountInfo>, ApiError> {
    authorize(&state, &headers)?;
    let Path(key) = key?;
    let mut k = [0u8; 32];
    hex::decode_to_slice(&key, &mut k)
        .map_err(|_| ApiError::bad("bad_key", "the account key must be 64 hex digits"))?;
    let a = state
        .ledger
        .account(&k)?
        .ok_or_else(|| ApiError::not_found("unknown_account", "no such account"))?;
    Ok(Json(AccountInfo {
        key: k,
        kind: a.kind,
        balance: a.balance,
    }))
}

/// `GET /admin/v1/sums`: the maintained sums, checked against a scan.
pub async fn sums(State(state): AppState, headers: HeaderMap) -> Result<Json<Sums>, ApiError> {
    authorize(&state, &headers)?;
    let ledger = state.ledger.clone();
    let sums = tokio::task::spawn_blocking(move || ledger.sums())
        .await
        .map_err(|e| ApiError::internal(format!("blocking task: {e}")))??;
    Ok(Json(sums))
}
