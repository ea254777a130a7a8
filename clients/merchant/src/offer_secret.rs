//! Stateless offers (P1): the TID authenticates the offer's escrow terms,
//! and the goods key k is derived from the TID, so that an unsold offer
//! costs the merchant no storage. When the bank's terms arrive (P3) the
//! merchant recomputes the tag; only terms it offered pass, and only then
//! is anything stored. Byte layouts: `docs/formats.md`, section 10.
//!
//! - TID = nonce (8 random bytes) || the first 8 bytes of
//!   HMAC-SHA256(secret, `acd/v1/offer-tid` || 0x00 || nonce || bank ||
//!   var(log origin) || merchant || u64 expiration || u64 price).
//! - k = HMAC-SHA256(secret, `acd/v1/goods-key` || 0x00 || TID).
//!
//! Each TID is drawn once, so each k encrypts exactly one plaintext and the
//! goods' fixed nonce stays safe ([`acd_core::goods`]).

use std::fmt;

use acd_core::encoding::Writer;
use acd_core::entry::Tid;
use acd_core::purchase::EscrowTerms;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Context label of the TID tag.
pub const OFFER_TID_LABEL: &str = "acd/v1/offer-tid";
/// Context label of the goods key derivation.
pub const GOODS_KEY_LABEL: &str = "acd/v1/goods-key";

/// Bytes of the TID drawn at random; the rest is the tag.
pub const NONCE_LEN: usize = 8;

/// The merchant's offer secret (`<data>/offer.secret`).
#[derive(Clone)]
pub struct OfferSecret {
    /// Keyed once: HMAC pads a 32-byte key to the block with zeros, so this
    /// is HMAC under the 32-byte secret (RFC 2104, section 2).
    mac: Hmac<Sha256>,
}

/// The secret is never printed.
impl fmt::Debug for OfferSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OfferSecret(..)")
    }
}

/// The tagged bytes: the escrow terms without the TID's tag half.
fn tag_input(nonce: &[u8], terms: &EscrowTerms) -> Vec<u8> {
    Writer::labelled(OFFER_TID_LABEL)
        .fixed(nonce)
        .fixed(&terms.bank)
        .var(terms.log_origin.as_bytes())
        .fixed(&terms.merchant)
        .u64(terms.expiration_ms)
        .u64(terms.price)
        .finish()
}

impl OfferSecret {
    pub fn new(secret: [u8; 32]) -> OfferSecret {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&secret);
        OfferSecret {
            mac: Hmac::<Sha256>::new(&block.into()),
        }
    }

    fn hmac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        mac
    }

    /// The TID of an offer on `terms` (whose own `tid` is ignored), from
    /// `nonce`.
    pub fn tid(&self, nonce: [u8; NONCE_LEN], terms: &EscrowTerms) -> Tid {
        let tag = self.hmac(&tag_input(&nonce, terms)).finalize().into_bytes();
        let mut tid = [0u8; 16];
        tid[..NONCE_LEN].copy_from_slice(&nonce);
        tid[NONCE_LEN..].copy_from_slice(&tag[..16 - NONCE_LEN]);
        Tid(tid)
    }

    /// Whether `terms.tid` is the TID this secret gave an offer on exactly
    /// these terms (compared in constant time).
    pub fn made(&self, terms: &EscrowTerms) -> bool {
        let (nonce, tag) = terms.tid.0.split_at(NONCE_LEN);
        self.hmac(&tag_input(nonce, terms))
            .verify_truncated_left(tag)
            .is_ok()
    }

    /// k for the offer `tid`.
    pub fn goods_key(&self, tid: &Tid) -> [u8; 32] {
        let input = Writer::labelled(GOODS_KEY_LABEL).fixed(&tid.0).finish();
        self.hmac(&input).finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> EscrowTerms {
        EscrowTerms {
            bank: [1; 32],
            log_origin: "log.test/tid".into(),
            tid: Tid([0; 16]),
            merchant: [2; 32],
            expiration_ms: 1_700_000_000_000,
            price: 250,
        }
    }

    // A TID passes only with the terms it was made for, under the secret that made it; every field of the terms and every byte of the TID counts.
    #[test]
    fn the_tag_binds_the_terms() {
        let s = OfferSecret::new([7; 32]);
        let mut t = terms();
        t.tid = s.tid([9; NONCE_LEN], &t);
        assert_eq!(t.tid.0[..NONCE_LEN], [9; NONCE_LEN]);
        assert!(s.made(&t));
        assert!(!OfferSecret::new([8; 32]).made(&t));
        let changes: [fn(&mut EscrowTerms); 6] = [
            |t| t.bank[0] ^= 1,
            |t| t.log_origin.push('x'),
            |t| t.merchant[31] ^= 1,
            |t| t.expiration_ms += 1,
            |t| t.price -= 1,
            |t| t.tid.0[0] ^= 1,
        ];
        for change in changes {
            let mut other = t.clone();
            change(&mut other);
            assert!(!s.made(&other), "{other:?}");
        }
        for i in NONCE_LEN..16 {
            let mut other = t.clone();
            other.tid.0[i] ^= 0x80;
            assert!(!s.made(&other));
        }
        assert_ne!(s.tid([10; NONCE_LEN], &t), t.tid);
    }

    // The layout of docs/formats.md section 10, recomputed by hand with plain SHA-256 HMAC.
    #[test]
    fn derivations_match_the_documented_layout() {
        use sha2::Digest;
        fn hmac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
            let mut k = [0u8; 64];
            k[..32].copy_from_slice(key);
            let inner: Vec<u8> = k
                .iter()
                .map(|b| b ^ 0x36)
                .chain(msg.iter().copied())
                .collect();
            let ih = Sha256::digest(&inner);
            let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(ih).collect();
            Sha256::digest(&outer).into()
        }
        let secret = [3u8; 32];
        let s = OfferSecret::new(secret);
        let t = terms();
        let mut msg = b"acd/v1/offer-tid\x00".to_vec();
        msg.extend_from_slice(&[4; 8]);
        msg.extend_from_slice(&t.bank);
        msg.extend_from_slice(&(t.log_origin.len() as u16).to_be_bytes());
        msg.extend_from_slice(t.log_origin.as_bytes());
        msg.extend_from_slice(&t.merchant);
        msg.extend_from_slice(&t.expiration_ms.to_be_bytes());
        msg.extend_from_slice(&t.price.to_be_bytes());
        let tid = s.tid([4; 8], &t);
        assert_eq!(tid.0[8..], hmac(&secret, &msg)[..8]);
        let mut msg = b"acd/v1/goods-key\x00".to_vec();
        msg.extend_from_slice(&tid.0);
        assert_eq!(s.goods_key(&tid), hmac(&secret, &msg));
        assert_eq!(format!("{s:?}"), "OfferSecret(..)");
    }
}
