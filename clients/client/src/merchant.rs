//! HTTP client of a merchant's shop (`acd_core::bank_api`, merchant
//! routes). The offer's signature, the ciphertext hash and the delivery's
//! commit proof are checked by the wallet, which knows what it expects.

use acd_core::bank_api::{Catalog, Delivery, OfferRequest, OfferResponse, PurchaseRequest};
use acd_core::entry::Tid;

use crate::error::{ClientError, read_json};
use crate::retry::RetryPolicy;

#[derive(Debug, Clone)]
pub struct MerchantClient {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
}

impl MerchantClient {
    pub fn new(base: &str) -> Self {
        MerchantClient::with_http(crate::http_client(), base)
    }

    pub fn with_http(http: reqwest::Client, base: &str) -> Self {
        MerchantClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            retry: RetryPolicy::NONE,
        }
    }

    /// Repeats every request after a transient failure as `policy` says: a
    /// purchase's terms give the first answer again; a repeated offer is a
    /// new offer, and the unused one expires. A merchant that answers 503
    /// on purpose (withholding its key) is asked again too, so a wallet
    /// that turns to the log instead leaves this off.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: String) -> Result<T, ClientError> {
        self.retry
            .run(|| async { read_json(self.http.get(&url).send().await?).await })
            .await
    }

    async fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        url: String,
        body: &B,
    ) -> Result<T, ClientError> {
        self.retry
            .run(|| async { read_json(self.http.post(&url).json(body).send().await?).await })
            .await
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn catalog(&self) -> Result<Catalog, ClientError> {
        self.get(format!("{}/api/v1/catalog", self.base))
            .await
            .map_err(|e| e.not_a("merchant", &self.base))
    }

    /// P1.
    pub async fn offer(&self, req: &OfferRequest) -> Result<OfferResponse, ClientError> {
        self.post(format!("{}/api/v1/offer", self.base), req).await
    }

    /// Hands the bank's P3 terms to the merchant; P6 is the answer.
    pub async fn purchase(&self, req: &PurchaseRequest) -> Result<Delivery, ClientError> {
        self.post(format!("{}/api/v1/purchase", self.base), req)
            .await
    }

    /// P6 again, for a customer whose answer was lost.
    pub async fn delivery(&self, tid: &Tid) -> Result<Delivery, ClientError> {
        self.get(format!("{}/api/v1/delivery/{tid}", self.base))
            .await
    }
}
