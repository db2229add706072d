//! The decoder's handlers of statement, table-map and rows events, plain and
//! MariaDB-compressed.

use std::mem::size_of;

use cdc_core::SourceBatch;
use cdc_core::event::{Change, ChangeKind, Record, SourcePosition, TableName, Value};

use super::open::OpenTxn;
use super::{Decoder, Fed, MapSlot};
use crate::binlog::cursor::{Cursor, DecodeError};
use crate::binlog::event::{EventHeader, Query, RowsHeader, kind};
use crate::mariadb::compressed;
use crate::rows::table_map::TableMap;
use crate::statement::{first_word, truncated_table};

impl Decoder {
    /// Whether a TABLE_MAP event's body would bring a new schema (so the caller
    /// can refresh catalog hints first). Returns the table if so.
    pub fn new_table(&self, data: &[u8]) -> Option<TableName> {
        if self.known_map(data).is_some() {
            return None;
        }
        let map = TableMap::parse(data, &self.fde).ok()?;
        let name = TableName::new(map.schema.clone(), map.table.clone());
        (self.wanted(&name) && self.schemas.is_new(&map)).then_some(name)
    }

    /// The slot of a table map identical to `data` whose schema is current.
    fn known_map(&self, data: &[u8]) -> Option<&MapSlot> {
        let id = Cursor::new(data)
            .uint_le(self.fde.table_id_len(kind::TABLE_MAP))
            .ok()?;
        self.maps.get(&id).filter(|slot| {
            slot.raw == data
                && slot
                    .entry
                    .as_ref()
                    .is_none_or(|e| self.schemas.is_current(e))
        })
    }

    pub(super) fn on_query(
        &mut self,
        h: &EventHeader,
        data: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Fed<()> {
        let q = Query::parse(data)?;
        self.on_statement(h, q.schema, q.sql, out)
    }

    /// MariaDB QUERY_COMPRESSED_EVENT: a query event whose statement text is
    /// compressed (`log_bin_compress=ON`).
    pub(super) fn on_compressed_query(
        &mut self,
        h: &EventHeader,
        data: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Fed<()> {
        let q = Query::parse(data)?;
        let mut sql = Vec::new();
        compressed::inflate(q.sql, &mut sql)?;
        self.on_statement(h, q.schema, &sql, out)
    }

    fn on_statement(
        &mut self,
        h: &EventHeader,
        schema: &[u8],
        sql: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Fed<()> {
        let sql = String::from_utf8_lossy(sql);
        let word = first_word(&sql);
        match word.as_str() {
            "BEGIN" => {
                self.txn.get_or_insert_with(OpenTxn::default).begin_seen = true;
            }
            "COMMIT" => self.commit(h, out)?,
            "ROLLBACK" if !sql.to_ascii_uppercase().contains(" TO ") => self.txn = None,
            "SAVEPOINT" | "ROLLBACK" => {}
            "XA" => self.on_xa(h, &sql, out)?,
            "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD" => {
                self.on_statement_change(h, schema);
                self.commit_if_standalone(h, out)?;
            }
            _ => {
                // DDL or another statement that is a group of its own. The schema of
                // an altered table is re-emitted at its next TABLE_MAP, whose
                // metadata then differs.
                if word == "TRUNCATE" {
                    let schema = String::from_utf8_lossy(schema);
                    if let Some(table) = truncated_table(&sql, &schema)
                        && self.wanted(&table)
                    {
                        let change = Record::Change(Change {
                            table,
                            kind: ChangeKind::Truncate,
                            before: None,
                            after: None,
                            position: SourcePosition::None,
                            txid: None,
                            commit_time_micros: 0,
                        });
                        self.txn.get_or_insert_with(OpenTxn::default).push(
                            change,
                            size_of::<Record>(),
                            &self.split,
                        )?;
                    }
                }
                self.commit_if_standalone(h, out)?;
            }
        }
        Ok(())
    }

    /// Ends the group of a statement that is a transaction of its own (DDL,
    /// or any statement outside `BEGIN`..`COMMIT`).
    fn commit_if_standalone(&mut self, h: &EventHeader, out: &mut Vec<SourceBatch>) -> Fed<()> {
        let standalone = self
            .txn
            .as_ref()
            .is_none_or(|t| t.standalone || (!t.begin_seen && t.maria.is_none()));
        if standalone {
            self.commit(h, out)?;
        }
        Ok(())
    }

    /// A data change logged as a statement has no rows in the binlog: counted,
    /// and a warning (the first, then at every power of two) that names where
    /// it is and the session's default database, but not the statement, which
    /// holds row values.
    fn on_statement_change(&mut self, h: &EventHeader, schema: &[u8]) {
        self.stats.statement_changes += 1;
        let count = self.stats.statement_changes;
        if count.is_power_of_two() {
            tracing::warn!(
                file = %self.file,
                end_pos = h.log_pos,
                default_database = %String::from_utf8_lossy(schema),
                count,
                "a data change was logged as a statement (binlog_format=STATEMENT in its \
                 session), so its rows are not in the binlog and are not captured; set \
                 binlog_format=ROW for every session and re-backfill the tables it changed"
            );
        }
    }

    pub(super) fn on_table_map(&mut self, data: &[u8]) -> Fed<()> {
        if let Some(slot) = self.known_map(data) {
            if let Some(entry) = slot.entry.clone() {
                self.txn
                    .get_or_insert_with(OpenTxn::default)
                    .use_table(&entry)?;
            }
            return Ok(());
        }
        if self.maps.len() > 10_000 {
            self.maps.clear();
        }
        let map = TableMap::parse(data, &self.fde)?;
        let name = TableName::new(map.schema.clone(), map.table.clone());
        if !self.wanted(&name) {
            self.maps.insert(
                map.table_id,
                MapSlot {
                    raw: data.to_vec(),
                    entry: None,
                },
            );
            return Ok(());
        }
        let (entry, emit) = self.schemas.resolve(&map)?;
        let txn = self.txn.get_or_insert_with(OpenTxn::default);
        if let Some(schema) = emit {
            txn.schemas.push(Record::Schema((*schema).clone()));
        }
        txn.use_table(&entry)?;
        self.maps.insert(
            map.table_id,
            MapSlot {
                raw: data.to_vec(),
                entry: Some(entry),
            },
        );
        Ok(())
    }

    pub(super) fn on_rows(&mut self, ev_kind: u8, data: &[u8]) -> Fed<()> {
        let rows = RowsHeader::parse(data, ev_kind, &self.fde)?;
        self.decode_rows(ev_kind, &rows, rows.rows)
    }

    /// MariaDB's compressed rows events (`log_bin_compress=ON`): the header and
    /// column bitmaps as in the plain event, then the row images compressed.
    pub(super) fn on_compressed_rows(&mut self, ev_kind: u8, data: &[u8]) -> Fed<()> {
        let plain = match ev_kind {
            kind::MARIADB_WRITE_ROWS_COMPRESSED_V1 => kind::WRITE_ROWS_V1,
            kind::MARIADB_UPDATE_ROWS_COMPRESSED_V1 => kind::UPDATE_ROWS_V1,
            kind::MARIADB_DELETE_ROWS_COMPRESSED_V1 => kind::DELETE_ROWS_V1,
            kind::MARIADB_WRITE_ROWS_COMPRESSED => kind::WRITE_ROWS,
            kind::MARIADB_UPDATE_ROWS_COMPRESSED => kind::UPDATE_ROWS,
            _ => kind::DELETE_ROWS,
        };
        let rows = RowsHeader::parse(data, plain, &self.fde)?;
        let mut buf = std::mem::take(&mut self.inflated);
        let result = compressed::inflate(rows.rows, &mut buf)
            .map_err(Into::into)
            .and_then(|()| self.decode_rows(plain, &rows, &buf));
        self.inflated = buf;
        result
    }

    fn decode_rows(&mut self, ev_kind: u8, rows: &RowsHeader<'_>, images: &[u8]) -> Fed<()> {
        // Borrowed, not cloned: only other fields of the decoder change below.
        let entry = match self.maps.get(&rows.table_id).map(|s| &s.entry) {
            Some(Some(entry)) => entry,
            Some(None) => return Ok(()),
            None => {
                return Err(DecodeError::new(format!(
                    "rows event for table id {} without a table map",
                    rows.table_id
                ))
                .into());
            }
        };
        self.stats.row_events += 1;
        let before_image = entry.image(rows.column_count, rows.present)?;
        let after_image = match rows.present_after {
            Some(p) => entry.image(rows.column_count, p)?,
            None => before_image,
        };
        let (kind, has_before, has_after) = match ev_kind {
            kind::WRITE_ROWS | kind::WRITE_ROWS_V1 => (ChangeKind::Insert, false, true),
            kind::DELETE_ROWS | kind::DELETE_ROWS_V1 => (ChangeKind::Delete, true, false),
            _ => (ChangeKind::Update, true, true),
        };
        // Memory a change takes besides its values' bytes, for the split limit.
        let fixed = size_of::<Record>()
            + (usize::from(has_before) + usize::from(has_after))
                * rows.column_count
                * size_of::<Value>();
        let txn = self.txn.get_or_insert_with(OpenTxn::default);
        txn.expect_changes(self.changes_hint);
        let table = &entry.schema.table;
        let mut c = Cursor::new(images);
        while !c.is_empty() {
            let left = c.len();
            let before = if has_before {
                Some(entry.decode_row(&before_image, &mut c, &Value::Null)?)
            } else {
                None
            };
            let after = if !has_after {
                None
            } else if ev_kind == kind::PARTIAL_UPDATE_ROWS {
                Some(entry.decode_partial_row(&after_image, &mut c, before.as_ref())?)
            } else {
                Some(entry.decode_row(&after_image, &mut c, &Value::Unchanged)?)
            };
            let consumed = left - c.len();
            if consumed == 0 {
                // A row image with no present columns: nothing to decode, and
                // looping on it would never end.
                return Err(DecodeError::new("rows event with no columns present").into());
            }
            self.stats.rows += 1;
            let change = Record::Change(Change {
                table: table.clone(),
                kind,
                before,
                after,
                position: SourcePosition::None,
                txid: None,
                commit_time_micros: 0,
            });
            txn.push(change, fixed + consumed, &self.split)?;
        }
        Ok(())
    }
}
