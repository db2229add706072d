//! Table schemas from the server catalog for snapshot reads, with the same
//! logical types the binlog decoder gives.

use cdc_core::event::{Column, DataType, TableName, TableSchema};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::{Error, Result};

/// Parses the labels of `enum('a','b''c')`.
fn labels(column_type: &str) -> Vec<String> {
    let inner = column_type
        .split_once('(')
        .and_then(|(_, r)| r.rsplit_once(')'))
        .map_or("", |(l, _)| l);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = inner.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            '\'' if quoted => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            '\'' => quoted = true,
            _ if quoted => cur.push(ch),
            _ => {}
        }
    }
    out
}

type CatalogRow = (
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
);

/// Reads a table's schema; `None` when the table does not exist.
pub async fn table_schema(conn: &mut Conn, table: &TableName) -> Result<Option<TableSchema>> {
    let rows: Vec<CatalogRow> = conn
        .exec(
            "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, \
             NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_SET_NAME \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (table.schema.as_str(), table.name.as_str()),
        )
        .await
        .map_err(|e| Error::mysql("reading the table's columns", e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let hints = crate::stream::type_hints(conn, &table.schema, &table.name).await?;
    let mut columns = Vec::with_capacity(rows.len());
    for (name, data_type, column_type, nullable, precision, scale, max_len, charset) in rows {
        let unsigned = column_type.contains("unsigned");
        let int = |bits| DataType::Int {
            bits,
            signed: !unsigned,
        };
        let max = max_len.map(|m| m.min(u64::from(u32::MAX)) as u32);
        let binary = charset.is_none();
        let is_json = hints
            .iter()
            .any(|(n, h)| n == &name && *h == crate::rows::column::TypeHint::Json);
        let dt = match data_type.as_str() {
            "tinyint" => int(8),
            "smallint" => int(16),
            "mediumint" => int(24),
            "int" | "integer" => int(32),
            "bigint" => int(64),
            "decimal" | "numeric" => DataType::Decimal {
                precision: precision.map(|p| p as u32),
                scale: scale.map(|s| s as u32),
            },
            "float" => DataType::Float32,
            "double" | "real" => DataType::Float64,
            "bit" => DataType::Bit {
                len: precision.unwrap_or(1) as u32,
            },
            "year" => DataType::Int {
                bits: 16,
                signed: false,
            },
            "date" => DataType::Date,
            "time" => DataType::Time,
            "datetime" => DataType::Timestamp,
            "timestamp" => DataType::TimestampTz,
            "json" => DataType::Json,
            _ if is_json => DataType::Json,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" if !binary => {
                DataType::Text {
                    max_chars: max,
                    fixed: data_type == "char",
                }
            }
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "char"
            | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => DataType::Bytes {
                max_len: max,
                fixed: data_type == "binary",
            },
            "enum" => DataType::Enum {
                labels: labels(&column_type),
            },
            "set" => DataType::Set {
                labels: labels(&column_type),
            },
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => DataType::Geometry,
            "uuid" => DataType::Uuid,
            _ => DataType::Other,
        };
        columns.push(Column {
            name,
            data_type: dt,
            source_type: column_type,
            nullable: nullable == "YES",
        });
    }
    let key_names: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (table.schema.as_str(), table.name.as_str()),
        )
        .await
        .map_err(|e| Error::mysql("reading the primary key", e))?;
    let primary_key = key_names
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.name == k).map(|i| i as u32))
        .collect();
    Ok(Some(TableSchema {
        table: table.clone(),
        columns,
        primary_key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_unquote_doubled_quotes() {
        assert_eq!(labels("enum('a','b''c','')"), vec!["a", "b'c", ""]);
        assert_eq!(labels("set('x,y')"), vec!["x,y"]);
    }
}
