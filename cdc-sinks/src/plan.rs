//! Turns a [`SinkBatch`] into the steps a set-based sink applies.
//!
//! In upsert and soft-delete modes the changes of one table between two schema
//! or truncate events are collapsed per primary key, in log order, into their net
//! effect: the last state of each key wins, a delete followed by an insert is an
//! upsert of the new row, and an update's unchanged values are filled from an
//! earlier image of the same key in the batch when there is one. Keys then
//! appear once per step, so a sink may apply a step's deletes and upserts in any
//! order and as set-based statements. History mode keeps every change.

use std::collections::HashMap;
use std::sync::Arc;

use cdc_core::event::{Change, ChangeKind, TableName, TableSchema, Value};
use cdc_core::{SinkBatch, SinkEvent};

use crate::error::{Result, SinkError};
use crate::mode::WriteMode;

/// One thing to do, in order.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// The table's schema in effect from here on (also when first seen).
    Schema(&'a Arc<TableSchema>),
    /// Remove every row of the table (history mode: record the truncate).
    Truncate {
        schema: &'a Arc<TableSchema>,
        offset: u64,
        change: &'a Change,
    },
    /// Net row changes of one table; each key appears once.
    Net {
        schema: &'a Arc<TableSchema>,
        rows: Vec<NetRow>,
    },
    /// Every change of one table in log order (history mode).
    History {
        schema: &'a Arc<TableSchema>,
        changes: Vec<(u64, &'a Change)>,
    },
}

/// The net effect of a batch on one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NetRow {
    /// The row's last image; may hold `Unchanged` values to keep stored ones.
    Upsert(Vec<Value>),
    /// The key is deleted. The image holds the key values; other values are
    /// the last ones seen in this batch, or `Unchanged` when the batch did not
    /// show them (a key-only before image says nothing about them).
    Delete(Vec<Value>),
}

enum Pending<'a> {
    Net {
        schema: &'a Arc<TableSchema>,
        index: HashMap<Vec<u8>, usize>,
        rows: Vec<NetRow>,
    },
    History {
        schema: &'a Arc<TableSchema>,
        changes: Vec<(u64, &'a Change)>,
    },
}

impl<'a> Pending<'a> {
    fn into_step(self) -> Option<Step<'a>> {
        match self {
            Pending::Net { schema, rows, .. } if !rows.is_empty() => {
                Some(Step::Net { schema, rows })
            }
            Pending::History { schema, changes } if !changes.is_empty() => {
                Some(Step::History { schema, changes })
            }
            _ => None,
        }
    }
}

/// Plans a batch; `mode` gives each table's write mode, or `None` to skip it.
pub(crate) fn plan<'a>(
    batch: &'a SinkBatch,
    mode: impl Fn(&TableName) -> Option<WriteMode>,
) -> Result<Vec<Step<'a>>> {
    let mut steps = Vec::new();
    let mut current: HashMap<&'a TableName, &'a Arc<TableSchema>> = HashMap::new();
    let mut pending: HashMap<&'a TableName, Pending<'a>> = HashMap::new();
    let mut order: Vec<&'a TableName> = Vec::new();
    let flush = |pending: &mut HashMap<&'a TableName, Pending<'a>>,
                 steps: &mut Vec<Step<'a>>,
                 table: &TableName| {
        if let Some(step) = pending.remove(table).and_then(Pending::into_step) {
            steps.push(step);
        }
    };
    for event in &batch.events {
        let (schema, change) = match event {
            SinkEvent::Schema { schema, .. } => (schema, None),
            SinkEvent::Change {
                schema,
                change,
                offset,
            } => (schema, Some((*offset, change))),
        };
        let table = &schema.table;
        let Some(write_mode) = mode(table) else {
            continue;
        };
        let same = current
            .get(table)
            .is_some_and(|c| Arc::ptr_eq(c, schema) || c.as_ref() == schema.as_ref());
        if !same {
            flush(&mut pending, &mut steps, table);
            steps.push(Step::Schema(schema));
            current.insert(table, schema);
        }
        let Some((offset, change)) = change else {
            continue;
        };
        if change.kind == ChangeKind::Truncate {
            flush(&mut pending, &mut steps, table);
            steps.push(Step::Truncate {
                schema,
                offset,
                change,
            });
            continue;
        }
        if !pending.contains_key(table) {
            order.push(table);
        }
        let entry = pending.entry(table).or_insert_with(|| match write_mode {
            WriteMode::History => Pending::History {
                schema,
                changes: Vec::new(),
            },
            WriteMode::Upsert | WriteMode::SoftDelete => Pending::Net {
                schema,
                index: HashMap::new(),
                rows: Vec::new(),
            },
        });
        match entry {
            Pending::History { changes, .. } => changes.push((offset, change)),
            Pending::Net { index, rows, .. } => add_net(schema, change, index, rows)?,
        }
    }
    for table in order {
        flush(&mut pending, &mut steps, table);
    }
    Ok(steps)
}

fn add_net(
    schema: &TableSchema,
    change: &Change,
    index: &mut HashMap<Vec<u8>, usize>,
    rows: &mut Vec<NetRow>,
) -> Result<()> {
    if schema.primary_key.is_empty() {
        return Err(SinkError::Unsupported {
            table: schema.table.clone(),
            reason: "the table has no primary key; use history mode for it or add a key".into(),
        });
    }
    let missing = |what: &str| SinkError::Unsupported {
        table: schema.table.clone(),
        reason: format!("{:?} change without {what} row image", change.kind),
    };
    let width_ok = |row: &Vec<Value>| row.len() == schema.columns.len();
    match change.kind {
        ChangeKind::Delete => {
            let before = change.before.as_ref().ok_or_else(|| missing("a before"))?;
            if !width_ok(before) {
                return Err(missing("a full-width before"));
            }
            let key = key_of(schema, before);
            let image = delete_image(schema, before, index.get(&key).map(|&i| &rows[i]));
            set(index, rows, key, NetRow::Delete(image));
        }
        ChangeKind::Insert | ChangeKind::Update | ChangeKind::SnapshotRead => {
            let after = change.after.as_ref().ok_or_else(|| missing("an after"))?;
            if !width_ok(after) {
                return Err(missing("a full-width after"));
            }
            let key = key_of(schema, after);
            if let Some(before) = change.before.as_ref().filter(|b| width_ok(b)) {
                let has_key = schema
                    .primary_key
                    .iter()
                    .all(|&k| !matches!(before[k as usize], Value::Null | Value::Unchanged));
                let old_key = key_of(schema, before);
                if has_key && old_key != key {
                    let prev = index.get(&old_key).map(|&i| &rows[i]);
                    let image = delete_image(schema, before, prev);
                    set(index, rows, old_key, NetRow::Delete(image));
                }
            }
            let mut row = after.clone();
            if let Some(&i) = index.get(&key) {
                for (c, v) in row.iter_mut().enumerate() {
                    if matches!(v, Value::Unchanged) {
                        *v = match &rows[i] {
                            NetRow::Upsert(prev) => prev[c].clone(),
                            // The batch deleted the row first: nothing is stored
                            // to keep, so the re-created row has NULL there.
                            NetRow::Delete(_) => Value::Null,
                        };
                    }
                }
            }
            set(index, rows, key, NetRow::Upsert(row));
        }
        ChangeKind::Truncate => {}
    }
    Ok(())
}

/// The image of a deleted key: key values from `before`, other values from an
/// earlier upsert of the key in this batch, else `Unchanged`.
fn delete_image(schema: &TableSchema, before: &[Value], prev: Option<&NetRow>) -> Vec<Value> {
    (0..before.len())
        .map(|i| {
            if schema.primary_key.contains(&(i as u32)) {
                before[i].clone()
            } else if let Some(NetRow::Upsert(prev)) = prev {
                prev[i].clone()
            } else {
                Value::Unchanged
            }
        })
        .collect()
}

fn set(index: &mut HashMap<Vec<u8>, usize>, rows: &mut Vec<NetRow>, key: Vec<u8>, row: NetRow) {
    match index.get(&key) {
        Some(&i) => rows[i] = row,
        None => {
            index.insert(key, rows.len());
            rows.push(row);
        }
    }
}

fn key_of(schema: &TableSchema, row: &[Value]) -> Vec<u8> {
    let key: Vec<&Value> = schema
        .primary_key
        .iter()
        .filter_map(|&k| row.get(k as usize))
        .collect();
    // Serializing a Vec of plain values cannot fail.
    serde_json::to_vec(&key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::event::{Column, DataType, SourcePosition};

    fn schema() -> Arc<TableSchema> {
        let col = |n: &str| Column {
            name: n.into(),
            data_type: DataType::Int {
                bits: 64,
                signed: true,
            },
            source_type: "bigint".into(),
            nullable: true,
        };
        Arc::new(TableSchema {
            table: TableName::new("s", "t"),
            columns: vec![col("id"), col("a"), col("b")],
            primary_key: vec![0],
        })
    }

    fn change(kind: ChangeKind, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> Change {
        Change {
            table: TableName::new("s", "t"),
            kind,
            before,
            after,
            position: SourcePosition::None,
            txid: None,
            commit_time_micros: 0,
        }
    }

    fn batch(schema: &Arc<TableSchema>, changes: Vec<Change>) -> SinkBatch {
        SinkBatch {
            events: changes
                .into_iter()
                .enumerate()
                .map(|(i, change)| SinkEvent::Change {
                    offset: i as u64,
                    schema: schema.clone(),
                    change,
                })
                .collect(),
            last_offset: 100,
        }
    }

    fn row(id: i64, a: Value, b: Value) -> Vec<Value> {
        vec![Value::Int(id), a, b]
    }

    fn net(steps: &[Step<'_>]) -> Vec<NetRow> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Net { rows, .. } => Some(rows.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn several_changes_to_one_key_collapse_to_the_last_state() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                change(
                    ChangeKind::Insert,
                    None,
                    Some(row(1, Value::Int(1), Value::Int(1))),
                ),
                change(
                    ChangeKind::Update,
                    None,
                    Some(row(1, Value::Int(2), Value::Int(2))),
                ),
                change(
                    ChangeKind::Delete,
                    Some(row(1, Value::Null, Value::Null)),
                    None,
                ),
                change(
                    ChangeKind::Insert,
                    None,
                    Some(row(1, Value::Int(3), Value::Int(3))),
                ),
                change(
                    ChangeKind::Insert,
                    None,
                    Some(row(2, Value::Int(9), Value::Int(9))),
                ),
                change(
                    ChangeKind::Delete,
                    Some(row(2, Value::Null, Value::Null)),
                    None,
                ),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert!(matches!(steps[0], Step::Schema(_)));
        assert_eq!(
            net(&steps),
            vec![
                NetRow::Upsert(row(1, Value::Int(3), Value::Int(3))),
                NetRow::Delete(row(2, Value::Int(9), Value::Int(9))),
            ]
        );
    }

    #[test]
    fn unchanged_values_are_filled_from_an_earlier_image_in_the_batch() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                change(
                    ChangeKind::Insert,
                    None,
                    Some(row(1, Value::Int(1), Value::Int(1))),
                ),
                change(
                    ChangeKind::Update,
                    None,
                    Some(row(1, Value::Int(2), Value::Unchanged)),
                ),
                change(
                    ChangeKind::Update,
                    None,
                    Some(row(5, Value::Unchanged, Value::Int(5))),
                ),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert_eq!(
            net(&steps),
            vec![
                NetRow::Upsert(row(1, Value::Int(2), Value::Int(1))),
                NetRow::Upsert(row(5, Value::Unchanged, Value::Int(5))),
            ]
        );
    }

    #[test]
    fn unchanged_values_after_a_delete_in_the_batch_become_null() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                change(
                    ChangeKind::Delete,
                    Some(row(1, Value::Null, Value::Null)),
                    None,
                ),
                change(
                    ChangeKind::Update,
                    None,
                    Some(row(1, Value::Unchanged, Value::Int(5))),
                ),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert_eq!(
            net(&steps),
            vec![NetRow::Upsert(row(1, Value::Null, Value::Int(5)))]
        );
    }

    #[test]
    fn an_update_that_changes_the_key_deletes_the_old_key() {
        let s = schema();
        let b = batch(
            &s,
            vec![change(
                ChangeKind::Update,
                Some(row(1, Value::Null, Value::Null)),
                Some(row(2, Value::Int(1), Value::Int(1))),
            )],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert_eq!(
            net(&steps),
            vec![
                NetRow::Delete(row(1, Value::Unchanged, Value::Unchanged)),
                NetRow::Upsert(row(2, Value::Int(1), Value::Int(1))),
            ]
        );
    }

    #[test]
    fn a_truncate_splits_the_batch_and_drops_nothing_after_it() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                change(
                    ChangeKind::Insert,
                    None,
                    Some(row(1, Value::Int(1), Value::Int(1))),
                ),
                change(ChangeKind::Truncate, None, None),
                change(
                    ChangeKind::Insert,
                    None,
                    Some(row(2, Value::Int(2), Value::Int(2))),
                ),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        let kinds: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::Schema(_) => "schema",
                Step::Truncate { .. } => "truncate",
                Step::Net { .. } => "net",
                Step::History { .. } => "history",
            })
            .collect();
        assert_eq!(kinds, ["schema", "net", "truncate", "net"]);
    }

    #[test]
    fn history_mode_keeps_every_change_and_filtered_tables_are_skipped() {
        let s = schema();
        let rows = vec![
            change(
                ChangeKind::Insert,
                None,
                Some(row(1, Value::Int(1), Value::Int(1))),
            ),
            change(
                ChangeKind::Update,
                None,
                Some(row(1, Value::Int(2), Value::Int(2))),
            ),
        ];
        let b = batch(&s, rows);
        let steps = plan(&b, |_| Some(WriteMode::History)).unwrap();
        assert!(matches!(&steps[1], Step::History { changes, .. } if changes.len() == 2));
        assert!(plan(&b, |_| None).unwrap().is_empty());
    }
}
