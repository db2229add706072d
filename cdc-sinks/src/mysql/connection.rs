//! Connecting to MySQL/MariaDB, session settings and the bookkeeping tables.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::config::MySqlConfig;
use crate::error::{Result, SinkError};
use crate::mode::{OFFSETS_TABLE, SCHEMAS_TABLE};
use crate::quote::Dialect;

const D: Dialect = Dialect::MySql;

/// Connects, sets a strict UTC session and creates the bookkeeping tables.
pub(super) async fn connect(config: &MySqlConfig) -> Result<Conn> {
    let opts = Opts::from_url(config.url.expose()).map_err(|e| {
        SinkError::config(
            "url",
            format!("not a MySQL URL: {}", redact(&e.to_string())),
        )
    })?;
    let mut conn = Conn::new(with_keepalive(opts).stmt_cache_size(512))
        .await
        .map_err(SinkError::mysql("connecting"))?;
    // Strict mode turns would-be truncations into errors; UTC makes DATETIME
    // hold UTC instants; no backslash escapes keeps string handling plain.
    conn.query_drop(
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO',
             time_zone = '+00:00', names utf8mb4",
    )
    .await
    .map_err(SinkError::mysql("setting the session"))?;
    if let Some(db) = &config.database {
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", D.ident(db)))
            .await
            .map_err(SinkError::mysql("creating the target database"))?;
    }
    let ns = config.database.as_deref().unwrap_or("");
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {} (sink_name VARCHAR(255) PRIMARY KEY,
             last_offset BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        D.qualified(ns, OFFSETS_TABLE)
    ))
    .await
    .map_err(SinkError::mysql("creating the offsets table"))?;
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {} (sink_name VARCHAR(255) NOT NULL,
             source_schema VARCHAR(255) NOT NULL, source_table VARCHAR(255) NOT NULL,
             schema_json LONGTEXT NOT NULL, PRIMARY KEY (sink_name, source_schema, source_table))
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        D.qualified(ns, SCHEMAS_TABLE)
    ))
    .await
    .map_err(SinkError::mysql("creating the schemas table"))?;
    Ok(conn)
}

/// Quiet before the first keepalive probe, where the URL sets none.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Keepalive probes after 30 s of quiet where the URL sets no
/// `tcp_keepalive`: the driver sets none, so a target gone without a reset
/// (a dropped network path) left a statement waiting for good. With the
/// system's probe interval and count it is noticed in minutes; long
/// statements are untouched, the server's kernel answers probes meanwhile.
fn with_keepalive(opts: Opts) -> OptsBuilder {
    let keepalive = opts.tcp_keepalive().or(Some(KEEPALIVE_IDLE));
    OptsBuilder::from_opts(opts).tcp_keepalive(keepalive)
}

/// Drops anything that looks like credentials from a driver message.
fn redact(message: &str) -> String {
    if message.contains('@') {
        "(details redacted: the message contained the URL)".into()
    } else {
        message.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalives_notice_a_dead_peer_unless_the_url_says_otherwise() {
        let opts = |url| Opts::from(with_keepalive(Opts::from_url(url).unwrap()));
        assert_eq!(opts("mysql://u@db/d").tcp_keepalive(), Some(KEEPALIVE_IDLE));
        assert_eq!(
            opts("mysql://u@db/d?tcp_keepalive=120000").tcp_keepalive(),
            Some(Duration::from_secs(120))
        );
    }
}
