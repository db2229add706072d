//! Opening the database, and where the blocking SQLite calls run.
//!
//! rusqlite is synchronous. On a multi-threaded tokio runtime a batch is applied
//! in place under `block_in_place` (the runtime hands this worker's other tasks
//! to another thread), so the rows are bound straight from the caller's batch.
//! A current-thread runtime cannot do that without stalling every other task,
//! so there the batch is copied to a blocking-pool thread instead.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::apply::SqliteState;
use super::config::SqliteConfig;
use crate::error::{Result, SinkError};
use crate::mode::{OFFSETS_TABLE, SCHEMAS_TABLE};
use crate::quote::Dialect;

/// The connection state, shared with blocking-pool threads.
pub(super) struct Shared {
    state: Arc<Mutex<SqliteState>>,
}

impl Shared {
    /// Opens the database (blocking).
    pub(super) fn open(config: SqliteConfig) -> Result<Self> {
        let conn = open(&config)?;
        Ok(Self {
            state: Arc::new(Mutex::new(SqliteState::new(conn, config))),
        })
    }

    /// Runs `f` on this thread if blocking here is allowed (a multi-threaded
    /// runtime, or no runtime at all); `None` when it must run elsewhere.
    pub(super) fn in_place<R>(
        &self,
        f: impl FnOnce(&mut SqliteState) -> Result<R>,
    ) -> Option<Result<R>> {
        let run = || {
            let mut state = self.state.lock().map_err(|_| SinkError::WorkerGone)?;
            f(&mut state)
        };
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => Some(tokio::task::block_in_place(run)),
            Ok(_) => None,
            Err(_) => Some(run()),
        }
    }

    /// Runs `f` on a blocking-pool thread.
    pub(super) async fn on_blocking_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteState) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = state.lock().map_err(|_| SinkError::WorkerGone)?;
            f(&mut state)
        })
        .await
        .map_err(|_| SinkError::WorkerGone)?
    }
}

/// Opens the file in WAL mode with the configured `synchronous` (full fsync on
/// commit by default) and creates the sink's bookkeeping tables.
fn open(config: &SqliteConfig) -> Result<Connection> {
    let conn = Connection::open(&config.path).map_err(SinkError::sqlite("opening the database"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(SinkError::sqlite("setting the busy timeout"))?;
    // WAL keeps readers unblocked; synchronous=FULL (the default) makes every
    // commit durable, NORMAL could lose the last commits on power loss (see
    // `SqliteSynchronous`).
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(SinkError::sqlite("enabling WAL mode"))?;
    conn.pragma_update(None, "synchronous", config.synchronous.pragma())
        .map_err(SinkError::sqlite("setting synchronous"))?;
    conn.set_prepared_statement_cache_capacity(256);
    let q = |n| Dialect::Sqlite.ident(n);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (sink_name TEXT PRIMARY KEY, last_offset INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS {} (sink_name TEXT NOT NULL, source_schema TEXT NOT NULL,
             source_table TEXT NOT NULL, schema_json TEXT NOT NULL,
             PRIMARY KEY (sink_name, source_schema, source_table));",
        q(OFFSETS_TABLE),
        q(SCHEMAS_TABLE)
    ))
    .map_err(SinkError::sqlite("creating the bookkeeping tables"))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::config::SqliteSynchronous;

    fn synchronous_of(synchronous: SqliteSynchronous) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SqliteConfig::new(dir.path().join("db.sqlite"));
        config.synchronous = synchronous;
        let conn = open(&config).unwrap();
        conn.pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn commits_fsync_by_default_and_normal_is_opt_in() {
        assert_eq!(SqliteConfig::new("x").synchronous, SqliteSynchronous::Full);
        // SQLite reports FULL as 2 and NORMAL as 1.
        assert_eq!(synchronous_of(SqliteSynchronous::Full), 2);
        assert_eq!(synchronous_of(SqliteSynchronous::Normal), 1);
    }

    #[test]
    fn synchronous_is_read_from_config_in_snake_case() {
        let config: SqliteConfig =
            serde_json::from_str(r#"{"path": "x.db", "synchronous": "normal"}"#).unwrap();
        assert_eq!(config.synchronous, SqliteSynchronous::Normal);
        let config: SqliteConfig = serde_json::from_str(r#"{"path": "x.db"}"#).unwrap();
        assert_eq!(config.synchronous, SqliteSynchronous::Full);
        assert!(
            serde_json::from_str::<SqliteConfig>(r#"{"path": "x.db", "synchronous": "off"}"#)
                .is_err()
        );
    }
}
