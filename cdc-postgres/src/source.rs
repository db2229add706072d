//! The [`Source`] implementation: slot checks, the replication stream, standby
//! status updates and heartbeats.

use std::time::Instant;

use async_trait::async_trait;
use cdc_core::event::{SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};
use tokio_postgres::{Client, NoTls};
use tracing::{debug, info};

use crate::assembler::{Assembler, HEARTBEAT_PREFIX};
use crate::config::PostgresConfig;
use crate::error::{Error, Result};
use crate::pgoutput::{self, PgOutputMessage};
use crate::replication::{CopyMessage, ReplicationConnection, format_lsn};
use crate::schema::Catalog;
use crate::slot;
use crate::snapshot::InitialSnapshot;

/// A PostgreSQL logical replication source reading pgoutput from one slot.
///
/// `start` checks the server's settings, the tables and the publication, finds
/// or creates the slot and starts streaming after the resume position. Batches
/// are whole transactions in commit order, positioned at the commit record's
/// LSN plus one; a transaction whose buffered changes reach
/// [`PostgresConfig::transaction_chunk_bytes`] comes in parts (see
/// [`Assembler`](crate::Assembler)). The slot's confirmed position advances
/// only through [`acknowledge`](Source::acknowledge).
pub struct PostgresSource {
    config: PostgresConfig,
    running: Option<Running>,
    /// A replication connection that created the slot and exported the
    /// initial snapshot, kept idle until streaming starts at `.1`.
    pending: Option<(ReplicationConnection, u64)>,
}

struct Running {
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
    /// The server's sent position from the last keepalive.
    keepalive_end: u64,
    last_status: Instant,
    last_activity: Instant,
    heartbeat_pending: bool,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("config", &self.config)
            .field("running", &self.running.is_some())
            .finish()
    }
}

/// Connects an ordinary (non-replication) client with the decoder's session settings.
pub async fn connect_client(config: &PostgresConfig) -> Result<Client> {
    let query_config = config.query_config();
    let Some(tls) = crate::tls::client_config(config)? else {
        let (client, connection) = query_config
            .connect(NoTls)
            .await
            .map_err(Error::query("connecting"))?;
        tokio::spawn(log_end(connection));
        return Ok(client);
    };
    let (client, connection) = query_config
        .connect(crate::tls::MakeRustlsConnect::new(tls))
        .await
        .map_err(Error::query("connecting"))?;
    tokio::spawn(log_end(connection));
    Ok(client)
}

async fn log_end(connection: impl std::future::Future<Output = Result<(), tokio_postgres::Error>>) {
    if let Err(error) = connection.await {
        debug!(%error, "query connection ended");
    }
}

impl PostgresSource {
    /// A source for `config`; nothing connects until `start`.
    pub fn new(config: PostgresConfig) -> Self {
        Self {
            config,
            running: None,
            pending: None,
        }
    }

    /// Creates the slot with an exported snapshot and returns a reader of every
    /// declared table as of the slot's consistent point. Read it to the end,
    /// then call [`start`](Source::start) with `None`: the stream continues
    /// exactly after the snapshot. Fails if the slot already exists.
    pub async fn begin_initial_snapshot(&mut self, chunk_rows: usize) -> Result<InitialSnapshot> {
        self.running = None;
        self.pending = None;
        self.config.validate()?;
        let client = connect_client(&self.config).await?;
        slot::check_prerequisites(&client, &self.config).await?;
        if slot::existing_slot(&client, &self.config).await?.is_some() {
            return Err(Error::Config {
                field: "slot",
                reason: format!(
                    "slot {} already exists; an initial snapshot needs a new slot \
                     (drop it to start over)",
                    self.config.slot
                ),
            });
        }
        let mut conn = ReplicationConnection::connect(&self.config).await?;
        let rows = conn
            .simple_query(
                &format!(
                    "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
                    slot::quote_ident(&self.config.slot)
                ),
                "creating the replication slot",
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::protocol("CREATE_REPLICATION_SLOT returned no row"))?;
        let point = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|t| crate::replication::parse_lsn(&t))
            .ok_or_else(|| Error::protocol("CREATE_REPLICATION_SLOT returned no position"))?;
        let name = row
            .get(2)
            .cloned()
            .flatten()
            .ok_or_else(|| Error::protocol("CREATE_REPLICATION_SLOT exported no snapshot"))?;
        let snapshot =
            InitialSnapshot::open(client, &name, self.config.tables.clone(), point, chunk_rows)
                .await?;
        info!(slot = %self.config.slot, at = %format_lsn(point), "created slot with exported snapshot");
        self.pending = Some((conn, point));
        Ok(snapshot)
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// Drops the slot and the publication (teardown, or before a major-version
    /// upgrade; a later `start` with a resume position then reports the gap).
    pub async fn drop_slot_and_publication(&mut self) -> Result<()> {
        self.running = None;
        let client = connect_client(&self.config).await?;
        // The walsender of the stream just closed holds the slot a moment longer.
        slot::await_released(&client, &self.config.slot).await?;
        slot::drop_slot(&client, &self.config.slot).await?;
        slot::drop_publication(&client, &self.config.publication).await
    }

    async fn open(&mut self, resume_after: Option<u64>) -> Result<Running> {
        self.config.validate()?;
        let client = connect_client(&self.config).await?;
        slot::check_prerequisites(&client, &self.config).await?;
        let pending = self.pending.take();
        let (conn, start) = match pending {
            Some((conn, point)) => (conn, point.max(resume_after.unwrap_or(0))),
            None => self.find_or_create_slot(&client, resume_after).await?,
        };
        self.start_stream(conn, client, start).await
    }

    async fn find_or_create_slot(
        &self,
        client: &Client,
        resume_after: Option<u64>,
    ) -> Result<(ReplicationConnection, u64)> {
        let start = match slot::existing_slot(client, &self.config).await? {
            Some(state) => {
                let start = state.confirmed_flush.max(resume_after.unwrap_or(0));
                info!(slot = %self.config.slot, start = %format_lsn(start), "resuming from slot");
                start
            }
            None if resume_after.is_some_and(|lsn| lsn > 0) => {
                return Err(Error::NeedsBackfill {
                    slot: self.config.slot.clone(),
                    reason: "the slot no longer exists (dropped while the reader was away)".into(),
                });
            }
            None => {
                let mut conn = ReplicationConnection::connect(&self.config).await?;
                let rows = conn
                    .simple_query(
                        &format!(
                            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'nothing')",
                            slot::quote_ident(&self.config.slot)
                        ),
                        "creating the replication slot",
                    )
                    .await?;
                let point = rows
                    .first()
                    .and_then(|r| r.get(1).cloned().flatten())
                    .and_then(|t| crate::replication::parse_lsn(&t))
                    .ok_or_else(|| {
                        Error::protocol("CREATE_REPLICATION_SLOT returned no position")
                    })?;
                info!(slot = %self.config.slot, at = %format_lsn(point), "created replication slot");
                return Ok((conn, point));
            }
        };
        Ok((ReplicationConnection::connect(&self.config).await?, start))
    }

    async fn start_stream(
        &self,
        mut conn: ReplicationConnection,
        client: Client,
        start: u64,
    ) -> Result<Running> {
        let publication = slot::quote_ident(&self.config.publication).replace('\'', "''");
        conn.start_replication(&format!(
            "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names '{}', messages 'true')",
            slot::quote_ident(&self.config.slot),
            format_lsn(start),
            publication
        ))
        .await?;
        let now = Instant::now();
        Ok(Running {
            conn,
            client,
            catalog: Catalog::default(),
            assembler: Assembler::new(
                &self.config.tables,
                start,
                self.config.transaction_chunk_bytes,
            ),
            flushed: start,
            written: start,
            delivered: start,
            keepalive_end: 0,
            last_status: now,
            last_activity: now,
            heartbeat_pending: false,
        })
    }
}

impl Running {
    async fn send_status(&mut self) -> Result<()> {
        self.last_status = Instant::now();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        // When every batch handed out is acknowledged and no transaction is
        // open, nothing up to the server's sent position is ours to lose, so it
        // may be confirmed: this is what lets a fast shutdown of the server
        // finish (the walsender waits for its sent position to be confirmed).
        let idle = !self.assembler.in_transaction() && self.flushed >= self.delivered;
        let flushed = if idle {
            self.flushed.max(self.keepalive_end)
        } else {
            self.flushed
        };
        self.conn
            .send_status(self.written.max(flushed), flushed, now)
            .await
    }

    async fn emit_heartbeat(&mut self) -> Result<()> {
        self.heartbeat_pending = true;
        self.client
            .execute(
                "SELECT pg_catalog.pg_logical_emit_message(false, $1::text, ''::text)",
                &[&HEARTBEAT_PREFIX],
            )
            .await
            .map_err(Error::query("emitting a heartbeat message"))?;
        Ok(())
    }

    async fn next_batch(&mut self, config: &PostgresConfig) -> Result<Option<SourceBatch>> {
        loop {
            let status_due = self.last_status + config.status_interval;
            let heartbeat_due = self.last_activity + config.heartbeat_interval;
            let deadline = status_due.min(heartbeat_due);
            let message =
                match tokio::time::timeout_at(deadline.into(), self.conn.next_copy_message()).await
                {
                    Ok(message) => message?,
                    Err(_) => {
                        let now = Instant::now();
                        if now >= status_due {
                            self.send_status().await?;
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
                        self.send_status().await?;
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
                        let info = self.catalog.describe(&self.client, relation).await?;
                        self.assembler.add_relation(relation.id, info);
                        continue;
                    }
                    if matches!(&message, PgOutputMessage::Message(m) if m.prefix == HEARTBEAT_PREFIX)
                    {
                        self.heartbeat_pending = false;
                    }
                    if let Some(batch) = self.assembler.handle(message, data.len())? {
                        if let SourcePosition::Postgres { lsn } = batch.position {
                            self.delivered = self.delivered.max(lsn);
                        }
                        return Ok(Some(batch));
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Source for PostgresSource {
    type Error = Error;

    fn tables(&self) -> &[TableName] {
        &self.config.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<()> {
        self.running = None;
        let resume = match resume_after {
            None | Some(SourcePosition::None) => None,
            Some(SourcePosition::Postgres { lsn }) => Some(lsn),
            Some(other) => {
                return Err(Error::ForeignPosition {
                    position: format!("{other:?}"),
                });
            }
        };
        self.running = Some(Box::pin(self.open(resume)).await?);
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let running = self.running.as_mut().ok_or(Error::NotStarted)?;
        let result = running.next_batch(&self.config).await;
        if result.is_err() {
            self.running = None;
        }
        result
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<()> {
        let running = self.running.as_mut().ok_or(Error::NotStarted)?;
        let SourcePosition::Postgres { lsn } = position else {
            return Err(Error::ForeignPosition {
                position: format!("{position:?}"),
            });
        };
        if *lsn > running.flushed {
            running.flushed = *lsn;
            running.send_status().await?;
        }
        Ok(())
    }
}
