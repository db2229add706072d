//! A checked little-endian reader over event bytes: every read checks its
//! length, so malformed input is an error, never a panic.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    /// An error with a fixed reason.
    pub fn new(reason: impl Into<String>) -> Self {
        DecodeError(reason.into())
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Result of decoding.
pub type Decoded<T> = Result<T, DecodeError>;

/// A position in a byte slice with checked reads.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Number of bytes not read yet.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if n > self.buf.len() {
            return Err(DecodeError(format!(
                "needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Takes a fixed-size array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Little-endian u16.
    #[inline]
    pub fn u16(&mut self) -> Decoded<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Little-endian u32.
    #[inline]
    pub fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Little-endian u64.
    #[inline]
    pub fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Little-endian unsigned integer of `n` bytes (1..=8).
    #[inline]
    pub fn uint_le(&mut self, n: usize) -> Decoded<u64> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Big-endian unsigned integer of `n` bytes (1..=8).
    #[inline]
    pub fn uint_be(&mut self, n: usize) -> Decoded<u64> {
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A length-encoded integer (MySQL protocol `lenenc`).
    pub fn lenenc(&mut self) -> Decoded<u64> {
        match self.u8()? {
            x @ 0..=0xfa => Ok(u64::from(x)),
            0xfc => Ok(u64::from(self.u16()?)),
            0xfd => self.uint_le(3),
            0xfe => self.u64(),
            x => Err(DecodeError(format!(
                "invalid length-encoded integer prefix {x:#x}"
            ))),
        }
    }

    /// A length-encoded integer used as a length; must fit the remaining bytes.
    pub fn lenenc_len(&mut self) -> Decoded<usize> {
        let n = self.lenenc()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len())
            .ok_or_else(|| {
                DecodeError(format!(
                    "length {n} exceeds the {} bytes left",
                    self.buf.len()
                ))
            })
    }

    /// A variable-length integer of the MySQL serialization library (MySQL 8.4
    /// tagged GTID events): the count of trailing one bits of the first byte is
    /// the number of bytes that follow; the value is the little-endian number
    /// shifted right by the total byte count (`0xff`: eight raw bytes follow).
    pub fn varlen(&mut self) -> Decoded<u64> {
        let first = *self
            .buf
            .first()
            .ok_or_else(|| DecodeError::new("variable-length integer past the end"))?;
        let n = first.trailing_ones() as usize + 1;
        if n == 9 {
            self.take(1)?;
            return self.u64();
        }
        let bytes = self.take(n)?;
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(bytes);
        Ok(u64::from_le_bytes(raw) >> n)
    }

    /// A zig-zag signed variable-length integer of the MySQL serialization library.
    pub fn varlen_signed(&mut self) -> Decoded<i64> {
        let v = self.varlen()?;
        let magnitude = (v >> 1) as i64;
        Ok(if v & 1 == 0 {
            magnitude
        } else {
            -magnitude - 1
        })
    }

    /// Bytes prefixed by a length-encoded length.
    pub fn lenenc_bytes(&mut self) -> Decoded<&'a [u8]> {
        let n = self.lenenc_len()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_errors_not_panics() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert!(c.u32().is_err());
        assert_eq!(c.u16().unwrap(), 0x0201);
        assert!(c.take(2).is_err());
        assert_eq!(c.u8().unwrap(), 3);
        assert!(c.u8().is_err());
    }

    #[test]
    fn length_encoded_integers_decode_every_width() {
        let mut c = Cursor::new(&[0xfa, 0xfc, 0x34, 0x12, 0xfd, 1, 2, 3, 0xff]);
        assert_eq!(c.lenenc().unwrap(), 0xfa);
        assert_eq!(c.lenenc().unwrap(), 0x1234);
        assert_eq!(c.lenenc().unwrap(), 0x030201);
        assert!(c.lenenc().is_err());
    }

    #[test]
    fn serialization_library_varlen_integers_decode_every_width() {
        // 5 in one byte, 300 in two, u64::MAX in nine, -3 zig-zag.
        let bytes = [
            10u8, 0xb1, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 10,
        ];
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.varlen().unwrap(), 5);
        assert_eq!(c.varlen().unwrap(), 300);
        assert_eq!(c.varlen().unwrap(), u64::MAX);
        assert_eq!(c.varlen_signed().unwrap(), -3);
        assert!(Cursor::new(&[0x03, 0]).varlen().is_err());
    }

    #[test]
    fn a_length_longer_than_the_input_is_rejected() {
        let mut c = Cursor::new(&[5, 1, 2]);
        assert!(c.lenenc_bytes().is_err());
    }
}
