//! Answering the browser's sign-in dialog, over a second Chrome DevTools connection.
//!
//! A `401` with `WWW-Authenticate: Basic` to a page's own request (`XMLHttpRequest`,
//! `fetch`) makes Chromium ask the person for a user name and password, as it does for
//! a page. Headless Chromium asks too, and as nobody answers, the request waits forever;
//! WebDriver has no command for this dialog, and chromedriver's `goog/cdp/execute` sends
//! commands but cannot receive the event that announces the dialog. So [`SignInDialog`]
//! opens its own DevTools connection to the tab (a WebSocket to the `debuggerAddress`
//! chromedriver reports), enables `Fetch` with `handleAuthRequests` for requests to
//! `/upload` only, and answers each `Fetch.authRequired` the way a person would: cancel
//! (the page then gets the 401) or give a user name and password (Chromium sends the
//! request again with them, and keeps them for the realm). Requests paused by the
//! interception (`Fetch.requestPaused`) are continued unchanged. Closing the connection
//! (on drop) ends the interception.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Session, WAIT};
use crate::Client;

/// What the "person" answers when the browser asks for a sign-in.
#[derive(Clone, Debug)]
pub(super) enum Answer {
    Cancel,
    SignIn { user: String, password: String },
}

/// A DevTools connection that answers the tab's sign-in dialogs (see the module doc).
pub(super) struct SignInDialog {
    writer: Arc<Mutex<TcpStream>>,
    answer: Arc<Mutex<Answer>>,
    asked: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl SignInDialog {
    /// Connects to the session's tab and starts answering with `answer`.
    pub(super) fn attach(session: &Session, answer: Answer) -> SignInDialog {
        let address = session
            .debugger_address
            .clone()
            .expect("chromedriver reports goog:chromeOptions.debuggerAddress");
        let port: u16 = address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("debuggerAddress {address:?}"));
        // chromedriver's window handle is the DevTools id of the tab.
        let handle = session.call("GET", "/window", None);
        let handle = handle.as_str().expect("the window handle").to_owned();
        let targets = devtools_get(port, "/json/list");
        let target = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["id"] == json!(handle)))
            .unwrap_or_else(|| panic!("no DevTools target {handle} in {targets}"));
        let ws_url = target["webSocketDebuggerUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no webSocketDebuggerUrl in {target}"));
        let path = ws_url
            .split_once("//")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_else(|| panic!("webSocketDebuggerUrl {ws_url:?}"));

        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("write timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone the socket"));
        let mut writer = stream;
        // The opening handshake (RFC 6455 §4.1); no Origin, which Chromium would refuse.
        write!(
            writer,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("send the WebSocket handshake");
        reader
            .get_ref()
            .set_read_timeout(Some(WAIT))
            .expect("read timeout");
        let mut status = String::new();
        reader
            .read_line(&mut status)
            .expect("read the handshake answer");
        assert!(
            status.starts_with("HTTP/1.1 101"),
            "DevTools refused the WebSocket: {status:?}"
        );
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read the handshake");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }

        // Fetch.enable, and its answer, before anything is uploaded.
        let enable = json!({
            "id": 1,
            "method": "Fetch.enable",
            "params": {
                "handleAuthRequests": true,
                "patterns": [{ "urlPattern": "*/upload", "requestStage": "Request" }],
            },
        });
        send_text(&mut writer, &enable.to_string()).expect("send Fetch.enable");
        let started = Instant::now();
        loop {
            let message = read_message(&mut reader)
                .unwrap_or_else(|e| panic!("no answer to Fetch.enable: {e}"));
            let message: Value = serde_json::from_str(&message).expect("DevTools sends JSON");
            if message["id"] == json!(1) {
                assert!(message.get("error").is_none(), "Fetch.enable: {message}");
                break;
            }
            assert!(started.elapsed() < WAIT, "no answer to Fetch.enable");
        }
        reader
            .get_ref()
            .set_read_timeout(None)
            .expect("no read timeout");

        let writer = Arc::new(Mutex::new(writer));
        let answer = Arc::new(Mutex::new(answer));
        let asked = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let (writer, answer, asked, errors) = (
                Arc::clone(&writer),
                Arc::clone(&answer),
                Arc::clone(&asked),
                Arc::clone(&errors),
            );
            thread::spawn(move || answer_events(reader, &writer, &answer, &asked, &errors))
        };
        SignInDialog {
            writer,
            answer,
            asked,
            errors,
            reader: Some(reader),
        }
    }

    /// From now on, answer the dialog with `answer`.
    pub(super) fn answer_with(&self, answer: Answer) {
        *self.answer.lock().expect("answer") = answer;
    }

    /// How many times the browser asked for a sign-in so far; fails on any error
    /// DevTools reported to the answers.
    pub(super) fn asked(&self) -> usize {
        let errors = self.errors.lock().expect("errors");
        assert!(errors.is_empty(), "DevTools refused an answer: {errors:?}");
        self.asked.load(Ordering::SeqCst)
    }
}

impl Drop for SignInDialog {
    fn drop(&mut self) {
        if let Ok(stream) = self.writer.lock() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread: answers `Fetch.requestPaused` and `Fetch.authRequired` until the
/// connection closes.
fn answer_events(
    mut reader: BufReader<TcpStream>,
    writer: &Mutex<TcpStream>,
    answer: &Mutex<Answer>,
    asked: &AtomicUsize,
    errors: &Mutex<Vec<String>>,
) {
    let mut next_id = 100u64;
    while let Ok(message) = read_message(&mut reader) {
        let Ok(message) = serde_json::from_str::<Value>(&message) else {
            continue;
        };
        if let Some(error) = message.get("error") {
            errors.lock().expect("errors").push(error.to_string());
            continue;
        }
        let request_id = message["params"]["requestId"].clone();
        let reply = match message["method"].as_str() {
            Some("Fetch.requestPaused") => {
                json!({ "method": "Fetch.continueRequest", "params": { "requestId": request_id } })
            }
            Some("Fetch.authRequired") => {
                asked.fetch_add(1, Ordering::SeqCst);
                let response = match answer.lock().expect("answer").clone() {
                    Answer::Cancel => json!({ "response": "CancelAuth" }),
                    Answer::SignIn { user, password } => json!({
                        "response": "ProvideCredentials",
                        "username": user,
                        "password": password,
                    }),
                };
                json!({
                    "method": "Fetch.continueWithAuth",
                    "params": { "requestId": request_id, "authChallengeResponse": response },
                })
            }
            _ => continue,
        };
        next_id += 1;
        let mut reply = reply;
        reply["id"] = json!(next_id);
        let mut stream = writer.lock().expect("writer");
        if send_text(&mut stream, &reply.to_string()).is_err() {
            break;
        }
    }
}

/// A GET to the DevTools HTTP endpoint; its JSON.
fn devtools_get(port: u16, path: &str) -> Value {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut client = Client::from_stream(stream);
    write!(
        client.stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("ask DevTools");
    let answer = client
        .read_unchecked(false)
        .unwrap_or_else(|e| panic!("GET {path} from DevTools: {e}"));
    assert_eq!(answer.status, 200, "GET {path} from DevTools");
    serde_json::from_slice(&answer.body).expect("DevTools answers JSON")
}

/// One masked text frame (a client's frames are masked, RFC 6455 §5.3).
fn send_text(stream: &mut TcpStream, text: &str) -> std::io::Result<()> {
    let payload = text.as_bytes();
    let mut frame = vec![0x81u8];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x5a, 0x17, 0xc3, 0x8e];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame)
}

/// The next text message (continuation frames joined; pings answered by nothing, as
/// DevTools sends none); an error when the connection closes.
fn read_message(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        reader.read_exact(&mut head)?;
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let masked = head[1] & 0x80 != 0;
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                reader.read_exact(&mut n)?;
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                reader.read_exact(&mut n)?;
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut mask = [0u8; 4];
        if masked {
            reader.read_exact(&mut mask)?;
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= 64 << 20)
            .ok_or_else(|| std::io::Error::other("a WebSocket frame over 64 MiB"))?;
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload)?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        match opcode {
            0x8 => return Err(std::io::Error::other("DevTools closed the WebSocket")),
            0x1 | 0x0 => message.extend_from_slice(&payload),
            _ => continue, // ping, pong, binary: not used by DevTools here
        }
        if fin {
            return String::from_utf8(message).map_err(std::io::Error::other);
        }
    }
}
