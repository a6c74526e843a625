//! TLS for `rediss://` URLs: the certificate files of the options, read once when the client
//! is created, in the two forms the connections take them (a rustls configuration for the
//! calling thread's direct connections, the redis crate's `TlsCertificates` for the
//! multiplexed and pub/sub ones), and the words for a failed handshake.
//!
//! The server's certificate is verified against the CA file when one is set, else against the
//! system's root certificates (rustls-native-certs: on Linux, the bundle of ca-certificates).
//! The URL fragment `#insecure` turns verification off, as in the redis crate. ring is the one
//! crypto provider.

use crate::error::{io_error_in, Error, Result};
use crate::options::Options;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig, ClientConnection, RootCertStore};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// What a direct connection needs for its handshake.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl Connector {
    /// The client side of a new TLS session, nothing sent yet.
    pub(crate) fn session(&self) -> Result<ClientConnection> {
        ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|err| Error::Tls(format!("cannot start a TLS session: {err}")))
    }

    /// The same settings for the server at `host` (a cluster node, the primary a sentinel
    /// names), whose certificate must name it.
    pub(crate) fn for_host(&self, host: &str) -> Result<Connector> {
        Ok(Connector {
            config: self.config.clone(),
            server_name: server_name(host)?,
        })
    }
}

/// Reads the options' certificate files for a server at `host`, verified unless `insecure`.
pub(crate) fn configure(
    host: &str,
    insecure: bool,
    options: &Options,
) -> Result<(Connector, redis::TlsCertificates)> {
    let ca = match &options.tls_ca_file {
        Some(path) => Some((path, read(path, "TLS CA file")?)),
        None => None,
    };
    let client = match &options.tls_client_cert {
        Some(files) => Some((
            (
                &files.cert_file,
                read(&files.cert_file, "TLS client certificate file")?,
            ),
            (
                &files.key_file,
                read(&files.key_file, "TLS client key file")?,
            ),
        )),
        None => None,
    };
    let roots = match &ca {
        Some((path, pem)) => authorities(path, pem)?,
        None if insecure => RootCertStore::empty(),
        None => system_roots()?,
    };
    // Deprecated for lacking post-quantum key exchange, which only aws-lc-rs offers: it needs
    // cmake and more build time, for a key exchange Redis servers seldom offer.
    #[allow(deprecated)]
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Tls(err.to_string()))?
        .with_root_certificates(roots);
    let mut config = match &client {
        Some(((cert_path, cert_pem), (key_path, key_pem))) => {
            let chain = certificates(cert_path, cert_pem, "TLS client certificate file")?;
            let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| {
                invalid_file(
                    "TLS client key file",
                    key_path,
                    &format!("no private key: {err}"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|err| {
                invalid_file(
                    "TLS client certificate file",
                    cert_path,
                    &format!("with its key {}: {err}", key_path.display()),
                )
            })?
        }
        None => builder.with_no_client_auth(),
    };
    if insecure {
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)));
    }
    let certificates = redis::TlsCertificates {
        client_tls: client.map(|((_, cert), (_, key))| redis::ClientTlsConfig {
            client_cert: cert,
            client_key: key,
        }),
        root_cert: ca.map(|(_, pem)| pem),
    };
    let connector = Connector {
        config: Arc::new(config),
        server_name: server_name(host)?,
    };
    Ok((connector, certificates))
}

fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|err| Error::InvalidArgument(format!("'{host}' is no TLS server name: {err}")))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| invalid_file(what, path, &format!("cannot be read: {err}")))
}

fn invalid_file(what: &str, path: &Path, why: &str) -> Error {
    Error::InvalidArgument(format!("the {what} {} {why}", path.display()))
}

/// The certificates of a PEM file; at least one.
fn certificates(path: &Path, pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let found = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| invalid_file(what, path, &format!("is not valid PEM: {err}")))?;
    if found.is_empty() {
        return Err(invalid_file(what, path, "holds no PEM certificate"));
    }
    Ok(found)
}

fn authorities(path: &Path, pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, pem, "TLS CA file")? {
        roots.add(cert).map_err(|err| {
            invalid_file(
                "TLS CA file",
                path,
                &format!("holds a bad certificate: {err}"),
            )
        })?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|err| format!(" ({err})"))
            .unwrap_or_default();
        return Err(Error::Tls(format!(
            "the system has no root certificates to verify Redis's certificate with{why}: install them, or set a TLS CA file"
        )));
    }
    Ok(roots)
}

/// `#insecure`: any certificate is taken. The handshake's signatures are still checked, so the
/// connection is at least encrypted to whoever holds that certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, signature, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, signature, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error behind a failed call of the redis crate, if TLS is what failed.
pub(crate) fn rustls_error_in(err: &redis::RedisError) -> Option<&rustls::Error> {
    io_error_in(err)?.get_ref()?.downcast_ref()
}

/// A TLS handshake with `address` that failed with `err` (from rustls or the socket).
pub(crate) fn handshake_failed(address: &str, err: &io::Error) -> Error {
    let why = match err.get_ref().and_then(|inner| inner.downcast_ref()) {
        Some(tls_error) => describe(tls_error),
        None => match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                "no TLS answer within the connect timeout: is it a TLS port?".to_string()
            }
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => "the server closed the connection".to_string(),
            _ => err.to_string(),
        },
    };
    refused(address, &why)
}

/// A handshake that rustls ended with `err`.
pub(crate) fn rustls_failed(address: &str, err: &rustls::Error) -> Error {
    refused(address, &describe(err))
}

fn refused(address: &str, why: &str) -> Error {
    Error::Tls(format!("TLS handshake with {address} failed: {why}"))
}

/// What a rustls error means for the person reading the message.
fn describe(err: &rustls::Error) -> String {
    use AlertDescription::*;
    match err {
        rustls::Error::InvalidCertificate(cert) => {
            format!("the server's certificate did not verify: {cert}")
        }
        rustls::Error::AlertReceived(CertificateRequired) => {
            format!("{err}: the server requires a client certificate")
        }
        rustls::Error::AlertReceived(
            BadCertificate
            | UnsupportedCertificate
            | CertificateRevoked
            | CertificateExpired
            | CertificateUnknown
            | UnknownCA,
        ) => format!("{err}: the server refused this client's certificate"),
        rustls::Error::InvalidMessage(_) => {
            format!("{err}: the server does not speak TLS there; is it a TLS port?")
        }
        _ => err.to_string(),
    }
}
