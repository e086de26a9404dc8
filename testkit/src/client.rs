//! The one client: raw HTTP/1.1 over one TCP connection, or over TLS on it when the
//! server is a TLS server the harness started (see [`crate::https`]).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use crate::{contains, Response, SECRET};

/// How long a client waits for any answer before the case fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A raw HTTP/1.1 client over one TCP connection. Every response it reads from the
/// server under test is checked by [`check_common`]; [`Client::read_unchecked`] reads
/// another server's (chromedriver's) with the same parser.
///
/// To a TLS server started by this process ([`crate::https`]) it speaks TLS: the same
/// bytes go through rustls, the handshake is done by the first read or write, and the
/// reads of [`Client::closed_within`] and friends see what comes through TLS. `stream`
/// is the TCP socket either way (for its address, timeouts and shutdown; bytes written
/// to it directly bypass TLS).
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<crate::https::TlsConn>>,
}

/// The connection's byte stream: the socket, or TLS over it.
struct Conn<'a> {
    stream: &'a TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<&'a crate::https::TlsConn>,
}

impl Read for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls {
            return tls.read(self.stream, buf);
        }
        (&*self.stream).read(buf)
    }
}

/// A writing end of a [`Client`]'s connection, for another thread ([`Client::writer`]).
pub struct ClientWriter {
    stream: TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<Arc<crate::https::TlsConn>>,
}

impl Write for ClientWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.write_all(&self.stream, buf)?;
            return Ok(buf.len());
        }
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Client {
    /// A connection to 127.0.0.1:`port`, with [`CLIENT_TIMEOUT`] for reads and writes.
    pub fn connect(port: u16) -> Client {
        Client::try_connect(port).expect("connect to the server")
    }

    /// [`Client::connect`], or the error (for servers that may be gone).
    pub fn try_connect(port: u16) -> std::io::Result<Client> {
        #[cfg(feature = "tls")]
        if let Some(config) = crate::https::config_for_port(port) {
            return Client::try_connect_tls(port, config, crate::https::loopback_name());
        }
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(CLIENT_TIMEOUT))
            .expect("write timeout");
        Ok(Client::from_stream(stream))
    }

    /// A TLS connection to 127.0.0.1:`port` with this configuration, checking the
    /// certificate against `name` (a DNS name is also sent as SNI); the handshake is
    /// done by the first read or write ([`Client::tls_handshake`] does it at once).
    #[cfg(feature = "tls")]
    pub fn try_connect_tls(
        port: u16,
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(CLIENT_TIMEOUT))
            .expect("write timeout");
        let tls = crate::https::TlsConn::new(config, name)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
            tls: Some(Arc::new(tls)),
        })
    }

    /// A client over a connection made elsewhere (its timeouts are left as they are).
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The connection's byte stream (through TLS when it is TLS).
    fn conn(&self) -> Conn<'_> {
        Conn {
            stream: &self.stream,
            #[cfg(feature = "tls")]
            tls: self.tls.as_deref(),
        }
    }

    /// Whether this connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return true;
        }
        false
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.try_send(bytes).expect("send to the server");
    }

    /// Sends, or says why not (for servers that may be gone).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.write_all(&self.stream, bytes.as_ref());
        }
        self.stream.write_all(bytes.as_ref())
    }

    /// Sends, then sends nothing more and closes the writing side (TLS says
    /// `close_notify` first).
    pub fn send_and_finish(&mut self, bytes: impl AsRef<[u8]>) {
        self.send(bytes);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let _ = tls.close_notify(&self.stream);
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// A writing end of this connection for another thread (a TLS connection does its
    /// handshake first, here).
    pub fn writer(&mut self) -> ClientWriter {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.handshake(&self.stream).expect("TLS handshake");
        }
        ClientWriter {
            stream: self.stream.try_clone().expect("clone the socket"),
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
        }
    }

    /// Completes the TLS handshake now (nothing to do over plain TCP).
    pub fn tls_handshake(&mut self) -> std::io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.handshake(&self.stream);
        }
        Ok(())
    }

    /// The certificate (DER) the TLS server presented, after the handshake (done here
    /// if need be); `None` over plain TCP.
    #[cfg(feature = "tls")]
    pub fn peer_certificate(&mut self) -> Option<Vec<u8>> {
        let tls = self.tls.clone()?;
        tls.handshake(&self.stream).expect("TLS handshake");
        tls.peer_certificate()
    }

    /// The ALPN protocol and TLS version of the connection, after the handshake.
    #[cfg(feature = "tls")]
    pub fn tls_details(&mut self) -> Option<(Option<Vec<u8>>, Option<String>)> {
        let tls = self.tls.clone()?;
        tls.handshake(&self.stream).expect("TLS handshake");
        Some((tls.alpn_protocol(), tls.protocol_version()))
    }

    /// Sends a request and reads its response (a HEAD request reads no body).
    pub fn request(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.read_response_for(raw.starts_with("HEAD "))
    }

    pub fn read_response(&mut self) -> Response {
        self.read_response_for(false)
    }

    /// Reads one response; `head` when it answers a HEAD request (no body follows).
    pub fn read_response_for(&mut self, head: bool) -> Response {
        self.try_read_response(head)
            .unwrap_or_else(|e| panic!("no complete response: {e}"))
    }

    /// Reads one response, or says why there is none (closed, timeout, garbage).
    pub fn try_read_response(&mut self, head: bool) -> Result<Response, String> {
        let resp = self.read_unchecked(head)?;
        check_common(&resp);
        Ok(resp)
    }

    /// Reads one response without the checks of the server under test (for another
    /// server, such as chromedriver).
    pub fn read_unchecked(&mut self, head: bool) -> Result<Response, String> {
        let mut conn = Conn {
            stream: &self.stream,
            #[cfg(feature = "tls")]
            tls: self.tls.as_deref(),
        };
        Response::read_from(&mut conn, &mut self.buf, head)
    }

    /// Reads everything up to the end of the stream (a reset after some bytes counts as
    /// the end), after the bytes already buffered.
    pub fn read_until_closed(&mut self) -> Result<Vec<u8>, String> {
        let mut got = std::mem::take(&mut self.buf);
        let mut buf = [0u8; 65536];
        loop {
            match self.conn().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !got.is_empty() => {
                    break
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(got)
    }

    /// Whether the server closes the connection within `timeout` (no more bytes, then
    /// end of stream or a reset). Bytes that arrive instead make it false.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        let closed = match self.conn().read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        let _ = self.stream.set_read_timeout(Some(CLIENT_TIMEOUT));
        closed
    }

    /// Whether the connection is still open and quiet for `wait` (no bytes, no close).
    pub fn open_after(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(wait))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        let open = match self.conn().read(&mut byte) {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        let _ = self.stream.set_read_timeout(Some(CLIENT_TIMEOUT));
        open
    }
}

/// What SPEC says every response has, and the one thing no response may have.
#[track_caller]
pub fn check_common(r: &Response) {
    assert_eq!(r.version, "HTTP/1.1", "status line version");
    assert!(
        !contains(&r.body, SECRET.as_bytes()),
        "a response carried the file outside the root: {r:?}"
    );
    if r.status / 100 == 1 {
        return;
    }
    assert!(r.header("date").is_some(), "no Date: {r:?}");
    assert!(r.header("server").is_some(), "no Server: {r:?}");
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"));
    if r.status != 204 && r.status != 304 {
        assert!(
            r.header("content-length").is_some() || chunked,
            "no Content-Length: {r:?}"
        );
    }
    assert!(r.header_count("content-length") <= 1, "{r:?}");
}
