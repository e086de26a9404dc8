//! HTTP/2 (RFC 9113): the codecs (functions from bytes to values and back, with no
//! state but what HPACK needs) and the server connection state machine, all without I/O.
//!
//! ```text
//!   peer bytes ─▶ frame::decode ─▶ Frame (payload borrowed from the input)
//!                                   └─ HEADERS + CONTINUATION fragments, joined
//!                                        ─▶ hpack::Decoder ─▶ [(name, value)]
//!   [Field] ─▶ hpack::Encoder ─▶ block ─▶ frame::write_header_block ─▶ bytes
//!   Frame / write_settings / FrameHeader::write ─────────────────────▶ bytes
//! ```
//!
//! - `frame`: the frame header, every frame type, the decoder (with the checks that one
//!   frame alone allows, each failure typed as a connection or stream error with its
//!   RFC 9113 error code) and the encoder; the connection preface.
//! - `settings`: the SETTINGS parameters and their ranges.
//! - `hpack`: header compression (RFC 7541): the decoder, with its bounded table and
//!   header list cap, and the encoder.
//! - `refusal`: a full server's 503 to a client that chose HTTP/2 (its first stream
//!   answered, then GOAWAY).
//! - `conn`: the server connection ([`conn::H2Conn`]): the preface, stream states,
//!   flow control, request checks, and the defences of SPEC "HTTP/2"; bytes and time in,
//!   events for a request handler and bytes out.
//!
//! Nothing in the crate drives `conn` yet (the runtimes speak HTTP/1.1 only), so
//! dead-code warnings are silenced when the module is private.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

pub mod conn;
pub mod frame;
pub mod hpack;
pub mod refusal;
pub mod server;
pub mod settings;
