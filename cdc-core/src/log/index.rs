//! Sparse offset and time indexes of one segment, kept in memory and written
//! beside a segment when it is sealed. Both are rebuildable from the segment.
//!
//! Index file layout (little endian):
//!
//! ```text
//! 0   [u8; 8] magic "CDCOIDX1" (offset index) or "CDCTIDX1" (time index)
//! 8   u32 format version (1)
//! 12  u32 entry count n
//! 16  u64 segment base offset
//! 24  u64 segment length in bytes
//! 32  u64 next offset after the segment
//! 40  i64 first timestamp
//! 48  i64 last timestamp
//! 56  n entries of (u64, u64): (offset, byte position) or (timestamp, byte position)
//! ..  u32 crc32 of everything before it
//! ```

use super::batch::{get_u32, get_u64};

pub(crate) const OFFSET_INDEX_MAGIC: [u8; 8] = *b"CDCOIDX1";
pub(crate) const TIME_INDEX_MAGIC: [u8; 8] = *b"CDCTIDX1";
const INDEX_VERSION: u32 = 1;
const INDEX_HEADER_LEN: usize = 56;

/// What is known about a segment's contents, durable part only.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentIndex {
    /// Durable length in bytes, header included.
    pub len: u64,
    /// Offset after the last durable record.
    pub next: u64,
    /// Timestamp of the first batch, if any.
    pub first_ts: Option<i64>,
    /// Timestamp of the last batch.
    pub last_ts: i64,
    /// Sparse (offset, position) entries, ascending.
    pub offsets: Vec<(u64, u64)>,
    /// Sparse (timestamp, position) entries, ascending.
    pub times: Vec<(i64, u64)>,
    /// Position of the last index entry.
    last_indexed: Option<u64>,
}

impl SegmentIndex {
    /// An empty segment's index.
    pub fn empty(base: u64, header_len: u64) -> Self {
        Self {
            len: header_len,
            next: base,
            ..Self::default()
        }
    }

    /// Accounts for a batch at `pos`, adding index entries every `interval` bytes.
    pub fn add_batch(&mut self, pos: u64, base: u64, end: u64, ts: i64, len: u64, interval: u32) {
        let due = match self.last_indexed {
            None => true,
            Some(last) => pos - last >= u64::from(interval),
        };
        if due {
            self.offsets.push((base, pos));
            self.times.push((ts, pos));
            self.last_indexed = Some(pos);
        }
        self.first_ts.get_or_insert(ts);
        self.last_ts = ts;
        self.len = pos + len;
        self.next = end;
    }

    /// Byte position to start scanning for `offset`.
    pub fn position_for_offset(&self, offset: u64, header_len: u64) -> u64 {
        let i = self.offsets.partition_point(|&(o, _)| o <= offset);
        if i == 0 {
            header_len
        } else {
            self.offsets[i - 1].1
        }
    }

    /// Byte position to start scanning for the first batch stamped at or after `ts`.
    pub fn position_for_time(&self, ts: i64, header_len: u64) -> u64 {
        let i = self.times.partition_point(|&(t, _)| t < ts);
        if i == 0 {
            header_len
        } else {
            self.times[i - 1].1
        }
    }

    /// Serializes the offset index (`time == false`) or the time index.
    pub fn to_file(&self, base: u64, time: bool) -> Vec<u8> {
        let entries: Vec<(u64, u64)> = if time {
            self.times.iter().map(|&(t, p)| (t as u64, p)).collect()
        } else {
            self.offsets.clone()
        };
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + entries.len() * 16 + 4);
        out.extend_from_slice(if time {
            &TIME_INDEX_MAGIC
        } else {
            &OFFSET_INDEX_MAGIC
        });
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.next.to_le_bytes());
        out.extend_from_slice(&self.first_ts.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&self.last_ts.to_le_bytes());
        for (a, b) in entries {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a pair of index files; `None` if either is damaged or does not
    /// describe the segment (`base`, `seg_len`), in which case it is rebuilt.
    pub fn from_files(base: u64, seg_len: u64, offsets: &[u8], times: &[u8]) -> Option<Self> {
        let (o_hdr, o_entries) = parse_file(offsets, &OFFSET_INDEX_MAGIC)?;
        let (t_hdr, t_entries) = parse_file(times, &TIME_INDEX_MAGIC)?;
        if o_hdr != t_hdr || o_hdr.0 != base || o_hdr.1 != seg_len || o_hdr.2 < base {
            return None;
        }
        let sorted = |v: &[(u64, u64)]| v.windows(2).all(|w| w[0].1 < w[1].1);
        if !sorted(&o_entries) || !sorted(&t_entries) {
            return None;
        }
        let in_range = |v: &[(u64, u64)]| v.iter().all(|&(_, p)| p < seg_len);
        if !in_range(&o_entries) || !in_range(&t_entries) {
            return None;
        }
        let first_ts = (o_hdr.2 > base).then_some(o_hdr.3);
        Some(Self {
            len: seg_len,
            next: o_hdr.2,
            first_ts,
            last_ts: o_hdr.4,
            last_indexed: o_entries.last().map(|&(_, p)| p),
            offsets: o_entries,
            times: t_entries.into_iter().map(|(t, p)| (t as i64, p)).collect(),
        })
    }
}

type IndexHeader = (u64, u64, u64, i64, i64);

fn parse_file(bytes: &[u8], magic: &[u8; 8]) -> Option<(IndexHeader, Vec<(u64, u64)>)> {
    if bytes.len() < INDEX_HEADER_LEN + 4 || bytes.get(..8)? != magic {
        return None;
    }
    let body = bytes.len() - 4;
    if get_u32(bytes, body)? != crc32fast::hash(&bytes[..body]) {
        return None;
    }
    if get_u32(bytes, 8)? != INDEX_VERSION {
        return None;
    }
    let count = get_u32(bytes, 12)? as usize;
    if count.checked_mul(16)?.checked_add(INDEX_HEADER_LEN)? != body {
        return None;
    }
    let header = (
        get_u64(bytes, 16)?,
        get_u64(bytes, 24)?,
        get_u64(bytes, 32)?,
        get_u64(bytes, 40)? as i64,
        get_u64(bytes, 48)? as i64,
    );
    let entries = (0..count)
        .map(|i| {
            let at = INDEX_HEADER_LEN + i * 16;
            Some((get_u64(bytes, at)?, get_u64(bytes, at + 8)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((header, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_files_round_trip_and_reject_damage() {
        let mut index = SegmentIndex::empty(10, 32);
        index.add_batch(32, 10, 12, 100, 64, 50);
        index.add_batch(96, 12, 13, 101, 64, 50);
        index.add_batch(160, 13, 20, 105, 64, 50);
        let o = index.to_file(10, false);
        let t = index.to_file(10, true);
        let back = SegmentIndex::from_files(10, 224, &o, &t).unwrap();
        assert_eq!(back.offsets, index.offsets);
        assert_eq!(back.times, index.times);
        assert_eq!(
            (back.next, back.first_ts, back.last_ts),
            (20, Some(100), 105)
        );
        assert!(SegmentIndex::from_files(10, 225, &o, &t).is_none());
        let mut bad = o.clone();
        bad[60] ^= 1;
        assert!(SegmentIndex::from_files(10, 224, &bad, &t).is_none());
        assert_eq!(back.position_for_offset(12, 32), 96);
        assert_eq!(back.position_for_time(105, 32), 96);
    }
}
