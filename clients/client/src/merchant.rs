//! HTTP client of a merchant's shop (`acd_core::bank_api`, merchant
//! routes). The offer's signature, the ciphertext hash and the delivery's
//! commit proof are checked by the wallet, which knows what it expects.

use acd_core::bank_api::{Catalog, Delivery, OfferRequest, OfferResponse, PurchaseRequest};
use acd_core::entry::Tid;

use crate::error::{ClientError, read_json};

#[derive(Debug, Clone)]
pub struct MerchantClient {
    http: reqwest::Client,
    base: String,
}

impl MerchantClient {
    pub fn new(base: &str) -> Self {
        MerchantClient::with_http(crate::http_client(), base)
    }

    pub fn with_http(http: reqwest::Client, base: &str) -> Self {
        MerchantClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn catalog(&self) -> Result<Catalog, ClientError> {
        let resp = self
            .http
            .get(format!("{}/api/v1/catalog", self.base))
            .send()
            .await?;
        read_json(resp).await
    }

    /// P1.
    pub async fn offer(&self, req: &OfferRequest) -> Result<OfferResponse, ClientError> {
        let resp = self
            .http
            .post(format!("{}/api/v1/offer", self.base))
            .json(req)
            .send()
            .await?;
        read_json(resp).await
    }

    /// Hands the bank's P3 terms to the merchant; P6 is the answer.
    pub async fn purchase(&self, req: &PurchaseRequest) -> Result<Delivery, ClientError> {
        let resp = self
            .http
            .post(format!("{}/api/v1/purchase", self.base))
            .json(req)
            .send()
            .await?;
        read_json(resp).await
    }

    /// P6 again, for a customer whose answer was lost.
    pub async fn delivery(&self, tid: &Tid) -> Result<Delivery, ClientError> {
        let resp = self
            .http
            .get(format!("{}/api/v1/delivery/{tid}", self.base))
            .send()
            .await?;
        read_json(resp).await
    }
}
