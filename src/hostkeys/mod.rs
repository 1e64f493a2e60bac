//! OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"), as Paramiko's HostKeys.
//!
//! [`HostKeys`] holds the lines of one or more files: a user file ([`HostKeys::load`]) that
//! can be changed and saved back, and system files ([`HostKeys::load_system`]) that are
//! consulted but never written. Saving keeps every line it did not change byte for byte:
//! comments, blank lines, lines it cannot parse and lines with key types it does not know.
//!
//! Host matching follows OpenSSH's `match_hostname`: comma-separated patterns with `*` and `?`,
//! `!pattern` negation (a negated match excludes the line even if another pattern matches),
//! case-insensitive, and `|1|salt|hash` hashed names (HMAC-SHA1 of the name keyed with the
//! salt). Port 22 is looked up under the bare host name, other ports under `[host]:port`.
//!
//! The free functions [`check_known_hosts`] and [`add_known_host`] work on a file directly.

mod entry;
mod file;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64ct::{Base64, Encoding};
use ssh_key::known_hosts::Marker;

use crate::crypto::rng::{OsRandom, SecureRandom};
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use entry::{host_hmac, Entry};
use file::io_error;

/// The verdict of a host key check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A line lists this host with this key.
    Match,
    /// No line lists this host.
    NotFound,
    /// A line lists this host with another key (of this type or another); `line` is 1-based.
    Mismatch { line: usize },
    /// The key is marked `@revoked` for this host on `line` (1-based).
    Revoked { line: usize },
}

impl HostKeyCheck {
    /// Why `key` is refused for `name` (a host as known_hosts names it, `[host]:port` off
    /// port 22), naming the line that decided; None for a match. The one wording of every
    /// known_hosts verdict.
    pub fn refusal(&self, name: &str, key: &PublicKey) -> Option<String> {
        let place = |line: usize| match &self.file {
            Some(file) => format!("{} line {line}", file.display()),
            None => format!("known_hosts line {line} (added, not yet saved)"),
        };
        let which = format!("{} host key {}", key.key_type(), key.fingerprint_sha256());
        match self.status {
            HostKeyStatus::Match => None,
            HostKeyStatus::NotFound => {
                Some(format!("no {} host key known for {name}", key.key_type()))
            }
            HostKeyStatus::Mismatch { line } => {
                Some(format!("{which} for {name} does not match {}", place(line)))
            }
            HostKeyStatus::Revoked { line } => {
                Some(format!("{which} for {name} is revoked ({})", place(line)))
            }
        }
    }
}

/// A host key check with the file of the line it names, from [`HostKeys::check_detailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyCheck {
    /// The verdict.
    pub status: HostKeyStatus,
    /// The file holding the line of a `Mismatch` or `Revoked` verdict; None for other verdicts
    /// and for lines added since loading (their number is the one [`HostKeys::save`] gives
    /// them).
    pub file: Option<PathBuf>,
}

/// Where a line came from.
#[derive(Clone, Debug)]
struct Origin {
    /// The file, or None for a line added with [`HostKeys::add`].
    file: Option<Arc<Path>>,
    /// 1-based line number in that file (0 for added lines).
    line: usize,
    /// From a system file: consulted, never removed or saved.
    system: bool,
}

/// One line of a file, kept as it was read.
#[derive(Clone, Debug)]
struct Line {
    /// The line's bytes, without its `\n`.
    raw: Vec<u8>,
    /// Whether a `\n` ended it.
    newline: bool,
    /// The host key it holds, if it is an entry.
    entry: Option<Entry>,
    origin: Origin,
}

/// OpenSSH known_hosts files in memory (Paramiko's HostKeys): load, look up, check, add,
/// remove, save.
///
/// Thread safety: a plain value (`Send + Sync`); changes need `&mut self`.
#[derive(Clone, Debug, Default)]
pub struct HostKeys {
    lines: Vec<Line>,
}

impl HostKeys {
    /// An empty set.
    pub fn new() -> Self {
        HostKeys::default()
    }

    /// Loads a user known_hosts file (Paramiko's `load_host_keys`): its lines are added after
    /// those already loaded, can be removed, and are written by [`HostKeys::save`]. A file
    /// that does not exist loads nothing and is not an error (the usual state before the
    /// first host is added). Other I/O errors, and files over 64 MiB, are [`ErrorKind::Io`].
    ///
    /// [`ErrorKind::Io`]: crate::ErrorKind::Io
    pub fn load(&mut self, path: &Path) -> Result<()> {
        self.load_file(path, false)
    }

    /// Loads a system known_hosts file such as `/etc/ssh/ssh_known_hosts` (Paramiko's
    /// `load_system_host_keys`): its entries are consulted by lookups and checks but never
    /// removed and never written by [`HostKeys::save`]. A missing file loads nothing.
    pub fn load_system(&mut self, path: &Path) -> Result<()> {
        self.load_file(path, true)
    }

    fn load_file(&mut self, path: &Path, system: bool) -> Result<()> {
        if let Some(bytes) = file::read(path)? {
            self.load_bytes(&bytes, Some(Arc::from(path)), system);
        }
        Ok(())
    }

    /// Adds the lines of a file's contents.
    fn load_bytes(&mut self, bytes: &[u8], file: Option<Arc<Path>>, system: bool) {
        let mut rest = bytes;
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let (raw, newline, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (
                    rest.get(..end).unwrap_or_default(),
                    true,
                    rest.get(end + 1..).unwrap_or_default(),
                ),
                None => (rest, false, &[][..]),
            };
            self.lines.push(Line {
                raw: raw.to_vec(),
                newline,
                entry: Entry::parse(raw),
                origin: Origin {
                    file: file.clone(),
                    line: number,
                    system,
                },
            });
            rest = next;
        }
    }

    /// Forgets every line, from every file.
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    /// The number of entries with a key Sekura can use (plain, `@cert-authority` and
    /// `@revoked`), from every file loaded and added since.
    pub fn len(&self) -> usize {
        self.entries().filter(|(_, e)| e.key.is_some()).count()
    }

    /// Whether [`HostKeys::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> impl Iterator<Item = (&Line, &Entry)> {
        self.lines
            .iter()
            .filter_map(|line| line.entry.as_ref().map(|e| (line, e)))
    }

    /// Keys of the entries without marker that list `name`, in file order, without repeats.
    fn keys_for(&self, name: &str, marker: Option<Marker>) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = Vec::new();
        for (_, entry) in self.entries() {
            if let Some(key) = &entry.key {
                if entry.marker == marker && entry.matches(name) && !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        keys
    }

    /// The keys known for `host` on `port` (Paramiko's `lookup`), in file order without
    /// repeats; several keys of one type are possible. Keys marked `@revoked` for the host
    /// are left out, and so are `@cert-authority` keys ([`HostKeys::cert_authorities_for`]).
    pub fn lookup(&self, host: &str, port: u16) -> Vec<PublicKey> {
        let name = lookup_name(host, port);
        let revoked = self.keys_for(&name, Some(Marker::Revoked));
        let mut keys = self.keys_for(&name, None);
        keys.retain(|k| !revoked.contains(k));
        keys
    }

    /// The certificate authority keys (`@cert-authority` lines) trusted to sign host
    /// certificates for `host` on `port`, minus any marked `@revoked` for it.
    pub fn cert_authorities_for(&self, host: &str, port: u16) -> Vec<PublicKey> {
        let name = lookup_name(host, port);
        let revoked = self.keys_for(&name, Some(Marker::Revoked));
        let mut keys = self.keys_for(&name, Some(Marker::CertAuthority));
        keys.retain(|k| !revoked.contains(k));
        keys
    }

    /// Checks `key` for `host` on `port`, as OpenSSH's `check_host_key` does: a `@revoked`
    /// line for this host and key gives [`HostKeyStatus::Revoked`] whatever other lines say;
    /// otherwise any line with this key gives [`HostKeyStatus::Match`]; otherwise any line
    /// listing this host with another key gives [`HostKeyStatus::Mismatch`], whatever that
    /// key's type (OpenSSH reports "REMOTE HOST IDENTIFICATION HAS CHANGED" then, and Paramiko
    /// raises BadHostKeyException: a server known by one key must not be accepted with a new
    /// key of another type); the line named is the first with a key of the same type, or else
    /// the first with any other key. [`HostKeyStatus::NotFound`] only when no line lists the
    /// host. `@cert-authority` lines do not match plain keys and do not count.
    ///
    /// A client that knows a host should therefore prefer host key algorithms of the types
    /// [`HostKeys::lookup`] returns, as OpenSSH does.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        self.check_detailed(host, port, key).status
    }

    /// [`HostKeys::check`], also naming the file of the line a `Mismatch` or `Revoked`
    /// verdict refers to.
    pub fn check_detailed(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyCheck {
        let name = lookup_name(host, port);
        let mut matched = false;
        let mut same_type: Option<&Line> = None;
        let mut other_type: Option<&Line> = None;
        for (line, entry) in self.entries() {
            if entry.marker == Some(Marker::CertAuthority) || !entry.matches(&name) {
                continue;
            }
            // A key Sekura cannot use is certainly not `key`: it counts as another key.
            let same_key = entry.key.as_ref() == Some(key);
            match entry.marker {
                Some(Marker::Revoked) if same_key => {
                    return HostKeyCheck {
                        status: HostKeyStatus::Revoked {
                            line: self.line_number(line),
                        },
                        file: line.origin.file.as_deref().map(Path::to_path_buf),
                    };
                }
                Some(_) => {}
                None if same_key => matched = true,
                None => {
                    let line_type = entry.key.as_ref().map(PublicKey::key_type);
                    if line_type == Some(key.key_type()) {
                        same_type.get_or_insert(line);
                    } else {
                        other_type.get_or_insert(line);
                    }
                }
            }
        }
        let mismatch = same_type.or(other_type);
        match (matched, mismatch) {
            (true, _) => HostKeyCheck {
                status: HostKeyStatus::Match,
                file: None,
            },
            (false, Some(line)) => HostKeyCheck {
                status: HostKeyStatus::Mismatch {
                    line: self.line_number(line),
                },
                file: line.origin.file.as_deref().map(Path::to_path_buf),
            },
            (false, None) => HostKeyCheck {
                status: HostKeyStatus::NotFound,
                file: None,
            },
        }
    }

    /// A line's number: in its file, or for an added line the one [`HostKeys::save`] gives it.
    fn line_number(&self, target: &Line) -> usize {
        if target.origin.file.is_some() {
            return target.origin.line;
        }
        self.lines
            .iter()
            .filter(|l| !l.origin.system)
            .position(|l| std::ptr::eq(l, target))
            .map_or(0, |i| i + 1)
    }

    /// Adds `key` for `host` on `port` as a new line at the end of the user file, its host
    /// field hashed (`|1|salt|hash` with a fresh random 20-byte salt, as `HashKnownHosts`
    /// writes) or plain. As in Paramiko, an existing user-file entry of the same key type for
    /// exactly this host (a line naming only this host, plain or hashed) is replaced; lines
    /// listing other hosts too, wildcard lines and system files are left alone. Adding an
    /// entry that is already there in the same form changes nothing.
    ///
    /// `host` must be a plain name or address: empty names, whitespace, control characters,
    /// `,`, `*`, `?`, and a leading `!`, `@`, `|`, `#` or `[` are refused
    /// ([`crate::ErrorKind::InvalidArg`]).
    pub fn add(&mut self, host: &str, port: u16, key: &PublicKey, hashed: bool) -> Result<()> {
        check_plain_host(host)?;
        let name = lookup_name(host, port);
        let replaced = |line: &Line| {
            !line.origin.system
                && line.entry.as_ref().is_some_and(|e| {
                    e.marker.is_none()
                        && e.is_only(&name)
                        && e.key.as_ref().map(PublicKey::key_type) == Some(key.key_type())
                })
        };
        let already = self.lines.iter().any(|line| {
            replaced(line)
                && line
                    .entry
                    .as_ref()
                    .is_some_and(|e| e.key.as_ref() == Some(key) && e.is_hashed() == hashed)
        });
        if already {
            return Ok(());
        }
        self.lines.retain(|line| !replaced(line));
        let host_field = if hashed {
            let mut salt = [0u8; 20];
            OsRandom.fill(&mut salt);
            hash_host(&name, &salt)
        } else {
            name
        };
        let raw = format!("{host_field} {}", key.to_openssh()).into_bytes();
        let entry = Entry::parse(&raw);
        debug_assert!(entry.as_ref().is_some_and(|e| e.key.is_some()));
        self.lines.push(Line {
            raw,
            newline: true,
            entry,
            origin: Origin {
                file: None,
                line: 0,
                system: false,
            },
        });
        Ok(())
    }

    /// Removes the user-file entries for `host` on `port`, as `ssh-keygen -R` does: every
    /// line without marker whose host field matches, plain or hashed, including comma lists
    /// and wildcard patterns that match (the whole line goes). `@cert-authority` and
    /// `@revoked` lines stay, and so do system files' lines. Returns the number of lines
    /// removed.
    pub fn remove(&mut self, host: &str, port: u16) -> usize {
        let name = lookup_name(host, port);
        let before = self.lines.len();
        self.lines.retain(|line| {
            line.origin.system
                || !line
                    .entry
                    .as_ref()
                    .is_some_and(|e| e.marker.is_none() && e.matches(&name))
        });
        before - self.lines.len()
    }

    /// The text [`HostKeys::save`] writes: the user files' lines in the order loaded, each as
    /// it was read, then the added lines. Unchanged, it is byte for byte the file loaded.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut user_lines = self.lines.iter().filter(|l| !l.origin.system).peekable();
        while let Some(line) = user_lines.next() {
            out.extend_from_slice(&line.raw);
            // A last line without newline stays so, unless something now follows it.
            if line.newline || user_lines.peek().is_some() {
                out.push(b'\n');
            }
        }
        out
    }

    /// Writes the user entries to `path` (Paramiko's `save`), see [`HostKeys::to_bytes`];
    /// system files' entries are never written. The file is replaced atomically (a temporary
    /// file in the same directory, then a rename), keeps its mode, and is created with mode
    /// 0600 if it is new.
    pub fn save(&self, path: &Path) -> Result<()> {
        file::replace(path, &self.to_bytes())
    }
}

/// Refuses host names that would not be one plain name in a known_hosts line.
fn check_plain_host(host: &str) -> Result<()> {
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || ",*?".contains(c);
    if host.is_empty() || host.contains(bad_char) || host.starts_with(['!', '@', '|', '#', '[']) {
        return Err(Error::invalid_arg(format!(
            "cannot add {host:?} to known_hosts: not a plain host name"
        )));
    }
    Ok(())
}

/// Checks `key` for `host` on `port` against the known_hosts file at `path`; see
/// [`HostKeys::check`].
///
/// A missing file is [`HostKeyStatus::NotFound`]. Lines that fail to parse are skipped.
pub fn check_known_hosts(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<HostKeyStatus> {
    let mut known = HostKeys::new();
    known.load(path)?;
    Ok(known.check(host, port, key))
}

/// Appends a plain (not hashed) line for `host`/`port` and `key` to the known_hosts file at
/// `path`, creating the file with mode 0600 if needed (its directory must exist). Used for
/// `StrictHostKeyChecking=accept-new`.
pub fn add_known_host(path: &Path, host: &str, port: u16, key: &PublicKey) -> Result<()> {
    check_plain_host(host)?;
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

/// [`hash_host`] with a fresh random 20-byte salt, as OpenSSH hashes a new entry (Paramiko's
/// `hash_host(hostname)` without salt).
pub fn hash_host_random(host: &str) -> String {
    let mut salt = [0u8; 20];
    OsRandom.fill(&mut salt);
    hash_host(host, &salt)
}

/// The name a host is listed under: `host` for port 22 (and 0, "no port"), `[host]:port`
/// otherwise, lower case.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 || port == 0 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}
