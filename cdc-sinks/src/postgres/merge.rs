//! Writing rows: binary COPY, straight into the target for new keys and into
//! a staging table for everything else, which set-based statements then merge.
//!
//! * **New keys** (a key whose first change in the batch is an insert) are
//!   copied straight into the target under a savepoint: the cheapest write
//!   PostgreSQL has. If any of them already exists the savepoint is rolled
//!   back and they are merged like the rest; upsert semantics never depend on
//!   the guess (see [`DirectCopy`](super::table::DirectCopy)).
//! * **Other rows** go into the table's staging table, a temporary table
//!   created once per session with `ON COMMIT DELETE ROWS`, and are merged with
//!   `DELETE ... USING` and `INSERT ... SELECT ... ON CONFLICT DO UPDATE`.
//!   Rows whose update left values unchanged are grouped by which columns they
//!   carry; each group's upsert updates only its sent columns, so an unchanged
//!   value keeps the stored one. Group numbers are unique within the batch, so
//!   two steps of one table in a batch never see each other's staged rows.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};
use cdc_core::event::{Change, ChangeKind, Value};
use futures::SinkExt;
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

use super::mapping::{copy_header, put_field};
use super::table::PgTable;
use crate::error::{Result, SinkError};
use crate::mode::{
    HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED, SOFT_DELETED, WriteMode,
    op_letter,
};
use crate::plan::NetRow;
use crate::quote::Dialect;

const D: Dialect = Dialect::Postgres;
const GROUP: &str = "_cdc_grp";
const SAVEPOINT: &str = "\"_cdc_direct\"";

/// Sends one binary COPY; the data holds the header and rows, not the trailer.
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

/// Applies the net rows of one table; `groups` numbers staged groups across
/// the batch.
pub(super) async fn apply_net(
    tx: &Transaction<'_>,
    table: &mut PgTable,
    rows: &[NetRow<'_>],
    groups: &mut i32,
) -> Result<()> {
    let fresh = rows
        .iter()
        .filter(|r| matches!(r, NetRow::Insert(_)))
        .count();
    let copied = fresh > 0 && table.direct.try_now() && copy_new_keys(tx, table, rows).await?;
    let staged: Vec<&NetRow<'_>> = rows
        .iter()
        .filter(|r| !(copied && matches!(r, NetRow::Insert(_))))
        .collect();
    if staged.is_empty() {
        return Ok(());
    }
    merge(tx, table, &staged, groups).await
}

/// Copies the rows of new keys straight into the target; `false` (with
/// nothing written) when a key already exists there.
async fn copy_new_keys(
    tx: &Transaction<'_>,
    table: &mut PgTable,
    rows: &[NetRow<'_>],
) -> Result<bool> {
    let t = &table.target;
    let mut data = BytesMut::with_capacity(rows.len() * 64 + 32);
    copy_header(&mut data);
    for row in rows {
        let NetRow::Insert(image) = row else {
            continue;
        };
        data.put_i16(t.columns.len() as i16);
        for (i, c) in t.columns.iter().enumerate() {
            put_field(&mut data, t, c, &table.types[i], &image[c.source_index])?;
        }
    }
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.qualified,
        D.list(t.columns.iter().map(|c| c.name.as_str()))
    );
    tx.batch_execute(&format!("SAVEPOINT {SAVEPOINT}"))
        .await
        .map_err(SinkError::pg("setting a savepoint"))?;
    match copy_in(tx, &sql, data).await {
        Ok(()) => {
            tx.batch_execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}"))
                .await
                .map_err(SinkError::pg("releasing a savepoint"))?;
            table.direct.succeeded();
            Ok(true)
        }
        Err(SinkError::Postgres { source, .. })
            if source.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
        {
            tracing::debug!(table = %t.source, "new keys already in the target; merging them");
            tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"))
                .await
                .map_err(SinkError::pg("rolling back to a savepoint"))?;
            table.direct.conflicted();
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Stages `rows` and merges them into the target.
async fn merge(
    tx: &Transaction<'_>,
    table: &mut PgTable,
    rows: &[&NetRow<'_>],
    next_group: &mut i32,
) -> Result<()> {
    let t = &table.target;
    let stage = &table.stage;
    let cols: Vec<String> = t.columns.iter().map(|c| D.ident(&c.name)).collect();
    let grp = D.ident(GROUP);
    if !table.stage_created {
        let defs: Vec<String> = cols
            .iter()
            .zip(&table.types)
            .map(|(c, ty)| format!("{c} {}", ty.name()))
            .chain([format!("{grp} int4")])
            .collect();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {stage} ({}) ON COMMIT DELETE ROWS",
            defs.join(", ")
        ))
        .await
        .map_err(SinkError::pg("creating a staging table"))?;
    }

    let soft = t.write_mode == WriteMode::SoftDelete;
    let group_of = |n: &mut i32| {
        *n += 1;
        *n
    };
    let mut delete_group = None;
    // Upsert groups by (unchanged-column mask, deleted flag).
    let mut groups: HashMap<(Vec<bool>, bool), i32> = HashMap::new();
    let mut data = BytesMut::with_capacity(rows.len() * 64 + 32);
    copy_header(&mut data);
    for row in rows {
        data.put_i16(t.columns.len() as i16 + 1);
        let image = row.image();
        let hard_delete = row.is_delete() && !soft;
        let group = if hard_delete {
            *delete_group.get_or_insert_with(|| group_of(next_group))
        } else {
            let mask: Vec<bool> = t
                .columns
                .iter()
                .map(|c| matches!(image[c.source_index], Value::Unchanged))
                .collect();
            *groups
                .entry((mask, row.is_delete()))
                .or_insert_with(|| group_of(next_group))
        };
        for (i, c) in t.columns.iter().enumerate() {
            let v = if hard_delete && !t.is_key(i) {
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
            "COPY {stage} ({}, {grp}) FROM STDIN (FORMAT binary)",
            cols.join(", ")
        ),
        data,
    )
    .await?;
    table.stage_created = true;

    let target = &table.qualified;
    let key_cols: Vec<String> = t.key_columns().map(|c| D.ident(&c.name)).collect();
    let key_list = key_cols.join(", ");
    let deleted = D.ident(SOFT_DELETED);
    if let Some(group) = delete_group {
        let cond: Vec<String> = key_cols.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        let sql = format!(
            "DELETE FROM {target} AS t USING {stage} AS s WHERE s.{grp} = {group} AND {}",
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

/// Appends one history row per change, copied straight into the target.
pub(super) async fn copy_history(
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
