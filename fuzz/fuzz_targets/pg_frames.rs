//! Feeds arbitrary bytes to the replication connection's message framing and
//! CopyData parser (XLogData, keepalives), as read from the server's socket.
//! Any input must give messages or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cdc_postgres::internals::parse_stream(data);
});
