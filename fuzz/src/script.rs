//! The `connection` script: a hand-written byte decoder ([`Reader`]) and the opcodes
//! it decodes into timed inputs for one connection in the [`Harness`], the fake
//! runtime's answers read from the same input ([`Scripted`]).

use protocol::sim::dir_listed;
use protocol::Input;

use crate::fake::{dir_answer, file_answer, upload_answer, Scripted};
use crate::harness::Harness;
use crate::MAX_BODIES;

/// Realistic requests (and pieces of requests) a script can send with one opcode, so
/// that the fuzzer starts deep inside the state machine.
pub const CANNED: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"HEAD /index.html HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nRange: bytes=2-5\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: br, gzip\r\n\r\n",
    b"GET /logo.png HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-None-Match: *\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"{}",
    b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /a.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /%2e%2e/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
    b"\r\n",
    b"POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET http://127.0.0.1:8080/docs/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nRange: bytes=-3\r\nIf-Range: \"0-0.0\"\r\n\r\n",
    b"GET /style.css HTTP/1.1\r\nHost: [::1]:8080\r\nAccept-Encoding: gzip\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 5\r\n\r\n[1,2",
    // The preconditions (412), Expect in HTTP/1.0 (ignored) and on a refused method,
    // a malformed version (400 to a HEAD: no body), a bad Host in absolute form.
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-Match: \"x\", W/\"y\"\r\n\r\n",
    b"HEAD /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    b"POST /upload HTTP/1.0\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD / HTTP/01.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"\r\n\r\nGET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-None-Match: \"a\"\r\nIf-Match: *\r\n\r\n",
    // Directories (listings on: a redirect without the slash, a listing with it): HTML,
    // JSON, HEAD, a query to keep, `//` that must not become a protocol-relative
    // redirect, escaped and non-ASCII names, absolute form.
    // Credentials (`--auth`): the rules' user (fuzz:fuzz), an unknown one, garbage; an
    // upload with them behind `Expect: 100-continue`.
    b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Basic ZnV6ejpmdXp6\r\n\r\n",
    b"GET /pub/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Basic !!!\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Basic ZnV6ejpmdXp6\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    // Streamed uploads (the fuzzing rules let anyone write): a PUT, a PUT over a file
    // with If-Match, a chunked PUT, a DELETE, a multipart form with two files and a field.
    b"PUT /new.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 11\r\n\r\nhello world",
    b"PUT /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIf-Match: *\r\nContent-Length: 3\r\n\r\nabc",
    b"PUT /pub/c.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"DELETE /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 168\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nAAA\r\n--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nfield\r\n--B\r\nContent-Disposition: form-data; name=\"g\"; filename=\"../b.txt\"\r\n\r\nBB\r\n--B--\r\n",
    b"GET /pub HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /pub/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"HEAD /pub/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /pub/?sort=name HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: application/json\r\n\r\n",
    b"GET //pub?x=%20&y=/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"HEAD /a%20b/c%0Ad HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET http://127.0.0.1:8080/docs?q#f HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /caf%C3%A9/%3Cb%3E/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/html;q=0.5, application/json\r\n\r\n",
    // Compression on the fly: q-values, identity refused, a HEAD, a variant's tag, and
    // HTTP/1.0 (no chunked framing).
    b"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: zstd, br;q=0.9, gzip;q=0.5\r\n\r\n",
    b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: identity;q=0\r\n\r\n",
    b"HEAD /data.json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: gzip\r\nIf-None-Match: \"1-2.3-gzip\"\r\n\r\n",
    b"GET /style.css HTTP/1.0\r\nAccept-Encoding: *;q=0.1, br\r\n\r\n",
    // Folders as zip archives (with listings on): HTTP/1.1, HTTP/1.0, HEAD, the root.
    b"GET /pub/?zip HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /pub/?zip HTTP/1.0\r\n\r\n",
    b"HEAD /?a=1&zip HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
];

/// Reads a fuzz input front to back; past the end every read is zero or empty, so every
/// input decodes to some script.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A chunk length: one byte below 200 is the length itself, 200.. are multiples of
    /// 256 bytes (up to 14 KiB, past the 8 KiB head limit).
    pub fn chunk_len(&mut self) -> usize {
        match self.byte() {
            b @ 0..=199 => usize::from(b),
            b => (usize::from(b - 200) + 1) * 256,
        }
    }

    /// How long the next input comes after the last one, from the high nibble of an
    /// opcode (the next bytes for the last two classes).
    pub fn time_step(&mut self, class: u8) -> u64 {
        match class {
            1 => 1,
            2 => 10,
            3 => 100,
            4 => 250,
            5 => 999,
            6 => 1_000,
            7 => 1_500,
            8 => 2_000,
            9 => 3_000,
            10 => u64::from(self.byte()) * 16,
            11 => u64::from(self.u16()),
            _ => 0,
        }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// The `connection` target: decodes `data` as a script and runs it.
///
/// Byte 0 picks `max_body` from [`MAX_BODIES`] (bits 0–1) and turns directory listings
/// on (bit 2). Then one opcode per step: its high nibble is how much time passes before
/// the step's input ([`Reader::time_step`]), its low nibble the input:
/// 0, 1 bytes (a length from [`Reader::chunk_len`], then that many bytes);
/// 2, 15 a canned request (next byte indexes [`CANNED`]); 3 EOF; 4 `Timeout`;
/// 5 jump to the deadline (next byte odd: 1 ms before it), then `Timeout`;
/// 6 the runtime does what is awaited (next byte the choice, see [`Harness::runtime`];
/// a stray `Written` if nothing is); 7 `FileOpened` (choice byte, expected or not);
/// 8 `UploadWritten` (choice byte, expected or not); 9 `Written`; 10 `WriteFailed`;
/// 11 `Drain`; 12 the runtime does everything awaited, the step's time before each
/// input (up to 64); 13 `Received` of nothing; 14 `DirListed` (choice byte and entries,
/// see [`dir_answer`], expected or not).
/// At the end everything awaited is done, EOF is sent, and the connection must close.
pub fn run_script(data: &[u8]) {
    script_harness(data);
}

/// Runs the script like [`run_script`] and hands back the harness (`h.driver.log`
/// holds every action), for looking at what a script does.
pub fn script_harness(data: &[u8]) -> Harness<Scripted<'_>> {
    let mut r = Reader::new(data);
    let flags = r.byte();
    let max_body = MAX_BODIES[usize::from(flags % 4)];
    let mut h = Harness::new(max_body, flags & 4 != 0, Scripted::new(r));
    let mut steps = 0;
    while !h.r().is_empty() && steps < 512 {
        steps += 1;
        h.op();
    }
    h.finish();
    h
}

impl<'a> Harness<Scripted<'a>> {
    /// The rest of the input.
    fn r(&mut self) -> &mut Reader<'a> {
        &mut self.driver.world.r
    }

    /// Decodes and runs one opcode.
    fn op(&mut self) {
        let op = self.r().byte();
        let ms = self.r().time_step(op >> 4);
        if op & 0x0f == 12 {
            self.catch_up(ms, 64);
            return;
        }
        self.advance(ms);
        match op & 0x0f {
            0 | 1 => {
                let n = self.r().chunk_len();
                let bytes = self.r().take(n);
                self.receive(bytes);
            }
            2 | 15 => {
                let i = usize::from(self.r().byte()) % CANNED.len();
                self.receive(CANNED[i]);
            }
            3 => self.step(Input::Eof),
            4 => self.step(Input::Timeout),
            5 => {
                let before = self.r().byte() % 2 == 1;
                self.at_deadline(before);
            }
            6 => {
                let choice = self.r().byte();
                self.runtime(choice);
            }
            7 => {
                let choice = self.r().byte();
                let result = file_answer(choice, self.r());
                self.step(Input::FileOpened(result));
            }
            8 => {
                let choice = self.r().byte();
                self.step(Input::UploadWritten(upload_answer(choice)));
            }
            14 => {
                let choice = self.r().byte();
                let answer = dir_answer(choice, self.r());
                self.step(dir_listed(&answer));
            }
            9 => self.step(Input::Written),
            10 => self.step(Input::WriteFailed),
            11 => self.step(Input::Drain),
            _ => self.receive(&[]),
        }
    }

    /// Does one thing the connection waits for, as a runtime would, answering from the
    /// input with this choice byte (see [`Scripted`]): opens the file, stores the
    /// upload, lists the directory or reports the answer written. With nothing awaited,
    /// hands in a stray `Written`.
    pub fn runtime(&mut self, choice: u8) {
        self.driver.world.choice = choice;
        self.serve();
    }

    /// Does everything the connection waits for, `ms` apart (a choice byte read before
    /// each answer), up to `limit` inputs; returns whether it ended with nothing awaited.
    pub fn catch_up(&mut self, ms: u64, limit: usize) -> bool {
        self.serve_all(ms, limit, |w| w.choice = w.r.byte())
    }

    /// The end of every script: catch up, half-close, catch up; the connection must
    /// close.
    pub fn finish(&mut self) {
        assert!(
            self.catch_up(1, 256),
            "still waiting for the runtime after 256 inputs"
        );
        self.step(Input::Eof);
        assert!(
            self.catch_up(1, 256),
            "still waiting for the runtime after 256 inputs"
        );
        assert!(
            self.checker.closed,
            "after EOF and everything written the connection is still open"
        );
        assert!(
            self.checker.finals as usize <= self.shadow.requests.len() + 1,
            "more responses than requests"
        );
    }
}
