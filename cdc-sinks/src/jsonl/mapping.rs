//! The Debezium change-event envelope, one JSON object per line:
//!
//! ```json
//! {"before":null,"after":{"id":1,"name":"a"},
//!  "source":{"connector":"cdc-sdk","db":"app","schema":"app","table":"items",
//!            "txId":"…","ts_ms":1700000000000,"ts_us":1700000000000000,
//!            "offset":42,"position":{…}},
//!  "op":"c","ts_ms":1700000000000}
//! ```
//!
//! `op` is `c`, `u`, `d`, `r` (snapshot read) or `t` (truncate, no row images).
//! Row values use the JSON forms of the event model (exact decimals as
//! strings, u64 as numbers, ISO temporal texts, base64 bytes, embedded JSON);
//! an unchanged value is Debezium's placeholder
//! `"__debezium_unavailable_value"`. The top-level `ts_ms` is the source commit
//! time (not the write time), so a replayed batch produces identical lines.

use cdc_core::event::{Change, ChangeKind, Value};
use serde_json::{Map, Value as Json, json};

use crate::json::to_json;
use crate::mapping::TargetTable;
use crate::mode::op_letter;

/// Debezium's marker for a value the source did not send.
pub(crate) const UNAVAILABLE: &str = "__debezium_unavailable_value";

fn image(table: &TargetTable, row: Option<&Vec<Value>>) -> Json {
    let Some(row) = row else {
        return Json::Null;
    };
    let mut m = Map::with_capacity(table.columns.len());
    for c in &table.columns {
        let v = row.get(c.source_index).unwrap_or(&Value::Null);
        let j = match v {
            Value::Unchanged => Json::String(UNAVAILABLE.into()),
            v => to_json(v),
        };
        m.insert(c.name.clone(), j);
    }
    Json::Object(m)
}

/// One envelope line (without the newline).
pub(crate) fn envelope(table: &TargetTable, offset: u64, change: &Change) -> String {
    let ts_ms = change.commit_time_micros.div_euclid(1000);
    let (before, after) = match change.kind {
        ChangeKind::Truncate => (None, None),
        _ => (change.before.as_ref(), change.after.as_ref()),
    };
    json!({
        "before": image(table, before),
        "after": image(table, after),
        "source": {
            "connector": "cdc-sdk",
            "db": change.table.schema,
            "schema": change.table.schema,
            "table": table.name,
            "txId": change.txid,
            "ts_ms": ts_ms,
            "ts_us": change.commit_time_micros,
            "offset": offset,
            "position": serde_json::to_value(&change.position).unwrap_or(Json::Null),
        },
        "op": op_letter(change.kind),
        "ts_ms": ts_ms,
    })
    .to_string()
}
