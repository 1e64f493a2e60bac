//! The server's legality table, driven without I/O: a client connection and a server
//! connection exchange bytes in memory, then the client sends messages a client must not
//! send, or must not send yet, and the server must end the connection naming them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::super::config::ConnectionConfig;
use super::super::msg;
use super::super::server::{AuthAnswer, AuthRequest, AuthResult, ServerConfig, ServerEvent};
use super::super::userauth::{AuthStatus, Method};
use super::Connection;
use crate::crypto::rng::OsRandom;
use crate::keys::{KeyType, PrivateKey};
use crate::wire::Writer;

/// What the connection queued to send, moved out through `poll_transmit`.
pub(super) fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _count = conn.poll_transmit(&mut bytes);
    bytes
}

fn pair() -> (Connection, Connection) {
    let host_key = PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).unwrap();
    let client = Connection::client(&ConnectionConfig::default(), Box::new(OsRandom));
    let config = ServerConfig {
        host_keys: vec![host_key],
        ..ServerConfig::default()
    };
    let server = Connection::server(
        std::sync::Arc::new(config),
        &ConnectionConfig::default(),
        Box::new(OsRandom),
    )
    .unwrap();
    (client, server)
}

/// Moves bytes both ways until neither side has anything to say; the server's password
/// decisions accept "secret" and refuse anything else.
fn pump(client: &mut Connection, server: &mut Connection) {
    pump_deciding(client, server, |request| match request {
        AuthRequest::Password(p) if p.as_str() == "secret" => AuthResult::Success,
        _ => AuthResult::Failed,
    });
}

/// [`pump`], with the server's authentication verdicts from `decide`.
fn pump_deciding(
    client: &mut Connection,
    server: &mut Connection,
    mut decide: impl FnMut(&AuthRequest) -> AuthResult,
) {
    for _ in 0..64 {
        let to_server = transmit(client);
        let to_client = transmit(server);
        if to_server.is_empty() && to_client.is_empty() {
            return;
        }
        let _ = server.handle_bytes(&to_server);
        while let Some(event) = server.take_server_event() {
            let ServerEvent::Auth { request, .. } = event else {
                panic!("unexpected event {event:?}");
            };
            let result = decide(&request);
            // Refusing the last allowed attempt ends the connection; that is an Err here.
            let _ = server.answer_auth(AuthAnswer::Verdict {
                result,
                allowed_methods: "publickey,password".into(),
            });
            let _ = server.handle_bytes(&[]);
        }
        let _ = client.handle_bytes(&to_client);
    }
    panic!("the connections never went quiet");
}

pub(super) fn established() -> (Connection, Connection) {
    let (mut client, mut server) = pair();
    pump(&mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, server)
}

pub(super) fn authenticated() -> (Connection, Connection) {
    let (mut client, mut server) = established();
    client.auth_password("u", "secret").unwrap();
    pump(&mut client, &mut server);
    assert!(server.is_authenticated() && client.is_authenticated());
    (client, server)
}

/// Sends `payload` from the client as it is, whatever the client's own rules say.
fn inject(client: &mut Connection, server: &mut Connection, payload: &[u8]) {
    client.write_now(payload);
    let bytes = transmit(client);
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
    assert!(!transmit(&mut server).is_empty(), "a DISCONNECT is queued");
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

#[test]
fn requests_flooding_a_stalled_key_exchange_end_the_connection() {
    let (mut client, mut server) = authenticated();
    server.start_rekey().unwrap();
    // The client never sees our KEXINIT and keeps asking for answers that must wait.
    let mut w = Writer::message(msg::GLOBAL_REQUEST);
    w.string("keepalive@openssh.com").bool(true);
    let request = w.into_bytes();
    let mut sent = 0;
    while server.error().is_none() && sent < 1_000_000 {
        for _ in 0..1000 {
            client.write_now(&request);
        }
        sent += 1000;
        let bytes = transmit(&mut client);
        let _ = server.handle_bytes(&bytes);
    }
    let e = server.error().expect("the flood must end the connection");
    assert!(
        e.message().contains("without completing the key exchange"),
        "{e}"
    );
    assert!(sent <= 70_000, "{sent} requests were buffered for");
}

/// Go CVE-2024-45337: the client queries key B (which the application likes) and then signs
/// with key A. The application is told which key was proved, and the connection records A,
/// the key that authenticated, never B.
#[test]
fn a_queried_key_is_not_mistaken_for_the_key_that_signed() {
    let key_a = PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).unwrap();
    let key_b = PrivateKey::generate(KeyType::EcdsaP256, None, &mut OsRandom).unwrap();
    let (public_a, public_b) = (key_a.public_key(), key_b.public_key());
    for accept_a in [false, true] {
        let (mut client, mut server) = established();
        let mut query = Writer::message(msg::USERAUTH_REQUEST);
        query
            .string("u")
            .string("ssh-connection")
            .string("publickey")
            .bool(false)
            .string("ecdsa-sha2-nistp256")
            .string(public_b.as_blob());
        client.auth_none("u").unwrap();
        pump(&mut client, &mut server);
        client.write_now(query.as_bytes());
        // Our client never sends a bare query; let it take the PK_OK that answers this one
        // as it takes an unwanted password-change request: as a refusal.
        client.auth.status = AuthStatus::Pending(Method::Password);
        let mut asked = Vec::new();
        let mut decide = |request: &AuthRequest| {
            let AuthRequest::PublicKey {
                key,
                signature_verified,
            } = request
            else {
                return AuthResult::Failed;
            };
            asked.push((key.fingerprint_sha256(), *signature_verified));
            let liked = **key == public_b || (accept_a && **key == public_a);
            if liked {
                AuthResult::Success
            } else {
                AuthResult::Failed
            }
        };
        pump_deciding(&mut client, &mut server, &mut decide);
        assert!(!server.is_authenticated(), "a query authenticates nobody");
        client.auth_publickey("u", &key_a).unwrap();
        pump_deciding(&mut client, &mut server, &mut decide);
        assert_eq!(
            asked,
            [
                (public_b.fingerprint_sha256(), false),
                (public_a.fingerprint_sha256(), true)
            ]
        );
        assert_eq!(server.is_authenticated(), accept_a);
        let expected = accept_a.then_some(&public_a);
        assert_eq!(server.authenticated_key(), expected);
    }
}

#[test]
fn a_corrupted_packet_is_answered_with_mac_error() {
    let (mut client, mut server) = established();
    client.send_ignore(16).unwrap();
    let mut bytes = transmit(&mut client);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(server.handle_bytes(&bytes).is_err());
    let _ = client.handle_bytes(&transmit(&mut server));
    let e = client.error().expect("the server's DISCONNECT");
    assert!(e.message().contains("(reason 5)"), "{e}");
}

/// Random messages of every number, before and after authentication: the server handles
/// each or ends the connection with an error, and never panics.
#[test]
fn random_messages_never_panic_the_server() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let (mut client, mut server) = if round % 2 == 0 {
            established()
        } else {
            authenticated()
        };
        if server.is_authenticated() {
            // A session channel (ours 0, theirs 0) for channel messages to aim at.
            let mut open = Writer::message(msg::CHANNEL_OPEN);
            open.string("session").u32(0).u32(1 << 20).u32(32768);
            inject(&mut client, &mut server, open.as_bytes());
            answer_everything(&mut server);
        }
        for _ in 0..8 {
            let number = match next() % 2 {
                0 => (next() % 128) as u8,
                _ => msg::CHANNEL_OPEN + (next() % 11) as u8,
            };
            let mut w = Writer::message(number);
            if number > msg::CHANNEL_OPEN && next() % 4 != 0 {
                w.u32(0);
            }
            for _ in 0..next() % 6 {
                match next() % 3 {
                    0 => {
                        w.u32((next() % 4) as u32);
                    }
                    1 => {
                        let len = (next() % 24) as usize;
                        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                        w.string(bytes);
                    }
                    _ => {
                        w.bool(next() % 2 == 0);
                    }
                }
            }
            inject(&mut client, &mut server, w.as_bytes());
            answer_everything(&mut server);
            if server.error().is_some() {
                break;
            }
        }
    }
}

/// Answers every pending decision: authentication refused, everything else accepted.
fn answer_everything(server: &mut Connection) {
    while let Some(event) = server.take_server_event() {
        let _ = match event {
            ServerEvent::Auth { .. } => server.answer_auth(AuthAnswer::Verdict {
                result: AuthResult::Failed,
                allowed_methods: "password".into(),
            }),
            ServerEvent::ChannelOpen { channel, .. } => {
                server.answer_channel_open(channel, super::super::server::OpenResult::Succeeded)
            }
            ServerEvent::ChannelRequest { channel, .. } => {
                server.answer_channel_request(channel, true)
            }
            ServerEvent::Global(_) => server.answer_global_request(None),
        };
        let _ = server.handle_bytes(&[]);
    }
}

#[test]
fn only_the_first_none_is_free() {
    let (mut client, mut server) = established();
    server.set_max_auth_tries(3).unwrap();
    for attempt in 1..=4 {
        client.auth_none("u").unwrap();
        pump(&mut client, &mut server);
        assert_eq!(server.error().is_some(), attempt == 4, "attempt {attempt}");
    }
}

#[test]
fn refused_key_queries_count_as_attempts() {
    let (mut client, mut server) = established();
    server.set_max_auth_tries(2).unwrap();
    client.auth_none("u").unwrap();
    pump(&mut client, &mut server);
    for attempt in 1..=2 {
        let key = PrivateKey::generate(KeyType::Ed25519, None, &mut OsRandom).unwrap();
        let mut query = Writer::message(msg::USERAUTH_REQUEST);
        query
            .string("u")
            .string("ssh-connection")
            .string("publickey")
            .bool(false)
            .string("ssh-ed25519")
            .string(key.public_key().as_blob());
        inject(&mut client, &mut server, query.as_bytes());
        answer_everything(&mut server);
        assert_eq!(server.error().is_some(), attempt == 2, "query {attempt}");
    }
}

#[test]
fn no_more_sessions_is_answered_when_asked() {
    let (mut client, mut server) = authenticated();
    let id = client
        .global_request("no-more-sessions@openssh.com", true, &[])
        .unwrap()
        .unwrap();
    pump(&mut client, &mut server);
    assert_eq!(client.take_global_reply(id), Some(Some(Vec::new())));
    assert!(server.error().is_none());
}

/// During the initial (strict) key exchange the server takes nothing but the exchange's next
/// message: every other number ends the connection, IGNORE and DEBUG included.
#[test]
fn every_other_message_during_the_initial_key_exchange_is_fatal() {
    for number in 0..=255u8 {
        if matches!(number, msg::KEXINIT | msg::KEX_ECDH_INIT) {
            continue;
        }
        let (mut client, mut server) = pair();
        // Both KEXINITs cross; the client's ephemeral value is held back.
        let hello = transmit(&mut client);
        server.handle_bytes(&hello).unwrap();
        client.handle_bytes(&transmit(&mut server)).unwrap();
        let _held_back = transmit(&mut client);
        inject(&mut client, &mut server, &message(number));
        assert!(
            server.error().is_some(),
            "message {number} accepted during the key exchange"
        );
        assert!(!server.is_established());
    }
}

#[test]
fn debug_output_of_auth_requests_leaves_secrets_out() {
    let password = AuthRequest::Password(zeroize::Zeroizing::new("hunter2".into()));
    let answers = AuthRequest::InfoResponse(zeroize::Zeroizing::new(vec!["s3cret".into()]));
    let shown = format!("{password:?} {answers:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn a_confirmation_for_a_channel_the_server_is_deciding_on_is_fatal() {
    let (mut client, mut server) = authenticated();
    client.open_session().unwrap();
    let bytes = transmit(&mut client);
    server.handle_bytes(&bytes).unwrap();
    let Some(ServerEvent::ChannelOpen { channel, .. }) = server.take_server_event() else {
        panic!("the server was not asked about the channel");
    };
    let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
    w.u32(channel).u32(9).u32(65536).u32(32768);
    // Nothing waits for a channel open: the forgery is handled, and fatal, at once.
    inject(&mut client, &mut server, w.as_bytes());
    let e = server.error().expect("a forged confirmation is fatal");
    assert!(e.message().contains("not opening"), "{e}");
}

/// Moves bytes both ways until both are quiet, the server accepting every global request.
fn exchange_accepting_globals(client: &mut Connection, server: &mut Connection) {
    for _ in 0..16 {
        let to_server = transmit(client);
        let to_client = transmit(server);
        if to_server.is_empty() && to_client.is_empty() {
            return;
        }
        server.handle_bytes(&to_server).unwrap();
        while let Some(event) = server.take_server_event() {
            let ServerEvent::Global(_) = event else {
                panic!("unexpected event {event:?}");
            };
            server.answer_global_request(Some(Vec::new())).unwrap();
            server.handle_bytes(&[]).unwrap();
        }
        client.handle_bytes(&to_client).unwrap();
    }
    panic!("the connections never went quiet");
}

#[test]
fn a_client_accepts_forwarded_tcpip_channels_only_for_its_forwards() {
    let (mut client, mut server) = authenticated();
    let mut extra = Writer::new();
    extra
        .string("127.0.0.1")
        .u32(7)
        .string("10.0.0.1")
        .u32(5000);
    let unasked = server
        .open_channel_of("forwarded-tcpip", extra.as_bytes())
        .unwrap();
    exchange_accepting_globals(&mut client, &mut server);
    assert!(matches!(
        server.channel(unasked).unwrap().state,
        super::super::channel::ChannelState::OpenFailed { .. }
    ));
    assert!(client.take_accepted_channel().is_none());

    let id = client.request_port_forward("127.0.0.1", 7).unwrap();
    exchange_accepting_globals(&mut client, &mut server);
    assert_eq!(client.take_global_reply(id), Some(Some(Vec::new())));
    let asked = server
        .open_channel_of("forwarded-tcpip", extra.as_bytes())
        .unwrap();
    exchange_accepting_globals(&mut client, &mut server);
    assert_eq!(
        server.channel(asked).unwrap().state,
        super::super::channel::ChannelState::Open
    );
    assert!(client.take_accepted_channel().is_some());

    // Other kinds stay refused.
    let x11 = server.open_channel_of("x11", &[]).unwrap();
    exchange_accepting_globals(&mut client, &mut server);
    assert!(matches!(
        server.channel(x11).unwrap().state,
        super::super::channel::ChannelState::OpenFailed { .. }
    ));
    assert!(client.error().is_none() && server.error().is_none());
}

#[test]
fn a_call_for_the_other_role_is_an_error() {
    let (mut client, mut server) = established();
    let server_only = [
        client.set_max_auth_tries(3),
        client.set_banner(None),
        client.set_login_deadline(None),
    ];
    let client_only = [
        server.auth_none("u"),
        server.auth_password("u", "p"),
        server.auth_keyboard_interactive("u"),
        server.request_port_forward("", 0).map(drop),
    ];
    for e in server_only.into_iter().chain(client_only) {
        let e = e.expect_err("refused for this role");
        assert_eq!(e.kind(), crate::ErrorKind::State, "{e}");
        assert!(e.message().contains("connection"), "{e}");
    }
    assert!(transmit(&mut server).is_empty(), "the server sent nothing");
}
