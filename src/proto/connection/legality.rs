//! The legality table: which message may arrive in which phase, for either role. It is one
//! exhaustive match over (role, phase, message family) that every message passes once before
//! any handler sees it, so a message from the wrong side or at the wrong time cannot slip
//! through (the libssh and Paramiko authentication bypasses were exactly that). What the
//! table leaves to the layers below is only their own sequencing: which key exchange message
//! comes next ([`Kex::expects`](super::super::kex::Kex::expects)), and which channel a
//! channel message may name.

use super::super::kex::{Phase as KexPhase, Role};
use super::super::msg::{self, Family};
use super::super::userauth::AuthStatus;
use super::server_auth::Stage;
use super::Connection;

/// What the legality table decides for an incoming message.
pub(super) enum Verdict {
    Handle,
    /// Drop it silently (RFC 4252 §5.1: requests after authentication succeeded).
    Ignore,
    /// Reply UNIMPLEMENTED and change nothing.
    Unimplemented,
    Fatal(String),
}

/// Where the connection stands, as far as what the peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The first key exchange; `strict` (strict-kex): not even IGNORE or DEBUG may come.
    FirstKex { strict: bool },
    /// The peer is in a later key exchange: only key exchange and transport messages.
    Rekey,
    /// Keys are in force; authentication has not succeeded yet.
    Authenticating(AuthPhase),
    /// Authenticated: the connection protocol runs.
    Connected,
}

/// Where authentication stands, for either role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthPhase {
    /// The ssh-userauth service is not yet requested (server) or accepted (client).
    AwaitingService,
    /// Requests may come (server); no request of ours is outstanding (client).
    Idle,
    /// Server: keyboard-interactive prompts are out. Client: a request is outstanding.
    Awaiting,
}

impl Connection {
    /// The phase the legality table reads, from the key exchange's and authentication's
    /// state.
    pub(super) fn phase(&self) -> Phase {
        let peer_in_kex = match self.kex.role {
            Role::Client => matches!(
                self.kex.phase,
                KexPhase::AwaitReply { .. } | KexPhase::AwaitNewKeys { .. }
            ),
            Role::Server => matches!(
                self.kex.phase,
                KexPhase::AwaitInit { .. }
                    | KexPhase::AwaitGexInit { .. }
                    | KexPhase::AwaitNewKeys { .. }
            ),
        };
        if !self.established {
            return Phase::FirstKex {
                strict: self.kex.strict,
            };
        }
        if peer_in_kex {
            return Phase::Rekey;
        }
        let auth = match (&self.server, &self.auth.status) {
            (Some(server), _) => match server.auth.stage {
                Stage::Success => return Phase::Connected,
                Stage::AwaitService => AuthPhase::AwaitingService,
                Stage::Ready => AuthPhase::Idle,
                Stage::Interactive { .. } => AuthPhase::Awaiting,
            },
            (None, AuthStatus::Success) => return Phase::Connected,
            (None, AuthStatus::AwaitingService) => AuthPhase::AwaitingService,
            (None, AuthStatus::Pending(_)) => AuthPhase::Awaiting,
            (None, AuthStatus::Ready | AuthStatus::InfoRequest(_) | AuthStatus::Failed { .. }) => {
                AuthPhase::Idle
            }
        };
        Phase::Authenticating(auth)
    }

    /// The legality table: what to do with message `number` arriving now.
    pub(super) fn verdict(&self, number: u8) -> Verdict {
        use {AuthPhase::*, Phase::*, Role::*};
        let fatal = |why: &str| Verdict::Fatal(format!("message {number} {why}"));
        let global_reply = matches!(number, msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE);
        match (self.kex.role, self.phase(), msg::family(number)) {
            _ if number == msg::DISCONNECT => Verdict::Handle,
            (_, FirstKex { strict: true }, Family::TransportGeneric) => {
                fatal("is not allowed during a strict key exchange")
            }
            (_, _, Family::TransportGeneric) => Verdict::Handle,
            (_, _, Family::Kex) if self.kex.expects(number) => Verdict::Handle,
            (_, _, Family::Kex) => fatal("is out of sequence in the key exchange"),
            (_, FirstKex { .. } | Rekey, _) => fatal("is not allowed during key exchange"),
            (_, _, Family::Service) if number == msg::EXT_INFO => Verdict::Handle,
            (Client, Authenticating(AwaitingService), Family::Service)
                if number == msg::SERVICE_ACCEPT =>
            {
                Verdict::Handle
            }
            (Server, Authenticating(AwaitingService), Family::Service)
                if number == msg::SERVICE_REQUEST =>
            {
                Verdict::Handle
            }
            (Client, _, Family::Service) => fatal("is not valid from a server at this point"),
            (Server, _, Family::Service) => fatal("is not valid from a client at this point"),
            (Client, Authenticating(Awaiting), Family::UserAuth)
                if matches!(
                    number,
                    msg::USERAUTH_FAILURE | msg::USERAUTH_SUCCESS | msg::USERAUTH_60
                ) =>
            {
                Verdict::Handle
            }
            (Client, Authenticating(_), Family::UserAuth) if number == msg::USERAUTH_BANNER => {
                Verdict::Handle
            }
            (Client, _, Family::UserAuth) => {
                fatal("is not valid from a server at this point of authentication")
            }
            (Server, Authenticating(Idle | Awaiting), Family::UserAuth)
                if number == msg::USERAUTH_REQUEST =>
            {
                Verdict::Handle
            }
            (Server, Authenticating(Awaiting), Family::UserAuth)
                if number == msg::USERAUTH_INFO_RESPONSE =>
            {
                Verdict::Handle
            }
            (Server, Connected, Family::UserAuth) if number == msg::USERAUTH_REQUEST => {
                Verdict::Ignore
            }
            (Server, _, Family::UserAuth) => {
                fatal("is not valid from a client at this point of authentication")
            }
            (_, Authenticating(_), Family::Connection) => {
                fatal("arrived before authentication completed")
            }
            (_, Connected, Family::Connection) if global_reply && !self.awaits_global_reply() => {
                fatal("answers a global request we did not send")
            }
            // An answer to a channel open we did not send ends the connection in the
            // channel table.
            (_, Connected, Family::Connection) if known_connection_message(number) => {
                Verdict::Handle
            }
            (_, Connected, Family::Connection | Family::Other)
            | (_, Authenticating(_), Family::Other) => Verdict::Unimplemented,
        }
    }
}

/// The connection protocol's messages (RFC 4254): global requests and their replies, and
/// the channel messages.
fn known_connection_message(number: u8) -> bool {
    matches!(
        number,
        msg::GLOBAL_REQUEST..=msg::REQUEST_FAILURE | msg::CHANNEL_OPEN..=msg::CHANNEL_FAILURE
    )
}
