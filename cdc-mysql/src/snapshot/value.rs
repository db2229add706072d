//! Values read by SQL (binary protocol) to event-model values equal to what the
//! binlog decoder produces for the same column.

use cdc_core::event::{Column, DataType, Decimal, SharedStr, Value};
use mysql_async::Value as My;

use crate::rows::temporal::days_from_civil;

/// The select expression reading column `c` so its value maps exactly.
pub fn select_expr(c: &Column) -> String {
    let q = super::quote(&c.name);
    match (&c.data_type, c.source_type.as_str()) {
        (DataType::Geometry, _) => format!("ST_AsBinary({q})"),
        (DataType::Bit { len }, _) if *len <= 64 => format!("CAST({q} AS UNSIGNED)"),
        (DataType::Uuid, _)
        | (DataType::Other, _)
        | (DataType::Json, _)
        | (DataType::Set { .. }, _)
        | (DataType::Enum { .. }, _) => {
            format!("CAST({q} AS CHAR)")
        }
        _ => q,
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Converts one SQL value of column `c`.
pub fn convert(c: &Column, v: My) -> Value {
    if matches!(v, My::NULL) {
        return Value::Null;
    }
    match (&c.data_type, v) {
        (DataType::Int { signed: true, .. }, My::Int(i)) => Value::Int(i),
        (DataType::Int { signed: true, .. }, My::UInt(u)) => Value::Int(u as i64),
        (DataType::Int { signed: false, .. }, My::UInt(u)) => Value::UInt(u),
        (DataType::Int { signed: false, .. }, My::Int(i)) => Value::UInt(i as u64),
        (DataType::Bit { .. }, My::UInt(u)) => Value::UInt(u),
        (DataType::Bit { .. }, My::Int(i)) => Value::UInt(i as u64),
        (DataType::Float32, My::Float(f)) => Value::Float(f),
        (DataType::Float32, My::Double(d)) => Value::Float(d as f32),
        (DataType::Float64, My::Double(d)) => Value::Double(d),
        (DataType::Float64, My::Float(f)) => Value::Double(f64::from(f)),
        (DataType::Decimal { .. }, My::Bytes(b)) => {
            let t = text(b);
            Decimal::parse(&t).map_or(Value::Text(t.into()), Value::Decimal)
        }
        (DataType::Date, My::Date(y, m, d, ..)) if m > 0 && d > 0 => {
            Value::Date(days_from_civil(i64::from(y), u32::from(m), u32::from(d)) as i32)
        }
        (DataType::Timestamp | DataType::TimestampTz, My::Date(y, m, d, h, mi, s, us))
            if m > 0 && d > 0 =>
        {
            let days = days_from_civil(i64::from(y), u32::from(m), u32::from(d));
            let micros = (days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s))
                * 1_000_000
                + i64::from(us);
            if matches!(c.data_type, DataType::Timestamp) {
                Value::Timestamp(micros)
            } else {
                Value::TimestampTz(micros)
            }
        }
        (DataType::Date | DataType::Timestamp | DataType::TimestampTz, My::Date(..)) => Value::Null,
        (DataType::Time, My::Time(neg, days, h, m, s, us)) => {
            let t =
                ((i64::from(days) * 24 + i64::from(h)) * 3600 + i64::from(m) * 60 + i64::from(s))
                    * 1_000_000
                    + i64::from(us);
            Value::Time(if neg { -t } else { t })
        }
        (DataType::Int { .. }, My::Bytes(b)) => {
            let t = text(b);
            t.parse::<i64>()
                .map(Value::Int)
                .or_else(|_| t.parse::<u64>().map(Value::UInt))
                .unwrap_or(Value::Text(t.into()))
        }
        (DataType::Text { .. }, My::Bytes(b)) => Value::Text(text(b).into()),
        (DataType::Json, My::Bytes(b)) => Value::Json(text(b).into()),
        (DataType::Enum { .. }, My::Bytes(b)) => Value::Enum(text(b).into()),
        (DataType::Set { .. }, My::Bytes(b)) => {
            let t = text(b);
            Value::Set(if t.is_empty() {
                Vec::new()
            } else {
                t.split(',').map(SharedStr::from).collect()
            })
        }
        (DataType::Uuid, My::Bytes(b)) => {
            let t = text(b);
            crate::gtid::parse_uuid(&t).map_or(Value::Text(t.into()), Value::Uuid)
        }
        (DataType::Other, My::Bytes(b)) => Value::Text(text(b).into()),
        (_, My::Bytes(b)) => Value::Bytes(b),
        (_, My::Int(i)) => Value::Int(i),
        (_, My::UInt(u)) => Value::UInt(u),
        (_, My::Float(f)) => Value::Float(f),
        (_, My::Double(d)) => Value::Double(d),
        (_, other) => Value::Text(format!("{other:?}").into()),
    }
}
