//! The live [`Source`]: whole transactions from the binlog stream, resumed by
//! GTID or file:pos, reconnecting after a dropped connection.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use cdc_core::event::{SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};
use futures::StreamExt;
use mysql_async::{BinlogStream, Conn};

use crate::binlog::event::{EventHeader, HEADER_LEN, kind};
use crate::checks::{ServerInfo, check_server};
use crate::config::{MySqlConfig, StartFrom};
use crate::error::{Error, Result};
use crate::gtid::GtidSet;
use crate::stream::{self, StreamStart};
use crate::transaction::{DecodeStats, Decoder};

/// Which part of a stored position a restart uses when both are present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResumeBy {
    /// The GTID state (default; survives failover to another server).
    #[default]
    Gtid,
    /// The binlog file and byte position.
    FilePos,
}

/// A MySQL 8 / MariaDB binlog reader implementing [`Source`].
///
/// Batches are whole transactions in commit order. The position of each batch
/// is the commit's file:pos with the GTID state after it. A transaction larger
/// than `transaction_chunk_bytes` is spilled to disk while it is read and then
/// delivered in parts (the `Source` contract's split transactions): the parts
/// before the last carry the previous completed position. MySQL and MariaDB keep
/// binlogs by time, not by replica progress, so [`acknowledge`](Source::acknowledge)
/// releases nothing upstream; the source records it
/// ([`acknowledged`](MySqlSource::acknowledged)). After a dropped connection
/// (or one silent for `idle_timeout`: no event and no heartbeat) the source
/// reconnects by itself and resumes right after the last complete
/// transaction it decoded, so nothing is lost or repeated; after an error that
/// ends the stream, the caller restarts from the log's last durable position.
/// A two-phase XA transaction is delivered at its `XA COMMIT`, in commit order.
/// A reader started between an `XA PREPARE` and its commit cannot deliver that
/// transaction, and says so with [`Error::XaPreparedBeforeStart`].
pub struct MySqlSource {
    config: MySqlConfig,
    resume_by: ResumeBy,
    filter: Option<HashSet<TableName>>,
    decoder: Decoder,
    stream: Option<BinlogStream>,
    catalog: Option<Conn>,
    info: Option<ServerInfo>,
    start: Option<StreamStart>,
    /// The position the open stream was requested after, resolved (a
    /// configured start of "current" or "earliest" is read from the server
    /// once, not again at a reconnect).
    opened_from: Option<SourcePosition>,
    pending: VecDeque<SourceBatch>,
    delivered: Option<SourcePosition>,
    acked: Option<SourcePosition>,
    seen_format: bool,
}

impl std::fmt::Debug for MySqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlSource")
            .field("config", &self.config)
            .field("start", &self.start)
            .field("delivered", &self.delivered)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl MySqlSource {
    /// A source for `config`; nothing connects until [`start`](Source::start).
    pub fn new(config: MySqlConfig) -> Result<Self> {
        config.validate()?;
        let filter = (!config.tables.is_empty()).then(|| config.tables.iter().cloned().collect());
        Ok(MySqlSource {
            decoder: new_decoder(&config, filter.clone()),
            filter,
            config,
            resume_by: ResumeBy::default(),
            stream: None,
            catalog: None,
            info: None,
            start: None,
            opened_from: None,
            pending: VecDeque::new(),
            delivered: None,
            acked: None,
            seen_format: false,
        })
    }

    /// Chooses GTID or file:pos for restarts from positions holding both.
    pub fn with_resume_by(mut self, resume_by: ResumeBy) -> Self {
        self.resume_by = resume_by;
        self
    }

    /// The last position acknowledged as durable.
    pub fn acknowledged(&self) -> Option<&SourcePosition> {
        self.acked.as_ref()
    }

    /// Counters of what was decoded since the last start.
    pub fn stats(&self) -> DecodeStats {
        self.decoder.stats()
    }

    /// Whether the server is MariaDB (known after `start`).
    pub fn is_mariadb(&self) -> Option<bool> {
        self.info.as_ref().map(|i| i.is_mariadb)
    }

    fn start_for(&self, position: &SourcePosition) -> Result<StreamStart> {
        let SourcePosition::MySql { file, pos, gtid } = position else {
            return Err(Error::Position(format!("{position:?}")));
        };
        let is_mariadb = self.info.as_ref().is_some_and(|i| i.is_mariadb);
        let gtid = gtid.as_deref().filter(|g| !g.is_empty());
        Ok(match (self.resume_by, gtid) {
            (ResumeBy::Gtid, Some(g)) if is_mariadb && !g.contains(':') => {
                StreamStart::MariaGtid(g.to_owned())
            }
            (ResumeBy::Gtid, Some(g)) if !is_mariadb && g.contains(':') => StreamStart::MySqlGtid(
                GtidSet::parse(g)
                    .ok_or_else(|| Error::Position(format!("malformed GTID set {g}")))?,
            ),
            _ => StreamStart::FilePos {
                file: file.to_string(),
                pos: *pos,
            },
        })
    }

    /// Connects, checks the server and opens the stream after `position`
    /// (`None`: the configured start).
    async fn open(&mut self, position: Option<SourcePosition>) -> Result<()> {
        self.stream = None;
        let mut conn = stream::connect(&self.config).await?;
        let info = check_server(&mut conn, self.config.server_id).await?;
        let is_mariadb = info.is_mariadb;
        tracing::debug!(version = %info.version, "server checks passed");
        self.info = Some(info);
        let position = match position {
            Some(p) => p,
            None => match self.config.start_from {
                StartFrom::Current => stream::current_position(&mut conn, is_mariadb).await?,
                StartFrom::Earliest => {
                    let files = stream::binlog_files(&mut conn).await?;
                    let file = files.into_iter().next().unwrap_or_default();
                    SourcePosition::MySql {
                        file: file.into(),
                        pos: 4,
                        gtid: None,
                    }
                }
            },
        };
        let start = self.start_for(&position)?;
        if let StreamStart::FilePos { file, .. } = &start {
            let files = stream::binlog_files(&mut conn).await?;
            if !files.contains(file) {
                return Err(Error::NeedsBackfill {
                    file: file.clone(),
                    detail: format!(
                        "the server's oldest binlog is {}",
                        files.first().map_or("none", String::as_str)
                    ),
                });
            }
        }
        let SourcePosition::MySql { file, pos, gtid } = &position else {
            return Err(Error::Position(format!("{position:?}")));
        };
        let mut decoder = new_decoder(&self.config, self.filter.clone());
        decoder
            .set_position(file, *pos, gtid.as_deref())
            .map_err(Error::Position)?;
        // XA transactions prepared earlier in this stream are committed later in it.
        decoder.continue_prepared_xa(&mut self.decoder);
        self.decoder = decoder;
        tracing::info!(
            server_id = self.config.server_id,
            ?start,
            "requesting binlog stream"
        );
        self.stream = Some(stream::open(&self.config, is_mariadb, &start).await?);
        self.catalog = Some(conn);
        self.start = Some(start);
        self.opened_from = Some(position);
        self.seen_format = false;
        Ok(())
    }

    /// Reconnects after a dropped connection, resuming after the last complete
    /// transaction decoded.
    async fn reconnect(&mut self, cause: Error) -> Result<()> {
        self.decoder.abandon_transaction();
        let resume = self
            .pending
            .back()
            .map(|b| b.position.clone())
            .or_else(|| self.delivered.clone())
            .or_else(|| self.opened_from.clone());
        let mut delay = Duration::from_millis(200);
        let mut last = cause;
        for attempt in 1..=self.config.reconnect_attempts {
            tracing::warn!(attempt, error = %last, "binlog stream dropped; reconnecting");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
            // A connection that goes silent while it is opened would hold the
            // attempt forever; it counts as a failed attempt instead.
            let limit = self.config.idle_timeout;
            match within(limit, self.open(resume.clone()))
                .await
                .and_then(|r| r)
            {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn handle(&mut self, event: mysql_async::binlog::events::Event) -> Result<()> {
        let (header, data) = stream::event_parts(&event);
        let mut data = data;
        if header.kind == kind::FORMAT_DESCRIPTION {
            self.seen_format = true;
        }
        if header.kind == kind::ROTATE && !self.seen_format {
            data = strip_checksum(&header, data);
        }
        if header.kind == kind::TABLE_MAP
            && self.info.as_ref().is_some_and(|i| i.is_mariadb)
            && let Some(table) = self.decoder.new_table(data)
            && let Some(conn) = self.catalog.as_mut()
        {
            let lookup = stream::type_hints(conn, &table.schema, &table.name);
            let hints = within(self.config.idle_timeout, lookup).await??;
            self.decoder.schemas_mut().set_hints(table, hints);
        }
        let mut out = Vec::new();
        let fed = self.decoder.feed(&header, data, &mut out);
        self.pending.extend(out);
        fed.map_err(|e| e.into_error(self.decoder.file(), u64::from(header.log_pos)))
    }
}

/// Runs `work`, or gives up after `limit` with [`Error::Stalled`]: a
/// connection that goes silent sends no reset, so every wait on the server is
/// bounded by `idle_timeout`.
async fn within<F: std::future::Future>(limit: Duration, work: F) -> Result<F::Output> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| Error::Stalled { waited: limit })
}

fn new_decoder(config: &MySqlConfig, filter: Option<HashSet<TableName>>) -> Decoder {
    // `validate` checked that the chunk size fits in usize.
    let chunk = usize::try_from(config.transaction_chunk_bytes).unwrap_or(usize::MAX);
    Decoder::new(filter, false)
        .with_transaction_chunk_bytes(chunk)
        .with_spill_dir(config.spill_dir.clone())
}

/// Before the format description arrives, the driver does not know events
/// carry a checksum and leaves it on the artificial rotate event; strip it if
/// the last four bytes are the event's CRC32.
fn strip_checksum<'a>(h: &EventHeader, data: &'a [u8]) -> &'a [u8] {
    let Some(split) = data.len().checked_sub(4) else {
        return data;
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend(h.timestamp.to_le_bytes());
    header.push(h.kind);
    header.extend(h.server_id.to_le_bytes());
    header.extend(h.event_size.to_le_bytes());
    header.extend(h.log_pos.to_le_bytes());
    header.extend(h.flags.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    hasher.update(&data[..split]);
    let crc = u32::from_le_bytes([
        data[split],
        data[split + 1],
        data[split + 2],
        data[split + 3],
    ]);
    if hasher.finalize() == crc {
        &data[..split]
    } else {
        data
    }
}

#[async_trait]
impl Source for MySqlSource {
    type Error = Error;

    fn tables(&self) -> &[TableName] {
        &self.config.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<()> {
        self.pending.clear();
        self.delivered = resume_after.clone();
        self.open(resume_after).await
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                self.delivered = Some(batch.position.clone());
                return Ok(Some(batch));
            }
            // Parts of a split transaction come from its spill file, after
            // everything decoded before its commit.
            if let Some(part) = self
                .decoder
                .next_part()
                .map_err(|e| e.into_error(self.decoder.file(), 0))?
            {
                self.delivered = Some(part.position.clone());
                return Ok(Some(part));
            }
            let stream = self
                .stream
                .as_mut()
                .ok_or(Error::State("next_batch called before start"))?;
            let next = match within(self.config.idle_timeout, stream.next()).await {
                Ok(next) => next,
                Err(stalled) => {
                    self.reconnect(stalled).await?;
                    continue;
                }
            };
            match next {
                Some(Ok(event)) => match self.handle(event).await {
                    // The catalog lookup of a table map lost its connection
                    // (spill errors, also retryable, are not retried here).
                    Err(err @ (Error::Mysql { .. } | Error::Stalled { .. })) => {
                        self.reconnect(err).await?;
                    }
                    handled => handled?,
                },
                Some(Err(e)) => {
                    let start = self.start.clone().ok_or(Error::State("no stream"))?;
                    let err = stream::map_stream_error(e, &start, self.config.server_id);
                    if !err.is_retryable() {
                        return Err(err);
                    }
                    self.reconnect(err).await?;
                }
                None => {
                    let err = Error::State("the server closed the binlog stream");
                    self.reconnect(err).await?;
                }
            }
        }
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<()> {
        self.acked = Some(position.clone());
        Ok(())
    }
}
