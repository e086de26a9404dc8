//! The byte stream between a socket and the core: plain TCP, or TLS (rustls's
//! `ServerConnection`, itself sans-IO: records in, records out). Both runtimes read,
//! write and send files through a [`Transport`], so they keep one code path for HTTP and
//! HTTPS. Every method takes the socket, blocking (runtime-std) or not (runtime-smol):
//! `WouldBlock` means "wait until the socket is readable (or, when
//! [`Transport::wants_write`], writable) and call again".
//!
//! Under TLS a file body is read in bounded chunks and encrypted (no file is held in
//! memory); rustls buffers at most 64 KiB of records per connection.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// What the client sent instead of TLS on the HTTPS port.
pub const PLAIN_HTTP: &str = "plain HTTP sent to the HTTPS port";

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

/// A connection's stream: plain, or TLS.
pub enum Transport {
    Plain,
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

/// The TLS state of one connection.
#[cfg(feature = "tls")]
pub struct TlsStream {
    conn: rustls::ServerConnection,
    /// Whether the first byte was looked at (TLS, or plain HTTP by mistake).
    checked: bool,
    /// Plaintext decrypted and not yet read.
    buffered: usize,
}

/// The most plaintext of a file encrypted per step.
#[cfg(feature = "tls")]
const FILE_CHUNK: usize = 64 * 1024;

#[cfg(feature = "tls")]
thread_local! {
    /// A file chunk on its way to being encrypted: one per thread, not per connection.
    static CHUNK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A socket as `Read`/`Write` for rustls.
#[cfg(feature = "tls")]
struct Sock<'a>(&'a TcpStream);

#[cfg(feature = "tls")]
impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

#[cfg(feature = "tls")]
impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport {
    /// TLS with `config`, for a connection just accepted.
    #[cfg(feature = "tls")]
    pub fn tls(config: std::sync::Arc<rustls::ServerConfig>) -> io::Result<Transport> {
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Transport::Tls(Box::new(TlsStream {
            conn,
            checked: false,
            buffered: 0,
        })))
    }

    /// Whether [`Transport::send_file`] sends without copying the bytes through this
    /// process (plain TCP with the platform's `sendfile`; never under TLS, which reads,
    /// encrypts and writes them).
    pub fn zero_copy(&self) -> bool {
        !self.is_tls() && crate::sendfile::zero_copy()
    }

    /// Whether this is TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Transport::Plain)
    }

    /// Whether the TLS handshake is still going on (its deadline is the head's).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.conn.is_handshaking(),
        }
    }

    /// Whether records wait to be written (wait for writability, then [`Transport::flush`]).
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.conn.wants_write(),
        }
    }

    /// Whether decrypted bytes wait to be read (a poll of the socket would not show them).
    pub fn has_buffered(&self) -> bool {
        match self {
            Transport::Plain => false,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.buffered > 0,
        }
    }

    /// Reads bytes for the core: `Ok(0)` at the end of the stream; an `InvalidData`
    /// error for a TLS failure (a garbage `ClientHello`, an unknown SNI, …, or plain
    /// HTTP: [`PLAIN_HTTP`]).
    pub fn read(&mut self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => (&*sock).read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.read(sock, buf),
        }
    }

    /// Writes bytes of an answer; may take fewer than given.
    pub fn write(&mut self, sock: &TcpStream, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => (&*sock).write(data),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.write(sock, data),
        }
    }

    /// Writes the records still waiting (nothing to do for plain TCP).
    pub fn flush(&mut self, sock: &TcpStream) -> io::Result<()> {
        let _ = sock;
        match self {
            Transport::Plain => Ok(()),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.push(sock),
        }
    }

    /// Sends up to `len` bytes of `file` from `*offset` (advancing it): `sendfile` (or
    /// the portable copy) for plain TCP; read, encrypt and write in bounded chunks under
    /// TLS. `Ok(0)` with `len > 0`: the file ended early.
    pub fn send_file(
        &mut self,
        sock: &TcpStream,
        file: &File,
        offset: &mut u64,
        len: u64,
    ) -> io::Result<usize> {
        match self {
            Transport::Plain => crate::sendfile::send_file(sock, file, offset, len),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.send_file(sock, file, offset, len),
        }
    }

    /// Answers a connection refused before it is served (the accept loop's `503`) on a
    /// blocking socket with a read timeout set: under TLS, the handshake first (a TLS
    /// client could not read a plain answer), then the answer; `false` if the handshake
    /// did not complete.
    pub fn refuse_blocking(&mut self, sock: &TcpStream, answer: &[u8]) -> bool {
        #[cfg(feature = "tls")]
        if let Transport::Tls(t) = self {
            if t.handshake(sock).is_err() {
                return false;
            }
        }
        let mut pos = 0;
        while pos < answer.len() {
            match self.write(sock, &answer[pos..]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => pos += n,
            }
        }
        self.close(sock);
        self.flush(sock).is_ok()
    }

    /// Before closing: TLS says `close_notify` (best effort).
    pub fn close(&mut self, sock: &TcpStream) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.push(sock);
        }
        let _ = sock;
    }
}

#[cfg(feature = "tls")]
impl TlsStream {
    fn read(&mut self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => {
                    self.buffered = self.buffered.saturating_sub(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the end of the stream here.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.checked {
                // A TLS record starts with a content type (20–23); a request line with
                // a letter: plain HTTP to the HTTPS port.
                let mut first = [0u8; 1];
                match sock.peek(&mut first) {
                    Ok(0) => return Ok(0),
                    Ok(_) if first[0].is_ascii_alphabetic() => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, PLAIN_HTTP))
                    }
                    Ok(_) => self.checked = true,
                    Err(e) => return Err(e),
                }
            }
            if self.conn.read_tls(&mut Sock(sock))? == 0 {
                if self.conn.is_handshaking() {
                    // A ClientHello cut short: a refusal like any malformed one.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "TLS: the client closed during the handshake",
                    ));
                }
                return Ok(0);
            }
            match self.conn.process_new_packets() {
                Ok(state) => self.buffered = state.plaintext_bytes_to_read(),
                Err(e) => {
                    // Tell the peer (an alert), then give up on the connection.
                    let _ = self.push(sock);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("TLS: {e}"),
                    ));
                }
            }
            // Handshake messages go out as soon as they are made.
            match self.push(sock) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }

    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> io::Result<usize> {
        self.push(sock)?;
        let n = self.conn.writer().write(data)?;
        match self.push(sock) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Completes the handshake on a blocking socket (no application data needed).
    fn handshake(&mut self, sock: &TcpStream) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.push(sock)?;
            if !self.conn.is_handshaking() {
                break;
            }
            if self.conn.read_tls(&mut Sock(sock))? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")))?;
        }
        self.push(sock)
    }

    fn push(&mut self, sock: &TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut Sock(sock))?;
        }
        Ok(())
    }

    fn send_file(
        &mut self,
        sock: &TcpStream,
        file: &File,
        offset: &mut u64,
        len: u64,
    ) -> io::Result<usize> {
        if len == 0 {
            return Ok(0);
        }
        self.push(sock)?;
        let want = usize::try_from(len).unwrap_or(usize::MAX).min(FILE_CHUNK);
        let taken = CHUNK.with(|chunk| -> io::Result<Option<usize>> {
            let mut chunk = chunk.borrow_mut();
            chunk.resize(FILE_CHUNK, 0);
            let n = crate::sendfile::read_at(file, &mut chunk[..want], *offset)?;
            if n == 0 {
                return Ok(None);
            }
            Ok(Some(self.conn.writer().write(&chunk[..n])?))
        })?;
        let Some(taken) = taken else {
            return Ok(0);
        };
        *offset += taken as u64;
        match self.push(sock) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if taken == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }
}
