//! Server decisions: Paramiko's ServerInterface as a Rust trait. Every method has Paramiko's
//! default (deny), so an implementation overrides only what it allows.
//!
//! The methods run on the transport's decision thread (inside `process` for a caller-driven
//! transport) with no lock held, one at a time and in the order the client's requests
//! arrived, and may call the transport and its channels. A slow method holds back only what
//! depends on its answer: later authentication attempts, its own channel's requests and
//! data, later global requests. Other channels' data keeps flowing.

use crate::keys::PublicKey;
pub use crate::proto::server::{
    AuthResult, DirectTcpip, InteractiveQuery, OpenResult, PtyRequest, WindowChange, X11Request,
};
use crate::proto::ChannelId;

/// What a keyboard-interactive step decides: a verdict, or another round of prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractiveResult {
    Done(AuthResult),
    Query(InteractiveQuery),
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
