//! Reading: ranges of records, time lookups, and entries that borrow the
//! aligned read buffer instead of copying each payload.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use super::Shared;
use super::batch::Buf;
use super::segment::{Flow, SEGMENT_HEADER_LEN, Segment, WalkEnd, walk};
use crate::codec;
use crate::error::{Error, Result};
use crate::event::{ArchivedRecord, Record};

/// Largest read buffer (a batch larger than this is read whole).
const MAX_CHUNK: usize = 1 << 20;

/// One durable record of the log, read zero-copy.
#[derive(Clone)]
pub struct LogEntry {
    /// The record's offset.
    pub offset: u64,
    /// When the record was appended, microseconds since the Unix epoch.
    pub timestamp_micros: i64,
    buf: Arc<Buf>,
    range: Range<usize>,
}

impl fmt::Debug for LogEntry {
    // Row values never go to logs, so the payload is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogEntry")
            .field("offset", &self.offset)
            .field("timestamp_micros", &self.timestamp_micros)
            .field("payload_len", &self.range.len())
            .finish()
    }
}

impl LogEntry {
    /// The archived record, validated, without copying.
    pub fn archived(&self) -> Result<&ArchivedRecord> {
        codec::access(self.payload()).map_err(|source| Error::Payload {
            offset: self.offset,
            source,
        })
    }

    /// An owned copy of the record.
    pub fn record(&self) -> Result<Record> {
        codec::decode(self.payload()).map_err(|source| Error::Payload {
            offset: self.offset,
            source,
        })
    }

    /// The raw payload bytes (8-byte aligned).
    pub fn payload(&self) -> &[u8] {
        self.buf.get(self.range.clone()).unwrap_or(&[])
    }
}

impl Shared {
    /// The segment holding `offset`, or the retention error.
    fn segment_for(&self, offset: u64) -> Result<Arc<Segment>> {
        let segments = self.segments();
        let i = segments.partition_point(|s| s.base <= offset);
        if i == 0 {
            return Err(Error::OffsetBehindRetention {
                requested: offset,
                oldest: segments.first().map(|s| s.base).unwrap_or(0),
            });
        }
        Ok(segments[i - 1].clone())
    }

    /// Reads durable records `[from, ..)`, at most `max`.
    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<LogEntry>> {
        let durable = self.durable.borrow().next;
        let start = self.start();
        if from < start {
            return Err(Error::OffsetBehindRetention {
                requested: from,
                oldest: start,
            });
        }
        if from >= durable || max == 0 {
            return Ok(Vec::new());
        }
        let want = max.min(usize::try_from(durable - from).unwrap_or(usize::MAX));
        let mut out = Vec::with_capacity(want.min(8192));
        let mut at = from;
        while out.len() < want && at < durable {
            let segment = self.segment_for(at)?;
            let (pos, limit, seg_next, avg) = {
                let idx = segment.index();
                let records = idx.next.saturating_sub(segment.base).max(1);
                let avg = (idx.len - SEGMENT_HEADER_LEN.min(idx.len)) / records;
                (
                    idx.position_for_offset(at, SEGMENT_HEADER_LEN),
                    idx.len,
                    idx.next,
                    usize::try_from(avg).unwrap_or(MAX_CHUNK),
                )
            };
            if at >= seg_next {
                break;
            }
            // Size the read from the segment's average record size, so a read of
            // a few records does not pull a megabyte from the page cache.
            let chunk = (want - out.len())
                .saturating_mul(avg.max(32))
                .saturating_add(64 << 10)
                .clamp(4096, MAX_CHUNK);
            let mut gap = None;
            let end = walk(
                &*segment.file,
                pos,
                limit,
                chunk,
                |pos, buf, start, view| {
                    if view.end() <= at {
                        return Flow::Continue;
                    }
                    if view.base > at {
                        gap = Some(pos);
                        return Flow::Stop;
                    }
                    for (i, range) in view.payloads().enumerate() {
                        let offset = view.base + i as u64;
                        if offset < at {
                            continue;
                        }
                        if out.len() >= want || offset >= durable {
                            return Flow::Stop;
                        }
                        out.push(LogEntry {
                            offset,
                            timestamp_micros: view.timestamp,
                            buf: buf.clone(),
                            range: start + range.start..start + range.end,
                        });
                        at = offset + 1;
                    }
                    if out.len() >= want {
                        Flow::Stop
                    } else {
                        Flow::Continue
                    }
                },
            )
            .map_err(|e| Error::io(&segment.path, e))?;
            if let Some(pos) = gap {
                return Err(Error::corrupt(
                    &segment.path,
                    pos,
                    format!("offset {at} is missing from its segment"),
                ));
            }
            match end {
                WalkEnd::Done { .. } => {
                    if out.len() < want && at < seg_next.min(durable) {
                        return Err(Error::corrupt(
                            &segment.path,
                            limit,
                            format!("segment ends before offset {at}"),
                        ));
                    }
                }
                WalkEnd::Torn { pos } => {
                    return Err(Error::corrupt(&segment.path, pos, "batch is torn"));
                }
                WalkEnd::Corrupt { pos, reason } => {
                    return Err(Error::corrupt(&segment.path, pos, reason));
                }
            }
        }
        Ok(out)
    }

    /// First durable offset stamped at or after `time_micros`, or the durable end.
    pub(crate) fn seek_time(&self, time_micros: i64) -> Result<u64> {
        let durable = self.durable.borrow().next;
        let segments: Vec<Arc<Segment>> = self.segments().clone();
        for segment in segments {
            let (pos, limit, last_ts, empty) = {
                let idx = segment.index();
                (
                    idx.position_for_time(time_micros, SEGMENT_HEADER_LEN),
                    idx.len,
                    idx.last_ts,
                    idx.first_ts.is_none(),
                )
            };
            if empty || last_ts < time_micros {
                continue;
            }
            let mut found = None;
            let end = walk(&*segment.file, pos, limit, 64 << 10, |_, _, _, view| {
                if view.timestamp >= time_micros {
                    found = Some(view.base);
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            })
            .map_err(|e| Error::io(&segment.path, e))?;
            if let Some(offset) = found {
                return Ok(offset.min(durable));
            }
            match end {
                WalkEnd::Done { .. } => {}
                WalkEnd::Torn { pos } => {
                    return Err(Error::corrupt(&segment.path, pos, "batch is torn"));
                }
                WalkEnd::Corrupt { pos, reason } => {
                    return Err(Error::corrupt(&segment.path, pos, reason));
                }
            }
        }
        Ok(durable)
    }
}
