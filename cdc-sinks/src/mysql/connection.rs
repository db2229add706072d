//! Connecting to MySQL/MariaDB, session settings and the bookkeeping tables.

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
    let mut conn = Conn::new(OptsBuilder::from_opts(opts).stmt_cache_size(512))
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

/// Drops anything that looks like credentials from a driver message.
fn redact(message: &str) -> String {
    if message.contains('@') {
        "(details redacted: the message contained the URL)".into()
    } else {
        message.into()
    }
}
