//! Documents and keys as change-log values, and the schema of a collection.
//!
//! A collection becomes a table of two columns, both holding Extended JSON v2
//! text: `_id`, the primary key, as text (so that every sink can key on it:
//! MySQL cannot key a JSON column), and `document`, the whole document, as
//! JSON. Nothing of a document is dropped or guessed at: every BSON type has
//! an Extended JSON form, and canonical mode keeps every type distinct. An
//! ObjectId key reads `{"$oid":"65a1..."}`, a string key `"sku-1"` (quoted),
//! a number `42`.

use bson::{RawBson, RawDocument};
use cdc_core::event::{Column, DataType, SharedStr, TableName, TableSchema, Value};

use crate::config::JsonMode;
use crate::event::EventError;
use crate::json;

/// The key column's name.
pub const KEY_COLUMN: &str = "_id";
/// The document column's name.
pub const DOCUMENT_COLUMN: &str = "document";

/// The schema every collection has.
pub fn schema(table: &TableName) -> TableSchema {
    let column = |name: &str, data_type, nullable| Column {
        name: name.to_owned(),
        data_type,
        source_type: "bson".to_owned(),
        nullable,
    };
    let text = DataType::Text {
        max_chars: None,
        fixed: false,
    };
    TableSchema {
        table: table.clone(),
        columns: vec![
            column(KEY_COLUMN, text, false),
            column(DOCUMENT_COLUMN, DataType::Json, true),
        ],
        primary_key: vec![0],
    }
}

/// A document's `_id` as Extended JSON text.
pub fn key(key: &RawBson, mode: JsonMode) -> Result<Value, EventError> {
    let mut out = String::new();
    json::value(key.as_raw_bson_ref(), mode, &mut out)
        .map_err(|e| EventError::new(format!("documentKey._id: {e}")))?;
    Ok(Value::Text(SharedStr::from(out)))
}

/// A whole document as a JSON value.
pub fn document(document: &RawDocument, mode: JsonMode) -> Result<Value, EventError> {
    let mut out = String::with_capacity(document.as_bytes().len() + document.as_bytes().len() / 4);
    json::document(document, mode, &mut out)
        .map_err(|e| EventError::new(format!("document: {e}")))?;
    Ok(Value::Json(SharedStr::from(out)))
}

#[cfg(test)]
mod tests {
    use bson::{Bson, doc, oid::ObjectId, rawdoc};

    use super::*;

    fn text(value: Value) -> String {
        match value {
            Value::Json(text) | Value::Text(text) => text.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bson_type_keeps_its_value_in_canonical_json() {
        let id = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
        let doc = doc! {
            "_id": id,
            "int32": 7_i32,
            "int64": 7_i64,
            "double": 7.5,
            "decimal": "12.345".parse::<bson::Decimal128>().unwrap(),
            "date": bson::DateTime::from_millis(1_700_000_000_123),
            "bytes": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 255] },
            "nested": { "list": [1_i32, "two", null] },
            "ts": bson::Timestamp { time: 5, increment: 6 },
        };
        let raw = bson::RawDocumentBuf::from_document(&doc).unwrap();
        let canonical = text(document(&raw, JsonMode::Canonical).unwrap());
        let back: serde_json::Value = serde_json::from_str(&canonical).unwrap();
        assert_eq!(Bson::try_from(back).unwrap(), Bson::Document(doc));
        assert!(
            canonical.contains(r#""int64":{"$numberLong":"7"}"#),
            "{canonical}"
        );
    }

    #[test]
    fn relaxed_json_writes_plain_numbers() {
        let raw = rawdoc! { "n": 7_i64, "x": 1.5, "s": "é" };
        assert_eq!(
            text(document(&raw, JsonMode::Relaxed).unwrap()),
            r#"{"n":7,"x":1.5,"s":"é"}"#
        );
    }

    #[test]
    fn keys_of_any_type_become_json_text() {
        let id = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
        let cases = [
            (
                RawBson::ObjectId(id),
                r#"{"$oid":"65a1b2c3d4e5f60718293a4b"}"#,
            ),
            (RawBson::String("sku-1".into()), r#""sku-1""#),
            (RawBson::Int32(42), "42"),
            (
                RawBson::Document(rawdoc! { "a": 1_i32, "b": "x" }),
                r#"{"a":1,"b":"x"}"#,
            ),
        ];
        for (raw, expected) in cases {
            let key = key(&raw, JsonMode::Relaxed).unwrap();
            assert!(matches!(key, Value::Text(_)), "sinks key on text");
            assert_eq!(text(key), expected);
        }
    }

    #[test]
    fn the_schema_keys_on_id() {
        let schema = schema(&TableName::new("shop", "orders"));
        assert_eq!(
            schema
                .key_columns()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["_id"]
        );
        assert_eq!(schema.columns[1].name, DOCUMENT_COLUMN);
        assert!(schema.columns[1].nullable);
    }
}
