//! Turns a [`SinkBatch`] into the steps a set-based sink applies.
//!
//! In upsert and soft-delete modes the changes of one table between two schema
//! or truncate events are collapsed per primary key, in log order, into their net
//! effect: the last state of each key wins, a delete followed by an insert is an
//! upsert of the new row, and an update's unchanged values are filled from an
//! earlier image of the same key in the batch when there is one. Keys then
//! appear once per step, so a sink may apply a step's deletes and upserts in any
//! order and as set-based statements. History mode keeps every change.
//!
//! Planning is on every row's path, so it borrows row images from the batch
//! (copying only when it fills unchanged values or builds a delete image) and
//! finds keys through a hash table over the key values themselves.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use cdc_core::event::{Change, ChangeKind, TableName, TableSchema, Value};
use cdc_core::{SinkBatch, SinkEvent};
use hashbrown::HashTable;

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
        rows: Vec<NetRow<'a>>,
    },
    /// Every change of one table in log order (history mode).
    History {
        schema: &'a Arc<TableSchema>,
        changes: Vec<(u64, &'a Change)>,
    },
}

/// The net effect of a batch on one key. Images are full width, in source
/// column order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NetRow<'a> {
    /// The key's first change in the batch was an insert (or snapshot read), so
    /// the source says the key did not exist before; the image is the last one.
    /// The sink still has to upsert if the target holds the key anyway (a
    /// re-run backfill, a table kept from before), so this is only a hint that
    /// a plain insert will almost always succeed.
    Insert(Cow<'a, [Value]>),
    /// The row's last image; may hold `Unchanged` values to keep stored ones.
    Upsert(Cow<'a, [Value]>),
    /// The key is deleted. The image holds the key values; other values are
    /// the last ones seen in this batch, or `Unchanged` when the batch did not
    /// show them (a key-only before image says nothing about them).
    Delete(Cow<'a, [Value]>),
}

impl NetRow<'_> {
    /// The row image.
    pub(crate) fn image(&self) -> &[Value] {
        match self {
            NetRow::Insert(image) | NetRow::Upsert(image) | NetRow::Delete(image) => image,
        }
    }

    /// Whether the key is deleted.
    pub(crate) fn is_delete(&self) -> bool {
        matches!(self, NetRow::Delete(_))
    }
}

/// The net rows of one table being collected, with a hash index by key.
struct NetRows<'a> {
    index: HashTable<usize>,
    rows: Vec<NetRow<'a>>,
}

enum Pending<'a> {
    Net {
        schema: &'a Arc<TableSchema>,
        net: NetRows<'a>,
    },
    History {
        schema: &'a Arc<TableSchema>,
        changes: Vec<(u64, &'a Change)>,
    },
}

impl<'a> Pending<'a> {
    fn into_step(self) -> Option<Step<'a>> {
        match self {
            Pending::Net { schema, net } if !net.rows.is_empty() => Some(Step::Net {
                schema,
                rows: net.rows,
            }),
            Pending::History { schema, changes } if !changes.is_empty() => {
                Some(Step::History { schema, changes })
            }
            _ => None,
        }
    }
}

/// What the planner knows about one table: the schema in effect, its write
/// mode (`None` when filtered out) and the slot of its pending step.
struct TableState<'a> {
    schema: &'a Arc<TableSchema>,
    mode: Option<WriteMode>,
    slot: Option<usize>,
}

/// Plans a batch; `mode` gives each table's write mode, or `None` to skip it.
/// `mode` is asked once per table and schema, not per change.
pub(crate) fn plan<'a>(
    batch: &'a SinkBatch,
    mode: impl Fn(&TableName) -> Option<WriteMode>,
) -> Result<Vec<Step<'a>>> {
    let hasher = hashbrown::DefaultHashBuilder::default();
    let mut steps = Vec::new();
    // Table states, found by name through `tables`.
    let mut states: Vec<TableState<'a>> = Vec::new();
    let mut tables: HashMap<&'a TableName, usize> = HashMap::new();
    // Pending steps in the order they were opened; a flushed slot is `None`.
    let mut slots: Vec<Option<Pending<'a>>> = Vec::new();
    let flush = |slots: &mut Vec<Option<Pending<'a>>>,
                 steps: &mut Vec<Step<'a>>,
                 state: &mut TableState<'a>| {
        if let Some(step) = state
            .slot
            .take()
            .and_then(|s| slots[s].take())
            .and_then(Pending::into_step)
        {
            steps.push(step);
        }
    };
    // Net rows are reserved up front so a one-table batch never regrows its
    // key index (regrowing rehashes every key); all tables together reserve
    // at most one row per event, so many tables cannot multiply it.
    let mut unreserved = batch.events.len();
    // Consecutive events of one table are the common case: skip the lookup.
    let mut last: Option<(&'a Arc<TableSchema>, usize)> = None;
    for (at, event) in batch.events.iter().enumerate() {
        let (schema, change) = match event {
            SinkEvent::Schema { schema, .. } => (schema, None),
            SinkEvent::Change {
                schema,
                change,
                offset,
            } => (schema, Some((*offset, change))),
        };
        let table = &schema.table;
        let index = match last {
            Some((s, i)) if Arc::ptr_eq(s, schema) => i,
            _ => match tables.get(table) {
                Some(&i) => {
                    let state = &mut states[i];
                    let same = Arc::ptr_eq(state.schema, schema) || state.schema == schema;
                    if !same {
                        flush(&mut slots, &mut steps, state);
                        state.schema = schema;
                        state.mode = mode(table);
                        if state.mode.is_some() {
                            steps.push(Step::Schema(schema));
                        }
                    }
                    i
                }
                None => {
                    let m = mode(table);
                    if m.is_some() {
                        steps.push(Step::Schema(schema));
                    }
                    states.push(TableState {
                        schema,
                        mode: m,
                        slot: None,
                    });
                    tables.insert(table, states.len() - 1);
                    states.len() - 1
                }
            },
        };
        last = Some((schema, index));
        let state = &mut states[index];
        let Some(write_mode) = state.mode else {
            continue;
        };
        if batch.copied && write_mode == WriteMode::History {
            return Err(SinkError::Unsupported {
                table: table.clone(),
                reason: "a history table keys its rows by log offset, and rows a backfill \
                         copies have none; backfill into an upsert or soft-delete table"
                    .into(),
            });
        }
        let Some((offset, change)) = change else {
            continue;
        };
        if change.kind == ChangeKind::Truncate {
            flush(&mut slots, &mut steps, state);
            steps.push(Step::Truncate {
                schema,
                offset,
                change,
            });
            continue;
        }
        let slot = *state.slot.get_or_insert_with(|| {
            slots.push(Some(match write_mode {
                WriteMode::History => Pending::History {
                    schema,
                    changes: Vec::new(),
                },
                WriteMode::Upsert | WriteMode::SoftDelete => {
                    let rows = (batch.events.len() - at).min(unreserved);
                    unreserved -= rows;
                    Pending::Net {
                        schema,
                        net: NetRows {
                            index: HashTable::with_capacity(rows),
                            rows: Vec::with_capacity(rows),
                        },
                    }
                }
            }));
            slots.len() - 1
        });
        match slots[slot].as_mut() {
            Some(Pending::History { changes, .. }) => changes.push((offset, change)),
            Some(Pending::Net { net, .. }) => add_net(schema, change, net, &hasher)?,
            None => {}
        }
    }
    for pending in slots.into_iter().flatten() {
        if let Some(step) = pending.into_step() {
            steps.push(step);
        }
    }
    Ok(steps)
}

fn add_net<'a>(
    schema: &TableSchema,
    change: &'a Change,
    net: &mut NetRows<'a>,
    hasher: &impl BuildHasher,
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
    let width_ok = |row: &[Value]| row.len() == schema.columns.len();
    let key = &schema.primary_key;
    if key.iter().any(|&k| k as usize >= schema.columns.len()) {
        return Err(SinkError::CorruptState {
            location: format!("schema of {}", schema.table),
            reason: "a primary-key index is past the last column".into(),
        });
    }
    match change.kind {
        ChangeKind::Delete => {
            let before = change
                .before
                .as_deref()
                .ok_or_else(|| missing("a before"))?;
            if !width_ok(before) {
                return Err(missing("a full-width before"));
            }
            let found = net.find(key, before, hasher);
            let image = delete_image(key, before, found.at.map(|i| &net.rows[i]));
            net.set(key, found, NetRow::Delete(Cow::Owned(image)), hasher);
        }
        ChangeKind::Insert | ChangeKind::Update | ChangeKind::SnapshotRead => {
            let after = change.after.as_deref().ok_or_else(|| missing("an after"))?;
            if !width_ok(after) {
                return Err(missing("a full-width after"));
            }
            if let Some(before) = change.before.as_deref().filter(|b| width_ok(b)) {
                let has_key = key
                    .iter()
                    .all(|&k| !matches!(before[k as usize], Value::Null | Value::Unchanged));
                if has_key && !same_key(key, before, after) {
                    let found = net.find(key, before, hasher);
                    let image = delete_image(key, before, found.at.map(|i| &net.rows[i]));
                    net.set(key, found, NetRow::Delete(Cow::Owned(image)), hasher);
                }
            }
            let found = net.find(key, after, hasher);
            let prev = found.at;
            let mut image = Cow::Borrowed(after);
            if let Some(i) = prev
                && after.iter().any(|v| matches!(v, Value::Unchanged))
            {
                let prev_row = &net.rows[i];
                let owned = image.to_mut();
                for (c, v) in owned.iter_mut().enumerate() {
                    if matches!(v, Value::Unchanged) {
                        *v = match prev_row {
                            NetRow::Insert(prev) | NetRow::Upsert(prev) => prev[c].clone(),
                            // The batch deleted the row first: nothing is stored
                            // to keep, so the re-created row has NULL there.
                            NetRow::Delete(_) => Value::Null,
                        };
                    }
                }
            }
            let fresh = match prev.map(|i| &net.rows[i]) {
                None => matches!(change.kind, ChangeKind::Insert | ChangeKind::SnapshotRead),
                Some(NetRow::Insert(_)) => true,
                Some(_) => false,
            };
            let fresh = fresh && !image.iter().any(|v| matches!(v, Value::Unchanged));
            let row = if fresh {
                NetRow::Insert(image)
            } else {
                NetRow::Upsert(image)
            };
            net.set(key, found, row, hasher);
        }
        ChangeKind::Truncate => {}
    }
    Ok(())
}

impl<'a> NetRows<'a> {
    /// Where the key of `image` is: its hash, and the index of the batch's
    /// row with that key if there is one.
    fn find(&self, key: &[u32], image: &[Value], hasher: &impl BuildHasher) -> Found {
        let hash = key_hash(key, image, hasher);
        let at = self
            .index
            .find(hash, |&i| same_key(key, self.rows[i].image(), image))
            .copied();
        Found { hash, at }
    }

    /// Replaces the row [`find`](Self::find) found, or adds one with its key.
    fn set(&mut self, key: &[u32], found: Found, row: NetRow<'a>, hasher: &impl BuildHasher) {
        match found.at {
            Some(i) => self.rows[i] = row,
            None => {
                let i = self.rows.len();
                self.rows.push(row);
                let rows = &self.rows;
                self.index
                    .insert_unique(found.hash, i, |&j| key_hash(key, rows[j].image(), hasher));
            }
        }
    }
}

/// A key looked up in [`NetRows`]; the hash is kept so adding the key does not
/// hash it again.
#[derive(Clone, Copy)]
struct Found {
    hash: u64,
    at: Option<usize>,
}

/// The image of a deleted key: key values from `before`, other values from an
/// earlier upsert of the key in this batch, else `Unchanged`.
fn delete_image(key: &[u32], before: &[Value], prev: Option<&NetRow<'_>>) -> Vec<Value> {
    (0..before.len())
        .map(|i| {
            if key.contains(&(i as u32)) {
                before[i].clone()
            } else if let Some(NetRow::Insert(prev) | NetRow::Upsert(prev)) = prev {
                prev[i].clone()
            } else {
                Value::Unchanged
            }
        })
        .collect()
}

fn key_hash(key: &[u32], row: &[Value], hasher: &impl BuildHasher) -> u64 {
    let mut h = hasher.build_hasher();
    for &k in key {
        hash_value(&row[k as usize], &mut h);
    }
    h.finish()
}

/// Whether two full-width images have the same key values.
fn same_key(key: &[u32], a: &[Value], b: &[Value]) -> bool {
    key.iter()
        .all(|&k| same_value(&a[k as usize], &b[k as usize]))
}

/// Key equality: like `==`, but floats compare by bits so a key never differs
/// from itself (NaN) and `hash_value` agrees with it.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        _ => a == b,
    }
}

fn hash_value(v: &Value, h: &mut impl Hasher) {
    std::mem::discriminant(v).hash(h);
    match v {
        Value::Null | Value::Unchanged => {}
        Value::Bool(b) => b.hash(h),
        Value::Int(i) => i.hash(h),
        Value::UInt(u) => u.hash(h),
        Value::Float(f) => f.to_bits().hash(h),
        Value::Double(f) => f.to_bits().hash(h),
        Value::Decimal(d) => d.as_str().hash(h),
        Value::Text(s) | Value::Json(s) | Value::Enum(s) => s.hash(h),
        Value::Bytes(b) => b.hash(h),
        Value::Date(d) => d.hash(h),
        Value::Time(t) | Value::Timestamp(t) | Value::TimestampTz(t) => t.hash(h),
        Value::TimeTz {
            micros,
            offset_secs,
        } => (micros, offset_secs).hash(h),
        Value::Interval {
            months,
            days,
            micros,
        } => (months, days, micros).hash(h),
        Value::Uuid(u) => u.hash(h),
        Value::Set(labels) => labels.hash(h),
        Value::Array(items) => {
            items.len().hash(h);
            for item in items {
                hash_value(item, h);
            }
        }
    }
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

    fn insert(after: Vec<Value>) -> Change {
        change(ChangeKind::Insert, None, Some(after))
    }

    fn update(after: Vec<Value>) -> Change {
        change(ChangeKind::Update, None, Some(after))
    }

    fn delete(before: Vec<Value>) -> Change {
        change(ChangeKind::Delete, Some(before), None)
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
            copied: false,
        }
    }

    fn row(id: i64, a: Value, b: Value) -> Vec<Value> {
        vec![Value::Int(id), a, b]
    }

    fn up(r: Vec<Value>) -> NetRow<'static> {
        NetRow::Upsert(Cow::Owned(r))
    }

    fn ins(r: Vec<Value>) -> NetRow<'static> {
        NetRow::Insert(Cow::Owned(r))
    }

    fn del(r: Vec<Value>) -> NetRow<'static> {
        NetRow::Delete(Cow::Owned(r))
    }

    fn net<'a>(steps: &[Step<'a>]) -> Vec<NetRow<'a>> {
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
                insert(row(1, Value::Int(1), Value::Int(1))),
                update(row(1, Value::Int(2), Value::Int(2))),
                delete(row(1, Value::Null, Value::Null)),
                insert(row(1, Value::Int(3), Value::Int(3))),
                insert(row(2, Value::Int(9), Value::Int(9))),
                delete(row(2, Value::Null, Value::Null)),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert!(matches!(steps[0], Step::Schema(_)));
        assert_eq!(
            net(&steps),
            vec![
                up(row(1, Value::Int(3), Value::Int(3))),
                del(row(2, Value::Int(9), Value::Int(9))),
            ]
        );
    }

    #[test]
    fn unchanged_values_are_filled_from_an_earlier_image_in_the_batch() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                insert(row(1, Value::Int(1), Value::Int(1))),
                update(row(1, Value::Int(2), Value::Unchanged)),
                update(row(5, Value::Unchanged, Value::Int(5))),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert_eq!(
            net(&steps),
            vec![
                ins(row(1, Value::Int(2), Value::Int(1))),
                up(row(5, Value::Unchanged, Value::Int(5))),
            ]
        );
    }

    #[test]
    fn unchanged_values_after_a_delete_in_the_batch_become_null() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                delete(row(1, Value::Null, Value::Null)),
                update(row(1, Value::Unchanged, Value::Int(5))),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert_eq!(net(&steps), vec![up(row(1, Value::Null, Value::Int(5)))]);
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
                del(row(1, Value::Unchanged, Value::Unchanged)),
                up(row(2, Value::Int(1), Value::Int(1))),
            ]
        );
    }

    #[test]
    fn a_truncate_splits_the_batch_and_drops_nothing_after_it() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                insert(row(1, Value::Int(1), Value::Int(1))),
                change(ChangeKind::Truncate, None, None),
                insert(row(2, Value::Int(2), Value::Int(2))),
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
            insert(row(1, Value::Int(1), Value::Int(1))),
            update(row(1, Value::Int(2), Value::Int(2))),
        ];
        let b = batch(&s, rows);
        let steps = plan(&b, |_| Some(WriteMode::History)).unwrap();
        assert!(matches!(&steps[1], Step::History { changes, .. } if changes.len() == 2));
        assert!(plan(&b, |_| None).unwrap().is_empty());
    }

    #[test]
    fn keys_first_inserted_in_the_batch_are_inserts_and_others_upserts() {
        let s = schema();
        let b = batch(
            &s,
            vec![
                insert(row(1, Value::Int(1), Value::Int(1))),
                update(row(1, Value::Int(2), Value::Int(2))),
                delete(row(2, Value::Null, Value::Null)),
                insert(row(2, Value::Int(3), Value::Int(3))),
                change(
                    ChangeKind::SnapshotRead,
                    None,
                    Some(row(3, Value::Int(4), Value::Int(4))),
                ),
                insert(row(4, Value::Unchanged, Value::Int(5))),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        assert_eq!(
            net(&steps),
            vec![
                ins(row(1, Value::Int(2), Value::Int(2))),
                up(row(2, Value::Int(3), Value::Int(3))),
                ins(row(3, Value::Int(4), Value::Int(4))),
                up(row(4, Value::Unchanged, Value::Int(5))),
            ]
        );
    }

    #[test]
    fn composite_text_and_float_keys_collapse_by_value() {
        let col = |n: &str| Column {
            name: n.into(),
            data_type: DataType::Other,
            source_type: "x".into(),
            nullable: true,
        };
        let s = Arc::new(TableSchema {
            table: TableName::new("s", "t"),
            columns: vec![col("a"), col("b"), col("v")],
            primary_key: vec![1, 0],
        });
        let r = |a: Value, b: Value, v: i64| vec![a, b, Value::Int(v)];
        let nan = || Value::Double(f64::NAN);
        let b = batch(
            &s,
            vec![
                insert(r(Value::Text("x".into()), nan(), 1)),
                insert(r(Value::Text("y".into()), nan(), 2)),
                update(r(Value::Text("x".into()), nan(), 3)),
                update(r(Value::Int(1), Value::Double(0.5), 4)),
                update(r(Value::UInt(1), Value::Double(0.5), 5)),
            ],
        );
        let steps = plan(&b, |_| Some(WriteMode::Upsert)).unwrap();
        let values: Vec<Value> = net(&steps).iter().map(|r| r.image()[2].clone()).collect();
        assert_eq!(
            values,
            [Value::Int(3), Value::Int(2), Value::Int(4), Value::Int(5)]
        );
    }

    #[test]
    fn a_key_index_past_the_row_is_an_error_not_a_panic() {
        let mut s = (*schema()).clone();
        s.primary_key = vec![7];
        let s = Arc::new(s);
        let b = batch(&s, vec![insert(row(1, Value::Int(1), Value::Int(1)))]);
        assert!(plan(&b, |_| Some(WriteMode::Upsert)).is_err());
    }
}
