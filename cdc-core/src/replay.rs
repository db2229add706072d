//! Tables rebuilt from a change stream, for randomized tests of sources: each
//! change must follow from what came before, so a lost, repeated or
//! reordered change is caught at the change that shows it.

use std::collections::HashMap;

use crate::event::{Change, ChangeKind, Row, Value};

/// Rows by table and primary key, built by applying changes in order.
///
/// An insert must add a new key; an update's and a delete's before image must
/// equal the row the model holds (sources with full before images only).
///
/// ```
/// use cdc_core::event::{Change, ChangeKind, SourcePosition, TableName, Value};
/// use cdc_core::replay::ReplayModel;
///
/// let mut model = ReplayModel::new(&[("t", 1)]);
/// let insert = Change {
///     table: TableName::new("s", "t"),
///     kind: ChangeKind::Insert,
///     before: None,
///     after: Some(vec![Value::Int(1), Value::Text("a".into())]),
///     position: SourcePosition::None,
///     txid: None,
///     commit_time_micros: 0,
/// };
/// model.apply(insert.clone()).unwrap();
/// assert!(model.apply(insert).is_err(), "the same insert twice");
/// ```
#[derive(Debug, Default)]
pub struct ReplayModel {
    /// Leading primary-key columns per table name.
    key_columns: HashMap<String, usize>,
    rows: HashMap<(String, String), Row>,
}

impl ReplayModel {
    /// A model of tables named by `(table name, number of leading key columns)`.
    pub fn new(tables: &[(&str, usize)]) -> Self {
        Self {
            key_columns: tables.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect(),
            rows: HashMap::new(),
        }
    }

    /// Applies one change; an error says what does not follow.
    pub fn apply(&mut self, change: Change) -> Result<(), String> {
        let table = change.table.name.to_string();
        let keys = *self
            .key_columns
            .get(&table)
            .ok_or_else(|| format!("a change to {table}, which the model does not hold"))?;
        let key = |row: &Row| format!("{:?}", &row[..keys.min(row.len())]);
        match (change.kind, change.before, change.after) {
            (ChangeKind::Insert, _, Some(after)) => {
                let old = self.rows.insert((table.clone(), key(&after)), after);
                match old {
                    None => Ok(()),
                    Some(_) => Err(format!("insert into {table} of a row already there")),
                }
            }
            (ChangeKind::Update, Some(before), Some(after)) => {
                // The key may change: the old row goes, the new one comes.
                let old = self.rows.remove(&(table.clone(), key(&before)));
                self.rows.insert((table.clone(), key(&after)), after);
                match old {
                    Some(old) if old == before => Ok(()),
                    _ => Err(format!("update of {table} out of step")),
                }
            }
            (ChangeKind::Delete, Some(before), _) => {
                match self.rows.remove(&(table.clone(), key(&before))) {
                    Some(old) if old == before => Ok(()),
                    _ => Err(format!("delete from {table} out of step")),
                }
            }
            (kind, _, _) => Err(format!(
                "a {kind:?} change to {table} the model cannot apply"
            )),
        }
    }

    /// Every row as text, as database clients show values (NULL as `None`),
    /// sorted: comparable with the tables' contents read as text.
    pub fn rows_as_text(&self) -> Vec<Vec<Option<String>>> {
        let mut rows: Vec<Vec<Option<String>>> = self
            .rows
            .values()
            .map(|row| row.iter().map(text).collect())
            .collect();
        rows.sort();
        rows
    }
}

/// A value as the text protocol shows it; kinds a test has no need for keep
/// their debug form, which never equals what a server prints.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Text(t) => Some(t.to_string()),
        Value::Decimal(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TableName;

    fn change(kind: ChangeKind, before: Option<Row>, after: Option<Row>) -> Change {
        Change {
            table: TableName::new("s", "m"),
            kind,
            before,
            after,
            position: crate::event::SourcePosition::None,
            txid: None,
            commit_time_micros: 0,
        }
    }

    fn row(a: i64, b: i64, c: &str) -> Row {
        vec![Value::Int(a), Value::Int(b), Value::Text(c.into())]
    }

    #[test]
    fn changes_out_of_step_are_caught_and_the_rest_rebuild_the_table() {
        let mut model = ReplayModel::new(&[("m", 2)]);
        model
            .apply(change(ChangeKind::Insert, None, Some(row(1, 1, "x"))))
            .unwrap();
        model
            .apply(change(ChangeKind::Insert, None, Some(row(1, 2, "y"))))
            .unwrap();
        // A before image that is not the model's row: a lost update.
        let stale = change(
            ChangeKind::Update,
            Some(row(1, 1, "w")),
            Some(row(1, 1, "z")),
        );
        assert!(model.apply(stale).is_err());
        let mut model = ReplayModel::new(&[("m", 2)]);
        model
            .apply(change(ChangeKind::Insert, None, Some(row(1, 1, "x"))))
            .unwrap();
        model
            .apply(change(
                ChangeKind::Update,
                Some(row(1, 1, "x")),
                Some(row(1, 3, "x")),
            ))
            .unwrap();
        assert!(
            model
                .apply(change(ChangeKind::Delete, Some(row(1, 1, "x")), None))
                .is_err(),
            "the key moved away"
        );
        assert_eq!(
            model.rows_as_text(),
            [[Some("1".into()), Some("3".into()), Some("x".into())]]
        );
        assert!(
            model
                .apply(change(ChangeKind::Truncate, None, None))
                .is_err()
        );
    }
}
