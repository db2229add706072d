//! The cursor file format (see the module documentation).

use crate::log::batch::{get_u32, get_u64};

pub(super) const CURSOR_SUFFIX: &str = ".cursor";
const CURSOR_MAGIC: [u8; 8] = *b"CDCCURS1";
const CURSOR_VERSION: u32 = 1;
const CURSOR_LEN: usize = 32;

/// Encodes a cursor file.
pub(super) fn encode_cursor(offset: u64) -> [u8; CURSOR_LEN] {
    let mut b = [0u8; CURSOR_LEN];
    b[..8].copy_from_slice(&CURSOR_MAGIC);
    b[8..12].copy_from_slice(&CURSOR_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a cursor file; the error says what is wrong.
pub(super) fn decode_cursor(bytes: &[u8]) -> Result<u64, &'static str> {
    if bytes.len() != CURSOR_LEN {
        return Err("cursor file has the wrong length (torn write)");
    }
    if bytes[..8] != CURSOR_MAGIC {
        return Err("cursor file magic number missing");
    }
    if get_u32(bytes, 24) != Some(crc32fast::hash(&bytes[..24])) {
        return Err("cursor file checksum mismatch");
    }
    if get_u32(bytes, 8) != Some(CURSOR_VERSION) {
        return Err("unsupported cursor file version");
    }
    get_u64(bytes, 16).ok_or("cursor file is truncated")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_files_round_trip_and_every_damage_is_detected() {
        let bytes = encode_cursor(42);
        assert_eq!(decode_cursor(&bytes), Ok(42));
        for cut in 0..bytes.len() {
            assert!(decode_cursor(&bytes[..cut]).is_err());
        }
        for at in 0..28 {
            let mut copy = bytes;
            copy[at] ^= 1;
            assert!(decode_cursor(&copy).is_err(), "flip at {at}");
        }
    }
}
