//! The bank's blind signer: RFC 9474 section 4.3 `BlindSign` for
//! RSABSSA-SHA384-PSS-Randomized, on OpenSSL.
//!
//! The blind signature is the raw RSA private-key operation (RSASP1) on the
//! customer's blinded message, which OpenSSL computes with base blinding
//! and constant-time modular exponentiation; the customer side (blinding,
//! finalizing, verifying) stays on `blind-rsa-signatures`. The key is the
//! same PKCS#8 DER file the bank always kept (`rsa-<value>.der`), so a key
//! signs the same bytes whichever implementation holds it: RSASP1 is
//! deterministic.
//!
//! As the RFC requires, every signature is checked before it leaves
//! (RSAVP1 of it must give the blinded message back), so a fault in the
//! private-key computation can never hand out a value that leaks the key.

use openssl::bn::BigNum;
use openssl::pkey::Private;
use openssl::rsa::{Padding, Rsa};
use thiserror::Error;

/// Why a blind signature was not made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignerError {
    /// The key file does not hold an RSA private key.
    #[error("not an RSA private key: {0}")]
    Key(String),
    /// The blinded message is not `modulus_bytes` long.
    #[error("the blinded message has {got} bytes, the key {want}")]
    Length { got: usize, want: usize },
    /// The blinded message, as a number, is not below the modulus.
    #[error("the blinded message is not below the modulus")]
    OutOfRange,
    /// OpenSSL refused or failed the operation.
    #[error("the RSA operation failed: {0}")]
    Rsa(String),
    /// The signature does not verify: the computation was faulty.
    #[error("the blind signature did not verify")]
    Faulty,
}

/// One denomination's private key, ready to blind-sign on any thread.
pub struct BlindSigner {
    rsa: Rsa<Private>,
    n: BigNum,
    modulus_bytes: usize,
}

impl std::fmt::Debug for BlindSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindSigner")
            .field("modulus_bytes", &self.modulus_bytes)
            .finish_non_exhaustive()
    }
}

impl BlindSigner {
    /// From the PKCS#8 DER of an RSA private key (the key files' form).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<BlindSigner, SignerError> {
        let key = openssl::pkey::PKey::private_key_from_pkcs8(der)
            .map_err(|e| SignerError::Key(e.to_string()))?;
        let rsa = key.rsa().map_err(|e| SignerError::Key(e.to_string()))?;
        rsa.check_key()
            .map_err(|e| SignerError::Key(e.to_string()))
            .and_then(|ok| {
                ok.then_some(())
                    .ok_or(SignerError::Key("inconsistent".into()))
            })?;
        let n = rsa
            .n()
            .to_owned()
            .map_err(|e| SignerError::Key(e.to_string()))?;
        let modulus_bytes = rsa.size() as usize;
        Ok(BlindSigner {
            rsa,
            n,
            modulus_bytes,
        })
    }

    /// The modulus length in bytes (the length of every blinded message
    /// and blind signature).
    pub fn modulus_bytes(&self) -> usize {
        self.modulus_bytes
    }

    /// RFC 9474 `BlindSign(sk, blind_msg)`: `s = RSASP1(sk, m)`, checked by
    /// `RSAVP1(pk, s) == m`, as `modulus_bytes` big-endian bytes.
    pub fn blind_sign(&self, blinded: &[u8]) -> Result<Vec<u8>, SignerError> {
        if blinded.len() != self.modulus_bytes {
            return Err(SignerError::Length {
                got: blinded.len(),
                want: self.modulus_bytes,
            });
        }
        let m = BigNum::from_slice(blinded).map_err(|e| SignerError::Rsa(e.to_string()))?;
        if m >= self.n {
            return Err(SignerError::OutOfRange);
        }
        let mut sig = vec![0u8; self.modulus_bytes];
        let len = self
            .rsa
            .private_decrypt(blinded, &mut sig, Padding::NONE)
            .map_err(|e| SignerError::Rsa(e.to_string()))?;
        if len != self.modulus_bytes {
            return Err(SignerError::Faulty);
        }
        let mut back = vec![0u8; self.modulus_bytes];
        let len = self
            .rsa
            .public_encrypt(&sig, &mut back, Padding::NONE)
            .map_err(|e| SignerError::Rsa(e.to_string()))?;
        if len != self.modulus_bytes || back != blinded {
            return Err(SignerError::Faulty);
        }
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use acd_core::token::{self, BlindedToken, Denomination};

    fn pair() -> &'static token::BlindKeyPair {
        static KEY: std::sync::OnceLock<token::BlindKeyPair> = std::sync::OnceLock::new();
        KEY.get_or_init(|| token::generate_key(&mut rand::rng(), 2048).unwrap())
    }

    fn signer() -> BlindSigner {
        BlindSigner::from_pkcs8_der(&pair().sk.to_der().unwrap()).unwrap()
    }

    // Tokens signed here finish and verify on the customer's code, and both
    // implementations give the same bytes for one blinded message.
    #[test]
    fn agrees_with_the_customer_side() {
        let kp = pair();
        let s = signer();
        let d = Denomination::new(10, kp.pk.clone()).unwrap();
        for _ in 0..8 {
            let b = BlindedToken::new(&mut rand::rng(), &d).unwrap();
            let sig = s.blind_sign(&b.blinded).unwrap();
            assert_eq!(sig, token::blind_sign(&kp.sk, &b.blinded).unwrap());
            b.finish(&d, &sig).unwrap().verify(&d).unwrap();
        }
    }

    #[test]
    fn refuses_what_is_not_a_blinded_message() {
        let s = signer();
        let n = s.n.to_vec();
        assert_eq!(
            s.blind_sign(&n[..255]),
            Err(SignerError::Length {
                got: 255,
                want: 256
            })
        );
        assert_eq!(
            s.blind_sign(&[0u8; 257]).unwrap_err(),
            SignerError::Length {
                got: 257,
                want: 256
            }
        );
        assert_eq!(s.blind_sign(&n), Err(SignerError::OutOfRange));
        assert_eq!(s.blind_sign(&[0xff; 256]), Err(SignerError::OutOfRange));
        // Zero is a number below n; its signature is zero and verifies.
        assert_eq!(s.blind_sign(&[0u8; 256]).unwrap(), vec![0u8; 256]);
    }

    #[test]
    fn refuses_what_is_not_an_rsa_key() {
        assert!(matches!(
            BlindSigner::from_pkcs8_der(b"not a key"),
            Err(SignerError::Key(_))
        ));
        let ed = openssl::pkey::PKey::generate_ed25519().unwrap();
        let der = ed.private_key_to_pkcs8().unwrap();
        assert!(matches!(
            BlindSigner::from_pkcs8_der(&der),
            Err(SignerError::Key(_))
        ));
    }
}
