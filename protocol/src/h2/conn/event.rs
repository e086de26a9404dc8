//! What the connection tells its caller ([`Event`]), and why a call did nothing
//! ([`SendError`]).

use crate::h2::frame::ErrorCode;
use crate::h2::hpack::HeaderList;

/// What happened, for the caller. Every stream an event names by id is one the caller
/// knows from its `Request` or `HeadersTooLarge` (except `Malformed`, for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request head that passed the checks of §8: pseudo-header fields first
    /// (`:method`, `:scheme`, `:path`, `:authority` as sent), then the regular fields
    /// (lowercase; `cookie` crumbs joined). `end_stream`: there is no body.
    Request {
        stream_id: u32,
        headers: HeaderList,
        end_stream: bool,
    },
    /// Request body bytes, already counted against the windows: call
    /// [`H2Conn::release`] once they are consumed, so that the client may send more.
    /// Trailers end the body as an empty `Data` with `end_stream` (their fields are
    /// checked and dropped).
    Data {
        stream_id: u32,
        bytes: Vec<u8>,
        end_stream: bool,
    },
    /// The request head is over the limits: answer 431 (its body, if any, is dropped;
    /// the stream is reset with NO_ERROR once the answer is sent).
    HeadersTooLarge { stream_id: u32 },
    /// A malformed request (§8.1.1): the stream was reset with PROTOCOL_ERROR. If its
    /// `Request` was delivered, drop its work as for `Reset`.
    Malformed {
        stream_id: u32,
        reason: &'static str,
    },
    /// The stream is gone: the client reset it (`remote`), or we did (a stream error,
    /// the slow-reader rule). Drop its work.
    Reset {
        stream_id: u32,
        code: ErrorCode,
        remote: bool,
    },
    /// A stream whose last `send_data` was cut short can take more now.
    WindowOpen { stream_id: u32 },
    /// The connection is ending: by the client's GOAWAY (`remote`), a connection error,
    /// a deadline, a flood. If [`H2Conn::is_closed`], every stream is gone; otherwise
    /// (the client's GOAWAY with NO_ERROR) the open streams finish first.
    GoAway {
        code: ErrorCode,
        reason: &'static str,
        remote: bool,
    },
}

impl Event {
    /// The stream the event is about, if any.
    pub fn stream_id(&self) -> Option<u32> {
        match *self {
            Event::Request { stream_id, .. }
            | Event::Data { stream_id, .. }
            | Event::HeadersTooLarge { stream_id }
            | Event::Malformed { stream_id, .. }
            | Event::Reset { stream_id, .. }
            | Event::WindowOpen { stream_id } => Some(stream_id),
            Event::GoAway { .. } => None,
        }
    }
}

/// Why a `send_*` call or `reset` did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closed.
    ConnectionClosed,
    /// No such stream open: never opened, closed, or reset (see the events).
    UnknownStream,
    /// DATA before the final response head.
    HeadersNotSent,
    /// A second final head (response trailers are not supported).
    HeadersAlreadySent,
    /// END_STREAM was already sent.
    StreamEnded,
    /// A status outside 100..=999, 101 (not in HTTP/2, §8.6), or a 1xx with END_STREAM.
    InvalidStatus,
}
