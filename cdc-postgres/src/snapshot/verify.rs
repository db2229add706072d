//! A table as a verification reads it, on a PostgreSQL source or in a
//! PostgreSQL sink.

use std::sync::Arc;

use async_trait::async_trait;
use cdc_core::event::{Row, SourcePosition, TableName, TableSchema, Value, uuid_text};
use cdc_core::verify::TableReader;
use tokio_postgres::Client;

use super::ChunkReader;
use super::chunk::current_lsn;
use crate::error::{Error, Result};
use crate::schema::Catalog;
use crate::{PostgresConfig, connect_client};

/// One PostgreSQL table read by key range and by key, on a connection of
/// its own, for a [`Verification`](cdc_core::verify::Verification): the
/// source's table, or a PostgreSQL sink's target table.
///
/// Every read is one statement; values are decoded as the replication
/// stream decodes them. Keys may be numbers, text, UUIDs or bytes.
///
/// ```no_run
/// # async fn demo(source: &cdc_postgres::PostgresConfig, target: &cdc_postgres::PostgresConfig,
/// #     pipeline: &cdc_core::pipeline::PipelineHandle) -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::BTreeMap;
/// use cdc_core::event::TableName;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_core::verify::{ColumnMap, TableReader, Verification, VerifyConfig};
/// use cdc_postgres::PostgresTable;
///
/// let accounts = TableName::new("public", "accounts");
/// let source = PostgresTable::connect(source, &accounts).await?;
/// let sink = PostgresTable::connect(target, &accounts).await?;
/// let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new())?;
/// let config = VerifyConfig::new("accounts.verify");
/// let report = Verification::new(source, sink, columns, config)
///     .run(pipeline, &CancellationToken::new())
///     .await?;
/// assert!(report.is_equal());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresTable {
    client: Client,
    reader: ChunkReader,
    hidden: Option<String>,
}

impl PostgresTable {
    /// Connects with `config` and reads `table`'s columns and primary key.
    pub async fn connect(config: &PostgresConfig, table: &TableName) -> Result<Self> {
        let client = connect_client(config).await?;
        let reader = ChunkReader::new(&client, &mut Catalog::default(), table, 1).await?;
        Ok(Self {
            client,
            reader,
            hidden: None,
        })
    }

    /// Leaves out the rows whose boolean `column` is true: the deleted rows
    /// of a soft-delete sink (its `_cdc_deleted` column).
    pub fn without_flagged(mut self, column: &str) -> Self {
        self.hidden = Some(column.to_owned());
        self
    }

    fn key_texts(&self, key: &[Value]) -> Result<Vec<String>> {
        key.iter()
            .map(|value| {
                key_text(value).ok_or_else(|| Error::UnsupportedKey {
                    table: self.reader.schema().table.clone(),
                    type_name: kind(value),
                })
            })
            .collect()
    }
}

#[async_trait]
impl TableReader for PostgresTable {
    type Error = Error;

    fn schema(&self) -> &Arc<TableSchema> {
        self.reader.schema()
    }

    async fn read_range(
        &mut self,
        after: Option<&[Value]>,
        through: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let after = after.map(|k| self.key_texts(k)).transpose()?;
        let through = through.map(|k| self.key_texts(k)).transpose()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.reader
            .read_range(
                &self.client,
                after.as_deref(),
                through.as_deref(),
                limit,
                self.hidden.as_deref(),
            )
            .await
    }

    async fn read_key(&mut self, key: &[Value]) -> Result<Option<Row>> {
        let key = self.key_texts(key)?;
        self.reader
            .read_key(&self.client, &key, self.hidden.as_deref())
            .await
    }

    async fn position(&mut self) -> Result<SourcePosition> {
        let lsn = current_lsn(&self.client).await?;
        Ok(SourcePosition::Postgres { lsn })
    }
}

/// A key value in the text form PostgreSQL reads back as the same value.
fn key_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Decimal(d) => d.as_str().to_owned(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Text(s) | Value::Enum(s) => s.as_str().to_owned(),
        Value::Uuid(u) => uuid_text(u),
        Value::Bytes(b) => {
            let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
            format!("\\x{hex}")
        }
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
        Value::Set(_) | Value::Array(_) => "array",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_take_the_text_postgresql_reads_back() {
        let uuid = Value::Uuid([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ]);
        assert_eq!(
            key_text(&uuid).as_deref(),
            Some("12345678-9abc-def0-0123-456789abcdef")
        );
        assert_eq!(
            key_text(&Value::Bytes(vec![0, 255])).as_deref(),
            Some("\\x00ff")
        );
        assert_eq!(
            key_text(&Value::UInt(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(key_text(&Value::Date(0)), None);
    }
}
