//! The server's legality table, driven without I/O: a client connection and a server
//! connection exchange bytes in memory, then the client sends messages a client must not
//! send, or must not send yet, and the server must end the connection naming them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::super::kexinit::Preferences;
use super::super::msg;
use super::super::server::{AuthAnswer, AuthRequest, AuthResult, ServerEvent};
use super::Connection;
use crate::crypto::rng::OsRandom;
use crate::keys::{KeyType, PrivateKey};
use crate::wire::Writer;

fn pair() -> (Connection, Connection) {
    let host_key = PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).unwrap();
    let client = Connection::client(Preferences::default(), Box::new(OsRandom));
    let server = Connection::server(
        Preferences::default(),
        vec![host_key],
        Vec::new(),
        Box::new(OsRandom),
    )
    .unwrap();
    (client, server)
}

/// Moves bytes both ways until neither side has anything to say; the server's password
/// decisions accept "secret" and refuse anything else.
fn pump(client: &mut Connection, server: &mut Connection) {
    for _ in 0..64 {
        let to_server = client.take_transmit();
        let to_client = server.take_transmit();
        if to_server.is_empty() && to_client.is_empty() {
            return;
        }
        let _ = server.handle_bytes(&to_server);
        while let Some(event) = server.take_server_event() {
            let verdict = match event {
                ServerEvent::Auth {
                    request: AuthRequest::Password(p),
                    ..
                } if p.as_str() == "secret" => AuthResult::Success,
                _ => AuthResult::Failed,
            };
            server
                .answer_auth(AuthAnswer::Verdict {
                    result: verdict,
                    allowed_methods: "password".into(),
                })
                .unwrap();
            let _ = server.handle_bytes(&[]);
        }
        let _ = client.handle_bytes(&to_client);
    }
    panic!("the connections never went quiet");
}

fn established() -> (Connection, Connection) {
    let (mut client, mut server) = pair();
    pump(&mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, server)
}

fn authenticated() -> (Connection, Connection) {
    let (mut client, mut server) = established();
    client.auth_password("u", "secret").unwrap();
    pump(&mut client, &mut server);
    assert!(server.is_authenticated() && client.is_authenticated());
    (client, server)
}

/// Sends `payload` from the client as it is, whatever the client's own rules say.
fn inject(client: &mut Connection, server: &mut Connection, payload: &[u8]) {
    client.write_now(payload);
    let bytes = client.take_transmit();
    let _ = server.handle_bytes(&bytes);
}

fn message(number: u8) -> Vec<u8> {
    let mut w = Writer::message(number);
    w.u32(0).u32(0).u32(0).u32(0);
    w.into_bytes()
}

#[test]
fn nothing_past_userauth_before_authentication() {
    for number in 50..=127u8 {
        if matches!(number, msg::USERAUTH_REQUEST) {
            continue;
        }
        let (mut client, mut server) = established();
        client.auth_none("u").unwrap();
        pump(&mut client, &mut server);
        inject(&mut client, &mut server, &message(number));
        let e = server
            .error()
            .unwrap_or_else(|| panic!("message {number} accepted before authentication"));
        assert!(
            e.message().contains(&format!("message {number} ")),
            "{number}: {e}"
        );
        assert!(!server.is_authenticated());
    }
}

#[test]
fn userauth_success_from_a_client_is_fatal_and_authenticates_nobody() {
    let (mut client, mut server) = established();
    inject(&mut client, &mut server, &[msg::USERAUTH_SUCCESS]);
    assert!(server.error().is_some());
    assert!(!server.is_authenticated());
    assert!(!server.take_transmit().is_empty(), "a DISCONNECT is queued");
}

#[test]
fn after_authentication_server_only_messages_stay_fatal() {
    for number in [
        msg::SERVICE_ACCEPT,
        msg::USERAUTH_FAILURE,
        msg::USERAUTH_SUCCESS,
        msg::USERAUTH_BANNER,
        msg::USERAUTH_60,
        msg::CHANNEL_OPEN_CONFIRMATION,
        msg::CHANNEL_OPEN_FAILURE,
        msg::REQUEST_SUCCESS,
        msg::REQUEST_FAILURE,
    ] {
        let (mut client, mut server) = authenticated();
        inject(&mut client, &mut server, &message(number));
        assert!(
            server.error().is_some(),
            "message {number} accepted from a client"
        );
    }
}

#[test]
fn a_userauth_request_after_success_is_ignored() {
    let (mut client, mut server) = authenticated();
    let mut w = Writer::message(msg::USERAUTH_REQUEST);
    w.string("other").string("ssh-connection").string("none");
    inject(&mut client, &mut server, w.as_bytes());
    assert!(server.error().is_none());
    assert!(server.take_server_event().is_none(), "nobody is asked");
    assert_eq!(server.username(), "u");
}

#[test]
fn kex_messages_out_of_sequence_are_fatal() {
    for number in [
        msg::NEWKEYS,
        msg::KEX_ECDH_INIT,
        msg::KEX_ECDH_REPLY,
        msg::KEX_DH_GEX_INIT,
        msg::KEX_DH_GEX_REQUEST,
    ] {
        let (mut client, mut server) = authenticated();
        inject(&mut client, &mut server, &message(number));
        assert!(server.error().is_some(), "kex message {number} accepted");
    }
}
