//! Feeds arbitrary bytes, cut into BSON documents by their length prefixes,
//! to the change-event decoder and the transaction assembler (which turns
//! documents and keys into Extended JSON). The first byte picks the JSON mode
//! and a small transaction chunk size. Any input must give events, batches or
//! errors, never a panic.
#![no_main]

use cdc_core::event::{SourcePosition, TableName};
use cdc_mongo::{Assembler, JsonMode, event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let json = if pick & 1 == 0 {
        JsonMode::Relaxed
    } else {
        JsonMode::Canonical
    };
    let tables = [TableName::new("shop", "orders"), TableName::new("a", "b")];
    let mut assembler = Assembler::new(&tables, json, 1024 + usize::from(pick) * 16, SourcePosition::None);
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let take = len.clamp(4, rest.len());
        let (doc, tail) = rest.split_at(take);
        rest = tail;
        if let Ok(decoded) = event::decode(doc) {
            let _ = assembler.push(decoded);
        }
    }
    let token = bson::rawdoc! { "_data": "8265A1B2C3000000012B" };
    let _ = assembler.quiet(Some(&token), true, 0);
});
