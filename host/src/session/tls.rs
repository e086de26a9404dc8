//! TLS inside the session: rustls's `ServerConnection` is itself sans-IO (records in,
//! records out), so the session hands it the bytes the runtime read and takes the
//! records it makes into the session's output buffer; the socket stays the runtime's.
//!
//! A plaintext answer is encrypted whole into the output as soon as the core hands it
//! out (rustls's own buffer is emptied after each write, so it never refuses); a file
//! body is read and encrypted one chunk at a time ([`CHUNK`]), so a download holds at
//! most one chunk's records.

use std::io::{self, Read, Write};
use std::sync::Arc;

/// The most plaintext of a file read and encrypted per step.
pub(super) const CHUNK: usize = 64 * 1024;

/// Why a TLS connection cannot go on.
#[derive(Debug)]
pub enum TlsError {
    /// The client sent plain HTTP to the HTTPS port (answered with a plain 400).
    PlainHttp,
    /// The client closed in the middle of the handshake.
    ClosedInHandshake,
    /// rustls refused what came (a garbage `ClientHello`, an unknown SNI, a bad record);
    /// its alert is in the output.
    Refused(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::PlainHttp => f.write_str("plain HTTP sent to the HTTPS port"),
            TlsError::ClosedInHandshake => {
                f.write_str("TLS: the client closed during the handshake")
            }
            TlsError::Refused(e) => write!(f, "TLS: {e}"),
        }
    }
}

/// The TLS state of one connection.
pub(super) struct Tls {
    conn: rustls::ServerConnection,
    /// Whether the first byte was looked at (TLS, or plain HTTP by mistake).
    checked: bool,
}

impl Tls {
    pub(super) fn new(config: Arc<rustls::ServerConfig>) -> io::Result<Tls> {
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Tls {
            conn,
            checked: false,
        })
    }

    pub(super) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// ALPN chose HTTP/2.
    pub(super) fn h2(&self) -> bool {
        self.conn.alpn_protocol() == Some(b"h2")
    }

    /// Takes the records read from the socket, and hands every byte of plaintext they
    /// hold to `deliver`. `Ok(true)`: the peer said `close_notify` (the end of the stream).
    pub(super) fn receive(
        &mut self,
        mut bytes: &[u8],
        out: &mut Vec<u8>,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, TlsError> {
        if !self.checked {
            // A TLS record starts with a content type (20–23); a request line with a
            // letter: plain HTTP to the HTTPS port.
            match bytes.first() {
                Some(b) if b.is_ascii_alphabetic() => return Err(TlsError::PlainHttp),
                Some(_) => self.checked = true,
                None => {}
            }
        }
        let mut ended = false;
        while !bytes.is_empty() {
            match self.conn.read_tls(&mut bytes) {
                Ok(_) => {}
                Err(e) => return Err(TlsError::Refused(rustls::Error::General(e.to_string()))),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the peer (an alert), then give up on the connection.
                self.records(out);
                return Err(TlsError::Refused(e));
            }
            ended |= self.plaintext(deliver);
        }
        // Handshake messages go out as soon as they are made.
        self.records(out);
        Ok(ended)
    }

    /// Hands the decrypted bytes to `deliver`; `true` at `close_notify`.
    fn plaintext(&mut self, deliver: &mut dyn FnMut(&[u8])) -> bool {
        let mut buf = [0u8; 8 * 1024];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => deliver(&buf[..n]),
                // WouldBlock: nothing more now; UnexpectedEof is told by the socket.
                Err(_) => return false,
            }
        }
    }

    /// The socket ended: whether that was in the middle of the handshake.
    pub(super) fn closed(&self) -> Result<(), TlsError> {
        if self.conn.is_handshaking() {
            return Err(TlsError::ClosedInHandshake);
        }
        Ok(())
    }

    /// Encrypts all of `plain` into records appended to `out`.
    pub(super) fn send(&mut self, mut plain: &[u8], out: &mut Vec<u8>) {
        while !plain.is_empty() {
            match self.conn.writer().write(plain) {
                Ok(0) | Err(_) => {
                    // rustls keeps no more until its records are taken: take them.
                    if !self.conn.wants_write() {
                        return;
                    }
                }
                Ok(n) => plain = &plain[n..],
            }
            self.records(out);
        }
        self.records(out);
    }

    /// Moves the records waiting in rustls into `out`.
    pub(super) fn records(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(out).is_err() {
                return;
            }
        }
    }

    /// `close_notify` into `out`.
    pub(super) fn close(&mut self, out: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.records(out);
    }
}

/// The answer to plain HTTP on the HTTPS port (as nginx does): a 400 that says so, in
/// plain text, then the connection closes.
pub fn plain_http_answer() -> Vec<u8> {
    let body = "<!doctype html>\n<title>400 Bad Request</title>\n<h1>400 Bad Request</h1>\n\
                <p>This port speaks HTTPS: use an https:// address.</p>\n";
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
