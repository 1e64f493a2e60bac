//! Channel commands, for either role: a client and a server both open channels (a server
//! its forwarded-tcpip, X11 and agent channels), send, read and close them.

use super::super::channel::{
    Awaited, Channel, ChannelId, ChannelLimits, ChannelState, StderrMode, Stream,
};
use super::super::packet::PacketWriter;
use super::Connection;
use crate::{Error, ErrorKind, Result};

impl Connection {
    fn authed(&self) -> Result<()> {
        self.check_alive()?;
        if !self.is_authenticated() {
            return Err(Error::new(ErrorKind::State, "not authenticated"));
        }
        Ok(())
    }

    /// Opens a session channel; watch its state for the server's answer.
    pub fn open_session(&mut self) -> Result<ChannelId> {
        self.open_channel_of("session", &[])
    }

    /// Opens a channel of `kind` with its type-specific fields in `extra` (RFC 4254 §5.1).
    pub fn open_channel_of(&mut self, kind: &str, extra: &[u8]) -> Result<ChannelId> {
        self.authed()?;
        let (id, p) = self.channels.open(kind, extra);
        self.send(p);
        Ok(id)
    }

    /// A channel's state.
    pub fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.get(id)
    }

    /// A channel's state, for the transport to record what the application was told.
    pub fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.channels.get_mut(id)
    }

    fn open_channel(&mut self, id: ChannelId) -> Result<&mut Channel> {
        self.check_alive()?;
        let c = self
            .channels
            .get_mut(id)
            .ok_or_else(|| Error::invalid_arg("no such channel"))?;
        match c.state {
            ChannelState::Open if !c.close_sent => Ok(c),
            _ => Err(Error::new(ErrorKind::Closed, "channel is closed")),
        }
    }

    /// Sends a channel request; with `want_reply` the answer lands in the channel's replies.
    pub fn channel_request(
        &mut self,
        id: ChannelId,
        kind: &str,
        want_reply: bool,
        body: &[u8],
    ) -> Result<()> {
        let c = self.open_channel(id)?;
        if matches!(kind, "exec" | "shell" | "subsystem") {
            if !c.unstarted_session {
                return Err(Error::new(
                    ErrorKind::State,
                    format!(
                        "cannot start {kind} here: one exec, shell or subsystem runs per \
                         session channel, and only on a session this side opened"
                    ),
                ));
            }
            c.unstarted_session = false;
        }
        let p = c.request(kind, want_reply, body);
        self.send_on(id, p);
        Ok(())
    }

    /// Takes the oldest unread answer (true = success) to a channel request.
    pub fn channel_take_reply(&mut self, id: ChannelId) -> Option<bool> {
        self.channels.get_mut(id)?.replies.pop_front()
    }

    /// Sends what the window and packet size allow of `data` in one packet; returns the
    /// number of bytes taken (0 when the window is shut).
    pub fn channel_send(
        &mut self,
        id: ChannelId,
        data: &[u8],
        extended: Option<u32>,
    ) -> Result<usize> {
        let held = self.sending_held() || self.reply_pending_on(id);
        let c = self.open_channel(id)?;
        if c.eof_sent {
            return Err(Error::new(
                ErrorKind::Closed,
                "EOF already sent on this channel",
            ));
        }
        let n = c.sendable(data.len());
        if n == 0 {
            return Ok(0);
        }
        let header = c.data_header(n, extended);
        let body = data.get(..n).unwrap_or_default();
        if held {
            let mut p = header;
            p.extend_from_slice(body);
            self.send_on(id, p);
        } else {
            if self.logs_packets() {
                let mut p = header.clone();
                p.extend_from_slice(body);
                self.log_packet("sent", &p);
            }
            let start = PacketWriter::begin(&mut self.outbound);
            self.outbound.extend_from_slice(&header);
            self.outbound.extend_from_slice(body);
            self.writer
                .finish(&mut self.outbound, start, self.rng.as_mut());
            self.rekey_if_due();
        }
        Ok(n)
    }

    fn known_channel(&mut self, id: ChannelId) -> Result<&mut Channel> {
        self.channels
            .get_mut(id)
            .ok_or_else(|| Error::invalid_arg("no such channel"))
    }

    /// Sends a WINDOW_ADJUST unless the connection has ended.
    fn send_adjust(&mut self, id: ChannelId, adjust: Option<Vec<u8>>) {
        if let Some(adjust) = adjust {
            if self.error.is_none() {
                self.send_on(id, adjust);
            }
        }
    }

    /// Reads received data of `stream`, re-opening the window.
    pub fn channel_read(&mut self, id: ChannelId, out: &mut [u8], stream: Stream) -> Result<usize> {
        let c = self.known_channel(id)?;
        let n = match stream {
            Stream::Stdout => c.stdout.read(out),
            Stream::Stderr => c.stderr.read(out),
        };
        let adjust = c.on_read(n, stream);
        self.send_adjust(id, adjust);
        Ok(n)
    }

    /// An application thread starts blocking on channel `id` for `awaited`; see
    /// [`Channel::wait_begin`]. Every call is paired with [`Self::channel_wait_end`].
    pub fn channel_wait_begin(&mut self, id: ChannelId, awaited: Awaited) {
        if let Some(c) = self.channels.get_mut(id) {
            let adjust = c.wait_begin(awaited);
            self.send_adjust(id, adjust);
        }
    }

    /// The thread of [`Self::channel_wait_begin`] stopped waiting.
    pub fn channel_wait_end(&mut self, id: ChannelId, awaited: Awaited) {
        if let Some(c) = self.channels.get_mut(id) {
            c.wait_end(awaited);
        }
    }

    /// Sets the window and largest packet of the channels opened from now on, by either
    /// side.
    pub fn set_channel_limits(&mut self, limits: ChannelLimits) {
        self.channels.set_limits(limits);
    }

    /// Sets how far an unread stream may grow past the window while the application waits
    /// for something else (0: never past the window).
    pub fn channel_set_buffer_limit(&mut self, id: ChannelId, limit: usize) -> Result<()> {
        self.known_channel(id)?.buffer_limit = limit;
        Ok(())
    }

    /// Sets where standard error arriving from now on goes.
    pub fn channel_set_stderr_mode(&mut self, id: ChannelId, mode: StderrMode) -> Result<()> {
        self.known_channel(id)?.stderr_mode = mode;
        Ok(())
    }

    /// Sends EOF on a channel.
    pub fn channel_eof(&mut self, id: ChannelId) -> Result<()> {
        if let Some(p) = self.open_channel(id)?.eof() {
            self.send_on(id, p);
        }
        Ok(())
    }

    /// Closes a channel (the peer answers with its own CLOSE).
    pub fn channel_close(&mut self, id: ChannelId) -> Result<()> {
        if self.error.is_some() {
            return Ok(());
        }
        if let Some(p) = self.channels.get_mut(id).and_then(Channel::close) {
            self.send_on(id, p);
        }
        Ok(())
    }

    /// Counts an application handle on channel `id`.
    pub fn channel_retain(&mut self, id: ChannelId) {
        self.channels.retain(id);
    }

    /// Drops an application handle; with the last one the channel is closed and forgotten.
    pub fn channel_release(&mut self, id: ChannelId) {
        let last = self.channels.get(id).is_some_and(|c| c.handles_left() <= 1);
        if last {
            let _ = self.channel_close(id);
        }
        self.channels.release(id);
    }
}
