//! MySQL/MariaDB type mapping.
//!
//! Tables are InnoDB, `utf8mb4` with the binary collation (keys that differ
//! only in case or trailing spaces stay distinct, as in the source). The
//! session runs in strict mode at UTC, so a value that does not fit is an error,
//! never a silent truncation.
//!
//! | source `DataType`              | MySQL type                                 |
//! |--------------------------------|--------------------------------------------|
//! | `Bool`                         | `BOOLEAN`                                  |
//! | `Int` 8/16/24/32/64            | `TINYINT`/`SMALLINT`/`MEDIUMINT`/`INT`/`BIGINT`, `UNSIGNED` kept (`u64::MAX` fits) |
//! | `Float32`, `Float64`           | `FLOAT`, `DOUBLE`                          |
//! | `Decimal(p,s)`, p<=65, s<=30   | `DECIMAL(p,s)`                             |
//! | `Decimal` unbounded or larger  | `DECIMAL(65,30)`; values with more digits (or NaN) are rejected: override to `LONGTEXT` to keep them exactly |
//! | `Text(n)` / fixed              | `VARCHAR(n)` / `CHAR(n)` (n <= 255 for CHAR) |
//! | `Text` unbounded               | `LONGTEXT`; `VARCHAR(768)` in a key        |
//! | `Bytes(n)` / fixed / unbounded | `VARBINARY(n)` / `BINARY(n)` / `LONGBLOB` (`VARBINARY(3072)` in a key) |
//! | `Bit(n)`, n <= 64              | `BIT(n)`                                   |
//! | `Date`                         | `DATE`                                     |
//! | `Time`                         | `TIME(6)` (negative and over 24 h fit up to 838 h) |
//! | `TimeTz`, `Interval`           | `VARCHAR(64)` in the ISO text form         |
//! | `Timestamp`                    | `DATETIME(6)`                              |
//! | `TimestampTz`                  | `DATETIME(6)` holding UTC (`TIMESTAMP` ends in 2038) |
//! | `Uuid`                         | `CHAR(36)` hyphenated                      |
//! | `Json`, `Array`                | `JSON`                                     |
//! | `Enum`                         | `VARCHAR(255)` (the label)                 |
//! | `Set`                          | `TEXT` (comma-joined labels, MySQL's text form) |
//! | `Geometry`                     | `LONGBLOB` (WKB)                           |
//! | `Other`                        | `LONGTEXT`                                 |
//!
//! PostgreSQL `infinity` dates and timestamps have no MySQL form and are
//! rejected; override such columns to `VARCHAR(32)` to keep them as text.

use cdc_core::event::{DataType, Value};
use mysql_async::Value as My;

use crate::error::{Result, SinkError};
use crate::json;
use crate::mapping::{TargetColumn, TargetTable};
use crate::temporal::{self, civil_from_days, civil_from_micros};

/// The DDL type of a target column.
pub(crate) fn column_type(table: &TargetTable, index: usize) -> String {
    let col = &table.columns[index];
    if let Some(t) = &col.type_override {
        return t.clone();
    }
    let key = table.is_key(index);
    match &col.source.data_type {
        DataType::Bool => "BOOLEAN".into(),
        DataType::Int { bits, signed } => {
            let base = match bits {
                0..=8 => "TINYINT",
                9..=16 => "SMALLINT",
                17..=24 => "MEDIUMINT",
                25..=32 => "INT",
                _ => "BIGINT",
            };
            if *signed {
                base.into()
            } else {
                format!("{base} UNSIGNED")
            }
        }
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal { .. } => {
            let (p, s) = decimal_bounds(&col.source.data_type);
            format!("DECIMAL({p},{s})")
        }
        DataType::Text {
            max_chars: Some(n),
            fixed: true,
        } if (1..=255).contains(n) => format!("CHAR({n})"),
        DataType::Text {
            max_chars: Some(n), ..
        } if (1..=16_383).contains(n) && (!key || *n <= 768) => format!("VARCHAR({n})"),
        DataType::Text { .. } | DataType::Other if key => "VARCHAR(768)".into(),
        DataType::Text { .. } | DataType::Other => "LONGTEXT".into(),
        DataType::Bytes {
            max_len: Some(n),
            fixed: true,
        } if (1..=255).contains(n) => format!("BINARY({n})"),
        DataType::Bytes {
            max_len: Some(n), ..
        } if (1..=3072).contains(n) => format!("VARBINARY({n})"),
        DataType::Bytes { .. } if key => "VARBINARY(3072)".into(),
        DataType::Bytes { .. } | DataType::Geometry => "LONGBLOB".into(),
        DataType::Bit { len } if (1..=64).contains(len) => format!("BIT({len})"),
        DataType::Bit { .. } => "LONGBLOB".into(),
        DataType::Date => "DATE".into(),
        DataType::Time => "TIME(6)".into(),
        DataType::TimeTz | DataType::Interval => "VARCHAR(64)".into(),
        DataType::Timestamp | DataType::TimestampTz => "DATETIME(6)".into(),
        DataType::Uuid => "CHAR(36)".into(),
        DataType::Json | DataType::Array(_) => "JSON".into(),
        DataType::Enum { .. } => "VARCHAR(255)".into(),
        DataType::Set { .. } => "TEXT".into(),
    }
}

/// Precision and scale of the DECIMAL a decimal column maps to.
fn decimal_bounds(t: &DataType) -> (u32, u32) {
    match t {
        DataType::Decimal {
            precision: Some(p),
            scale,
        } if *p <= 65 && scale.unwrap_or(0) <= 30 && scale.unwrap_or(0) <= *p => {
            (*p, scale.unwrap_or(0))
        }
        _ => (65, 30),
    }
}

/// Converts a value to a statement parameter; `Unchanged` must be filtered out before.
pub(crate) fn param(table: &TargetTable, col: &TargetColumn, value: &Value) -> Result<My> {
    let out_of_range = |reason: String| SinkError::ValueOutOfRange {
        table: table.source.clone(),
        column: col.source.name.clone(),
        reason,
    };
    let overridden = col.type_override.is_some();
    Ok(match value {
        Value::Null | Value::Unchanged => My::NULL,
        Value::Bool(b) => My::Int(i64::from(*b)),
        Value::Int(i) => My::Int(*i),
        Value::UInt(u) => My::UInt(*u),
        Value::Float(f) => My::Float(*f),
        Value::Double(f) => My::Double(*f),
        Value::Decimal(d) => {
            if !overridden {
                check_decimal(d.as_str(), decimal_bounds(&col.source.data_type))
                    .map_err(out_of_range)?;
            }
            My::Bytes(d.as_str().as_bytes().to_vec())
        }
        Value::Text(s) | Value::Enum(s) | Value::Json(s) => My::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => My::Bytes(b.clone()),
        Value::Date(d) if overridden => My::Bytes(temporal::date_text(*d).into_bytes()),
        Value::Date(d) => {
            let (y, m, day) = civil_from_days(i64::from(*d));
            let y = u16::try_from(y)
                .ok()
                .filter(|y| *y <= 9999 && *d != i32::MAX && *d != i32::MIN)
                .ok_or_else(|| out_of_range("date outside years 0..9999".into()))?;
            My::Date(y, m as u8, day as u8, 0, 0, 0, 0)
        }
        Value::Time(t) => {
            let neg = *t < 0;
            let m = t.unsigned_abs();
            let days = u32::try_from(m / 86_400_000_000)
                .map_err(|_| out_of_range("time out of range".into()))?;
            let rest = m % 86_400_000_000;
            My::Time(
                neg,
                days,
                (rest / 3_600_000_000) as u8,
                (rest / 60_000_000 % 60) as u8,
                (rest / 1_000_000 % 60) as u8,
                (rest % 1_000_000) as u32,
            )
        }
        Value::Timestamp(t) | Value::TimestampTz(t) if overridden => {
            My::Bytes(json_string(value).into_bytes())
        }
        Value::Timestamp(t) | Value::TimestampTz(t) => {
            let c = civil_from_micros(*t);
            let y = u16::try_from(c.year)
                .ok()
                .filter(|y| *y <= 9999 && *t != i64::MAX && *t != i64::MIN)
                .ok_or_else(|| out_of_range("timestamp outside years 0..9999".into()))?;
            My::Date(
                y,
                c.month as u8,
                c.day as u8,
                c.hour as u8,
                c.minute as u8,
                c.second as u8,
                c.micros,
            )
        }
        Value::Set(labels) => My::Bytes(labels.join(",").into_bytes()),
        Value::Array(_) => My::Bytes(json::to_json_text(value).into_bytes()),
        Value::TimeTz { .. } | Value::Interval { .. } | Value::Uuid(_) => {
            My::Bytes(json_string(value).into_bytes())
        }
    })
}

fn json_string(value: &Value) -> String {
    match json::to_json(value) {
        serde_json::Value::String(s) => s,
        j => j.to_string(),
    }
}

/// Rejects decimals that DECIMAL(p,s) would round or cannot hold.
fn check_decimal(text: &str, (p, s): (u32, u32)) -> std::result::Result<(), String> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Err(format!(
            "{text} has no MySQL DECIMAL form; override the column to LONGTEXT"
        ));
    }
    let digits = text.trim_start_matches('-');
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if frac.len() as u32 > s || int.len() as u32 > p - s {
        return Err(format!(
            "the decimal needs more digits than DECIMAL({p},{s}); override the column to LONGTEXT"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_that_would_round_are_rejected() {
        assert!(check_decimal("1.5", (10, 2)).is_ok());
        assert!(check_decimal("1.500", (10, 2)).is_ok());
        assert!(check_decimal("1.505", (10, 2)).is_err());
        assert!(check_decimal("123456789", (10, 2)).is_err());
        assert!(check_decimal("NaN", (65, 30)).is_err());
    }
}
