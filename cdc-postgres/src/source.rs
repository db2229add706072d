//! The [`Source`] implementation: slot checks, starting and restarting the
//! replication stream.

use async_trait::async_trait;
use cdc_core::event::{SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};
use tokio_postgres::{Client, NoTls};
use tracing::{debug, info, warn};

use crate::config::PostgresConfig;
use crate::error::{Error, Result};
use crate::liveness::{effective_timeout, within};
use crate::replication::{ReplicationConnection, format_lsn};
use crate::slot;
use crate::snapshot::InitialSnapshot;
use crate::stream::{Resuming, Running};

/// A PostgreSQL logical replication source reading pgoutput from one slot.
///
/// `start` checks the server's settings, the tables and the publication, finds
/// or creates the slot and starts streaming after the resume position. Batches
/// are whole transactions in commit order, positioned at the commit record's
/// LSN plus one; a transaction whose buffered changes reach
/// [`PostgresConfig::transaction_chunk_bytes`] comes in parts (see
/// [`Assembler`](crate::Assembler)). The slot's confirmed position advances
/// only through [`acknowledge`](Source::acknowledge).
///
/// A connection whose requests for an answer go unanswered for
/// [`PostgresConfig::idle_timeout`] counts as broken ([`Error::Stalled`]).
/// After a broken connection or a server restart the source reconnects by
/// itself ([`PostgresConfig::reconnect_attempts`]) and resumes right after
/// the last whole transaction it handed out, so nothing is lost or repeated.
/// Any other error, or one after part of a split transaction was handed out,
/// ends the stream: `start` again resumes from the change log's last durable
/// position. Either way a stalled stream's walsender, which would hold the
/// slot until its own timeout, is ended first.
pub struct PostgresSource {
    config: PostgresConfig,
    running: Option<Running>,
    /// A replication connection that created the slot and exported the
    /// initial snapshot, kept idle until streaming starts at `.1`.
    pending: Option<(ReplicationConnection, u64)>,
    /// The walsender of a stream given up as stalled, still holding the slot
    /// as far as the server knows.
    abandoned: Option<i32>,
    /// Why an acknowledgement found the stream broken, for the next batch to
    /// reconnect.
    broken: Option<Error>,
    /// A broken stream being replaced.
    resuming: Option<Resuming>,
    reconnects: u64,
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
            abandoned: None,
            broken: None,
            resuming: None,
            reconnects: 0,
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
        let client = self.connect_client().await?;
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
        let mut conn = self.connect_replication().await?;
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

    /// How many times the stream was resumed on a new connection by the
    /// source itself (see [`PostgresConfig::reconnect_attempts`]).
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Drops the slot and the publication (teardown, or before a major-version
    /// upgrade; a later `start` with a resume position then reports the gap).
    pub async fn drop_slot_and_publication(&mut self) -> Result<()> {
        self.running = None;
        let client = self.connect_client().await?;
        self.end_abandoned_walsender(&client).await;
        // The walsender of the stream just closed holds the slot a moment longer.
        slot::await_released(&client, &self.config.slot).await?;
        slot::drop_slot(&client, &self.config.slot).await?;
        slot::drop_publication(&client, &self.config.publication).await
    }

    /// Takes the stream out after `error`, remembering its walsender if the
    /// path went silent: the server does not know the connection is gone.
    fn end_stream(&mut self, error: &Error) -> Option<Running> {
        let running = self.running.take()?;
        if matches!(error, Error::Stalled { .. }) {
            self.abandoned = running.walsender_pid();
        }
        Some(running)
    }

    /// Replaces a broken stream by one that starts right after the last
    /// whole transaction handed out, with backoff, until the attempts run out.
    async fn resume(&mut self) -> Result<()> {
        loop {
            let Some(resuming) = self.resuming.as_mut() else {
                return Ok(());
            };
            if resuming.attempts >= self.config.reconnect_attempts {
                let resuming = self.resuming.take();
                return Err(resuming.map_or(Error::NotStarted, |r| r.last_error));
            }
            resuming.attempts += 1;
            warn!(attempt = resuming.attempts, error = %resuming.last_error, "replication stream broke; reconnecting");
            let (delay, at) = (resuming.next_delay(), resuming.at);
            tokio::time::sleep(delay).await;
            // An attempt on a path that goes silent counts as failed.
            let limit = self.config.idle_timeout;
            let open = Box::pin(self.open(Some(at)));
            match within(limit, "reconnecting", open).await {
                Ok(mut running) => {
                    if let Some(resuming) = self.resuming.take() {
                        running.resume_from(resuming);
                    }
                    self.running = Some(running);
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(error) if error.is_retryable() => {
                    if let Some(resuming) = self.resuming.as_mut() {
                        resuming.last_error = error;
                    }
                }
                Err(error) => {
                    self.resuming = None;
                    return Err(error);
                }
            }
        }
    }

    /// [`connect_client`], bounded by the idle timeout.
    async fn connect_client(&self) -> Result<Client> {
        let connect = connect_client(&self.config);
        within(self.config.idle_timeout, "connecting", connect).await
    }

    /// A replication connection, bounded by the idle timeout.
    async fn connect_replication(&self) -> Result<ReplicationConnection> {
        let connect = ReplicationConnection::connect(&self.config);
        within(self.config.idle_timeout, "connecting", Box::pin(connect)).await
    }

    /// Ends the walsender of a stream given up as stalled, if it still holds
    /// the slot. Failing that, the slot's holder is reported as usual.
    async fn end_abandoned_walsender(&mut self, client: &Client) {
        let Some(pid) = self.abandoned.take() else {
            return;
        };
        if let Err(error) = slot::end_abandoned_walsender(client, &self.config.slot, pid).await {
            warn!(%error, pid, "could not end the walsender of a stalled stream");
        }
    }

    async fn open(&mut self, resume_after: Option<u64>) -> Result<Running> {
        self.config.validate()?;
        let client = self.connect_client().await?;
        slot::check_prerequisites(&client, &self.config).await?;
        let wal_sender_timeout = within(
            self.config.idle_timeout,
            "reading wal_sender_timeout",
            slot::wal_sender_timeout(&client),
        )
        .await?;
        let idle_timeout = effective_timeout(
            self.config.idle_timeout,
            wal_sender_timeout,
            self.config.status_interval,
        );
        self.end_abandoned_walsender(&client).await;
        let pending = self.pending.take();
        let (mut conn, start) = match pending {
            Some((conn, point)) => (conn, point.max(resume_after.unwrap_or(0))),
            None => self.find_or_create_slot(&client, resume_after).await?,
        };
        let publication = slot::quote_ident(&self.config.publication).replace('\'', "''");
        let command = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names '{}', messages 'true')",
            slot::quote_ident(&self.config.slot),
            format_lsn(start),
            publication
        );
        let starting = conn.start_replication(&command);
        if let Err(error) = within(idle_timeout, "starting replication", starting).await {
            // The walsender may have taken the slot before the path went silent.
            if matches!(error, Error::Stalled { .. }) {
                self.abandoned = conn.backend_pid();
            }
            return Err(error);
        }
        Ok(Running::new(
            conn,
            client,
            &self.config,
            start,
            idle_timeout,
        ))
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
                let mut conn = self.connect_replication().await?;
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
        Ok((self.connect_replication().await?, start))
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
        self.broken = None;
        self.resuming = None;
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
        loop {
            self.resume().await?;
            let running = self.running.as_mut().ok_or(Error::NotStarted)?;
            let error = match self.broken.take() {
                Some(error) => error,
                None => match running.next_batch(&self.config).await {
                    Ok(batch) => return Ok(batch),
                    Err(error) => error,
                },
            };
            let resumable =
                self.config.reconnect_attempts > 0 && error.is_retryable() && running.resumable();
            match self.end_stream(&error) {
                Some(running) if resumable => self.resuming = Some(running.into_resuming(error)),
                _ => return Err(error),
            }
        }
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<()> {
        let SourcePosition::Postgres { lsn } = position else {
            return Err(Error::ForeignPosition {
                position: format!("{position:?}"),
            });
        };
        if let Some(resuming) = self.resuming.as_mut() {
            resuming.acknowledge(*lsn);
            return Ok(());
        }
        let running = self.running.as_mut().ok_or(Error::NotStarted)?;
        match running.acknowledge(*lsn).await {
            // The position is recorded; the next stream confirms it.
            Err(error) if error.is_retryable() && self.config.reconnect_attempts > 0 => {
                debug!(%error, "status update failed; reconnecting at the next batch");
                self.broken = Some(error);
                Ok(())
            }
            Err(error) => {
                self.end_stream(&error);
                Err(error)
            }
            Ok(()) => Ok(()),
        }
    }
}
