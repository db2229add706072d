//! Spill files: the records of a transaction too large to buffer, written to an
//! anonymous temporary file while the transaction is read and read back in parts
//! once its commit (and so its position) is known.
//!
//! A binlog transaction's commit position is only known at its last event
//! (MariaDB's GTID event does not carry the transaction's length), and every
//! part of a split transaction starts with a `Begin` holding that position, so
//! the records have to wait somewhere: on disk, not in memory.
//!
//! ```text
//! file   := record*
//! record := len: u32 LE | payload: len bytes (cdc_core::codec rkyv archive)
//! ```
//!
//! The file is unlinked at creation, so nothing is left behind on a crash.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cdc_core::codec::{self, PAYLOAD_ALIGN};
use cdc_core::event::Record;
use rkyv::util::AlignedVec;

/// Largest record payload read back; bounds memory if the file is damaged.
const MAX_RECORD: u32 = 1 << 30;

/// Why a spill file could not be written or read back.
#[derive(Debug)]
pub(crate) struct SpillError {
    /// The directory the spill file lives in.
    pub dir: PathBuf,
    /// The cause.
    pub source: io::Error,
}

fn spill_err(dir: &Path) -> impl FnOnce(io::Error) -> SpillError + '_ {
    move |source| SpillError {
        dir: dir.to_owned(),
        source,
    }
}

/// A spill file being written.
#[derive(Debug)]
pub(crate) struct SpillWriter {
    dir: PathBuf,
    file: BufWriter<File>,
    buf: AlignedVec<PAYLOAD_ALIGN>,
    records: u64,
}

impl SpillWriter {
    /// Creates an unlinked temporary file in `dir` (the system temp dir if `None`).
    pub fn create(dir: Option<&Path>) -> Result<Self, SpillError> {
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_owned);
        let file = tempfile::tempfile_in(&dir).map_err(spill_err(&dir))?;
        Ok(SpillWriter {
            file: BufWriter::with_capacity(1 << 20, file),
            dir,
            buf: AlignedVec::new(),
            records: 0,
        })
    }

    /// Appends one record.
    pub fn push(&mut self, record: &Record) -> Result<(), SpillError> {
        let buf = std::mem::take(&mut self.buf);
        self.buf = codec::encode_into(record, buf).map_err(|e| SpillError {
            dir: self.dir.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        let len = u32::try_from(self.buf.len())
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| SpillError {
                dir: self.dir.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, "record over 1 GiB"),
            })?;
        self.file
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.file.write_all(&self.buf))
            .map_err(spill_err(&self.dir))?;
        self.records += 1;
        Ok(())
    }

    /// Ends writing and rewinds for reading.
    pub fn finish(self) -> Result<SpillReader, SpillError> {
        let dir = self.dir;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| spill_err(&dir)(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(spill_err(&dir))?;
        Ok(SpillReader {
            file: BufReader::with_capacity(1 << 20, file),
            left: self.records,
            buf: Vec::new(),
            dir,
        })
    }
}

/// A spill file being read back, in write order.
#[derive(Debug)]
pub(crate) struct SpillReader {
    dir: PathBuf,
    file: BufReader<File>,
    buf: Vec<u8>,
    left: u64,
}

impl SpillReader {
    /// The next record and its payload size, `None` after the last one.
    pub fn next_record(&mut self) -> Result<Option<(Record, usize)>, SpillError> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.file
            .read_exact(&mut len)
            .map_err(spill_err(&self.dir))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_RECORD {
            return Err(SpillError {
                dir: self.dir.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, "spilled record over 1 GiB"),
            });
        }
        self.buf.resize(len as usize, 0);
        self.file
            .read_exact(&mut self.buf)
            .map_err(spill_err(&self.dir))?;
        let record = codec::decode(&self.buf).map_err(|e| SpillError {
            dir: self.dir.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        self.left -= 1;
        Ok(Some((record, len as usize)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::event::{Change, ChangeKind, SourcePosition, TableName, Value};

    fn change(i: i64) -> Record {
        Record::Change(Change {
            table: TableName::new("s", "t"),
            kind: ChangeKind::Insert,
            before: None,
            after: Some(vec![
                Value::Int(i),
                Value::Text("x".repeat(i as usize).into()),
            ]),
            position: SourcePosition::None,
            txid: None,
            commit_time_micros: 0,
        })
    }

    #[test]
    fn spilled_records_read_back_in_write_order() {
        let mut w = SpillWriter::create(None).unwrap();
        for i in 0..100 {
            w.push(&change(i)).unwrap();
        }
        let mut r = w.finish().unwrap();
        for i in 0..100 {
            let (record, len) = r.next_record().unwrap().unwrap();
            assert_eq!(record, change(i));
            assert!(len > 0);
        }
        assert!(r.next_record().unwrap().is_none());
    }
}
