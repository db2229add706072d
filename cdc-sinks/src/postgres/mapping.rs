//! PostgreSQL type mapping and binary COPY encoding.
//!
//! | source `DataType`                | PostgreSQL type                        |
//! |----------------------------------|----------------------------------------|
//! | `Bool`                           | `boolean`                              |
//! | `Int` signed 8/16, 24/32, 64     | `smallint`, `integer`, `bigint`        |
//! | `Int` unsigned 8, 16, 24/32, 64  | `smallint`, `integer`, `bigint`, `numeric(20,0)` (`u64::MAX` fits) |
//! | `Float32`, `Float64`             | `real`, `double precision`             |
//! | `Decimal(p,s)` / unbounded       | `numeric(p,s)` / `numeric` (exact, NaN and infinities kept) |
//! | `Text(n)` / fixed / unbounded    | `varchar(n)` / `char(n)` / `text`      |
//! | `Bytes`, `Geometry`              | `bytea` (geometry as WKB)              |
//! | `Bit(n)`                         | `bit varying(n)`                       |
//! | `Date`, `Time`, `TimeTz`         | `date`, `time`, `time with time zone`  |
//! | `Timestamp`, `TimestampTz`       | `timestamp`, `timestamptz` (microseconds; infinities kept) |
//! | `Interval`                       | `interval` (months, days, micros kept apart) |
//! | `Uuid`                           | `uuid`                                 |
//! | `Json`                           | `jsonb`                                |
//! | `Enum`, `Other`                  | `text`                                 |
//! | `Set`                            | `text[]`                               |
//! | `Array(t)`                       | `t[]` (nested arrays are multi-dimensional) |
//!
//! A type override names any of these types (with modifiers); values are then
//! converted to it (to text in their ISO/JSON text form) or rejected with
//! [`SinkError::ValueOutOfRange`] when they do not fit. MySQL `TIME` values
//! outside a day need an `interval` override.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use cdc_core::event::{DataType, Value};

use crate::error::{Result, SinkError};
use crate::json;
use crate::mapping::{TargetColumn, TargetTable};

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A PostgreSQL type the sink writes, with what binary COPY needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    VarBit,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Jsonb,
    Json,
    Array(Box<PgType>),
}

impl PgType {
    /// The type name without modifiers, used for staging tables.
    pub(crate) fn name(&self) -> String {
        match self {
            PgType::Array(e) => format!("{}[]", e.name()),
            t => t.base_name().into(),
        }
    }

    fn base_name(&self) -> &'static str {
        match self {
            PgType::Bool => "bool",
            PgType::Int2 => "int2",
            PgType::Int4 => "int4",
            PgType::Int8 => "int8",
            PgType::Float4 => "float4",
            PgType::Float8 => "float8",
            PgType::Numeric => "numeric",
            PgType::Text => "text",
            PgType::Bytea => "bytea",
            PgType::VarBit => "varbit",
            PgType::Date => "date",
            PgType::Time => "time",
            PgType::TimeTz => "timetz",
            PgType::Timestamp => "timestamp",
            PgType::TimestampTz => "timestamptz",
            PgType::Interval => "interval",
            PgType::Uuid => "uuid",
            PgType::Jsonb => "jsonb",
            PgType::Json => "json",
            PgType::Array(_) => "array",
        }
    }

    fn oid(&self) -> u32 {
        match self {
            PgType::Bool => 16,
            PgType::Int2 => 21,
            PgType::Int4 => 23,
            PgType::Int8 => 20,
            PgType::Float4 => 700,
            PgType::Float8 => 701,
            PgType::Numeric => 1700,
            PgType::Text => 25,
            PgType::Bytea => 17,
            PgType::VarBit => 1562,
            PgType::Date => 1082,
            PgType::Time => 1083,
            PgType::TimeTz => 1266,
            PgType::Timestamp => 1114,
            PgType::TimestampTz => 1184,
            PgType::Interval => 1186,
            PgType::Uuid => 2950,
            PgType::Jsonb => 3802,
            PgType::Json => 114,
            PgType::Array(e) => e.oid(),
        }
    }

    /// Parses a type override such as `varchar(50)` or `numeric(10,2)[]`.
    pub(crate) fn parse(text: &str) -> Option<PgType> {
        let t = text.trim().to_ascii_lowercase();
        if let Some(elem) = t.strip_suffix("[]") {
            return Some(PgType::Array(Box::new(PgType::parse(elem)?)));
        }
        let base = t.split('(').next().unwrap_or("").trim();
        Some(match base {
            "bool" | "boolean" => PgType::Bool,
            "int2" | "smallint" => PgType::Int2,
            "int" | "int4" | "integer" => PgType::Int4,
            "int8" | "bigint" => PgType::Int8,
            "real" | "float4" => PgType::Float4,
            "double precision" | "float8" => PgType::Float8,
            "numeric" | "decimal" => PgType::Numeric,
            "text" | "varchar" | "character varying" | "char" | "character" | "bpchar" => {
                PgType::Text
            }
            "bytea" => PgType::Bytea,
            "varbit" | "bit varying" => PgType::VarBit,
            "date" => PgType::Date,
            "time" | "time without time zone" => PgType::Time,
            "timetz" | "time with time zone" => PgType::TimeTz,
            "timestamp" | "timestamp without time zone" => PgType::Timestamp,
            "timestamptz" | "timestamp with time zone" => PgType::TimestampTz,
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            "jsonb" => PgType::Jsonb,
            "json" => PgType::Json,
            _ => return None,
        })
    }
}

/// The target column's DDL type and its binary-COPY type.
pub(crate) fn column_type(table: &TargetTable, col: &TargetColumn) -> Result<(String, PgType)> {
    if let Some(t) = &col.type_override {
        let pg = PgType::parse(t).ok_or_else(|| {
            SinkError::config(
                format!(
                    "tables[{}].type_overrides[{}]",
                    table.source, col.source.name
                ),
                format!("{t:?} is not a PostgreSQL type this sink writes"),
            )
        })?;
        return Ok((t.clone(), pg));
    }
    Ok(ddl_type(&col.source.data_type))
}

fn ddl_type(t: &DataType) -> (String, PgType) {
    let s = |n: &str, p: PgType| (n.to_string(), p);
    match t {
        DataType::Bool => s("boolean", PgType::Bool),
        DataType::Int { bits, signed: true } => match bits {
            0..=16 => s("smallint", PgType::Int2),
            17..=32 => s("integer", PgType::Int4),
            _ => s("bigint", PgType::Int8),
        },
        DataType::Int {
            bits,
            signed: false,
        } => match bits {
            0..=8 => s("smallint", PgType::Int2),
            9..=16 => s("integer", PgType::Int4),
            17..=32 => s("bigint", PgType::Int8),
            _ => s("numeric(20,0)", PgType::Numeric),
        },
        DataType::Float32 => s("real", PgType::Float4),
        DataType::Float64 => s("double precision", PgType::Float8),
        DataType::Decimal {
            precision: Some(p),
            scale,
        } if (1..=1000).contains(p) => (
            format!("numeric({p},{})", scale.unwrap_or(0).min(*p)),
            PgType::Numeric,
        ),
        DataType::Decimal { .. } => s("numeric", PgType::Numeric),
        DataType::Text {
            max_chars: Some(n),
            fixed,
        } if (1..=10_485_760).contains(n) => (
            format!("{}({n})", if *fixed { "char" } else { "varchar" }),
            PgType::Text,
        ),
        DataType::Bytes { .. } | DataType::Geometry => s("bytea", PgType::Bytea),
        DataType::Bit { len } if *len >= 1 => (format!("bit varying({len})"), PgType::VarBit),
        DataType::Bit { .. } => s("bit varying", PgType::VarBit),
        DataType::Date => s("date", PgType::Date),
        DataType::Time => s("time", PgType::Time),
        DataType::TimeTz => s("time with time zone", PgType::TimeTz),
        DataType::Timestamp => s("timestamp", PgType::Timestamp),
        DataType::TimestampTz => s("timestamptz", PgType::TimestampTz),
        DataType::Interval => s("interval", PgType::Interval),
        DataType::Uuid => s("uuid", PgType::Uuid),
        DataType::Json => s("jsonb", PgType::Jsonb),
        DataType::Set { .. } => s("text[]", PgType::Array(Box::new(PgType::Text))),
        DataType::Array(elem) => {
            let mut inner = elem.as_ref();
            while let DataType::Array(e) = inner {
                inner = e;
            }
            let (name, pg) = ddl_type(inner);
            (format!("{name}[]"), PgType::Array(Box::new(pg)))
        }
        DataType::Text { .. } | DataType::Enum { .. } | DataType::Other => s("text", PgType::Text),
    }
}

/// The COPY binary header.
pub(crate) fn copy_header(buf: &mut BytesMut) {
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
}

/// Appends one field (length-prefixed, or -1 for NULL) to a COPY row.
pub(crate) fn put_field(
    buf: &mut BytesMut,
    table: &TargetTable,
    col: &TargetColumn,
    ty: &PgType,
    value: &Value,
) -> Result<()> {
    if matches!(value, Value::Null | Value::Unchanged) {
        buf.put_i32(-1);
        return Ok(());
    }
    let at = buf.len();
    buf.put_i32(0);
    encode(buf, ty, value, &col.source.data_type).map_err(|reason| SinkError::ValueOutOfRange {
        table: table.source.clone(),
        column: col.source.name.clone(),
        reason,
    })?;
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

type Enc = std::result::Result<(), String>;

fn mismatch(ty: &PgType, value: &Value) -> String {
    let kind = format!("{value:?}");
    let kind = kind.split(['(', ' ', '{']).next().unwrap_or("value");
    format!("a {kind} value cannot be written as {}", ty.name())
}

/// Encodes a non-null value in `ty`'s binary format.
fn encode(buf: &mut BytesMut, ty: &PgType, value: &Value, source: &DataType) -> Enc {
    let range = || format!("integer is out of range for {}", ty.name());
    match (ty, value) {
        (PgType::Bool, Value::Bool(b)) => buf.put_u8(u8::from(*b)),
        (
            PgType::Int2 | PgType::Int4 | PgType::Int8,
            Value::Int(_) | Value::UInt(_) | Value::Bool(_),
        ) => {
            let v: i128 = match value {
                Value::Int(i) => i128::from(*i),
                Value::UInt(u) => i128::from(*u),
                Value::Bool(b) => i128::from(*b),
                _ => 0,
            };
            match ty {
                PgType::Int2 => buf.put_i16(i16::try_from(v).map_err(|_| range())?),
                PgType::Int4 => buf.put_i32(i32::try_from(v).map_err(|_| range())?),
                _ => buf.put_i64(i64::try_from(v).map_err(|_| range())?),
            }
        }
        (PgType::Float4, Value::Float(f)) => buf.put_f32(*f),
        (PgType::Float8, Value::Float(f)) => buf.put_f64(f64::from(*f)),
        (PgType::Float8, Value::Double(f)) => buf.put_f64(*f),
        (PgType::Numeric, Value::Decimal(d)) => numeric(buf, d.as_str())?,
        (PgType::Numeric, Value::Int(i)) => numeric(buf, &i.to_string())?,
        (PgType::Numeric, Value::UInt(u)) => numeric(buf, &u.to_string())?,
        (PgType::Text, v) => buf.put_slice(text_form(v).as_bytes()),
        (PgType::Bytea, Value::Bytes(b)) => buf.put_slice(b),
        (PgType::VarBit, Value::UInt(u)) => {
            let len = match source {
                DataType::Bit { len } => (*len).clamp(1, 64),
                _ => 64,
            };
            buf.put_i32(len as i32);
            let bits = if len == 64 { *u } else { *u << (64 - len) };
            buf.put_slice(&bits.to_be_bytes()[..(len as usize).div_ceil(8)]);
        }
        (PgType::VarBit, Value::Bytes(b)) => {
            buf.put_i32((b.len() * 8) as i32);
            buf.put_slice(b);
        }
        (PgType::Date, Value::Date(d)) => buf.put_i32(match *d {
            i32::MAX | i32::MIN => *d,
            d => d.checked_sub(PG_EPOCH_DAYS).ok_or("date out of range")?,
        }),
        (PgType::Time, Value::Time(t)) => {
            if !(0..=86_400_000_000).contains(t) {
                return Err(
                    "time outside 00:00..24:00; override the column type to interval".into(),
                );
            }
            buf.put_i64(*t);
        }
        (PgType::Interval, Value::Time(t)) => {
            buf.put_i64(*t);
            buf.put_i32(0);
            buf.put_i32(0);
        }
        (
            PgType::TimeTz,
            Value::TimeTz {
                micros,
                offset_secs,
            },
        ) => {
            buf.put_i64(*micros);
            buf.put_i32(-*offset_secs);
        }
        (PgType::Timestamp | PgType::TimestampTz, Value::Timestamp(t) | Value::TimestampTz(t)) => {
            buf.put_i64(match *t {
                i64::MAX | i64::MIN => *t,
                t => t
                    .checked_sub(PG_EPOCH_MICROS)
                    .ok_or("timestamp out of range")?,
            })
        }
        (
            PgType::Interval,
            Value::Interval {
                months,
                days,
                micros,
            },
        ) => {
            buf.put_i64(*micros);
            buf.put_i32(*days);
            buf.put_i32(*months);
        }
        (PgType::Uuid, Value::Uuid(u)) => buf.put_slice(u),
        (PgType::Jsonb, v) => {
            buf.put_u8(1);
            buf.put_slice(json_text(v).as_bytes());
        }
        (PgType::Json, v) => buf.put_slice(json_text(v).as_bytes()),
        (PgType::Array(elem), Value::Array(_) | Value::Set(_)) => array(buf, elem, value, source)?,
        _ => return Err(mismatch(ty, value)),
    }
    Ok(())
}

fn json_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Json(j) => Cow::Borrowed(j),
        v => Cow::Owned(json::to_json_text(v)),
    }
}

/// The text form of a value for text columns and overrides (borrowed when the
/// value already is text: this is on every text value's path).
pub(crate) fn text_form(v: &Value) -> Cow<'_, str> {
    Cow::Owned(match v {
        Value::Text(s) | Value::Enum(s) | Value::Json(s) => return Cow::Borrowed(s),
        Value::Decimal(d) => return Cow::Borrowed(d.as_str()),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Bytes(b) => {
            let mut s = String::from("\\x");
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            s
        }
        Value::Set(labels) => labels.join(","),
        other => match json::to_json(other) {
            serde_json::Value::String(s) => s,
            j => j.to_string(),
        },
    })
}

/// Binary `numeric`: base-10000 digits with weight, sign and display scale.
fn numeric(buf: &mut BytesMut, text: &str) -> Enc {
    let special = match text {
        "NaN" => Some(0xC000u16),
        "Infinity" => Some(0xD000),
        "-Infinity" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(sign);
        buf.put_i16(0);
        return Ok(());
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number".into());
    }
    let dscale = u16::try_from(frac.len()).map_err(|_| "too many fractional digits")?;
    let int = int.trim_start_matches('0');
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits: Vec<u8> = std::iter::repeat_n(b'0', int_pad)
        .chain(int.bytes())
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', frac_pad))
        .collect();
    let mut groups: Vec<i16> = digits
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = ((int_pad + int.len()) / 4) as i32 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let n = i16::try_from(groups.len()).map_err(|_| "too many digits")?;
    buf.put_i16(n);
    buf.put_i16(i16::try_from(weight).map_err(|_| "exponent out of range")?);
    buf.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    buf.put_u16(dscale);
    for g in groups {
        buf.put_i16(g);
    }
    Ok(())
}

/// Binary array: dimensions from the nesting, elements flattened in row-major order.
fn array(buf: &mut BytesMut, elem: &PgType, value: &Value, source: &DataType) -> Enc {
    let set_items;
    let items: &[Value] = match value {
        Value::Set(labels) => {
            set_items = labels.iter().cloned().map(Value::Text).collect::<Vec<_>>();
            &set_items
        }
        Value::Array(items) => items,
        _ => return Err(mismatch(elem, value)),
    };
    let mut dims = vec![items.len()];
    let mut probe = items.first();
    while let Some(Value::Array(inner)) = probe {
        dims.push(inner.len());
        probe = inner.first();
    }
    let mut flat = Vec::new();
    flatten(items, &dims, &mut flat)?;
    let mut elem_source = source;
    while let DataType::Array(e) = elem_source {
        elem_source = e;
    }
    if items.is_empty() {
        buf.put_i32(0);
        buf.put_i32(0);
        buf.put_u32(elem.oid());
        return Ok(());
    }
    buf.put_i32(dims.len() as i32);
    buf.put_i32(i32::from(flat.iter().any(|v| v.is_null())));
    buf.put_u32(elem.oid());
    for d in &dims {
        buf.put_i32(*d as i32);
        buf.put_i32(1);
    }
    for v in flat {
        if matches!(v, Value::Null | Value::Unchanged) {
            buf.put_i32(-1);
            continue;
        }
        let at = buf.len();
        buf.put_i32(0);
        encode(buf, elem, v, elem_source)?;
        let len = (buf.len() - at - 4) as i32;
        buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn flatten<'v>(items: &'v [Value], dims: &[usize], out: &mut Vec<&'v Value>) -> Enc {
    if items.len() != dims[0] {
        return Err("multi-dimensional arrays must be rectangular".into());
    }
    if dims.len() == 1 {
        if items.iter().any(|v| matches!(v, Value::Array(_))) {
            return Err("multi-dimensional arrays must be rectangular".into());
        }
        out.extend(items);
        return Ok(());
    }
    for item in items {
        match item {
            Value::Array(inner) => flatten(inner, &dims[1..], out)?,
            _ => return Err("multi-dimensional arrays must be rectangular".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        numeric(&mut b, text).unwrap();
        b.to_vec()
    }

    #[test]
    fn numerics_encode_as_base_10000_groups_with_scale() {
        // 12345.678 -> digits [1, 2345, 6780], weight 1, dscale 3.
        assert_eq!(
            num("12345.678"),
            [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 9, 41, 26, 124]
        );
        // -0.0001 -> [1], weight -1, negative, dscale 4.
        assert_eq!(num("-0.0001"), [0, 1, 255, 255, 64, 0, 0, 4, 0, 1]);
        assert_eq!(num("0.00"), [0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(num("NaN"), [0, 0, 0, 0, 0xC0, 0, 0, 0]);
    }

    #[test]
    fn overrides_parse_with_modifiers_and_arrays() {
        assert_eq!(PgType::parse("VARCHAR(50)"), Some(PgType::Text));
        assert_eq!(
            PgType::parse("numeric(10,2)[]"),
            Some(PgType::Array(Box::new(PgType::Numeric)))
        );
        assert_eq!(PgType::parse("money"), None);
    }
}
