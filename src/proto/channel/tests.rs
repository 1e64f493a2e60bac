#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use super::*;
use crate::proto::msg;
use crate::wire::Writer;

fn open_channel() -> (Channels, ChannelId) {
    let mut chans = Channels::default();
    let (id, _) = chans.open("session", &[]);
    chans.retain(id);
    let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
    w.u32(id).u32(7).u32(1000).u32(500);
    chans.handle(w.as_bytes()).unwrap();
    (chans, id)
}

fn data(id: ChannelId, bytes: &[u8]) -> Vec<u8> {
    let mut w = Writer::message(msg::CHANNEL_DATA);
    w.u32(id).string(bytes);
    w.into_bytes()
}

#[test]
fn window_is_enforced_and_reopened_on_read() {
    let (mut chans, id) = open_channel();
    let chunk = vec![1u8; MAX_PACKET as usize];
    for _ in 0..WINDOW_SIZE / MAX_PACKET {
        chans.handle(&data(id, &chunk)).unwrap();
    }
    assert!(
        chans.handle(&data(id, b"x")).is_err(),
        "data past the window must end the connection"
    );
    let c = chans.get_mut(id).unwrap();
    let mut out = vec![0u8; WINDOW_SIZE as usize / 2];
    assert_eq!(c.stdout.read(&mut out), out.len());
    let adjust = c
        .on_read(out.len(), Stream::Stdout)
        .expect("window adjust due");
    assert_eq!(&adjust[1..5], &7u32.to_be_bytes());
    assert!(chans.handle(&data(id, b"x")).is_ok());
}

#[test]
fn each_channel_keeps_the_limits_it_opened_with() {
    let mut chans = Channels::default();
    chans.set_limits(ChannelLimits::new(8192, 2048));
    let (small, open) = chans.open("session", &[]);
    let mut r = crate::wire::Reader::new(&open);
    r.u8("number").unwrap();
    r.string("type").unwrap();
    r.u32("sender").unwrap();
    assert_eq!(
        (r.u32("window").unwrap(), r.u32("packet").unwrap()),
        (8192, 2048)
    );
    chans.set_limits(ChannelLimits::default());
    let (large, _) = chans.open("session", &[]);
    for id in [small, large] {
        let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
        w.u32(id).u32(id + 10).u32(1000).u32(500);
        chans.handle(w.as_bytes()).unwrap();
    }
    let e = chans.handle(&data(small, &[0; 2049])).unwrap_err();
    assert!(e.message().contains("maximum packet size 2048"), "{e}");
    assert!(chans.handle(&data(large, &[0; 2049])).is_ok());
    // The window never goes below one packet, the packet never below 1 KiB.
    assert_eq!(ChannelLimits::new(10, 10), ChannelLimits::new(1024, 1024));
    // However large a packet is asked for, the data with its header (13 bytes), the
    // largest padding and a MAC fits the packet layer's limit.
    let largest = ChannelLimits::new(u32::MAX, u32::MAX).max_packet as usize;
    assert!(largest + 13 + 255 + 64 <= crate::proto::MAX_PACKET_LEN);
}

#[test]
fn unread_stderr_does_not_stall_stdout() {
    let (mut chans, id) = open_channel();
    let chunk = vec![1u8; MAX_PACKET as usize];
    let mut adjusts = 0;
    for _ in 0..WINDOW_SIZE / MAX_PACKET {
        let mut w = Writer::message(msg::CHANNEL_EXTENDED_DATA);
        w.u32(id).u32(1).string(&chunk);
        adjusts += chans.handle(w.as_bytes()).unwrap().len();
    }
    assert_eq!(adjusts, 2, "a window of unread stderr re-opens the window");
    assert!(
        chans.handle(&data(id, &chunk)).is_ok(),
        "stdout still flows"
    );
    let c = chans.get_mut(id).unwrap();
    let mut out = vec![0u8; WINDOW_SIZE as usize];
    assert_eq!(c.stderr.read(&mut out), out.len());
    assert!(
        c.on_read(out.len(), Stream::Stderr).is_none(),
        "prepaid stderr is not credited twice"
    );
}

#[test]
fn window_adjust_overflow_and_zero_max_packet_are_refused() {
    let (mut chans, id) = open_channel();
    let mut w = Writer::message(msg::CHANNEL_WINDOW_ADJUST);
    w.u32(id).u32(u32::MAX);
    assert!(chans.handle(w.as_bytes()).is_err());
    let mut chans = Channels::default();
    let (id, _) = chans.open("session", &[]);
    let mut w = Writer::message(msg::CHANNEL_OPEN_CONFIRMATION);
    w.u32(id).u32(7).u32(1000).u32(0);
    assert!(chans.handle(w.as_bytes()).is_err());
}

#[test]
fn exit_signal_and_close_reply() {
    let (mut chans, id) = open_channel();
    let mut w = Writer::message(msg::CHANNEL_REQUEST);
    w.u32(id)
        .string("exit-signal")
        .bool(false)
        .string("KILL")
        .bool(false)
        .string("")
        .string("");
    assert!(chans.handle(w.as_bytes()).unwrap().is_empty());
    let mut w = Writer::message(msg::CHANNEL_CLOSE);
    w.u32(id);
    let replies = chans.handle(w.as_bytes()).unwrap();
    assert_eq!(replies.len(), 1);
    let c = chans.get(id).unwrap();
    assert_eq!(c.state, ChannelState::Closed);
    assert!(matches!(&c.exit, Some(ExitStatus::Signal { name, .. }) if name == "KILL"));
}

#[test]
fn unknown_channel_and_unsolicited_reply_are_errors() {
    let (mut chans, id) = open_channel();
    assert!(chans.handle(&data(id + 5, b"x")).is_err());
    let mut w = Writer::message(msg::CHANNEL_SUCCESS);
    w.u32(id);
    assert!(chans.handle(w.as_bytes()).is_err());
}
