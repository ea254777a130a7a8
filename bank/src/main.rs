//! `acd-bank`: the bank server. Token issuance, escrow, deposit, refund and
//! dispute are not built yet; this binary says so instead of pretending.

fn main() -> std::process::ExitCode {
    eprintln!(
        "acd-bank: the bank is not implemented yet (token issuance, escrow, deposit, refund and dispute are planned work)"
    );
    std::process::ExitCode::from(2)
}
