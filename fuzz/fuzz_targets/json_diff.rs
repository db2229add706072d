//! Fuzzes MySQL partial JSON updates: a before-image document (JSON text, up
//! to the first zero byte) and the binary diffs applied to it (the rest).
//! Any input must give a document or an error, never panic or recurse
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (before, diffs) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let before = String::from_utf8_lossy(before);
    let _ = cdc_mysql::rows::json_diff::apply(&before, diffs);
});
