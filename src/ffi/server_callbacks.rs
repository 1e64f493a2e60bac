//! `ssh_server_callbacks`: Paramiko's ServerInterface as a C struct of nullable function
//! pointers, the context structs they receive and their result constants. The handler that
//! calls them is in `callback_handler`.

use std::ffi::{c_char, c_int, c_void};

use super::boundary::{Boxed, Castable, Opaque};
use super::pkey::ssh_pkey;
use crate::transport::InteractiveQuery;

/// Authentication callbacks: the user is authenticated.
pub const SSH_AUTH_SUCCESSFUL: c_int = 0;
/// Authentication callbacks: this method succeeded but more are required (multi-factor);
/// `get_allowed_auths` is then asked what may follow.
pub const SSH_AUTH_PARTIALLY_SUCCESSFUL: c_int = 1;
/// Authentication callbacks: refused. Any value not listed here also refuses.
pub const SSH_AUTH_FAILED: c_int = 2;
/// `check_auth_interactive` and `check_auth_interactive_response`: send the prompts the
/// callback put in its `ssh_kbdint_query` and call `check_auth_interactive_response` with
/// the answers.
pub const SSH_AUTH_INFO_REQUEST: c_int = 3;

/// Channel open callbacks: open the channel.
pub const SSH_OPEN_SUCCEEDED: c_int = 0;
/// Channel open callbacks: refused by policy (RFC 4254 reason 1). Any value not listed here
/// also gives this reason.
pub const SSH_OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED: c_int = 1;
/// Channel open callbacks: the destination could not be reached (reason 2).
pub const SSH_OPEN_FAILED_CONNECT_FAILED: c_int = 2;
/// Channel open callbacks: this kind of channel is not served (reason 3).
pub const SSH_OPEN_FAILED_UNKNOWN_CHANNEL_TYPE: c_int = 3;
/// Channel open callbacks: out of resources (reason 4).
pub const SSH_OPEN_FAILED_RESOURCE_SHORTAGE: c_int = 4;

/// The prompts of one keyboard-interactive round (Paramiko's InteractiveQuery), filled by
/// `check_auth_interactive` and `check_auth_interactive_response` with
/// `ssh_kbdint_query_set_text` and `ssh_kbdint_query_add_prompt`.
///
/// Borrowed: valid only during the callback that received it.
/// Thread safety: only on the thread running that callback.
pub struct ssh_kbdint_query {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_kbdint_query {
    type Ownership = Boxed;
    type RustType = InteractiveQuery;
}

/// The reply data of an accepted global request, set by `check_global_request` with
/// `ssh_global_reply_set`.
///
/// Borrowed: valid only during the callback that received it.
/// Thread safety: only on the thread running that callback.
pub struct ssh_global_reply {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_global_reply {
    type Ownership = Boxed;
    type RustType = Vec<u8>;
}

/// What an authentication callback is deciding on. Fields a callback is not about are NULL
/// or 0. Strings are NUL-terminated UTF-8 (the library refuses, without asking, any name or
/// password containing a NUL byte).
///
/// Borrowed: every pointer is valid only during the callback.
#[repr(C)]
pub struct ssh_server_auth_params {
    /// The user the client authenticates as.
    pub username: *const c_char,
    /// `check_auth_password`: the password.
    pub password: *const c_char,
    /// `check_auth_publickey`: the client's public key (a certificate's plain key when the
    /// client offered a certificate). Copy it with `ssh_pkey_from_blob` to keep it.
    pub key: *const ssh_pkey,
    /// `check_auth_publickey`: false for the client's query whether the key would do (answer
    /// `SSH_AUTH_SUCCESSFUL` to let it sign; nothing is authenticated yet), true once the
    /// library verified the client's signature: only then does the answer log the user in.
    pub signature_verified: bool,
    /// `check_auth_interactive`: the client's comma-separated submethods (usually "").
    pub submethods: *const c_char,
    /// `check_auth_interactive_response`: the answers to the last round's prompts, in order.
    pub answers: *const *const c_char,
    /// `check_auth_interactive_response`: how many answers.
    pub answer_count: usize,
}

/// A channel the client asks to open.
///
/// Borrowed: every pointer is valid only during the callback.
#[repr(C)]
pub struct ssh_server_open_params {
    /// The channel's number, as `ssh_channel_get_id` will report it once accepted.
    pub channel_id: u32,
    /// The channel type ("session", "direct-tcpip", ...).
    pub kind: *const c_char,
    /// "direct-tcpip": the host the client wants to reach; NULL otherwise.
    pub host: *const c_char,
    /// "direct-tcpip": the port the client wants to reach.
    pub port: u32,
    /// "direct-tcpip": the address the connection came from on the client's side.
    pub origin_host: *const c_char,
    /// "direct-tcpip": the port it came from.
    pub origin_port: u32,
}

/// A session request: exec, shell, subsystem, env or agent forwarding. Fields the request is
/// not about are NULL or 0.
///
/// Borrowed: every pointer is valid only during the callback.
#[repr(C)]
pub struct ssh_server_request_params {
    /// The channel the request is for.
    pub channel_id: u32,
    /// `check_channel_exec_request`: the command, NUL-terminated; it may itself contain NUL
    /// bytes, which `command_len` counts.
    pub command: *const c_char,
    /// `check_channel_exec_request`: the command's length in bytes.
    pub command_len: usize,
    /// `check_channel_subsystem_request`: the subsystem's name; `check_channel_env_request`:
    /// the variable's name.
    pub name: *const c_char,
    /// `check_channel_env_request`: the value, NUL-terminated; it may contain NUL bytes,
    /// which `value_len` counts.
    pub value: *const c_char,
    /// `check_channel_env_request`: the value's length in bytes.
    pub value_len: usize,
}

/// A pseudo-terminal request or a window size change.
///
/// Borrowed: every pointer is valid only during the callback.
#[repr(C)]
pub struct ssh_server_pty_params {
    /// The channel the request is for.
    pub channel_id: u32,
    /// `check_channel_pty_request`: the TERM value ("xterm-256color"); NULL for a window
    /// change.
    pub term: *const c_char,
    /// Terminal width in characters.
    pub width_chars: u32,
    /// Terminal height in rows.
    pub height_rows: u32,
    /// Terminal width in pixels (0 if unknown).
    pub width_pixels: u32,
    /// Terminal height in pixels (0 if unknown).
    pub height_pixels: u32,
    /// `check_channel_pty_request`: the encoded terminal modes as sent (RFC 4254 §8: opcode
    /// byte, uint32 value, ..., ending with 0).
    pub modes: *const u8,
    /// The length of `modes` in bytes.
    pub modes_len: usize,
}

/// An X11 forwarding request.
///
/// Borrowed: every pointer is valid only during the callback.
#[repr(C)]
pub struct ssh_server_x11_params {
    /// The channel the request is for.
    pub channel_id: u32,
    /// Forward only one connection.
    pub single_connection: bool,
    /// "MIT-MAGIC-COOKIE-1" in practice.
    pub auth_protocol: *const c_char,
    /// The cookie, in hexadecimal.
    pub auth_cookie: *const c_char,
    /// The X11 screen number.
    pub screen: u32,
}

/// A global request: port forwarding, its cancellation, or any other.
///
/// Borrowed: every pointer is valid only during the callback.
#[repr(C)]
pub struct ssh_server_global_params {
    /// The request name ("tcpip-forward", "cancel-tcpip-forward", "keepalive@openssh.com").
    pub name: *const c_char,
    /// `check_global_request`: the request's data as sent.
    pub data: *const u8,
    /// The length of `data` in bytes.
    pub data_len: usize,
    /// Port forwarding: the address to listen on ("" or "0.0.0.0": every address).
    pub address: *const c_char,
    /// Port forwarding: the port (0 in a forward request: any free port).
    pub port: u32,
}

/// Paramiko's ServerInterface: the server's decisions, one member per question. Set it up
/// with `ssh_server_callbacks_init`, which zeroes it and sets `struct_size`, then fill in the
/// members you need; a NULL member gives Paramiko's default (deny, or "password" for
/// `get_allowed_auths`). Every member receives `userdata` first. `ssh_transport_start_server`
/// copies the struct.
///
/// The callbacks run on the transport's decision thread (inside `ssh_transport_process` for
/// a caller-driven transport), one at a time, in the order the client's requests arrive,
/// and may call the non-blocking functions of the same transport and its channels. A slow
/// callback holds back only what depends on its answer (later authentication attempts, its
/// own channel's requests and data, later global requests); other channels' data flows. A
/// channel's requests may arrive before `ssh_transport_accept` has returned that channel:
/// match them by `channel_id` (`ssh_channel_get_id`).
///
/// Thread safety: the library calls the members from the transport's thread, so `userdata`
/// must be usable there.
#[repr(C)]
pub struct ssh_server_callbacks {
    /// `sizeof(ssh_server_callbacks)` as the caller was compiled; set by
    /// `ssh_server_callbacks_init`. Members beyond it are taken as NULL, so programs built
    /// against an older header keep working.
    pub struct_size: usize,
    /// Passed as the first argument of every member.
    pub userdata: *mut c_void,
    /// Called once with `userdata` when the library no longer needs it: when the transport
    /// is freed, or soon after on the transport's thread if a callback was still running
    /// then. May be NULL.
    pub userdata_free: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
    /// The methods to list after a refusal, comma-separated ("publickey,password"), for
    /// `params->username`. The library copies the string at once. NULL member or NULL result:
    /// "password".
    pub get_allowed_auths: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_auth_params,
        ) -> *const c_char,
    >,
    /// May the user log in without authenticating? `SSH_AUTH_*`.
    pub check_auth_none: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_auth_params) -> c_int,
    >,
    /// Is `params->password` right for `params->username`? `SSH_AUTH_*`.
    pub check_auth_password: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_auth_params) -> c_int,
    >,
    /// Would `params->key` do for `params->username`? Asked without a signature
    /// (`signature_verified` false) when the client only asks, and again with a verified
    /// signature: the library checks signatures itself. `SSH_AUTH_*`.
    pub check_auth_publickey: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_auth_params) -> c_int,
    >,
    /// The start of keyboard-interactive authentication: fill `query` and return
    /// `SSH_AUTH_INFO_REQUEST` to ask, or decide at once with another `SSH_AUTH_*`.
    pub check_auth_interactive: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_auth_params,
            query: *mut ssh_kbdint_query,
        ) -> c_int,
    >,
    /// The answers to the last round (`params->answers`): decide, or fill `query` and return
    /// `SSH_AUTH_INFO_REQUEST` for another round.
    pub check_auth_interactive_response: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_auth_params,
            query: *mut ssh_kbdint_query,
        ) -> c_int,
    >,
    /// May a channel of `params->kind` (other than "direct-tcpip") open? `SSH_OPEN_*`.
    pub check_channel_request: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_open_params) -> c_int,
    >,
    /// May a "direct-tcpip" channel (local port forwarding) open? `SSH_OPEN_*`.
    pub check_channel_direct_tcpip_request: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_open_params) -> c_int,
    >,
    /// May the channel run `params->command`? The application runs it once it returned true.
    pub check_channel_exec_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_request_params,
        ) -> bool,
    >,
    /// May the channel start a shell?
    pub check_channel_shell_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_request_params,
        ) -> bool,
    >,
    /// May the channel start subsystem `params->name`? Asked only for names without a
    /// handler from `ssh_transport_set_subsystem_handler`.
    pub check_channel_subsystem_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_request_params,
        ) -> bool,
    >,
    /// May the channel's command see `params->name`=`params->value`?
    pub check_channel_env_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_request_params,
        ) -> bool,
    >,
    /// May the channel forward the client's ssh-agent?
    pub check_channel_forward_agent_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_request_params,
        ) -> bool,
    >,
    /// May the channel have a pseudo-terminal of this type and size?
    pub check_channel_pty_request: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_pty_params) -> bool,
    >,
    /// The client's terminal changed size (`params->term` is NULL).
    pub check_channel_window_change_request: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_pty_params) -> bool,
    >,
    /// May the channel forward X11?
    pub check_channel_x11_request: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_x11_params) -> bool,
    >,
    /// May the server listen on `params->address`:`params->port` for the client (remote port
    /// forwarding)? On true, `*out_port` (preset to `params->port`) is the port bound: set it
    /// when `params->port` was 0.
    pub check_port_forward_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_global_params,
            out_port: *mut u32,
        ) -> bool,
    >,
    /// The client cancels the forwarding of `params->address`:`params->port`.
    pub cancel_port_forward_request: Option<
        unsafe extern "C" fn(userdata: *mut c_void, params: *const ssh_server_global_params),
    >,
    /// Any other global request: true to accept, with reply data set through `reply`
    /// (`ssh_global_reply_set`; none by default).
    pub check_global_request: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            params: *const ssh_server_global_params,
            reply: *mut ssh_global_reply,
        ) -> bool,
    >,
    /// Text shown to the user before authentication, or NULL for none. The library copies it
    /// at once.
    pub get_banner: Option<unsafe extern "C" fn(userdata: *mut c_void) -> *const c_char>,
}
