//! One handler per route: extract, call the engine step, answer.

use std::sync::Arc;

use acd_core::bank_api::{
    AccountInfo, BankInfo, BlindSignatures, CreateAccount, Credit, DepositRequest, DepositResponse,
    DisputeRequest, DisputeResponse, RefundRequest, RegisterRequest, SignedReceipt, SpendRequest,
    SpendResponse, Sums, WithdrawRequest,
};
use acd_serve::{Admin, ApiError, ApiJson, ApiPath};
use axum::extract::State;
use axum::response::Response;

use crate::BankState;

type AppState = State<Arc<BankState>>;
type Answer<T> = Result<ApiJson<T>, ApiError>;

/// `GET /api/v1/info`.
pub async fn info(State(state): AppState) -> ApiJson<BankInfo> {
    ApiJson(state.info().clone())
}

/// `POST /api/v1/withdraw` (figure 1 step 1).
pub async fn withdraw(
    State(state): AppState,
    ApiJson(req): ApiJson<WithdrawRequest>,
) -> Answer<BlindSignatures> {
    Ok(ApiJson(state.withdraw(req).await?))
}

/// `POST /api/v1/register` (figure 1 steps 3, 4).
pub async fn register(
    State(state): AppState,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Answer<SignedReceipt> {
    Ok(ApiJson(state.register(req).await?))
}

/// `POST /api/v1/spend` (P2, answering P3).
pub async fn spend(
    State(state): AppState,
    ApiJson(req): ApiJson<SpendRequest>,
) -> Answer<SpendResponse> {
    Ok(ApiJson(state.spend(req).await?))
}

/// `POST /api/v1/deposit`.
pub async fn deposit(
    State(state): AppState,
    ApiJson(req): ApiJson<DepositRequest>,
) -> Answer<DepositResponse> {
    Ok(ApiJson(state.deposit(req).await?))
}

/// `POST /api/v1/refund`.
pub async fn refund(
    State(state): AppState,
    ApiJson(req): ApiJson<RefundRequest>,
) -> Answer<BlindSignatures> {
    Ok(ApiJson(state.refund(req).await?))
}

/// `POST /api/v1/dispute`.
pub async fn dispute(
    State(state): AppState,
    ApiJson(req): ApiJson<DisputeRequest>,
) -> Answer<DisputeResponse> {
    Ok(ApiJson(state.dispute(req).await?))
}

/// `POST /admin/v1/accounts`.
pub async fn create_account(
    _: Admin,
    State(state): AppState,
    ApiJson(req): ApiJson<CreateAccount>,
) -> Answer<AccountInfo> {
    let (key, kind) = (hex::encode(req.key), req.kind);
    let answer = state.create_account(req).await;
    tracing::info!(
        target: "acd_bank::audit",
        action = "create_account",
        account = %key,
        kind = ?kind,
        outcome = answer.as_ref().map_or_else(|e| e.code, |_| "accepted"),
        "admin action"
    );
    Ok(ApiJson(answer?))
}

/// `POST /admin/v1/credit`.
pub async fn credit(
    _: Admin,
    State(state): AppState,
    ApiJson(req): ApiJson<Credit>,
) -> Answer<AccountInfo> {
    let (key, amount, request_id) = (
        hex::encode(req.key),
        req.amount,
        hex::encode(req.request_id),
    );
    let answer = state.credit(req).await;
    // Money enters the system here: every attempt is on record, with the
    // request id that makes a repeat idempotent.
    tracing::info!(
        target: "acd_bank::audit",
        action = "credit",
        account = %key,
        amount,
        request_id = %request_id,
        outcome = answer.as_ref().map_or_else(|e| e.code, |_| "accepted"),
        "admin action"
    );
    Ok(ApiJson(answer?))
}

/// `GET /admin/v1/accounts/{key}`.
pub async fn account(
    _: Admin,
    State(state): AppState,
    ApiPath(key): ApiPath<String>,
) -> Answer<AccountInfo> {
    Ok(ApiJson(state.account(&key)?))
}

/// `GET /admin/v1/sums`.
pub async fn sums(_: Admin, State(state): AppState) -> Answer<Sums> {
    Ok(ApiJson(state.sums().await?))
}

/// `GET /metrics`.
/// `GET /metrics`: open, without the sums.
pub async fn metrics(State(state): AppState) -> Response {
    state.metrics.page()
}

/// `GET /admin/v1/metrics`: with the sums of invariant 5.
pub async fn admin_metrics(_: Admin, State(state): AppState) -> Result<Response, ApiError> {
    let totals = state.ledger().totals()?;
    Ok(state.metrics.admin_page(&totals))
}
