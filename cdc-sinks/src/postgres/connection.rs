//! Connecting to PostgreSQL and creating the bookkeeping tables.

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

/// Connects and creates the target schema and the bookkeeping tables.
pub(super) async fn connect(config: &PostgresConfig) -> Result<Connection> {
    let (client, conn) = tokio_postgres::connect(config.connection.expose(), NoTls)
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
