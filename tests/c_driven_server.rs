//! tests/c/driven_server_test.c: a Sekura server in C on one thread, every connection a
//! caller-driven transport of one poll(2) loop. Twelve OpenSSH `ssh` clients log in to it at
//! once and run a command each; the program checks that every server callback ran on the
//! loop's thread and that the process never had a second thread.

mod support;

#[path = "c/make.rs"]
mod make;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::program::{self, keygen, write_known_hosts, TIMEOUT};

const CLIENTS: u32 = 12;

#[test]
fn one_thread_serves_openssh_clients_with_callbacks_on_its_loop() {
    let program = make::build_program("c-driven-server", "tests/driven_server_test");
    let dir = support::fresh_dir("c-driven-server");
    keygen(&dir.join("host_key"));
    keygen(&dir.join("user_key"));
    let mut server = Command::new(program)
        .arg(dir.join("host_key"))
        .arg(dir.join("user_key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn driven_server_test");
    let mut stdout = BufReader::new(server.stdout.take().expect("piped stdout"));
    // Check lines come first, then the port.
    let mut early = String::new();
    let port: u16 = loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read the port");
        assert!(n > 0, "driven_server_test ended before its port:\n{early}");
        if let Some(port) = line.strip_prefix("port ") {
            break port.trim().parse().expect("a port number");
        }
        early.push_str(&line);
    };
    write_known_hosts(&dir, port);

    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let mut cmd = program::ssh_key(port, "someone", &dir);
            cmd.arg(format!("exit {i}"));
            std::thread::spawn(move || program::run_ssh(&mut cmd))
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let out = client.join().expect("ssh thread");
        assert_eq!(
            out.status().code(),
            Some(i32::try_from(i).expect("small")),
            "ssh {i}; stderr:\n{}",
            out.stderr()
        );
        assert_eq!(out.stdout(), format!("ran: exit {i}\n"));
    }

    drop(server.stdin.take());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = server.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = server.kill();
            let _ = server.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut report = String::new();
    stdout.read_to_string(&mut report).expect("read the report");
    let mut stderr = String::new();
    let _ = server
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr);
    report.insert_str(0, &early);
    let failed: Vec<&str> = report.lines().filter(|l| l.starts_with("not ok")).collect();
    assert!(
        status.is_some_and(|s| s.success()) && failed.is_empty(),
        "driven_server_test: {status:?}\nfailed checks:\n{}\nstderr:\n{stderr}",
        failed.join("\n")
    );
    assert!(
        report.contains(&format!("# served {CLIENTS} sessions")),
        "{report}"
    );
}
