//! What a server decides on and is asked about: the requests a client makes that the
//! application answers (authentication, channels, global requests), as the protocol core
//! hands them out, and the answers it takes back.

use std::fmt;

use zeroize::Zeroizing;

use super::super::ChannelId;
use crate::keys::PublicKey;

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

/// An authentication request waiting for the application's verdict. Its Debug output
/// leaves out passwords and answers.
#[derive(Clone)]
pub enum AuthRequest {
    None,
    Password(Zeroizing<String>),
    /// `signature_verified` false: the client only asks whether this key would do.
    PublicKey {
        key: Box<PublicKey>,
        signature_verified: bool,
    },
    /// The start of keyboard-interactive, with the client's submethods hint.
    KeyboardInteractive {
        submethods: String,
    },
    /// Answers to the last round of prompts, in order.
    InfoResponse(Zeroizing<Vec<String>>),
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthRequest::None => f.write_str("None"),
            AuthRequest::Password(_) => f.write_str("Password(..)"),
            AuthRequest::PublicKey {
                key,
                signature_verified,
            } => f
                .debug_struct("PublicKey")
                .field("key", &key.fingerprint_sha256())
                .field("signature_verified", signature_verified)
                .finish(),
            AuthRequest::KeyboardInteractive { submethods } => f
                .debug_struct("KeyboardInteractive")
                .field("submethods", submethods)
                .finish(),
            AuthRequest::InfoResponse(answers) => {
                write!(f, "InfoResponse({} answers)", answers.len())
            }
        }
    }
}

/// A channel request waiting for the application's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRequest {
    Pty(PtyRequest),
    Shell,
    Exec(Vec<u8>),
    Subsystem(String),
    Env { name: String, value: Vec<u8> },
    WindowChange(WindowChange),
    X11(X11Request),
    ForwardAgent,
}

/// A global request waiting for the application's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalRequest {
    /// "tcpip-forward": answer with the bound port.
    PortForward {
        address: String,
        port: u32,
    },
    /// "cancel-tcpip-forward": always answered with success.
    CancelPortForward {
        address: String,
        port: u32,
    },
    Other {
        name: String,
        data: Vec<u8>,
    },
}

/// Something the client asked that the application decides. Until it is answered, what
/// depends on it waits (later authentication attempts, the channel's later messages, later
/// global requests); answer a channel's open or request with its `channel`.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    Auth {
        user: String,
        request: AuthRequest,
    },
    /// A new channel; `direct_tcpip` carries the endpoints of a "direct-tcpip" channel.
    ChannelOpen {
        channel: ChannelId,
        kind: String,
        direct_tcpip: Option<DirectTcpip>,
    },
    ChannelRequest {
        channel: ChannelId,
        request: SessionRequest,
    },
    Global(GlobalRequest),
}

/// The application's verdict on an authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAnswer {
    /// A verdict, and after a refusal or partial success the methods that may continue.
    Verdict {
        result: AuthResult,
        allowed_methods: String,
    },
    /// Keyboard-interactive: ask these prompts.
    Query(InteractiveQuery),
}
