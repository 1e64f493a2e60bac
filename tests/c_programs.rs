//! The C programs, compiled against include/sekura.h and the shared library with
//! `-std=c11 -Wall -Wextra -Wpedantic -Werror` (by the Makefile), run against a private
//! OpenSSH sshd: tests/c/api_test.c and tests/c/keys_test.c, which call every function of
//! the API (with an ssh-agent and certificates too), also under AddressSanitizer and
//! UndefinedBehaviorSanitizer;
//! examples-c/sekura-ssh.c, checked to behave like OpenSSH's ssh; and examples-c/demo.sh,
//! what `make demo` runs.

mod support;

#[path = "c/make.rs"]
mod make;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::agent::SshAgent;
use support::sshd::SSH_KEYGEN;
use support::{run_with_timeout, Sshd, SshdOptions, ENCRYPTED_KEY_PASSPHRASE};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The built C programs of one build directory.
struct Programs {
    sekura_ssh: PathBuf,
    sekura_keygen: PathBuf,
    api_test: PathBuf,
    keys_test: PathBuf,
    driven_client_test: PathBuf,
}

fn build(name: &str, extra: &[&str]) -> Programs {
    let dir = make::scratch_dir(name);
    let mut args = vec!["c-programs"];
    args.extend_from_slice(extra);
    make::make(&dir, &args);
    Programs {
        sekura_ssh: dir.join("bin/sekura-ssh"),
        sekura_keygen: dir.join("bin/sekura-keygen"),
        api_test: dir.join("tests/api_test"),
        keys_test: dir.join("tests/keys_test"),
        driven_client_test: dir.join("tests/driven_client_test"),
    }
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| build("c-programs", &[]))
}

/// Leaks, memory errors and undefined behaviour all end the program with a report.
const SANITIZER_ENV: &[(&str, &str)] = &[
    ("ASAN_OPTIONS", "detect_leaks=1:exitcode=99"),
    ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
];

fn sanitized_programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| build("c-programs-sanitized", &["SANITIZE=address,undefined"]))
}

// ---- api_test ---------------------------------------------------------------------------

fn run_api_test(programs: &Programs, env: &[(&str, &str)]) {
    let sshd = Sshd::start();
    let agent = SshAgent::start(&sshd.dir);
    agent.add(&sshd.user_key("ed25519"));
    let mut cmd = Command::new(&programs.api_test);
    cmd.arg("127.0.0.1")
        .arg(sshd.port.to_string())
        .arg(&sshd.user)
        .arg(sshd.user_key("ed25519"))
        .arg(sshd.unauthorized_key())
        .arg(sshd.user_key("ed25519-enc"))
        .arg(ENCRYPTED_KEY_PASSPHRASE)
        .arg(sshd.known_hosts())
        .env("SSH_AUTH_SOCK", &agent.socket)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    assert_checks_pass("api_test", &mut cmd);
}

/// Runs a C test program (tests/c/check.h) and fails with its failed checks.
fn assert_checks_pass(name: &str, cmd: &mut Command) {
    let out = run_with_timeout(cmd, TIMEOUT);
    let failed: Vec<&str> = out
        .output
        .stdout
        .split(|b| *b == b'\n')
        .filter(|line| line.starts_with(b"not ok"))
        .map(|line| std::str::from_utf8(line).unwrap_or("(not UTF-8)"))
        .collect();
    assert!(
        out.success(),
        "{name}: {:?}{}\nfailed checks:\n{}\nstderr:\n{}",
        out.status(),
        if out.timed_out { " (timed out)" } else { "" },
        failed.join("\n"),
        out.stderr()
    );
}

/// keys_test's arguments: the user keys of a server's directory and a user certificate
/// made there by ssh-keygen.
fn run_keys_test(programs: &Programs, env: &[(&str, &str)]) {
    let sshd = Sshd::start();
    let ca = sshd.dir.join("user_ca");
    let keygen = |cmd: &mut Command| {
        let out = make::run(cmd, "ssh-keygen (Debian: openssh-client)");
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    };
    keygen(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&ca),
    );
    keygen(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-s"])
            .arg(&ca)
            .args([
                "-I",
                "api-test",
                "-n",
                "alice,bob",
                "-z",
                "42",
                "-V",
                "+52w",
            ])
            .arg(sshd.user_key_pub("ed25519")),
    );
    let cert = sshd.dir.join("id_ed25519-cert.pub");

    let mut cmd = Command::new(&programs.keys_test);
    cmd.arg(sshd.user_key("ed25519"))
        .arg(sshd.user_key("ed25519-enc"))
        .arg(ENCRYPTED_KEY_PASSPHRASE)
        .arg(&cert)
        .arg(ca.with_extension("pub"))
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    assert_checks_pass("keys_test", &mut cmd);
}

#[test]
fn keys_test_passes() {
    run_keys_test(programs(), &[]);
}

#[test]
fn keys_test_passes_under_sanitizers() {
    run_keys_test(sanitized_programs(), SANITIZER_ENV);
}

/// driven_client_test: 20 caller-driven transports on one thread run 100 commands against
/// sshd, with no library thread.
fn run_driven_client_test(programs: &Programs, env: &[(&str, &str)]) {
    // Twenty logins at once: past sshd's default MaxStartups of 10 it drops some.
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["MaxStartups 100".into()],
        ..SshdOptions::default()
    });
    let mut cmd = Command::new(&programs.driven_client_test);
    cmd.arg("127.0.0.1")
        .arg(sshd.port.to_string())
        .arg(&sshd.user)
        .arg(sshd.user_key("ed25519"))
        .arg(sshd.known_hosts())
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    assert_checks_pass("driven_client_test", &mut cmd);
}

#[test]
fn one_thread_drives_twenty_transports_through_a_hundred_commands() {
    run_driven_client_test(programs(), &[]);
}

#[test]
fn the_caller_driven_client_passes_under_sanitizers() {
    run_driven_client_test(sanitized_programs(), SANITIZER_ENV);
}

#[test]
fn api_test_passes_against_openssh() {
    run_api_test(programs(), &[]);
}

#[test]
fn api_test_passes_under_sanitizers() {
    run_api_test(sanitized_programs(), SANITIZER_ENV);
}

// ---- sekura-ssh -------------------------------------------------------------------------

/// `sekura-ssh` for `user@127.0.0.1` on this server with `key` (if any), checking the host key
/// strictly against the server's known_hosts, in batch mode; `options` come first, so that
/// theirs win (the first value of an option counts, as in ssh); stdin is empty.
fn sekura_ssh(sshd: &Sshd, key: Option<&Path>, options: &[&str], command: &[&str]) -> Command {
    sekura_ssh_from(programs(), sshd, key, options, command)
}

/// [`sekura_ssh`] from the given build.
fn sekura_ssh_from(
    programs: &Programs,
    sshd: &Sshd,
    key: Option<&Path>,
    options: &[&str],
    command: &[&str],
) -> Command {
    let mut cmd = Command::new(&programs.sekura_ssh);
    cmd.args(options);
    if let Some(key) = key {
        cmd.arg("-i").arg(key);
    }
    cmd.args(["-F", "none", "-p", &sshd.port.to_string()])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            sshd.known_hosts().display()
        ))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg(format!("{}@127.0.0.1", sshd.user))
        .args(command)
        .stdin(Stdio::null())
        .env_remove("SSHPASS");
    cmd
}

/// sekura-ssh with the server's ed25519 user key.
fn keyed(sshd: &Sshd, options: &[&str], command: &[&str]) -> Command {
    sekura_ssh(sshd, Some(&sshd.user_key("ed25519")), options, command)
}

fn run(cmd: &mut Command) -> support::openssh::TimedOutput {
    let out = run_with_timeout(cmd, TIMEOUT);
    assert!(
        !out.timed_out,
        "sekura-ssh timed out; stderr:\n{}",
        out.stderr()
    );
    out
}

fn assert_fails(out: &support::openssh::TimedOutput, stderr_has: &str) {
    assert_eq!(
        out.status().code(),
        Some(255),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout(),
        out.stderr()
    );
    assert!(
        out.stderr().contains(stderr_has),
        "stderr lacks {stderr_has:?}:\n{}",
        out.stderr()
    );
}

#[test]
fn runs_a_command() {
    let sshd = Sshd::start();
    let out = run(&mut keyed(&sshd, &[], &["echo", "hello", "world"]));
    out.assert_success("sekura-ssh echo hello world");
    assert_eq!(out.stdout(), "hello world\n");
    assert_eq!(out.stderr(), "");
}

#[test]
fn exits_with_the_command_status() {
    let sshd = Sshd::start();
    let out = run(&mut keyed(&sshd, &[], &["exit 42"]));
    assert_eq!(out.status().code(), Some(42), "stderr:\n{}", out.stderr());
}

#[test]
fn a_command_killed_by_a_signal_gives_255() {
    let sshd = Sshd::start();
    let out = run(&mut keyed(&sshd, &[], &["kill -TERM $$"]));
    assert_eq!(out.status().code(), Some(255), "stderr:\n{}", out.stderr());
    assert_eq!(out.stdout(), "");
}

#[test]
fn copies_stdin_and_separates_stderr() {
    let sshd = Sshd::start();
    // 1 MiB that is not all one byte, through stdin and back.
    let input: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = sshd.dir.join("stdin.bin");
    std::fs::write(&path, &input).expect("write stdin file");
    let mut cmd = keyed(&sshd, &[], &["cat; echo done >&2"]);
    cmd.stdin(std::fs::File::open(&path).expect("open stdin file"));
    let out = run(&mut cmd);
    out.assert_success("sekura-ssh cat");
    assert!(
        out.output.stdout == input,
        "the output differs from the input"
    );
    assert_eq!(out.stderr(), "done\n");
}

#[test]
fn sekura_ssh_runs_under_sanitizers() {
    let sshd = Sshd::start();
    let path = sshd.dir.join("stdin.txt");
    std::fs::write(&path, "through stdin\n".repeat(10_000)).expect("write stdin file");
    let key = sshd.user_key("ed25519");
    let mut cmd = sekura_ssh_from(
        sanitized_programs(),
        &sshd,
        Some(&key),
        &[],
        &["cat; echo to-stderr >&2; exit 3"],
    );
    cmd.stdin(std::fs::File::open(&path).expect("open stdin file"))
        .envs(SANITIZER_ENV.iter().copied());
    let out = run(&mut cmd);
    assert_eq!(out.status().code(), Some(3), "stderr:\n{}", out.stderr());
    assert_eq!(out.stdout(), "through stdin\n".repeat(10_000));
    assert_eq!(out.stderr(), "to-stderr\n");
}

#[test]
fn stdin_left_open_does_not_keep_it_running() {
    let sshd = Sshd::start();
    // run_with_timeout keeps the child's stdin pipe open until the child exits.
    let mut cmd = keyed(&sshd, &[], &["echo", "hi"]);
    cmd.stdin(Stdio::piped());
    let out = run(&mut cmd);
    out.assert_success("sekura-ssh echo hi with stdin open");
    assert_eq!(out.stdout(), "hi\n");

    let mut cmd = keyed(&sshd, &["-n"], &["cat"]);
    cmd.stdin(Stdio::piped());
    let out = run(&mut cmd);
    out.assert_success("sekura-ssh -n cat");
    assert_eq!(out.stdout(), "");
}

#[test]
fn a_closed_stdout_ends_the_command() {
    let sshd = Sshd::start();
    let mut child = keyed(&sshd, &[], &["yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sekura-ssh");
    let mut first = [0u8; 4];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read the first bytes");
    assert_eq!(&first, b"y\ny\n");
    // The reader is gone: sekura-ssh must notice, close the channel and exit.
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sekura-ssh kept running after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    assert!(!stderr.contains("write"), "EPIPE is not reported: {stderr}");
}

#[test]
fn options_may_follow_the_host_and_words_are_joined() {
    let sshd = Sshd::start();
    let mut cmd = Command::new(&programs().sekura_ssh);
    cmd.arg("-i")
        .arg(sshd.user_key("ed25519"))
        .arg("-oUserKnownHostsFile=".to_owned() + &sshd.known_hosts().display().to_string())
        .arg(format!("{}@127.0.0.1", sshd.user))
        .args(["-p", &sshd.port.to_string(), "-o", "batchmode yes"])
        .args(["printf", "'%s|%s\\n'", "a", "b c"])
        .stdin(Stdio::null());
    let out = run(&mut cmd);
    out.assert_success("options after the host");
    assert_eq!(out.stdout(), "a|b\nc|\n");
}

#[test]
fn algorithm_options_reach_the_negotiation() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: vec!["Ciphers aes128-ctr".into(), "MACs hmac-sha2-256".into()],
        ..SshdOptions::default()
    });
    let out = run(&mut keyed(
        &sshd,
        &[
            "-o",
            "ciphers aes128-ctr,aes256-ctr",
            "-oMACs=hmac-sha2-512,hmac-sha2-256",
        ],
        &["echo", "ok"],
    ));
    out.assert_success("sekura-ssh with matching Ciphers and MACs");
    assert_eq!(out.stdout(), "ok\n");

    let out = run(&mut keyed(
        &sshd,
        &["-o", "Ciphers=aes256-gcm@openssh.com"],
        &["true"],
    ));
    assert_fails(&out, "sekura-ssh: ");

    let out = run(&mut keyed(
        &sshd,
        &["-o", "Ciphers=no-such-cipher"],
        &["true"],
    ));
    assert_fails(&out, "no-such-cipher");
}

#[test]
fn dash_c_compresses() {
    let sshd = Sshd::start();
    let out = run(&mut keyed(
        &sshd,
        &["-C"],
        &["head -c 200000 /dev/zero | tr '\\0' a"],
    ));
    out.assert_success("sekura-ssh -C");
    assert_eq!(out.stdout(), "a".repeat(200_000));
}

/// RekeyLimit and ServerAlive* as ssh_config spells them: a megabyte limit renews keys many
/// times during an 8 MiB transfer without changing a byte; bad values are refused.
#[test]
fn rekey_limit_and_server_alive_options() {
    let sshd = Sshd::start();
    let out = run(&mut keyed(
        &sshd,
        &[
            "-o",
            "RekeyLimit=1M 1h",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=2",
        ],
        &["head -c 8388608 /dev/zero | tr '\\0' b"],
    ));
    out.assert_success("sekura-ssh with RekeyLimit");
    assert_eq!(out.stdout(), "b".repeat(8 << 20));
    let out = run(&mut keyed(&sshd, &["-o", "RekeyLimit=lots"], &["true"]));
    assert_fails(&out, "lots");
    let out = run(&mut keyed(
        &sshd,
        &["-o", "ServerAliveInterval=-1"],
        &["true"],
    ));
    assert_fails(&out, "-1");
}

#[test]
fn bad_usage_exits_255() {
    let sshd = Sshd::start();
    let ssh = &programs().sekura_ssh;
    let out = run(Command::new(ssh).stdin(Stdio::null()));
    assert_fails(&out, "usage: sekura-ssh");
    let out = run(Command::new(ssh).args(["-Z", "host", "true"]));
    assert_fails(&out, "usage: sekura-ssh");
    let out = run(&mut keyed(&sshd, &["-o", "NoSuchOption=yes"], &["true"]));
    assert_fails(&out, "NoSuchOption");
    let out = run(&mut keyed(&sshd, &["-o", "BatchMode=maybe"], &["true"]));
    assert_fails(&out, "maybe");
    let out = run(&mut keyed(&sshd, &[], &[]));
    assert_fails(&out, "command is required");

    let out = run(Command::new(ssh).arg("-V"));
    out.assert_success("sekura-ssh -V");
    assert!(out
        .stderr()
        .contains(&format!("Sekura {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn connection_failure_is_one_line() {
    let port = support::free_port().to_string();
    let out = run(Command::new(&programs().sekura_ssh)
        .args(["-p", &port, "127.0.0.1", "true"])
        .stdin(Stdio::null()));
    assert_fails(&out, "sekura-ssh: ");
    assert_eq!(out.stderr().lines().count(), 1, "{}", out.stderr());
}

// ---- host keys --------------------------------------------------------------------------

/// A known_hosts file in the server's directory with `contents`.
fn known_hosts_file(sshd: &Sshd, name: &str, contents: &str) -> PathBuf {
    let path = sshd.dir.join(name);
    std::fs::write(&path, contents).expect("write known_hosts");
    path
}

fn with_known_hosts(sshd: &Sshd, file: &Path, strict: &str) -> Command {
    keyed(
        sshd,
        &[
            "-o",
            &format!("UserKnownHostsFile={}", file.display()),
            "-o",
            &format!("StrictHostKeyChecking={strict}"),
            "-o",
            "HostKeyAlgorithms=ssh-ed25519",
        ],
        &["echo", "in"],
    )
}

#[test]
fn unknown_host_keys_are_refused_unless_accepted() {
    let sshd = Sshd::start();
    let label = format!("[127.0.0.1]:{}", sshd.port);

    let empty = known_hosts_file(&sshd, "empty", "");
    let out = run(&mut with_known_hosts(&sshd, &empty, "yes"));
    assert_fails(&out, "Host key verification failed.");
    assert!(out
        .stderr()
        .contains(&format!("host key is known for {label}")));
    let out = run(&mut with_known_hosts(&sshd, &empty, "ask"));
    assert_fails(&out, "Host key verification failed.");
    assert!(out.stderr().contains("can't be established"));
    assert_eq!(std::fs::read_to_string(&empty).expect("read"), "");

    let out = run(&mut with_known_hosts(&sshd, &empty, "accept-new"));
    out.assert_success("accept-new with an unknown key");
    assert!(out
        .stderr()
        .contains(&format!("Permanently added '{label}'")));
    let recorded = std::fs::read_to_string(&empty).expect("read known_hosts");
    assert!(
        recorded.contains(&label),
        "known_hosts now lists the host: {recorded}"
    );
    let out = run(&mut with_known_hosts(&sshd, &empty, "yes"));
    out.assert_success("the recorded key matches");
    assert_eq!(out.stdout(), "in\n");
}

#[test]
fn a_changed_host_key_is_refused_or_allows_only_public_keys() {
    let sshd = Sshd::start();
    // The user's ed25519 key, listed as the host's: the same type with another key.
    let public = std::fs::read_to_string(sshd.user_key_pub("ed25519")).expect("read .pub");
    let fields: Vec<&str> = public.split_whitespace().collect();
    let line = format!("[127.0.0.1]:{} {} {}\n", sshd.port, fields[0], fields[1]);
    let wrong = known_hosts_file(&sshd, "wrong", &line);

    for strict in ["yes", "accept-new", "ask"] {
        let out = run(&mut with_known_hosts(&sshd, &wrong, strict));
        assert_fails(&out, "REMOTE HOST IDENTIFICATION HAS CHANGED");
        assert!(out.stderr().contains("Host key verification failed."));
    }
    let out = run(&mut with_known_hosts(&sshd, &wrong, "no"));
    out.assert_success("StrictHostKeyChecking=no with a changed key and a public key");
    assert!(out.stderr().contains("Password authentication is disabled"));
    assert_eq!(std::fs::read_to_string(&wrong).expect("read"), line);
}

// ---- authentication ---------------------------------------------------------------------

#[test]
fn refused_keys_give_ssh_s_permission_denied() {
    let sshd = Sshd::start();
    let out = run(&mut sekura_ssh(
        &sshd,
        Some(&sshd.unauthorized_key()),
        &[],
        &["true"],
    ));
    assert_fails(
        &out,
        &format!("{}@127.0.0.1: Permission denied (", sshd.user),
    );
    assert!(out.stderr().contains("publickey"));

    // An encrypted key cannot be used without someone to ask for its passphrase.
    let out = run(&mut sekura_ssh(
        &sshd,
        Some(&sshd.user_key("ed25519-enc")),
        &[],
        &["true"],
    ));
    assert_fails(&out, "Permission denied");
    assert!(out.stderr().contains("encrypted"), "{}", out.stderr());
}

#[test]
fn sshpass_gives_the_password_unless_batch_mode_or_disabled() {
    let sshd = Sshd::start_with(SshdOptions {
        password: Some("correct horse".into()),
        ..SshdOptions::default()
    });
    let (user, password) = sshd.password_user();
    let password_login = |options: &[&str]| {
        let mut all = vec!["-l", user.as_str(), "-o", "PubkeyAuthentication=no"];
        all.extend_from_slice(options);
        let mut cmd = sekura_ssh(&sshd, None, &all, &["id", "-un"]);
        cmd.env("SSHPASS", &password);
        run(&mut cmd)
    };
    let out = password_login(&["-o", "BatchMode=no"]);
    out.assert_success("password login with SSHPASS");
    assert_eq!(out.stdout(), format!("{user}\n"));

    let out = password_login(&["-o", "BatchMode=yes"]);
    assert_fails(&out, "Permission denied");
    let out = password_login(&["-o", "BatchMode=no", "-o", "PasswordAuthentication=no"]);
    assert_fails(&out, "Permission denied");
}

// ---- make demo --------------------------------------------------------------------------

#[test]
fn demo_script_runs() {
    let script = Path::new(make::MANIFEST_DIR).join("examples-c/demo.sh");
    let out = run(Command::new(script)
        .arg(&programs().sekura_ssh)
        .stdin(Stdio::null()));
    out.assert_success("examples-c/demo.sh");
    assert!(out.stdout().contains("exit status 42"), "{}", out.stdout());
}

/// sekura-keygen's keys are read by OpenSSH's ssh-keygen, with the fingerprint it printed.
#[test]
fn sekura_keygen_writes_keys_openssh_reads() {
    let dir = support::fresh_dir("sekura-keygen");
    for (kind, passphrase) in [("ed25519", ""), ("ecdsa", "pass phrase"), ("rsa", "")] {
        let key = dir.join(format!("id_{kind}"));
        let out = run(Command::new(&programs().sekura_keygen)
            .args(["-t", kind, "-N", passphrase, "-f"])
            .arg(&key));
        out.assert_success("sekura-keygen");
        let printed = out.stdout();
        let public = run(Command::new(SSH_KEYGEN)
            .args(["-y", "-P", passphrase, "-f"])
            .arg(&key));
        public.assert_success("ssh-keygen -y");
        let written = std::fs::read_to_string(key.with_extension("pub")).expect("key.pub");
        let body = |line: &str| {
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(body(&public.stdout()), body(&written), "{kind}");
        let listed = run(Command::new(SSH_KEYGEN)
            .arg("-l")
            .arg("-f")
            .arg(key.with_extension("pub")));
        let fingerprint = listed
            .stdout()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        assert!(
            printed.starts_with(&fingerprint),
            "{kind}: {printed} vs {fingerprint}"
        );
    }
}
