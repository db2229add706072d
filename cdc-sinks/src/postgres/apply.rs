//! Applying a batch in one PostgreSQL transaction: each table's net changes are
//! staged with binary COPY into a temporary table, then merged with set-based
//! `INSERT ... ON CONFLICT DO UPDATE` and `DELETE ... USING`; the offset row is
//! written in the same transaction.
//!
//! Rows whose update left some values unchanged are grouped by which columns
//! they carry; each group's upsert updates only its sent columns, so an
//! unchanged value keeps the stored one.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};
use cdc_core::SinkBatch;
use cdc_core::event::{Change, ChangeKind, TableName, TableSchema, Value};
use futures::SinkExt;
use tokio_postgres::{Client, Transaction};

use super::config::PostgresConfig;
use super::mapping::{PgType, column_type, copy_header, put_field};
use crate::error::{Result, SinkError};
use crate::evolution::{Alter, TablePlan, table_plan};
use crate::mapping::TargetTable;
use crate::mode::{
    HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED, OFFSETS_TABLE,
    SCHEMAS_TABLE, SOFT_DELETED, WriteMode, op_letter,
};
use crate::plan::{NetRow, Step, plan};
use crate::quote::Dialect;

const D: Dialect = Dialect::Postgres;
const GROUP: &str = "_cdc_grp";

/// A target table with its column types.
#[derive(Debug, Clone)]
pub(super) struct PgTable {
    target: TargetTable,
    ddl: Vec<String>,
    types: Vec<PgType>,
    qualified: String,
}

impl PgTable {
    fn new(config: &PostgresConfig, target: TargetTable) -> Result<Self> {
        let mut ddl = Vec::new();
        let mut types = Vec::new();
        for c in &target.columns {
            let (d, t) = column_type(&target, c)?;
            ddl.push(d);
            types.push(t);
        }
        let qualified = D.qualified(&config.schema, &target.name);
        Ok(Self {
            target,
            ddl,
            types,
            qualified,
        })
    }
}

/// Tables this sink built, by source table.
pub(super) type Tables = HashMap<TableName, PgTable>;

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

/// Applies the batch and its offset in one transaction.
pub(super) async fn apply(
    client: &mut Client,
    config: &PostgresConfig,
    tables: &mut Tables,
    batch: &SinkBatch,
) -> Result<()> {
    let steps = plan(batch, |t| config.mapping.mode_if_included(t))?;
    let tx = client
        .transaction()
        .await
        .map_err(SinkError::pg("beginning a transaction"))?;
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Schema(schema) => prepare_table(&tx, tables, config, schema).await?,
            Step::Net { schema, rows } => {
                apply_net(&tx, built(tables, &schema.table)?, rows, n).await?
            }
            Step::History { schema, changes } => {
                copy_history(&tx, built(tables, &schema.table)?, changes).await?
            }
            Step::Truncate {
                schema,
                offset,
                change,
            } => {
                let table = built(tables, &schema.table)?;
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
    let offset = i64::try_from(batch.last_offset).map_err(|_| SinkError::CorruptState {
        location: "batch".into(),
        reason: "offset beyond i64::MAX".into(),
    })?;
    tx.execute(
        &format!(
            "INSERT INTO {} (sink_name, last_offset) VALUES ($1, $2)
             ON CONFLICT (sink_name) DO UPDATE SET last_offset = EXCLUDED.last_offset",
            D.qualified(&config.schema, OFFSETS_TABLE)
        ),
        &[&config.sink_name, &offset],
    )
    .await
    .map_err(SinkError::pg("storing the offset"))?;
    tx.commit()
        .await
        .map_err(SinkError::pg("committing a batch"))
}

fn built<'t>(tables: &'t Tables, table: &TableName) -> Result<&'t PgTable> {
    tables.get(table).ok_or_else(|| SinkError::CorruptState {
        location: "postgresql sink".into(),
        reason: format!("changes of {table} arrived before its schema"),
    })
}

async fn prepare_table(
    tx: &Transaction<'_>,
    tables: &mut Tables,
    config: &PostgresConfig,
    schema: &TableSchema,
) -> Result<()> {
    let Some(target) = config.mapping.resolve(schema)? else {
        return Ok(());
    };
    let new = PgTable::new(config, target)?;
    let stored = match tables.get(&schema.table) {
        Some(t) => Some(t.clone()),
        None => load_stored(tx, config, &schema.table).await?,
    };
    let name = &new.qualified;
    let mut ddl = Vec::new();
    match table_plan(
        stored.as_ref().map(|s| &s.target),
        &new.target,
        config.mapping.dropped_columns,
    )? {
        TablePlan::Create {
            drop_first,
            truncate,
        } => {
            if drop_first {
                ddl.push(format!("DROP TABLE IF EXISTS {name}"));
            }
            ddl.push(create_table(&new));
            if truncate {
                ddl.push(format!("TRUNCATE {name}"));
            }
        }
        TablePlan::Alter(alters) => {
            for alter in alters {
                let col_ddl = |c: &crate::mapping::TargetColumn| {
                    let i = new.target.columns.iter().position(|x| x.name == c.name);
                    i.map(|i| new.ddl[i].clone()).unwrap_or_default()
                };
                match alter {
                    Alter::Add(c) => ddl.push(format!(
                        "ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {} {}",
                        D.ident(&c.name),
                        col_ddl(c)
                    )),
                    Alter::Drop(c) => ddl.push(format!(
                        "ALTER TABLE {name} DROP COLUMN IF EXISTS {}",
                        D.ident(&c.name)
                    )),
                    Alter::Widen(c) => ddl.push(format!(
                        "ALTER TABLE {name} ALTER COLUMN {} TYPE {}",
                        D.ident(&c.name),
                        col_ddl(c)
                    )),
                }
            }
        }
    }
    for sql in ddl {
        tx.batch_execute(&sql)
            .await
            .map_err(SinkError::pg("changing a target table"))?;
    }
    let json = serde_json::to_string(schema).map_err(|e| SinkError::CorruptState {
        location: SCHEMAS_TABLE.into(),
        reason: e.to_string(),
    })?;
    tx.execute(
        &format!(
            "INSERT INTO {} (sink_name, source_schema, source_table, schema_json)
             VALUES ($1, $2, $3, $4) ON CONFLICT (sink_name, source_schema, source_table)
             DO UPDATE SET schema_json = EXCLUDED.schema_json",
            D.qualified(&config.schema, SCHEMAS_TABLE)
        ),
        &[
            &config.sink_name,
            &schema.table.schema,
            &schema.table.name,
            &json,
        ],
    )
    .await
    .map_err(SinkError::pg("recording a table schema"))?;
    tables.insert(schema.table.clone(), new);
    Ok(())
}

async fn load_stored(
    tx: &Transaction<'_>,
    config: &PostgresConfig,
    table: &TableName,
) -> Result<Option<PgTable>> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT schema_json FROM {} WHERE sink_name = $1 AND source_schema = $2
                 AND source_table = $3",
                D.qualified(&config.schema, SCHEMAS_TABLE)
            ),
            &[&config.sink_name, &table.schema, &table.name],
        )
        .await
        .map_err(SinkError::pg("reading a recorded schema"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let json: String = row.get(0);
    let schema: TableSchema = serde_json::from_str(&json).map_err(|e| SinkError::CorruptState {
        location: format!("{SCHEMAS_TABLE} row of {table}"),
        reason: e.to_string(),
    })?;
    match config.mapping.resolve(&schema)? {
        Some(t) => Ok(Some(PgTable::new(config, t)?)),
        None => Ok(None),
    }
}

fn create_table(table: &PgTable) -> String {
    let t = &table.target;
    let mut defs: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let not_null = if t.is_key(i) && t.write_mode != WriteMode::History {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{not_null}", D.ident(&c.name), table.ddl[i])
        })
        .collect();
    match t.write_mode {
        WriteMode::History => {
            defs.push(format!("{} text NOT NULL", D.ident(HISTORY_OP)));
            defs.push(format!(
                "{} timestamptz NOT NULL",
                D.ident(HISTORY_COMMIT_TIME)
            ));
            defs.push(format!("{} bigint PRIMARY KEY", D.ident(HISTORY_OFFSET)));
            defs.push(format!("{} text", D.ident(HISTORY_UNCHANGED)));
        }
        mode => {
            if mode == WriteMode::SoftDelete {
                defs.push(format!(
                    "{} boolean NOT NULL DEFAULT false",
                    D.ident(SOFT_DELETED)
                ));
            }
            if !t.key.is_empty() {
                defs.push(format!(
                    "PRIMARY KEY ({})",
                    D.list(t.key_columns().map(|c| c.name.as_str()))
                ));
            }
        }
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        table.qualified,
        defs.join(", ")
    )
}

async fn copy_in(tx: &Transaction<'_>, sql: &str, mut data: BytesMut) -> Result<()> {
    data.put_i16(-1);
    let sink = tx
        .copy_in::<_, bytes::Bytes>(sql)
        .await
        .map_err(SinkError::pg("starting COPY"))?;
    futures::pin_mut!(sink);
    sink.send(data.freeze())
        .await
        .map_err(SinkError::pg("sending COPY data"))?;
    sink.finish()
        .await
        .map_err(SinkError::pg("finishing COPY"))?;
    Ok(())
}

async fn apply_net(tx: &Transaction<'_>, table: &PgTable, rows: &[NetRow], n: usize) -> Result<()> {
    let t = &table.target;
    let stage = D.ident(&format!("_cdc_stage_{n}"));
    let cols: Vec<String> = t.columns.iter().map(|c| D.ident(&c.name)).collect();
    let stage_defs: Vec<String> = cols
        .iter()
        .zip(&table.types)
        .map(|(c, ty)| format!("{c} {}", ty.name()))
        .chain([format!("{} int4", D.ident(GROUP))])
        .collect();
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP",
        stage_defs.join(", ")
    ))
    .await
    .map_err(SinkError::pg("creating a staging table"))?;

    let soft = t.write_mode == WriteMode::SoftDelete;
    // Upsert groups by (unchanged-column mask, deleted flag); -1 marks deletes.
    let mut groups: HashMap<(Vec<bool>, bool), i32> = HashMap::new();
    let mut has_deletes = false;
    let mut data = BytesMut::with_capacity(rows.len() * 64 + 32);
    copy_header(&mut data);
    for row in rows {
        data.put_i16(t.columns.len() as i16 + 1);
        let (image, group) = match row {
            NetRow::Delete(image) if !soft => {
                has_deletes = true;
                (image, -1)
            }
            NetRow::Upsert(image) | NetRow::Delete(image) => {
                let mask: Vec<bool> = t
                    .columns
                    .iter()
                    .map(|c| matches!(image[c.source_index], Value::Unchanged))
                    .collect();
                let next = groups.len() as i32;
                let deleted = matches!(row, NetRow::Delete(_));
                (image, *groups.entry((mask, deleted)).or_insert(next))
            }
        };
        for (i, c) in t.columns.iter().enumerate() {
            let v = if group < 0 && !t.is_key(i) {
                &Value::Null
            } else {
                &image[c.source_index]
            };
            put_field(&mut data, t, c, &table.types[i], v)?;
        }
        data.put_i32(4);
        data.put_i32(group);
    }
    copy_in(
        tx,
        &format!(
            "COPY {stage} ({}, {}) FROM STDIN (FORMAT binary)",
            cols.join(", "),
            D.ident(GROUP)
        ),
        data,
    )
    .await?;

    let target = &table.qualified;
    let key_cols: Vec<String> = t.key_columns().map(|c| D.ident(&c.name)).collect();
    let key_list = key_cols.join(", ");
    let deleted = D.ident(SOFT_DELETED);
    let grp = D.ident(GROUP);
    if has_deletes {
        let cond: Vec<String> = key_cols.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        let sql = format!(
            "DELETE FROM {target} AS t USING {stage} AS s WHERE s.{grp} = -1 AND {}",
            cond.join(" AND ")
        );
        tx.batch_execute(&sql)
            .await
            .map_err(SinkError::pg("applying deletes"))?;
    }
    for ((mask, is_delete), group) in groups {
        let mut sent = Vec::new();
        let mut sets = Vec::new();
        for (i, c) in cols.iter().enumerate() {
            if mask[i] {
                continue;
            }
            sent.push(c.clone());
            if !t.is_key(i) {
                sets.push(format!("{c} = EXCLUDED.{c}"));
            }
        }
        let mut insert_cols = sent.join(", ");
        let mut select_cols = insert_cols.clone();
        if soft {
            insert_cols.push_str(&format!(", {deleted}"));
            select_cols.push_str(&format!(", {is_delete}"));
            sets.push(format!("{deleted} = {is_delete}"));
        }
        let action = if sets.is_empty() {
            "NOTHING".to_string()
        } else {
            format!("UPDATE SET {}", sets.join(", "))
        };
        tx.batch_execute(&format!(
            "INSERT INTO {target} ({insert_cols}) SELECT {select_cols} FROM {stage}
             WHERE {grp} = {group} ON CONFLICT ({key_list}) DO {action}"
        ))
        .await
        .map_err(SinkError::pg("applying upserts"))?;
    }
    Ok(())
}

async fn copy_history(
    tx: &Transaction<'_>,
    table: &PgTable,
    changes: &[(u64, &Change)],
) -> Result<()> {
    let t = &table.target;
    let mut data = BytesMut::with_capacity(changes.len() * 64 + 32);
    copy_header(&mut data);
    for (offset, change) in changes {
        let image = match change.kind {
            ChangeKind::Delete => change.before.as_ref(),
            ChangeKind::Truncate => None,
            _ => change.after.as_ref(),
        };
        data.put_i16(t.columns.len() as i16 + 4);
        let mut unchanged = Vec::new();
        for (i, c) in t.columns.iter().enumerate() {
            let v = image
                .and_then(|r| r.get(c.source_index))
                .unwrap_or(&Value::Null);
            if matches!(v, Value::Unchanged) {
                unchanged.push(c.name.clone());
            }
            put_field(&mut data, t, c, &table.types[i], v)?;
        }
        let op = op_letter(change.kind).as_bytes();
        data.put_i32(op.len() as i32);
        data.put_slice(op);
        data.put_i32(8);
        data.put_i64(
            change
                .commit_time_micros
                .saturating_sub(946_684_800_000_000),
        );
        data.put_i32(8);
        data.put_i64(*offset as i64);
        if unchanged.is_empty() {
            data.put_i32(-1);
        } else {
            let text = serde_json::Value::from(unchanged).to_string();
            data.put_i32(text.len() as i32);
            data.put_slice(text.as_bytes());
        }
    }
    let cols = D.list(t.columns.iter().map(|c| c.name.as_str()).chain([
        HISTORY_OP,
        HISTORY_COMMIT_TIME,
        HISTORY_OFFSET,
        HISTORY_UNCHANGED,
    ]));
    copy_in(
        tx,
        &format!(
            "COPY {} ({cols}) FROM STDIN (FORMAT binary)",
            table.qualified
        ),
        data,
    )
    .await
}
