//! Hostile clients over real loopback HTTP: valid requests of every kind
//! (withdraw, register, spend, deposit, refund, dispute, admin), each
//! mutated at one random place (a value replaced, a field dropped or added,
//! one character changed, the body cut short). The bank never answers 500,
//! every refusal is a JSON error naming the problem, and the books stay
//! conserved. (A mutation can leave a request valid, e.g. dropping a field
//! that defaults to the value it had: then it is served like the original.)
#![allow(clippy::unwrap_used)]

mod common;

use acd_core::bank_api::{Credit, DepositRequest, RefundRequest, RegisterRequest};
use acd_core::purchase::{Refund, RefundReason};
use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(16usize), Just(32), Just(64), 0usize..80]
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
            .prop_map(|b| Value::String(hex::encode(b))),
        "\\PC{0,20}".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    AddField(Index, Value),
    ChangeChar(Index, Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<Index>().prop_map(Mutation::Remove),
        (any::<Index>(), leaf()).prop_map(|(i, v)| Mutation::AddField(i, v)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, c)| Mutation::ChangeChar(i, c)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// JSON pointers of every node below the root.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

fn apply(template: &Value, m: &Mutation) -> Vec<u8> {
    let mut v = template.clone();
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match m {
        Mutation::Replace(i, value) => {
            if let Some(node) = v.pointer_mut(&pick(i)) {
                *node = value.clone();
            }
        }
        Mutation::Remove(i) => {
            let p = pick(i);
            let (parent, key) = p.rsplit_once('/').unwrap();
            match v.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(key);
                }
                Some(Value::Array(a)) => {
                    a.remove(key.parse::<usize>().unwrap());
                }
                _ => {}
            }
        }
        Mutation::AddField(i, value) => {
            let p = pick(i);
            let target = match v.pointer(&p) {
                Some(Value::Object(_)) => p,
                _ => String::new(),
            };
            if let Some(Value::Object(m)) = v.pointer_mut(&target) {
                m.insert("unexpected".into(), value.clone());
            }
        }
        Mutation::ChangeChar(i, c) => match v.pointer_mut(&pick(i)) {
            Some(Value::String(s)) if !s.is_empty() => {
                let mut chars: Vec<char> = s.chars().collect();
                let at = c.index(chars.len());
                chars[at] = match chars[at] {
                    '0' => '1',
                    'f' => 'F',
                    ch if ch.is_ascii_hexdigit() => '0',
                    _ => 'a',
                };
                *s = chars.into_iter().collect();
            }
            Some(Value::Number(n)) => {
                let bumped = n.as_u64().map_or(Value::from(-1), |n| Value::from(n ^ 1));
                if let Some(node) = v.pointer_mut(&pick(i)) {
                    *node = bumped;
                }
            }
            _ => {}
        },
        Mutation::Truncate(i) => {
            let bytes = serde_json::to_vec(&v).unwrap();
            let cut = i.index(bytes.len());
            return bytes[..cut].to_vec();
        }
    }
    serde_json::to_vec(&v).unwrap()
}

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
                body: value(&Credit::new(h.customer.verifying_key().to_bytes(), 5)),
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
                prop_assert!(
                    status.as_u16() != 500,
                    "500 on {} after {m:?}: {text}",
                    t.route
                );
                if status.is_success() {
                    *statuses
                        .borrow_mut()
                        .entry(format!("{} ok", t.route))
                        .or_default() += 1;
                    return Ok(());
                }
                prop_assert!(status.is_client_error(), "{status} on {}: {text}", t.route);
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
                let code = v["error"].as_str().unwrap_or_default().to_owned();
                prop_assert!(
                    !code.is_empty() && v["message"].as_str().is_some_and(|m| !m.is_empty())
                );
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
        eprintln!("{statuses:?}");
    });
}
