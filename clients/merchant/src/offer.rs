//! P1 (paper figure 2): the merchant's signed offer and the goods
//! encrypted under a fresh key k. The checks: the item is for sale and the
//! customer's key Q is a full-order ed25519 key. The rule: a fresh TID from
//! the injected generator, tagged with the offer's terms, and k derived
//! from it ([`crate::offer_secret`]); nothing is stored, so offers cost no
//! storage however many are asked for, and the bank's escrow for one can
//! always be honoured as long as `offer.secret` is kept. The goods come
//! from [`crate::goods_cache`].

use acd_core::bank_api::{OfferRequest, OfferResponse, SignedOffer};
use acd_core::entry::Tid;
use acd_core::error::DomainError;
use acd_core::goods::{self, GoodsError};
use acd_core::purchase::{EscrowTerms, Offer};
use ed25519_dalek::VerifyingKey;

use crate::goods_cache::Goods;
use crate::offer_secret::NONCE_LEN;
use crate::shop::Shop;

/// The goods as sent: SHA-256 of the plain goods for the contract, and the
/// ciphertext under `key`. With `wrong_goods`, what is encrypted is not
/// what the contract's hash names.
pub fn seal(
    key: &[u8; 32],
    tid: &Tid,
    goods: &Goods,
    wrong_goods: bool,
) -> Result<([u8; 32], Vec<u8>), GoodsError> {
    let ciphertext = if wrong_goods {
        let mut other = goods.bytes.clone();
        match other.first_mut() {
            Some(b) => *b ^= 1,
            None => other.push(0),
        }
        goods::encrypt(key, tid, &other)?
    } else {
        goods::encrypt(key, tid, &goods.bytes)?
    };
    Ok((goods.hash, ciphertext))
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
        let expiration_ms = self
            .now_ms()
            .saturating_add(u64::try_from(self.offer_lifetime.as_millis()).unwrap_or(u64::MAX));
        let mut terms = EscrowTerms {
            bank: self.bank,
            log_origin: self.log_origin.clone(),
            tid: Tid([0; 16]),
            merchant: self.merchant,
            expiration_ms,
            price: item.price,
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.fill(&mut nonce);
        terms.tid = self.offer_secret.tid(nonce, &terms);
        let tid = terms.tid;
        let key = self.offer_secret.goods_key(&tid);
        let (plaintext_hash, ciphertext) = self.sealed(&item.file, key, tid).await?;
        let offer = Offer {
            bank: terms.bank,
            log_origin: terms.log_origin,
            tid,
            merchant: terms.merchant,
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
        self.metrics.offers.inc();
        tracing::debug!(%tid, item = %item.id, price = item.price, expiration_ms, "offer");
        Ok(OfferResponse {
            offer: signed,
            ciphertext,
        })
    }

    /// The goods in `file` encrypted under `key`, off the async workers
    /// (a stat, and an AES-GCM pass over the goods).
    async fn sealed(
        &self,
        file: &std::path::Path,
        key: [u8; 32],
        tid: Tid,
    ) -> Result<([u8; 32], Vec<u8>), DomainError> {
        let (cache, file) = (self.goods.clone(), file.to_owned());
        let wrong_goods = self.behaviour.wrong_goods;
        tokio::task::spawn_blocking(move || {
            let goods = cache
                .get(&file)
                .map_err(|e| format!("reading goods file {}: {e}", file.display()))?;
            seal(&key, &tid, &goods, wrong_goods).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| DomainError::internal(e.to_string()))?
        .map_err(DomainError::internal)
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
        for bytes in [&b"the goods"[..], b""] {
            let g = Goods::from_bytes(bytes.to_vec());
            let (h, ct) = seal(&key, &tid, &g, false).expect("seals");
            assert_eq!(
                goods::hash(&goods::decrypt(&key, &tid, &ct).expect("decrypts")),
                h
            );
            let (h2, ct2) = seal(&key, &tid, &g, true).expect("seals");
            assert_eq!(h2, h);
            let plain = goods::decrypt(&key, &tid, &ct2).expect("decrypts");
            assert_ne!(goods::hash(&plain), h);
        }
    }

    // P1 through the engine: the offer is signed for the customer, its TID
    // carries the tag of its terms, the k derived from the TID decrypts the
    // goods, nothing is stored and the goods file is read once; with the same
    // seed two merchants draw the same nonce (randomness is injected).
    #[tokio::test]
    async fn offer_step_is_stateless_and_tagged() {
        use crate::fixture;
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let sa = fixture::shop(a.path(), "http://127.0.0.1:1", Default::default(), 7).await;
        let sb = fixture::shop(b.path(), "http://127.0.0.1:1", Default::default(), 7).await;
        let (oa, ob) = (fixture::offer(&sa).await, fixture::offer(&sb).await);
        let tid = oa.offer.offer.tid;
        oa.offer.offer.verify(&oa.offer.signature).expect("signed");
        assert_eq!(oa.offer.offer.customer, fixture::customer());
        assert!(sa.offer_secret.made(&oa.offer.offer.terms()));
        assert!(!sb.offer_secret.made(&oa.offer.offer.terms()));
        assert_eq!(tid.0[..NONCE_LEN], ob.offer.offer.tid.0[..NONCE_LEN]);
        assert_ne!(tid, ob.offer.offer.tid);
        assert_eq!(
            goods::decrypt(&sa.offer_secret.goods_key(&tid), &tid, &oa.ciphertext)
                .expect("decrypts"),
            fixture::GOODS
        );
        assert_eq!(oa.offer.offer.plaintext_hash, goods::hash(fixture::GOODS));
        assert!(sa.store.get(&tid).await.expect("reads").is_none());
        assert_ne!(fixture::offer(&sa).await.offer.offer.tid, tid);
        assert_eq!(sa.goods.reads(), 1);

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
