//! Record payload validation must reject any bytes that are not an archive, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = cdc_core::codec::decode(data) {
        // Whatever validated must re-encode and decode to the same record.
        let bytes = cdc_core::codec::encode(&record).expect("valid records encode");
        let again = cdc_core::codec::decode(&bytes).expect("encoded records decode");
        assert_eq!(format!("{record:?}"), format!("{again:?}"));
    }
});
