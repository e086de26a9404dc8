//! The input side: the client preface (§3.4), then one frame at a time, each judged
//! against the state of its stream (§5.1) and of the connection. A connection error
//! ends in GOAWAY (§5.4.1); a stream error in RST_STREAM (§5.4.2), which counts
//! against the reset budget like a reset from the client (a client that makes us reset
//! streams is as costly as one that resets them).

use super::stream::Closed;
use super::{Event, H2Conn, Phase};
use crate::h2::frame::{self, flags, kind, Decoded, ErrorCode, Frame, FrameError, FrameHeader};
use crate::h2::frame::{HEADER_LEN, MAX_WINDOW_SIZE, PREFACE};
use crate::h2::settings::{Setting, SettingsParams};

/// A connection error: GOAWAY with this code.
pub(super) struct ConnError(pub ErrorCode, pub &'static str);

pub(super) type Res = Result<(), ConnError>;

pub(super) fn conn_err(code: ErrorCode, reason: &'static str) -> Res {
    Err(ConnError(code, reason))
}

/// Where a stream id stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// Open or half-closed: in the map.
    Active,
    /// Never used: above the highest id the client used, or even (we never push).
    Idle,
    /// Closed, and how, if it is still remembered.
    Closed(Option<Closed>),
}

impl H2Conn {
    /// Bytes from the client, at `now_ms`. Events and output follow.
    pub fn receive(&mut self, bytes: &[u8], now_ms: u64) {
        self.tick(now_ms);
        if self.phase == Phase::Closed {
            return;
        }
        if self.inbuf.is_empty() {
            let used = self.process(bytes);
            if self.phase != Phase::Closed {
                self.inbuf.extend_from_slice(&bytes[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.inbuf);
            buf.extend_from_slice(bytes);
            let used = self.process(&buf);
            if self.phase != Phase::Closed {
                buf.drain(..used);
                self.inbuf = buf;
            }
        }
        self.check_blocked();
        self.settle();
    }

    /// Handles every whole frame at the start of `buf`; returns the bytes used.
    fn process(&mut self, buf: &[u8]) -> usize {
        let mut pos = 0;
        while self.phase != Phase::Closed {
            let used = self.step(&buf[pos..]);
            if used == 0 {
                break;
            }
            pos += used;
        }
        pos
    }

    /// Handles the preface or one frame; 0 when more bytes are needed (or closed).
    fn step(&mut self, buf: &[u8]) -> usize {
        if let Phase::Preface(matched) = self.phase {
            let n = buf.len().min(PREFACE.len() - matched);
            if buf[..n] != PREFACE[matched..matched + n] {
                self.fail(ErrorCode::PROTOCOL_ERROR, "invalid connection preface");
                return 0;
            }
            self.phase = match matched + n {
                done if done == PREFACE.len() => Phase::FirstSettings,
                part => Phase::Preface(part),
            };
            return n;
        }
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return 0;
        };
        let header = FrameHeader::parse(head);
        if self.phase == Phase::FirstSettings
            && (header.kind != kind::SETTINGS || header.flags & flags::ACK != 0)
        {
            let reason = "connection preface not followed by SETTINGS";
            self.fail(ErrorCode::PROTOCOL_ERROR, reason);
            return 0;
        }
        if let Some(p) = &self.pending {
            if header.kind != kind::CONTINUATION || header.stream_id != p.stream_id {
                self.fail(ErrorCode::PROTOCOL_ERROR, "frame inside a header block");
                return 0;
            }
        }
        match frame::decode(buf, self.cfg.max_frame_size) {
            Ok(Decoded::Incomplete { .. }) => 0,
            Ok(Decoded::Frame { frame, len }) => {
                if let Err(ConnError(code, reason)) = self.on_frame(frame) {
                    self.fail(code, reason);
                }
                len
            }
            Err(FrameError::Connection { code, reason }) => {
                self.fail(code, reason);
                0
            }
            Err(FrameError::Stream {
                stream_id,
                code,
                reason,
                consumed,
            }) => {
                self.stream_error(stream_id, code, reason);
                consumed
            }
        }
    }

    pub(super) fn slot(&self, id: u32) -> Slot {
        if self.streams.contains_key(&id) {
            Slot::Active
        } else if id.is_multiple_of(2) || id > self.highest_id {
            Slot::Idle
        } else {
            Slot::Closed(self.closed.get(id))
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Res {
        if self.phase == Phase::FirstSettings {
            self.phase = Phase::Open;
            let t = self.now.saturating_add(self.cfg.settings_timeout_ms);
            self.settings_ack_deadline = Some(t);
        }
        match frame {
            Frame::Data {
                stream_id,
                data,
                end_stream,
                ..
            } => self.on_data(stream_id, data, frame.flow_controlled_len(), end_stream),
            Frame::Headers {
                stream_id,
                fragment,
                priority,
                end_stream,
                end_headers,
                ..
            } => {
                let self_dependent = priority.is_some_and(|p| p.dependency == stream_id);
                self.on_headers(stream_id, self_dependent, end_stream)?;
                self.continue_block(fragment, end_headers)
            }
            Frame::Continuation {
                fragment,
                end_headers,
                ..
            } => {
                if self.pending.is_none() {
                    return conn_err(ErrorCode::PROTOCOL_ERROR, "CONTINUATION without HEADERS");
                }
                self.continue_block(fragment, end_headers)
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => self.cheap(),
            Frame::RstStream { stream_id, code } => self.on_rst_stream(stream_id, code),
            Frame::Settings { ack, params } => self.on_settings(ack, params),
            Frame::PushPromise { .. } => conn_err(ErrorCode::PROTOCOL_ERROR, "PUSH_PROMISE"),
            Frame::Ping { ack: true, .. } => self.cheap(),
            Frame::Ping { ack: false, data } => {
                if !self.pings.take(self.now) {
                    return conn_err(ErrorCode::ENHANCE_YOUR_CALM, "PING flood");
                }
                self.write_provoked(&Frame::Ping { ack: true, data });
                Ok(())
            }
            Frame::GoAway { code, .. } => self.on_goaway(code),
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => self.on_window_update(stream_id, increment),
        }
    }

    /// A frame that does nothing, within the budget of such frames.
    pub(super) fn cheap(&mut self) -> Res {
        match self.empties.take(self.now) {
            true => Ok(()),
            false => conn_err(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many frames without effect",
            ),
        }
    }

    fn on_data(&mut self, id: u32, data: &[u8], flow_len: u32, end_stream: bool) -> Res {
        let slot = self.slot(id);
        if slot == Slot::Idle {
            return conn_err(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
        }
        // Every DATA counts against the connection window, whatever its stream (§6.9).
        let flow = u64::from(flow_len);
        if i64::from(flow_len) > self.conn_recv_window {
            return conn_err(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            );
        }
        self.conn_recv_window -= i64::from(flow_len);
        if data.is_empty() && !end_stream {
            self.cheap()?;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            self.release_conn(flow);
            if slot != Slot::Closed(Some(Closed::Ignored)) {
                self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA on a closed stream");
            }
            return Ok(());
        };
        let error = if !s.recv_open {
            Some((ErrorCode::STREAM_CLOSED, "DATA after END_STREAM"))
        } else if i64::from(flow_len) > s.recv_window {
            Some((
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the stream window",
            ))
        } else {
            None
        };
        if let Some((code, reason)) = error {
            self.release_conn(flow);
            self.stream_error(id, code, reason);
            return Ok(());
        }
        s.recv_window -= i64::from(flow_len);
        s.received += data.len() as u64;
        let (received, limit) = (s.received, s.content_length);
        if limit.is_some_and(|n| received > n || (end_stream && received != n)) {
            self.release_conn(flow);
            self.malformed(id, "content-length does not match the DATA received");
            return Ok(());
        }
        let discard = s.discard;
        if end_stream {
            s.recv_open = false;
        }
        let padding = flow - data.len() as u64;
        if discard {
            self.drop_bytes(id, flow);
        } else {
            s.unreleased += data.len() as u64;
            self.drop_bytes(id, padding);
            if !data.is_empty() || end_stream {
                self.events.push_back(Event::Data {
                    stream_id: id,
                    bytes: data.to_vec(),
                    end_stream,
                });
            }
        }
        if end_stream {
            self.close_if_done(id);
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, id: u32, code: ErrorCode) -> Res {
        match self.slot(id) {
            Slot::Idle => conn_err(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on an idle stream"),
            // Never a RST_STREAM in answer to one (§5.4.2).
            Slot::Closed(_) => self.cheap(),
            Slot::Active => {
                if !self.resets.take(self.now) {
                    return conn_err(ErrorCode::ENHANCE_YOUR_CALM, "too many streams reset");
                }
                if let Some(s) = self.remove_stream(id, Closed::PeerReset) {
                    if s.seen {
                        let remote = true;
                        let stream_id = id;
                        self.events.push_back(Event::Reset {
                            stream_id,
                            code,
                            remote,
                        });
                    }
                }
                Ok(())
            }
        }
    }

    fn on_settings(&mut self, ack: bool, params: SettingsParams<'_>) -> Res {
        if ack {
            if self.settings_ack_deadline.take().is_none() {
                return self.cheap();
            }
            // Our SETTINGS are in force now.
            self.decoder
                .set_table_bound(self.cfg.header_table_size as usize);
            let ours = i64::from(self.cfg.initial_window_size);
            let delta = ours - self.recv_initial;
            for s in self.streams.values_mut() {
                s.recv_window += delta;
            }
            self.recv_initial = ours;
            return Ok(());
        }
        if !self.settings_rate.take(self.now) {
            return conn_err(ErrorCode::ENHANCE_YOUR_CALM, "SETTINGS flood");
        }
        for setting in params.iter() {
            match setting {
                Setting::HeaderTableSize(v) => {
                    let size = (v as usize).min(crate::h2::hpack::DEFAULT_TABLE_SIZE);
                    if size != self.enc_table_size {
                        self.encoder.set_max_table_size(size);
                        self.enc_table_size = size;
                    }
                }
                Setting::InitialWindowSize(v) => {
                    // §6.9.2: every stream window moves by the difference.
                    let delta = i64::from(v) - i64::from(self.peer_initial_window);
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > i64::from(MAX_WINDOW_SIZE) {
                            let reason = "SETTINGS_INITIAL_WINDOW_SIZE overflows a window";
                            return conn_err(ErrorCode::FLOW_CONTROL_ERROR, reason);
                        }
                    }
                    self.peer_initial_window = v;
                }
                Setting::MaxFrameSize(v) => self.peer_max_frame_size = v,
                // We push nothing and open no stream; the header list size is advisory.
                _ => {}
            }
        }
        self.write_provoked(&Frame::Settings {
            ack: true,
            params: SettingsParams::default(),
        });
        Ok(())
    }

    fn on_goaway(&mut self, code: ErrorCode) -> Res {
        if self.peer_goaway {
            return self.cheap();
        }
        self.peer_goaway = true;
        let reason = "the client sent GOAWAY";
        if code == ErrorCode::NO_ERROR {
            let remote = true;
            self.events.push_back(Event::GoAway {
                code,
                reason,
                remote,
            });
        } else {
            self.close(code, reason, true);
        }
        Ok(())
    }

    fn on_window_update(&mut self, id: u32, increment: u32) -> Res {
        if !self.window_updates.take(self.now) {
            return conn_err(ErrorCode::ENHANCE_YOUR_CALM, "WINDOW_UPDATE flood");
        }
        let max = i64::from(MAX_WINDOW_SIZE);
        if id == 0 {
            self.conn_send_window += i64::from(increment);
            if self.conn_send_window > max {
                return conn_err(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection window over 2^31-1",
                );
            }
            return Ok(());
        }
        match self.slot(id) {
            Slot::Idle => conn_err(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream"),
            Slot::Closed(Some(Closed::PeerReset)) => {
                let reason = "WINDOW_UPDATE on a stream the client reset";
                self.stream_error(id, ErrorCode::STREAM_CLOSED, reason);
                Ok(())
            }
            // Our END_STREAM or RST_STREAM may have crossed it (§5.1 "closed").
            Slot::Closed(_) => Ok(()),
            Slot::Active => {
                let over = self.streams.get_mut(&id).is_some_and(|s| {
                    s.send_window += i64::from(increment);
                    s.send_window > max
                });
                if over {
                    let reason = "stream window over 2^31-1";
                    self.stream_error(id, ErrorCode::FLOW_CONTROL_ERROR, reason);
                }
                Ok(())
            }
        }
    }

    /// A stream error (§5.4.2): RST_STREAM with `code`, counted against the reset
    /// budget. The caller hears of it (`Reset`) if it knew the stream.
    pub(super) fn stream_error(&mut self, id: u32, code: ErrorCode, reason: &'static str) {
        log::debug!("h2: stream {id} error {code:?}: {reason}");
        self.reset_provoked(id, code, None);
    }

    /// A malformed request (§8.1.1): RST_STREAM PROTOCOL_ERROR, and `Malformed`.
    pub(super) fn malformed(&mut self, id: u32, reason: &'static str) {
        let event = Event::Malformed {
            stream_id: id,
            reason,
        };
        self.reset_provoked(id, ErrorCode::PROTOCOL_ERROR, Some(event));
    }

    fn reset_provoked(&mut self, id: u32, code: ErrorCode, event: Option<Event>) {
        if !self.resets.take(self.now) {
            let reason = "too many streams reset for errors";
            return self.fail(ErrorCode::ENHANCE_YOUR_CALM, reason);
        }
        if !self.write_provoked(&Frame::RstStream {
            stream_id: id,
            code,
        }) {
            return;
        }
        match self.remove_stream(id, Closed::Ignored) {
            Some(s) if s.seen && event.is_none() => self.events.push_back(Event::Reset {
                stream_id: id,
                code,
                remote: false,
            }),
            Some(_) => {}
            None if id <= self.highest_id && !id.is_multiple_of(2) => {
                self.closed.record(id, Closed::Ignored);
            }
            None => {}
        }
        if let Some(event) = event {
            self.events.push_back(event);
        }
    }

    /// Removes a stream whose both halves are closed.
    pub(super) fn close_if_done(&mut self, id: u32) {
        let done = self
            .streams
            .get(&id)
            .is_some_and(|s| !s.recv_open && s.sending == super::stream::Sending::Ended);
        if done {
            self.remove_stream(id, Closed::Ended);
        }
    }
}
