//! Parses a backfill progress file of arbitrary bytes with each source's chunk
//! key (PostgreSQL key text, MySQL values, MongoDB BSON). Parsing may fail; it
//! must never panic, and what parses writes back to text that parses and
//! writes the same again (compared as text: a NaN key is not equal to itself).
#![no_main]

use cdc_core::backfill::BackfillProgress;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<K>(data: &[u8])
where
    K: Serialize + DeserializeOwned,
{
    if let Ok(progress) = serde_json::from_slice::<BackfillProgress<K>>(data) {
        let written = serde_json::to_vec(&progress).expect("progress serializes");
        let again: BackfillProgress<K> =
            serde_json::from_slice(&written).expect("written progress parses");
        let rewritten = serde_json::to_vec(&again).expect("progress serializes");
        assert_eq!(rewritten, written);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<cdc_postgres::KeyCursor>(data);
    round_trip::<cdc_mysql::snapshot::ChunkKey>(data);
    round_trip::<cdc_mongo::ChunkKey>(data);
});
