//! Feeds arbitrary text to the decoder of PostgreSQL's text output, for every
//! builtin type, arrays of them (with either delimiter, nested), and enums.
//! The first byte picks the type. Any input must give a value or `None`,
//! never a panic.
#![no_main]

use cdc_postgres::ColumnType;
use libfuzzer_sys::fuzz_target;

/// Builtin scalar OIDs, then builtin array OIDs.
const OIDS: [u32; 24] = [
    16, 21, 23, 20, 1700, 700, 701, 25, 17, 1082, 1083, 1266, 1114, 1184, 1186, 2950, 114, 1000,
    1007, 1016, 1231, 1115, 1185, 2951,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let scalar = ColumnType::builtin(OIDS[usize::from(pick) % OIDS.len()]);
    let column = match pick >> 5 {
        // A box (`;`-delimited) array, or an array of arrays' elements.
        0 => scalar.map(|t| ColumnType::Array(Box::new(t), b';')),
        1 => Some(ColumnType::Enum(vec!["a".into(), "b c".into()])),
        2 => Some(ColumnType::Array(
            Box::new(ColumnType::Enum(vec!["x".into()])),
            b',',
        )),
        _ => scalar,
    };
    if let Some(column) = column {
        let _ = column.decode_text(&text);
    }
});
