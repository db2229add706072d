//! Change-log configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a [`ChangeLog`](super::ChangeLog) is stored and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A segment is sealed and a new one started once it reaches this many bytes.
    /// Default 128 MiB.
    pub segment_max_bytes: u64,
    /// A segment is sealed once its first record is this old. Default 1 hour.
    pub segment_max_age: Duration,
    /// When appends are made durable. Default [`FsyncPolicy::EveryBatch`].
    pub fsync: FsyncPolicy,
    /// Bytes between two entries of the sparse offset and time indexes. Default 4096.
    pub index_interval_bytes: u32,
    /// Which sealed segments may be removed. Default: keep everything.
    pub retention: RetentionPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_max_bytes: 128 * 1024 * 1024,
            segment_max_age: Duration::from_secs(3600),
            fsync: FsyncPolicy::EveryBatch,
            index_interval_bytes: 4096,
            retention: RetentionPolicy::default(),
        }
    }
}

impl LogConfig {
    /// Checks the values; the error names the field to fix.
    pub fn validate(&self) -> Result<()> {
        if self.segment_max_bytes < 4096 {
            return Err(Error::Config {
                field: "segment_max_bytes",
                reason: "must be at least 4096".into(),
            });
        }
        if self.segment_max_age.is_zero() {
            return Err(Error::Config {
                field: "segment_max_age",
                reason: "must be greater than zero".into(),
            });
        }
        if self.index_interval_bytes == 0 {
            return Err(Error::Config {
                field: "index_interval_bytes",
                reason: "must be greater than zero".into(),
            });
        }
        if let FsyncPolicy::Interval(d) = self.fsync
            && d.is_zero()
        {
            return Err(Error::Config {
                field: "fsync",
                reason: "the interval must be greater than zero; use EveryBatch instead".into(),
            });
        }
        Ok(())
    }
}

/// When an append becomes durable, and so when `append` resolves.
///
/// Trade-offs: `EveryBatch` loses nothing acknowledged on power loss and costs one
/// `fdatasync` per group commit (concurrent appends share it). `Interval` is just
/// as safe for what it acknowledges but issues at most one `fdatasync` per
/// interval however many appends arrive; each append waits for the next one, so
/// a single appender that awaits every append gets at most one append per
/// interval (use it with many concurrent appenders on a disk whose fsync is
/// slow). `Never` acknowledges after `write(2)`: a process crash loses nothing,
/// a power loss or kernel crash may lose everything the OS had not flushed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsyncPolicy {
    /// Resolve after the `fdatasync` of a group commit covering the append.
    EveryBatch,
    /// Resolve after the next periodic `fdatasync`, at most this long after the write.
    Interval(Duration),
    /// Resolve after the write; the OS flushes when it chooses.
    Never,
}

/// Which sealed segments retention may remove. A segment is removed only when
/// this policy allows it and every registered cursor is past it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Remove the oldest segments while the log is larger than this. Default: no limit.
    pub max_bytes: Option<u64>,
    /// Remove segments whose newest record is older than this. Default: no limit.
    pub max_age: Option<Duration>,
}
