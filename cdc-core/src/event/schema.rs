use std::fmt;

use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

use super::SharedStr;

/// A qualified table name: PostgreSQL schema, MySQL database or MongoDB database,
/// then the table (collection) name. Both parts are kept exactly as the source
/// spells them; quote them whenever they go into SQL.
#[derive(
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
)]
#[rkyv(derive(Debug))]
pub struct TableName {
    /// Namespace: PostgreSQL schema, MySQL/MariaDB database, MongoDB database.
    pub schema: SharedStr,
    /// Table or collection name.
    pub name: SharedStr,
}

impl TableName {
    /// Builds a table name from its two parts.
    pub fn new(schema: impl Into<SharedStr>, name: impl Into<SharedStr>) -> Self {
        Self {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableName {
    /// Prints `schema.name` for messages; not for SQL (use the sink's quoting).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

impl ArchivedTableName {
    /// Whether this archived name equals `name`, without deserializing.
    pub fn matches(&self, name: &TableName) -> bool {
        self.schema.as_str() == name.schema.as_str() && self.name.as_str() == name.name.as_str()
    }
}

/// The logical type of a column, independent of the source. The source's own
/// type name is kept beside it in [`Column::source_type`].
///
/// Which [`Value`](super::Value) variant each type carries:
///
/// | `DataType`      | value                      |
/// |-----------------|----------------------------|
/// | `Bool`          | `Bool`                     |
/// | `Int`           | `Int` (signed) / `UInt` (unsigned) |
/// | `Float32/64`    | `Float` / `Double`         |
/// | `Decimal`       | `Decimal`                  |
/// | `Text`          | `Text`                     |
/// | `Bytes`, `Geometry` | `Bytes` (geometry as WKB) |
/// | `Bit`           | `UInt` (up to 64 bits) or `Bytes` (longer) |
/// | `Date`, `Time`, `TimeTz`, `Timestamp`, `TimestampTz`, `Interval` | same-named variants |
/// | `Uuid`          | `Uuid`                     |
/// | `Json`          | `Json`                     |
/// | `Enum`          | `Enum`                     |
/// | `Set`           | `Set`                      |
/// | `Array`         | `Array`                    |
/// | `Other`         | `Text` (the source's text form) |
#[derive(
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
#[rkyv(derive(Debug))]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(
    __C: rkyv::validation::ArchiveContext,
    __C::Error: rkyv::rancor::Source,
)))]
pub enum DataType {
    /// Boolean.
    Bool,
    /// Integer of `bits` width (8, 16, 24, 32 or 64).
    Int {
        /// Storage width in bits.
        bits: u8,
        /// Whether negative values are allowed.
        signed: bool,
    },
    /// Single-precision float.
    Float32,
    /// Double-precision float.
    Float64,
    /// Exact decimal; `None` precision means unbounded (PostgreSQL `numeric`).
    Decimal {
        /// Total significant digits.
        precision: Option<u32>,
        /// Digits after the point.
        scale: Option<u32>,
    },
    /// Character data.
    Text {
        /// Maximum length in characters, if the source bounds it.
        max_chars: Option<u32>,
        /// Whether the source pads to a fixed length (`CHAR(n)`).
        fixed: bool,
    },
    /// Binary data.
    Bytes {
        /// Maximum length in bytes, if the source bounds it.
        max_len: Option<u32>,
        /// Whether the source pads to a fixed length (`BINARY(n)`).
        fixed: bool,
    },
    /// Bit string of `len` bits.
    Bit {
        /// Number of bits.
        len: u32,
    },
    /// Calendar date.
    Date,
    /// Time of day (or MySQL duration).
    Time,
    /// Time of day with zone offset.
    TimeTz,
    /// Timestamp without zone.
    Timestamp,
    /// Timestamp with zone (an instant).
    TimestampTz,
    /// Calendar interval.
    Interval,
    /// UUID.
    Uuid,
    /// JSON document.
    Json,
    /// Enumeration with its labels in definition order.
    Enum {
        /// Labels in definition order.
        labels: Vec<String>,
    },
    /// Set with its labels in definition order.
    Set {
        /// Labels in definition order.
        labels: Vec<String>,
    },
    /// Geometry (WKB bytes).
    Geometry,
    /// Array of an element type.
    Array(#[rkyv(omit_bounds)] Box<DataType>),
    /// A type this model has no variant for; values are the source's text form
    /// and [`Column::source_type`] names the type.
    Other,
}

/// One column of a table schema.
#[derive(
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
#[rkyv(derive(Debug))]
pub struct Column {
    /// Column name exactly as the source spells it.
    pub name: String,
    /// Logical type.
    pub data_type: DataType,
    /// The source's own type name with modifiers, e.g. `varchar(50)`, `int4`,
    /// `decimal(10,2) unsigned`, `mood` (a PostgreSQL enum).
    pub source_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

/// A table's schema as of the log offset where its `Record::Schema` is stored.
#[derive(
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
#[rkyv(derive(Debug))]
pub struct TableSchema {
    /// The table.
    pub table: TableName,
    /// Columns in row order: value `i` of every row is column `i`.
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key (or replica identity) columns,
    /// in key order. Empty when the table has no key.
    pub primary_key: Vec<u32>,
}

impl TableSchema {
    /// The position of the column called `name`, if any.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The primary-key columns in key order.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.primary_key
            .iter()
            .filter_map(|&i| self.columns.get(i as usize))
    }
}
