//! Row events: TABLE_MAP metadata to schemas and column codecs, and row images
//! to event-model rows.

pub mod charset;
pub mod column;
pub mod decimal;
pub mod json;
pub mod json_diff;
mod json_tree;
pub mod table_map;
pub mod temporal;

use std::sync::Arc;

use cdc_core::event::{Row, TableName, TableSchema, Value};

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};
use crate::binlog::event::bit;
use column::{ColumnCodec, TypeHint};
use table_map::TableMap;

/// A table's schema with the decoders of its columns.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// The schema record for this table.
    pub schema: Arc<TableSchema>,
    /// One codec per column, in schema order.
    pub codecs: Vec<ColumnCodec>,
}

impl TableEntry {
    /// Builds the schema and codecs of a table map, with catalog hints by column name.
    pub fn build(map: &TableMap, hints: &[(String, TypeHint)]) -> Decoded<Self> {
        let mut columns = Vec::with_capacity(map.columns.len());
        let mut codecs = Vec::with_capacity(map.columns.len());
        for (i, m) in map.columns.iter().enumerate() {
            let hint = m
                .name
                .as_deref()
                .and_then(|n| hints.iter().find(|(h, _)| h == n).map(|(_, t)| *t));
            let (column, codec) = column::build(i, m, hint)?;
            columns.push(column);
            codecs.push(codec);
        }
        Ok(TableEntry {
            schema: Arc::new(TableSchema {
                table: TableName::new(map.schema.clone(), map.table.clone()),
                columns,
                primary_key: map.primary_key.clone(),
            }),
            codecs,
        })
    }

    /// The layout of the row images of a rows event whose present columns are
    /// `present`, checked against this table once per event.
    pub fn image<'a>(&self, column_count: usize, present: &'a [u8]) -> Decoded<Image<'a>> {
        if column_count != self.codecs.len() {
            return Err(DecodeError::new(format!(
                "rows event has {column_count} columns, table map {}",
                self.codecs.len()
            )));
        }
        // Bits past the last column may be set; count only real columns.
        let present_count: usize = present
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let valid = column_count.saturating_sub(i * 8).min(8);
                let mask = if valid == 8 { 0xff } else { (1u8 << valid) - 1 };
                (b & mask).count_ones() as usize
            })
            .sum();
        Ok(Image {
            present,
            null_bytes: present_count.div_ceil(8),
            all_present: present_count == column_count,
        })
    }

    /// Decodes one row image laid out as `image`; columns not in the image
    /// become `missing`.
    #[inline]
    pub fn decode_row(
        &self,
        image: &Image<'_>,
        c: &mut Cursor<'_>,
        missing: &Value,
    ) -> Decoded<Row> {
        let nulls = c.take(image.null_bytes)?;
        let mut row = Vec::with_capacity(self.codecs.len());
        if image.all_present {
            for (i, codec) in self.codecs.iter().enumerate() {
                if bit(nulls, i) {
                    row.push(Value::Null);
                } else {
                    codec.decode_into(c, &mut row)?;
                }
            }
            return Ok(row);
        }
        let mut n = 0;
        for (i, codec) in self.codecs.iter().enumerate() {
            if !bit(image.present, i) {
                row.push(missing.clone());
                continue;
            }
            if bit(nulls, n) {
                row.push(Value::Null);
            } else {
                codec.decode_into(c, &mut row)?;
            }
            n += 1;
        }
        Ok(row)
    }

    /// Decodes the after image of one row of a MySQL PARTIAL_UPDATE_ROWS event
    /// laid out as `image`: value options, then (with partial JSON on) a bit per
    /// JSON column of the table saying whether its value is a diff, then the
    /// image. A diff is applied to the column's value in `before`, so the row
    /// holds whole documents as a full update's would.
    pub fn decode_partial_row(
        &self,
        image: &Image<'_>,
        c: &mut Cursor<'_>,
        before: Option<&Row>,
    ) -> Decoded<Row> {
        const PARTIAL_JSON_UPDATES: u64 = 1;
        let options = c.lenenc()?;
        let partial = if options & PARTIAL_JSON_UPDATES != 0 {
            let json_columns = self.codecs.iter().filter(|codec| codec.is_json()).count();
            c.take(json_columns.div_ceil(8))?
        } else {
            &[]
        };
        let nulls = c.take(image.null_bytes)?;
        let mut row = Vec::with_capacity(self.codecs.len());
        let (mut n, mut json_column) = (0, 0);
        for (i, codec) in self.codecs.iter().enumerate() {
            let is_diff = codec.is_json() && bit(partial, json_column);
            json_column += usize::from(codec.is_json());
            if !bit(image.present, i) {
                row.push(Value::Unchanged);
                continue;
            }
            let is_null = bit(nulls, n);
            n += 1;
            if is_null {
                row.push(Value::Null);
            } else if is_diff {
                let diffs = codec.json_bytes(c)?;
                let Some(Value::Json(doc)) = before.and_then(|b| b.get(i)) else {
                    return Err(DecodeError::new(
                        "partial JSON update of a column missing from the before image; \
                         set binlog_row_image=FULL or binlog_row_value_options='' on the server",
                    ));
                };
                row.push(Value::Json(json_diff::apply(doc, diffs)?.into()));
            } else {
                codec.decode_into(c, &mut row)?;
            }
        }
        Ok(row)
    }
}

/// Which columns the row images of one rows event hold.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    present: &'a [u8],
    null_bytes: usize,
    all_present: bool,
}
