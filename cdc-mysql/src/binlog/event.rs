//! The binlog event header, event type codes and the generic events every
//! server writes (format description, rotate, query, xid, rows header).

use super::cursor::{Cursor, DecodeError, Decoded};

/// Length of a v4 event header.
pub const HEADER_LEN: usize = 19;
/// Length of an event checksum (CRC32).
pub const CHECKSUM_LEN: usize = 4;

/// Event type codes used by MySQL 5.6+/8 and MariaDB 10.x.
#[allow(missing_docs)]
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const INTVAR: u8 = 5;
    pub const RAND: u8 = 13;
    pub const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const HEARTBEAT: u8 = 27;
    pub const IGNORABLE: u8 = 28;
    pub const ROWS_QUERY: u8 = 29;
    pub const WRITE_ROWS: u8 = 30;
    pub const UPDATE_ROWS: u8 = 31;
    pub const DELETE_ROWS: u8 = 32;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const TRANSACTION_CONTEXT: u8 = 36;
    pub const VIEW_CHANGE: u8 = 37;
    pub const XA_PREPARE: u8 = 38;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const GTID_TAGGED: u8 = 42;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_START_ENCRYPTION: u8 = 164;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 168;
    pub const MARIADB_WRITE_ROWS_COMPRESSED: u8 = 169;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED: u8 = 170;
    pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 171;
}

/// The common 19-byte header of every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    /// Seconds since the Unix epoch when the statement began.
    pub timestamp: u32,
    /// Event type code (see [`kind`]).
    pub kind: u8,
    /// Server id of the originating server.
    pub server_id: u32,
    /// Size of the whole event including header and checksum.
    pub event_size: u32,
    /// Position of the next event in the binlog file (0 for artificial events).
    pub log_pos: u32,
    /// Event flags.
    pub flags: u16,
}

impl EventHeader {
    /// Flag set on artificial events a server generates while streaming.
    pub const ARTIFICIAL: u16 = 0x20;

    /// Parses the header from the first 19 bytes.
    pub fn parse(bytes: &[u8]) -> Decoded<Self> {
        let mut c = Cursor::new(bytes);
        Ok(EventHeader {
            timestamp: c.u32()?,
            kind: c.u8()?,
            server_id: c.u32()?,
            event_size: c.u32()?,
            log_pos: c.u32()?,
            flags: c.u16()?,
        })
    }
}

/// Whether a format description announces a checksum algorithm byte: every
/// server from MySQL 5.6.1 on, which includes every MariaDB 10.x.
fn version_has_checksum(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= (5, 6, 1)
}

/// A format description event: how the following events are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription {
    /// The server's version string, e.g. `10.11.6-MariaDB-log`.
    pub server_version: String,
    /// Post-header length of each event type, indexed by `type - 1`.
    pub post_header_lens: Vec<u8>,
    /// Whether events carry a CRC32 checksum.
    pub checksum: bool,
}

impl Default for FormatDescription {
    /// The layout assumed before the first format description: MySQL 5.6+/MariaDB.
    fn default() -> Self {
        FormatDescription {
            server_version: String::new(),
            post_header_lens: Vec::new(),
            checksum: false,
        }
    }
}

impl FormatDescription {
    /// Parses the body of a format description event. `with_tail` is true when
    /// `data` still ends with the checksum algorithm byte and the CRC (read from a
    /// file); the live stream hands the body with them removed.
    pub fn parse(data: &[u8], with_tail: bool) -> Decoded<Self> {
        let mut c = Cursor::new(data);
        let binlog_version = c.u16()?;
        if binlog_version != 4 {
            return Err(DecodeError::new(format!(
                "binlog version {binlog_version} is not supported (only v4, MySQL 5.0+)"
            )));
        }
        let version = c.take(50)?;
        let end = version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(version.len());
        let server_version = String::from_utf8_lossy(&version[..end]).into_owned();
        let _created = c.u32()?;
        let header_len = c.u8()?;
        if usize::from(header_len) != HEADER_LEN {
            return Err(DecodeError::new(format!(
                "event header length {header_len} is not 19"
            )));
        }
        let has_alg = version_has_checksum(&server_version);
        let mut lens = c.rest();
        let mut checksum = false;
        if has_alg && with_tail {
            let split = lens
                .len()
                .checked_sub(1 + CHECKSUM_LEN)
                .ok_or_else(|| DecodeError::new("format description too short"))?;
            let alg = lens[split];
            checksum = match alg {
                0 => false,
                1 => true,
                0xff => false,
                other => {
                    return Err(DecodeError::new(format!(
                        "unknown checksum algorithm {other}"
                    )));
                }
            };
            lens = &lens[..split];
        }
        Ok(FormatDescription {
            server_version,
            post_header_lens: lens.to_vec(),
            checksum,
        })
    }

    /// Whether the server is MariaDB.
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }

    /// Post-header length of an event type, if the description lists it.
    pub fn post_header_len(&self, kind: u8) -> Option<u8> {
        self.post_header_lens
            .get(usize::from(kind).checked_sub(1)?)
            .copied()
    }

    /// Width of table ids in table-map and rows events: 6 bytes since MySQL 5.1.4.
    pub fn table_id_len(&self, kind: u8) -> usize {
        match self.post_header_len(kind) {
            Some(6) => 4,
            _ => 6,
        }
    }
}

/// A rotate event: the stream continues in `next_file` at `pos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate {
    /// Position in the next file.
    pub pos: u64,
    /// The next binlog file name.
    pub next_file: String,
}

impl Rotate {
    /// Parses a rotate event body.
    pub fn parse(data: &[u8]) -> Decoded<Self> {
        let mut c = Cursor::new(data);
        let pos = c.u64()?;
        let name = c.rest();
        let name = std::str::from_utf8(name)
            .map_err(|_| DecodeError::new("rotate event file name is not UTF-8"))?;
        Ok(Rotate {
            pos,
            next_file: name.to_owned(),
        })
    }
}

/// A query event: a statement (DDL, `BEGIN`, `COMMIT`) with its default database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// Default database of the statement.
    pub schema: &'a [u8],
    /// The statement text.
    pub sql: &'a [u8],
}

impl<'a> Query<'a> {
    /// Parses a query event body.
    pub fn parse(data: &'a [u8]) -> Decoded<Self> {
        let mut c = Cursor::new(data);
        let _thread = c.u32()?;
        let _exec_time = c.u32()?;
        let schema_len = c.u8()?;
        let _error = c.u16()?;
        let status_len = c.u16()?;
        c.take(usize::from(status_len))?;
        let schema = c.take(usize::from(schema_len))?;
        c.take(1)?;
        Ok(Query {
            schema,
            sql: c.rest(),
        })
    }
}

/// The common header of a rows event, with the row bytes left undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsHeader<'a> {
    /// The table map id this event refers to.
    pub table_id: u64,
    /// Rows event flags (bit 0: end of statement).
    pub flags: u16,
    /// Number of columns in the table.
    pub column_count: usize,
    /// Columns present in the (before) image.
    pub present: &'a [u8],
    /// Columns present in the after image of an update.
    pub present_after: Option<&'a [u8]>,
    /// The row images.
    pub rows: &'a [u8],
}

impl<'a> RowsHeader<'a> {
    /// Parses a rows event body of type `kind` (v1 or v2).
    pub fn parse(data: &'a [u8], kind: u8, fde: &FormatDescription) -> Decoded<Self> {
        let mut c = Cursor::new(data);
        let table_id = c.uint_le(fde.table_id_len(kind))?;
        let flags = c.u16()?;
        let is_v2 = matches!(
            kind,
            kind::WRITE_ROWS | kind::UPDATE_ROWS | kind::DELETE_ROWS | kind::PARTIAL_UPDATE_ROWS
        );
        if is_v2 {
            let extra = usize::from(c.u16()?);
            let rest = extra
                .checked_sub(2)
                .ok_or_else(|| DecodeError::new("rows event extra-data length below 2"))?;
            c.take(rest)?;
        }
        let column_count = usize::try_from(c.lenenc()?)
            .ok()
            .filter(|&n| n <= 4096)
            .ok_or_else(|| DecodeError::new("rows event column count over 4096"))?;
        let bitmap_len = column_count.div_ceil(8);
        let present = c.take(bitmap_len)?;
        let present_after = if matches!(
            kind,
            kind::UPDATE_ROWS | kind::UPDATE_ROWS_V1 | kind::PARTIAL_UPDATE_ROWS
        ) {
            Some(c.take(bitmap_len)?)
        } else {
            None
        };
        Ok(RowsHeader {
            table_id,
            flags,
            column_count,
            present,
            present_after,
            rows: c.rest(),
        })
    }
}

/// Reads bit `i` of a little-endian bitmap (bit 0 is the low bit of byte 0).
#[inline]
pub fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_byte_is_expected_from_mysql_5_6_1_and_every_mariadb() {
        assert!(version_has_checksum("10.11.6-MariaDB-log"));
        assert!(version_has_checksum("8.0.36"));
        assert!(version_has_checksum("5.6.1"));
        assert!(!version_has_checksum("5.5.62-log"));
    }

    #[test]
    fn a_truncated_query_event_is_an_error() {
        assert!(Query::parse(&[0; 12]).is_err());
    }
}
