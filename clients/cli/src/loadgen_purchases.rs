//! `acd loadgen purchases`: complete anonymous purchases against a running
//! bank, merchant and log, with throughput and latency, and the crypto
//! that bounds them measured in the same run.
//!
//! A fresh customer account is created and credited through the bank's
//! admin API. Phase 1 withdraws one token per purchase: withdrawals/s
//! against this machine's raw RSA blind-signing rate. Only the bank's part
//! (request, debit, blind signature, durable write, answer) is timed; the
//! customers' blinding before it and unblinding and verification after it
//! run outside the window, as they would on the customers' own machines,
//! and every token is still verified. Phase 2 runs the purchases: register under a fresh Q,
//! offer (P1), spend (P2/P3), purchase (P4/P5 at the log, P6), and the
//! customer's checks: offer signature, ciphertext hash, escrow terms, the
//! commit entry's inclusion proof under a checkpoint signed by the log,
//! decryption and plaintext hash. A purchase counts only once all of that
//! verified. At the end the bank's conservation sums must hold and, once the
//! merchant's deposits land, nothing may stay in escrow. Requests failing
//! on the way are repeated ([`RetryPolicy::default`]): a server restarted
//! during a run costs time, not errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_client::RetryPolicy;
use acd_client::bank::BankClient;
use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{
    AccountKind, BankInfo, CreateAccount, Credit, OfferRequest, PurchaseRequest, RegisterRequest,
    SpendRequest, WithdrawRequest,
};
use acd_core::entry::LogEntry;
use acd_core::goods;
use acd_core::note::NoteVerifier;
use acd_core::proof::{WitnessPolicy, verify_entry_proof};
use acd_core::purchase::{Spend, Withdrawal};
use acd_core::token::{self, BlindedToken, Denomination, Token};
use anyhow::{Context, anyhow, bail};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

use crate::fresh_key;
use crate::loadgen::{lock, percentile};

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct PurchaseSpec {
    pub bank: String,
    pub admin_token: String,
    pub merchant: String,
    pub item: String,
    pub count: usize,
    pub concurrency: usize,
}

/// Throughput and latency of one phase.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    pub done: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub first_error: Option<String>,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn line(&self, what: &str) -> String {
        let mut s = format!(
            "{what:<12} {} in {:.2} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
            self.done,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.errors
        );
        if let Some(e) = &self.first_error {
            s.push_str(&format!(" (first: {e})"));
        }
        s
    }
}

/// Single-core cost of each primitive, measured here.
#[derive(Debug, Clone, Default)]
pub struct CryptoCosts {
    pub rsa_blind_sign: Duration,
    pub rsa_verify: Duration,
    pub ed25519_sign: Duration,
    pub ed25519_verify: Duration,
    pub aes_gcm_item: Duration,
    pub item_bytes: usize,
    /// Blind signatures/s with every core signing at once (one thread per
    /// core): the raw rate withdrawals are compared with.
    pub blind_signs_per_second: f64,
}

/// Per purchase, across all parties: 2 token verifications (register and
/// spend at the bank), signatures (receipt, offer, spend, escrow terms,
/// notice, key commit; checkpoints are shared by many entries and left
/// out), verifications (receipt, offer, spend, terms, key commit at the log,
/// the entry at the merchant's deposit and at the customer), and one
/// encryption plus one decryption of the goods.
pub const RSA_VERIFIES: u32 = 2;
pub const ED25519_SIGNS: u32 = 6;
pub const ED25519_VERIFIES: u32 = 7;

impl CryptoCosts {
    pub fn per_purchase(&self) -> Duration {
        self.rsa_verify * RSA_VERIFIES
            + self.ed25519_sign * ED25519_SIGNS
            + self.ed25519_verify * ED25519_VERIFIES
            + self.aes_gcm_item * 2
    }

    /// Purchases/s if the machine's cores did nothing but this crypto.
    pub fn purchase_limit(&self, cores: usize) -> f64 {
        cores as f64 / self.per_purchase().as_secs_f64().max(1e-12)
    }

    /// Raw blind signatures/s on all cores, as measured.
    pub fn blind_sign_limit(&self) -> f64 {
        self.blind_signs_per_second
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct PurchaseReport {
    pub withdrawals: Phase,
    pub purchases: Phase,
    pub crypto: CryptoCosts,
    pub cores: usize,
    pub conserved: bool,
    pub escrowed_after: u64,
}

impl std::fmt::Display for PurchaseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.crypto;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        writeln!(f, "{}", self.withdrawals.line("withdrawals"))?;
        writeln!(f, "{}", self.purchases.line("purchases"))?;
        writeln!(
            f,
            "crypto (one core): RSA-{} blind sign {:.0} us, RSA verify {:.1} us, ed25519 sign {:.1} us, verify {:.1} us, AES-256-GCM of the {} B item {:.1} us",
            8 * 256,
            us(c.rsa_blind_sign),
            us(c.rsa_verify),
            us(c.ed25519_sign),
            us(c.ed25519_verify),
            c.item_bytes,
            us(c.aes_gcm_item)
        )?;
        writeln!(
            f,
            "limits on {} cores: {:.0} blind signatures/s measured on all cores at once (withdrawals reached {:.0}%), {:.0} purchases/s from crypto alone (reached {:.0}%)",
            self.cores,
            c.blind_sign_limit(),
            100.0 * self.withdrawals.per_second() / c.blind_sign_limit().max(1e-9),
            c.purchase_limit(self.cores),
            100.0 * self.purchases.per_second() / c.purchase_limit(self.cores).max(1e-9)
        )?;
        write!(
            f,
            "bank sums conserved: {}; escrowed after the run: {}",
            self.conserved, self.escrowed_after
        )
    }
}

fn time_per<F: FnMut()>(n: u32, mut f: F) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

/// Blind signatures/s with `cores` threads signing at once.
fn blind_sign_rate(sk: &token::BlindSecretKey, blinded: &[u8], cores: usize) -> f64 {
    const SIGNS_PER_THREAD: usize = 200;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores.max(1) {
            scope.spawn(|| {
                for _ in 0..SIGNS_PER_THREAD {
                    let _ = token::blind_sign(sk, blinded);
                }
            });
        }
    });
    (cores.max(1) * SIGNS_PER_THREAD) as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Measures the primitives on one core, with this run's item size, and the
/// blind-signing rate of `cores` threads at once.
pub fn measure_crypto(item_bytes: usize, cores: usize) -> anyhow::Result<CryptoCosts> {
    let kp = token::generate_key(&mut rand::rng(), token::DEFAULT_RSA_BITS)?;
    let d = Denomination::new(1, kp.pk.clone())?;
    let b = BlindedToken::new(&mut rand::rng(), &d)?;
    let sig = token::blind_sign(&kp.sk, &b.blinded)?;
    let t = b.finish(&d, &sig)?;
    let rsa_blind_sign = time_per(100, || {
        let _ = token::blind_sign(&kp.sk, &b.blinded);
    });
    token::blind_sign(&kp.sk, &b.blinded)?;
    let blind_signs_per_second = blind_sign_rate(&kp.sk, &b.blinded, cores);
    let rsa_verify = time_per(1000, || {
        let _ = t.verify(&d);
    });
    let key = fresh_key();
    let msg = [7u8; 200];
    let s: Signature = key.sign(&msg);
    let ed25519_sign = time_per(5000, || {
        let _ = key.sign(&msg);
    });
    let vk = key.verifying_key();
    let ed25519_verify = time_per(5000, || {
        let _ = vk.verify_strict(&msg, &s);
    });
    let _ = vk.verify(&msg, &s);
    let k = goods::fresh_key(&mut rand::rng());
    let tid = acd_core::entry::Tid([1; 16]);
    let plain = vec![0u8; item_bytes];
    let aes_gcm_item = time_per(1000, || {
        let _ = goods::encrypt(&k, &tid, &plain);
    });
    Ok(CryptoCosts {
        rsa_blind_sign,
        rsa_verify,
        ed25519_sign,
        ed25519_verify,
        aes_gcm_item,
        item_bytes,
        blind_signs_per_second,
    })
}

struct Shared {
    bank: BankClient,
    merchant: MerchantClient,
    info: BankInfo,
    denomination: Denomination,
    account: SigningKey,
    item: String,
    price: u64,
}

/// A customer's side of a withdrawal before it is sent: a blinded token
/// and the signed request that carries it.
fn prepare_withdrawal(s: &Shared) -> anyhow::Result<(BlindedToken, WithdrawRequest)> {
    let b = BlindedToken::new(&mut rand::rng(), &s.denomination)?;
    let mut request_id = [0u8; 16];
    rand::fill(&mut request_id);
    let withdrawal = Withdrawal {
        bank: s.info.bank,
        account: s.account.verifying_key().to_bytes(),
        request_id,
        blinded: vec![b.request()],
    };
    let signature = withdrawal.sign(&s.account);
    Ok((
        b,
        WithdrawRequest {
            withdrawal,
            signature,
        },
    ))
}

/// The bank's part of a withdrawal: one request, one blind signature.
async fn withdraw_one(
    s: &Shared,
    (b, request): (BlindedToken, WithdrawRequest),
) -> anyhow::Result<(BlindedToken, Vec<u8>)> {
    let answer = s.bank.withdraw(&request).await?;
    let sig = answer
        .blind_signatures
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no blind signature"))?;
    Ok((b, sig))
}

async fn purchase_one(s: &Shared, t: Token) -> anyhow::Result<()> {
    let q = fresh_key();
    let customer = q.verifying_key().to_bytes();
    let receipt = s
        .bank
        .register(&RegisterRequest {
            token: t.clone(),
            customer,
        })
        .await?;
    receipt.receipt.verify(&receipt.signature)?;
    if receipt.receipt.token_id != t.id() || receipt.receipt.customer != customer {
        bail!("receipt for something else");
    }
    let offer = s
        .merchant
        .offer(&OfferRequest {
            item: s.item.clone(),
            customer,
        })
        .await?;
    let o = &offer.offer.offer;
    o.verify(&offer.offer.signature)?;
    if goods::hash(&offer.ciphertext) != o.ciphertext_hash
        || o.customer != customer
        || o.bank != s.info.bank
        || o.price != s.price
    {
        bail!("the offer does not match");
    }
    let spend = Spend {
        terms: o.terms(),
        customer,
        token_ids: vec![t.id()],
        change: vec![],
    };
    let signature = spend.sign(&q);
    let escrow = s
        .bank
        .spend(&SpendRequest {
            spend,
            tokens: vec![t],
            signature,
        })
        .await?;
    escrow.terms.verify(&escrow.terms_signature)?;
    if escrow.terms != o.terms() {
        bail!("escrowed terms differ from the offer");
    }
    let delivery = s
        .merchant
        .purchase(&PurchaseRequest {
            terms: escrow.terms,
            terms_signature: escrow.terms_signature,
        })
        .await?;
    let log = s
        .info
        .logs
        .iter()
        .find_map(|l| {
            NoteVerifier::from_vkey(&l.vkey)
                .ok()
                .filter(|v| v.name() == o.log_origin)
        })
        .ok_or_else(|| anyhow!("the offer's log is not one the bank trusts"))?;
    let v = verify_entry_proof(&delivery.commit, &log, &WitnessPolicy::none())?;
    match v.entry {
        LogEntry::Commit { tid, key, .. } if tid == o.tid && key == delivery.key => {}
        _ => bail!("the commit entry is not for this purchase's key"),
    }
    let plain = goods::decrypt(&delivery.key, &o.tid, &offer.ciphertext)?;
    if goods::hash(&plain) != o.plaintext_hash {
        bail!("the goods do not match the contract");
    }
    Ok(())
}

async fn run_phase<T, F, Fut>(
    label: &'static str,
    inputs: Vec<T>,
    concurrency: usize,
    f: F,
) -> (Phase, Vec<<Fut as std::future::Future>::Output>)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let progress = crate::progress::Progress::start(label, inputs.len() as u64);
    let queue = Arc::new(std::sync::Mutex::new(inputs));
    let f = Arc::new(f);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let queue = queue.clone();
        let f = f.clone();
        let done = progress.counter();
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let next = lock(&queue).pop();
                let Some(input) = next else { break };
                let t0 = Instant::now();
                let r = f(input).await;
                out.push((t0.elapsed(), r));
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            out
        }));
    }
    let mut results = Vec::new();
    for w in workers {
        if let Ok(out) = w.await {
            results.extend(out);
        }
    }
    let elapsed = start.elapsed();
    progress.finish();
    let mut latencies: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    latencies.sort_unstable();
    let phase = Phase {
        done: 0,
        errors: 0,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        first_error: None,
    };
    (phase, results.into_iter().map(|(_, r)| r).collect())
}

fn tally<T>(mut phase: Phase, results: Vec<anyhow::Result<T>>) -> (Phase, Vec<T>) {
    let mut ok = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => {
                phase.errors += 1;
                if phase.first_error.is_none() {
                    phase.first_error = Some(format!("{e:#}"));
                }
            }
        }
    }
    phase.done = ok.len();
    (phase, ok)
}

/// Runs both phases and the crypto measurement.
pub async fn run(spec: &PurchaseSpec) -> anyhow::Result<PurchaseReport> {
    let http = acd_client::http_client_builder(acd_client::REQUEST_TIMEOUT)
        .pool_max_idle_per_host(spec.concurrency.max(1))
        .build()?;
    // Every request of a run may be repeated (see `RetryPolicy`), so a
    // server that is down for a moment slows the run but does not fail it.
    let bank = BankClient::with_http(http.clone(), &spec.bank)
        .with_admin_token(&spec.admin_token)
        .with_retry(RetryPolicy::default());
    let merchant =
        MerchantClient::with_http(http, &spec.merchant).with_retry(RetryPolicy::default());
    let info = bank.info().await.context("bank info")?;
    let catalog = merchant.catalog().await.context("merchant catalog")?;
    let item = catalog
        .items
        .iter()
        .find(|i| i.id == spec.item)
        .ok_or_else(|| anyhow!("the merchant has no item {:?}", spec.item))?;
    let d = info
        .denominations
        .iter()
        .find(|d| d.value == item.price)
        .ok_or_else(|| {
            anyhow!(
                "the bank has no denomination of value {} (the item's price); pick an item priced at one denomination",
                item.price
            )
        })?;
    let denomination = Denomination::from_spki(d.value, &d.spki)?;
    let account = fresh_key();
    let key = account.verifying_key().to_bytes();
    bank.create_account(&CreateAccount {
        key,
        kind: AccountKind::Customer,
    })
    .await
    .context("creating the load account (is the admin token right?)")?;
    bank.credit(&Credit::new(
        &mut rand::rng(),
        key,
        item.price * spec.count as u64,
    ))
    .await?;
    let shared = Arc::new(Shared {
        bank,
        merchant,
        info,
        denomination,
        account,
        item: spec.item.clone(),
        price: item.price,
    });

    // The raw rate is measured before the run and again after it; the
    // higher of the two is the reference, so the ratio errs low.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kp = token::generate_key(&mut rand::rng(), token::DEFAULT_RSA_BITS)?;
    let blinded =
        BlindedToken::new(&mut rand::rng(), &Denomination::new(1, kp.pk.clone())?)?.blinded;
    let before =
        tokio::task::spawn_blocking(move || blind_sign_rate(&kp.sk, &blinded, cores)).await?;

    // Blinding, unblinding and checking the signature are the customers'
    // work, done on their own machines: here they run before and after the
    // timed phase, so that the bank has the cores while it is timed. Every
    // token is still unblinded and verified.
    let (s, count) = (shared.clone(), spec.count);
    let prepared = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|_| prepare_withdrawal(&s))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await??;
    let s = shared.clone();
    let (phase, results) = run_phase("withdrawals", prepared, spec.concurrency, move |request| {
        let s = s.clone();
        async move { withdraw_one(&s, request).await }
    })
    .await;
    let (mut withdrawals, signed) = tally(phase, results);
    let s = shared.clone();
    let finished = tokio::task::spawn_blocking(move || {
        signed
            .into_iter()
            .map(|(b, sig)| Ok(b.finish(&s.denomination, &sig)?))
            .collect::<Vec<anyhow::Result<Token>>>()
    })
    .await?;
    let (checked, tokens) = tally(Phase::default(), finished);
    withdrawals.done = checked.done;
    withdrawals.errors += checked.errors;
    withdrawals.first_error = withdrawals.first_error.or(checked.first_error);

    let s = shared.clone();
    let (phase, results) = run_phase("purchases", tokens, spec.concurrency, move |t| {
        let s = s.clone();
        async move { purchase_one(&s, t).await }
    })
    .await;
    let (purchases, _) = tally(phase, results);

    // The merchant deposits after delivering; give the last deposits time.
    let mut sums = shared.bank.sums().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sums.escrowed > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sums = shared.bank.sums().await?;
    }
    let item_bytes = {
        // The ciphertext is the plaintext plus the 16-byte tag.
        let probe = shared
            .merchant
            .offer(&OfferRequest {
                item: spec.item.clone(),
                customer: fresh_key().verifying_key().to_bytes(),
            })
            .await?;
        probe.ciphertext.len().saturating_sub(16)
    };
    let mut crypto =
        tokio::task::spawn_blocking(move || measure_crypto(item_bytes, cores)).await??;
    crypto.blind_signs_per_second = crypto.blind_signs_per_second.max(before);
    Ok(PurchaseReport {
        withdrawals,
        purchases,
        crypto,
        cores,
        conserved: sums.conserved,
        escrowed_after: sums.escrowed,
    })
}
