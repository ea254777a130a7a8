//! The harness of the bank's integration tests: the real log and the real
//! bank in-process on loopback, with manual clocks, and the customer's and
//! merchant's sides of the protocol.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use acd_bank::clock::{Clock, ManualClock};
use acd_bank::config::{BankConfig, TrustedLog};
use acd_bank::{Bank, BankState};
use acd_client::ClientError;
use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_core::bank_api::{
    AccountKind, BankInfo, CreateAccount, Credit, RegisterRequest, SpendRequest, SpendResponse,
    WithdrawRequest,
};
use acd_core::entry::{KeyCommit, Tid};
use acd_core::log_api::{CommitRequest, EntryProof};
use acd_core::purchase::{EscrowTerms, Spend, Withdrawal};
use acd_core::token::{BlindedToken, Denomination, Token};
use acd_log_server::Log;
use acd_log_server::config::LogConfig;
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

pub const VALUES: [u64; 3] = [1, 10, 100];
pub const ORIGIN: &str = "bank-test.acd.example/log";

/// Denomination keys made once per test binary and copied into every data
/// directory: RSA key generation is the slow part of a bank's first start.
pub fn seed_keys(data: &Path) {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for v in VALUES {
            acd_bank::keys::load_or_create_rsa_key(dir.path(), v, 2048).unwrap();
        }
        dir
    });
    std::fs::create_dir_all(data).unwrap();
    for v in VALUES {
        let name = acd_bank::keys::rsa_key_path(template.path(), v);
        let to = acd_bank::keys::rsa_key_path(data, v);
        if !to.exists() {
            std::fs::copy(&name, &to).unwrap();
        }
    }
}

pub fn fresh_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

pub fn fresh_tid() -> Tid {
    let mut t = [0u8; 16];
    rand::fill(&mut t);
    Tid(t)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub struct Running {
    pub url: String,
    pub state: Arc<BankState>,
    pub admin_token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops the bank and waits until its database is closed.
    pub async fn stop(self) {
        let Running {
            state, stop, task, ..
        } = self;
        drop(state);
        if let Some(s) = stop {
            let _ = s.send(());
        }
        if let Some(t) = task {
            t.await.unwrap().unwrap();
        }
    }
}

/// Starts a bank on `data` trusting `logs`.
pub async fn start_bank(data: &Path, logs: Vec<TrustedLog>, clock: Arc<ManualClock>) -> Running {
    seed_keys(data);
    let mut config = BankConfig::new(data.to_owned());
    // sled, or PostgreSQL when the suite runs on it (ACD_TEST_BACKEND).
    config.database = acd_testkit::pgdb::backend_database(data).map(|u| u.parse().unwrap());
    config.logs = logs;
    config.denominations = VALUES.to_vec();
    config.min_expiration_ms = 0;
    config.sweep_interval_ms = 3_600_000;
    let bank = Bank::open_with_clock(&config, clock).unwrap();
    let state = bank.state().clone();
    let admin_token = bank.admin_token().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bank.run(listener, async {
        let _ = stopped.await;
    }));
    Running {
        url,
        state,
        admin_token,
        stop: Some(stop),
        task: Some(task),
    }
}

pub struct LogServer {
    pub url: String,
    pub vkey: String,
    pub client: LogClient,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for LogServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the real log on `data`, trusting `bank` for aborts.
pub async fn start_log(
    data: &Path,
    bank: [u8; 32],
    clock: Arc<acd_log_server::clock::ManualClock>,
) -> LogServer {
    let mut config = LogConfig::new(data.to_owned(), ORIGIN.into());
    config.trusted_banks = vec![hex::encode(bank)];
    config.batch_window_us = 0;
    let log = Log::open(&config, Arc::new(clock)).unwrap();
    let vkey = log.state().verifier.vkey();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(log.run(listener, config.max_body_bytes, async {
        let _ = stopped.await;
    }));
    let client = LogClient::new(
        &url,
        acd_core::note::NoteVerifier::from_vkey(&vkey).unwrap(),
    );
    LogServer {
        url,
        vkey,
        client,
        stop: Some(stop),
    }
}

/// A bank, its log, a funded customer and a merchant.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub bank: Running,
    pub log: LogServer,
    pub client: BankClient,
    pub admin: BankClient,
    pub info: BankInfo,
    pub denominations: HashMap<u64, Denomination>,
    pub bank_clock: Arc<ManualClock>,
    pub log_clock: Arc<acd_log_server::clock::ManualClock>,
    pub customer: SigningKey,
    pub merchant: SigningKey,
}

impl Harness {
    pub async fn new(funds: u64) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let bank_data = dir.path().join("bank");
        let bank_key = acd_bank::keys::load_or_create_bank_key(&bank_data).unwrap();
        let now = now_ms();
        let bank_clock = Arc::new(ManualClock::new(now));
        let log_clock = Arc::new(acd_log_server::clock::ManualClock::new(now));
        let log = start_log(
            &dir.path().join("log"),
            bank_key.verifying_key().to_bytes(),
            log_clock.clone(),
        )
        .await;
        let bank = start_bank(
            &bank_data,
            vec![TrustedLog {
                vkey: log.vkey.clone(),
                url: log.url.clone(),
            }],
            bank_clock.clone(),
        )
        .await;
        let client = BankClient::new(&bank.url);
        let admin = BankClient::new(&bank.url).with_admin_token(&bank.admin_token);
        let info = client.info().await.unwrap();
        let denominations = info
            .denominations
            .iter()
            .map(|d| (d.value, Denomination::from_spki(d.value, &d.spki).unwrap()))
            .collect();
        let customer = fresh_key();
        let merchant = fresh_key();
        for (key, kind) in [
            (&customer, AccountKind::Customer),
            (&merchant, AccountKind::Merchant),
        ] {
            admin
                .create_account(&CreateAccount {
                    key: key.verifying_key().to_bytes(),
                    kind,
                })
                .await
                .unwrap();
        }
        if funds > 0 {
            admin
                .credit(&Credit::new(
                    &mut rand::rng(),
                    customer.verifying_key().to_bytes(),
                    funds,
                ))
                .await
                .unwrap();
        }
        Harness {
            dir,
            bank,
            log,
            client,
            admin,
            info,
            denominations,
            bank_clock,
            log_clock,
            customer,
            merchant,
        }
    }

    pub fn bank_key(&self) -> [u8; 32] {
        self.info.bank
    }

    pub fn merchant_key(&self) -> [u8; 32] {
        self.merchant.verifying_key().to_bytes()
    }

    pub fn blinded(&self, values: &[u64]) -> Vec<BlindedToken> {
        values
            .iter()
            .map(|v| BlindedToken::new(&mut rand::rng(), &self.denominations[v]).unwrap())
            .collect()
    }

    pub fn withdraw_request(
        &self,
        request_id: [u8; 16],
        blinded: &[BlindedToken],
    ) -> WithdrawRequest {
        let withdrawal = Withdrawal {
            bank: self.bank_key(),
            account: self.customer.verifying_key().to_bytes(),
            request_id,
            blinded: blinded.iter().map(|b| b.request()).collect(),
        };
        WithdrawRequest {
            signature: withdrawal.sign(&self.customer),
            withdrawal,
        }
    }

    pub fn finish(&self, blinded: &[BlindedToken], sigs: &[Vec<u8>]) -> Vec<Token> {
        blinded
            .iter()
            .zip(sigs)
            .map(|(b, s)| {
                let d = self
                    .denominations
                    .values()
                    .find(|d| d.id() == b.denomination)
                    .unwrap();
                b.finish(d, s).unwrap()
            })
            .collect()
    }

    /// Withdraws tokens of `values` and registers them to `q`.
    pub async fn tokens(&self, values: &[u64], q: &SigningKey) -> Vec<Token> {
        let blinded = self.blinded(values);
        let mut rid = [0u8; 16];
        rand::fill(&mut rid);
        let sigs = self
            .client
            .withdraw(&self.withdraw_request(rid, &blinded))
            .await
            .unwrap();
        let tokens = self.finish(&blinded, &sigs.blind_signatures);
        for t in &tokens {
            let r = self
                .client
                .register(&RegisterRequest {
                    token: t.clone(),
                    customer: q.verifying_key().to_bytes(),
                })
                .await
                .unwrap();
            r.receipt.verify(&r.signature).unwrap();
            assert_eq!(r.receipt.bank, self.bank_key());
        }
        tokens
    }

    pub fn terms(&self, price: u64, expires_in_ms: u64) -> EscrowTerms {
        EscrowTerms {
            bank: self.bank_key(),
            log_origin: ORIGIN.into(),
            tid: fresh_tid(),
            merchant: self.merchant_key(),
            expiration_ms: self.bank_clock.now_ms() + expires_in_ms,
            price,
        }
    }

    pub fn spend_request(
        &self,
        q: &SigningKey,
        tokens: &[Token],
        terms: &EscrowTerms,
        change: &[BlindedToken],
    ) -> SpendRequest {
        let spend = Spend {
            terms: terms.clone(),
            customer: q.verifying_key().to_bytes(),
            token_ids: tokens.iter().map(|t| t.id()).collect(),
            change: change.iter().map(|b| b.request()).collect(),
        };
        SpendRequest {
            signature: spend.sign(q),
            spend,
            tokens: tokens.to_vec(),
        }
    }

    pub async fn spend(
        &self,
        q: &SigningKey,
        tokens: &[Token],
        terms: &EscrowTerms,
        change: &[BlindedToken],
    ) -> Result<SpendResponse, ClientError> {
        self.client
            .spend(&self.spend_request(q, tokens, terms, change))
            .await
    }

    /// P4: the merchant commits `key` for `terms` at the log.
    pub async fn commit(&self, terms: &EscrowTerms, key: [u8; 32]) -> EntryProof {
        let kc = KeyCommit {
            log_origin: ORIGIN.into(),
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            key,
        };
        let req = CommitRequest {
            tid: terms.tid,
            merchant: terms.merchant,
            expiration_ms: terms.expiration_ms,
            key,
            signature: kc.sign(&self.merchant),
        };
        self.log.client.commit(&req).await.unwrap().proof
    }

    pub async fn balance(&self, key: &[u8; 32]) -> i64 {
        self.admin.account(key).await.unwrap().balance
    }

    pub async fn assert_conserved(&self) {
        let s = self.admin.sums().await.unwrap();
        assert!(s.conserved, "{s:?}");
    }

    /// Moves both clocks forward.
    pub fn advance(&self, ms: u64) {
        self.bank_clock.advance(ms);
        self.log_clock.advance(ms);
    }

    pub fn bank_data(&self) -> PathBuf {
        self.dir.path().join("bank")
    }
}

/// The refusal code of a failed call.
pub fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Refused { status, body }) => (status, body.error),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
