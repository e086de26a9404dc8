//! One HTTP/2 connection ([`H2Server`]) driven in memory, with the client's side built
//! in: [`H2Driver`] encodes what a client sends (the preface, HEADERS through HPACK,
//! DATA, WINDOW_UPDATE, RST_STREAM, raw frames), executes the server's actions against
//! a [`World`] as a session would (a `SendFile` becomes body bytes, `(offset + i) % 251`,
//! handed to [`H2Server::send_body`] as the windows allow), and decodes everything the
//! server writes into [`Frame2`] values, HPACK included, checking each frame as it
//! goes. Shared by the crate's HTTP/2 tests and the fuzz target `h2`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::world::{dir_listed, World};
use super::Start;
use crate::h2::frame::MAX_FRAME_SIZE_LIMIT;
use crate::h2::frame::{self, Decoded, ErrorCode, Frame, FrameHeader, PREFACE};
use crate::h2::hpack::{Decoder, Encoder, Field};
use crate::h2::settings::Setting;
use crate::{Action, Compressed, Config, H2Action, H2Input, H2Server, Input, Now};

/// A frame the server wrote, decoded (a header block joined and decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame2 {
    Settings {
        ack: bool,
    },
    Headers {
        id: u32,
        fields: Vec<(String, String)>,
        end_stream: bool,
    },
    Data {
        id: u32,
        len: usize,
        end_stream: bool,
    },
    Rst {
        id: u32,
        code: u32,
    },
    GoAway {
        last: u32,
        code: u32,
    },
    WindowUpdate {
        id: u32,
        increment: u32,
    },
    Ping {
        ack: bool,
    },
}

/// One stream's answer as the client saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The final head's fields (`:status` first); 1xx heads are in `interim`.
    pub fields: Vec<(String, String)>,
    pub interim: Vec<u16>,
    pub body: Vec<u8>,
    pub ended: bool,
    pub reset: Option<u32>,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        (self.fields.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A body the session would read from a file.
#[derive(Debug)]
struct Body {
    pos: u64,
    end: u64,
}

/// Drives one [`H2Server`] as a session and a client would; see the module
/// documentation.
pub struct H2Driver<W> {
    pub server: H2Server,
    pub now: Now,
    pub world: W,
    /// Every frame the server wrote, in order.
    pub frames: Vec<Frame2>,
    /// Every stream's answer so far.
    pub replies: BTreeMap<u32, Reply>,
    /// Every action handed out, with its stream (`Done` as `None`).
    pub log: Vec<(u32, Option<Action>)>,
    /// The output is left unread (a client that stops reading) while set.
    pub hold_output: bool,
    /// Actions are left unexecuted (a slow disk) while set; [`H2Driver::run`] does them.
    pub hold_actions: bool,
    /// The server closed.
    pub closed: bool,
    unix_start: u64,
    enc: Encoder,
    dec: Decoder,
    /// Undecoded output, and a header block being read.
    raw: Vec<u8>,
    partial: Option<(u32, Vec<u8>, bool)>,
    owed: VecDeque<(u32, Action)>,
    bodies: BTreeMap<u32, Body>,
}

/// The most rounds one input may take before the driver calls it endless.
const MAX_ROUNDS: usize = 100_000;

impl<W: World> H2Driver<W> {
    /// A server just found to speak HTTP/2, nothing received yet.
    pub fn new(config: impl Into<Arc<Config>>, world: W, start: Start) -> Self {
        let now = Now::new(0, start.unix_secs);
        let server = H2Server::new(config.into(), now, start.seed, "192.0.2.1:5000");
        let mut d = H2Driver {
            server,
            now,
            world,
            frames: Vec::new(),
            replies: BTreeMap::new(),
            log: Vec::new(),
            hold_output: false,
            hold_actions: false,
            closed: false,
            unix_start: start.unix_secs,
            enc: Encoder::new(4096),
            dec: Decoder::new(4096, 1 << 20),
            raw: Vec::new(),
            partial: None,
            owed: VecDeque::new(),
            bodies: BTreeMap::new(),
        };
        d.settle();
        d
    }

    /// Past the preface: the client's SETTINGS (windows of 2^31 - 1 unless `window` says
    /// otherwise) and its ACK of ours.
    pub fn handshake(&mut self, window: Option<u32>) -> &mut Self {
        let mut b = PREFACE.to_vec();
        let w = window.unwrap_or(frame::MAX_WINDOW_SIZE);
        frame::write_settings(&mut b, &[Setting::InitialWindowSize(w)]);
        frame::write_settings_ack(&mut b);
        if window.is_none() {
            Frame::WindowUpdate {
                stream_id: 0,
                increment: frame::MAX_WINDOW_SIZE - 65_535,
            }
            .encode(&mut b);
        }
        self.send(&b)
    }

    /// The simulated clock moves on by `ms` (the wall clock with it).
    pub fn advance_ms(&mut self, ms: u64) -> &mut Self {
        let mono = self.now.mono_ms + ms;
        self.now = Now::new(mono, self.unix_start + mono / 1000);
        self
    }

    /// Hands the server bytes from the client, and runs until nothing moves.
    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.input(H2Input::Received(bytes))
    }

    /// Any input, then runs until nothing moves.
    pub fn input(&mut self, input: H2Input<'_>) -> &mut Self {
        self.server.handle(self.now, input);
        self.settle();
        self
    }

    /// Fires the server's deadline if it has passed (else nothing).
    pub fn fire_timeout(&mut self) -> &mut Self {
        self.input(H2Input::Timeout)
    }

    /// A header block in one HEADERS frame.
    pub fn headers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) -> &mut Self {
        let mut block = Vec::new();
        (self.enc).encode(fields.iter().map(|(n, v)| Field::new(*n, *v)), &mut block);
        let mut b = Vec::new();
        Frame::Headers {
            stream_id: id,
            fragment: &block,
            pad_len: None,
            priority: None,
            end_stream,
            end_headers: true,
        }
        .encode(&mut b);
        self.send(&b)
    }

    /// A request: pseudo-header fields for `method path` (authority `127.0.0.1:8080`),
    /// then `extra`.
    pub fn request(
        &mut self,
        id: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end_stream: bool,
    ) -> &mut Self {
        let mut fields = vec![
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1:8080"),
        ];
        fields.extend_from_slice(extra);
        self.headers(id, &fields, end_stream)
    }

    pub fn get(&mut self, id: u32, path: &str) -> &mut Self {
        self.request(id, "GET", path, &[], true)
    }

    pub fn data(&mut self, id: u32, data: &[u8], end_stream: bool) -> &mut Self {
        let mut b = Vec::new();
        Frame::Data {
            stream_id: id,
            data,
            pad_len: None,
            end_stream,
        }
        .encode(&mut b);
        self.send(&b)
    }

    pub fn window_update(&mut self, id: u32, increment: u32) -> &mut Self {
        let mut b = Vec::new();
        Frame::WindowUpdate {
            stream_id: id,
            increment,
        }
        .encode(&mut b);
        self.send(&b)
    }

    pub fn rst(&mut self, id: u32, code: u32) -> &mut Self {
        let mut b = Vec::new();
        Frame::RstStream {
            stream_id: id,
            code: ErrorCode(code),
        }
        .encode(&mut b);
        self.send(&b)
    }

    /// A frame built by hand.
    pub fn raw_frame(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) -> &mut Self {
        let mut b = Vec::new();
        FrameHeader {
            length: payload.len() as u32,
            kind,
            flags,
            stream_id: id,
        }
        .write(&mut b);
        b.extend_from_slice(payload);
        self.send(&b)
    }

    /// The answer of a stream (empty if none came).
    pub fn reply(&self, id: u32) -> Reply {
        self.replies.get(&id).cloned().unwrap_or_default()
    }

    /// The code of the server's GOAWAY, if it sent one.
    pub fn goaway(&self) -> Option<u32> {
        self.frames.iter().find_map(|f| match f {
            Frame2::GoAway { code, .. } => Some(*code),
            _ => None,
        })
    }

    /// Executes the actions held back ([`H2Driver::hold_actions`]) and runs on.
    pub fn run(&mut self) -> &mut Self {
        let hold = std::mem::replace(&mut self.hold_actions, false);
        self.settle();
        self.hold_actions = hold;
        self
    }

    /// Executes actions and feeds bodies until nothing moves; reads the output.
    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut moved = false;
            while let Some(action) = self.server.poll() {
                moved = true;
                match action {
                    H2Action::Done(id) => {
                        self.log.push((id, None));
                        self.bodies.remove(&id);
                        self.owed.retain(|(i, _)| *i != id);
                    }
                    H2Action::Stream(id, action) => {
                        self.log.push((id, Some(action.clone())));
                        self.owed.push_back((id, action));
                    }
                }
            }
            if !self.hold_actions {
                while let Some((id, action)) = self.owed.pop_front() {
                    moved = true;
                    self.execute(id, action);
                }
            }
            moved |= self.feed_bodies();
            if !self.hold_output && !self.server.output().is_empty() {
                let mut out = Vec::new();
                self.server.take_output(&mut out, self.now);
                self.read(&out);
                moved = true;
            }
            if !moved {
                self.closed = self.server.is_closed();
                return;
            }
        }
        panic!("the HTTP/2 server never settles");
    }

    fn execute(&mut self, id: u32, action: Action) {
        let input = |r| H2Input::Stream(id, r);
        let now = self.now;
        let w = &mut self.world;
        match action {
            Action::OpenFile(path) => {
                let r = w.open(path.as_str());
                self.server.handle(now, input(Input::FileOpened(r)));
            }
            Action::ListDir(dir) => {
                let r = w.list(dir.as_str());
                self.server.handle(now, input(dir_listed(&r)));
            }
            Action::WriteUpload { name, body } => {
                let r = w.store(&name, &body);
                self.server.handle(now, input(Input::UploadWritten(r)));
            }
            Action::Verify(c) => {
                let ok = w.verify(&c);
                self.server.handle(now, input(Input::Verified(ok)));
            }
            Action::BeginUpload { target } => {
                let r = w.begin(&target);
                self.server.handle(now, input(Input::UploadBegun(r)));
            }
            Action::WriteChunk(bytes) => {
                let r = w.chunk(&bytes);
                self.server.handle(now, input(Input::ChunkWritten(r)));
            }
            Action::CommitUpload { target, replace } => {
                let r = w.commit(&target, replace);
                self.server.handle(now, input(Input::UploadCommitted(r)));
            }
            Action::AbortUpload => w.abort(),
            Action::DeleteFile(path) => {
                let r = w.delete(path.as_str());
                self.server.handle(now, input(Input::Deleted(r)));
            }
            Action::Compress { coding, stream } => {
                let r: Compressed = w.compress(coding, stream);
                self.server.handle(now, input(Input::Compressed(r)));
            }
            Action::Archive { dir, user, .. } => {
                let r = w.archive(dir.as_str(), user.as_deref());
                self.server.handle(now, input(Input::Archived(r)));
            }
            Action::SendFile { offset, len } => {
                // An archive's length is unknown (`u64::MAX`): 1,000 bytes stand for it.
                let len = if len == u64::MAX { 1000 } else { len };
                let end = offset.saturating_add(len);
                self.bodies.insert(id, Body { pos: offset, end });
            }
            Action::Send(_) | Action::Continue | Action::Close => {
                panic!("the server handed out {action:?} for stream {id}")
            }
        }
    }

    /// One piece of each body the windows take (at least a frame's worth, as a session
    /// reads); whether any moved.
    fn feed_bodies(&mut self) -> bool {
        let mut moved = false;
        let ids: Vec<u32> = self.bodies.keys().copied().collect();
        for id in ids {
            let Some(room) = self.server.body_room(id) else {
                continue;
            };
            let Some(b) = self.bodies.get_mut(&id) else {
                continue;
            };
            let n = (room.clamp(16 << 10, 64 << 10) as u64).min(b.end - b.pos) as usize;
            let bytes: Vec<u8> = (0..n as u64).map(|i| ((b.pos + i) % 251) as u8).collect();
            b.pos += n as u64;
            let last = b.pos >= b.end;
            if last {
                self.bodies.remove(&id);
            }
            self.server.send_body(self.now, id, &bytes, last);
            moved = true;
        }
        moved
    }

    /// Decodes the server's output, checking every frame.
    fn read(&mut self, bytes: &[u8]) {
        let mut raw = std::mem::take(&mut self.raw);
        raw.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            match frame::decode(&raw[pos..], MAX_FRAME_SIZE_LIMIT) {
                Ok(Decoded::Frame { frame, len }) => {
                    let f = frame_of(&frame, &mut self.partial, &mut self.dec);
                    pos += len;
                    if let Some(f) = f {
                        self.record(f, &frame);
                    }
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => panic!("the server wrote a bad frame: {e:?}"),
            }
        }
        raw.drain(..pos);
        self.raw = raw;
    }

    fn record(&mut self, f: Frame2, frame: &Frame<'_>) {
        match &f {
            Frame2::Headers {
                id,
                fields,
                end_stream,
            } => {
                let r = self.replies.entry(*id).or_default();
                let status: u16 = fields
                    .first()
                    .filter(|(n, _)| n == ":status")
                    .and_then(|(_, v)| v.parse().ok())
                    .expect("a response head starts with :status");
                assert!(!r.ended, "HEADERS after END_STREAM on {id}");
                if status < 200 {
                    r.interim.push(status);
                } else {
                    assert!(r.fields.is_empty(), "two final heads on {id}");
                    r.fields = fields.clone();
                }
                r.ended = *end_stream;
            }
            Frame2::Data { id, end_stream, .. } => {
                let r = self.replies.entry(*id).or_default();
                assert!(!r.fields.is_empty(), "DATA before the head on {id}");
                assert!(!r.ended, "DATA after END_STREAM on {id}");
                if let Frame::Data { data, .. } = frame {
                    r.body.extend_from_slice(data);
                }
                r.ended = *end_stream;
            }
            Frame2::Rst { id, code } => {
                self.replies.entry(*id).or_default().reset = Some(*code);
            }
            _ => {}
        }
        self.frames.push(f);
    }
}

fn frame_of(
    frame: &Frame<'_>,
    partial: &mut Option<(u32, Vec<u8>, bool)>,
    dec: &mut Decoder,
) -> Option<Frame2> {
    let id = frame.stream_id();
    if let Some((pid, ..)) = partial {
        assert!(
            matches!(frame, Frame::Continuation { .. }) && id == *pid,
            "a frame inside a header block: {frame:?}"
        );
    }
    let block_end = |partial: &mut Option<(u32, Vec<u8>, bool)>, dec: &mut Decoder| {
        let (id, block, end_stream) = partial.take()?;
        let list = dec
            .decode(&block)
            .expect("the server's header block decodes");
        let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 fields");
        Some(Frame2::Headers {
            id,
            fields: list.into_iter().map(|(n, v)| (text(n), text(v))).collect(),
            end_stream,
        })
    };
    Some(match *frame {
        Frame::Settings { ack, .. } => Frame2::Settings { ack },
        Frame::Headers {
            fragment,
            end_stream,
            end_headers,
            ..
        } => {
            *partial = Some((id, fragment.to_vec(), end_stream));
            return if end_headers {
                block_end(partial, dec)
            } else {
                None
            };
        }
        Frame::Continuation {
            fragment,
            end_headers,
            ..
        } => {
            let p = partial.as_mut().expect("CONTINUATION without HEADERS");
            p.1.extend_from_slice(fragment);
            return if end_headers {
                block_end(partial, dec)
            } else {
                None
            };
        }
        Frame::Data {
            data, end_stream, ..
        } => Frame2::Data {
            id,
            len: data.len(),
            end_stream,
        },
        Frame::RstStream { code, .. } => Frame2::Rst { id, code: code.0 },
        Frame::GoAway {
            last_stream_id,
            code,
            ..
        } => Frame2::GoAway {
            last: last_stream_id,
            code: code.0,
        },
        Frame::WindowUpdate { increment, .. } => Frame2::WindowUpdate { id, increment },
        Frame::Ping { ack, .. } => Frame2::Ping { ack },
        ref other => panic!("the server wrote {other:?}"),
    })
}

/// The frame kinds and flags, for raw frames.
pub mod raw {
    pub use crate::h2::frame::flags;
    pub use crate::h2::frame::kind;
}
