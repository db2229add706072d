//! MySQL 8.0.20+ TRANSACTION_PAYLOAD events: a transaction's events compressed
//! with zstd (`binlog_transaction_compression=ON`).

use std::io::Read;

use super::cursor::{Cursor, DecodeError, Decoded};
use super::event::{EventHeader, HEADER_LEN};

/// Largest uncompressed payload accepted (MySQL caps transactions far lower in
/// practice); bounds memory on corrupt input.
const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// Decompresses a payload event body into the concatenated inner events.
pub fn decompress(data: &[u8]) -> Decoded<Vec<u8>> {
    let mut c = Cursor::new(data);
    let mut compression = None;
    let mut size = None;
    let mut uncompressed = None;
    loop {
        let field = c.lenenc()?;
        if field == 0 {
            break;
        }
        let value = c.lenenc_bytes()?;
        let v = Cursor::new(value).lenenc()?;
        match field {
            1 => size = Some(v),
            2 => compression = Some(v),
            3 => uncompressed = Some(v),
            _ => {}
        }
    }
    let payload = c.rest();
    if let Some(size) = size
        && size != payload.len() as u64
    {
        return Err(DecodeError::new(
            "transaction payload size does not match the event",
        ));
    }
    let limit = uncompressed
        .unwrap_or(MAX_UNCOMPRESSED)
        .min(MAX_UNCOMPRESSED);
    match compression {
        Some(0) => {
            let decoder = zstd::stream::read::Decoder::new(payload)
                .map_err(|e| DecodeError::new(format!("zstd: {e}")))?;
            let mut out = Vec::with_capacity(limit.min(1 << 24) as usize);
            decoder
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::new(format!("zstd: {e}")))?;
            Ok(out)
        }
        Some(255) => Ok(payload.to_vec()),
        other => Err(DecodeError::new(format!(
            "unknown payload compression {other:?}"
        ))),
    }
}

/// Iterates the events inside a decompressed payload (they carry no checksum).
pub fn events(buf: &[u8]) -> impl Iterator<Item = (Decoded<EventHeader>, &[u8])> + '_ {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let header = rest.get(..HEADER_LEN).map(EventHeader::parse);
        let Some(Ok(h)) = header else {
            rest = &[];
            return Some((Err(DecodeError::new("truncated event in payload")), &[][..]));
        };
        let size = h.event_size as usize;
        if size < HEADER_LEN || size > rest.len() {
            rest = &[];
            return Some((
                Err(DecodeError::new("event size past the payload")),
                &[][..],
            ));
        }
        let body = &rest[HEADER_LEN..size];
        rest = &rest[size..];
        Some((Ok(h), body))
    })
}
