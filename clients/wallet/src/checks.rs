//! What the customer checks in every answer before relying on it: the
//! bank's receipts (step 4), the merchant's offer (P1), the bank's escrow
//! terms (P3), the log's commit (P6, Q1/Q2) or abort, and the goods.
//! Pure functions: the wallet calls them, tests feed them forgeries.

use acd_core::bank_api::{DisputeFinding, OfferResponse, SignedReceipt, SpendResponse};
use acd_core::entry::LogEntry;
use acd_core::goods;
use acd_core::purchase::{EscrowTerms, Offer};
use thiserror::Error;

/// Clock difference tolerated between the wallet and the merchant when
/// judging how far out an expiration is.
pub const CLOCK_SKEW_MS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckError {
    #[error("the bank's receipt: {0}")]
    Receipt(String),
    #[error("the offer's signature does not verify: {0}")]
    OfferSignature(String),
    #[error("the ciphertext does not have the hash the offer names")]
    CiphertextHash,
    #[error("the offer's {field} is not the expected one")]
    OfferField { field: &'static str },
    #[error("the offer's price is {got}, the catalog's {expected}")]
    Price { expected: u64, got: u64 },
    #[error("the offer names a log the bank does not trust: {0:?}")]
    UntrustedLog(String),
    #[error("the offer expires at {expiration_ms}, now is {now_ms}")]
    Expired { expiration_ms: u64, now_ms: u64 },
    #[error("the offer expires at {expiration_ms}, later than the bank allows ({latest_ms})")]
    TooFarOut { expiration_ms: u64, latest_ms: u64 },
    #[error("the bank's escrow terms: {0}")]
    Terms(String),
    #[error("the log entry is not the outcome of this purchase: {0}")]
    Entry(&'static str),
}

/// What the offer must say, known before it arrives.
#[derive(Debug, Clone)]
pub struct OfferExpectation<'a> {
    /// The wallet's bank.
    pub bank: [u8; 32],
    /// Q of this purchase.
    pub customer: [u8; 32],
    /// The merchant's key as its catalog gave it.
    pub merchant: [u8; 32],
    /// The catalog's price.
    pub price: u64,
    /// Origins of the logs the bank trusts.
    pub trusted_logs: &'a [String],
    pub now_ms: u64,
    /// The bank's longest allowed time to expiration.
    pub max_expiration_ms: u64,
}

/// Step 4: the receipt is the bank's, for this token and this Q.
pub fn check_receipt(
    r: &SignedReceipt,
    bank: &[u8; 32],
    token_id: &[u8; 32],
    customer: &[u8; 32],
) -> Result<(), CheckError> {
    if &r.receipt.bank != bank {
        return Err(CheckError::Receipt("signed for another bank".into()));
    }
    if &r.receipt.token_id != token_id || &r.receipt.customer != customer {
        return Err(CheckError::Receipt("for another token or key".into()));
    }
    r.receipt
        .verify(&r.signature)
        .map_err(|e| CheckError::Receipt(e.to_string()))
}

/// P1: the merchant's signature, the ciphertext's hash, our bank and Q, a
/// trusted log, the catalog's merchant and price, and an expiration in the
/// future but not beyond what the bank escrows for.
pub fn check_offer(resp: &OfferResponse, expect: &OfferExpectation<'_>) -> Result<(), CheckError> {
    let o = &resp.offer.offer;
    o.verify(&resp.offer.signature)
        .map_err(|e| CheckError::OfferSignature(e.to_string()))?;
    if goods::hash(&resp.ciphertext) != o.ciphertext_hash {
        return Err(CheckError::CiphertextHash);
    }
    if o.bank != expect.bank {
        return Err(CheckError::OfferField { field: "bank" });
    }
    if o.customer != expect.customer {
        return Err(CheckError::OfferField {
            field: "customer key",
        });
    }
    if o.merchant != expect.merchant {
        return Err(CheckError::OfferField { field: "merchant" });
    }
    if o.price != expect.price {
        return Err(CheckError::Price {
            expected: expect.price,
            got: o.price,
        });
    }
    if !expect.trusted_logs.contains(&o.log_origin) {
        return Err(CheckError::UntrustedLog(o.log_origin.clone()));
    }
    if o.expiration_ms <= expect.now_ms {
        return Err(CheckError::Expired {
            expiration_ms: o.expiration_ms,
            now_ms: expect.now_ms,
        });
    }
    let latest_ms = expect
        .now_ms
        .saturating_add(expect.max_expiration_ms)
        .saturating_add(CLOCK_SKEW_MS);
    if o.expiration_ms > latest_ms {
        return Err(CheckError::TooFarOut {
            expiration_ms: o.expiration_ms,
            latest_ms,
        });
    }
    Ok(())
}

/// P3: the terms are signed by our bank, equal the offer's, the notice
/// signature (which the log needs for an abort) verifies, and there is one
/// blind signature per change token.
pub fn check_spend_response(
    resp: &SpendResponse,
    offer: &Offer,
    change_count: usize,
) -> Result<(), CheckError> {
    if resp.terms != offer.terms() {
        return Err(CheckError::Terms("they differ from the offer's".into()));
    }
    resp.terms
        .verify(&resp.terms_signature)
        .map_err(|e| CheckError::Terms(e.to_string()))?;
    resp.terms
        .notice()
        .verify(&offer.bank, &resp.notice_signature)
        .map_err(|e| CheckError::Terms(format!("escrow notice: {e}")))?;
    if resp.change.len() != change_count {
        return Err(CheckError::Terms(format!(
            "{} change signatures for {change_count} change tokens",
            resp.change.len()
        )));
    }
    Ok(())
}

/// P6, Q1/Q2: a proven entry (from the log named `origin`) is the timely
/// commit of this offer; returns the key k it publishes.
pub fn check_commit(entry: &LogEntry, origin: &str, offer: &Offer) -> Result<[u8; 32], CheckError> {
    let LogEntry::Commit { key, .. } = entry else {
        return Err(CheckError::Entry("it is not a commit"));
    };
    check_common(entry, origin, &offer.terms())?;
    Ok(*key)
}

/// The log's abort of this purchase, logged at or after the expiration,
/// on the notice of our bank.
pub fn check_abort(entry: &LogEntry, origin: &str, terms: &EscrowTerms) -> Result<(), CheckError> {
    let LogEntry::Abort { bank, .. } = entry else {
        return Err(CheckError::Entry("it is not an abort"));
    };
    if bank != &terms.bank {
        return Err(CheckError::Entry("the abort is on another bank's notice"));
    }
    check_common(entry, origin, terms)
}

fn check_common(entry: &LogEntry, origin: &str, terms: &EscrowTerms) -> Result<(), CheckError> {
    if origin != terms.log_origin {
        return Err(CheckError::Entry("it is in another log"));
    }
    if entry.tid() != terms.tid {
        return Err(CheckError::Entry("another TID"));
    }
    if entry.merchant() != terms.merchant {
        return Err(CheckError::Entry("another merchant"));
    }
    if entry.expiration_ms() != terms.expiration_ms {
        return Err(CheckError::Entry("another expiration"));
    }
    if !entry.timely() {
        return Err(CheckError::Entry(
            "logged on the wrong side of its expiration",
        ));
    }
    Ok(())
}

/// Decrypts the goods with the logged key and checks the contract's
/// plaintext hash; the error is what a dispute would claim.
pub fn open_goods(
    key: &[u8; 32],
    offer: &Offer,
    ciphertext: &[u8],
) -> Result<Vec<u8>, DisputeFinding> {
    let plain = goods::decrypt(key, &offer.tid, ciphertext)
        .map_err(|_| DisputeFinding::KeyDoesNotDecrypt)?;
    if goods::hash(&plain) != offer.plaintext_hash {
        return Err(DisputeFinding::WrongGoods);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_core::bank_api::SignedOffer;
    use acd_core::entry::{EscrowNotice, KeyCommit, Tid};
    use acd_core::purchase::Receipt;
    use ed25519_dalek::SigningKey;

    const NOW: u64 = 1_700_000_000_000;
    const ORIGIN: &str = "log.test/a";

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    struct Fixture {
        merchant: SigningKey,
        bank: SigningKey,
        k: [u8; 32],
        resp: OfferResponse,
        logs: Vec<String>,
    }

    fn fixture() -> Fixture {
        let (merchant, bank) = (key(2), key(1));
        let k = [42; 32];
        let tid = Tid([9; 16]);
        let plain = b"the goods".to_vec();
        let ciphertext = goods::encrypt(&k, &tid, &plain).expect("encrypt");
        let offer = Offer {
            bank: bank.verifying_key().to_bytes(),
            log_origin: ORIGIN.into(),
            tid,
            merchant: merchant.verifying_key().to_bytes(),
            customer: key(3).verifying_key().to_bytes(),
            expiration_ms: NOW + 60_000,
            price: 10,
            description: "goods".into(),
            ciphertext_hash: goods::hash(&ciphertext),
            plaintext_hash: goods::hash(&plain),
        };
        let signature = offer.sign(&merchant);
        Fixture {
            merchant,
            bank,
            k,
            resp: OfferResponse {
                offer: SignedOffer { offer, signature },
                ciphertext,
            },
            logs: vec![ORIGIN.into()],
        }
    }

    impl Fixture {
        fn expect(&self) -> OfferExpectation<'_> {
            let o = &self.resp.offer.offer;
            OfferExpectation {
                bank: o.bank,
                customer: o.customer,
                merchant: o.merchant,
                price: 10,
                trusted_logs: &self.logs,
                now_ms: NOW,
                max_expiration_ms: 3_600_000,
            }
        }

        fn offer(&self) -> &Offer {
            &self.resp.offer.offer
        }

        fn resign(&mut self, edit: impl FnOnce(&mut Offer)) {
            edit(&mut self.resp.offer.offer);
            self.resp.offer.signature = self.resp.offer.offer.sign(&self.merchant);
        }

        fn commit(&self, ts: u64) -> LogEntry {
            let o = self.offer();
            let kc = KeyCommit {
                log_origin: ORIGIN.into(),
                tid: o.tid,
                merchant: o.merchant,
                expiration_ms: o.expiration_ms,
                key: self.k,
            };
            LogEntry::Commit {
                timestamp_ms: ts,
                tid: o.tid,
                merchant: o.merchant,
                expiration_ms: o.expiration_ms,
                key: self.k,
                signature: kc.sign(&self.merchant),
            }
        }

        fn spend_response(&self) -> SpendResponse {
            let terms = self.offer().terms();
            SpendResponse {
                terms_signature: terms.sign(&self.bank),
                notice_signature: terms.notice().sign(&self.bank),
                terms,
                change: vec![vec![1; 256]],
            }
        }
    }

    #[test]
    fn a_good_offer_passes() {
        // The offer as the merchant should send it passes every check.
        let f = fixture();
        check_offer(&f.resp, &f.expect()).expect("good offer");
    }

    #[test]
    fn offers_that_do_not_match_are_refused() {
        // Each field the wallet relies on is checked, and the signature
        // covers the rest.
        let f = fixture();
        let mut bad = f.resp.clone();
        bad.ciphertext[0] ^= 1;
        assert_eq!(
            check_offer(&bad, &f.expect()),
            Err(CheckError::CiphertextHash)
        );
        let mut bad = f.resp.clone();
        bad.offer.offer.price = 1;
        assert!(matches!(
            check_offer(&bad, &f.expect()),
            Err(CheckError::OfferSignature(_))
        ));

        type Edit = Box<dyn Fn(&mut Offer)>;
        let cases: Vec<(Edit, CheckError)> = vec![
            (
                Box::new(|o| o.price = 11),
                CheckError::Price {
                    expected: 10,
                    got: 11,
                },
            ),
            (
                Box::new(|o| o.bank = [5; 32]),
                CheckError::OfferField { field: "bank" },
            ),
            (
                Box::new(|o| o.customer = key(8).verifying_key().to_bytes()),
                CheckError::OfferField {
                    field: "customer key",
                },
            ),
            (
                Box::new(|o| o.log_origin = "log.test/other".into()),
                CheckError::UntrustedLog("log.test/other".into()),
            ),
            (
                Box::new(|o| o.expiration_ms = NOW),
                CheckError::Expired {
                    expiration_ms: NOW,
                    now_ms: NOW,
                },
            ),
            (
                Box::new(|o| o.expiration_ms = NOW + 3_600_000 + CLOCK_SKEW_MS + 1),
                CheckError::TooFarOut {
                    expiration_ms: NOW + 3_600_000 + CLOCK_SKEW_MS + 1,
                    latest_ms: NOW + 3_600_000 + CLOCK_SKEW_MS,
                },
            ),
        ];
        for (edit, want) in cases {
            let mut g = fixture();
            g.resign(edit);
            let logs = f.logs.clone();
            let mut expect = f.expect();
            expect.trusted_logs = &logs;
            assert_eq!(check_offer(&g.resp, &expect), Err(want));
        }
        // Another merchant's valid signature is not the catalog's merchant.
        let mut g = fixture();
        g.merchant = key(6);
        g.resign(|o| o.merchant = key(6).verifying_key().to_bytes());
        assert_eq!(
            check_offer(&g.resp, &f.expect()),
            Err(CheckError::OfferField { field: "merchant" })
        );
    }

    #[test]
    fn escrow_terms_must_be_the_offers() {
        // The bank's P3 answer must be signed by our bank, for the offer's
        // terms, with a valid notice and the right number of change tokens.
        let f = fixture();
        let good = f.spend_response();
        check_spend_response(&good, f.offer(), 1).expect("good terms");
        assert!(check_spend_response(&good, f.offer(), 2).is_err());
        let mut bad = good.clone();
        bad.terms.price = 9;
        bad.terms_signature = bad.terms.sign(&f.bank);
        assert!(check_spend_response(&bad, f.offer(), 1).is_err());
        let mut bad = good.clone();
        bad.terms_signature = bad.terms.sign(&key(7));
        assert!(check_spend_response(&bad, f.offer(), 1).is_err());
        let mut bad = good.clone();
        bad.notice_signature = bad.terms_signature;
        assert!(check_spend_response(&bad, f.offer(), 1).is_err());
    }

    #[test]
    fn only_this_offers_timely_commit_gives_the_key() {
        // The key is taken only from a commit for this TID, merchant,
        // expiration and log, logged before the expiration.
        let f = fixture();
        let o = f.offer();
        assert_eq!(check_commit(&f.commit(NOW), ORIGIN, o), Ok(f.k));
        assert!(check_commit(&f.commit(o.expiration_ms), ORIGIN, o).is_err());
        assert!(check_commit(&f.commit(NOW), "log.test/b", o).is_err());
        let mut other = o.clone();
        other.tid = Tid([1; 16]);
        assert!(check_commit(&f.commit(NOW), ORIGIN, &other).is_err());
        let mut other = o.clone();
        other.expiration_ms += 1;
        assert!(check_commit(&f.commit(NOW), ORIGIN, &other).is_err());
        let mut other = o.clone();
        other.merchant = [4; 32];
        assert!(check_commit(&f.commit(NOW), ORIGIN, &other).is_err());
    }

    #[test]
    fn aborts_must_be_late_and_our_banks() {
        // An abort counts only at or after the expiration, on our bank's
        // notice, for this purchase.
        let f = fixture();
        let terms = f.offer().terms();
        let abort = |ts: u64, bank: &SigningKey| LogEntry::Abort {
            timestamp_ms: ts,
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            bank: bank.verifying_key().to_bytes(),
            signature: EscrowNotice {
                log_origin: ORIGIN.into(),
                tid: terms.tid,
                merchant: terms.merchant,
                expiration_ms: terms.expiration_ms,
            }
            .sign(bank),
        };
        check_abort(&abort(terms.expiration_ms, &f.bank), ORIGIN, &terms).expect("abort");
        assert!(check_abort(&abort(terms.expiration_ms - 1, &f.bank), ORIGIN, &terms).is_err());
        assert!(check_abort(&abort(terms.expiration_ms, &key(9)), ORIGIN, &terms).is_err());
        assert!(check_abort(&f.commit(NOW), ORIGIN, &terms).is_err());
        assert!(check_commit(&abort(terms.expiration_ms, &f.bank), ORIGIN, f.offer()).is_err());
    }

    #[test]
    fn goods_open_only_with_the_right_key_and_hash() {
        // The right key gives the goods; a wrong key or other goods are the
        // two dispute findings.
        let f = fixture();
        let o = f.offer();
        assert_eq!(
            open_goods(&f.k, o, &f.resp.ciphertext).expect("opens"),
            b"the goods"
        );
        assert_eq!(
            open_goods(&[1; 32], o, &f.resp.ciphertext),
            Err(DisputeFinding::KeyDoesNotDecrypt)
        );
        let other = goods::encrypt(&f.k, &o.tid, b"something else").expect("encrypt");
        assert_eq!(open_goods(&f.k, o, &other), Err(DisputeFinding::WrongGoods));
    }

    #[test]
    fn receipts_bind_token_and_key() {
        // A receipt counts only for our bank, this token and this Q.
        let bank = key(1);
        let r = Receipt {
            bank: bank.verifying_key().to_bytes(),
            token_id: [3; 32],
            customer: [4; 32],
        };
        let s = SignedReceipt {
            signature: r.sign(&bank),
            receipt: r.clone(),
        };
        check_receipt(&s, &r.bank, &[3; 32], &[4; 32]).expect("good");
        assert!(check_receipt(&s, &r.bank, &[3; 32], &[5; 32]).is_err());
        assert!(check_receipt(&s, &[0; 32], &[3; 32], &[4; 32]).is_err());
        let mut forged = s.clone();
        forged.signature = r.sign(&key(2));
        assert!(check_receipt(&forged, &r.bank, &[3; 32], &[4; 32]).is_err());
    }
}
