//! A session's output streams: stdout and stderr, what arrived and is unread, and what
//! the application's threads wait for.

/// One of a session's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// CHANNEL_DATA.
    Stdout,
    /// CHANNEL_EXTENDED_DATA of type 1.
    Stderr,
}

impl Stream {
    /// The stream's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "standard output",
            Stream::Stderr => "standard error",
        }
    }

    pub(super) const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];
}

/// What the application blocks for on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// Data (or EOF) on one stream.
    Data(Stream),
    /// The exit status (or the close).
    Exit,
}

impl Awaited {
    pub(super) const ALL: [Awaited; 3] = [
        Awaited::Data(Stream::Stdout),
        Awaited::Data(Stream::Stderr),
        Awaited::Exit,
    ];

    pub(super) fn counts_against(self, stream: Stream) -> bool {
        self != Awaited::Data(stream)
    }
}

/// A count per stream.
#[derive(Debug, Default)]
pub(super) struct PerStream<T> {
    pub(super) stdout: T,
    pub(super) stderr: T,
}

impl<T: Copy> PerStream<T> {
    pub(super) fn get(&self, stream: Stream) -> T {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }

    pub(super) fn get_mut(&mut self, stream: Stream) -> &mut T {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

/// Application threads blocked on a channel, per thing awaited.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    pub(super) data: PerStream<u32>,
    pub(super) exit: u32,
}

impl Waiters {
    pub(super) fn count(&mut self, awaited: Awaited) -> &mut u32 {
        match awaited {
            Awaited::Data(stream) => self.data.get_mut(stream),
            Awaited::Exit => &mut self.exit,
        }
    }

    pub(super) fn any(&self, awaited: Awaited) -> bool {
        match awaited {
            Awaited::Data(stream) => self.data.get(stream) > 0,
            Awaited::Exit => self.exit > 0,
        }
    }
}

/// Where standard error goes (Paramiko's set_combine_stderr, libssh2's MERGE and IGNORE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StderrMode {
    /// Its own stream.
    #[default]
    Separate,
    /// Into standard output, in arrival order.
    Merge,
    /// Dropped on arrival.
    Discard,
}

/// Bytes received and not yet read by the application.
#[derive(Debug, Default)]
pub struct RecvBuffer {
    pub(super) bytes: Vec<u8>,
    pub(super) read: usize,
}

impl RecvBuffer {
    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.read
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        if self.read > 0 && self.read == self.bytes.len() {
            self.bytes.clear();
            self.read = 0;
        } else if self.read > self.bytes.len() / 2 && self.read > 64 * 1024 {
            self.bytes.drain(..self.read);
            self.read = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Copies up to `out.len()` bytes out.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let avail = self.bytes.get(self.read..).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.read += n;
        n
    }
}
