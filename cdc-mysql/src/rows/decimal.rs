//! MySQL's binary DECIMAL format (`decimal2bin`) to exact decimal text.

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};

const DIG_TO_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes a DECIMAL(precision, scale) takes in a row image.
pub fn binary_len(precision: u8, scale: u8) -> Decoded<usize> {
    if precision == 0 || precision > 65 || scale > 30 || scale > precision {
        return Err(DecodeError::new(format!(
            "invalid decimal({precision},{scale})"
        )));
    }
    let (p, s) = (usize::from(precision), usize::from(scale));
    let intg = p - s;
    Ok(intg / 9 * 4 + DIG_TO_BYTES[intg % 9] + s / 9 * 4 + DIG_TO_BYTES[s % 9])
}

/// Longest text of a DECIMAL(65,30): sign, 35 + 30 digits and the point.
pub const MAX_TEXT: usize = 68;

/// Reads one DECIMAL(precision, scale) value as canonical text (`-12.3400`).
pub fn read(c: &mut Cursor<'_>, precision: u8, scale: u8) -> Decoded<String> {
    let mut buf = [0u8; MAX_TEXT];
    Ok(read_into(c, precision, scale, &mut buf)?.to_owned())
}

/// Reads one DECIMAL(precision, scale) value as canonical text into `out`,
/// without allocating (the row decoder's hot path).
pub fn read_into<'b>(
    c: &mut Cursor<'_>,
    precision: u8,
    scale: u8,
    out: &'b mut [u8; MAX_TEXT],
) -> Decoded<&'b str> {
    let len = binary_len(precision, scale)?;
    let raw = c.take(len)?;
    let negative = raw.first().is_some_and(|b| b & 0x80 == 0);
    let mask = if negative { 0xff } else { 0 };
    let mut bytes = [0u8; 32];
    for (dst, &src) in bytes.iter_mut().zip(raw) {
        *dst = src ^ mask;
    }
    bytes[0] ^= 0x80;

    let (p, s) = (usize::from(precision), usize::from(scale));
    let intg = p - s;
    // All digits, integer part then fraction, each group zero-padded.
    let mut digits = [b'0'; 65];
    let mut groups = Groups {
        bytes: &bytes[..len],
        digits: &mut digits,
        at: 0,
        written: 0,
    };
    groups.read(intg % 9)?;
    for _ in 0..intg / 9 {
        groups.read(9)?;
    }
    for _ in 0..s / 9 {
        groups.read(9)?;
    }
    groups.read(s % 9)?;

    let (int, frac) = digits[..p].split_at(intg);
    let first_nonzero = int.iter().position(|&d| d != b'0');
    let int = match first_nonzero {
        Some(i) => &int[i..],
        None => b"0",
    };
    let is_zero = first_nonzero.is_none() && frac.iter().all(|&d| d == b'0');
    let mut n = 0;
    let mut push = |chunk: &[u8]| {
        out[n..n + chunk.len()].copy_from_slice(chunk);
        n += chunk.len();
    };
    if negative && !is_zero {
        push(b"-");
    }
    push(int);
    if s > 0 {
        push(b".");
        push(frac);
    }
    // Only ASCII digits, sign and point were written.
    std::str::from_utf8(&out[..n]).map_err(|_| DecodeError::new("decimal text"))
}

/// Reads the digit groups of a binary decimal in order.
struct Groups<'a> {
    bytes: &'a [u8],
    digits: &'a mut [u8; 65],
    at: usize,
    written: usize,
}

impl Groups<'_> {
    /// Reads one group of `width` digits (0..=9), stored big-endian in
    /// `DIG_TO_BYTES[width]` bytes.
    #[inline]
    fn read(&mut self, width: usize) -> Decoded<()> {
        let n = DIG_TO_BYTES[width];
        if n == 0 {
            return Ok(());
        }
        let chunk = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| DecodeError::new("decimal shorter than its precision"))?;
        self.at += n;
        let mut v = chunk.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
        if v >= 10u32.pow(width as u32) {
            return Err(DecodeError::new("decimal digit group out of range"));
        }
        let end = self.written + width;
        let dst = self
            .digits
            .get_mut(self.written..end)
            .ok_or_else(|| DecodeError::new("decimal has too many digits"))?;
        for d in dst.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.written = end;
        Ok(())
    }
}

/// Encodes decimal text as MySQL binary DECIMAL (tests and fixtures only).
#[doc(hidden)]
pub fn encode(text: &str, precision: u8, scale: u8) -> Vec<u8> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let (p, s) = (usize::from(precision), usize::from(scale));
    let intg = p - s;
    let int = format!("{int:0>intg$}");
    let frac = format!("{frac:0<s$}");
    let mut out = Vec::new();
    let mut push = |digits: &str| {
        if digits.is_empty() {
            return;
        }
        let n = DIG_TO_BYTES[digits.len()];
        let v: u64 = digits.parse().unwrap_or(0);
        out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
    };
    let lead = intg % 9;
    push(&int[..lead]);
    for chunk in int.as_bytes()[lead..].chunks(9) {
        push(std::str::from_utf8(chunk).unwrap_or("0"));
    }
    for chunk in frac.as_bytes().chunks(9) {
        push(std::str::from_utf8(chunk).unwrap_or("0"));
    }
    if let Some(first) = out.first_mut() {
        *first ^= 0x80;
    }
    if negative {
        for b in &mut out {
            *b ^= 0xff;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str, p: u8, s: u8) -> String {
        let bytes = encode(text, p, s);
        assert_eq!(bytes.len(), binary_len(p, s).unwrap());
        read(&mut Cursor::new(&bytes), p, s).unwrap()
    }

    #[test]
    fn decimals_decode_exactly_with_their_scale() {
        assert_eq!(roundtrip("1234567890.1234", 14, 4), "1234567890.1234");
        assert_eq!(roundtrip("-1234567890.1234", 14, 4), "-1234567890.1234");
        assert_eq!(roundtrip("0.5000", 10, 4), "0.5000");
        assert_eq!(roundtrip("-0.0001", 10, 4), "-0.0001");
        assert_eq!(roundtrip("0", 10, 0), "0");
        let big = "12345678901234567890123456789012345.123456789012345678901234567890";
        assert_eq!(roundtrip(big, 65, 30), big);
    }

    #[test]
    fn the_mysql_manual_example_decodes() {
        // 1234567890.1234 as DECIMAL(14,4) from the MySQL source comments.
        let bytes = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(
            read(&mut Cursor::new(&bytes), 14, 4).unwrap(),
            "1234567890.1234"
        );
    }

    #[test]
    fn invalid_precision_and_short_input_are_errors() {
        assert!(read(&mut Cursor::new(&[0; 40]), 66, 0).is_err());
        assert!(read(&mut Cursor::new(&[0x80]), 14, 4).is_err());
        assert!(read(&mut Cursor::new(&[0xff; 8]), 18, 0).is_err());
    }
}
