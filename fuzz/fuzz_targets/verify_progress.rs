//! Parses a verification progress file (the report so far, with key values
//! of every kind) of arbitrary bytes. Parsing may fail; it must never panic,
//! and what parses writes back to text that parses and writes the same again.
#![no_main]

use cdc_core::verify::VerifyReport;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = serde_json::from_slice::<VerifyReport>(data) {
        let written = serde_json::to_vec(&report).expect("report serializes");
        let again: VerifyReport = serde_json::from_slice(&written).expect("written report parses");
        let rewritten = serde_json::to_vec(&again).expect("report serializes");
        assert_eq!(rewritten, written);
        let _ = again.is_equal();
    }
});
