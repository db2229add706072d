//! A started replication stream: pgoutput messages into batches, standby
//! status updates, idle heartbeats, and the watch for a dead network path.

use std::time::{Duration, Instant};

use cdc_core::SourceBatch;
use cdc_core::event::{Record, SourcePosition};
use tokio_postgres::Client;

use crate::assembler::{Assembler, HEARTBEAT_PREFIX};
use crate::config::PostgresConfig;
use crate::error::{Error, Result};
use crate::liveness::{Liveness, within};
use crate::pgoutput::{self, PgOutputMessage};
use crate::replication::{CopyMessage, ReplicationConnection};
use crate::schema::Catalog;
use crate::slot;

/// How often a walsender waiting for confirmation gets the host handed a
/// heartbeat to acknowledge on.
const NUDGE_INTERVAL: Duration = Duration::from_millis(20);

/// A broken stream being replaced: what the next one continues from, and
/// the attempts made so far. Kept by the source across awaits, so a caller
/// that drops `next_batch` meanwhile resumes where it left off.
pub(crate) struct Resuming {
    /// Highest position acknowledged by the host.
    flushed: u64,
    /// Position of the last transaction handed out.
    delivered_changes: u64,
    catalog: Catalog,
    /// Where the next stream starts: after the last whole transaction or
    /// heartbeat handed out.
    pub(crate) at: u64,
    /// Why the stream broke, or why the last attempt failed.
    pub(crate) last_error: Error,
    pub(crate) attempts: u32,
    delay: Duration,
}

impl Resuming {
    /// Everything up to `lsn` is durable downstream; the next stream
    /// confirms it.
    pub(crate) fn acknowledge(&mut self, lsn: u64) {
        self.flushed = self.flushed.max(lsn);
    }

    /// The pause before the next attempt: 200 ms, doubling up to 2 s.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (delay * 2).min(Duration::from_secs(2));
        delay
    }
}

/// The state of one replication connection, from `START_REPLICATION` on.
pub(crate) struct Running {
    conn: ReplicationConnection,
    client: Client,
    catalog: Catalog,
    assembler: Assembler,
    /// Highest position passed to `acknowledge` (or the start position).
    flushed: u64,
    /// Highest WAL position received in a non-zero XLogData header.
    written: u64,
    /// Position of the last batch handed out by `next_batch`.
    delivered: u64,
    /// Position of the last batch handed out that was not a heartbeat.
    delivered_changes: u64,
    /// The server's sent position from the last keepalive.
    keepalive_end: u64,
    last_status: Instant,
    last_activity: Instant,
    /// A heartbeat message was emitted and has not come back through the
    /// stream yet. Set only once the emitting query returned, so a `next_batch`
    /// dropped while emitting leaves heartbeats on.
    heartbeat_pending: bool,
    last_nudge: Instant,
    /// When the declared tables were last found in the publication.
    publication_checked: Instant,
    /// Bounds every wait on the server.
    idle_timeout: Duration,
    liveness: Liveness,
}

impl Running {
    /// The state of a stream started at `start` on `conn`.
    pub(crate) fn new(
        conn: ReplicationConnection,
        client: Client,
        config: &PostgresConfig,
        start: u64,
        idle_timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            conn,
            client,
            catalog: Catalog::default(),
            assembler: Assembler::new(&config.tables, start, config.transaction_chunk_bytes),
            flushed: start,
            written: start,
            delivered: start,
            delivered_changes: start,
            keepalive_end: 0,
            last_status: now,
            last_activity: now,
            heartbeat_pending: false,
            last_nudge: now,
            publication_checked: now,
            idle_timeout,
            liveness: Liveness::new(idle_timeout),
        }
    }

    /// The walsender's process id, to end it if this stream is abandoned.
    pub(crate) fn walsender_pid(&self) -> Option<i32> {
        self.conn.backend_pid()
    }

    /// Whether the stream can go on from a new connection without repeating
    /// anything handed out.
    pub(crate) fn resumable(&self) -> bool {
        !self.assembler.handed_out_part()
    }

    /// Ends the connections after `cause` broke them, keeping what the next
    /// stream continues from.
    pub(crate) fn into_resuming(self, cause: Error) -> Resuming {
        Resuming {
            flushed: self.flushed,
            delivered_changes: self.delivered_changes,
            catalog: self.catalog,
            at: self.delivered,
            last_error: cause,
            attempts: 0,
            delay: Duration::from_millis(200),
        }
    }

    /// Continues where a broken stream left off (this stream started at what
    /// it had delivered): what the host acknowledged of it, the last
    /// transaction it handed out, which the host must acknowledge before the
    /// server's sent position may be confirmed, and its catalog's cache.
    pub(crate) fn resume_from(&mut self, resuming: Resuming) {
        self.flushed = resuming.flushed.min(self.flushed);
        self.delivered_changes = resuming.delivered_changes.min(self.delivered_changes);
        self.catalog = resuming.catalog;
    }

    /// Everything up to `lsn` is durable downstream; confirms it upstream.
    pub(crate) async fn acknowledge(&mut self, lsn: u64) -> Result<()> {
        if lsn > self.flushed {
            self.flushed = lsn;
            self.send_status(false).await?;
        }
        Ok(())
    }

    /// The walsender asked for a reply: it waits for its sent position to be
    /// confirmed, as a server shutting down does. That needs the host to
    /// acknowledge every transaction handed out, and the host acknowledges
    /// when it is handed a batch, so it gets a heartbeat: at the sent
    /// position when that is new, else the last one again, at most every
    /// 20 ms while acknowledgements are missing.
    fn nudge(&mut self, wal_end: u64) -> Option<SourceBatch> {
        if let Some(batch) = self.assembler.keepalive(wal_end) {
            return Some(self.hand_out(batch));
        }
        let missing = self.flushed < self.delivered_changes;
        if !missing || self.last_nudge.elapsed() < NUDGE_INTERVAL {
            return None;
        }
        self.last_nudge = Instant::now();
        self.assembler.repeat_heartbeat()
    }

    /// Notes what `batch` delivers before it goes to the host.
    fn hand_out(&mut self, batch: SourceBatch) -> SourceBatch {
        if let SourcePosition::Postgres { lsn } = batch.position {
            self.delivered = self.delivered.max(lsn);
            if !matches!(batch.records.last(), Some(Record::Heartbeat(_))) {
                self.delivered_changes = self.delivered_changes.max(lsn);
            }
        }
        batch
    }

    /// Sends a status update; `ask` requests an answer and starts the
    /// liveness clock (periodic updates ask, acknowledgements and replies to
    /// the server's own requests need not).
    async fn send_status(&mut self, ask: bool) -> Result<()> {
        let sent_at = Instant::now();
        self.last_status = sent_at;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        // When every transaction handed out is acknowledged and none is open,
        // nothing up to the server's sent position is ours to lose (heartbeats
        // and schemas are sent again after a restart), so it may be confirmed:
        // this is what lets a fast shutdown of the server finish (the
        // walsender waits for its sent position to be confirmed).
        let idle = !self.assembler.in_transaction() && self.flushed >= self.delivered_changes;
        let flushed = if idle {
            self.flushed.max(self.keepalive_end)
        } else {
            self.flushed
        };
        let written = self.written.max(flushed);
        within(
            self.idle_timeout,
            "sending a standby status update",
            self.conn.send_status(written, flushed, now, ask),
        )
        .await?;
        if ask {
            self.liveness.asked(sent_at);
        }
        Ok(())
    }

    async fn emit_heartbeat(&mut self) -> Result<()> {
        let emit = async {
            self.client
                .execute(
                    "SELECT pg_catalog.pg_logical_emit_message(false, $1::text, ''::text)",
                    &[&HEARTBEAT_PREFIX],
                )
                .await
                .map_err(Error::query("emitting a heartbeat message"))
        };
        within(self.idle_timeout, "emitting a heartbeat message", emit).await?;
        // The message comes back only through the stream, which is not read
        // while the query runs, so it cannot have been seen yet.
        self.heartbeat_pending = true;
        Ok(())
    }

    /// The next batch; see [`PostgresSource`](crate::PostgresSource).
    pub(crate) async fn next_batch(
        &mut self,
        config: &PostgresConfig,
    ) -> Result<Option<SourceBatch>> {
        loop {
            // Timed by the activity clock, which every message and every idle
            // heartbeat tick sets, so the hot path reads no clock of its own.
            if self.last_activity >= self.publication_checked + config.heartbeat_interval {
                self.publication_checked = self.last_activity;
                let check = slot::check_published(&self.client, config);
                within(self.idle_timeout, "checking the publication", check).await?;
            }
            let status_due = self.last_status + config.status_interval;
            let heartbeat_due = self.last_activity + config.heartbeat_interval;
            let stall_due = self.liveness.deadline();
            let deadline = status_due
                .min(heartbeat_due)
                .min(stall_due.unwrap_or(status_due));
            let message =
                match tokio::time::timeout_at(deadline.into(), self.conn.next_copy_message()).await
                {
                    Ok(message) => message?,
                    Err(_) => {
                        let now = Instant::now();
                        if stall_due.is_some_and(|due| now >= due) {
                            return Err(self.liveness.stalled("streaming"));
                        }
                        if now >= status_due {
                            self.send_status(true).await?;
                        }
                        if now >= heartbeat_due {
                            self.last_activity = now;
                            if !self.assembler.in_transaction() && !self.heartbeat_pending {
                                self.emit_heartbeat().await?;
                            }
                        }
                        continue;
                    }
                };
            self.liveness.heard();
            match message {
                // The server ended the stream (it is shutting down or restarting):
                // not the end of the source, so the host's retry resumes.
                None => return Err(Error::ConnectionClosed),
                Some(CopyMessage::Keepalive {
                    wal_end,
                    reply_requested,
                }) => {
                    self.keepalive_end = self.keepalive_end.max(wal_end);
                    if reply_requested {
                        self.send_status(false).await?;
                        if let Some(batch) = self.nudge(wal_end) {
                            return Ok(Some(batch));
                        }
                    }
                }
                Some(CopyMessage::XLogData { start, data, .. }) => {
                    // A header start of 0 carries no position; never report it.
                    if start != 0 {
                        self.written = self.written.max(start);
                    }
                    self.last_activity = Instant::now();
                    let message = pgoutput::decode(&data)
                        .map_err(|source| Error::Decode { lsn: start, source })?;
                    if let PgOutputMessage::Relation(relation) = &message {
                        let describe = self.catalog.describe(&self.client, relation);
                        let info = within(self.idle_timeout, "reading a table's catalog", describe)
                            .await?;
                        self.assembler.add_relation(relation.id, info)?;
                        continue;
                    }
                    if matches!(&message, PgOutputMessage::Message(m) if m.prefix == HEARTBEAT_PREFIX)
                    {
                        self.heartbeat_pending = false;
                    }
                    if let Some(batch) = self.assembler.handle(message, data.len())? {
                        return Ok(Some(self.hand_out(batch)));
                    }
                }
            }
        }
    }
}
