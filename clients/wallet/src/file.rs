//! The wallet file: one JSON document holding everything the customer must
//! not lose, and its crash-safe storage.
//!
//! Every state change is saved before the message that depends on it is
//! sent (blinding secrets before a withdrawal or a spend, the chosen tokens
//! before they are registered), so a crash at any point leaves a file from
//! which [`crate::Wallet::resume`] can repeat the same, idempotent, request.
//!
//! A save writes a temporary file of its own in the same directory (mode
//! 0600), syncs it, renames it over the wallet and syncs the directory: a
//! reader sees either the old file or the new one, never a mixture.
//!
//! One command at a time changes a wallet: [`WalletLock`] is an advisory
//! lock on the sidecar file `.NAME.lock`, held for as long as the wallet is
//! open for writing, so that two commands never both take the same token or
//! overwrite each other's saves.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acd_core::bank_api::{BankInfo, DisputeFinding, SignedOffer, SignedReceipt, SpendResponse};
use acd_core::entry::Tid;
use acd_core::log_api::{EntryProof, hex_array};
use acd_core::purchase::RefundReason;
use acd_core::token::{BlindedToken, Token};
use serde::{Deserialize, Serialize};

use crate::error::WalletError;

/// The `kind` of a wallet file.
pub const WALLET_KIND: &str = "acd/v1/wallet";

/// The whole wallet, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletFile {
    /// Always [`WALLET_KIND`].
    pub kind: String,
    /// Seed of the account's ed25519 signing key (identified withdrawals);
    /// the account id is its public key.
    #[serde(with = "hex_array")]
    pub account_key: [u8; 32],
    pub bank_url: String,
    /// The bank's info as fetched when the wallet was created: its key,
    /// denominations, trusted logs and witness policy.
    pub bank: BankInfo,
    /// Spendable tokens.
    pub tokens: Vec<StoredToken>,
    /// Tokens the bank reports spent or registered elsewhere (a wallet
    /// restored from a backup holds tokens it spent since): never picked
    /// again, not in the balance, kept as the record of what happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<SetAsideToken>,
    /// Withdrawals sent (or about to be sent) and not yet unblinded.
    pub withdrawals: Vec<PendingWithdrawal>,
    pub purchases: Vec<PurchaseRecord>,
    /// The latest verified checkpoint (signed note text) of each log, by
    /// origin: every later one must be consistent with it.
    pub checkpoints: BTreeMap<String, String>,
    /// The id of the next purchase record.
    pub next_purchase: u64,
}

/// A token with its value and, if a purchase registered it to a key and
/// then stopped before spending, the secret of that key (the bank accepts
/// the token only with a signature by it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredToken {
    pub token: Token,
    pub value: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub bound_to: Option<[u8; 32]>,
}

/// A token taken out of the wallet because the bank refused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAsideToken {
    pub token: Token,
    pub value: u64,
    /// The bank's error code (`token_spent`, `already_registered`).
    pub reason: String,
}

/// A withdrawal whose blinding secrets are on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingWithdrawal {
    #[serde(with = "hex_array")]
    pub request_id: [u8; 16],
    pub blinded: Vec<BlindedToken>,
    pub amount: u64,
}

/// Where a purchase stands. Each state names what is on disk and so what
/// the next step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseState {
    /// Tokens taken out of the wallet and a key (q, Q) chosen; receipts
    /// being collected.
    Registering,
    /// Every token is registered to Q; next the offer (P1).
    Registered,
    /// The offer was checked and the ciphertext stored; next the change's
    /// blinding secrets are saved.
    Offered,
    /// The change's secrets are saved; the spend (P2) may be in flight.
    Spending,
    /// The bank escrowed the price (P3); next the merchant (P4 to P6).
    Escrowed,
    /// The merchant did not deliver: asking the log for the outcome (Q1/Q2),
    /// and for an abort after the expiration.
    AwaitingOutcome,
    /// A refund's blinding secrets are saved; the request may be in flight.
    Refunding,
    /// Goods delivered and checked, but writing them to `out_path` failed:
    /// the commit (the key) and the ciphertext are kept, and
    /// `resume --out PATH` writes them.
    Unwritten,
    /// Goods delivered and checked. Final.
    Delivered,
    /// The escrowed price came back as fresh tokens. Final.
    Refunded,
    /// Stopped before anything was spent; the tokens went back into the
    /// wallet (bound to Q). Final.
    Cancelled,
}

impl PurchaseState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PurchaseState::Delivered | PurchaseState::Refunded | PurchaseState::Cancelled
        )
    }

    /// Whether the bank may hold (or be about to hold) the tokens.
    pub fn money_at_bank(self) -> bool {
        matches!(
            self,
            PurchaseState::Spending
                | PurchaseState::Escrowed
                | PurchaseState::AwaitingOutcome
                | PurchaseState::Refunding
        )
    }
}

impl std::fmt::Display for PurchaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// A token paid into a purchase, with the bank's receipt once registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseToken {
    pub token: Token,
    pub value: u64,
    #[serde(default)]
    pub receipt: Option<SignedReceipt>,
}

/// A refund whose blinding secrets are on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRefund {
    pub reason: RefundReason,
    pub blinded: Vec<BlindedToken>,
    /// What was wrong with the goods (disputes).
    #[serde(default)]
    pub finding: Option<DisputeFinding>,
}

/// One purchase, from the choice of tokens to its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRecord {
    /// Local id (the TID is known only after the offer).
    pub id: u64,
    pub merchant_url: String,
    pub item: String,
    /// Where the goods are written: relative to the wallet file's
    /// directory, or absolute when outside it.
    pub out_path: PathBuf,
    /// The merchant's key and the price, as the catalog named them; the
    /// offer must match both.
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    pub price: u64,
    /// Seed of q, the purchase's signing key.
    #[serde(with = "hex_array")]
    pub q: [u8; 32],
    /// Q, the public key the tokens are registered to.
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
    pub tokens: Vec<PurchaseToken>,
    #[serde(default)]
    pub offer: Option<SignedOffer>,
    /// The encrypted goods as received with the offer (a path relative to
    /// the wallet file's directory; older files hold other paths).
    #[serde(default)]
    pub ciphertext: Option<PathBuf>,
    /// Blinding secrets of the change, saved before the spend is sent.
    #[serde(default)]
    pub change: Vec<BlindedToken>,
    #[serde(default)]
    pub spend: Option<SpendResponse>,
    /// The commit entry with its proof, once verified.
    #[serde(default)]
    pub commit: Option<EntryProof>,
    /// The abort entry with its proof, once verified.
    #[serde(default)]
    pub abort: Option<EntryProof>,
    #[serde(default)]
    pub refund: Option<PendingRefund>,
    pub state: PurchaseState,
    /// Why the purchase was cancelled or left the happy path.
    #[serde(default)]
    pub note: Option<String>,
    /// When the purchase began (ms since the Unix epoch; absent in older
    /// wallets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// When the wallet first saved it in a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
}

impl PurchaseRecord {
    pub fn tid(&self) -> Option<Tid> {
        self.offer.as_ref().map(|o| o.offer.tid)
    }

    pub fn total(&self) -> u64 {
        self.tokens.iter().map(|t| t.value).sum()
    }

    /// What the purchase holds of the customer's money: every token paid
    /// in until the bank has escrowed the price, then only the price (the
    /// change is back among the wallet's tokens), and nothing once the goods
    /// are paid for and delivered or the purchase is final.
    pub fn at_stake(&self) -> u64 {
        match self.state {
            PurchaseState::Registering
            | PurchaseState::Registered
            | PurchaseState::Offered
            | PurchaseState::Spending => self.total(),
            PurchaseState::Escrowed | PurchaseState::AwaitingOutcome | PurchaseState::Refunding => {
                self.price
            }
            PurchaseState::Unwritten
            | PurchaseState::Delivered
            | PurchaseState::Refunded
            | PurchaseState::Cancelled => 0,
        }
    }
}

impl WalletFile {
    pub fn new(account_key: [u8; 32], bank_url: &str, bank: BankInfo) -> Self {
        WalletFile {
            kind: WALLET_KIND.to_owned(),
            account_key,
            bank_url: bank_url.to_owned(),
            bank,
            tokens: vec![],
            set_aside: vec![],
            withdrawals: vec![],
            purchases: vec![],
            checkpoints: BTreeMap::new(),
            next_purchase: 1,
        }
    }

    /// Reads and parses a wallet file.
    pub fn load(path: &Path) -> Result<WalletFile, WalletError> {
        let bytes = std::fs::read(path).map_err(|e| WalletError::io(path, e))?;
        let file: WalletFile = serde_json::from_slice(&bytes).map_err(|e| WalletError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if file.kind != WALLET_KIND {
            return Err(WalletError::Format {
                path: path.to_owned(),
                reason: format!("kind {:?} is not {WALLET_KIND:?}", file.kind),
            });
        }
        Ok(file)
    }

    /// Saves atomically and durably (see the module doc), keeping the
    /// version it replaces as [`backup_path`].
    pub fn save(&self, path: &Path) -> Result<(), WalletError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| WalletError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        keep_backup(path)?;
        write_atomic(path, &bytes)
    }

    /// Marks the time every purchase first reached a final state.
    pub fn stamp_ended(&mut self, now_ms: u64) {
        for p in &mut self.purchases {
            if p.state.is_final() && p.ended_ms.is_none() {
                p.ended_ms = Some(now_ms);
            }
        }
    }

    pub fn purchase(&self, id: u64) -> Option<&PurchaseRecord> {
        self.purchases.iter().find(|p| p.id == id)
    }

    pub fn purchase_mut(&mut self, id: u64) -> Option<&mut PurchaseRecord> {
        self.purchases.iter_mut().find(|p| p.id == id)
    }

    pub fn purchase_by_tid(&self, tid: &Tid) -> Option<&PurchaseRecord> {
        self.purchases
            .iter()
            .find(|p| p.tid().as_ref() == Some(tid))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The name older versions gave the temporary file of a save; a save now
/// writes a temporary file of its own, `.NAME.<random>.tmp`.
pub fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}.tmp", file_name(path)))
}

/// The previous version of the wallet at `path`, `NAME.bak`: each save
/// keeps the file it replaces there, so that a wallet deleted or damaged by
/// hand still has its tokens one save back (a restored wallet sets aside,
/// on first use, the tokens it spent since; see [`WalletFile::set_aside`]).
pub fn backup_path(path: &Path) -> PathBuf {
    path.with_file_name(format!("{}.bak", file_name(path)))
}

/// Makes the current wallet file at `path` (if any) its backup. A hard link
/// costs no copy and no sync: the bytes are the ones already made durable,
/// and the rename that follows leaves the old inode to the backup alone.
/// Where links are not supported the file is copied.
fn keep_backup(path: &Path) -> Result<(), WalletError> {
    if !path.exists() {
        return Ok(());
    }
    let backup = backup_path(path);
    match std::fs::remove_file(&backup) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(WalletError::io(&backup, e)),
    }
    if std::fs::hard_link(path, &backup).is_err() {
        let bytes = std::fs::read(path).map_err(|e| WalletError::io(path, e))?;
        write_atomic(&backup, &bytes)?;
    }
    Ok(())
}

/// The sidecar file whose lock guards the wallet at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}.lock", file_name(path)))
}

/// How long opening a wallet waits for another command to release it.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting open tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// The exclusive advisory lock of one wallet file, released when dropped
/// (or when the process ends, however it ends). The lock file stays: removing
/// it would let two commands lock two different files.
#[derive(Debug)]
pub struct WalletLock {
    _file: File,
}

impl WalletLock {
    /// Locks the wallet at `path`, waiting up to `wait` for another command
    /// to finish, then fails with [`WalletError::Busy`].
    pub fn acquire(path: &Path, wait: Duration) -> Result<WalletLock, WalletError> {
        let lock = lock_path(path);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&lock).map_err(|e| WalletError::io(&lock, e))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WalletLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(WalletError::io(&lock, e)),
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(WalletError::Busy {
                    path: path.to_owned(),
                    waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                });
            }
            // Opening is synchronous and short; a blocking pause keeps it so.
            std::thread::sleep(LOCK_POLL.min(wait - waited));
        }
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or
/// the new contents: a temp file of its own (0600, a unique name) in the
/// same directory, fsync, rename, fsync of the directory. A failed write
/// removes its temp file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WalletError> {
    let dir = parent_dir(path);
    // tempfile creates the file with mode 0600 and a name nobody else has.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name(path)))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| WalletError::io(path, e))?;
    let tmp_path = tmp.path().to_owned();
    tmp.write_all(bytes)
        .map_err(|e| WalletError::io(&tmp_path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| WalletError::io(&tmp_path, e))?;
    tmp.persist(path)
        .map_err(|e| WalletError::io(path, e.error))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalletError::io(&dir, e))?;
    Ok(())
}

/// Serde for an optional 32-byte secret as hex.
mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|_| serde::de::Error::custom("expected 64 hex digits"))?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_core::bank_api::PolicyInfo;

    fn info() -> BankInfo {
        BankInfo {
            bank: [7; 32],
            denominations: vec![],
            logs: vec![],
            max_expiration_ms: 3_600_000,
            min_expiration_ms: 0,
            witness_policy: PolicyInfo::default(),
        }
    }

    fn sample() -> WalletFile {
        let mut w = WalletFile::new([1; 32], "http://bank.test", info());
        w.tokens.push(StoredToken {
            token: Token {
                denomination: [2; 32],
                serial: [3; 32],
                randomizer: [4; 32],
                signature: vec![5; 256],
            },
            value: 8,
            bound_to: Some([9; 32]),
        });
        w.checkpoints
            .insert("log.test".into(), "log.test\n1\nAAAA\n".into());
        w
    }

    #[test]
    fn save_and_reload_round_trip() {
        // A saved wallet reloads equal, with mode 0600 and no temp file left.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        let w = sample();
        w.save(&path).expect("save");
        assert_eq!(WalletFile::load(&path).expect("load"), w);
        assert!(!temp_path(&path).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn each_save_keeps_the_previous_version() {
        // The second save leaves the first version as NAME.bak, which opens
        // as a wallet (with the tokens it had) and has mode 0600 like it.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        let first = sample();
        first.save(&path).expect("save");
        assert!(!backup_path(&path).exists(), "nothing to back up yet");
        let mut second = sample();
        second.tokens.clear();
        second.save(&path).expect("save");
        assert_eq!(WalletFile::load(&backup_path(&path)).expect("bak"), first);
        assert_eq!(WalletFile::load(&path).expect("load"), second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(backup_path(&path))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Losing the wallet file loses one save, not the tokens.
        std::fs::remove_file(&path).expect("lose it");
        std::fs::copy(backup_path(&path), &path).expect("restore");
        assert_eq!(WalletFile::load(&path).expect("load").tokens.len(), 1);
    }

    #[test]
    fn a_crash_before_the_rename_keeps_the_old_file() {
        // A half-written temp file (a crash mid-save) does not affect the
        // wallet, and the next save replaces it.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        let mut w = sample();
        w.save(&path).expect("save");
        std::fs::write(temp_path(&path), b"{\"kind\": \"acd/v1/wa").expect("torn");
        assert_eq!(WalletFile::load(&path).expect("load"), w);
        w.next_purchase = 5;
        w.save(&path).expect("save over the torn temp file");
        assert_eq!(WalletFile::load(&path).expect("load").next_purchase, 5);
    }

    #[test]
    fn other_files_are_refused() {
        // Files of another kind, or with unknown fields, are not wallets.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        let mut w = sample();
        w.kind = "acd/v1/proof-bundle".into();
        w.save(&path).expect("save");
        assert!(matches!(
            WalletFile::load(&path),
            Err(WalletError::Format { .. })
        ));
        let mut v = serde_json::to_value(sample()).expect("json");
        v["extra"] = 1.into();
        std::fs::write(&path, v.to_string()).expect("write");
        assert!(matches!(
            WalletFile::load(&path),
            Err(WalletError::Format { .. })
        ));
    }

    #[test]
    fn one_lock_at_a_time() {
        // A second lock on the same wallet waits, then is refused as busy;
        // once the first is released it is granted.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        let first = WalletLock::acquire(&path, Duration::ZERO).expect("first lock");
        let second = WalletLock::acquire(&path, Duration::from_millis(100));
        assert!(
            matches!(second, Err(WalletError::Busy { .. })),
            "{second:?}"
        );
        drop(first);
        WalletLock::acquire(&path, Duration::ZERO).expect("free again");
    }

    #[test]
    fn saves_use_temp_files_of_their_own() {
        // Two saves of one wallet from two threads never meet in one temp
        // file, and none is left behind.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20 {
                        sample().save(&path).expect("save");
                    }
                });
            }
        });
        assert_eq!(WalletFile::load(&path).expect("load"), sample());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(
            names,
            vec![
                std::ffi::OsString::from("w.json"),
                std::ffi::OsString::from("w.json.bak")
            ]
        );
    }

    #[test]
    fn a_purchase_holds_its_tokens_then_its_price_then_nothing() {
        // 15 paid in for a price of 10: all 15 are at stake until the bank
        // escrows, then 10 (the 5 of change are back among the tokens, and
        // must not be counted twice), then nothing once paid or final.
        let mut w = sample();
        let token = w.tokens[0].token.clone();
        let mut r = PurchaseRecord {
            id: 1,
            merchant_url: "http://m.test".into(),
            item: "x".into(),
            out_path: "x".into(),
            merchant: [0; 32],
            price: 10,
            q: [0; 32],
            customer: [0; 32],
            tokens: [10, 5]
                .map(|value| PurchaseToken {
                    token: token.clone(),
                    value,
                    receipt: None,
                })
                .to_vec(),
            offer: None,
            ciphertext: None,
            change: vec![],
            spend: None,
            commit: None,
            abort: None,
            refund: None,
            state: PurchaseState::Registering,
            note: None,
            started_ms: Some(1),
            ended_ms: None,
        };
        use PurchaseState::*;
        for (state, held) in [
            (Registering, 15),
            (Registered, 15),
            (Offered, 15),
            (Spending, 15),
            (Escrowed, 10),
            (AwaitingOutcome, 10),
            (Refunding, 10),
            (Unwritten, 0),
            (Delivered, 0),
            (Refunded, 0),
            (Cancelled, 0),
        ] {
            r.state = state;
            assert_eq!(r.at_stake(), held, "{state}");
        }
        // The end is stamped once, when a save first sees a final state.
        r.state = Escrowed;
        w.purchases.push(r);
        w.stamp_ended(5);
        assert_eq!(w.purchases[0].ended_ms, None);
        w.purchases[0].state = Delivered;
        w.stamp_ended(6);
        w.stamp_ended(7);
        assert_eq!(w.purchases[0].ended_ms, Some(6));
    }

    #[test]
    fn states_name_their_json() {
        // The state's display is its stored name; final states are final.
        assert_eq!(
            PurchaseState::AwaitingOutcome.to_string(),
            "awaiting_outcome"
        );
        assert!(PurchaseState::Cancelled.is_final());
        assert!(!PurchaseState::Refunding.is_final());
        assert!(PurchaseState::Spending.money_at_bank());
        assert!(!PurchaseState::Offered.money_at_bank());
    }
}
