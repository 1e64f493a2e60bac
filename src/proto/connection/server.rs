//! The server role of a connection: the key exchange answered with our host keys, and the
//! client's channel and global requests turned into [`ServerEvent`]s for the application.
//! What depends on a decision not yet made waits for it (`decisions.rs`); the rest goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::super::channel::ChannelId;
use super::super::config::ConnectionConfig;
use super::super::kex::{Kex, Role};
use super::super::kex_server::{ServerKeys, ServerReply, Versions};
use super::super::kexinit::AlgorithmKind;
use super::super::msg;
use super::super::server::{
    DirectTcpip, GlobalRequest, OpenResult, PtyRequest, ServerConfig, ServerEvent, SessionRequest,
    WindowChange, X11Request,
};
use super::decisions::{Decisions, OwedRequest, Pending};
use super::events::Event;
use super::server_auth::ServerAuth;
use super::Connection;
use crate::crypto::rng::SecureRandom;
use crate::keys::PublicKey;
use crate::log::Level;
use crate::wire::{Reader, Writer};
use crate::{Error, ErrorKind, Result};

/// Channels one client may hold open at once: each may buffer a window of data.
const MAX_CHANNELS: usize = 64;

/// Server-only state of a connection.
pub(super) struct ServerState {
    /// Host keys, moduli and limits, shared with the server's other connections.
    pub config: Arc<ServerConfig>,
    /// Signature algorithms accepted for user keys (announced as server-sig-algs).
    pub user_sig_algs: Vec<&'static str>,
    pub auth: ServerAuth,
    pub decisions: Decisions,
    pub login_deadline: Option<Instant>,
    /// The client promised to open no more sessions (no-more-sessions@openssh.com).
    pub no_more_sessions: bool,
    /// Open session channels, and whether each has started its shell, exec or subsystem.
    pub sessions: HashMap<ChannelId, bool>,
}

impl Connection {
    /// A server connection that starts by sending its identification and KEXINIT. The host
    /// key algorithms offered are those of the configuration's preferences that one of its
    /// host keys can sign with.
    pub fn server(
        config: Arc<ServerConfig>,
        connection: &ConnectionConfig,
        rng: Box<dyn SecureRandom>,
    ) -> Result<Self> {
        let mut prefs = connection.preferences.clone();
        // User keys may sign with every modern algorithm, and the legacy ones enabled.
        let mut user_sig_algs: Vec<&'static str> = crate::keys::HOST_KEY_ALGORITHMS
            .iter()
            .filter(|(_, legacy)| !legacy)
            .map(|(name, _)| *name)
            .collect();
        for alg in prefs.get(AlgorithmKind::HostKey) {
            if !user_sig_algs.contains(alg) {
                user_sig_algs.push(alg);
            }
        }
        prefs.host_key.retain(|alg| {
            config
                .host_keys
                .iter()
                .any(|k| k.public_key().signature_algorithms(true).contains(alg))
        });
        if prefs.host_key.is_empty() {
            return Err(Error::invalid_arg(
                "no host key can sign with any enabled host key algorithm",
            ));
        }
        let max_auth_tries = config.max_auth_tries;
        let server = ServerState {
            config,
            user_sig_algs,
            auth: ServerAuth::default(),
            decisions: Decisions::default(),
            login_deadline: None,
            no_more_sessions: false,
            sessions: HashMap::new(),
        };
        let mut conn = Connection::new(prefs, rng, Kex::new(Role::Server));
        conn.server = Some(Box::new(server));
        conn.set_max_auth_tries(max_auth_tries)?;
        conn.configure(connection);
        let kexinit = conn.kex.start(&conn.prefs, conn.rng.as_mut());
        conn.write_now(&kexinit);
        Ok(conn)
    }

    /// True for a server connection.
    pub fn is_server(&self) -> bool {
        self.kex.role == Role::Server
    }

    /// Server: cuts the connection if it is still unauthenticated at `deadline`.
    pub fn set_login_deadline(&mut self, deadline: Option<Instant>) -> Result<()> {
        self.server_state()?.login_deadline = deadline;
        Ok(())
    }

    /// Server: failed authentication attempts allowed before the connection is cut.
    pub fn set_max_auth_tries(&mut self, tries: u32) -> Result<()> {
        self.server_state()?.auth.max_tries = tries.max(1);
        Ok(())
    }

    /// Server: the text sent as USERAUTH_BANNER before the first authentication answer.
    pub fn set_banner(&mut self, banner: Option<String>) -> Result<()> {
        self.server_state()?.auth.banner = banner;
        Ok(())
    }

    /// Server: the key the user authenticated with, if publickey was the method that
    /// completed authentication.
    pub fn authenticated_key(&self) -> Option<&PublicKey> {
        self.server.as_ref()?.auth.authenticated_key.as_ref()
    }

    pub(super) fn server_state(&mut self) -> Result<&mut ServerState> {
        self.server.as_deref_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::State,
                "a server's call, and this is a client connection",
            )
        })
    }

    /// Fails the connection when the login grace time is over.
    pub(super) fn check_login_deadline(&mut self, now: Instant) -> Result<()> {
        let expired = self.server.as_ref().is_some_and(|s| {
            !s.auth.is_authenticated() && s.login_deadline.is_some_and(|d| now >= d)
        });
        if expired {
            let e = Error::new(
                ErrorKind::Timeout,
                "the client did not authenticate within the login grace time",
            );
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// The server's handling of messages past the transport layer.
    pub(super) fn dispatch_server(&mut self, number: u8, payload: &[u8]) -> Result<()> {
        match number {
            msg::KEX_ECDH_INIT | msg::KEX_DH_GEX_INIT => {
                let reply = self.answer_key_exchange(payload)?;
                self.finish_server_kex(reply);
            }
            msg::KEX_DH_GEX_REQUEST => {
                let state = self.server.as_deref().ok_or_else(not_server)?;
                let group =
                    self.kex
                        .on_gex_request(payload, &state.config.moduli, self.rng.as_mut())?;
                self.write_now(&group);
            }
            msg::SERVICE_REQUEST => self.on_service_request(payload)?,
            msg::EXT_INFO => {}
            msg::USERAUTH_REQUEST => self.on_userauth_request(payload)?,
            msg::USERAUTH_INFO_RESPONSE => self.on_info_response(payload)?,
            msg::GLOBAL_REQUEST => self.on_client_global_request(payload)?,
            msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => self.on_global_reply(payload)?,
            msg::CHANNEL_OPEN => self.on_channel_open(payload)?,
            msg::CHANNEL_REQUEST => self.on_channel_request(payload)?,
            _ => {
                for reply in self.channels.handle(payload)? {
                    self.send(reply);
                }
            }
        }
        Ok(())
    }

    fn answer_key_exchange(&mut self, payload: &[u8]) -> Result<ServerReply> {
        let peer = self.peer_version.clone().unwrap_or_default();
        let state = self.server.as_deref().ok_or_else(not_server)?;
        let versions = Versions {
            client: &peer,
            server: &self.our_version,
        };
        let keys = ServerKeys {
            host_keys: &state.config.host_keys,
        };
        self.kex
            .on_client_init(payload, &versions, &keys, self.rng.as_mut())
    }

    /// Sends the reply and NEWKEYS, puts our outbound keys in force, and after the first
    /// exchange announces server-sig-algs to a client that asked for extensions.
    fn finish_server_kex(&mut self, reply: ServerReply) {
        let ServerReply { reply, outcome } = reply;
        self.write_now(&reply);
        self.write_now(&outcome.newkeys);
        self.writer
            .set_key(outcome.sealing, self.kex.strict, self.outbound.len());
        self.compression_out_pending =
            self.start_compression(outcome.negotiated.compression_s2c, true);
        if self.host_key.is_none() && self.kex.peer_ext_info {
            let algs = self
                .server
                .as_ref()
                .map(|s| s.user_sig_algs.join(","))
                .unwrap_or_default();
            let mut w = Writer::message(msg::EXT_INFO);
            w.u32(1).string("server-sig-algs").string(algs);
            self.write_now(w.as_bytes());
        }
        self.log_kex_summary(&outcome.negotiated, &outcome.host_key);
        self.host_key = Some(outcome.host_key);
        self.negotiated = Some(outcome.negotiated);
        self.flush_held();
    }

    fn on_service_request(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let service = r.string("service name")?;
        if service != b"ssh-userauth" {
            return Err(Error::protocol(format!(
                "service {} is not available",
                String::from_utf8_lossy(service)
            )));
        }
        self.server_state()?.auth.on_service_request();
        let mut w = Writer::message(msg::SERVICE_ACCEPT);
        w.string("ssh-userauth");
        self.send(w.into_bytes());
        Ok(())
    }

    fn on_channel_open(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let kind = lossy_utf8(r.string("channel type")?);
        let sender = r.u32("sender channel")?;
        let window = r.u32("initial window size")?;
        let max_packet = r.u32("maximum packet size")?;
        let direct_tcpip = match kind.as_str() {
            "direct-tcpip" => Some(DirectTcpip {
                host: lossy_utf8(r.string("host to connect")?),
                port: r.u32("port to connect")?,
                origin_host: lossy_utf8(r.string("originator address")?),
                origin_port: r.u32("originator port")?,
            }),
            _ => None,
        };
        let refusal = if self.channels.count() >= MAX_CHANNELS {
            Some((OpenResult::ResourceShortage, "too many channels"))
        } else if kind == "session" && self.server_state()?.no_more_sessions {
            Some((
                OpenResult::AdministrativelyProhibited,
                "the client asked for no more sessions",
            ))
        } else {
            None
        };
        let channel = self.channels.incoming(sender, window, max_packet)?;
        if let Some((result, why)) = refusal {
            if let Some(p) = self.channels.refuse(channel, result.code(), why) {
                self.send(p);
            }
            return Ok(());
        }
        let session = kind == "session";
        self.raise(
            ServerEvent::ChannelOpen {
                channel,
                kind,
                direct_tcpip,
            },
            Pending::ChannelOpen { channel, session },
        )
    }

    /// Server: the application's verdict on the open of `channel` it was asked about.
    pub fn answer_channel_open(&mut self, channel: ChannelId, result: OpenResult) -> Result<()> {
        let Some(session) = self.server_state()?.decisions.opens.remove(&channel) else {
            return Err(Error::new(
                ErrorKind::State,
                format!("no open of channel {channel} awaits an answer"),
            ));
        };
        let payload = match result {
            OpenResult::Succeeded => {
                self.incoming.accepted.push_back(channel);
                self.events.note(Event::ChannelAccepted);
                let state = self.server_state()?;
                if session {
                    state.sessions.insert(channel, false);
                } else {
                    state.sessions.remove(&channel);
                }
                self.channels.confirm(channel)
            }
            refused => self
                .channels
                .refuse(channel, refused.code(), "refused by the server"),
        };
        if let Some(p) = payload {
            self.send(p);
        }
        Ok(())
    }

    fn on_channel_request(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let channel = r.u32("recipient channel")?;
        let kind = r.string("request type")?;
        let want_reply = r.bool("want reply")?;
        let Some(closed_by_us) = self.channels.get(channel).map(|c| c.close_sent) else {
            return Err(Error::protocol(format!(
                "message for unknown channel {channel}"
            )));
        };
        // Requests on a channel we already closed get no answer (RFC 4254 §5.3).
        if closed_by_us {
            return Ok(());
        }
        let request = match kind {
            b"pty-req" => Some(SessionRequest::Pty(PtyRequest {
                term: lossy_utf8(r.string("terminal type")?),
                width_chars: r.u32("terminal width")?,
                height_rows: r.u32("terminal height")?,
                width_pixels: r.u32("terminal pixel width")?,
                height_pixels: r.u32("terminal pixel height")?,
                modes: r.string("terminal modes")?.to_vec(),
            })),
            b"shell" => Some(SessionRequest::Shell),
            b"exec" => Some(SessionRequest::Exec(r.string("command")?.to_vec())),
            b"subsystem" => Some(SessionRequest::Subsystem(lossy_utf8(
                r.string("subsystem")?,
            ))),
            b"env" => Some(SessionRequest::Env {
                name: lossy_utf8(r.string("variable name")?),
                value: r.string("variable value")?.to_vec(),
            }),
            b"window-change" => Some(SessionRequest::WindowChange(WindowChange {
                width_chars: r.u32("terminal width")?,
                height_rows: r.u32("terminal height")?,
                width_pixels: r.u32("terminal pixel width")?,
                height_pixels: r.u32("terminal pixel height")?,
            })),
            b"x11-req" => Some(SessionRequest::X11(X11Request {
                single_connection: r.bool("single connection")?,
                auth_protocol: lossy_utf8(r.string("X11 authentication protocol")?),
                auth_cookie: lossy_utf8(r.string("X11 authentication cookie")?),
                screen: r.u32("X11 screen number")?,
            })),
            b"auth-agent-req@openssh.com" => Some(SessionRequest::ForwardAgent),
            _ => None,
        };
        let started = self.server_state()?.sessions.get(&channel).copied();
        let starts = matches!(
            request,
            Some(SessionRequest::Shell | SessionRequest::Exec(_) | SessionRequest::Subsystem(_))
        );
        // Session requests only on sessions, and one shell, exec or subsystem each.
        let request = match started {
            Some(false) => request,
            Some(true) if !starts => request,
            _ => None,
        };
        let Some(request) = request else {
            let name = lossy_utf8(kind);
            self.log(Level::Debug, || format!("refusing channel request {name}"));
            if want_reply {
                if let Some(p) = self.channels.request_reply(channel, false) {
                    self.send(p);
                }
            }
            return Ok(());
        };
        self.raise(
            ServerEvent::ChannelRequest { channel, request },
            Pending::ChannelRequest {
                channel,
                want_reply,
                starts,
            },
        )
    }

    /// Server: the application's verdict on the request on `channel` it was asked about.
    pub fn answer_channel_request(&mut self, channel: ChannelId, ok: bool) -> Result<()> {
        let Some(OwedRequest { want_reply, starts }) =
            self.server_state()?.decisions.requests.remove(&channel)
        else {
            return Err(Error::new(
                ErrorKind::State,
                format!("no request on channel {channel} awaits an answer"),
            ));
        };
        if ok && starts {
            self.server_state()?.sessions.insert(channel, true);
        }
        if want_reply {
            if let Some(p) = self.channels.request_reply(channel, ok) {
                self.send(p);
            }
        }
        self.send_behind_reply(channel);
        self.release_waiting();
        Ok(())
    }

    fn on_client_global_request(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let name = r.string("request name")?;
        let want_reply = r.bool("want reply")?;
        let request = match name {
            b"tcpip-forward" => GlobalRequest::PortForward {
                address: lossy_utf8(r.string("address to bind")?),
                port: r.u32("port to bind")?,
            },
            b"cancel-tcpip-forward" => GlobalRequest::CancelPortForward {
                address: lossy_utf8(r.string("address to bind")?),
                port: r.u32("port to bind")?,
            },
            b"no-more-sessions@openssh.com" => {
                self.server_state()?.no_more_sessions = true;
                if want_reply {
                    self.send(vec![msg::REQUEST_SUCCESS]);
                }
                return Ok(());
            }
            // Keepalives and host key rotation proofs get OpenSSH's answer: a refusal.
            b"keepalive@openssh.com" | b"hostkeys-prove-00@openssh.com" => {
                if want_reply {
                    self.send(vec![msg::REQUEST_FAILURE]);
                }
                return Ok(());
            }
            _ => GlobalRequest::Other {
                name: lossy_utf8(name),
                data: r.remaining().to_vec(),
            },
        };
        self.raise(ServerEvent::Global(request), Pending::Global { want_reply })
    }

    /// Server: the application's verdict on the global request it was asked about: reply
    /// data to accept (possibly empty), None to refuse.
    pub fn answer_global_request(&mut self, reply: Option<Vec<u8>>) -> Result<()> {
        let Some(want_reply) = self.server_state()?.decisions.global.take() else {
            return Err(Error::new(
                ErrorKind::State,
                "no global request awaits an answer",
            ));
        };
        if want_reply {
            let payload = match reply {
                Some(data) => {
                    let mut w = Writer::message(msg::REQUEST_SUCCESS);
                    w.raw(&data);
                    w.into_bytes()
                }
                None => vec![msg::REQUEST_FAILURE],
            };
            self.send(payload);
        }
        self.release_waiting();
        Ok(())
    }
}

fn not_server() -> Error {
    Error::new(ErrorKind::Internal, "server message on a client connection")
}

/// Peer-supplied text for the application: invalid UTF-8 is replaced, never trusted.
pub(super) fn lossy_utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
