//! The log callback: milestones, packet names and hexdumps arrive under the transport's name,
//! and a password never appears in any message. One test per file: the sink is global.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sekura::keys::PrivateKey;
use sekura::log::{self, Level};
use support::Sshd;

#[test]
fn log_callback_gets_milestones_and_hexdumps_but_no_secrets() {
    const PASSWORD: &str = "hunter2-do-not-log";
    let records = Arc::new(Mutex::new(Vec::<(Level, String, String)>::new()));
    let sink = Arc::clone(&records);
    log::set_sink(
        Level::Trace,
        Some(Arc::new(move |level, name, message| {
            sink.lock()
                .unwrap()
                .push((level, name.to_owned(), message.to_owned()));
        })),
    );
    let sshd = Sshd::start();
    let t = support::driven::connect_on_driver(sshd.port, Duration::from_secs(10));
    t.set_log_name("test.host1");
    t.set_hexdump(true);
    t.start_client().unwrap();
    assert!(t.auth_password(&sshd.user, PASSWORD).is_err());
    let key = PrivateKey::from_file(&sshd.user_key("ed25519"), None).unwrap();
    t.auth_publickey(&sshd.user, &key).unwrap();
    t.close();
    log::set_sink(Level::Error, None);

    let records = records.lock().unwrap();
    let has = |level: Level, text: &str| {
        records
            .iter()
            .any(|(l, n, m)| *l == level && n == "test.host1" && m.contains(text))
    };
    assert!(has(Level::Info, "server version: SSH-2.0-OpenSSH"));
    assert!(has(Level::Info, "key exchange done: kex "));
    assert!(has(Level::Info, "authentication refused"));
    assert!(has(Level::Info, &format!("authenticated as {}", sshd.user)));
    assert!(has(Level::Debug, "sent USERAUTH_REQUEST"));
    assert!(has(Level::Debug, "received NEWKEYS"));
    assert!(has(Level::Trace, "received KEXINIT:\n  0000  14 "));
    assert!(has(Level::Trace, "contents not shown"));
    let leaked: Vec<_> = records
        .iter()
        .filter(|(_, _, m)| m.contains(PASSWORD) || m.contains(&hex(PASSWORD)))
        .collect();
    assert!(leaked.is_empty(), "the password was logged: {leaked:?}");
}

/// The password as a hexdump would show its first bytes.
fn hex(s: &str) -> String {
    s.bytes()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
