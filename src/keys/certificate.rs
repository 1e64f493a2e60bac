//! OpenSSH certificates (PROTOCOL.certkeys): a public key signed by a certificate authority,
//! with a key id, principals, a validity interval, critical options and extensions.
//!
//! A certificate is its own type beside [`PublicKey`] rather than a kind of it: known_hosts
//! comparisons, fingerprints and most callers want the plain key ([`Certificate::public_key`]),
//! and what differs is only at authentication time: the USERAUTH_REQUEST carries the
//! certificate's algorithm name and blob ([`Certificate::signature_algorithms`],
//! [`Certificate::as_blob`]) while the signature is made by the certificate's private key with
//! the plain algorithm.
//!
//! The CA's signature is checked when a certificate is parsed, as OpenSSH does: a
//! `Certificate` value always carries a valid signature by [`Certificate::ca_key`]. Whether
//! that CA, the principals and the validity interval are acceptable is for the verifier.

use std::fmt;
use std::path::Path;

use base64ct::{Base64, Encoding};

use super::public::PublicKey;
use super::{convert, printable, KeyType, SIGNATURE_ALGORITHMS};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Reader, WireResult};

/// Whether a certificate identifies a user or a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertType {
    /// SSH2_CERT_TYPE_USER (1): presented by a client to authenticate a user.
    User,
    /// SSH2_CERT_TYPE_HOST (2): presented by a server as its host key.
    Host,
}

/// An OpenSSH certificate whose CA signature has been verified.
#[derive(Clone)]
pub struct Certificate {
    blob: Vec<u8>,
    key: PublicKey,
    ca_key: PublicKey,
    cert_type: CertType,
    serial: u64,
    key_id: String,
    principals: Vec<String>,
    valid_after: u64,
    valid_before: u64,
    critical_options: Vec<(String, String)>,
    extensions: Vec<(String, String)>,
    ca_signature_algorithm: String,
    comment: String,
}

/// Splits a certificate blob into the signed part and the CA's signature blob, walking the
/// fields of PROTOCOL.certkeys (`key_fields` strings or mpints for the certified key).
fn split_signature(blob: &[u8], key_fields: usize) -> WireResult<(&[u8], &[u8])> {
    let mut r = Reader::new(blob);
    r.string("certificate type")?;
    r.string("nonce")?;
    for _ in 0..key_fields {
        r.string("certified key")?;
    }
    r.u64("serial")?;
    r.u32("certificate type")?;
    r.string("key id")?;
    r.string("principals")?;
    r.u64("valid after")?;
    r.u64("valid before")?;
    r.string("critical options")?;
    r.string("extensions")?;
    r.string("reserved")?;
    r.string("signature key")?;
    let signed_len = blob.len() - r.remaining().len();
    let signature = r.string("signature")?;
    r.finish("certificate")?;
    Ok((blob.get(..signed_len).unwrap_or_default(), signature))
}

/// How many strings or mpints encode a key of `key_type` after its type name.
fn key_fields(key_type: KeyType) -> usize {
    match key_type {
        KeyType::Ed25519 => 1,
        KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 | KeyType::Rsa => 2,
        KeyType::Dsa => 4,
    }
}

fn options(map: &ssh_key::certificate::OptionsMap) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl Certificate {
    /// Parses a certificate's wire blob and verifies the CA's signature over it. Malformed
    /// certificates, unsupported key or CA types and invalid signatures are
    /// [`ErrorKind::KeyFormat`].
    pub fn from_blob(blob: &[u8]) -> Result<Self> {
        let name = Reader::new(blob)
            .utf8("certificate type")
            .map_err(|_| Error::key_format("malformed certificate: no type"))?;
        let Some(key_type) = KeyType::from_certificate_name(name) else {
            return Err(Error::key_format(format!(
                "unsupported certificate type {}",
                printable(name)
            )));
        };
        let malformed = |e: &dyn fmt::Display| Error::key_format(format!("malformed {name}: {e}"));
        let parsed = ssh_key::Certificate::from_bytes(blob).map_err(|e| malformed(&e))?;
        let (signed, signature) =
            split_signature(blob, key_fields(key_type)).map_err(|e| malformed(&e))?;
        let key = PublicKey::from_material(convert::public_material(parsed.public_key())?);
        if key.kind() != key_type {
            return Err(malformed(
                &"certified key does not match the certificate type",
            ));
        }
        let ca_key = PublicKey::from_material(convert::public_material(parsed.signature_key())?);
        let ca_signature_algorithm = Reader::new(signature)
            .utf8("signature algorithm")
            .map_err(|e| malformed(&e))?
            .to_owned();
        ca_key
            .verify(&ca_signature_algorithm, signed, signature)
            .map_err(|e| {
                Error::key_format(format!(
                    "{name} has an invalid CA signature: {}",
                    e.message()
                ))
            })?;
        let cert_type = match parsed.cert_type() {
            ssh_key::certificate::CertType::User => CertType::User,
            ssh_key::certificate::CertType::Host => CertType::Host,
        };
        Ok(Certificate {
            blob: blob.to_vec(),
            key,
            ca_key,
            cert_type,
            serial: parsed.serial(),
            key_id: parsed.key_id().to_owned(),
            principals: parsed.valid_principals().to_vec(),
            valid_after: parsed.valid_after(),
            valid_before: parsed.valid_before(),
            critical_options: options(parsed.critical_options()),
            extensions: options(parsed.extensions()),
            ca_signature_algorithm,
            comment: String::new(),
        })
    }

    /// Parses a `*-cert.pub` line: `type base64 [comment]`.
    pub fn from_openssh(line: &str) -> Result<Self> {
        let mut fields = line.trim().splitn(3, char::is_whitespace);
        let (Some(type_name), Some(base64)) = (fields.next(), fields.next()) else {
            return Err(Error::key_format(
                "certificate line is not 'type base64 [comment]'",
            ));
        };
        let blob = Base64::decode_vec(base64.trim()).map_err(|_| {
            Error::key_format(format!("malformed {}: bad base64", printable(type_name)))
        })?;
        let mut cert = Certificate::from_blob(&blob)?;
        if cert.algorithm() != type_name {
            return Err(Error::key_format(format!(
                "certificate line says {} but the certificate is {}",
                printable(type_name),
                cert.algorithm()
            )));
        }
        cert.comment = fields
            .next()
            .unwrap_or_default()
            .trim()
            .replace(['\n', '\r'], " ");
        Ok(cert)
    }

    /// Reads a `*-cert.pub` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let data = super::file::read_limited(path)?;
        let text = std::str::from_utf8(&data)
            .map_err(|_| Error::key_format(format!("{}: not a text file", path.display())))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default();
        Certificate::from_openssh(line)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// The certificate type name, e.g. "ssh-ed25519-cert-v01@openssh.com".
    pub fn algorithm(&self) -> &'static str {
        self.key.kind().certificate_name()
    }

    /// The wire blob, as sent in USERAUTH_REQUEST and stored in `*-cert.pub` files.
    pub fn as_blob(&self) -> &[u8] {
        &self.blob
    }

    /// Base64 of the blob.
    pub fn base64(&self) -> String {
        Base64::encode_string(&self.blob)
    }

    /// The `type base64` line, without comment.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.algorithm(), self.base64())
    }

    /// The `type base64 comment` line of a `*-cert.pub` file.
    pub fn to_pub_line(&self) -> String {
        if self.comment.is_empty() {
            self.to_openssh()
        } else {
            format!("{} {}", self.to_openssh(), self.comment)
        }
    }

    /// Writes the `*-cert.pub` line to `path`, atomically, mode 0644.
    pub fn write_file(&self, path: &Path) -> Result<()> {
        let line = format!("{}\n", self.to_pub_line());
        super::file::write_atomic(path, line.as_bytes(), 0o644)
    }

    /// The comment from the certificate's line; empty when there was none.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The certified public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The public key of the certificate authority that signed it.
    pub fn ca_key(&self) -> &PublicKey {
        &self.ca_key
    }

    /// The algorithm of the CA's signature, e.g. "ssh-ed25519" or "rsa-sha2-512".
    pub fn ca_signature_algorithm(&self) -> &str {
        &self.ca_signature_algorithm
    }

    /// User or host certificate.
    pub fn cert_type(&self) -> CertType {
        self.cert_type
    }

    /// The serial number the CA gave it.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The key id (`ssh-keygen -s ... -I ID`), logged by servers.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The principals (user or host names) it is valid for; empty means any.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }

    /// Start of validity, in seconds since the Unix epoch (0: always).
    pub fn valid_after(&self) -> u64 {
        self.valid_after
    }

    /// End of validity (exclusive), in seconds since the Unix epoch (u64::MAX: forever).
    pub fn valid_before(&self) -> u64 {
        self.valid_before
    }

    /// Whether `unix_time` is inside the validity interval.
    pub fn is_valid_at(&self, unix_time: u64) -> bool {
        self.valid_after <= unix_time && unix_time < self.valid_before
    }

    /// Critical options (name, value), e.g. ("force-command", "ls"); a verifier that does not
    /// understand one must refuse the certificate.
    pub fn critical_options(&self) -> &[(String, String)] {
        &self.critical_options
    }

    /// Extensions (name, value), e.g. ("permit-pty", "").
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// The (certificate algorithm, signature algorithm) pairs usable to authenticate with
    /// this certificate, preferred first: the USERAUTH_REQUEST names the first, the signature
    /// inside it is made with the second by the certified key's private key. For RSA:
    /// ("rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-512"), then -256, then the legacy
    /// ("ssh-rsa-cert-v01@openssh.com", "ssh-rsa") if `include_legacy`.
    pub fn signature_algorithms(&self, include_legacy: bool) -> Vec<(&'static str, &'static str)> {
        let key_type = self.key.kind();
        SIGNATURE_ALGORITHMS
            .iter()
            .filter(|a| a.key_type == key_type && (include_legacy || !a.legacy))
            .map(|a| (a.certificate, a.name))
            .collect()
    }

    /// Verifies a signature by the certified key, with a certificate algorithm name (as a
    /// host certificate's signature over the exchange hash is named); see
    /// [`PublicKey::verify`].
    pub fn verify(&self, algorithm: &str, data: &[u8], signature_blob: &[u8]) -> Result<()> {
        let key_type = self.key.kind();
        let Some(alg) = SIGNATURE_ALGORITHMS
            .iter()
            .find(|a| a.key_type == key_type && a.certificate == algorithm)
        else {
            return Err(Error::new(
                ErrorKind::HostKeyRejected,
                format!(
                    "{}: algorithm {} cannot be used with this certificate",
                    self.algorithm(),
                    printable(algorithm)
                ),
            ));
        };
        self.key.verify(alg.name, data, signature_blob)
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Certificate({} {} id {:?} by {})",
            self.algorithm(),
            self.key.fingerprint_sha256(),
            self.key_id,
            self.ca_key.fingerprint_sha256()
        )
    }
}
