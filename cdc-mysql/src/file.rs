//! Offline binlog files: decoded into the same change stream as the live
//! source, for replaying archived binlogs, forensics, fuzzing and benchmarks.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cdc_core::event::{SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};

use crate::binlog::frame::FrameReader;
use crate::error::{Error, Result};
use crate::transaction::{DecodeStats, Decoder};

/// Decodes one binlog file image named `file_name` with `decoder`, pushing
/// whole transactions to `out`. Unknown event types are skipped and counted in
/// the decoder's stats. A torn last event (file still being written) ends the
/// file without error; the transaction it belongs to is not emitted.
pub fn decode_file(
    decoder: &mut Decoder,
    file_name: &str,
    bytes: &[u8],
    out: &mut Vec<SourceBatch>,
) -> Result<()> {
    decode_frames(decoder, file_name, FrameReader::new(bytes), out)
}

fn decode_frames(
    decoder: &mut Decoder,
    file_name: &str,
    reader: Result<FrameReader<'_>, crate::binlog::cursor::DecodeError>,
    out: &mut Vec<SourceBatch>,
) -> Result<()> {
    let mut reader = reader.map_err(|e| Error::malformed(file_name, 0, e.0))?;
    // A file read on its own starts with a fresh position; its own rotate
    // events say where the stream continues.
    if decoder.file() != file_name {
        decoder
            .set_position(file_name, 4, None)
            .map_err(|e| Error::malformed(file_name, 0, e))?;
    }
    loop {
        let at = reader.offset();
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) if e.0.starts_with("torn") => {
                tracing::warn!(
                    file = file_name,
                    offset = at,
                    "binlog file ends in a torn event"
                );
                break;
            }
            Err(e) => return Err(Error::malformed(file_name, at, e.0)),
        };
        decoder
            .feed(&frame.header, frame.body, out)
            .map_err(|e| Error::malformed(file_name, at, e.0))?;
    }
    decoder.abandon_transaction();
    Ok(())
}

/// Decodes binlog bytes without checksum verification (benchmarks; the fuzz
/// target verifies). Returns the batches and counters.
#[doc(hidden)]
pub fn decode_bytes(bytes: &[u8], verify: bool) -> Result<(Vec<SourceBatch>, DecodeStats)> {
    let mut decoder = Decoder::new(None, true);
    let mut out = Vec::new();
    let reader = FrameReader::new(bytes).map(|r| if verify { r } else { r.without_verification() });
    decode_frames(&mut decoder, "binlog.000001", reader, &mut out)?;
    Ok((out, decoder.stats()))
}

/// A [`Source`] over archived binlog files, read in the order given.
///
/// `start(Some(p))` skips every transaction at or before `p`; `next_batch`
/// returns `Ok(None)` after the last file. `acknowledge` has nothing to release.
#[derive(Debug)]
pub struct BinlogFiles {
    paths: Vec<PathBuf>,
    tables: Vec<TableName>,
    next_file: usize,
    decoder: Decoder,
    pending: VecDeque<SourceBatch>,
    resume_after: Option<SourcePosition>,
    started: bool,
}

impl BinlogFiles {
    /// Reads `paths` in order; `tables` empty means every table.
    pub fn new(paths: Vec<PathBuf>, tables: Vec<TableName>) -> Self {
        let filter = (!tables.is_empty()).then(|| tables.iter().cloned().collect::<HashSet<_>>());
        BinlogFiles {
            paths,
            tables,
            next_file: 0,
            decoder: Decoder::new(filter, true),
            pending: VecDeque::new(),
            resume_after: None,
            started: false,
        }
    }

    /// The binlog files of a directory (names ending in a numeric extension,
    /// e.g. `mysql-bin.000001`), sorted.
    pub fn in_dir(dir: &Path) -> Result<Vec<PathBuf>> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.len() >= 6 && e.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Counters of what was decoded so far (unknown events skipped, rows).
    pub fn stats(&self) -> DecodeStats {
        self.decoder.stats()
    }

    fn load_next(&mut self) -> Result<bool> {
        let Some(path) = self.paths.get(self.next_file) else {
            return Ok(false);
        };
        self.next_file += 1;
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut out = Vec::new();
        decode_file(&mut self.decoder, &name, &bytes, &mut out)?;
        for batch in out {
            let skip = self.resume_after.as_ref().is_some_and(|r| {
                batch
                    .position
                    .compare(r)
                    .is_some_and(|o| o != std::cmp::Ordering::Greater)
            });
            if !skip {
                self.pending.push_back(batch);
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl Source for BinlogFiles {
    type Error = Error;

    fn tables(&self) -> &[TableName] {
        &self.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<()> {
        if let Some(p) = &resume_after
            && !matches!(p, SourcePosition::MySql { .. })
        {
            return Err(Error::Position(format!("{p:?}")));
        }
        self.resume_after = resume_after;
        self.started = true;
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if !self.started {
            return Err(Error::State("next_batch called before start"));
        }
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Ok(Some(batch));
            }
            if !self.load_next()? {
                return Ok(None);
            }
        }
    }

    async fn acknowledge(&mut self, _position: &SourcePosition) -> Result<()> {
        Ok(())
    }
}
