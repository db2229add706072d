//! Applying a batch in one SQLite transaction, with the offset row.

use std::collections::HashMap;

use cdc_core::SinkBatch;
use cdc_core::event::{TableName, TableSchema};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::config::SqliteConfig;
use super::mapping::{column_type, create_table};
use super::write::{SqliteTable, write_history, write_net};
use crate::error::{Result, SinkError};
use crate::evolution::{Alter, TablePlan, table_plan};
use crate::mapping::TargetTable;
use crate::mode::{OFFSETS_TABLE, SCHEMAS_TABLE, SOFT_DELETED, WriteMode};
use crate::plan::{Step, plan};
use crate::quote::Dialect;

const D: Dialect = Dialect::Sqlite;

/// The sink's state: the connection and the target tables it built.
pub(crate) struct SqliteState {
    conn: Connection,
    config: SqliteConfig,
    tables: HashMap<TableName, SqliteTable>,
}

impl SqliteState {
    pub(super) fn new(conn: Connection, config: SqliteConfig) -> Self {
        Self {
            conn,
            config,
            tables: HashMap::new(),
        }
    }

    /// The offset stored by the last committed batch.
    pub(crate) fn stored_offset(&mut self) -> Result<Option<u64>> {
        let sql = format!(
            "SELECT last_offset FROM {} WHERE sink_name = ?1",
            D.ident(OFFSETS_TABLE)
        );
        let offset: Option<i64> = self
            .conn
            .query_row(&sql, [&self.config.sink_name], |r| r.get(0))
            .optional()
            .map_err(SinkError::sqlite("reading the stored offset"))?;
        Ok(offset.map(|o| o as u64))
    }

    /// Applies the batch and its offset in one transaction.
    pub(crate) fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        let result = self.apply_in_transaction(batch);
        if result.is_err() {
            // The transaction rolled back: forget tables built or altered in it.
            self.tables.clear();
        }
        result
    }

    fn apply_in_transaction(&mut self, batch: &SinkBatch) -> Result<()> {
        let Self {
            conn,
            config,
            tables,
        } = self;
        let steps = plan(batch, |t| config.mapping.mode_if_included(t))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(SinkError::sqlite("beginning a transaction"))?;
        for step in &steps {
            match step {
                Step::Schema(schema) => prepare_table(&tx, tables, config, schema)?,
                Step::Net { schema, rows } => write_net(&tx, built(tables, &schema.table)?, rows)?,
                Step::History { schema, changes } => {
                    write_history(&tx, built(tables, &schema.table)?, changes)?
                }
                Step::Truncate {
                    schema,
                    offset,
                    change,
                } => {
                    let table = built(tables, &schema.table)?;
                    let name = D.ident(&table.target.name);
                    let sql = match table.target.write_mode {
                        WriteMode::Upsert => format!("DELETE FROM {name}"),
                        WriteMode::SoftDelete => {
                            format!("UPDATE {name} SET {} = 1", D.ident(SOFT_DELETED))
                        }
                        WriteMode::History => {
                            write_history(&tx, table, &[(*offset, *change)])?;
                            continue;
                        }
                    };
                    tx.execute(&sql, [])
                        .map_err(SinkError::sqlite("truncating a table"))?;
                }
            }
        }
        let offset = i64::try_from(batch.last_offset).map_err(|_| SinkError::CorruptState {
            location: "batch".into(),
            reason: "offset beyond i64::MAX".into(),
        })?;
        if !batch.copied {
            tx.prepare_cached(&format!(
                "INSERT INTO {} (sink_name, last_offset) VALUES (?1, ?2)
                 ON CONFLICT (sink_name) DO UPDATE SET last_offset = excluded.last_offset",
                D.ident(OFFSETS_TABLE)
            ))
            .and_then(|mut s| s.execute(params![config.sink_name, offset]))
            .map_err(SinkError::sqlite("storing the offset"))?;
        }
        tx.commit().map_err(SinkError::sqlite("committing a batch"))
    }
}

fn built<'t>(
    tables: &'t mut HashMap<TableName, SqliteTable>,
    table: &TableName,
) -> Result<&'t mut SqliteTable> {
    tables
        .get_mut(table)
        .ok_or_else(|| SinkError::CorruptState {
            location: "sqlite sink".into(),
            reason: format!("changes of {table} arrived before its schema"),
        })
}

/// Creates, prepares or evolves the target table for a schema step.
fn prepare_table(
    tx: &Transaction<'_>,
    tables: &mut HashMap<TableName, SqliteTable>,
    config: &SqliteConfig,
    schema: &TableSchema,
) -> Result<()> {
    // Every batch starts with the schema of each table it touches; when this
    // sink built the table from the same schema there is nothing to do.
    if tables
        .get(&schema.table)
        .is_some_and(|t| t.source == *schema)
    {
        return Ok(());
    }
    let Some(new) = config.mapping.resolve(schema)? else {
        return Ok(());
    };
    let stored = match tables.get(&schema.table) {
        Some(t) => Some(t.target.clone()),
        None => load_stored(tx, config, &schema.table)?,
    };
    let name = D.ident(&new.name);
    let exec = |sql: &str| {
        tx.execute(sql, [])
            .map(drop)
            .map_err(SinkError::sqlite("changing a target table"))
    };
    match table_plan(stored.as_ref(), &new, config.mapping.dropped_columns)? {
        TablePlan::Create {
            drop_first,
            truncate,
        } => {
            if drop_first {
                exec(&format!("DROP TABLE IF EXISTS {name}"))?;
            }
            exec(&create_table(&new))?;
            if truncate {
                exec(&format!("DELETE FROM {name}"))?;
            }
        }
        TablePlan::Alter(alters) => {
            for alter in alters {
                match alter {
                    Alter::Add(c) => exec(&format!(
                        "ALTER TABLE {name} ADD COLUMN {} {}",
                        D.ident(&c.name),
                        column_type(c)
                    ))?,
                    Alter::Drop(c) => exec(&format!(
                        "ALTER TABLE {name} DROP COLUMN {}",
                        D.ident(&c.name)
                    ))?,
                    Alter::Widen(c) => {
                        let old = stored
                            .as_ref()
                            .and_then(|s| s.columns.iter().find(|o| o.name == c.name));
                        // SQLite's declared types only steer conversions; the same
                        // declared type already stores every wider value exactly.
                        if old.map(column_type) != Some(column_type(c)) {
                            return Err(SinkError::IncompatibleSchema {
                                table: new.source.clone(),
                                column: c.source.name.clone(),
                                reason: format!(
                                    "SQLite cannot change the declared type to {}; \
                                     recreate the table",
                                    column_type(c)
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    let json = serde_json::to_string(schema).map_err(|e| SinkError::CorruptState {
        location: SCHEMAS_TABLE.into(),
        reason: e.to_string(),
    })?;
    tx.execute(
        &format!(
            "INSERT INTO {} (sink_name, source_schema, source_table, schema_json)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (sink_name, source_schema, source_table)
             DO UPDATE SET schema_json = excluded.schema_json",
            D.ident(SCHEMAS_TABLE)
        ),
        params![
            config.sink_name,
            schema.table.schema.as_str(),
            schema.table.name.as_str(),
            json
        ],
    )
    .map_err(SinkError::sqlite("recording a table schema"))?;
    tables.insert(schema.table.clone(), SqliteTable::new(schema.clone(), new));
    Ok(())
}

/// The target table as last built by this sink, from `_cdc_schemas`.
fn load_stored(
    tx: &Transaction<'_>,
    config: &SqliteConfig,
    table: &TableName,
) -> Result<Option<TargetTable>> {
    let json: Option<String> = tx
        .query_row(
            &format!(
                "SELECT schema_json FROM {} WHERE sink_name = ?1 AND source_schema = ?2
                 AND source_table = ?3",
                D.ident(SCHEMAS_TABLE)
            ),
            params![config.sink_name, table.schema.as_str(), table.name.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(SinkError::sqlite("reading a recorded schema"))?;
    let Some(json) = json else {
        return Ok(None);
    };
    let schema: TableSchema = serde_json::from_str(&json).map_err(|e| SinkError::CorruptState {
        location: format!("{SCHEMAS_TABLE} row of {table}"),
        reason: e.to_string(),
    })?;
    config.mapping.resolve(&schema)
}
