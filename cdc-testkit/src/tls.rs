//! Self-signed server certificates for TLS tests, made by the `openssl`
//! command line tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;
use crate::process::{require, run};

/// A certificate and its private key, as files and as PEM bytes.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// The certificate's file (PEM); also the CA to trust, being self-signed.
    pub cert_path: PathBuf,
    /// The private key's file (PEM).
    pub key_path: PathBuf,
    /// The certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// The private key (PEM).
    pub key_pem: Vec<u8>,
}

/// A self-signed server certificate for `localhost` and `127.0.0.1`, valid
/// for two days, written to `dir` as `<name>.crt` and `<name>.key`.
pub fn self_signed_cert(dir: &Path, name: &str) -> Result<TestCert, Error> {
    let openssl = require(
        "openssl",
        "/usr/bin/openssl".into(),
        "apt-get install -y openssl",
    )?;
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    run(Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN=cdc test {name}"))
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key_path)
        .arg("-out")
        .arg(&cert_path))?;
    let read = |p: &Path| std::fs::read(p).map_err(Error::io(format!("reading {}", p.display())));
    Ok(TestCert {
        cert_pem: read(&cert_path)?,
        key_pem: read(&key_path)?,
        cert_path,
        key_path,
    })
}
