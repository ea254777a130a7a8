//! P1 (paper figure 2): the merchant's signed offer and the goods
//! encrypted under a fresh key k. The checks: the item is for sale and the
//! customer's key Q is a full-order ed25519 key. The rule: a fresh TID and
//! a fresh k from the injected generator, and the offer (with k) is durable
//! before the customer sees it, so that the bank's escrow for it can always
//! be honoured.

use acd_core::bank_api::{OfferRequest, OfferResponse, SignedOffer};
use acd_core::entry::Tid;
use acd_core::error::DomainError;
use acd_core::goods::{self, GoodsError};
use acd_core::purchase::Offer;
use ed25519_dalek::VerifyingKey;

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

impl Shop {
    /// P1: an offer of `req.item` to the customer key `req.customer`.
    pub async fn offer(&self, req: OfferRequest) -> Result<OfferResponse, DomainError> {
        let item = self.item(&req.item).ok_or_else(|| {
            DomainError::not_found("unknown_item", format!("no item {:?} for sale", req.item))
        })?;
        if !VerifyingKey::from_bytes(&req.customer).is_ok_and(|q| !q.is_weak()) {
            return Err(DomainError::bad(
                "bad_customer_key",
                "customer is not an ed25519 public key of full order",
            ));
        }
        let mut tid = Tid([0; 16]);
        self.fill(&mut tid.0);
        let key = self.fresh_key();
        let file = item.file.clone();
        let wrong_goods = self.behaviour.wrong_goods;
        let sealed = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&file)
                .map_err(|e| format!("reading goods file {}: {e}", file.display()))?;
            seal(&key, &tid, &bytes, wrong_goods).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| DomainError::internal(e.to_string()))?;
        let (plaintext_hash, ciphertext) = sealed.map_err(DomainError::internal)?;
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

    // P1 through the engine: the offer is signed for the customer, the
    // record holds the k that decrypts the goods, and with the same seed
    // two merchants draw the same TID and key (randomness is injected).
    #[tokio::test]
    async fn offer_step_is_deterministic_under_a_seeded_rng() {
        use crate::fixture;
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let sa = fixture::shop(a.path(), "http://127.0.0.1:1", Default::default(), 7).await;
        let sb = fixture::shop(b.path(), "http://127.0.0.1:1", Default::default(), 7).await;
        let (oa, ob) = (fixture::offer(&sa).await, fixture::offer(&sb).await);
        oa.offer.offer.verify(&oa.offer.signature).expect("signed");
        assert_eq!(oa.offer.offer.customer, fixture::customer());
        assert_eq!(oa.offer.offer.tid, ob.offer.offer.tid);
        let (ra, rb) = (
            sa.known(&oa.offer.offer.tid).expect("recorded"),
            sb.known(&ob.offer.offer.tid).expect("recorded"),
        );
        assert_eq!(ra.key, rb.key);
        assert_eq!(
            goods::decrypt(&ra.key, &oa.offer.offer.tid, &oa.ciphertext).expect("decrypts"),
            fixture::GOODS
        );
        assert_ne!(
            fixture::offer(&sa).await.offer.offer.tid,
            oa.offer.offer.tid
        );

        let e = sa
            .offer(OfferRequest {
                item: "nope".into(),
                customer: fixture::customer(),
            })
            .await
            .expect_err("unknown item");
        assert_eq!(
            (e.kind, e.code),
            (acd_core::error::ErrorKind::NotFound, "unknown_item")
        );
        let e = sa
            .offer(OfferRequest {
                item: "song".into(),
                customer: [0; 32],
            })
            .await
            .expect_err("weak key");
        assert_eq!(
            (e.kind, e.code),
            (acd_core::error::ErrorKind::BadRequest, "bad_customer_key")
        );
    }
}
