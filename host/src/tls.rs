//! HTTPS: the certificate and key (`--tls-cert`/`--tls-key`, PEM) or one generated at
//! start (`--tls-self-signed`), a rustls server configuration on the `ring` provider
//! (TLS 1.2 and 1.3, ALPN `h2` first unless `--http2 off`, then `http/1.1`), and
//! reloading on `SIGHUP`.
//!
//! The core is not involved: rustls's `ServerConnection` is itself sans-IO, and
//! [`crate::transport`] puts it between the socket and the core for both runtimes.
//! The certificate is resolved per handshake from a shared slot, so a reload takes
//! effect for new connections at once; a `ClientHello` naming (SNI) a host the
//! certificate is not valid for gets no certificate (the handshake fails, logged).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use log::{error, info, warn};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Where the certificate comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// PEM files, reloaded on `SIGHUP`.
    Files { cert: PathBuf, key: PathBuf },
    /// Generated at start for these names (the bound host and `localhost`).
    SelfSigned { names: Vec<String> },
}

/// The server's TLS side: the rustls configuration and the certificate slot.
pub struct Tls {
    config: Arc<ServerConfig>,
    resolver: Arc<Resolver>,
    source: Source,
    /// The SHA-256 fingerprint of the certificate in use, `AB:CD:…`.
    fingerprint: RwLock<String>,
}

impl Tls {
    /// Loads (or generates) the certificate; an unreadable, malformed or mismatched one
    /// is one line of error. `http2`: ALPN offers `h2` first.
    pub fn new(source: Source, http2: bool) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (key, fingerprint) = certified_key(&source, &provider)?;
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/2 first (the session serves a connection by what ALPN chose), HTTP/1.1,
        // and HTTP/1.0 for clients that offer only that (curl --http1.0).
        config.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
        if http2 {
            config.alpn_protocols.insert(0, b"h2".to_vec());
        }
        Ok(Tls {
            config: Arc::new(config),
            resolver,
            source,
            fingerprint: RwLock::new(fingerprint),
        })
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The SHA-256 fingerprint of the certificate in use (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        self.fingerprint
            .read()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Whether the certificate was generated at start.
    pub fn self_signed(&self) -> bool {
        matches!(self.source, Source::SelfSigned { .. })
    }

    /// Loads the files again (`SIGHUP`); on failure the certificate in use stays, and
    /// the log says why.
    pub fn reload(&self) {
        let Source::Files { .. } = &self.source else {
            info!("SIGHUP: the certificate is self-signed; nothing to reload");
            return;
        };
        let provider = rustls::crypto::ring::default_provider();
        match certified_key(&self.source, &provider) {
            Ok((key, fingerprint)) => {
                if let Ok(mut current) = self.resolver.current.write() {
                    *current = Arc::new(key);
                }
                if let Ok(mut f) = self.fingerprint.write() {
                    *f = fingerprint.clone();
                }
                info!("SIGHUP: certificate reloaded (SHA-256 {fingerprint})");
            }
            Err(e) => error!("SIGHUP: certificate not reloaded, the old one stays: {e}"),
        }
    }

    /// Reloads on every `SIGHUP` from now on (Unix; a thread waits for the signal).
    pub fn reload_on_sighup(self: &Arc<Self>) {
        let tls = Arc::clone(self);
        crate::shutdown::on_sighup("sighup", move || tls.reload());
    }
}

/// The certificate for a handshake: the current one, unless the client named a host it
/// is not valid for.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.current.read().ok()?.clone();
        if let Some(sni) = hello.server_name() {
            if !valid_for(&key, sni) {
                warn!("TLS handshake refused: the certificate is not for {sni:?} (SNI)");
                return None;
            }
        }
        Some(key)
    }
}

/// Whether the certificate of `key` is valid for the host name `sni`.
fn valid_for(key: &CertifiedKey, sni: &str) -> bool {
    let Ok(name) = ServerName::try_from(sni) else {
        return false;
    };
    let Ok(cert) = key.end_entity_cert() else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|parsed| parsed.verify_is_valid_for_subject_name(&name).is_ok())
}

/// The certificate and key from `source`, checked to match, with its fingerprint.
fn certified_key(
    source: &Source,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, String), String> {
    let (chain, key) = match source {
        Source::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
        Source::SelfSigned { names } => {
            let generated = rcgen::generate_simple_self_signed(names.clone())
                .map_err(|e| format!("cannot generate a self-signed certificate: {e}"))?;
            let key = PrivateKeyDer::try_from(generated.key_pair.serialize_der())
                .map_err(|e| format!("the generated key: {e}"))?;
            (vec![generated.cert.der().clone()], key)
        }
    };
    let fingerprint = chain.first().map(|c| fingerprint(c)).unwrap_or_default();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the private key cannot be used: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("the private key does not match the certificate: {e}"))?;
    Ok((certified, fingerprint))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the certificate {}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("malformed certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()))
}

/// `AB:CD:…`: the SHA-256 of a certificate, as browsers show it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
