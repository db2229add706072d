//! The change log: a durable, segmented, append-only log of [`Record`]s.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/
//!   00000000000000000000.seg        segment: records [0, 1500)
//!   00000000000000000000.index      sparse offset index of the sealed segment
//!   00000000000000000000.timeindex  sparse time index of the sealed segment
//!   00000000000000001500.seg        active segment: records [1500, next)
//!   schemas.catalog                 every schema record + last source position
//!   cursors/<name>.cursor           one checksummed file per cursor
//!   LOCK                            flock held by the open instance
//!
//! segment file = header | batch | batch | ...
//!   header (32 bytes): magic "CDCLOG\0\x01" | u32 version (2) | u32 archive layout
//!                      | u64 base offset | u32 crc32(bytes 0..24) | u32 0
//!   batch (8-byte aligned, one per append call):
//!     u32 magic | u32 header crc | u32 length | u32 record count | u64 base offset
//!     | i64 append time (us) | u32 body crc | 12 bytes 0
//!     | count x ( u32 payload length | u32 0 | rkyv payload | pad to 8 )
//! ```
//!
//! The archive layout is rkyv's byte order, alignment and pointer width, which
//! rkyv takes from Cargo features that the host's build unifies; a segment whose
//! version or layout differs from this build's is refused with
//! [`Error::UnsupportedFormat`], never misread.
//!
//! Payloads start at 8-byte file positions; reads use 8-byte aligned buffers,
//! so [`LogEntry::archived`] validates the rkyv archive in place without copying.
//! Index and catalog layouts are documented in their modules.
//!
//! # Invariants
//!
//! * Offsets are dense: segment `n + 1` starts where segment `n` ends, each batch
//!   starts where the previous one ends, and one append call is one batch, so it
//!   becomes visible (and survives a crash) whole or not at all.
//! * Only the last segment (the active one) is written. A segment is fsynced
//!   before it is sealed, whatever the fsync policy, so sealed segments are
//!   complete; only the active segment can end in a torn batch.
//! * Readers see offsets below the published durable offset only, and every
//!   batch they read has passed both checksums.
//! * Append timestamps never decrease, so time lookups can binary-search.
//!
//! # Recovery (on open)
//!
//! * A last segment shorter than its header (crash while rolling) is removed.
//! * The active segment is scanned from its header: the first torn or
//!   checksum-failing batch and everything after it is truncated (it was never
//!   acknowledged under `EveryBatch`), with a warning naming the bytes dropped.
//! * A sealed segment's index files are loaded if they are intact and match the
//!   segment length; otherwise they are rebuilt by scanning the segment, and any
//!   damage found then is [`Error::Corrupt`] with the path and byte offset: data
//!   in the middle of the log is never skipped.
//! * The schema catalog is loaded and completed by scanning records after the
//!   offset it covers.
//!
//! # Writing and durability
//!
//! One writer thread owns the active segment (a thread, not a task, so blocking
//! `write`/`fdatasync` never stalls the async runtime). Appenders encode their
//! records into one aligned batch on their own task, then queue it; the writer
//! drains the queue, stamps offsets and a timestamp, writes the whole group with
//! one `write` and, under [`FsyncPolicy::EveryBatch`], one `fdatasync` (group
//! commit), then publishes the new durable offset through a `watch` channel that
//! wakes every subscription and answers the appenders. After a failed write or
//! fsync the writer stops accepting appends ([`Error::WriterFailed`]): the page
//! cache state is unknown, and reopening the log recovers from what is on disk.
//! A failed append's outcome is unknown: its batch may be whole on disk (and
//! then appear after reopen) but is never torn.
//!
//! All file access goes through [`FileSystem`], so tests inject failing and torn
//! writes (`FaultFs` with the `internals` feature).
//!
//! # Schemas after retention
//!
//! `schema_at` is served from an in-memory catalog of every schema record,
//! persisted in `schemas.catalog` (checksummed, replaced atomically) when a
//! segment is sealed and before retention removes anything. On open, records
//! after the offset the catalog covers are scanned to complete it. Superseded
//! schemas are kept (they are small), so lookups work for any offset.
//!
//! # Deletion (retention)
//!
//! [`ChangeLog::apply_retention`] removes sealed segments oldest first, and only
//! while both hold: every registered cursor is at or past the segment's end, and
//! the [`RetentionPolicy`] allows it (the log is above `max_bytes`, or the
//! segment's newest record is older than `max_age`). The active segment is never
//! removed. Before removing anything it rewrites the schema catalog, so
//! [`ChangeLog::schema_at`] keeps working for every retained offset. The segment
//! file goes first, then its index files; leftover index files are removed on
//! open. A cursor below the oldest retained offset reports
//! [`CursorState::NeedsBackfill`].

pub(crate) mod batch;
mod catalog;
mod config;
pub(crate) mod fs;
mod index;
mod pending;
mod read;
mod recovery;
mod retention;
pub(crate) mod segment;
mod subscription;
mod writer;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};

use tokio::sync::{oneshot, watch};

use crate::cursor::{CursorState, CursorStatus, CursorStore};
use crate::error::{Error, Result};
use crate::event::{Record, SourcePosition, TableName, TableSchema};
use catalog::Catalog;
use segment::Segment;
use writer::{Command, Writer};

pub use config::{FsyncPolicy, LogConfig, RetentionPolicy};
#[cfg(any(test, feature = "internals"))]
pub use fs::{FaultFs, FaultPlan};
pub use fs::{FileSystem, FsFile, StdFs};
pub use pending::PendingAppend;
pub use read::LogEntry;
pub use subscription::Subscription;

/// Records encoded into a log batch by [`ChangeLog::encode`], not yet queued.
#[derive(Debug)]
pub struct EncodedRecords(Option<batch::EncodedBatch>);

/// Offsets of the log at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    /// Oldest retained offset.
    pub start: u64,
    /// Next offset to assign.
    pub next: u64,
    /// Every offset below this is durable and readable.
    pub durable: u64,
}

#[derive(Debug, Clone, Copy)]
struct Durable {
    next: u64,
    closed: bool,
}

/// State shared by handles, the writer thread, readers and subscriptions.
pub(crate) struct Shared {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    config: LogConfig,
    segments: RwLock<Vec<Arc<Segment>>>,
    durable: watch::Sender<Durable>,
    next: AtomicU64,
    catalog: Mutex<Catalog>,
    cursors: CursorStore,
    /// The source reader's declared tables, once it started.
    declared: Mutex<Option<Vec<TableName>>>,
}

impl Shared {
    fn segments(&self) -> RwLockReadGuard<'_, Vec<Arc<Segment>>> {
        self.segments.read().unwrap_or_else(|p| p.into_inner())
    }

    fn segments_mut(&self) -> RwLockWriteGuard<'_, Vec<Arc<Segment>>> {
        self.segments.write().unwrap_or_else(|p| p.into_inner())
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self) -> u64 {
        self.segments().first().map(|s| s.base).unwrap_or(0)
    }
}

/// Takes the directory's exclusive lock, so two instances never write one log.
/// Waits briefly, because a closed instance's writer thread releases it
/// asynchronously when every handle was dropped without `close`.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    for _ in 0..100 {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
    }
    Err(Error::Locked {
        path: dir.to_owned(),
    })
}

struct Handle {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Command>,
}

/// A durable, segmented, append-only log of records with one writer and any
/// number of concurrent readers. Cheap to clone; every clone is the same log.
///
/// See the [module documentation](self) for the format and its guarantees.
///
/// # Example
///
/// ```
/// use cdc_core::event::{Heartbeat, Record, SourcePosition};
/// use cdc_core::{ChangeLog, LogConfig};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let heartbeat = |lsn| {
///     Record::Heartbeat(Heartbeat {
///         position: SourcePosition::Postgres { lsn },
///         time_micros: 0,
///     })
/// };
/// let dir = tempfile::tempdir()?;
/// let log = ChangeLog::open(dir.path(), LogConfig::default())?;
///
/// // An append resolves once its records are durable, with their offsets.
/// assert_eq!(log.append(vec![heartbeat(1), heartbeat(2)]).await?, 0..2);
///
/// // Read from any retained offset; payloads are checked before use.
/// let entries = log.read(1, 100)?;
/// assert_eq!(entries[0].record()?, heartbeat(2));
///
/// // Or follow the tail: a subscription wakes on appends.
/// let mut tail = log.subscribe(2);
/// log.append(vec![heartbeat(3)]).await?;
/// let next = tail.next().await.expect("the log is open")?;
/// assert_eq!((next.offset, next.record()?), (2, heartbeat(3)));
///
/// // A named cursor durably remembers how far one consumer got; retention
/// // keeps every segment a cursor still needs.
/// log.cursors().create("reporting", 0)?;
/// log.cursors().commit("reporting", 3)?;
/// assert_eq!(log.cursors().get("reporting")?, Some(3));
/// assert!(log.cursors().commit("reporting", 1).is_err(), "cursors never move back");
/// log.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ChangeLog {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for ChangeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeLog")
            .field("dir", &self.handle.shared.dir)
            .field("offsets", &self.offsets())
            .finish()
    }
}

impl ChangeLog {
    /// Opens the log in `dir`, creating it or recovering it (see the module
    /// documentation). Starts the writer thread.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<ChangeLog> {
        Self::open_with_fs(dir, config, Arc::new(StdFs))
    }

    /// Opens the log through a custom file system (fault injection in tests).
    #[doc(hidden)]
    pub fn open_with_fs(
        dir: impl AsRef<Path>,
        config: LogConfig,
        fs: Arc<dyn FileSystem>,
    ) -> Result<ChangeLog> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        fs.create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = lock_dir(&dir)?;
        let recovered = recovery::recover(&*fs, &dir, config.index_interval_bytes)?;
        let cursors = CursorStore::open(fs.clone(), &dir.join("cursors"))?;
        let active = recovered
            .segments
            .last()
            .cloned()
            .ok_or_else(|| Error::corrupt(&dir, 0, "no segment after recovery"))?;
        let end = active.index().next;
        let (durable, _) = watch::channel(Durable {
            next: end,
            closed: false,
        });
        let shared = Arc::new(Shared {
            dir,
            fs,
            config,
            segments: RwLock::new(recovered.segments),
            durable,
            next: AtomicU64::new(end),
            catalog: Mutex::new(recovered.catalog),
            cursors,
            declared: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(shared.clone(), active, recovered.last_ts, lock);
        std::thread::Builder::new()
            .name("cdc-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io(&shared.dir, e))?;
        Ok(ChangeLog {
            handle: Arc::new(Handle { shared, tx }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.handle.tx.send(cmd).map_err(|_| Error::Closed)
    }

    /// Appends `records` at dense offsets and resolves with their range once they
    /// are durable under the fsync policy. Concurrent appends share one write and
    /// one fsync; the records of one call are contiguous and become visible to
    /// readers together.
    pub async fn append(&self, records: Vec<Record>) -> Result<Range<u64>> {
        self.submit(records)?.await
    }

    /// Encodes `records` on the calling thread and queues them behind every
    /// append submitted before, without waiting for the write. The returned
    /// [`PendingAppend`] resolves as [`append`](Self::append) does.
    ///
    /// One appender that keeps several batches in flight this way overlaps the
    /// writing and fsync of one batch with producing the next, and their fsyncs
    /// group. Offsets follow the order of `submit` calls. An error from `submit`
    /// itself (the records could not be encoded, the log is closed) means
    /// nothing was queued; once the writer fails, every append queued after the
    /// failure resolves with an error too.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cdc_core::Result<()> {
    /// use cdc_core::event::{Heartbeat, Record, SourcePosition};
    /// use cdc_core::{ChangeLog, LogConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let log = ChangeLog::open(dir.path(), LogConfig::default())?;
    /// let beat = |lsn| {
    ///     Record::Heartbeat(Heartbeat {
    ///         position: SourcePosition::Postgres { lsn },
    ///         time_micros: 0,
    ///     })
    /// };
    /// let first = log.submit(vec![beat(1), beat(2)])?;
    /// let second = log.submit(vec![beat(3)])?;
    /// assert_eq!(second.await?, 2..3); // in submit order
    /// assert_eq!(first.await?, 0..2);
    /// # Ok(()) }
    /// ```
    pub fn submit(&self, records: Vec<Record>) -> Result<PendingAppend> {
        self.submit_encoded(Self::encode(records)?)
    }

    /// Encodes `records` for [`submit_encoded`](Self::submit_encoded) without
    /// touching any log: the CPU-heavy half of an append, which a single
    /// appender can run on another thread while it produces the next batch.
    pub fn encode(records: Vec<Record>) -> Result<EncodedRecords> {
        Self::encode_parts(std::slice::from_ref(&records))
    }

    /// Encodes several record lists, in order, as one batch: one append that
    /// becomes durable (and visible) whole. The ingest runner's encoder groups
    /// the source batches waiting for it this way.
    pub(crate) fn encode_parts(parts: &[Vec<Record>]) -> Result<EncodedRecords> {
        if parts.iter().all(Vec::is_empty) {
            return Ok(EncodedRecords(None));
        }
        batch::encode_parts(parts).map(|batch| EncodedRecords(Some(batch)))
    }

    /// Queues records encoded by [`encode`](Self::encode) behind every append
    /// submitted before, like [`submit`](Self::submit).
    pub fn submit_encoded(&self, records: EncodedRecords) -> Result<PendingAppend> {
        let Some(batch) = records.0 else {
            let next = self.shared().next.load(Ordering::Acquire);
            return Ok(PendingAppend::ready(next..next));
        };
        let (reply, rx) = oneshot::channel();
        self.send(Command::Append { batch, reply })?;
        Ok(PendingAppend::queued(rx))
    }

    /// A snapshot of the log's offsets.
    pub fn offsets(&self) -> LogOffsets {
        let shared = self.shared();
        let durable = shared.durable.borrow().next;
        LogOffsets {
            start: shared.start(),
            next: shared.next.load(Ordering::Acquire).max(durable),
            durable,
        }
    }

    /// Reads up to `max_records` durable records from `from`; empty at the
    /// durable end; `Err(OffsetBehindRetention)` below the oldest retained offset.
    pub fn read(&self, from: u64, max_records: usize) -> Result<Vec<LogEntry>> {
        self.shared().read(from, max_records)
    }

    /// A stream of every durable record from `from` on, in order, that waits for
    /// appends at the end and ends when the log is closed.
    pub fn subscribe(&self, from: u64) -> Subscription {
        Subscription::new(self.handle.shared.clone(), from)
    }

    /// The first offset appended at or after `time_micros`, or the durable end.
    pub fn seek_time(&self, time_micros: i64) -> Result<u64> {
        self.shared().seek_time(time_micros)
    }

    /// Records the tables the source reader appending to this log is declared
    /// to read; the [ingest runner](crate::ingest::run) does this at every
    /// start. Kept in memory, for this open log: the reader and the pipelines
    /// of one log run in one process (the directory lock sees to it).
    pub fn declare_tables(&self, tables: &[TableName]) {
        *self
            .shared()
            .declared
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tables.to_vec());
    }

    /// The tables last [declared](Self::declare_tables), or `None` when no
    /// source reader declared any since the log was opened.
    pub fn declared_tables(&self) -> Option<Vec<TableName>> {
        self.shared()
            .declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The source position of the last durable Commit or Heartbeat record.
    pub fn last_source_position(&self) -> Option<SourcePosition> {
        self.shared().catalog().last_position.clone()
    }

    /// The schema of `table` in effect at `offset`: its last Schema record at or
    /// before `offset`, also when that record's segment was removed by retention.
    pub fn schema_at(&self, table: &TableName, offset: u64) -> Option<Arc<TableSchema>> {
        self.shared().catalog().at(table, offset)
    }

    /// The durable cursors of this log.
    pub fn cursors(&self) -> &CursorStore {
        &self.handle.shared.cursors
    }

    /// A cursor's offset, lag and state.
    pub fn cursor_status(&self, name: &str) -> Result<CursorStatus> {
        let offset = self
            .cursors()
            .get(name)?
            .ok_or_else(|| Error::CursorNotFound {
                name: name.to_owned(),
            })?;
        Ok(self.status_of(name.to_owned(), offset))
    }

    /// Status of every cursor, sorted by name.
    pub fn cursor_statuses(&self) -> Result<Vec<CursorStatus>> {
        Ok(self
            .cursors()
            .list()?
            .into_iter()
            .map(|(name, offset)| self.status_of(name, offset))
            .collect())
    }

    fn status_of(&self, name: String, offset: u64) -> CursorStatus {
        let offsets = self.offsets();
        let state = if offset < offsets.start {
            CursorState::NeedsBackfill {
                oldest_retained: offsets.start,
            }
        } else {
            CursorState::Active
        };
        CursorStatus {
            name,
            offset,
            lag_events: offsets.durable.saturating_sub(offset),
            state,
        }
    }

    /// Removes the sealed segments that every cursor is past and the retention
    /// policy allows removing; returns how many were removed.
    pub fn apply_retention(&self) -> Result<usize> {
        self.shared().apply_retention()
    }

    /// Flushes and fsyncs everything appended, stops the writer and ends every
    /// subscription. Later appends fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Close { reply }).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}

/// Building blocks for fuzz targets and benches; not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    use crate::event::Record;

    /// The bytes of a valid segment file starting at `base` holding `batches`
    /// (one batch per inner `Vec`, stamped with increasing timestamps).
    pub fn segment_image(base: u64, batches: Vec<Vec<Record>>) -> crate::Result<Vec<u8>> {
        let mut out = super::segment::encode_header(base).to_vec();
        let mut next = base;
        for (i, records) in batches.into_iter().enumerate() {
            let mut batch = super::batch::encode_batch(records)?;
            super::batch::stamp(&mut batch.bytes, next, 1_000 + i as i64);
            next += u64::from(batch.count);
            out.extend_from_slice(&batch.bytes);
        }
        Ok(out)
    }

    /// The header of a segment file starting at `base`.
    pub fn segment_header(base: u64) -> Vec<u8> {
        super::segment::encode_header(base).to_vec()
    }
}
