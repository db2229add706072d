//! Offline binlog files: decoded into the same change stream as the live
//! source, for replaying archived binlogs, forensics, fuzzing and benchmarks.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cdc_core::event::{Record, SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};

use crate::binlog::cursor::DecodeError;
use crate::binlog::event::kind;
use crate::binlog::frame::FrameReader;
use crate::error::{Error, Result};
use crate::transaction::{DecodeStats, Decoder};

/// Decodes one binlog file image named `file_name` with `decoder`, pushing
/// whole transactions to `out` (the parts of a split transaction too, so all of
/// it is in memory; [`BinlogFiles`] reads lazily instead). Unknown event types
/// are skipped and counted in the decoder's stats. A torn last event (file
/// still being written) ends the file without error; the transaction it belongs
/// to is not emitted.
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
    reader: Result<FrameReader<'_>, DecodeError>,
    out: &mut Vec<SourceBatch>,
) -> Result<()> {
    let mut reader = reader.map_err(|e| Error::malformed(file_name, 0, e.0))?;
    enter_file(decoder, file_name)?;
    while step(decoder, file_name, &mut reader, out)? {
        while let Some(part) = decoder
            .next_part()
            .map_err(|e| e.into_error(file_name, reader.offset()))?
        {
            out.push(part);
        }
    }
    decoder.abandon_transaction();
    Ok(())
}

/// A file read on its own starts with a fresh position; its own rotate events
/// say where the stream continues.
fn enter_file(decoder: &mut Decoder, file_name: &str) -> Result<()> {
    if decoder.file() != file_name {
        decoder
            .set_position(file_name, 4, None)
            .map_err(|e| Error::malformed(file_name, 0, e))?;
    }
    Ok(())
}

/// Feeds the next event; `false` at the end of the file (or a torn last event).
fn step(
    decoder: &mut Decoder,
    file_name: &str,
    reader: &mut FrameReader<'_>,
    out: &mut Vec<SourceBatch>,
) -> Result<bool> {
    let at = reader.offset();
    let frame = match reader.next_frame() {
        Ok(Some(frame)) => frame,
        Ok(None) => return Ok(false),
        Err(e) if e.0.starts_with("torn") => {
            tracing::warn!(
                file = file_name,
                offset = at,
                "binlog file ends in a torn event"
            );
            return Ok(false);
        }
        Err(e) => return Err(Error::malformed(file_name, at, e.0)),
    };
    if frame.header.kind == kind::MARIADB_START_ENCRYPTION {
        // The events after it are encrypted with a key only the server has.
        return Err(Error::malformed(
            file_name,
            at,
            "the file is encrypted from here on (MariaDB encrypt_binlog=ON); \
             read it from the server, which decrypts it for replicas",
        ));
    }
    decoder
        .feed(&frame.header, frame.body, out)
        .map_err(|e| e.into_error(file_name, at))?;
    Ok(true)
}

/// Decodes binlog bytes without checksum verification (benchmarks; the fuzz
/// target verifies). Returns the batches and counters.
#[doc(hidden)]
pub fn decode_bytes(bytes: &[u8], verify: bool) -> Result<(Vec<SourceBatch>, DecodeStats)> {
    decode_bytes_with(Decoder::new(None, true), bytes, verify)
}

/// [`decode_bytes`] with a configured decoder (tests, fuzzing of small chunk sizes).
#[doc(hidden)]
pub fn decode_bytes_with(
    mut decoder: Decoder,
    bytes: &[u8],
    verify: bool,
) -> Result<(Vec<SourceBatch>, DecodeStats)> {
    let mut out = Vec::new();
    let reader = FrameReader::new(bytes).map(|r| if verify { r } else { r.without_verification() });
    decode_frames(&mut decoder, "binlog.000001", reader, &mut out)?;
    Ok((out, decoder.stats()))
}

/// The file being read by [`BinlogFiles`].
#[derive(Debug)]
struct OpenFile {
    name: String,
    bytes: Vec<u8>,
    offset: u64,
    checksum: bool,
}

/// A [`Source`] over archived binlog files, read in the order given.
///
/// `start(Some(p))` skips every transaction at or before `p`; `next_batch`
/// returns `Ok(None)` after the last file. `acknowledge` has nothing to release.
/// Files are decoded lazily, one batch at a time, so memory stays bounded by
/// the file size plus `transaction_chunk_bytes` (large transactions are split
/// as the live source splits them).
#[derive(Debug)]
pub struct BinlogFiles {
    paths: Vec<PathBuf>,
    tables: Vec<TableName>,
    next_file: usize,
    decoder: Decoder,
    pending: VecDeque<SourceBatch>,
    resume_after: Option<SourcePosition>,
    started: bool,
    current: Option<OpenFile>,
    /// Whether the transaction being delivered in parts is being skipped.
    skipping: bool,
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
            current: None,
            skipping: false,
        }
    }

    /// Splits transactions over about `bytes` into parts (default 64 MiB).
    pub fn with_transaction_chunk_bytes(mut self, bytes: usize) -> Self {
        self.decoder = self.decoder.with_transaction_chunk_bytes(bytes);
        self
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

    fn open_next(&mut self) -> Result<bool> {
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
        FrameReader::new(&bytes).map_err(|e| Error::malformed(&name, 0, e.0))?;
        enter_file(&mut self.decoder, &name)?;
        self.current = Some(OpenFile {
            name,
            bytes,
            offset: 4,
            checksum: false,
        });
        Ok(true)
    }

    /// Decodes events of the open file until something is ready.
    fn read_current(&mut self) -> Result<()> {
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        let mut reader = FrameReader::resume(&file.bytes, file.offset, file.checksum)
            .map_err(|e| Error::malformed(&file.name, file.offset, e.0))?;
        let mut out = Vec::new();
        let mut more = true;
        while more && out.is_empty() {
            more = step(&mut self.decoder, &file.name, &mut reader, &mut out)?;
            if self
                .decoder
                .next_part()
                .map_err(|e| e.into_error(&file.name, reader.offset()))?
                .map(|part| out.push(part))
                .is_some()
            {
                break;
            }
        }
        file.offset = reader.offset();
        file.checksum = reader.checksum();
        self.pending.extend(out);
        if !more {
            self.decoder.abandon_transaction();
            self.current = None;
        }
        Ok(())
    }

    /// Whether `batch` comes after the resume position. Parts of a split
    /// transaction are judged by its `Begin`, carried by the first part.
    fn keep(&mut self, batch: &SourceBatch) -> bool {
        let Some(resume) = &self.resume_after else {
            return true;
        };
        let unit = batch.records.iter().find_map(|r| match r {
            Record::Begin(b) => Some(&b.position),
            Record::Commit(c) => Some(&c.position),
            Record::Heartbeat(h) => Some(&h.position),
            _ => None,
        });
        if let Some(position) = unit {
            self.skipping = position
                .compare(resume)
                .is_some_and(|o| o != std::cmp::Ordering::Greater);
        }
        !self.skipping
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
                if self.keep(&batch) {
                    return Ok(Some(batch));
                }
                continue;
            }
            if let Some(part) = self
                .decoder
                .next_part()
                .map_err(|e| e.into_error(self.decoder.file(), 0))?
            {
                self.pending.push_back(part);
                continue;
            }
            if self.current.is_some() {
                self.read_current()?;
            } else if !self.open_next()? {
                return Ok(None);
            }
        }
    }

    async fn acknowledge(&mut self, _position: &SourcePosition) -> Result<()> {
        Ok(())
    }
}
