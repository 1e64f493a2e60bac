//! SSH wire encoding (RFC 4251 §5): byte, boolean, uint32, uint64, string, mpint, name-list.
//!
//! [`Reader`] parses borrowed bytes and never panics: every read checks what remains and
//! fails with [`WireError`] instead. [`Writer`] appends to a `Vec<u8>`.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt;

/// A message was shorter than its fields claim, or a field was malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// What was being read when the input ran out or was malformed.
    pub what: &'static str,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: bad or truncated {}", self.what)
    }
}

impl std::error::Error for WireError {}

/// Result of a wire read.
pub type WireResult<T> = Result<T, WireError>;

fn err<T>(what: &'static str) -> WireResult<T> {
    Err(WireError { what })
}

/// A cursor over an SSH-encoded message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Fails unless every byte has been read, for messages that allow no trailing data.
    pub fn finish(&self, what: &'static str) -> WireResult<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            err(what)
        }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> WireResult<&'a [u8]> {
        if n > self.rest.len() {
            return err(what);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> WireResult<u8> {
        let (&b, tail) = match self.rest.split_first() {
            Some(x) => x,
            None => return err(what),
        };
        self.rest = tail;
        Ok(b)
    }

    /// Reads a boolean: any non-zero byte is true (RFC 4251).
    pub fn bool(&mut self, what: &'static str) -> WireResult<bool> {
        Ok(self.u8(what)? != 0)
    }

    /// Reads a big-endian uint32.
    pub fn u32(&mut self, what: &'static str) -> WireResult<u32> {
        let b = self.bytes(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    /// Reads a big-endian uint64.
    pub fn u64(&mut self, what: &'static str) -> WireResult<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads a length-prefixed string. The length is checked against what remains before
    /// anything is taken, so a hostile length costs nothing.
    pub fn string(&mut self, what: &'static str) -> WireResult<&'a [u8]> {
        let n = self.u32(what)? as usize;
        self.bytes(n, what)
    }

    /// Reads a string that must be UTF-8 text.
    pub fn utf8(&mut self, what: &'static str) -> WireResult<&'a str> {
        std::str::from_utf8(self.string(what)?).or_else(|_| err(what))
    }

    /// Reads a name-list: comma-separated ASCII names. Empty elements (libssh sends a
    /// trailing comma) name nothing, so they are dropped rather than refused, as OpenSSH does.
    pub fn name_list(&mut self, what: &'static str) -> WireResult<Vec<&'a str>> {
        let s = self.utf8(what)?;
        if !s.is_ascii() {
            return err(what);
        }
        Ok(s.split(',').filter(|n| !n.is_empty()).collect())
    }

    /// Reads an mpint and returns its magnitude as unsigned big-endian bytes without leading
    /// zeros. Negative values are refused: SSH never sends them where we read them.
    pub fn mpint_unsigned(&mut self, what: &'static str) -> WireResult<&'a [u8]> {
        let b = self.string(what)?;
        match b.first() {
            Some(&first) if first & 0x80 != 0 => err(what),
            _ => {
                let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                b.get(start..).map_or_else(|| err(what), Ok)
            }
        }
    }
}

/// Builds an SSH-encoded message.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty message.
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    /// A message that starts with the message number `msg`.
    pub fn message(msg: u8) -> Self {
        let mut w = Writer {
            buf: Vec::with_capacity(64),
        };
        w.u8(msg);
        w
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Gives up the bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a boolean.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Appends a big-endian uint32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian uint64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes with no length prefix.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a length-prefixed string.
    ///
    /// # Panics
    /// Never for SSH messages: strings are bounded by the packet size, far below 4 GiB.
    pub fn string(&mut self, v: impl AsRef<[u8]>) -> &mut Self {
        let v = v.as_ref();
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.raw(v)
    }

    /// Appends a name-list.
    pub fn name_list<S: AsRef<str>>(&mut self, names: &[S]) -> &mut Self {
        let joined: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        self.string(joined.join(","))
    }

    /// Appends a non-negative mpint from unsigned big-endian bytes (leading zeros allowed).
    pub fn mpint_unsigned(&mut self, magnitude: &[u8]) -> &mut Self {
        let start = magnitude
            .iter()
            .position(|&x| x != 0)
            .unwrap_or(magnitude.len());
        let digits = magnitude.get(start..).unwrap_or(&[]);
        let pad = digits.first().is_some_and(|&b| b & 0x80 != 0);
        let len = digits.len() + usize::from(pad);
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
        if pad {
            self.u8(0);
        }
        self.raw(digits)
    }
}

/// Encodes unsigned big-endian bytes as a standalone mpint (length prefix included).
pub fn mpint_bytes(magnitude: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.mpint_unsigned(magnitude);
    w.into_bytes()
}

/// Encodes bytes as a standalone string (length prefix included).
pub fn string_bytes(v: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(v);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn mpint_examples_from_rfc4251() {
        assert_eq!(mpint_bytes(&[]), [0, 0, 0, 0]);
        assert_eq!(
            mpint_bytes(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]),
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        );
        assert_eq!(mpint_bytes(&[0x80]), [0, 0, 0, 2, 0, 0x80]);
        assert_eq!(mpint_bytes(&[0, 0, 0x80]), [0, 0, 0, 2, 0, 0x80]);
    }

    #[test]
    fn mpint_round_trip_and_negative_refused() {
        let enc = mpint_bytes(&[0x80, 1]);
        assert_eq!(Reader::new(&enc).mpint_unsigned("x").unwrap(), [0x80, 1]);
        assert!(Reader::new(&[0, 0, 0, 1, 0xff])
            .mpint_unsigned("x")
            .is_err());
    }

    #[test]
    fn hostile_lengths_fail_without_panic() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.string("payload"), Err(WireError { what: "payload" }));
        assert!(Reader::new(&[0, 0]).u32("n").is_err());
        assert!(Reader::new(&[]).u8("b").is_err());
    }

    #[test]
    fn name_lists() {
        let mut w = Writer::new();
        w.name_list(&["a", "b-c@d"]).name_list::<&str>(&[]);
        let mut r = Reader::new(w.as_bytes());
        assert_eq!(r.name_list("l").unwrap(), ["a", "b-c@d"]);
        assert!(r.name_list("l").unwrap().is_empty());
        assert!(r.finish("trailing").is_ok());
        assert!(Reader::new(&[0, 0, 0, 2, b'a', 0xc3])
            .name_list("l")
            .is_err());
    }

    #[test]
    fn empty_name_list_elements_name_nothing() {
        for (text, names) in [
            ("a,b,", &["a", "b"][..]),
            (",a", &["a"]),
            ("a,,b", &["a", "b"]),
            (",", &[]),
        ] {
            let mut w = Writer::new();
            w.string(text);
            assert_eq!(Reader::new(w.as_bytes()).name_list("l").unwrap(), names);
        }
    }
}
