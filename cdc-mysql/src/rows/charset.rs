//! Character sets of text columns: bytes from the row image to UTF-8 text.

use cdc_core::event::SharedStr;
use mysql_common::collations::{Collation, CollationId};

/// How a column's bytes become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// UTF-8 (utf8mb4, utf8mb3, ascii).
    Utf8,
    /// MySQL `latin1`, which is Windows-1252.
    Latin1,
    /// UCS-2 / UTF-16, big-endian.
    Utf16Be,
    /// UTF-16, little-endian.
    Utf16Le,
    /// UTF-32, big-endian.
    Utf32,
    /// Binary or a character set this crate does not decode: kept as bytes.
    Binary,
}

impl Charset {
    /// The character set of a collation id, and its name for the source type.
    pub fn of_collation(id: u16) -> (Charset, &'static str) {
        let collation = Collation::resolve(CollationId::from(id));
        let name = collation.charset();
        let charset = match name {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => Charset::Utf8,
            "latin1" => Charset::Latin1,
            "ucs2" | "utf16" => Charset::Utf16Be,
            "utf16le" => Charset::Utf16Le,
            "utf32" => Charset::Utf32,
            _ => Charset::Binary,
        };
        let name: &'static str = match charset {
            Charset::Binary if name != "binary" => "unknown",
            _ => match name {
                "utf8mb4" => "utf8mb4",
                "utf8mb3" | "utf8" => "utf8mb3",
                "ascii" => "ascii",
                "latin1" => "latin1",
                "ucs2" => "ucs2",
                "utf16" => "utf16",
                "utf16le" => "utf16le",
                "utf32" => "utf32",
                _ => "binary",
            },
        };
        (charset, name)
    }

    /// Decodes `bytes` to text; `None` when they are not valid in this charset.
    /// UTF-8 and ASCII text is copied once, and not at all onto the heap when
    /// short (see [`SharedStr`]).
    pub fn decode(self, bytes: &[u8]) -> Option<SharedStr> {
        match self {
            Charset::Utf8 => std::str::from_utf8(bytes).ok().map(SharedStr::from),
            // ASCII is the same in Windows-1252 and UTF-8: one copy instead of
            // a char-by-char rebuild (most latin1 text is ASCII).
            Charset::Latin1 if bytes.is_ascii() => {
                std::str::from_utf8(bytes).ok().map(SharedStr::from)
            }
            Charset::Latin1 => Some(bytes.iter().map(|&b| cp1252(b)).collect::<String>().into()),
            Charset::Utf16Be | Charset::Utf16Le => {
                if !bytes.len().is_multiple_of(2) {
                    return None;
                }
                let units = bytes.chunks_exact(2).map(|p| {
                    if self == Charset::Utf16Be {
                        u16::from_be_bytes([p[0], p[1]])
                    } else {
                        u16::from_le_bytes([p[0], p[1]])
                    }
                });
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .ok()
                    .map(SharedStr::from)
            }
            Charset::Utf32 => {
                if !bytes.len().is_multiple_of(4) {
                    return None;
                }
                bytes
                    .chunks_exact(4)
                    .map(|p| char::from_u32(u32::from_be_bytes([p[0], p[1], p[2], p[3]])))
                    .collect::<Option<String>>()
                    .map(SharedStr::from)
            }
            Charset::Binary => None,
        }
    }
}

/// Windows-1252 (MySQL's `latin1`) byte to char; the five undefined bytes map
/// to the C1 controls as MySQL does.
fn cp1252(b: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    match b {
        0x80..=0x9f => char::from_u32(u32::from(HIGH[usize::from(b - 0x80)])).unwrap_or('\u{fffd}'),
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_windows_1252_like_mysql() {
        assert_eq!(Charset::Latin1.decode(&[0x80, b'a', 0xe9]).unwrap(), "€aé");
    }

    #[test]
    fn ascii_latin1_text_decodes_unchanged_and_mixed_text_still_maps_high_bytes() {
        assert_eq!(
            Charset::Latin1.decode(b"customer-42").unwrap(),
            "customer-42"
        );
        assert_eq!(Charset::Latin1.decode(b"").unwrap(), "");
        assert_eq!(Charset::Latin1.decode(b"caf\xe9 \x80").unwrap(), "café €");
    }

    #[test]
    fn common_collations_resolve_to_their_charsets() {
        assert_eq!(Charset::of_collation(45), (Charset::Utf8, "utf8mb4"));
        assert_eq!(Charset::of_collation(8), (Charset::Latin1, "latin1"));
        assert_eq!(Charset::of_collation(63), (Charset::Binary, "binary"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Charset::Utf8.decode(&[0xff]).is_none());
    }
}
