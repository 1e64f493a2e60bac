//! zlib compression of packet payloads (RFC 4253 §6.2), as OpenSSH's packet.c does it: one
//! zlib stream (with its 2-byte header) per direction for the life of the connection (or of
//! the keys, after a rekey that negotiates it anew), each payload compressed with a partial
//! flush so the peer can decode it at once, and inflated with a sync flush.
//!
//! `zlib@openssh.com` is the same stream, started only after USERAUTH_SUCCESS, so that nobody
//! unauthenticated reaches the decompressor.
//!
//! Decompression is bounded: a payload that would inflate past the caller's limit is refused
//! after at most `limit` bytes (plus one chunk) were produced, so a zip bomb costs no more
//! memory than an honest packet of the largest allowed size.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// One compression method as negotiated by name.
#[derive(Debug)]
pub struct CompressionAlgorithm {
    /// Wire name.
    pub name: &'static str,
    /// True for "none": no compressor at all.
    pub identity: bool,
    /// Starts only once authentication has succeeded (`zlib@openssh.com`): from the first
    /// packet after USERAUTH_SUCCESS in each direction.
    pub delayed: bool,
    /// Off unless the application enables legacy algorithms (none are).
    pub legacy: bool,
}

/// Every supported method in default preference order (DESIGN.md).
pub static COMPRESSION: &[CompressionAlgorithm] = &[
    CompressionAlgorithm {
        name: "none",
        identity: true,
        delayed: false,
        legacy: false,
    },
    CompressionAlgorithm {
        name: "zlib@openssh.com",
        identity: false,
        delayed: true,
        legacy: false,
    },
    CompressionAlgorithm {
        name: "zlib",
        identity: false,
        delayed: false,
        legacy: false,
    },
];

/// Looks a method up by its wire name.
pub fn find(name: &str) -> Option<&'static CompressionAlgorithm> {
    COMPRESSION.iter().find(|c| c.name == name)
}

/// Why a compressed payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionError {
    /// Not valid zlib data for this stream (or the peer ended the stream, which SSH never does).
    Corrupt,
    /// It inflates to more than the limit.
    TooLarge,
}

impl fmt::Display for CompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompressionError::Corrupt => "compressed payload is not valid zlib data",
            CompressionError::TooLarge => "compressed payload inflates beyond the packet limit",
        })
    }
}

impl std::error::Error for CompressionError {}

/// zlib's level 6, as OpenSSH uses.
const LEVEL: u32 = 6;
/// Output grown by at most this much per inflate call.
const CHUNK: usize = 32 * 1024;

/// The outgoing zlib stream of one direction.
pub struct Compressor {
    stream: Compress,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("total_in", &self.stream.total_in())
            .field("total_out", &self.stream.total_out())
            .finish()
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// A new stream, starting with the zlib header.
    pub fn new() -> Self {
        Compressor {
            stream: Compress::new(Compression::new(LEVEL), true),
        }
    }

    /// Compresses `payload` and appends the result to `out`, flushed so that the peer can
    /// inflate all of it from this packet alone (with what came before).
    ///
    /// flate2 reports errors only for misuse of a stream (use after finishing), which this
    /// type never does; were it ever to happen the output would stop short, the peer's
    /// inflate would fail, and the connection would end.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let start = self.stream.total_in();
        loop {
            let consumed = usize::try_from(self.stream.total_in() - start).unwrap_or(usize::MAX);
            let rest = payload.get(consumed..).unwrap_or_default();
            // Incompressible data grows by a few bytes per 16 KiB block, plus the flush marker.
            out.reserve(rest.len() + rest.len() / 1024 + 64);
            if self
                .stream
                .compress_vec(rest, out, FlushCompress::Partial)
                .is_err()
            {
                debug_assert!(false, "zlib stream misused");
                return;
            }
            // Done once all input is in and deflate left room: the flush is then complete.
            let all_in = self.stream.total_in() - start == payload.len() as u64;
            if all_in && out.len() < out.capacity() {
                return;
            }
        }
    }
}

/// The incoming zlib stream of one direction.
pub struct Decompressor {
    stream: Decompress,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("total_in", &self.stream.total_in())
            .field("total_out", &self.stream.total_out())
            .finish()
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor {
    /// A new stream, expecting the zlib header.
    pub fn new() -> Self {
        Decompressor {
            stream: Decompress::new(true),
        }
    }

    /// Inflates `payload` and appends the result to `out`. Fails with
    /// [`CompressionError::TooLarge`] as soon as this payload has produced more than `limit`
    /// bytes (what was appended is then removed again); memory grows with the output and never
    /// past `limit` plus one chunk of 32 KiB. After an error the stream is unusable, as the
    /// connection should be.
    pub fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), CompressionError> {
        let start_len = out.len();
        let result = self.inflate(payload, out, start_len, limit);
        if result.is_err() {
            out.truncate(start_len);
        }
        result
    }

    fn inflate(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        start_len: usize,
        limit: usize,
    ) -> Result<(), CompressionError> {
        let start_in = self.stream.total_in();
        loop {
            let consumed = usize::try_from(self.stream.total_in() - start_in)
                .map_err(|_| CompressionError::Corrupt)?;
            let rest = payload.get(consumed..).ok_or(CompressionError::Corrupt)?;
            let produced = out.len() - start_len;
            // One byte beyond the limit is enough to know it was exceeded.
            let room = limit.saturating_add(1).saturating_sub(produced).min(CHUNK);
            let at = out.len();
            out.reserve_exact(room);
            out.resize(at + room, 0);
            let before_out = self.stream.total_out();
            let status = self.stream.decompress(
                rest,
                out.get_mut(at..).unwrap_or_default(),
                FlushDecompress::Sync,
            );
            let wrote = usize::try_from(self.stream.total_out() - before_out)
                .map_err(|_| CompressionError::Corrupt)?;
            out.truncate(at + wrote);
            match status {
                Ok(Status::Ok) | Ok(Status::BufError) => {}
                // SSH never ends the stream; OpenSSH treats Z_STREAM_END as an error too.
                Ok(Status::StreamEnd) | Err(_) => return Err(CompressionError::Corrupt),
            }
            if out.len() - start_len > limit {
                return Err(CompressionError::TooLarge);
            }
            let used = usize::try_from(self.stream.total_in() - start_in)
                .map_err(|_| CompressionError::Corrupt)?;
            // zlib may keep output back even with room left, so stop only when a call makes
            // no progress: done if all input was taken, else truncated or garbage.
            if used == consumed && wrote == 0 {
                return if used == payload.len() {
                    Ok(())
                } else {
                    Err(CompressionError::Corrupt)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests;
