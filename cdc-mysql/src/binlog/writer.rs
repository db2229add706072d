//! Builds small binlog byte streams from the documented format, for tests,
//! fuzz seeds and benchmarks (no server needed). Not a general binlog writer.

use super::event::{HEADER_LEN, kind};

/// One column of a fixture table.
#[derive(Debug, Clone)]
pub struct FixtureColumn {
    /// Column name.
    pub name: String,
    /// Binlog type code.
    pub ty: u8,
    /// Type metadata bytes as the table map stores them.
    pub meta: Vec<u8>,
    /// Unsigned (numeric types).
    pub unsigned: bool,
    /// Part of the primary key.
    pub key: bool,
}

impl FixtureColumn {
    /// A column of `ty` with its table-map metadata.
    pub fn new(name: &str, ty: u8, meta: Vec<u8>, unsigned: bool, key: bool) -> Self {
        FixtureColumn {
            name: name.into(),
            ty,
            meta,
            unsigned,
            key,
        }
    }
}

/// The post-header and schema of a query event (thread id 1, no status
/// variables), before the statement text.
fn query_header(schema: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.push(schema.len() as u8);
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(schema.as_bytes());
    b.push(0);
    b
}

fn lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Encodes a variable-length integer of the MySQL serialization library.
pub fn varlen(v: u64) -> Vec<u8> {
    let n = (1..=8u32).find(|&n| v < 1u64 << (7 * n)).unwrap_or(9);
    if n == 9 {
        let mut out = vec![0xff];
        out.extend_from_slice(&v.to_le_bytes());
        return out;
    }
    let raw = (u128::from(v) << n) | ((1u128 << (n - 1)) - 1);
    raw.to_le_bytes()[..n as usize].to_vec()
}

fn varlen_signed(v: i64) -> Vec<u8> {
    let zigzag = if v >= 0 {
        (v as u64) << 1
    } else {
        ((-(v + 1)) as u64) << 1 | 1
    };
    varlen(zigzag)
}

/// Binary JSON of a string scalar (type 0x0c, then the length in 7-bit groups).
pub fn json_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x0c];
    let mut len = s.len();
    while len >= 0x80 {
        out.push((len & 0x7f) as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(s.as_bytes());
    out
}

/// One diff of a MySQL partial JSON update: the operation (0 replace, 1
/// insert, 2 remove), the path, and for replace and insert the binary JSON
/// value, each length-encoded.
pub fn json_diff(op: u8, path: &str, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![op];
    lenenc(&mut out, path.len() as u64);
    out.extend_from_slice(path.as_bytes());
    if let Some(v) = value {
        lenenc(&mut out, v.len() as u64);
        out.extend_from_slice(v);
    }
    out
}

/// The body of a MySQL 8.4 GTID_TAGGED_LOG_EVENT (serialization format 2), as
/// `Gtid_event::write_data_body` lays it out.
pub fn tagged_gtid_body(sid: [u8; 16], tag: &str, gno: u64) -> Vec<u8> {
    let mut fields = Vec::new();
    fields.extend(varlen(0));
    fields.extend(varlen(1));
    fields.extend(varlen(1));
    for b in sid {
        fields.extend(varlen(u64::from(b)));
    }
    fields.extend(varlen(2));
    fields.extend(varlen_signed(gno as i64));
    fields.extend(varlen(3));
    fields.extend(varlen(tag.len() as u64));
    fields.extend_from_slice(tag.as_bytes());
    fields.extend(varlen(4));
    fields.extend(varlen_signed(0));
    fields.extend(varlen(5));
    fields.extend(varlen_signed(1));
    fields.extend(varlen(6));
    fields.extend(varlen(1_700_000_000_000_000));
    fields.extend(varlen(8));
    fields.extend(varlen(1_000));
    fields.extend(varlen(9));
    fields.extend(varlen(80_400));
    let last_non_ignorable = 3;
    let fixed = 1 + varlen(last_non_ignorable).len() + fields.len();
    let mut size = fixed + 1;
    while fixed + varlen(size as u64).len() != size {
        size = fixed + varlen(size as u64).len();
    }
    let mut body = vec![2u8];
    body.extend(varlen(size as u64));
    body.extend(varlen(last_non_ignorable));
    body.extend(fields);
    body
}

/// Writes events into a binlog file image.
#[derive(Debug)]
pub struct BinlogWriter {
    buf: Vec<u8>,
    checksum: bool,
    base: usize,
    /// Timestamp written into every event header.
    pub timestamp: u32,
    /// Server id written into every event header.
    pub server_id: u32,
}

impl BinlogWriter {
    /// A file image with magic and a format description for `server_version`.
    pub fn new(server_version: &str, checksum: bool) -> Self {
        let mut w = BinlogWriter {
            buf: super::frame::FILE_MAGIC.to_vec(),
            checksum,
            base: 0,
            timestamp: 1_700_000_000,
            server_id: 1,
        };
        let mut body = Vec::new();
        body.extend_from_slice(&4u16.to_le_bytes());
        let mut version = [0u8; 50];
        let v = server_version.as_bytes();
        version[..v.len().min(50)].copy_from_slice(&v[..v.len().min(50)]);
        body.extend_from_slice(&version);
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(HEADER_LEN as u8);
        let mut lens = vec![0u8; 164];
        lens[usize::from(kind::TABLE_MAP) - 1] = 8;
        for k in [kind::WRITE_ROWS, kind::UPDATE_ROWS, kind::DELETE_ROWS] {
            lens[usize::from(k) - 1] = 10;
        }
        body.extend_from_slice(&lens);
        body.push(u8::from(checksum));
        // The format description always carries a checksum field.
        w.raw_event(kind::FORMAT_DESCRIPTION, &body, true);
        w
    }

    /// A stream of events with no magic, format description or checksums: the
    /// inside of a MySQL 8 transaction payload.
    pub fn payload_body() -> Self {
        BinlogWriter {
            buf: Vec::new(),
            checksum: false,
            base: 0,
            timestamp: 1_700_000_000,
            server_id: 1,
        }
    }

    fn raw_event(&mut self, ev_kind: u8, body: &[u8], checksum: bool) {
        let size = HEADER_LEN + body.len() + if checksum { 4 } else { 0 };
        let start = self.buf.len();
        let end = (self.base + start + size) as u32;
        self.buf.extend_from_slice(&self.timestamp.to_le_bytes());
        self.buf.push(ev_kind);
        self.buf.extend_from_slice(&self.server_id.to_le_bytes());
        self.buf.extend_from_slice(&(size as u32).to_le_bytes());
        self.buf.extend_from_slice(&end.to_le_bytes());
        self.buf.extend_from_slice(&0u16.to_le_bytes());
        self.buf.extend_from_slice(body);
        if checksum {
            let crc = crc32fast::hash(&self.buf[start..]);
            self.buf.extend_from_slice(&crc.to_le_bytes());
        }
    }

    /// Appends an event of any type.
    pub fn event(&mut self, ev_kind: u8, body: &[u8]) {
        self.raw_event(ev_kind, body, self.checksum);
    }

    /// A MariaDB GTID event.
    pub fn mariadb_gtid(&mut self, domain: u32, seq: u64, standalone: bool) {
        let mut b = seq.to_le_bytes().to_vec();
        b.extend_from_slice(&domain.to_le_bytes());
        b.push(if standalone { 0x01 } else { 0x0c });
        b.extend_from_slice(&[0; 6]);
        self.event(kind::MARIADB_GTID, &b);
    }

    /// A MySQL GTID event.
    pub fn mysql_gtid(&mut self, sid: [u8; 16], gno: u64) {
        let mut b = vec![1];
        b.extend_from_slice(&sid);
        b.extend_from_slice(&gno.to_le_bytes());
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        self.event(kind::GTID, &b);
    }

    /// A MySQL 8.4 tagged GTID event.
    pub fn mysql_tagged_gtid(&mut self, sid: [u8; 16], tag: &str, gno: u64) {
        self.event(kind::GTID_TAGGED, &tagged_gtid_body(sid, tag, gno));
    }

    /// A query event.
    pub fn query(&mut self, schema: &str, sql: &str) {
        let mut b = query_header(schema);
        b.extend_from_slice(sql.as_bytes());
        self.event(kind::QUERY, &b);
    }

    /// A table map with full optional metadata (names, signedness, primary key).
    pub fn table_map(
        &mut self,
        table_id: u64,
        schema: &str,
        table: &str,
        columns: &[FixtureColumn],
    ) {
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        for name in [schema, table] {
            b.push(name.len() as u8);
            b.extend_from_slice(name.as_bytes());
            b.push(0);
        }
        lenenc(&mut b, columns.len() as u64);
        b.extend(columns.iter().map(|c| c.ty));
        let meta: Vec<u8> = columns.iter().flat_map(|c| c.meta.clone()).collect();
        lenenc(&mut b, meta.len() as u64);
        b.extend_from_slice(&meta);
        b.extend(std::iter::repeat_n(0xffu8, columns.len().div_ceil(8)));
        let numeric: Vec<bool> = columns
            .iter()
            .filter(|c| matches!(c.ty, 1..=5 | 8 | 9 | 246))
            .map(|c| c.unsigned)
            .collect();
        let mut signedness = vec![0u8; numeric.len().div_ceil(8)];
        for (i, u) in numeric.iter().enumerate() {
            if *u {
                signedness[i / 8] |= 0x80 >> (i % 8);
            }
        }
        b.push(1);
        lenenc(&mut b, signedness.len() as u64);
        b.extend_from_slice(&signedness);
        let mut names = Vec::new();
        for c in columns {
            lenenc(&mut names, c.name.len() as u64);
            names.extend_from_slice(c.name.as_bytes());
        }
        b.push(4);
        lenenc(&mut b, names.len() as u64);
        b.extend_from_slice(&names);
        let mut pk = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            if c.key {
                lenenc(&mut pk, i as u64);
            }
        }
        b.push(8);
        lenenc(&mut b, pk.len() as u64);
        b.extend_from_slice(&pk);
        self.event(kind::TABLE_MAP, &b);
    }

    /// A v2 rows event; each row image is the null bitmap followed by values,
    /// with every column present (updates pass before and after images in turn).
    pub fn rows(&mut self, ev_kind: u8, table_id: u64, column_count: usize, images: &[Vec<u8>]) {
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        lenenc(&mut b, column_count as u64);
        let bitmap = vec![0xffu8; column_count.div_ceil(8)];
        b.extend_from_slice(&bitmap);
        if matches!(ev_kind, kind::UPDATE_ROWS | kind::PARTIAL_UPDATE_ROWS) {
            b.extend_from_slice(&bitmap);
        }
        for image in images {
            b.extend_from_slice(image);
        }
        self.event(ev_kind, &b);
    }

    /// A MariaDB compressed rows event (`ev_kind` 166..=171): like
    /// [`rows`](Self::rows), the row images zlib-compressed.
    pub fn compressed_rows(
        &mut self,
        ev_kind: u8,
        table_id: u64,
        column_count: usize,
        images: &[Vec<u8>],
    ) {
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        if ev_kind >= kind::MARIADB_WRITE_ROWS_COMPRESSED {
            b.extend_from_slice(&2u16.to_le_bytes());
        }
        lenenc(&mut b, column_count as u64);
        let bitmap = vec![0xffu8; column_count.div_ceil(8)];
        b.extend_from_slice(&bitmap);
        if matches!(
            ev_kind,
            kind::MARIADB_UPDATE_ROWS_COMPRESSED_V1 | kind::MARIADB_UPDATE_ROWS_COMPRESSED
        ) {
            b.extend_from_slice(&bitmap);
        }
        b.extend(crate::mariadb::compressed::deflate(&images.concat()));
        self.event(ev_kind, &b);
    }

    /// A MariaDB compressed query event.
    pub fn compressed_query(&mut self, schema: &str, sql: &str) {
        let mut b = query_header(schema);
        b.extend(crate::mariadb::compressed::deflate(sql.as_bytes()));
        self.event(kind::MARIADB_QUERY_COMPRESSED, &b);
    }

    /// An XID (commit) event.
    pub fn xid(&mut self, xid: u64) {
        self.event(kind::XID, &xid.to_le_bytes());
    }

    /// A MySQL 8 transaction payload event holding `inner` events, zstd-compressed.
    pub fn transaction_payload(&mut self, inner: &[u8]) {
        let compressed = zstd::bulk::compress(inner, 3).unwrap_or_default();
        let mut b = Vec::new();
        for (field, value) in [
            (2u64, 0u64),
            (3, inner.len() as u64),
            (1, compressed.len() as u64),
        ] {
            lenenc(&mut b, field);
            let mut v = Vec::new();
            lenenc(&mut v, value);
            lenenc(&mut b, v.len() as u64);
            b.extend_from_slice(&v);
        }
        lenenc(&mut b, 0);
        b.extend_from_slice(&compressed);
        self.event(kind::TRANSACTION_PAYLOAD, &b);
    }

    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
