//! The bank over real loopback HTTP with the real log: withdrawal,
//! registration, spend, deposit, refund after an abort, dispute, the
//! sweeper, the admin API and restart.
#![allow(clippy::unwrap_used)]

mod common;

use acd_core::bank_api::{
    DepositRequest, DisputeFinding, DisputeRequest, RefundRequest, RegisterRequest, SignedOffer,
};
use acd_core::goods;
use acd_core::log_api::{AbortRequest, EntryProof};
use acd_core::purchase::{EscrowTerms, Offer, Refund, RefundReason};
use acd_core::token::BlindedToken;
use common::*;
use ed25519_dalek::SigningKey;

fn refund_request(
    h: &Harness,
    q: &SigningKey,
    terms: &EscrowTerms,
    reason: RefundReason,
    blinded: &[BlindedToken],
) -> (Refund, [u8; 64]) {
    let refund = Refund {
        bank: h.bank_key(),
        tid: terms.tid,
        reason,
        customer: q.verifying_key().to_bytes(),
        blinded: blinded.iter().map(|b| b.request()).collect(),
    };
    let sig = refund.sign(q);
    (refund, sig)
}

// The whole happy path: withdraw (retried without a second debit), register, spend with change, commit, deposit (replayed without a second credit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraw_spend_deposit() {
    let h = Harness::new(1000).await;
    let customer = h.customer.verifying_key().to_bytes();

    let blinded = h.blinded(&[100, 10, 1]);
    let req = h.withdraw_request([1; 16], &blinded);
    let a = h.client.withdraw(&req).await.unwrap();
    let b = h.client.withdraw(&req).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(h.balance(&customer).await, 889);
    let other = h.withdraw_request([1; 16], &h.blinded(&[1]));
    assert_eq!(
        refusal(h.client.withdraw(&other).await),
        (409, "request_id_reused".into())
    );
    assert_eq!(
        refusal(
            h.client
                .withdraw(&h.withdraw_request([2; 16], &h.blinded(&[100; 9])))
                .await
        ),
        (409, "insufficient_funds".into())
    );
    let tokens = h.finish(&blinded, &a.blind_signatures);

    let q = fresh_key();
    for t in &tokens {
        h.client
            .register(&RegisterRequest {
                token: t.clone(),
                customer: q.verifying_key().to_bytes(),
            })
            .await
            .unwrap();
    }
    // The same registration again is the same receipt; another Q is refused.
    let again = h
        .client
        .register(&RegisterRequest {
            token: tokens[0].clone(),
            customer: q.verifying_key().to_bytes(),
        })
        .await
        .unwrap();
    again.receipt.verify(&again.signature).unwrap();
    assert_eq!(
        refusal(
            h.client
                .register(&RegisterRequest {
                    token: tokens[0].clone(),
                    customer: fresh_key().verifying_key().to_bytes(),
                })
                .await
        ),
        (409, "already_registered".into())
    );

    // Pay 105 with 111, 6 back as change.
    let terms = h.terms(105, 60_000);
    let change = h.blinded(&[1, 1, 1, 1, 1, 1]);
    let resp = h.spend(&q, &tokens, &terms, &change).await.unwrap();
    resp.terms.verify(&resp.terms_signature).unwrap();
    terms
        .notice()
        .verify(&h.bank_key(), &resp.notice_signature)
        .unwrap();
    let change_tokens = h.finish(&change, &resp.change);
    assert_eq!(change_tokens.len(), 6);
    // An identical repeat gets the same answer; another TID with the same tokens is a double spend.
    assert_eq!(h.spend(&q, &tokens, &terms, &change).await.unwrap(), resp);
    let terms2 = h.terms(105, 60_000);
    assert_eq!(
        refusal(h.spend(&q, &tokens, &terms2, &change).await),
        (409, "double_spend".into())
    );
    // The token is spent: registration is refused.
    assert_eq!(
        refusal(
            h.client
                .register(&RegisterRequest {
                    token: tokens[0].clone(),
                    customer: q.verifying_key().to_bytes(),
                })
                .await
        ),
        (409, "token_spent".into())
    );
    let s = h.admin.sums().await.unwrap();
    assert_eq!((s.escrowed, s.live_tokens), (105, 6));
    assert!(s.conserved);

    let proof = h.commit(&terms, goods::fresh_key(&mut rand::rng())).await;
    let d = h
        .client
        .deposit(&DepositRequest {
            proof: proof.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        (d.tid, d.amount, d.merchant),
        (terms.tid, 105, h.merchant_key())
    );
    let d2 = h.client.deposit(&DepositRequest { proof }).await.unwrap();
    assert_eq!(d, d2);
    assert_eq!(h.balance(&h.merchant_key()).await, 105);
    let s = h.admin.sums().await.unwrap();
    assert_eq!(
        (
            s.credited,
            s.customer_balances,
            s.merchant_balances,
            s.live_tokens,
            s.escrowed
        ),
        (1000, 889, 105, 6, 0)
    );
    assert!(s.conserved);
}

// Eight concurrent spends of one token for eight TIDs: exactly one escrow, seven double spends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spends_have_one_winner() {
    let h = std::sync::Arc::new(Harness::new(1000).await);
    let q = fresh_key();
    let tokens = h.tokens(&[10], &q).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let h = h.clone();
        let (q, tokens) = (q.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let terms = h.terms(10, 60_000);
            h.spend(&q, &tokens, &terms, &[]).await.map(|_| terms.tid)
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(tid) => won.push(tid),
            Err(e) => assert_eq!(e.code(), Some("double_spend")),
        }
    }
    assert_eq!(won.len(), 1);
    let s = h.admin.sums().await.unwrap();
    assert_eq!(s.escrowed, 10);
    assert!(s.conserved);
}

// Every refusal of a spend, with its status and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_refusals() {
    let h = Harness::new(1000).await;
    let q = fresh_key();
    let tokens = h.tokens(&[10, 10], &q).await;
    let ok = h.terms(20, 60_000);
    let cases: Vec<(EscrowTerms, &str)> = vec![
        (
            EscrowTerms {
                bank: [1; 32],
                ..ok.clone()
            },
            "wrong_bank",
        ),
        (
            EscrowTerms {
                log_origin: "other.log".into(),
                ..ok.clone()
            },
            "untrusted_log",
        ),
        (
            EscrowTerms {
                price: 0,
                ..ok.clone()
            },
            "bad_price",
        ),
        (
            EscrowTerms {
                price: 21,
                ..ok.clone()
            },
            "insufficient_tokens",
        ),
        (
            EscrowTerms {
                price: 15,
                ..ok.clone()
            },
            "bad_change",
        ),
        (
            EscrowTerms {
                expiration_ms: ok.expiration_ms + 2 * 86_400_000,
                ..ok.clone()
            },
            "bad_expiration",
        ),
        (
            EscrowTerms {
                merchant: h.customer.verifying_key().to_bytes(),
                ..ok.clone()
            },
            "unknown_merchant",
        ),
    ];
    for (terms, code) in cases {
        let r = h.spend(&q, &tokens, &terms, &[]).await;
        assert_eq!(refusal(r).1, code);
    }
    // Tokens registered to another Q.
    assert_eq!(
        refusal(h.spend(&fresh_key(), &tokens, &ok, &[]).await),
        (403, "not_registered".into())
    );
    // The same token twice.
    let twice = vec![tokens[0].clone(), tokens[0].clone()];
    assert_eq!(
        refusal(
            h.spend(
                &q,
                &twice,
                &EscrowTerms {
                    price: 20,
                    ..ok.clone()
                },
                &[]
            )
            .await
        )
        .1,
        "duplicate_token"
    );
    // Ids that do not match the tokens.
    let mut req = h.spend_request(&q, &tokens, &ok, &[]);
    req.tokens.swap(0, 1);
    req.tokens[0].serial[0] ^= 1;
    assert_eq!(refusal(h.client.spend(&req).await).1, "token_ids_mismatch");
    // A bad signature by q.
    let mut req = h.spend_request(&q, &tokens, &ok, &[]);
    req.signature[0] ^= 1;
    assert_eq!(refusal(h.client.spend(&req).await).1, "bad_signature");
    // A forged token signature.
    let mut forged = tokens.clone();
    forged[1].signature[10] ^= 1;
    assert_eq!(refusal(h.spend(&q, &forged, &ok, &[]).await).1, "bad_token");
    // Nothing was escrowed by any of these.
    h.spend(&q, &tokens, &ok, &[]).await.unwrap();
    let again = h.terms(20, 60_000);
    let mut req = h.spend_request(&q, &tokens, &again, &[]);
    req.spend.terms.tid = ok.tid;
    req.spend.terms.price = 10;
    req.signature = req.spend.sign(&q);
    assert_eq!(
        refusal(h.client.spend(&req).await),
        (409, "tid_conflict".into())
    );
    h.assert_conserved().await;
}

// After expiration the sweeper aborts at the log and Q is refunded without a proof; a customer-shown abort also refunds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_and_refund() {
    let h = Harness::new(1000).await;
    let q = fresh_key();
    let tokens = h.tokens(&[100], &q).await;
    let terms = h.terms(100, 5_000);
    h.spend(&q, &tokens, &terms, &[]).await.unwrap();

    let blinded = h.blinded(&[10; 10]);
    let (refund, sig) = refund_request(&h, &q, &terms, RefundReason::Abort, &blinded);
    let req = RefundRequest {
        refund: refund.clone(),
        signature: sig,
        abort: None,
    };
    assert_eq!(
        refusal(h.client.refund(&req).await),
        (400, "abort_proof_required".into())
    );
    // Not due yet: the sweeper leaves it.
    acd_bank::sweeper::sweep_once(&h.bank.state).await;
    assert_eq!(
        refusal(h.client.refund(&req).await).1,
        "abort_proof_required"
    );
    h.advance(5_000);
    acd_bank::sweeper::sweep_once(&h.bank.state).await;
    let escrow = h.bank.state.ledger().escrow(&terms.tid).unwrap().unwrap();
    assert_eq!(escrow.status, acd_bank::records::EscrowStatus::AbortLogged);
    // A refund of the wrong amount, or by another key.
    let (r, s) = refund_request(&h, &q, &terms, RefundReason::Abort, &h.blinded(&[10]));
    assert_eq!(
        refusal(
            h.client
                .refund(&RefundRequest {
                    refund: r,
                    signature: s,
                    abort: None
                })
                .await
        )
        .1,
        "bad_refund_amount"
    );
    let stranger = fresh_key();
    let (r, s) = refund_request(&h, &stranger, &terms, RefundReason::Abort, &blinded);
    assert_eq!(
        refusal(
            h.client
                .refund(&RefundRequest {
                    refund: r,
                    signature: s,
                    abort: None
                })
                .await
        ),
        (403, "not_escrow_customer".into())
    );
    let sigs = h.client.refund(&req).await.unwrap();
    assert_eq!(h.client.refund(&req).await.unwrap(), sigs);
    let fresh = h.finish(&blinded, &sigs.blind_signatures);
    assert_eq!(fresh.len(), 10);
    let (r, s) = refund_request(&h, &q, &terms, RefundReason::Abort, &h.blinded(&[100]));
    assert_eq!(
        refusal(
            h.client
                .refund(&RefundRequest {
                    refund: r,
                    signature: s,
                    abort: None
                })
                .await
        ),
        (409, "already_refunded".into())
    );

    // Second purchase: Q shows the abort itself (posting the bank's notice to the log).
    let tokens = h.tokens(&[10], &q).await;
    let terms2 = h.terms(10, 1_000);
    let resp2 = h.spend(&q, &tokens, &terms2, &[]).await.unwrap();
    h.advance(1_000);
    let abort = h
        .log
        .client
        .abort(&AbortRequest {
            tid: terms2.tid,
            merchant: terms2.merchant,
            expiration_ms: terms2.expiration_ms,
            bank: h.bank_key(),
            signature: resp2.notice_signature,
        })
        .await
        .unwrap();
    let blinded = h.blinded(&[1; 10]);
    let (r, s) = refund_request(&h, &q, &terms2, RefundReason::Abort, &blinded);
    let sigs = h
        .client
        .refund(&RefundRequest {
            refund: r,
            signature: s,
            abort: Some(abort.proof.clone()),
        })
        .await
        .unwrap();
    assert_eq!(sigs.blind_signatures.len(), 10);
    let s = h.admin.sums().await.unwrap();
    assert_eq!((s.escrowed, s.live_tokens), (0, 110));
    assert!(s.conserved);
}

// A commit the merchant never deposited is found by the sweeper at expiry and paid: payment on proof, not on silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_pays_a_commit_found_at_expiry() {
    let h = Harness::new(1000).await;
    let q = fresh_key();
    let tokens = h.tokens(&[100], &q).await;
    let terms = h.terms(100, 2_000);
    h.spend(&q, &tokens, &terms, &[]).await.unwrap();
    h.commit(&terms, [9; 32]).await;
    h.advance(2_000);
    acd_bank::sweeper::sweep_once(&h.bank.state).await;
    assert_eq!(h.balance(&h.merchant_key()).await, 100);
    let escrow = h.bank.state.ledger().escrow(&terms.tid).unwrap().unwrap();
    assert_eq!(escrow.status, acd_bank::records::EscrowStatus::Paid);
    h.assert_conserved().await;
}

struct Sale {
    terms: EscrowTerms,
    offer: SignedOffer,
    ciphertext: Vec<u8>,
    commit: EntryProof,
}

/// A sale whose goods are `goods` encrypted under `k`, with the contract's
/// plaintext hash of `promised` and `logged` committed to the log.
async fn sale(
    h: &Harness,
    q: &SigningKey,
    k: [u8; 32],
    logged: [u8; 32],
    goods_bytes: &[u8],
    promised: &[u8],
) -> Sale {
    let tokens = h.tokens(&[100], q).await;
    let terms = h.terms(100, 60_000);
    let ciphertext = goods::encrypt(&k, &terms.tid, goods_bytes).unwrap();
    let offer = Offer {
        bank: terms.bank,
        log_origin: terms.log_origin.clone(),
        tid: terms.tid,
        merchant: terms.merchant,
        customer: q.verifying_key().to_bytes(),
        expiration_ms: terms.expiration_ms,
        price: terms.price,
        description: "a song".into(),
        ciphertext_hash: goods::hash(&ciphertext),
        plaintext_hash: goods::hash(promised),
    };
    let signature = offer.sign(&h.merchant);
    h.spend(q, &tokens, &terms, &[]).await.unwrap();
    let commit = h.commit(&terms, logged).await;
    Sale {
        terms,
        offer: SignedOffer { offer, signature },
        ciphertext,
        commit,
    }
}

fn dispute_request(
    h: &Harness,
    q: &SigningKey,
    s: &Sale,
    blinded: &[BlindedToken],
) -> DisputeRequest {
    let (refund, signature) = refund_request(h, q, &s.terms, RefundReason::Dispute, blinded);
    DisputeRequest {
        refund,
        signature,
        offer: s.offer.clone(),
        ciphertext: s.ciphertext.clone(),
        commit: s.commit.clone(),
    }
}

// Disputes: a key that does not decrypt and goods with the wrong hash are upheld (after payment the merchant is debited); honest goods are rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispute_findings() {
    let h = Harness::new(1000).await;
    let q = fresh_key();
    let k = goods::fresh_key(&mut rand::rng());

    // The merchant logs another key, and is paid before the dispute.
    let bogus = sale(
        &h,
        &q,
        k,
        goods::fresh_key(&mut rand::rng()),
        b"song",
        b"song",
    )
    .await;
    h.client
        .deposit(&DepositRequest {
            proof: bogus.commit.clone(),
        })
        .await
        .unwrap();
    let blinded = h.blinded(&[100]);
    let req = dispute_request(&h, &q, &bogus, &blinded);
    let mut tampered = req.clone();
    tampered.ciphertext[0] ^= 1;
    assert_eq!(
        refusal(h.client.dispute(&tampered).await).1,
        "ciphertext_mismatch"
    );
    let d = h.client.dispute(&req).await.unwrap();
    assert_eq!(d.finding, DisputeFinding::KeyDoesNotDecrypt);
    assert_eq!(h.client.dispute(&req).await.unwrap(), d);
    h.finish(&blinded, &d.blind_signatures);
    assert_eq!(h.balance(&h.merchant_key()).await, 0);

    // The right key, other goods than promised; not yet deposited.
    let wrong = sale(&h, &q, k, k, b"noise", b"song").await;
    let d = h
        .client
        .dispute(&dispute_request(&h, &q, &wrong, &h.blinded(&[100])))
        .await
        .unwrap();
    assert_eq!(d.finding, DisputeFinding::WrongGoods);
    assert_eq!(
        refusal(
            h.client
                .deposit(&DepositRequest {
                    proof: wrong.commit.clone()
                })
                .await
        ),
        (409, "wrong_escrow_state".into())
    );

    // Honest goods: the dispute is rejected.
    let honest = sale(&h, &q, k, k, b"song", b"song").await;
    assert_eq!(
        refusal(
            h.client
                .dispute(&dispute_request(&h, &q, &honest, &h.blinded(&[100])))
                .await
        ),
        (422, "dispute_rejected".into())
    );
    // Another offer than the escrow's.
    let mut other = dispute_request(&h, &q, &honest, &h.blinded(&[100]));
    other.offer.offer.price = 99;
    other.offer.signature = other.offer.offer.sign(&h.merchant);
    assert_eq!(refusal(h.client.dispute(&other).await).1, "offer_mismatch");
    h.assert_conserved().await;
}

// The admin routes need the token; errors are JSON with codes, including 404, 405 and 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_http_errors() {
    let h = Harness::new(0).await;
    let anonymous = acd_client::bank::BankClient::new(&h.bank.url);
    assert_eq!(
        refusal(anonymous.sums().await),
        (401, "unauthorized".into())
    );
    let wrong = acd_client::bank::BankClient::new(&h.bank.url).with_admin_token("00");
    assert_eq!(refusal(wrong.sums().await), (401, "unauthorized".into()));
    assert_eq!(
        refusal(h.admin.account(&[3; 32]).await),
        (404, "unknown_account".into())
    );
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/nothing", h.bank.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{}/api/v1/withdraw", h.bank.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: acd_core::log_api::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error, "method_not_allowed");
    let r = http
        .post(format!("{}/api/v1/withdraw", h.bank.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = http
        .post(format!("{}/api/v1/withdraw", h.bank.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: acd_core::log_api::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error, "bad_json");
    // The dispute route takes large bodies: past the limit, it fails on content, not size.
    let r = http
        .post(format!("{}/api/v1/dispute", h.bank.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A credit repeated with its request id is applied once; the id cannot
    // be reused for another amount, and a credit without one is refused.
    let key = h.customer.verifying_key().to_bytes();
    let credit = acd_core::bank_api::Credit::new(&mut rand::rng(), key, 25);
    let first = h.admin.credit(&credit).await.unwrap();
    let again = h.admin.credit(&credit).await.unwrap();
    assert_eq!(first.balance, 25);
    assert_eq!(again.balance, 25);
    let mut other = credit.clone();
    other.amount = 26;
    assert_eq!(
        refusal(h.admin.credit(&other).await),
        (409, "request_id_reused".into())
    );
    let r = http
        .post(format!("{}/admin/v1/credit", h.bank.url))
        .bearer_auth(&h.bank.admin_token)
        .json(&serde_json::json!({"key": hex::encode(key), "amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let s = h.admin.sums().await.unwrap();
    assert_eq!(s.credited, 25);
    assert!(s.conserved);
}

// A checkpoint from a fork of the log (same key, other history) is refused as inconsistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_checkpoint_is_refused() {
    let h = Harness::new(1000).await;
    let q = fresh_key();
    let tokens = h.tokens(&[100], &q).await;
    let terms = h.terms(100, 60_000);
    h.spend(&q, &tokens, &terms, &[]).await.unwrap();
    let proof = h.commit(&terms, [1; 32]).await;
    h.client.deposit(&DepositRequest { proof }).await.unwrap();

    // A second log with the same key and origin, with a different first entry.
    let fork_dir = h.dir.path().join("fork");
    std::fs::create_dir_all(&fork_dir).unwrap();
    std::fs::copy(
        acd_log_server::keys::key_path(&h.dir.path().join("log")),
        acd_log_server::keys::key_path(&fork_dir),
    )
    .unwrap();
    let fork = start_log(&fork_dir, h.bank_key(), h.log_clock.clone()).await;
    assert_eq!(fork.vkey, h.log.vkey);
    let other_terms = h.terms(100, 60_000);
    let kc = acd_core::entry::KeyCommit {
        log_origin: ORIGIN.into(),
        tid: other_terms.tid,
        merchant: other_terms.merchant,
        expiration_ms: other_terms.expiration_ms,
        key: [2; 32],
    };
    let forked = fork
        .client
        .commit(&acd_core::log_api::CommitRequest {
            tid: other_terms.tid,
            merchant: other_terms.merchant,
            expiration_ms: other_terms.expiration_ms,
            key: [2; 32],
            signature: kc.sign(&h.merchant),
        })
        .await
        .unwrap();
    assert_eq!(
        refusal(
            h.client
                .deposit(&DepositRequest {
                    proof: forked.proof
                })
                .await
        ),
        (409, "inconsistent_checkpoint".into())
    );
}

// After a restart the bank has the same keys, denominations and books, and a withdrawal retry still does not debit twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_keys_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank");
    let clock = std::sync::Arc::new(acd_bank::clock::ManualClock::new(now_ms()));
    let bank = start_bank(&data, vec![], clock.clone()).await;
    let admin = acd_client::bank::BankClient::new(&bank.url).with_admin_token(&bank.admin_token);
    let info = admin.info().await.unwrap();
    let customer = fresh_key();
    let key = customer.verifying_key().to_bytes();
    admin
        .create_account(&acd_core::bank_api::CreateAccount {
            key,
            kind: acd_core::bank_api::AccountKind::Customer,
        })
        .await
        .unwrap();
    admin
        .credit(&acd_core::bank_api::Credit::new(&mut rand::rng(), key, 50))
        .await
        .unwrap();
    let d = acd_core::token::Denomination::from_spki(10, &info.denominations[1].spki).unwrap();
    let blinded = BlindedToken::new(&mut rand::rng(), &d).unwrap();
    let withdrawal = acd_core::purchase::Withdrawal {
        bank: info.bank,
        account: key,
        request_id: [5; 16],
        blinded: vec![blinded.request()],
    };
    let req = acd_core::bank_api::WithdrawRequest {
        signature: withdrawal.sign(&customer),
        withdrawal,
    };
    let first = admin.withdraw(&req).await.unwrap();
    bank.stop().await;

    let bank = start_bank(&data, vec![], clock).await;
    let admin = acd_client::bank::BankClient::new(&bank.url).with_admin_token(&bank.admin_token);
    assert_eq!(admin.info().await.unwrap(), info);
    assert_eq!(admin.account(&key).await.unwrap().balance, 40);
    assert_eq!(admin.withdraw(&req).await.unwrap(), first);
    assert_eq!(admin.account(&key).await.unwrap().balance, 40);
    blinded.finish(&d, &first.blind_signatures[0]).unwrap();
    assert!(admin.sums().await.unwrap().conserved);
    bank.stop().await;
}
