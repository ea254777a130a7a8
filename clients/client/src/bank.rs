//! HTTP client of the bank (`acd_core::bank_api`). Signatures in the
//! answers (receipts, escrow terms, blind signatures) are checked by the
//! caller, who holds the keys and blinding secrets.

use acd_core::bank_api::{
    AccountInfo, BankInfo, BlindSignatures, CreateAccount, Credit, DepositRequest, DepositResponse,
    DisputeRequest, DisputeResponse, RefundRequest, RegisterRequest, SignedReceipt, SpendRequest,
    SpendResponse, Sums, WithdrawRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, read_json};
use crate::retry::RetryPolicy;

#[derive(Debug, Clone)]
pub struct BankClient {
    http: reqwest::Client,
    base: String,
    admin_token: Option<String>,
    retry: RetryPolicy,
}

impl BankClient {
    pub fn new(base: &str) -> Self {
        BankClient::with_http(crate::http_client(), base)
    }

    pub fn with_http(http: reqwest::Client, base: &str) -> Self {
        BankClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            admin_token: None,
            retry: RetryPolicy::NONE,
        }
    }

    /// Repeats every request after a transient failure as `policy` says.
    /// Every route of the bank may be repeated: the protocol's requests
    /// carry what makes a repetition give the first answer (a withdrawal's
    /// request id, a token id, a credit's nonce); a new account's repeat
    /// is refused as existing.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// For the admin routes.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.trim().to_owned());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.retry
            .run(|| async {
                let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
                if let (true, Some(token)) = (path.starts_with("/admin/"), &self.admin_token) {
                    req = req.bearer_auth(token);
                }
                read_json(req.send().await?).await
            })
            .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.retry
            .run(|| async {
                let mut req = self.http.get(format!("{}{path}", self.base));
                if let (true, Some(token)) = (path.starts_with("/admin/"), &self.admin_token) {
                    req = req.bearer_auth(token);
                }
                read_json(req.send().await?).await
            })
            .await
    }

    pub async fn info(&self) -> Result<BankInfo, ClientError> {
        self.get("/api/v1/info")
            .await
            .map_err(|e| e.not_a("bank", &self.base))
    }

    pub async fn withdraw(&self, req: &WithdrawRequest) -> Result<BlindSignatures, ClientError> {
        self.post("/api/v1/withdraw", req).await
    }

    pub async fn register(&self, req: &RegisterRequest) -> Result<SignedReceipt, ClientError> {
        self.post("/api/v1/register", req).await
    }

    pub async fn spend(&self, req: &SpendRequest) -> Result<SpendResponse, ClientError> {
        self.post("/api/v1/spend", req).await
    }

    pub async fn deposit(&self, req: &DepositRequest) -> Result<DepositResponse, ClientError> {
        self.post("/api/v1/deposit", req).await
    }

    pub async fn refund(&self, req: &RefundRequest) -> Result<BlindSignatures, ClientError> {
        self.post("/api/v1/refund", req).await
    }

    pub async fn dispute(&self, req: &DisputeRequest) -> Result<DisputeResponse, ClientError> {
        self.post("/api/v1/dispute", req).await
    }

    pub async fn create_account(&self, req: &CreateAccount) -> Result<AccountInfo, ClientError> {
        self.post("/admin/v1/accounts", req).await
    }

    pub async fn credit(&self, req: &Credit) -> Result<AccountInfo, ClientError> {
        self.post("/admin/v1/credit", req).await
    }

    pub async fn account(&self, key: &[u8; 32]) -> Result<AccountInfo, ClientError> {
        self.get(&format!("/admin/v1/accounts/{}", hex_key(key)))
            .await
    }

    pub async fn sums(&self) -> Result<Sums, ClientError> {
        self.get("/admin/v1/sums").await
    }
}

fn hex_key(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
