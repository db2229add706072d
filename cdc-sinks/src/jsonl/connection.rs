//! The files: numbered segments, the offset sidecar, recovery and rolling.
//!
//! ```text
//! <dir>/<prefix>-000001.jsonl   lines of batches, in order
//! <dir>/<prefix>-000002.jsonl   started when 000001 reached max_file_bytes
//! <dir>/<prefix>.offset         {"last_offset":N,"file":2,"bytes":B}
//! ```
//!
//! A batch's lines are appended and fsynced, then the sidecar is replaced
//! (write a temporary file, fsync, rename, fsync the directory). The sidecar is
//! the commit point: on open, the file it names is truncated to its `bytes` and
//! later-numbered files are removed, so lines written after the last commit are
//! dropped (no repeat) and every committed line is kept (no loss).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::JsonlConfig;
use crate::error::{Result, SinkError};

/// The committed position, as stored in the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Committed {
    pub last_offset: Option<u64>,
    pub file: u32,
    pub bytes: u64,
}

/// The open current file.
pub(super) struct Files {
    dir: PathBuf,
    prefix: String,
    max_file_bytes: u64,
    pub(super) committed: Committed,
    current: File,
}

impl Files {
    fn file_path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{}-{n:06}.jsonl", self.prefix))
    }

    fn sidecar(&self) -> PathBuf {
        self.dir.join(format!("{}.offset", self.prefix))
    }

    /// Opens the directory and drops anything written after the last commit.
    pub(super) fn open(config: &JsonlConfig) -> Result<Self> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(SinkError::io(&dir))?;
        let sidecar = dir.join(format!("{}.offset", config.prefix));
        let committed = match std::fs::read(&sidecar) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SinkError::CorruptState {
                location: sidecar.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Committed {
                last_offset: None,
                file: 1,
                bytes: 0,
            },
            Err(e) => return Err(SinkError::io(&sidecar)(e)),
        };
        let this = |current| Self {
            dir: dir.clone(),
            prefix: config.prefix.clone(),
            max_file_bytes: config.max_file_bytes,
            committed,
            current,
        };
        // Remove files started after the commit.
        for entry in std::fs::read_dir(&dir).map_err(SinkError::io(&dir))? {
            let entry = entry.map_err(SinkError::io(&dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let n = name
                .strip_prefix(&format!("{}-", config.prefix))
                .and_then(|r| r.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u32>().ok());
            if n.is_some_and(|n| n > committed.file) {
                std::fs::remove_file(entry.path()).map_err(SinkError::io(entry.path()))?;
            }
        }
        let path = dir.join(format!("{}-{:06}.jsonl", config.prefix, committed.file));
        let current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(SinkError::io(&path))?;
        let len = current.metadata().map_err(SinkError::io(&path))?.len();
        if len < committed.bytes {
            return Err(SinkError::CorruptState {
                location: path.display().to_string(),
                reason: format!(
                    "the file is shorter ({len} bytes) than the committed {} bytes; \
                     committed lines are missing",
                    committed.bytes
                ),
            });
        }
        current
            .set_len(committed.bytes)
            .map_err(SinkError::io(&path))?;
        current.sync_all().map_err(SinkError::io(&path))?;
        sync_dir(&dir)?;
        Ok(this(current))
    }

    /// Appends a batch's lines, fsyncs, and commits them in the sidecar with
    /// `last_offset`, or with the offset stored before when it is `None`.
    pub(super) fn append(&mut self, lines: &[u8], last_offset: Option<u64>) -> Result<()> {
        let mut next = self.committed;
        if next.bytes > 0 && next.bytes + lines.len() as u64 > self.max_file_bytes {
            next.file += 1;
            next.bytes = 0;
            let path = self.file_path(next.file);
            self.current = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(SinkError::io(&path))?;
            self.current.set_len(0).map_err(SinkError::io(&path))?;
            sync_dir(&self.dir)?;
        }
        let path = self.file_path(next.file);
        self.current
            .write_all(lines)
            .and_then(|()| self.current.sync_data())
            .map_err(SinkError::io(&path))?;
        next.bytes += lines.len() as u64;
        if last_offset.is_some() {
            next.last_offset = last_offset;
        }
        self.write_sidecar(&next)?;
        self.committed = next;
        Ok(())
    }

    fn write_sidecar(&self, committed: &Committed) -> Result<()> {
        let path = self.sidecar();
        let tmp = path.with_extension("offset.tmp");
        let json = serde_json::to_vec(committed).map_err(|e| SinkError::CorruptState {
            location: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(SinkError::io(&tmp))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(SinkError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(SinkError::io(&path))?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SinkError::io(dir))
}
