//! Key exchange (RFC 4253 §7-8, RFC 5656, RFC 8731): KEXINIT and negotiation for both roles,
//! and the client's side of the exchange: ephemeral value, exchange hash, host key signature
//! check, key derivation and NEWKEYS. The server's side is in `kex_server`. Used for the first
//! exchange and for every re-exchange.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zeroize::Zeroizing;

use super::kexinit::{self, KexInit, Negotiated, Preferences};
use super::msg;
use crate::crypto::cipher::{self, OpeningKey, SealingKey};
use crate::crypto::kex::{
    self as kex_methods, DhGroup, KexKind, KeyExchange, GEX_MAX_BITS, GEX_MIN_BITS,
};
use crate::crypto::rng::SecureRandom;
use crate::crypto::{mac, KexHash};
use crate::keys::PublicKey;
use crate::wire::{string_bytes, Reader, Writer};
use crate::{Error, ErrorKind, Result};

/// The group size we prefer in group exchange, between the limits the crypto layer
/// enforces (2048 bits at least, as SECURITY.md requires, and 8192 at most).
const GEX_PREFERRED_BITS: u32 = 4096;

/// Where a key exchange stands.
pub(super) enum Phase {
    /// No exchange in progress.
    Idle,
    /// Our KEXINIT is sent; waiting for the peer's.
    SentKexInit { ours: Vec<u8> },
    /// Group exchange (RFC 4419): our KEX_DH_GEX_REQUEST is sent; waiting for the group.
    AwaitGexGroup {
        ours: Vec<u8>,
        theirs: Vec<u8>,
        negotiated: Negotiated,
        hash: KexHash,
    },
    /// Both KEXINITs seen and our ephemeral value sent; waiting for the server's reply.
    AwaitReply {
        ours: Vec<u8>,
        theirs: Vec<u8>,
        negotiated: Negotiated,
        method: Box<dyn KeyExchange>,
        /// For group exchange: min, n, max, p and g as they enter the exchange hash.
        gex_hash_fields: Vec<u8>,
    },
    /// Server: both KEXINITs seen; waiting for the client's ephemeral value (or, for group
    /// exchange, its KEX_DH_GEX_REQUEST).
    AwaitInit {
        ours: Vec<u8>,
        theirs: Vec<u8>,
        negotiated: Negotiated,
    },
    /// Server, group exchange: KEX_DH_GEX_GROUP sent; waiting for KEX_DH_GEX_INIT.
    AwaitGexInit {
        ours: Vec<u8>,
        theirs: Vec<u8>,
        negotiated: Negotiated,
        group: DhGroup,
        /// min, n, max, p and g as they enter the exchange hash.
        gex_hash_fields: Vec<u8>,
    },
    /// We sent NEWKEYS; the inbound keys wait for the peer's NEWKEYS.
    AwaitNewKeys { opening: Box<dyn OpeningKey> },
}

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Client,
    Server,
}

/// What a completed server reply gives the connection.
pub(super) struct ReplyOutcome {
    /// The NEWKEYS payload to send, after which `sealing` is in force.
    pub newkeys: Vec<u8>,
    pub sealing: Box<dyn SealingKey>,
    pub host_key: PublicKey,
    pub negotiated: Negotiated,
}

/// Key exchange state that lives as long as the connection.
pub(super) struct Kex {
    pub role: Role,
    pub phase: Phase,
    /// Strict kex (kex-strict-*-v00@openssh.com) was agreed in the first exchange.
    pub strict: bool,
    /// The first exchange hash; fixed for the life of the connection.
    pub session_id: Option<Vec<u8>>,
    /// The peer guessed its first kex packet wrongly; drop the next kex-method packet.
    pub ignore_next_kex_packet: bool,
    /// The peer announced ext-info in its first KEXINIT (RFC 8308).
    pub peer_ext_info: bool,
}

impl Kex {
    pub fn new(role: Role) -> Self {
        Kex {
            role,
            phase: Phase::Idle,
            strict: false,
            session_id: None,
            ignore_next_kex_packet: false,
            peer_ext_info: false,
        }
    }

    /// True when message `number` is the one the exchange waits for now.
    pub fn expects(&self, number: u8) -> bool {
        match (&self.phase, number) {
            (Phase::Idle | Phase::SentKexInit { .. }, msg::KEXINIT) => true,
            (Phase::AwaitGexGroup { .. }, msg::KEX_DH_GEX_GROUP) => true,
            (
                Phase::AwaitReply {
                    gex_hash_fields, ..
                },
                msg::KEX_ECDH_REPLY,
            ) => gex_hash_fields.is_empty(),
            (
                Phase::AwaitReply {
                    gex_hash_fields, ..
                },
                msg::KEX_DH_GEX_REPLY,
            ) => !gex_hash_fields.is_empty(),
            (Phase::AwaitInit { negotiated, .. }, msg::KEX_ECDH_INIT) => {
                !is_group_exchange(negotiated)
            }
            (Phase::AwaitInit { negotiated, .. }, msg::KEX_DH_GEX_REQUEST) => {
                is_group_exchange(negotiated)
            }
            (Phase::AwaitGexInit { .. }, msg::KEX_DH_GEX_INIT) => true,
            (Phase::AwaitNewKeys { .. }, msg::NEWKEYS) => true,
            _ => false,
        }
    }

    /// Starts an exchange: returns our KEXINIT payload to send.
    pub fn start(&mut self, prefs: &Preferences, rng: &mut dyn SecureRandom) -> Vec<u8> {
        let mut cookie = [0u8; 16];
        rng.fill(&mut cookie);
        let extra: &[&str] = match (self.session_id.is_none(), self.role) {
            (false, _) => &[],
            (true, Role::Client) => &[kexinit::EXT_INFO_C, kexinit::STRICT_KEX_C],
            (true, Role::Server) => &[kexinit::EXT_INFO_S, kexinit::STRICT_KEX_S],
        };
        let ours = KexInit::build(prefs, extra, cookie);
        self.phase = Phase::SentKexInit { ours: ours.clone() };
        ours
    }

    /// Handles the peer's KEXINIT and negotiates. Returns the payloads to send: our KEXINIT
    /// first if the peer started this exchange, then (client) our ephemeral value or group
    /// exchange request.
    pub fn on_kexinit(
        &mut self,
        payload: &[u8],
        prefs: &Preferences,
        rng: &mut dyn SecureRandom,
        was_first_packet: bool,
    ) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let ours = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::SentKexInit { ours } => ours,
            Phase::Idle => {
                let ours = self.start(prefs, rng);
                out.push(ours.clone());
                ours
            }
            _ => return Err(Error::protocol("unexpected KEXINIT during key exchange")),
        };
        let mine = KexInit::parse(&ours)?;
        let peer = KexInit::parse(payload)?;
        let (client, server) = match self.role {
            Role::Client => (&mine, &peer),
            Role::Server => (&peer, &mine),
        };
        if self.session_id.is_none() {
            let (peer_strict, peer_ext_info) = match self.role {
                Role::Client => (kexinit::STRICT_KEX_S, kexinit::EXT_INFO_S),
                Role::Server => (kexinit::STRICT_KEX_C, kexinit::EXT_INFO_C),
            };
            self.peer_ext_info = peer.kex.iter().any(|n| n == peer_ext_info);
            if peer.kex.iter().any(|n| n == peer_strict) {
                self.strict = true;
                if !was_first_packet {
                    return Err(Error::protocol(
                        "strict key exchange: KEXINIT was not the first packet",
                    ));
                }
            }
        }
        let negotiated = kexinit::negotiate(client, server)?;
        if peer.first_kex_packet_follows {
            let guessed_right = server.kex.first() == client.kex.first()
                && server.host_key.first() == client.host_key.first();
            self.ignore_next_kex_packet = !guessed_right;
        }
        let theirs = payload.to_vec();
        if self.role == Role::Server {
            self.phase = Phase::AwaitInit {
                ours,
                theirs,
                negotiated,
            };
            return Ok(out);
        }
        let kex = kex_methods::find(negotiated.kex)
            .ok_or_else(|| Error::protocol(format!("kex {} unavailable", negotiated.kex)))?;
        if kex.kind == KexKind::GroupExchange {
            let mut request = Writer::message(msg::KEX_DH_GEX_REQUEST);
            request
                .u32(GEX_MIN_BITS)
                .u32(GEX_PREFERRED_BITS)
                .u32(GEX_MAX_BITS);
            out.push(request.into_bytes());
            let hash = kex.hash();
            self.phase = Phase::AwaitGexGroup {
                ours,
                theirs,
                negotiated,
                hash,
            };
            return Ok(out);
        }
        let method = kex.start(rng);
        let mut init = Writer::message(msg::KEX_ECDH_INIT);
        init.raw(method.public_encoded());
        out.push(init.into_bytes());
        let gex_hash_fields = Vec::new();
        self.phase = Phase::AwaitReply {
            ours,
            theirs,
            negotiated,
            method,
            gex_hash_fields,
        };
        Ok(out)
    }

    /// Handles KEX_DH_GEX_GROUP: validates the server's group (size, primality, generator)
    /// and returns KEX_DH_GEX_INIT with our public value in it.
    pub fn on_gex_group(&mut self, payload: &[u8], rng: &mut dyn SecureRandom) -> Result<Vec<u8>> {
        let Phase::AwaitGexGroup {
            ours,
            theirs,
            negotiated,
            hash,
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Err(Error::protocol("unexpected KEX_DH_GEX_GROUP"));
        };
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let p = r.string("group prime p")?;
        let g = r.string("group generator g")?;
        r.finish("trailing bytes in KEX_DH_GEX_GROUP")?;
        let group = DhGroup::from_wire(p, g)
            .map_err(|e| Error::protocol(format!("key exchange failed: {e}")))?;
        let method = group.start(hash, rng);
        let mut fields = Writer::new();
        fields
            .u32(GEX_MIN_BITS)
            .u32(GEX_PREFERRED_BITS)
            .u32(GEX_MAX_BITS)
            .raw(group.p_encoded())
            .raw(group.g_encoded());
        let mut init = Writer::message(msg::KEX_DH_GEX_INIT);
        init.raw(method.public_encoded());
        let gex_hash_fields = fields.into_bytes();
        self.phase = Phase::AwaitReply {
            ours,
            theirs,
            negotiated,
            method,
            gex_hash_fields,
        };
        Ok(init.into_bytes())
    }

    /// Handles KEX_ECDH_REPLY / KEXDH_REPLY: checks the server's signature over the exchange
    /// hash and derives the new keys.
    pub fn on_reply(
        &mut self,
        payload: &[u8],
        client_version: &[u8],
        server_version: &[u8],
    ) -> Result<ReplyOutcome> {
        let Phase::AwaitReply {
            ours,
            theirs,
            negotiated,
            method,
            gex_hash_fields,
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Err(Error::protocol("unexpected key exchange reply"));
        };
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let host_key_blob = r.string("server host key")?;
        let server_public = r.string("server ephemeral public value")?;
        let signature = r.string("exchange hash signature")?;
        r.finish("trailing bytes in key exchange reply")?;

        let host_key = PublicKey::from_blob(host_key_blob).map_err(|e| {
            Error::new(
                ErrorKind::HostKeyRejected,
                format!("server host key unusable: {}", e.message()),
            )
        })?;
        if !host_key
            .signature_algorithms(true)
            .contains(&negotiated.host_key)
        {
            return Err(Error::new(
                ErrorKind::HostKeyRejected,
                format!(
                    "server sent a {} host key for algorithm {}",
                    host_key.key_type(),
                    negotiated.host_key
                ),
            ));
        }
        let hash = method.hash();
        let client_public = method.public_encoded().to_vec();
        let shared = method
            .agree(server_public)
            .map_err(|e| Error::new(ErrorKind::Protocol, format!("key exchange failed: {e}")))?;
        let exchange_hash = hash.digest(&[
            &string_bytes(client_version),
            &string_bytes(server_version),
            &string_bytes(&ours),
            &string_bytes(&theirs),
            &string_bytes(host_key_blob),
            &gex_hash_fields,
            &client_public,
            &string_bytes(server_public),
            &shared,
        ]);
        host_key
            .verify(negotiated.host_key, &exchange_hash, signature)
            .map_err(|e| {
                Error::new(
                    ErrorKind::HostKeyRejected,
                    format!(
                        "server's signature over the exchange hash is invalid: {}",
                        e.message()
                    ),
                )
            })?;
        let session_id = self
            .session_id
            .get_or_insert_with(|| exchange_hash.clone())
            .clone();
        let keys = Derivation {
            hash,
            shared: &shared,
            exchange_hash: &exchange_hash,
            session_id: &session_id,
        };
        let sealing = keys
            .direction(negotiated.cipher_c2s, negotiated.mac_c2s, *b"ACE")?
            .sealing();
        let opening = keys
            .direction(negotiated.cipher_s2c, negotiated.mac_s2c, *b"BDF")?
            .opening();
        self.phase = Phase::AwaitNewKeys { opening };
        Ok(ReplyOutcome {
            newkeys: vec![msg::NEWKEYS],
            sealing,
            host_key,
            negotiated,
        })
    }

    /// Handles the server's NEWKEYS: returns the inbound keys to put in force.
    pub fn on_newkeys(&mut self) -> Result<Box<dyn OpeningKey>> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::AwaitNewKeys { opening } => Ok(opening),
            _ => Err(Error::protocol("unexpected NEWKEYS")),
        }
    }
}

/// True when the negotiated method is Diffie-Hellman group exchange (RFC 4419).
fn is_group_exchange(negotiated: &Negotiated) -> bool {
    kex_methods::find(negotiated.kex).is_some_and(|k| k.kind == KexKind::GroupExchange)
}

/// Key derivation inputs (RFC 4253 §7.2).
pub(super) struct Derivation<'a> {
    pub hash: KexHash,
    pub shared: &'a Zeroizing<Vec<u8>>,
    pub exchange_hash: &'a [u8],
    pub session_id: &'a [u8],
}

impl Derivation<'_> {
    /// HASH(K || H || letter || session_id), extended with HASH(K || H || K1 || ...) to `len`.
    fn derive(&self, letter: u8, len: usize) -> Zeroizing<Vec<u8>> {
        let mut key = Zeroizing::new(self.hash.digest(&[
            self.shared,
            self.exchange_hash,
            &[letter],
            self.session_id,
        ]));
        while key.len() < len {
            let more = self.hash.digest(&[self.shared, self.exchange_hash, &key]);
            key.extend_from_slice(&more);
        }
        key.truncate(len);
        key
    }

    /// Cipher and MAC keys for one direction; `letters` are RFC 4253's IV, key and MAC
    /// letters for that direction ('A', 'C', 'E' client to server; 'B', 'D', 'F' back).
    pub fn direction(
        &self,
        cipher_name: &str,
        mac_name: Option<&str>,
        letters: [u8; 3],
    ) -> Result<DirectionKeys> {
        let [iv, enc, integrity] = letters;
        let cipher = cipher::find(cipher_name)
            .ok_or_else(|| Error::protocol(format!("cipher {cipher_name} unavailable")))?;
        let mac = match mac_name {
            Some(name) => {
                let m = mac::find(name)
                    .ok_or_else(|| Error::protocol(format!("MAC {name} unavailable")))?;
                Some((m, self.derive(integrity, m.key_len)))
            }
            None => None,
        };
        Ok(DirectionKeys {
            cipher,
            key: self.derive(enc, cipher.key_len),
            iv: self.derive(iv, cipher.iv_len),
            mac,
        })
    }
}

/// Derived key material for one direction, zeroized when dropped.
pub(super) struct DirectionKeys {
    cipher: &'static cipher::CipherAlgorithm,
    key: Zeroizing<Vec<u8>>,
    iv: Zeroizing<Vec<u8>>,
    mac: Option<(&'static mac::MacAlgorithm, Zeroizing<Vec<u8>>)>,
}

impl DirectionKeys {
    fn mac(&self) -> Option<(&'static mac::MacAlgorithm, &[u8])> {
        self.mac.as_ref().map(|(m, k)| (*m, k.as_slice()))
    }

    pub fn sealing(&self) -> Box<dyn SealingKey> {
        self.cipher.sealing_key(&self.key, &self.iv, self.mac())
    }

    pub fn opening(&self) -> Box<dyn OpeningKey> {
        self.cipher.opening_key(&self.key, &self.iv, self.mac())
    }
}
