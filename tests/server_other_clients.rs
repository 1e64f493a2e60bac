//! Independent client implementations other than OpenSSH's against Sekura's server: PuTTY's
//! plink (putty-tools), with a key from a .ppk file converted by puttygen, a password and
//! the host key pinned by fingerprint; Dropbear's dbclient (dropbear-bin), with each
//! cipher it has; and a client built on libssh (libssh-dev) with libssh's default settings.
//! Exit codes, stderr and stdin.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sekura::crypto::rng::OsRandom;
use sekura::keys::{KeyType, PrivateKeyFormat};
use support::openssh::run_with_timeout;
use support::server::{generate, Policy, TestServer};

const USER: &str = "carol";
const PASSWORD: &str = "plink-password";
const PLINK: &str = "/usr/bin/plink";

/// plink in batch mode (never prompts) against the server, trusting its Ed25519 key only.
fn plink(server: &TestServer) -> Command {
    support::require_program(PLINK, "putty-tools");
    let fingerprint = server.host_keys[0].public_key().fingerprint_sha256();
    let mut cmd = Command::new(PLINK);
    cmd.args(["-batch", "-ssh", "-P", &server.port().to_string()])
        .args(["-hostkey", &fingerprint, "-l", USER])
        .env("HOME", server.dir());
    cmd
}

/// The user key as PuTTY's .ppk, through puttygen.
fn ppk(dir: &Path) -> (std::path::PathBuf, sekura::keys::PublicKey) {
    let key = generate(KeyType::Ed25519, None);
    let openssh = dir.join("id_ed25519");
    key.write_file(&openssh, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write key");
    let ppk = dir.join("id_ed25519.ppk");
    let out = run_with_timeout(
        Command::new("/usr/bin/puttygen")
            .arg(&openssh)
            .args(["-O", "private", "-o"])
            .arg(&ppk),
        Duration::from_secs(30),
    );
    out.assert_success("puttygen");
    (ppk, key.public_key())
}

#[test]
fn plink_runs_commands_with_a_key_and_with_a_password() {
    let dir = support::fresh_dir("putty");
    let (ppk, public) = ppk(&dir);
    let server = TestServer::start(Policy {
        authorized_keys: vec![public],
        password: Some((USER.into(), PASSWORD.into())),
        ..Policy::default()
    });
    let out = run_with_timeout(
        plink(&server)
            .arg("-i")
            .arg(&ppk)
            .args(["127.0.0.1", "echo from-plink; echo oops >&2; exit 9"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status().code(), Some(9), "{}", out.stderr());
    assert_eq!(out.stdout(), "from-plink\n");
    assert!(out.stderr().contains("oops"), "{}", out.stderr());

    let out = run_with_timeout(
        plink(&server).args(["-pw", PASSWORD, "127.0.0.1", "echo by-password"]),
        Duration::from_secs(30),
    );
    out.assert_success("plink -pw");
    assert_eq!(out.stdout(), "by-password\n");
    let asked = server.asked();
    assert!(
        asked
            .iter()
            .any(|a| a == &format!("publickey {USER} ssh-ed25519 true")),
        "{asked:?}"
    );
}

#[test]
fn plink_stdin_reaches_the_command() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = support::fresh_dir("putty");
    let (ppk, public) = ppk(&dir);
    let server = TestServer::start(Policy {
        authorized_keys: vec![public],
        ..Policy::default()
    });
    let mut child = plink(&server)
        .arg("-i")
        .arg(&ppk)
        .args(["127.0.0.1", "wc -c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start plink");
    let data = vec![b'p'; 3 << 20];
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("plink");
    writer.join().expect("writer").expect("write to plink");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (3 << 20).to_string()
    );
}

const DBCLIENT: &str = "/usr/bin/dbclient";

/// dbclient against the server. dbclient cannot pin a key by fingerprint: `-y` accepts it,
/// and the test checks the fingerprint dbclient prints.
fn dbclient(server: &TestServer, key: &Path) -> Command {
    support::require_program(DBCLIENT, "dropbear-bin");
    let mut cmd = Command::new(DBCLIENT);
    cmd.args(["-y", "-p", &server.port().to_string(), "-i"])
        .arg(key)
        .env("HOME", server.dir());
    cmd
}

#[test]
fn dbclient_with_each_of_its_ciphers() {
    let dir = support::fresh_dir("dbclient");
    let key = generate(KeyType::Ed25519, None);
    let openssh = dir.join("id_ed25519");
    key.write_file(&openssh, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write key");
    let converted = dir.join("id_ed25519.dropbear");
    run_with_timeout(
        Command::new("/usr/bin/dropbearconvert")
            .args(["openssh", "dropbear"])
            .arg(&openssh)
            .arg(&converted),
        Duration::from_secs(30),
    )
    .assert_success("dropbearconvert");
    let server = TestServer::start(Policy {
        authorized_keys: vec![key.public_key()],
        ..Policy::default()
    });
    let fingerprint = server.host_keys[0].public_key().fingerprint_sha256();
    for cipher in ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"] {
        let out = run_with_timeout(
            dbclient(&server, &converted)
                .args(["-c", cipher])
                .arg(format!("{USER}@127.0.0.1"))
                .arg("echo $((40 + 2)); echo warn >&2; exit 6"),
            Duration::from_secs(30),
        );
        assert_eq!(out.status().code(), Some(6), "{cipher}: {}", out.stderr());
        assert_eq!(out.stdout(), "42\n", "{cipher}");
        assert!(out.stderr().contains("warn"), "{cipher}: {}", out.stderr());
        assert!(
            out.stderr().contains(&fingerprint),
            "{cipher}: dbclient saw another host key: {}",
            out.stderr()
        );
    }
}

const LIBSSH_HEADER: &str = "/usr/include/libssh/libssh.h";

/// Compiles `tests/peers/libssh_client.c` against the system's libssh.
fn libssh_client(dir: &Path) -> std::path::PathBuf {
    support::require_program(LIBSSH_HEADER, "libssh-dev");
    let program = dir.join("libssh_client");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/libssh_client.c");
    run_with_timeout(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&program)
            .arg(source)
            .arg("-lssh"),
        Duration::from_secs(60),
    )
    .assert_success("cc libssh_client.c -lssh");
    program
}

/// libssh 0.10 ends its cipher list with a comma; the server must treat the empty element as
/// naming nothing, as OpenSSH does, rather than refuse the KEXINIT.
#[test]
fn libssh_client_with_its_default_algorithms() {
    let dir = support::fresh_dir("libssh");
    let program = libssh_client(&dir);
    let key = generate(KeyType::Ed25519, None);
    let key_file = dir.join("id_ed25519");
    key.write_file(&key_file, PrivateKeyFormat::OpenSsh, None, &mut OsRandom)
        .expect("write key");
    let server = TestServer::start(Policy {
        authorized_keys: vec![key.public_key()],
        ..Policy::default()
    });
    let out = run_with_timeout(
        Command::new(&program)
            .arg(server.port().to_string())
            .arg(USER)
            .arg(server.known_hosts())
            .arg(&key_file)
            .arg("echo from-libssh; echo grumble >&2; exit 4")
            .env("HOME", server.dir()),
        Duration::from_secs(30),
    );
    assert_eq!(out.status().code(), Some(4), "{}", out.stderr());
    assert_eq!(out.stdout(), "from-libssh\n");
    assert!(out.stderr().contains("grumble"), "{}", out.stderr());
}
