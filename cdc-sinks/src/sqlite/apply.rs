//! Applying a batch in one SQLite transaction, with the offset row.

use std::collections::HashMap;

use cdc_core::SinkBatch;
use cdc_core::event::{Change, ChangeKind, TableName, TableSchema, Value};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::config::SqliteConfig;
use super::mapping::{column_type, create_table, sql_value};
use crate::error::{Result, SinkError};
use crate::evolution::{Alter, TablePlan, table_plan};
use crate::mapping::TargetTable;
use crate::mode::{
    HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED, OFFSETS_TABLE,
    SCHEMAS_TABLE, SOFT_DELETED, WriteMode, op_letter,
};
use crate::plan::{NetRow, Step, plan};
use crate::quote::Dialect;
use crate::temporal;

const D: Dialect = Dialect::Sqlite;

/// The worker thread's state: the connection and the target tables it built.
pub(crate) struct SqliteState {
    conn: Connection,
    config: SqliteConfig,
    tables: HashMap<TableName, TargetTable>,
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
                Step::Net { schema, rows } => {
                    let table = built(tables, &schema.table)?;
                    let mut cache = SqlCache::new();
                    for row in rows {
                        apply_net(&tx, table, row, &mut cache)?;
                    }
                }
                Step::History { schema, changes } => {
                    let table = built(tables, &schema.table)?;
                    for (offset, change) in changes {
                        insert_history(&tx, table, *offset, change)?;
                    }
                }
                Step::Truncate {
                    schema,
                    offset,
                    change,
                } => {
                    let table = built(tables, &schema.table)?;
                    let name = D.ident(&table.name);
                    let sql = match table.write_mode {
                        WriteMode::Upsert => format!("DELETE FROM {name}"),
                        WriteMode::SoftDelete => {
                            format!("UPDATE {name} SET {} = 1", D.ident(SOFT_DELETED))
                        }
                        WriteMode::History => {
                            insert_history(&tx, table, *offset, change)?;
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
        tx.prepare_cached(&format!(
            "INSERT INTO {} (sink_name, last_offset) VALUES (?1, ?2)
             ON CONFLICT (sink_name) DO UPDATE SET last_offset = excluded.last_offset",
            D.ident(OFFSETS_TABLE)
        ))
        .and_then(|mut s| s.execute(params![config.sink_name, offset]))
        .map_err(SinkError::sqlite("storing the offset"))?;
        tx.commit().map_err(SinkError::sqlite("committing a batch"))
    }
}

fn built<'t>(
    tables: &'t HashMap<TableName, TargetTable>,
    table: &TableName,
) -> Result<&'t TargetTable> {
    tables.get(table).ok_or_else(|| SinkError::CorruptState {
        location: "sqlite sink".into(),
        reason: format!("changes of {table} arrived before its schema"),
    })
}

/// Creates, prepares or evolves the target table for a schema step.
fn prepare_table(
    tx: &Transaction<'_>,
    tables: &mut HashMap<TableName, TargetTable>,
    config: &SqliteConfig,
    schema: &TableSchema,
) -> Result<()> {
    let Some(new) = config.mapping.resolve(schema)? else {
        return Ok(());
    };
    let stored = match tables.get(&schema.table) {
        Some(t) => Some(t.clone()),
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
            schema.table.schema,
            schema.table.name,
            json
        ],
    )
    .map_err(SinkError::sqlite("recording a table schema"))?;
    tables.insert(schema.table.clone(), new);
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
            params![config.sink_name, table.schema, table.name],
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

/// Statement text per (unchanged-column mask, is-delete), built once per step.
type SqlCache = HashMap<(Vec<bool>, bool), String>;

fn apply_net(
    tx: &Transaction<'_>,
    table: &TargetTable,
    row: &NetRow,
    cache: &mut SqlCache,
) -> Result<()> {
    let soft = table.write_mode == WriteMode::SoftDelete;
    let (image, deleted) = match row {
        NetRow::Upsert(image) => (image, false),
        NetRow::Delete(image) => (image, true),
    };
    let mut values = Vec::with_capacity(table.columns.len());
    let mask: Vec<bool> = if deleted && !soft {
        for c in table.key_columns() {
            values.push(sql_value(table, c, &image[c.source_index])?);
        }
        Vec::new()
    } else {
        let mut mask = Vec::with_capacity(table.columns.len());
        for c in &table.columns {
            let v = &image[c.source_index];
            let unchanged = matches!(v, Value::Unchanged);
            if !unchanged {
                values.push(sql_value(table, c, v)?);
            }
            mask.push(unchanged);
        }
        mask
    };
    let sql = cache
        .entry((mask, deleted))
        .or_insert_with_key(|(mask, deleted)| net_sql(table, mask, *deleted));
    tx.prepare_cached(sql)
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(values.iter())))
        .map_err(SinkError::sqlite("applying a row change"))?;
    Ok(())
}

/// The statement for a row: a delete by key, or an upsert of the sent columns
/// (in soft-delete mode a delete is an upsert of what the batch knows with the
/// flag set).
fn net_sql(table: &TargetTable, mask: &[bool], deleted: bool) -> String {
    let name = D.ident(&table.name);
    let soft = table.write_mode == WriteMode::SoftDelete;
    let key_list = D.list(table.key_columns().map(|c| c.name.as_str()));
    if deleted && !soft {
        let cond: Vec<String> = table
            .key_columns()
            .map(|c| format!("{} = ?", D.ident(&c.name)))
            .collect();
        return format!("DELETE FROM {name} WHERE {}", cond.join(" AND "));
    }
    let mut cols = Vec::new();
    let mut sets = Vec::new();
    for (i, c) in table.columns.iter().enumerate() {
        if mask[i] {
            continue;
        }
        cols.push(D.ident(&c.name));
        if !table.is_key(i) {
            sets.push(format!("{0} = excluded.{0}", D.ident(&c.name)));
        }
    }
    let mut marks = vec!["?"; cols.len()].join(", ");
    if soft {
        let flag = i32::from(deleted);
        cols.push(D.ident(SOFT_DELETED));
        marks.push_str(&format!(", {flag}"));
        sets.push(format!("{} = {flag}", D.ident(SOFT_DELETED)));
    }
    let action = if sets.is_empty() {
        "NOTHING".to_string()
    } else {
        format!("UPDATE SET {}", sets.join(", "))
    };
    format!(
        "INSERT INTO {name} ({}) VALUES ({marks}) ON CONFLICT ({key_list}) DO {action}",
        cols.join(", ")
    )
}

fn insert_history(
    tx: &Transaction<'_>,
    table: &TargetTable,
    offset: u64,
    change: &Change,
) -> Result<()> {
    let image = match change.kind {
        ChangeKind::Delete => change.before.as_ref(),
        ChangeKind::Truncate => None,
        _ => change.after.as_ref(),
    };
    let mut values = Vec::with_capacity(table.columns.len() + 4);
    let mut unchanged = Vec::new();
    for c in &table.columns {
        let v = image
            .and_then(|r| r.get(c.source_index))
            .unwrap_or(&Value::Null);
        if matches!(v, Value::Unchanged) {
            unchanged.push(c.name.clone());
        }
        values.push(sql_value(table, c, v)?);
    }
    use rusqlite::types::Value as Sql;
    values.push(Sql::Text(op_letter(change.kind).into()));
    values.push(Sql::Text(temporal::timestamptz_text(
        change.commit_time_micros,
    )));
    values.push(Sql::Integer(offset as i64));
    values.push(if unchanged.is_empty() {
        Sql::Null
    } else {
        Sql::Text(serde_json::Value::from(unchanged).to_string())
    });
    let cols = D.list(table.columns.iter().map(|c| c.name.as_str()).chain([
        HISTORY_OP,
        HISTORY_COMMIT_TIME,
        HISTORY_OFFSET,
        HISTORY_UNCHANGED,
    ]));
    let marks = vec!["?"; values.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({cols}) VALUES ({marks})",
        D.ident(&table.name)
    );
    tx.prepare_cached(&sql)
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(values.iter())))
        .map_err(SinkError::sqlite("appending a history row"))?;
    Ok(())
}
