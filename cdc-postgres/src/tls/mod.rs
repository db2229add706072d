//! TLS for the replication connection and the query connections: rustls with
//! the ring provider and libpq's `sslmode` meanings.
//!
//! * `prefer` and `require` encrypt without checking the server's certificate
//!   (as libpq does); handshake signatures are still verified.
//! * `verify-full` checks the chain against the configured CA file and the
//!   certificate's names against the host (SNI is sent for DNS names).
//!
//! Channel binding (`SCRAM-SHA-256-PLUS`) is not offered; SCRAM runs without it.

mod query;
mod stream;

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{PostgresConfig, SslMode};
use crate::error::{Error, Result};

pub(crate) use query::MakeRustlsConnect;
pub(crate) use stream::PgStream;

/// The rustls client settings for `config`, or `None` when TLS is disabled.
pub(crate) fn client_config(config: &PostgresConfig) -> Result<Option<Arc<ClientConfig>>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls(format!("no usable tls protocol version: {e}")))?;
    let tls = match config.ssl_mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        SslMode::VerifyFull => builder
            .with_root_certificates(root_store(config)?)
            .with_no_client_auth(),
    };
    Ok(Some(Arc::new(tls)))
}

/// The server name to check the certificate against (and send as SNI).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::tls(format!(
            "host {host:?} is neither a DNS name nor an IP address usable for tls: {e}"
        ))
    })
}

fn root_store(config: &PostgresConfig) -> Result<RootCertStore> {
    let Some(path) = &config.ssl_root_cert else {
        return Err(Error::Config {
            field: "ssl_root_cert",
            reason: "ssl_mode verify-full needs the PEM file of the CA that signed the server's certificate".into(),
        });
    };
    let unreadable = |e: rustls::pki_types::pem::Error| {
        Error::tls(format!(
            "could not read CA certificates from {}: {e}; point ssl_root_cert at a PEM file",
            path.display()
        ))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
        roots.add(cert.map_err(unreadable)?).map_err(|e| {
            Error::tls(format!(
                "a certificate in {} is not a usable CA: {e}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::tls(format!(
            "{} holds no PEM certificate; point ssl_root_cert at the CA's PEM file",
            path.display()
        )));
    }
    Ok(roots)
}

/// `prefer`/`require`: any certificate, but a handshake signed by its key.
#[derive(Debug)]
struct NoCertificateCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertificateCheck {
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
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
