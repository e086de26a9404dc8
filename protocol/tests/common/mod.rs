//! A test driver for `protocol::Connection`: feeds bytes, answers file and upload
//! actions from a fake file system, and turns the actions into values easy to assert on.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use protocol::{
    Action, Config, Connection, DirEntry, FileError, FileMeta, Input, Listing, Now, UploadError,
};

/// Declares a test that runs natively and under wasm-bindgen-test.
#[macro_export]
macro_rules! t {
    ($name:ident $body:block) => {
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        fn $name() $body
    };
}

/// What came out of the connection, simplified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Resp(Resp),
    Continue,
    Open(String),
    SendFile { offset: u64, len: u64 },
    Write(String),
    List(String),
    Close,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

pub const T0: u64 = 1_800_000_000;
pub const MTIME: u64 = 1_700_000_000;

/// A fake web root.
pub fn files() -> HashMap<&'static str, Result<FileMeta, FileError>> {
    let f = |len| {
        Ok(FileMeta {
            len,
            mtime_secs: MTIME,
            mtime_nanos: 0,
            is_dir: false,
        })
    };
    let mut m = HashMap::new();
    m.insert("index.html", f(1133));
    m.insert("logo.png", f(7028));
    m.insert("sample.txt", f(218));
    m.insert("photo.jpg", f(10));
    m.insert("photo.jpeg", f(10));
    m.insert("page.htm", f(10));
    m.insert("uploads/a.json", f(7));
    m.insert("style.css", f(50));
    m.insert("app.js", f(50));
    m.insert("pic.svg", f(50));
    m.insert("favicon.ico", f(50));
    m.insert("anim.gif", f(50));
    m.insert("img.webp", f(50));
    m.insert("mod.wasm", f(50));
    m.insert("notes.qqq", f(5));
    m.insert("README", f(5));
    m.insert("empty.html", f(0));
    m.insert("big.html", f(1 << 30));
    m.insert("docs/index.html", f(42));
    m.insert("app.js.br", f(20));
    m.insert("app.js.gz", f(30));
    m.insert("style.css.gz", f(25));
    m.insert("only.js.br", f(9));
    m.insert(
        "uploads",
        Ok(FileMeta {
            len: 4096,
            mtime_secs: MTIME,
            mtime_nanos: 0,
            is_dir: true,
        }),
    );
    m.insert(
        "docs",
        Ok(FileMeta {
            len: 4096,
            mtime_secs: MTIME,
            mtime_nanos: 0,
            is_dir: true,
        }),
    );
    m.insert("escape.html", Err(FileError::Forbidden));
    m.insert("broken.html", Err(FileError::Other));
    m
}

pub fn config() -> Config {
    Config::new("127.0.0.1", 8080, &[])
}

/// Drives one connection the way a runtime does, with time moving: opening a file takes
/// `open_ms`, writing an upload `upload_ms`, and writing an answer out `write_ms` (then
/// [`Input::Written`] is handed in). Every `Date` sent is checked against the clock.
pub struct Driver {
    pub conn: Connection,
    pub now: Now,
    pub files: HashMap<&'static str, Result<FileMeta, FileError>>,
    /// Directories a `ListDir` reads: their entries, and how many more were not read.
    pub dirs: HashMap<String, Result<(Vec<DirEntry>, u64), FileError>>,
    pub upload_result: Result<(), UploadError>,
    /// Results for the next uploads, in order, before `upload_result` applies.
    pub upload_queue: std::collections::VecDeque<Result<(), UploadError>>,
    pub uploads: Vec<(String, Vec<u8>)>,
    pub out: Vec<Out>,
    pub closed: bool,
    pub open_ms: u64,
    pub upload_ms: u64,
    pub write_ms: u64,
    /// Leave answers unwritten (no `Written`) until [`Driver::written`].
    pub hold_writes: bool,
    /// Bytes handed out and not yet reported written.
    pub unwritten: bool,
}

impl Driver {
    pub fn new() -> Self {
        Self::with(config())
    }

    pub fn with(config: Config) -> Self {
        let now = Now::new(0, T0);
        Driver {
            conn: Connection::new(Arc::new(config), now, [42; 16], "test-peer"),
            now,
            files: files(),
            dirs: HashMap::new(),
            upload_result: Ok(()),
            upload_queue: Default::default(),
            uploads: Vec::new(),
            out: Vec::new(),
            closed: false,
            open_ms: 250,
            upload_ms: 1_500,
            write_ms: 40,
            hold_writes: false,
            unwritten: false,
        }
    }

    /// Hands in one input at the driver's time, then runs what it asks for.
    pub fn input(&mut self, input: Input<'_>) -> &mut Self {
        self.conn.handle(self.now, input);
        self.drain();
        self
    }

    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.input(Input::Received(bytes))
    }

    pub fn eof(&mut self) -> &mut Self {
        self.input(Input::Eof)
    }

    pub fn advance_ms(&mut self, ms: u64) -> &mut Self {
        self.now.mono_ms += ms;
        self.now.unix_secs = T0 + self.now.mono_ms / 1000;
        self
    }

    pub fn fire_timeout(&mut self) -> &mut Self {
        self.input(Input::Timeout)
    }

    /// Reports the held answers written (after `write_ms`).
    pub fn written(&mut self) -> &mut Self {
        self.hold_writes = false;
        self.drain();
        self
    }

    fn drain(&mut self) {
        loop {
            while let Some(a) = self.conn.poll() {
                assert!(!self.closed, "action after Close: {a:?}");
                match a {
                    Action::Send(bytes) => {
                        self.unwritten = true;
                        self.parse_sent(&bytes);
                    }
                    Action::OpenFile(p) => {
                        let path = p.as_str().to_string();
                        self.out.push(Out::Open(path.clone()));
                        self.advance_ms(self.open_ms);
                        let result = match self.files.get(path.as_str()) {
                            Some(r) => *r,
                            None => Err(FileError::NotFound),
                        };
                        self.conn.handle(self.now, Input::FileOpened(result));
                    }
                    Action::ListDir(p) => {
                        let path = p.as_str().to_string();
                        self.out.push(Out::List(path.clone()));
                        self.advance_ms(self.open_ms);
                        let found = self
                            .dirs
                            .get(&path)
                            .cloned()
                            .unwrap_or(Err(FileError::NotFound));
                        let result = match &found {
                            Ok((entries, unread)) => Ok(Listing {
                                entries,
                                unread: *unread,
                            }),
                            Err(e) => Err(*e),
                        };
                        self.conn.handle(self.now, Input::DirListed(result));
                    }
                    Action::SendFile { offset, len } => {
                        self.unwritten = true;
                        self.out.push(Out::SendFile { offset, len });
                    }
                    Action::WriteUpload { name, body } => {
                        self.out.push(Out::Write(name.clone()));
                        self.uploads.push((name, body.to_vec()));
                        self.advance_ms(self.upload_ms);
                        let result = self.upload_queue.pop_front().unwrap_or(self.upload_result);
                        self.conn.handle(self.now, Input::UploadWritten(result));
                    }
                    Action::Close => {
                        self.out.push(Out::Close);
                        self.closed = true;
                    }
                }
            }
            if !self.unwritten || self.closed || self.hold_writes {
                return;
            }
            self.advance_ms(self.write_ms);
            self.unwritten = false;
            self.conn.handle(self.now, Input::Written);
        }
    }

    /// Splits a Send into its responses (a Send may hold a head plus an inline body).
    fn parse_sent(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut headers);
            let n = match r.parse(bytes) {
                Ok(httparse::Status::Complete(n)) => n,
                other => panic!(
                    "unparseable response {other:?}: {:?}",
                    String::from_utf8_lossy(bytes)
                ),
            };
            let status = r.code.unwrap_or(0);
            let hs: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            bytes = &bytes[n..];
            if let Some((_, date)) = hs.iter().find(|(k, _)| k.eq_ignore_ascii_case("date")) {
                let sent = httpdate::parse_http_date(date).expect("a valid Date");
                let now =
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.now.unix_secs);
                assert_eq!(sent, now, "Date is not the time the answer was made");
            }
            if status == 100 {
                self.out.push(Out::Continue);
                continue;
            }
            let len: usize = hs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().expect("numeric content-length"))
                .unwrap_or(0);
            // A body is inline when the bytes are here; else a SendFile follows (or HEAD).
            let take = if bytes.len() >= len { len } else { 0 };
            let body = bytes[..take].to_vec();
            bytes = &bytes[take..];
            self.out.push(Out::Resp(Resp {
                status,
                headers: hs,
                body,
            }));
        }
    }

    /// The responses only.
    pub fn responses(&self) -> Vec<&Resp> {
        self.out
            .iter()
            .filter_map(|o| if let Out::Resp(r) = o { Some(r) } else { None })
            .collect()
    }

    /// The one response (asserts there is exactly one).
    pub fn only(&self) -> &Resp {
        let r = self.responses();
        assert_eq!(r.len(), 1, "expected one response, got {:#?}", self.out);
        r[0]
    }

    pub fn status(&self) -> u16 {
        self.only().status
    }
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

/// One request through a fresh connection.
pub fn one(req: &[u8]) -> Driver {
    let mut d = Driver::new();
    d.send(req);
    d
}

/// `GET path` with a good Host.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n").into_bytes()
}

/// `METHOD path` with a good Host and extra header lines (each ending in \r\n); a body
/// after the head goes in `extra` after an empty line (`"...\r\n\r\nBODY"`), and then
/// nothing is appended after it.
pub fn req(method: &str, path: &str, extra: &str) -> Vec<u8> {
    let head_end = if extra.contains("\r\n\r\n") {
        ""
    } else {
        "\r\n"
    };
    format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{extra}{head_end}").into_bytes()
}

/// A JSON upload.
pub fn upload(body: &str) -> Vec<u8> {
    format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
