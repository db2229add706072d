//! Snapshot reads: an initial consistent snapshot with its binlog position, and
//! a chunk reader for ad-hoc backfills that holds no long transaction, and
//! the table reader of a verification.
//!
//! Both read in primary-key order with keyset pagination (`WHERE (k1, k2) >
//! (?, ?) ORDER BY k1, k2 LIMIT n`), so composite keys work and every chunk is
//! one indexed range read. Rows come out as `ChangeKind::SnapshotRead` changes
//! whose values equal what the binlog decoder gives for the same row.

mod backfill;
mod catalog;
mod key;
mod value;
mod verify;

use cdc_core::event::{Change, Record, SourcePosition, TableName, TableSchema};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::config::MySqlConfig;
use crate::error::{Error, Result};
use crate::stream;

pub use backfill::MySqlChunks;
pub use catalog::table_schema;
pub use verify::MySqlTable;

/// Quotes an identifier for MySQL/MariaDB SQL.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// Where a table read continues: the key of the last row read (opaque;
/// serializable so a backfill resumes after a crash).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<key::KeyPart>", into = "Vec<key::KeyPart>")]
pub struct ChunkKey(Vec<mysql_async::Value>);

/// One primary-key chunk of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// `SnapshotRead` changes in key order.
    pub records: Vec<Record>,
    /// Where the next chunk starts; `None` after the last row.
    pub next: Option<ChunkKey>,
}

async fn session(config: &MySqlConfig) -> Result<(Conn, bool)> {
    let mut conn = stream::connect(config).await?;
    // TIMESTAMP values in UTC, like the binlog's.
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
        .await
        .map_err(|e| Error::mysql("preparing the snapshot session", e))?;
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| Error::mysql("reading the server version", e))?;
    Ok((conn, version.unwrap_or_default().contains("MariaDB")))
}

/// Reads one chunk of `schema`'s table after `after`, as changes stamped with
/// `position` (without its GTID state).
async fn read_chunk(
    conn: &mut Conn,
    schema: &TableSchema,
    after: Option<&ChunkKey>,
    limit: usize,
    position: &SourcePosition,
) -> Result<Chunk> {
    if schema.primary_key.is_empty() {
        return Err(Error::Config {
            field: "tables",
            reason: format!(
                "{} has no primary key; chunked reads need one",
                schema.table
            ),
        });
    }
    // Changes carry the position without the GTID state, as streamed ones do.
    let position = position.without_gtid();
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(ChunkKey(key)) = after {
        conditions.push(key_condition(schema, ">", key.len()));
        params.extend(key.iter().cloned());
    }
    let rows = select_rows(conn, schema, &conditions, params, Some(limit)).await?;
    let mut records = Vec::with_capacity(rows.len());
    let mut last = None;
    for (row, key) in rows {
        records.push(Record::Change(Change::snapshot_read(
            schema.table.clone(),
            row,
            position.clone(),
            0,
        )));
        last = Some(ChunkKey(key));
    }
    let next = if records.len() == limit { last } else { None };
    Ok(Chunk { records, next })
}

/// `(k1, k2) <op> (?, ?)` over `schema`'s key columns, for `marks` values.
fn key_condition(schema: &TableSchema, op: &str, marks: usize) -> String {
    let keys: Vec<String> = schema.key_columns().map(|c| quote(&c.name)).collect();
    format!(
        "({}) {op} ({})",
        keys.join(", "),
        vec!["?"; marks].join(", ")
    )
}

/// The rows of `schema`'s table meeting every condition (SQL with `?` marks
/// for `params`), in key order, at most `limit`, each with its key as the
/// server sent it (the form a later bound takes).
async fn select_rows(
    conn: &mut Conn,
    schema: &TableSchema,
    conditions: &[String],
    params: Vec<mysql_async::Value>,
    limit: Option<usize>,
) -> Result<Vec<(cdc_core::event::Row, Vec<mysql_async::Value>)>> {
    let select: Vec<String> = schema.columns.iter().map(value::select_expr).collect();
    let keys: Vec<String> = schema.key_columns().map(|c| quote(&c.name)).collect();
    let key_list = keys.join(", ");
    let mut sql = format!(
        "SELECT {}, {key_list} FROM {}.{}",
        select.join(", "),
        quote(&schema.table.schema),
        quote(&schema.table.name)
    );
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    sql.push_str(&format!(" ORDER BY {key_list}"));
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let rows: Vec<mysql_async::Row> = conn
        .exec(sql, mysql_async::Params::Positional(params))
        .await
        .map_err(|e| Error::mysql(format!("reading rows of {}", schema.table), e))?;
    let n = schema.columns.len();
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut values = row.unwrap();
            let key = values.split_off(n.min(values.len()));
            let row = schema
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| value::convert(c, v))
                .collect();
            (row, key)
        })
        .collect())
}

/// How [`Snapshot::begin_with`] matches the snapshot to a binlog position, so
/// that streaming from that position misses and repeats nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SnapshotSync {
    /// MariaDB: the snapshot's own binlog position
    /// (`binlog_snapshot_file`/`_position`), with no lock. MySQL, which has no
    /// such status: [`GlobalReadLock`](SnapshotSync::GlobalReadLock).
    #[default]
    Auto,
    /// `FLUSH TABLES WITH READ LOCK` is held while the snapshot opens and the
    /// position is read, so no transaction commits in between. Writes wait for
    /// those milliseconds, or for up to 10 s (`lock_wait_timeout`) when the lock
    /// queues behind a long-running statement. Needs the RELOAD privilege.
    /// Where neither is acceptable (managed servers without RELOAD), backfill
    /// with the [`ChunkReader`], which takes no lock.
    GlobalReadLock,
}

/// An initial snapshot: one `START TRANSACTION WITH CONSISTENT SNAPSHOT` and
/// the binlog position it matches. Stream from [`position`](Snapshot::position)
/// afterwards and nothing is missed or doubled.
pub struct Snapshot {
    conn: Conn,
    position: SourcePosition,
}

impl Snapshot {
    /// Opens the snapshot, matched to its position as [`SnapshotSync::Auto`] says.
    pub async fn begin(config: &MySqlConfig) -> Result<Snapshot> {
        Self::begin_with(config, SnapshotSync::Auto).await
    }

    /// Opens the snapshot, matched to its position as `sync` says.
    pub async fn begin_with(config: &MySqlConfig, sync: SnapshotSync) -> Result<Snapshot> {
        let (mut conn, is_mariadb) = session(config).await?;
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(|e| Error::mysql("setting the isolation level", e))?;
        let position = match (sync, is_mariadb) {
            (SnapshotSync::Auto, true) => {
                start_snapshot(&mut conn).await?;
                mariadb_snapshot_position(&mut conn).await?
            }
            _ => locked_snapshot(&mut conn, is_mariadb).await?,
        };
        Ok(Snapshot { conn, position })
    }

    /// The binlog position the snapshot matches.
    pub fn position(&self) -> &SourcePosition {
        &self.position
    }

    /// A table's schema inside the snapshot.
    pub async fn schema(&mut self, table: &TableName) -> Result<TableSchema> {
        table_schema(&mut self.conn, table)
            .await?
            .ok_or_else(|| Error::Config {
                field: "tables",
                reason: format!("table {table} does not exist"),
            })
    }

    /// The next chunk of up to `limit` rows after `after`.
    pub async fn chunk(
        &mut self,
        schema: &TableSchema,
        after: Option<&ChunkKey>,
        limit: usize,
    ) -> Result<Chunk> {
        read_chunk(&mut self.conn, schema, after, limit.max(1), &self.position).await
    }

    /// Ends the snapshot transaction.
    pub async fn finish(mut self) -> Result<()> {
        self.conn
            .query_drop("COMMIT")
            .await
            .map_err(|e| Error::mysql("ending the snapshot", e))
    }
}

async fn start_snapshot(conn: &mut Conn) -> Result<()> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(|e| Error::mysql("starting the consistent snapshot", e))
}

/// MariaDB's position of the snapshot this session's transaction holds, with
/// the GTID state there.
async fn mariadb_snapshot_position(conn: &mut Conn) -> Result<SourcePosition> {
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(|e| Error::mysql("reading binlog_snapshot_file/position", e))?;
    let get = |name: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let file = get("binlog_snapshot_file").unwrap_or_default();
    let pos: u64 = get("binlog_snapshot_position")
        .and_then(|p| p.parse().ok())
        .unwrap_or(4);
    let gtid: Option<String> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
        .await
        .map_err(|e| Error::mysql("reading the snapshot's GTID position", e))?;
    Ok(SourcePosition::MySql {
        file: file.into(),
        pos,
        gtid: gtid.filter(|g| !g.is_empty()).map(Into::into),
    })
}

/// Opens the snapshot and reads the position under `FLUSH TABLES WITH READ
/// LOCK`, which waits for commits in progress and holds off new ones; the lock
/// is released before returning, whatever happened. `UNLOCK TABLES` does not
/// end the snapshot transaction (no `LOCK TABLES` was taken). As mysqldump
/// does, a plain `FLUSH LOCAL TABLES` first waits out long-running statements
/// without blocking writes, so the lock itself is held only for moments.
async fn locked_snapshot(conn: &mut Conn, is_mariadb: bool) -> Result<SourcePosition> {
    const ACCESS_DENIED: [u16; 2] = [1045, 1227];
    conn.query_drop("SET SESSION lock_wait_timeout = 10")
        .await
        .map_err(|e| Error::mysql("setting lock_wait_timeout", e))?;
    conn.query_drop("FLUSH LOCAL TABLES; FLUSH TABLES WITH READ LOCK")
        .await
        .map_err(|e| match &e {
            mysql_async::Error::Server(s) if ACCESS_DENIED.contains(&s.code) => Error::Privilege {
                privilege: "RELOAD",
            },
            _ => Error::mysql(
                "taking the global read lock for the snapshot (a long-running statement \
                 holds it off for lock_wait_timeout; retry when it is done)",
                e,
            ),
        })?;
    let opened = async {
        start_snapshot(conn).await?;
        stream::current_position(conn, is_mariadb).await
    }
    .await;
    // The timeout was for the lock only: chunk reads wait as any query does.
    let released = conn
        .query_drop("UNLOCK TABLES; SET SESSION lock_wait_timeout = DEFAULT")
        .await
        .map_err(|e| Error::mysql("releasing the global read lock", e));
    let position = opened?;
    released?;
    Ok(position)
}

/// A chunk read for ad-hoc backfills, with the binlog positions read just
/// before and after it (`low`, `high`). Each chunk is one statement, so no
/// transaction outlives it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillChunk {
    /// Binlog position read before the chunk's statement.
    pub low: SourcePosition,
    /// Binlog position read after it.
    pub high: SourcePosition,
    /// The rows, stamped with `high` without its GTID state.
    pub chunk: Chunk,
}

/// Reads primary-key chunks without a long transaction.
pub struct ChunkReader {
    conn: Conn,
    is_mariadb: bool,
}

impl ChunkReader {
    /// Connects.
    pub async fn connect(config: &MySqlConfig) -> Result<ChunkReader> {
        let (conn, is_mariadb) = session(config).await?;
        Ok(ChunkReader { conn, is_mariadb })
    }

    /// A table's current schema.
    pub async fn schema(&mut self, table: &TableName) -> Result<TableSchema> {
        table_schema(&mut self.conn, table)
            .await?
            .ok_or_else(|| Error::Config {
                field: "tables",
                reason: format!("table {table} does not exist"),
            })
    }

    async fn position(&mut self) -> Result<SourcePosition> {
        stream::current_position(&mut self.conn, self.is_mariadb).await
    }

    /// Reads the chunk after `after` between two position reads.
    pub async fn chunk(
        &mut self,
        schema: &TableSchema,
        after: Option<&ChunkKey>,
        limit: usize,
    ) -> Result<BackfillChunk> {
        let low = self.position().await?;
        let (chunk, high) = self.chunk_then_position(schema, after, limit).await?;
        Ok(BackfillChunk { low, high, chunk })
    }

    /// Reads the chunk after `after`, then the position, which stamps its
    /// rows (without the GTID state): a chunk without the `low` reading, as a
    /// backfill needs it.
    pub(crate) async fn chunk_then_position(
        &mut self,
        schema: &TableSchema,
        after: Option<&ChunkKey>,
        limit: usize,
    ) -> Result<(Chunk, SourcePosition)> {
        let placeholder = SourcePosition::None;
        let mut chunk =
            read_chunk(&mut self.conn, schema, after, limit.max(1), &placeholder).await?;
        let high = self.position().await?;
        let stamped = high.without_gtid();
        for r in &mut chunk.records {
            if let Record::Change(c) = r {
                c.position = stamped.clone();
            }
        }
        Ok((chunk, high))
    }
}
