//! Keyset chunk reads of one table: rows in primary-key order after a key,
//! every value read in its text form and decoded like the stream's values.

use std::sync::Arc;

use cdc_core::event::{Column, Row, TableName, TableSchema, Value};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::{Error, Result};
use crate::replication::parse_lsn;
use crate::schema::Catalog;
use crate::slot::{quote_ident, quote_table};
use crate::value::ColumnType;

/// Where the next chunk starts: the text of the last key read, in key order.
/// Serializable so a backfill can resume after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCursor(Vec<String>);

/// One chunk of rows and the positions read around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Rows in key order, in the column order of the reader's schema.
    pub rows: Vec<Row>,
    /// Where the next chunk starts; `None` when the table is exhausted.
    pub next: Option<KeyCursor>,
    /// `pg_current_wal_insert_lsn()` read just before the chunk's query.
    pub low_lsn: u64,
    /// `pg_current_wal_insert_lsn()` read just after it: every commit the
    /// query saw is before it, with `synchronous_commit` on or off.
    pub high_lsn: u64,
}

struct KeyColumn {
    index: usize,
    cast: String,
}

/// Reads a table in primary-key chunks with short, independent queries (no long
/// transaction), or inside the caller's transaction (an exported snapshot).
pub struct ChunkReader {
    schema: Arc<TableSchema>,
    types: Vec<ColumnType>,
    key: Vec<KeyColumn>,
    first_sql: String,
    next_sql: String,
    /// `SELECT <columns> FROM <table> AS src`, for reads with other bounds.
    base_sql: String,
    /// The qualified key columns, comma-separated, in key order.
    key_list: String,
    chunk_rows: i64,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("table", &self.schema.table)
            .field("chunk_rows", &self.chunk_rows)
            .finish()
    }
}

impl ChunkReader {
    /// Reads the table's columns and primary key from the catalog.
    pub async fn new(
        client: &Client,
        catalog: &mut Catalog,
        table: &TableName,
        chunk_rows: usize,
    ) -> Result<Self> {
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid, a.atttypmod, \
                        pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                        coalesce((SELECT k.n FROM pg_catalog.pg_index i, \
                                  unnest(i.indkey) WITH ORDINALITY k(att, n) \
                                  WHERE i.indrelid = a.attrelid AND i.indisprimary \
                                  AND k.att = a.attnum), 0)::int4 \
                 FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = (SELECT c.oid FROM pg_catalog.pg_class c \
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                       WHERE n.nspname = $1 AND c.relname = $2) \
                   AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&table.schema.as_str(), &table.name.as_str()],
            )
            .await
            .map_err(Error::query("reading table columns for a snapshot"))?;
        if rows.is_empty() {
            return Err(Error::MissingTable {
                table: table.clone(),
            });
        }
        let mut columns = Vec::new();
        let mut types = Vec::new();
        let mut selects = Vec::new();
        let mut pk = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let name: String = row.get(0);
            let oid: u32 = row.get(1);
            let typmod: i32 = row.get(2);
            let type_name: String = row.get(3);
            let not_null: bool = row.get(4);
            let pk_position: i32 = row.get(5);
            let column_type = catalog.column_type(client, oid).await?;
            // Qualified, so ORDER BY and WHERE see the column, not the text output.
            let quoted = format!("src.{}", quote_ident(&name));
            // A cast of bpchar to text trims its padding; I/O conversion keeps it.
            selects.push(
                if oid == 1042 {
                    format!("CASE WHEN {quoted} IS NULL THEN NULL ELSE concat({quoted}) END")
                } else {
                    format!("{quoted}::text")
                } + &format!(" AS c{i}"),
            );
            if pk_position > 0 {
                pk.push((pk_position, i, type_name.clone()));
            }
            columns.push(Column {
                name,
                data_type: column_type.data_type(oid, typmod),
                source_type: type_name,
                nullable: !not_null,
            });
            types.push(column_type);
        }
        if pk.is_empty() {
            return Err(Error::MissingKey {
                table: table.clone(),
                identity: "without a primary key (chunked reads need one)".into(),
            });
        }
        pk.sort();
        let key: Vec<KeyColumn> = pk
            .iter()
            .map(|(_, i, type_name)| KeyColumn {
                index: *i,
                cast: type_name.clone(),
            })
            .collect();
        let key_list: Vec<String> = key
            .iter()
            .map(|k| format!("src.{}", quote_ident(&columns[k.index].name)))
            .collect();
        let params: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(n, k)| format!("${}::text::{}", n + 1, k.cast))
            .collect();
        let base = format!(
            "SELECT {} FROM {} AS src",
            selects.join(", "),
            quote_table(table)
        );
        let order = format!("ORDER BY {}", key_list.join(", "));
        let limit_param = key.len() + 1;
        let first_sql = format!("{base} {order} LIMIT $1");
        let next_sql = format!(
            "{base} WHERE ({}) > ({}) {order} LIMIT ${limit_param}",
            key_list.join(", "),
            params.join(", ")
        );
        let primary_key = key.iter().map(|k| k.index as u32).collect();
        Ok(Self {
            schema: Arc::new(TableSchema {
                table: table.clone(),
                columns,
                primary_key,
            }),
            types,
            key,
            first_sql,
            next_sql,
            base_sql: base,
            key_list: key_list.join(", "),
            chunk_rows: i64::try_from(chunk_rows.max(1)).unwrap_or(i64::MAX),
        })
    }

    /// The table's schema as the reader decodes it.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// Reads the rows after `after` (from the start when `None`), with the WAL
    /// position read just before and just after the query.
    pub async fn read_chunk(&self, client: &Client, after: Option<&KeyCursor>) -> Result<Chunk> {
        let low_lsn = current_lsn(client).await?;
        let (rows, next, high_lsn) = self.read_then_lsn(client, after).await?;
        Ok(Chunk {
            rows,
            next,
            low_lsn,
            high_lsn,
        })
    }

    /// The rows after `after` and where the next chunk starts, then the WAL
    /// position read after the query: a chunk without the `low` reading, as a
    /// backfill needs it.
    pub(crate) async fn read_then_lsn(
        &self,
        client: &Client,
        after: Option<&KeyCursor>,
    ) -> Result<(Vec<Row>, Option<KeyCursor>, u64)> {
        let rows = match after {
            None => client
                .query(&self.first_sql, &[&self.chunk_rows])
                .await
                .map_err(Error::query("reading a snapshot chunk"))?,
            Some(KeyCursor(key)) => {
                let mut params: Vec<&(dyn ToSql + Sync)> =
                    key.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
                params.push(&self.chunk_rows);
                client
                    .query(&self.next_sql, &params)
                    .await
                    .map_err(Error::query("reading a snapshot chunk"))?
            }
        };
        let high_lsn = current_lsn(client).await?;
        let last_key = rows.last().map(|row| {
            self.key
                .iter()
                .map(|k| row.get::<_, Option<String>>(k.index).unwrap_or_default())
                .collect()
        });
        let out = self.decode(&rows)?;
        let full = i64::try_from(out.len()).unwrap_or(i64::MAX) >= self.chunk_rows;
        let next = if full { last_key.map(KeyCursor) } else { None };
        Ok((out, next, high_lsn))
    }

    /// The rows whose key is after `after` and at most `through` (each the
    /// key's text, in key order; no bound when `None`), in key order, at most
    /// `limit`, leaving out rows `hidden` (a boolean column) marks true.
    pub(crate) async fn read_range(
        &self,
        client: &Client,
        after: Option<&[String]>,
        through: Option<&[String]>,
        limit: i64,
        hidden: Option<&str>,
    ) -> Result<Vec<Row>> {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let mut filters = Vec::new();
        for (bound, op) in [(after, ">"), (through, "<=")] {
            if let Some(key) = bound {
                let casts = self.key_params(params.len(), key.len())?;
                filters.push(format!("({}) {op} ({casts})", self.key_list));
                params.extend(key.iter().map(|k| k as &(dyn ToSql + Sync)));
            }
        }
        filters.extend(hidden.map(hide));
        params.push(&limit);
        let sql = format!(
            "{}{} ORDER BY {} LIMIT ${}",
            self.base_sql,
            where_clause(&filters),
            self.key_list,
            params.len()
        );
        let rows = client
            .query(&sql, &params)
            .await
            .map_err(Error::query("reading a key range"))?;
        self.decode(&rows)
    }

    /// The row whose key is `key` (the key's text, in key order), unless
    /// `hidden` marks it.
    pub(crate) async fn read_key(
        &self,
        client: &Client,
        key: &[String],
        hidden: Option<&str>,
    ) -> Result<Option<Row>> {
        let casts = self.key_params(0, key.len())?;
        let mut filters = vec![format!("({}) = ({casts})", self.key_list)];
        filters.extend(hidden.map(hide));
        let sql = format!("{}{}", self.base_sql, where_clause(&filters));
        let params: Vec<&(dyn ToSql + Sync)> =
            key.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(&sql, &params)
            .await
            .map_err(Error::query("reading a row by key"))?;
        Ok(self.decode(&rows)?.pop())
    }

    /// `$n::text::type` for each key column, numbered after `before` params.
    fn key_params(&self, before: usize, given: usize) -> Result<String> {
        if given != self.key.len() {
            return Err(Error::KeyWidth {
                table: self.schema.table.clone(),
                expected: self.key.len(),
                found: given,
            });
        }
        Ok(self
            .key
            .iter()
            .enumerate()
            .map(|(n, k)| format!("${}::text::{}", before + n + 1, k.cast))
            .collect::<Vec<_>>()
            .join(", "))
    }

    /// Rows of text columns decoded as the stream decodes its values.
    fn decode(&self, rows: &[tokio_postgres::Row]) -> Result<Vec<Row>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(self.types.len());
            for (i, column_type) in self.types.iter().enumerate() {
                let text: Option<&str> = row.get(i);
                values.push(match text {
                    None => Value::Null,
                    Some(t) => column_type.decode_text(t).ok_or_else(|| Error::Value {
                        table: self.schema.table.clone(),
                        column: self.schema.columns[i].name.clone(),
                        type_name: self.schema.columns[i].source_type.clone(),
                    })?,
                });
            }
            out.push(values);
        }
        Ok(out)
    }
}

fn hide(column: &str) -> String {
    format!("NOT coalesce(src.{}, false)", quote_ident(column))
}

fn where_clause(filters: &[String]) -> String {
    if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    }
}

pub(super) async fn current_lsn(client: &Client) -> Result<u64> {
    let text: String = client
        // The insert position, not the write position `pg_current_wal_lsn()`:
        // with `synchronous_commit = off` a commit is visible before its
        // record is written, so only the insert position is past it.
        .query_one("SELECT pg_catalog.pg_current_wal_insert_lsn()::text", &[])
        .await
        .map_err(Error::query("reading the current wal position"))?
        .get(0);
    parse_lsn(&text).ok_or_else(|| Error::protocol("unparsable wal position"))
}
