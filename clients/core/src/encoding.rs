//! Canonical binary layout of every signed message and log entry.
//!
//! A signed message is a context label (ASCII, naming the message and its
//! version) followed by a single 0x00 byte, then its fields in a fixed order:
//! fixed-size byte strings raw, integers as big-endian u64, variable-length
//! byte strings as a big-endian u16 length and the bytes. Labels never contain
//! 0x00, so no two messages of different kinds share a byte string: a
//! signature made for one purpose cannot be replayed for another.

use thiserror::Error;

/// Decoding failures of canonical byte strings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated: {field} needs {needed} more bytes")]
    Truncated { field: &'static str, needed: usize },
    #[error("{0} trailing bytes after the last field")]
    Trailing(usize),
    #[error("field {field} is not valid: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// Writes fields in canonical order.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a signed message with its context label.
    pub fn labelled(label: &str) -> Self {
        debug_assert!(!label.as_bytes().contains(&0));
        let mut buf = Vec::with_capacity(label.len() + 128);
        buf.extend_from_slice(label.as_bytes());
        buf.push(0);
        Writer { buf }
    }

    /// Starts an unlabelled byte string (log entries carry a kind byte instead).
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.buf.push(v);
        self
    }

    pub fn u64(mut self, v: u64) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn fixed(mut self, v: &[u8]) -> Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A variable-length field: u16 length, then the bytes. Callers bound
    /// lengths before encoding (origins and names are short by validation).
    pub fn var(mut self, v: &[u8]) -> Self {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(&v[..usize::from(len)]);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields in canonical order; every read names its field for errors.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.fixed::<8>(field)?;
        Ok(u64::from_be_bytes(b))
    }

    pub fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn var(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.take(2, field)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        self.take(len, field)
    }

    /// Fails unless every byte was consumed: canonical means no slack.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(self.rest.len()))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // A labelled message has the label, one zero byte, then the fields in order.
    #[test]
    fn layout_is_label_nul_fields() {
        let b = Writer::labelled("x")
            .u64(258)
            .fixed(&[7; 2])
            .var(b"ab")
            .finish();
        assert_eq!(b, [b'x', 0, 0, 0, 0, 0, 0, 0, 1, 2, 7, 7, 0, 2, b'a', b'b']);
    }

    // Reading back what was written succeeds, and trailing or missing bytes fail.
    #[test]
    fn reader_is_strict() {
        let b = Writer::new().u64(5).var(b"hello").u8(9).finish();
        let mut r = Reader::new(&b);
        assert_eq!(r.u64("a").unwrap(), 5);
        assert_eq!(r.var("b").unwrap(), b"hello");
        assert_eq!(r.u8("c").unwrap(), 9);
        r.finish().unwrap();

        let mut long = b.clone();
        long.push(0);
        let mut r = Reader::new(&long);
        r.u64("a").unwrap();
        r.var("b").unwrap();
        r.u8("c").unwrap();
        assert_eq!(r.finish(), Err(DecodeError::Trailing(1)));

        let mut r = Reader::new(&b[..b.len() - 3]);
        r.u64("a").unwrap();
        assert!(matches!(r.var("b"), Err(DecodeError::Truncated { .. })));
    }
}
