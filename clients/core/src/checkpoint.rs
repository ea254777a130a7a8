//! Transparency log checkpoints as specified by C2SP tlog-checkpoint
//! (<https://c2sp.org/tlog-checkpoint>): the note text
//! `<origin>\n<tree size>\n<base64 root hash>\n` followed by optional
//! extension lines, signed as a C2SP signed note (see [`crate::note`]) by the
//! log key whose name is the origin.
//!
//! Parsing is strict, so that every accepted text is the one [`Checkpoint::to_text`]
//! writes: no leading zeros in the size, canonical base64 for the root.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::note::{self, Note, NoteError, NoteSigner, NoteVerifier};

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note is malformed, unsigned by the log, or badly signed.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The text does not end with a newline.
    #[error("checkpoint text must end with a newline")]
    MissingFinalNewline,
    /// The text has fewer than three lines.
    #[error("checkpoint text must have origin, tree size and root hash lines")]
    TooFewLines,
    /// A line contains a control character (a newline inside a field
    /// included).
    #[error("checkpoint lines must not contain control characters")]
    ControlCharacter,
    /// The origin line is empty.
    #[error("checkpoint origin must not be empty")]
    EmptyOrigin,
    /// The size line is not a canonical decimal `u64`.
    #[error("tree size {0:?} is not a decimal number without leading zeros")]
    BadSize(String),
    /// The root line is not the canonical standard base64 of 32 bytes.
    #[error("root hash must be the standard base64 encoding of 32 bytes")]
    BadRootHash,
    /// An extension line is empty.
    #[error("checkpoint extension lines must not be empty")]
    EmptyExtension,
    /// The log key's name is not the checkpoint origin.
    #[error("checkpoint origin {origin:?} does not match log key name {key_name:?}")]
    OriginMismatch {
        /// Origin line of the checkpoint.
        origin: String,
        /// Name of the log key.
        key_name: String,
    },
}

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity; by convention the log key's name.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 Merkle tree hash at `size`.
    pub root: [u8; 32],
    /// Opaque extension lines, without newlines.
    pub extensions: Vec<String>,
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c < ' ')
}

/// `u64::from_str` would also take a leading `+` and leading zeros, which
/// would give one checkpoint several texts.
fn parse_size(s: &str) -> Option<u64> {
    let canonical = s == "0"
        || (s.starts_with(|c: char| matches!(c, '1'..='9'))
            && s.bytes().all(|b| b.is_ascii_digit()));
    if canonical { s.parse().ok() } else { None }
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, extensions, each followed by
    /// a newline. Does not validate; [`SignedCheckpoint::sign`] does.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for ext in &self.extensions {
            out.push_str(ext);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint note text.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        if body.chars().any(|c| c < ' ' && c != '\n') {
            return Err(CheckpointError::ControlCharacter);
        }
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::TooFewLines);
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_size(size).ok_or_else(|| CheckpointError::BadSize(size.to_owned()))?;
        // The strict engine also refuses non-zero padding bits, so each root
        // has a single accepted encoding.
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or(CheckpointError::BadRootHash)?;
        let extensions = lines
            .map(|l| {
                if l.is_empty() {
                    Err(CheckpointError::EmptyExtension)
                } else {
                    Ok(l.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Checks that `to_text` gives a text that `parse` reads back as `self`.
    fn validate(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if self.extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::EmptyExtension);
        }
        if has_control(&self.origin) || self.extensions.iter().any(|e| has_control(e)) {
            return Err(CheckpointError::ControlCharacter);
        }
        Ok(())
    }
}

/// A checkpoint with its signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The signed note whose text is the body; it may carry further
    /// signatures (e.g. witness cosignatures) for other code to check.
    pub note: Note,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with the log key, whose name must be the origin.
    pub fn sign(
        checkpoint: Checkpoint,
        signer: &NoteSigner,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        checkpoint.validate()?;
        if checkpoint.origin != signer.name() {
            return Err(CheckpointError::OriginMismatch {
                origin: checkpoint.origin,
                key_name: signer.name().to_owned(),
            });
        }
        let text = checkpoint.to_text();
        let signature = signer.sign_line(&text)?;
        Ok(SignedCheckpoint {
            checkpoint,
            note: Note {
                text,
                signatures: vec![signature],
            },
        })
    }

    /// Open with the log's verifier: requires a valid signature by `log`
    /// whose name equals the checkpoint origin. Signatures of other keys are
    /// ignored and kept in `note`.
    pub fn open(text: &str, log: &NoteVerifier) -> Result<SignedCheckpoint, CheckpointError> {
        let (note, _) = note::open(text, std::slice::from_ref(log))?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if checkpoint.origin != log.name() {
            return Err(CheckpointError::OriginMismatch {
                origin: checkpoint.origin,
                key_name: log.name().to_owned(),
            });
        }
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// The signed note text.
    pub fn to_text(&self) -> String {
        self.note.to_text()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    // The example of C2SP tlog-checkpoint.md (its key is not published).
    const SPEC_TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const SPEC_NOTE: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    fn log_signer() -> NoteSigner {
        NoteSigner::new("example.com/log", SigningKey::from_bytes(&[3; 32])).unwrap()
    }

    fn checkpoint(origin: &str) -> Checkpoint {
        Checkpoint {
            origin: origin.into(),
            size: 42,
            root: [0x5a; 32],
            extensions: vec![],
        }
    }

    fn with_lines(origin: &str, size: &str, root: &str, rest: &str) -> String {
        format!("{origin}\n{size}\n{root}\n{rest}")
    }

    #[test]
    fn spec_example_parses_and_round_trips() {
        // The tlog-checkpoint example body parses to its fields and back to
        // the same bytes; its signed note parses too.
        let cp = Checkpoint::parse(SPEC_TEXT).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20_852_163);
        assert_eq!(cp.root.to_vec(), STANDARD.decode(ROOT_B64).unwrap());
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_text(), SPEC_TEXT);
        let note = Note::parse(SPEC_NOTE).unwrap();
        assert_eq!(note.text, SPEC_TEXT);
        assert_eq!(note.signatures[0].name, cp.origin);
    }

    #[test]
    fn sizes_must_be_canonical_decimal() {
        // Only "0" and decimals without leading zeros that fit in a u64 are
        // tree sizes.
        for (s, want) in [
            ("0", 0),
            ("1", 1),
            ("10", 10),
            ("18446744073709551615", u64::MAX),
        ] {
            let cp = Checkpoint::parse(&with_lines("o", s, ROOT_B64, "")).unwrap();
            assert_eq!(cp.size, want);
        }
        for s in [
            "",
            "00",
            "01",
            "007",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "1e3",
            "0x1",
            "\u{661}",
            "18446744073709551616",
            "99999999999999999999",
        ] {
            assert_eq!(
                Checkpoint::parse(&with_lines("o", s, ROOT_B64, "")),
                Err(CheckpointError::BadSize(s.into())),
                "{s:?}"
            );
        }
    }

    #[test]
    fn root_must_be_canonical_base64_of_32_bytes() {
        // Roots of 31 or 33 bytes, unpadded, URL-safe, non-canonical or
        // padded with spaces are rejected.
        let b31 = STANDARD.encode([1u8; 31]);
        let b33 = STANDARD.encode([1u8; 33]);
        let unpadded = ROOT_B64.trim_end_matches('=');
        let url = STANDARD.encode([0xff; 32]).replace('/', "_");
        let noncanonical = ROOT_B64.replace("2I=", "2J=");
        let spaced = format!(" {ROOT_B64}");
        for root in [
            b31.as_str(),
            &b33,
            unpadded,
            &url,
            &noncanonical,
            &spaced,
            "",
        ] {
            assert_eq!(
                Checkpoint::parse(&with_lines("o", "1", root, "")),
                Err(CheckpointError::BadRootHash),
                "{root:?}"
            );
        }
    }

    #[test]
    fn structure_is_checked() {
        // Missing final newline, missing lines, empty origin or extension
        // lines and control characters are rejected; extensions are kept.
        let ok = with_lines("o", "1", ROOT_B64, "ext one\nx\n");
        let cp = Checkpoint::parse(&ok).unwrap();
        assert_eq!(cp.extensions, vec!["ext one".to_owned(), "x".to_owned()]);
        assert_eq!(cp.to_text(), ok);

        let cases = [
            (
                SPEC_TEXT.trim_end().to_owned(),
                CheckpointError::MissingFinalNewline,
            ),
            (String::new(), CheckpointError::MissingFinalNewline),
            ("\n".to_owned(), CheckpointError::TooFewLines),
            ("o\n1\n".to_owned(), CheckpointError::TooFewLines),
            (
                with_lines("", "1", ROOT_B64, ""),
                CheckpointError::EmptyOrigin,
            ),
            (
                with_lines("o", "1", ROOT_B64, "\n"),
                CheckpointError::EmptyExtension,
            ),
            (
                with_lines("o", "1", ROOT_B64, "a\n\nb\n"),
                CheckpointError::EmptyExtension,
            ),
            (
                with_lines("o\t", "1", ROOT_B64, ""),
                CheckpointError::ControlCharacter,
            ),
            (
                with_lines("o", "1", ROOT_B64, "a\r\n"),
                CheckpointError::ControlCharacter,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Checkpoint::parse(&text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn sign_then_open_round_trips() {
        // A signed checkpoint opens with the log key, keeps cosignatures of
        // other keys, and re-encodes to the same bytes.
        let signer = log_signer();
        let mut cp = checkpoint("example.com/log");
        cp.extensions = vec!["ext".into()];
        let signed = SignedCheckpoint::sign(cp.clone(), &signer).unwrap();
        let text = signed.to_text();
        let opened = SignedCheckpoint::open(&text, &signer.verifier()).unwrap();
        assert_eq!(opened, signed);
        assert_eq!(opened.checkpoint, cp);

        let witness =
            NoteSigner::new("witness.example/w", SigningKey::from_bytes(&[4; 32])).unwrap();
        let cosigned = format!(
            "{text}{}",
            witness.sign_line(&cp.to_text()).unwrap().to_line()
        );
        let opened = SignedCheckpoint::open(&cosigned, &signer.verifier()).unwrap();
        assert_eq!(opened.note.signatures.len(), 2);
        assert_eq!(opened.to_text(), cosigned);
    }

    #[test]
    fn origin_must_match_the_log_key_name() {
        // Neither signing nor opening accepts a log key named otherwise than
        // the origin, even with a valid signature.
        let other = NoteSigner::new("example.com/other", SigningKey::from_bytes(&[3; 32])).unwrap();
        let cp = checkpoint("example.com/log");
        let want = CheckpointError::OriginMismatch {
            origin: "example.com/log".into(),
            key_name: "example.com/other".into(),
        };
        assert_eq!(
            SignedCheckpoint::sign(cp.clone(), &other),
            Err(want.clone())
        );
        let text = other.sign(&cp.to_text()).unwrap();
        assert_eq!(SignedCheckpoint::open(&text, &other.verifier()), Err(want));
    }

    #[test]
    fn unsigned_or_foreign_checkpoints_are_rejected() {
        // A bare body, a body with an empty signature block, a note signed by
        // another key and a badly signed note do not open.
        let log = log_signer().verifier();
        let body = checkpoint("example.com/log").to_text();
        for text in [body.clone(), format!("{body}\n")] {
            assert!(matches!(
                SignedCheckpoint::open(&text, &log),
                Err(CheckpointError::Note(NoteError::MalformedNote(_)))
            ));
        }
        let stranger =
            NoteSigner::new("example.com/log", SigningKey::from_bytes(&[9; 32])).unwrap();
        let foreign = stranger.sign(&body).unwrap();
        assert_eq!(
            SignedCheckpoint::open(&foreign, &log),
            Err(CheckpointError::Note(NoteError::NoValidSignature))
        );
        let mut tampered =
            SignedCheckpoint::sign(checkpoint("example.com/log"), &log_signer()).unwrap();
        tampered.note.text = tampered.note.text.replace("42", "43");
        assert!(matches!(
            SignedCheckpoint::open(&tampered.to_text(), &log),
            Err(CheckpointError::Note(NoteError::BadSignature { .. }))
        ));
    }

    #[test]
    fn invalid_checkpoints_are_not_signed() {
        // Fields that would not read back (empty, or with newlines or other
        // control characters) are refused before signing.
        let signer = log_signer();
        let mut cases = Vec::new();
        let mut cp = checkpoint("");
        cases.push((cp.clone(), CheckpointError::EmptyOrigin));
        cp = checkpoint("example.com/log\n7");
        cases.push((cp.clone(), CheckpointError::ControlCharacter));
        cp = checkpoint("example.com/log");
        cp.extensions = vec![String::new()];
        cases.push((cp.clone(), CheckpointError::EmptyExtension));
        cp.extensions = vec!["a\nb".into()];
        cases.push((cp, CheckpointError::ControlCharacter));
        for (cp, want) in cases {
            assert_eq!(SignedCheckpoint::sign(cp, &signer), Err(want));
        }
    }

    fn field() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f]{1,40}"
    }

    fn any_checkpoint() -> impl Strategy<Value = Checkpoint> {
        (
            field(),
            any::<u64>(),
            any::<[u8; 32]>(),
            prop::collection::vec(field(), 0..4),
        )
            .prop_map(|(origin, size, root, extensions)| Checkpoint {
                origin,
                size,
                root,
                extensions,
            })
    }

    proptest! {
        #[test]
        fn to_text_then_parse_round_trips(cp in any_checkpoint()) {
            // Every valid checkpoint reads back from its text unchanged.
            prop_assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
        }

        #[test]
        fn accepted_texts_are_canonical(
            cp in any_checkpoint(),
            index in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            // Whatever a one-byte change does to a checkpoint text, if the
            // result parses it is exactly the text of what it parses to.
            let mut bytes = cp.to_text().into_bytes();
            let i = index.index(bytes.len());
            bytes[i] = bytes[i].wrapping_add(delta);
            let reparsed = String::from_utf8(bytes)
                .ok()
                .and_then(|text| Checkpoint::parse(&text).ok().map(|cp| (text, cp)));
            if let Some((text, parsed)) = reparsed {
                prop_assert_eq!(parsed.to_text(), text);
            }
        }
    }
}
