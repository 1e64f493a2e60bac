//! A decision holds back only what depends on it, driven without I/O: a client and a server
//! connection exchange bytes in memory while the server's answers are withheld.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::super::channel::{ChannelId, Stream};
use super::super::msg;
use super::super::server::{AuthAnswer, AuthRequest, AuthResult, OpenResult, ServerEvent};
use super::server_tests::{authenticated, established, transmit};
use super::Connection;
use crate::wire::Writer;

/// Delivers what the client queued to the server.
fn to_server(client: &mut Connection, server: &mut Connection) {
    let bytes = transmit(client);
    server.handle_bytes(&bytes).unwrap();
}

/// Delivers what the server queued to the client.
fn to_client(server: &mut Connection, client: &mut Connection) {
    let bytes = transmit(server);
    client.handle_bytes(&bytes).unwrap();
}

/// A session the client opened and the server accepted: (the client's id, the server's).
fn session(client: &mut Connection, server: &mut Connection) -> (ChannelId, ChannelId) {
    let ours = client.open_session().unwrap();
    to_server(client, server);
    let Some(ServerEvent::ChannelOpen { channel, .. }) = server.take_server_event() else {
        panic!("the server was not asked about the session");
    };
    server
        .answer_channel_open(channel, OpenResult::Succeeded)
        .unwrap();
    to_client(server, client);
    (ours, channel)
}

/// Everything readable on the server's channel `id` now.
fn read_all(server: &mut Connection, id: ChannelId) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = server.channel_read(id, &mut buf, Stream::Stdout).unwrap();
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&buf[..n]);
    }
}

fn exec(client: &mut Connection, id: ChannelId, command: &str) {
    let mut body = Writer::new();
    body.string(command);
    client
        .channel_request(id, "exec", true, body.as_bytes())
        .unwrap();
}

/// Sends all of `data` on the client's channel `id` (the window must allow it).
fn send_all(client: &mut Connection, id: ChannelId, mut data: &[u8]) {
    while !data.is_empty() {
        let n = client.channel_send(id, data, None).unwrap();
        assert!(n > 0, "the window closed");
        data = &data[n..];
    }
}

#[test]
fn a_request_owed_on_one_channel_holds_back_that_channel_only() {
    let (mut client, mut server) = authenticated();
    let (a, server_a) = session(&mut client, &mut server);
    let (b, server_b) = session(&mut client, &mut server);
    exec(&mut client, a, "slow to decide");
    send_all(&mut client, a, b"stdin of a");
    send_all(&mut client, b, b"data of b");
    to_server(&mut client, &mut server);

    let Some(ServerEvent::ChannelRequest { channel, .. }) = server.take_server_event() else {
        panic!("the server was not asked about the exec");
    };
    assert_eq!(channel, server_a);
    assert_eq!(
        read_all(&mut server, server_b),
        b"data of b",
        "other channels go on"
    );
    assert_eq!(
        read_all(&mut server, server_a),
        b"",
        "a's data waits for its exec"
    );

    server.answer_channel_request(server_a, true).unwrap();
    assert_eq!(read_all(&mut server, server_a), b"stdin of a");
    to_client(&mut server, &mut client);
    assert_eq!(client.channel_take_reply(a), Some(true));
}

#[test]
fn requests_on_one_channel_are_decided_one_at_a_time_in_order() {
    let (mut client, mut server) = authenticated();
    let (a, server_a) = session(&mut client, &mut server);
    let mut env = Writer::new();
    env.string("LANG").string("C");
    client
        .channel_request(a, "env", true, env.as_bytes())
        .unwrap();
    exec(&mut client, a, "true");
    to_server(&mut client, &mut server);

    let first = server.take_server_event();
    assert!(
        matches!(first, Some(ServerEvent::ChannelRequest { .. })),
        "{first:?}"
    );
    assert!(server.take_server_event().is_none(), "exec waits for env");
    server.answer_channel_request(server_a, false).unwrap();
    let second = server.take_server_event();
    assert!(
        matches!(second, Some(ServerEvent::ChannelRequest { .. })),
        "{second:?}"
    );
    server.answer_channel_request(server_a, true).unwrap();
    to_client(&mut server, &mut client);
    assert_eq!(client.channel_take_reply(a), Some(false));
    assert_eq!(client.channel_take_reply(a), Some(true));
}

#[test]
fn a_second_authentication_attempt_waits_for_the_first_verdict() {
    let (mut client, mut server) = established();
    for password in ["wrong", "secret"] {
        let mut w = Writer::message(msg::USERAUTH_REQUEST);
        w.string("u")
            .string("ssh-connection")
            .string("password")
            .bool(false)
            .string(password);
        client.write_now(w.as_bytes());
    }
    to_server(&mut client, &mut server);
    let password_of = |event: Option<ServerEvent>| match event {
        Some(ServerEvent::Auth {
            request: AuthRequest::Password(p),
            ..
        }) => p.to_string(),
        other => panic!("expected a password attempt, got {other:?}"),
    };
    assert_eq!(password_of(server.take_server_event()), "wrong");
    assert!(
        server.take_server_event().is_none(),
        "one attempt at a time"
    );
    let refuse = AuthAnswer::Verdict {
        result: AuthResult::Failed,
        allowed_methods: "password".into(),
    };
    server.answer_auth(refuse).unwrap();
    assert_eq!(password_of(server.take_server_event()), "secret");
    let accept = AuthAnswer::Verdict {
        result: AuthResult::Success,
        allowed_methods: String::new(),
    };
    server.answer_auth(accept).unwrap();
    assert!(server.is_authenticated());
}

#[test]
fn input_stops_while_too_much_waits_and_goes_on_after_the_answer() {
    let (mut client, mut server) = authenticated();
    let (a, server_a) = session(&mut client, &mut server);
    let (b, server_b) = session(&mut client, &mut server);
    exec(&mut client, a, "slow to decide");
    let stdin: Vec<u8> = (0..1536 * 1024).map(|i| (i % 251) as u8).collect();
    send_all(&mut client, a, &stdin);
    send_all(&mut client, b, b"after the flood");
    to_server(&mut client, &mut server);

    assert!(server.input_stalled(), "what waits is bounded");
    assert_eq!(
        read_all(&mut server, server_b),
        b"",
        "input behind the limit is not taken in yet"
    );
    let Some(ServerEvent::ChannelRequest { .. }) = server.take_server_event() else {
        panic!("the server was not asked about the exec");
    };
    server.answer_channel_request(server_a, true).unwrap();
    assert!(!server.input_stalled());
    server.handle_bytes(&[]).unwrap();
    let received = read_all(&mut server, server_a);
    assert_eq!(received.len(), stdin.len());
    assert!(received == stdin, "a's data arrived whole and in order");
    assert_eq!(read_all(&mut server, server_b), b"after the flood");
}
