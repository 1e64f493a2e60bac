//! Server decisions: Paramiko's ServerInterface as a Rust trait. Every method has Paramiko's
//! default (deny), so an implementation overrides only what it allows.
//!
//! The methods run on the transport's reader thread with no lock held, one at a time and in
//! the order the client's requests arrived; they must not block for long, and may call the
//! non-blocking methods of the transport and its channels.

use crate::keys::PublicKey;
use crate::proto::ChannelId;

/// The outcome of one authentication attempt (Paramiko's AUTH_* constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    /// The user is authenticated.
    Success,
    /// This method succeeded but more are required (multi-factor).
    PartiallySuccessful,
    /// Refused.
    Failed,
}

/// One round of keyboard-interactive prompts (Paramiko's InteractiveQuery).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InteractiveQuery {
    pub name: String,
    pub instructions: String,
    /// Prompt text and whether the answer may be echoed.
    pub prompts: Vec<(String, bool)>,
}

/// What a keyboard-interactive step decides: a verdict, or another round of prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractiveResult {
    Done(AuthResult),
    Query(InteractiveQuery),
}

/// The answer to a channel open request (RFC 4254 §5.1 reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenResult {
    Succeeded,
    AdministrativelyProhibited,
    ConnectFailed,
    UnknownChannelType,
    ResourceShortage,
}

impl OpenResult {
    /// The RFC 4254 reason code; 0 for success.
    pub fn code(self) -> u32 {
        match self {
            OpenResult::Succeeded => 0,
            OpenResult::AdministrativelyProhibited => 1,
            OpenResult::ConnectFailed => 2,
            OpenResult::UnknownChannelType => 3,
            OpenResult::ResourceShortage => 4,
        }
    }
}

/// A "pty-req" (RFC 4254 §6.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PtyRequest {
    pub term: String,
    pub width_chars: u32,
    pub height_rows: u32,
    pub width_pixels: u32,
    pub height_pixels: u32,
    /// The encoded terminal modes, as sent (RFC 4254 §8).
    pub modes: Vec<u8>,
}

/// A "window-change" (RFC 4254 §6.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowChange {
    pub width_chars: u32,
    pub height_rows: u32,
    pub width_pixels: u32,
    pub height_pixels: u32,
}

/// An "x11-req" (RFC 4254 §6.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct X11Request {
    pub single_connection: bool,
    pub auth_protocol: String,
    pub auth_cookie: String,
    pub screen: u32,
}

/// Both ends of a "direct-tcpip" channel (RFC 4254 §7.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectTcpip {
    pub host: String,
    pub port: u32,
    pub origin_host: String,
    pub origin_port: u32,
}

/// Paramiko's ServerInterface. `user` is the name the client authenticates as.
#[allow(unused_variables)]
pub trait ServerHandler: Send + Sync {
    /// Methods to list after a refusal, comma-separated ("publickey,password").
    fn allowed_auths(&self, user: &str) -> String {
        "password".to_owned()
    }

    fn check_auth_none(&self, user: &str) -> AuthResult {
        AuthResult::Failed
    }

    fn check_auth_password(&self, user: &str, password: &str) -> AuthResult {
        AuthResult::Failed
    }

    /// Called without a signature for a client's query (`signature_verified` false: a
    /// non-Failed answer only tells the client the key would do), and again once the client
    /// signed and the library verified the signature (`signature_verified` true).
    fn check_auth_publickey(
        &self,
        user: &str,
        key: &PublicKey,
        signature_verified: bool,
    ) -> AuthResult {
        AuthResult::Failed
    }

    /// The start of keyboard-interactive authentication.
    fn check_auth_interactive(&self, user: &str, submethods: &str) -> InteractiveResult {
        InteractiveResult::Done(AuthResult::Failed)
    }

    /// The client's answers to the last round of prompts.
    fn check_auth_interactive_response(&self, user: &str, answers: &[String]) -> InteractiveResult {
        InteractiveResult::Done(AuthResult::Failed)
    }

    /// A channel of `kind` other than "direct-tcpip" ("session" in practice).
    fn check_channel_request(&self, kind: &str, channel: ChannelId) -> OpenResult {
        OpenResult::AdministrativelyProhibited
    }

    fn check_channel_direct_tcpip_request(
        &self,
        channel: ChannelId,
        request: &DirectTcpip,
    ) -> OpenResult {
        OpenResult::AdministrativelyProhibited
    }

    fn check_channel_exec_request(&self, channel: ChannelId, command: &[u8]) -> bool {
        false
    }

    fn check_channel_shell_request(&self, channel: ChannelId) -> bool {
        false
    }

    fn check_channel_pty_request(&self, channel: ChannelId, pty: &PtyRequest) -> bool {
        false
    }

    /// Asked only for names with no handler registered by
    /// [`Transport::set_subsystem_handler`](super::Transport::set_subsystem_handler); a
    /// registered handler runs without asking.
    fn check_channel_subsystem_request(&self, channel: ChannelId, name: &str) -> bool {
        false
    }

    fn check_channel_env_request(&self, channel: ChannelId, name: &str, value: &[u8]) -> bool {
        false
    }

    fn check_channel_window_change_request(&self, channel: ChannelId, size: &WindowChange) -> bool {
        false
    }

    fn check_channel_x11_request(&self, channel: ChannelId, request: &X11Request) -> bool {
        false
    }

    fn check_channel_forward_agent_request(&self, channel: ChannelId) -> bool {
        false
    }

    /// "tcpip-forward": the port bound (the chosen one when `port` is 0), or None to refuse.
    fn check_port_forward_request(&self, address: &str, port: u32) -> Option<u32> {
        None
    }

    fn cancel_port_forward_request(&self, address: &str, port: u32) {}

    /// Any other global request: reply data to accept, None to refuse.
    fn check_global_request(&self, name: &str, data: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// Text shown to the user before authentication (USERAUTH_BANNER).
    fn banner(&self) -> Option<String> {
        None
    }
}
