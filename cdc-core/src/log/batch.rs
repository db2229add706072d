//! Record batches: the unit of writing, checksumming and atomic visibility.
//!
//! Layout of one batch (all integers little endian, every batch starts and ends
//! at an 8-byte boundary of the segment file, so payloads land at the alignment
//! rkyv needs when the file is read into an aligned buffer):
//!
//! ```text
//! 0   u32 magic 0xCDC0BA7C
//! 4   u32 header crc32 of bytes 8..48
//! 8   u32 batch length in bytes (header + records + padding), multiple of 8
//! 12  u32 record count
//! 16  u64 base offset (offset of the first record)
//! 24  i64 append timestamp, microseconds since the Unix epoch
//! 32  u32 body crc32 of bytes 48..length
//! 36  u32 reserved (0)
//! 40  u64 reserved (0)
//! 48  records: u32 payload length, u32 reserved (0), the rkyv payload,
//!     zero padding to the next 8-byte boundary
//! ```
//!
//! Format version 1 framed each record with 16 bytes and padded it to 16; the
//! archives never need more than 8-byte alignment, so version 2 saves up to 16
//! bytes a record.

use std::ops::Range;
use std::sync::Arc;

use rkyv::ser::Serializer;
use rkyv::ser::sharing::Unshare;
use rkyv::util::AlignedVec;

use crate::codec::PAYLOAD_ALIGN;
use crate::error::{Error, Result};
use crate::event::{Record, SourcePosition, TableSchema};

/// Magic number at the start of every batch.
pub(crate) const BATCH_MAGIC: u32 = 0xCDC0_BA7C;
/// Bytes of the batch header.
pub(crate) const BATCH_HEADER_LEN: usize = 48;
/// Bytes in front of each record payload.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Largest batch (one append call) accepted, in bytes.
pub(crate) const MAX_BATCH_BYTES: usize = 1 << 30;

/// An aligned byte buffer as the log reads and writes it.
pub(crate) type Buf = AlignedVec<PAYLOAD_ALIGN>;

/// One append call encoded, waiting for its offsets and timestamp.
#[derive(Debug)]
pub(crate) struct EncodedBatch {
    /// The whole batch; header fields other than length, count and body crc are
    /// filled in by [`stamp`].
    pub bytes: Buf,
    /// Number of records.
    pub count: u32,
    /// Schema records of the batch: index within the batch and the schema.
    pub schemas: Vec<(u32, Arc<TableSchema>)>,
    /// Position of the last `Commit` or `Heartbeat` record of the batch.
    pub last_position: Option<SourcePosition>,
}

/// Rounds `n` up to the payload alignment.
pub(crate) fn align_up(n: usize) -> usize {
    n.div_ceil(PAYLOAD_ALIGN) * PAYLOAD_ALIGN
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Reads a little-endian u32 at `at`; `None` past the end.
pub(crate) fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Reads a little-endian u64 at `at`; `None` past the end.
pub(crate) fn get_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Encodes the records of one append call (tests and the fuzzing internals;
/// the log itself appends through [`encode_parts`]).
#[cfg(any(test, feature = "internals"))]
pub(crate) fn encode_batch(records: Vec<Record>) -> Result<EncodedBatch> {
    encode_parts(std::slice::from_ref(&records))
}

/// Encodes several record lists, in order, as one batch: one append, visible
/// whole or not at all. Borrows the records, so the caller chooses the thread
/// that frees them.
pub(crate) fn encode_parts(parts: &[Vec<Record>]) -> Result<EncodedBatch> {
    let total: usize = parts.iter().map(Vec::len).sum();
    let count = u32::try_from(total).map_err(|_| Error::BatchTooLarge {
        bytes: u64::MAX,
        max: MAX_BATCH_BYTES as u64,
    })?;
    let records = parts.iter().flatten();
    let mut bytes = Buf::with_capacity(BATCH_HEADER_LEN + total * 128);
    bytes.resize(BATCH_HEADER_LEN, 0);
    let mut schemas = Vec::new();
    let mut last_position = None;
    // One scratch arena for the whole batch (the high-level API takes and
    // shrinks the thread's arena per record), and no pointer-sharing map:
    // records hold no `Rc`/`Arc`, so every value is written once anyway.
    let mut bytes = rkyv::util::with_arena(|arena| -> Result<Buf> {
        let mut bytes = bytes;
        for (i, record) in records.into_iter().enumerate() {
            let header_at = bytes.len();
            bytes.resize(header_at + RECORD_HEADER_LEN, 0);
            // Serialize in place: rkyv positions are relative and the payload
            // starts 8-byte aligned within the batch, so no scratch buffer or
            // copy is needed.
            let mut serializer = Serializer::new(bytes, arena.acquire(), Unshare);
            rkyv::api::serialize_using::<_, rkyv::rancor::Error>(record, &mut serializer).map_err(
                |source| Error::Encode {
                    index: i as u64,
                    source,
                },
            )?;
            bytes = serializer.into_writer();
            let payload_len = bytes.len() - header_at - RECORD_HEADER_LEN;
            put_u32(&mut bytes, header_at, payload_len as u32);
            bytes.resize(align_up(bytes.len()), 0);
            if bytes.len() > MAX_BATCH_BYTES {
                return Err(Error::BatchTooLarge {
                    bytes: bytes.len() as u64,
                    max: MAX_BATCH_BYTES as u64,
                });
            }
            match record {
                Record::Schema(schema) => schemas.push((i as u32, Arc::new(schema.clone()))),
                Record::Commit(c) => last_position = Some(c.position.clone()),
                Record::Heartbeat(h) => last_position = Some(h.position.clone()),
                _ => {}
            }
        }
        Ok(bytes)
    })?;
    let len = bytes.len();
    put_u32(&mut bytes, 0, BATCH_MAGIC);
    put_u32(&mut bytes, 8, len as u32);
    put_u32(&mut bytes, 12, count);
    let body_crc = crc32fast::hash(&bytes[BATCH_HEADER_LEN..]);
    put_u32(&mut bytes, 32, body_crc);
    Ok(EncodedBatch {
        bytes,
        count,
        schemas,
        last_position,
    })
}

/// Fills in the base offset and timestamp of an encoded batch and seals its header.
pub(crate) fn stamp(bytes: &mut [u8], base_offset: u64, timestamp_micros: i64) {
    put_u64(bytes, 16, base_offset);
    put_u64(bytes, 24, timestamp_micros as u64);
    let crc = crc32fast::hash(&bytes[8..BATCH_HEADER_LEN]);
    put_u32(bytes, 4, crc);
}

/// The outcome of decoding the bytes at a batch boundary.
#[derive(Debug)]
pub(crate) enum BatchDecode<'a> {
    /// A complete batch whose checksums and structure are valid.
    Valid(BatchView<'a>),
    /// The bytes end before the batch does; at least `needed` bytes are required.
    Torn {
        /// Minimum bytes needed to decode further.
        needed: usize,
    },
    /// The bytes are not a valid batch.
    Corrupt {
        /// What check failed.
        reason: &'static str,
    },
}

/// A validated batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchView<'a> {
    /// Offset of the first record.
    pub base: u64,
    /// Number of records.
    pub count: u32,
    /// Append timestamp.
    pub timestamp: i64,
    /// The batch's bytes (header included).
    pub bytes: &'a [u8],
}

impl BatchView<'_> {
    /// Byte length of the batch.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Offset after the last record.
    pub fn end(&self) -> u64 {
        self.base + u64::from(self.count)
    }

    /// Payload ranges (relative to the batch start) in record order.
    pub fn payloads(&self) -> Payloads<'_> {
        Payloads {
            bytes: self.bytes,
            at: BATCH_HEADER_LEN,
        }
    }
}

/// Iterator over the payload ranges of a validated batch.
pub(crate) struct Payloads<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for Payloads<'_> {
    type Item = Range<usize>;
    fn next(&mut self) -> Option<Range<usize>> {
        let len = get_u32(self.bytes, self.at)? as usize;
        let start = self.at.checked_add(RECORD_HEADER_LEN)?;
        let end = start.checked_add(len)?;
        if end > self.bytes.len() {
            return None;
        }
        self.at = align_up(end);
        Some(start..end)
    }
}

/// Decodes the batch at the start of `bytes`, checking both checksums and the
/// record framing. Never panics.
pub(crate) fn decode_batch(bytes: &[u8]) -> BatchDecode<'_> {
    if bytes.len() < BATCH_HEADER_LEN {
        return BatchDecode::Torn {
            needed: BATCH_HEADER_LEN,
        };
    }
    let header = &bytes[..BATCH_HEADER_LEN];
    if get_u32(header, 0) != Some(BATCH_MAGIC) {
        return BatchDecode::Corrupt {
            reason: "batch magic number missing",
        };
    }
    if get_u32(header, 4) != Some(crc32fast::hash(&header[8..])) {
        return BatchDecode::Corrupt {
            reason: "batch header checksum mismatch",
        };
    }
    let len = get_u32(header, 8).unwrap_or(0) as usize;
    let count = get_u32(header, 12).unwrap_or(0);
    let base = get_u64(header, 16).unwrap_or(0);
    let timestamp = get_u64(header, 24).unwrap_or(0) as i64;
    if len < BATCH_HEADER_LEN || !len.is_multiple_of(PAYLOAD_ALIGN) {
        return BatchDecode::Corrupt {
            reason: "batch length is not a positive multiple of 8",
        };
    }
    if base.checked_add(u64::from(count)).is_none() {
        return BatchDecode::Corrupt {
            reason: "batch offsets overflow",
        };
    }
    if len > bytes.len() {
        return BatchDecode::Torn { needed: len };
    }
    let bytes = &bytes[..len];
    if get_u32(header, 32) != Some(crc32fast::hash(&bytes[BATCH_HEADER_LEN..])) {
        return BatchDecode::Corrupt {
            reason: "batch body checksum mismatch",
        };
    }
    let view = BatchView {
        base,
        count,
        timestamp,
        bytes,
    };
    // The framing must account for exactly `count` records and every byte.
    let mut seen = 0u32;
    let mut end = BATCH_HEADER_LEN;
    let mut payloads = view.payloads();
    for range in payloads.by_ref() {
        seen += 1;
        end = align_up(range.end);
        if seen > count {
            break;
        }
    }
    if seen != count || end != len {
        return BatchDecode::Corrupt {
            reason: "batch record framing does not match its header",
        };
    }
    BatchDecode::Valid(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::event::Heartbeat;

    fn heartbeat(lsn: u64) -> Record {
        Record::Heartbeat(Heartbeat {
            position: SourcePosition::Postgres { lsn },
            time_micros: 5,
        })
    }

    fn sealed(records: Vec<Record>) -> Buf {
        let mut batch = encode_batch(records).unwrap();
        stamp(&mut batch.bytes, 7, 99);
        batch.bytes
    }

    #[test]
    fn encoded_batches_decode_with_their_offsets_and_payloads() {
        let bytes = sealed(vec![heartbeat(1), heartbeat(2)]);
        let BatchDecode::Valid(view) = decode_batch(&bytes) else {
            panic!("not valid");
        };
        assert_eq!((view.base, view.count, view.timestamp), (7, 2, 99));
        let lsns: Vec<_> = view
            .payloads()
            .map(|r| {
                assert!(r.start.is_multiple_of(PAYLOAD_ALIGN));
                codec::decode(&bytes[r]).unwrap()
            })
            .collect();
        assert_eq!(lsns, vec![heartbeat(1), heartbeat(2)]);
    }

    #[test]
    fn a_truncated_batch_is_torn_and_a_flipped_bit_is_corrupt() {
        let bytes = sealed(vec![heartbeat(1)]);
        for cut in [0, 10, BATCH_HEADER_LEN, bytes.len() - 1] {
            assert!(
                matches!(decode_batch(&bytes[..cut]), BatchDecode::Torn { .. }),
                "cut {cut}"
            );
        }
        for at in 0..bytes.len() {
            let mut copy = bytes.clone();
            copy[at] ^= 0x10;
            assert!(
                !matches!(decode_batch(&copy), BatchDecode::Valid(_)),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn the_last_commit_position_and_schemas_are_collected() {
        let batch = encode_batch(vec![heartbeat(3), heartbeat(4)]).unwrap();
        assert_eq!(
            batch.last_position,
            Some(SourcePosition::Postgres { lsn: 4 })
        );
        assert!(batch.schemas.is_empty());
    }
}
