//! Signed notes as specified by C2SP signed-note (<https://c2sp.org/signed-note>),
//! with Ed25519 keys (signature type `0x01`), and the key encodings of Go's
//! `golang.org/x/mod/sumdb/note`: verifier keys `<name>+<id>+<key>` and signer
//! keys `PRIVATE+KEY+<name>+<id>+<key>`.
//!
//! A signed note is a text ending in a newline, a blank line, and one or more
//! signature lines `— <key name> base64(key id || signature)`. Parsing is
//! strict (canonical base64, lowercase hexadecimal key ids, at most
//! [`MAX_SIGNATURES`] lines) but keeps signatures of unknown keys and
//! algorithms, so that cosignatures can be checked by other code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Signature type byte of Ed25519 note signatures.
pub const ALG_ED25519: u8 = 0x01;

/// Most signature lines a note may carry. The spec asks verifiers to accept
/// at least 16; Go's implementation rejects notes with more than 100.
pub const MAX_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key, a note or a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Key names must be non-empty, without spaces, control characters or `+`.
    #[error("invalid key name {0:?}: must be non-empty, without spaces, control characters or '+'")]
    BadKeyName(String),
    /// A verifier key (`<name>+<id>+<key>`) is malformed.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// A signer key (`PRIVATE+KEY+<name>+<id>+<key>`) is malformed. The key
    /// material is never echoed.
    #[error("malformed private key: {0}")]
    BadPrivateKey(&'static str),
    /// The key is of a signature type other than Ed25519.
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedAlgorithm(u8),
    /// A text to sign is not a valid note text.
    #[error("invalid note text: {0}")]
    BadText(&'static str),
    /// A signed note does not follow the format.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A signed note carries more than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature from a known key (same name and key id) does not verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    BadSignature {
        /// Key name of the signature line.
        name: String,
        /// Key id of the signature line.
        key_id: u32,
    },
    /// Several different verifiers share the name and key id of a signature.
    #[error("ambiguous key {name}+{key_id:08x}: several verifiers share this name and id")]
    AmbiguousKey {
        /// The shared key name.
        name: String,
        /// The shared key id.
        key_id: u32,
    },
    /// No signature of the note comes from one of the given verifiers.
    #[error("note has no valid signature from a known key")]
    NoValidSignature,
}

/// Splits the command-line form `<vkey>@<url>` (a log or a witness and
/// where to reach it) at the `@` that starts the URL (`@http://` or
/// `@https://`), so that an `@` in a key name or in a URL's user info does
/// not cut it in the wrong place. `None` without such a URL.
pub fn split_vkey_url(s: &str) -> Option<(&str, &str)> {
    ["@http://", "@https://"]
        .iter()
        .filter_map(|sep| s.find(sep))
        .min()
        .map(|at| (&s[..at], &s[at + 1..]))
}

/// Key id of a key: the first four bytes, big-endian, of
/// SHA-256(name || 0x0A || signature type || public key).
pub fn key_id(name: &str, alg_and_key: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update(alg_and_key);
    let digest: [u8; 32] = hasher.finalize().into();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The spec forbids spaces and `+` (which separates the fields of key
/// encodings); control characters are refused too, since a note containing
/// them is invalid, so such a key could never sign a valid note.
pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
    {
        return Err(NoteError::BadKeyName(name.to_owned()));
    }
    Ok(())
}

/// The spec forbids the ASCII controls below U+0020 other than newline; like
/// Go, DEL and non-ASCII controls are left alone.
fn has_forbidden_control(s: &str) -> bool {
    s.chars().any(|c| c < ' ' && c != '\n')
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::BadText("text must end with a newline"));
    }
    if has_forbidden_control(text) {
        return Err(NoteError::BadText(
            "text must not contain control characters other than newline",
        ));
    }
    Ok(())
}

/// Key ids are written as eight lowercase hexadecimal digits (Go's `%08x`);
/// accepting only that form keeps every encoding canonical.
fn parse_key_id(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn alg_and_key(key: &VerifyingKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = ALG_ED25519;
    out[1..].copy_from_slice(key.as_bytes());
    out
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (first four bytes of the decoded signature).
    pub key_id: u32,
    /// The signature proper: the decoded bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, `— <name> <base64(key id || signature)>\n`.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }

    /// Parses one signature line, without its final newline.
    fn from_line(line: &str) -> Result<Self, NoteError> {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(NoteError::MalformedNote(
                "signature line must start with an em dash and a space",
            ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::MalformedNote(
            "signature line must have a space after the key name",
        ))?;
        check_name(name)
            .map_err(|_| NoteError::MalformedNote("invalid key name in signature line"))?;
        // The strict engine rejects non-zero padding bits, so every accepted
        // line is the unique encoding of its bytes and `to_line` gives it back.
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::MalformedNote("signature is not canonical base64"))?;
        let (id, signature) = raw
            .split_first_chunk::<4>()
            .filter(|(_, sig)| !sig.is_empty())
            .ok_or(NoteError::MalformedNote(
                "signature must be a key id and at least one byte",
            ))?;
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
            signature: signature.to_vec(),
        })
    }
}

/// A parsed signed note: its text and every signature line, verified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signature lines in order, duplicates and unknown keys included.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note without verifying anything.
    pub fn parse(s: &str) -> Result<Note, NoteError> {
        if has_forbidden_control(s) {
            return Err(NoteError::MalformedNote(
                "control characters other than newline",
            ));
        }
        // The text may itself contain blank lines: the last one separates it
        // from the signatures, which cannot contain any.
        let split = s.rfind("\n\n").ok_or(NoteError::MalformedNote(
            "no blank line before the signatures",
        ))?;
        let (text, block) = (&s[..=split], &s[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::MalformedNote("no signature lines"));
        }
        let block = block.strip_suffix('\n').ok_or(NoteError::MalformedNote(
            "last signature line must end with a newline",
        ))?;
        let mut signatures = Vec::new();
        for line in block.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(NoteSignature::from_line(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed note: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.text);
        for sig in &self.signatures {
            out.push_str(&sig.to_line());
        }
        out
    }
}

/// Ed25519 note verifier (a vkey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`; the key id is derived.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &alg_and_key(&key)),
            key,
        })
    }

    /// Parses a verifier key `<name>+<8 hex digits>+<base64(0x01 || key)>`,
    /// checking that the key id matches the name and key.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        // Names cannot contain '+' but base64 can, so only the first two
        // separators count.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey(
                "expected <name>+<key id>+<base64 key>",
            ));
        };
        check_name(name)?;
        let id = parse_key_id(id).ok_or(NoteError::BadVerifierKey(
            "key id must be 8 lowercase hexadecimal digits",
        ))?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::BadVerifierKey("key is not canonical base64"))?;
        let key = match raw.split_first() {
            None => return Err(NoteError::BadVerifierKey("empty key")),
            Some((&ALG_ED25519, key)) => <[u8; 32]>::try_from(key)
                .map_err(|_| NoteError::BadVerifierKey("Ed25519 key must be 32 bytes"))?,
            Some((&alg, _)) => return Err(NoteError::UnsupportedAlgorithm(alg)),
        };
        if key_id(name, &raw) != id {
            return Err(NoteError::BadVerifierKey("key id does not match the key"));
        }
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::BadVerifierKey("not an Ed25519 public key"))?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The verifier key text, `<name>+<id>+<base64(0x01 || key)>`.
    pub fn vkey(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(alg_and_key(&self.key))
        )
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Does `sig` (a line of `note`) come from this key and verify over
    /// `note.text`? Name and key id must match; verification is RFC 8032
    /// strict (canonical S, no small-order points), so a signature has a
    /// single valid encoding.
    pub fn verifies(&self, note: &Note, sig: &NoteSignature) -> bool {
        sig.name == self.name
            && sig.key_id == self.key_id
            && Signature::from_slice(&sig.signature)
                .is_ok_and(|s| self.key.verify_strict(note.text.as_bytes(), &s).is_ok())
    }
}

/// Ed25519 note signer.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer for `key` under `name`; the key id is derived.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(NoteSigner {
            name: name.to_owned(),
            key_id: key_id(name, &alg_and_key(&key.verifying_key())),
            key,
        })
    }

    /// Parses a signer key `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`,
    /// checking that the key id matches the name and derived public key.
    pub fn from_private_key(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or(NoteError::BadPrivateKey("must start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadPrivateKey(
                "expected PRIVATE+KEY+<name>+<key id>+<base64 key>",
            ));
        };
        check_name(name)?;
        let id = parse_key_id(id).ok_or(NoteError::BadPrivateKey(
            "key id must be 8 lowercase hexadecimal digits",
        ))?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::BadPrivateKey("key is not canonical base64"))?;
        let seed = match raw.split_first() {
            None => return Err(NoteError::BadPrivateKey("empty key")),
            Some((&ALG_ED25519, seed)) => <[u8; 32]>::try_from(seed)
                .map_err(|_| NoteError::BadPrivateKey("Ed25519 seed must be 32 bytes"))?,
            Some((&alg, _)) => return Err(NoteError::UnsupportedAlgorithm(alg)),
        };
        let signer = NoteSigner::new(name, SigningKey::from_bytes(&seed))?;
        if signer.key_id != id {
            return Err(NoteError::BadPrivateKey("key id does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key text, `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`.
    /// It is secret.
    pub fn private_key(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(raw)
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signs `text`, which must be a valid note text (ends with a newline, no
    /// other control characters), and returns the signature line.
    pub fn sign_line(&self, text: &str) -> Result<NoteSignature, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: signature.to_bytes().to_vec(),
        })
    }

    /// Signs `text` and returns the whole signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        let line = self.sign_line(text)?;
        Ok(format!("{text}\n{}", line.to_line()))
    }
}

/// Opens a signed note: parses it and checks every signature whose key name
/// and id match one of `verifiers`. Signatures of other keys are ignored (and
/// kept in the returned note). Returns the note and the verifiers that signed
/// it, in the order of `verifiers`, without repeats.
///
/// Fails if the note is malformed, if a signature from a known key does not
/// verify (the spec says such a note should be rejected as a whole), if two
/// different verifiers share the name and id of a signature, or if no
/// verifier signed the note.
pub fn open(
    note_text: &str,
    verifiers: &[NoteVerifier],
) -> Result<(Note, Vec<NoteVerifier>), NoteError> {
    let note = Note::parse(note_text)?;
    let mut signed_by: Vec<&NoteVerifier> = Vec::new();
    for sig in &note.signatures {
        let mut known = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.key_id == sig.key_id);
        let Some(verifier) = known.next() else {
            continue;
        };
        if known.any(|other| other != verifier) {
            return Err(NoteError::AmbiguousKey {
                name: sig.name.clone(),
                key_id: sig.key_id,
            });
        }
        if !verifier.verifies(&note, sig) {
            return Err(NoteError::BadSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            });
        }
        if !signed_by.contains(&verifier) {
            signed_by.push(verifier);
        }
    }
    if signed_by.is_empty() {
        return Err(NoteError::NoValidSignature);
    }
    let mut out: Vec<NoteVerifier> = Vec::with_capacity(signed_by.len());
    for v in verifiers {
        if signed_by.contains(&v) && !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok((note, out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    // `<vkey>@<url>` splits where the URL starts, whatever other `@` there are.
    #[test]
    fn vkey_url_splits_where_the_url_starts() {
        assert_eq!(
            split_vkey_url("log.example/1+abcd1234+AQID@http://127.0.0.1:8700"),
            Some(("log.example/1+abcd1234+AQID", "http://127.0.0.1:8700"))
        );
        assert_eq!(
            split_vkey_url("a@b+1+AQ@https://user:pw@host/x"),
            Some(("a@b+1+AQ", "https://user:pw@host/x"))
        );
        assert_eq!(split_vkey_url("log.example/1+abcd1234+AQID"), None);
        assert_eq!(split_vkey_url("k@ftp://x"), None);
    }
    use proptest::prelude::*;

    // golang.org/x/mod sumdb/note/note_test.go.
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    // The example of C2SP signed-note.md.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    // The opening example of C2SP signed-note.md, whose key is not published.
    const QUASIMODO_NOTE: &str = "Ognuno sta solo sul cuor della terra\n\
                                  trafitto da un raggio di sole:\n\
                                  \n\
                                  ed \u{e8} subito sera.\n\
                                  \n\
                                  \u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

    fn peter() -> NoteVerifier {
        NoteVerifier::from_vkey(PETER_VKEY).unwrap()
    }

    fn enoch() -> NoteVerifier {
        NoteVerifier::from_vkey(ENOCH_VKEY).unwrap()
    }

    fn peter_signed() -> String {
        format!("{GO_TEXT}\n{PETER_SIG}")
    }

    fn test_signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    #[test]
    fn go_key_pair_parses_and_encodes_back() {
        // Go's PeterNeumann signer and verifier keys parse, agree, and
        // re-encode byte for byte.
        let signer = NoteSigner::from_private_key(PETER_SKEY).unwrap();
        let verifier = peter();
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.key_id(), 0xc74f_20a3);
        assert_eq!(verifier.name(), "PeterNeumann");
        assert_eq!(verifier.key_id(), 0xc74f_20a3);
        assert_eq!(signer.verifier(), verifier);
        assert_eq!(signer.private_key(), PETER_SKEY);
        assert_eq!(verifier.vkey(), PETER_VKEY);
        assert_eq!(enoch().vkey(), ENOCH_VKEY);
        let rebuilt = NoteVerifier::new("PeterNeumann", *verifier.key()).unwrap();
        assert_eq!(rebuilt, verifier);
    }

    #[test]
    fn key_id_is_the_spec_hash() {
        // key_id is SHA-256(name || 0x0A || 0x01 || key)[:4] big-endian, as
        // the published key ids show.
        let v = peter();
        assert_eq!(key_id("PeterNeumann", &alg_and_key(v.key())), 0xc74f_20a3);
        let spec = NoteVerifier::from_vkey(SPEC_VKEY).unwrap();
        assert_eq!(spec.key_id(), 0x530d_903a);
        assert_eq!(
            key_id("example.com/foo", &alg_and_key(spec.key())),
            0x530d_903a
        );
    }

    #[test]
    fn go_sign_vector_is_reproduced_byte_for_byte() {
        // Signing Go's text with Go's key yields exactly the signed note of
        // note_test.go.
        let signer = NoteSigner::from_private_key(PETER_SKEY).unwrap();
        assert_eq!(signer.sign(GO_TEXT).unwrap(), peter_signed());
        assert_eq!(signer.sign_line(GO_TEXT).unwrap().to_line(), PETER_SIG);
    }

    #[test]
    fn go_signed_notes_open() {
        // Go's singly and doubly signed notes open with the right verifiers
        // and keep the signatures of unknown keys.
        let (note, by) = open(&peter_signed(), &[peter()]).unwrap();
        assert_eq!(note.text, GO_TEXT);
        assert_eq!(by, vec![peter()]);
        assert_eq!(note.to_text(), peter_signed());

        let double = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let (note, by) = open(&double, &[peter()]).unwrap();
        assert_eq!(by, vec![peter()]);
        assert_eq!(note.signatures.len(), 2);
        assert_eq!(note.signatures[1].name, "EnochRoot");
        assert_eq!(note.signatures[1].key_id, 0xaf0c_fe78);
        assert_eq!(note.to_text(), double);

        let (_, by) = open(&double, &[enoch(), peter()]).unwrap();
        assert_eq!(by, vec![enoch(), peter()]);
        assert_eq!(open(&double, &[]), Err(NoteError::NoValidSignature));
    }

    #[test]
    fn spec_example_note_opens() {
        // The example key and note of C2SP signed-note verify and round trip.
        let spec = NoteVerifier::from_vkey(SPEC_VKEY).unwrap();
        assert_eq!(spec.vkey(), SPEC_VKEY);
        let (note, by) = open(SPEC_NOTE, std::slice::from_ref(&spec)).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        assert_eq!(by, vec![spec]);
        assert_eq!(note.to_text(), SPEC_NOTE);
    }

    #[test]
    fn spec_poem_splits_at_the_last_blank_line() {
        // A text with its own blank line is separated from the signatures by
        // the last blank line, and an unknown key is not enough to open it.
        let note = Note::parse(QUASIMODO_NOTE).unwrap();
        assert_eq!(
            note.text,
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n"
        );
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(note.signatures[0].name, "quasimodo.example/salvatore");
        assert_eq!(note.signatures[0].key_id, 0x367b_a04b);
        assert_eq!(note.signatures[0].signature.len(), 64);
        assert_eq!(note.to_text(), QUASIMODO_NOTE);
        assert_eq!(
            open(QUASIMODO_NOTE, &[peter()]),
            Err(NoteError::NoValidSignature)
        );
    }

    #[test]
    fn mangled_vkeys_are_rejected() {
        // Every proper substring and every single-byte increment of a vkey is
        // rejected, as in Go's TestNewVerifier.
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let s = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(NoteVerifier::from_vkey(s).is_err(), "{s}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            let s = String::from_utf8(m).unwrap();
            assert!(NoteVerifier::from_vkey(&s).is_err(), "{s}");
        }
        // Go's wrong-length case; its last quantum has non-zero padding bits,
        // which Go tolerates and this parser does not.
        assert!(matches!(
            NoteVerifier::from_vkey(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            ),
            Err(NoteError::BadVerifierKey(_))
        ));
        let mut long = alg_and_key(peter().key()).to_vec();
        long.push(0);
        let long_vkey = format!(
            "PeterNeumann+{:08x}+{}",
            key_id("PeterNeumann", &long),
            STANDARD.encode(&long)
        );
        assert_eq!(
            NoteVerifier::from_vkey(&long_vkey),
            Err(NoteError::BadVerifierKey("Ed25519 key must be 32 bytes"))
        );
        assert_eq!(
            NoteVerifier::from_vkey(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(NoteError::UnsupportedAlgorithm(0x65))
        );
        assert!(NoteVerifier::from_vkey(&PETER_VKEY.replace("c74f20a3", "C74F20A3")).is_err());
    }

    #[test]
    fn mangled_private_keys_are_rejected() {
        // Every proper substring and every single-byte increment of a signer
        // key is rejected, as in Go's TestNewSigner.
        let b = PETER_SKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let s = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(NoteSigner::from_private_key(s).is_err(), "{s}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            let s = String::from_utf8(m).unwrap();
            assert!(NoteSigner::from_private_key(&s).is_err(), "{s}");
        }
        assert!(NoteSigner::from_private_key(PETER_VKEY).is_err());
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        // The signer's Debug output names the key but shows no key material.
        let signer = NoteSigner::from_private_key(PETER_SKEY).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("PeterNeumann"));
        let seed_b64 = PETER_SKEY.rsplit('+').next().unwrap();
        assert!(!debug.contains(seed_b64));
        assert!(!debug.contains(&hex::encode(signer.key.as_bytes())));
        assert!(!debug.contains(&format!("{:?}", signer.key.as_bytes())));
    }

    #[test]
    fn wrong_key_is_rejected() {
        // A signature line with the name and id of a known key but bytes of
        // another key fails, and so does a note signed only by another key.
        let forged = NoteSignature {
            signature: Note::parse(&format!("{GO_TEXT}\n{ENOCH_SIG}"))
                .unwrap()
                .signatures[0]
                .signature
                .clone(),
            ..Note::parse(&peter_signed()).unwrap().signatures[0].clone()
        };
        let text = format!("{GO_TEXT}\n{}", forged.to_line());
        assert_eq!(
            open(&text, &[peter()]),
            Err(NoteError::BadSignature {
                name: "PeterNeumann".into(),
                key_id: 0xc74f_20a3
            })
        );
        let other = test_signer("PeterNeumann", 7);
        let signed = other.sign(GO_TEXT).unwrap();
        assert_eq!(open(&signed, &[peter()]), Err(NoteError::NoValidSignature));
    }

    #[test]
    fn wrong_name_is_rejected() {
        // The same key under another name, or a signature line renamed, is
        // not a known key.
        let renamed = peter_signed().replace("PeterNeumann", "CarmenSandiego");
        assert_eq!(open(&renamed, &[peter()]), Err(NoteError::NoValidSignature));
        let same_key = NoteVerifier::new("PeterNeumann2", *peter().key()).unwrap();
        assert_eq!(
            open(&peter_signed(), &[same_key]),
            Err(NoteError::NoValidSignature)
        );
        let bad_id = peter_signed().replace("x08g", "xxxx");
        assert_eq!(open(&bad_id, &[peter()]), Err(NoteError::NoValidSignature));
    }

    #[test]
    fn flipped_signature_bit_is_rejected() {
        // Flipping any bit of the Ed25519 signature of a known key fails the
        // whole note.
        let note = Note::parse(&peter_signed()).unwrap();
        for bit in 0..64 * 8 {
            let mut bad = note.clone();
            bad.signatures[0].signature[bit / 8] ^= 1 << (bit % 8);
            assert!(!peter().verifies(&bad, &bad.signatures[0]));
            assert!(matches!(
                open(&bad.to_text(), &[peter()]),
                Err(NoteError::BadSignature { .. })
            ));
        }
        // Base64 cut to a whole quantum still parses, but the shorter
        // signature does not verify.
        let cut = format!("{GO_TEXT}\n{}\n", &PETER_SIG[..PETER_SIG.len() - 5]);
        assert!(matches!(
            open(&cut, &[peter()]),
            Err(NoteError::BadSignature { .. })
        ));
        // Go's "invalid signature" case: four extra base64 characters.
        let longer = format!("{GO_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(matches!(
            open(&longer, &[peter()]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_bad_signature_from_a_known_key_rejects_the_note() {
        // A valid and an invalid signature from the same known key do not
        // open, whatever their order.
        let good = Note::parse(&peter_signed()).unwrap().signatures[0].clone();
        let mut bad = good.clone();
        bad.signature[0] ^= 1;
        for sigs in [vec![good.clone(), bad.clone()], vec![bad, good]] {
            let note = Note {
                text: GO_TEXT.into(),
                signatures: sigs,
            };
            assert!(matches!(
                open(&note.to_text(), &[peter()]),
                Err(NoteError::BadSignature { .. })
            ));
        }
    }

    #[test]
    fn malformed_notes_are_rejected() {
        // Go's malformed messages, truncated base64, a missing blank line and
        // control characters are all rejected before any verification.
        let pr = || [peter()];
        let bad = [
            GO_TEXT.to_owned(),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\u{1}{GO_TEXT}\n{PETER_SIG}"),
            format!(
                "{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
            // Truncated base64: no longer a multiple of four characters.
            format!("{GO_TEXT}\n{}\n", &PETER_SIG[..PETER_SIG.len() - 2]),
            // Missing blank line.
            format!("{GO_TEXT}{PETER_SIG}"),
            // Control characters in the text or the signature block.
            format!("If you think\tcryptography\n\n{PETER_SIG}"),
            format!("{}\r\n\n{PETER_SIG}", GO_TEXT.trim_end()),
            format!("{GO_TEXT}\n{}\r\n", PETER_SIG.trim_end()),
            // Signature line forms.
            format!("{GO_TEXT}\n- PeterNeumann x08go/ZJku\n"),
            format!("{GO_TEXT}\n\u{2014}PeterNeumann x08go/ZJku\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann \n"),
            format!("{GO_TEXT}\n\u{2014}  x08go/ZJku\n"),
            format!("{GO_TEXT}\n\u{2014} Peter+Neumann x08go/ZJku\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann x08go/ZJku \n"),
            // Only the key id: no signature bytes.
            format!("{GO_TEXT}\n\u{2014} PeterNeumann x08gow==\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann x08g\n"),
            // Non-canonical base64 (non-zero padding bits) and URL alphabet.
            format!(
                "{GO_TEXT}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAN=\n"
            ),
            format!(
                "{GO_TEXT}\n\u{2014} PeterNeumann x08go_ZJkuBS9UG_SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            String::new(),
            "\n\n".to_owned(),
        ];
        for msg in bad {
            let err = open(&msg, &pr()).unwrap_err();
            assert!(
                matches!(err, NoteError::MalformedNote(_)),
                "{msg:?}: {err:?}"
            );
            assert!(Note::parse(&msg).is_err(), "{msg:?}");
        }
    }

    #[test]
    fn signature_count_is_limited_to_100() {
        // 100 signature lines are accepted and 101 are rejected, as in Go.
        let hundred = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(100));
        let (note, by) = open(&hundred, &[peter()]).unwrap();
        assert_eq!(note.signatures.len(), 100);
        assert_eq!(by, vec![peter()]);
        let too_many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
        assert_eq!(Note::parse(&too_many), Err(NoteError::TooManySignatures));
        assert_eq!(open(&too_many, &[]), Err(NoteError::TooManySignatures));
    }

    #[test]
    fn invalid_texts_are_not_signed() {
        // Texts without a final newline or with control characters cannot be
        // signed; a lone newline can.
        let signer = NoteSigner::from_private_key(PETER_SKEY).unwrap();
        for text in ["", "abc", "abc\n\u{0}\n", "a\tb\n", "a\r\n", "x\u{1b}[0m\n"] {
            assert!(
                matches!(signer.sign(text), Err(NoteError::BadText(_))),
                "{text:?}"
            );
            assert!(signer.sign_line(text).is_err());
        }
        let signed = signer.sign("\n").unwrap();
        assert_eq!(open(&signed, &[peter()]).unwrap().0.text, "\n");
    }

    #[test]
    fn invalid_key_names_are_rejected() {
        // Names that are empty or contain '+', spaces (ASCII or Unicode) or
        // control characters make neither signers nor verifiers.
        let key = SigningKey::from_bytes(&[1; 32]);
        for name in [
            "",
            "a+b",
            "a b",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\tb",
            "a\nb",
            "a\u{1}b",
            "+",
        ] {
            assert_eq!(
                NoteSigner::new(name, key.clone()).unwrap_err(),
                NoteError::BadKeyName(name.into())
            );
            assert_eq!(
                NoteVerifier::new(name, key.verifying_key()).unwrap_err(),
                NoteError::BadKeyName(name.into())
            );
        }
        assert!(NoteSigner::new("example.com/log\u{e8}", key).is_ok());
    }

    #[test]
    fn duplicate_and_ambiguous_verifiers() {
        // The same verifier twice is reported once; two different keys with
        // one name and id are an error only when a signature uses them.
        let (_, by) = open(&peter_signed(), &[peter(), enoch(), peter()]).unwrap();
        assert_eq!(by, vec![peter()]);
        let impostor = NoteVerifier {
            key: *enoch().key(),
            ..peter()
        };
        assert_eq!(
            open(&peter_signed(), &[peter(), impostor.clone()]),
            Err(NoteError::AmbiguousKey {
                name: "PeterNeumann".into(),
                key_id: 0xc74f_20a3
            })
        );
        let enoch_signed = format!("{GO_TEXT}\n{ENOCH_SIG}");
        assert_eq!(
            open(&enoch_signed, &[peter(), impostor, enoch()])
                .unwrap()
                .1,
            vec![enoch()]
        );
    }

    #[test]
    fn other_algorithms_are_kept_for_other_code() {
        // A line with a key id and a signature of another length (e.g. a
        // timestamped cosignature) parses and survives re-encoding.
        let cosig = NoteSignature {
            name: "witness.example/w1".into(),
            key_id: 0x0102_0304,
            signature: vec![0xab; 72],
        };
        let text = format!("{}{}", peter_signed(), cosig.to_line());
        let (note, by) = open(&text, &[peter()]).unwrap();
        assert_eq!(by, vec![peter()]);
        assert_eq!(note.signatures[1], cosig);
        assert_eq!(note.to_text(), text);
    }

    fn text_line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[^\\x00-\\x1f]{0,40}",
            "\u{2014} [a-z./]{1,12} [A-Za-z0-9+/]{4,12}",
            Just(String::new()),
        ]
    }

    fn note_text() -> impl Strategy<Value = String> {
        prop::collection::vec(text_line(), 1..6).prop_map(|lines| lines.join("\n") + "\n")
    }

    proptest! {
        #[test]
        fn sign_then_open_round_trips(seed in any::<[u8; 32]>(), text in note_text()) {
            // Any valid text signed by any key opens with that key, gives the
            // text back and re-encodes to the same bytes.
            let signer = NoteSigner::new("example.com/prop", SigningKey::from_bytes(&seed)).unwrap();
            let signed = signer.sign(&text).unwrap();
            let (note, by) = open(&signed, &[signer.verifier()]).unwrap();
            prop_assert_eq!(&note.text, &text);
            prop_assert_eq!(by, vec![signer.verifier()]);
            prop_assert_eq!(note.to_text(), signed.clone());
            let restored = NoteSigner::from_private_key(&signer.private_key()).unwrap();
            prop_assert_eq!(restored.verifier(), NoteVerifier::from_vkey(&signer.verifier().vkey()).unwrap());
        }

        #[test]
        fn any_body_byte_change_fails_to_open(
            seed in any::<[u8; 32]>(),
            text in note_text(),
            index in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            // Changing any one byte of the signed text makes the note either
            // invalid UTF-8 or impossible to open.
            let signer = NoteSigner::new("example.com/prop", SigningKey::from_bytes(&seed)).unwrap();
            let mut bytes = signer.sign(&text).unwrap().into_bytes();
            let i = index.index(text.len());
            bytes[i] = bytes[i].wrapping_add(delta);
            if let Ok(mutated) = String::from_utf8(bytes) {
                prop_assert!(open(&mutated, &[signer.verifier()]).is_err());
            }
        }

        #[test]
        fn any_signature_line_byte_change_fails_to_open(
            seed in any::<[u8; 32]>(),
            text in note_text(),
            index in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            // Changing any one byte of the blank line or the signature line
            // makes the note impossible to open.
            let signer = NoteSigner::new("example.com/prop", SigningKey::from_bytes(&seed)).unwrap();
            let mut bytes = signer.sign(&text).unwrap().into_bytes();
            let i = text.len() + index.index(bytes.len() - text.len());
            bytes[i] = bytes[i].wrapping_add(delta);
            if let Ok(mutated) = String::from_utf8(bytes) {
                prop_assert!(open(&mutated, &[signer.verifier()]).is_err());
            }
        }
    }
}
