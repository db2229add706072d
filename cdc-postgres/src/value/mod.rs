//! Text-format PostgreSQL values to [`Value`]s, by column type.
//!
//! The replication session sets `DateStyle=ISO`, `IntervalStyle=iso_8601`,
//! `TimeZone=UTC`, `bytea_output=hex` and `extra_float_digits=3`, so every text
//! form parsed here is unambiguous and floats print their shortest exact form.

mod array;
mod temporal;

use cdc_core::event::{DataType, Decimal, Value};

/// How values of one column are decoded: the builtin type, or what the catalog
/// said about a user-defined one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `bool`.
    Bool,
    /// `int2`, `int4`, `int8` (bits).
    Int(u8),
    /// `numeric`.
    Numeric,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `text`, `varchar`, `bpchar`, `name`, `"char"`.
    Text,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timetz`.
    TimeTz,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`.
    TimestampTz,
    /// `interval`.
    Interval,
    /// `uuid`.
    Uuid,
    /// `json`, `jsonb`.
    Json,
    /// An enum with its labels in sort order.
    Enum(Vec<String>),
    /// An array with its element type and delimiter.
    Array(Box<ColumnType>, u8),
    /// Any other type: kept as text.
    Other,
}

/// Element OID and delimiter of the builtin array types.
pub(crate) fn builtin_array_element(oid: u32) -> Option<u32> {
    Some(match oid {
        1000 => 16,
        1005 => 21,
        1007 => 23,
        1016 => 20,
        1231 => 1700,
        1021 => 700,
        1022 => 701,
        1009 => 25,
        1015 => 1043,
        1014 => 1042,
        1003 => 19,
        1002 => 18,
        1001 => 17,
        1182 => 1082,
        1183 => 1083,
        1270 => 1266,
        1115 => 1114,
        1185 => 1184,
        1187 => 1186,
        2951 => 2950,
        199 => 114,
        3807 => 3802,
        _ => return None,
    })
}

impl ColumnType {
    /// The decoding of a builtin scalar type OID, if it is one of the known ones.
    pub fn builtin(oid: u32) -> Option<ColumnType> {
        Some(match oid {
            16 => ColumnType::Bool,
            21 => ColumnType::Int(16),
            23 => ColumnType::Int(32),
            20 => ColumnType::Int(64),
            1700 => ColumnType::Numeric,
            700 => ColumnType::Float4,
            701 => ColumnType::Float8,
            25 | 1043 | 1042 | 19 | 18 => ColumnType::Text,
            17 => ColumnType::Bytea,
            1082 => ColumnType::Date,
            1083 => ColumnType::Time,
            1266 => ColumnType::TimeTz,
            1114 => ColumnType::Timestamp,
            1184 => ColumnType::TimestampTz,
            1186 => ColumnType::Interval,
            2950 => ColumnType::Uuid,
            114 | 3802 => ColumnType::Json,
            other => {
                let element = builtin_array_element(other)?;
                ColumnType::Array(Box::new(ColumnType::builtin(element)?), b',')
            }
        })
    }

    /// The logical data type, with limits taken from the type modifier.
    pub fn data_type(&self, oid: u32, type_modifier: i32) -> DataType {
        let modifier = u32::try_from(type_modifier).ok();
        match self {
            ColumnType::Bool => DataType::Bool,
            ColumnType::Int(bits) => DataType::Int {
                bits: *bits,
                signed: true,
            },
            ColumnType::Numeric => {
                // numeric typmod: ((precision << 16) | scale) + 4.
                let m = modifier.and_then(|m| m.checked_sub(4));
                DataType::Decimal {
                    precision: m.map(|m| m >> 16),
                    scale: m.map(|m| m & 0xffff),
                }
            }
            ColumnType::Float4 => DataType::Float32,
            ColumnType::Float8 => DataType::Float64,
            ColumnType::Text => DataType::Text {
                // varchar/bpchar typmod is the length plus 4.
                max_chars: match oid {
                    1043 | 1042 => modifier.and_then(|m| m.checked_sub(4)),
                    18 => Some(1),
                    19 => Some(63),
                    _ => None,
                },
                fixed: oid == 1042,
            },
            ColumnType::Bytea => DataType::Bytes {
                max_len: None,
                fixed: false,
            },
            ColumnType::Date => DataType::Date,
            ColumnType::Time => DataType::Time,
            ColumnType::TimeTz => DataType::TimeTz,
            ColumnType::Timestamp => DataType::Timestamp,
            ColumnType::TimestampTz => DataType::TimestampTz,
            ColumnType::Interval => DataType::Interval,
            ColumnType::Uuid => DataType::Uuid,
            ColumnType::Json => DataType::Json,
            ColumnType::Enum(labels) => DataType::Enum {
                labels: labels.clone(),
            },
            ColumnType::Array(element, _) => DataType::Array(Box::new(element.data_type(0, -1))),
            ColumnType::Other => DataType::Other,
        }
    }

    /// Decodes one value's text; `None` when the text is not a valid value of
    /// the type.
    pub fn decode_text(&self, text: &str) -> Option<Value> {
        Some(match self {
            ColumnType::Bool => match text {
                "t" | "true" => Value::Bool(true),
                "f" | "false" => Value::Bool(false),
                _ => return None,
            },
            ColumnType::Int(_) => Value::Int(text.parse().ok()?),
            ColumnType::Numeric => Value::Decimal(Decimal::parse(text).ok()?),
            ColumnType::Float4 => Value::Float(float(text)?),
            ColumnType::Float8 => Value::Double(float(text)?),
            ColumnType::Text | ColumnType::Other => Value::Text(text.into()),
            ColumnType::Bytea => Value::Bytes(bytea(text)?),
            ColumnType::Date => temporal::date(text)?,
            ColumnType::Time => temporal::time(text)?,
            ColumnType::TimeTz => temporal::timetz(text)?,
            ColumnType::Timestamp => temporal::timestamp(text)?,
            ColumnType::TimestampTz => temporal::timestamptz(text)?,
            ColumnType::Interval => temporal::interval(text)?,
            ColumnType::Uuid => Value::Uuid(uuid(text)?),
            ColumnType::Json => Value::Json(text.into()),
            ColumnType::Enum(_) => Value::Enum(text.into()),
            ColumnType::Array(element, delimiter) => {
                Value::Array(elements(element, &array::parse(text, *delimiter)?)?)
            }
        })
    }
}

fn elements(element: &ColumnType, parsed: &[array::Element]) -> Option<Vec<Value>> {
    parsed
        .iter()
        .map(|e| match e {
            array::Element::Null => Some(Value::Null),
            array::Element::Text(t) => element.decode_text(t),
            array::Element::Nested(inner) => Some(Value::Array(elements(element, inner)?)),
        })
        .collect()
}

fn float<F: std::str::FromStr>(text: &str) -> Option<F> {
    // PostgreSQL prints NaN, Infinity and -Infinity, which Rust parses as well.
    text.parse().ok()
}

fn hex_nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|p| Some(hex_nibble(p[0])? << 4 | hex_nibble(p[1])?))
        .collect()
}

fn uuid(text: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut nibbles = text.bytes().filter(|&b| b != b'-');
    for byte in &mut out {
        *byte = hex_nibble(nibbles.next()?)? << 4 | hex_nibble(nibbles.next()?)?;
    }
    (nibbles.next().is_none() && text.len() == 36).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(oid: u32, text: &str) -> Option<Value> {
        ColumnType::builtin(oid).unwrap().decode_text(text)
    }

    #[test]
    fn scalars_decode_exactly() {
        assert_eq!(decode(16, "t"), Some(Value::Bool(true)));
        assert_eq!(
            decode(20, "-9223372036854775808"),
            Some(Value::Int(i64::MIN))
        );
        assert_eq!(
            decode(1700, "-12.3400"),
            Some(Value::Decimal(Decimal::parse("-12.3400").unwrap()))
        );
        assert_eq!(
            decode(1700, "NaN"),
            Some(Value::Decimal(Decimal::parse("NaN").unwrap()))
        );
        assert_eq!(decode(701, "0.1"), Some(Value::Double(0.1)));
        assert_eq!(
            decode(701, "-Infinity"),
            Some(Value::Double(f64::NEG_INFINITY))
        );
        assert!(matches!(decode(700, "NaN"), Some(Value::Float(f)) if f.is_nan()));
        assert_eq!(decode(17, "\\x00ff"), Some(Value::Bytes(vec![0, 255])));
        assert_eq!(
            decode(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            Some(Value::Uuid([
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ]))
        );
    }

    #[test]
    fn malformed_text_is_rejected_not_guessed() {
        assert_eq!(decode(16, "yes"), None);
        assert_eq!(decode(23, "1.5"), None);
        assert_eq!(decode(17, "\\x0"), None);
        assert_eq!(decode(2950, "a0eebc99"), None);
    }

    #[test]
    fn arrays_decode_elements_with_nulls_and_nesting() {
        assert_eq!(
            decode(1007, "{{1,NULL},{3,4}}"),
            Some(Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Null]),
                Value::Array(vec![Value::Int(3), Value::Int(4)]),
            ]))
        );
        assert_eq!(
            decode(1009, r#"{"a,b",c}"#),
            Some(Value::Array(vec![
                Value::Text("a,b".into()),
                Value::Text("c".into())
            ]))
        );
    }

    #[test]
    fn type_modifiers_become_limits() {
        assert_eq!(
            ColumnType::Numeric.data_type(1700, (10 << 16 | 2) + 4),
            DataType::Decimal {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(
            ColumnType::Text.data_type(1043, 54),
            DataType::Text {
                max_chars: Some(50),
                fixed: false
            }
        );
    }
}
