//! Source configuration.

use std::fmt;
use std::time::Duration;

use cdc_core::event::TableName;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A connection string, which may hold a password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionString(String);

impl ConnectionString {
    /// Wraps a `mongodb://` or `mongodb+srv://` connection string.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectionString(url.into())
    }

    /// The string itself, for handing to the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionString(***)")
    }
}

/// Which document an update event carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullDocument {
    /// The server looks the document up when it reads the event
    /// (`updateLookup`, default): the document as it is then, which may be
    /// newer than the update; a document deleted since comes as
    /// [`Value::Unchanged`](cdc_core::event::Value::Unchanged), and its delete
    /// follows.
    #[default]
    UpdateLookup,
    /// The post-image the server stored with the change (`required`). Needs
    /// MongoDB 6.0 and `changeStreamPreAndPostImages` enabled on each
    /// collection; the server fails the stream where one is missing.
    PostImage,
}

/// How BSON values become JSON text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    /// Relaxed Extended JSON v2 (default): numbers as JSON numbers where that
    /// is exact, dates as `{"$date": "<ISO-8601>"}`.
    #[default]
    Relaxed,
    /// Canonical Extended JSON v2: every value keeps its BSON type
    /// (`{"$numberLong": "7"}`), for consumers that must tell int32, int64 and
    /// double apart.
    Canonical,
}

/// Configuration of a [`MongoSource`](crate::MongoSource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// Connection string of a replica set or sharded cluster (change streams
    /// need one). The user needs `changeStream` and `find` on the collections.
    pub url: ConnectionString,
    /// Collections to read, as `TableName { schema: database, name: collection }`.
    /// At least one.
    pub tables: Vec<TableName>,
    /// Which document update events carry. Default [`FullDocument::UpdateLookup`].
    #[serde(default)]
    pub full_document: FullDocument,
    /// Deletes and updates carry the pre-image the server stored
    /// (`fullDocumentBeforeChange: whenAvailable`). Needs MongoDB 6.0 and
    /// `changeStreamPreAndPostImages`; without them deletes carry the key
    /// only. Default false.
    #[serde(default)]
    pub before_images: bool,
    /// How documents and keys become JSON text. Default [`JsonMode::Relaxed`].
    #[serde(default)]
    pub json: JsonMode,
    /// How long the server waits for new events before answering a quiet poll,
    /// which is also how long the last event of a transaction may wait to be
    /// handed out. Default 500 ms.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Duration,
    /// A poll or stream opening unanswered this long beyond `poll_interval`
    /// means a dead network path: the stream ends with the retryable
    /// [`Error::Stalled`]. Default 60 s.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Reconnect attempts after the stream broke for a reason a retry can fix
    /// ([`Error::is_retryable`]: a dropped or stalled connection, an
    /// election, a restart), on top of the driver's own single resume, before
    /// the error is returned. The stream resumes right after the last whole
    /// transaction handed out, so nothing is lost or repeated; only a stream
    /// that broke after handing out part of a split transaction returns the
    /// error at once, for the host to restart from its log. Zero returns every
    /// error. Default 20 (backoff from 200 ms doubling to 2 s: about 35 s).
    #[serde(default = "default_reconnect_attempts")]
    pub reconnect_attempts: u32,
    /// Quiet polls hand out a heartbeat at the server's resume point at most
    /// this often. Default 10 s.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval: Duration,
    /// Events a poll asks for. Default 1000.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// A transaction larger than this (in JSON bytes) is handed out in parts
    /// (see the `Source` contract). Default 64 MiB.
    #[serde(default = "default_transaction_chunk_bytes")]
    pub transaction_chunk_bytes: usize,
}

fn default_poll_interval() -> Duration {
    Duration::from_millis(500)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_reconnect_attempts() -> u32 {
    20
}

fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_batch_size() -> u32 {
    1000
}

fn default_transaction_chunk_bytes() -> usize {
    64 << 20
}

impl MongoConfig {
    /// A configuration with defaults for everything but the server and the
    /// collections.
    pub fn new(url: impl Into<String>, tables: Vec<TableName>) -> Self {
        MongoConfig {
            url: ConnectionString::new(url),
            tables,
            full_document: FullDocument::default(),
            before_images: false,
            json: JsonMode::default(),
            poll_interval: default_poll_interval(),
            idle_timeout: default_idle_timeout(),
            reconnect_attempts: default_reconnect_attempts(),
            heartbeat_interval: default_heartbeat_interval(),
            batch_size: default_batch_size(),
            transaction_chunk_bytes: default_transaction_chunk_bytes(),
        }
    }

    /// Checks the values, naming the field to fix.
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field: &'static str, reason: &'static str| Err(Error::InvalidConfig { field, reason });
        if !self.url.expose().starts_with("mongodb://")
            && !self.url.expose().starts_with("mongodb+srv://")
        {
            return invalid("url", "must start with mongodb:// or mongodb+srv://");
        }
        if self.tables.is_empty() {
            return invalid("tables", "declare at least one collection");
        }
        if self
            .tables
            .iter()
            .any(|t| t.schema.is_empty() || t.name.is_empty())
        {
            return invalid("tables", "each needs a database and a collection name");
        }
        if self.poll_interval.is_zero() || self.poll_interval > Duration::from_secs(60) {
            return invalid("poll_interval", "must be between 1 ms and 60 s");
        }
        if self.idle_timeout < Duration::from_secs(1) {
            return invalid("idle_timeout", "must be at least 1 s");
        }
        if self.heartbeat_interval.is_zero() {
            return invalid("heartbeat_interval", "must be above zero");
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return invalid("batch_size", "must be between 1 and 100000");
        }
        if self.transaction_chunk_bytes < 1024 {
            return invalid("transaction_chunk_bytes", "must be at least 1 KiB");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MongoConfig {
        MongoConfig::new(
            "mongodb://cdc:secret-pw@db1:27017/?replicaSet=rs0",
            vec![TableName::new("shop", "orders")],
        )
    }

    #[test]
    fn defaults_validate_and_debug_hides_the_connection_string() {
        let config = config();
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("secret-pw"));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Spoil = fn(&mut MongoConfig);
        let cases: [(&str, Spoil); 4] = [
            ("url", |c| c.url = ConnectionString::new("postgres://x")),
            ("tables", |c| c.tables.clear()),
            ("poll_interval", |c| c.poll_interval = Duration::ZERO),
            ("batch_size", |c| c.batch_size = 0),
        ];
        for (field, spoil) in cases {
            let mut config = config();
            spoil(&mut config);
            match config.validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = r#"{"url": "mongodb://h", "tables": [], "pol_interval": 1}"#;
        assert!(serde_json::from_str::<MongoConfig>(json).is_err());
    }
}
