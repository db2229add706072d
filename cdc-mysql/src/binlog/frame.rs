//! Splits a binlog file into events: checks each event's size against the
//! bytes left, verifies CRC32 checksums, and strips the checksum (and the
//! format description's algorithm byte) so every event body looks as the live
//! stream hands it over.
//!
//! mysql_common's `EventStreamReader` is not used for files: it unwraps a short
//! read and slices by the header's size, which panics on a truncated or corrupt
//! file; this reader returns an error instead.

use super::cursor::{DecodeError, Decoded};
use super::event::{CHECKSUM_LEN, EventHeader, FormatDescription, HEADER_LEN, kind};

/// Magic bytes at the start of every binlog file.
pub const FILE_MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Largest event accepted (MySQL's `max_allowed_packet` limit is 1 GiB).
pub const MAX_EVENT_SIZE: u32 = 1 << 30;

/// One framed event.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The event header.
    pub header: EventHeader,
    /// The body, without checksum.
    pub body: &'a [u8],
}

/// Reads events from an in-memory binlog file image.
#[derive(Debug)]
pub struct FrameReader<'a> {
    buf: &'a [u8],
    pos: usize,
    checksum: bool,
    verify: bool,
}

impl<'a> FrameReader<'a> {
    /// Starts after the file magic; errors if the magic is missing.
    pub fn new(buf: &'a [u8]) -> Decoded<Self> {
        if buf.get(..4) != Some(&FILE_MAGIC[..]) {
            return Err(DecodeError::new("not a binlog file (missing magic bytes)"));
        }
        Ok(FrameReader {
            buf,
            pos: 4,
            checksum: false,
            verify: true,
        })
    }

    /// Continues reading `buf` at byte `pos`, with the checksum setting of the
    /// format description read before (see [`checksum`](Self::checksum)).
    pub fn resume(buf: &'a [u8], pos: u64, checksum: bool) -> Decoded<Self> {
        let mut reader = Self::new(buf)?;
        reader.pos = usize::try_from(pos)
            .ok()
            .filter(|&p| p >= 4)
            .ok_or_else(|| DecodeError::new(format!("cannot resume at offset {pos}")))?;
        reader.checksum = checksum;
        Ok(reader)
    }

    /// Whether the events read so far carry checksums.
    pub fn checksum(&self) -> bool {
        self.checksum
    }

    /// Disables CRC verification (benchmarks of pure decoding).
    pub fn without_verification(mut self) -> Self {
        self.verify = false;
        self
    }

    /// Byte offset of the next event.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// The next event, `Ok(None)` at the end. A torn last event (a file still
    /// being written) is reported as an error naming the offset.
    pub fn next_frame(&mut self) -> Decoded<Option<Frame<'a>>> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        if rest.is_empty() {
            return Ok(None);
        }
        let header_bytes = rest
            .get(..HEADER_LEN)
            .ok_or_else(|| DecodeError::new(format!("torn event header at offset {}", self.pos)))?;
        let header = EventHeader::parse(header_bytes)?;
        let size = header.event_size;
        if size > MAX_EVENT_SIZE || (size as usize) < HEADER_LEN {
            return Err(DecodeError::new(format!(
                "event size {size} at offset {} is invalid",
                self.pos
            )));
        }
        let event = rest
            .get(..size as usize)
            .ok_or_else(|| DecodeError::new(format!("torn event at offset {}", self.pos)))?;
        let mut body = &event[HEADER_LEN..];
        if header.kind == kind::FORMAT_DESCRIPTION {
            let fde = FormatDescription::parse(body, true)?;
            let tail_len = if fde.post_header_lens.len() + 57 < body.len() {
                1 + CHECKSUM_LEN
            } else {
                0
            };
            if tail_len > 0 && self.verify && fde.checksum {
                verify(event, true)?;
            }
            self.checksum = fde.checksum;
            body = &body[..body.len() - tail_len];
        } else if self.checksum {
            if self.verify {
                verify(event, false)?;
            }
            body = body
                .get(..body.len().saturating_sub(CHECKSUM_LEN))
                .ok_or_else(|| DecodeError::new("event shorter than its checksum"))?;
            if event.len() < HEADER_LEN + CHECKSUM_LEN {
                return Err(DecodeError::new("event shorter than its checksum"));
            }
        }
        self.pos += size as usize;
        Ok(Some(Frame { header, body }))
    }
}

fn verify(event: &[u8], is_fde: bool) -> Decoded<()> {
    let split = event
        .len()
        .checked_sub(CHECKSUM_LEN)
        .filter(|&s| s >= HEADER_LEN)
        .ok_or_else(|| DecodeError::new("event shorter than its checksum"))?;
    let (content, crc) = event.split_at(split);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let mut hasher = crc32fast::Hasher::new();
    if is_fde {
        // The in-use flag is cleared when the file is closed; the checksum is
        // computed without it.
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&content[..HEADER_LEN]);
        header[17] &= !0x01;
        hasher.update(&header);
        hasher.update(&content[HEADER_LEN..]);
    } else {
        hasher.update(content);
    }
    if hasher.finalize() != expected {
        return Err(DecodeError::new("event checksum mismatch"));
    }
    Ok(())
}
