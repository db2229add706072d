//! Opening the database and the blocking worker thread that owns it.
//!
//! rusqlite is synchronous, so one dedicated thread owns the connection and runs
//! jobs sent from the async side; a job's result comes back on a oneshot channel.

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::apply::SqliteState;
use super::config::SqliteConfig;
use crate::error::{Result, SinkError};
use crate::mode::{OFFSETS_TABLE, SCHEMAS_TABLE};
use crate::quote::Dialect;

type Job = Box<dyn FnOnce(&mut SqliteState) + Send>;

/// Handle to the worker thread.
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Opens the database and starts the worker thread.
    pub(super) fn start(config: SqliteConfig) -> Result<Self> {
        let conn = open(&config)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("cdc-sqlite-sink".into())
            .spawn(move || {
                let mut state = SqliteState::new(conn, config);
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .map_err(SinkError::io("spawning the sqlite worker thread"))?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the worker thread and returns its result.
    pub(super) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteState) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |state| {
                let _ = tx.send(f(state));
            }))
            .map_err(|_| SinkError::WorkerGone)?;
        rx.await.map_err(|_| SinkError::WorkerGone)?
    }
}

/// Opens the file in WAL mode with full fsync on commit and creates the sink's
/// bookkeeping tables.
fn open(config: &SqliteConfig) -> Result<Connection> {
    let conn = Connection::open(&config.path).map_err(SinkError::sqlite("opening the database"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(SinkError::sqlite("setting the busy timeout"))?;
    // WAL keeps readers unblocked; synchronous=FULL makes every commit durable
    // (NORMAL could lose the last commits on power loss, breaking the offset rule).
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(SinkError::sqlite("enabling WAL mode"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(SinkError::sqlite("setting synchronous=FULL"))?;
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
