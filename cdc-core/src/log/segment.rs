//! Segment files: naming, the header, and walking the batches of a file.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::batch::{BatchDecode, BatchView, Buf, decode_batch, get_u32, get_u64};
use super::fs::{FileSystem, FsFile, read_full};
use super::index::SegmentIndex;

/// Magic bytes at the start of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CDCLOG\0\x01";
/// On-disk format version written in every segment header. Version 2 frames
/// records with 8 bytes instead of 16 and archives wide values out of line.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// Bytes of the segment header; batches start right after it.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 32;

/// File name of the segment with base offset `base`.
pub(crate) fn segment_file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// Path of a segment's offset index.
pub(crate) fn offset_index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// Path of a segment's time index.
pub(crate) fn time_index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

/// The base offset in a segment-family file name (`.seg`, `.index`, `.timeindex`).
pub(crate) fn parse_file_name(path: &Path) -> Option<(u64, &str)> {
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// The archive layout this build's rkyv writes and reads: byte 0 the byte order
/// (1 little, 2 big endian), byte 1 the alignment (1 aligned, 2 unaligned),
/// byte 2 the width of archived `usize` and relative pointers in bytes.
///
/// rkyv takes these from its Cargo features, which Cargo unifies across the
/// whole build, so another crate of the host can change them; a segment written
/// under one layout must never be read under another.
pub(crate) fn archive_layout() -> u32 {
    let little = rkyv::to_bytes::<rkyv::rancor::Error>(&0x0102_0304u32)
        .map(|b| b.first() == Some(&4))
        .unwrap_or(true);
    let order: u32 = if little { 1 } else { 2 };
    let alignment: u32 = if align_of::<rkyv::Archived<u64>>() == 1 {
        2
    } else {
        1
    };
    let width = size_of::<rkyv::Archived<usize>>() as u32;
    order | alignment << 8 | width << 16
}

/// Encodes a segment header.
pub(crate) fn encode_header(base: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&archive_layout().to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// The header is damaged or incomplete.
    Damaged(&'static str),
    /// An intact header of a format this build does not read.
    Unsupported {
        /// Format version found.
        version: u32,
        /// Archive layout found (see [`archive_layout`]).
        layout: u32,
    },
}

/// Checks a segment header; the error says what is wrong.
pub(crate) fn check_header(bytes: &[u8], base: u64) -> Result<(), HeaderError> {
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        return Err(HeaderError::Damaged("segment header is incomplete"));
    }
    if bytes[..8] != SEGMENT_MAGIC {
        return Err(HeaderError::Damaged("segment magic number missing"));
    }
    if get_u32(bytes, 24) != Some(crc32fast::hash(&bytes[..24])) {
        return Err(HeaderError::Damaged("segment header checksum mismatch"));
    }
    let version = get_u32(bytes, 8).unwrap_or(0);
    let layout = get_u32(bytes, 12).unwrap_or(0);
    if version != FORMAT_VERSION || layout != archive_layout() {
        return Err(HeaderError::Unsupported { version, layout });
    }
    if get_u64(bytes, 16) != Some(base) {
        return Err(HeaderError::Damaged(
            "segment header base offset does not match the file name",
        ));
    }
    Ok(())
}

/// One segment file and what is known about its durable contents.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset of the first record.
    pub base: u64,
    /// Path of the `.seg` file.
    pub path: PathBuf,
    /// The open file, shared by the writer and readers.
    pub file: Arc<dyn FsFile>,
    index: RwLock<SegmentIndex>,
}

impl Segment {
    /// A segment with a known index.
    pub fn new(base: u64, path: PathBuf, file: Arc<dyn FsFile>, index: SegmentIndex) -> Self {
        Self {
            base,
            path,
            file,
            index: RwLock::new(index),
        }
    }

    /// Reads the index (poisoning is ignored: the index is only ever replaced whole).
    pub fn index(&self) -> RwLockReadGuard<'_, SegmentIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the index.
    pub fn index_mut(&self) -> RwLockWriteGuard<'_, SegmentIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates an empty segment file with its header, durably.
    pub fn create(fs: &dyn FileSystem, dir: &Path, base: u64) -> io::Result<Segment> {
        let path = dir.join(segment_file_name(base));
        let file = fs.open(&path, true)?;
        file.set_len(0)?;
        file.write_all_at(&encode_header(base), 0)?;
        file.sync_data()?;
        fs.sync_dir(dir)?;
        Ok(Segment::new(
            base,
            path,
            file,
            SegmentIndex::empty(base, SEGMENT_HEADER_LEN),
        ))
    }
}

/// How a walk over a segment's batches ended.
#[derive(Debug)]
pub(crate) enum WalkEnd {
    /// Reached `limit` at a batch boundary, or the visitor stopped.
    Done {
        /// Position after the last visited batch.
        pos: u64,
    },
    /// The bytes at `pos` are a torn batch (the file ends inside it).
    Torn {
        /// Position of the torn batch.
        pos: u64,
    },
    /// The bytes at `pos` are not a valid batch.
    Corrupt {
        /// Position of the damage.
        pos: u64,
        /// What check failed.
        reason: &'static str,
    },
}

/// Whether a walk continues after a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Visit the next batch.
    Continue,
    /// Stop after this batch.
    Stop,
}

/// Walks the valid batches in `[pos, limit)` of `file`, reading `chunk` bytes at
/// a time into aligned buffers. The visitor gets each batch's file position, the
/// shared buffer it sits in and its start within that buffer. `pos` must be a
/// batch boundary (a multiple of 16), so payloads are aligned in the buffer.
pub(crate) fn walk(
    file: &dyn FsFile,
    mut pos: u64,
    limit: u64,
    chunk: usize,
    mut visit: impl FnMut(u64, &Arc<Buf>, usize, &BatchView<'_>) -> Flow,
) -> io::Result<WalkEnd> {
    let mut buf: Arc<Buf> = Arc::new(Buf::new());
    let mut want = chunk;
    loop {
        if pos >= limit {
            return Ok(WalkEnd::Done { pos });
        }
        let remaining = usize::try_from(limit - pos).unwrap_or(usize::MAX);
        let size = want.min(remaining);
        // Reuse the buffer when no entry handed out still holds it.
        let b = match Arc::get_mut(&mut buf) {
            Some(b) => b,
            None => {
                buf = Arc::new(Buf::with_capacity(size));
                Arc::get_mut(&mut buf).expect("a fresh Arc is unique")
            }
        };
        b.clear();
        b.resize(size, 0);
        let n = read_full(file, b, pos)?;
        b.resize(n, 0);
        let short = n < size;
        let mut at = 0usize;
        loop {
            match decode_batch(&buf[at..]) {
                BatchDecode::Valid(view) => {
                    let len = view.len();
                    let flow = visit(pos, &buf, at, &view);
                    pos += len as u64;
                    at += len;
                    if flow == Flow::Stop {
                        return Ok(WalkEnd::Done { pos });
                    }
                    if pos >= limit {
                        return Ok(WalkEnd::Done { pos });
                    }
                }
                BatchDecode::Torn { needed } => {
                    let available = buf.len() - at;
                    if at == 0 && (short || needed > remaining) {
                        return Ok(WalkEnd::Torn { pos });
                    }
                    if at == 0 && available == size {
                        // One batch larger than the chunk: read it whole.
                        want = needed;
                    } else {
                        want = chunk.max(needed);
                    }
                    break;
                }
                BatchDecode::Corrupt { reason } => return Ok(WalkEnd::Corrupt { pos, reason }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Heartbeat, Record, SourcePosition};
    use crate::log::batch::{encode_batch, stamp};
    use crate::log::fs::StdFs;

    fn segment_bytes(batches: usize) -> Vec<u8> {
        let mut out = encode_header(0).to_vec();
        let mut next = 0;
        for i in 0..batches {
            let records = (0..=i % 4)
                .map(|k| {
                    Record::Heartbeat(Heartbeat {
                        position: SourcePosition::Postgres { lsn: k as u64 },
                        time_micros: 0,
                    })
                })
                .collect();
            let mut batch = encode_batch(records).unwrap();
            stamp(&mut batch.bytes, next, i as i64);
            next += u64::from(batch.count);
            out.extend_from_slice(&batch.bytes);
        }
        out
    }

    #[test]
    fn walking_with_chunks_smaller_than_a_batch_visits_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_file_name(0));
        let bytes = segment_bytes(20);
        std::fs::write(&path, &bytes).unwrap();
        let file = StdFs.open(&path, false).unwrap();
        for chunk in [16, 100, 4096] {
            let mut seen = 0;
            let end = walk(
                &*file,
                SEGMENT_HEADER_LEN,
                bytes.len() as u64,
                chunk,
                |_, _, _, _| {
                    seen += 1;
                    Flow::Continue
                },
            )
            .unwrap();
            assert_eq!(seen, 20, "chunk {chunk}");
            assert!(matches!(end, WalkEnd::Done { pos } if pos == bytes.len() as u64));
        }
    }

    #[test]
    fn a_walk_reports_where_a_torn_or_corrupt_batch_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_file_name(0));
        let mut bytes = segment_bytes(3);
        let whole = bytes.len();
        bytes.truncate(whole - 8);
        std::fs::write(&path, &bytes).unwrap();
        let file = StdFs.open(&path, false).unwrap();
        let end = walk(
            &*file,
            SEGMENT_HEADER_LEN,
            whole as u64,
            4096,
            |_, _, _, _| Flow::Continue,
        )
        .unwrap();
        assert!(matches!(end, WalkEnd::Torn { .. }), "{end:?}");
        let mut bytes = segment_bytes(3);
        let last = bytes.len() - 20;
        bytes[last] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let end = walk(
            &*file,
            SEGMENT_HEADER_LEN,
            bytes.len() as u64,
            4096,
            |_, _, _, _| Flow::Continue,
        )
        .unwrap();
        assert!(matches!(end, WalkEnd::Corrupt { .. }), "{end:?}");
    }

    fn resealed(mut header: [u8; SEGMENT_HEADER_LEN as usize], at: usize, v: u32) -> Vec<u8> {
        header[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let crc = crc32fast::hash(&header[..24]);
        header[24..28].copy_from_slice(&crc.to_le_bytes());
        header.to_vec()
    }

    #[test]
    fn headers_of_another_version_or_archive_layout_are_unsupported_not_damaged() {
        let header = encode_header(42);
        let layout = archive_layout();
        assert_eq!(
            check_header(&resealed(header, 8, 1), 42),
            Err(HeaderError::Unsupported { version: 1, layout })
        );
        // An unaligned build (rkyv's `unaligned` feature) reading an aligned log.
        let unaligned = layout & !0xff00 | 2 << 8;
        assert_eq!(
            check_header(&resealed(header, 12, unaligned), 42),
            Err(HeaderError::Unsupported {
                version: FORMAT_VERSION,
                layout: unaligned
            })
        );
    }

    #[test]
    fn this_build_archives_little_endian_aligned_with_32_bit_pointers() {
        assert_eq!(archive_layout(), 1 | 1 << 8 | 4 << 16);
    }

    #[test]
    fn headers_are_checked_for_magic_checksum_and_base() {
        let header = encode_header(42);
        assert!(check_header(&header, 42).is_ok());
        assert!(check_header(&header, 41).is_err());
        assert!(check_header(&header[..20], 42).is_err());
        let mut bad = header;
        bad[3] ^= 1;
        assert!(matches!(
            check_header(&bad, 42),
            Err(HeaderError::Damaged(_))
        ));
        assert_eq!(
            parse_file_name(Path::new("/x/00000000000000000042.seg")),
            Some((42, "seg"))
        );
        assert_eq!(parse_file_name(Path::new("/x/42.seg")), None);
    }
}
