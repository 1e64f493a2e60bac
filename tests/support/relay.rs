//! A TCP relay between a client and a server on 127.0.0.1, for tests that tamper with traffic
//! (a man in the middle, as in the Terrapin attack).
//!
//! The client connects to [`Relay::port`]; for each connection the relay connects to the
//! target port and copies both directions, passing what it reads through a hook:
//! - [`Relay::start`]: no hook, a transparent relay;
//! - [`Relay::with_hook`]: raw chunks as read from the socket, which the hook may change,
//!   empty or grow (chunk boundaries are the kernel's, not SSH's);
//! - [`Relay::with_frames`]: SSH frames, via [`Framer`]: the lines up to and including the
//!   version line, then whole plaintext binary packets up to and including this direction's
//!   NEWKEYS, then opaque (encrypted) bytes. The hook returns the frames to send instead: none
//!   to drop one, more to insert ([`plaintext_packet`] builds them).
//!
//! One hook serves every connection and both directions, under a lock. A panic in a hook (a
//! failed assertion) fails the test when the relay is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Which way bytes travel through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// SSH message number of NEWKEYS: the last plaintext packet in each direction.
pub const MSG_NEWKEYS: u8 = 21;
/// Beyond this a packet length is taken for garbage and the rest is passed as opaque bytes.
const MAX_PLAINTEXT_PACKET: usize = 256 * 1024;
/// Beyond this a line without LF is taken for garbage.
const MAX_LINE: usize = 8192;

/// A unit of SSH traffic in one direction; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line before or including the version line (`SSH-2.0-...`), with its line ending.
    Line(Vec<u8>),
    /// A whole plaintext binary packet: uint32 packet_length, byte padding_length, payload,
    /// padding (no MAC: the first key exchange uses none).
    Packet(Vec<u8>),
    /// Bytes after NEWKEYS, or after something that does not parse as a packet.
    Opaque(Vec<u8>),
}

impl Frame {
    /// The bytes on the wire.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Frame::Line(b) | Frame::Packet(b) | Frame::Opaque(b) => b,
        }
    }

    /// The payload of a packet.
    pub fn payload(&self) -> Option<&[u8]> {
        match self {
            Frame::Packet(p) => {
                let padding = usize::from(*p.get(4)?);
                let end = p.len().checked_sub(padding)?;
                p.get(5..end)
            }
            _ => None,
        }
    }

    /// The message number of a packet (its payload's first byte).
    pub fn msg_type(&self) -> Option<u8> {
        self.payload()?.first().copied()
    }
}

/// A plaintext binary packet (block size 8, zero padding, no MAC) carrying `payload`, e.g.
/// `plaintext_packet(&[2, 0, 0, 0, 0])` for an empty SSH_MSG_IGNORE.
pub fn plaintext_packet(payload: &[u8]) -> Vec<u8> {
    let mut padding = 8 - (5 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let length = u32::try_from(1 + payload.len() + padding).expect("packet fits u32");
    let mut packet = Vec::with_capacity(4 + length as usize);
    packet.extend_from_slice(&length.to_be_bytes());
    packet.push(padding as u8);
    packet.extend_from_slice(payload);
    packet.resize(packet.len() + padding, 0);
    packet
}

/// Splits one direction's byte stream into [`Frame`]s.
#[derive(Debug, Default)]
pub struct Framer {
    buffer: Vec<u8>,
    state: FramerState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum FramerState {
    #[default]
    Lines,
    Packets,
    Opaque,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Takes the next bytes read and returns the frames now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        loop {
            match self.state {
                FramerState::Lines => match self.buffer.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        let line: Vec<u8> = self.buffer.drain(..=end).collect();
                        if line.starts_with(b"SSH-") {
                            self.state = FramerState::Packets;
                        }
                        frames.push(Frame::Line(line));
                    }
                    None if self.buffer.len() > MAX_LINE => self.state = FramerState::Opaque,
                    None => break,
                },
                FramerState::Packets => {
                    let Some(head) = self.buffer.get(..4) else {
                        break;
                    };
                    let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    let length = length as usize;
                    if !(5..=MAX_PLAINTEXT_PACKET).contains(&length) {
                        self.state = FramerState::Opaque;
                        continue;
                    }
                    if self.buffer.len() < 4 + length {
                        break;
                    }
                    let frame = Frame::Packet(self.buffer.drain(..4 + length).collect());
                    if frame.msg_type() == Some(MSG_NEWKEYS) {
                        self.state = FramerState::Opaque;
                    }
                    frames.push(frame);
                }
                FramerState::Opaque => {
                    if !self.buffer.is_empty() {
                        frames.push(Frame::Opaque(std::mem::take(&mut self.buffer)));
                    }
                    break;
                }
            }
        }
        frames
    }

    /// At end of stream: what is left, as opaque bytes.
    pub fn finish(&mut self) -> Option<Frame> {
        if self.buffer.is_empty() {
            None
        } else {
            Some(Frame::Opaque(std::mem::take(&mut self.buffer)))
        }
    }
}

type RawHook = dyn FnMut(Direction, &mut Vec<u8>) + Send;
type FrameHook = dyn FnMut(Direction, Frame) -> Vec<Frame> + Send;

#[derive(Clone)]
enum Hook {
    None,
    Raw(Arc<Mutex<Box<RawHook>>>),
    Frames(Arc<Mutex<Box<FrameHook>>>),
}

/// A running relay; see the module documentation. Dropping it closes every connection.
pub struct Relay {
    /// The port on 127.0.0.1 that clients connect to.
    pub port: u16,
    /// The port it relays to.
    pub target_port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    pumps: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    /// A transparent relay to 127.0.0.1:`target_port`.
    pub fn start(target_port: u16) -> Relay {
        Relay::spawn(target_port, Hook::None)
    }

    /// A relay that passes every chunk read through `hook` before writing it on.
    pub fn with_hook(
        target_port: u16,
        hook: impl FnMut(Direction, &mut Vec<u8>) + Send + 'static,
    ) -> Relay {
        Relay::spawn(target_port, Hook::Raw(Arc::new(Mutex::new(Box::new(hook)))))
    }

    /// A relay that passes every [`Frame`] through `hook` and sends the frames it returns.
    pub fn with_frames(
        target_port: u16,
        hook: impl FnMut(Direction, Frame) -> Vec<Frame> + Send + 'static,
    ) -> Relay {
        Relay::spawn(
            target_port,
            Hook::Frames(Arc::new(Mutex::new(Box::new(hook)))),
        )
    }

    /// How many client connections have been accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn spawn(target_port: u16, hook: Hook) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("local_addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let pumps = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, connections) = (stop.clone(), connections.clone());
            let (streams, pumps) = (streams.clone(), pumps.clone());
            std::thread::Builder::new()
                .name(format!("relay-{port}"))
                .spawn(move || {
                    for client in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        connections.fetch_add(1, Ordering::SeqCst);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let mut kept = streams.lock().unwrap_or_else(|e| e.into_inner());
                        kept.push(client.try_clone().expect("clone stream"));
                        kept.push(server.try_clone().expect("clone stream"));
                        drop(kept);
                        let mut threads = pumps.lock().unwrap_or_else(|e| e.into_inner());
                        for (from, to, direction) in [
                            (&client, &server, Direction::ClientToServer),
                            (&server, &client, Direction::ServerToClient),
                        ] {
                            let from = from.try_clone().expect("clone stream");
                            let to = to.try_clone().expect("clone stream");
                            let hook = hook.clone();
                            threads.push(
                                std::thread::Builder::new()
                                    .name(format!("relay-{port}-{direction:?}"))
                                    .spawn(move || pump(from, to, direction, hook))
                                    .expect("spawn relay pump"),
                            );
                        }
                    }
                })
                .expect("spawn relay acceptor")
        };
        Relay {
            port,
            target_port,
            stop,
            connections,
            streams,
            pumps,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let pumps = std::mem::take(&mut *self.pumps.lock().unwrap_or_else(|e| e.into_inner()));
        let mut hook_panic = None;
        for pump in pumps {
            if let Err(panic) = pump.join() {
                hook_panic.get_or_insert(panic);
            }
        }
        if let Some(panic) = hook_panic {
            if !std::thread::panicking() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// Copies `from` to `to` through the hook until EOF or an error, then passes the EOF on.
fn pump(mut from: TcpStream, mut to: TcpStream, direction: Direction, hook: Hook) {
    let _guard = CloseOnPanic(from.try_clone().ok(), to.try_clone().ok());
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let out = transform(&hook, &mut framer, direction, &buf[..n]);
        if !out.is_empty() && to.write_all(&out).is_err() {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    if let (Hook::Frames(_), Some(rest)) = (&hook, framer.finish()) {
        let out = apply_frames(&hook, direction, vec![rest]);
        let _ = to.write_all(&out);
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Closes both sides of a connection when a hook panics, so that neither end waits forever.
struct CloseOnPanic(Option<TcpStream>, Option<TcpStream>);

impl Drop for CloseOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for stream in [&self.0, &self.1].into_iter().flatten() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

fn transform(hook: &Hook, framer: &mut Framer, direction: Direction, chunk: &[u8]) -> Vec<u8> {
    match hook {
        Hook::None => chunk.to_vec(),
        Hook::Raw(f) => {
            let mut chunk = chunk.to_vec();
            (f.lock().unwrap_or_else(|e| e.into_inner()))(direction, &mut chunk);
            chunk
        }
        Hook::Frames(_) => apply_frames(hook, direction, framer.push(chunk)),
    }
}

fn apply_frames(hook: &Hook, direction: Direction, frames: Vec<Frame>) -> Vec<u8> {
    let Hook::Frames(f) = hook else {
        unreachable!("frames without a frame hook")
    };
    let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for frame in frames {
        for sent in f(direction, frame) {
            out.extend_from_slice(sent.bytes());
        }
    }
    out
}
