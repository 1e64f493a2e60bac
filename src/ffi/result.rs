//! `ssh_result` codes. Append-only: a retired number stays here as a comment.

use std::ffi::c_int;

/// Success.
pub const SSH_OK: c_int = 0;
/// An argument was NULL, not UTF-8, out of range or an unknown name.
pub const SSH_ERR_INVALID_ARG: c_int = -1;
/// A non-blocking call (timeout 0) would have had to wait.
pub const SSH_ERR_AGAIN: c_int = -2;
/// A blocking call's timeout elapsed.
pub const SSH_ERR_TIMEOUT: c_int = -3;
/// The stream ended.
pub const SSH_ERR_EOF: c_int = -4;
/// The transport or channel is closed.
pub const SSH_ERR_CLOSED: c_int = -5;
/// The server refused authentication; `ssh_transport_get_auth_methods` says what can continue.
pub const SSH_ERR_AUTH_DENIED: c_int = -6;
/// The server's host key was refused or its signature was invalid.
pub const SSH_ERR_HOSTKEY_REJECTED: c_int = -7;
/// The peer broke the protocol, or no algorithm could be agreed.
pub const SSH_ERR_PROTOCOL: c_int = -8;
/// A system call failed (resolve, connect, read, write, open).
pub const SSH_ERR_IO: c_int = -9;
/// A key or key file could not be parsed.
pub const SSH_ERR_KEY_FORMAT: c_int = -10;
/// The key file is encrypted and no passphrase was given.
pub const SSH_ERR_PASSWORD_REQUIRED: c_int = -11;
/// The passphrase for the key file is wrong.
pub const SSH_ERR_BAD_PASSPHRASE: c_int = -12;
/// The call is not valid in the current state.
pub const SSH_ERR_STATE: c_int = -13;
/// The server refused a request (channel open, exec, ...).
pub const SSH_ERR_REFUSED: c_int = -14;
/// The handle was consumed by an earlier call.
pub const SSH_ERR_ALREADY_USED: c_int = -15;
/// The remote command was killed by a signal; `ssh_channel_get_exit_signal` names it.
pub const SSH_ERR_EXIT_SIGNAL: c_int = -16;
/// The channel closed without an exit status or signal.
pub const SSH_ERR_NO_EXIT_STATUS: c_int = -17;
/// A bug in Sekura (a caught panic); the last error has the details.
pub const SSH_ERR_INTERNAL: c_int = -18;
/// A wait could only end if the other stream were read: its unread data reached the
/// channel's buffer limit (`ssh_channel_set_buffer_limit`); the last error names it.
pub const SSH_ERR_BUFFER_FULL: c_int = -19;

/// `ssh_transport_set_preferred` kind: key exchange methods.
pub const SSH_ALG_KEX: c_int = 0;
/// `ssh_transport_set_preferred` kind: host key algorithms.
pub const SSH_ALG_HOSTKEY: c_int = 1;
/// `ssh_transport_set_preferred` kind: ciphers.
pub const SSH_ALG_CIPHER: c_int = 2;
/// `ssh_transport_set_preferred` kind: MACs.
pub const SSH_ALG_MAC: c_int = 3;
/// `ssh_transport_set_preferred` kind: compression ("none", "zlib@openssh.com", "zlib").
pub const SSH_ALG_COMPRESSION: c_int = 4;

/// `ssh_knownhosts_check`: a line lists this host with this key.
pub const SSH_KNOWNHOSTS_MATCH: c_int = 0;
/// `ssh_knownhosts_check`: no line lists this host (with any key).
pub const SSH_KNOWNHOSTS_NOT_FOUND: c_int = 1;
/// `ssh_knownhosts_check`: a line lists this host with a different key (possible attack).
pub const SSH_KNOWNHOSTS_MISMATCH: c_int = 2;
/// `ssh_knownhosts_check`: the key is marked @revoked.
pub const SSH_KNOWNHOSTS_REVOKED: c_int = 3;

/// A short description of a result code.
pub(crate) fn describe(code: c_int) -> &'static std::ffi::CStr {
    match code {
        SSH_OK => c"success",
        SSH_ERR_INVALID_ARG => c"invalid argument",
        SSH_ERR_AGAIN => c"operation would block",
        SSH_ERR_TIMEOUT => c"timed out",
        SSH_ERR_EOF => c"end of stream",
        SSH_ERR_CLOSED => c"closed",
        SSH_ERR_AUTH_DENIED => c"authentication denied",
        SSH_ERR_HOSTKEY_REJECTED => c"host key rejected",
        SSH_ERR_PROTOCOL => c"protocol error",
        SSH_ERR_IO => c"I/O error",
        SSH_ERR_KEY_FORMAT => c"invalid key format",
        SSH_ERR_PASSWORD_REQUIRED => c"passphrase required",
        SSH_ERR_BAD_PASSPHRASE => c"wrong passphrase",
        SSH_ERR_STATE => c"invalid state for this call",
        SSH_ERR_REFUSED => c"request refused by the server",
        SSH_ERR_ALREADY_USED => c"handle already used",
        SSH_ERR_EXIT_SIGNAL => c"remote command killed by a signal",
        SSH_ERR_NO_EXIT_STATUS => c"no exit status",
        SSH_ERR_INTERNAL => c"internal error",
        SSH_ERR_BUFFER_FULL => c"channel buffer full: read the other stream",
        _ => c"unknown result",
    }
}
