//! TABLE_MAP events with the optional metadata of `binlog_row_metadata=FULL`:
//! column names, signedness, charsets, enum/set labels, primary key.

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};
use crate::binlog::event::{FormatDescription, kind};

/// Binlog column type codes.
#[allow(missing_docs)]
pub mod col {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// One column as the table map describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapColumn {
    /// Real column type (ENUM/SET resolved from a STRING's metadata).
    pub ty: u8,
    /// Type metadata (0, 1 or 2 bytes, little-endian as a number).
    pub meta: u16,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Name, if the metadata carried it.
    pub name: Option<String>,
    /// Unsigned (numeric columns).
    pub unsigned: bool,
    /// Collation id (character, enum and set columns).
    pub collation: Option<u16>,
    /// Labels of ENUM or SET columns.
    pub labels: Vec<String>,
}

/// A decoded TABLE_MAP event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableMap {
    /// The id rows events refer to.
    pub table_id: u64,
    /// Database name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<MapColumn>,
    /// Primary-key column indexes, in key order.
    pub primary_key: Vec<u32>,
    /// Whether column names were present (`binlog_row_metadata=FULL`).
    pub has_names: bool,
}

fn is_numeric(ty: u8) -> bool {
    matches!(
        ty,
        col::TINY
            | col::SHORT
            | col::INT24
            | col::LONG
            | col::LONGLONG
            | col::DECIMAL
            | col::NEWDECIMAL
            | col::FLOAT
            | col::DOUBLE
    )
}

fn is_character(ty: u8) -> bool {
    matches!(
        ty,
        col::STRING
            | col::VAR_STRING
            | col::VARCHAR
            | col::BLOB
            | col::TINY_BLOB
            | col::MEDIUM_BLOB
            | col::LONG_BLOB
    )
}

fn metadata_len(ty: u8) -> usize {
    match ty {
        col::TINY_BLOB
        | col::BLOB
        | col::MEDIUM_BLOB
        | col::LONG_BLOB
        | col::DOUBLE
        | col::FLOAT
        | col::GEOMETRY
        | col::TIME2
        | col::DATETIME2
        | col::TIMESTAMP2
        | col::JSON => 1,
        col::VARCHAR | col::NEWDECIMAL | col::SET | col::ENUM | col::STRING | col::BIT => 2,
        _ => 0,
    }
}

fn utf8(bytes: &[u8], what: &str) -> Decoded<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::new(format!("{what} is not UTF-8")))
}

impl TableMap {
    /// Parses a TABLE_MAP event body.
    pub fn parse(data: &[u8], fde: &FormatDescription) -> Decoded<Self> {
        let mut c = Cursor::new(data);
        let table_id = c.uint_le(fde.table_id_len(kind::TABLE_MAP))?;
        let _flags = c.u16()?;
        let schema_len = usize::from(c.u8()?);
        let schema = utf8(c.take(schema_len)?, "database name")?;
        c.take(1)?;
        let table_len = usize::from(c.u8()?);
        let table = utf8(c.take(table_len)?, "table name")?;
        c.take(1)?;
        let count = c.lenenc_len()?;
        let types = c.take(count)?;
        let meta_block = c.lenenc_bytes()?;
        let nulls = c.take(count.div_ceil(8))?;

        let mut meta = Cursor::new(meta_block);
        let mut columns = Vec::with_capacity(count);
        for (i, &raw_ty) in types.iter().enumerate() {
            let m = meta.take(metadata_len(raw_ty))?;
            let mut value = match m {
                [a] => u16::from(*a),
                // STRING/ENUM/SET keep (real type, length) byte order; others are LE.
                [a, b] if matches!(raw_ty, col::STRING | col::ENUM | col::SET) => {
                    (u16::from(*a) << 8) | u16::from(*b)
                }
                [a, b] => u16::from_le_bytes([*a, *b]),
                _ => 0,
            };
            let mut ty = raw_ty;
            if raw_ty == col::STRING {
                let real = (value >> 8) as u8;
                if real == col::ENUM || real == col::SET {
                    ty = real;
                    value &= 0xff;
                }
            }
            columns.push(MapColumn {
                ty,
                meta: value,
                nullable: crate::binlog::event::bit(nulls, i),
                name: None,
                unsigned: false,
                collation: None,
                labels: Vec::new(),
            });
        }
        let mut map = TableMap {
            table_id,
            schema,
            table,
            columns,
            primary_key: Vec::new(),
            has_names: false,
        };
        map.read_optional(c.rest())?;
        Ok(map)
    }

    /// Reads the optional metadata fields (type, length, value) and applies them.
    fn read_optional(&mut self, bytes: &[u8]) -> Decoded<()> {
        let mut c = Cursor::new(bytes);
        while !c.is_empty() {
            let field = c.u8()?;
            let value = c.lenenc_bytes()?;
            let mut v = Cursor::new(value);
            match field {
                1 => self.apply_signedness(value),
                2 => {
                    let default = v.lenenc()?;
                    let mut overrides = Vec::new();
                    while !v.is_empty() {
                        overrides.push((v.lenenc()?, v.lenenc()?));
                    }
                    self.apply_default_charset(default, &overrides, is_character);
                }
                3 => self.apply_column_charsets(&mut v, is_character)?,
                4 => {
                    for column in &mut self.columns {
                        column.name = Some(utf8(v.lenenc_bytes()?, "column name")?);
                    }
                    self.has_names = true;
                }
                5 => self.apply_labels(&mut v, col::SET)?,
                6 => self.apply_labels(&mut v, col::ENUM)?,
                8 => {
                    while !v.is_empty() {
                        self.primary_key.push(self.column_index(v.lenenc()?)?);
                    }
                }
                9 => {
                    while !v.is_empty() {
                        self.primary_key.push(self.column_index(v.lenenc()?)?);
                        let _prefix = v.lenenc()?;
                    }
                }
                10 => {
                    let default = v.lenenc()?;
                    let mut overrides = Vec::new();
                    while !v.is_empty() {
                        overrides.push((v.lenenc()?, v.lenenc()?));
                    }
                    self.apply_default_charset(default, &overrides, is_enum_or_set);
                }
                11 => self.apply_column_charsets(&mut v, is_enum_or_set)?,
                // Geometry type, visibility, vector dimensions: not needed.
                _ => {}
            }
        }
        Ok(())
    }

    fn column_index(&self, i: u64) -> Decoded<u32> {
        u32::try_from(i)
            .ok()
            .filter(|&i| (i as usize) < self.columns.len())
            .ok_or_else(|| DecodeError::new(format!("primary key column {i} out of range")))
    }

    fn apply_signedness(&mut self, bitmap: &[u8]) {
        for (n, column) in self
            .columns
            .iter_mut()
            .filter(|c| is_numeric(c.ty))
            .enumerate()
        {
            // Most significant bit first.
            column.unsigned = bitmap
                .get(n / 8)
                .is_some_and(|b| b & (0x80 >> (n % 8)) != 0);
        }
    }

    fn apply_default_charset(
        &mut self,
        default: u64,
        overrides: &[(u64, u64)],
        pick: fn(u8) -> bool,
    ) {
        for (n, column) in self.columns.iter_mut().filter(|c| pick(c.ty)).enumerate() {
            let id = overrides
                .iter()
                .find(|(i, _)| *i == n as u64)
                .map_or(default, |(_, id)| *id);
            column.collation = u16::try_from(id).ok();
        }
    }

    fn apply_column_charsets(&mut self, v: &mut Cursor<'_>, pick: fn(u8) -> bool) -> Decoded<()> {
        for column in self.columns.iter_mut().filter(|c| pick(c.ty)) {
            column.collation = u16::try_from(v.lenenc()?).ok();
        }
        Ok(())
    }

    fn apply_labels(&mut self, v: &mut Cursor<'_>, ty: u8) -> Decoded<()> {
        for column in self.columns.iter_mut().filter(|c| c.ty == ty) {
            let count = v.lenenc_len()?;
            let mut labels = Vec::with_capacity(count);
            for _ in 0..count {
                labels.push(String::from_utf8_lossy(v.lenenc_bytes()?).into_owned());
            }
            column.labels = labels;
        }
        Ok(())
    }
}

fn is_enum_or_set(ty: u8) -> bool {
    matches!(ty, col::ENUM | col::SET)
}
