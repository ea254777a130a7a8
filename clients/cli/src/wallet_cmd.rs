//! `acd wallet`: the customer's wallet on the command line. Each command
//! opens the wallet file, does one thing (saving after every step) and
//! prints what happened; `resume` finishes whatever a crash or an outage
//! left unfinished.

use std::path::PathBuf;
use std::time::Duration;

use acd_core::cosignature::CosignatureVerifier;
use acd_core::entry::Tid;
use acd_core::proof::WitnessPolicy;
use acd_wallet::{PurchaseOutcome, Wallet};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct WalletArgs {
    /// The wallet file (JSON, mode 0600; keep it private and backed up).
    #[arg(long, env = "ACD_WALLET")]
    pub file: PathBuf,
    /// Also require a cosignature of this witness (cosignature vkey) on
    /// every checkpoint the wallet relies on; repeat for several.
    #[arg(long = "witness", global = true)]
    pub witnesses: Vec<String>,
    /// How many of `--witness` must have cosigned (default: all).
    #[arg(long, global = true)]
    pub threshold: Option<usize>,
    /// How often to ask the log while waiting for an outcome, in ms.
    #[arg(long, global = true, default_value_t = 2000)]
    pub poll_ms: u64,
    /// How long to wait, in ms, for another command that has the wallet
    /// open before giving up (one command at a time changes a wallet).
    #[arg(
        long,
        global = true,
        env = "ACD_WALLET_LOCK_WAIT_MS",
        default_value_t = 30_000
    )]
    pub lock_wait_ms: u64,
    #[command(subcommand)]
    pub command: WalletCommand,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create the wallet file for a bank and print the account key that
    /// the bank's admin must register and credit.
    Init {
        /// The bank's base URL.
        #[arg(long)]
        bank: String,
    },
    /// List what a merchant sells: item id, price, description (the
    /// wallet file is not read).
    Catalog {
        /// The merchant's base URL.
        #[arg(long)]
        merchant: String,
    },
    /// Withdraw AMOUNT from the account as anonymous tokens.
    Withdraw {
        /// How much, in the bank's units (made of its denominations).
        amount: u64,
    },
    /// Show the tokens and unfinished operations.
    Balance,
    /// List every purchase: id, start time, TID, item, price, state, and
    /// the merchant.
    History,
    /// Buy an item: pay anonymously, get the goods or the money back.
    Buy {
        /// The merchant's base URL.
        #[arg(long)]
        merchant: String,
        /// The catalog item's id.
        #[arg(long)]
        item: String,
        /// Where to write the goods (a file that does not exist yet: goods
        /// are never written over another file).
        #[arg(long)]
        out: PathBuf,
        /// Do not wait for the expiration if the merchant fails; `resume`
        /// finishes later.
        #[arg(long)]
        no_wait: bool,
        /// Buy the item even though this wallet bought it from this
        /// merchant before (or is still buying it).
        #[arg(long)]
        again: bool,
    },
    /// Finish pending withdrawals and purchases (after a crash or outage).
    Resume {
        /// Leave purchases that still wait for the log's outcome.
        #[arg(long)]
        no_wait: bool,
        /// Write the goods of a purchase that is paid for but whose goods
        /// could not be written here (state `unwritten`); a file that does
        /// not exist yet.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Which purchase `--out` is for (needed when several wait).
        #[arg(long, requires = "out")]
        purchase: Option<u64>,
    },
    /// Write the proof bundle of a delivered purchase (check it with
    /// `acd verify`).
    Proof {
        /// The purchase's TID (32 hex digits).
        tid: Tid,
        /// Where to write the bundle (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write one token as an RFC 9474 verifier needs it (JSON: message,
    /// randomizer, signature, the denomination's key as PEM). The token
    /// stays in the wallet, and the export is money: whoever holds it can
    /// spend it.
    ExportToken {
        /// The value of the token (default: the smallest one held).
        #[arg(long)]
        value: Option<u64>,
        /// Where to write it (mode 0600); standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Refuses to write goods over an existing file.
fn fresh_output(out: &std::path::Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} exists; give another --out (goods are never written over a file)",
            out.display()
        );
    }
    Ok(())
}

fn extra_policy(args: &WalletArgs) -> anyhow::Result<Option<WitnessPolicy>> {
    if args.witnesses.is_empty() {
        if args.threshold.is_some_and(|t| t > 0) {
            bail!("--threshold needs --witness keys");
        }
        return Ok(None);
    }
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| CosignatureVerifier::from_vkey(w).with_context(|| format!("witness {w:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let threshold = args.threshold.unwrap_or(witnesses.len());
    if threshold > witnesses.len() {
        bail!(
            "a threshold of {threshold} needs as many witnesses, {} given",
            witnesses.len()
        );
    }
    Ok(Some(WitnessPolicy::new(threshold, witnesses)))
}

/// Opens the wallet for writing: waits for another command that has it.
fn open(args: &WalletArgs) -> anyhow::Result<Wallet> {
    configure(
        args,
        Wallet::open_waiting(&args.file, Duration::from_millis(args.lock_wait_ms))?,
    )
}

/// Opens the wallet to look at it, without waiting for a command that has
/// it open.
fn open_read_only(args: &WalletArgs) -> anyhow::Result<Wallet> {
    configure(args, Wallet::open_read_only(&args.file)?)
}

fn configure(args: &WalletArgs, wallet: Wallet) -> anyhow::Result<Wallet> {
    let mut wallet = wallet
        .with_poll_interval(Duration::from_millis(args.poll_ms))
        .on_step(Box::new(|step| outln!("  - {step}")));
    if let Some(policy) = extra_policy(args)? {
        wallet = wallet.with_witness_policy(policy);
    }
    Ok(wallet)
}

/// Runs one `acd wallet` command.
pub async fn run(args: WalletArgs) -> anyhow::Result<()> {
    match &args.command {
        WalletCommand::Init { bank } => {
            let wallet = Wallet::create(&args.file, bank).await?;
            let info = wallet.bank_info();
            outln!("created {}", args.file.display());
            outln!("bank key:    {}", hex::encode(info.bank));
            let mut values: Vec<u64> = info.denominations.iter().map(|d| d.value).collect();
            values.sort_unstable();
            outln!("denominations: {values:?}");
            outln!("account key: {}", hex::encode(wallet.account_key()));
            outln!("ask the bank's admin to create a customer account for this key and credit it");
        }
        WalletCommand::Catalog { merchant } => {
            let catalog = acd_client::merchant::MerchantClient::new(merchant)
                .catalog()
                .await
                .with_context(|| format!("the catalog of the merchant at {merchant}"))?;
            outln!("{:<16} {:>10}  description", "item", "price");
            for item in &catalog.items {
                outln!("{:<16} {:>10}  {}", item.id, item.price, item.description);
            }
        }
        WalletCommand::Withdraw { amount } => {
            let mut wallet = open(&args)?;
            let report = wallet.withdraw(*amount).await?;
            outln!("{report}");
            outln!("balance: {}", wallet.balance());
        }
        WalletCommand::History => {
            let wallet = open_read_only(&args)?;
            history(&wallet);
        }
        WalletCommand::ExportToken { value, out } => {
            let wallet = open_read_only(&args)?;
            let export = wallet.export_token(*value)?;
            let text = serde_json::to_string_pretty(&export)? + "\n";
            match out {
                Some(out) => {
                    acd_wallet::file::write_atomic(out, text.as_bytes())?;
                    outln!(
                        "wrote a token of {} to {}; it spends like the token itself",
                        export.value,
                        out.display()
                    );
                }
                None => outln!("{}", text.trim_end()),
            }
        }
        WalletCommand::Balance => {
            let wallet = open_read_only(&args)?;
            outln!("{}", wallet.balance());
            for p in wallet.purchases().iter().filter(|p| !p.state.is_final()) {
                let tid = p.tid().map(|t| t.to_string()).unwrap_or_else(|| "-".into());
                outln!(
                    "unfinished purchase {} ({} from {}, TID {tid}): {}",
                    p.id,
                    p.item,
                    p.merchant_url,
                    p.state
                );
            }
        }
        WalletCommand::Buy {
            merchant,
            item,
            out,
            no_wait,
            again,
        } => {
            fresh_output(out)?;
            let mut wallet = open(&args)?;
            if let Some(earlier) = wallet.bought(merchant, item).filter(|_| !again) {
                bail!(
                    "this wallet bought {item} from {merchant} before (purchase {}, {}, {}); \
                     give --again to buy it again",
                    earlier.id,
                    earlier.state,
                    earlier
                        .started_ms
                        .map(acd_wallet::report::time)
                        .unwrap_or_else(|| "time unknown".into())
                );
            }
            outln!("buying {item} from {merchant}");
            let report = wallet.buy_waiting(merchant, item, out, !no_wait).await?;
            outln!("=> {}", report.outcome);
            if let Some(tid) = report.tid {
                outln!("TID {tid}");
            }
            outln!("balance: {}", wallet.balance());
            if let PurchaseOutcome::Cancelled { reason } = &report.outcome {
                bail!("the purchase was cancelled: {reason}");
            }
        }
        WalletCommand::Resume {
            no_wait,
            out,
            purchase,
        } => {
            if let Some(out) = out {
                fresh_output(out)?;
            }
            let mut wallet = open(&args)?;
            if let Some(out) = out {
                let id = wallet.unwritten(*purchase)?;
                // The step hook prints where the goods went.
                wallet.write_goods(id, Some(out))?;
            }
            let report = wallet.resume(!no_wait).await;
            outln!("{report}");
            outln!("balance: {}", wallet.balance());
            if report.has_errors() {
                bail!("some operations could not be finished; run resume again later");
            }
        }
        WalletCommand::Proof { tid, out } => {
            // With --witness the stored proof may be replaced by a cosigned
            // one, which is saved: the wallet is opened for writing.
            let (wallet, bundle) = if args.witnesses.is_empty() {
                let wallet = open_read_only(&args)?;
                let bundle = wallet.proof(tid)?;
                (wallet, bundle)
            } else {
                let mut wallet = open(&args)?;
                let bundle = wallet.proof_refreshed(tid).await?;
                (wallet, bundle)
            };
            let text = serde_json::to_string_pretty(&bundle)?;
            std::fs::write(out, text + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            let log = wallet
                .bank_info()
                .logs
                .iter()
                .find(|l| {
                    l.vkey
                        .starts_with(&format!("{}+", bundle.offer.offer.log_origin))
                })
                .map(|l| l.vkey.clone())
                .unwrap_or_default();
            outln!("wrote the proof bundle of TID {tid} to {}", out.display());
            let witnesses: String = args
                .witnesses
                .iter()
                .map(|w| format!(" --witness '{w}'"))
                .collect();
            outln!(
                "check it with: acd verify {} --log '{log}'{witnesses}",
                out.display()
            );
        }
    }
    Ok(())
}

/// `acd wallet history`: one line per purchase, oldest first.
fn history(wallet: &Wallet) {
    let purchases = wallet.purchases();
    if purchases.is_empty() {
        outln!("no purchases");
        return;
    }
    outln!(
        "{:>4}  {:<20}  {:<32}  {:<12} {:>8}  {:<16}  merchant",
        "id",
        "started",
        "TID",
        "item",
        "price",
        "state"
    );
    for p in purchases {
        outln!(
            "{:>4}  {:<20}  {:<32}  {:<12} {:>8}  {:<16}  {}",
            p.id,
            p.started_ms
                .map(acd_wallet::report::time)
                .unwrap_or_else(|| "-".into()),
            p.tid().map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            p.item,
            p.price,
            p.state.to_string(),
            p.merchant_url
        );
        if let Some(note) = p
            .note
            .as_deref()
            .filter(|_| !p.state.is_final() || p.state == acd_wallet::PurchaseState::Cancelled)
        {
            outln!("      {note}");
        }
    }
}
