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
    /// Inside [`crate::https::over_h2`]: the HTTP/2 connection under the HTTP/1.1 the
    /// case reads and writes (see [`crate::gateway`]).
    #[cfg(feature = "tls")]
    h2: Option<Arc<crate::gateway::Gateway>>,
}

/// The connection's byte stream: the socket, or TLS over it; HTTP/1.1 carried over
/// HTTP/2 when the client speaks it.
struct Conn<'a> {
    stream: &'a TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<&'a crate::https::TlsConn>,
    #[cfg(feature = "tls")]
    h2: Option<&'a crate::gateway::Gateway>,
}

/// The bytes on the wire, under HTTP/2 when there is a gateway.
#[cfg(feature = "tls")]
struct Wire<'a> {
    stream: &'a TcpStream,
    tls: Option<&'a crate::https::TlsConn>,
}

#[cfg(feature = "tls")]
impl crate::gateway::Wire for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.tls {
            Some(tls) => tls.read(self.stream, buf),
            None => (&*self.stream).read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.tls {
            Some(tls) => tls.write_all(self.stream, bytes),
            None => (&*self.stream).write_all(bytes),
        }
    }

    fn shut(&mut self) {
        if let Some(tls) = self.tls {
            let _ = tls.close_notify(self.stream);
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn check_h2(&mut self) -> std::io::Result<()> {
        let Some(tls) = self.tls else {
            return Ok(());
        };
        tls.handshake(self.stream)?;
        match tls.alpn_protocol() {
            Some(p) if p == b"h2" => Ok(()),
            p => Err(std::io::Error::other(format!(
                "the server chose ALPN {:?}, not h2",
                p.map(|p| String::from_utf8_lossy(&p).into_owned())
            ))),
        }
    }
}

impl Read for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(h2) = self.h2 {
            let mut wire = Wire {
                stream: self.stream,
                tls: self.tls,
            };
            return h2.read(&mut wire, buf);
        }
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
    #[cfg(feature = "tls")]
    h2: Option<Arc<crate::gateway::Gateway>>,
}

impl Write for ClientWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(h2) = &self.h2 {
            let mut wire = Wire {
                stream: &self.stream,
                tls: self.tls.as_deref(),
            };
            h2.write(&mut wire, buf, CLIENT_TIMEOUT)?;
            return Ok(buf.len());
        }
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
            let mut c = Client::try_connect_tls(port, config, crate::https::loopback_name())?;
            if crate::https::h2_port(port) {
                crate::https::count_h2_use();
                c.h2 = Some(Arc::new(crate::gateway::Gateway::new()));
            }
            return Ok(c);
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
            h2: None,
        })
    }

    /// A client over a connection made elsewhere (its timeouts are left as they are).
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            h2: None,
        }
    }

    /// The connection's byte stream (through TLS when it is TLS).
    fn conn(&self) -> Conn<'_> {
        Conn {
            stream: &self.stream,
            #[cfg(feature = "tls")]
            tls: self.tls.as_deref(),
            #[cfg(feature = "tls")]
            h2: self.h2.as_deref(),
        }
    }

    /// Whether this connection speaks TLS.
    /// Over HTTP/2: the rest of the request body in progress will not be sent (its
    /// stream is cancelled; the next request is a new stream). Nothing over HTTP/1.1.
    pub fn abandon_body(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(h2) = &self.h2 {
            let mut wire = Wire {
                stream: &self.stream,
                tls: self.tls.as_deref(),
            };
            h2.abandon_body(&mut wire)
                .expect("cancel the body's stream");
        }
    }

    /// Whether this connection carries its HTTP/1.1 over HTTP/2 (inside
    /// [`crate::https::over_h2`]).
    pub fn is_h2(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.h2.is_some() {
            return true;
        }
        false
    }

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
        if let Some(h2) = &self.h2 {
            let mut wire = Wire {
                stream: &self.stream,
                tls: self.tls.as_deref(),
            };
            let limit = self.stream.write_timeout().ok().flatten();
            return h2.write(&mut wire, bytes.as_ref(), limit.unwrap_or(CLIENT_TIMEOUT));
        }
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
        if let Some(h2) = &self.h2 {
            let mut wire = Wire {
                stream: &self.stream,
                tls: self.tls.as_deref(),
            };
            let _ = h2.finish(&mut wire);
        }
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
            #[cfg(feature = "tls")]
            h2: self.h2.clone(),
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
            #[cfg(feature = "tls")]
            h2: self.h2.as_deref(),
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
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !got.is_empty() => {
                    break
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(got)
    }

    /// Reads at most one byte, again after a signal interrupted the read.
    fn read_byte(&self, byte: &mut [u8; 1]) -> std::io::Result<usize> {
        loop {
            match self.conn().read(byte) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
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
        let closed = match self.read_byte(&mut byte) {
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
        let open = match self.read_byte(&mut byte) {
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
