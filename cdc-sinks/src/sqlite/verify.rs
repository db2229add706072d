//! A SQLite sink's target table as a verification reads it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cdc_core::event::{Column, Row, TableName, TableSchema, Value};
use cdc_core::verify::TableReader;
use rusqlite::types::{ToSqlOutput, Value as Sql, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::mapping::{Storage, to_sql};
use crate::error::{Result, SinkError};
use crate::mapping::{TableMapping, TargetTable};
use crate::mode::{SOFT_DELETED, WriteMode};
use crate::quote::Dialect;

const D: Dialect = Dialect::Sqlite;

/// The table a SQLite sink keeps for one source table, read by key range
/// and by key, for a [`Verification`](cdc_core::verify::Verification).
///
/// Opened read-only beside the running sink (WAL mode lets it read while the
/// sink writes). Its schema names the target's columns by their **source**
/// names (excluded columns left out), so
/// [`ColumnMap::by_name`](cdc_core::verify::ColumnMap::by_name) pairs them
/// with no renames. Values come back in SQLite's storage forms (ISO text for
/// timestamps, decimal text, JSON arrays for sets);
/// [`stored_form`](TableReader::stored_form) converts source values the way
/// the sink writes them, so they compare exactly. Soft-deleted rows are left
/// out; history tables cannot be compared with a source table.
///
/// ```no_run
/// # async fn demo<S: cdc_core::verify::TableReader>(source: S, pipeline: &cdc_core::pipeline::PipelineHandle)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::BTreeMap;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_core::verify::{ColumnMap, TableReader, Verification, VerifyConfig};
/// use cdc_sinks::{SqliteTable, TableMapping};
///
/// let sink = SqliteTable::open("target.sqlite", source.schema(), &TableMapping::default()).await?;
/// let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new())?;
/// let report = Verification::new(source, sink, columns, VerifyConfig::new("accounts.verify"))
///     .run(pipeline, &CancellationToken::new())
///     .await?;
/// assert!(report.is_equal());
/// # Ok(()) }
/// ```
pub struct SqliteTable {
    conn: Arc<Mutex<Connection>>,
    target: TargetTable,
    storage: Vec<Storage>,
    schema: Arc<TableSchema>,
    select: String,
    key_list: String,
    hidden: Option<String>,
}

impl std::fmt::Debug for SqliteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTable")
            .field("target", &self.target.name)
            .finish_non_exhaustive()
    }
}

impl SqliteTable {
    /// Opens the sink's database at `path` read-only, for the target table
    /// `mapping` (the sink's own) makes of the source table `source`.
    pub async fn open(
        path: impl AsRef<std::path::Path>,
        source: &TableSchema,
        mapping: &TableMapping,
    ) -> Result<Self> {
        let target = mapping
            .resolve(source)?
            .ok_or_else(|| SinkError::Unsupported {
                table: source.table.clone(),
                reason: "the mapping excludes this table, so the sink holds none of it".into(),
            })?;
        let hidden = match target.write_mode {
            WriteMode::History => {
                return Err(SinkError::Unsupported {
                    table: source.table.clone(),
                    reason: "a history table holds every change, not the source's rows; \
                             compare an upsert or soft-delete table"
                        .into(),
                });
            }
            WriteMode::SoftDelete => Some(SOFT_DELETED.to_owned()),
            WriteMode::Upsert => None,
        };
        let path = path.as_ref().to_path_buf();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(SinkError::sqlite("opening the database to read"))?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(SinkError::sqlite("setting the busy timeout"))?;
            Ok::<_, SinkError>(conn)
        })
        .await
        .map_err(|_| SinkError::WorkerGone)??;
        let columns: Vec<Column> = target.columns.iter().map(|c| c.source.clone()).collect();
        let schema = Arc::new(TableSchema {
            table: TableName::new("main", target.name.as_str()),
            columns,
            primary_key: target.key.iter().map(|&k| k as u32).collect(),
        });
        let select = format!(
            "SELECT {} FROM {}",
            D.list(target.columns.iter().map(|c| c.name.as_str())),
            D.ident(&target.name)
        );
        let key_list = D.list(target.key_columns().map(|c| c.name.as_str()));
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            storage: target.columns.iter().map(Storage::of).collect(),
            target,
            schema,
            select,
            key_list,
            hidden,
        })
    }

    /// `(k1, k2) <op> (?, ?)` and the key as the sink stores it.
    fn bound(&self, key: &[Value], op: &str) -> Result<(String, Vec<Sql>)> {
        if key.len() != self.target.key.len() {
            return Err(SinkError::Unsupported {
                table: self.target.source.clone(),
                reason: format!(
                    "a key of {} values for a key of {} columns",
                    key.len(),
                    self.target.key.len()
                ),
            });
        }
        let values = self
            .target
            .key
            .iter()
            .zip(key)
            .map(|(&i, value)| stored(self.storage[i], &self.target, i, value))
            .collect();
        let marks = vec!["?"; key.len()].join(", ");
        Ok((format!("({}) {op} ({marks})", self.key_list), values))
    }

    async fn select(&self, bounds: Vec<(String, Vec<Sql>)>, limit: usize) -> Result<Vec<Row>> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        for (condition, values) in bounds {
            conditions.push(condition);
            params.extend(values);
        }
        if let Some(column) = &self.hidden {
            conditions.push(format!("NOT coalesce({}, 0)", D.ident(column)));
        }
        let mut sql = self.select.clone();
        if !conditions.is_empty() {
            sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", self.key_list));
        let conn = self.conn.clone();
        let width = self.target.columns.len();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| SinkError::WorkerGone)?;
            let mut statement = conn
                .prepare_cached(&sql)
                .map_err(SinkError::sqlite("preparing a key-range read"))?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(params), |row| {
                    (0..width)
                        .map(|i| row.get_ref(i).map(read_value))
                        .collect::<rusqlite::Result<Row>>()
                })
                .map_err(SinkError::sqlite("reading a key range"))?;
            rows.collect::<rusqlite::Result<Vec<Row>>>()
                .map_err(SinkError::sqlite("reading a key range"))
        })
        .await
        .map_err(|_| SinkError::WorkerGone)?
    }
}

#[async_trait]
impl TableReader for SqliteTable {
    type Error = SinkError;

    fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    async fn read_range(
        &mut self,
        after: Option<&[Value]>,
        through: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let mut bounds = Vec::new();
        if let Some(key) = after {
            bounds.push(self.bound(key, ">")?);
        }
        if let Some(key) = through {
            bounds.push(self.bound(key, "<=")?);
        }
        self.select(bounds, limit.max(1)).await
    }

    async fn read_key(&mut self, key: &[Value]) -> Result<Option<Row>> {
        let bound = self.bound(key, "=")?;
        Ok(self.select(vec![bound], 1).await?.pop())
    }

    /// The value as the sink writes it, read back: SQLite's storage class of it.
    fn stored_form(&self, column: usize, value: &Value) -> Value {
        match self.storage.get(column) {
            Some(&storage) => sql_value(stored(storage, &self.target, column, value)),
            None => value.clone(),
        }
    }
}

/// How the sink stores `value` in target column `i`; a value it would refuse
/// (a NaN) is kept as NULL, which compares unequal to what the sink holds.
fn stored(storage: Storage, target: &TargetTable, i: usize, value: &Value) -> Sql {
    match to_sql(storage, target, &target.columns[i], value) {
        Ok(ToSqlOutput::Owned(v)) => v,
        Ok(ToSqlOutput::Borrowed(v)) => v.into(),
        _ => Sql::Null,
    }
}

fn read_value(value: ValueRef<'_>) -> Value {
    sql_value(value.into())
}

fn sql_value(value: Sql) -> Value {
    match value {
        Sql::Null => Value::Null,
        Sql::Integer(i) => Value::Int(i),
        Sql::Real(f) => Value::Double(f),
        Sql::Text(s) => Value::Text(s.as_str().into()),
        Sql::Blob(b) => Value::Bytes(b),
    }
}
