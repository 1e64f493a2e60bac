//! OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): checking a server's host
//! key, appending a new host, and the hashed host name form of `HashKnownHosts`.
//!
//! Lines are parsed by `ssh-key`'s known_hosts parser; host matching follows OpenSSH's
//! `match_hostname`: comma-separated patterns with `*` and `?`, `!pattern` negation (a negated
//! match excludes the line even if another pattern matches), case-insensitive, and
//! `|1|salt|hash` hashed names (HMAC-SHA1 of the name keyed with the salt).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::PublicKey;

/// The verdict of [`check_known_hosts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A line lists this host with this key.
    Match,
    /// No line lists this host with a key of this type.
    NotFound,
    /// A line lists this host with another key of the same type; `line` is 1-based.
    Mismatch { line: usize },
    /// The key is marked `@revoked` for this host on `line` (1-based).
    Revoked { line: usize },
}

/// Checks `key` for `host` on `port` against the known_hosts file at `path`.
///
/// A missing file is [`HostKeyStatus::NotFound`]. Port 22 looks up the bare host name, other
/// ports `[host]:port`, as OpenSSH writes them. A `@revoked` line for this host and key gives
/// [`HostKeyStatus::Revoked`] whatever other lines say; otherwise any line with this key gives
/// [`HostKeyStatus::Match`], and a line with another key of the same type gives
/// [`HostKeyStatus::Mismatch`] (the first such line). Lines with a key of another type do not
/// count (OpenSSH: "not found" for this type). `@cert-authority` lines are skipped for now, and
/// so are lines that fail to parse.
pub fn check_known_hosts(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<HostKeyStatus> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HostKeyStatus::NotFound),
        Err(e) => return Err(io_error("cannot read known_hosts file", path, &e)),
    };
    Ok(check_text(
        &String::from_utf8_lossy(&bytes),
        &lookup_name(host, port),
        key,
    ))
}

/// Appends a plain (not hashed) line for `host`/`port` and `key` to the known_hosts file at
/// `path`, creating the file with mode 0600 if needed (its directory must exist). Used for
/// `StrictHostKeyChecking=accept-new`.
pub fn add_known_host(path: &Path, host: &str, port: u16, key: &PublicKey) -> Result<()> {
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || ",*?".contains(c);
    if host.is_empty() || host.contains(bad_char) || host.starts_with(['!', '@', '|', '#', '[']) {
        return Err(Error::invalid_arg(format!(
            "cannot add {host:?} to known_hosts: not a plain host name"
        )));
    }
    let line = format!("{} {}\n", lookup_name(host, port), key.to_openssh());

    let mut options = fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| io_error("cannot open known_hosts file", path, &e))?;
    let write = |file: &mut fs::File| -> std::io::Result<()> {
        // Do not glue the new entry onto a last line that lacks its newline.
        if file.seek(SeekFrom::End(0))? > 0 {
            file.seek(SeekFrom::End(-1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last != *b"\n" {
                file.write_all(b"\n")?;
            }
        }
        file.write_all(line.as_bytes())?;
        file.flush()
    };
    write(&mut file).map_err(|e| io_error("cannot write known_hosts file", path, &e))
}

/// OpenSSH's `HashKnownHosts` form of a host name (already in `host` or `[host]:port` form)
/// with the given salt: `|1|salt64|hash64`.
pub fn hash_host(host: &str, salt: &[u8]) -> String {
    format!(
        "|1|{}|{}",
        Base64::encode_string(salt),
        Base64::encode_string(&host_hmac(host, salt))
    )
}

/// HMAC-SHA1 of `host` keyed with `salt`.
fn host_hmac(host: &str, salt: &[u8]) -> [u8; 20] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(host.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The name a host is listed under: `host` for port 22, `[host]:port` otherwise, lower case.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

/// The check on a file's text, for the looked-up `name`.
fn check_text(text: &str, name: &str, key: &PublicKey) -> HostKeyStatus {
    let mut matched = false;
    let mut mismatch = None;
    for (index, line) in text.lines().enumerate() {
        let Some((marker, patterns, line_key)) = parse_line(line) else {
            continue;
        };
        if marker == Some(Marker::CertAuthority)
            || line_key.key_type() != key.key_type()
            || !host_matches(&patterns, name)
        {
            continue;
        }
        let same_key = line_key == *key;
        match marker {
            Some(Marker::Revoked) if same_key => return HostKeyStatus::Revoked { line: index + 1 },
            Some(_) => {}
            None if same_key => matched = true,
            None => {
                mismatch.get_or_insert(index + 1);
            }
        }
    }
    match (matched, mismatch) {
        (true, _) => HostKeyStatus::Match,
        (false, Some(line)) => HostKeyStatus::Mismatch { line },
        (false, None) => HostKeyStatus::NotFound,
    }
}

/// Parses one line; None for blank lines, comments, and lines that do not parse or hold a key
/// type Sekura does not support.
fn parse_line(line: &str) -> Option<(Option<Marker>, HostPatterns, PublicKey)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // ssh-key splits fields on single spaces; OpenSSH allows any run of blanks.
    let normalized = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let entry: Entry = normalized.parse().ok()?;
    let key = PublicKey::from_blob(&entry.public_key().to_bytes().ok()?).ok()?;
    Some((entry.marker().copied(), entry.host_patterns().clone(), key))
}

/// Whether a line's host field lists `name` (OpenSSH's `match_hostname`).
fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
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
fn glob_match(text: &[u8], pattern: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testutil::{generate, ssh_keygen, TempDir};
    use crate::keys::PrivateKey;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::ed25519_from_seed([seed; 32]).public_key()
    }

    /// `ssh-keygen -H` applied to `lines`; returns the hashed lines.
    fn hashed_by_ssh_keygen(dir: &TempDir, lines: &str) -> Vec<String> {
        let path = dir.join("to_hash");
        fs::write(&path, lines).unwrap();
        ssh_keygen(&["-q", "-H", "-f", path.to_str().unwrap()]);
        let hashed = fs::read_to_string(&path).unwrap();
        hashed.lines().map(str::to_string).collect()
    }

    #[test]
    fn known_hosts_verdicts() {
        let dir = TempDir::new("hostkeys-check");
        let (a, b, revoked, ca) = (key(1), key(2), key(3), key(4));
        let ecdsa_path = dir.join("ecdsa");
        generate(&ecdsa_path, "ecdsa", Some(256), "", &[]);
        let ecdsa =
            PublicKey::from_openssh(&fs::read_to_string(ecdsa_path.with_extension("pub")).unwrap())
                .unwrap();
        let hashed = hashed_by_ssh_keygen(
            &dir,
            &format!("hashed.example.com {a}\n[hashed.example.com]:2200 {b}\n"),
        );
        assert_eq!(hashed.len(), 2);
        assert!(hashed.iter().all(|l| l.starts_with("|1|")), "{hashed:?}");

        let lines = [
            "# known hosts for the test".to_string(),
            format!("plain.example.com,192.0.2.1 {a}"),
            format!("[plain.example.com]:2222 {b} comment"),
            format!("*.wild.example.net,!bad.wild.example.net {a}"),
            format!("@revoked * {revoked}"),
            format!("revoked.example.com {revoked}"),
            format!("@cert-authority *.example.com {ca}"),
            "this line does not parse".to_string(),
            format!(
                "host?.example.org\t{}   ",
                a.to_openssh().replace(' ', "\t")
            ),
            format!("ecdsa.example.com {ecdsa}"),
            String::new(),
            hashed[0].clone(),
            hashed[1].clone(),
            "ssh-dss.example.com ssh-dss AAAAB3NzaC1kc3MAAACBAP".to_string(),
        ];
        let path = dir.join("known_hosts");
        fs::write(&path, lines.join("\n")).unwrap();
        let check =
            |host: &str, port: u16, k: &PublicKey| check_known_hosts(&path, host, port, k).unwrap();
        use HostKeyStatus::*;

        assert_eq!(check("plain.example.com", 22, &a), Match);
        assert_eq!(check("PLAIN.Example.COM", 22, &a), Match);
        assert_eq!(check("192.0.2.1", 22, &a), Match);
        assert_eq!(check("plain.example.com", 22, &b), Mismatch { line: 2 });
        assert_eq!(check("plain.example.com", 2222, &b), Match);
        assert_eq!(check("plain.example.com", 2222, &a), Mismatch { line: 3 });
        assert_eq!(check("plain.example.com", 2223, &a), NotFound);
        assert_eq!(check("other.example.com", 22, &a), NotFound);
        // Another key type for a listed host is not a mismatch.
        assert_eq!(check("plain.example.com", 22, &ecdsa), NotFound);
        assert_eq!(check("ecdsa.example.com", 22, &ecdsa), Match);
        assert_eq!(check("ecdsa.example.com", 22, &a), NotFound);

        // Wildcards and negation.
        assert_eq!(check("x.wild.example.net", 22, &a), Match);
        assert_eq!(check("x.y.wild.example.net", 22, &b), Mismatch { line: 4 });
        assert_eq!(check("bad.wild.example.net", 22, &a), NotFound);
        assert_eq!(check("wild.example.net", 22, &a), NotFound);
        assert_eq!(check("host1.example.org", 22, &a), Match);
        assert_eq!(check("host12.example.org", 22, &a), NotFound);

        // @revoked wins over a matching line; @cert-authority lines are skipped.
        assert_eq!(
            check("revoked.example.com", 22, &revoked),
            Revoked { line: 5 }
        );
        assert_eq!(
            check("anything.example", 2222, &revoked),
            Revoked { line: 5 }
        );
        assert_eq!(check("x.example.com", 22, &ca), NotFound);

        // Hashed entries made by ssh-keygen -H.
        assert_eq!(check("hashed.example.com", 22, &a), Match);
        assert_eq!(check("hashed.example.com", 22, &b), Mismatch { line: 12 });
        assert_eq!(check("hashed.example.com", 2200, &b), Match);
        assert_eq!(check("hashed.example.com", 2201, &b), NotFound);

        assert_eq!(
            check_known_hosts(&dir.join("missing"), "h", 22, &a).unwrap(),
            NotFound
        );
    }

    #[test]
    fn hash_host_matches_ssh_keygen() {
        let dir = TempDir::new("hostkeys-hash");
        let k = key(9);
        for name in [
            "example.com",
            "[example.com]:2222",
            "192.0.2.7",
            "[::1]:22022",
        ] {
            let hashed = hashed_by_ssh_keygen(&dir, &format!("{name} {k}\n"));
            let field = hashed[0].split(' ').next().unwrap();
            let salt64 = field
                .strip_prefix("|1|")
                .unwrap()
                .split('|')
                .next()
                .unwrap();
            let salt = Base64::decode_vec(salt64).unwrap();
            assert_eq!(hash_host(name, &salt), field, "{name}");
        }
    }

    #[test]
    fn add_then_check() {
        let dir = TempDir::new("hostkeys-add");
        let path = dir.join("known_hosts");
        let (a, b) = (key(5), key(6));
        add_known_host(&path, "new.example.com", 22, &a).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        add_known_host(&path, "New.Example.com", 2022, &b).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("new.example.com {a}\n[new.example.com]:2022 {b}\n")
        );
        assert_eq!(
            check_known_hosts(&path, "new.example.com", 22, &a).unwrap(),
            HostKeyStatus::Match
        );
        assert_eq!(
            check_known_hosts(&path, "new.example.com", 2022, &b).unwrap(),
            HostKeyStatus::Match
        );
        assert_eq!(
            check_known_hosts(&path, "new.example.com", 22, &b).unwrap(),
            HostKeyStatus::Mismatch { line: 1 }
        );

        // A file whose last line has no newline gets one before the new entry.
        let path = dir.join("no_newline");
        fs::write(&path, format!("old.example.com {a}")).unwrap();
        add_known_host(&path, "::1", 2222, &b).unwrap();
        assert_eq!(
            check_known_hosts(&path, "old.example.com", 22, &a).unwrap(),
            HostKeyStatus::Match
        );
        assert_eq!(
            check_known_hosts(&path, "::1", 2222, &b).unwrap(),
            HostKeyStatus::Match
        );

        let err = add_known_host(&dir.join("no/such/dir"), "h", 22, &a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("no/such/dir"), "{err}");
        for bad in ["", "a b", "a,b", "*", "!x", "h\nevil.example.com"] {
            let err = add_known_host(&path, bad, 22, &a).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArg, "{bad:?}");
        }
    }

    #[test]
    fn glob_patterns() {
        assert!(glob_match(b"abc", b"abc"));
        assert!(glob_match(b"abc", b"*"));
        assert!(glob_match(b"", b"*"));
        assert!(glob_match(b"abc", b"a*c"));
        assert!(glob_match(b"abc", b"a?c"));
        assert!(glob_match(b"axxbxxc", b"a*b*c"));
        assert!(!glob_match(b"abc", b"a?"));
        assert!(!glob_match(b"abcd", b"a*c"));
        assert!(!glob_match(b"", b"?"));
        let long = vec![b'a'; 5000];
        assert!(!glob_match(&long, b"*a*a*a*a*a*a*a*b"));
    }
}
