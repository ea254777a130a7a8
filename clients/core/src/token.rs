//! Certified-delivery tokens: RFC 9474 blind RSA signatures
//! (RSABSSA-SHA384-PSS-Randomized) over a canonical token message (paper
//! figure 1, steps 1 and 2).
//!
//! A denomination is one bank RSA key with a value; its id is a hash of both,
//! so a token names exactly which key and value it claims. The customer picks
//! a random serial, blinds the token message (`acd/v1/token`), the bank signs
//! blindly, and the customer unblinds. The token's id h(t) (`acd/v1/token-id`
//! over denomination and serial) is what the bank registers, escrows and
//! marks spent: it does not depend on the signature, so one serial can never
//! be spent twice under two different valid signatures.

use blind_rsa_signatures::{
    BlindMessage, BlindSignature, BlindingResult, KeyPairSha384PSSRandomized, MessageRandomizer,
    PublicKeySha384PSSRandomized, Secret, SecretKeySha384PSSRandomized, Signature,
};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::encoding::Writer;
use crate::log_api::{hex_array, hex_vec};

/// Context label of the message the bank blind-signs.
pub const TOKEN_LABEL: &str = "acd/v1/token";
/// Context label of a token's id h(t).
pub const TOKEN_ID_LABEL: &str = "acd/v1/token-id";
/// Context label of a denomination's id.
pub const DENOMINATION_LABEL: &str = "acd/v1/denomination";
/// Default RSA modulus size of denomination keys.
pub const DEFAULT_RSA_BITS: usize = 2048;

/// The bank's public blind-signing key of one denomination.
pub type BlindPublicKey = PublicKeySha384PSSRandomized;
/// The bank's secret blind-signing key of one denomination.
pub type BlindSecretKey = SecretKeySha384PSSRandomized;
/// A blind-signing key pair.
pub type BlindKeyPair = KeyPairSha384PSSRandomized;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("RSA key: {0}")]
    Key(String),
    #[error("unknown denomination {0}")]
    UnknownDenomination(String),
    #[error("the token's signature does not verify under its denomination")]
    BadSignature,
    #[error("blinding failed: {0}")]
    Blind(String),
    #[error("the bank's blind signature does not unblind to a valid token")]
    BadBlindSignature,
    #[error("blind signing failed: {0}")]
    Sign(String),
}

/// A denomination: a value in the currency's smallest unit and the RSA key
/// that signs tokens of that value.
#[derive(Debug, Clone)]
pub struct Denomination {
    pub value: u64,
    pub public_key: BlindPublicKey,
    spki: Vec<u8>,
    id: [u8; 32],
}

impl Denomination {
    pub fn new(value: u64, public_key: BlindPublicKey) -> Result<Self, TokenError> {
        let spki = public_key
            .to_spki()
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let id = denomination_id(value, &spki);
        Ok(Denomination {
            value,
            public_key,
            spki,
            id,
        })
    }

    /// From a published SPKI (DER) key.
    pub fn from_spki(value: u64, spki: &[u8]) -> Result<Self, TokenError> {
        let key = BlindPublicKey::from_spki(spki).map_err(|e| TokenError::Key(e.to_string()))?;
        Denomination::new(value, key)
    }

    /// SHA-256 over `acd/v1/denomination`, the value and the SPKI DER key.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// The public key as RFC 9474's SPKI (id-RSASSA-PSS with SHA-384).
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// [`Denomination::spki`] as PEM (`PUBLIC KEY`): RFC 9474's encoding,
    /// whose algorithm identifier (id-RSASSA-PSS, SHA-384, MGF1-SHA-384,
    /// salt 48) fixes how the key may be used. The bank publishes this one
    /// and the denomination's id hashes its DER.
    pub fn spki_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki)
    }

    /// The same key as a plain rsaEncryption SubjectPublicKeyInfo PEM
    /// (`PUBLIC KEY`), which tools that do not read RSASSA-PSS parameters
    /// load; the verifier must then set PSS, SHA-384 and salt 48 itself.
    pub fn rsa_pem(&self) -> Result<String, TokenError> {
        self.public_key
            .to_pem()
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    /// The size of signatures and blinded messages (the modulus in bytes).
    pub fn modulus_bytes(&self) -> usize {
        self.public_key.components().n().len()
    }
}

/// The id of a denomination: SHA-256(label || 0x00 || value || spki).
pub fn denomination_id(value: u64, spki: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DENOMINATION_LABEL.as_bytes());
    h.update([0u8]);
    h.update(value.to_be_bytes());
    h.update((spki.len() as u64).to_be_bytes());
    h.update(spki);
    h.finalize().into()
}

/// The message that is blind-signed: label, denomination id, serial.
pub fn token_message(denomination: &[u8; 32], serial: &[u8; 32]) -> Vec<u8> {
    Writer::labelled(TOKEN_LABEL)
        .fixed(denomination)
        .fixed(serial)
        .finish()
}

/// h(t): the token's id, fixed by its denomination and serial.
pub fn token_id(denomination: &[u8; 32], serial: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(
        Writer::labelled(TOKEN_ID_LABEL)
            .fixed(denomination)
            .fixed(serial)
            .finish(),
    )
    .into()
}

/// A spendable token t = (denomination, serial, signature), with the RFC
/// 9474 message randomizer the signature needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    #[serde(with = "hex_array")]
    pub denomination: [u8; 32],
    #[serde(with = "hex_array")]
    pub serial: [u8; 32],
    #[serde(with = "hex_array")]
    pub randomizer: [u8; 32],
    #[serde(with = "hex_vec")]
    pub signature: Vec<u8>,
}

impl Token {
    pub fn id(&self) -> [u8; 32] {
        token_id(&self.denomination, &self.serial)
    }

    /// Checks the signature under `denomination`, whose id must be the
    /// token's.
    pub fn verify(&self, denomination: &Denomination) -> Result<(), TokenError> {
        if denomination.id() != self.denomination {
            return Err(TokenError::UnknownDenomination(hex::encode(
                self.denomination,
            )));
        }
        denomination
            .public_key
            .verify(
                &Signature(self.signature.clone()),
                Some(MessageRandomizer(self.randomizer)),
                token_message(&self.denomination, &self.serial),
            )
            .map_err(|_| TokenError::BadSignature)
    }
}

/// RFC 7468 text encoding of `der` under `label`: base64 in lines of 64.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The `kind` of an exported token.
pub const TOKEN_EXPORT_KIND: &str = "acd/v1/token-export";

/// A token laid out for a verifier that knows RFC 9474 and nothing of
/// acd: `signature` is an RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48)
/// signature over `prepared_message`, which is `randomizer || message`
/// (RFC 9474 section 4.1, the Randomized variant), under the key in
/// either PEM. `acd wallet export-token` writes it as JSON. The export is
/// the token itself: whoever holds it can spend it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExport {
    pub kind: String,
    /// Always `RSABSSA-SHA384-PSS-Randomized`.
    pub variant: String,
    pub value: u64,
    #[serde(with = "hex_array")]
    pub denomination: [u8; 32],
    #[serde(with = "hex_array")]
    pub serial: [u8; 32],
    /// The message the bank signed blindly ([`token_message`]).
    #[serde(with = "hex_vec")]
    pub message: Vec<u8>,
    #[serde(with = "hex_array")]
    pub randomizer: [u8; 32],
    /// `randomizer || message`: the input of RSASSA-PSS-VERIFY.
    #[serde(with = "hex_vec")]
    pub prepared_message: Vec<u8>,
    #[serde(with = "hex_vec")]
    pub signature: Vec<u8>,
    /// [`Denomination::spki_pem`].
    pub public_key_pem: String,
    /// [`Denomination::rsa_pem`].
    pub public_key_rsa_pem: String,
}

impl Token {
    /// The token as a third party verifies it; checked first, so that an
    /// export always verifies.
    pub fn export(&self, denomination: &Denomination) -> Result<TokenExport, TokenError> {
        self.verify(denomination)?;
        let message = token_message(&self.denomination, &self.serial);
        let mut prepared_message = self.randomizer.to_vec();
        prepared_message.extend_from_slice(&message);
        Ok(TokenExport {
            kind: TOKEN_EXPORT_KIND.to_owned(),
            variant: "RSABSSA-SHA384-PSS-Randomized".to_owned(),
            value: denomination.value,
            denomination: self.denomination,
            serial: self.serial,
            message,
            randomizer: self.randomizer,
            prepared_message,
            signature: self.signature.clone(),
            public_key_pem: denomination.spki_pem(),
            public_key_rsa_pem: denomination.rsa_pem()?,
        })
    }
}

/// A token being withdrawn: everything the customer must keep (on disk,
/// before sending the blinded message) to unblind the bank's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlindedToken {
    #[serde(with = "hex_array")]
    pub denomination: [u8; 32],
    #[serde(with = "hex_array")]
    pub serial: [u8; 32],
    #[serde(with = "hex_array")]
    pub randomizer: [u8; 32],
    /// The blinding secret (the inverse factor); never leaves the wallet.
    #[serde(with = "hex_vec")]
    pub secret: Vec<u8>,
    /// What the bank signs.
    #[serde(with = "hex_vec")]
    pub blinded: Vec<u8>,
}

impl BlindedToken {
    /// Picks a fresh serial with `rng` and blinds its token message.
    pub fn new<R: CryptoRng + ?Sized>(
        rng: &mut R,
        denomination: &Denomination,
    ) -> Result<Self, TokenError> {
        let mut serial = [0u8; 32];
        rng.fill_bytes(&mut serial);
        let result = denomination
            .public_key
            .blind(rng, token_message(&denomination.id(), &serial))
            .map_err(|e| TokenError::Blind(e.to_string()))?;
        let randomizer = result
            .msg_randomizer
            .map(|r| r.0)
            .ok_or_else(|| TokenError::Blind("no message randomizer".into()))?;
        Ok(BlindedToken {
            denomination: denomination.id(),
            serial,
            randomizer,
            secret: result.secret.0,
            blinded: result.blind_message.0,
        })
    }

    /// Unblinds the bank's blind signature and checks the resulting token.
    pub fn finish(
        &self,
        denomination: &Denomination,
        blind_signature: &[u8],
    ) -> Result<Token, TokenError> {
        if denomination.id() != self.denomination {
            return Err(TokenError::UnknownDenomination(hex::encode(
                self.denomination,
            )));
        }
        let result = BlindingResult {
            blind_message: BlindMessage(self.blinded.clone()),
            secret: Secret(self.secret.clone()),
            msg_randomizer: Some(MessageRandomizer(self.randomizer)),
        };
        let signature = denomination
            .public_key
            .finalize(
                &BlindSignature(blind_signature.to_vec()),
                &result,
                token_message(&self.denomination, &self.serial),
            )
            .map_err(|_| TokenError::BadBlindSignature)?;
        Ok(Token {
            denomination: self.denomination,
            serial: self.serial,
            randomizer: self.randomizer,
            signature: signature.0,
        })
    }

    /// What is sent to the bank.
    pub fn request(&self) -> BlindedMessage {
        BlindedMessage {
            denomination: self.denomination,
            message: self.blinded.clone(),
        }
    }
}

/// A blinded token message for one denomination, as sent to the bank
/// (withdrawal, change, refund).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlindedMessage {
    #[serde(with = "hex_array")]
    pub denomination: [u8; 32],
    #[serde(with = "hex_vec")]
    pub message: Vec<u8>,
}

impl BlindedMessage {
    /// The 32 bytes that stand for this blinded message inside signed
    /// requests: SHA-256 of the blinded message.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.message).into()
    }
}

/// The bank's side: blind-signs `blinded` with a denomination's secret key.
pub fn blind_sign(secret: &BlindSecretKey, blinded: &[u8]) -> Result<Vec<u8>, TokenError> {
    secret
        .blind_sign(blinded)
        .map(|s| s.0)
        .map_err(|e| TokenError::Sign(e.to_string()))
}

/// Generates a denomination key pair of `bits` bits with `rng`.
pub fn generate_key<R: CryptoRng + ?Sized>(
    rng: &mut R,
    bits: usize,
) -> Result<BlindKeyPair, TokenError> {
    BlindKeyPair::generate(rng, bits).map_err(|e| TokenError::Key(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> &'static BlindKeyPair {
        static KEY: std::sync::OnceLock<BlindKeyPair> = std::sync::OnceLock::new();
        KEY.get_or_init(|| generate_key(&mut rand::rng(), 2048).expect("key"))
    }

    #[test]
    fn an_export_lays_out_what_rfc_9474_verifies() {
        // The prepared message is randomizer || message, the PSS PEM holds
        // the published SPKI, and both PEMs load back as the same key; a
        // token that does not verify is not exported.
        use base64::Engine as _;
        let kp = key();
        let d = Denomination::new(5, kp.pk.clone()).expect("denomination");
        let b = BlindedToken::new(&mut rand::rng(), &d).expect("blind");
        let t = b
            .finish(&d, &blind_sign(&kp.sk, &b.blinded).expect("sign"))
            .expect("unblind");
        let e = t.export(&d).expect("export");
        assert_eq!(e.prepared_message[..32], t.randomizer);
        assert_eq!(e.prepared_message[32..], e.message);
        assert_eq!(e.message, token_message(&t.denomination, &t.serial));
        let body: String = e
            .public_key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(e.public_key_pem.lines().all(|l| l.len() <= 64));
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64");
        assert_eq!(der, d.spki());
        let rsa = BlindPublicKey::from_pem(&e.public_key_rsa_pem).expect("rsa pem");
        assert_eq!(rsa.to_spki().expect("spki"), d.spki());
        let mut bad = t.clone();
        bad.signature[0] ^= 1;
        assert!(bad.export(&d).is_err());
    }

    #[test]
    fn withdraw_unblind_verify() {
        let kp = key();
        let d = Denomination::new(100, kp.pk.clone()).expect("denomination");
        let b = BlindedToken::new(&mut rand::rng(), &d).expect("blind");
        let sig = blind_sign(&kp.sk, &b.blinded).expect("sign");
        let t = b.finish(&d, &sig).expect("unblind");
        t.verify(&d).expect("verifies");
        // The blinded message does not contain the serial or the signature.
        assert!(!b.blinded.windows(32).any(|w| w == t.serial));
        assert_ne!(sig, t.signature);

        let mut bad = t.clone();
        bad.serial[0] ^= 1;
        assert_eq!(bad.verify(&d), Err(TokenError::BadSignature));
        let mut bad = t.clone();
        bad.randomizer[0] ^= 1;
        assert_eq!(bad.verify(&d), Err(TokenError::BadSignature));
        let other = Denomination::new(200, kp.pk.clone()).expect("denomination");
        assert!(matches!(
            t.verify(&other),
            Err(TokenError::UnknownDenomination(_))
        ));
        // A blind signature for another message does not unblind.
        let b2 = BlindedToken::new(&mut rand::rng(), &d).expect("blind");
        assert_eq!(b2.finish(&d, &sig), Err(TokenError::BadBlindSignature));
    }

    #[test]
    fn spki_round_trip_keeps_id() {
        let kp = key();
        let d = Denomination::new(5, kp.pk.clone()).expect("denomination");
        let d2 = Denomination::from_spki(5, d.spki()).expect("from spki");
        assert_eq!(d.id(), d2.id());
        assert_eq!(d.modulus_bytes(), 256);
        assert_ne!(d.id(), denomination_id(6, d.spki()));
    }

    #[test]
    fn token_id_depends_on_denomination_and_serial_only() {
        let a = token_id(&[1; 32], &[2; 32]);
        assert_ne!(a, token_id(&[1; 32], &[3; 32]));
        assert_ne!(a, token_id(&[4; 32], &[2; 32]));
    }
}
