//! Amounts and tokens: splitting an amount into the bank's denominations
//! (withdrawals, change, refunds) and choosing the tokens that pay a price.
//! Pure functions over values, so that they can be tested exhaustively.

use acd_core::purchase::MAX_ITEMS;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoinError {
    #[error("{amount} cannot be made of the bank's denominations {denominations:?}")]
    NotRepresentable {
        amount: u64,
        denominations: Vec<u64>,
    },
    #[error("the wallet holds {have}, the price is {need}")]
    InsufficientFunds { need: u64, have: u64 },
    #[error("paying {price} would take {count} tokens or change tokens, more than {MAX_ITEMS}")]
    TooManyItems { price: u64, count: usize },
    #[error("the amount must be positive")]
    Zero,
}

/// Splits `amount` into denominations, largest first (greedy). With the
/// usual denominations (powers of two, or 1-2-5 series) this is also the
/// fewest tokens. An amount of zero is the empty list.
pub fn decompose(amount: u64, denominations: &[u64]) -> Result<Vec<u64>, CoinError> {
    let mut values: Vec<u64> = denominations.iter().copied().filter(|v| *v > 0).collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.dedup();
    let mut out = Vec::new();
    let mut rest = amount;
    for v in &values {
        while rest >= *v {
            out.push(*v);
            rest -= v;
        }
    }
    if rest != 0 {
        values.reverse();
        return Err(CoinError::NotRepresentable {
            amount,
            denominations: values,
        });
    }
    Ok(out)
}

/// Tokens chosen to pay a price: indices into the candidate list, their
/// total, and the change (as denominations) the bank must return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub indices: Vec<usize>,
    pub total: u64,
    pub change: Vec<u64>,
}

/// Chooses tokens (by value) that pay `price`, always including `required`
/// (tokens already registered to the key the purchase will use). Prefers an
/// exact sum (no change); otherwise adds, while short, the smallest token
/// that covers the rest or else the largest one. The change must be
/// expressible in `denominations`, and neither list may exceed
/// [`MAX_ITEMS`].
pub fn select(
    values: &[u64],
    required: &[usize],
    price: u64,
    denominations: &[u64],
) -> Result<Selection, CoinError> {
    if price == 0 {
        return Err(CoinError::Zero);
    }
    let have: u64 = values.iter().sum();
    if have < price {
        return Err(CoinError::InsufficientFunds { need: price, have });
    }
    let base: u64 = required.iter().map(|&i| values[i]).sum();
    let mut free: Vec<usize> = (0..values.len())
        .filter(|i| !required.contains(i))
        .collect();
    free.sort_by(|a, b| values[*b].cmp(&values[*a]).then(a.cmp(b)));

    // Exact: largest first, taking what fits.
    let mut chosen = required.to_vec();
    let mut rest = price.saturating_sub(base);
    for &i in &free {
        if rest == 0 {
            break;
        }
        if values[i] <= rest {
            chosen.push(i);
            rest -= values[i];
        }
    }
    if rest != 0 {
        // Covering: the smallest token that covers the rest, else the
        // largest, until covered.
        chosen = required.to_vec();
        let mut rest = price.saturating_sub(base);
        let mut left = free.clone();
        while rest > 0 {
            let pick = left.iter().rposition(|&i| values[i] >= rest).unwrap_or(0);
            let i = left.remove(pick);
            chosen.push(i);
            rest = rest.saturating_sub(values[i]);
        }
    }
    let total: u64 = chosen.iter().map(|&i| values[i]).sum();
    let change = decompose(total - price, denominations)?;
    let count = chosen.len().max(change.len());
    if count > MAX_ITEMS {
        return Err(CoinError::TooManyItems { price, count });
    }
    chosen.sort_unstable();
    Ok(Selection {
        indices: chosen,
        total,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POW2: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

    #[test]
    fn decompose_is_greedy_and_exact() {
        // Amounts split largest first and sum back; unrepresentable ones
        // are refused.
        assert_eq!(decompose(0, &POW2).expect("zero"), Vec::<u64>::new());
        assert_eq!(decompose(7, &POW2).expect("7"), vec![4, 2, 1]);
        assert_eq!(decompose(200, &POW2).expect("200"), vec![64, 64, 64, 8]);
        assert_eq!(decompose(30, &[10, 5, 10]).expect("dups"), vec![10, 10, 10]);
        for amount in 0..300 {
            let d = decompose(amount, &POW2).expect("representable");
            assert_eq!(d.iter().sum::<u64>(), amount);
        }
        assert_eq!(
            decompose(3, &[5, 2]),
            Err(CoinError::NotRepresentable {
                amount: 3,
                denominations: vec![2, 5]
            })
        );
    }

    #[test]
    fn select_prefers_an_exact_sum() {
        // With the right small tokens, no change is needed.
        let values = [8, 4, 2, 1, 16];
        let s = select(&values, &[], 7, &POW2).expect("select");
        assert_eq!(s.indices, vec![1, 2, 3]);
        assert_eq!(s.total, 7);
        assert!(s.change.is_empty());
    }

    #[test]
    fn select_covers_with_change() {
        // Without an exact sum, the smallest covering token is used and the
        // rest comes back as change.
        let values = [16, 8, 64];
        let s = select(&values, &[], 5, &POW2).expect("select");
        assert_eq!(s.indices, vec![1]);
        assert_eq!(s.total, 8);
        assert_eq!(s.change, vec![2, 1]);
        // Several tokens when no single one covers.
        let values = [4, 4, 4];
        let s = select(&values, &[], 10, &POW2).expect("select");
        assert_eq!(s.total, 12);
        assert_eq!(s.indices.len(), 3);
        assert_eq!(s.change, vec![2]);
    }

    #[test]
    fn select_always_includes_required_tokens() {
        // Tokens bound to the purchase's key are spent first.
        let values = [1, 8, 2, 32];
        let s = select(&values, &[3], 10, &POW2).expect("select");
        assert_eq!(s.indices, vec![3]);
        assert_eq!(s.change, vec![16, 4, 2]);
        let s = select(&values, &[0], 9, &POW2).expect("select");
        assert_eq!(s.indices, vec![0, 1]);
        assert!(s.change.is_empty());
    }

    #[test]
    fn select_refuses_what_cannot_be_paid() {
        // Too little money, a zero price, unrepresentable change or too many
        // tokens are errors, not silent overpayment.
        assert_eq!(
            select(&[4, 2], &[], 7, &POW2),
            Err(CoinError::InsufficientFunds { need: 7, have: 6 })
        );
        assert_eq!(select(&[4], &[], 0, &POW2), Err(CoinError::Zero));
        assert!(matches!(
            select(&[10], &[], 7, &[10, 5]),
            Err(CoinError::NotRepresentable { amount: 3, .. })
        ));
        let ones = vec![1u64; 100];
        assert!(matches!(
            select(&ones, &[], 70, &[1]),
            Err(CoinError::TooManyItems { count: 70, .. })
        ));
    }

    #[test]
    fn select_pays_every_price_it_can() {
        // For every price up to the balance, the choice covers the price and
        // the change makes up the difference exactly.
        let values = [1, 2, 2, 4, 8, 8, 16, 64];
        let have: u64 = values.iter().sum();
        for price in 1..=have {
            let s = select(&values, &[], price, &POW2).expect("payable");
            assert!(s.total >= price);
            assert_eq!(s.total - price, s.change.iter().sum::<u64>());
            let mut seen = s.indices.clone();
            seen.dedup();
            assert_eq!(seen.len(), s.indices.len());
        }
    }
}
