//! Header blocks (§4.3, §6.2, §6.10): a HEADERS frame decides what its block will be
//! (a request, trailers, or something only decoded to keep HPACK in step); the block is
//! collected through its CONTINUATION frames within the limits (bytes, frames, the head
//! deadline), decoded as a whole, and acted on.

use super::recv::{conn_err, Res, Slot};
use super::request::{validate_request, validate_trailers};
use super::stream::{Closed, Stream};
use super::{Event, H2Conn};
use crate::h2::frame::ErrorCode;
use crate::h2::hpack::HeaderList;

/// What to do with a header block once it is complete (decided at its HEADERS).
#[derive(Debug)]
pub(super) enum Disposition {
    /// A new request.
    New,
    /// Trailers of an open request.
    Trailers,
    /// Decoded (HPACK must stay in step) and dropped.
    Ignore,
    /// Decoded, then refused with REFUSED_STREAM.
    Refuse,
    /// Decoded, then a stream error.
    Error(ErrorCode, &'static str),
}

/// A header block being collected: its HEADERS came without END_HEADERS.
#[derive(Debug)]
pub(super) struct PendingBlock {
    pub stream_id: u32,
    pub disposition: Disposition,
    pub end_stream: bool,
    pub block: Vec<u8>,
    pub frames: u32,
    pub started_ms: u64,
}

impl H2Conn {
    /// A HEADERS frame: decides what its block will be, and starts collecting it.
    pub(super) fn on_headers(&mut self, id: u32, self_dependent: bool, end: bool) -> Res {
        use Disposition as D;
        if id.is_multiple_of(2) {
            return conn_err(ErrorCode::PROTOCOL_ERROR, "HEADERS on an even stream id");
        }
        let depends = (ErrorCode::PROTOCOL_ERROR, "stream depends on itself");
        let disposition = match self.slot(id) {
            Slot::Active if !self.streams.get(&id).is_some_and(|s| s.recv_open) => {
                D::Error(ErrorCode::STREAM_CLOSED, "HEADERS after END_STREAM")
            }
            Slot::Active if self_dependent => D::Error(depends.0, depends.1),
            Slot::Active => D::Trailers,
            Slot::Idle => {
                self.highest_id = id;
                if self_dependent {
                    D::Error(depends.0, depends.1)
                } else if self.goaway_sent.is_some() || self.peer_goaway {
                    D::Ignore
                } else if self.streams.len() >= self.cfg.max_concurrent_streams as usize {
                    D::Refuse
                } else {
                    D::New
                }
            }
            Slot::Closed(Some(Closed::Ignored)) => D::Ignore,
            Slot::Closed(Some(Closed::PeerReset)) => D::Error(
                ErrorCode::STREAM_CLOSED,
                "HEADERS on a stream the client reset",
            ),
            Slot::Closed(Some(Closed::Ended)) => {
                return conn_err(ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream");
            }
            Slot::Closed(None) => {
                return conn_err(ErrorCode::PROTOCOL_ERROR, "stream id below an earlier one");
            }
        };
        self.pending = Some(PendingBlock {
            stream_id: id,
            disposition,
            end_stream: end,
            block: Vec::new(),
            frames: 0,
            started_ms: self.now,
        });
        Ok(())
    }

    /// Adds a fragment (of the HEADERS or a CONTINUATION) to the pending block, within
    /// the limits; decodes the block at END_HEADERS.
    pub(super) fn continue_block(&mut self, fragment: &[u8], end_headers: bool) -> Res {
        let cap = self.cfg.block_cap();
        let max_frames = self.cfg.max_continuation_frames;
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        // The HEADERS counts as frame 1.
        if p.frames > max_frames {
            return conn_err(ErrorCode::ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
        }
        p.frames += 1;
        if p.block.len() + fragment.len() > cap {
            return conn_err(ErrorCode::ENHANCE_YOUR_CALM, "header block over the limit");
        }
        p.block.extend_from_slice(fragment);
        let empty_continuation = fragment.is_empty() && !end_headers && p.frames > 1;
        if empty_continuation {
            self.cheap()?;
        }
        if end_headers {
            self.finish_block()?;
        }
        Ok(())
    }

    /// A complete header block: decoded whatever becomes of it, so that the HPACK
    /// tables stay in step (§4.3), then acted on.
    fn finish_block(&mut self) -> Res {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let decoded = match self.decoder.decode(&p.block) {
            Ok(list) => Some(list),
            Err(e) if e.table_in_step() => None,
            Err(_) => return conn_err(ErrorCode::COMPRESSION_ERROR, "undecodable header block"),
        };
        let id = p.stream_id;
        match p.disposition {
            Disposition::New => self.on_request(id, decoded, p.end_stream),
            Disposition::Trailers => self.on_trailers(id, decoded, p.end_stream),
            Disposition::Ignore => self.closed.record(id, Closed::Ignored),
            Disposition::Refuse => {
                let reason = "SETTINGS_MAX_CONCURRENT_STREAMS reached";
                self.stream_error(id, ErrorCode::REFUSED_STREAM, reason);
            }
            Disposition::Error(code, reason) => self.stream_error(id, code, reason),
        }
        Ok(())
    }

    fn on_request(&mut self, id: u32, decoded: Option<HeaderList>, end_stream: bool) {
        let send_window = i64::from(self.peer_initial_window);
        let mut s = Stream::new(self.recv_initial, send_window, !end_stream);
        let event = match decoded {
            Some(list) if list.len() <= self.cfg.max_header_count => {
                let head = match validate_request(list) {
                    Ok(head) => head,
                    Err(reason) => return self.malformed(id, reason),
                };
                if end_stream && head.content_length.is_some_and(|n| n != 0) {
                    return self.malformed(id, "content-length on a request without DATA");
                }
                s.content_length = head.content_length;
                Event::Request {
                    stream_id: id,
                    headers: head.headers,
                    end_stream,
                }
            }
            _ => {
                s.discard = true;
                Event::HeadersTooLarge { stream_id: id }
            }
        };
        self.streams.insert(id, s);
        self.last_processed = self.last_processed.max(id);
        self.events.push_back(event);
    }

    fn on_trailers(&mut self, id: u32, decoded: Option<HeaderList>, end_stream: bool) {
        if !end_stream {
            // §8.1: a second HEADERS without END_STREAM.
            return self.malformed(id, "trailers without END_STREAM");
        }
        if let Some(Err(reason)) = decoded.as_ref().map(validate_trailers) {
            return self.malformed(id, reason);
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.content_length.is_some_and(|n| n != s.received) {
            return self.malformed(id, "content-length does not match the DATA received");
        }
        s.recv_open = false;
        if !s.discard {
            self.events.push_back(Event::Data {
                stream_id: id,
                bytes: Vec::new(),
                end_stream: true,
            });
        }
        self.close_if_done(id);
    }
}
