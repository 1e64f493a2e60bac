//! `ssh_pkey` functions for OpenSSH certificates.

use std::ffi::{c_char, c_int};

use super::super::boundary::{guard, out_arg, to_c_string, to_shared_handle};
use super::info::private_of;
use super::{cert_of, key_arg, key_string, public_key_handle, ssh_pkey, Pkey};
use super::{
    SSH_PKEY_CERT_CRITICAL_OPTIONS, SSH_PKEY_CERT_EXTENSIONS, SSH_PKEY_CERT_HOST,
    SSH_PKEY_CERT_USER,
};
use crate::keys::{CertType, Certificate};
use crate::Error;

/// Whether the handle holds an OpenSSH certificate. False if `key` is NULL.
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_is_certificate(key: *const ssh_pkey) -> bool {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        Ok(key.certificate.is_some())
    })
}

/// A new handle holding the private key of `key` and the certificate of `cert` (for
/// public key authentication with a certificate: the request names the certificate, the
/// private key signs). `cert`'s certified key must be `key`'s public key. Returns NULL on
/// failure (`SSH_ERR_INVALID_ARG`).
///
/// Returns a new handle; free it with `ssh_pkey_free` (the arguments stay owned by the
/// caller).
/// Thread safety: any thread.
///
/// # Safety
/// `key` and `cert` must be NULL or live `ssh_pkey`s.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_with_certificate(
    key: *const ssh_pkey,
    cert: *const ssh_pkey,
) -> *mut ssh_pkey {
    guard(|| {
        // SAFETY: per the contract above.
        let key = unsafe { key_arg(key, "key") }?;
        // SAFETY: as above.
        let cert = unsafe { key_arg(cert, "cert") }.and_then(cert_of)?;
        let private = private_of(key)?;
        if cert.public_key() != &key.public {
            return Err(Error::invalid_arg(format!(
                "the certificate is for key {}, not {}",
                cert.public_key().fingerprint_sha256(),
                key.public.fingerprint_sha256()
            )));
        }
        Ok(to_shared_handle::<ssh_pkey>(std::sync::Arc::new(Pkey {
            public: key.public.clone(),
            private: Some(private.clone()),
            certificate: Some(cert.clone()),
        })))
    })
}

/// The certificate of `key`; NULL or a key without one is an invalid argument.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
unsafe fn cert_arg<'a>(key: *const ssh_pkey) -> crate::Result<&'a Certificate> {
    // SAFETY: forwarded contract.
    unsafe { key_arg(key, "key") }.and_then(cert_of)
}

/// The certificate's type: `SSH_PKEY_CERT_USER` or `SSH_PKEY_CERT_HOST`, or a negative
/// `ssh_result` (`SSH_ERR_INVALID_ARG` if `key` is not a certificate).
///
/// Borrowed: nothing is kept.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_type(key: *const ssh_pkey) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let cert = unsafe { cert_arg(key) }?;
        Ok(match cert.cert_type() {
            CertType::User => SSH_PKEY_CERT_USER,
            CertType::Host => SSH_PKEY_CERT_HOST,
        })
    })
}

/// The certificate's key id (`ssh-keygen -s ... -I ID`). NULL if `key` is not a
/// certificate.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_key_id(key: *const ssh_pkey) -> *mut c_char {
    guard(|| key_string(key, |k| cert_of(k).map(|c| c.key_id().to_owned())))
}

/// The certificate's serial number.
///
/// Borrowed: writes only `*out_serial`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `out_serial` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_serial(
    key: *const ssh_pkey,
    out_serial: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_serial, "out_serial") }?;
        // SAFETY: as above.
        let cert = unsafe { cert_arg(key) }?;
        out.write(cert.serial());
        Ok(())
    })
}

/// The certificate's validity interval in seconds since the Unix epoch: valid from
/// `*out_valid_after` (0: always) until before `*out_valid_before` (UINT64_MAX: forever).
///
/// Borrowed: writes only `*out_valid_after` and `*out_valid_before`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; the outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_validity(
    key: *const ssh_pkey,
    out_valid_after: *mut u64,
    out_valid_before: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let after = unsafe { out_arg(out_valid_after, "out_valid_after") }?;
        // SAFETY: as above.
        let before = unsafe { out_arg(out_valid_before, "out_valid_before") }?;
        // SAFETY: as above.
        let cert = unsafe { cert_arg(key) }?;
        after.write(cert.valid_after());
        before.write(cert.valid_before());
        Ok(())
    })
}

/// The number of principals (user or host names) the certificate is valid for; 0 means
/// any.
///
/// Borrowed: writes only `*out_count`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `out_count` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_principal_count(
    key: *const ssh_pkey,
    out_count: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_count, "out_count") }?;
        // SAFETY: as above.
        let cert = unsafe { cert_arg(key) }?;
        out.write(cert.principals().len());
        Ok(())
    })
}

/// Principal number `index` (from 0). NULL if `key` is not a certificate or `index` is out
/// of range.
///
/// Returns a new string; free it with `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_principal(
    key: *const ssh_pkey,
    index: usize,
) -> *mut c_char {
    guard(|| {
        key_string(key, |k| {
            let principals = cert_of(k)?.principals();
            principals.get(index).cloned().ok_or_else(|| {
                Error::invalid_arg(format!(
                    "principal index {index} out of range ({} principals)",
                    principals.len()
                ))
            })
        })
    })
}

/// The critical options or extensions of a certificate, by `which`.
fn options_of(cert: &Certificate, which: c_int) -> crate::Result<&[(String, String)]> {
    match which {
        SSH_PKEY_CERT_CRITICAL_OPTIONS => Ok(cert.critical_options()),
        SSH_PKEY_CERT_EXTENSIONS => Ok(cert.extensions()),
        other => Err(Error::invalid_arg(format!("unknown option list {other}"))),
    }
}

/// The number of critical options (`which` = `SSH_PKEY_CERT_CRITICAL_OPTIONS`) or
/// extensions (`SSH_PKEY_CERT_EXTENSIONS`) of the certificate.
///
/// Borrowed: writes only `*out_count`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `out_count` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_option_count(
    key: *const ssh_pkey,
    which: c_int,
    out_count: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_count, "out_count") }?;
        // SAFETY: as above.
        let cert = unsafe { cert_arg(key) }?;
        out.write(options_of(cert, which)?.len());
        Ok(())
    })
}

/// Critical option or extension number `index` (see `ssh_pkey_cert_get_option_count`): its
/// name (e.g. "force-command", "permit-pty") and value ("" for flags).
///
/// On success `*out_name` and `*out_value` are new strings; free each with
/// `sekura_string_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `out_name` and `out_value` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_option(
    key: *const ssh_pkey,
    which: c_int,
    index: usize,
    out_name: *mut *mut c_char,
    out_value: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let name = unsafe { out_arg(out_name, "out_name") }?;
        // SAFETY: as above.
        let value = unsafe { out_arg(out_value, "out_value") }?;
        // SAFETY: as above.
        let cert = unsafe { cert_arg(key) }?;
        let options = options_of(cert, which)?;
        let (n, v) = options.get(index).ok_or_else(|| {
            Error::invalid_arg(format!(
                "option index {index} out of range ({} options)",
                options.len()
            ))
        })?;
        name.write(to_c_string(n));
        value.write(to_c_string(v));
        Ok(())
    })
}

/// The public key of the certificate authority that signed the certificate (its
/// fingerprint with `ssh_pkey_get_fingerprint`).
///
/// On success `*out_ca` is a new handle; free it with `ssh_pkey_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `key` must be NULL or a live `ssh_pkey`; `out_ca` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ssh_pkey_cert_get_ca_key(
    key: *const ssh_pkey,
    out_ca: *mut *mut ssh_pkey,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out_arg(out_ca, "out_ca") }?;
        // SAFETY: as above.
        let cert = unsafe { cert_arg(key) }?;
        out.write(public_key_handle(cert.ca_key().clone()));
        Ok(())
    })
}
