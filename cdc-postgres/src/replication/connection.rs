//! A replication-mode connection (`replication=database`) on a tokio TCP stream,
//! speaking the frontend/backend protocol through `postgres-protocol`.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{CopyMessage, Frame, parse_copy_data, split_frame, standby_status_update};
use crate::config::{PostgresConfig, SESSION_SETTINGS};
use crate::error::{Error, Result};
use crate::tls::PgStream;

/// Result rows of a simple query, values as text.
pub(crate) type TextRows = Vec<Vec<Option<String>>>;

/// A connection in replication mode.
pub(crate) struct ReplicationConnection {
    stream: PgStream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// The walsender's process id, from the startup's BackendKeyData.
    backend_pid: Option<i32>,
}

impl ReplicationConnection {
    /// Connects, authenticates and waits until the server is ready for queries.
    pub(crate) async fn connect(config: &PostgresConfig) -> Result<Self> {
        let address = format!("{}:{}", config.host, config.port);
        let stream = TcpStream::connect(&address)
            .await
            .map_err(|source| Error::Connect {
                address: address.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let stream = PgStream::negotiate(stream, config).await?;
        let mut conn = Self {
            stream,
            read_buf: BytesMut::with_capacity(256 * 1024),
            write_buf: BytesMut::new(),
            backend_pid: None,
        };
        let mut params = vec![
            ("user", config.user.as_str()),
            ("database", config.database.as_str()),
            ("replication", "database"),
            ("application_name", "cdc-postgres"),
        ];
        params.extend(SESSION_SETTINGS);
        frontend::startup_message(params, &mut conn.write_buf).map_err(io_protocol)?;
        conn.flush().await?;
        conn.authenticate(config).await?;
        loop {
            match conn.read_message_raw("starting up").await? {
                backend::Message::BackendKeyData(key) => conn.backend_pid = Some(key.process_id()),
                backend::Message::ReadyForQuery(_) => return Ok(conn),
                _ => {}
            }
        }
    }

    /// The process id of the walsender serving this connection.
    pub(crate) fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    async fn authenticate(&mut self, config: &PostgresConfig) -> Result<()> {
        let password = || {
            config
                .password
                .as_ref()
                .map(|p| p.expose().as_bytes())
                .ok_or_else(|| Error::Auth {
                    reason: "the server asks for a password and none is configured".into(),
                })
        };
        loop {
            match self.read_message("authenticating").await? {
                backend::Message::AuthenticationOk => return Ok(()),
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?, &mut self.write_buf)
                        .map_err(io_protocol)?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(config.user.as_bytes(), password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.write_buf)
                        .map_err(io_protocol)?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut scram = false;
                    while let Some(m) = mechanisms.next().map_err(io_protocol)? {
                        scram |= m == sasl::SCRAM_SHA_256;
                    }
                    if !scram {
                        return Err(Error::Auth {
                            reason:
                                "the server offers no SASL mechanism we support (SCRAM-SHA-256)"
                                    .into(),
                        });
                    }
                    self.scram(password()?).await?;
                    continue;
                }
                other => {
                    return Err(Error::Auth {
                        reason: format!("unsupported authentication request {}", name(&other)),
                    });
                }
            }
            self.flush().await?;
        }
    }

    async fn scram(&mut self, password: &[u8]) -> Result<()> {
        let mut scram = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
        frontend::sasl_initial_response(sasl::SCRAM_SHA_256, scram.message(), &mut self.write_buf)
            .map_err(io_protocol)?;
        self.flush().await?;
        let backend::Message::AuthenticationSaslContinue(body) =
            self.read_message("authenticating").await?
        else {
            return Err(Error::Auth {
                reason: "expected a SASL continue message".into(),
            });
        };
        scram.update(body.data()).map_err(|e| Error::Auth {
            reason: format!("SCRAM exchange failed: {e}"),
        })?;
        frontend::sasl_response(scram.message(), &mut self.write_buf).map_err(io_protocol)?;
        self.flush().await?;
        let backend::Message::AuthenticationSaslFinal(body) =
            self.read_message("authenticating").await?
        else {
            return Err(Error::Auth {
                reason: "expected a SASL final message".into(),
            });
        };
        scram.finish(body.data()).map_err(|e| Error::Auth {
            reason: format!("server signature did not verify: {e}"),
        })?;
        Ok(())
    }

    /// Runs a replication command and returns its rows as text.
    pub(crate) async fn simple_query(
        &mut self,
        sql: &str,
        context: &'static str,
    ) -> Result<TextRows> {
        frontend::query(sql, &mut self.write_buf).map_err(io_protocol)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.read_message_raw(context).await {
                Ok(backend::Message::DataRow(row)) => {
                    let buf = row.buffer();
                    let mut values = Vec::new();
                    let mut ranges = row.ranges();
                    while let Some(range) = ranges.next().map_err(io_protocol)? {
                        values.push(range.map(|r| {
                            String::from_utf8_lossy(buf.get(r).unwrap_or_default()).into_owned()
                        }));
                    }
                    rows.push(values);
                }
                Ok(backend::Message::ReadyForQuery(_)) => break,
                Ok(_) => {}
                Err(e @ Error::Server { .. }) => error = Some(e),
                Err(e) => return Err(e),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Sends `START_REPLICATION` and waits for the CopyBoth response.
    pub(crate) async fn start_replication(&mut self, sql: &str) -> Result<()> {
        frontend::query(sql, &mut self.write_buf).map_err(io_protocol)?;
        self.flush().await?;
        loop {
            let frame = self.read_frame().await?;
            match frame.tag {
                // CopyBothResponse, which postgres-protocol's parser does not know.
                b'W' => return Ok(()),
                b'E' => return Err(server_error(&frame, "starting replication")),
                b'N' | b'S' => {}
                tag => {
                    return Err(Error::protocol(format!(
                        "unexpected message {:?} after START_REPLICATION",
                        tag as char
                    )));
                }
            }
        }
    }

    /// The next message of the CopyBoth stream; `None` when the server ended it.
    pub(crate) async fn next_copy_message(&mut self) -> Result<Option<CopyMessage>> {
        loop {
            let frame = self.read_frame().await?;
            match frame.tag {
                b'd' => return parse_copy_data(frame.body).map(Some),
                b'c' => {
                    // The server ends the stream (shutdown); answer so it can finish.
                    frontend::copy_done(&mut self.write_buf);
                    let _ = self.flush().await;
                    return Ok(None);
                }
                // The command completed after the copy ended.
                b'C' | b'Z' => return Ok(None),
                b'E' => return Err(server_error(&frame, "streaming")),
                b'N' | b'S' => {}
                tag => {
                    return Err(Error::protocol(format!(
                        "unexpected message {:?} in the replication stream",
                        tag as char
                    )));
                }
            }
        }
    }

    /// Sends a standby status update; with `reply_requested` the walsender
    /// answers with a keepalive (see `liveness`).
    pub(crate) async fn send_status(
        &mut self,
        written: u64,
        flushed: u64,
        now_unix_micros: i64,
        reply_requested: bool,
    ) -> Result<()> {
        standby_status_update(
            &mut self.write_buf,
            written,
            flushed,
            flushed,
            now_unix_micros,
            reply_requested,
        );
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        let result = self.stream.write_all(&self.write_buf).await;
        self.write_buf.clear();
        result.map_err(|_| Error::ConnectionClosed)?;
        // TLS buffers what it encrypts until flushed.
        self.stream
            .flush()
            .await
            .map_err(|_| Error::ConnectionClosed)
    }

    async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(frame) = split_frame(&mut self.read_buf)? {
                return Ok(frame);
            }
            if self.read_buf.capacity() - self.read_buf.len() < 64 * 1024 {
                self.read_buf.reserve(256 * 1024);
            }
            let n = self
                .stream
                .read_buf(&mut self.read_buf)
                .await
                .map_err(|_| Error::ConnectionClosed)?;
            if n == 0 {
                return Err(Error::ConnectionClosed);
            }
        }
    }

    async fn read_message_raw(&mut self, context: &'static str) -> Result<backend::Message> {
        let frame = self.read_frame().await?;
        if frame.tag == b'E' {
            return Err(server_error(&frame, context));
        }
        let mut whole = BytesMut::with_capacity(frame.body.len() + 5);
        whole.extend_from_slice(&[frame.tag]);
        whole.extend_from_slice(&(frame.body.len() as u32 + 4).to_be_bytes());
        whole.extend_from_slice(&frame.body);
        backend::Message::parse(&mut whole)
            .map_err(io_protocol)?
            .ok_or_else(|| Error::protocol("incomplete message"))
    }

    async fn read_message(&mut self, context: &'static str) -> Result<backend::Message> {
        loop {
            match self.read_message_raw(context).await? {
                backend::Message::NoticeResponse(_)
                | backend::Message::ParameterStatus(_)
                | backend::Message::BackendKeyData(_) => {}
                other => return Ok(other),
            }
        }
    }
}

fn io_protocol(e: std::io::Error) -> Error {
    Error::protocol(e.to_string())
}

fn server_error(frame: &Frame, context: &'static str) -> Error {
    let mut code = String::new();
    let mut message = String::new();
    // Fields: a type byte, a NUL-terminated string; the list ends with a zero byte.
    for field in frame.body.split(|&b| b == 0) {
        if let Some((&kind, value)) = field.split_first() {
            let value = String::from_utf8_lossy(value).into_owned();
            match kind {
                b'C' => code = value,
                b'M' => message = value,
                _ => {}
            }
        }
    }
    Error::Server {
        context,
        code,
        message,
    }
}

fn name(message: &backend::Message) -> &'static str {
    match message {
        backend::Message::AuthenticationKerberosV5 => "Kerberos V5",
        backend::Message::AuthenticationScmCredential => "SCM credential",
        backend::Message::AuthenticationGss | backend::Message::AuthenticationGssContinue(_) => {
            "GSS"
        }
        backend::Message::AuthenticationSspi => "SSPI",
        _ => "message",
    }
}
