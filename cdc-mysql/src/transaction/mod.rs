//! Assembles binlog events into whole transactions in commit order, each with
//! its GTID and the file:pos after its last event, as [`SourceBatch`]es.
//!
//! The decoder is fed events one at a time, from the live stream or a file, and
//! is the single place that knows event order: GTID or `BEGIN` opens a
//! transaction, TABLE_MAP and rows events add changes, XID or `COMMIT` (or the
//! statement itself for a standalone DDL group) closes it. An XA transaction
//! is kept at its `XA PREPARE` and emitted at its `XA COMMIT`, in that
//! commit's place and with its GTID, or dropped at `XA ROLLBACK` (see [`xa`]).
//! A transaction larger than `transaction_chunk_bytes` is spilled to disk and
//! handed out in parts (see [`open`]): after a `feed` that completes one, drain
//! [`Decoder::next_part`] before feeding more.

mod events;
mod open;
mod xa;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use cdc_core::SourceBatch;
use cdc_core::event::{Heartbeat, Record, SharedStr, SourcePosition, TableName};

use crate::binlog::cursor::DecodeError;
use crate::binlog::event::{EventHeader, FormatDescription, Rotate, kind};
use crate::binlog::{gtid_event, payload};
use crate::error::Error;
use crate::gtid::{GtidSet, MariaGtidList};
use crate::mariadb;
use crate::rows::TableEntry;
use crate::schema::SchemaCache;
use crate::spill::SpillError;
use open::{Finished, OpenTxn, Parts, Stamp};

pub(crate) use open::SplitPolicy;

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
    /// Transactions too large to buffer, spilled to disk and emitted in parts.
    pub split_transactions: u64,
    /// Data changes logged as statements (a session with
    /// `binlog_format=STATEMENT`): their rows are not in the binlog, so they
    /// are not captured. Each is also a warning in the log.
    pub statement_changes: u64,
}

/// Why an event could not be fed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FeedError {
    /// The event bytes are malformed or unsupported.
    Decode(DecodeError),
    /// An `XA COMMIT` for a transaction whose `XA PREPARE` this decoder did
    /// not see: it was prepared before the position reading started from.
    XaNotPrepared {
        /// The XID as the server wrote it.
        xid: String,
    },
    /// The spill file of a large transaction could not be written or read.
    Spill {
        /// The spill directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<DecodeError> for FeedError {
    fn from(e: DecodeError) -> Self {
        FeedError::Decode(e)
    }
}

impl From<SpillError> for FeedError {
    fn from(e: SpillError) -> Self {
        FeedError::Spill {
            dir: e.dir,
            source: e.source,
        }
    }
}

impl FeedError {
    /// The crate error, naming the event's file and position.
    pub fn into_error(self, file: &str, pos: u64) -> Error {
        match self {
            FeedError::Decode(e) => Error::malformed(file, pos, e.0),
            FeedError::XaNotPrepared { xid } => Error::XaPreparedBeforeStart {
                xid,
                file: file.to_owned(),
                pos,
            },
            FeedError::Spill { dir, source } => Error::Spill { dir, source },
        }
    }
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedError::Decode(e) => write!(f, "{e}"),
            FeedError::XaNotPrepared { xid } => {
                write!(f, "XA COMMIT of {xid}, whose XA PREPARE was not seen")
            }
            FeedError::Spill { dir, source } => {
                write!(f, "spill file in {}: {source}", dir.display())
            }
        }
    }
}

/// A table map seen in the stream: its body and the entry it resolved to
/// (`None`: a table that is not read).
#[derive(Debug)]
struct MapSlot {
    raw: Vec<u8>,
    entry: Option<Arc<TableEntry>>,
}

/// Hashes table ids (server-assigned integers) with one multiply instead of
/// SipHash: they are looked up for every rows event.
#[derive(Debug, Default, Clone, Copy)]
struct TableIdHasher(u64);

impl Hasher for TableIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
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
    file: SharedStr,
    last_pos: u64,
    /// Table maps by table id, with the body they were built from, so a
    /// repeated map (every transaction sends one) costs a lookup and a compare
    /// instead of a parse.
    maps: HashMap<u64, MapSlot, BuildHasherDefault<TableIdHasher>>,
    schemas: SchemaCache,
    tables: Option<HashSet<TableName>>,
    maria: MariaGtidList,
    mysql: GtidSet,
    flavor: Flavor,
    txn: Option<OpenTxn>,
    /// XA transactions prepared and not yet committed or rolled back, by XID.
    prepared: HashMap<String, OpenTxn>,
    expand_payloads: bool,
    last_emit_ts: u32,
    stats: DecodeStats,
    split: SplitPolicy,
    parts: Option<Parts>,
    /// Position of the last completed unit handed out (what a part of a split
    /// transaction carries).
    emitted: SourcePosition,
    /// Reused buffer for decompressed MariaDB events.
    inflated: Vec<u8>,
    /// Changes of the last committed transaction (capped), reserved up front
    /// for the next one: consecutive transactions tend to be alike.
    changes_hint: usize,
}

/// Most changes reserved ahead for a transaction (about 1 MiB of records);
/// a larger transaction grows its buffer as it goes.
const MAX_CHANGES_HINT: usize = 4096;

impl Decoder {
    /// A decoder for the given tables (`None`: every table). `expand_payloads` is
    /// true when the caller does not already expand MySQL 8 transaction payloads
    /// (files), false for the live stream (mysql_async expands them).
    pub fn new(tables: Option<HashSet<TableName>>, expand_payloads: bool) -> Self {
        Decoder {
            fde: FormatDescription::default(),
            file: SharedStr::default(),
            last_pos: 0,
            maps: HashMap::default(),
            schemas: SchemaCache::default(),
            tables,
            maria: MariaGtidList::default(),
            mysql: GtidSet::default(),
            flavor: Flavor::Unknown,
            txn: None,
            prepared: HashMap::new(),
            expand_payloads,
            last_emit_ts: 0,
            stats: DecodeStats::default(),
            split: SplitPolicy::default(),
            parts: None,
            emitted: SourcePosition::None,
            inflated: Vec::new(),
            changes_hint: 0,
        }
    }

    /// Transactions whose changes exceed about `bytes` in memory are spilled to
    /// disk and handed out in parts of about `bytes` (default 64 MiB).
    pub fn with_transaction_chunk_bytes(mut self, bytes: usize) -> Self {
        self.split.chunk_bytes = bytes.max(1);
        self
    }

    /// Directory for the spill files of large transactions (default: the
    /// system temp dir).
    pub fn with_spill_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.split.dir = dir;
        self
    }

    /// Sets the starting file and GTID state (from a resume position).
    pub fn set_position(&mut self, file: &str, pos: u64, gtid: Option<&str>) -> Result<(), String> {
        self.file = file.into();
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
        self.emitted = self.position();
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
    /// re-read from the last committed position. Parts of a committed split
    /// transaction not yet taken are kept.
    pub fn abandon_transaction(&mut self) {
        self.txn = None;
    }

    /// The next part of a committed transaction that was split, if any. Take
    /// them all before feeding the next event.
    pub fn next_part(&mut self) -> Result<Option<SourceBatch>, FeedError> {
        let Some(parts) = self.parts.as_mut() else {
            return Ok(None);
        };
        match parts.next_part(self.split.chunk_bytes)? {
            Some(batch) => Ok(Some(batch)),
            None => {
                self.parts = None;
                Ok(None)
            }
        }
    }

    /// Whether `table` is read.
    fn wanted(&self, table: &TableName) -> bool {
        self.tables.as_ref().is_none_or(|t| t.contains(table))
    }

    fn position(&self) -> SourcePosition {
        // No GTID yet (MySQL with gtid_mode OFF writes anonymous ones): no state.
        let gtid = match self.flavor {
            Flavor::MariaDb => Some(self.maria.to_string()),
            Flavor::MySql => Some(self.mysql.to_string()),
            Flavor::Unknown => None,
        }
        .filter(|state| !state.is_empty())
        .map(SharedStr::from);
        SourcePosition::MySql {
            file: self.file.clone(),
            pos: self.last_pos,
            gtid,
        }
    }

    /// Feeds one event (header and body without checksum); completed
    /// transactions and heartbeats are pushed to `out`, parts of a split
    /// transaction wait in [`next_part`](Self::next_part).
    pub fn feed(
        &mut self,
        h: &EventHeader,
        data: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Result<(), FeedError> {
        self.stats.events += 1;
        let is_artificial = h.log_pos == 0 || h.flags & EventHeader::ARTIFICIAL != 0;
        if h.log_pos != 0 && h.kind != kind::ROTATE && h.kind != kind::FORMAT_DESCRIPTION {
            self.last_pos = u64::from(h.log_pos);
        }
        match h.kind {
            kind::ROTATE => {
                let r = Rotate::parse(data)?;
                self.file = r.next_file.into();
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
            kind::MARIADB_QUERY_COMPRESSED => self.on_compressed_query(h, data, out)?,
            kind::XID => self.commit(h, out)?,
            kind::TABLE_MAP => self.on_table_map(data)?,
            kind::WRITE_ROWS
            | kind::UPDATE_ROWS
            | kind::DELETE_ROWS
            | kind::WRITE_ROWS_V1
            | kind::UPDATE_ROWS_V1
            | kind::DELETE_ROWS_V1
            | kind::PARTIAL_UPDATE_ROWS => self.on_rows(h.kind, data)?,
            kind::MARIADB_WRITE_ROWS_COMPRESSED_V1
            | kind::MARIADB_UPDATE_ROWS_COMPRESSED_V1
            | kind::MARIADB_DELETE_ROWS_COMPRESSED_V1
            | kind::MARIADB_WRITE_ROWS_COMPRESSED
            | kind::MARIADB_UPDATE_ROWS_COMPRESSED
            | kind::MARIADB_DELETE_ROWS_COMPRESSED => self.on_compressed_rows(h.kind, data)?,
            kind::MARIADB_GTID => {
                let ev = mariadb::GtidEvent::parse(data, h.server_id)?;
                self.flavor = Flavor::MariaDb;
                let mut txn = OpenTxn::with_txid(Some(ev.gtid.to_string().into()));
                txn.maria = Some(ev.gtid);
                txn.standalone = ev.is_standalone();
                self.txn = Some(txn);
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
            kind::GTID | kind::GTID_TAGGED => {
                let gtid = if h.kind == kind::GTID {
                    gtid_event::parse_gtid(data)?
                } else {
                    gtid_event::parse_tagged_gtid(data)?
                };
                self.flavor = Flavor::MySql;
                let mut txn = OpenTxn::with_txid(Some(gtid.to_string().into()));
                txn.mysql = Some(gtid);
                self.txn = Some(txn);
            }
            kind::ANONYMOUS_GTID => {
                self.txn = Some(OpenTxn::default());
            }
            kind::PREVIOUS_GTIDS => {
                self.flavor = Flavor::MySql;
                gtid_event::parse_previous_gtids(data, &mut self.mysql)?;
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
                        && self.file != name
                    {
                        self.file = name.into();
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
            | kind::MARIADB_START_ENCRYPTION => {}
            kind::XA_PREPARE => self.on_xa_prepare(h, data, out)?,
            _ => self.stats.unknown_events += 1,
        }
        Ok(())
    }

    fn commit(&mut self, h: &EventHeader, out: &mut Vec<SourceBatch>) -> Result<(), SpillError> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        if let Some(g) = txn.maria {
            self.maria.apply(g);
        }
        if let Some(g) = &txn.mysql {
            self.mysql.add(g);
        }
        if !txn.has_changes() {
            // Nothing for our tables: advance the position now and then so an idle
            // reader of busy unrelated tables does not fall far behind.
            if !txn.schemas.is_empty() || h.timestamp > self.last_emit_ts {
                self.heartbeat_with(h, txn.schemas, out);
            }
            return Ok(());
        }
        let position = self.position();
        let time = i64::from(h.timestamp) * 1_000_000;
        let stamp = Stamp::new(txn.txid.clone(), position.clone(), time);
        let previous = std::mem::replace(&mut self.emitted, position);
        self.stats.transactions += 1;
        self.last_emit_ts = h.timestamp;
        self.changes_hint = txn.buffered_changes().min(MAX_CHANGES_HINT);
        match txn.finish(stamp, previous)? {
            Finished::Whole(batch) => out.push(batch),
            Finished::Split(parts) => {
                self.stats.split_transactions += 1;
                // A caller that fed on without taking the previous parts still
                // gets them, in order (in memory, as it chose).
                if let Some(mut earlier) = self.parts.take() {
                    while let Some(part) = earlier.next_part(self.split.chunk_bytes)? {
                        out.push(part);
                    }
                }
                self.parts = Some(*parts);
            }
        }
        Ok(())
    }

    fn heartbeat(&mut self, h: &EventHeader, out: &mut Vec<SourceBatch>) {
        self.heartbeat_with(h, Vec::new(), out);
    }

    /// A heartbeat at the current position, after `schemas`: the schemas that
    /// a group without changes brought are still logged before any change
    /// that uses them (the cache counts them as emitted).
    fn heartbeat_with(
        &mut self,
        h: &EventHeader,
        schemas: Vec<Record>,
        out: &mut Vec<SourceBatch>,
    ) {
        let position = self.position();
        self.last_emit_ts = h.timestamp;
        self.emitted = position.clone();
        let mut records = schemas;
        records.push(Record::Heartbeat(Heartbeat {
            position: position.clone(),
            time_micros: i64::from(h.timestamp) * 1_000_000,
        }));
        out.push(SourceBatch { records, position });
    }
}

/// Result alias of the event handlers.
type Fed<T> = Result<T, FeedError>;
