//! C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): an offline-verifiable proof
//! that an entry is in a log, as text:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>          (optional)
//! index <decimal>
//! <base64 hash>           (one line per inclusion-proof hash)
//!
//! <checkpoint signed note, with any cosignatures>
//! ```
//!
//! Here `extra` carries the entry's bytes, so that a proof bundle is
//! self-contained; the leaf hash is RFC 6962's hash of those bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::merkle::Hash;

/// First line of every tlog-proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlogProofError {
    #[error("not a tlog-proof: {0}")]
    Malformed(&'static str),
}

/// A parsed tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash>,
    /// The checkpoint's signed note text (ending in a newline).
    pub checkpoint: String,
}

impl TlogProof {
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<TlogProof, TlogProofError> {
        use TlogProofError::Malformed;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(Malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(Malformed("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or(Malformed("no index line"))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(
                STANDARD
                    .decode(b64)
                    .map_err(|_| Malformed("extra is not base64"))?,
            );
            line = lines.next().ok_or(Malformed("no index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .filter(|d| {
                !d.is_empty()
                    && d.bytes().all(|b| b.is_ascii_digit())
                    && (d == &"0" || !d.starts_with('0'))
            })
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or(Malformed("index must be a decimal without leading zeros"))?;
        let hashes = lines
            .map(|l| {
                let bytes = STANDARD
                    .decode(l)
                    .map_err(|_| Malformed("hash line is not base64"))?;
                Hash::try_from(bytes.as_slice()).map_err(|_| Malformed("hash is not 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if checkpoint.is_empty() {
            return Err(Malformed("no checkpoint"));
        }
        let proof = TlogProof {
            extra,
            index,
            hashes,
            checkpoint: checkpoint.to_owned(),
        };
        // One text per proof: anything that would not re-encode the same
        // (padding variants, stray spaces) is refused.
        if proof.to_text() != text {
            return Err(Malformed("not in canonical form"));
        }
        Ok(proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The layout of the spec's example (signatures shortened there, so a
    // checkpoint of ours stands in for its note).
    #[test]
    fn spec_example_layout() {
        let text = "c2sp.org/tlog-proof@v1\nextra YWdlLXYx\nindex 73894\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\nB95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\nexample.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n\u{2014} example.com/fancylog hI2DJw==\n";
        let p = TlogProof::parse(text).expect("parses");
        assert_eq!(p.extra.as_deref(), Some(&b"age-v1"[..]));
        assert_eq!(p.index, 73894);
        assert_eq!(p.hashes.len(), 2);
        assert!(p.checkpoint.starts_with("example.com/fancylog\n109482\n"));
        assert_eq!(p.to_text(), text);
    }

    #[test]
    fn malformed_are_refused() {
        let good = "c2sp.org/tlog-proof@v1\nindex 3\n\ncp\n";
        TlogProof::parse(good).expect("parses");
        for bad in [
            "c2sp.org/tlog-proof@v2\nindex 3\n\ncp\n",
            "c2sp.org/tlog-proof@v1\nindex 03\n\ncp\n",
            "c2sp.org/tlog-proof@v1\nindex -3\n\ncp\n",
            "c2sp.org/tlog-proof@v1\nindex 3\nAAAA\n\ncp\n",
            "c2sp.org/tlog-proof@v1\nindex 3\n\n",
            "c2sp.org/tlog-proof@v1\nextra !!\nindex 3\n\ncp\n",
            "c2sp.org/tlog-proof@v1\n\ncp\n",
        ] {
            assert!(TlogProof::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(extra in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                      index in any::<u64>(),
                      hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..64)) {
            let p = TlogProof { extra, index, hashes, checkpoint: "o\n1\nAAAA\n\n\u{2014} o x\n".into() };
            prop_assert_eq!(TlogProof::parse(&p.to_text()).expect("parses"), p);
        }
    }
}
