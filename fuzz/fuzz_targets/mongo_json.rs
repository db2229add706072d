//! Differential: any BSON document the `bson` crate accepts must come out of
//! our direct Extended JSON writer exactly as the crate's own conversion
//! (`into_relaxed_extjson` / `into_canonical_extjson`, then serde_json)
//! writes it, in both modes. Documents with a repeated key are skipped for
//! the comparison (serde_json's map keeps one of them), not for the run.
#![no_main]

use std::collections::HashSet;

use bson::{Bson, Document, RawBsonRef, RawDocument};
use cdc_core::event::Value;
use cdc_mongo::{JsonMode, document};
use libfuzzer_sys::fuzz_target;

fn unique_keys(doc: &RawDocument) -> bool {
    let mut seen = HashSet::new();
    doc.iter().all(|element| match element {
        Ok((key, value)) => seen.insert(key) && unique_in(value),
        Err(_) => false,
    })
}

fn unique_in(value: RawBsonRef<'_>) -> bool {
    match value {
        RawBsonRef::Document(doc) => unique_keys(doc),
        RawBsonRef::Array(array) => array.into_iter().all(|v| v.is_ok_and(unique_in)),
        RawBsonRef::JavaScriptCodeWithScope(code) => unique_keys(code.scope),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = RawDocument::from_bytes(data) else {
        return;
    };
    for mode in [JsonMode::Relaxed, JsonMode::Canonical] {
        let ours = document::document(raw, mode);
        let Ok(parsed) = Document::try_from(raw) else {
            continue;
        };
        if !unique_keys(raw) {
            continue;
        }
        let bson = Bson::Document(parsed);
        let expected = match mode {
            JsonMode::Relaxed => bson.into_relaxed_extjson(),
            JsonMode::Canonical => bson.into_canonical_extjson(),
        }
        .to_string();
        match ours {
            Ok(Value::Json(text)) => assert_eq!(text.as_str(), expected, "{mode:?}"),
            other => panic!("the crate converted it, we did not: {other:?}"),
        }
    }
});
