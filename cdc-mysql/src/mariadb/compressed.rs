//! MariaDB binlog compression (`log_bin_compress=ON`): the statement text of
//! QUERY_COMPRESSED events and the row images of ROWS_COMPRESSED events.
//!
//! ```text
//! header: u8     bit 7 set; bits 4..=6 algorithm (0 = zlib); bits 0..=2 length of the next field (1..=4)
//! length: u8*n   uncompressed size, big-endian
//! data            zlib stream (RFC 1950)
//! ```

use std::io::Read;

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};

/// Largest uncompressed size accepted: MariaDB events are at most 1 GiB.
const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// Decompresses one compressed block into `out` (cleared first).
pub fn inflate(data: &[u8], out: &mut Vec<u8>) -> Decoded<()> {
    let mut c = Cursor::new(data);
    let header = c.u8()?;
    if header & 0x80 == 0 {
        return Err(DecodeError::new(
            "compressed event block without its marker bit",
        ));
    }
    let algorithm = (header >> 4) & 0x07;
    if algorithm != 0 {
        return Err(DecodeError::new(format!(
            "compressed event uses algorithm {algorithm}; only zlib (0) is known"
        )));
    }
    let len_len = usize::from(header & 0x07);
    if !(1..=4).contains(&len_len) {
        return Err(DecodeError::new(format!(
            "compressed event length field of {len_len} bytes"
        )));
    }
    let len = c.uint_be(len_len)?;
    if len > MAX_UNCOMPRESSED {
        return Err(DecodeError::new("compressed event larger than 1 GiB"));
    }
    out.clear();
    out.reserve(len as usize);
    let mut decoder = flate2::read::ZlibDecoder::new(c.rest()).take(len);
    decoder
        .read_to_end(out)
        .map_err(|e| DecodeError::new(format!("zlib: {e}")))?;
    if out.len() as u64 != len {
        return Err(DecodeError::new(format!(
            "compressed event inflates to {} bytes, header says {len}",
            out.len()
        )));
    }
    Ok(())
}

/// Compresses `data` as MariaDB does (tests and fixtures only).
#[doc(hidden)]
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let len = data.len() as u32;
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    let mut out = vec![0x80 | (4 - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_blocks_round_trip() {
        for data in [&b"x"[..], &[7u8; 300][..], &[1u8; 70_000][..]] {
            let mut out = Vec::new();
            inflate(&deflate(data), &mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn bad_headers_lengths_and_streams_are_errors() {
        let mut out = Vec::new();
        let good = deflate(b"hello world");
        assert!(inflate(&[], &mut out).is_err());
        assert!(inflate(&[0x01, 5], &mut out).is_err());
        assert!(inflate(&[0x91, 5, 0], &mut out).is_err());
        assert!(inflate(&[0x85, 5, 0], &mut out).is_err());
        let mut short = good.clone();
        short[1] += 1;
        assert!(inflate(&short, &mut out).is_err());
        // A cut stream is an error, unless only the trailing checksum is lost
        // and the whole text came out.
        for cut in 0..good.len() {
            let r = inflate(&good[..cut], &mut out);
            assert!(r.is_err() || out == b"hello world", "cut {cut}");
        }
    }
}
