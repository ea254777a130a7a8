//! Hostile peers: a valid JSON request or answer mutated at one random
//! place, and the check every answer to a hostile request must pass.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

pub fn leaf() -> impl Strategy<Value = Value> {
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

pub fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
pub enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    AddField(Index, Value),
    ChangeChar(Index, Index),
    Truncate(Index),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<Index>().prop_map(Mutation::Remove),
        (any::<Index>(), leaf()).prop_map(|(i, v)| Mutation::AddField(i, v)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, c)| Mutation::ChangeChar(i, c)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// JSON pointers of every node below the root.
pub fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
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

pub fn apply(template: &Value, m: &Mutation) -> Vec<u8> {
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

/// Checks an answer to a hostile request: never a 500; a refusal is a 4xx
/// (or a 503) with a JSON body naming the error. Returns the error code, or
/// `None` for a success.
pub fn check_answer(status: u16, body: &str, what: &str) -> Result<Option<String>, TestCaseError> {
    prop_assert!(status != 500, "500 on {what}: {body}");
    if (200..300).contains(&status) {
        return Ok(None);
    }
    prop_assert!(
        (400..500).contains(&status) || status == 503,
        "{status} on {what}: {body}"
    );
    let v: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}) on {what}: {body}")))?;
    let code = v["error"].as_str().unwrap_or_default().to_owned();
    prop_assert!(!code.is_empty(), "no error code on {what}: {body}");
    prop_assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message on {what}: {body}"
    );
    Ok(Some(code))
}

/// The server's own metrics page at `url` (with the admin `token` if it
/// needs one), after checking that it counted no 500 among its answers.
pub async fn metrics_without_500(http: &reqwest::Client, url: &str, token: Option<&str>) -> String {
    let mut req = http.get(format!("{url}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let page = req.send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("status=\"500\""), "{page}");
    page
}
