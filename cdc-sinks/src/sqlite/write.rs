//! Writing rows with multi-row statements.
//!
//! SQLite spends much of a one-row statement's time starting and resetting
//! it, so rows go in as `INSERT ... VALUES (..), (..) ... ON CONFLICT DO
//! UPDATE` (and `DELETE ... WHERE key IN (..)`) of up to [`MAX_ROWS`] rows.
//! A run of rows is cut into full statements and a remainder in powers of two,
//! so one table needs only a handful of distinct statement texts, each built
//! once and kept prepared in the connection's statement cache. Values are
//! bound straight from the batch's rows.

use std::collections::HashMap;

use cdc_core::event::{Change, ChangeKind, TableSchema, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Statement, Transaction};

use super::mapping::{Storage, to_sql};
use crate::error::{Result, SinkError};
use crate::mapping::TargetTable;
use crate::mode::{
    HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED, SOFT_DELETED, WriteMode,
    op_letter,
};
use crate::plan::NetRow;
use crate::quote::Dialect;
use crate::temporal;

const D: Dialect = Dialect::Sqlite;

/// Most rows in one statement; past a few dozen rows the gain is flat.
const MAX_ROWS: usize = 128;
/// SQLite's limit on bound parameters in one statement (the bundled build's
/// `SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_PARAMS: usize = 32_766;

/// The statement shape, without the row count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shape {
    /// Upsert of the columns not marked unchanged; `deleted` is the
    /// soft-delete flag written (soft-delete mode only).
    Upsert { unchanged: Vec<bool>, deleted: bool },
    /// Delete by key.
    Delete,
    /// Append history rows.
    History,
}

/// A target table as this sink built it, with what writing it needs.
#[derive(Debug)]
pub(crate) struct SqliteTable {
    /// The source schema the table was built from.
    pub(crate) source: TableSchema,
    /// The target table.
    pub(crate) target: TargetTable,
    storage: Vec<Storage>,
    statements: HashMap<(Shape, usize), String>,
}

impl SqliteTable {
    pub(crate) fn new(source: TableSchema, target: TargetTable) -> Self {
        let storage = target.columns.iter().map(Storage::of).collect();
        Self {
            source,
            target,
            storage,
            statements: HashMap::new(),
        }
    }

    /// Binds column `c`'s value.
    fn bind(&self, stmt: &mut Statement<'_>, at: usize, c: usize, value: &Value) -> Result<()> {
        let t = &self.target;
        let out = to_sql(self.storage[c], t, &t.columns[c], value)?;
        bind(stmt, at, out)
    }

    /// Runs `rows` through statements of `shape`, binding each row with `bind_row`
    /// (which binds `per_row` parameters from the index it is given).
    fn run<R>(
        &mut self,
        tx: &Transaction<'_>,
        shape: Shape,
        per_row: usize,
        rows: &[R],
        bind_row: impl Fn(&Self, &mut Statement<'_>, usize, &R) -> Result<()>,
    ) -> Result<()> {
        let max = (MAX_PARAMS / per_row.max(1)).clamp(1, MAX_ROWS);
        let mut rest = rows;
        for n in statement_sizes(rows.len(), max) {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let key = (shape.clone(), n);
            if !self.statements.contains_key(&key) {
                let sql = statement_sql(&self.target, &shape, n);
                self.statements.insert(key.clone(), sql);
            }
            let mut stmt = tx
                .prepare_cached(&self.statements[&key])
                .map_err(SinkError::sqlite("preparing a row statement"))?;
            let mut at = 1;
            for row in chunk {
                bind_row(self, &mut stmt, at, row)?;
                at += per_row;
            }
            stmt.raw_execute()
                .map_err(SinkError::sqlite("applying row changes"))?;
        }
        Ok(())
    }
}

fn bind(stmt: &mut Statement<'_>, at: usize, value: ToSqlOutput<'_>) -> Result<()> {
    stmt.raw_bind_parameter(at, value)
        .map_err(SinkError::sqlite("binding a value"))
}

/// Statement sizes for `total` rows: full statements of `max` rows, then the
/// remainder in decreasing powers of two.
fn statement_sizes(total: usize, max: usize) -> impl Iterator<Item = usize> {
    let full = total / max;
    let rest = total % max;
    std::iter::repeat_n(max, full).chain(
        (0..usize::BITS)
            .rev()
            .map(|b| 1usize << b)
            .filter(move |p| rest & p != 0),
    )
}

/// Applies the net rows of one table.
pub(crate) fn write_net(
    tx: &Transaction<'_>,
    table: &mut SqliteTable,
    rows: &[NetRow<'_>],
) -> Result<()> {
    let t = &table.target;
    let soft = t.write_mode == WriteMode::SoftDelete;
    let width = t.columns.len();
    let mut deletes: Vec<&[Value]> = Vec::new();
    // Rows sending every column are the common case: their group needs no mask.
    let mut full: [Vec<&[Value]>; 2] = [Vec::new(), Vec::new()];
    let mut partial: HashMap<(Vec<bool>, bool), Vec<&[Value]>> = HashMap::new();
    let needed = t.columns.iter().map(|c| c.source_index + 1).max();
    for row in rows {
        let image = row.image();
        if image.len() < needed.unwrap_or(0) {
            return Err(SinkError::CorruptState {
                location: format!("batch of {}", t.source),
                reason: "a row is narrower than its schema".into(),
            });
        }
        let deleted = row.is_delete();
        if deleted && !soft {
            deletes.push(image);
            continue;
        }
        let unchanged =
            |c: &crate::mapping::TargetColumn| matches!(image[c.source_index], Value::Unchanged);
        if !t.columns.iter().any(unchanged) {
            full[usize::from(deleted)].push(image);
            continue;
        }
        if t.key_columns().any(unchanged) {
            return Err(SinkError::Unsupported {
                table: t.source.clone(),
                reason: "a change left a primary-key value out (unchanged); \
                         the row cannot be found without it"
                    .into(),
            });
        }
        let mask = t.columns.iter().map(unchanged).collect();
        partial.entry((mask, deleted)).or_default().push(image);
    }

    if !deletes.is_empty() {
        let keys = t.key.clone();
        table.run(
            tx,
            Shape::Delete,
            keys.len(),
            &deletes,
            |tab, stmt, at, image| {
                for (j, &c) in keys.iter().enumerate() {
                    tab.bind(stmt, at + j, c, &image[tab.target.columns[c].source_index])?;
                }
                Ok(())
            },
        )?;
    }
    let all_sent = vec![false; width];
    let groups = full
        .into_iter()
        .enumerate()
        .map(|(deleted, images)| ((all_sent.clone(), deleted == 1), images))
        .chain(partial);
    for ((unchanged, deleted), images) in groups {
        if images.is_empty() {
            continue;
        }
        let sent: Vec<usize> = (0..width).filter(|&c| !unchanged[c]).collect();
        let shape = Shape::Upsert { unchanged, deleted };
        table.run(tx, shape, sent.len(), &images, |tab, stmt, at, image| {
            for (j, &c) in sent.iter().enumerate() {
                tab.bind(stmt, at + j, c, &image[tab.target.columns[c].source_index])?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Appends one history row per change.
pub(crate) fn write_history(
    tx: &Transaction<'_>,
    table: &mut SqliteTable,
    changes: &[(u64, &Change)],
) -> Result<()> {
    let width = table.target.columns.len();
    table.run(
        tx,
        Shape::History,
        width + 4,
        changes,
        |tab, stmt, at, (offset, change)| {
            let image = match change.kind {
                ChangeKind::Delete => change.before.as_ref(),
                ChangeKind::Truncate => None,
                _ => change.after.as_ref(),
            };
            let mut unchanged = Vec::new();
            for (c, col) in tab.target.columns.iter().enumerate() {
                let v = image
                    .and_then(|r| r.get(col.source_index))
                    .unwrap_or(&Value::Null);
                if matches!(v, Value::Unchanged) {
                    unchanged.push(col.name.clone());
                }
                tab.bind(stmt, at + c, c, v)?;
            }
            let at = at + width;
            let op = op_letter(change.kind);
            bind(
                stmt,
                at,
                ToSqlOutput::Borrowed(ValueRef::Text(op.as_bytes())),
            )?;
            let time = temporal::timestamptz_text(change.commit_time_micros);
            bind(stmt, at + 1, ToSqlOutput::from(time))?;
            let offset = i64::try_from(*offset).map_err(|_| SinkError::CorruptState {
                location: "batch".into(),
                reason: "offset beyond i64::MAX".into(),
            })?;
            bind(stmt, at + 2, ToSqlOutput::from(offset))?;
            let unchanged = if unchanged.is_empty() {
                ToSqlOutput::from(rusqlite::types::Null)
            } else {
                ToSqlOutput::from(serde_json::Value::from(unchanged).to_string())
            };
            bind(stmt, at + 3, unchanged)
        },
    )
}

/// The statement text for `rows` rows of `shape`.
fn statement_sql(t: &TargetTable, shape: &Shape, rows: usize) -> String {
    let name = D.ident(&t.name);
    let tuples = |tuple: &str| vec![tuple; rows].join(", ");
    match shape {
        Shape::Delete => {
            let keys: Vec<String> = t.key_columns().map(|c| D.ident(&c.name)).collect();
            if let [key] = keys.as_slice() {
                format!("DELETE FROM {name} WHERE {key} IN ({})", tuples("?"))
            } else {
                let tuple = format!("({})", vec!["?"; keys.len()].join(", "));
                format!(
                    "DELETE FROM {name} WHERE ({}) IN (VALUES {})",
                    keys.join(", "),
                    tuples(&tuple)
                )
            }
        }
        Shape::History => {
            let cols = D.list(t.columns.iter().map(|c| c.name.as_str()).chain([
                HISTORY_OP,
                HISTORY_COMMIT_TIME,
                HISTORY_OFFSET,
                HISTORY_UNCHANGED,
            ]));
            let tuple = format!("({})", vec!["?"; t.columns.len() + 4].join(", "));
            format!("INSERT INTO {name} ({cols}) VALUES {}", tuples(&tuple))
        }
        Shape::Upsert { unchanged, deleted } => {
            let mut cols = Vec::new();
            let mut sets = Vec::new();
            for (i, c) in t.columns.iter().enumerate() {
                if unchanged[i] {
                    continue;
                }
                cols.push(D.ident(&c.name));
                if !t.is_key(i) {
                    sets.push(format!("{0} = excluded.{0}", D.ident(&c.name)));
                }
            }
            let mut marks = vec!["?"; cols.len()].join(", ");
            if t.write_mode == WriteMode::SoftDelete {
                let flag = i32::from(*deleted);
                cols.push(D.ident(SOFT_DELETED));
                marks.push_str(&format!(", {flag}"));
                sets.push(format!("{} = {flag}", D.ident(SOFT_DELETED)));
            }
            let action = if sets.is_empty() {
                "NOTHING".to_string()
            } else {
                format!("UPDATE SET {}", sets.join(", "))
            };
            let key_list = D.list(t.key_columns().map(|c| c.name.as_str()));
            format!(
                "INSERT INTO {name} ({}) VALUES {} ON CONFLICT ({key_list}) DO {action}",
                cols.join(", "),
                tuples(&format!("({marks})"))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_sizes_are_full_statements_then_powers_of_two() {
        let sizes = |total, max| statement_sizes(total, max).collect::<Vec<_>>();
        assert_eq!(sizes(300, 128), [128, 128, 32, 8, 4]);
        assert_eq!(sizes(5, 128), [4, 1]);
        assert_eq!(sizes(0, 128), Vec::<usize>::new());
        assert_eq!(sizes(7, 3), [3, 3, 1]);
        assert_eq!(sizes(300, 128).iter().sum::<usize>(), 300);
    }
}
