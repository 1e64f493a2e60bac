//! Turns the connection's server events into [`ServerHandler`] calls and their answers.
//! Runs on a threaded transport's decision thread, or inside a caller-driven transport's
//! `process`, with no lock held while the handler decides, one decision at a time in the
//! order the client asked. Meanwhile the connection goes on with what does not depend on
//! the decision (other channels' data); what does waits inside it.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::server::SubsystemHandler;
use super::server_handler::{InteractiveResult, ServerHandler};
use super::shared_connection::SharedConnection;
use super::Channel;
use crate::log::{self, Level};
use crate::proto::msg;
use crate::proto::server::{
    AuthAnswer, AuthRequest, AuthResult, GlobalRequest, ServerEvent, SessionRequest,
};
use crate::proto::ChannelId;
use crate::Result;

/// Subsystem handlers by name, shared with the transport that registers them.
pub(super) type Subsystems = Arc<Mutex<HashMap<String, SubsystemHandler>>>;

/// Where a connection's decisions are made.
#[derive(Clone, Copy)]
pub(super) enum DecidedBy<'a> {
    /// A client: there is nothing to decide.
    Nobody,
    /// On the thread processing the stream, after each batch of input (a caller-driven
    /// transport: callbacks run inside `process`).
    ThisThread(&'a ServerDecisions),
    /// On a decision thread of the threaded transport's, started while decisions are owed.
    DecisionThread(&'a Arc<ServerDecisions>),
}

/// What a server transport decides with.
pub(super) struct ServerDecisions {
    pub handler: Arc<dyn ServerHandler>,
    pub subsystems: Subsystems,
    /// The timeout given to channel handles made here (subsystem threads).
    pub timeout: Option<Duration>,
}

impl ServerDecisions {
    /// Starts a decision thread if decisions are owed and none runs. It ends once none is
    /// left, so an idle connection holds no thread for them.
    pub fn decide_on_a_thread(self: &Arc<Self>, shared: &Arc<SharedConnection>) {
        {
            let conn = shared.state.lock();
            if !conn.decision_owed() || shared.deciding.load(Ordering::Relaxed) {
                return;
            }
            shared.deciding.store(true, Ordering::Relaxed);
        }
        let (on_thread, decisions) = (Arc::clone(shared), Arc::clone(self));
        let spawned = std::thread::Builder::new()
            .name("sekura-decide".into())
            .spawn(move || decisions.decide_all(&on_thread));
        if spawned.is_err() {
            // No thread to be had: decide here, as a caller-driven transport does.
            self.decide_all(shared);
        }
    }

    /// Makes the decisions owed, in order, until none is left or the connection ended.
    fn decide_all(&self, shared: &Arc<SharedConnection>) {
        loop {
            let event = {
                let mut conn = shared.state.lock();
                let ended = conn.error().is_some() || shared.stopped.load(Ordering::Acquire);
                match conn.take_server_event() {
                    Some(event) if !ended => event,
                    _ => {
                        shared.deciding.store(false, Ordering::Relaxed);
                        return;
                    }
                }
            };
            self.decide(shared, event);
            // The answer may have released input that changes anything, and lets a reader
            // stalled behind it go on.
            shared.wake_all();
        }
    }

    /// Asks the handler about `event` and hands the answer to the connection. A handler that
    /// panics ends this connection, never the process.
    pub fn decide(&self, shared: &Arc<SharedConnection>, event: ServerEvent) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.answer(shared, event)));
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.message().to_owned(),
            Err(_) => "the server handler panicked".to_owned(),
        };
        log::emit(Level::Error, &shared.log_name.lock(), &failure);
        shared.with(|c| c.disconnect(msg::reason::BY_APPLICATION, "internal error"));
    }

    fn answer(&self, shared: &Arc<SharedConnection>, event: ServerEvent) -> Result<()> {
        let h = self.handler.as_ref();
        match event {
            ServerEvent::Auth { user, request } => {
                let answer = auth_answer(h, &user, request);
                shared.with(|c| c.answer_auth(answer))
            }
            ServerEvent::ChannelOpen {
                channel,
                kind,
                direct_tcpip,
            } => {
                let result = match &direct_tcpip {
                    Some(endpoints) => h.check_channel_direct_tcpip_request(channel, endpoints),
                    None => h.check_channel_request(&kind, channel),
                };
                shared.with(|c| c.answer_channel_open(channel, result))
            }
            ServerEvent::ChannelRequest { channel, request } => {
                // A subsystem handler blocks on its thread; a non-blocking caller-driven
                // connection's channels never block, so there the handler's callback decides.
                if let (SessionRequest::Subsystem(name), true) = (&request, shared.calls_block()) {
                    let registered = self.subsystems.lock().get(name).cloned();
                    if let Some(run) = registered {
                        shared.with(|c| c.answer_channel_request(channel, true))?;
                        self.start_subsystem(shared, channel, name.clone(), run);
                        return Ok(());
                    }
                }
                let ok = session_verdict(h, channel, &request);
                shared.with(|c| c.answer_channel_request(channel, ok))
            }
            ServerEvent::Global(request) => {
                let reply = match request {
                    GlobalRequest::PortForward { address, port } => h
                        .check_port_forward_request(&address, port)
                        .map(|bound| match port {
                            0 => bound.to_be_bytes().to_vec(),
                            _ => Vec::new(),
                        }),
                    GlobalRequest::CancelPortForward { address, port } => {
                        h.cancel_port_forward_request(&address, port);
                        Some(Vec::new())
                    }
                    GlobalRequest::Other { name, data } => h.check_global_request(&name, &data),
                };
                shared.with(|c| c.answer_global_request(reply))
            }
        }
    }

    /// Runs a subsystem handler on its own thread; the channel closes when it returns.
    fn start_subsystem(
        &self,
        shared: &Arc<SharedConnection>,
        id: ChannelId,
        name: String,
        run: SubsystemHandler,
    ) {
        let channel = Channel::attach(Arc::clone(shared), id, self.timeout);
        let closer = Channel::attach(Arc::clone(shared), id, None);
        let spawned = std::thread::Builder::new()
            .name(format!("sekura-subsystem-{name}"))
            .spawn(move || {
                let _ = catch_unwind(AssertUnwindSafe(|| run(channel, &name)));
                let _ = closer.close();
            });
        if spawned.is_err() {
            shared.with(|c| c.channel_close(id)).ok();
        }
    }
}

fn auth_answer(h: &dyn ServerHandler, user: &str, request: AuthRequest) -> AuthAnswer {
    let step = match request {
        AuthRequest::None => InteractiveResult::Done(h.check_auth_none(user)),
        AuthRequest::Password(password) => {
            InteractiveResult::Done(h.check_auth_password(user, &password))
        }
        AuthRequest::PublicKey {
            key,
            signature_verified,
        } => InteractiveResult::Done(h.check_auth_publickey(user, &key, signature_verified)),
        AuthRequest::KeyboardInteractive { submethods } => {
            h.check_auth_interactive(user, &submethods)
        }
        AuthRequest::InfoResponse(answers) => h.check_auth_interactive_response(user, &answers),
    };
    match step {
        InteractiveResult::Query(query) => AuthAnswer::Query(query),
        InteractiveResult::Done(result) => AuthAnswer::Verdict {
            result,
            allowed_methods: match result {
                AuthResult::Success => String::new(),
                _ => h.allowed_auths(user),
            },
        },
    }
}

fn session_verdict(h: &dyn ServerHandler, channel: ChannelId, request: &SessionRequest) -> bool {
    match request {
        SessionRequest::Pty(pty) => h.check_channel_pty_request(channel, pty),
        SessionRequest::Shell => h.check_channel_shell_request(channel),
        SessionRequest::Exec(command) => h.check_channel_exec_request(channel, command),
        SessionRequest::Subsystem(name) => h.check_channel_subsystem_request(channel, name),
        SessionRequest::Env { name, value } => h.check_channel_env_request(channel, name, value),
        SessionRequest::WindowChange(size) => h.check_channel_window_change_request(channel, size),
        SessionRequest::X11(x11) => h.check_channel_x11_request(channel, x11),
        SessionRequest::ForwardAgent => h.check_channel_forward_agent_request(channel),
    }
}
