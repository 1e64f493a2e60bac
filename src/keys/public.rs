//! Public keys: SSH blobs, `.pub` and authorized_keys lines in; blobs, lines, fingerprints and
//! verified signatures out.

use std::fmt;
use std::path::Path;

use base64ct::{Base64, Base64Unpadded, Encoding};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use super::signature as sig;
use super::{convert, printable, signature_algorithm, KeyType, SIGNATURE_ALGORITHMS};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Reader, Writer};

/// Smallest RSA modulus accepted, in bits (OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE).
pub(crate) const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted, in bits (OpenSSH's SSH_RSA_MAXIMUM_MODULUS_SIZE).
pub(crate) const RSA_MAX_BITS: usize = 16384;

/// The first line of an RFC 4716 public key block.
const RFC4716_BEGIN: &str = "---- BEGIN SSH2 PUBLIC KEY ----";

/// A public key (host key or user key), with the comment of the line or file it came from.
///
/// Two keys are equal when their SSH blobs are (the comment does not count): blobs are
/// checked to be canonical when parsed, so equal keys have equal blobs.
#[derive(Clone)]
pub struct PublicKey {
    blob: Vec<u8>,
    material: PublicMaterial,
    comment: String,
}

/// The key material, one variant per [`KeyType`].
#[derive(Clone)]
pub(crate) enum PublicMaterial {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    EcdsaP384(p384::ecdsa::VerifyingKey),
    EcdsaP521(p521::ecdsa::VerifyingKey),
    Rsa(rsa::PublicKey),
    Dsa(Box<dsa::VerifyingKey>),
}

impl PublicMaterial {
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            PublicMaterial::Ed25519(_) => KeyType::Ed25519,
            PublicMaterial::EcdsaP256(_) => KeyType::EcdsaP256,
            PublicMaterial::EcdsaP384(_) => KeyType::EcdsaP384,
            PublicMaterial::EcdsaP521(_) => KeyType::EcdsaP521,
            PublicMaterial::Rsa(_) => KeyType::Rsa,
            PublicMaterial::Dsa(_) => KeyType::Dsa,
        }
    }

    /// The SSH blob (RFC 4253 §6.6, RFC 5656 §3.1).
    fn to_blob(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(self.key_type().name());
        match self {
            PublicMaterial::Ed25519(k) => {
                w.string(k.as_bytes());
            }
            PublicMaterial::EcdsaP256(k) => {
                w.string("nistp256")
                    .string(k.to_sec1_point(false).as_bytes());
            }
            PublicMaterial::EcdsaP384(k) => {
                w.string("nistp384")
                    .string(k.to_sec1_point(false).as_bytes());
            }
            PublicMaterial::EcdsaP521(k) => {
                w.string("nistp521")
                    .string(k.to_sec1_point(false).as_bytes());
            }
            PublicMaterial::Rsa(k) => {
                w.mpint_unsigned(&k.e().to_be_bytes());
                w.mpint_unsigned(&k.n().to_be_bytes());
            }
            PublicMaterial::Dsa(k) => {
                let c = k.components();
                w.mpint_unsigned(&c.p().to_be_bytes())
                    .mpint_unsigned(&c.q().to_be_bytes())
                    .mpint_unsigned(&c.g().to_be_bytes())
                    .mpint_unsigned(&k.y().to_be_bytes());
            }
        }
        w.into_bytes()
    }
}

/// An RSA public key from its big-endian modulus and exponent, within OpenSSH's size limits.
pub(crate) fn rsa_public_key(n: &[u8], e: &[u8]) -> Result<rsa::PublicKey> {
    let n = rsa::BoxedUint::from_be_slice_vartime(n);
    let e = rsa::BoxedUint::from_be_slice_vartime(e);
    let bits = n.bit_width_vartime();
    rsa::PublicKey::new_with_size_limits(n, e, RSA_MIN_BITS..=RSA_MAX_BITS).map_err(|err| match err
    {
        rsa::Error::ModulusTooSmall => Error::key_format(format!(
            "ssh-rsa key of {bits} bits is too small (the minimum is {RSA_MIN_BITS})"
        )),
        rsa::Error::ModulusTooLarge => Error::key_format(format!(
            "ssh-rsa key of {bits} bits is too large (the maximum is {RSA_MAX_BITS})"
        )),
        other => Error::key_format(format!("invalid ssh-rsa public key: {other}")),
    })
}

/// Splits an authorized_keys line into its options (if any) and the `type base64 [comment]`
/// rest. Options are a comma-separated list in which double-quoted values may hold spaces and
/// `\"` (sshd(8) AUTHORIZED_KEYS FILE FORMAT).
fn split_options(line: &str) -> Result<(Option<&str>, &str)> {
    let line = line.trim_start();
    let first = line.split_whitespace().next().unwrap_or_default();
    if KeyType::from_name(first).is_some() || KeyType::from_certificate_name(first).is_some() {
        return Ok((None, line));
    }
    // A key type we do not support, rather than options: the blob names the same type.
    let second = line.split_whitespace().nth(1).unwrap_or_default();
    if let Ok(blob) = Base64::decode_vec(second) {
        if Reader::new(&blob).utf8("key type").ok() == Some(first) {
            return Ok((None, line));
        }
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                let (options, rest) = line.split_at(i);
                return Ok((Some(options), rest.trim_start()));
            }
            _ => {}
        }
    }
    Err(Error::key_format(if quoted {
        "authorized_keys options have an unterminated quote"
    } else {
        "public key line is not '[options] type base64 [comment]'"
    }))
}

impl PublicKey {
    /// Wraps checked key material, computing its blob.
    pub(crate) fn from_material(material: PublicMaterial) -> Self {
        PublicKey {
            blob: material.to_blob(),
            material,
            comment: String::new(),
        }
    }

    /// Parses an SSH wire blob (RFC 4253 §6.6). An unsupported type fails with
    /// [`ErrorKind::KeyFormat`] naming the type; so do malformed or non-canonical blobs, RSA
    /// keys outside 1024 to 16384 bits and DSA keys other than 1024 bits.
    pub fn from_blob(blob: &[u8]) -> Result<Self> {
        let name = Reader::new(blob)
            .utf8("key type")
            .map_err(|_| Error::key_format("malformed public key blob: no key type"))?;
        if KeyType::from_name(name).is_none() {
            return Err(Error::key_format(format!(
                "unsupported key type {}",
                printable(name)
            )));
        }
        let parsed = ssh_key::PublicKey::from_bytes(blob)
            .map_err(|e| Error::key_format(format!("malformed {name} public key: {e}")))?;
        let key = PublicKey::from_material(convert::public_material(parsed.key_data())?);
        if key.blob != blob {
            return Err(Error::key_format(format!(
                "non-canonical encoding of {name} public key"
            )));
        }
        Ok(key)
    }

    /// Parses a `.pub` line (`type base64 [comment]`) or an authorized_keys line (the same
    /// after options such as `from="10.0.0.?",no-pty`). Surrounding whitespace is ignored; the
    /// comment is kept ([`PublicKey::comment`]); the options are dropped (see
    /// [`PublicKey::from_authorized_keys_line`]).
    pub fn from_openssh(line: &str) -> Result<Self> {
        PublicKey::from_authorized_keys_line(line).map(|(_, key)| key)
    }

    /// Parses an authorized_keys line, returning its options (None when there are none) and
    /// the key with its comment.
    pub fn from_authorized_keys_line(line: &str) -> Result<(Option<String>, Self)> {
        let (options, rest) = split_options(line.trim())?;
        let mut fields = rest.splitn(3, char::is_whitespace);
        let (Some(type_name), Some(base64)) = (fields.next(), fields.next()) else {
            return Err(Error::key_format(
                "public key line is not '[options] type base64 [comment]'",
            ));
        };
        if KeyType::from_certificate_name(type_name).is_some() {
            return Err(Error::key_format(format!(
                "{} is a certificate, not a plain public key",
                printable(type_name)
            )));
        }
        if KeyType::from_name(type_name).is_none() {
            return Err(Error::key_format(format!(
                "unsupported key type {}",
                printable(type_name)
            )));
        }
        let blob = Base64::decode_vec(base64.trim()).map_err(|_| {
            Error::key_format(format!("malformed {type_name} public key: bad base64"))
        })?;
        let key = PublicKey::from_blob(&blob)?;
        if key.key_type() != type_name {
            return Err(Error::key_format(format!(
                "public key line says {} but the key is {}",
                printable(type_name),
                key.key_type()
            )));
        }
        let comment = fields.next().unwrap_or_default().trim();
        Ok((options.map(str::to_owned), key.with_comment(comment)))
    }

    /// Parses public key text: an RFC 4716 block ("---- BEGIN SSH2 PUBLIC KEY ----", as
    /// `ssh-keygen -e` and PuTTYgen write), or else the first line that is not empty or a
    /// `#` comment, as [`PublicKey::from_openssh`].
    pub fn from_text(text: &str) -> Result<Self> {
        if text.trim_start().starts_with(RFC4716_BEGIN) {
            return PublicKey::from_rfc4716(text);
        }
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default();
        PublicKey::from_openssh(line)
    }

    /// Parses an RFC 4716 public key block; its `Comment` header becomes the comment.
    pub fn from_rfc4716(text: &str) -> Result<Self> {
        let malformed =
            |why: &str| Error::key_format(format!("malformed RFC 4716 public key: {why}"));
        let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
        if lines.next() != Some(RFC4716_BEGIN) {
            return Err(malformed("no BEGIN line"));
        }
        let mut comment = String::new();
        let mut body = String::new();
        let mut header: Option<String> = None;
        let mut ended = false;
        for line in lines {
            if line == "---- END SSH2 PUBLIC KEY ----" {
                ended = true;
                break;
            }
            // Headers are "Tag: value", continued on the next line after a backslash.
            let continued = header.take();
            if continued.is_some() || (body.is_empty() && line.contains(':')) {
                let mut full = continued.unwrap_or_default();
                match line.strip_suffix('\\') {
                    Some(part) => {
                        full.push_str(part);
                        header = Some(full);
                    }
                    None => {
                        full.push_str(line);
                        if let Some((tag, value)) = full.split_once(':') {
                            if tag.trim().eq_ignore_ascii_case("Comment") {
                                let v = value.trim();
                                let v = v
                                    .strip_prefix('"')
                                    .and_then(|v| v.strip_suffix('"'))
                                    .unwrap_or(v);
                                comment = v.to_owned();
                            }
                        }
                    }
                }
                continue;
            }
            body.push_str(line);
        }
        if !ended {
            return Err(malformed("no END line"));
        }
        let blob = Base64::decode_vec(&body).map_err(|_| malformed("bad base64"))?;
        Ok(PublicKey::from_blob(&blob)?.with_comment(&comment))
    }

    /// Reads a public key file: a `.pub` line or an RFC 4716 block (see
    /// [`PublicKey::from_text`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = super::file::read_limited(path)?;
        let text = std::str::from_utf8(&text)
            .map_err(|_| Error::key_format(format!("{}: not a text file", path.display())))?;
        PublicKey::from_text(text)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// The SSH wire blob.
    pub fn to_blob(&self) -> Vec<u8> {
        self.blob.clone()
    }

    /// The SSH wire blob, borrowed.
    pub fn as_blob(&self) -> &[u8] {
        &self.blob
    }

    /// Key type name: "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "ssh-dss", ...
    pub fn key_type(&self) -> &'static str {
        self.material.key_type().name()
    }

    /// The kind of key.
    pub fn kind(&self) -> KeyType {
        self.material.key_type()
    }

    /// The comment (the text after the key on its line, or from the private key file); empty
    /// when there was none.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The same key with `comment` (line breaks become spaces, so that the `.pub` line stays
    /// one line).
    pub fn with_comment(mut self, comment: &str) -> Self {
        self.comment = comment.replace(['\n', '\r'], " ");
        self
    }

    /// SHA256 fingerprint exactly as `ssh-keygen -l` prints it: "SHA256:" + unpadded base64.
    pub fn fingerprint_sha256(&self) -> String {
        format!(
            "SHA256:{}",
            Base64Unpadded::encode_string(&Sha256::digest(&self.blob))
        )
    }

    /// MD5 fingerprint as `ssh-keygen -l -E md5` prints it: "MD5:" + colon-separated hex.
    pub fn fingerprint_md5(&self) -> String {
        let hex: Vec<String> = md5::Md5::digest(&self.blob)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("MD5:{}", hex.join(":"))
    }

    /// Base64 of the blob, as in known_hosts and `.pub` files.
    pub fn base64(&self) -> String {
        Base64::encode_string(&self.blob)
    }

    /// The `type base64` line of a `.pub` file or known_hosts entry, without comment.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type(), self.base64())
    }

    /// The `type base64 comment` line of a `.pub` file (no trailing space or newline when the
    /// comment is empty).
    pub fn to_pub_line(&self) -> String {
        if self.comment.is_empty() {
            self.to_openssh()
        } else {
            format!("{} {}", self.to_openssh(), self.comment)
        }
    }

    /// Writes the `.pub` line (and a newline) to `path`, atomically, mode 0644.
    pub fn write_file(&self, path: &Path) -> Result<()> {
        let line = format!("{}\n", self.to_pub_line());
        super::file::write_atomic(path, line.as_bytes(), 0o644)
    }

    /// Size of the key in bits, as `ssh-keygen -l` prints it.
    pub fn bits(&self) -> usize {
        match &self.material {
            PublicMaterial::Rsa(k) => k.n().bit_width_vartime() as usize,
            PublicMaterial::Dsa(k) => k.components().p().bit_width_vartime() as usize,
            other => other.key_type().fixed_bits().unwrap_or_default(),
        }
    }

    /// Signature algorithms this key can verify or make, preferred first: ed25519 ->
    /// ["ssh-ed25519"], ecdsa -> ["ecdsa-sha2-nistp256"] (384, 521 alike), rsa ->
    /// ["rsa-sha2-512", "rsa-sha2-256"] plus "ssh-rsa" (SHA-1, legacy) only if
    /// `include_legacy`; dsa -> ["ssh-dss"] (legacy) only if `include_legacy`.
    pub fn signature_algorithms(&self, include_legacy: bool) -> Vec<&'static str> {
        let key_type = self.material.key_type();
        SIGNATURE_ALGORITHMS
            .iter()
            .filter(|a| a.key_type == key_type && (include_legacy || !a.legacy))
            .map(|a| a.name)
            .collect()
    }

    /// Verifies `signature_blob` (`string algorithm, string signature`) over `data` with
    /// `algorithm`. The name inside the blob must equal `algorithm`. Any failure is
    /// [`ErrorKind::HostKeyRejected`] with a message saying what was wrong.
    pub fn verify(&self, algorithm: &str, data: &[u8], signature_blob: &[u8]) -> Result<()> {
        let rejected = |why: &str| {
            Error::new(
                ErrorKind::HostKeyRejected,
                format!(
                    "{} key {}: {why}",
                    self.key_type(),
                    self.fingerprint_sha256()
                ),
            )
        };
        let Some(alg) = signature_algorithm(self.material.key_type(), algorithm) else {
            return Err(rejected(&format!(
                "signature algorithm {} cannot be used with this key",
                printable(algorithm)
            )));
        };
        let (name, inner) =
            sig::decode_blob(signature_blob).map_err(|e| rejected(&format!("signature {e}")))?;
        if name != alg.name {
            return Err(rejected(&format!(
                "signature is {} but {} was expected",
                printable(name),
                alg.name
            )));
        }
        let bad = || rejected(&format!("{} signature is invalid", alg.name));
        let prehash = sig::digest(alg.digest, data);
        /// ECDSA: `mpint r, mpint s` with scalars of the curve's size, over the prehash.
        macro_rules! verify_ecdsa {
            ($curve:ident, $key:expr, $len:expr) => {{
                let (r, s) = sig::decode_ecdsa(inner, $len).map_err(|_| bad())?;
                let rs = [r, s].concat();
                let s = $curve::ecdsa::Signature::from_slice(&rs).map_err(|_| bad())?;
                $key.verify_prehash(&prehash, &s).map_err(|_| bad())
            }};
        }
        match &self.material {
            PublicMaterial::Ed25519(k) => {
                let s = ed25519_dalek::Signature::from_slice(inner).map_err(|_| bad())?;
                k.verify_strict(data, &s).map_err(|_| bad())
            }
            PublicMaterial::EcdsaP256(k) => verify_ecdsa!(p256, k, 32),
            PublicMaterial::EcdsaP384(k) => verify_ecdsa!(p384, k, 48),
            PublicMaterial::EcdsaP521(k) => verify_ecdsa!(p521, k, 66),
            PublicMaterial::Rsa(k) => {
                // Like OpenSSH, accept a signature shorter than the modulus (leading zeros
                // dropped by some signers).
                let padded = sig::left_pad(inner, k.size()).ok_or_else(bad)?;
                let scheme = sig::pkcs1v15(alg.digest).ok_or_else(bad)?;
                k.verify(scheme, &prehash, &padded).map_err(|_| bad())
            }
            PublicMaterial::Dsa(k) => {
                let (r, s) = sig::decode_dsa(inner).ok_or_else(bad)?;
                let s = convert::dsa_signature(r, s).ok_or_else(bad)?;
                k.verify_prehash(&prehash, &s).map_err(|_| bad())
            }
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.blob.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({} {})",
            self.key_type(),
            self.fingerprint_sha256()
        )
    }
}

impl fmt::Display for PublicKey {
    /// The `type base64` form, as in `.pub` files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_openssh())
    }
}
