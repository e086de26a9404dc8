//! The harness's HTTPS side (the `tls` feature): test certificates made in this process
//! with rcgen, the trust a [`Client`](crate::Client) gives a TLS server (a test CA, or a
//! pinned SHA-256 fingerprint for `--tls-self-signed`), the client's TLS connection
//! (rustls, driven over the blocking socket), and the switch that runs a case over TLS
//! ([`over_tls`]: how the `spec` cases of every group run over HTTPS, see
//! [`crate::cases`]).
//!
//! A server the harness starts with TLS ([`ServerBuilder::tls`](crate::ServerBuilder::tls)
//! and friends) records the trust for its port here, so that every
//! [`Client::connect`](crate::Client::connect) to that port speaks TLS without the case
//! knowing: a `spec` case runs unchanged over HTTP or HTTPS.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use rustls::{SignatureScheme, SupportedProtocolVersion};

/// The names every test server certificate is valid for.
pub const TEST_NAMES: &[&str] = &["127.0.0.1", "localhost", "::1"];

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// A certificate authority made for the tests; it issues [`TestCert`]s.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    /// A new CA (ECDSA P-256) named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate (PEM), for `curl --cacert`.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn issue(&self, names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "testkit server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client configuration that trusts this CA (TLS 1.3 and 1.2, ALPN `http/1.1`).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config_for(rustls::ALL_VERSIONS)
    }

    /// [`TestCa::client_config`] limited to these protocol versions.
    pub fn client_config_for(
        &self,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert.der().clone())
            .expect("the test CA as a root");
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A server certificate and its private key, PEM, and the certificate's DER.
#[derive(Clone, Debug)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCert {
    /// A self-signed certificate for `names` (its own trust anchor, as with `curl
    /// --cacert cert.pem`).
    pub fn self_signed(names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let made = rcgen::generate_simple_self_signed(names).expect("self-signed certificate");
        TestCert {
            cert_pem: made.cert.pem(),
            key_pem: made.key_pair.serialize_pem(),
            der: made.cert.der().to_vec(),
        }
    }

    /// `AB:CD:…`, the SHA-256 of the certificate.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }

    /// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        self.write_files(&cert, &key);
        (cert, key)
    }

    /// Writes the certificate and the key to these paths, each replaced whole (written
    /// beside, then renamed), so a server reloading them never reads half a file.
    pub fn write_files(&self, cert: &Path, key: &Path) {
        replace_file(cert, self.cert_pem.as_bytes());
        replace_file(key, self.key_pem.as_bytes());
    }
}

/// Writes `path` whole: into a temporary name beside it, then renamed over it.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// The CA of this test process (made once).
pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("testkit test CA"))
}

/// The server certificate of this test process: [`TEST_NAMES`], issued by [`test_ca`].
pub fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| test_ca().issue(TEST_NAMES))
}

/// `AB:CD:…`: the SHA-256 of a DER certificate, upper-case hex pairs joined by colons
/// (as the server's start line and browsers show it).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The PEM text of a DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    let b64 = base64(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The base64 of the SHA-256 of a DER certificate's SubjectPublicKeyInfo: what
/// Chromium's `--ignore-certificate-errors-spki-list` takes to accept exactly that key.
pub fn spki_sha256_base64(cert_der: &[u8]) -> Option<String> {
    /// One DER element: its tag, the whole element, its value, and what follows it.
    struct Tlv<'a> {
        tag: u8,
        whole: &'a [u8],
        value: &'a [u8],
        rest: &'a [u8],
    }
    fn tlv(der: &[u8]) -> Option<Tlv<'_>> {
        let (&tag, rest) = der.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        let header = der.len() - rest.len();
        let value = rest.get(..len)?;
        Some(Tlv {
            tag,
            whole: &der[..header + len],
            value,
            rest: &rest[len..],
        })
    }
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial,
    // signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … }
    let cert = tlv(cert_der)?.value;
    let mut rest = tlv(cert)?.value;
    let version = tlv(rest)?;
    if version.tag == 0xA0 {
        rest = version.rest;
    }
    for _ in 0..5 {
        rest = tlv(rest)?.rest;
    }
    let spki = tlv(rest)?;
    if spki.tag != 0x30 {
        return None;
    }
    Some(base64(
        ring::digest::digest(&ring::digest::SHA256, spki.whole).as_ref(),
    ))
}

/// Standard base64, with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    b64
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that accepts exactly the certificate with this SHA-256
/// fingerprint (`AB:CD:…`), as a person who compared the fingerprint would: for
/// `--tls-self-signed`. The handshake's signatures are still checked.
pub fn trust_fingerprint(fingerprint: &str) -> Arc<ClientConfig> {
    trust_with(Pinned {
        fingerprint: Some(fingerprint.to_ascii_uppercase()),
        provider: provider(),
    })
}

/// A client configuration that accepts any certificate (to look at what a server
/// presents); the handshake's signatures are still checked.
pub fn trust_any() -> Arc<ClientConfig> {
    trust_with(Pinned {
        fingerprint: None,
        provider: provider(),
    })
}

fn trust_with(verifier: Pinned) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Accepts the end-entity certificate with a given fingerprint (or any).
#[derive(Debug)]
struct Pinned {
    fingerprint: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.fingerprint {
            Some(want) if *want != fingerprint(end_entity) => Err(rustls::Error::General(format!(
                "the server presented {}, not the certificate {want}",
                fingerprint(end_entity)
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------
// The `spec` cases over TLS, and which ports speak it
// ---------------------------------------------------------------------------------------

thread_local! {
    static SUITE_OVER_TLS: Cell<bool> = const { Cell::new(false) };
    static SUITE_OVER_H2: Cell<bool> = const { Cell::new(false) };
    static TLS_STARTED: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` as [`over_tls`] does, and with every client to those servers (the harness's
/// [`Client`](crate::Client) and curl) offering only ALPN `h2`: how
/// [`run_over_h2`](crate::cases::run_over_h2) runs a `spec` case over HTTP/2, the
/// harness's client carrying its HTTP/1.1 through [`crate::gateway`].
pub fn over_h2<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SUITE_OVER_H2.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(SUITE_OVER_H2.with(|c| c.replace(true)));
    over_tls(f)
}

/// Whether TLS servers started on this thread are spoken to over HTTP/2 (inside
/// [`over_h2`]).
pub fn h2_by_default() -> bool {
    SUITE_OVER_H2.with(Cell::get)
}

/// How many times this process's clients spoke HTTP/2 to a server started inside
/// [`over_h2`] (client connections and curl commands).
pub fn h2_uses() -> usize {
    H2_USES.load(std::sync::atomic::Ordering::Relaxed)
}

static H2_USES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) fn count_h2_use() {
    H2_USES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Runs `f` with TLS as the default of every server it starts (through
/// [`Server::builder`](crate::Server::builder) and the `Server::start*` shorthands, unless
/// a case chooses otherwise): how [`run_over_tls`](crate::cases::run_over_tls) runs a
/// `spec` case over HTTPS.
pub fn over_tls<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SUITE_OVER_TLS.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(SUITE_OVER_TLS.with(|c| c.replace(true)));
    f()
}

/// Whether servers started on this thread default to TLS (inside [`over_tls`]).
pub fn tls_by_default() -> bool {
    SUITE_OVER_TLS.with(Cell::get)
}

/// How many TLS servers this thread has started (so
/// [`run_over_tls`](crate::cases::run_over_tls) can check that a case really ran over
/// TLS).
pub fn tls_servers_started() -> usize {
    TLS_STARTED.with(Cell::get)
}

pub(crate) fn count_tls_start() {
    TLS_STARTED.with(|c| c.set(c.get() + 1));
}

/// The client configuration for each port a TLS server of this process listens on.
static TLS_PORTS: Mutex<Vec<(u16, Arc<ClientConfig>, bool)>> = Mutex::new(Vec::new());

fn tls_ports() -> MutexGuard<'static, Vec<(u16, Arc<ClientConfig>, bool)>> {
    TLS_PORTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records that a TLS server listens on `port` (until [`forget_port`]).
/// With `h2`, clients to it offer ALPN `h2` only and speak HTTP/2 (see [`over_h2`]).
pub(crate) fn register_port(port: u16, config: Arc<ClientConfig>, h2: bool) {
    let config = if h2 {
        let mut c = (*config).clone();
        c.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(c)
    } else {
        config
    };
    let mut ports = tls_ports();
    ports.retain(|(p, _, _)| *p != port);
    ports.push((port, config, h2));
}

/// The server on `port` is gone (called before it is killed, so the port cannot be
/// taken by another server while still recorded).
pub(crate) fn forget_port(port: u16) {
    tls_ports().retain(|(p, _, _)| *p != port);
}

/// The client configuration for a TLS server of this process on `port`, if it is one.
pub fn config_for_port(port: u16) -> Option<Arc<ClientConfig>> {
    tls_ports()
        .iter()
        .find(|(p, _, _)| *p == port)
        .map(|(_, c, _)| Arc::clone(c))
}

/// Whether clients to the TLS server on `port` speak HTTP/2 (see [`over_h2`]).
pub fn h2_port(port: u16) -> bool {
    tls_ports().iter().any(|(p, _, h2)| *p == port && *h2)
}

/// The name a client checks the certificate against: 127.0.0.1 (an IP address, so no
/// SNI is sent).
pub fn loopback_name() -> ServerName<'static> {
    ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into())
}

// ---------------------------------------------------------------------------------------
// The client's TLS connection
// ---------------------------------------------------------------------------------------

/// A rustls client connection driven over a blocking socket, shared by a [`Client`] and
/// the writers cloned from it ([`Client::writer`](crate::Client::writer)).
///
/// The handshake is lazy (done by the first read or write), as a raw TCP client sends
/// nothing until it writes: a connection that is only opened holds no more than it
/// would over HTTP. Reading the socket happens outside the state's lock (under its own),
/// so a writer on another thread is not blocked by a reader waiting for the server.
pub(crate) struct TlsConn {
    state: Mutex<TlsState>,
    reading: Mutex<()>,
}

struct TlsState {
    conn: ClientConnection,
    /// Records read from the socket, not yet given to rustls.
    incoming: Vec<u8>,
    /// The socket reached its end.
    eof: bool,
    /// rustls was told about the end.
    eof_told: bool,
}

impl TlsState {
    /// Whether there is something to do without reading the socket.
    fn pending(&self) -> bool {
        !self.incoming.is_empty() || (self.eof && !self.eof_told) || self.conn.wants_write()
    }

    /// Gives rustls the next records (or the end of the stream), then writes what it
    /// wants to send.
    fn pump(&mut self, sock: &TcpStream) -> io::Result<()> {
        if !self.incoming.is_empty() {
            let n = self.conn.read_tls(&mut &self.incoming[..])?;
            if n == 0 {
                // close_notify came: nothing after it is read.
                self.incoming.clear();
            } else {
                self.incoming.drain(..n);
            }
            self.process(sock)?;
        } else if self.eof && !self.eof_told {
            self.eof_told = true;
            self.conn.read_tls(&mut &[][..])?;
            self.process(sock)?;
        }
        self.write_out(sock)
    }

    fn process(&mut self, sock: &TcpStream) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            // The alert, then give up.
            let _ = self.write_out(sock);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS: {e}"),
            ));
        }
        Ok(())
    }

    fn write_out(&mut self, sock: &TcpStream) -> io::Result<()> {
        let mut out = sock;
        while self.conn.wants_write() {
            self.conn.write_tls(&mut out)?;
        }
        Ok(())
    }
}

impl TlsConn {
    pub(crate) fn new(config: Arc<ClientConfig>, name: ServerName<'static>) -> io::Result<TlsConn> {
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsConn {
            state: Mutex::new(TlsState {
                conn,
                incoming: Vec::new(),
                eof: false,
                eof_told: false,
            }),
            reading: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TlsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the socket once (blocking, with its timeout) into the records waiting.
    fn fetch(&self, sock: &TcpStream) -> io::Result<()> {
        let _reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let st = self.lock();
            if !st.incoming.is_empty() || st.eof {
                return Ok(());
            }
        }
        let mut raw = vec![0u8; 32 * 1024];
        let n = (&*sock).read(&mut raw)?;
        let mut st = self.lock();
        if n == 0 {
            st.eof = true;
        } else {
            st.incoming.extend_from_slice(&raw[..n]);
        }
        Ok(())
    }

    /// Completes the handshake (if it is not done yet).
    pub(crate) fn handshake(&self, sock: &TcpStream) -> io::Result<()> {
        loop {
            let mut st = self.lock();
            if !st.conn.is_handshaking() {
                return st.write_out(sock);
            }
            if st.pending() {
                st.pump(sock)?;
                continue;
            }
            if st.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
            drop(st);
            self.fetch(sock)?;
        }
    }

    /// Reads plaintext: `Ok(0)` at the end of the stream (close_notify, or the socket's
    /// end without it).
    pub(crate) fn read(&self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut st = self.lock();
            match st.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if st.pending() {
                st.pump(sock)?;
                continue;
            }
            if st.eof {
                return Ok(0);
            }
            drop(st);
            self.fetch(sock)?;
        }
    }

    /// Writes all of `data` (after the handshake).
    pub(crate) fn write_all(&self, sock: &TcpStream, data: &[u8]) -> io::Result<()> {
        self.handshake(sock)?;
        let mut st = self.lock();
        let mut rest = data;
        while !rest.is_empty() {
            let n = st.conn.writer().write(rest)?;
            rest = &rest[n..];
            let waiting = st.conn.wants_write();
            st.write_out(sock)?;
            if n == 0 && !waiting {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Says `close_notify` (the end of what this side sends).
    pub(crate) fn close_notify(&self, sock: &TcpStream) -> io::Result<()> {
        let mut st = self.lock();
        st.conn.send_close_notify();
        st.write_out(sock)
    }

    /// The certificate the server presented (DER), after the handshake.
    pub(crate) fn peer_certificate(&self) -> Option<Vec<u8>> {
        let st = self.lock();
        st.conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.to_vec())
    }

    /// The protocol ALPN settled on, after the handshake.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.lock().conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The TLS version, after the handshake (`TLSv1_3`, `TLSv1_2`).
    pub(crate) fn protocol_version(&self) -> Option<String> {
        self.lock()
            .conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
    }
}
