//! The events a real exchange reports, in memory: what a client learns as a server accepts
//! its session, answers its exec, sends output, EOF, the exit status and the close.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::super::server::{OpenResult, ServerEvent};
use super::events::Event;
use super::server_tests::{authenticated, transmit};
use super::Connection;
use crate::wire::Writer;

/// Delivers `from`'s queued bytes to `to` and returns the events `to` reports.
fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<Event> {
    let bytes = transmit(from);
    to.handle_bytes(&bytes).unwrap();
    std::iter::from_fn(|| to.poll_event()).collect()
}

#[test]
fn a_session_reports_each_step_once() {
    let (mut client, mut server) = authenticated();
    let _ = std::iter::from_fn(|| client.poll_event()).count();
    let _ = std::iter::from_fn(|| server.poll_event()).count();

    let ours = client.open_session().unwrap();
    assert_eq!(deliver(&mut client, &mut server), [Event::DecisionOwed]);
    let Some(ServerEvent::ChannelOpen { channel, .. }) = server.take_server_event() else {
        panic!("no decision for the session");
    };
    server
        .answer_channel_open(channel, OpenResult::Succeeded)
        .unwrap();
    assert_eq!(server.poll_event(), Some(Event::ChannelAccepted));
    assert_eq!(
        deliver(&mut server, &mut client),
        [Event::ChannelOpened(ours)]
    );

    let mut command = Writer::new();
    command.string("true");
    client
        .channel_request(ours, "exec", true, command.as_bytes())
        .unwrap();
    let events = deliver(&mut client, &mut server);
    assert_eq!(
        events,
        [Event::RequestReceived(channel), Event::DecisionOwed]
    );
    let _ = server.take_server_event();
    server.answer_channel_request(channel, true).unwrap();
    assert_eq!(
        deliver(&mut server, &mut client),
        [Event::RequestAnswered(ours)]
    );

    server.channel_send(channel, b"out", None).unwrap();
    server.channel_send(channel, b"more", None).unwrap();
    server.channel_send(channel, b"err", Some(1)).unwrap();
    let mut status = Writer::new();
    status.u32(0);
    server
        .channel_request(channel, "exit-status", false, status.as_bytes())
        .unwrap();
    server.channel_eof(channel).unwrap();
    server.channel_close(channel).unwrap();
    assert_eq!(
        deliver(&mut server, &mut client),
        [
            Event::DataReadable(ours),
            Event::Eof(ours),
            Event::Closed(ours),
            Event::ExitStatus(ours),
        ],
        "three data packets are one event; each kind comes once, in a fixed order"
    );
    assert_eq!(client.poll_event(), None);
}
