//! Placeholder, replaced by the owning crate's fuzz target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|_data: &[u8]| {});
