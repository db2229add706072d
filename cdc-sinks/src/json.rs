//! JSON forms of values, for arrays and sets in destinations without them and
//! for the JSON-lines envelope.

use cdc_core::event::Value;
use serde_json::Value as Json;

use crate::temporal;

/// The JSON form of a value. Integers stay numbers (u64 included), decimals are
/// strings (exact), temporal values use the [`temporal`] text forms, bytes are
/// base64, JSON documents are embedded, and `Unchanged` becomes `null` (callers
/// that must keep it distinct check for it first).
pub(crate) fn to_json(value: &Value) -> Json {
    match value {
        Value::Null | Value::Unchanged => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => float(f64::from(*f)),
        Value::Double(f) => float(*f),
        Value::Decimal(d) => Json::String(d.as_str().to_owned()),
        Value::Text(s) | Value::Enum(s) => Json::String(s.to_string()),
        Value::Bytes(b) => Json::String(base64(b)),
        Value::Date(d) => Json::String(temporal::date_text(*d)),
        Value::Time(t) => Json::String(temporal::time_text(*t)),
        Value::TimeTz {
            micros,
            offset_secs,
        } => Json::String(temporal::timetz_text(*micros, *offset_secs)),
        Value::Timestamp(t) => Json::String(temporal::timestamp_text(*t)),
        Value::TimestampTz(t) => Json::String(temporal::timestamptz_text(*t)),
        Value::Interval {
            months,
            days,
            micros,
        } => Json::String(temporal::interval_text(*months, *days, *micros)),
        Value::Uuid(u) => Json::String(temporal::uuid_text(u)),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_string()))
        }
        Value::Set(labels) => {
            Json::Array(labels.iter().map(|l| Json::String(l.to_string())).collect())
        }
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
    }
}

/// JSON text of a value (see [`to_json`]).
pub(crate) fn to_json_text(value: &Value) -> String {
    to_json(value).to_string()
}

fn float(f: f64) -> Json {
    // JSON has no NaN or infinities; keep them as strings rather than lose them.
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(f.to_string()))
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_like_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn u64_max_and_decimals_stay_exact() {
        assert_eq!(to_json_text(&Value::UInt(u64::MAX)), "18446744073709551615");
        let d = cdc_core::event::Decimal::parse("1.10").unwrap();
        assert_eq!(to_json_text(&Value::Decimal(d)), "\"1.10\"");
        assert_eq!(
            to_json_text(&Value::Array(vec![Value::Int(1), Value::Null])),
            "[1,null]"
        );
    }
}
