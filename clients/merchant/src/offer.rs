//! P1: the merchant's signed offer and the goods encrypted under a fresh
//! key k. The offer (with k) is durable before the customer sees it, so
//! that the bank's escrow for it can always be honoured.

use acd_core::bank_api::{OfferRequest, OfferResponse, SignedOffer};
use acd_core::entry::Tid;
use acd_core::goods::{self, GoodsError};
use acd_core::purchase::Offer;
use ed25519_dalek::VerifyingKey;

use crate::error::ApiError;
use crate::shop::Shop;
use crate::store::Purchase;

/// The goods as sent: SHA-256 of the plain goods for the contract, and the
/// ciphertext under `key`. With `wrong_goods`, what is encrypted is not
/// what the contract's hash names.
pub fn seal(
    key: &[u8; 32],
    tid: &Tid,
    goods: &[u8],
    wrong_goods: bool,
) -> Result<([u8; 32], Vec<u8>), GoodsError> {
    let plaintext_hash = goods::hash(goods);
    let ciphertext = if wrong_goods {
        let mut other = goods.to_vec();
        match other.first_mut() {
            Some(b) => *b ^= 1,
            None => other.push(0),
        }
        goods::encrypt(key, tid, &other)?
    } else {
        goods::encrypt(key, tid, goods)?
    };
    Ok((plaintext_hash, ciphertext))
}

fn fresh_tid() -> Tid {
    let mut t = [0u8; 16];
    rand::fill(&mut t);
    Tid(t)
}

impl Shop {
    /// `POST /api/v1/offer`.
    pub async fn offer(&self, req: OfferRequest) -> Result<OfferResponse, ApiError> {
        let item = self.item(&req.item).ok_or_else(|| {
            ApiError::not_found("unknown_item", format!("no item {:?} for sale", req.item))
        })?;
        if !VerifyingKey::from_bytes(&req.customer).is_ok_and(|q| !q.is_weak()) {
            return Err(ApiError::bad(
                "bad_customer_key",
                "customer is not an ed25519 public key of full order",
            ));
        }
        let tid = fresh_tid();
        let key = goods::fresh_key(&mut rand::rng());
        let file = item.file.clone();
        let wrong_goods = self.behaviour.wrong_goods;
        let sealed = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&file)
                .map_err(|e| format!("reading goods file {}: {e}", file.display()))?;
            seal(&key, &tid, &bytes, wrong_goods).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let (plaintext_hash, ciphertext) = sealed.map_err(ApiError::Internal)?;
        let expiration_ms = self
            .now_ms()
            .saturating_add(u64::try_from(self.offer_lifetime.as_millis()).unwrap_or(u64::MAX));
        let offer = Offer {
            bank: self.bank,
            log_origin: self.log_origin.clone(),
            tid,
            merchant: self.merchant,
            customer: req.customer,
            expiration_ms,
            price: item.price,
            description: item.description.clone(),
            ciphertext_hash: goods::hash(&ciphertext),
            plaintext_hash,
        };
        let signed = SignedOffer {
            signature: offer.sign(&self.signing),
            offer,
        };
        let record = Purchase {
            offer: signed.clone(),
            key,
            item: item.id.clone(),
            escrow: None,
            commit: None,
            deposit: None,
            abort: None,
            unpaid: None,
        };
        self.store.put(&record).await?;
        self.metrics.offers.inc();
        tracing::info!(%tid, item = %item.id, price = item.price, expiration_ms, "offer");
        Ok(OfferResponse {
            offer: signed,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Honest goods decrypt to the contract's hash; wrong goods decrypt under the same key but to another hash.
    #[test]
    fn wrong_goods_do_not_match_the_contract() {
        let key = [7; 32];
        let tid = Tid([1; 16]);
        for goods in [&b"the goods"[..], b""] {
            let (h, ct) = seal(&key, &tid, goods, false).expect("seals");
            assert_eq!(
                goods::hash(&goods::decrypt(&key, &tid, &ct).expect("decrypts")),
                h
            );
            let (h2, ct2) = seal(&key, &tid, goods, true).expect("seals");
            assert_eq!(h2, h);
            let plain = goods::decrypt(&key, &tid, &ct2).expect("decrypts");
            assert_ne!(goods::hash(&plain), h);
        }
    }
}
