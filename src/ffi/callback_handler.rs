//! The [`ServerHandler`] behind `ssh_transport_start_server`: converts each question into
//! the C context struct, asks the registered `ssh_server_callbacks` member, and converts the
//! answer. A NULL member falls back to the trait's own default through [`Defaults`], so
//! Paramiko's defaults are written once, in `crate::transport::server_handler`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use zeroize::Zeroizing;

use super::pkey::{ssh_pkey, Pkey};
use super::server_callbacks::*;
use crate::keys::PublicKey;
use crate::proto::ChannelId;
use crate::transport::{
    AuthResult, DirectTcpip, InteractiveQuery, InteractiveResult, OpenResult, PtyRequest,
    ServerHandler, WindowChange, X11Request,
};

/// The trait's defaults, for NULL members.
struct Defaults;

impl ServerHandler for Defaults {}

/// The [`ServerHandler`] that asks a registered `ssh_server_callbacks`.
pub(crate) struct CallbackHandler {
    cb: ssh_server_callbacks,
}

// SAFETY: the contract of ssh_transport_start_server: the members and userdata may be used
// from the transport's thread (and userdata_free from any thread); the transport calls the
// handler from one thread at a time.
unsafe impl Send for CallbackHandler {}
// SAFETY: as above.
unsafe impl Sync for CallbackHandler {}

impl CallbackHandler {
    pub(crate) fn new(cb: ssh_server_callbacks) -> CallbackHandler {
        CallbackHandler { cb }
    }
}

impl Drop for CallbackHandler {
    fn drop(&mut self) {
        if let Some(free) = self.cb.userdata_free {
            // SAFETY: the caller registered free for exactly this userdata; called once.
            unsafe { free(self.cb.userdata) };
        }
    }
}

/// A text argument for C, or None when it holds a NUL byte: C would see only part of it, so
/// such a request gets the default answer (a refusal) without asking.
fn c_text(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

/// A secret (a password, an answer) for C, NUL-terminated in a buffer that is wiped when
/// dropped; None when it holds a NUL byte, as [`text`].
fn secret_text(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if s.as_bytes().contains(&0) {
        return None;
    }
    let mut v = Zeroizing::new(Vec::with_capacity(s.len() + 1));
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    Some(v)
}

/// Binary data with a NUL appended, so that C may also read it as a string.
fn terminated(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// Copies a string a callback returned; NULL is None.
///
/// # Safety
/// `s` must be NULL or NUL-terminated, valid now.
unsafe fn returned(s: *const c_char) -> Option<String> {
    // SAFETY: forwarded contract.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

fn auth_result(code: c_int) -> AuthResult {
    match code {
        SSH_AUTH_SUCCESSFUL => AuthResult::Success,
        SSH_AUTH_PARTIALLY_SUCCESSFUL => AuthResult::PartiallySuccessful,
        _ => AuthResult::Failed,
    }
}

fn open_result(code: c_int) -> OpenResult {
    match code {
        SSH_OPEN_SUCCEEDED => OpenResult::Succeeded,
        SSH_OPEN_FAILED_CONNECT_FAILED => OpenResult::ConnectFailed,
        SSH_OPEN_FAILED_UNKNOWN_CHANNEL_TYPE => OpenResult::UnknownChannelType,
        SSH_OPEN_FAILED_RESOURCE_SHORTAGE => OpenResult::ResourceShortage,
        _ => OpenResult::AdministrativelyProhibited,
    }
}

fn auth_params(user: &CString) -> ssh_server_auth_params {
    ssh_server_auth_params {
        username: user.as_ptr(),
        password: std::ptr::null(),
        key: std::ptr::null(),
        signature_verified: false,
        submethods: std::ptr::null(),
        answers: std::ptr::null(),
        answer_count: 0,
    }
}

fn request_params(channel: ChannelId) -> ssh_server_request_params {
    ssh_server_request_params {
        channel_id: channel,
        command: std::ptr::null(),
        command_len: 0,
        name: std::ptr::null(),
        value: std::ptr::null(),
        value_len: 0,
    }
}

fn pty_params(channel: ChannelId, size: &WindowChange) -> ssh_server_pty_params {
    ssh_server_pty_params {
        channel_id: channel,
        term: std::ptr::null(),
        width_chars: size.width_chars,
        height_rows: size.height_rows,
        width_pixels: size.width_pixels,
        height_pixels: size.height_pixels,
        modes: std::ptr::null(),
        modes_len: 0,
    }
}

fn global_params(name: &CStr, address: *const c_char, port: u32) -> ssh_server_global_params {
    ssh_server_global_params {
        name: name.as_ptr(),
        data: std::ptr::null(),
        data_len: 0,
        address,
        port,
    }
}

type AuthFn = unsafe extern "C" fn(*mut c_void, *const ssh_server_auth_params) -> c_int;
type InteractiveFn = unsafe extern "C" fn(
    *mut c_void,
    *const ssh_server_auth_params,
    *mut ssh_kbdint_query,
) -> c_int;
type OpenFn = unsafe extern "C" fn(*mut c_void, *const ssh_server_open_params) -> c_int;
type RequestFn = unsafe extern "C" fn(*mut c_void, *const ssh_server_request_params) -> bool;
type PtyFn = unsafe extern "C" fn(*mut c_void, *const ssh_server_pty_params) -> bool;

impl CallbackHandler {
    fn ask_auth(&self, f: AuthFn, params: &ssh_server_auth_params) -> AuthResult {
        // SAFETY: params and its pointers are valid during the call.
        auth_result(unsafe { f(self.cb.userdata, params) })
    }

    fn ask_interactive(
        &self,
        f: InteractiveFn,
        params: &ssh_server_auth_params,
    ) -> InteractiveResult {
        let mut query = InteractiveQuery::default();
        let query_ptr = std::ptr::addr_of_mut!(query).cast::<ssh_kbdint_query>();
        // SAFETY: params and query are valid during the call; query is the InteractiveQuery
        // that ssh_kbdint_query stands for.
        match unsafe { f(self.cb.userdata, params, query_ptr) } {
            SSH_AUTH_INFO_REQUEST => InteractiveResult::Query(query),
            code => InteractiveResult::Done(auth_result(code)),
        }
    }

    fn ask_open(&self, f: OpenFn, params: &ssh_server_open_params) -> OpenResult {
        // SAFETY: params and its pointers are valid during the call.
        open_result(unsafe { f(self.cb.userdata, params) })
    }

    fn ask_request(&self, f: RequestFn, params: &ssh_server_request_params) -> bool {
        // SAFETY: params and its pointers are valid during the call.
        unsafe { f(self.cb.userdata, params) }
    }

    fn ask_pty(&self, f: PtyFn, params: &ssh_server_pty_params) -> bool {
        // SAFETY: params and its pointers are valid during the call.
        unsafe { f(self.cb.userdata, params) }
    }
}

impl ServerHandler for CallbackHandler {
    fn allowed_auths(&self, user: &str) -> String {
        let (Some(f), Some(c_user)) = (self.cb.get_allowed_auths, c_text(user)) else {
            return Defaults.allowed_auths(user);
        };
        // SAFETY: the params are valid during the call; the result is read at once, as the
        // member's contract says.
        unsafe { returned(f(self.cb.userdata, &auth_params(&c_user))) }
            .unwrap_or_else(|| Defaults.allowed_auths(user))
    }

    fn check_auth_none(&self, user: &str) -> AuthResult {
        let (Some(f), Some(c_user)) = (self.cb.check_auth_none, c_text(user)) else {
            return Defaults.check_auth_none(user);
        };
        self.ask_auth(f, &auth_params(&c_user))
    }

    fn check_auth_password(&self, user: &str, password: &str) -> AuthResult {
        let (Some(f), Some(c_user), Some(c_password)) = (
            self.cb.check_auth_password,
            c_text(user),
            secret_text(password),
        ) else {
            return Defaults.check_auth_password(user, password);
        };
        let params = ssh_server_auth_params {
            password: c_password.as_ptr().cast::<c_char>(),
            ..auth_params(&c_user)
        };
        self.ask_auth(f, &params)
    }

    fn check_auth_publickey(
        &self,
        user: &str,
        key: &PublicKey,
        signature_verified: bool,
    ) -> AuthResult {
        let (Some(f), Some(c_user)) = (self.cb.check_auth_publickey, c_text(user)) else {
            return Defaults.check_auth_publickey(user, key, signature_verified);
        };
        // A shared handle, as every ssh_pkey is: the callback may keep a reference.
        let handle = std::sync::Arc::new(Pkey {
            public: key.clone(),
            private: None,
            certificate: None,
        });
        let params = ssh_server_auth_params {
            key: std::sync::Arc::as_ptr(&handle).cast::<ssh_pkey>(),
            signature_verified,
            ..auth_params(&c_user)
        };
        self.ask_auth(f, &params)
    }

    fn check_auth_interactive(&self, user: &str, submethods: &str) -> InteractiveResult {
        let (Some(f), Some(c_user), Some(c_submethods)) = (
            self.cb.check_auth_interactive,
            c_text(user),
            c_text(submethods),
        ) else {
            return Defaults.check_auth_interactive(user, submethods);
        };
        let params = ssh_server_auth_params {
            submethods: c_submethods.as_ptr(),
            ..auth_params(&c_user)
        };
        self.ask_interactive(f, &params)
    }

    fn check_auth_interactive_response(&self, user: &str, answers: &[String]) -> InteractiveResult {
        let c_answers: Option<Vec<Zeroizing<Vec<u8>>>> =
            answers.iter().map(|a| secret_text(a)).collect();
        let (Some(f), Some(c_user), Some(c_answers)) = (
            self.cb.check_auth_interactive_response,
            c_text(user),
            c_answers,
        ) else {
            return Defaults.check_auth_interactive_response(user, answers);
        };
        let pointers: Vec<*const c_char> = c_answers
            .iter()
            .map(|a| a.as_ptr().cast::<c_char>())
            .collect();
        let params = ssh_server_auth_params {
            answers: pointers.as_ptr(),
            answer_count: pointers.len(),
            ..auth_params(&c_user)
        };
        self.ask_interactive(f, &params)
    }

    fn check_channel_request(&self, kind: &str, channel: ChannelId) -> OpenResult {
        let (Some(f), Some(c_kind)) = (self.cb.check_channel_request, c_text(kind)) else {
            return Defaults.check_channel_request(kind, channel);
        };
        let params = ssh_server_open_params {
            channel_id: channel,
            kind: c_kind.as_ptr(),
            host: std::ptr::null(),
            port: 0,
            origin_host: std::ptr::null(),
            origin_port: 0,
        };
        self.ask_open(f, &params)
    }

    fn check_channel_direct_tcpip_request(
        &self,
        channel: ChannelId,
        request: &DirectTcpip,
    ) -> OpenResult {
        let (Some(f), Some(host), Some(origin)) = (
            self.cb.check_channel_direct_tcpip_request,
            c_text(&request.host),
            c_text(&request.origin_host),
        ) else {
            return Defaults.check_channel_direct_tcpip_request(channel, request);
        };
        let params = ssh_server_open_params {
            channel_id: channel,
            kind: c"direct-tcpip".as_ptr(),
            host: host.as_ptr(),
            port: request.port,
            origin_host: origin.as_ptr(),
            origin_port: request.origin_port,
        };
        self.ask_open(f, &params)
    }

    fn check_channel_exec_request(&self, channel: ChannelId, command: &[u8]) -> bool {
        let Some(f) = self.cb.check_channel_exec_request else {
            return Defaults.check_channel_exec_request(channel, command);
        };
        let c_command = terminated(command);
        let params = ssh_server_request_params {
            command: c_command.as_ptr().cast(),
            command_len: command.len(),
            ..request_params(channel)
        };
        self.ask_request(f, &params)
    }

    fn check_channel_shell_request(&self, channel: ChannelId) -> bool {
        let Some(f) = self.cb.check_channel_shell_request else {
            return Defaults.check_channel_shell_request(channel);
        };
        self.ask_request(f, &request_params(channel))
    }

    fn check_channel_pty_request(&self, channel: ChannelId, pty: &PtyRequest) -> bool {
        let (Some(f), Some(term)) = (self.cb.check_channel_pty_request, c_text(&pty.term)) else {
            return Defaults.check_channel_pty_request(channel, pty);
        };
        let size = WindowChange {
            width_chars: pty.width_chars,
            height_rows: pty.height_rows,
            width_pixels: pty.width_pixels,
            height_pixels: pty.height_pixels,
        };
        let params = ssh_server_pty_params {
            term: term.as_ptr(),
            modes: pty.modes.as_ptr(),
            modes_len: pty.modes.len(),
            ..pty_params(channel, &size)
        };
        self.ask_pty(f, &params)
    }

    fn check_channel_subsystem_request(&self, channel: ChannelId, name: &str) -> bool {
        let (Some(f), Some(c_name)) = (self.cb.check_channel_subsystem_request, c_text(name))
        else {
            return Defaults.check_channel_subsystem_request(channel, name);
        };
        let params = ssh_server_request_params {
            name: c_name.as_ptr(),
            ..request_params(channel)
        };
        self.ask_request(f, &params)
    }

    fn check_channel_env_request(&self, channel: ChannelId, name: &str, value: &[u8]) -> bool {
        let (Some(f), Some(c_name)) = (self.cb.check_channel_env_request, c_text(name)) else {
            return Defaults.check_channel_env_request(channel, name, value);
        };
        let c_value = terminated(value);
        let params = ssh_server_request_params {
            name: c_name.as_ptr(),
            value: c_value.as_ptr().cast(),
            value_len: value.len(),
            ..request_params(channel)
        };
        self.ask_request(f, &params)
    }

    fn check_channel_window_change_request(&self, channel: ChannelId, size: &WindowChange) -> bool {
        let Some(f) = self.cb.check_channel_window_change_request else {
            return Defaults.check_channel_window_change_request(channel, size);
        };
        self.ask_pty(f, &pty_params(channel, size))
    }

    fn check_channel_x11_request(&self, channel: ChannelId, request: &X11Request) -> bool {
        let (Some(f), Some(protocol), Some(cookie)) = (
            self.cb.check_channel_x11_request,
            c_text(&request.auth_protocol),
            c_text(&request.auth_cookie),
        ) else {
            return Defaults.check_channel_x11_request(channel, request);
        };
        let params = ssh_server_x11_params {
            channel_id: channel,
            single_connection: request.single_connection,
            auth_protocol: protocol.as_ptr(),
            auth_cookie: cookie.as_ptr(),
            screen: request.screen,
        };
        // SAFETY: params and its pointers are valid during the call.
        unsafe { f(self.cb.userdata, &params) }
    }

    fn check_channel_forward_agent_request(&self, channel: ChannelId) -> bool {
        let Some(f) = self.cb.check_channel_forward_agent_request else {
            return Defaults.check_channel_forward_agent_request(channel);
        };
        self.ask_request(f, &request_params(channel))
    }

    fn check_port_forward_request(&self, address: &str, port: u32) -> Option<u32> {
        let (Some(f), Some(c_address)) = (self.cb.check_port_forward_request, c_text(address))
        else {
            return Defaults.check_port_forward_request(address, port);
        };
        let params = global_params(c"tcpip-forward", c_address.as_ptr(), port);
        let mut bound = port;
        // SAFETY: params and bound are valid during the call.
        unsafe { f(self.cb.userdata, &params, &mut bound) }.then_some(bound)
    }

    fn cancel_port_forward_request(&self, address: &str, port: u32) {
        let (Some(f), Some(c_address)) = (self.cb.cancel_port_forward_request, c_text(address))
        else {
            return Defaults.cancel_port_forward_request(address, port);
        };
        let params = global_params(c"cancel-tcpip-forward", c_address.as_ptr(), port);
        // SAFETY: params is valid during the call.
        unsafe { f(self.cb.userdata, &params) }
    }

    fn check_global_request(&self, name: &str, data: &[u8]) -> Option<Vec<u8>> {
        let (Some(f), Some(c_name)) = (self.cb.check_global_request, c_text(name)) else {
            return Defaults.check_global_request(name, data);
        };
        let params = ssh_server_global_params {
            data: data.as_ptr(),
            data_len: data.len(),
            ..global_params(&c_name, std::ptr::null(), 0)
        };
        let mut reply = Vec::new();
        let reply_ptr = std::ptr::addr_of_mut!(reply).cast::<ssh_global_reply>();
        // SAFETY: params and reply are valid during the call; reply is the Vec<u8> that
        // ssh_global_reply stands for.
        unsafe { f(self.cb.userdata, &params, reply_ptr) }.then_some(reply)
    }

    fn banner(&self) -> Option<String> {
        let Some(f) = self.cb.get_banner else {
            return Defaults.banner();
        };
        // SAFETY: the result is read at once, as the member's contract says.
        unsafe { returned(f(self.cb.userdata)) }
    }
}
