//! Server mode of `ssh_transport` (Paramiko's add_server_key, start_server, accept,
//! set_subsystem_handler), and the builders the server callbacks answer through.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;
use std::sync::Arc;

use super::boundary::{borrow, guard, out_arg, slice_arg, str_arg, to_handle};
use super::callback_handler::CallbackHandler;
use super::channel::ssh_channel;
use super::pkey::{host_key_arg, public_key_handle, ssh_pkey};
use super::server_callbacks::{ssh_global_reply, ssh_kbdint_query, ssh_server_callbacks};
use super::transport::duration_from_ms;
use super::transport::ssh_transport;
use crate::transport::Channel;
use crate::Error;

/// Serves one subsystem channel: called on a thread of its own for each accepted
/// "subsystem" request named as registered, with `name` as requested. `channel` is
/// borrowed: the library closes and frees it when the callback returns, so serve the whole
/// session before returning. It may call any function of the channel and its transport.
pub type ssh_subsystem_callback = Option<
    unsafe extern "C" fn(userdata: *mut c_void, channel: *mut ssh_channel, name: *const c_char),
>;

/// Makes `cb` ready to fill in: every member NULL, `struct_size` set to this header's
/// `sizeof(ssh_server_callbacks)`.
///
/// Borrowed: writes only into `*cb`, which stays the caller's.
/// Thread safety: any thread.
///
/// # Safety
/// `cb` must be NULL or point to writable memory of `sizeof(ssh_server_callbacks)` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_server_callbacks_init(cb: *mut ssh_server_callbacks) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(cb, "callbacks") }?;
        // Every member accepts all-zero bytes: NULL pointers, None functions, a zero size.
        *out = std::mem::MaybeUninit::zeroed();
        // SAFETY: just zeroed, which is a valid ssh_server_callbacks.
        unsafe { out.assume_init_mut() }.struct_size = std::mem::size_of::<ssh_server_callbacks>();
        Ok(())
    })
}

/// Copies the first `struct_size` bytes of the caller's struct over a zeroed one, so that
/// members a smaller (older) struct lacks are NULL.
///
/// # Safety
/// `cb` must be NULL or point to a struct of at least `cb->struct_size` readable bytes.
unsafe fn copy_callbacks(cb: *const ssh_server_callbacks) -> crate::Result<ssh_server_callbacks> {
    if cb.is_null() {
        return Err(Error::invalid_arg("callbacks is NULL"));
    }
    // SAFETY: non-NULL and readable for at least its first member per the contract.
    let size = unsafe { std::ptr::addr_of!((*cb).struct_size).read() };
    let header = std::mem::offset_of!(ssh_server_callbacks, get_allowed_auths);
    if size < header {
        return Err(Error::invalid_arg(format!(
            "callbacks->struct_size is {size}: call ssh_server_callbacks_init first"
        )));
    }
    let mut ours = std::mem::MaybeUninit::<ssh_server_callbacks>::zeroed();
    let n = size.min(std::mem::size_of::<ssh_server_callbacks>());
    // SAFETY: cb is readable for struct_size >= n bytes, ours writable for n, no overlap.
    unsafe { std::ptr::copy_nonoverlapping(cb.cast::<u8>(), ours.as_mut_ptr().cast::<u8>(), n) };
    // SAFETY: zeroed (valid for every member) and then overwritten with the caller's values
    // of the same layout.
    Ok(unsafe { ours.assume_init() })
}

/// Adds a host key (with its private part, e.g. from `ssh_pkey_from_file` or
/// `ssh_pkey_generate`). Add one of each type to offer; the client's preference picks one.
/// Call before `ssh_transport_start_server`. The library keeps its own copy.
///
/// Borrowed: `key` stays the caller's.
/// Thread safety: any thread, before the handshake.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `key` NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_add_server_key(
    t: *mut ssh_transport,
    key: *const ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let private = unsafe { host_key_arg(key) }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.add_server_key(private.clone())
    })
}

/// The host key the key exchange used, after `ssh_transport_start_server`.
///
/// On success `*out_key` is a new handle (the public key); free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `out_key` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_get_server_key(
    t: *const ssh_transport,
    out_key: *mut *mut ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_key, "out_key") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        out.write(public_key_handle(t.server_key()?));
        Ok(())
    })
}

/// Loads Diffie-Hellman groups for group exchange from a file in /etc/ssh/moduli format
/// (Paramiko's load_server_moduli); `*out_count` (if not NULL) is how many usable groups it
/// held. Without a file, the built-in groups 14, 16 and 18 serve group exchange.
///
/// Borrowed: nothing is kept of `path`.
/// Thread safety: any thread, before the handshake.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `path` NUL-terminated; `out_count` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_load_server_moduli(
    t: *mut ssh_transport,
    path: *const c_char,
    out_count: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { str_arg(path, "path") }?;
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        let count = t.load_server_moduli(Path::new(path))?;
        if !out_count.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *out_count = count };
        }
        Ok(())
    })
}

/// Failed authentication attempts allowed before the connection is cut (OpenSSH's
/// MaxAuthTries, default 6), and how long in ms a client may take to authenticate (its
/// LoginGraceTime, default 120000; -1: forever). Call before `ssh_transport_start_server`.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread, before the handshake.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_auth_limits(
    t: *mut ssh_transport,
    max_tries: u32,
    login_grace_ms: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_auth_limits(max_tries, duration_from_ms(login_grace_ms));
        Ok(())
    })
}

/// The userdata of a subsystem callback, moved to the handler threads.
struct SubsystemUserdata(*mut c_void);

// SAFETY: the contract of ssh_transport_set_subsystem_handler: userdata may be used from the
// handler threads.
unsafe impl Send for SubsystemUserdata {}
// SAFETY: as above.
unsafe impl Sync for SubsystemUserdata {}

impl SubsystemUserdata {
    /// The pointer; a method, so that closures capture the whole (Send) wrapper.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Serves every accepted "subsystem" request named `name` ("sftp") with `callback`, each on a
/// thread of its own; the server callbacks' `check_channel_subsystem_request` is then not
/// asked for that name. Call before `ssh_transport_start_server`.
///
/// Borrowed: `userdata` stays the caller's and must stay valid until the transport is freed
/// and every handler returned.
/// Thread safety: any thread, before the handshake; the callback runs on threads of its own.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `name` NUL-terminated; `userdata` usable from
/// other threads.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_set_subsystem_handler(
    t: *mut ssh_transport,
    name: *const c_char,
    callback: ssh_subsystem_callback,
    userdata: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let name = unsafe { str_arg(name, "name") }?;
        let callback = callback.ok_or_else(|| Error::invalid_arg("callback is NULL"))?;
        let userdata = SubsystemUserdata(userdata);
        // SAFETY: as above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        t.set_subsystem_handler(
            name,
            Arc::new(move |channel: Channel, name: &str| {
                let c_name = CString::new(name).unwrap_or_default();
                let handle = to_handle::<ssh_channel>(channel);
                // SAFETY: the handle and name are valid during the call, per the callback's
                // contract; userdata per this function's.
                unsafe { callback(userdata.get(), handle, c_name.as_ptr()) };
                // SAFETY: made above, not used by C after its callback returned.
                unsafe { super::boundary::free_handle(handle) };
            }),
        );
        Ok(())
    })
}

/// Runs the version exchange and the first key exchange as a server on a transport made by
/// `ssh_transport_new` from an accepted socket, with the host keys added before. Returns
/// once keys are agreed; then `callbacks` decide on authentication, channels and requests as
/// the client makes them, on the transport's thread, and `ssh_transport_accept` hands out
/// the channels they allowed. The struct is copied (its first `callbacks->struct_size`
/// bytes). On a transport from `ssh_transport_new_driven` it returns `SSH_ERR_AGAIN` until
/// keys are agreed: repeat it after `ssh_transport_process`; the repeat keeps the callbacks
/// of the first call, and they run inside `ssh_transport_process`.
///
/// Borrowed: `callbacks` stays the caller's; `callbacks->userdata` must stay valid until
/// `ssh_transport_free`, after which `callbacks->userdata_free` (if set) is called once,
/// even if this call failed.
/// Thread safety: any thread, once per transport (repeats of a driven start aside); blocks
/// until keys are agreed unless the transport is caller-driven.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`; `callbacks` NULL or initialised with
/// `ssh_server_callbacks_init`; its members and userdata usable from the transport's thread.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_start_server(
    t: *mut ssh_transport,
    callbacks: *const ssh_server_callbacks,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        // SAFETY: as above.
        let cb = unsafe { copy_callbacks(callbacks) }?;
        // A caller-driven start that would have blocked goes on with the callbacks it had.
        let handler = match t.last_server_handler() {
            Some(handler) if t.is_starting() => handler,
            _ => {
                let handler = Arc::new(CallbackHandler::new(cb));
                t.keep_server_handler(Arc::clone(&handler));
                handler
            }
        };
        t.start_server(handler)
    })
}

/// The next channel the peer opened that was accepted, waiting at most `timeout_ms` (-1:
/// until one comes): on a server, one the callbacks allowed; on a client, a connection to a
/// port forwarded with `ssh_transport_request_port_forward`. Returns NULL on failure:
/// `sekura_last_result()` is `SSH_ERR_TIMEOUT` (`SSH_ERR_AGAIN` on a caller-driven
/// transport), or `SSH_ERR_CLOSED` once the connection ended.
///
/// Returns a new handle; free it with `ssh_channel_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `t` must be NULL or a live `ssh_transport`.
#[no_mangle]
pub unsafe extern "C" fn ssh_transport_accept(
    t: *mut ssh_transport,
    timeout_ms: c_int,
) -> *mut ssh_channel {
    guard(|| {
        // SAFETY: per the contract above.
        let t = unsafe { borrow::<ssh_transport>(t, "transport") }?;
        let channel = t.accept(duration_from_ms(timeout_ms))?;
        Ok(to_handle::<ssh_channel>(channel))
    })
}

/// Borrows the builder a callback was given.
///
/// # Safety
/// `ptr` must be NULL or the pointer passed to the running callback.
unsafe fn builder<'a, T>(ptr: *mut T, name: &str) -> crate::Result<&'a mut T::RustType>
where
    T: super::boundary::Castable,
{
    // SAFETY: per the contract, ptr points at the value the callback was given.
    unsafe { ptr.cast::<T::RustType>().as_mut() }
        .ok_or_else(|| Error::invalid_arg(format!("{name} is NULL")))
}

/// Sets the name and instructions of a keyboard-interactive round, which clients show above
/// the prompts. Either may be "" (the default).
///
/// Borrowed: the strings are copied.
/// Thread safety: only inside the callback that was given `query`.
///
/// # Safety
/// `query` must be NULL or the pointer given to the running `check_auth_interactive` or
/// `check_auth_interactive_response`; `name` and `instructions` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_kbdint_query_set_text(
    query: *mut ssh_kbdint_query,
    name: *const c_char,
    instructions: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let q = unsafe { builder(query, "query") }?;
        // SAFETY: as above.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: as above.
        let instructions = unsafe { str_arg(instructions, "instructions") }?;
        q.name = name.to_owned();
        q.instructions = instructions.to_owned();
        Ok(())
    })
}

/// Adds a prompt to a keyboard-interactive round; `echo` says whether the client may show
/// the answer as it is typed (false for passwords).
///
/// Borrowed: the prompt is copied.
/// Thread safety: only inside the callback that was given `query`.
///
/// # Safety
/// `query` must be NULL or the pointer given to the running `check_auth_interactive` or
/// `check_auth_interactive_response`; `prompt` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ssh_kbdint_query_add_prompt(
    query: *mut ssh_kbdint_query,
    prompt: *const c_char,
    echo: bool,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let q = unsafe { builder(query, "query") }?;
        // SAFETY: as above.
        let prompt = unsafe { str_arg(prompt, "prompt") }?;
        q.prompts.push((prompt.to_owned(), echo));
        Ok(())
    })
}

/// Sets the data sent back with an accepted global request (replacing any set before).
///
/// Borrowed: the data is copied.
/// Thread safety: only inside the callback that was given `reply`.
///
/// # Safety
/// `reply` must be NULL or the pointer given to the running `check_global_request`; `data`
/// readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ssh_global_reply_set(
    reply: *mut ssh_global_reply,
    data: *const u8,
    len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let r = unsafe { builder(reply, "reply") }?;
        // SAFETY: as above.
        let data = unsafe { slice_arg(data, len, "data") }?;
        *r = data.to_vec();
        Ok(())
    })
}
