use rkyv::with::AsBox;
use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

use super::{Decimal, SharedStr};

/// One column value, with the source's fidelity.
///
/// Temporal values are integers so nothing is rounded on the way:
///
/// | variant        | unit and origin                                                  |
/// |----------------|------------------------------------------------------------------|
/// | `Date`         | days since 1970-01-01 (proleptic Gregorian), may be negative     |
/// | `Time`         | microseconds since midnight; MySQL `TIME` may be negative or over 24 h |
/// | `TimeTz`       | microseconds since local midnight plus the zone's offset east of UTC |
/// | `Timestamp`    | microseconds since 1970-01-01 00:00:00, wall clock, no zone      |
/// | `TimestampTz`  | microseconds since 1970-01-01 00:00:00 UTC                       |
///
/// PostgreSQL's `infinity` and `-infinity` timestamps and dates are the type's
/// maximum and minimum (see [`Value::INFINITY_MICROS`], [`Value::INFINITY_DAYS`]).
///
/// In the log, a value takes 16 bytes plus its text or bytes: the three
/// variants with 16 bytes of their own (`TimeTz`, `Interval`, `Uuid`) keep their
/// widest part out of line, since they are rare and every other value fits in 8.
///
/// `Unchanged` is a value the source did not send because it did not change
/// (a PostgreSQL TOAST value in an update). It is never the same as `Null`: a
/// sink keeps the stored value.
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Debug, Clone, PartialEq,
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
pub enum Value {
    /// SQL NULL.
    Null,
    /// The source did not send this value because it did not change; keep the stored one.
    Unchanged,
    /// A boolean.
    Bool(bool),
    /// A signed integer of any width up to 64 bits.
    Int(i64),
    /// An unsigned integer of any width up to 64 bits (MySQL `BIGINT UNSIGNED`, `BIT`).
    UInt(u64),
    /// A single-precision float.
    Float(f32),
    /// A double-precision float.
    Double(f64),
    /// An exact decimal.
    Decimal(Decimal),
    /// Text, already decoded from the column's character set to UTF-8.
    Text(SharedStr),
    /// Raw bytes (binary strings, blobs, `bytea`, geometry as WKB).
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight; may be negative or exceed 24 h (MySQL `TIME`).
    Time(i64),
    /// A time of day with a zone offset.
    TimeTz {
        /// Microseconds since local midnight.
        #[rkyv(with = AsBox)]
        micros: i64,
        /// Offset east of UTC, in seconds.
        offset_secs: i32,
    },
    /// Microseconds since 1970-01-01 00:00:00, no zone.
    Timestamp(i64),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// A calendar interval; the three parts are kept apart as PostgreSQL does.
    Interval {
        /// Whole months.
        months: i32,
        /// Whole days.
        days: i32,
        /// Microseconds.
        #[rkyv(with = AsBox)]
        micros: i64,
    },
    /// A UUID in network byte order.
    Uuid(#[rkyv(with = AsBox)] [u8; 16]),
    /// JSON document as text.
    Json(SharedStr),
    /// One enum label.
    Enum(SharedStr),
    /// The labels of a set value, in definition order.
    Set(Vec<SharedStr>),
    /// An array; elements may be `Null`. Multi-dimensional arrays nest.
    Array(#[rkyv(omit_bounds)] Vec<Value>),
}

impl Value {
    /// Microseconds value standing for PostgreSQL `infinity` timestamps (`-infinity` is `i64::MIN`).
    pub const INFINITY_MICROS: i64 = i64::MAX;
    /// Days value standing for PostgreSQL `infinity` dates (`-infinity` is `i32::MIN`).
    pub const INFINITY_DAYS: i32 = i32::MAX;

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A UUID's canonical text: lowercase hex, hyphenated 8-4-4-4-12.
pub fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut text = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{b:02x}"));
    }
    text
}

impl ArchivedValue {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, ArchivedValue::Null)
    }

    /// Whether the source left this value out because it did not change.
    pub fn is_unchanged(&self) -> bool {
        matches!(self, ArchivedValue::Unchanged)
    }
}
