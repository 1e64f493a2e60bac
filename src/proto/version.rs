//! Protocol version exchange (RFC 4253 §4.2).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::{Error, ErrorKind, Result};

/// Our identification string, without CR LF.
pub fn our_version() -> String {
    format!("SSH-2.0-Sekura_{}", env!("CARGO_PKG_VERSION"))
}

/// The longest identification line RFC 4253 allows, CR LF included.
const MAX_VERSION_LINE: usize = 255;
/// Lines a server may send before its identification (OpenSSH allows the same number).
const MAX_PRE_LINES: usize = 1024;
/// Longest such line; they are free text but must not be an unbounded buffer.
const MAX_PRE_LINE: usize = 8192;

/// Collects the peer's identification line from the start of the stream.
#[derive(Debug, Default)]
pub struct VersionReader {
    lines_seen: usize,
}

impl VersionReader {
    /// Looks for the identification line in `buf`. Returns the line (without CR LF) if it
    /// is complete, and how many bytes were consumed: the lines before it are consumed as
    /// they complete, so an endless preamble never needs an endless buffer.
    pub fn parse(&mut self, buf: &[u8]) -> Result<(Option<Vec<u8>>, usize)> {
        let mut start = 0;
        loop {
            let rest = buf.get(start..).unwrap_or_default();
            let nl = rest.iter().position(|&b| b == b'\n');
            let text = nl.map_or(rest, |n| rest.get(..n).unwrap_or_default());
            check_line_bytes(text)?;
            let Some(nl) = nl else {
                let limit = if rest.starts_with(b"SSH-") {
                    MAX_VERSION_LINE
                } else {
                    MAX_PRE_LINE
                };
                if rest.len() > limit {
                    return Err(bad("identification line too long"));
                }
                return Ok((None, start));
            };
            let line = rest.get(..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let consumed = start + nl + 1;
            if line.starts_with(b"SSH-") {
                if nl + 1 > MAX_VERSION_LINE {
                    return Err(bad("identification line longer than 255 bytes"));
                }
                check_version(line)?;
                return Ok((Some(line.to_vec()), consumed));
            }
            if nl > MAX_PRE_LINE {
                return Err(bad("line before the identification too long"));
            }
            self.lines_seen += 1;
            if self.lines_seen > MAX_PRE_LINES {
                return Err(bad("too many lines before the identification"));
            }
            start = consumed;
        }
    }
}

/// Like OpenSSH, refuse a NUL anywhere, or a CR that does not end the line: no real banner
/// has them, and binary garbage is then reported at once instead of at the timeout.
fn check_line_bytes(text: &[u8]) -> Result<()> {
    let body = text.strip_suffix(b"\r").unwrap_or(text);
    if body.iter().any(|&b| b == 0 || b == b'\r') {
        return Err(bad(
            "banner line contains invalid characters (peer does not speak SSH)",
        ));
    }
    Ok(())
}

fn bad(what: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("version exchange failed: {what}"),
    )
}

fn check_version(line: &[u8]) -> Result<()> {
    if line.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(bad("identification line has non-printable characters"));
    }
    if line.starts_with(b"SSH-2.0-") || line.starts_with(b"SSH-1.99-") {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(line);
    Err(bad(&format!("peer does not speak SSH-2 ({shown})")))
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
    fn tolerates_lines_before_identification() {
        let mut r = VersionReader::default();
        let input = b"hello\r\nworld\nSSH-2.0-OpenSSH_9.2 Debian\r\nrest";
        let (line, used) = r.parse(input).unwrap();
        assert_eq!(line.unwrap(), b"SSH-2.0-OpenSSH_9.2 Debian");
        assert_eq!(&input[used..], b"rest");
    }

    #[test]
    fn binary_garbage_fails_at_once() {
        assert!(VersionReader::default().parse(b"ab\0cd").is_err());
        assert!(VersionReader::default().parse(b"ab\rcd\n").is_err());
        assert!(VersionReader::default().parse(b"ok line\r\n").is_ok());
    }

    #[test]
    fn waits_for_more_input() {
        assert_eq!(
            VersionReader::default().parse(b"SSH-2.0-Open").unwrap(),
            (None, 0)
        );
        assert_eq!(
            VersionReader::default()
                .parse(b"pre\nSSH-2.0-Open")
                .unwrap(),
            (None, 4)
        );
    }

    #[test]
    fn refuses_ssh1_garbage_and_overlong_lines() {
        let mut r = VersionReader::default();
        assert!(r.parse(b"SSH-1.5-old\r\n").is_err());
        assert!(VersionReader::default().parse(&[b'x'; 9000]).is_err());
        let mut long = b"SSH-2.0-".to_vec();
        long.extend([b'a'; 300]);
        assert!(VersionReader::default().parse(&long).is_err());
        let mut r = VersionReader::default();
        let half = b"x\n".repeat(MAX_PRE_LINES / 2 + 1);
        assert_eq!(r.parse(&half).unwrap(), (None, half.len()));
        assert!(r.parse(&half).is_err(), "the line limit spans calls");
    }
}
