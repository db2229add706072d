//! The stored form of a [`ChunkKey`], so a backfill resumes after a crash.

use mysql_async::Value;
use serde::{Deserialize, Serialize};

use super::ChunkKey;

/// One key column's value as the server sent it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum KeyPart {
    Null,
    Bytes(Vec<u8>),
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Year, month, day, hour, minute, second, microsecond.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// Negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

impl From<ChunkKey> for Vec<KeyPart> {
    fn from(key: ChunkKey) -> Self {
        key.0
            .into_iter()
            .map(|v| match v {
                Value::NULL => KeyPart::Null,
                Value::Bytes(b) => KeyPart::Bytes(b),
                Value::Int(i) => KeyPart::Int(i),
                Value::UInt(u) => KeyPart::UInt(u),
                Value::Float(f) => KeyPart::Float(f),
                Value::Double(d) => KeyPart::Double(d),
                Value::Date(y, mo, d, h, mi, s, us) => KeyPart::Date(y, mo, d, h, mi, s, us),
                Value::Time(neg, d, h, mi, s, us) => KeyPart::Time(neg, d, h, mi, s, us),
            })
            .collect()
    }
}

impl From<Vec<KeyPart>> for ChunkKey {
    fn from(parts: Vec<KeyPart>) -> Self {
        ChunkKey(
            parts
                .into_iter()
                .map(|p| match p {
                    KeyPart::Null => Value::NULL,
                    KeyPart::Bytes(b) => Value::Bytes(b),
                    KeyPart::Int(i) => Value::Int(i),
                    KeyPart::UInt(u) => Value::UInt(u),
                    KeyPart::Float(f) => Value::Float(f),
                    KeyPart::Double(d) => Value::Double(d),
                    KeyPart::Date(y, mo, d, h, mi, s, us) => Value::Date(y, mo, d, h, mi, s, us),
                    KeyPart::Time(neg, d, h, mi, s, us) => Value::Time(neg, d, h, mi, s, us),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_value_kind_survive_json() {
        let key = ChunkKey(vec![
            Value::NULL,
            Value::Bytes(b"k\xff\x00".to_vec()),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(0.1),
            Value::Double(-1e300),
            Value::Date(2024, 2, 29, 23, 59, 58, 999_999),
            Value::Time(true, 40, 1, 2, 3, 4),
        ]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<ChunkKey>(&json).unwrap(), key);
    }
}
