//! Packet ciphers (RFC 4253 §6): one [`SealingKey`] per outgoing direction, one
//! [`OpeningKey`] per incoming one, built from the [`CIPHERS`] table.
//!
//! The protocol core frames packets (`uint32 packet_length, byte padding_length, payload,
//! padding`, then the tag) and sizes the padding from [`SealingKey::block_size`] and
//! [`SealingKey::length_excluded`]. On receive it learns the length from
//! [`OpeningKey::packet_length`], collects the rest, then calls [`OpeningKey::open`]. Keys
//! also check each frame themselves (length field against buffer, block alignment), so a
//! framing bug in the caller fails closed rather than decrypting something else.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod cbc;
mod chacha;
mod ctr;
mod gcm;
mod none;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cbc;

use super::mac::MacAlgorithm;
use super::IntegrityError;

/// Encrypts and authenticates outgoing packets.
pub trait SealingKey: Send {
    /// Block size for padding: 8 for none and chacha20-poly1305, 16 for AES modes.
    fn block_size(&self) -> usize;
    /// True when the 4-byte packet_length is outside the padded region (AEAD, chacha, -etm
    /// MACs): then packet_length % block == 0 is required; else (4 + packet_length) % block
    /// == 0.
    fn length_excluded(&self) -> bool;
    /// Bytes of tag after each packet.
    fn tag_len(&self) -> usize;
    /// `packet` is the whole plaintext packet starting with packet_length. Encrypts in place
    /// and writes the tag (tag_len bytes) into `tag`.
    ///
    /// The caller guarantees the sizes; if `packet` is shorter than 4 bytes (or one block for
    /// non-etm CTR), not block-aligned for CBC, or `tag` is not tag_len long, both are zeroed
    /// instead (fail closed: nothing goes out in clear), with a debug assertion.
    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]);
}

/// Authenticates and decrypts incoming packets.
pub trait OpeningKey: Send {
    /// Block size for padding: 8 for none and chacha20-poly1305, 16 for AES modes.
    fn block_size(&self) -> usize;
    /// See [`SealingKey::length_excluded`].
    fn length_excluded(&self) -> bool;
    /// Bytes of tag after each packet.
    fn tag_len(&self) -> usize;
    /// Leading bytes needed to learn packet_length: 4 where the length is in clear or
    /// separately encrypted (none, gcm, chacha, etm), block_size for ctr and cbc without etm.
    fn length_prefix_len(&self) -> usize;
    /// Returns packet_length from the first length_prefix_len() bytes. For ctr and cbc without
    /// etm it decrypts those bytes in place (keystream or chain advances); for chacha it
    /// decrypts a copy and leaves the buffer as received; gcm/etm/none just read. Returns 0
    /// (which the caller must refuse as too short) if `prefix` is shorter than
    /// length_prefix_len().
    fn packet_length(&mut self, seq: u32, prefix: &mut [u8]) -> u32;
    /// `packet` = the whole packet (4 + packet_length bytes; the prefix as packet_length()
    /// left it), `tag` = the received tag. Verifies in constant time, then decrypts in place so
    /// that afterwards packet holds the plaintext (packet_length field included). No
    /// plaintext may be used by the caller when this returns Err.
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), IntegrityError>;
}

/// A MAC and its key, as negotiated for a non-AEAD cipher.
pub type MacChoice<'a> = Option<(&'static MacAlgorithm, &'a [u8])>;

type SealFn = fn(&[u8], &[u8], MacChoice<'_>) -> Option<Box<dyn SealingKey>>;
type OpenFn = fn(&[u8], &[u8], MacChoice<'_>) -> Option<Box<dyn OpeningKey>>;

/// One cipher as negotiated by name.
pub struct CipherAlgorithm {
    /// Wire name.
    pub name: &'static str,
    /// Bytes of key material the key derivation must produce.
    pub key_len: usize,
    /// Bytes of IV the key derivation must produce.
    pub iv_len: usize,
    /// Block size used for padding.
    pub block_size: usize,
    /// True when the cipher authenticates itself and no MAC is negotiated.
    pub aead: bool,
    /// Off unless the application enables legacy algorithms.
    pub legacy: bool,
    seal: SealFn,
    open: OpenFn,
}

impl std::fmt::Debug for CipherAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherAlgorithm")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every supported cipher, in default preference order; the legacy CBC ones last.
pub static CIPHERS: &[CipherAlgorithm] = &[
    CipherAlgorithm {
        name: "chacha20-poly1305@openssh.com",
        key_len: 64,
        iv_len: 0,
        block_size: 8,
        aead: true,
        legacy: false,
        seal: chacha::sealing_key,
        open: chacha::opening_key,
    },
    CipherAlgorithm {
        name: "aes128-gcm@openssh.com",
        key_len: 16,
        iv_len: 12,
        block_size: 16,
        aead: true,
        legacy: false,
        seal: gcm::sealing_key::<aes_gcm::Aes128Gcm>,
        open: gcm::opening_key::<aes_gcm::Aes128Gcm>,
    },
    CipherAlgorithm {
        name: "aes256-gcm@openssh.com",
        key_len: 32,
        iv_len: 12,
        block_size: 16,
        aead: true,
        legacy: false,
        seal: gcm::sealing_key::<aes_gcm::Aes256Gcm>,
        open: gcm::opening_key::<aes_gcm::Aes256Gcm>,
    },
    CipherAlgorithm {
        name: "aes128-ctr",
        key_len: 16,
        iv_len: 16,
        block_size: 16,
        aead: false,
        legacy: false,
        seal: ctr::sealing_key::<::ctr::Ctr128BE<aes::Aes128>>,
        open: ctr::opening_key::<::ctr::Ctr128BE<aes::Aes128>>,
    },
    CipherAlgorithm {
        name: "aes192-ctr",
        key_len: 24,
        iv_len: 16,
        block_size: 16,
        aead: false,
        legacy: false,
        seal: ctr::sealing_key::<::ctr::Ctr128BE<aes::Aes192>>,
        open: ctr::opening_key::<::ctr::Ctr128BE<aes::Aes192>>,
    },
    CipherAlgorithm {
        name: "aes256-ctr",
        key_len: 32,
        iv_len: 16,
        block_size: 16,
        aead: false,
        legacy: false,
        seal: ctr::sealing_key::<::ctr::Ctr128BE<aes::Aes256>>,
        open: ctr::opening_key::<::ctr::Ctr128BE<aes::Aes256>>,
    },
    CipherAlgorithm {
        name: "aes128-cbc",
        key_len: 16,
        iv_len: 16,
        block_size: 16,
        aead: false,
        legacy: true,
        seal: cbc::sealing_key::<aes::Aes128>,
        open: cbc::opening_key::<aes::Aes128>,
    },
    CipherAlgorithm {
        name: "aes192-cbc",
        key_len: 24,
        iv_len: 16,
        block_size: 16,
        aead: false,
        legacy: true,
        seal: cbc::sealing_key::<aes::Aes192>,
        open: cbc::opening_key::<aes::Aes192>,
    },
    CipherAlgorithm {
        name: "aes256-cbc",
        key_len: 32,
        iv_len: 16,
        block_size: 16,
        aead: false,
        legacy: true,
        seal: cbc::sealing_key::<aes::Aes256>,
        open: cbc::opening_key::<aes::Aes256>,
    },
    CipherAlgorithm {
        name: "3des-cbc",
        key_len: 24,
        iv_len: 8,
        block_size: 8,
        aead: false,
        legacy: true,
        seal: cbc::sealing_key::<des::TdesEde3>,
        open: cbc::opening_key::<des::TdesEde3>,
    },
];

/// Looks a cipher up by its wire name.
pub fn find(name: &str) -> Option<&'static CipherAlgorithm> {
    CIPHERS.iter().find(|c| c.name == name)
}

impl CipherAlgorithm {
    /// `mac` is None for aead ciphers, Some((alg, key)) otherwise. Uses the first key_len
    /// bytes of `key` and iv_len of `iv`.
    ///
    /// # Panics
    /// If `key` or `iv` (or the MAC key) is shorter than the table says, or a non-AEAD cipher
    /// gets no MAC: both are bugs in the caller, and carrying on would mean weak keys or
    /// unauthenticated packets.
    pub fn sealing_key(&self, key: &[u8], iv: &[u8], mac: MacChoice<'_>) -> Box<dyn SealingKey> {
        match (self.seal)(key, iv, mac) {
            Some(k) => k,
            None => self.misuse(key, iv, mac),
        }
    }

    /// The receiving counterpart of [`Self::sealing_key`]; same arguments, same panics.
    pub fn opening_key(&self, key: &[u8], iv: &[u8], mac: MacChoice<'_>) -> Box<dyn OpeningKey> {
        match (self.open)(key, iv, mac) {
            Some(k) => k,
            None => self.misuse(key, iv, mac),
        }
    }

    #[allow(clippy::panic)]
    fn misuse(&self, key: &[u8], iv: &[u8], mac: MacChoice<'_>) -> ! {
        panic!(
            "{}: bad key material (key {} of {}, iv {} of {}, mac {:?})",
            self.name,
            key.len(),
            self.key_len,
            iv.len(),
            self.iv_len,
            mac.map(|(m, k)| (m.name, k.len(), m.key_len)),
        )
    }
}

/// The null cipher in force before the first NEWKEYS (block 8, no tag, length in clear).
pub fn plaintext_sealing_key() -> Box<dyn SealingKey> {
    Box::new(none::Plaintext)
}

/// The receiving side of [`plaintext_sealing_key`].
pub fn plaintext_opening_key() -> Box<dyn OpeningKey> {
    Box::new(none::Plaintext)
}

/// Reads the big-endian u32 at the start of `bytes`, if there are four.
fn read_length(bytes: &[u8]) -> Option<u32> {
    let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// True when `packet` (length field already in plaintext) is one well-formed frame: its length
/// field counts exactly the bytes after it, and the padding rule for `block` holds.
fn frame_ok(packet: &[u8], block: usize, length_excluded: bool) -> bool {
    let Some(len) = read_length(packet) else {
        return false;
    };
    let padded = if length_excluded {
        packet.len() - 4
    } else {
        packet.len()
    };
    len as usize == packet.len() - 4 && padded % block == 0
}

/// Checks the sizes `seal` was promised. When `ok` is false (a caller bug) it wipes packet
/// and tag rather than send anything that might be plaintext or a truncated tag.
fn sealable(ok: bool, packet: &mut [u8], tag: &mut [u8]) -> bool {
    debug_assert!(ok, "seal called with a packet or tag of the wrong size");
    if !ok {
        packet.fill(0);
        tag.fill(0);
    }
    ok
}
