//! The output side: response heads and bodies from the caller, and the flow-control
//! frames that follow from what the caller consumed.
//!
//! DATA never exceeds either send window (§6.9.1) nor the client's
//! SETTINGS_MAX_FRAME_SIZE, and `send_data` stops filling the output once
//! [`H2Settings::max_buffered_output`](super::H2Settings) bytes wait in it: the caller
//! keeps the rest (a file offset) and goes on at `WindowOpen`. Received body bytes are
//! announced back (WINDOW_UPDATE) only once the caller releases them, in batches of
//! half a window.

use super::request::is_connection_specific;
use super::stream::{Closed, Sending};
use super::{Event, H2Conn, Phase, SendError};
use crate::h2::frame::{flags, kind, write_header_block, ErrorCode, Frame, FrameHeader};
use crate::h2::frame::{HEADER_LEN, MAX_WINDOW_SIZE};
use crate::h2::hpack::{Field, Indexing};

/// Fields never entered in the HPACK tables (RFC 7541 §7.1.3).
const SENSITIVE: [&[u8]; 3] = [b"set-cookie", b"authorization", b"proxy-authorization"];

impl H2Conn {
    /// Sends a response head on a stream: `status` (1xx any number of times first, then
    /// one final), and `headers` — names lowercased; connection-specific fields
    /// (`connection`, `keep-alive`, `transfer-encoding`, ...) and pseudo-header names
    /// are dropped (§8.2.2). `end_stream`: no body follows.
    pub fn send_headers(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(&str, &str)],
        end_stream: bool,
    ) -> Result<(), SendError> {
        let informational = status < 200;
        if !(100..=999).contains(&status) || status == 101 || (informational && end_stream) {
            return Err(SendError::InvalidStatus);
        }
        match self.sending(stream_id)? {
            Sending::Final => return Err(SendError::HeadersAlreadySent),
            Sending::Ended => return Err(SendError::StreamEnded),
            Sending::Idle | Sending::Informational => {}
        }
        let status_text = status.to_string();
        let lowered: Vec<(Vec<u8>, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase().into_bytes(), v.as_bytes()))
            .filter(|(n, _)| !n.starts_with(b":") && n != b"te" && !is_connection_specific(n))
            .collect();
        let fields = std::iter::once(Field::new(":status", &status_text)).chain(
            lowered.iter().map(|(name, value)| {
                let field = Field::new(name, *value);
                match SENSITIVE.contains(&&name[..]) {
                    true => field.with(Indexing::Never),
                    false => field,
                }
            }),
        );
        let mut block = Vec::new();
        self.encoder.encode(fields, &mut block);
        let max = self.peer_max_frame_size;
        write_header_block(&mut self.out, stream_id, &block, end_stream, max);
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.sending = match (informational, end_stream) {
                (true, _) => Sending::Informational,
                (false, false) => Sending::Final,
                (false, true) => Sending::Ended,
            };
        }
        if end_stream {
            self.ended(stream_id);
        }
        self.settle();
        Ok(())
    }

    /// Sends body bytes on a stream whose final head went out: as many as both windows
    /// and the output budget allow now (all of them, or some, or none), in DATA frames.
    /// `end_stream` applies only if every byte went. If some are left, the caller keeps
    /// them until `Event::WindowOpen` (or polls [`writable`](Self::writable)).
    pub fn send_data(
        &mut self,
        stream_id: u32,
        bytes: &[u8],
        end_stream: bool,
        now_ms: u64,
    ) -> Result<usize, SendError> {
        self.tick(now_ms);
        match self.sending(stream_id)? {
            Sending::Idle | Sending::Informational => return Err(SendError::HeadersNotSent),
            Sending::Ended => return Err(SendError::StreamEnded),
            Sending::Final => {}
        }
        let frame_size = self.peer_max_frame_size as usize;
        let mut sent = 0;
        let mut stream_window = self.streams.get(&stream_id).map_or(0, |s| s.send_window);
        while sent < bytes.len() {
            let window = stream_window.min(self.conn_send_window).max(0) as usize;
            let room = (self.cfg.max_buffered_output)
                .saturating_sub(self.out_len())
                .saturating_sub(HEADER_LEN);
            let n = (bytes.len() - sent).min(window).min(frame_size).min(room);
            if n == 0 {
                break;
            }
            let last = sent + n == bytes.len();
            self.write_data(stream_id, &bytes[sent..sent + n], last && end_stream);
            sent += n;
            stream_window -= n as i64;
            self.conn_send_window -= n as i64;
            // The client may answer each DATA with two WINDOW_UPDATEs.
            self.window_updates.credit(2);
        }
        if bytes.is_empty() && end_stream {
            self.write_data(stream_id, &[], true);
        }
        let now = self.now;
        let conn_window = self.conn_send_window;
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.send_window = stream_window;
            s.blocked = sent < bytes.len();
            if s.blocked && stream_window <= 0 {
                s.stalled_since.get_or_insert(now);
            }
            if s.blocked && conn_window <= 0 {
                self.conn_stalled_since.get_or_insert(now);
            }
            if !s.blocked && end_stream {
                s.sending = Sending::Ended;
                self.ended(stream_id);
            }
        }
        self.settle();
        Ok(sent)
    }

    /// Whether the client may still send on this stream (no END_STREAM from it yet).
    pub fn receiving(&self, stream_id: u32) -> bool {
        self.phase != Phase::Closed && self.streams.get(&stream_id).is_some_and(|s| s.recv_open)
    }

    /// How many body bytes `send_data` would take now on this stream, at most (each
    /// DATA frame also needs its header in the output budget).
    pub fn writable(&self, stream_id: u32) -> usize {
        let Some(s) = self.streams.get(&stream_id) else {
            return 0;
        };
        if s.sending != Sending::Final || self.phase == Phase::Closed {
            return 0;
        }
        let window = s.send_window.min(self.conn_send_window).max(0) as usize;
        let room = (self.cfg.max_buffered_output)
            .saturating_sub(self.out_len())
            .saturating_sub(HEADER_LEN);
        window.min(room)
    }

    /// The caller has consumed `n` body bytes of a stream: the client may send as much
    /// again (WINDOW_UPDATE on the stream and the connection, by half windows).
    pub fn release(&mut self, stream_id: u32, n: usize) {
        if self.phase == Phase::Closed {
            return;
        }
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let n = (n as u64).min(s.unreleased);
        s.unreleased -= n;
        self.drop_bytes(stream_id, n);
    }

    /// Resets a stream (RST_STREAM with `code`): the caller gives up on it, or wants the
    /// rest of a request body no more (NO_ERROR after a complete response, §8.1).
    pub fn reset(&mut self, stream_id: u32, code: ErrorCode) -> Result<(), SendError> {
        self.sending(stream_id)?;
        Frame::RstStream { stream_id, code }.encode(&mut self.out);
        self.remove_stream(stream_id, Closed::Ignored);
        self.settle();
        Ok(())
    }

    /// Our own reset of a stream the caller knows (the slow-reader rule).
    pub(super) fn reset_stream(&mut self, stream_id: u32, code: ErrorCode, why: &'static str) {
        log::debug!("h2: stream {stream_id} reset {code:?}: {why}");
        Frame::RstStream { stream_id, code }.encode(&mut self.out);
        if let Some(s) = self.remove_stream(stream_id, Closed::Ignored) {
            if s.seen {
                let remote = false;
                self.events.push_back(Event::Reset {
                    stream_id,
                    code,
                    remote,
                });
            }
        }
    }

    fn sending(&self, stream_id: u32) -> Result<Sending, SendError> {
        if self.phase == Phase::Closed {
            return Err(SendError::ConnectionClosed);
        }
        match self.streams.get(&stream_id) {
            Some(s) => Ok(s.sending),
            None => Err(SendError::UnknownStream),
        }
    }

    fn write_data(&mut self, stream_id: u32, data: &[u8], end_stream: bool) {
        FrameHeader {
            length: data.len() as u32,
            kind: kind::DATA,
            flags: if end_stream { flags::END_STREAM } else { 0 },
            stream_id,
        }
        .write(&mut self.out);
        self.out.extend_from_slice(data);
    }

    /// Our END_STREAM went out: the stream closes if the client's half is closed; a 431
    /// stream whose body still comes is reset with NO_ERROR (§8.1) so that it stops.
    fn ended(&mut self, stream_id: u32) {
        let Some(s) = self.streams.get(&stream_id) else {
            return;
        };
        if !s.recv_open {
            self.remove_stream(stream_id, Closed::Ended);
        } else if s.discard {
            let code = ErrorCode::NO_ERROR;
            Frame::RstStream { stream_id, code }.encode(&mut self.out);
            self.remove_stream(stream_id, Closed::Ignored);
        }
    }

    /// After the windows or the output budget grew: `WindowOpen` for each stream that
    /// waits and can take bytes again; stall clocks stop where windows are open.
    pub(super) fn check_blocked(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.conn_send_window > 0 {
            self.conn_stalled_since = None;
        }
        let room = self.cfg.max_buffered_output.saturating_sub(self.out_len()) > HEADER_LEN;
        let conn_open = self.conn_send_window > 0;
        for (&id, s) in self.streams.iter_mut() {
            if s.send_window > 0 {
                s.stalled_since = None;
            }
            if s.blocked && room && conn_open && s.send_window > 0 && s.sending == Sending::Final {
                s.blocked = false;
                self.events.push_back(Event::WindowOpen { stream_id: id });
            }
        }
    }

    /// Connection-level credit for `n` bytes that left the window (released, padding,
    /// dropped): a WINDOW_UPDATE once half the window is owed.
    pub(super) fn release_conn(&mut self, n: u64) {
        self.conn_unannounced += n;
        let threshold = u64::from(self.cfg.connection_window_size / 2).max(1);
        if self.conn_unannounced < threshold {
            return;
        }
        let room = (i64::from(MAX_WINDOW_SIZE) - self.conn_recv_window).max(0) as u64;
        let increment = self.conn_unannounced.min(room);
        if increment == 0 {
            return;
        }
        Frame::WindowUpdate {
            stream_id: 0,
            increment: increment as u32,
        }
        .encode(&mut self.out);
        self.conn_recv_window += increment as i64;
        self.conn_unannounced -= increment;
    }

    /// Credit for `n` bytes of a stream on both levels (the stream's only while the
    /// client may still send on it).
    pub(super) fn drop_bytes(&mut self, stream_id: u32, n: u64) {
        if n == 0 {
            return;
        }
        self.release_conn(n);
        let threshold = u64::from(self.cfg.initial_window_size / 2).max(1);
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if !s.recv_open {
            return;
        }
        s.unannounced += n;
        if s.unannounced < threshold {
            return;
        }
        let room = (i64::from(MAX_WINDOW_SIZE) - s.recv_window).max(0) as u64;
        let increment = s.unannounced.min(room);
        if increment == 0 {
            return;
        }
        Frame::WindowUpdate {
            stream_id,
            increment: increment as u32,
        }
        .encode(&mut self.out);
        s.recv_window += increment as i64;
        s.unannounced -= increment;
    }
}
