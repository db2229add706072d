//! The change-stream reader.

use std::collections::{BTreeMap, VecDeque};
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bson::{Document, RawDocumentBuf, doc};
use cdc_core::event::{SourcePosition, TableName, now_micros};
use cdc_core::{Source, SourceBatch};
use mongodb::Client;
use mongodb::change_stream::ChangeStream;
use mongodb::options::{ClientOptions, FullDocumentBeforeChangeType, FullDocumentType};

use crate::config::{FullDocument, MongoConfig};
use crate::error::{Error, Result, within};
use crate::event::{self, Operation};
use crate::token;
use crate::transaction::Assembler;

/// Reads a MongoDB replica set's or sharded cluster's change stream for the
/// declared collections.
///
/// Each collection is a table of two columns of Extended JSON, `_id` (the key, as text) and
/// `document` (see [`crate::document`]). Inserts carry the document; updates
/// and replacements the document after them ([`FullDocument`]), deletes the
/// key (and the document before them with
/// [`before_images`](MongoConfig::before_images)); a dropped collection is a
/// truncate. Events of a multi-document transaction form one transaction in
/// the log. A declared collection renamed, or another renamed onto one, stops
/// the stream with an error naming the fix.
///
/// MongoDB keeps no reader state on the server: the position lives in the
/// change log only, and [`acknowledge`](Source::acknowledge) releases nothing.
/// After a failure a retry can fix (a dropped or silent connection, an
/// election, a restart) the source opens a new stream by itself, right after
/// the last whole transaction it handed out
/// ([`reconnect_attempts`](MongoConfig::reconnect_attempts)); other errors,
/// and a break after part of a split transaction was handed out, are
/// returned and say whether a new [`start`](Source::start) may help
/// ([`Error::is_retryable`]).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cdc_core::event::TableName;
/// use cdc_core::Source;
/// use cdc_mongo::{MongoConfig, MongoSource};
///
/// let config = MongoConfig::new(
///     "mongodb://cdc:pw@db1:27017/?replicaSet=rs0",
///     vec![TableName::new("shop", "orders")],
/// );
/// let mut source = MongoSource::new(config)?;
/// source.start(None).await?;
/// while let Some(batch) = source.next_batch().await? {
///     println!("{} records", batch.records.len());
/// }
/// # Ok(())
/// # }
/// ```
pub struct MongoSource {
    config: MongoConfig,
    client: Option<Client>,
    stream: Option<ChangeStream<RawDocumentBuf>>,
    assembler: Assembler,
    ready: VecDeque<SourceBatch>,
    last_heartbeat: Option<Instant>,
    /// Where the stream opened by the last `start` began (stored token), for
    /// resuming before anything was handed out.
    opened_at: Option<Vec<u8>>,
    reconnects: u64,
}

impl std::fmt::Debug for MongoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSource")
            .field("tables", &self.config.tables)
            .field("started", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl MongoSource {
    /// A source for `config`, checked; connects at [`start`](Source::start).
    pub fn new(config: MongoConfig) -> Result<Self> {
        config.validate()?;
        let assembler = assembler(&config, SourcePosition::None);
        Ok(MongoSource {
            config,
            client: None,
            stream: None,
            assembler,
            ready: VecDeque::new(),
            last_heartbeat: None,
            opened_at: None,
            reconnects: 0,
        })
    }

    /// Events read that carried nothing to apply (other collections, index
    /// builds, `create` and the like), since the last start.
    pub fn ignored_events(&self) -> u64 {
        self.assembler.ignored()
    }

    /// Streams resumed by the source itself after a retryable failure.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    async fn open(&mut self, resume_after: Option<&[u8]>, cluster_time: u64) -> Result<()> {
        self.stream = None;
        let client = match &self.client {
            Some(client) => client.clone(),
            None => self.client.insert(connect(&self.config).await?).clone(),
        };
        let stream = open_stream(&client, &self.config, resume_after, cluster_time).await?;
        self.stream = Some(stream);
        Ok(())
    }

    /// After a retryable failure: a new stream right after the last whole
    /// transaction handed out, with backoff; the failure itself when that
    /// cannot be done without loss or repetition.
    async fn reconnect(&mut self, cause: Error) -> Result<()> {
        if self.assembler.in_split_transaction() {
            return Err(cause);
        }
        let resume = match self.assembler.resume_point() {
            Some(SourcePosition::Mongo { resume_token, .. }) => Some(resume_token),
            Some(_) => None,
            None => self.opened_at.clone(),
        };
        let Some(resume) = resume else {
            return Err(cause);
        };
        let cluster_time = self.assembler.delivered_cluster_time();
        let mut delay = Duration::from_millis(200);
        let mut last = cause;
        for attempt in 1..=self.config.reconnect_attempts {
            tracing::warn!(attempt, error = %last, "change stream broke; resuming");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
            match self.open(Some(&resume), cluster_time).await {
                Ok(()) => {
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(e) if e.is_retryable() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn heartbeat_due(&self) -> bool {
        self.last_heartbeat
            .is_none_or(|at| at.elapsed() >= self.config.heartbeat_interval)
    }
}

/// A client for `config` (connections open on first use).
pub(crate) async fn connect(config: &MongoConfig) -> Result<Client> {
    let mut options = ClientOptions::parse(config.url.expose())
        .await
        .map_err(|e| Error::driver("connection string parsing", e, 0))?;
    options
        .app_name
        .get_or_insert_with(|| "cdc-mongo".to_owned());
    Client::with_options(options).map_err(|e| Error::driver("connect", e, 0))
}

/// Opens the change stream of the declared collections, after `resume_after`
/// (a stored token) or from now.
pub(crate) async fn open_stream(
    client: &Client,
    config: &MongoConfig,
    resume_after: Option<&[u8]>,
    cluster_time: u64,
) -> Result<ChangeStream<RawDocumentBuf>> {
    let databases: BTreeMap<&str, Vec<&str>> =
        config.tables.iter().fold(BTreeMap::new(), |mut acc, t| {
            acc.entry(t.schema.as_str())
                .or_default()
                .push(t.name.as_str());
            acc
        });
    let pipeline = vec![doc! { "$match": { "$or": match_namespaces(&databases) } }];
    // One database is watched alone, which needs privileges on it only.
    let database = match databases.keys().next() {
        Some(db) if databases.len() == 1 => Some(client.database(db)),
        _ => None,
    };
    let watch = match &database {
        Some(database) => database.watch(),
        None => client.watch(),
    };
    let full_document = match config.full_document {
        FullDocument::UpdateLookup => FullDocumentType::UpdateLookup,
        FullDocument::PostImage => FullDocumentType::Required,
    };
    let before = if config.before_images {
        FullDocumentBeforeChangeType::WhenAvailable
    } else {
        FullDocumentBeforeChangeType::Off
    };
    let mut watch = watch
        .pipeline(pipeline)
        .full_document(full_document)
        .full_document_before_change(before)
        .batch_size(config.batch_size)
        .max_await_time(config.poll_interval);
    if let Some(stored) = resume_after {
        watch = watch.start_after(token::resume_token(stored)?);
    }
    let context = "opening the change stream";
    let stream = within(
        config.idle_timeout,
        context,
        cluster_time,
        watch.into_future(),
    )
    .await?;
    Ok(stream.with_type::<RawDocumentBuf>())
}

fn assembler(config: &MongoConfig, delivered: SourcePosition) -> Assembler {
    Assembler::new(
        &config.tables,
        config.json,
        config.transaction_chunk_bytes,
        delivered,
    )
}

/// The `$or` that keeps events of the declared collections, and renames onto them.
fn match_namespaces(databases: &BTreeMap<&str, Vec<&str>>) -> Vec<Document> {
    databases
        .iter()
        .flat_map(|(db, colls)| {
            [
                doc! { "ns.db": *db, "ns.coll": { "$in": colls.clone() } },
                doc! { "to.db": *db, "to.coll": { "$in": colls.clone() } },
            ]
        })
        .collect()
}

#[async_trait]
impl Source for MongoSource {
    type Error = Error;

    fn tables(&self) -> &[TableName] {
        &self.config.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<()> {
        let (stored, cluster_time) = match &resume_after {
            None | Some(SourcePosition::None) => (None, 0),
            Some(SourcePosition::Mongo {
                resume_token,
                cluster_time,
            }) => (Some(resume_token.clone()), *cluster_time),
            Some(SourcePosition::Postgres { .. }) => {
                return Err(Error::ForeignPosition {
                    found: "PostgreSQL",
                });
            }
            Some(SourcePosition::MySql { .. }) => {
                return Err(Error::ForeignPosition { found: "MySQL" });
            }
        };
        self.ready.clear();
        self.last_heartbeat = None;
        self.assembler = assembler(&self.config, resume_after.unwrap_or(SourcePosition::None));
        self.open(stored.as_deref(), cluster_time).await?;
        self.opened_at = match stored {
            Some(stored) => Some(stored),
            None => self
                .stream
                .as_ref()
                .and_then(|s| s.resume_token())
                .as_ref()
                .and_then(token::from_driver)
                .map(|token| token::stored(&token)),
        };
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Ok(Some(batch));
            }
            let stream = self.stream.as_mut().ok_or(Error::NotStarted)?;
            let waited = self.config.poll_interval + self.config.idle_timeout;
            let cluster_time = self.assembler.delivered_cluster_time();
            let poll = stream.next_if_any();
            let next = match within(waited, "reading the change stream", cluster_time, poll).await {
                Ok(next) => next,
                Err(error) => {
                    self.stream = None;
                    if !error.is_retryable() {
                        return Err(error);
                    }
                    self.reconnect(error).await?;
                    continue;
                }
            };
            let Some(raw) = next else {
                let heartbeat = self.heartbeat_due();
                // Converting the driver's token costs a copy: only for a beat.
                let resume_point = self
                    .stream
                    .as_ref()
                    .filter(|_| heartbeat)
                    .and_then(|stream| stream.resume_token())
                    .as_ref()
                    .and_then(token::from_driver);
                let batches =
                    self.assembler
                        .quiet(resume_point.as_deref(), heartbeat, now_micros());
                if heartbeat {
                    self.last_heartbeat = Some(Instant::now());
                }
                self.ready.extend(batches);
                continue;
            };
            // An error ends the stream: a later `next_batch` must not read on
            // past the event that caused it.
            let event = match event::decode(raw.as_bytes()) {
                Ok(event) => event,
                Err(e) => {
                    self.stream = None;
                    return Err(Error::MalformedEvent {
                        reason: e.to_string(),
                    });
                }
            };
            if event.operation == Operation::Invalidate {
                // The watched database went away; a new stream starts after it.
                let SourcePosition::Mongo { resume_token, .. } = &event.position else {
                    return Err(Error::MalformedEvent {
                        reason: "an invalidate event without a resume token".to_owned(),
                    });
                };
                let stored = resume_token.clone();
                let token = token::document(&stored)?;
                let batches = self.assembler.quiet(Some(&token), true, now_micros());
                self.ready.extend(batches);
                tracing::info!("change stream invalidated; opening a new one after it");
                self.open(Some(&stored), event.cluster_time).await?;
                continue;
            }
            match self.assembler.push(event) {
                Ok(batches) => self.ready.extend(batches),
                Err(e) => {
                    self.stream = None;
                    return Err(e);
                }
            }
        }
    }

    async fn acknowledge(&mut self, _position: &SourcePosition) -> Result<()> {
        // The server keeps no reader position: the log's is the only one.
        Ok(())
    }
}
