//! The ssh-agent protocol's client messages (draft-miller-ssh-agent, OpenSSH's
//! PROTOCOL.agent): framing, the identities request and answer, the sign request and response.
//! Pure functions over bytes; the socket is in the parent module.
//!
//! Every message is `uint32 length, byte type, contents`. Lengths from the agent are checked
//! against [`MAX_FRAME`] before anything is allocated, and counts against the bytes that
//! remain.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::error::{Error, Result};
use crate::wire::{Reader, Writer};

/// Largest frame accepted or sent (OpenSSH's AGENT_MAX_LEN).
pub(crate) const MAX_FRAME: usize = 256 * 1024;

/// The agent could not do what was asked.
pub(crate) const SSH_AGENT_FAILURE: u8 = 5;
/// Client: list the keys the agent holds.
pub(crate) const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
/// Agent: the list of keys.
pub(crate) const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
/// Client: sign data with a key.
pub(crate) const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
/// Agent: the signature.
pub(crate) const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
/// Failure codes of older agents (ssh.com, OpenSSH's protocol 1 era) that OpenSSH's client
/// also treats as failure.
const SSH2_AGENT_FAILURE: u8 = 30;
const SSH_COM_AGENT2_FAILURE: u8 = 102;

/// Sign request flag: an RSA signature with SHA-256 (`rsa-sha2-256`, RFC 8332).
pub(crate) const SSH_AGENT_RSA_SHA2_256: u32 = 0x02;
/// Sign request flag: an RSA signature with SHA-512 (`rsa-sha2-512`, RFC 8332).
pub(crate) const SSH_AGENT_RSA_SHA2_512: u32 = 0x04;

/// A malformed or unexpected message from the agent.
fn malformed(what: &str) -> Error {
    Error::protocol(format!("ssh-agent sent a malformed {what}"))
}

/// Puts the length in front of a message body.
pub(crate) fn frame(body: &[u8]) -> Result<Vec<u8>> {
    let length = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| {
            Error::invalid_arg(format!(
                "ssh-agent request of {} bytes is over the {MAX_FRAME}-byte limit",
                body.len()
            ))
        })?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// The body length announced by a frame header: at least 1 (the type byte), at most
/// [`MAX_FRAME`].
pub(crate) fn frame_length(header: [u8; 4]) -> Result<usize> {
    let length = u32::from_be_bytes(header) as usize;
    if length == 0 {
        return Err(malformed("empty message"));
    }
    if length > MAX_FRAME {
        return Err(Error::protocol(format!(
            "ssh-agent sent a message of {length} bytes, over the {MAX_FRAME}-byte limit"
        )));
    }
    Ok(length)
}

/// The body of SSH_AGENTC_REQUEST_IDENTITIES.
pub(crate) fn request_identities() -> Vec<u8> {
    vec![SSH_AGENTC_REQUEST_IDENTITIES]
}

/// The flags a sign request carries for `algorithm`.
pub(crate) fn sign_flags(algorithm: &str) -> u32 {
    match algorithm {
        "rsa-sha2-256" | "rsa-sha2-256-cert-v01@openssh.com" => SSH_AGENT_RSA_SHA2_256,
        "rsa-sha2-512" | "rsa-sha2-512-cert-v01@openssh.com" => SSH_AGENT_RSA_SHA2_512,
        _ => 0,
    }
}

/// The body of SSH_AGENTC_SIGN_REQUEST: `string key blob, string data, uint32 flags`.
pub(crate) fn sign_request(key_blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(SSH_AGENTC_SIGN_REQUEST)
        .string(key_blob)
        .string(data)
        .u32(flags);
    w.into_bytes()
}

/// One key listed by the agent, as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) blob: Vec<u8>,
    pub(crate) comment: String,
}

/// Whether `kind` is one of the failure replies.
fn is_failure(kind: u8) -> bool {
    matches!(
        kind,
        SSH_AGENT_FAILURE | SSH2_AGENT_FAILURE | SSH_COM_AGENT2_FAILURE
    )
}

/// Splits the type byte off a reply, turning failure replies into `refused` and other
/// unexpected types into a protocol error.
fn reply_body(body: &[u8], expected: u8, refused: impl FnOnce() -> Error) -> Result<&[u8]> {
    match body.split_first() {
        Some((&kind, rest)) if kind == expected => Ok(rest),
        Some((&kind, _)) if is_failure(kind) => Err(refused()),
        Some((&kind, _)) => Err(Error::protocol(format!(
            "ssh-agent answered with message type {kind} where {expected} was expected"
        ))),
        None => Err(malformed("empty message")),
    }
}

/// Parses SSH_AGENT_IDENTITIES_ANSWER: `uint32 nkeys, (string key blob, string comment) *
/// nkeys`. The count is checked against the bytes present before anything is allocated for
/// it; comments that are not UTF-8 are converted lossily.
pub(crate) fn parse_identities(body: &[u8]) -> Result<Vec<Identity>> {
    let rest = reply_body(body, SSH_AGENT_IDENTITIES_ANSWER, || {
        Error::new(
            crate::ErrorKind::Refused,
            "ssh-agent refused to list its keys",
        )
    })?;
    let mut r = Reader::new(rest);
    let count = r
        .u32("identity count")
        .map_err(|_| malformed("identities answer (no count)"))? as usize;
    // Each identity takes at least two length fields.
    if count > r.remaining().len() / 8 {
        return Err(Error::protocol(format!(
            "ssh-agent claims {count} keys in a message of {} bytes",
            body.len()
        )));
    }
    let mut identities = Vec::with_capacity(count);
    for _ in 0..count {
        let blob = r
            .string("key blob")
            .map_err(|_| malformed("identities answer (bad key blob)"))?;
        let comment = r
            .string("comment")
            .map_err(|_| malformed("identities answer (bad comment)"))?;
        identities.push(Identity {
            blob: blob.to_vec(),
            comment: String::from_utf8_lossy(comment).into_owned(),
        });
    }
    r.finish("identities answer")
        .map_err(|_| malformed("identities answer (trailing bytes)"))?;
    Ok(identities)
}

/// Parses SSH_AGENT_SIGN_RESPONSE: `string signature` (the SSH signature blob). `refused`
/// describes a failure reply.
pub(crate) fn parse_sign_response(body: &[u8], refused: impl FnOnce() -> Error) -> Result<Vec<u8>> {
    let rest = reply_body(body, SSH_AGENT_SIGN_RESPONSE, refused)?;
    let mut r = Reader::new(rest);
    let signature = r
        .string("signature")
        .map_err(|_| malformed("sign response"))?;
    r.finish("sign response")
        .map_err(|_| malformed("sign response (trailing bytes)"))?;
    Ok(signature.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ErrorKind;

    fn identities_answer(count: u32, items: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(SSH_AGENT_IDENTITIES_ANSWER).u32(count);
        for (blob, comment) in items {
            w.string(blob).string(comment);
        }
        w.into_bytes()
    }

    #[test]
    fn frames() {
        assert_eq!(frame(&[11]).unwrap(), [0, 0, 0, 1, 11]);
        assert!(frame(&vec![0; MAX_FRAME]).is_ok());
        let err = frame(&vec![0; MAX_FRAME + 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg);
        assert_eq!(frame_length([0, 0, 0, 1]).unwrap(), 1);
        assert_eq!(frame_length([0, 4, 0, 0]).unwrap(), MAX_FRAME);
        for bad in [[0, 0, 0, 0], [0, 4, 0, 1], [0xff; 4], [0x80, 0, 0, 0]] {
            assert_eq!(frame_length(bad).unwrap_err().kind(), ErrorKind::Protocol);
        }
    }

    #[test]
    fn sign_request_and_flags() {
        assert_eq!(sign_flags("rsa-sha2-256"), SSH_AGENT_RSA_SHA2_256);
        assert_eq!(sign_flags("rsa-sha2-512"), SSH_AGENT_RSA_SHA2_512);
        assert_eq!(sign_flags("ssh-rsa"), 0);
        assert_eq!(sign_flags("ssh-ed25519"), 0);
        let body = sign_request(b"KEY", b"DATA", 4);
        assert_eq!(
            body,
            [
                &[13, 0, 0, 0, 3][..],
                b"KEY",
                &[0, 0, 0, 4],
                b"DATA",
                &[0, 0, 0, 4]
            ]
            .concat()
        );
    }

    #[test]
    fn identities() {
        let body = identities_answer(2, &[(b"blob1", b"first"), (b"blob2", b"\xffbad")]);
        let ids = parse_identities(&body).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].blob, b"blob1");
        assert_eq!(ids[0].comment, "first");
        assert_eq!(ids[1].comment, "\u{fffd}bad");
        assert!(parse_identities(&identities_answer(0, &[]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn hostile_identities() {
        // A huge count in a small message: refused before allocating.
        for count in [u32::MAX, 1 << 31, 3] {
            let err = parse_identities(&identities_answer(count, &[(b"a", b"b")])).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{count}");
        }
        // Fewer identities than claimed, with enough bytes to pass the bound.
        let body = identities_answer(2, &[(b"a", b"bbbbbbbbbbbbbbbbbbbbbbbbbbbb")]);
        assert_eq!(
            parse_identities(&body).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        // A string length past the end.
        let mut body = identities_answer(1, &[]);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            parse_identities(&body).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        // Trailing bytes, truncated count, empty, failure, unexpected type.
        let mut body = identities_answer(0, &[]);
        body.push(0);
        assert_eq!(
            parse_identities(&body).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            parse_identities(&[12, 0, 0]).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            parse_identities(&[]).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        for failure in [5, 30, 102] {
            let err = parse_identities(&[failure]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Refused);
        }
        let err = parse_identities(&[14, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.message().contains("type 14"), "{err}");
        // Every truncation of a good answer fails cleanly.
        let good = identities_answer(2, &[(b"blob1", b"first"), (b"blob2", b"second")]);
        for n in 0..good.len() {
            assert!(parse_identities(&good[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn sign_responses() {
        let refused = || Error::new(ErrorKind::Refused, "no");
        let mut w = Writer::new();
        w.u8(SSH_AGENT_SIGN_RESPONSE).string(b"SIG");
        let good = w.into_bytes();
        assert_eq!(parse_sign_response(&good, refused).unwrap(), b"SIG");
        for n in 0..good.len() {
            assert!(parse_sign_response(&good[..n], refused).is_err(), "{n}");
        }
        let mut long = good.clone();
        long.push(1);
        assert_eq!(
            parse_sign_response(&long, refused).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            parse_sign_response(&[5], refused).unwrap_err().kind(),
            ErrorKind::Refused
        );
        assert_eq!(
            parse_sign_response(&[14, 0xff, 0xff, 0xff, 0xff], refused)
                .unwrap_err()
                .kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            parse_sign_response(&[6 /* SSH_AGENT_SUCCESS */], refused)
                .unwrap_err()
                .kind(),
            ErrorKind::Protocol
        );
    }
}
