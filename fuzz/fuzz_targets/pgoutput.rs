//! Feeds arbitrary bytes to the pgoutput decoder and the transaction assembler:
//! the input is split into length-prefixed messages so relations, begins,
//! changes and commits can combine. Any input must give a value or an error,
//! never a panic.
#![no_main]

use cdc_core::event::TableName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cdc_postgres::pgoutput::decode(data);
    let mut messages = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        messages.push(&tail[..len]);
        rest = &tail[len..];
    }
    let tables = [TableName::new("public", "t")];
    // A tiny part size so the splitting of large transactions is exercised too.
    let _ = cdc_postgres::decode_offline(&tables, 512, messages);
});
