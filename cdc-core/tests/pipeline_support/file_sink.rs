//! A real file sink: JSON lines plus an fsynced sidecar offset file.
//!
//! Transactional: `apply` appends the batch's lines and fsyncs them, then replaces
//! the sidecar (`offset.json` = last offset + data length) by write-temp-fsync-
//! rename-fsync(dir). Opening truncates the data file to the length the sidecar
//! records, so a crash between the two steps leaves no half batch.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cdc_core::event::Change;
use cdc_core::{Sink, SinkBatch, SinkEvent};
use serde::{Deserialize, Serialize};

/// One line of the data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// A schema event: the table and its column names.
    Schema {
        offset: u64,
        table: String,
        columns: Vec<String>,
    },
    /// A change event.
    Change { offset: u64, change: Change },
    /// The end of one applied batch.
    BatchEnd { last_offset: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    last_offset: u64,
    data_len: u64,
}

/// Writes batches to `<dir>/changes.jsonl` and `<dir>/offset.json`.
pub struct FileSink {
    dir: PathBuf,
    stores_offsets: bool,
    /// Fail the apply of this many-th batch from now (1 = the next one).
    fail_at_batch: Option<u32>,
}

impl FileSink {
    /// A sink that stores its offset (exactly-once resume).
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            dir: dir.to_path_buf(),
            stores_offsets: true,
            fail_at_batch: None,
        }
    }

    /// A sink that does not report offsets, so the cursor decides the resume point.
    pub fn without_offsets(dir: &Path) -> Self {
        Self {
            stores_offsets: false,
            ..Self::new(dir)
        }
    }

    /// Makes the `n`-th apply from now fail before writing anything.
    pub fn failing_at_batch(mut self, n: u32) -> Self {
        self.fail_at_batch = Some(n);
        self
    }

    fn data_path(&self) -> PathBuf {
        self.dir.join("changes.jsonl")
    }

    fn sidecar_path(&self) -> PathBuf {
        self.dir.join("offset.json")
    }

    fn read_sidecar(&self) -> std::io::Result<Option<Sidecar>> {
        match std::fs::read(self.sidecar_path()) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads every line of the data file in `dir`.
    pub fn lines(dir: &Path) -> Vec<Line> {
        let Ok(file) = File::open(dir.join("changes.jsonl")) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }

    /// The stored offset in `dir`, if any.
    pub fn stored(dir: &Path) -> Option<u64> {
        let bytes = std::fs::read(dir.join("offset.json")).ok()?;
        Some(
            serde_json::from_slice::<Sidecar>(&bytes)
                .unwrap()
                .last_offset,
        )
    }

    fn write_batch(&self, batch: &SinkBatch) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for event in &batch.events {
            let line = match event {
                SinkEvent::Schema { offset, schema } => Line::Schema {
                    offset: *offset,
                    table: schema.table.to_string(),
                    columns: schema.columns.iter().map(|c| c.name.clone()).collect(),
                },
                SinkEvent::Change { offset, change, .. } => Line::Change {
                    offset: *offset,
                    change: change.clone(),
                },
            };
            serde_json::to_writer(&mut buf, &line)?;
            buf.push(b'\n');
        }
        serde_json::to_writer(
            &mut buf,
            &Line::BatchEnd {
                last_offset: batch.last_offset,
            },
        )?;
        buf.push(b'\n');
        let mut data = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_path())?;
        data.write_all(&buf)?;
        data.sync_data()?;
        let data_len = data.metadata()?.len();
        let tmp = self.dir.join("offset.json.tmp");
        let mut side = File::create(&tmp)?;
        serde_json::to_writer(
            &mut side,
            &Sidecar {
                last_offset: batch.last_offset,
                data_len,
            },
        )?;
        side.sync_all()?;
        std::fs::rename(&tmp, self.sidecar_path())?;
        File::open(&self.dir)?.sync_all()
    }
}

#[async_trait]
impl Sink for FileSink {
    type Error = std::io::Error;

    fn stores_offsets(&self) -> bool {
        self.stores_offsets
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>, Self::Error> {
        let sidecar = self.read_sidecar()?;
        // Drop a batch whose data was written but whose offset was not.
        let keep = sidecar.as_ref().map_or(0, |s| s.data_len);
        if let Ok(file) = OpenOptions::new().write(true).open(self.data_path()) {
            file.set_len(keep)?;
            file.sync_all()?;
        }
        Ok(sidecar
            .map(|s| s.last_offset)
            .filter(|_| self.stores_offsets))
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<(), Self::Error> {
        if let Some(n) = self.fail_at_batch.as_mut() {
            *n -= 1;
            if *n == 0 {
                return Err(std::io::Error::other("injected sink failure"));
            }
        }
        self.write_batch(batch)
    }
}
