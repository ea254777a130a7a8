//! Hostile clients over real loopback HTTP: valid requests of every kind
//! (withdraw, register, spend, deposit, refund, dispute, admin), each
//! mutated at one random place (a value replaced, a field dropped or added,
//! one character changed, the body cut short). The bank never answers 500,
//! every refusal is a JSON error naming the problem, and the books stay
//! conserved. (A mutation can leave a request valid, e.g. dropping a field
//! that defaults to the value it had: then it is served like the original.)
#![allow(clippy::unwrap_used)]

mod common;
use acd_testkit::mutation;

use acd_core::bank_api::{Credit, DepositRequest, RefundRequest, RegisterRequest};
use acd_core::purchase::{Refund, RefundReason};
use common::*;
use mutation::{apply, check_answer, metrics_without_500, mutation};
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

struct Template {
    route: &'static str,
    admin: bool,
    body: Value,
}

fn value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

#[test]
fn mutated_requests_are_refused_cleanly() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = Harness::new(1000).await;
        let q = fresh_key();
        let spent = h.tokens(&[100, 10], &q).await;
        let unregistered = {
            let blinded = h.blinded(&[10]);
            let sigs = h
                .client
                .withdraw(&h.withdraw_request([9; 16], &blinded))
                .await
                .unwrap();
            h.finish(&blinded, &sigs.blind_signatures)
        };
        let escrowed = h.tokens(&[1], &q).await;
        // One escrow to pay, one to refund; both templates refer to them.
        let paid_terms = h.terms(110, 60_000);
        h.spend(&q, &spent, &paid_terms, &[]).await.unwrap();
        let proof = h.commit(&paid_terms, [7; 32]).await;
        let open_terms = h.terms(1, 60_000);
        let refund = Refund {
            bank: h.bank_key(),
            tid: open_terms.tid,
            reason: RefundReason::Abort,
            customer: q.verifying_key().to_bytes(),
            blinded: h.blinded(&[1]).iter().map(|b| b.request()).collect(),
        };
        let templates = [
            Template {
                route: "/api/v1/withdraw",
                admin: false,
                body: value(&h.withdraw_request([3; 16], &h.blinded(&[10, 1]))),
            },
            Template {
                route: "/api/v1/register",
                admin: false,
                body: value(&RegisterRequest {
                    token: unregistered[0].clone(),
                    customer: q.verifying_key().to_bytes(),
                }),
            },
            Template {
                route: "/api/v1/spend",
                admin: false,
                body: value(&h.spend_request(&q, &escrowed, &open_terms, &[])),
            },
            Template {
                route: "/api/v1/deposit",
                admin: false,
                body: value(&DepositRequest { proof }),
            },
            Template {
                route: "/api/v1/refund",
                admin: false,
                body: value(&RefundRequest {
                    signature: refund.sign(&q),
                    refund: refund.clone(),
                    abort: None,
                }),
            },
            Template {
                route: "/admin/v1/credit",
                admin: true,
                body: value(&Credit::new(
                    &mut rand::rng(),
                    h.customer.verifying_key().to_bytes(),
                    5,
                )),
            },
        ];
        let http = reqwest::Client::new();
        let token = h.bank.admin_token.clone();
        let url = h.bank.url.clone();
        let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
        let mut runner = TestRunner::new(Config {
            cases: 1000,
            failure_persistence: None,
            ..Config::default()
        });
        let cases = (0..templates.len(), mutation());
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::block_in_place(|| {
            runner.run(&cases, |(t, m)| {
                let t = &templates[t];
                let body = apply(&t.body, &m);
                let mut req = http
                    .post(format!("{url}{}", t.route))
                    .header("content-type", "application/json")
                    .body(body);
                if t.admin {
                    req = req.bearer_auth(&token);
                }
                let (status, text) = handle.block_on(async {
                    let r = req.send().await.unwrap();
                    (r.status(), r.text().await.unwrap())
                });
                let what = format!("{} after {m:?}", t.route);
                let code = check_answer(status.as_u16(), &text, &what)?
                    .unwrap_or_else(|| format!("{} ok", t.route));
                *statuses.borrow_mut().entry(code).or_default() += 1;
                Ok(())
            })
        });
        result.unwrap();
        // The mutations reached the checks behind the JSON shape.
        let statuses = statuses.into_inner();
        for deep in ["bad_signature", "unknown_account"] {
            assert!(statuses.contains_key(deep), "{statuses:?}");
        }
        let s = h.admin.sums().await.unwrap();
        assert!(s.conserved, "{s:?}");
        // The bank's own count agrees: not one 500, and its books balance.
        // /metrics is open and shows no money; the sums are the admin's.
        let page = metrics_without_500(&http, &url, None).await;
        assert!(
            page.contains("acd_bank_ledger_ops_total{op=\"withdraw\",result=\"accepted\"}"),
            "{page}"
        );
        assert!(page.contains("acd_bank_build_info{"), "{page}");
        assert!(!page.contains("acd_bank_credited"), "{page}");
        let admin = http
            .get(format!("{url}/admin/v1/metrics"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), 200);
        let admin = admin.text().await.unwrap();
        assert!(admin.contains("\nacd_bank_conserved 1\n"), "{admin}");
        assert!(admin.contains("acd_bank_ledger_ops_total{"), "{admin}");
        let anonymous = http
            .get(format!("{url}/admin/v1/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    });
}
