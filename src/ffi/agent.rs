//! `ssh_agent`: a connection to an ssh-agent (Paramiko's Agent): list its keys, sign with them.

use std::ffi::{c_char, c_int};
use std::mem::MaybeUninit;
use std::time::Duration;

use parking_lot::Mutex;

use super::boundary::{
    borrow, free_handle, guard, opt_str_arg, out_arg, slice_arg, str_arg, to_c_bytes, to_c_string,
    to_handle, Boxed, Castable, Opaque,
};
use super::pkey::{public_key_handle, ssh_pkey};
use crate::agent::{Agent, AgentKey};
use crate::{Error, ErrorKind};

/// A connection to an ssh-agent.
///
/// Thread safety: safe to use from several threads at once (requests take turns).
pub struct ssh_agent {
    _private: [u8; 0],
    _marker: Opaque,
}

/// The agent and the key list of the last `ssh_agent_count_identities`.
pub struct AgentHandle {
    agent: Agent,
    identities: Mutex<Option<Vec<AgentKey>>>,
}

impl AgentHandle {
    /// The agent connection, for transports that authenticate with it.
    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }
}

impl Castable for ssh_agent {
    type Ownership = Boxed;
    type RustType = AgentHandle;
}

/// Connects to the ssh-agent listening on the Unix socket `path`, or, when `path` is NULL,
/// the one named by the `SSH_AUTH_SOCK` environment variable. Returns NULL on failure:
/// `SSH_ERR_IO` with a last error starting "ssh-agent unavailable" (variable not set, no
/// socket, nobody listening). Each request waits at most 10 s for the agent unless changed
/// with `ssh_agent_set_timeout`.
///
/// Returns a new handle; free it with `ssh_agent_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ssh_agent_connect(path: *const c_char) -> *mut ssh_agent {
    guard(|| {
        // SAFETY: per the contract above.
        let path = unsafe { opt_str_arg(path, "path") }?;
        let agent = match path {
            Some(path) => Agent::connect_path(path),
            None => Agent::connect(),
        }?;
        let identities = Mutex::new(None);
        Ok(to_handle::<ssh_agent>(AgentHandle { agent, identities }))
    })
}

/// Sets how long one request to the agent may take, in ms (more than 0; the default is
/// 10000). A request that takes longer fails with `SSH_ERR_TIMEOUT`.
///
/// Borrowed: `agent` is only used during the call.
/// Thread safety: any thread; it waits for a request under way on another thread to end.
///
/// # Safety
/// `agent` must be NULL or a live `ssh_agent`.
#[no_mangle]
pub unsafe extern "C" fn ssh_agent_set_timeout(agent: *mut ssh_agent, timeout_ms: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { borrow::<ssh_agent>(agent, "agent") }?;
        let Some(ms) = u64::try_from(timeout_ms).ok().filter(|&ms| ms > 0) else {
            let message = format!("agent timeout must be more than 0 ms, not {timeout_ms}");
            return Err(Error::invalid_arg(message));
        };
        handle.agent.set_timeout(Duration::from_millis(ms));
        Ok(())
    })
}

/// Asks the agent for its keys and returns how many there are (0 or more), or a negative
/// `ssh_result` (`SSH_ERR_REFUSED`, `SSH_ERR_TIMEOUT`, `SSH_ERR_PROTOCOL`, `SSH_ERR_IO`). Keys
/// of types Sekura cannot use (certificates, security keys, DSA) are not counted. The list is
/// kept in the handle for `ssh_agent_get_identity` until the next call.
///
/// Borrowed: `agent` is only used during the call.
/// Thread safety: any thread; requests take turns, and a count on another thread replaces the
/// list `ssh_agent_get_identity` reads.
///
/// # Safety
/// `agent` must be NULL or a live `ssh_agent`.
#[no_mangle]
pub unsafe extern "C" fn ssh_agent_count_identities(agent: *mut ssh_agent) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { borrow::<ssh_agent>(agent, "agent") }?;
        let list = handle.agent.identities()?;
        let count = c_int::try_from(list.len()).unwrap_or(c_int::MAX);
        *handle.identities.lock() = Some(list);
        Ok(count)
    })
}

/// The `index`-th key (from 0) of the list fetched by the last `ssh_agent_count_identities`
/// (fetched now if there was none): its public key in `*out_key`, and its comment in
/// `*out_comment` unless `out_comment` is NULL. Returns `SSH_OK`, `SSH_ERR_EOF` when `index`
/// is past the end (outputs untouched), or another negative `ssh_result`. Sign with the key
/// through `ssh_agent_sign`.
///
/// On success `*out_key` is a new handle; free it with `ssh_pkey_free`. `*out_comment` is a
/// new string; free it with `sekura_string_free`.
/// Thread safety: any thread; `index` refers to the list of the last count on any thread.
///
/// # Safety
/// `agent` must be NULL or a live `ssh_agent`; `out_key` NULL or writable; `out_comment` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_agent_get_identity(
    agent: *mut ssh_agent,
    index: usize,
    out_key: *mut *mut ssh_pkey,
    out_comment: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { borrow::<ssh_agent>(agent, "agent") }?;
        // SAFETY: per the contract above.
        let out_key = unsafe { out_arg(out_key, "out_key") }?;
        let mut cached = handle.identities.lock();
        let list = match &mut *cached {
            Some(list) => list,
            None => cached.insert(handle.agent.identities()?),
        };
        let Some(key) = list.get(index) else {
            let message = format!(
                "the agent has {} keys; there is no index {index}",
                list.len()
            );
            return Err(Error::new(ErrorKind::Eof, message));
        };
        out_key.write(public_key_handle(key.public.clone()));
        // SAFETY: per the contract above; NULL means the comment is not wanted.
        let out_comment = unsafe { out_comment.cast::<MaybeUninit<*mut c_char>>().as_mut() };
        if let Some(out_comment) = out_comment {
            out_comment.write(to_c_string(&key.comment));
        }
        Ok(())
    })
}

/// Has the agent sign `data` (`data_len` bytes) with the private half of `key` (a key from
/// `ssh_agent_get_identity`, or any public key the agent holds) using `algorithm`:
/// "ssh-ed25519", "ecdsa-sha2-nistp256", ..., and for RSA keys "rsa-sha2-512",
/// "rsa-sha2-256" (the agent's SHA-2 flags are set from it) or the legacy "ssh-rsa". On
/// success `*out_sig` and `*out_sig_len` hold the SSH signature blob (`string algorithm,
/// string signature`), checked to be of `algorithm` and to verify with `key`. Returns
/// `SSH_OK`, `SSH_ERR_REFUSED` (the agent refused, for example it does not hold the key),
/// `SSH_ERR_INVALID_ARG` (an algorithm the key cannot make), `SSH_ERR_PROTOCOL` (a bad
/// signature or answer), `SSH_ERR_TIMEOUT` or `SSH_ERR_IO`.
///
/// On success `*out_sig` is a new buffer of `*out_sig_len` bytes; free it with
/// `sekura_bytes_free(sig, sig_len)`.
/// Thread safety: any thread; requests take turns.
///
/// # Safety
/// `agent` must be NULL or a live `ssh_agent`; `key` NULL or a live `ssh_pkey`; `algorithm`
/// NULL or a NUL-terminated string; `data` valid for `data_len` bytes (NULL only with 0);
/// `out_sig` and `out_sig_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_agent_sign(
    agent: *mut ssh_agent,
    key: *const ssh_pkey,
    algorithm: *const c_char,
    data: *const u8,
    data_len: usize,
    out_sig: *mut *mut u8,
    out_sig_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let handle = unsafe { borrow::<ssh_agent>(agent, "agent") }?;
        // SAFETY: per the contract above.
        let key = unsafe { borrow::<ssh_pkey>(key, "key") }?;
        // SAFETY: per the contract above.
        let algorithm = unsafe { str_arg(algorithm, "algorithm") }?;
        // SAFETY: per the contract above.
        let data = unsafe { slice_arg(data, data_len, "data") }?;
        // SAFETY: per the contract above.
        let out_sig = unsafe { out_arg(out_sig, "out_sig") }?;
        // SAFETY: per the contract above.
        let out_len = unsafe { out_arg(out_sig_len, "out_sig_len") }?;
        let signature = handle
            .agent
            .sign_with_public_key(&key.public, data, algorithm)?;
        out_sig.write(to_c_bytes(&signature));
        out_len.write(signature.len());
        Ok(())
    })
}

/// Closes the connection to the agent.
///
/// Frees the handle; NULL is ignored.
/// Thread safety: not while another thread uses the handle.
///
/// # Safety
/// `agent` must be NULL or a live `ssh_agent`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ssh_agent_free(agent: *mut ssh_agent) {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { free_handle(agent) };
        Ok(())
    })
}
