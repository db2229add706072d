//! A table as a verification reads it, on a MySQL or MariaDB source or in
//! a MySQL/MariaDB sink.

use std::sync::Arc;

use async_trait::async_trait;
use cdc_core::event::{Row, SourcePosition, TableName, TableSchema, Value, uuid_text};
use cdc_core::verify::TableReader;
use mysql_async::Conn;

use super::{key_condition, quote, select_rows, session, table_schema};
use crate::config::MySqlConfig;
use crate::error::{Error, Result};
use crate::stream;

/// One MySQL or MariaDB table read by key range and by key, on a connection
/// of its own, for a [`Verification`](cdc_core::verify::Verification): the
/// source's table, or a MySQL sink's target table.
///
/// Every read is one statement (under InnoDB, a consistent read); values
/// are converted as the snapshot reader converts them, equal to what the
/// binlog decoder gives. Keys may be numbers, text, UUIDs or bytes.
///
/// ```no_run
/// # async fn demo(source: &cdc_mysql::MySqlConfig, target: &cdc_mysql::MySqlConfig,
/// #     pipeline: &cdc_core::pipeline::PipelineHandle) -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::BTreeMap;
/// use cdc_core::event::TableName;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_core::verify::{ColumnMap, TableReader, Verification, VerifyConfig};
/// use cdc_mysql::snapshot::MySqlTable;
///
/// let source = MySqlTable::connect(source, &TableName::new("shop", "orders")).await?;
/// let sink = MySqlTable::connect(target, &TableName::new("shop_v2", "orders")).await?;
/// let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new())?;
/// let report = Verification::new(source, sink, columns, VerifyConfig::new("orders.verify"))
///     .run(pipeline, &CancellationToken::new())
///     .await?;
/// assert!(report.is_equal());
/// # Ok(()) }
/// ```
pub struct MySqlTable {
    conn: Conn,
    is_mariadb: bool,
    schema: Arc<TableSchema>,
    hidden: Option<String>,
}

impl std::fmt::Debug for MySqlTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlTable")
            .field("table", &self.schema.table)
            .finish_non_exhaustive()
    }
}

impl MySqlTable {
    /// Connects with `config` and reads `table`'s schema, which must have a
    /// primary key.
    pub async fn connect(config: &MySqlConfig, table: &TableName) -> Result<Self> {
        let (mut conn, is_mariadb) = session(config).await?;
        let schema = table_schema(&mut conn, table)
            .await?
            .ok_or_else(|| Error::Config {
                field: "tables",
                reason: format!("table {table} does not exist"),
            })?;
        if schema.primary_key.is_empty() {
            return Err(Error::Config {
                field: "tables",
                reason: format!("{table} has no primary key; key-range reads need one"),
            });
        }
        Ok(Self {
            conn,
            is_mariadb,
            schema: Arc::new(schema),
            hidden: None,
        })
    }

    /// Leaves out the rows whose boolean `column` is true: the deleted rows
    /// of a soft-delete sink (its `_cdc_deleted` column).
    pub fn without_flagged(mut self, column: &str) -> Self {
        self.hidden = Some(column.to_owned());
        self
    }

    /// The bound `key` as parameters, with its condition.
    fn bound(&self, key: &[Value], op: &str) -> Result<(String, Vec<mysql_async::Value>)> {
        if key.len() != self.schema.primary_key.len() {
            return Err(self.unsupported("wrong-width"));
        }
        let params = key
            .iter()
            .map(|v| param(v).ok_or_else(|| self.unsupported(kind(v))))
            .collect::<Result<_>>()?;
        Ok((key_condition(&self.schema, op, key.len()), params))
    }

    fn unsupported(&self, what: &'static str) -> Error {
        Error::UnsupportedKey {
            table: self.schema.table.to_string(),
            what,
        }
    }

    async fn select(
        &mut self,
        bounds: Vec<(String, Vec<mysql_async::Value>)>,
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        for (condition, values) in bounds {
            conditions.push(condition);
            params.extend(values);
        }
        if let Some(column) = &self.hidden {
            conditions.push(format!("NOT COALESCE({}, 0)", quote(column)));
        }
        let rows = select_rows(&mut self.conn, &self.schema, &conditions, params, limit).await?;
        Ok(rows.into_iter().map(|(row, _)| row).collect())
    }
}

#[async_trait]
impl TableReader for MySqlTable {
    type Error = Error;

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
        self.select(bounds, Some(limit.max(1))).await
    }

    async fn read_key(&mut self, key: &[Value]) -> Result<Option<Row>> {
        let bound = self.bound(key, "=")?;
        Ok(self.select(vec![bound], Some(1)).await?.pop())
    }

    async fn position(&mut self) -> Result<SourcePosition> {
        stream::current_position(&mut self.conn, self.is_mariadb).await
    }
}

/// A key value as a statement parameter the server compares as the column.
fn param(value: &Value) -> Option<mysql_async::Value> {
    use mysql_async::Value as My;
    Some(match value {
        Value::Bool(b) => My::Int(i64::from(*b)),
        Value::Int(i) => My::Int(*i),
        Value::UInt(u) => My::UInt(*u),
        Value::Float(f) => My::Float(*f),
        Value::Double(f) => My::Double(*f),
        Value::Decimal(d) => My::Bytes(d.as_str().as_bytes().to_vec()),
        Value::Text(s) | Value::Enum(s) => My::Bytes(s.as_str().as_bytes().to_vec()),
        Value::Bytes(b) => My::Bytes(b.clone()),
        Value::Uuid(u) => My::Bytes(uuid_text(u).into_bytes()),
        _ => return None,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Date(_) => "date",
        Value::Time(_) | Value::TimeTz { .. } => "time",
        Value::Timestamp(_) | Value::TimestampTz(_) => "timestamp",
        Value::Interval { .. } => "interval",
        Value::Json(_) => "json",
        _ => "array",
    }
}
