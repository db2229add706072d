//! The single writer: group commit, fsync policy, rolling, publishing durability.
//!
//! Runs on its own OS thread so blocking `write`/`fdatasync` calls never stall
//! an async runtime. Appenders encode their batch on their own task and send it
//! here; the writer drains every queued batch, writes them with one `write`,
//! makes them durable with one `fdatasync` (under `EveryBatch`), then publishes
//! the new durable offset and answers every appender of the group.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use tokio::sync::oneshot;

use super::Shared;
use super::batch::{Buf, EncodedBatch, stamp};
use super::config::FsyncPolicy;
use super::fs::replace_file;
use super::segment::{SEGMENT_HEADER_LEN, Segment, offset_index_path, time_index_path};
use crate::error::{Error, Result};
use crate::event::now_micros;
use crate::event::{SourcePosition, TableSchema};

/// Most bytes coalesced into one group commit.
const GROUP_MAX_BYTES: usize = 32 << 20;

/// A request to the writer.
pub(crate) enum Command {
    /// Append one encoded batch.
    Append {
        batch: EncodedBatch,
        reply: oneshot::Sender<Result<Range<u64>>>,
    },
    /// Flush, fsync and stop.
    Close { reply: oneshot::Sender<Result<()>> },
}

/// A batch written (or buffered) but not yet durable.
struct Pending {
    range: Range<u64>,
    reply: oneshot::Sender<Result<Range<u64>>>,
    schemas: Vec<(u32, Arc<TableSchema>)>,
    last_position: Option<SourcePosition>,
    pos: u64,
    len: u64,
    ts: i64,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: Arc<Segment>,
    /// Write position in the active segment (after everything buffered).
    pos: u64,
    /// Next offset to assign.
    next: u64,
    last_ts: i64,
    first_ts: Option<i64>,
    /// Stamped batches waiting for one write ending at `pos`.
    out: Vec<Buf>,
    out_bytes: usize,
    pending: Vec<Pending>,
    last_sync: Instant,
    failed: Option<String>,
    /// The directory lock, released when the writer stops.
    lock: Option<std::fs::File>,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        active: Arc<Segment>,
        last_ts: i64,
        lock: std::fs::File,
    ) -> Self {
        let (pos, next, first_ts) = {
            let idx = active.index();
            (idx.len, idx.next, idx.first_ts)
        };
        Self {
            shared,
            active,
            pos,
            next,
            last_ts,
            first_ts,
            out: Vec::new(),
            out_bytes: 0,
            pending: Vec::new(),
            last_sync: Instant::now(),
            failed: None,
            lock: Some(lock),
        }
    }

    /// Serves commands until the log is closed or every handle is dropped.
    pub fn run(mut self, rx: Receiver<Command>) {
        loop {
            let first = match self.shared.config.fsync {
                FsyncPolicy::Interval(d) if !self.pending.is_empty() => {
                    let wait = (self.last_sync + d).saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(cmd) => cmd,
                        Err(RecvTimeoutError::Timeout) => {
                            self.sync_and_publish(true);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                },
            };
            let mut close = None;
            let mut cmd = Some(first);
            while let Some(c) = cmd.take() {
                match c {
                    Command::Append { batch, reply } => self.stage(batch, reply),
                    Command::Close { reply } => close = Some(reply),
                }
                if close.is_none() && self.out_bytes < GROUP_MAX_BYTES {
                    cmd = rx.try_recv().ok();
                }
            }
            self.flush();
            match self.shared.config.fsync {
                FsyncPolicy::EveryBatch => self.sync_and_publish(true),
                FsyncPolicy::Never => self.sync_and_publish(false),
                FsyncPolicy::Interval(d) => {
                    if self.last_sync.elapsed() >= d {
                        self.sync_and_publish(true);
                    }
                }
            }
            if let Some(reply) = close {
                let result = self.shutdown();
                let _ = reply.send(result);
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Command::Append { reply, .. } => drop(reply.send(Err(Error::Closed))),
                        Command::Close { reply } => drop(reply.send(Ok(()))),
                    }
                }
                return;
            }
        }
        let _ = self.shutdown();
    }

    fn shutdown(&mut self) -> Result<()> {
        self.flush();
        self.sync_and_publish(true);
        self.shared.durable.send_modify(|d| d.closed = true);
        self.lock = None;
        match &self.failed {
            None => Ok(()),
            Some(reason) => Err(Error::WriterFailed {
                reason: reason.clone(),
            }),
        }
    }

    fn stage(&mut self, mut batch: EncodedBatch, reply: oneshot::Sender<Result<Range<u64>>>) {
        if let Some(reason) = &self.failed {
            let _ = reply.send(Err(Error::WriterFailed {
                reason: reason.clone(),
            }));
            return;
        }
        let len = batch.bytes.len() as u64;
        let now = now_micros();
        if self.should_roll(len, now) {
            self.flush();
            self.sync_and_publish(true);
            self.roll();
            if let Some(reason) = &self.failed {
                let _ = reply.send(Err(Error::WriterFailed {
                    reason: reason.clone(),
                }));
                return;
            }
        }
        // Timestamps never go backwards, so time lookups can binary-search.
        let ts = now.max(self.last_ts);
        self.last_ts = ts;
        self.first_ts.get_or_insert(ts);
        stamp(&mut batch.bytes, self.next, ts);
        let range = self.next..self.next + u64::from(batch.count);
        self.out_bytes += batch.bytes.len();
        self.out.push(batch.bytes);
        self.pending.push(Pending {
            range: range.clone(),
            reply,
            schemas: std::mem::take(&mut batch.schemas),
            last_position: batch.last_position,
            pos: self.pos,
            len,
            ts,
        });
        self.pos += len;
        self.next = range.end;
        self.shared
            .next
            .store(self.next, std::sync::atomic::Ordering::Release);
    }

    fn should_roll(&self, len: u64, now: i64) -> bool {
        if self.next == self.active.base {
            return false;
        }
        let config = &self.shared.config;
        let too_big = self.pos + len > config.segment_max_bytes;
        let max_age = i64::try_from(config.segment_max_age.as_micros()).unwrap_or(i64::MAX);
        let too_old = self
            .first_ts
            .is_some_and(|first| now.saturating_sub(first) >= max_age);
        too_big || too_old
    }

    /// Writes the buffered batches with one vectored `write` call.
    fn flush(&mut self) {
        if self.out.is_empty() || self.failed.is_some() {
            self.clear_out();
            return;
        }
        let at = self.pos - self.out_bytes as u64;
        let bufs: Vec<&[u8]> = self.out.iter().map(|b| &b[..]).collect();
        let result = self.active.file.write_all_vectored_at(&bufs, at);
        drop(bufs);
        if let Err(e) = result {
            self.fail(e);
        }
        self.clear_out();
    }

    fn clear_out(&mut self) {
        self.out.clear();
        self.out_bytes = 0;
    }

    /// Makes everything written durable (when `sync`) and visible to readers.
    fn sync_and_publish(&mut self, sync: bool) {
        if self.failed.is_some() {
            return;
        }
        if sync {
            if let Err(e) = self.active.file.sync_data() {
                self.fail(e);
                return;
            }
            self.last_sync = Instant::now();
        }
        if self.pending.is_empty() {
            return;
        }
        let interval = self.shared.config.index_interval_bytes;
        {
            let mut idx = self.active.index_mut();
            for p in &self.pending {
                idx.add_batch(p.pos, p.range.start, p.range.end, p.ts, p.len, interval);
            }
        }
        {
            let mut catalog = self.shared.catalog();
            for p in &mut self.pending {
                for (i, schema) in p.schemas.drain(..) {
                    catalog.insert(p.range.start + u64::from(i), schema);
                }
                if let Some(position) = p.last_position.take() {
                    catalog.last_position = Some(position);
                }
            }
            catalog.covered_until = self.next;
        }
        let next = self.next;
        self.shared.durable.send_modify(|d| d.next = next);
        for p in self.pending.drain(..) {
            let _ = p.reply.send(Ok(p.range));
        }
    }

    fn roll(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.seal_and_create() {
            self.fail_with(e.to_string());
        }
    }

    fn seal_and_create(&mut self) -> Result<()> {
        let fs = &*self.shared.fs;
        let dir = &self.shared.dir;
        let base = self.active.base;
        let (offsets, times) = {
            let idx = self.active.index();
            (idx.to_file(base, false), idx.to_file(base, true))
        };
        let path = offset_index_path(dir, base);
        replace_file(fs, &path, &offsets).map_err(|e| Error::io(&path, e))?;
        let path = time_index_path(dir, base);
        replace_file(fs, &path, &times).map_err(|e| Error::io(&path, e))?;
        {
            let catalog = self.shared.catalog();
            catalog.store(fs, dir)?;
        }
        let segment = Arc::new(Segment::create(fs, dir, self.next).map_err(|e| Error::io(dir, e))?);
        self.shared.segments_mut().push(segment.clone());
        self.active = segment;
        self.pos = SEGMENT_HEADER_LEN;
        self.first_ts = None;
        tracing::debug!(base = self.next, "change log segment rolled");
        Ok(())
    }

    fn fail(&mut self, e: io::Error) {
        let reason = format!("{e} on {}", self.active.path.display());
        tracing::error!(path = %self.active.path.display(), error = %e, "change log write failed; appends stop until the log is reopened");
        for p in self.pending.drain(..) {
            let _ = p.reply.send(Err(Error::io(
                &self.active.path,
                io::Error::new(e.kind(), e.to_string()),
            )));
        }
        self.failed = Some(reason);
        self.clear_out();
    }

    fn fail_with(&mut self, reason: String) {
        tracing::error!(%reason, "change log roll failed; appends stop until the log is reopened");
        for p in self.pending.drain(..) {
            let _ = p.reply.send(Err(Error::WriterFailed {
                reason: reason.clone(),
            }));
        }
        self.failed = Some(reason);
        self.clear_out();
    }
}
