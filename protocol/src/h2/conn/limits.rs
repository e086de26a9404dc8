//! [`H2Settings`]: our limits and deadlines, advertised or enforced.

use super::DEFAULT_WINDOW;
use crate::h2::frame::{DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE};
use crate::h2::hpack::DEFAULT_TABLE_SIZE;

/// Our limits and deadlines. Those named SETTINGS_* are advertised in our SETTINGS
/// (the server preface); the connection window by a WINDOW_UPDATE right after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams open or half-closed at once; a HEADERS
    /// beyond it is refused with RST_STREAM REFUSED_STREAM.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before the
    /// caller releases it (at most 2^31-1).
    pub initial_window_size: u32,
    /// The connection's receive window (65,535 ..= 2^31-1), raised by a WINDOW_UPDATE
    /// right after our SETTINGS.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame we accept (2^14 ..= 2^24-1).
    pub max_frame_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK decoder's dynamic table bound.
    pub header_table_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE, and the head limit: a decoded header list larger
    /// than this (name + value + 32 per field) is answered 431. A header block whose
    /// encoded size passes twice this ends the connection.
    pub max_header_list_size: u32,
    /// More fields than this in a request head is answered 431.
    pub max_header_count: usize,
    /// The connection preface and the first SETTINGS, and every header block once
    /// begun, must arrive within this.
    pub head_timeout_ms: u64,
    /// Our SETTINGS must be acknowledged within this (else SETTINGS_TIMEOUT, §6.5.3).
    pub settings_timeout_ms: u64,
    /// The slow-reader rule: a stream (or the connection) whose window keeps our data
    /// back for this long is reset (the connection: GOAWAY).
    pub zero_window_timeout_ms: u64,
    /// No stream, nothing to write, for this long: GOAWAY NO_ERROR and close.
    pub idle_timeout_ms: u64,
    /// Streams reset per second, by the client or by us for its errors (rapid reset).
    pub max_resets_per_sec: u32,
    pub max_settings_per_sec: u32,
    pub max_pings_per_sec: u32,
    /// Frames that do nothing per second (empty DATA, PRIORITY, unknown types, empty
    /// CONTINUATION, unsolicited ACKs, frames on closed streams), and WINDOW_UPDATEs
    /// beyond two for each DATA frame we sent.
    pub max_empty_frames_per_sec: u32,
    /// CONTINUATION frames in one header block.
    pub max_continuation_frames: u32,
    /// `send_data` takes no more once this much output waits to be written.
    pub max_buffered_output: usize,
    /// Unwritten bytes of frames the client made us send (SETTINGS and PING ACKs,
    /// RST_STREAM): past this, GOAWAY ENHANCE_YOUR_CALM.
    pub max_control_output: usize,
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            max_concurrent_streams: 100,
            initial_window_size: 256 * 1024,
            connection_window_size: 1024 * 1024,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            header_table_size: DEFAULT_TABLE_SIZE as u32,
            max_header_list_size: 8 * 1024,
            max_header_count: 100,
            head_timeout_ms: 10_000,
            settings_timeout_ms: 5_000,
            zero_window_timeout_ms: 30_000,
            idle_timeout_ms: 30_000,
            max_resets_per_sec: 100,
            max_settings_per_sec: 50,
            max_pings_per_sec: 50,
            max_empty_frames_per_sec: 1000,
            max_continuation_frames: 64,
            max_buffered_output: 128 * 1024,
            max_control_output: 16 * 1024,
        }
    }
}

impl H2Settings {
    /// The values brought into the ranges RFC 9113 allows.
    pub(super) fn sanitized(mut self) -> Self {
        self.initial_window_size = self.initial_window_size.min(MAX_WINDOW_SIZE);
        self.connection_window_size = self
            .connection_window_size
            .clamp(DEFAULT_WINDOW, MAX_WINDOW_SIZE);
        self.max_frame_size = self
            .max_frame_size
            .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT);
        self
    }

    /// The largest encoded header block we collect before giving up on the connection.
    pub(super) fn block_cap(&self) -> usize {
        (self.max_header_list_size as usize)
            .saturating_mul(2)
            .max(1024)
    }
}
