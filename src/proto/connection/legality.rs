//! The legality tables: which message may arrive in which state, one for each role. Each is
//! one exhaustive match, so a message from the wrong side or at the wrong time cannot slip
//! through to a handler (the libssh and Paramiko authentication bypasses were exactly that).

use super::super::kex::{Phase, Role};
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

impl Connection {
    /// The legality table: which message may arrive now.
    pub(super) fn verdict(&self, number: u8) -> Verdict {
        match self.kex.role {
            Role::Client => self.client_verdict(number),
            Role::Server => self.server_verdict(number),
        }
    }

    /// What a client accepts from a server.
    fn client_verdict(&self, number: u8) -> Verdict {
        let peer_in_kex = matches!(
            self.kex.phase,
            Phase::AwaitReply { .. } | Phase::AwaitNewKeys { .. }
        );
        let strict_initial = self.kex.strict && !self.established;
        let authed = self.auth.status == AuthStatus::Success;
        let fatal = |why: &str| Verdict::Fatal(format!("message {number} {why}"));
        match msg::family(number) {
            _ if number == msg::DISCONNECT => Verdict::Handle,
            Family::TransportGeneric if strict_initial => {
                fatal("is not allowed during a strict key exchange")
            }
            Family::TransportGeneric => Verdict::Handle,
            Family::Kex if self.kex.expects(number) => Verdict::Handle,
            Family::Kex => fatal("is out of sequence in the key exchange"),
            _ if !self.established || peer_in_kex => fatal("is not allowed during key exchange"),
            Family::Service => match number {
                msg::SERVICE_ACCEPT if self.auth.status == AuthStatus::AwaitingService => {
                    Verdict::Handle
                }
                msg::EXT_INFO => Verdict::Handle,
                _ => fatal("is not valid from a server at this point"),
            },
            Family::UserAuth => match number {
                msg::USERAUTH_FAILURE | msg::USERAUTH_SUCCESS | msg::USERAUTH_60
                    if matches!(self.auth.status, AuthStatus::Pending(_)) =>
                {
                    Verdict::Handle
                }
                msg::USERAUTH_BANNER if !authed => Verdict::Handle,
                _ => fatal("is not valid from a server at this point of authentication"),
            },
            Family::Connection if !authed => fatal("arrived before authentication completed"),
            Family::Connection => match number {
                msg::GLOBAL_REQUEST | msg::CHANNEL_OPEN => Verdict::Handle,
                msg::CHANNEL_OPEN_CONFIRMATION..=msg::CHANNEL_FAILURE => Verdict::Handle,
                msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE if self.awaits_global_reply() => {
                    Verdict::Handle
                }
                msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => {
                    fatal("answers a global request we did not send")
                }
                _ => Verdict::Unimplemented,
            },
            Family::Other => Verdict::Unimplemented,
        }
    }
}

impl Connection {
    /// What a server accepts from a client. Anything only a server sends (SERVICE_ACCEPT,
    /// USERAUTH_SUCCESS, PK_OK) ends the connection, as do answers to channel opens we
    /// never sent (the channel table refuses those).
    fn server_verdict(&self, number: u8) -> Verdict {
        let peer_in_kex = matches!(
            self.kex.phase,
            Phase::AwaitInit { .. } | Phase::AwaitGexInit { .. } | Phase::AwaitNewKeys { .. }
        );
        let strict_initial = self.kex.strict && !self.established;
        let stage = self.server.as_ref().map(|s| &s.auth.stage);
        let authed = stage == Some(&Stage::Success);
        let fatal = |why: &str| Verdict::Fatal(format!("message {number} {why}"));
        match msg::family(number) {
            _ if number == msg::DISCONNECT => Verdict::Handle,
            Family::TransportGeneric if strict_initial => {
                fatal("is not allowed during a strict key exchange")
            }
            Family::TransportGeneric => Verdict::Handle,
            Family::Kex if self.kex.expects(number) => Verdict::Handle,
            Family::Kex => fatal("is out of sequence in the key exchange"),
            _ if !self.established || peer_in_kex => fatal("is not allowed during key exchange"),
            Family::Service => match (number, stage) {
                (msg::SERVICE_REQUEST, Some(Stage::AwaitService)) => Verdict::Handle,
                (msg::EXT_INFO, _) => Verdict::Handle,
                _ => fatal("is not valid from a client at this point"),
            },
            Family::UserAuth => match (number, stage) {
                (msg::USERAUTH_REQUEST, Some(Stage::Ready | Stage::Interactive { .. })) => {
                    Verdict::Handle
                }
                (msg::USERAUTH_REQUEST, Some(Stage::Success)) => Verdict::Ignore,
                (msg::USERAUTH_INFO_RESPONSE, Some(Stage::Interactive { .. })) => Verdict::Handle,
                _ => fatal("is not valid from a client at this point of authentication"),
            },
            Family::Connection if !authed => fatal("arrived before authentication completed"),
            Family::Connection => match number {
                msg::GLOBAL_REQUEST | msg::CHANNEL_OPEN => Verdict::Handle,
                // An answer to a channel open we did not send ends the connection there.
                msg::CHANNEL_OPEN_CONFIRMATION..=msg::CHANNEL_FAILURE => Verdict::Handle,
                msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE if self.awaits_global_reply() => {
                    Verdict::Handle
                }
                msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => {
                    fatal("answers a global request we did not send")
                }
                _ => Verdict::Unimplemented,
            },
            Family::Other => Verdict::Unimplemented,
        }
    }
}
