//! Applying a batch to MySQL/MariaDB: multi-row `INSERT ... ON DUPLICATE KEY
//! UPDATE` and batched deletes in one transaction with the offset row.
//!
//! MySQL commits DDL implicitly, so a batch's table changes run first, outside
//! the data transaction. They are idempotent (create if missing, add a column
//! only if absent, widen), and the schema the table was built from is recorded
//! in `_cdc_schemas` inside the data transaction: after a crash between the two,
//! the restarted sink redoes the same DDL. Dropped columns (policy `drop`) are
//! dropped after the commit, since earlier rows of the batch may still carry
//! them; a crash just before that leaves the column in place, nullable.

use std::collections::HashMap;

use cdc_core::SinkBatch;
use cdc_core::event::{Change, ChangeKind, TableName, TableSchema, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, TxOpts, Value as My};

use super::config::MySqlConfig;
use super::mapping::{column_type, param};
use crate::ddl::{BookkeepingTypes, column_definitions};
use crate::error::{Result, SinkError};
use crate::evolution::{Alter, TablePlan, table_plan};
use crate::mapping::TargetTable;
use crate::mode::{
    HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED, OFFSETS_TABLE,
    SCHEMAS_TABLE, SOFT_DELETED, WriteMode, op_letter,
};
use crate::plan::{NetRow, Step, plan};
use crate::quote::Dialect;
use crate::temporal::civil_from_micros;

const D: Dialect = Dialect::MySql;
const BOOKKEEPING: BookkeepingTypes = BookkeepingTypes {
    op: "VARCHAR(1) NOT NULL",
    commit_time: "DATETIME(6) NOT NULL",
    offset: "BIGINT UNSIGNED PRIMARY KEY",
    unchanged: "TEXT",
    soft_deleted: "BOOLEAN NOT NULL DEFAULT 0",
};
/// MySQL's limit on placeholders in one statement.
const MAX_PLACEHOLDERS: usize = 65_535;

/// Tables this sink built, by source table.
pub(super) type Tables = HashMap<TableName, TargetTable>;

fn ns(config: &MySqlConfig) -> &str {
    config.database.as_deref().unwrap_or("")
}

fn qualified(config: &MySqlConfig, name: &str) -> String {
    D.qualified(ns(config), name)
}

/// The offset stored by the last committed batch.
pub(super) async fn stored_offset(conn: &mut Conn, config: &MySqlConfig) -> Result<Option<u64>> {
    conn.exec_first(
        format!(
            "SELECT last_offset FROM {} WHERE sink_name = ?",
            qualified(config, OFFSETS_TABLE)
        ),
        (config.sink_name.as_str(),),
    )
    .await
    .map_err(SinkError::mysql("reading the stored offset"))
}

/// Applies the batch: table changes, then data and offset in one transaction.
pub(super) async fn apply(
    conn: &mut Conn,
    config: &MySqlConfig,
    tables: &mut Tables,
    batch: &SinkBatch,
) -> Result<()> {
    let steps = plan(batch, |t| config.mapping.mode_if_included(t))?;
    let mut built: Vec<Option<TargetTable>> = Vec::with_capacity(steps.len());
    let mut drops = Vec::new();
    for step in &steps {
        built.push(match step {
            Step::Schema(schema) => prepare_table(conn, tables, config, schema, &mut drops).await?,
            _ => None,
        });
    }
    let mut tx = conn
        .start_transaction(TxOpts::default())
        .await
        .map_err(SinkError::mysql("beginning a transaction"))?;
    let mut current: HashMap<&TableName, &TargetTable> = HashMap::new();
    for (step, target) in steps.iter().zip(&built) {
        match step {
            Step::Schema(schema) => {
                if let Some(target) = target {
                    current.insert(&schema.table, target);
                    record_schema(&mut tx, config, schema).await?;
                }
            }
            Step::Net { schema, rows } => {
                apply_net(&mut tx, config, table_of(&current, &schema.table)?, rows).await?
            }
            Step::History { schema, changes } => {
                insert_history(&mut tx, config, table_of(&current, &schema.table)?, changes).await?
            }
            Step::Truncate {
                schema,
                offset,
                change,
            } => {
                let table = table_of(&current, &schema.table)?;
                let name = qualified(config, &table.name);
                let sql = match table.write_mode {
                    WriteMode::Upsert => format!("DELETE FROM {name}"),
                    WriteMode::SoftDelete => {
                        format!("UPDATE {name} SET {} = 1", D.ident(SOFT_DELETED))
                    }
                    WriteMode::History => {
                        insert_history(&mut tx, config, table, &[(*offset, *change)]).await?;
                        continue;
                    }
                };
                tx.query_drop(sql)
                    .await
                    .map_err(SinkError::mysql("truncating a table"))?;
            }
        }
    }
    if !batch.copied {
        tx.exec_drop(
            format!(
                "INSERT INTO {} (sink_name, last_offset) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE last_offset = VALUES(last_offset)",
                qualified(config, OFFSETS_TABLE)
            ),
            (config.sink_name.as_str(), batch.last_offset),
        )
        .await
        .map_err(SinkError::mysql("storing the offset"))?;
    }
    tx.commit()
        .await
        .map_err(SinkError::mysql("committing a batch"))?;
    for (table, column) in drops {
        if column_exists(conn, config, &table, &column).await? {
            conn.query_drop(format!(
                "ALTER TABLE {} DROP COLUMN {}",
                qualified(config, &table),
                D.ident(&column)
            ))
            .await
            .map_err(SinkError::mysql("dropping a column"))?;
        }
    }
    Ok(())
}

fn table_of<'t>(
    current: &HashMap<&TableName, &'t TargetTable>,
    t: &TableName,
) -> Result<&'t TargetTable> {
    current
        .get(t)
        .copied()
        .ok_or_else(|| SinkError::CorruptState {
            location: "mysql sink".into(),
            reason: format!("changes of {t} arrived before its schema"),
        })
}

async fn record_schema(
    tx: &mut mysql_async::Transaction<'_>,
    config: &MySqlConfig,
    schema: &TableSchema,
) -> Result<()> {
    let json = serde_json::to_string(schema).map_err(|e| SinkError::CorruptState {
        location: SCHEMAS_TABLE.into(),
        reason: e.to_string(),
    })?;
    tx.exec_drop(
        format!(
            "INSERT INTO {} (sink_name, source_schema, source_table, schema_json)
             VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE schema_json = VALUES(schema_json)",
            qualified(config, SCHEMAS_TABLE)
        ),
        (
            config.sink_name.as_str(),
            schema.table.schema.as_str(),
            schema.table.name.as_str(),
            json,
        ),
    )
    .await
    .map_err(SinkError::mysql("recording a table schema"))
}

async fn column_exists(
    conn: &mut Conn,
    config: &MySqlConfig,
    table: &str,
    column: &str,
) -> Result<bool> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.columns
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND column_name = ?",
            (config.database.as_deref(), table, column),
        )
        .await
        .map_err(SinkError::mysql("inspecting a table"))?;
    Ok(n.unwrap_or(0) > 0)
}

/// Runs the DDL of a schema step; returns the target table it leaves.
async fn prepare_table(
    conn: &mut Conn,
    tables: &mut Tables,
    config: &MySqlConfig,
    schema: &TableSchema,
    drops: &mut Vec<(String, String)>,
) -> Result<Option<TargetTable>> {
    let Some(new) = config.mapping.resolve(schema)? else {
        return Ok(None);
    };
    let stored = match tables.get(&schema.table) {
        Some(t) => Some(t.clone()),
        None => load_stored(conn, config, &schema.table).await?,
    };
    let name = qualified(config, &new.name);
    let mut ddl = Vec::new();
    match table_plan(stored.as_ref(), &new, config.mapping.dropped_columns)? {
        TablePlan::Create {
            drop_first,
            truncate,
        } => {
            if drop_first {
                ddl.push(format!("DROP TABLE IF EXISTS {name}"));
            }
            ddl.push(create_table(config, &new));
            if truncate {
                ddl.push(format!("TRUNCATE TABLE {name}"));
            }
        }
        TablePlan::Alter(alters) => {
            for alter in alters {
                let index = |c: &crate::mapping::TargetColumn| {
                    new.columns
                        .iter()
                        .position(|x| x.name == c.name)
                        .unwrap_or(0)
                };
                match alter {
                    Alter::Add(c) => {
                        if !column_exists(conn, config, &new.name, &c.name).await? {
                            ddl.push(format!(
                                "ALTER TABLE {name} ADD COLUMN {} {}",
                                D.ident(&c.name),
                                column_type(&new, index(c))
                            ));
                        }
                    }
                    Alter::Drop(c) => drops.push((new.name.clone(), c.name.clone())),
                    Alter::Widen(c) => {
                        let i = index(c);
                        let not_null = if new.is_key(i) { " NOT NULL" } else { "" };
                        ddl.push(format!(
                            "ALTER TABLE {name} MODIFY COLUMN {} {}{not_null}",
                            D.ident(&c.name),
                            column_type(&new, i)
                        ));
                    }
                }
            }
        }
    }
    for sql in ddl {
        conn.query_drop(sql)
            .await
            .map_err(SinkError::mysql("changing a target table"))?;
    }
    tables.insert(schema.table.clone(), new.clone());
    Ok(Some(new))
}

async fn load_stored(
    conn: &mut Conn,
    config: &MySqlConfig,
    table: &TableName,
) -> Result<Option<TargetTable>> {
    let json: Option<String> = conn
        .exec_first(
            format!(
                "SELECT schema_json FROM {} WHERE sink_name = ? AND source_schema = ?
                 AND source_table = ?",
                qualified(config, SCHEMAS_TABLE)
            ),
            (
                config.sink_name.as_str(),
                table.schema.as_str(),
                table.name.as_str(),
            ),
        )
        .await
        .map_err(SinkError::mysql("reading a recorded schema"))?;
    let Some(json) = json else {
        return Ok(None);
    };
    let schema: TableSchema = serde_json::from_str(&json).map_err(|e| SinkError::CorruptState {
        location: format!("{SCHEMAS_TABLE} row of {table}"),
        reason: e.to_string(),
    })?;
    config.mapping.resolve(&schema)
}

fn create_table(config: &MySqlConfig, t: &TargetTable) -> String {
    let defs = column_definitions(D, t, &BOOKKEEPING, |i| column_type(t, i));
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        qualified(config, &t.name),
        defs.join(", ")
    )
}

fn rows_per_statement(config: &MySqlConfig, width: usize) -> usize {
    (MAX_PLACEHOLDERS / width.max(1)).clamp(1, config.rows_per_statement)
}

async fn apply_net(
    tx: &mut mysql_async::Transaction<'_>,
    config: &MySqlConfig,
    t: &TargetTable,
    rows: &[NetRow<'_>],
) -> Result<()> {
    let name = qualified(config, &t.name);
    let soft = t.write_mode == WriteMode::SoftDelete;
    let mut deletes = Vec::new();
    let mut groups: HashMap<(Vec<bool>, bool), Vec<&[Value]>> = HashMap::new();
    let mut order = Vec::new();
    for row in rows {
        match row {
            NetRow::Delete(image) if !soft => deletes.push(image),
            NetRow::Insert(image) | NetRow::Upsert(image) | NetRow::Delete(image) => {
                let mask: Vec<bool> = t
                    .columns
                    .iter()
                    .map(|c| matches!(image[c.source_index], Value::Unchanged))
                    .collect();
                let key = (mask, matches!(row, NetRow::Delete(_)));
                if !groups.contains_key(&key) {
                    order.push(key.clone());
                }
                groups.entry(key).or_default().push(image);
            }
        }
    }
    if !deletes.is_empty() {
        let keys: Vec<_> = t.key_columns().collect();
        let tuple = format!("({})", vec!["?"; keys.len()].join(", "));
        let lhs = format!("({})", D.list(keys.iter().map(|c| c.name.as_str())));
        for chunk in deletes.chunks(rows_per_statement(config, keys.len())) {
            let mut params = Vec::with_capacity(chunk.len() * keys.len());
            for image in chunk {
                for c in &keys {
                    params.push(param(t, c, &image[c.source_index])?);
                }
            }
            let sql = format!(
                "DELETE FROM {name} WHERE {lhs} IN ({})",
                vec![tuple.as_str(); chunk.len()].join(", ")
            );
            tx.exec_drop(sql, Params::Positional(params))
                .await
                .map_err(SinkError::mysql("applying deletes"))?;
        }
    }
    for key in order {
        let images = &groups[&key];
        let (mask, deleted) = key;
        let sent: Vec<usize> = (0..t.columns.len()).filter(|&i| !mask[i]).collect();
        let mut cols: Vec<String> = sent.iter().map(|&i| D.ident(&t.columns[i].name)).collect();
        let mut sets: Vec<String> = sent
            .iter()
            .filter(|&&i| !t.is_key(i))
            .map(|&i| format!("{0} = VALUES({0})", D.ident(&t.columns[i].name)))
            .collect();
        let mut marks = vec!["?"; sent.len()].join(", ");
        if soft {
            let flag = i32::from(deleted);
            cols.push(D.ident(SOFT_DELETED));
            marks.push_str(&format!(", {flag}"));
            sets.push(format!("{0} = VALUES({0})", D.ident(SOFT_DELETED)));
        }
        if sets.is_empty() {
            let k = D.ident(&t.columns[t.key[0]].name);
            sets.push(format!("{k} = {k}"));
        }
        let tuple = format!("({marks})");
        for chunk in images.chunks(rows_per_statement(config, sent.len())) {
            let mut params = Vec::with_capacity(chunk.len() * sent.len());
            for image in chunk {
                for &i in &sent {
                    let c = &t.columns[i];
                    params.push(param(t, c, &image[c.source_index])?);
                }
            }
            let sql = format!(
                "INSERT INTO {name} ({}) VALUES {} ON DUPLICATE KEY UPDATE {}",
                cols.join(", "),
                vec![tuple.as_str(); chunk.len()].join(", "),
                sets.join(", ")
            );
            tx.exec_drop(sql, Params::Positional(params))
                .await
                .map_err(SinkError::mysql("applying upserts"))?;
        }
    }
    Ok(())
}

async fn insert_history(
    tx: &mut mysql_async::Transaction<'_>,
    config: &MySqlConfig,
    t: &TargetTable,
    changes: &[(u64, &Change)],
) -> Result<()> {
    let width = t.columns.len() + 4;
    let cols = D.list(t.columns.iter().map(|c| c.name.as_str()).chain([
        HISTORY_OP,
        HISTORY_COMMIT_TIME,
        HISTORY_OFFSET,
        HISTORY_UNCHANGED,
    ]));
    let tuple = format!("({})", vec!["?"; width].join(", "));
    for chunk in changes.chunks(rows_per_statement(config, width)) {
        let mut params = Vec::with_capacity(chunk.len() * width);
        for (offset, change) in chunk {
            let image = match change.kind {
                ChangeKind::Delete => change.before.as_ref(),
                ChangeKind::Truncate => None,
                _ => change.after.as_ref(),
            };
            let mut unchanged = Vec::new();
            for c in &t.columns {
                let v = image
                    .and_then(|r| r.get(c.source_index))
                    .unwrap_or(&Value::Null);
                if matches!(v, Value::Unchanged) {
                    unchanged.push(c.name.clone());
                }
                params.push(param(t, c, v)?);
            }
            params.push(My::Bytes(op_letter(change.kind).into()));
            let c = civil_from_micros(change.commit_time_micros);
            params.push(My::Date(
                c.year.clamp(0, 9999) as u16,
                c.month as u8,
                c.day as u8,
                c.hour as u8,
                c.minute as u8,
                c.second as u8,
                c.micros,
            ));
            params.push(My::UInt(*offset));
            params.push(if unchanged.is_empty() {
                My::NULL
            } else {
                My::Bytes(serde_json::Value::from(unchanged).to_string().into_bytes())
            });
        }
        let sql = format!(
            "INSERT INTO {} ({cols}) VALUES {}",
            qualified(config, &t.name),
            vec![tuple.as_str(); chunk.len()].join(", ")
        );
        tx.exec_drop(sql, Params::Positional(params))
            .await
            .map_err(SinkError::mysql("appending history rows"))?;
    }
    Ok(())
}
