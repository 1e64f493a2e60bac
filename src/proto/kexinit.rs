//! KEXINIT messages and algorithm negotiation (RFC 4253 §7.1), plus the ordered algorithm
//! preferences an application can set.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::msg;
use crate::crypto::{cipher, compression, kex, mac};
use crate::wire::{Reader, Writer};
use crate::{Error, Result};

/// The kinds of algorithm a connection negotiates, in the order of their name-lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmKind {
    /// Key exchange method.
    Kex,
    /// Server host key / signature algorithm.
    HostKey,
    /// Encryption algorithm.
    Cipher,
    /// MAC algorithm.
    Mac,
    /// Compression algorithm.
    Compression,
}

impl AlgorithmKind {
    fn label(self) -> &'static str {
        match self {
            AlgorithmKind::Kex => "key exchange",
            AlgorithmKind::HostKey => "host key",
            AlgorithmKind::Cipher => "cipher",
            AlgorithmKind::Mac => "MAC",
            AlgorithmKind::Compression => "compression",
        }
    }

    /// Every name Sekura implements for this kind, with its legacy flag, preferred first.
    fn supported(self) -> Vec<(&'static str, bool)> {
        match self {
            AlgorithmKind::Kex => kex::KEX_METHODS
                .iter()
                .map(|m| (m.name, m.legacy))
                .collect(),
            AlgorithmKind::HostKey => crate::keys::HOST_KEY_ALGORITHMS.to_vec(),
            AlgorithmKind::Cipher => cipher::CIPHERS.iter().map(|c| (c.name, c.legacy)).collect(),
            AlgorithmKind::Mac => mac::MACS.iter().map(|m| (m.name, m.legacy)).collect(),
            // Compression is opt-in (use_compression): only "none" is in the default list.
            AlgorithmKind::Compression => compression::COMPRESSION
                .iter()
                .map(|c| (c.name, !c.identity))
                .collect(),
        }
    }

    /// Every name Sekura implements for this kind, legacy ones included, preferred first.
    pub fn supported_names(self) -> Vec<&'static str> {
        self.supported().into_iter().map(|(n, _)| n).collect()
    }
}

/// Ordered algorithm lists for each kind: what we offer, preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Key exchange methods.
    pub kex: Vec<&'static str>,
    /// Host key algorithms.
    pub host_key: Vec<&'static str>,
    /// Ciphers, both directions.
    pub cipher: Vec<&'static str>,
    /// MACs, both directions.
    pub mac: Vec<&'static str>,
    /// Compression, both directions.
    pub compression: Vec<&'static str>,
}

impl Default for Preferences {
    fn default() -> Self {
        let modern = |kind: AlgorithmKind| {
            kind.supported()
                .into_iter()
                .filter(|(_, legacy)| !legacy)
                .map(|(n, _)| n)
                .collect()
        };
        Preferences {
            kex: modern(AlgorithmKind::Kex),
            host_key: modern(AlgorithmKind::HostKey),
            cipher: modern(AlgorithmKind::Cipher),
            mac: modern(AlgorithmKind::Mac),
            compression: modern(AlgorithmKind::Compression),
        }
    }
}

impl Preferences {
    /// Replaces the list for `kind` with `names` (comma-separated, in order). Unknown names
    /// are an error naming them; legacy algorithms are enabled by naming them here.
    pub fn set(&mut self, kind: AlgorithmKind, names: &str) -> Result<()> {
        let supported = kind.supported();
        let mut list = Vec::new();
        let mut unknown = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match supported.iter().find(|(n, _)| *n == name) {
                Some((n, _)) if !list.contains(n) => list.push(*n),
                Some(_) => {}
                None => unknown.push(name),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::invalid_arg(format!(
                "unknown {} algorithm(s): {}; supported: {}",
                kind.label(),
                unknown.join(","),
                supported
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(",")
            )));
        }
        if list.is_empty() {
            return Err(Error::invalid_arg(format!(
                "empty {} algorithm list",
                kind.label()
            )));
        }
        *self.list_mut(kind) = list;
        Ok(())
    }

    /// The list for `kind`.
    pub fn get(&self, kind: AlgorithmKind) -> &[&'static str] {
        match kind {
            AlgorithmKind::Kex => &self.kex,
            AlgorithmKind::HostKey => &self.host_key,
            AlgorithmKind::Cipher => &self.cipher,
            AlgorithmKind::Mac => &self.mac,
            AlgorithmKind::Compression => &self.compression,
        }
    }

    fn list_mut(&mut self, kind: AlgorithmKind) -> &mut Vec<&'static str> {
        match kind {
            AlgorithmKind::Kex => &mut self.kex,
            AlgorithmKind::HostKey => &mut self.host_key,
            AlgorithmKind::Cipher => &mut self.cipher,
            AlgorithmKind::Mac => &mut self.mac,
            AlgorithmKind::Compression => &mut self.compression,
        }
    }
}

/// Pseudo-algorithms a client appends to its kex list (RFC 8308, OpenSSH PROTOCOL §1.10).
pub const EXT_INFO_C: &str = "ext-info-c";
pub const EXT_INFO_S: &str = "ext-info-s";
/// Strict kex markers (the Terrapin countermeasure).
pub const STRICT_KEX_C: &str = "kex-strict-c-v00@openssh.com";
pub const STRICT_KEX_S: &str = "kex-strict-s-v00@openssh.com";

/// The parts of a KEXINIT that negotiation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KexInit {
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub cipher_c2s: Vec<String>,
    pub cipher_s2c: Vec<String>,
    pub mac_c2s: Vec<String>,
    pub mac_s2c: Vec<String>,
    pub compression_c2s: Vec<String>,
    pub compression_s2c: Vec<String>,
    pub first_kex_packet_follows: bool,
}

impl KexInit {
    /// Parses a KEXINIT payload (message number included).
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        r.bytes(16, "KEXINIT cookie")?;
        let mut list = |what| -> Result<Vec<String>> {
            Ok(r.name_list(what)?.into_iter().map(str::to_owned).collect())
        };
        let kex = list("kex algorithms")?;
        let host_key = list("host key algorithms")?;
        let cipher_c2s = list("ciphers client to server")?;
        let cipher_s2c = list("ciphers server to client")?;
        let mac_c2s = list("MACs client to server")?;
        let mac_s2c = list("MACs server to client")?;
        let compression_c2s = list("compression client to server")?;
        let compression_s2c = list("compression server to client")?;
        list("languages client to server")?;
        list("languages server to client")?;
        let first_kex_packet_follows = r.bool("first_kex_packet_follows")?;
        r.u32("KEXINIT reserved")?;
        Ok(KexInit {
            kex,
            host_key,
            cipher_c2s,
            cipher_s2c,
            mac_c2s,
            mac_s2c,
            compression_c2s,
            compression_s2c,
            first_kex_packet_follows,
        })
    }

    /// Builds our KEXINIT payload. `extra_kex` are pseudo-algorithms (ext-info, strict kex).
    pub fn build(prefs: &Preferences, extra_kex: &[&str], cookie: [u8; 16]) -> Vec<u8> {
        let mut kex: Vec<&str> = prefs.kex.clone();
        kex.extend_from_slice(extra_kex);
        let mut w = Writer::message(msg::KEXINIT);
        w.raw(&cookie)
            .name_list(&kex)
            .name_list(&prefs.host_key)
            .name_list(&prefs.cipher)
            .name_list(&prefs.cipher)
            .name_list(&prefs.mac)
            .name_list(&prefs.mac)
            .name_list(&prefs.compression)
            .name_list(&prefs.compression)
            .name_list::<&str>(&[])
            .name_list::<&str>(&[])
            .bool(false)
            .u32(0);
        w.into_bytes()
    }
}

/// The algorithms both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub kex: &'static str,
    pub host_key: &'static str,
    pub cipher_c2s: &'static str,
    pub cipher_s2c: &'static str,
    /// None when the cipher is an AEAD and no MAC applies.
    pub mac_c2s: Option<&'static str>,
    pub mac_s2c: Option<&'static str>,
    pub compression_c2s: &'static str,
    pub compression_s2c: &'static str,
}

/// Picks, for each kind, the first of the client's algorithms that the server also lists.
pub fn negotiate(client: &KexInit, server: &KexInit) -> Result<Negotiated> {
    let pick = |kind: AlgorithmKind, c: &[String], s: &[String]| -> Result<&'static str> {
        let supported = kind.supported();
        c.iter()
            .find(|name| s.contains(name))
            .and_then(|name| supported.iter().find(|(n, _)| n == name).map(|(n, _)| *n))
            .ok_or_else(|| no_match(kind, c, s))
    };
    let cipher_c2s = pick(
        AlgorithmKind::Cipher,
        &client.cipher_c2s,
        &server.cipher_c2s,
    )?;
    let cipher_s2c = pick(
        AlgorithmKind::Cipher,
        &client.cipher_s2c,
        &server.cipher_s2c,
    )?;
    let mac_for = |cipher_name: &str, c: &[String], s: &[String]| -> Result<Option<&'static str>> {
        let aead = cipher::find(cipher_name).is_some_and(|c| c.aead);
        if aead {
            Ok(None)
        } else {
            pick(AlgorithmKind::Mac, c, s).map(Some)
        }
    };
    Ok(Negotiated {
        kex: pick(AlgorithmKind::Kex, &client.kex, &server.kex)?,
        host_key: pick(AlgorithmKind::HostKey, &client.host_key, &server.host_key)?,
        mac_c2s: mac_for(cipher_c2s, &client.mac_c2s, &server.mac_c2s)?,
        mac_s2c: mac_for(cipher_s2c, &client.mac_s2c, &server.mac_s2c)?,
        compression_c2s: pick(
            AlgorithmKind::Compression,
            &client.compression_c2s,
            &server.compression_c2s,
        )?,
        compression_s2c: pick(
            AlgorithmKind::Compression,
            &client.compression_s2c,
            &server.compression_s2c,
        )?,
        cipher_c2s,
        cipher_s2c,
    })
}

fn no_match(kind: AlgorithmKind, client: &[String], server: &[String]) -> Error {
    let hint = kind
        .supported()
        .iter()
        .find(|(n, legacy)| *legacy && server.iter().any(|s| s == n))
        .map(|(n, _)| {
            format!("; the peer needs the legacy algorithm {n}, which must be enabled explicitly")
        })
        .unwrap_or_default();
    Error::protocol(format!(
        "no matching {} algorithm: client offers {}, server offers {}{hint}",
        kind.label(),
        client.join(","),
        server.join(",")
    ))
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

    fn init(prefs: &Preferences, extra: &[&str]) -> KexInit {
        KexInit::parse(&KexInit::build(prefs, extra, [7; 16])).unwrap()
    }

    #[test]
    fn client_preference_wins() {
        let mut c = Preferences::default();
        c.set(AlgorithmKind::Cipher, "aes256-ctr,aes128-gcm@openssh.com")
            .unwrap();
        let s = Preferences::default();
        let n = negotiate(&init(&c, &[EXT_INFO_C]), &init(&s, &[STRICT_KEX_S])).unwrap();
        assert_eq!(n.cipher_c2s, "aes256-ctr");
        assert_eq!(n.mac_c2s, Some(s.mac[0]));
        assert_eq!(n.kex, s.kex[0]);
    }

    #[test]
    fn aead_needs_no_mac() {
        let mut c = Preferences::default();
        c.set(AlgorithmKind::Cipher, "chacha20-poly1305@openssh.com")
            .unwrap();
        let s = Preferences {
            mac: vec!["hmac-sha2-512"],
            ..Preferences::default()
        };
        c.mac = vec!["hmac-sha2-256"];
        let n = negotiate(&init(&c, &[]), &init(&s, &[])).unwrap();
        assert_eq!(n.mac_c2s, None);
    }

    #[test]
    fn failure_names_both_lists_and_the_legacy_option() {
        let c = Preferences::default();
        let s = Preferences {
            cipher: vec!["aes128-cbc"],
            ..Preferences::default()
        };
        let e = negotiate(&init(&c, &[]), &init(&s, &[])).unwrap_err();
        let m = e.message();
        assert!(m.contains("no matching cipher"), "{m}");
        assert!(m.contains("server offers aes128-cbc"), "{m}");
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = Preferences::default()
            .set(AlgorithmKind::Mac, "hmac-md5,hmac-sha2-256")
            .unwrap_err();
        assert!(e.message().contains("hmac-md5"), "{e}");
    }

    #[test]
    fn truncated_kexinit_fails_cleanly() {
        let full = KexInit::build(&Preferences::default(), &[], [0; 16]);
        for n in 0..full.len() {
            assert!(KexInit::parse(&full[..n]).is_err());
        }
    }
}
