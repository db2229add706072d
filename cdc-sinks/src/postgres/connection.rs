//! Connecting to PostgreSQL and creating the bookkeeping tables.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::config::PostgresConfig;
use crate::error::{Result, SinkError};
use crate::mode::{OFFSETS_TABLE, SCHEMAS_TABLE};
use crate::quote::Dialect;

const D: Dialect = Dialect::Postgres;

/// A client and the task driving its connection (aborted on drop).
pub(super) struct Connection {
    pub(super) client: Client,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Keepalive settings applied where the connection string sets none.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
/// tokio-postgres' own keepalive idle time, which a string leaves in place.
const DRIVER_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// The connection string's settings, with dead-peer detection where it sets
/// none: keepalive probes after 30 s of quiet, every 10 s, three unanswered
/// ending the connection. A target gone without a reset (a dropped network
/// path) is noticed in about a minute instead of after two hours, and long
/// statements are untouched: the server's kernel answers probes meanwhile.
fn client_config(connection: &str) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = connection
        .parse()
        .map_err(SinkError::pg("reading the connection string"))?;
    if config.get_keepalives_idle() == DRIVER_KEEPALIVE_IDLE {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
    Ok(config)
}

/// Connects and creates the target schema and the bookkeeping tables.
pub(super) async fn connect(config: &PostgresConfig) -> Result<Connection> {
    let (client, conn) = client_config(config.connection.expose())?
        .connect(NoTls)
        .await
        .map_err(SinkError::pg("connecting"))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "postgresql sink connection ended");
        }
    });
    let schema = D.ident(&config.schema);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.{} (sink_name text PRIMARY KEY,
                 last_offset bigint NOT NULL);
             CREATE TABLE IF NOT EXISTS {schema}.{} (sink_name text NOT NULL,
                 source_schema text NOT NULL, source_table text NOT NULL,
                 schema_json text NOT NULL,
                 PRIMARY KEY (sink_name, source_schema, source_table));",
            D.ident(OFFSETS_TABLE),
            D.ident(SCHEMAS_TABLE)
        ))
        .await
        .map_err(SinkError::pg("creating the bookkeeping tables"))?;
    Ok(Connection { client, driver })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalives_notice_a_dead_peer_unless_the_string_says_otherwise() {
        let config = client_config("host=db user=u").unwrap();
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(config.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(config.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        let own = client_config(
            "host=db user=u keepalives_idle=120 keepalives_interval=5 keepalives_retries=9",
        )
        .unwrap();
        assert_eq!(own.get_keepalives_idle(), Duration::from_secs(120));
        assert_eq!(own.get_keepalives_interval(), Some(Duration::from_secs(5)));
        assert_eq!(own.get_keepalives_retries(), Some(9));
    }
}
