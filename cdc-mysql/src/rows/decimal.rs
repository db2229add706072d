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
/// without allocating (the row decoder's hot path). Digit groups are written
/// straight into `out`: the integer part without leading zeros (at least one
/// digit), then the point and the fraction, zero-padded; a zero has no sign.
pub fn read_into<'b>(
    c: &mut Cursor<'_>,
    precision: u8,
    scale: u8,
    out: &'b mut [u8; MAX_TEXT],
) -> Decoded<&'b str> {
    let len = binary_len(precision, scale)?;
    let raw = c.take(len)?;
    let negative = raw.first().is_some_and(|b| b & 0x80 == 0);
    let (p, s) = (usize::from(precision), usize::from(scale));
    let intg = p - s;
    let mut groups = Groups {
        raw,
        at: 0,
        mask: if negative { 0xff } else { 0 },
    };
    // Byte 0 is kept for the sign, known only once every digit is read.
    let mut text = Text { out, len: 1 };
    let mut leading = true;
    let int_widths = std::iter::once(intg % 9).chain(std::iter::repeat_n(9, intg / 9));
    for width in int_widths.filter(|&w| w > 0) {
        let v = groups.next(width)?;
        if !leading {
            text.digits(v, width)?;
        } else if v != 0 {
            text.digits(v, digit_count(v))?;
            leading = false;
        }
    }
    if leading {
        text.push(b'0')?;
    }
    let mut zero = leading;
    if s > 0 {
        text.push(b'.')?;
        let frac_widths = std::iter::repeat_n(9, s / 9).chain(std::iter::once(s % 9));
        for width in frac_widths.filter(|&w| w > 0) {
            let v = groups.next(width)?;
            zero &= v == 0;
            text.digits(v, width)?;
        }
    }
    let start = if negative && !zero {
        text.out[0] = b'-';
        0
    } else {
        1
    };
    // Only ASCII digits, sign and point were written.
    std::str::from_utf8(&text.out[start..text.len]).map_err(|_| DecodeError::new("decimal text"))
}

const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

fn digit_count(v: u32) -> usize {
    POW10.iter().skip(1).take_while(|&&p| v >= p).count() + 1
}

/// Reads the digit groups of a binary decimal in order.
struct Groups<'a> {
    raw: &'a [u8],
    at: usize,
    /// All bits of a negative value are inverted.
    mask: u8,
}

impl Groups<'_> {
    /// Reads one group of `width` digits (1..=9), stored big-endian in
    /// `DIG_TO_BYTES[width]` bytes.
    #[inline]
    fn next(&mut self, width: usize) -> Decoded<u32> {
        let n = DIG_TO_BYTES[width];
        let chunk = self
            .raw
            .get(self.at..self.at + n)
            .ok_or_else(|| DecodeError::new("decimal shorter than its precision"))?;
        let first = self.at == 0;
        self.at += n;
        let mut v = chunk
            .iter()
            .fold(0u32, |a, &b| (a << 8) | u32::from(b ^ self.mask));
        if first {
            // The sign bit, flipped so positive values sort above negative ones.
            v ^= 0x80 << (8 * (n - 1));
        }
        if v >= POW10[width] {
            return Err(DecodeError::new("decimal digit group out of range"));
        }
        Ok(v)
    }
}

/// The text being written.
struct Text<'b> {
    out: &'b mut [u8; MAX_TEXT],
    len: usize,
}

impl Text<'_> {
    fn push(&mut self, byte: u8) -> Decoded<()> {
        self.digits_slot(1)?[0] = byte;
        Ok(())
    }

    /// Writes `v` as exactly `width` digits.
    #[inline]
    fn digits(&mut self, mut v: u32, width: usize) -> Decoded<()> {
        for d in self.digits_slot(width)?.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Ok(())
    }

    fn digits_slot(&mut self, n: usize) -> Decoded<&mut [u8]> {
        let at = self.len;
        self.len += n;
        self.out
            .get_mut(at..at + n)
            .ok_or_else(|| DecodeError::new("decimal has too many digits"))
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
    use proptest::prelude::*;

    /// The first decoder, kept as the reference: every digit into one array,
    /// then the text cut from it.
    fn reference(raw: &[u8], precision: u8, scale: u8) -> Option<String> {
        let len = binary_len(precision, scale).ok()?;
        let raw = raw.get(..len)?;
        let negative = raw.first().is_some_and(|b| b & 0x80 == 0);
        let mut bytes: Vec<u8> = raw.iter().map(|b| if negative { !b } else { *b }).collect();
        bytes[0] ^= 0x80;
        let (p, s) = (usize::from(precision), usize::from(scale));
        let intg = p - s;
        let mut digits = String::new();
        let mut at = 0;
        let widths = [intg % 9]
            .into_iter()
            .chain(std::iter::repeat_n(9, intg / 9 + s / 9))
            .chain([s % 9]);
        for width in widths.filter(|&w| w > 0) {
            let n = DIG_TO_BYTES[width];
            let v = bytes[at..at + n]
                .iter()
                .fold(0u32, |a, &b| (a << 8) | u32::from(b));
            at += n;
            if v >= 10u32.pow(width as u32) {
                return None;
            }
            digits.push_str(&format!("{v:0width$}"));
        }
        let (int, frac) = digits.split_at(intg);
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let zero = int == "0" && frac.bytes().all(|d| d == b'0');
        let sign = if negative && !zero { "-" } else { "" };
        let point = if s > 0 { "." } else { "" };
        Some(format!("{sign}{int}{point}{frac}"))
    }

    proptest! {
        #[test]
        fn decodes_as_the_reference_does(
            raw in proptest::collection::vec(any::<u8>(), 30),
            precision in 1u8..=65,
            scale in 0u8..=30,
        ) {
            prop_assume!(scale <= precision);
            let decoded = read(&mut Cursor::new(&raw), precision, scale).ok();
            prop_assert_eq!(decoded, reference(&raw, precision, scale));
        }

        #[test]
        fn decodes_encoded_values_exactly(
            negative: bool,
            int in "[0-9]{1,35}",
            frac in "[0-9]{0,30}",
        ) {
            let (p, s) = ((int.len() + frac.len()) as u8, frac.len() as u8);
            let text = if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") };
            let text = if negative { format!("-{text}") } else { text };
            let decoded = read(&mut Cursor::new(&encode(&text, p, s)), p, s).unwrap();
            prop_assert_eq!(decoded, reference(&encode(&text, p, s), p, s).unwrap());
        }
    }

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
