//! Bulk data through a session: pseudo-random data through `cat` and back, hashed on both
//! sides and never held in memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sekura::proto::ExitStatus;
use sekura::transport::{Channel, Transport};
use sha2::{Digest, Sha256};

use super::client::exec;

/// xorshift64*: fast pseudo-random test data (incompressible).
pub struct XorShift(pub u64);

impl XorShift {
    /// Fills `buf` with the next bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Lower-case hex of a digest, as `sha256sum` prints it.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `total` pseudo-random bytes to `ch` in 64 KiB blocks, then EOF; returns their
/// SHA-256.
pub fn send_pattern(ch: &Channel, total: usize) -> Vec<u8> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        rng.fill(&mut block);
        let n = block.len().min(total - sent);
        hash.update(&block[..n]);
        ch.sendall(&block[..n]).expect("sendall to cat");
        sent += n;
    }
    ch.send_eof().expect("send_eof");
    hash.finalize().to_vec()
}

/// Reads `ch`'s stdout until EOF, hashing it; after each read `progress` is given the count
/// of bytes so far. Returns the count and the SHA-256.
pub fn recv_sha256(ch: &Channel, mut progress: impl FnMut(usize)) -> (usize, Vec<u8>) {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    loop {
        let n = ch.recv(&mut buf).expect("recv stdout");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        got += n;
        progress(got);
    }
    (got, hash.finalize().to_vec())
}

/// Sends `total` bytes through `cat` while `during` runs on this thread, given the count of
/// bytes back so far; checks the bytes and SHA-256 that come back and the exit status.
/// Returns the elapsed time.
pub fn cat_round_trip(t: &Transport, total: usize, during: impl FnOnce(&AtomicUsize)) -> Duration {
    let started = Instant::now();
    let ch = Arc::new(exec(t, "cat").unwrap());
    ch.set_timeout(Some(Duration::from_secs(120)));
    let writer = {
        let ch = Arc::clone(&ch);
        std::thread::spawn(move || send_pattern(&ch, total))
    };
    let progress = Arc::new(AtomicUsize::new(0));
    let reader = {
        let ch = Arc::clone(&ch);
        let progress = Arc::clone(&progress);
        std::thread::spawn(move || recv_sha256(&ch, |got| progress.store(got, Ordering::SeqCst)))
    };
    during(&progress);
    let sent = writer.join().expect("writer thread");
    let (got, received) = reader.join().expect("reader thread");
    assert_eq!(got, total, "bytes back from cat");
    assert!(
        received == sent,
        "SHA-256 of the data back from cat differs"
    );
    assert_eq!(ch.recv_exit_status().unwrap(), ExitStatus::Code(0));
    started.elapsed()
}

/// Streams `total` pseudo-random bytes into the stdin of `cmd` (a client running `cat`
/// remotely), reads its stdout back, and checks the count, the SHA-256 and a zero exit.
/// The program's stderr goes to `log`.
pub fn pipe_round_trip(cmd: &mut std::process::Command, total: usize, log: &std::path::Path) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("create the log"))
        .spawn()
        .expect("start the client");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut block = vec![0u8; 1 << 20];
        let mut left = total;
        while left > 0 {
            let n = left.min(block.len());
            random.fill(&mut block[..n]);
            hash.update(&block[..n]);
            stdin.write_all(&block[..n]).expect("write to the client");
            left -= n;
        }
        hash.finalize()
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0;
    loop {
        let n = stdout.read(&mut buf).expect("read from the client");
        if n == 0 {
            break;
        }
        received += n;
        hash.update(&buf[..n]);
    }
    let sent = writer.join().expect("writer");
    let status = child.wait().expect("client exit");
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "the client failed ({status}): {stderr}");
    assert_eq!(received, total, "{stderr}");
    assert_eq!(hash.finalize(), sent, "the data came back altered");
}
