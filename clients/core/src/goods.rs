//! Encryption of information goods (paper P1 and P6): AES-256-GCM under a
//! fresh key k per offer.
//!
//! Because every offer has its own k, the nonce is fixed (all zeros): a key
//! never encrypts twice. The TID is authenticated data, so a ciphertext made
//! for one purchase does not decrypt under another's entry. The contract
//! carries SHA-256 of the ciphertext and of the plaintext; with the key from
//! the log, anyone can check both (certified delivery, dispute).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::encoding::Writer;
use crate::entry::Tid;

/// Context label of the goods' authenticated data.
pub const GOODS_LABEL: &str = "acd/v1/goods";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GoodsError {
    #[error("the key does not decrypt the goods (wrong key or altered ciphertext)")]
    Decrypt,
    #[error("the goods are too large to encrypt")]
    TooLarge,
}

fn aad(tid: &Tid) -> Vec<u8> {
    Writer::labelled(GOODS_LABEL).fixed(&tid.0).finish()
}

/// A fresh random goods key k, drawn from `rng`.
pub fn fresh_key<R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; 32] {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    k
}

/// Encrypts the goods of purchase `tid` under `key`: ciphertext || tag.
pub fn encrypt(key: &[u8; 32], tid: &Tid, plaintext: &[u8]) -> Result<Vec<u8>, GoodsError> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let aad = aad(tid);
    cipher
        .encrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| GoodsError::TooLarge)
}

/// Decrypts and authenticates.
pub fn decrypt(key: &[u8; 32], tid: &Tid, ciphertext: &[u8]) -> Result<Vec<u8>, GoodsError> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let aad = aad(tid);
    cipher
        .decrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| GoodsError::Decrypt)
}

/// SHA-256, as used for the contract's ciphertext and plaintext hashes.
pub fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..2048), key in any::<[u8; 32]>(), tid in any::<[u8; 16]>()) {
            let ct = encrypt(&key, &Tid(tid), &plain).expect("encrypts");
            prop_assert_eq!(ct.len(), plain.len() + 16);
            prop_assert_eq!(decrypt(&key, &Tid(tid), &ct).expect("decrypts"), plain);
            let mut other = key;
            other[0] ^= 1;
            prop_assert_eq!(decrypt(&other, &Tid(tid), &ct), Err(GoodsError::Decrypt));
            let mut tid2 = tid;
            tid2[15] ^= 1;
            prop_assert_eq!(decrypt(&key, &Tid(tid2), &ct), Err(GoodsError::Decrypt));
        }
    }

    #[test]
    fn altered_ciphertext_is_refused() {
        let key = fresh_key(&mut rand::rng());
        let tid = Tid([7; 16]);
        let mut ct = encrypt(&key, &tid, b"the goods").expect("encrypts");
        ct[0] ^= 1;
        assert_eq!(decrypt(&key, &tid, &ct), Err(GoodsError::Decrypt));
    }
}
