//! Record payload encoding: rkyv archives, validated on every read.
//!
//! Archived data must be read from a buffer aligned to [`PAYLOAD_ALIGN`]; the log
//! lays payloads out at that alignment so reads are zero-copy. [`decode`] copies a
//! misaligned payload into an aligned buffer first, so any byte slice is safe to
//! hand it.

use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;

use crate::event::{ArchivedRecord, ArchivedTableSchema, ArchivedValue, Record};

/// Alignment, in bytes, that an archived record payload needs to be read in place.
pub const PAYLOAD_ALIGN: usize = 8;

// No archived type of the event model needs more (the widest fields are 8-byte
// integers), which is what lets the log pack records at 8-byte boundaries.
const _: () = assert!(
    align_of::<ArchivedRecord>() <= PAYLOAD_ALIGN
        && align_of::<ArchivedValue>() <= PAYLOAD_ALIGN
        && align_of::<ArchivedTableSchema>() <= PAYLOAD_ALIGN
);

/// A payload that failed validation: wrong length, bad pointers or bad enum tags.
#[derive(Debug, thiserror::Error)]
#[error("record payload failed validation: {source}")]
pub struct PayloadError {
    #[source]
    source: RkyvError,
}

/// Serializes a record into an aligned buffer.
pub fn encode(record: &Record) -> Result<AlignedVec<PAYLOAD_ALIGN>, PayloadError> {
    encode_into(record, AlignedVec::new())
}

/// Serializes a record, appending to `out` (which is cleared first).
pub fn encode_into(
    record: &Record,
    out: AlignedVec<PAYLOAD_ALIGN>,
) -> Result<AlignedVec<PAYLOAD_ALIGN>, PayloadError> {
    let mut out = out;
    out.clear();
    rkyv::api::high::to_bytes_in::<_, RkyvError>(record, out)
        .map_err(|source| PayloadError { source })
}

/// Validates an aligned payload and returns the archived record in place.
///
/// Fails (without panicking) if `bytes` is misaligned or not a valid archive.
pub fn access(bytes: &[u8]) -> Result<&ArchivedRecord, PayloadError> {
    rkyv::access::<ArchivedRecord, RkyvError>(bytes).map_err(|source| PayloadError { source })
}

/// Validates a payload at any alignment and deserializes it into an owned record.
pub fn decode(bytes: &[u8]) -> Result<Record, PayloadError> {
    let mut aligned;
    let bytes = if (bytes.as_ptr() as usize).is_multiple_of(PAYLOAD_ALIGN) {
        bytes
    } else {
        aligned = AlignedVec::<PAYLOAD_ALIGN>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        &aligned[..]
    };
    let archived = access(bytes)?;
    rkyv::deserialize::<Record, RkyvError>(archived).map_err(|source| PayloadError { source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Change, ChangeKind, Decimal, SourcePosition, TableName, Value};

    fn sample() -> Record {
        Record::Change(Change {
            table: TableName::new("public", "orders"),
            kind: ChangeKind::Update,
            before: Some(vec![Value::Int(1), Value::Null]),
            after: Some(vec![
                Value::Int(1),
                Value::Unchanged,
                Value::UInt(u64::MAX),
                Value::Decimal(Decimal::parse("-0.000100").unwrap()),
                Value::Array(vec![Value::Array(vec![
                    Value::Text("é".into()),
                    Value::Null,
                ])]),
                Value::Uuid([7; 16]),
                Value::TimeTz {
                    micros: -5,
                    offset_secs: 3600,
                },
                Value::TimestampTz(Value::INFINITY_MICROS),
                Value::Interval {
                    months: -1,
                    days: 2,
                    micros: 3,
                },
                // Text kept inline and text on the heap (over 23 bytes).
                Value::Text("customer-42".into()),
                Value::Text("a text value longer than twenty-three bytes".into()),
                Value::Json(
                    r#"{"k": [1, 2.5, "three"], "long": "enough to leave the value"}"#.into(),
                ),
                Value::Enum("small".into()),
                Value::Set(vec![
                    "a".into(),
                    "a label well over twenty-three bytes".into(),
                ]),
                Value::Decimal(Decimal::parse("-123456789012345678901234567890.5").unwrap()),
            ]),
            position: SourcePosition::Postgres { lsn: 0x16B_3748 },
            txid: Some("731".into()),
            commit_time_micros: 1_700_000_000_000_001,
        })
    }

    #[test]
    fn records_round_trip_through_the_archive() {
        let record = sample();
        let bytes = encode(&record).unwrap();
        assert_eq!(decode(&bytes).unwrap(), record);
    }

    #[test]
    fn an_archived_value_takes_16_bytes() {
        // 24 before format version 2 boxed the three 16-byte variants; the log
        // holds one per column per row image.
        assert_eq!(size_of::<ArchivedValue>(), 16);
    }

    #[test]
    fn misaligned_payloads_still_decode() {
        let record = sample();
        let bytes = encode(&record).unwrap();
        let mut shifted = AlignedVec::<PAYLOAD_ALIGN>::new();
        shifted.push(0);
        shifted.extend_from_slice(&bytes);
        assert_eq!(decode(&shifted[1..]).unwrap(), record);
    }

    #[test]
    fn truncated_or_garbled_payloads_are_rejected() {
        let bytes = encode(&sample()).unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // The root object sits at the end of the buffer and starts with its tag.
        let mut garbled = bytes.clone();
        let tag = garbled.len() - std::mem::size_of::<ArchivedRecord>();
        garbled[tag] = 0xEE;
        assert!(decode(&garbled).is_err());
    }
}
