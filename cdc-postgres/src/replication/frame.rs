//! Backend message framing and the CopyBoth sub-protocol: XLogData, primary
//! keepalives and standby status updates.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
pub(crate) const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// One backend message: its tag and body (without the length).
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) tag: u8,
    pub(crate) body: Bytes,
}

/// Longest backend message accepted (1 GiB is PostgreSQL's own limit on a field).
const MAX_FRAME: usize = 1 << 30;

/// Splits one complete frame off the front of `buf`, if it holds one.
pub(crate) fn split_frame(buf: &mut BytesMut) -> Result<Option<Frame>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..=MAX_FRAME).contains(&len) {
        return Err(Error::protocol(format!(
            "message length {len} out of range"
        )));
    }
    if buf.len() < len + 1 {
        buf.reserve(len + 1 - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(len + 1);
    frame.advance(5);
    Ok(Some(Frame {
        tag,
        body: frame.freeze(),
    }))
}

/// A message inside the CopyBoth stream.
#[derive(Debug)]
pub(crate) enum CopyMessage {
    /// WAL data: a pgoutput message.
    XLogData {
        /// WAL position of the start of this data; 0 for some messages.
        start: u64,
        /// The pgoutput message.
        data: Bytes,
    },
    /// Primary keepalive.
    Keepalive {
        /// The server's sent position.
        wal_end: u64,
        /// Whether the server asks for an immediate status update.
        reply_requested: bool,
    },
}

/// Parses a CopyData body from the server.
pub(crate) fn parse_copy_data(mut body: Bytes) -> Result<CopyMessage> {
    let short = || Error::protocol("short copy data message");
    if body.is_empty() {
        return Err(short());
    }
    match body.get_u8() {
        b'w' => {
            if body.len() < 24 {
                return Err(short());
            }
            let start = body.get_u64();
            let _wal_end = body.get_u64();
            let _send_time = body.get_i64();
            Ok(CopyMessage::XLogData { start, data: body })
        }
        b'k' => {
            if body.len() < 17 {
                return Err(short());
            }
            let wal_end = body.get_u64();
            let _send_time = body.get_i64();
            Ok(CopyMessage::Keepalive {
                wal_end,
                reply_requested: body.get_u8() == 1,
            })
        }
        tag => Err(Error::protocol(format!("unknown copy data tag {tag:#04x}"))),
    }
}

/// Encodes a standby status update as a CopyData message.
pub(crate) fn standby_status_update(
    out: &mut BytesMut,
    written: u64,
    flushed: u64,
    applied: u64,
    now_unix_micros: i64,
    reply: bool,
) {
    out.put_u8(b'd');
    out.put_i32(4 + 1 + 8 * 4 + 1);
    out.put_u8(b'r');
    out.put_u64(written);
    out.put_u64(flushed);
    out.put_u64(applied);
    out.put_i64(now_unix_micros - PG_EPOCH_OFFSET_MICROS);
    out.put_u8(u8::from(reply));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_only_when_complete() {
        let mut buf = BytesMut::from(&b"d\0\0\0\x06hi"[..]);
        buf.extend_from_slice(b"Z\0\0");
        let frame = split_frame(&mut buf).unwrap().unwrap();
        assert_eq!((frame.tag, &frame.body[..]), (b'd', &b"hi"[..]));
        assert!(split_frame(&mut buf).unwrap().is_none());
        let mut bad = BytesMut::from(&b"d\0\0\0\x01"[..]);
        assert!(split_frame(&mut bad).is_err());
    }

    #[test]
    fn keepalive_and_xlogdata_parse_and_short_ones_fail() {
        let mut k = vec![b'k'];
        k.extend(7u64.to_be_bytes());
        k.extend(0i64.to_be_bytes());
        k.push(1);
        assert!(matches!(
            parse_copy_data(Bytes::from(k)).unwrap(),
            CopyMessage::Keepalive {
                wal_end: 7,
                reply_requested: true
            }
        ));
        assert!(parse_copy_data(Bytes::from_static(b"w\0\0")).is_err());
        assert!(parse_copy_data(Bytes::new()).is_err());
    }

    #[test]
    fn status_update_has_the_documented_layout() {
        let mut out = BytesMut::new();
        standby_status_update(&mut out, 1, 2, 3, PG_EPOCH_OFFSET_MICROS, true);
        assert_eq!(out.len(), 1 + 4 + 34);
        assert_eq!(&out[5..6], b"r");
        assert_eq!(&out[14..22], &2u64.to_be_bytes());
        assert_eq!(out[38], 1);
    }
}
