//! The PEM family of private key files: the traditional OpenSSL formats (PKCS#1 RSA, SEC1 EC,
//! OpenSSL's DSA sequence), optionally with OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`
//! encryption, and PKCS#8, plain or encrypted with PBES2. DER is parsed by the RustCrypto
//! `der`, `pkcs1`, `sec1` and `pkcs8` crates; this file only finds the armor, handles the
//! legacy encryption headers RFC 7468 parsers refuse, and picks the key type.

use base64ct::{Base64, Encoding};
use pkcs8::der::asn1::{OctetStringRef, UintRef};
use pkcs8::der::{Decode, Encode};
use pkcs8::{DecodePrivateKey, EncodePrivateKey, ObjectIdentifier, PrivateKeyInfoRef};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use zeroize::Zeroizing;

use super::legacy_pem;
use super::private::PrivateMaterial;
use super::{convert, printable, PrivateKey};
use crate::crypto::rng::SecureRandom;
use crate::error::{Error, ErrorKind, Result};

/// The armor labels of private key files, as written after "-----BEGIN ".
const PRIVATE_KEY_LABELS: [&str; 6] = [
    "OPENSSH PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "DSA PRIVATE KEY",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Most PBKDF2 iterations accepted when decrypting PKCS#8 (OpenSSL writes 2048; a few
/// seconds of work at most).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Most memory scrypt may use when decrypting PKCS#8, in bytes (128 * r * N).
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
/// PBKDF2 iterations when writing encrypted PKCS#8 (OWASP's figure for PBKDF2-HMAC-SHA256).
const PBKDF2_ITERATIONS: u32 = 600_000;

/// The labels of every armored block in `text`, with the offset of its BEGIN line.
fn labels(text: &str) -> impl Iterator<Item = (&str, usize)> {
    text.match_indices("-----BEGIN ").filter_map(|(at, _)| {
        let rest = text.get(at + "-----BEGIN ".len()..)?;
        let (label, _) = rest.split_once("-----")?;
        Some((label, at))
    })
}

/// The first private key block in `text`: its label and offset. Other blocks (OpenSSL's
/// "EC PARAMETERS" before an EC key, certificates) are skipped.
pub(crate) fn find_private_key(text: &str) -> Option<(&str, usize)> {
    labels(text).find(|(label, _)| PRIVATE_KEY_LABELS.contains(label))
}

/// The label of the first armored block in `text`, whatever it is.
pub(crate) fn first_label(text: &str) -> Option<&str> {
    labels(text).next().map(|(label, _)| label)
}

/// The block with `label` starting at `start`, from its BEGIN line to its END line, with
/// line endings made `\n` and surrounding whitespace dropped from each line.
pub(crate) fn block(text: &str, label: &str, start: usize) -> Result<Zeroizing<String>> {
    let end = format!("-----END {label}-----");
    let mut out = Zeroizing::new(String::with_capacity(text.len().saturating_sub(start)));
    for line in text.get(start..).unwrap_or_default().lines() {
        out.push_str(line.trim());
        out.push('\n');
        if line.trim() == end {
            return Ok(out);
        }
    }
    Err(Error::key_format(format!(
        "malformed {label} file: no END line"
    )))
}

/// An armored block: its RFC 1421 headers and its decoded body.
pub(crate) struct Armor<'a> {
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

impl Armor<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Parses the block starting at `armored` (its BEGIN line) with `label`.
pub(crate) fn unarmor<'a>(label: &str, armored: &'a str) -> Result<Armor<'a>> {
    let malformed = |why: &str| Error::key_format(format!("malformed {label} file: {why}"));
    let mut lines = armored.lines().map(|l| l.trim_end_matches('\r'));
    if lines.next().map(str::trim) != Some(&format!("-----BEGIN {label}-----")) {
        return Err(malformed("no BEGIN line"));
    }
    let end = format!("-----END {label}-----");
    let mut headers = Vec::new();
    let mut body = Zeroizing::new(String::new());
    let mut in_headers = true;
    let mut ended = false;
    for line in lines {
        let line = line.trim();
        if line == end {
            ended = true;
            break;
        }
        if in_headers {
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim(), value.trim()));
                continue;
            }
            in_headers = false;
            if line.is_empty() {
                continue;
            }
        }
        body.push_str(line);
    }
    if !ended {
        return Err(malformed("no END line"));
    }
    let mut der = Zeroizing::new(vec![0u8; body.len() / 4 * 3 + 3]);
    let len = Base64::decode(body.as_bytes(), &mut der)
        .map_err(|_| malformed("bad base64"))?
        .len();
    der.truncate(len);
    Ok(Armor { headers, der })
}

/// Armors `der` with `label` and headers, in 64-column lines.
pub(crate) fn armor(label: &str, headers: &[(&str, &str)], der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(Base64::encode_string(der));
    let mut out = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    if !headers.is_empty() {
        out.push('\n');
    }
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Loads a PEM private key (any label of [`PRIVATE_KEY_LABELS`] but OpenSSH's).
pub(crate) fn decode(label: &str, armored: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey> {
    let armor = unarmor(label, armored)?;
    if let Some(proc_type) = armor.header("Proc-Type") {
        if proc_type.replace(' ', "") != "4,ENCRYPTED" {
            return Err(Error::key_format(format!(
                "unsupported PEM Proc-Type \"{}\"",
                printable(proc_type)
            )));
        }
        let dek_info = armor
            .header("DEK-Info")
            .ok_or_else(|| Error::key_format("encrypted PEM key without DEK-Info"))?;
        let der = legacy_pem::decrypt(dek_info, &armor.der, passphrase)?;
        // A wrong passphrase passes the padding check one time in 256 or so: then the
        // plaintext is not DER, which means the same.
        if !is_der_sequence(&der) {
            return Err(wrong_passphrase());
        }
        return traditional(label, &der);
    }
    match label {
        "ENCRYPTED PRIVATE KEY" => pkcs8_encrypted(&armor.der, passphrase),
        _ => traditional(label, &armor.der),
    }
}

fn wrong_passphrase() -> Error {
    Error::new(ErrorKind::BadPassphrase, "wrong passphrase for private key")
}

/// Parses the DER of a PKCS#1, SEC1, OpenSSL DSA or PKCS#8 key.
fn traditional(label: &str, der: &[u8]) -> Result<PrivateKey> {
    let material = match label {
        "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_der(der)
            .map(|k| PrivateMaterial::Rsa(Box::new(k)))
            .map_err(|e| Error::key_format(format!("malformed PKCS#1 RSA private key: {e}")))?,
        "EC PRIVATE KEY" => sec1(der)?,
        "DSA PRIVATE KEY" => openssl_dsa(der)?,
        "PRIVATE KEY" => pkcs8(der)?,
        other => {
            return Err(Error::key_format(format!(
                "unsupported private key format \"{}\"",
                printable(other)
            )))
        }
    };
    PrivateKey::from_material(material)
}

/// A SEC1 `ECPrivateKey` on P-256, P-384 or P-521.
fn sec1(der: &[u8]) -> Result<PrivateMaterial> {
    if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
        Ok(PrivateMaterial::EcdsaP256(k.into()))
    } else if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
        Ok(PrivateMaterial::EcdsaP384(k.into()))
    } else if let Ok(k) = p521::SecretKey::from_sec1_der(der) {
        Ok(PrivateMaterial::EcdsaP521((&k).into()))
    } else {
        Err(Error::key_format(
            "malformed or unsupported EC private key (P-256, P-384 and P-521 are supported)",
        ))
    }
}

/// OpenSSL's DSA private key: `SEQUENCE { version 0, p, q, g, y, x }`.
fn openssl_dsa(der: &[u8]) -> Result<PrivateMaterial> {
    let malformed = || Error::key_format("malformed DSA private key");
    let ints = Vec::<UintRef<'_>>::from_der(der).map_err(|_| malformed())?;
    let [version, p, q, g, y, x] = ints.as_slice() else {
        return Err(malformed());
    };
    if version.as_bytes().iter().any(|&b| b != 0) {
        return Err(malformed());
    }
    let public = convert::dsa_public_key(p.as_bytes(), q.as_bytes(), g.as_bytes(), y.as_bytes())?;
    let key = convert::dsa_signing_key(public, x.as_bytes())?;
    Ok(PrivateMaterial::Dsa(Box::new(key)))
}

/// A PKCS#8 `PrivateKeyInfo`: RSA, EC (P-256, P-384, P-521), DSA or Ed25519.
fn pkcs8(der: &[u8]) -> Result<PrivateMaterial> {
    let malformed = |what: &str| Error::key_format(format!("malformed PKCS#8 {what} private key"));
    let info = PrivateKeyInfoRef::try_from(der).map_err(|_| malformed(""))?;
    let oid = info.algorithm.oid;
    if oid == OID_RSA {
        rsa::PrivateKey::from_pkcs8_der(der)
            .map(|k| PrivateMaterial::Rsa(Box::new(k)))
            .map_err(|_| malformed("RSA"))
    } else if oid == OID_EC {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| malformed("EC"))?;
        if curve == OID_P256 {
            p256::SecretKey::from_pkcs8_der(der)
                .map(|k| PrivateMaterial::EcdsaP256(k.into()))
                .map_err(|_| malformed("P-256"))
        } else if curve == OID_P384 {
            p384::SecretKey::from_pkcs8_der(der)
                .map(|k| PrivateMaterial::EcdsaP384(k.into()))
                .map_err(|_| malformed("P-384"))
        } else if curve == OID_P521 {
            p521::SecretKey::from_pkcs8_der(der)
                .map(|k| PrivateMaterial::EcdsaP521((&k).into()))
                .map_err(|_| malformed("P-521"))
        } else {
            Err(Error::key_format(format!(
                "unsupported elliptic curve {curve} (P-256, P-384 and P-521 are supported)"
            )))
        }
    } else if oid == OID_DSA {
        // Sizes first, for a clear message (the dsa crate refuses other sizes too); then the
        // dsa crate computes y, and the key is rebuilt with ssh-dss's checks.
        let params_der = info
            .algorithm
            .parameters
            .and_then(|a| a.to_der().ok())
            .ok_or_else(|| malformed("DSA"))?;
        let params = Vec::<UintRef<'_>>::from_der(&params_der).map_err(|_| malformed("DSA"))?;
        let [p, q, _g] = params.as_slice() else {
            return Err(malformed("DSA"));
        };
        convert::check_dsa_size(p.as_bytes(), q.as_bytes())?;
        let k = dsa::SigningKey::from_pkcs8_der(der).map_err(|_| malformed("DSA"))?;
        let (vk, c) = (k.verifying_key(), k.verifying_key().components());
        let public = convert::dsa_public_key(
            &c.p().to_be_bytes(),
            &c.q().to_be_bytes(),
            &c.g().to_be_bytes(),
            &vk.y().to_be_bytes(),
        )?;
        let x = Zeroizing::new(k.x().to_be_bytes());
        convert::dsa_signing_key(public, &x).map(|k| PrivateMaterial::Dsa(Box::new(k)))
    } else if oid == OID_ED25519 {
        // RFC 8410: the private key is an OCTET STRING holding the 32-byte seed.
        let seed = <&OctetStringRef>::from_der(info.private_key.as_bytes())
            .map_err(|_| malformed("Ed25519"))?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.as_bytes()
                .try_into()
                .map_err(|_| malformed("Ed25519"))?,
        );
        Ok(PrivateMaterial::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&seed),
        ))
    } else {
        Err(Error::key_format(format!(
            "unsupported PKCS#8 key algorithm {oid}"
        )))
    }
}

/// A PKCS#8 `EncryptedPrivateKeyInfo` (PBES2).
fn pkcs8_encrypted(der: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey> {
    let legacy = || {
        Error::key_format(
            "encrypted PKCS#8 key uses legacy password-based encryption (PBES1 or PKCS#12), \
             which is not supported; convert it with openssl pkcs8 -topk8 -v2 aes256",
        )
    };
    let info =
        pkcs8::EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| {
            match encryption_oid(der) {
                Some(oid) if oid.to_string().starts_with("1.2.840.113549.1.12.1.") => legacy(),
                _ => Error::key_format(format!("malformed encrypted PKCS#8 key: {e}")),
            }
        })?;
    let Some(params) = info.encryption_algorithm.pbes2() else {
        return Err(legacy());
    };
    check_pbes2(params)?;
    let Some(passphrase) = passphrase else {
        return Err(Error::new(
            ErrorKind::PasswordRequired,
            "private key is encrypted: a passphrase is required",
        ));
    };
    // A wrong passphrase usually fails the padding check (DecryptFailed); about one time in
    // 256 the padding passes and the plaintext is not DER (Asn1): the same verdict.
    let doc = info.decrypt(passphrase).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed)
        | pkcs8::Error::Asn1(_) => wrong_passphrase(),
        other => Error::key_format(format!("cannot decrypt PKCS#8 key: {other}")),
    })?;
    if PrivateKeyInfoRef::try_from(doc.as_bytes()).is_err() {
        return Err(wrong_passphrase());
    }
    traditional("PRIVATE KEY", doc.as_bytes())
}

/// Whether `der` is exactly one DER SEQUENCE (what a correct decryption yields).
fn is_der_sequence(der: &[u8]) -> bool {
    pkcs8::der::asn1::AnyRef::from_der(der)
        .is_ok_and(|any| pkcs8::der::Tagged::tag(&any) == pkcs8::der::Tag::Sequence)
}

/// The OID of an `EncryptedPrivateKeyInfo`'s encryption algorithm, read without knowing it.
fn encryption_oid(der: &[u8]) -> Option<ObjectIdentifier> {
    let fields = Vec::<pkcs8::der::asn1::AnyRef<'_>>::from_der(der).ok()?;
    let algorithm = fields.first()?.to_der().ok()?;
    pkcs8::AlgorithmIdentifierRef::from_der(&algorithm)
        .ok()
        .map(|a| a.oid)
}

/// Refuses PBES2 key derivation settings that are malformed or too costly (scrypt's cost
/// parameters come from the file and size its memory).
fn check_pbes2(params: &pkcs8::pkcs5::pbes2::Parameters) -> Result<()> {
    let too_costly = |what: String| {
        Error::key_format(format!(
            "encrypted PKCS#8 key asks for {what}, more than Sekura allows"
        ))
    };
    if let Some(p) = params.kdf.pbkdf2() {
        if p.iteration_count == 0 {
            return Err(Error::key_format(
                "encrypted PKCS#8 key has 0 PBKDF2 iterations",
            ));
        }
        if p.iteration_count > MAX_PBKDF2_ITERATIONS {
            return Err(too_costly(format!(
                "{} PBKDF2 iterations",
                p.iteration_count
            )));
        }
    } else if let Some(s) = params.kdf.scrypt() {
        let n = s.cost_parameter;
        let (r, p) = (u64::from(s.block_size), u64::from(s.parallelization));
        if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
            return Err(Error::key_format(
                "encrypted PKCS#8 key has invalid scrypt parameters",
            ));
        }
        let memory = n.saturating_mul(r).saturating_mul(128);
        let work = memory.saturating_mul(p);
        if memory > MAX_SCRYPT_MEMORY || work > 4 * MAX_SCRYPT_MEMORY {
            return Err(too_costly(format!("scrypt with N={n}, r={r}, p={p}")));
        }
    }
    Ok(())
}

/// The DER of the traditional format for `key`: PKCS#1, SEC1 or OpenSSL DSA, with its label.
fn traditional_der(key: &PrivateKey) -> Result<(&'static str, Zeroizing<Vec<u8>>)> {
    let failed = |e: String| Error::key_format(format!("cannot encode private key: {e}"));
    Ok(match key.material() {
        PrivateMaterial::Rsa(k) => {
            let doc = k.to_pkcs1_der().map_err(|e| failed(e.to_string()))?;
            ("RSA PRIVATE KEY", Zeroizing::new(doc.as_bytes().to_vec()))
        }
        PrivateMaterial::EcdsaP256(k) => (
            "EC PRIVATE KEY",
            p256::SecretKey::from(k)
                .to_sec1_der()
                .map_err(|e| failed(e.to_string()))?,
        ),
        PrivateMaterial::EcdsaP384(k) => (
            "EC PRIVATE KEY",
            p384::SecretKey::from(k)
                .to_sec1_der()
                .map_err(|e| failed(e.to_string()))?,
        ),
        PrivateMaterial::EcdsaP521(k) => (
            "EC PRIVATE KEY",
            p521::SecretKey::from(k)
                .to_sec1_der()
                .map_err(|e| failed(e.to_string()))?,
        ),
        PrivateMaterial::Dsa(k) => {
            let (vk, c) = (k.verifying_key(), k.verifying_key().components());
            let x = Zeroizing::new(k.x().to_be_bytes());
            let parts = [
                vec![0u8],
                c.p().to_be_bytes().to_vec(),
                c.q().to_be_bytes().to_vec(),
                c.g().to_be_bytes().to_vec(),
                vk.y().to_be_bytes().to_vec(),
            ];
            let mut ints = Vec::with_capacity(6);
            for part in parts.iter().map(Vec::as_slice).chain([&x[..]]) {
                ints.push(UintRef::new(part).map_err(|e| failed(e.to_string()))?);
            }
            let der = ints.to_der().map_err(|e| failed(e.to_string()))?;
            ("DSA PRIVATE KEY", Zeroizing::new(der))
        }
        PrivateMaterial::Ed25519(_) => {
            return Err(Error::invalid_arg(
                "Ed25519 keys have no traditional PEM format: use the OpenSSH or PKCS#8 format",
            ))
        }
    })
}

/// Encodes `key` in the traditional PEM format, with OpenSSL's legacy encryption
/// (AES-128-CBC, as ssh-keygen -m PEM) when `passphrase` is given.
pub(crate) fn encode_traditional(
    key: &PrivateKey,
    passphrase: Option<&[u8]>,
    rng: &mut dyn SecureRandom,
) -> Result<Zeroizing<String>> {
    let (label, der) = traditional_der(key)?;
    match passphrase {
        None => Ok(armor(label, &[], &der)),
        Some(passphrase) => {
            let (dek_info, encrypted) = legacy_pem::encrypt(&der, passphrase, rng)?;
            Ok(armor(
                label,
                &[("Proc-Type", "4,ENCRYPTED"), ("DEK-Info", &dek_info)],
                &encrypted,
            ))
        }
    }
}

/// The DER of `key` as a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_der(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let failed = |e: String| Error::key_format(format!("cannot encode private key: {e}"));
    let doc = match key.material() {
        PrivateMaterial::Rsa(k) => k.to_pkcs8_der(),
        PrivateMaterial::EcdsaP256(k) => p256::SecretKey::from(k).to_pkcs8_der(),
        PrivateMaterial::EcdsaP384(k) => p384::SecretKey::from(k).to_pkcs8_der(),
        PrivateMaterial::EcdsaP521(k) => p521::SecretKey::from(k).to_pkcs8_der(),
        PrivateMaterial::Dsa(k) => k.to_pkcs8_der(),
        PrivateMaterial::Ed25519(k) => {
            let seed = Zeroizing::new(k.to_bytes());
            let inner = Zeroizing::new(
                OctetStringRef::new(&seed[..])
                    .and_then(|o| o.to_der())
                    .map_err(|e| failed(e.to_string()))?,
            );
            let algorithm = pkcs8::AlgorithmIdentifierRef {
                oid: OID_ED25519,
                parameters: None,
            };
            let private = OctetStringRef::new(&inner).map_err(|e| failed(e.to_string()))?;
            let der = PrivateKeyInfoRef::new(algorithm, private)
                .to_der()
                .map_err(|e| failed(e.to_string()))?;
            return Ok(Zeroizing::new(der));
        }
    };
    let doc = doc.map_err(|e| failed(e.to_string()))?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

/// Encodes `key` as PKCS#8, encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) when
/// `passphrase` is given.
pub(crate) fn encode_pkcs8(
    key: &PrivateKey,
    passphrase: Option<&[u8]>,
    rng: &mut dyn SecureRandom,
) -> Result<Zeroizing<String>> {
    let der = pkcs8_der(key)?;
    let Some(passphrase) = passphrase else {
        return Ok(armor("PRIVATE KEY", &[], &der));
    };
    let failed = |e: String| Error::key_format(format!("cannot encrypt private key: {e}"));
    let (mut salt, mut iv) = ([0u8; 16], [0u8; 16]);
    rng.fill(&mut salt);
    rng.fill(&mut iv);
    let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
        PBKDF2_ITERATIONS,
        &salt,
        iv,
    )
    .map_err(|e| failed(e.to_string()))?;
    let encrypted = params
        .encrypt(passphrase, &der)
        .map_err(|e| failed(e.to_string()))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef {
        encryption_algorithm: params.into(),
        encrypted_data: OctetStringRef::new(&encrypted).map_err(|e| failed(e.to_string()))?,
    };
    let der = info.to_der().map_err(|e| failed(e.to_string()))?;
    Ok(armor("ENCRYPTED PRIVATE KEY", &[], &der))
}
