//! The canonical form of a value: the same text for a source value and for
//! what a sink stored for it, whatever type the sink chose (a MySQL
//! `TINYINT UNSIGNED` in a PostgreSQL `smallint`, a `DECIMAL(10,2)` in an
//! unbounded `numeric`, a set in a `text[]`, JSON with its keys reordered).
//!
//! Every part is tagged and every variable-length part carries its length,
//! so the forms of whole rows and keys can be concatenated without
//! ambiguity.

use std::fmt::Write;

use crate::event::Value;

/// Appends the canonical form of `value` to `out`.
pub(crate) fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push('N'),
        Value::Unchanged => out.push('?'),
        Value::Bool(b) => number(if *b { "1" } else { "0" }, out),
        Value::Int(i) => number(&i.to_string(), out),
        Value::UInt(u) => number(&u.to_string(), out),
        Value::Decimal(d) if d.is_special() => text('x', d.as_str(), out),
        Value::Decimal(d) => number(&plain_decimal(d.as_str()), out),
        Value::Float(f) => text('f', &f.to_string(), out),
        Value::Double(f) => text('f', &f.to_string(), out),
        Value::Text(s) | Value::Enum(s) => text('s', s.as_str(), out),
        Value::Json(s) => json(s.as_str(), out),
        Value::Bytes(b) => hex('b', b, out),
        Value::Uuid(u) => hex('u', u, out),
        Value::Date(d) => tagged('d', *d, out),
        Value::Time(t) => tagged('t', *t, out),
        Value::TimeTz {
            micros,
            offset_secs,
        } => {
            tagged('z', *micros, out);
            tagged('o', *offset_secs, out);
        }
        // A sink may keep either kind in the other's type (a MySQL
        // `DATETIME` in `timestamptz`); both are microseconds from the epoch.
        Value::Timestamp(t) | Value::TimestampTz(t) => tagged('T', *t, out),
        Value::Interval {
            months,
            days,
            micros,
        } => {
            tagged('i', *months, out);
            tagged('i', *days, out);
            tagged('i', *micros, out);
        }
        // Sinks keep a set's labels as a text array or as `a,b` text; both
        // compare as the array of labels.
        Value::Set(labels) => {
            let _ = write!(out, "[{}:", labels.len());
            for label in labels {
                text('s', label.as_str(), out);
            }
        }
        Value::Array(items) => {
            let _ = write!(out, "[{}:", items.len());
            for item in items {
                canonical(item, out);
            }
        }
    }
}

/// The canonical form of the values at `indexes` of `row`, or `None` when
/// an index is out of the row.
pub(crate) fn canonical_of(
    row: &[Value],
    indexes: impl IntoIterator<Item = usize>,
) -> Option<String> {
    let mut out = String::new();
    for i in indexes {
        canonical(row.get(i)?, &mut out);
    }
    Some(out)
}

fn number(digits: &str, out: &mut String) {
    text('n', digits, out);
}

fn text(tag: char, s: &str, out: &mut String) {
    let _ = write!(out, "{tag}{}:{s}", s.len());
}

fn tagged(tag: char, n: impl std::fmt::Display, out: &mut String) {
    let _ = write!(out, "{tag}{n};");
}

fn hex(tag: char, bytes: &[u8], out: &mut String) {
    let _ = write!(out, "{tag}{}:", bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// JSON with its whitespace and key order normalized; text that does not
/// parse is compared as it is.
fn json(s: &str, out: &mut String) {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(parsed) => {
            let mut sorted = String::with_capacity(s.len());
            sorted_json(&parsed, &mut sorted);
            text('j', &sorted, out)
        }
        Err(_) => text('j', s, out),
    }
}

/// Compact JSON with object keys in sorted order, whatever order the map
/// keeps: serde_json preserves insertion order when any crate in the build
/// enables its `preserve_order` feature.
fn sorted_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value as Json;
    match value {
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(key.clone()).to_string());
                out.push(':');
                sorted_json(item, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                sorted_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Decimal text without the scale's trailing zeros, leading zeros or a
/// negative zero, so `5`, `5.00` and `005.0` agree.
fn plain_decimal(text: &str) -> String {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut plain = String::with_capacity(text.len());
    if negative && (int != "0" || !frac.is_empty()) {
        plain.push('-');
    }
    plain.push_str(int);
    if !frac.is_empty() {
        plain.push('.');
        plain.push_str(frac);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decimal;

    fn form(value: &Value) -> String {
        let mut out = String::new();
        canonical(value, &mut out);
        out
    }

    fn decimal(text: &str) -> Value {
        Value::Decimal(Decimal::parse(text).unwrap())
    }

    #[test]
    fn numbers_agree_across_widths_signedness_and_scale() {
        assert_eq!(form(&Value::Int(5)), form(&Value::UInt(5)));
        assert_eq!(form(&Value::Int(5)), form(&decimal("5.00")));
        assert_eq!(form(&decimal("-0012.3400")), form(&decimal("-12.34")));
        assert_eq!(form(&decimal("-0.00")), form(&Value::Int(0)));
        assert_eq!(form(&Value::Bool(true)), form(&Value::Int(1)));
        assert_ne!(form(&Value::Int(5)), form(&Value::Int(50)));
        assert_ne!(form(&decimal("0.5")), form(&decimal("5")));
        assert_ne!(form(&decimal("NaN")), form(&Value::Text("NaN".into())));
    }

    #[test]
    fn json_agrees_whatever_its_spacing_and_key_order() {
        let a = Value::Json(r#"{"b": 1, "a": [true, null]}"#.into());
        let b = Value::Json(r#"{"a":[true,null],"b":1}"#.into());
        assert_eq!(form(&a), form(&b));
        assert_ne!(
            form(&a),
            form(&Value::Json(r#"{"a":[true,null],"b":2}"#.into()))
        );
        let nested = Value::Json(r#"[{"z": {"y": 1, "x": "\"q\""}, "a": 0}]"#.into());
        let reordered = Value::Json(r#"[{"a":0,"z":{"x":"\"q\"","y":1}}]"#.into());
        assert_eq!(form(&nested), form(&reordered));
    }

    #[test]
    fn a_set_agrees_with_the_text_array_of_its_labels() {
        let set = Value::Set(vec!["a".into(), "b".into()]);
        let array = Value::Array(vec![Value::Text("a".into()), Value::Text("b".into())]);
        assert_eq!(form(&set), form(&array));
        assert_eq!(
            form(&Value::Enum("x".into())),
            form(&Value::Text("x".into()))
        );
    }

    #[test]
    fn concatenated_forms_cannot_be_confused() {
        let ab_c = canonical_of(&[Value::Text("ab".into()), Value::Text("c".into())], [0, 1]);
        let a_bc = canonical_of(&[Value::Text("a".into()), Value::Text("bc".into())], [0, 1]);
        assert_ne!(ab_c, a_bc);
        assert_ne!(form(&Value::Null), form(&Value::Text("N".into())));
        assert_eq!(canonical_of(&[Value::Null], [1]), None);
    }
}
