//! The bodies of incoming channel messages: data into the stream buffers under the
//! window, and the requests a channel understands (exit status, exit signal).

use super::{Channel, ChannelId, ChannelState, ExitStatus, StderrMode, Stream};
use crate::wire::Reader;
use crate::{Error, Result};

/// The recipient channel of a channel message (`u32::MAX` if it is too short to name one).
pub(in crate::proto) fn id_of(payload: &[u8]) -> ChannelId {
    let mut r = Reader::new(payload);
    let _ = r.u8("message number");
    r.u32("recipient channel").unwrap_or(u32::MAX)
}

/// Stores arriving data, re-opening the window at once for what the prepay rule allows (see
/// [`Channel::prepay_limit`]); the rest waits for the application to read it.
pub(super) fn receive_data(
    channel: &mut Channel,
    code: Option<u32>,
    data: &[u8],
) -> Result<Option<Vec<u8>>> {
    if channel.state != ChannelState::Open || channel.eof_received {
        return Err(Error::protocol(
            "channel data after EOF or outside an open channel",
        ));
    }
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let max = channel.limits.max_packet;
    if len > max {
        return Err(Error::protocol(format!(
            "channel data of {len} bytes exceeds the maximum packet size {max}"
        )));
    }
    channel.local_window = channel
        .local_window
        .checked_sub(len)
        .ok_or_else(|| Error::protocol("peer sent more channel data than the window allows"))?;
    let stream = match (code, channel.stderr_mode) {
        (None, _) | (Some(1), StderrMode::Merge) => Stream::Stdout,
        (Some(1), StderrMode::Separate) => Stream::Stderr,
        // Discarded stderr and unknown data types are dropped but still re-open the window.
        (Some(_), _) => return Ok(channel.credit(data.len())),
    };
    channel.buffer_mut(stream).push(data);
    Ok(channel.prepay(stream))
}

/// Handles a request from the server; returns whether it was understood.
pub(super) fn receive_request(
    channel: &mut Channel,
    kind: &[u8],
    r: &mut Reader<'_>,
) -> Result<bool> {
    match kind {
        b"exit-status" => {
            channel.exit = Some(ExitStatus::Code(r.u32("exit status")?));
            Ok(true)
        }
        b"exit-signal" => {
            let name = String::from_utf8_lossy(r.string("signal name")?).into_owned();
            let core_dumped = r.bool("core dumped")?;
            let message = String::from_utf8_lossy(r.string("error message")?).into_owned();
            channel.exit = Some(ExitStatus::Signal {
                name,
                core_dumped,
                message,
            });
            Ok(true)
        }
        _ => Ok(false),
    }
}
