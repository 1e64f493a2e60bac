//! SSH message numbers (RFC 4250 §4.1) and the reason codes this crate sends.

pub const DISCONNECT: u8 = 1;
pub const IGNORE: u8 = 2;
pub const UNIMPLEMENTED: u8 = 3;
pub const DEBUG: u8 = 4;
pub const SERVICE_REQUEST: u8 = 5;
pub const SERVICE_ACCEPT: u8 = 6;
pub const EXT_INFO: u8 = 7;
pub const KEXINIT: u8 = 20;
pub const NEWKEYS: u8 = 21;
/// KEXDH_INIT and KEX_ECDH_INIT share this number.
pub const KEX_ECDH_INIT: u8 = 30;
/// KEXDH_REPLY and KEX_ECDH_REPLY share this number.
pub const KEX_ECDH_REPLY: u8 = 31;
/// KEX_DH_GEX_GROUP shares 31 with KEX_ECDH_REPLY; the phase tells them apart.
pub const KEX_DH_GEX_GROUP: u8 = 31;
pub const KEX_DH_GEX_INIT: u8 = 32;
pub const KEX_DH_GEX_REPLY: u8 = 33;
pub const KEX_DH_GEX_REQUEST: u8 = 34;
pub const USERAUTH_REQUEST: u8 = 50;
pub const USERAUTH_FAILURE: u8 = 51;
pub const USERAUTH_SUCCESS: u8 = 52;
pub const USERAUTH_BANNER: u8 = 53;
/// USERAUTH_PK_OK, USERAUTH_PASSWD_CHANGEREQ and USERAUTH_INFO_REQUEST share this number;
/// which one it is depends on the method in progress.
pub const USERAUTH_60: u8 = 60;
pub const USERAUTH_INFO_RESPONSE: u8 = 61;
pub const GLOBAL_REQUEST: u8 = 80;
pub const REQUEST_SUCCESS: u8 = 81;
pub const REQUEST_FAILURE: u8 = 82;
pub const CHANNEL_OPEN: u8 = 90;
pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
pub const CHANNEL_OPEN_FAILURE: u8 = 92;
pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
pub const CHANNEL_DATA: u8 = 94;
pub const CHANNEL_EXTENDED_DATA: u8 = 95;
pub const CHANNEL_EOF: u8 = 96;
pub const CHANNEL_CLOSE: u8 = 97;
pub const CHANNEL_REQUEST: u8 = 98;
pub const CHANNEL_SUCCESS: u8 = 99;
pub const CHANNEL_FAILURE: u8 = 100;

/// Disconnect reason codes (RFC 4250 §4.2.2) that we send.
pub mod reason {
    pub const PROTOCOL_ERROR: u32 = 2;
    pub const KEY_EXCHANGE_FAILED: u32 = 3;
    pub const MAC_ERROR: u32 = 5;
    pub const HOST_KEY_NOT_VERIFIABLE: u32 = 9;
    pub const BY_APPLICATION: u32 = 11;
}

/// Channel open failure reason codes (RFC 4254 §5.1).
pub mod open_failure {
    pub const ADMINISTRATIVELY_PROHIBITED: u32 = 1;
}

/// Which family a message number belongs to (RFC 4251 §7), for the legality table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 1-4: DISCONNECT, IGNORE, UNIMPLEMENTED, DEBUG.
    TransportGeneric,
    /// 5-7: service request/accept, EXT_INFO.
    Service,
    /// 20-49: key exchange.
    Kex,
    /// 50-79: user authentication.
    UserAuth,
    /// 80-127: connection protocol.
    Connection,
    /// Anything else (reserved, local extensions).
    Other,
}

/// The family of message number `n`.
pub fn family(n: u8) -> Family {
    match n {
        1..=4 => Family::TransportGeneric,
        5..=7 => Family::Service,
        20..=49 => Family::Kex,
        50..=79 => Family::UserAuth,
        80..=127 => Family::Connection,
        _ => Family::Other,
    }
}

/// The RFC name of message number `n`, for logs.
pub fn name(n: u8) -> &'static str {
    match n {
        DISCONNECT => "DISCONNECT",
        IGNORE => "IGNORE",
        UNIMPLEMENTED => "UNIMPLEMENTED",
        DEBUG => "DEBUG",
        SERVICE_REQUEST => "SERVICE_REQUEST",
        SERVICE_ACCEPT => "SERVICE_ACCEPT",
        EXT_INFO => "EXT_INFO",
        KEXINIT => "KEXINIT",
        NEWKEYS => "NEWKEYS",
        30..=49 => "KEX (method specific)",
        USERAUTH_REQUEST => "USERAUTH_REQUEST",
        USERAUTH_FAILURE => "USERAUTH_FAILURE",
        USERAUTH_SUCCESS => "USERAUTH_SUCCESS",
        USERAUTH_BANNER => "USERAUTH_BANNER",
        USERAUTH_60 => "USERAUTH_PK_OK/INFO_REQUEST",
        USERAUTH_INFO_RESPONSE => "USERAUTH_INFO_RESPONSE",
        GLOBAL_REQUEST => "GLOBAL_REQUEST",
        REQUEST_SUCCESS => "REQUEST_SUCCESS",
        REQUEST_FAILURE => "REQUEST_FAILURE",
        CHANNEL_OPEN => "CHANNEL_OPEN",
        CHANNEL_OPEN_CONFIRMATION => "CHANNEL_OPEN_CONFIRMATION",
        CHANNEL_OPEN_FAILURE => "CHANNEL_OPEN_FAILURE",
        CHANNEL_WINDOW_ADJUST => "CHANNEL_WINDOW_ADJUST",
        CHANNEL_DATA => "CHANNEL_DATA",
        CHANNEL_EXTENDED_DATA => "CHANNEL_EXTENDED_DATA",
        CHANNEL_EOF => "CHANNEL_EOF",
        CHANNEL_CLOSE => "CHANNEL_CLOSE",
        CHANNEL_REQUEST => "CHANNEL_REQUEST",
        CHANNEL_SUCCESS => "CHANNEL_SUCCESS",
        CHANNEL_FAILURE => "CHANNEL_FAILURE",
        _ => "unknown",
    }
}

/// True for messages whose contents must never be logged (passwords, answers).
pub fn carries_secrets(n: u8) -> bool {
    matches!(n, USERAUTH_REQUEST | USERAUTH_INFO_RESPONSE)
}
