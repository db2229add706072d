//! Applying a batch in one PostgreSQL transaction, with the offset row.

use cdc_core::SinkBatch;
use tokio_postgres::{Client, Statement};

use super::config::PostgresConfig;
use super::merge::{apply_net, copy_history};
use super::table::{Tables, prepare_table};
use crate::error::{Result, SinkError};
use crate::mode::{OFFSETS_TABLE, SOFT_DELETED, WriteMode};
use crate::plan::{Step, plan};
use crate::quote::Dialect;

const D: Dialect = Dialect::Postgres;

/// The offset stored by the last committed batch.
pub(super) async fn stored_offset(client: &Client, config: &PostgresConfig) -> Result<Option<u64>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT last_offset FROM {} WHERE sink_name = $1",
                D.qualified(&config.schema, OFFSETS_TABLE)
            ),
            &[&config.sink_name],
        )
        .await
        .map_err(SinkError::pg("reading the stored offset"))?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64))
}

/// Prepares the statement storing the offset (once per session).
pub(super) async fn prepare_store_offset(
    client: &Client,
    config: &PostgresConfig,
) -> Result<Statement> {
    client
        .prepare(&format!(
            "INSERT INTO {} (sink_name, last_offset) VALUES ($1, $2)
             ON CONFLICT (sink_name) DO UPDATE SET last_offset = EXCLUDED.last_offset",
            D.qualified(&config.schema, OFFSETS_TABLE)
        ))
        .await
        .map_err(SinkError::pg("preparing the offset statement"))
}

/// Applies the batch and its offset in one transaction.
pub(super) async fn apply(
    client: &mut Client,
    config: &PostgresConfig,
    tables: &mut Tables,
    store_offset: &Statement,
    batch: &SinkBatch,
) -> Result<()> {
    let steps = plan(batch, |t| config.mapping.mode_if_included(t))?;
    let offset = i64::try_from(batch.last_offset).map_err(|_| SinkError::CorruptState {
        location: "batch".into(),
        reason: "offset beyond i64::MAX".into(),
    })?;
    let tx = client
        .transaction()
        .await
        .map_err(SinkError::pg("beginning a transaction"))?;
    let mut groups = 0;
    for step in &steps {
        match step {
            Step::Schema(schema) => prepare_table(&tx, tables, config, schema).await?,
            Step::Net { schema, rows } => {
                apply_net(&tx, tables.built(&schema.table)?, rows, &mut groups).await?
            }
            Step::History { schema, changes } => {
                copy_history(&tx, tables.built(&schema.table)?, changes).await?
            }
            Step::Truncate {
                schema,
                offset,
                change,
            } => {
                let table = tables.built(&schema.table)?;
                let sql = match table.target.write_mode {
                    WriteMode::Upsert => format!("TRUNCATE {}", table.qualified),
                    WriteMode::SoftDelete => format!(
                        "UPDATE {} SET {} = true",
                        table.qualified,
                        D.ident(SOFT_DELETED)
                    ),
                    WriteMode::History => {
                        copy_history(&tx, table, &[(*offset, *change)]).await?;
                        continue;
                    }
                };
                tx.batch_execute(&sql)
                    .await
                    .map_err(SinkError::pg("truncating a table"))?;
            }
        }
    }
    if !batch.copied {
        tx.execute(store_offset, &[&config.sink_name, &offset])
            .await
            .map_err(SinkError::pg("storing the offset"))?;
    }
    tx.commit()
        .await
        .map_err(SinkError::pg("committing a batch"))
}
