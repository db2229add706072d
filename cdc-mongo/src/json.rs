//! BSON to Extended JSON v2 text, written straight from the raw bytes.
//!
//! The output is byte for byte what the `bson` crate's
//! `into_relaxed_extjson` / `into_canonical_extjson` followed by
//! `serde_json::to_string` give (a test and a fuzz target compare them),
//! without building a `Document` and a `serde_json::Value` tree first, which
//! took three quarters of the time of turning an event into records.

use std::fmt::Write as _;

use base64::Engine as _;
use bson::{RawBsonRef, RawDocument};

use crate::config::JsonMode;

/// Why a value could not be written: the BSON was malformed.
pub(crate) type Malformed = bson::raw::Error;

/// Appends `doc` as a JSON object.
pub(crate) fn document(
    doc: &RawDocument,
    mode: JsonMode,
    out: &mut String,
) -> Result<(), Malformed> {
    out.push('{');
    for (i, element) in doc.iter().enumerate() {
        let (key, value) = element?;
        if i > 0 {
            out.push(',');
        }
        string(key, out);
        out.push(':');
        self::value(value, mode, out)?;
    }
    out.push('}');
    Ok(())
}

/// Appends one value.
pub(crate) fn value(
    value: RawBsonRef<'_>,
    mode: JsonMode,
    out: &mut String,
) -> Result<(), Malformed> {
    let canonical = mode == JsonMode::Canonical;
    match value {
        RawBsonRef::Double(v) => double(v, canonical, out),
        RawBsonRef::String(s) => string(s, out),
        RawBsonRef::Document(doc) => document(doc, mode, out)?,
        RawBsonRef::Array(array) => {
            out.push('[');
            for (i, item) in array.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                self::value(item?, mode, out)?;
            }
            out.push(']');
        }
        RawBsonRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        RawBsonRef::Null => out.push_str("null"),
        RawBsonRef::Int32(n) if canonical => wrapped(out, "$numberInt", |out| quoted(out, n)),
        RawBsonRef::Int32(n) => {
            let _ = write!(out, "{n}");
        }
        RawBsonRef::Int64(n) if canonical => wrapped(out, "$numberLong", |out| quoted(out, n)),
        RawBsonRef::Int64(n) => {
            let _ = write!(out, "{n}");
        }
        RawBsonRef::ObjectId(id) => wrapped(out, "$oid", |out| string(&id.to_hex(), out)),
        RawBsonRef::DateTime(t) => {
            let millis = t.timestamp_millis();
            let iso = (!canonical && millis >= 0)
                .then(|| t.try_to_rfc3339_string().ok())
                .flatten();
            match iso {
                Some(iso) => wrapped(out, "$date", |out| string(&iso, out)),
                None => wrapped(out, "$date", |out| {
                    wrapped(out, "$numberLong", |out| quoted(out, millis));
                }),
            }
        }
        RawBsonRef::Binary(binary) => wrapped(out, "$binary", |out| {
            out.push_str("{\"base64\":\"");
            base64::engine::general_purpose::STANDARD.encode_string(binary.bytes, out);
            let _ = write!(out, "\",\"subType\":\"{:02x}\"}}", u8::from(binary.subtype));
        }),
        RawBsonRef::Timestamp(ts) => wrapped(out, "$timestamp", |out| {
            let _ = write!(out, "{{\"t\":{},\"i\":{}}}", ts.time, ts.increment);
        }),
        RawBsonRef::RegularExpression(regex) => wrapped(out, "$regularExpression", |out| {
            let mut options: Vec<char> = regex.options.chars().collect();
            options.sort_unstable();
            let options: String = options.into_iter().collect();
            out.push_str("{\"pattern\":");
            string(regex.pattern, out);
            out.push_str(",\"options\":");
            string(&options, out);
            out.push('}');
        }),
        RawBsonRef::JavaScriptCode(code) => wrapped(out, "$code", |out| string(code, out)),
        RawBsonRef::JavaScriptCodeWithScope(code) => {
            out.push_str("{\"$code\":");
            string(code.code, out);
            out.push_str(",\"$scope\":");
            document(code.scope, mode, out)?;
            out.push('}');
        }
        RawBsonRef::Symbol(s) => wrapped(out, "$symbol", |out| string(s, out)),
        RawBsonRef::Decimal128(d) => {
            wrapped(out, "$numberDecimal", |out| string(&d.to_string(), out))
        }
        RawBsonRef::Undefined => out.push_str("{\"$undefined\":true}"),
        RawBsonRef::MinKey => out.push_str("{\"$minKey\":1}"),
        RawBsonRef::MaxKey => out.push_str("{\"$maxKey\":1}"),
        // Rare and without public fields: through the crate.
        RawBsonRef::DbPointer(_) => {
            let bson = bson::Bson::try_from(value.to_raw_bson())?;
            let json = match mode {
                JsonMode::Relaxed => bson.into_relaxed_extjson(),
                JsonMode::Canonical => bson.into_canonical_extjson(),
            };
            let _ = write!(out, "{json}");
        }
    }
    Ok(())
}

/// `{"<key>":<what write puts>}`.
fn wrapped(out: &mut String, key: &str, write: impl FnOnce(&mut String)) {
    out.push_str("{\"");
    out.push_str(key);
    out.push_str("\":");
    write(out);
    out.push('}');
}

fn quoted(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "\"{n}\"");
}

fn double(v: f64, canonical: bool, out: &mut String) {
    if v.is_nan() {
        let text = if v.is_sign_negative() { "-NaN" } else { "NaN" };
        return wrapped(out, "$numberDouble", |out| string(text, out));
    }
    if v.is_infinite() {
        let text = if v.is_sign_negative() {
            "-Infinity"
        } else {
            "Infinity"
        };
        return wrapped(out, "$numberDouble", |out| string(text, out));
    }
    if canonical && (v.is_normal() || v == 0.0) {
        return wrapped(out, "$numberDouble", |out| {
            if v == 0.0 {
                out.push_str(if v.is_sign_negative() {
                    "\"-0.0\""
                } else {
                    "\"0.0\""
                });
            } else {
                let zero_fraction = if v.fract() == 0.0 { ".0" } else { "" };
                let _ = write!(out, "\"{v}{zero_fraction}\"");
            }
        });
    }
    // As serde_json writes a finite f64 (shortest round-trip form).
    match serde_json::Number::from_f64(v) {
        Some(number) => {
            let _ = write!(out, "{number}");
        }
        None => out.push_str("null"),
    }
}

/// A JSON string, escaped as serde_json escapes: quote, backslash and
/// control characters only.
fn string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0C => "\\f",
            0x00..=0x1F => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use bson::spec::BinarySubtype;
    use bson::{Binary, Bson, RawDocumentBuf, doc};

    use super::*;

    /// What the `bson` crate and serde_json make of `doc`.
    fn oracle(doc: &bson::Document, mode: JsonMode) -> String {
        let bson = Bson::Document(doc.clone());
        match mode {
            JsonMode::Relaxed => bson.into_relaxed_extjson().to_string(),
            JsonMode::Canonical => bson.into_canonical_extjson().to_string(),
        }
    }

    fn ours(doc: &bson::Document, mode: JsonMode) -> String {
        let raw = RawDocumentBuf::from_document(doc).unwrap();
        let mut out = String::new();
        document(&raw, mode, &mut out).unwrap();
        out
    }

    #[test]
    fn every_type_is_written_as_the_bson_crate_writes_it() {
        let doc = doc! {
            "double": 1.5, "whole": 2.0, "tiny": 5e-324, "huge": 1e300, "neg_zero": -0.0,
            "nan": f64::NAN, "inf": f64::INFINITY, "ninf": f64::NEG_INFINITY,
            "string": "quote \" back \\ nl \n tab \t ctl \u{1} del \u{7f} é ✓ /",
            "doc": { "a": [1_i32, { "b": null }], "e": {} , "l": [] },
            "bool": true, "null": null,
            "int32": -7_i32, "int64": 9_007_199_254_740_993_i64,
            "oid": bson::oid::ObjectId::from_bytes([1; 12]),
            "date": bson::DateTime::from_millis(1_700_000_000_250),
            "date_zero_ms": bson::DateTime::from_millis(1_700_000_000_000),
            "date_before_1970": bson::DateTime::from_millis(-5),
            "date_far": bson::DateTime::from_millis(253_402_300_800_000),
            "binary": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 255, 7] },
            "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![9; 16] },
            "user": Binary { subtype: BinarySubtype::UserDefined(0x80), bytes: vec![] },
            "ts": bson::Timestamp { time: 5, increment: 6 },
            "regex": bson::Regex { pattern: "a\"b".into(), options: "xmi".into() },
            "code": bson::Bson::JavaScriptCode("f()".into()),
            "scoped": bson::Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
                code: "g()".into(), scope: doc! { "n": 1_i64 } }),
            "symbol": bson::Bson::Symbol("sym".into()),
            "decimal": "-12.3400E+5".parse::<bson::Decimal128>().unwrap(),
            "undefined": bson::Bson::Undefined,
            "min": bson::Bson::MinKey, "max": bson::Bson::MaxKey,
        };
        for mode in [JsonMode::Relaxed, JsonMode::Canonical] {
            assert_eq!(ours(&doc, mode), oracle(&doc, mode), "{mode:?}");
        }
    }
}
