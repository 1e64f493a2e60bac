//! known_hosts files written by OpenSSH itself (`ssh` with `HashKnownHosts=yes` and
//! `StrictHostKeyChecking=accept-new` against a private sshd, and `ssh-keygen -H`), read back
//! by [`HostKeys`]; and files written by [`HostKeys`], read by `ssh-keygen -F` and trusted (or
//! not) by `ssh` itself. Also the C API, `ssh_hostkeys_*`.

mod support;

use std::ffi::{CStr, CString};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sekura::hostkeys::{HostKeyStatus, HostKeys};
use sekura::keys::{PrivateKey, PublicKey};
use support::{run_with_timeout, Sshd};

/// Host key kinds of the private sshd, with the `HostKeyAlgorithms` value that makes `ssh`
/// use each.
const KINDS: [(&str, &str); 3] = [
    ("ed25519", "ssh-ed25519"),
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("rsa", "rsa-sha2-512"),
];

const HOST: &str = "127.0.0.1";

/// Runs OpenSSH's `ssh` to the server with `true` as command, using `known_hosts` as the user
/// file and the given host key algorithm and `StrictHostKeyChecking` value; hashes new entries.
fn run_ssh(sshd: &Sshd, known_hosts: &Path, host_key_alg: &str, strict: &str) -> (bool, String) {
    run_ssh_with(sshd, known_hosts, host_key_alg, strict, &[])
}

/// [`run_ssh`] with `extra` options first (`ssh` keeps the first value of an option).
fn run_ssh_with(
    sshd: &Sshd,
    known_hosts: &Path,
    host_key_alg: &str,
    strict: &str,
    extra: &[&str],
) -> (bool, String) {
    support::require_program("/usr/bin/ssh", "openssh-client");
    let mut cmd = Command::new("/usr/bin/ssh");
    cmd.args(extra)
        .arg("-F")
        .arg("none")
        .arg("-p")
        .arg(sshd.port.to_string())
        .arg("-l")
        .arg(&sshd.user)
        .arg("-i")
        .arg(sshd.user_key("ed25519"))
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-o")
        .arg(format!("StrictHostKeyChecking={strict}"))
        .arg("-o")
        .arg(format!("HostKeyAlgorithms={host_key_alg}"))
        .args([
            "-o",
            "HashKnownHosts=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "CheckHostIP=no",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "-o",
            "ConnectTimeout=10",
            HOST,
            "true",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
    (out.success(), out.stderr())
}

/// The lines `ssh-keygen -F name -f file` prints for the entries it finds.
fn ssh_keygen_find(file: &Path, name: &str) -> Vec<String> {
    let out = Command::new(support::sshd::SSH_KEYGEN)
        .args(["-F", name, "-f"])
        .arg(file)
        .output()
        .expect("run ssh-keygen -F");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Has `ssh` write the server's three host keys into `known_hosts`, hashed, the way a user's
/// file gets them: the first connection accepts the ed25519 key (`accept-new`), the second
/// learns the others from the server (`UpdateHostKeys=yes`, the hostkeys-00@openssh.com
/// extension). OpenSSH treats a known host offering a key of an unknown type as a changed
/// key, so accept-new alone never adds a second type.
fn ssh_learns_all_host_keys(sshd: &Sshd, known_hosts: &Path) {
    let (ok, stderr) = run_ssh(sshd, known_hosts, "ssh-ed25519", "accept-new");
    assert!(ok, "ssh with accept-new failed:\n{stderr}");
    // Keys of types outside HostKeyAlgorithms are ignored: list all three, ed25519 first.
    let (ok, stderr) = run_ssh_with(
        sshd,
        known_hosts,
        "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512",
        "yes",
        &["-o", "UpdateHostKeys=yes"],
    );
    assert!(ok, "ssh with UpdateHostKeys=yes failed:\n{stderr}");
}

fn host_key(sshd: &Sshd, kind: &str) -> PublicKey {
    PublicKey::from_openssh(&fs::read_to_string(sshd.host_key_pub(kind)).unwrap()).unwrap()
}

fn other_key(seed: u8) -> PublicKey {
    PrivateKey::ed25519_from_seed([seed; 32]).public_key()
}

#[test]
fn known_hosts_written_by_ssh_accept_new_hashed() {
    let sshd = Sshd::start();
    let dir = support::fresh_dir("hostkeys-ssh");
    let file = dir.join("known_hosts");
    ssh_learns_all_host_keys(&sshd, &file);
    let text = fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l.starts_with("|1|")), "{text}");

    let mut known = HostKeys::new();
    known.load(&file).unwrap();
    assert_eq!(known.len(), 3);
    for (i, (kind, _)) in KINDS.iter().enumerate() {
        let key = host_key(&sshd, kind);
        assert_eq!(
            known.check(HOST, sshd.port, &key),
            HostKeyStatus::Match,
            "{kind}"
        );
        assert_eq!(
            known.check(HOST, 22, &key),
            HostKeyStatus::NotFound,
            "{kind}: port 22 is another name"
        );
        assert!(known.lookup(HOST, sshd.port).contains(&key), "{kind}");
        let line = i + 1;
        if *kind == "ed25519" {
            assert_eq!(
                known.check(HOST, sshd.port, &other_key(1)),
                HostKeyStatus::Mismatch { line }
            );
        }
    }
    assert_eq!(known.lookup(HOST, sshd.port).len(), 3);
    assert!(known.lookup("127.0.0.2", sshd.port).is_empty());

    // Saved unchanged: byte for byte the file ssh wrote.
    let copy = dir.join("copy");
    known.save(&copy).unwrap();
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&file).unwrap());
    known.save(&file).unwrap();
    assert_eq!(fs::read_to_string(&file).unwrap(), text);

    // The server's ed25519 key changes (here: the file lists another one). Sekura says
    // mismatch, naming the line; ssh refuses the same way.
    let wrong = other_key(2);
    known.add(HOST, sshd.port, &wrong, true).unwrap();
    known.save(&file).unwrap();
    let real = host_key(&sshd, "ed25519");
    let check = known.check_detailed(HOST, sshd.port, &real);
    assert_eq!(check.status, HostKeyStatus::Mismatch { line: 3 });
    let mut reloaded = HostKeys::new();
    reloaded.load(&file).unwrap();
    let check = reloaded.check_detailed(HOST, sshd.port, &real);
    assert_eq!(check.status, HostKeyStatus::Mismatch { line: 3 });
    assert_eq!(check.file.as_deref(), Some(file.as_path()));
    let (ok, stderr) = run_ssh(&sshd, &file, "ssh-ed25519", "yes");
    assert!(!ok, "ssh accepted a changed host key");
    assert!(
        stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:3", file.display())),
        "{stderr}"
    );

    // The RSA key is revoked: Sekura says revoked, naming the line; so does ssh.
    let rsa = host_key(&sshd, "rsa");
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str("# revoked below\n");
    text.push_str(&format!("@revoked * {rsa}\n"));
    fs::write(&file, &text).unwrap();
    let mut known = HostKeys::new();
    known.load(&file).unwrap();
    assert_eq!(
        known.check(HOST, sshd.port, &rsa),
        HostKeyStatus::Revoked { line: 5 }
    );
    assert!(!known.lookup(HOST, sshd.port).contains(&rsa));
    let (ok, stderr) = run_ssh(&sshd, &file, "rsa-sha2-512", "yes");
    assert!(!ok, "ssh accepted a revoked host key");
    assert!(stderr.contains("REVOKED HOST KEY DETECTED"), "{stderr}");
    // The ECDSA key is still trusted by both.
    let ecdsa = host_key(&sshd, "ecdsa");
    assert_eq!(known.check(HOST, sshd.port, &ecdsa), HostKeyStatus::Match);
    let (ok, stderr) = run_ssh(&sshd, &file, "ecdsa-sha2-nistp256", "yes");
    assert!(ok, "{stderr}");
    known.save(&copy).unwrap();
    assert_eq!(fs::read_to_string(&copy).unwrap(), text);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn known_hosts_hashed_by_ssh_keygen() {
    let sshd = Sshd::start();
    let dir = support::fresh_dir("hostkeys-keygen");
    let file = dir.join("known_hosts");
    let mut plain = String::from("# hosts of the test server\n\n");
    plain.push_str(&fs::read_to_string(sshd.known_hosts()).unwrap());
    plain.push_str(&format!("other.example.com {}\n", other_key(3)));
    fs::write(&file, &plain).unwrap();

    let mut known = HostKeys::new();
    known.load(&file).unwrap();
    for (kind, _) in KINDS {
        let key = host_key(&sshd, kind);
        assert_eq!(
            known.check(HOST, sshd.port, &key),
            HostKeyStatus::Match,
            "{kind}"
        );
    }

    let out = Command::new(support::sshd::SSH_KEYGEN)
        .args(["-q", "-H", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashed = fs::read_to_string(&file).unwrap();
    assert!(!hashed.contains("127.0.0.1"), "{hashed}");
    assert!(!hashed.contains("other.example.com"), "{hashed}");

    let mut known = HostKeys::new();
    known.load(&file).unwrap();
    assert_eq!(known.len(), 4);
    for (kind, _) in KINDS {
        let key = host_key(&sshd, kind);
        assert_eq!(
            known.check(HOST, sshd.port, &key),
            HostKeyStatus::Match,
            "{kind}"
        );
    }
    assert_eq!(
        known.check("OTHER.example.com", 22, &other_key(3)),
        HostKeyStatus::Match
    );
    assert_eq!(
        known.check("other.example.com", 22, &other_key(4)),
        HostKeyStatus::Mismatch { line: 6 }
    );
    known.save(&file).unwrap();
    assert_eq!(fs::read_to_string(&file).unwrap(), hashed);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn entries_added_by_sekura_are_found_and_trusted_by_openssh() {
    let sshd = Sshd::start();
    let dir = support::fresh_dir("hostkeys-add");
    let file = dir.join("known_hosts");
    let name = format!("[{HOST}]:{}", sshd.port);
    fs::write(&file, "# my hosts\n").unwrap();

    let mut known = HostKeys::new();
    known.load(&file).unwrap();
    known
        .add(HOST, sshd.port, &host_key(&sshd, "ed25519"), false)
        .unwrap();
    known
        .add(HOST, sshd.port, &host_key(&sshd, "ecdsa"), true)
        .unwrap();
    known.save(&file).unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# my hosts\n"), "{text}");
    assert!(text.contains(&format!("{name} ssh-ed25519 ")), "{text}");

    let found = ssh_keygen_find(&file, &name);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!("{name} ssh-ed25519 ")),
        "{found:?}"
    );
    assert!(found[1].starts_with("|1|"), "{found:?}");
    assert!(found[1].contains(" ecdsa-sha2-nistp256 "), "{found:?}");
    // ssh trusts both entries, and still refuses the RSA key nobody added.
    for alg in ["ssh-ed25519", "ecdsa-sha2-nistp256"] {
        let (ok, stderr) = run_ssh(&sshd, &file, alg, "yes");
        assert!(ok, "{alg}: {stderr}");
    }
    let (ok, _) = run_ssh(&sshd, &file, "rsa-sha2-512", "yes");
    assert!(!ok, "an RSA key was never added");

    // Removed: ssh-keygen -F finds nothing, ssh no longer trusts the server.
    assert_eq!(known.remove(HOST, sshd.port), 2);
    known.save(&file).unwrap();
    assert_eq!(fs::read_to_string(&file).unwrap(), "# my hosts\n");
    assert!(ssh_keygen_find(&file, &name).is_empty());
    let (ok, stderr) = run_ssh(&sshd, &file, "ssh-ed25519", "yes");
    assert!(!ok);
    assert!(stderr.contains("Host key verification failed"), "{stderr}");

    // The other way round: entries made by ssh (hashed) are removed by Sekura.
    ssh_learns_all_host_keys(&sshd, &file);
    assert_eq!(ssh_keygen_find(&file, &name).len(), 3);
    let mut known = HostKeys::new();
    known.load(&file).unwrap();
    assert_eq!(known.remove(HOST, sshd.port), 3);
    known.save(&file).unwrap();
    assert!(ssh_keygen_find(&file, &name).is_empty());
    assert_eq!(fs::read_to_string(&file).unwrap(), "# my hosts\n");
    let _ = fs::remove_dir_all(&dir);
}

/// The C API over the same files.
mod c_api {
    use super::*;
    use sekura::ffi::*;
    use std::ptr;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    fn last_error() -> String {
        // SAFETY: sekura_last_error returns a valid string for this thread.
        unsafe { CStr::from_ptr(sekura_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    /// A key handle for the server's host key of `kind` (loaded from its private key file).
    fn host_pkey(sshd: &Sshd, kind: &str) -> *mut ssh_pkey {
        let path = c(sshd.host_key(kind).to_str().unwrap());
        // SAFETY: valid C strings.
        let key = unsafe { ssh_pkey_from_file(path.as_ptr(), ptr::null()) };
        assert!(!key.is_null(), "{}", last_error());
        key
    }

    fn fingerprint(key: *const ssh_pkey) -> String {
        // SAFETY: a live key; the string is freed below.
        unsafe {
            let s = ssh_pkey_get_fingerprint(key);
            let out = CStr::from_ptr(s).to_string_lossy().into_owned();
            sekura_string_free(s);
            out
        }
    }

    #[test]
    fn ssh_hostkeys_functions() {
        let sshd = Sshd::start();
        let dir = support::fresh_dir("hostkeys-capi");
        let file = dir.join("known_hosts");
        ssh_learns_all_host_keys(&sshd, &file);
        let original = fs::read(&file).unwrap();
        let path = c(file.to_str().unwrap());
        let system = c(dir.join("ssh_known_hosts").to_str().unwrap());
        fs::write(
            dir.join("ssh_known_hosts"),
            format!("system.example.com {}\n", host_key(&sshd, "ed25519")),
        )
        .unwrap();
        let host = c(HOST);
        let port = sshd.port;
        let keys: Vec<*mut ssh_pkey> = KINDS.iter().map(|(k, _)| host_pkey(&sshd, k)).collect();
        let wrong = {
            let path = c(sshd.unauthorized_key().to_str().unwrap());
            // SAFETY: valid C strings.
            unsafe { ssh_pkey_from_file(path.as_ptr(), ptr::null()) }
        };
        assert!(!wrong.is_null());

        // SAFETY: every pointer below is a live handle, a valid C string, or writable.
        unsafe {
            let hk = ssh_hostkeys_new();
            assert!(!hk.is_null());
            assert_eq!(ssh_hostkeys_load(hk, path.as_ptr()), SSH_OK);
            assert_eq!(ssh_hostkeys_load_system(hk, system.as_ptr()), SSH_OK);
            assert_eq!(ssh_hostkeys_count(hk), 4);
            for &key in &keys {
                assert_eq!(
                    ssh_hostkeys_check(hk, host.as_ptr(), port, key),
                    SSH_KNOWNHOSTS_MATCH
                );
            }
            assert_eq!(
                ssh_hostkeys_check(hk, host.as_ptr(), port, wrong),
                SSH_KNOWNHOSTS_MISMATCH
            );
            let message = last_error();
            assert!(
                message.contains(&format!("{} line 1", file.display())),
                "{message}"
            );
            assert_eq!(sekura_last_result(), SSH_ERR_HOSTKEY_REJECTED);
            assert_eq!(
                ssh_hostkeys_check(hk, host.as_ptr(), 2222, keys[0]),
                SSH_KNOWNHOSTS_NOT_FOUND
            );

            // Lookup: iterate until SSH_ERR_EOF.
            let mut found = Vec::new();
            let mut key = ptr::null_mut();
            while ssh_hostkeys_lookup(hk, host.as_ptr(), port, found.len(), &mut key) == SSH_OK {
                found.push(fingerprint(key));
                ssh_pkey_free(key);
            }
            assert_eq!(sekura_last_result(), SSH_ERR_EOF);
            let expected: Vec<String> = keys.iter().map(|&k| fingerprint(k)).collect();
            assert_eq!(found, expected);
            let mut key = ptr::null_mut();
            assert_eq!(
                ssh_hostkeys_lookup_ca(hk, host.as_ptr(), port, 0, &mut key),
                SSH_ERR_EOF
            );
            assert!(key.is_null(), "untouched");

            // Unchanged, saved byte for byte; the system file's entry is not written.
            assert_eq!(ssh_hostkeys_save(hk, path.as_ptr()), SSH_OK);
            assert_eq!(fs::read(&file).unwrap(), original);

            // Add (hashed and plain), remove, save.
            let other = c("other.example.com");
            assert_eq!(
                ssh_hostkeys_add(hk, other.as_ptr(), 22, wrong, true),
                SSH_OK
            );
            assert_eq!(
                ssh_hostkeys_add(hk, other.as_ptr(), 2200, wrong, false),
                SSH_OK
            );
            assert_eq!(ssh_hostkeys_count(hk), 6);
            assert_eq!(ssh_hostkeys_save(hk, path.as_ptr()), SSH_OK);
            assert_eq!(ssh_keygen_find(&file, "other.example.com").len(), 1);
            assert_eq!(ssh_keygen_find(&file, "[other.example.com]:2200").len(), 1);
            assert_eq!(ssh_hostkeys_remove(hk, host.as_ptr(), port), 3);
            assert_eq!(ssh_hostkeys_remove(hk, host.as_ptr(), port), 0);
            let sys = c("system.example.com");
            assert_eq!(ssh_hostkeys_remove(hk, sys.as_ptr(), 22), 0, "read-only");
            assert_eq!(ssh_hostkeys_save(hk, path.as_ptr()), SSH_OK);
            assert!(ssh_keygen_find(&file, &format!("[{HOST}]:{port}")).is_empty());
            assert_eq!(
                ssh_hostkeys_check(hk, sys.as_ptr(), 22, keys[0]),
                SSH_KNOWNHOSTS_MATCH
            );

            // hash_host.
            let mut hashed = ptr::null_mut();
            assert_eq!(ssh_hostkeys_hash_host(other.as_ptr(), &mut hashed), SSH_OK);
            let text = CStr::from_ptr(hashed).to_str().unwrap().to_owned();
            sekura_string_free(hashed);
            assert!(text.starts_with("|1|") && text.len() == 60, "{text}");

            // Bad arguments: NULLs and host names that cannot be one entry.
            assert_eq!(
                ssh_hostkeys_load(ptr::null_mut(), path.as_ptr()),
                SSH_ERR_INVALID_ARG
            );
            assert_eq!(ssh_hostkeys_load(hk, ptr::null()), SSH_ERR_INVALID_ARG);
            assert_eq!(
                ssh_hostkeys_check(hk, host.as_ptr(), port, ptr::null()),
                SSH_ERR_INVALID_ARG
            );
            assert_eq!(ssh_hostkeys_count(ptr::null()), SSH_ERR_INVALID_ARG);
            assert_eq!(
                ssh_hostkeys_lookup(hk, host.as_ptr(), port, 0, ptr::null_mut()),
                SSH_ERR_INVALID_ARG
            );
            assert_eq!(
                ssh_hostkeys_hash_host(ptr::null(), &mut hashed),
                SSH_ERR_INVALID_ARG
            );
            let bad = c("a,b");
            assert_eq!(
                ssh_hostkeys_add(hk, bad.as_ptr(), 22, wrong, false),
                SSH_ERR_INVALID_ARG
            );
            let nowhere = c(dir.join("no/such/dir/file").to_str().unwrap());
            assert_eq!(ssh_hostkeys_save(hk, nowhere.as_ptr()), SSH_ERR_IO);
            assert!(last_error().contains("no/such/dir"), "{}", last_error());

            ssh_hostkeys_free(hk);
            ssh_hostkeys_free(ptr::null_mut());
            for key in keys {
                ssh_pkey_free(key);
            }
            ssh_pkey_free(wrong);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// A new known_hosts file is 0600 from the first byte even under `umask 000`: checked in a
/// child process of this test binary, so that this process's umask is never changed.
#[test]
fn new_file_is_private_under_umask_000() {
    let dir = support::fresh_dir("hostkeys-umask");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_saves_under_umask_000", "--nocapture"])
        .env("SEKURA_HOSTKEYS_TEST_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child saved under umask 000"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = fs::remove_dir_all(&dir);
}

/// Run by [`new_file_is_private_under_umask_000`] in a child process; does nothing otherwise.
#[test]
fn child_saves_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let Some(dir) = std::env::var_os("SEKURA_HOSTKEYS_TEST_DIR") else {
        return;
    };
    // SAFETY: umask has no memory-safety preconditions.
    unsafe { libc::umask(0) };
    let file = Path::new(&dir).join("known_hosts");
    let mut known = HostKeys::new();
    known
        .add("new.example.com", 22, &other_key(5), true)
        .unwrap();
    known.save(&file).unwrap();
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    // And the temporary file is gone.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    println!("child saved under umask 000");
}
