//! RFC 9474 test vectors, byte for byte, against the blind-signing code
//! the bank uses: the bank's blind signature of each vector's blinded
//! message, and verification of the final signature.
#![allow(clippy::unwrap_used)]

use blind_rsa_signatures::{
    Deterministic, MessageRandomizer, PSS, PSSZero, PublicKey, Randomized, SecretKey, Sha384,
    Signature,
};
use rsa::{BoxedUint, RsaPrivateKey};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("../../clients/core/testdata/rfc9474/test_vectors_rfc9474.json");
    serde_json::from_str(text).unwrap()
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    let s = v[field].as_str().unwrap();
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

fn uint(v: &Value, field: &str, bits: u32) -> BoxedUint {
    BoxedUint::from_be_slice(&bytes(v, field), bits).unwrap()
}

fn private_key(v: &Value) -> RsaPrivateKey {
    // n, e and d at the modulus' precision, the primes at half of it.
    let bits = (bytes(v, "n").len() * 8) as u32;
    RsaPrivateKey::from_components(
        uint(v, "n", bits),
        uint(v, "e", bits),
        uint(v, "d", bits),
        vec![uint(v, "p", bits / 2), uint(v, "q", bits / 2)],
    )
    .unwrap()
}

fn randomizer(v: &Value) -> Option<MessageRandomizer> {
    let prefix = bytes(v, "msg_prefix");
    if prefix.is_empty() {
        None
    } else {
        Some(MessageRandomizer(prefix.try_into().unwrap()))
    }
}

fn check<S, M>(v: &Value)
where
    S: blind_rsa_signatures::SaltMode,
    M: blind_rsa_signatures::MessagePrepare,
{
    let sk = SecretKey::<Sha384, S, M>::new(private_key(v));
    let blind_sig = sk.blind_sign(bytes(v, "blinded_msg")).unwrap();
    assert_eq!(blind_sig.0, bytes(v, "blind_sig"), "{}", v["name"]);
    let pk: PublicKey<Sha384, S, M> = sk.public_key().unwrap();
    pk.verify(&Signature(bytes(v, "sig")), randomizer(v), bytes(v, "msg"))
        .unwrap();
    let mut bad = bytes(v, "sig");
    bad[0] ^= 1;
    assert!(
        pk.verify(&Signature(bad), randomizer(v), bytes(v, "msg"))
            .is_err()
    );
}

// Each vector of RFC 9474 appendix A: the blind signature equals the vector's, and the final signature verifies.
#[test]
fn rfc9474_vectors() {
    let vs = vectors();
    let mut seen = 0;
    for v in &vs {
        match v["name"].as_str().unwrap() {
            "RSABSSA-SHA384-PSS-Randomized" => check::<PSS, Randomized>(v),
            "RSABSSA-SHA384-PSSZERO-Randomized" => check::<PSSZero, Randomized>(v),
            "RSABSSA-SHA384-PSS-Deterministic" => check::<PSS, Deterministic>(v),
            "RSABSSA-SHA384-PSSZERO-Deterministic" => check::<PSSZero, Deterministic>(v),
            other => panic!("unknown vector {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 4);
}

// The variant the bank uses (SHA384-PSS-Randomized) through acd-core's token API: the vector's blind signature byte for byte.
#[test]
fn bank_variant_through_token_api() {
    let v = vectors()
        .into_iter()
        .find(|v| v["name"] == "RSABSSA-SHA384-PSS-Randomized")
        .unwrap();
    let sk = acd_core::token::BlindSecretKey::new(private_key(&v));
    let sig = acd_core::token::blind_sign(&sk, &bytes(&v, "blinded_msg")).unwrap();
    assert_eq!(sig, bytes(&v, "blind_sig"));
    // The secret key survives the PKCS#8 DER round trip the key files use.
    let der = sk.to_der().unwrap();
    let back = acd_core::token::BlindSecretKey::from_der(&der).unwrap();
    assert_eq!(
        acd_core::token::blind_sign(&back, &bytes(&v, "blinded_msg")).unwrap(),
        bytes(&v, "blind_sig")
    );
    assert_eq!(bytes(&v, "msg_prefix").len(), 32);
}

// The bank's OpenSSL signer, loaded from the PKCS#8 DER form its key files
// use: each of the four vectors' blind signatures byte for byte (RSASP1 is
// the same operation in every variant), and the vector's message refused
// when it is one byte short or not below the modulus.
#[test]
fn rfc9474_vectors_on_the_banks_signer() {
    use acd_bank::signer::{BlindSigner, SignerError};
    let mut seen = 0;
    for v in &vectors() {
        let der = acd_core::token::BlindSecretKey::new(private_key(v))
            .to_der()
            .unwrap();
        let signer = BlindSigner::from_pkcs8_der(&der).unwrap();
        let blinded = bytes(v, "blinded_msg");
        assert_eq!(
            signer.blind_sign(&blinded).unwrap(),
            bytes(v, "blind_sig"),
            "{}",
            v["name"]
        );
        assert!(matches!(
            signer.blind_sign(&blinded[1..]),
            Err(SignerError::Length { .. })
        ));
        assert_eq!(
            signer.blind_sign(&bytes(v, "n")),
            Err(SignerError::OutOfRange)
        );
        seen += 1;
    }
    assert_eq!(seen, 4);
}
