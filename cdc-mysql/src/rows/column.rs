//! One column's binlog type: its logical type for the schema record and the
//! decoder of its values in row images.

use std::net::Ipv6Addr;
use std::sync::Arc;

use cdc_core::event::{Column, DataType, Decimal, SharedStr, Value};

use super::charset::Charset;
use super::table_map::{MapColumn, col};
use super::{decimal, json, temporal};
use crate::binlog::cursor::{Cursor, DecodeError, Decoded};

/// A type the binlog cannot tell apart from a plain binary or text column, learnt
/// from the server's catalog (MariaDB `UUID`, `INET6`, `INET4`, `JSON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeHint {
    /// MariaDB `UUID` (stored as `BINARY(16)`).
    Uuid,
    /// MariaDB `INET6` (stored as `BINARY(16)`).
    Inet6,
    /// MariaDB `INET4` (stored as `BINARY(4)`).
    Inet4,
    /// MariaDB `JSON` (stored as `LONGTEXT`).
    Json,
}

/// How to decode one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnCodec {
    ty: u8,
    meta: u16,
    unsigned: bool,
    charset: Charset,
    labels: Arc<[SharedStr]>,
    hint: Option<TypeHint>,
}

fn mb_max_len(charset_name: &str) -> u32 {
    match charset_name {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" => 4,
        "utf8mb3" => 3,
        "ucs2" => 2,
        _ => 1,
    }
}

/// Builds the schema column and the codec of table-map column `i`.
pub fn build(i: usize, m: &MapColumn, hint: Option<TypeHint>) -> Decoded<(Column, ColumnCodec)> {
    let (charset, cs_name) = m
        .collation
        .map_or((Charset::Utf8, "utf8mb4"), Charset::of_collation);
    let unsigned_suffix = if m.unsigned { " unsigned" } else { "" };
    let int = |bits: u8, name: &str| {
        (
            DataType::Int {
                bits,
                signed: !m.unsigned,
            },
            format!("{name}{unsigned_suffix}"),
        )
    };
    let fsp = |name: &str| {
        if m.meta == 0 {
            name.to_owned()
        } else {
            format!("{name}({})", m.meta)
        }
    };
    let binary = charset == Charset::Binary;
    let string_len = || -> u32 {
        if m.ty == col::STRING {
            let (b0, b1) = ((m.meta >> 8) as u32, (m.meta & 0xff) as u32);
            if b0 & 0x30 != 0x30 {
                b1 | (((b0 & 0x30) ^ 0x30) << 4)
            } else {
                b1
            }
        } else {
            u32::from(m.meta)
        }
    };
    let mut hint = hint;
    let (data_type, source_type) = match m.ty {
        col::TINY => int(8, "tinyint"),
        col::SHORT => int(16, "smallint"),
        col::INT24 => int(24, "mediumint"),
        col::LONG => int(32, "int"),
        col::LONGLONG => int(64, "bigint"),
        col::FLOAT => (DataType::Float32, "float".to_owned()),
        col::DOUBLE => (DataType::Float64, "double".to_owned()),
        col::NEWDECIMAL => {
            let (p, s) = ((m.meta & 0xff) as u8, (m.meta >> 8) as u8);
            decimal::binary_len(p, s)?;
            (
                DataType::Decimal {
                    precision: Some(p.into()),
                    scale: Some(s.into()),
                },
                format!("decimal({p},{s}){unsigned_suffix}"),
            )
        }
        col::BIT => {
            let len = u32::from(m.meta >> 8) * 8 + u32::from(m.meta & 0xff);
            (DataType::Bit { len }, format!("bit({len})"))
        }
        col::YEAR => (
            DataType::Int {
                bits: 16,
                signed: false,
            },
            "year".to_owned(),
        ),
        col::DATE | col::NEWDATE => (DataType::Date, "date".to_owned()),
        col::TIME | col::TIME2 => (DataType::Time, fsp("time")),
        col::DATETIME | col::DATETIME2 => (DataType::Timestamp, fsp("datetime")),
        col::TIMESTAMP | col::TIMESTAMP2 => (DataType::TimestampTz, fsp("timestamp")),
        col::VARCHAR | col::VAR_STRING if binary => (
            DataType::Bytes {
                max_len: Some(m.meta.into()),
                fixed: false,
            },
            format!("varbinary({})", m.meta),
        ),
        col::VARCHAR | col::VAR_STRING => {
            let chars = u32::from(m.meta) / mb_max_len(cs_name);
            (
                DataType::Text {
                    max_chars: Some(chars),
                    fixed: false,
                },
                format!("varchar({chars}) character set {cs_name}"),
            )
        }
        col::STRING => {
            let len = string_len();
            match hint {
                Some(TypeHint::Uuid) if len == 16 && binary => (DataType::Uuid, "uuid".to_owned()),
                Some(TypeHint::Inet6) if len == 16 && binary => {
                    (DataType::Other, "inet6".to_owned())
                }
                Some(TypeHint::Inet4) if len == 4 && binary => {
                    (DataType::Other, "inet4".to_owned())
                }
                _ if binary => {
                    hint = None;
                    (
                        DataType::Bytes {
                            max_len: Some(len),
                            fixed: true,
                        },
                        format!("binary({len})"),
                    )
                }
                _ => {
                    hint = None;
                    let chars = len / mb_max_len(cs_name);
                    (
                        DataType::Text {
                            max_chars: Some(chars),
                            fixed: true,
                        },
                        format!("char({chars}) character set {cs_name}"),
                    )
                }
            }
        }
        col::BLOB | col::TINY_BLOB | col::MEDIUM_BLOB | col::LONG_BLOB => {
            let (size, max) = match m.meta {
                1 => ("tiny", 255u32),
                2 => ("", 65_535),
                3 => ("medium", 16_777_215),
                4 => ("long", u32::MAX),
                other => {
                    return Err(DecodeError::new(format!("blob length width {other}")));
                }
            };
            if hint == Some(TypeHint::Json) && !binary {
                (DataType::Json, "json".to_owned())
            } else if binary {
                hint = None;
                (
                    DataType::Bytes {
                        max_len: Some(max),
                        fixed: false,
                    },
                    format!("{size}blob"),
                )
            } else {
                hint = None;
                (
                    DataType::Text {
                        max_chars: Some(max / mb_max_len(cs_name)),
                        fixed: false,
                    },
                    format!("{size}text character set {cs_name}"),
                )
            }
        }
        col::JSON => (DataType::Json, "json".to_owned()),
        col::GEOMETRY => (DataType::Geometry, "geometry".to_owned()),
        col::ENUM => (
            DataType::Enum {
                labels: m.labels.clone(),
            },
            "enum".to_owned(),
        ),
        col::SET => (
            DataType::Set {
                labels: m.labels.clone(),
            },
            "set".to_owned(),
        ),
        col::NULL => (DataType::Other, "null".to_owned()),
        other => return Err(DecodeError::new(format!("unsupported column type {other}"))),
    };
    if !matches!(
        m.ty,
        col::STRING | col::BLOB | col::TINY_BLOB | col::MEDIUM_BLOB | col::LONG_BLOB
    ) {
        hint = None;
    }
    let column = Column {
        name: m.name.clone().unwrap_or_else(|| format!("@{}", i + 1)),
        data_type,
        source_type,
        nullable: m.nullable,
    };
    let codec = ColumnCodec {
        ty: m.ty,
        meta: m.meta,
        unsigned: m.unsigned,
        charset,
        labels: m.labels.iter().map(SharedStr::from).collect(),
        hint,
    };
    Ok((column, codec))
}

impl ColumnCodec {
    /// Whether this is a MySQL `JSON` column (binary JSON in row images).
    pub fn is_json(&self) -> bool {
        self.ty == col::JSON
    }

    /// The length-prefixed bytes of a MySQL `JSON` value: binary JSON, or the
    /// diffs of a partial update.
    pub fn json_bytes<'a>(&self, c: &mut Cursor<'a>) -> Decoded<&'a [u8]> {
        let n = c.uint_le(usize::from(self.meta).clamp(1, 4))?;
        c.take(usize::try_from(n).map_err(|_| DecodeError::new("json value too long"))?)
    }

    /// Decodes one non-NULL value of this column from a row image onto the
    /// end of `row`. The value is built in place: returned inside a `Result`,
    /// each value was copied through the stack in overlapping pieces, which
    /// stalled store forwarding (a third of the row decoder's own time;
    /// criterion `binlog_decode`, 100 rows an event: 3.65M to 4.06M rows/s).
    #[inline(always)]
    pub fn decode_into(&self, c: &mut Cursor<'_>, row: &mut Vec<Value>) -> Decoded<()> {
        let int = |v: u64, bits: u32| -> Value {
            if self.unsigned {
                Value::UInt(v)
            } else {
                // Sign-extend from `bits`.
                let shift = 64 - bits;
                Value::Int(((v << shift) as i64) >> shift)
            }
        };
        let value = match self.ty {
            col::TINY => int(c.uint_le(1)?, 8),
            col::SHORT => int(c.uint_le(2)?, 16),
            col::INT24 => int(c.uint_le(3)?, 24),
            col::LONG => int(c.uint_le(4)?, 32),
            col::LONGLONG => int(c.u64()?, 64),
            col::FLOAT => Value::Float(f32::from_bits(c.u32()?)),
            col::DOUBLE => Value::Double(f64::from_bits(c.u64()?)),
            col::NEWDECIMAL => {
                let mut buf = [0u8; decimal::MAX_TEXT];
                let text = decimal::read_into(
                    c,
                    (self.meta & 0xff) as u8,
                    (self.meta >> 8) as u8,
                    &mut buf,
                )?;
                Value::Decimal(Decimal::parse(text).map_err(|_| DecodeError::new("bad decimal"))?)
            }
            col::BIT => {
                let len = usize::from(self.meta >> 8) * 8 + usize::from(self.meta & 0xff);
                let bytes = c.take(len.div_ceil(8))?;
                if len <= 64 {
                    Value::UInt(bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
                } else {
                    Value::Bytes(bytes.to_vec())
                }
            }
            col::YEAR => match c.u8()? {
                0 => Value::UInt(0),
                y => Value::UInt(1900 + u64::from(y)),
            },
            col::DATE | col::NEWDATE => temporal::read_date(c)?.map_or(Value::Null, Value::Date),
            col::TIME2 => Value::Time(temporal::read_time2(c, self.meta as u8)?),
            col::TIME => Value::Time(temporal::read_time(c)?),
            col::DATETIME2 => {
                temporal::read_datetime2(c, self.meta as u8)?.map_or(Value::Null, Value::Timestamp)
            }
            col::DATETIME => temporal::read_datetime(c)?.map_or(Value::Null, Value::Timestamp),
            col::TIMESTAMP2 => temporal::read_timestamp2(c, self.meta as u8)?
                .map_or(Value::Null, Value::TimestampTz),
            col::TIMESTAMP => match c.u32()? {
                0 => Value::Null,
                s => Value::TimestampTz(i64::from(s) * 1_000_000),
            },
            col::VARCHAR | col::VAR_STRING => {
                let n = if self.meta < 256 {
                    c.uint_le(1)?
                } else {
                    c.uint_le(2)?
                };
                self.text_or_bytes(c.take(n as usize)?)
            }
            col::STRING => {
                let (b0, b1) = ((self.meta >> 8) as usize, (self.meta & 0xff) as usize);
                let max = if b0 & 0x30 != 0x30 {
                    b1 | (((b0 & 0x30) ^ 0x30) << 4)
                } else {
                    b1
                };
                let n = if max < 256 {
                    c.uint_le(1)?
                } else {
                    c.uint_le(2)?
                };
                let bytes = c.take(n as usize)?;
                match self.hint {
                    Some(TypeHint::Uuid) => Value::Uuid(mariadb_uuid(bytes)?),
                    Some(TypeHint::Inet6) => {
                        let a: [u8; 16] = pad::<16>(bytes)?;
                        Value::Text(Ipv6Addr::from(a).to_string().into())
                    }
                    Some(TypeHint::Inet4) => {
                        let a: [u8; 4] = pad::<4>(bytes)?;
                        Value::Text(std::net::Ipv4Addr::from(a).to_string().into())
                    }
                    _ => self.text_or_bytes(bytes),
                }
            }
            col::BLOB | col::TINY_BLOB | col::MEDIUM_BLOB | col::LONG_BLOB => {
                let n = c.uint_le(usize::from(self.meta).clamp(1, 4))?;
                let bytes =
                    c.take(usize::try_from(n).map_err(|_| DecodeError::new("blob too long"))?)?;
                match self.hint {
                    Some(TypeHint::Json) => match self.text_or_bytes(bytes) {
                        Value::Text(t) => Value::Json(t),
                        other => other,
                    },
                    _ => self.text_or_bytes(bytes),
                }
            }
            col::JSON => Value::Json(json::to_text(self.json_bytes(c)?)?.into()),
            col::GEOMETRY => {
                let n = c.uint_le(usize::from(self.meta).clamp(1, 4))? as usize;
                let bytes = c.take(n)?;
                // MySQL stores a 4-byte SRID before the WKB.
                Value::Bytes(
                    bytes
                        .get(4..)
                        .ok_or_else(|| DecodeError::new("geometry too short"))?
                        .to_vec(),
                )
            }
            col::ENUM => {
                let i = c.uint_le(usize::from(self.meta).clamp(1, 2))? as usize;
                Value::Enum(match i {
                    0 => SharedStr::default(),
                    i => self
                        .labels
                        .get(i - 1)
                        .cloned()
                        .unwrap_or_else(|| i.to_string().into()),
                })
            }
            col::SET => {
                let n = usize::from(self.meta).clamp(1, 8);
                let bits = c.uint_le(n)?;
                Value::Set(
                    self.labels
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
                        .map(|(_, l)| l.clone())
                        .collect(),
                )
            }
            col::NULL => Value::Null,
            other => return Err(DecodeError::new(format!("unsupported column type {other}"))),
        };
        row.push(value);
        Ok(())
    }

    fn text_or_bytes(&self, bytes: &[u8]) -> Value {
        match self.charset {
            Charset::Binary => Value::Bytes(bytes.to_vec()),
            cs => match cs.decode(bytes) {
                Some(text) => Value::Text(text),
                // Invalid bytes for the charset: keep the text readable rather than
                // stall the stream; never expected with strict SQL modes.
                None => Value::Text(String::from_utf8_lossy(bytes).as_ref().into()),
            },
        }
    }
}

fn pad<const N: usize>(bytes: &[u8]) -> Decoded<[u8; N]> {
    if bytes.len() > N {
        return Err(DecodeError::new("fixed binary value too long"));
    }
    let mut out = [0u8; N];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// MariaDB stores a UUID with its groups swapped for index locality when it is
/// a time-based (version 1..=5, variant 1) value; other values verbatim.
fn mariadb_uuid(bytes: &[u8]) -> Decoded<[u8; 16]> {
    let r = pad::<16>(bytes)?;
    // Record layout for swapped values: node(6) clock(2) time_hi(2) time_mid(2) time_low(4).
    let version = r[8] >> 4;
    let variant_ok = r[6] & 0xc0 == 0x80;
    if (1..=5).contains(&version) && variant_ok {
        let mut u = [0u8; 16];
        u[0..4].copy_from_slice(&r[12..16]);
        u[4..6].copy_from_slice(&r[10..12]);
        u[6..8].copy_from_slice(&r[8..10]);
        u[8..10].copy_from_slice(&r[6..8]);
        u[10..16].copy_from_slice(&r[0..6]);
        Ok(u)
    } else {
        Ok(r)
    }
}
