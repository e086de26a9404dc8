//! The HTTP/2 server connection (RFC 9113), sans-IO: bytes from the client in, events
//! for a request handler out; the handler's answers in, bytes for the client out.
//!
//! ```text
//!   receive(bytes, now) ──▶ preface, frames, header blocks ──▶ poll_event() -> Event
//!                                                               Request · Data · Reset
//!                                                               HeadersTooLarge · Malformed
//!                                                               WindowOpen · GoAway
//!   send_headers / send_data / release / reset / drain / go_away
//!                          ──▶ output() + consumed(n, now)   bytes to write, in order
//!   deadline() -> Option<ms> ──▶ timeout(now)
//! ```
//!
//! - `recv`: the input side: the connection preface (§3.4), each frame type (§6) against
//!   the stream states (§5.1), stream ids (§5.1.1), flow control (§5.2, §6.9), the
//!   floods; `headers`: header blocks, HEADERS and CONTINUATION (§4.3, §6.2, §6.10),
//!   concurrency (§5.1.2), requests and trailers.
//! - `send`: the output side: response heads (HPACK, split by the client's
//!   SETTINGS_MAX_FRAME_SIZE), DATA within both windows and a bounded output queue,
//!   WINDOW_UPDATE as the caller releases body bytes, RST_STREAM.
//! - `request`: the checks of §8 on a request's header list (malformed → the stream is
//!   reset with PROTOCOL_ERROR, §8.1.1).
//! - `stream`: per-stream state, the memory of closed streams, the rate buckets;
//!   `limits`: [`H2Settings`]; `event`: [`Event`] and [`SendError`].
//!
//! Malformed requests: the connection resets the stream with PROTOCOL_ERROR itself
//! (§8.1.1) and reports [`Event::Malformed`] for the log; the caller answers nothing.
//! Heads over the limits (SETTINGS_MAX_HEADER_LIST_SIZE as decoded, or more fields than
//! [`H2Settings::max_header_count`]) come as [`Event::HeadersTooLarge`]: the caller
//! answers 431 like HTTP/1.1; any body is counted for flow control and dropped.
//!
//! The defences of SPEC "HTTP/2", each a limit in [`H2Settings`] and a GOAWAY
//! ENHANCE_YOUR_CALM past it: streams reset (by the client, or by us for its errors,
//! refusals included) per second (rapid reset); a header block's encoded size and
//! number of CONTINUATION frames (CONTINUATION flood), with the HPACK decoder's cap on
//! the decoded list (HPACK bombs); SETTINGS and PINGs per second, and the unread bytes
//! of what they make us send; frames without effect per second (empty DATA, PRIORITY,
//! unknown types, empty CONTINUATION...), WINDOW_UPDATE per second beyond what our DATA
//! earns; a window held at zero while we have data (a stream: RST_STREAM CANCEL; the
//! connection: GOAWAY); a header block or the preface not finished within the head
//! deadline. Memory is bounded by the limits: the input buffer by one frame, streams by
//! the concurrency limit, a header block by its cap, our output by the DATA budget plus
//! the provoked-bytes budget.

mod event;
mod headers;
mod limits;
mod recv;
pub(crate) mod request;
mod send;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use super::frame::{write_settings, ErrorCode, Frame, DEFAULT_MAX_FRAME_SIZE};
use super::hpack::{Decoder, Encoder, DEFAULT_TABLE_SIZE};
use super::settings::Setting;
pub use event::{Event, SendError};
use headers::PendingBlock;
pub use limits::H2Settings;
use stream::{Closed, ClosedStreams, Rate, Stream};

/// The window every stream and the connection start with (RFC 9113 §6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// So many bytes of the client preface matched.
    Preface(usize),
    /// The preface is in; the next frame must be a SETTINGS.
    FirstSettings,
    Open,
    Closed,
}

/// One HTTP/2 server connection. See the module documentation.
#[derive(Debug)]
pub struct H2Conn {
    cfg: H2Settings,
    phase: Phase,
    /// The latest time given.
    now: u64,
    started_ms: u64,
    /// Received bytes not yet processed (at most one frame).
    inbuf: Vec<u8>,
    /// Bytes to write; those before `out_pos` have been written.
    out: Vec<u8>,
    out_pos: usize,
    consumed_total: u64,
    /// Frames the client provoked, not yet written: (end position, length).
    provoked: VecDeque<(u64, usize)>,
    provoked_bytes: usize,
    events: VecDeque<Event>,
    streams: BTreeMap<u32, Stream>,
    closed: ClosedStreams,
    /// The highest stream id the client used.
    highest_id: u32,
    /// The highest stream id handed to the caller (GOAWAY's last stream id).
    last_processed: u32,
    pending: Option<PendingBlock>,
    decoder: Decoder,
    encoder: Encoder,
    /// The size our encoder's table is set to (the client's HEADER_TABLE_SIZE, capped).
    enc_table_size: usize,
    peer_initial_window: u32,
    peer_max_frame_size: u32,
    conn_send_window: i64,
    conn_recv_window: i64,
    conn_unannounced: u64,
    /// The receive window a new stream starts with.
    recv_initial: i64,
    settings_ack_deadline: Option<u64>,
    idle_since: Option<u64>,
    conn_stalled_since: Option<u64>,
    /// Our GOAWAY (drain) went out with this last stream id.
    goaway_sent: Option<u32>,
    peer_goaway: bool,
    resets: Rate,
    settings_rate: Rate,
    pings: Rate,
    empties: Rate,
    window_updates: Rate,
}

impl H2Conn {
    /// A connection that has just been accepted (or whose ALPN said h2); our SETTINGS
    /// (the server preface) are in the output at once.
    pub fn new(settings: H2Settings, now_ms: u64) -> Self {
        let cfg = settings.sanitized();
        let rate = |n| Rate::new(n, now_ms);
        let mut conn = H2Conn {
            phase: Phase::Preface(0),
            now: now_ms,
            started_ms: now_ms,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            consumed_total: 0,
            provoked: VecDeque::new(),
            provoked_bytes: 0,
            events: VecDeque::new(),
            streams: BTreeMap::new(),
            closed: ClosedStreams::new(),
            highest_id: 0,
            last_processed: 0,
            pending: None,
            // The table starts at the default size; our bound applies once ACKed.
            decoder: Decoder::new(DEFAULT_TABLE_SIZE, cfg.max_header_list_size as usize),
            encoder: Encoder::new(DEFAULT_TABLE_SIZE),
            enc_table_size: DEFAULT_TABLE_SIZE,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            conn_send_window: i64::from(DEFAULT_WINDOW),
            conn_recv_window: i64::from(cfg.connection_window_size),
            conn_unannounced: 0,
            // Until our SETTINGS are ACKed, the client may still assume the default.
            recv_initial: i64::from(cfg.initial_window_size.max(DEFAULT_WINDOW)),
            settings_ack_deadline: None,
            idle_since: None,
            conn_stalled_since: None,
            goaway_sent: None,
            peer_goaway: false,
            resets: rate(cfg.max_resets_per_sec),
            settings_rate: rate(cfg.max_settings_per_sec),
            pings: rate(cfg.max_pings_per_sec),
            empties: rate(cfg.max_empty_frames_per_sec),
            window_updates: rate(cfg.max_empty_frames_per_sec),
            cfg,
        };
        let c = &conn.cfg;
        let mut params = vec![
            Setting::MaxConcurrentStreams(c.max_concurrent_streams),
            Setting::MaxHeaderListSize(c.max_header_list_size),
        ];
        if c.initial_window_size != DEFAULT_WINDOW {
            params.push(Setting::InitialWindowSize(c.initial_window_size));
        }
        if c.max_frame_size != DEFAULT_MAX_FRAME_SIZE {
            params.push(Setting::MaxFrameSize(c.max_frame_size));
        }
        if c.header_table_size as usize != DEFAULT_TABLE_SIZE {
            params.push(Setting::HeaderTableSize(c.header_table_size));
        }
        write_settings(&mut conn.out, &params);
        let raise = c.connection_window_size - DEFAULT_WINDOW;
        if raise > 0 {
            Frame::WindowUpdate {
                stream_id: 0,
                increment: raise,
            }
            .encode(&mut conn.out);
        }
        conn
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Request { stream_id, .. } | Event::HeadersTooLarge { stream_id } = event {
            if let Some(s) = self.streams.get_mut(&stream_id) {
                s.seen = true;
            }
        }
        Some(event)
    }

    /// The bytes waiting to be written to the client.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// `n` bytes of [`output`](Self::output) have been written.
    pub fn consumed(&mut self, n: usize, now_ms: u64) {
        self.tick(now_ms);
        let n = n.min(self.out_len());
        self.out_pos += n;
        self.consumed_total += n as u64;
        while let Some(&(end, len)) = self.provoked.front() {
            if end > self.consumed_total {
                break;
            }
            self.provoked.pop_front();
            self.provoked_bytes -= len;
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= 64 * 1024 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        self.check_blocked();
        self.settle();
    }

    /// Appends all the output to `into`, as written.
    pub fn take_output(&mut self, into: &mut Vec<u8>, now_ms: u64) {
        into.extend_from_slice(self.output());
        let n = self.out_len();
        self.consumed(n, now_ms);
    }

    /// Once true, nothing more will be read or sent: write what [`output`](Self::output)
    /// still holds, then close the transport.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// When [`timeout`](Self::timeout) must be called, if ever.
    pub fn deadline(&self) -> Option<u64> {
        let c = &self.cfg;
        let mut first: Option<u64> = None;
        let mut at = |t: u64| first = Some(first.map_or(t, |f| f.min(t)));
        match self.phase {
            Phase::Closed => return None,
            Phase::Preface(_) | Phase::FirstSettings => {
                at(self.started_ms.saturating_add(c.head_timeout_ms))
            }
            Phase::Open => {}
        }
        if let Some(p) = &self.pending {
            at(p.started_ms.saturating_add(c.head_timeout_ms));
        }
        if let Some(t) = self.settings_ack_deadline {
            at(t);
        }
        if let Some(t) = self.idle_since {
            at(t.saturating_add(c.idle_timeout_ms));
        }
        let zero = c.zero_window_timeout_ms;
        if let Some(t) = self.conn_stalled_since {
            at(t.saturating_add(zero));
        }
        for s in self.streams.values() {
            if let Some(t) = s.stalled_since {
                at(t.saturating_add(zero));
            }
        }
        first
    }

    /// Applies every deadline that has passed by `now_ms`.
    pub fn timeout(&mut self, now_ms: u64) {
        self.tick(now_ms);
        let now = self.now;
        let c = &self.cfg;
        let (head, zero) = (c.head_timeout_ms, c.zero_window_timeout_ms);
        let passed =
            |since: Option<u64>, after: u64| since.is_some_and(|t| now >= t.saturating_add(after));
        let calm = ErrorCode::ENHANCE_YOUR_CALM;
        match self.phase {
            Phase::Closed => return,
            Phase::Preface(_) | Phase::FirstSettings if passed(Some(self.started_ms), head) => {
                return self.fail(calm, "no connection preface within the head deadline");
            }
            _ => {}
        }
        if passed(self.pending.as_ref().map(|p| p.started_ms), head) {
            return self.fail(calm, "header block not finished within the head deadline");
        }
        if passed(self.settings_ack_deadline, 0) {
            return self.fail(ErrorCode::SETTINGS_TIMEOUT, "SETTINGS not acknowledged");
        }
        if passed(self.conn_stalled_since, zero) {
            return self.fail(calm, "connection window held at zero");
        }
        let stalled: Vec<u32> = (self.streams.iter())
            .filter(|(_, s)| passed(s.stalled_since, zero))
            .map(|(&id, _)| id)
            .collect();
        for id in stalled {
            self.reset_stream(id, ErrorCode::CANCEL, "stream window held at zero");
        }
        if passed(self.idle_since, self.cfg.idle_timeout_ms) {
            self.write_goaway(ErrorCode::NO_ERROR, "idle");
            return self.close(ErrorCode::NO_ERROR, "idle timeout", false);
        }
        self.settle();
    }

    /// Ends the connection at once: GOAWAY with `code`; every stream, and every event
    /// not yet polled, is dropped.
    pub fn go_away(&mut self, code: ErrorCode) {
        if self.phase == Phase::Closed {
            return;
        }
        self.write_goaway(code, "");
        self.phase = Phase::Closed;
        self.streams.clear();
        self.pending = None;
        self.inbuf = Vec::new();
        self.events.clear();
    }

    /// Graceful shutdown: GOAWAY NO_ERROR with the last stream handed out; streams the
    /// client opens after it are ignored; the connection closes once the open streams
    /// are done.
    pub fn drain(&mut self) {
        if self.phase == Phase::Closed || self.goaway_sent.is_some() {
            return;
        }
        self.write_goaway(ErrorCode::NO_ERROR, "");
        self.goaway_sent = Some(self.last_processed);
        self.settle();
    }

    fn tick(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
    }

    fn out_len(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn write_goaway(&mut self, code: ErrorCode, reason: &'static str) {
        Frame::GoAway {
            last_stream_id: self.last_processed,
            code,
            debug: reason.as_bytes(),
        }
        .encode(&mut self.out);
    }

    /// A connection error: GOAWAY with `code`, then closed.
    fn fail(&mut self, code: ErrorCode, reason: &'static str) {
        if self.phase == Phase::Closed {
            return;
        }
        log::debug!("h2: connection error {code:?}: {reason}");
        self.write_goaway(code, reason);
        self.close(code, reason, false);
    }

    /// Closed: every stream dropped, the events not yet polled replaced by `GoAway`.
    fn close(&mut self, code: ErrorCode, reason: &'static str, remote: bool) {
        self.phase = Phase::Closed;
        self.streams.clear();
        self.pending = None;
        self.inbuf = Vec::new();
        self.events.clear();
        self.events.push_back(Event::GoAway {
            code,
            reason,
            remote,
        });
    }

    /// Appends a frame the client made us send, within the budget of unwritten ones;
    /// false (and the connection ends) past it.
    fn write_provoked(&mut self, frame: &Frame<'_>) -> bool {
        let start = self.out.len();
        frame.encode(&mut self.out);
        let len = self.out.len() - start;
        if self.provoked_bytes + len > self.cfg.max_control_output {
            self.out.truncate(start);
            self.fail(
                ErrorCode::ENHANCE_YOUR_CALM,
                "the client provokes frames faster than it reads them",
            );
            return false;
        }
        self.provoked_bytes += len;
        let end = self.consumed_total + self.out_len() as u64;
        self.provoked.push_back((end, len));
        true
    }

    /// Removes a stream the caller knows, remembering how it closed; the connection
    /// window takes back what the caller had not released; events it never polled go.
    fn remove_stream(&mut self, id: u32, how: Closed) -> Option<Stream> {
        let s = self.streams.remove(&id)?;
        self.closed.record(id, how);
        if s.unreleased > 0 {
            self.release_conn(s.unreleased);
        }
        if !s.seen {
            self.events.retain(|e| e.stream_id() != Some(id));
        }
        Some(s)
    }

    /// After any change: close once draining is done, keep the idle clock.
    fn settle(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        if (self.goaway_sent.is_some() || self.peer_goaway) && self.streams.is_empty() {
            self.phase = Phase::Closed;
            return;
        }
        let idle = self.phase == Phase::Open
            && self.streams.is_empty()
            && self.pending.is_none()
            && self.out_len() == 0;
        if !idle {
            self.idle_since = None;
        } else if self.idle_since.is_none() {
            self.idle_since = Some(self.now);
        }
    }
}
