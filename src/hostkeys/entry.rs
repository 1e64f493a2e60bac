//! One known_hosts line: its fields as OpenSSH reads them (hostfile.c), and host matching as
//! OpenSSH's `match_hostname` does it.
//!
//! A line is `[@marker] hosts keytype base64 [comment]`, fields separated by runs of spaces or
//! tabs. The marker and the host field are parsed by `ssh-key`'s known_hosts types; the key is
//! decoded here so that a line whose key type Sekura cannot use still has a host field (and so
//! can still be removed, as `ssh-keygen -R` would).

use std::str::FromStr;

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use ssh_key::known_hosts::{HostPatterns, Marker};
use subtle::ConstantTimeEq;

use crate::keys::PublicKey;
use crate::wire::Reader;

/// The fields of a known_hosts line that holds a host key.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) marker: Option<Marker>,
    pub(crate) hosts: HostPatterns,
    /// The key, or None when its type is one Sekura does not support (the line still counts
    /// for [`super::HostKeys::remove`]).
    pub(crate) key: Option<PublicKey>,
}

impl Entry {
    /// Parses a line. None for blank lines, comments, unknown markers and lines whose fields
    /// are malformed: those are kept in the file as they are and otherwise ignored, as
    /// OpenSSH ignores them.
    pub(crate) fn parse(line: &[u8]) -> Option<Entry> {
        let line = std::str::from_utf8(line).ok()?;
        let mut fields = line
            .split([' ', '\t', '\r'])
            .filter(|field| !field.is_empty());
        let mut first = fields.next()?;
        if first.starts_with('#') {
            return None;
        }
        let marker = match first.strip_prefix('@') {
            Some(_) => {
                let marker = Marker::from_str(first).ok()?;
                first = fields.next()?;
                Some(marker)
            }
            None => None,
        };
        let hosts = HostPatterns::from_str(first).ok()?;
        if let HostPatterns::HashedName { salt, .. } = &hosts {
            // OpenSSH's extract_salt: the salt is a SHA-1 block.
            if salt.len() != 20 {
                return None;
            }
        }
        let (type_name, base64) = (fields.next()?, fields.next()?);
        let blob = Base64::decode_vec(base64).ok()?;
        // The blob must be of the type the line names (OpenSSH's sshkey_read).
        if Reader::new(&blob).utf8("key type").ok()? != type_name {
            return None;
        }
        Some(Entry {
            marker,
            hosts,
            key: PublicKey::from_blob(&blob).ok(),
        })
    }

    /// Whether the host field lists `name` (see [`host_matches`]).
    pub(crate) fn matches(&self, name: &str) -> bool {
        host_matches(&self.hosts, name)
    }

    /// Whether the host field is exactly `name` and nothing else: one plain name, or a hashed
    /// name of it. Such lines are what [`super::HostKeys::add`] writes, and replaces.
    pub(crate) fn is_only(&self, name: &str) -> bool {
        match &self.hosts {
            HostPatterns::HashedName { .. } => self.matches(name),
            HostPatterns::Patterns(list) => {
                matches!(list.as_slice(), [only] if only.eq_ignore_ascii_case(name))
            }
        }
    }

    /// Whether the host field is a hashed name.
    pub(crate) fn is_hashed(&self) -> bool {
        matches!(self.hosts, HostPatterns::HashedName { .. })
    }
}

/// HMAC-SHA1 of `host` keyed with `salt`: the hash of a `|1|salt|hash` host field.
pub(crate) fn host_hmac(host: &str, salt: &[u8]) -> [u8; 20] {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(host.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Whether a line's host field lists `name` (OpenSSH's `match_hostname`): a hashed name is
/// compared in constant time; a pattern list matches when a pattern matches and no negated
/// (`!pattern`) one does. Comparison ignores ASCII case; `name` is expected in lower case.
pub(crate) fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => host_hmac(name, salt).ct_eq(hash).into(),
        HostPatterns::Patterns(list) => {
            let mut positive = false;
            for pattern in list {
                let (negated, pattern) = match pattern.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, pattern.as_str()),
                };
                if glob_match(name.as_bytes(), pattern.to_ascii_lowercase().as_bytes()) {
                    if negated {
                        return false;
                    }
                    positive = true;
                }
            }
            positive
        }
    }
}

/// `*` matches any run of bytes, `?` any one byte (OpenSSH's `match_pattern`), in time
/// proportional to the product of the lengths at worst.
pub(crate) fn glob_match(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&q) if q == b'?' || q == c => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&q| q == b'*')
}
