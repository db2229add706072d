//! SQLite type mapping.
//!
//! | source `DataType`            | SQLite declared type | stored as                          |
//! |------------------------------|----------------------|------------------------------------|
//! | `Bool`                       | `INTEGER`            | 0 / 1                              |
//! | `Int` (signed, or < 64 bits) | `INTEGER`            | integer                            |
//! | `Int` unsigned 64-bit        | `TEXT`               | decimal digits (`u64::MAX` fits; INTEGER would turn it into a lossy REAL) |
//! | `Float32`, `Float64`         | `REAL`               | double (a float widens exactly)    |
//! | `Decimal`                    | `TEXT`               | exact decimal text                 |
//! | `Text`, `Enum`, `Other`      | `TEXT`               | text                               |
//! | `Bytes`, `Geometry`          | `BLOB`               | bytes (geometry as WKB)            |
//! | `Bit` up to 63 bits          | `INTEGER`            | the bits as an integer             |
//! | `Bit` longer                 | `BLOB`               | big-endian bytes                   |
//! | `Date`                       | `TEXT`               | `2024-02-29`                       |
//! | `Time`                       | `TEXT`               | `13:05:09.000001` (may be negative or past 24 h) |
//! | `TimeTz`                     | `TEXT`               | `13:05:09.000001+02:00`            |
//! | `Timestamp`                  | `TEXT`               | `2024-02-29 13:05:09.000001`       |
//! | `TimestampTz`                | `TEXT`               | `2024-02-29 13:05:09.000001+00:00` (UTC) |
//! | `Interval`                   | `TEXT`               | `P14M3DT3723.000007S`              |
//! | `Uuid`                       | `TEXT`               | hyphenated lowercase               |
//! | `Json`                       | `TEXT`               | the JSON document (SQLite's JSON functions read it) |
//! | `Set`, `Array`               | `TEXT`               | JSON array                         |
//!
//! Temporal texts are ISO 8601 and sort chronologically within a zone, and
//! SQLite's date functions read them. A type override replaces the declared type;
//! values are stored as above whatever the declared type says.

use cdc_core::event::{DataType, Value};
use rusqlite::types::{ToSqlOutput, Value as Sql, ValueRef};

use crate::ddl::{BookkeepingTypes, column_definitions};
use crate::error::{Result, SinkError};
use crate::json;
use crate::mapping::{TargetColumn, TargetTable};
use crate::quote::Dialect;
use crate::temporal;

const D: Dialect = Dialect::Sqlite;
const BOOKKEEPING: BookkeepingTypes = BookkeepingTypes {
    op: "TEXT NOT NULL",
    commit_time: "TEXT NOT NULL",
    offset: "INTEGER PRIMARY KEY",
    unchanged: "TEXT",
    soft_deleted: "INTEGER NOT NULL DEFAULT 0",
};

/// The declared SQLite type of a target column.
pub(crate) fn column_type(col: &TargetColumn) -> String {
    if let Some(t) = &col.type_override {
        return t.clone();
    }
    match &col.source.data_type {
        DataType::Bool => "INTEGER",
        DataType::Int {
            bits: 64,
            signed: false,
        } => "TEXT",
        DataType::Int { .. } => "INTEGER",
        DataType::Float32 | DataType::Float64 => "REAL",
        DataType::Bytes { .. } | DataType::Geometry => "BLOB",
        DataType::Bit { len } if *len <= 63 => "INTEGER",
        DataType::Bit { .. } => "BLOB",
        _ => "TEXT",
    }
    .into()
}

/// How one column's values are stored, worked out once per table (not per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Storage {
    /// Unsigned integers go in as decimal text (declared `TEXT`).
    uint_as_text: bool,
    /// A `BIT` longer than 63 bits: big-endian bytes.
    long_bits: bool,
}

impl Storage {
    /// The storage of a target column.
    pub(crate) fn of(col: &TargetColumn) -> Self {
        Self {
            uint_as_text: column_type(col) == "TEXT",
            long_bits: matches!(col.source.data_type, DataType::Bit { len } if len > 63),
        }
    }
}

/// Converts a value for a column, borrowing text and bytes from the value
/// (SQLite copies them when binding); `Unchanged` binds as NULL and must be
/// filtered out before where it means "keep".
pub(crate) fn to_sql<'v>(
    storage: Storage,
    table: &TargetTable,
    col: &TargetColumn,
    value: &'v Value,
) -> Result<ToSqlOutput<'v>> {
    let owned = |v: Sql| Ok(ToSqlOutput::Owned(v));
    let text = |s: &'v str| Ok(ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())));
    match value {
        Value::Null | Value::Unchanged => owned(Sql::Null),
        Value::Bool(b) => owned(Sql::Integer(i64::from(*b))),
        Value::Int(i) => owned(Sql::Integer(*i)),
        Value::UInt(u) if storage.long_bits => owned(Sql::Blob(u.to_be_bytes().to_vec())),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) if !storage.uint_as_text => owned(Sql::Integer(i)),
            _ => owned(Sql::Text(u.to_string())),
        },
        Value::Float(f) => owned(Sql::Real(f64::from(*f))),
        Value::Double(f) => {
            if f.is_nan() {
                // SQLite stores NaN as NULL; refuse rather than lose the value.
                return Err(SinkError::ValueOutOfRange {
                    table: table.source.clone(),
                    column: col.source.name.clone(),
                    reason: "SQLite cannot store NaN; override the column type to TEXT".into(),
                });
            }
            owned(Sql::Real(*f))
        }
        Value::Decimal(d) => text(d.as_str()),
        Value::Text(s) | Value::Enum(s) | Value::Json(s) => text(s),
        Value::Bytes(b) => Ok(ToSqlOutput::Borrowed(ValueRef::Blob(b))),
        Value::Date(d) => owned(Sql::Text(temporal::date_text(*d))),
        Value::Time(t) => owned(Sql::Text(temporal::time_text(*t))),
        Value::TimeTz {
            micros,
            offset_secs,
        } => owned(Sql::Text(temporal::timetz_text(*micros, *offset_secs))),
        Value::Timestamp(t) => owned(Sql::Text(temporal::timestamp_text(*t))),
        Value::TimestampTz(t) => owned(Sql::Text(temporal::timestamptz_text(*t))),
        Value::Interval {
            months,
            days,
            micros,
        } => owned(Sql::Text(temporal::interval_text(*months, *days, *micros))),
        Value::Uuid(u) => owned(Sql::Text(temporal::uuid_text(u))),
        Value::Set(_) | Value::Array(_) => owned(Sql::Text(json::to_json_text(value))),
    }
}

/// `CREATE TABLE IF NOT EXISTS` for a target table in its write mode.
pub(crate) fn create_table(table: &TargetTable) -> String {
    let defs = column_definitions(D, table, &BOOKKEEPING, |i| column_type(&table.columns[i]));
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        D.ident(&table.name),
        defs.join(", ")
    )
}
