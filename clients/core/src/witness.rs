//! C2SP tlog-witness (https://c2sp.org/tlog-witness) message formats: the
//! `add-checkpoint` request body a log sends to a witness, and the witness's
//! answers. The witness server is in `acd-auditor`; the log's client side
//! and anyone else use these.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::merkle::Hash;

/// Most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;
/// Content type of a 409 answer: the witness's latest size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WitnessError {
    #[error("malformed add-checkpoint request: {0}")]
    Malformed(&'static str),
}

/// `POST <prefix>/add-checkpoint`: the previous size the log believes the
/// witness holds, a consistency proof from it, and the new signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as served at `/checkpoint`.
    pub checkpoint: String,
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

impl AddCheckpoint {
    pub fn to_body(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Strict parse of a request body.
    pub fn parse(body: &str) -> Result<AddCheckpoint, WitnessError> {
        let (head, checkpoint) = body.split_once("\n\n").ok_or(WitnessError::Malformed(
            "no empty line before the checkpoint",
        ))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal)
            .ok_or(WitnessError::Malformed("first line must be `old <size>`"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(WitnessError::Malformed("more than 63 proof lines"));
            }
            let raw = STANDARD
                .decode(line)
                .map_err(|_| WitnessError::Malformed("proof line is not base64"))?;
            let h: Hash = raw
                .try_into()
                .map_err(|_| WitnessError::Malformed("proof hash is not 32 bytes"))?;
            if STANDARD.encode(h) != line {
                return Err(WitnessError::Malformed(
                    "proof line is not canonical base64",
                ));
            }
            proof.push(h);
        }
        if checkpoint.is_empty() {
            return Err(WitnessError::Malformed("no checkpoint"));
        }
        Ok(AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// Parses a witness's 409 body: its latest cosigned size.
pub fn parse_size_body(body: &str) -> Option<u64> {
    body.strip_suffix('\n').and_then(parse_decimal)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";

    // The spec's example request parses and re-encodes byte for byte.
    #[test]
    fn spec_example_round_trips() {
        let r = AddCheckpoint::parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(r.old_size, 20_852_014);
        assert_eq!(r.proof.len(), 4);
        assert!(
            r.checkpoint
                .starts_with("example.com/behind-the-sofa\n20852163\n")
        );
        assert_eq!(r.to_body(), SPEC_EXAMPLE);
    }

    // Malformed requests are refused: bad old line, leading zeros, bad base64, too many lines, no checkpoint.
    #[test]
    fn malformed_requests() {
        for bad in [
            "",
            "old\n\ncp\n",
            "old 01\n\ncp\n",
            "new 1\n\ncp\n",
            "old 1\nnot base64!\n\ncp\n",
            "old 1\nAAAA\n\ncp\n",
            "old 1\n\n",
            "old 1\ncp\n",
        ] {
            assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
        }
        let h = format!("{}\n", STANDARD.encode([0u8; 32]));
        let many = format!("old 1\n{}\ncp\n", h.repeat(64));
        assert!(AddCheckpoint::parse(&many).is_err());
        assert_eq!(parse_size_body("123\n"), Some(123));
        assert_eq!(parse_size_body("0123\n"), None);
    }
}
