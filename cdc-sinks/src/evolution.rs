//! Schema evolution: what a new source schema means for an existing target table.
//!
//! Target columns other than the key are always created nullable (a soft delete
//! or a history row may carry only the key), so nullability changes need no DDL.
//! Rules, by target column name:
//!
//! * a column only in the new schema is added;
//! * a column only in the old schema is kept (new rows store NULL) or dropped,
//!   as [`DroppedColumns`] says;
//! * a changed type is widened when every old value fits the new type (wider
//!   integers, `float` to `double`, more decimal digits on both sides of the
//!   point, longer text or bytes, more bits, enum/set labels appended);
//! * a column with a type override keeps its target type;
//! * anything else, and any change of the primary key, stops with
//!   [`SinkError::IncompatibleSchema`]: nothing is ever silently truncated.

use cdc_core::event::DataType;

use crate::error::{Result, SinkError};
use crate::mapping::{TargetColumn, TargetTable};
use crate::mode::DroppedColumns;

/// One DDL change to bring a target table to a new source schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Alter<'a> {
    /// Add this column (nullable).
    Add(&'a TargetColumn),
    /// Drop the column with this target name.
    Drop(&'a TargetColumn),
    /// Change the column's type to this column's (a widening).
    Widen(&'a TargetColumn),
}

/// The DDL changes from `old` to `new`, or an error if the change is incompatible.
pub(crate) fn diff<'a>(
    old: &'a TargetTable,
    new: &'a TargetTable,
    dropped: DroppedColumns,
) -> Result<Vec<Alter<'a>>> {
    let key_names = |t: &TargetTable| t.key_columns().map(|c| c.name.clone()).collect::<Vec<_>>();
    if key_names(old) != key_names(new) {
        return Err(SinkError::IncompatibleSchema {
            table: new.source.clone(),
            column: key_names(new).join(","),
            reason: format!(
                "the primary key changed from {:?}; recreate the table (prepare mode recreate)",
                key_names(old)
            ),
        });
    }
    let mut alters = Vec::new();
    for col in &new.columns {
        let Some(prev) = old.columns.iter().find(|c| c.name == col.name) else {
            alters.push(Alter::Add(col));
            continue;
        };
        if prev.type_override.is_some() && prev.type_override == col.type_override {
            continue;
        }
        let (a, b) = (&prev.source.data_type, &col.source.data_type);
        if a == b && prev.type_override == col.type_override {
            continue;
        }
        if col.type_override.is_some() || widens(a, b) {
            alters.push(Alter::Widen(col));
            continue;
        }
        return Err(SinkError::IncompatibleSchema {
            table: new.source.clone(),
            column: col.source.name.clone(),
            reason: format!(
                "type changed from {} to {}, which can lose data; add a type override \
                 that holds both, or recreate the table",
                prev.source.source_type, col.source.source_type
            ),
        });
    }
    if dropped == DroppedColumns::Drop {
        for prev in &old.columns {
            if !new.columns.iter().any(|c| c.name == prev.name) {
                alters.push(Alter::Drop(prev));
            }
        }
    }
    Ok(alters)
}

/// What a schema step does to a target table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TablePlan<'a> {
    /// The sink has not built this table yet: apply the prepare mode.
    Create {
        /// Drop an existing table first (prepare mode recreate).
        drop_first: bool,
        /// Remove existing rows after creating if missing (prepare mode truncate).
        truncate: bool,
    },
    /// The table exists from an earlier schema: evolve it.
    Alter(Vec<Alter<'a>>),
}

/// Plans a schema step from the stored target (if the sink built the table
/// before) to the new one.
pub(crate) fn table_plan<'a>(
    stored: Option<&'a TargetTable>,
    new: &'a TargetTable,
    dropped: DroppedColumns,
) -> Result<TablePlan<'a>> {
    let Some(old) = stored else {
        return Ok(TablePlan::Create {
            drop_first: new.prepare == crate::mode::PrepareMode::Recreate,
            truncate: new.prepare == crate::mode::PrepareMode::Truncate,
        });
    };
    if old.write_mode != new.write_mode || old.name != new.name {
        return Err(SinkError::IncompatibleSchema {
            table: new.source.clone(),
            column: String::new(),
            reason: "the target table name or write mode changed since the table was built; \
                     recreate the table"
                .into(),
        });
    }
    Ok(TablePlan::Alter(diff(old, new, dropped)?))
}

/// Whether every value of type `a` fits type `b` unchanged.
pub(crate) fn widens(a: &DataType, b: &DataType) -> bool {
    use DataType as D;
    let at_least = |x: Option<u32>, y: Option<u32>| match (x, y) {
        (_, None) => true,
        (Some(x), Some(y)) => y >= x,
        (None, Some(_)) => false,
    };
    match (a, b) {
        _ if a == b => true,
        (
            D::Int {
                bits: b1,
                signed: s1,
            },
            D::Int {
                bits: b2,
                signed: s2,
            },
        ) => (s1 == s2 && b2 >= b1) || (!s1 && *s2 && b2 > b1),
        (
            D::Int { .. },
            D::Decimal {
                precision: None, ..
            },
        ) => true,
        (D::Float32, D::Float64) => true,
        (
            D::Decimal {
                precision: p1,
                scale: s1,
            },
            D::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => match (p1, p2) {
            (_, None) => at_least(*s1, *s2) || s2.is_none(),
            (Some(p1), Some(p2)) => {
                let (s1, s2) = (s1.unwrap_or(0), s2.unwrap_or(0));
                s2 >= s1 && p2.saturating_sub(s2) >= p1.saturating_sub(s1)
            }
            (None, Some(_)) => false,
        },
        (D::Text { max_chars: m1, .. }, D::Text { max_chars: m2, .. }) => at_least(*m1, *m2),
        (D::Bytes { max_len: m1, .. }, D::Bytes { max_len: m2, .. }) => at_least(*m1, *m2),
        (D::Bit { len: l1 }, D::Bit { len: l2 }) => l2 >= l1,
        (D::Enum { labels: l1 }, D::Enum { labels: l2 })
        | (D::Set { labels: l1 }, D::Set { labels: l2 }) => l2.starts_with(l1),
        (D::Timestamp, D::Timestamp) | (D::Json, D::Json) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::TableMapping;
    use cdc_core::event::{Column, TableName, TableSchema};

    fn table(cols: &[(&str, DataType)]) -> TargetTable {
        let schema = TableSchema {
            table: TableName::new("s", "t"),
            columns: cols
                .iter()
                .map(|(n, t)| Column {
                    name: (*n).into(),
                    data_type: t.clone(),
                    source_type: format!("{t:?}"),
                    nullable: true,
                })
                .collect(),
            primary_key: vec![0],
        };
        TableMapping::default().resolve(&schema).unwrap().unwrap()
    }

    const INT: DataType = DataType::Int {
        bits: 32,
        signed: true,
    };
    const BIG: DataType = DataType::Int {
        bits: 64,
        signed: true,
    };

    #[test]
    fn added_columns_are_added_and_widening_is_applied() {
        let old = table(&[("id", INT), ("a", INT)]);
        let new = table(&[("id", INT), ("a", BIG), ("b", INT)]);
        let alters = diff(&old, &new, DroppedColumns::KeepNullable).unwrap();
        assert_eq!(
            alters,
            vec![Alter::Widen(&new.columns[1]), Alter::Add(&new.columns[2])]
        );
    }

    #[test]
    fn dropped_columns_are_kept_or_dropped_as_configured() {
        let old = table(&[("id", INT), ("a", INT)]);
        let new = table(&[("id", INT)]);
        assert!(
            diff(&old, &new, DroppedColumns::KeepNullable)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            diff(&old, &new, DroppedColumns::Drop).unwrap(),
            vec![Alter::Drop(&old.columns[1])]
        );
    }

    #[test]
    fn narrowing_is_an_incompatible_change() {
        let old = table(&[("id", INT), ("a", BIG)]);
        let new = table(&[("id", INT), ("a", INT)]);
        let err = diff(&old, &new, DroppedColumns::KeepNullable).unwrap_err();
        assert!(matches!(err, SinkError::IncompatibleSchema { .. }), "{err}");
        let text = |n| DataType::Text {
            max_chars: Some(n),
            fixed: false,
        };
        assert!(widens(&text(10), &text(50)));
        assert!(!widens(&text(50), &text(10)));
        assert!(!widens(&DataType::Timestamp, &DataType::TimestampTz));
    }
}
