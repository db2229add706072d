//! The replication connection's byte stream: plain TCP or TLS over it, chosen
//! by the `SSLRequest` exchange.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{PostgresConfig, SslMode};
use crate::error::{Error, Result};

/// A connection to the server, encrypted or not.
#[derive(Debug)]
pub(crate) enum PgStream {
    /// No TLS (`disable`, or `prefer` with a server that declines).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl PgStream {
    /// Sets up TLS on a fresh connection as `config.ssl_mode` asks.
    pub(crate) async fn negotiate(mut tcp: TcpStream, config: &PostgresConfig) -> Result<Self> {
        let Some(tls) = super::client_config(config)? else {
            return Ok(PgStream::Plain(tcp));
        };
        let mut request = BytesMut::new();
        frontend::ssl_request(&mut request);
        tcp.write_all(&request)
            .await
            .map_err(|_| Error::ConnectionClosed)?;
        let answer = tcp.read_u8().await.map_err(|_| Error::ConnectionClosed)?;
        match answer {
            b'S' => {}
            b'N' if config.ssl_mode == SslMode::Prefer => return Ok(PgStream::Plain(tcp)),
            b'N' => {
                return Err(Error::tls(format!(
                    "the server does not accept tls but ssl_mode is {}; turn ssl on in postgresql.conf or lower ssl_mode",
                    config.ssl_mode
                )));
            }
            other => {
                return Err(Error::protocol(format!(
                    "unexpected answer {other:#04x} to the tls request"
                )));
            }
        }
        let name = super::server_name(&config.host)?;
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|source| Error::TlsHandshake {
                host: config.host.clone(),
                source,
            })?;
        Ok(PgStream::Tls(Box::new(stream)))
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
