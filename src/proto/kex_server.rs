//! Key exchange, server side (RFC 4253 §8, RFC 5656 §4, RFC 4419, RFC 8731): answers the
//! client's ephemeral value, signs the exchange hash with the negotiated host key, derives
//! keys; for group exchange, picks a group within the client's bounds first.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::kex::{Derivation, Kex, Phase, ReplyOutcome};
use super::kexinit::Negotiated;
use super::msg;
use crate::crypto::kex::{self as kex_methods, choose_group_random, DhGroup, Modulus};
use crate::crypto::kex::{GEX_MAX_BITS, GEX_MIN_BITS};
use crate::crypto::rng::SecureRandom;
use crate::keys::PrivateKey;
use crate::wire::{string_bytes, Reader, Writer};
use crate::{Error, Result};

/// What the server sends to finish an exchange: the reply, then NEWKEYS and its keys.
pub(super) struct ServerReply {
    pub reply: Vec<u8>,
    pub outcome: ReplyOutcome,
}

/// The host keys a server signs exchanges with.
pub(super) struct ServerKeys<'a> {
    pub host_keys: &'a [PrivateKey],
}

/// Both identification strings, client's first, as the exchange hash takes them.
pub(super) struct Versions<'a> {
    pub client: &'a [u8],
    pub server: &'a [u8],
}

impl Kex {
    /// The client's ephemeral value: KEX_ECDH_INIT / KEXDH_INIT, or KEX_DH_GEX_INIT in the
    /// group we chose. Returns our reply with the signed exchange hash, and the new keys.
    pub fn on_client_init(
        &mut self,
        payload: &[u8],
        versions: &Versions<'_>,
        keys: &ServerKeys<'_>,
        rng: &mut dyn SecureRandom,
    ) -> Result<ServerReply> {
        let (exchange, group) = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::AwaitInit {
                ours,
                theirs,
                negotiated,
            } => (
                Exchange {
                    ours,
                    theirs,
                    negotiated,
                    gex_hash_fields: Vec::new(),
                },
                None,
            ),
            Phase::AwaitGexInit {
                ours,
                theirs,
                negotiated,
                group,
                gex_hash_fields,
            } => (
                Exchange {
                    ours,
                    theirs,
                    negotiated,
                    gex_hash_fields,
                },
                Some(group),
            ),
            _ => return Err(Error::protocol("unexpected key exchange init")),
        };
        let mut r = Reader::new(payload);
        let number = r.u8("message number")?;
        let client_public = r.string("client ephemeral public value")?;
        r.finish("trailing bytes in the key exchange init")?;
        let method = kex_methods::find(exchange.negotiated.kex).ok_or_else(|| {
            Error::protocol(format!("kex {} unavailable", exchange.negotiated.kex))
        })?;
        let (server_public, shared) = match &group {
            Some(group) => group.respond(rng, client_public),
            None => method.respond(rng, client_public),
        }
        .map_err(|e| Error::protocol(format!("key exchange failed: {e}")))?;
        let agreed = Agreed {
            hash: method.hash(),
            client_public: string_bytes(client_public),
            server_public,
            shared,
        };
        let reply_number = match number {
            msg::KEX_DH_GEX_INIT => msg::KEX_DH_GEX_REPLY,
            _ => msg::KEX_ECDH_REPLY,
        };
        self.finish_server(exchange, agreed, versions, keys, reply_number)
    }

    /// KEX_DH_GEX_REQUEST: checks the client's bounds and returns KEX_DH_GEX_GROUP with a
    /// group from the moduli file, or the closest built-in group.
    pub fn on_gex_request(
        &mut self,
        payload: &[u8],
        moduli: &[Modulus],
        rng: &mut dyn SecureRandom,
    ) -> Result<Vec<u8>> {
        let Phase::AwaitInit {
            ours,
            theirs,
            negotiated,
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Err(Error::protocol("unexpected KEX_DH_GEX_REQUEST"));
        };
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let min = r.u32("minimum group size")?;
        let preferred = r.u32("preferred group size")?;
        let max = r.u32("maximum group size")?;
        r.finish("trailing bytes in KEX_DH_GEX_REQUEST")?;
        if min > preferred || preferred > max || max < GEX_MIN_BITS || min > GEX_MAX_BITS {
            return Err(Error::protocol(format!(
                "key exchange failed: unacceptable group sizes min {min}, preferred {preferred}, max {max}"
            )));
        }
        let lo = min.max(GEX_MIN_BITS);
        let hi = max.min(GEX_MAX_BITS);
        let want = preferred.clamp(lo, hi);
        let group = choose_group_random(moduli, lo, want, hi, rng)
            .or_else(|| builtin_group(lo, want, hi))
            .ok_or_else(|| {
                Error::protocol(format!(
                    "key exchange failed: no group between {lo} and {hi} bits"
                ))
            })?;
        let mut fields = Writer::new();
        fields
            .u32(min)
            .u32(preferred)
            .u32(max)
            .raw(group.p_encoded())
            .raw(group.g_encoded());
        let mut reply = Writer::message(msg::KEX_DH_GEX_GROUP);
        reply.raw(group.p_encoded()).raw(group.g_encoded());
        self.phase = Phase::AwaitGexInit {
            ours,
            theirs,
            negotiated,
            group,
            gex_hash_fields: fields.into_bytes(),
        };
        Ok(reply.into_bytes())
    }

    /// Hashes, signs, derives: the part every method shares.
    fn finish_server(
        &mut self,
        exchange: Exchange,
        agreed: Agreed,
        versions: &Versions<'_>,
        keys: &ServerKeys<'_>,
        reply_number: u8,
    ) -> Result<ServerReply> {
        let Exchange {
            ours,
            theirs,
            negotiated,
            gex_hash_fields,
        } = exchange;
        let host_key = keys
            .host_keys
            .iter()
            .find(|k| {
                k.public_key()
                    .signature_algorithms(true)
                    .contains(&negotiated.host_key)
            })
            .ok_or_else(|| {
                Error::protocol(format!("no host key for algorithm {}", negotiated.host_key))
            })?;
        let public = host_key.public_key();
        let exchange_hash = agreed.hash.digest(&[
            &string_bytes(versions.client),
            &string_bytes(versions.server),
            &string_bytes(&theirs),
            &string_bytes(&ours),
            &string_bytes(public.as_blob()),
            &gex_hash_fields,
            &agreed.client_public,
            &agreed.server_public,
            &agreed.shared,
        ]);
        let signature = host_key.sign(negotiated.host_key, &exchange_hash)?;
        let session_id = self
            .session_id
            .get_or_insert_with(|| exchange_hash.clone())
            .clone();
        let derivation = Derivation {
            hash: agreed.hash,
            shared: &agreed.shared,
            exchange_hash: &exchange_hash,
            session_id: &session_id,
        };
        let sealing = derivation
            .direction(negotiated.cipher_s2c, negotiated.mac_s2c, *b"BDF")?
            .sealing();
        let opening = derivation
            .direction(negotiated.cipher_c2s, negotiated.mac_c2s, *b"ACE")?
            .opening();
        let mut reply = Writer::message(reply_number);
        reply
            .string(public.as_blob())
            .raw(&agreed.server_public)
            .string(&signature);
        self.phase = Phase::AwaitNewKeys { opening };
        Ok(ServerReply {
            reply: reply.into_bytes(),
            outcome: ReplyOutcome {
                newkeys: vec![msg::NEWKEYS],
                sealing,
                host_key: public,
                negotiated,
            },
        })
    }
}

/// Both KEXINITs and what they settled.
struct Exchange {
    ours: Vec<u8>,
    theirs: Vec<u8>,
    negotiated: Negotiated,
    gex_hash_fields: Vec<u8>,
}

/// The ephemeral values (wire-encoded, as hashed) and the shared secret.
struct Agreed {
    hash: crate::crypto::KexHash,
    client_public: Vec<u8>,
    server_public: Vec<u8>,
    shared: zeroize::Zeroizing<Vec<u8>>,
}

/// Without a moduli file: a built-in group (14, 16 or 18) within the client's bounds, by
/// RFC 4419's rule: the smallest at least as large as the preferred size, else the largest.
fn builtin_group(min: u32, preferred: u32, max: u32) -> Option<DhGroup> {
    let fitting = || {
        [DhGroup::group14(), DhGroup::group16(), DhGroup::group18()]
            .into_iter()
            .filter(|g| (u64::from(min)..=u64::from(max)).contains(&g.bits()))
    };
    fitting()
        .filter(|g| g.bits() >= u64::from(preferred))
        .min_by_key(DhGroup::bits)
        .or_else(|| fitting().max_by_key(DhGroup::bits))
}

#[cfg(test)]
mod tests {
    use super::builtin_group;

    #[test]
    fn builtin_groups_follow_rfc_4419() {
        let bits = |min, n, max| builtin_group(min, n, max).map(|g| g.bits());
        assert_eq!(
            bits(2048, 3072, 8192),
            Some(4096),
            "never smaller than asked"
        );
        assert_eq!(bits(2048, 2048, 8192), Some(2048));
        assert_eq!(bits(2048, 7680, 8192), Some(8192));
        assert_eq!(bits(2048, 8192, 4096), Some(4096), "the largest within max");
        assert_eq!(bits(3000, 3072, 3500), None);
    }
}
