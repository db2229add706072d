//! The live binlog stream: registers as a replica with `mysql_async` and
//! requests events from a file:pos or GTID position.
//!
//! MariaDB needs `@mariadb_slave_capability=4` before the request, or it
//! rewrites its GTID events into `BEGIN` queries; a GTID start sets
//! `@slave_connect_state` and sends an empty file name.

mod catalog;

use cdc_core::event::SourcePosition;
use mysql_async::binlog::events::Event;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};

use crate::config::{MySqlConfig, TlsMode};
use crate::error::{Error, Result};
use crate::gtid::GtidSet;

pub use catalog::type_hints;

/// Where the stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStart {
    /// A binlog file and byte position.
    FilePos {
        /// Binlog file.
        file: String,
        /// Byte position.
        pos: u64,
    },
    /// MariaDB: after this GTID list.
    MariaGtid(String),
    /// MySQL: after this executed GTID set.
    MySqlGtid(GtidSet),
}

/// Opens a connection (TLS as configured).
pub async fn connect(config: &MySqlConfig) -> Result<Conn> {
    Conn::new(config.opts()).await.map_err(|e| {
        if config.tls != TlsMode::Disabled
            && let Some(reason) = tls_failure(&e)
        {
            return Error::Tls {
                host: config.host.clone(),
                reason,
            };
        }
        Error::mysql(format!("connecting to {}:{}", config.host, config.port), e)
    })
}

/// Why connecting failed, if it failed in TLS: the driver's TLS errors, the
/// server offering no TLS, and the `InvalidData` i/o error that a rejected
/// certificate surfaces as during the handshake.
fn tls_failure(e: &mysql_async::Error) -> Option<String> {
    use mysql_async::{DriverError, Error as E, IoError};
    match e {
        E::Driver(DriverError::NoClientSslFlagFromServer) => {
            Some("the server offers no TLS (start it with ssl_cert and ssl_key)".into())
        }
        E::Io(IoError::Tls(tls)) => Some(tls.to_string()),
        E::Io(IoError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            Some(io.to_string())
        }
        _ => None,
    }
}

/// The server's current binlog file, position and GTID state, as a position.
pub async fn current_position(conn: &mut Conn, is_mariadb: bool) -> Result<SourcePosition> {
    let row = master_status(conn, is_mariadb).await?;
    let row = row.ok_or(Error::Setting {
        variable: "log_bin",
        actual: "OFF".into(),
        fix: "enable the binary log: start the server with --log-bin and restart",
    })?;
    let file: String = row.get_opt(0).and_then(Result::ok).unwrap_or_default();
    let pos: u64 = row.get_opt(1).and_then(Result::ok).unwrap_or(4);
    let gtid = if is_mariadb {
        let g: Option<String> = conn
            .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
            .await
            .map_err(|e| Error::mysql("reading gtid_binlog_pos", e))?;
        g
    } else {
        row.get_opt::<String, _>(4)
            .and_then(Result::ok)
            .filter(|s| !s.is_empty())
    };
    Ok(SourcePosition::MySql {
        file: file.into(),
        pos,
        gtid: gtid.map(|g| g.split_whitespace().collect::<String>().into()),
    })
}

/// The row of `SHOW BINARY LOG STATUS` (MySQL 8.2 and later; 8.4 removed the
/// old name) or `SHOW MASTER STATUS` (MySQL 8.0 and MariaDB, whose parser
/// refuses the new name with a syntax error).
async fn master_status(conn: &mut Conn, is_mariadb: bool) -> Result<Option<mysql_async::Row>> {
    const SYNTAX_ERROR: u16 = 1064;
    if !is_mariadb {
        match conn.query_first("SHOW BINARY LOG STATUS").await {
            Err(mysql_async::Error::Server(e)) if e.code == SYNTAX_ERROR => {}
            other => return other.map_err(|e| Error::mysql("reading SHOW BINARY LOG STATUS", e)),
        }
    }
    conn.query_first("SHOW MASTER STATUS")
        .await
        .map_err(|e| Error::mysql("reading SHOW MASTER STATUS", e))
}

/// The binlog files the server still has, oldest first.
pub async fn binlog_files(conn: &mut Conn) -> Result<Vec<String>> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| Error::mysql("reading SHOW BINARY LOGS", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get_opt::<String, _>(0).and_then(Result::ok))
        .collect())
}

/// Registers as replica `server_id` and requests the stream from `start`.
pub async fn open(
    config: &MySqlConfig,
    is_mariadb: bool,
    start: &StreamStart,
) -> Result<BinlogStream> {
    let mut conn = connect(config).await?;
    let heartbeat_ns = u64::try_from(config.heartbeat.as_nanos()).unwrap_or(u64::MAX);
    conn.exec_drop("SET @master_heartbeat_period = ?", (heartbeat_ns,))
        .await
        .map_err(|e| Error::mysql("setting the heartbeat period", e))?;
    if is_mariadb {
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(|e| Error::mysql("announcing MariaDB GTID capability", e))?;
    }
    let request = BinlogStreamRequest::new(config.server_id);
    let stream = match start {
        StreamStart::FilePos { file, pos } => {
            let request = request.with_filename(file.as_bytes()).with_pos(*pos);
            conn.get_binlog_stream(request).await
        }
        StreamStart::MariaGtid(state) => {
            conn.exec_drop("SET @slave_connect_state = ?", (state.as_str(),))
                .await
                .map_err(|e| Error::mysql("setting slave_connect_state", e))?;
            conn.query_drop("SET @slave_gtid_strict_mode = 1")
                .await
                .map_err(|e| Error::mysql("setting slave_gtid_strict_mode", e))?;
            conn.get_binlog_stream(request.with_filename(b"").with_pos(4u64))
                .await
        }
        StreamStart::MySqlGtid(set) => {
            let sids: Vec<mysql_async::Sid<'static>> = set
                .sids()
                .map(|(uuid, tag, ranges)| {
                    let mut sid = mysql_async::Sid::new(uuid);
                    if let Some(tag) = tag {
                        // Tagged GTIDs (MySQL 8.4): the request switches to the
                        // tagged encoding; tags were validated when parsed.
                        let tag = mysql_common::packets::Tag::new(tag.to_owned()).map_err(|e| {
                            Error::Position(format!("invalid GTID tag {tag:?}: {e}"))
                        })?;
                        sid = sid.with_tag(tag);
                    }
                    for (a, b) in ranges {
                        sid = sid.with_interval(mysql_async::GnoInterval::new(a, b));
                    }
                    Ok(sid)
                })
                .collect::<Result<_>>()?;
            let request = request
                .with_gtid()
                .with_gtid_set(sids)
                .with_filename(b"")
                .with_pos(4u64);
            conn.get_binlog_stream(request).await
        }
    };
    stream.map_err(|e| map_stream_error(e, start, config.server_id))
}

/// Maps the server's replication errors to the ones that say the fix.
pub fn map_stream_error(e: mysql_async::Error, start: &StreamStart, server_id: u32) -> Error {
    if let mysql_async::Error::Server(s) = &e {
        let msg = s.message.to_ascii_lowercase();
        let purged = msg.contains("could not find first log file")
            || msg.contains("purged")
            || msg.contains("could not find gtid state")
            || msg.contains("requested by slave in any binlog");
        if s.code == 1236 && purged {
            let file = match start {
                StreamStart::FilePos { file, .. } => file.clone(),
                StreamStart::MariaGtid(g) => format!("holding GTID {g}"),
                StreamStart::MySqlGtid(g) => format!("holding GTID {g}"),
            };
            return Error::NeedsBackfill {
                file,
                detail: s.message.clone(),
            };
        }
        if msg.contains("same server_uuid/server_id") || msg.contains("same server_id") {
            return Error::ServerIdClash { server_id };
        }
        // ER_SPECIFIC_ACCESS_DENIED_ERROR: the start-up check read the grants
        // as granting it (a role, say), but the server says otherwise.
        if s.code == 1227 && msg.contains("replication slave") {
            return Error::Privilege {
                privilege: "REPLICATION SLAVE",
            };
        }
    }
    Error::mysql("reading the binlog stream", e)
}

/// The event's body as the decoder wants it.
pub fn event_parts(event: &Event) -> (crate::binlog::event::EventHeader, &[u8]) {
    let h = event.header();
    (
        crate::binlog::event::EventHeader {
            timestamp: h.timestamp(),
            kind: h.event_type_raw(),
            server_id: h.server_id(),
            event_size: h.event_size(),
            log_pos: h.log_pos(),
            flags: h.flags_raw(),
        },
        event.data(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Password;

    #[test]
    fn a_refused_dump_request_names_the_missing_privilege() {
        let refused = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1227,
            message: "Access denied; you need (at least one of) the REPLICATION SLAVE \
                      privilege(s) for this operation"
                .into(),
            state: "42000".into(),
        });
        let start = StreamStart::FilePos {
            file: "binlog.000001".into(),
            pos: 4,
        };
        let err = map_stream_error(refused, &start, 7);
        assert!(
            matches!(
                err,
                Error::Privilege {
                    privilege: "REPLICATION SLAVE"
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_binlog_status_falls_back_to_show_master_status_where_the_new_name_is_unknown() {
        let db = cdc_testkit::MariaDb::start()
            .unwrap_or_else(|e| panic!("MariaDB test server could not start: {e}"));
        let config = MySqlConfig::new(
            db.host(),
            db.port(),
            db.user(),
            Password::new(db.password()),
        );
        let mut conn = connect(&config).await.unwrap();
        let SourcePosition::MySql { file, pos, .. } =
            current_position(&mut conn, true).await.unwrap()
        else {
            panic!("not a MySQL position")
        };
        // MariaDB's parser refuses SHOW BINARY LOG STATUS as MySQL 8.0's does.
        let mysql = current_position(&mut conn, false).await.unwrap();
        // Its SHOW MASTER STATUS has no Executed_Gtid_Set column.
        assert_eq!(
            mysql,
            SourcePosition::MySql {
                file,
                pos,
                gtid: None
            }
        );
    }
}
