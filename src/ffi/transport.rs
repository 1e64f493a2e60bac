//! `ssh_transport`: connect, key exchange, host key, authentication, sessions.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::agent::ssh_agent;
use super::boundary::{
    borrow, free_handle, guard, out_arg, str_arg, to_c_string, to_handle, Boxed, Castable, Opaque,
};
use super::callback_handler::CallbackHandler;
use super::channel::ssh_channel;
use super::pkey::{public_key_handle, ssh_pkey};
use crate::proto::InfoRequest;
use crate::transport::{ByteStream, Transport};
use crate::Error;

/// One SSH connection (Paramiko's Transport), client or server side.
///
/// Thread safety: safe to use from several threads at once.
pub struct ssh_transport {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_transport {
    type Ownership = Boxed;
    type RustType = TransportHandle;
}

/// What an `ssh_transport` holds: the transport and, for a server, the handlers made from
/// its `ssh_server_callbacks`. The transport's decision thread lets go of its handler as soon
/// as the connection ends, while the application may still be serving channels with the
/// callbacks' userdata; holding the handlers here too means `userdata_free` never runs
/// before `ssh_transport_free`.
pub struct TransportHandle {
    transport: Transport,
    server_handlers: Mutex<Vec<Arc<CallbackHandler>>>,
}

impl TransportHandle {
    pub(super) fn new(transport: Transport) -> TransportHandle {
        TransportHandle {
            transport,
            server_handlers: Mutex::new(Vec::new()),
        }
    }

    /// Keeps `handler` (and so its userdata) alive until the handle is freed.
    pub(super) fn keep_server_handler(&self, handler: Arc<CallbackHandler>) {
        self.server_handlers.lock().push(handler);
    }

    /// The handler kept last, which a caller-driven start's repeated call goes on with.
    pub(super) fn last_server_handler(&self) -> Option<Arc<CallbackHandler>> {
        self.server_handlers.lock().last().cloned()
    }
}

impl std::ops::Deref for TransportHandle {
    type Target = Transport;

    fn deref(&self) -> &Transport {
        &self.transport
    }
}

/// Keyboard-interactive answers being collected inside an `ssh_kbdint_callback`.
///
/// Thread safety: only valid on the thread and during the callback that received it.
pub struct ssh_kbdint_answers {
    _private: [u8; 0],
    _marker: Opaque,
}

impl Castable for ssh_kbdint_answers {
    type Ownership = Boxed;
    type RustType = Vec<String>;
}

/// Answers one round of keyboard-interactive prompts. Called on the thread that called
/// `ssh_transport_auth_interactive`, once per round; `prompts` and `echo` hold `num_prompts`
/// entries (echo: whether the answer may be shown). Set each answer with
/// `ssh_kbdint_answers_set`; unset answers are sent empty. Return 0 to send the answers,
/// non-zero to abandon authentication. It may not call the same transport's functions.
pub type ssh_kbdint_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        name: *const c_char,
        instruction: *const c_char,
        num_prompts: usize,
        prompts: *const *const c_char,
        echo: *const bool,
        answers: *mut ssh_kbdint_answers,
    ) -> c_int,
>;

/// A C timeout in ms: negative means none (wait forever).
pub(super) fn duration_from_ms(timeout_ms: c_int) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

/// Resolves `host` and connects over TCP to `port`, waiting at most `timeout_ms` for the
/// connection (-1: the system's limit); the same value becomes the transport's timeout.
/// Returns NULL on failure (`sekura_last_error()` says why).
///
/// Returns a new handle; free it with `ssh_transport_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `host` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_connect(
    host: *const c_char,
    port: u16,
    timeout_ms: c_int,
) -> *mut ssh_transport {
    guard(|| {
        // SAFETY: per the contract above.
        let host = unsafe { str_arg(host, "host") }?;
        let t = Transport::connect(host, port, duration_from_ms(timeout_ms))?;
        Ok(to_handle::<ssh_transport>(TransportHandle::new(t)))
    })
}

/// Wraps a connected stream socket (TCP, Unix, one end of a socketpair); the transport takes
/// ownership of `fd`, makes it non-blocking and closes it.
/// Returns NULL if `fd` is negative.
///
/// Returns a new handle; free it with `ssh_transport_free`.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn ssh_transport_new(fd: c_int) -> *mut ssh_transport {
    guard(|| {
        if fd < 0 {
            return Err(Error::invalid_arg("fd is negative"));
        }
        // SAFETY: the caller hands over an open socket descriptor it no longer uses.
        let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let transport = Transport::over(ByteStream::socket(socket));
        Ok(to_handle::<ssh_transport>(TransportHandle::new(transport)))
    })
}

/// Sets how long handshake, authentication and channel-open calls wait, in ms (-1: forever).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread; it applies to waits that begin afterwards.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_timeout(
    t: *mut ssh_transport,
    timeout_ms: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_timeout(duration_from_ms(timeout_ms));
        Ok(())
    })
}

/// Sets the ordered algorithm list of `kind` (`SSH_ALG_KEX`, `SSH_ALG_HOSTKEY`,
/// `SSH_ALG_CIPHER`, `SSH_ALG_MAC`) from a comma-separated list of wire names, most
/// preferred first. Unknown names give `SSH_ERR_INVALID_ARG` naming them. Takes effect at
/// the next key exchange: the first, or on a started client the next re-exchange
/// (`ssh_transport_renegotiate_keys`); a started server refuses with `SSH_ERR_STATE`.
///
/// Borrowed: nothing is kept of `names`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `names` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_preferred(
    t: *mut ssh_transport,
    kind: c_int,
    names: *const c_char,
) -> c_int {
    guard(|| {
        let kind = super::transport_long_lived::algorithm_kind(kind)?;
        // SAFETY: per the contract above.
        let names = unsafe { str_arg(names, "names") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_preferred(kind, names)
    })
}

/// Negotiates as a client: version exchange, key exchange, and verification of the server's
/// signature. Afterwards get the host key with `ssh_transport_get_remote_server_key` and
/// decide whether to trust it before authenticating.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread, once per transport; blocks until keys are agreed.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_start_client(t: *mut ssh_transport) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.start_client()
    })
}

/// The server's host key, after `ssh_transport_start_client`.
///
/// On success `*out_key` is a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `out_key` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_remote_server_key(
    t: *mut ssh_transport,
    out_key: *mut *mut ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_key, "out_key") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        out.write(public_key_handle(t.remote_server_key()?));
        Ok(())
    })
}

/// Tries "none" authentication for `username`. On `SSH_ERR_AUTH_DENIED`,
/// `ssh_transport_get_auth_methods` lists the methods the server accepts.
///
/// Borrowed: `username` is only used during the call.
/// Thread safety: any thread; one authentication at a time per transport.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `username` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_auth_none(
    t: *mut ssh_transport,
    username: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let user = unsafe { str_arg(username, "username") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.auth_none(user)
    })
}

/// Password authentication.
///
/// Borrowed: the strings are only used during the call.
/// Thread safety: any thread; one authentication at a time per transport.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `username` and `password` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_auth_password(
    t: *mut ssh_transport,
    username: *const c_char,
    password: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let user = unsafe { str_arg(username, "username") }?;
        // SAFETY: as above.
        let password = unsafe { str_arg(password, "password") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.auth_password(user, password)
    })
}

/// Public key authentication with a private key from `ssh_pkey_from_file`. For RSA the
/// signature algorithm is chosen from the server's server-sig-algs (rsa-sha2-512, -256).
/// A key combined with a user certificate (`ssh_pkey_with_certificate`) authenticates with
/// the certificate.
///
/// Borrowed: `username` and `key` are only used during the call.
/// Thread safety: any thread; one authentication at a time per transport.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `username` NUL-terminated; `key` a live key.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_auth_publickey(
    t: *mut ssh_transport,
    username: *const c_char,
    key: *const ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let user = unsafe { str_arg(username, "username") }?;
        // SAFETY: as above.
        let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
        let private = key.private.as_ref();
        let private = private.ok_or_else(|| Error::invalid_arg("key has no private part"))?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        match &key.certificate {
            Some(cert) => t.auth_publickey_certificate(user, private, cert),
            None => t.auth_publickey(user, private),
        }
    })
}

/// Public key authentication with the identities an ssh-agent holds, in the agent's order,
/// until one is accepted (the agent signs). `SSH_ERR_AUTH_DENIED` when none is.
///
/// Borrowed: `username` and `agent` are only used during the call.
/// Thread safety: any thread; one authentication at a time per transport.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `username` NUL-terminated; `agent` a live
/// `ssh_agent`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_auth_agent(
    t: *mut ssh_transport,
    username: *const c_char,
    agent: *const ssh_agent,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let user = unsafe { str_arg(username, "username") }?;
        // SAFETY: as above.
        let agent = unsafe { borrow::<ssh_agent>(agent, "agent") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.auth_agent(user, agent.agent())
    })
}

/// Sets the answer to prompt `index` of the current round.
///
/// Borrowed: `answer` is copied; `answers` is valid only during the callback.
/// Thread safety: only inside the callback that was given `answers`.
///
/// # Safety
/// `answers` must be the pointer passed to the running callback; `answer` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_kbdint_answers_set(
    answers: *mut ssh_kbdint_answers,
    index: usize,
    answer: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above; answers points at the Vec the callback was given.
        let list = unsafe { answers.cast::<Vec<String>>().as_mut() }
            .ok_or_else(|| Error::invalid_arg("answers is NULL"))?;
        // SAFETY: per the contract above.
        let answer = unsafe { str_arg(answer, "answer") }?;
        let prompts = list.len();
        let slot = list.get_mut(index).ok_or_else(|| {
            Error::invalid_arg(format!(
                "prompt index {index} out of range ({prompts} prompts)"
            ))
        })?;
        *slot = answer.to_owned();
        Ok(())
    })
}

/// Keyboard-interactive authentication: `callback` answers each round of prompts.
///
/// Borrowed: `userdata` is passed to `callback` during the call; nothing is kept after it
/// returns.
/// Thread safety: any thread; one authentication at a time per transport; `callback` runs on
/// the calling thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `username` NUL-terminated; `callback` valid.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_auth_interactive(
    t: *mut ssh_transport,
    username: *const c_char,
    callback: ssh_kbdint_callback,
    userdata: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let user = unsafe { str_arg(username, "username") }?;
        let callback = callback.ok_or_else(|| Error::invalid_arg("callback is NULL"))?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.auth_interactive(user, |req| call_kbdint(callback, userdata, req))
    })
}

fn call_kbdint(
    callback: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *const c_char,
        usize,
        *const *const c_char,
        *const bool,
        *mut ssh_kbdint_answers,
    ) -> c_int,
    userdata: *mut c_void,
    req: &InfoRequest,
) -> Option<Vec<String>> {
    let c = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
    let name = c(&req.name);
    let instruction = c(&req.instruction);
    let prompts: Vec<CString> = req.prompts.iter().map(|(p, _)| c(p)).collect();
    let prompt_ptrs: Vec<*const c_char> = prompts.iter().map(|p| p.as_ptr()).collect();
    let echo: Vec<bool> = req.prompts.iter().map(|(_, e)| *e).collect();
    let mut answers = vec![String::new(); prompts.len()];
    let answers_ptr = std::ptr::addr_of_mut!(answers).cast::<ssh_kbdint_answers>();
    // SAFETY: every pointer is valid for the duration of the call; the callback's contract
    // is documented on ssh_kbdint_callback.
    let rc = unsafe {
        callback(
            userdata,
            name.as_ptr(),
            instruction.as_ptr(),
            prompts.len(),
            prompt_ptrs.as_ptr(),
            echo.as_ptr(),
            answers_ptr,
        )
    };
    (rc == 0).then_some(answers)
}

/// After `SSH_ERR_AUTH_DENIED`: the methods that can continue as a comma-separated list
/// (`*out_methods`) and whether the refused attempt was a partial success (`*out_partial`).
/// `out_partial` may be NULL.
///
/// On success `*out_methods` is a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; the out pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_auth_methods(
    t: *const ssh_transport,
    out_methods: *mut *mut c_char,
    out_partial: *mut bool,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_methods, "out_methods") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        let denied = t.auth_denied().ok_or_else(|| {
            Error::new(
                crate::ErrorKind::State,
                "no authentication attempt was refused",
            )
        })?;
        out.write(to_c_string(&denied.methods.join(",")));
        if !out_partial.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *out_partial = denied.partial };
        }
        Ok(())
    })
}

/// True while the connection is up (started and not closed or failed).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_is_active(t: *const ssh_transport) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") };
        // NULL answers false without being a failure: the last error stays as it was.
        Ok(t.is_ok_and(|t| t.is_active()))
    })
}

/// True once authentication succeeded and the connection is up.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_is_authenticated(t: *const ssh_transport) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") };
        // NULL answers false without being a failure: the last error stays as it was.
        Ok(t.is_ok_and(|t| t.is_authenticated()))
    })
}

/// Opens a session channel. Returns NULL on failure (`sekura_last_error()` says why).
///
/// Returns a new handle; free it with `ssh_channel_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_open_session(t: *mut ssh_transport) -> *mut ssh_channel {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        let channel = t.open_session()?;
        Ok(to_handle::<ssh_channel>(channel))
    })
}

/// Sends DISCONNECT and closes the connection; its channels then return `SSH_ERR_CLOSED`.
///
/// Borrowed: nothing is kept; the handle stays valid until `ssh_transport_free`.
/// Thread safety: any thread; calls blocked on the transport or its channels in other threads
/// then return.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_close(t: *mut ssh_transport) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.close();
        Ok(())
    })
}

/// Closes the connection if it is still open. Its channels stay valid handles that return
/// `SSH_ERR_CLOSED` until freed.
///
/// Frees the handle; NULL is ignored. A server's `callbacks->userdata_free` runs then, or soon
/// after if a callback is still running.
/// Thread safety: not while another thread uses the handle; its channels may still be in use.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_free(t: *mut ssh_transport) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(t) };
        Ok(())
    })
}
