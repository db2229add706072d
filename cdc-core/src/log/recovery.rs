//! Opening a log directory: find the segments, check the sealed ones, recover
//! the active one's tail, and rebuild what is derived (indexes, catalog).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::Buf;
use super::catalog::Catalog;
use super::fs::{FileSystem, FsFile, read_all, replace_file};
use super::index::SegmentIndex;
use super::segment::{
    FORMAT_VERSION, Flow, HeaderError, SEGMENT_HEADER_LEN, Segment, WalkEnd, archive_layout,
    check_header, offset_index_path, parse_file_name, segment_file_name, time_index_path, walk,
};
use crate::codec;
use crate::error::{Error, Result};
use crate::event::ArchivedRecord;

const SCAN_CHUNK: usize = 1 << 20;

/// What recovery found.
pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    pub catalog: Catalog,
    pub last_ts: i64,
}

/// Opens or creates the log in `dir`.
pub(crate) fn recover(fs: &dyn FileSystem, dir: &Path, interval: u32) -> Result<Recovered> {
    fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut bases = Vec::new();
    for path in fs.list(dir).map_err(|e| Error::io(dir, e))? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".tmp") {
            // A replacement that never got renamed into place.
            fs.remove(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        if let Some((base, "seg")) = parse_file_name(&path) {
            bases.push(base);
        }
    }
    bases.sort_unstable();

    // A crash while creating a segment can leave a file shorter than its header,
    // holding nothing: drop it and continue with the previous segment.
    if let Some(&last) = bases.last() {
        let path = dir.join(segment_file_name(last));
        let file = fs.open(&path, false).map_err(|e| Error::io(&path, e))?;
        let len = file.size().map_err(|e| Error::io(&path, e))?;
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        let n = super::fs::read_full(&*file, &mut header, 0).map_err(|e| Error::io(&path, e))?;
        // A header-sized file with a bad header is a creation whose header write
        // never reached the disk; it cannot hold any batch.
        let unfinished = len < SEGMENT_HEADER_LEN
            || (len == SEGMENT_HEADER_LEN && check_header(&header[..n], last).is_err());
        if unfinished && bases.len() > 1 {
            tracing::warn!(path = %path.display(), "removing a segment whose creation was interrupted");
            fs.remove(&path).map_err(|e| Error::io(&path, e))?;
            bases.pop();
        }
    }

    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len().max(1));
    for (i, &base) in bases.iter().enumerate() {
        let active = i + 1 == bases.len();
        let segment = if active {
            open_active(fs, dir, base, interval)?
        } else {
            open_sealed(fs, dir, base, interval)?
        };
        if let Some(prev) = segments.last() {
            let expected = prev.index().next;
            if base != expected {
                return Err(Error::corrupt(
                    &segment.path,
                    0,
                    format!(
                        "segment starts at offset {base} but the previous one ends at {expected}"
                    ),
                ));
            }
        }
        segments.push(Arc::new(segment));
    }
    if segments.is_empty() {
        segments.push(Arc::new(
            Segment::create(fs, dir, 0).map_err(|e| Error::io(dir, e))?,
        ));
    }
    // Index files of removed segments are leftovers of interrupted retention.
    for path in fs.list(dir).map_err(|e| Error::io(dir, e))? {
        if let Some((base, "index" | "timeindex")) = parse_file_name(&path)
            && base < segments[0].base
        {
            fs.remove(&path).map_err(|e| Error::io(&path, e))?;
        }
    }

    let start = segments[0].base;
    let end = segments.last().map(|s| s.index().next).unwrap_or(0);
    let mut catalog = Catalog::load(fs, dir)?;
    let mut scan_from = catalog.covered_until.max(start);
    if catalog.covered_until > end {
        // The tail the catalog described was lost (acknowledged without fsync):
        // forget what it said about it and recompute the last position.
        for list in catalog.schemas.values_mut() {
            list.retain(|(o, _)| *o < end);
        }
        catalog.last_position = None;
        scan_from = start;
    }
    for segment in &segments {
        collect_metadata(segment, scan_from, &mut catalog)?;
    }
    catalog.covered_until = end;
    let last_ts = segments
        .iter()
        .rev()
        .find_map(|s| s.index().first_ts.map(|_| s.index().last_ts))
        .unwrap_or(i64::MIN);
    Ok(Recovered {
        segments,
        catalog,
        last_ts,
    })
}

fn open_file(fs: &dyn FileSystem, path: &Path) -> Result<(Arc<dyn FsFile>, u64)> {
    let file = fs.open(path, false).map_err(|e| Error::io(path, e))?;
    let len = file.size().map_err(|e| Error::io(path, e))?;
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    let n = super::fs::read_full(&*file, &mut header, 0).map_err(|e| Error::io(path, e))?;
    let base = parse_file_name(path).map(|(b, _)| b).unwrap_or(0);
    check_header(&header[..n], base).map_err(|e| match e {
        HeaderError::Damaged(reason) => Error::corrupt(path, 0, reason),
        HeaderError::Unsupported { version, layout } => Error::UnsupportedFormat {
            path: path.into(),
            version,
            layout,
            expected_version: FORMAT_VERSION,
            expected_layout: archive_layout(),
        },
    })?;
    Ok((file, len))
}

/// Scans batches from the header to `len`, building the index.
fn scan(
    file: &dyn FsFile,
    path: &Path,
    base: u64,
    len: u64,
    interval: u32,
) -> Result<(SegmentIndex, WalkEnd)> {
    let mut index = SegmentIndex::empty(base, SEGMENT_HEADER_LEN);
    let mut gap = None;
    let end = walk(
        file,
        SEGMENT_HEADER_LEN,
        len,
        SCAN_CHUNK,
        |pos, _, _, view| {
            if view.base != index.next {
                gap = Some(pos);
                return Flow::Stop;
            }
            index.add_batch(
                pos,
                view.base,
                view.end(),
                view.timestamp,
                view.len() as u64,
                interval,
            );
            Flow::Continue
        },
    )
    .map_err(|e| Error::io(path, e))?;
    let end = match gap {
        Some(pos) => WalkEnd::Corrupt {
            pos,
            reason: "batch offset does not follow the previous batch",
        },
        None => end,
    };
    Ok((index, end))
}

fn open_sealed(fs: &dyn FileSystem, dir: &Path, base: u64, interval: u32) -> Result<Segment> {
    let path = dir.join(segment_file_name(base));
    let (file, len) = open_file(fs, &path)?;
    let o_path = offset_index_path(dir, base);
    let t_path = time_index_path(dir, base);
    let loaded = match (read_all(fs, &o_path), read_all(fs, &t_path)) {
        (Ok(o), Ok(t)) => SegmentIndex::from_files(base, len, &o, &t),
        _ => None,
    };
    let index = match loaded {
        Some(index) => index,
        None => {
            tracing::info!(path = %path.display(), "rebuilding the index of a sealed segment");
            let (index, end) = scan(&*file, &path, base, len, interval)?;
            match end {
                WalkEnd::Done { .. } => {}
                WalkEnd::Torn { pos } => {
                    return Err(Error::corrupt(
                        &path,
                        pos,
                        "sealed segment ends inside a batch",
                    ));
                }
                WalkEnd::Corrupt { pos, reason } => return Err(Error::corrupt(&path, pos, reason)),
            }
            write_indexes(fs, &o_path, &t_path, base, &index)?;
            index
        }
    };
    Ok(Segment::new(base, path, file, index))
}

fn write_indexes(
    fs: &dyn FileSystem,
    o_path: &PathBuf,
    t_path: &PathBuf,
    base: u64,
    index: &SegmentIndex,
) -> Result<()> {
    replace_file(fs, o_path, &index.to_file(base, false)).map_err(|e| Error::io(o_path, e))?;
    replace_file(fs, t_path, &index.to_file(base, true)).map_err(|e| Error::io(t_path, e))
}

fn open_active(fs: &dyn FileSystem, dir: &Path, base: u64, interval: u32) -> Result<Segment> {
    let path = dir.join(segment_file_name(base));
    let file = fs.open(&path, false).map_err(|e| Error::io(&path, e))?;
    let len = file.size().map_err(|e| Error::io(&path, e))?;
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    let n = super::fs::read_full(&*file, &mut header, 0).map_err(|e| Error::io(&path, e))?;
    if len < SEGMENT_HEADER_LEN
        || (len == SEGMENT_HEADER_LEN && check_header(&header[..n], base).is_err())
    {
        // The only segment, and its creation was interrupted: start it again.
        drop(file);
        return Segment::create(fs, dir, base).map_err(|e| Error::io(&path, e));
    }
    let (file, len) = open_file(fs, &path)?;
    let (index, end) = scan(&*file, &path, base, len, interval)?;
    let cut = match end {
        WalkEnd::Done { pos } => (pos < len).then_some((pos, "trailing bytes")),
        WalkEnd::Torn { pos } => Some((pos, "torn batch")),
        WalkEnd::Corrupt { pos, reason } => Some((pos, reason)),
    };
    if let Some((pos, reason)) = cut {
        // Only the unacknowledged tail can be torn: every acknowledged batch was
        // fsynced before the ones after it were acknowledged.
        tracing::warn!(path = %path.display(), pos, dropped_bytes = len - pos, reason, "truncating the torn tail of the active segment");
        file.set_len(pos).map_err(|e| Error::io(&path, e))?;
        file.sync_data().map_err(|e| Error::io(&path, e))?;
    }
    // Index files of the active segment are stale if a crash hit between
    // sealing it and creating the next segment; they are rewritten at roll.
    let _ = fs.remove(&offset_index_path(dir, base));
    let _ = fs.remove(&time_index_path(dir, base));
    Ok(Segment::new(base, path, file, index))
}

/// Adds the schema records and last source position at offsets `>= from` of
/// `segment` to the catalog.
fn collect_metadata(segment: &Segment, from: u64, catalog: &mut Catalog) -> Result<()> {
    let (pos, len, next) = {
        let idx = segment.index();
        (
            idx.position_for_offset(from, SEGMENT_HEADER_LEN),
            idx.len,
            idx.next,
        )
    };
    if next <= from {
        return Ok(());
    }
    let mut failure = None;
    let end = walk(&*segment.file, pos, len, SCAN_CHUNK, |_, buf, at, view| {
        for (i, range) in view.payloads().enumerate() {
            let offset = view.base + i as u64;
            if offset < from {
                continue;
            }
            let bytes: &Buf = buf;
            let payload = &bytes[at + range.start..at + range.end];
            let archived = match codec::access(payload) {
                Ok(a) => a,
                Err(source) => {
                    failure = Some(Error::Payload { offset, source });
                    return Flow::Stop;
                }
            };
            match archived {
                ArchivedRecord::Schema(schema) => {
                    match rkyv::deserialize::<_, rkyv::rancor::Error>(schema) {
                        Ok(schema) => catalog.insert(offset, Arc::new(schema)),
                        Err(_) => {
                            failure = Some(Error::corrupt(
                                &segment.path,
                                0,
                                format!("schema record at offset {offset} does not deserialize"),
                            ));
                            return Flow::Stop;
                        }
                    }
                }
                ArchivedRecord::Commit(c) => {
                    catalog.last_position =
                        rkyv::deserialize::<_, rkyv::rancor::Error>(&c.position).ok();
                }
                ArchivedRecord::Heartbeat(h) => {
                    catalog.last_position =
                        rkyv::deserialize::<_, rkyv::rancor::Error>(&h.position).ok();
                }
                _ => {}
            }
        }
        Flow::Continue
    })
    .map_err(|e| Error::io(&segment.path, e))?;
    if let Some(e) = failure {
        return Err(e);
    }
    match end {
        WalkEnd::Done { .. } => Ok(()),
        WalkEnd::Torn { pos } => Err(Error::corrupt(
            &segment.path,
            pos,
            "segment ends inside a batch",
        )),
        WalkEnd::Corrupt { pos, reason } => Err(Error::corrupt(&segment.path, pos, reason)),
    }
}
