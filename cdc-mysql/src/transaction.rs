//! Assembles binlog events into whole transactions in commit order, each with
//! its GTID and the file:pos after its last event, as [`SourceBatch`]es.
//!
//! The decoder is fed events one at a time, from the live stream or a file, and
//! is the single place that knows event order: GTID or `BEGIN` opens a
//! transaction, TABLE_MAP and rows events add changes, XID or `COMMIT` (or the
//! statement itself for a standalone DDL group) closes it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cdc_core::SourceBatch;
use cdc_core::event::{
    Begin, Change, ChangeKind, Commit, Heartbeat, Record, SourcePosition, TableName, Value,
};

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};
use crate::binlog::event::{EventHeader, FormatDescription, Query, Rotate, RowsHeader, kind};
use crate::binlog::payload;
use crate::gtid::{GtidSet, MariaGtid, MariaGtidList, format_uuid};
use crate::mariadb;
use crate::rows::TableEntry;
use crate::rows::table_map::TableMap;
use crate::schema::SchemaCache;
use crate::statement::{first_word, truncated_table};

/// Counters of what the decoder saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Events fed.
    pub events: u64,
    /// Events of a type this crate does not know, skipped.
    pub unknown_events: u64,
    /// Rows events decoded.
    pub row_events: u64,
    /// Row changes produced.
    pub rows: u64,
    /// Transactions emitted.
    pub transactions: u64,
}

#[derive(Debug, Default)]
struct OpenTxn {
    txid: Option<String>,
    maria: Option<MariaGtid>,
    mysql: Option<([u8; 16], u64)>,
    standalone: bool,
    begin_seen: bool,
    schemas: Vec<Record>,
    changes: Vec<Record>,
}

/// The GTID flavour of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Unknown,
    MariaDb,
    MySql,
}

/// Turns binlog events into transactions.
#[derive(Debug)]
pub struct Decoder {
    fde: FormatDescription,
    file: String,
    last_pos: u64,
    maps: HashMap<u64, Option<Arc<TableEntry>>>,
    /// Table-map bodies already resolved, so a repeated map (every transaction
    /// sends one) costs a hash lookup instead of a parse.
    raw_maps: HashMap<Vec<u8>, Option<Arc<TableEntry>>>,
    schemas: SchemaCache,
    tables: Option<HashSet<TableName>>,
    maria: MariaGtidList,
    mysql: GtidSet,
    flavor: Flavor,
    txn: Option<OpenTxn>,
    expand_payloads: bool,
    last_emit_ts: u32,
    stats: DecodeStats,
}

impl Decoder {
    /// A decoder for the given tables (`None`: every table). `expand_payloads` is
    /// true when the caller does not already expand MySQL 8 transaction payloads
    /// (files), false for the live stream (mysql_async expands them).
    pub fn new(tables: Option<HashSet<TableName>>, expand_payloads: bool) -> Self {
        Decoder {
            fde: FormatDescription::default(),
            file: String::new(),
            last_pos: 0,
            maps: HashMap::new(),
            raw_maps: HashMap::new(),
            schemas: SchemaCache::default(),
            tables,
            maria: MariaGtidList::default(),
            mysql: GtidSet::default(),
            flavor: Flavor::Unknown,
            txn: None,
            expand_payloads,
            last_emit_ts: 0,
            stats: DecodeStats::default(),
        }
    }

    /// Sets the starting file and GTID state (from a resume position).
    pub fn set_position(&mut self, file: &str, pos: u64, gtid: Option<&str>) -> Result<(), String> {
        self.file = file.to_owned();
        self.last_pos = pos;
        if let Some(text) = gtid.filter(|t| !t.is_empty()) {
            if text.contains(':') {
                self.mysql = GtidSet::parse(text).ok_or("malformed MySQL GTID set")?;
                self.flavor = Flavor::MySql;
            } else {
                self.maria = MariaGtidList::parse(text).ok_or("malformed MariaDB GTID list")?;
                self.flavor = Flavor::MariaDb;
            }
        }
        Ok(())
    }

    /// The current binlog file.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What was decoded so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// The format description in effect.
    pub fn format(&self) -> &FormatDescription {
        &self.fde
    }

    /// The schema cache (to install catalog hints).
    pub fn schemas_mut(&mut self) -> &mut SchemaCache {
        &mut self.schemas
    }

    /// Whether the decoder is inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Drops a transaction left open (the stream broke inside it); it is
    /// re-read from the last committed position.
    pub fn abandon_transaction(&mut self) {
        self.txn = None;
    }

    /// Whether `table` is read.
    fn wanted(&self, table: &TableName) -> bool {
        self.tables.as_ref().is_none_or(|t| t.contains(table))
    }

    /// Whether a TABLE_MAP event's body would bring a new schema (so the caller
    /// can refresh catalog hints first). Returns the table if so.
    pub fn new_table(&self, data: &[u8]) -> Option<TableName> {
        if let Some(hit) = self.raw_maps.get(data)
            && hit.as_ref().is_none_or(|e| self.schemas.is_current(e))
        {
            return None;
        }
        let map = TableMap::parse(data, &self.fde).ok()?;
        let name = TableName::new(map.schema.clone(), map.table.clone());
        (self.wanted(&name) && self.schemas.is_new(&map)).then_some(name)
    }

    fn position(&self) -> SourcePosition {
        let gtid = match self.flavor {
            Flavor::MariaDb => Some(self.maria.to_string()),
            Flavor::MySql => Some(self.mysql.to_string()),
            Flavor::Unknown => None,
        };
        SourcePosition::MySql {
            file: self.file.clone(),
            pos: self.last_pos,
            gtid,
        }
    }

    /// Feeds one event (header and body without checksum); completed
    /// transactions and heartbeats are pushed to `out`.
    pub fn feed(
        &mut self,
        h: &EventHeader,
        data: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Decoded<()> {
        self.stats.events += 1;
        let is_artificial = h.log_pos == 0 || h.flags & EventHeader::ARTIFICIAL != 0;
        if h.log_pos != 0 && h.kind != kind::ROTATE && h.kind != kind::FORMAT_DESCRIPTION {
            self.last_pos = u64::from(h.log_pos);
        }
        match h.kind {
            kind::ROTATE => {
                let r = Rotate::parse(data)?;
                self.file = r.next_file;
                self.last_pos = r.pos;
                if !is_artificial {
                    self.maps.clear();
                }
            }
            kind::FORMAT_DESCRIPTION => {
                self.fde = FormatDescription::parse(data, false)?;
                if self.fde.is_mariadb() && self.flavor == Flavor::Unknown {
                    self.flavor = Flavor::MariaDb;
                }
                // A new file from a restarted server: a transaction still open
                // never committed.
                if h.log_pos != 0 {
                    self.txn = None;
                }
            }
            kind::QUERY => self.on_query(h, data, out)?,
            kind::XID => self.commit(h, out),
            kind::TABLE_MAP => self.on_table_map(data)?,
            kind::WRITE_ROWS
            | kind::UPDATE_ROWS
            | kind::DELETE_ROWS
            | kind::WRITE_ROWS_V1
            | kind::UPDATE_ROWS_V1
            | kind::DELETE_ROWS_V1 => self.on_rows(h.kind, data)?,
            kind::PARTIAL_UPDATE_ROWS => {
                return Err(DecodeError::new(
                    "partial JSON update rows event; set binlog_row_value_options='' on the server",
                ));
            }
            kind::MARIADB_GTID => {
                let ev = mariadb::GtidEvent::parse(data, h.server_id)?;
                self.flavor = Flavor::MariaDb;
                self.txn = Some(OpenTxn {
                    txid: Some(ev.gtid.to_string()),
                    maria: Some(ev.gtid),
                    standalone: ev.is_standalone(),
                    ..OpenTxn::default()
                });
            }
            kind::MARIADB_GTID_LIST => {
                for gtid in mariadb::parse_gtid_list(data)? {
                    self.flavor = Flavor::MariaDb;
                    self.maria.apply_if_newer(gtid);
                }
            }
            kind::MARIADB_BINLOG_CHECKPOINT => {
                mariadb::parse_checkpoint(data)?;
            }
            kind::MARIADB_ANNOTATE_ROWS => {
                mariadb::parse_annotate(data);
            }
            kind::GTID => {
                let mut c = Cursor::new(data);
                let _flags = c.u8()?;
                let sid = c.array::<16>()?;
                let gno = c.u64()?;
                self.flavor = Flavor::MySql;
                self.txn = Some(OpenTxn {
                    txid: Some(format!("{}:{gno}", format_uuid(&sid))),
                    mysql: Some((sid, gno)),
                    ..OpenTxn::default()
                });
            }
            kind::ANONYMOUS_GTID | kind::GTID_TAGGED => {
                self.txn = Some(OpenTxn::default());
            }
            kind::PREVIOUS_GTIDS => {
                self.flavor = Flavor::MySql;
                parse_previous_gtids(data, &mut self.mysql)?;
            }
            kind::TRANSACTION_PAYLOAD => {
                if self.expand_payloads {
                    let events = payload::decompress(data)?;
                    let outer_pos = self.last_pos;
                    for (inner, body) in payload::events(&events) {
                        let mut inner = inner?;
                        inner.log_pos = outer_pos as u32;
                        self.feed(&inner, body, out)?;
                    }
                }
            }
            kind::HEARTBEAT | kind::HEARTBEAT_V2 => {
                if self.txn.is_none() && h.log_pos != 0 && h.kind == kind::HEARTBEAT {
                    if let Ok(name) = std::str::from_utf8(data)
                        && !name.is_empty()
                    {
                        self.file = name.to_owned();
                    }
                    self.last_pos = u64::from(h.log_pos);
                    self.heartbeat(h, out);
                }
            }
            kind::STOP
            | kind::INTVAR
            | kind::RAND
            | kind::USER_VAR
            | kind::IGNORABLE
            | kind::ROWS_QUERY
            | kind::TRANSACTION_CONTEXT
            | kind::VIEW_CHANGE
            | kind::XA_PREPARE
            | kind::MARIADB_START_ENCRYPTION => {}
            _ => self.stats.unknown_events += 1,
        }
        Ok(())
    }

    fn on_query(
        &mut self,
        h: &EventHeader,
        data: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Decoded<()> {
        let q = Query::parse(data)?;
        let sql = String::from_utf8_lossy(q.sql);
        let word = first_word(&sql);
        match word.as_str() {
            "BEGIN" => {
                self.txn.get_or_insert_with(OpenTxn::default).begin_seen = true;
            }
            "COMMIT" => self.commit(h, out),
            "ROLLBACK" if !sql.to_ascii_uppercase().contains(" TO ") => self.txn = None,
            "SAVEPOINT" | "ROLLBACK" | "XA" => {}
            _ => {
                // DDL or another statement that is a group of its own. The schema of
                // an altered table is re-emitted at its next TABLE_MAP, whose
                // metadata then differs.
                if word == "TRUNCATE" {
                    let schema = String::from_utf8_lossy(q.schema);
                    if let Some(table) = truncated_table(&sql, &schema)
                        && self.wanted(&table)
                    {
                        self.txn
                            .get_or_insert_with(OpenTxn::default)
                            .changes
                            .push(Record::Change(Change {
                                table,
                                kind: ChangeKind::Truncate,
                                before: None,
                                after: None,
                                position: SourcePosition::None,
                                txid: None,
                                commit_time_micros: 0,
                            }));
                    }
                }
                let standalone = self
                    .txn
                    .as_ref()
                    .is_none_or(|t| t.standalone || (!t.begin_seen && t.maria.is_none()));
                if standalone {
                    self.commit(h, out);
                }
            }
        }
        Ok(())
    }

    fn on_table_map(&mut self, data: &[u8]) -> Decoded<()> {
        if let Some(hit) = self.raw_maps.get(data) {
            let current = hit.as_ref().is_none_or(|e| self.schemas.is_current(e));
            if current {
                let id = Cursor::new(data).uint_le(self.fde.table_id_len(kind::TABLE_MAP))?;
                let hit = hit.clone();
                self.maps.insert(id, hit);
                return Ok(());
            }
        }
        if self.raw_maps.len() > 1_000 {
            self.raw_maps.clear();
        }
        let map = TableMap::parse(data, &self.fde)?;
        let name = TableName::new(map.schema.clone(), map.table.clone());
        if !self.wanted(&name) {
            self.maps.insert(map.table_id, None);
            self.raw_maps.insert(data.to_vec(), None);
            return Ok(());
        }
        let (entry, emit) = self.schemas.resolve(&map)?;
        if let Some(schema) = emit {
            self.txn
                .get_or_insert_with(OpenTxn::default)
                .schemas
                .push(Record::Schema((*schema).clone()));
        }
        if self.maps.len() > 10_000 {
            self.maps.clear();
        }
        self.raw_maps.insert(data.to_vec(), Some(entry.clone()));
        self.maps.insert(map.table_id, Some(entry));
        Ok(())
    }

    fn on_rows(&mut self, ev_kind: u8, data: &[u8]) -> Decoded<()> {
        let rows = RowsHeader::parse(data, ev_kind, &self.fde)?;
        let entry = match self.maps.get(&rows.table_id) {
            Some(Some(entry)) => entry.clone(),
            Some(None) => return Ok(()),
            None => {
                return Err(DecodeError::new(format!(
                    "rows event for table id {} without a table map",
                    rows.table_id
                )));
            }
        };
        self.stats.row_events += 1;
        let txn = self.txn.get_or_insert_with(OpenTxn::default);
        let table = &entry.schema.table;
        let mut c = Cursor::new(rows.rows);
        while !c.is_empty() {
            let left = c.len();
            let (kind, before, after) = match ev_kind {
                kind::WRITE_ROWS | kind::WRITE_ROWS_V1 => {
                    let after = entry.decode_row(
                        rows.column_count,
                        rows.present,
                        &mut c,
                        &Value::Unchanged,
                    )?;
                    (ChangeKind::Insert, None, Some(after))
                }
                kind::DELETE_ROWS | kind::DELETE_ROWS_V1 => {
                    let before =
                        entry.decode_row(rows.column_count, rows.present, &mut c, &Value::Null)?;
                    (ChangeKind::Delete, Some(before), None)
                }
                _ => {
                    let before =
                        entry.decode_row(rows.column_count, rows.present, &mut c, &Value::Null)?;
                    let present_after = rows.present_after.unwrap_or(rows.present);
                    let after = entry.decode_row(
                        rows.column_count,
                        present_after,
                        &mut c,
                        &Value::Unchanged,
                    )?;
                    (ChangeKind::Update, Some(before), Some(after))
                }
            };
            if c.len() == left {
                // A row image with no present columns: nothing to decode, and
                // looping on it would never end.
                return Err(DecodeError::new("rows event with no columns present"));
            }
            self.stats.rows += 1;
            txn.changes.push(Record::Change(Change {
                table: table.clone(),
                kind,
                before,
                after,
                position: SourcePosition::None,
                txid: None,
                commit_time_micros: 0,
            }));
        }
        Ok(())
    }

    fn commit(&mut self, h: &EventHeader, out: &mut Vec<SourceBatch>) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        if let Some(g) = txn.maria {
            self.maria.apply(g);
        }
        if let Some((sid, gno)) = txn.mysql {
            self.mysql.add(sid, gno);
        }
        if txn.changes.is_empty() {
            // Nothing for our tables: advance the position now and then so an idle
            // reader of busy unrelated tables does not fall far behind.
            if !txn.schemas.is_empty() || h.timestamp > self.last_emit_ts {
                self.heartbeat(h, out);
            }
            return;
        }
        let position = self.position();
        let time = i64::from(h.timestamp) * 1_000_000;
        let mut records = txn.schemas;
        records.reserve(txn.changes.len() + 2);
        records.push(Record::Begin(Begin {
            txid: txn.txid.clone(),
            position: position.clone(),
            commit_time_micros: time,
        }));
        for mut record in txn.changes {
            if let Record::Change(c) = &mut record {
                c.position = position.clone();
                c.txid = txn.txid.clone();
                c.commit_time_micros = time;
            }
            records.push(record);
        }
        records.push(Record::Commit(Commit {
            txid: txn.txid,
            position: position.clone(),
            commit_time_micros: time,
        }));
        self.stats.transactions += 1;
        self.last_emit_ts = h.timestamp;
        out.push(SourceBatch { records, position });
    }

    fn heartbeat(&mut self, h: &EventHeader, out: &mut Vec<SourceBatch>) {
        let position = self.position();
        self.last_emit_ts = h.timestamp;
        out.push(SourceBatch {
            records: vec![Record::Heartbeat(Heartbeat {
                position: position.clone(),
                time_micros: i64::from(h.timestamp) * 1_000_000,
            })],
            position,
        });
    }
}

fn parse_previous_gtids(data: &[u8], set: &mut GtidSet) -> Decoded<()> {
    let mut c = Cursor::new(data);
    let n = c.u64()?;
    for _ in 0..n {
        let sid = c.array::<16>()?;
        let intervals = c.u64()?;
        if intervals.saturating_mul(16) > c.len() as u64 {
            return Err(DecodeError::new(
                "previous gtids interval count past the end",
            ));
        }
        for _ in 0..intervals {
            let (start, end) = (c.u64()?, c.u64()?);
            if start == 0 || end <= start {
                return Err(DecodeError::new("invalid gtid interval"));
            }
            set.add_range(sid, start, end - 1);
        }
    }
    Ok(())
}
