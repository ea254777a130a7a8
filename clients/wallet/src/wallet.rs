//! The wallet: its file, its bank, what it has seen of each log, and its
//! injected clock and randomness. The balance lives here; withdrawal in
//! [`crate::withdraw`], purchases in [`crate::purchase`] and the files
//! named after their steps.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_client::bank::BankClient;
use acd_client::log::LogClient;
use acd_client::{ClientError, RetryPolicy};
use acd_core::bank_api::BankInfo;
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::cosignature::CosignatureVerifier;
use acd_core::log_api::EntryProof;
use acd_core::note::NoteVerifier;
use acd_core::proof::{LogView, VerifiedEntry, WitnessPolicy, verify_entry_proof};
use acd_core::token::{BlindedToken, Denomination};
use ed25519_dalek::SigningKey;
use rand_core::Rng as _;

use crate::coins::decompose;
use crate::error::WalletError;
use crate::file::{DEFAULT_LOCK_WAIT, StoredToken, WalletFile, WalletLock};
use crate::report::{Balance, Step};

pub use acd_core::clock::{Clock, SystemClock};

/// Where the wallet draws its randomness (account key, q, withdrawal ids,
/// blinding): the operating system's generator unless a test injects a
/// seeded one with [`Wallet::with_rng`] or [`Wallet::create_with_rng`].
pub type Rng = Box<dyn rand_core::CryptoRng + Send>;

/// The operating system's generator.
pub fn os_rng() -> Rng {
    Box::new(rand_core::UnwrapErr(rand::rngs::SysRng))
}

/// Called with every step as it happens (the command line prints them).
pub type StepHook = Box<dyn Fn(&Step) + Send + Sync>;

/// How often the log is asked for an outcome while waiting.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A log the bank trusts, ready to verify.
#[derive(Debug, Clone)]
pub(crate) struct TrustedLog {
    pub verifier: NoteVerifier,
    pub url: String,
}

/// A customer wallet bound to its file. Every method that changes state
/// saves the file before returning, and before any request whose answer
/// could not be used without what it saved.
pub struct Wallet {
    /// Absolute, so that paths stored relative to the wallet's directory
    /// resolve from any working directory.
    pub(crate) path: PathBuf,
    /// Held while the wallet is open for writing; `None` when read-only.
    pub(crate) lock: Option<WalletLock>,
    pub(crate) data: WalletFile,
    pub(crate) http: reqwest::Client,
    pub(crate) bank: BankClient,
    pub(crate) denominations: Vec<Denomination>,
    pub(crate) logs: Vec<TrustedLog>,
    /// The bank's witness policy: the bank refunds and pays only on
    /// checkpoints that meet it.
    pub(crate) policy: WitnessPolicy,
    /// The caller's own policy, checked in addition.
    pub(crate) extra_policy: Option<WitnessPolicy>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) poll_interval: Duration,
    pub(crate) on_step: Option<StepHook>,
    pub(crate) rng: Mutex<Rng>,
    /// How the log's answers (outcome polls, proofs) are asked again after
    /// a transient failure.
    pub(crate) retry: RetryPolicy,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("path", &self.path)
            .field("bank_url", &self.data.bank_url)
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Creates a wallet file at `path` (which must not exist) for the bank
    /// at `bank_url`: fetches the bank's info and generates the account key.
    /// The bank's admin must then create the account
    /// ([`Wallet::account_key`]) and credit it.
    pub async fn create(path: impl AsRef<Path>, bank_url: &str) -> Result<Wallet, WalletError> {
        Wallet::create_with_rng(path, bank_url, os_rng()).await
    }

    /// [`Wallet::create`], drawing the account key and everything later
    /// from `rng`.
    pub async fn create_with_rng(
        path: impl AsRef<Path>,
        bank_url: &str,
        mut rng: Rng,
    ) -> Result<Wallet, WalletError> {
        let path = absolute(path.as_ref())?;
        let lock = WalletLock::acquire(&path, DEFAULT_LOCK_WAIT)?;
        if path.exists() {
            return Err(WalletError::Exists(path));
        }
        let http = acd_client::http_client();
        let info = BankClient::with_http(http.clone(), bank_url).info().await?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let data = WalletFile::new(seed, bank_url, info);
        let mut wallet = Wallet::from_file(&path, Some(lock), data, http)?.with_rng(rng);
        wallet.save()?;
        Ok(wallet)
    }

    /// Opens an existing wallet file for writing (no network), waiting up
    /// to [`DEFAULT_LOCK_WAIT`] for another command that has it open.
    pub fn open(path: impl AsRef<Path>) -> Result<Wallet, WalletError> {
        Wallet::open_waiting(path, DEFAULT_LOCK_WAIT)
    }

    /// [`Wallet::open`], waiting up to `wait` for the lock, then failing
    /// with [`WalletError::Busy`].
    pub fn open_waiting(path: impl AsRef<Path>, wait: Duration) -> Result<Wallet, WalletError> {
        let path = absolute(path.as_ref())?;
        let lock = WalletLock::acquire(&path, wait)?;
        let data = WalletFile::load(&path)?;
        Wallet::from_file(&path, Some(lock), data, acd_client::http_client())
    }

    /// Opens the wallet without the lock, to look at it (balance, proof
    /// bundles): saves sees whole files only, so no lock is needed to read,
    /// and every method that would save fails with
    /// [`WalletError::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Wallet, WalletError> {
        let path = absolute(path.as_ref())?;
        let data = WalletFile::load(&path)?;
        Wallet::from_file(&path, None, data, acd_client::http_client())
    }

    fn from_file(
        path: &Path,
        lock: Option<WalletLock>,
        data: WalletFile,
        http: reqwest::Client,
    ) -> Result<Wallet, WalletError> {
        let (denominations, logs, policy) = parse_info(&data.bank)?;
        Ok(Wallet {
            path: path.to_owned(),
            lock,
            bank: BankClient::with_http(http.clone(), &data.bank_url),
            http,
            data,
            denominations,
            logs,
            policy,
            extra_policy: None,
            clock: Arc::new(SystemClock),
            poll_interval: DEFAULT_POLL_INTERVAL,
            on_step: None,
            rng: Mutex::new(os_rng()),
            retry: RetryPolicy::default(),
        })
    }

    /// Uses `clock` for expirations.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Draws randomness from `rng` instead of the operating system.
    pub fn with_rng(mut self, rng: Rng) -> Self {
        self.rng = Mutex::new(rng);
        self
    }

    /// Fills `buf` from the injected generator.
    pub(crate) fn fill(&self, buf: &mut [u8]) {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.fill_bytes(buf);
    }

    /// 32 fresh random bytes: the seed of a signing key.
    pub(crate) fn fresh_seed(&self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        self.fill(&mut seed);
        seed
    }

    /// Requires `policy` of every checkpoint, in addition to the bank's
    /// witness policy.
    pub fn with_witness_policy(mut self, policy: WitnessPolicy) -> Self {
        self.extra_policy = Some(policy);
        self
    }

    /// How often to ask the log while waiting for an outcome.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How requests to the logs are repeated after transient failures
    /// ([`RetryPolicy::default`] unless set).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Calls `hook` with every purchase step as it happens.
    pub fn on_step(mut self, hook: StepHook) -> Self {
        self.on_step = Some(hook);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything stored, read-only.
    pub fn file(&self) -> &WalletFile {
        &self.data
    }

    pub fn bank_info(&self) -> &BankInfo {
        &self.data.bank
    }

    /// The account's public key: the account id the bank's admin registers.
    pub fn account_key(&self) -> [u8; 32] {
        self.signing_key().verifying_key().to_bytes()
    }

    pub(crate) fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.data.account_key)
    }

    pub(crate) fn save(&mut self) -> Result<(), WalletError> {
        if self.lock.is_none() {
            return Err(WalletError::ReadOnly(self.path.clone()));
        }
        self.data.stamp_ended(self.clock.now_ms());
        self.data.save(&self.path)
    }

    /// The directory holding the wallet file: stored paths are relative
    /// to it, so that any working directory finds them.
    pub fn dir(&self) -> PathBuf {
        crate::file::parent_dir(&self.path)
    }

    /// `path` as stored: relative to [`Wallet::dir`] when inside it.
    pub(crate) fn stored_path(&self, path: &Path) -> Result<PathBuf, WalletError> {
        let path = absolute(path)?;
        Ok(match path.strip_prefix(self.dir()) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_owned(),
            _ => path,
        })
    }

    /// A stored path as a path to open (absolute paths as they are).
    pub fn resolve(&self, stored: &Path) -> PathBuf {
        self.dir().join(stored)
    }

    pub(crate) fn emit(&self, step: Step) -> Step {
        if let Some(hook) = &self.on_step {
            hook(&step);
        }
        step
    }

    pub(crate) fn denomination(&self, id: &[u8; 32]) -> Result<&Denomination, WalletError> {
        self.denominations
            .iter()
            .find(|d| &d.id() == id)
            .ok_or_else(|| WalletError::BankInfo(format!("no denomination {}", hex::encode(id))))
    }

    pub(crate) fn denomination_values(&self) -> Vec<u64> {
        self.denominations.iter().map(|d| d.value).collect()
    }

    /// Fresh blinded tokens worth exactly `amount`.
    pub(crate) fn blind_amount(&self, amount: u64) -> Result<Vec<BlindedToken>, WalletError> {
        decompose(amount, &self.denomination_values())?
            .into_iter()
            .map(|v| {
                let d = self
                    .denominations
                    .iter()
                    .find(|d| d.value == v)
                    .ok_or_else(|| WalletError::BankInfo(format!("no denomination of {v}")))?;
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                Ok(BlindedToken::new(&mut **rng, d)?)
            })
            .collect()
    }

    /// Unblinds the bank's answers to `blinded` and verifies every token.
    pub(crate) fn unblind(
        &self,
        blinded: &[BlindedToken],
        signatures: &[Vec<u8>],
    ) -> Result<Vec<StoredToken>, WalletError> {
        if blinded.len() != signatures.len() {
            return Err(ClientError::Invalid(format!(
                "{} blind signatures for {} blinded tokens",
                signatures.len(),
                blinded.len()
            ))
            .into());
        }
        blinded
            .iter()
            .zip(signatures)
            .map(|(b, s)| {
                let d = self.denomination(&b.denomination)?;
                let token = b.finish(d, s)?;
                token.verify(d)?;
                Ok(StoredToken {
                    token,
                    value: d.value,
                    bound_to: None,
                })
            })
            .collect()
    }

    /// What the wallet holds.
    pub fn balance(&self) -> Balance {
        let mut by_value = std::collections::BTreeMap::<u64, usize>::new();
        for t in &self.data.tokens {
            *by_value.entry(t.value).or_default() += 1;
        }
        Balance {
            set_aside: self.data.set_aside.iter().map(|t| t.value).sum(),
            spendable: self.data.tokens.iter().map(|t| t.value).sum(),
            tokens: self.data.tokens.len(),
            bound: self
                .data
                .tokens
                .iter()
                .filter(|t| t.bound_to.is_some())
                .map(|t| t.value)
                .sum(),
            withdrawing: self.data.withdrawals.iter().map(|w| w.amount).sum(),
            in_purchases: self.data.purchases.iter().map(|p| p.at_stake()).sum(),
            by_value: by_value.into_iter().collect(),
        }
    }

    pub(crate) fn trusted_log(&self, origin: &str) -> Result<&TrustedLog, WalletError> {
        self.logs
            .iter()
            .find(|l| l.verifier.name() == origin)
            .ok_or_else(|| WalletError::UnknownLog(origin.to_owned()))
    }

    pub(crate) fn log_client(&self, origin: &str) -> Result<LogClient, WalletError> {
        let log = self.trusted_log(origin)?;
        Ok(
            LogClient::with_http(self.http.clone(), &log.url, log.verifier.clone())
                .with_retry(self.retry),
        )
    }

    /// Checks an entry proof from the log `origin` completely: signature,
    /// the bank's witness policy and the caller's, inclusion, and that its
    /// checkpoint lies on the history the wallet has seen of that log
    /// (fetching a consistency proof when needed). The newest checkpoint
    /// is remembered; the caller saves.
    pub async fn verify_log_proof(
        &mut self,
        proof: &EntryProof,
        origin: &str,
    ) -> Result<VerifiedEntry, WalletError> {
        let log = self.trusted_log(origin)?.clone();
        let log_error = |error| WalletError::Log {
            origin: origin.to_owned(),
            error,
        };
        let v = verify_entry_proof(proof, &log.verifier, &self.policy).map_err(log_error)?;
        if let Some(extra) = &self.extra_policy {
            extra.check(&v.checkpoint).map_err(log_error)?;
        }
        self.observe_checkpoint(&log, &v.checkpoint).await?;
        Ok(v)
    }

    /// Accepts `new` into the view of its log, or fails with the evidence.
    async fn observe_checkpoint(
        &mut self,
        log: &TrustedLog,
        new: &SignedCheckpoint,
    ) -> Result<(), WalletError> {
        let origin = log.verifier.name().to_owned();
        let old = match self.data.checkpoints.get(&origin) {
            Some(text) => Some(SignedCheckpoint::open(text, &log.verifier).map_err(|e| {
                WalletError::Format {
                    path: self.path.clone(),
                    reason: format!("stored checkpoint of {origin}: {e}"),
                }
            })?),
            None => None,
        };
        let mut view = LogView::new(old.clone());
        let proof = match view.proof_needed(new) {
            None => vec![],
            Some((from, to)) => {
                let p = self.log_client(&origin)?.consistency(from, to).await?;
                if (p.from, p.to) != (from, to) {
                    return Err(ClientError::Invalid(format!(
                        "asked for consistency {from} -> {to}, got {} -> {}",
                        p.from, p.to
                    ))
                    .into());
                }
                p.proof
            }
        };
        match view.accept(new, &proof) {
            Ok(true) => {
                self.data.checkpoints.insert(origin, new.to_text());
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(error) => Err(WalletError::LogInconsistent {
                origin,
                error,
                old: old.map(|c| c.to_text()).unwrap_or_default(),
                new: new.to_text(),
            }),
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, WalletError> {
    std::path::absolute(path).map_err(|e| WalletError::io(path, e))
}

/// Parses and checks the bank's published keys.
fn parse_info(
    info: &BankInfo,
) -> Result<(Vec<Denomination>, Vec<TrustedLog>, WitnessPolicy), WalletError> {
    let bad = |what: String| WalletError::BankInfo(what);
    let mut denominations = Vec::new();
    for d in &info.denominations {
        let parsed = Denomination::from_spki(d.value, &d.spki)
            .map_err(|e| bad(format!("denomination {}: {e}", d.value)))?;
        if parsed.id() != d.id {
            return Err(bad(format!(
                "denomination {}: id does not match its key",
                d.value
            )));
        }
        denominations.push(parsed);
    }
    let logs = info
        .logs
        .iter()
        .map(|l| {
            Ok(TrustedLog {
                verifier: NoteVerifier::from_vkey(&l.vkey)
                    .map_err(|e| bad(format!("log key {:?}: {e}", l.vkey)))?,
                url: l.url.trim_end_matches('/').to_owned(),
            })
        })
        .collect::<Result<Vec<_>, WalletError>>()?;
    let witnesses = info
        .witness_policy
        .witnesses
        .iter()
        .map(|w| {
            CosignatureVerifier::from_vkey(w).map_err(|e| bad(format!("witness key {w:?}: {e}")))
        })
        .collect::<Result<Vec<_>, WalletError>>()?;
    let policy = WitnessPolicy::new(info.witness_policy.threshold, witnesses);
    Ok((denominations, logs, policy))
}
