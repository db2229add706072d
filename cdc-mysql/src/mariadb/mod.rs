//! MariaDB's own binlog events, which mysql_common leaves undecoded: GTID (162),
//! GTID_LIST (163), BINLOG_CHECKPOINT (161), ANNOTATE_ROWS (160), and the
//! compressed query and rows events (165..=171, see [`compressed`]). Every read
//! is checked.

pub mod compressed;

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};
use crate::gtid::MariaGtid;

/// A MariaDB GTID event: starts an event group (transaction or DDL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    /// The GTID (server id comes from the event header).
    pub gtid: MariaGtid,
    /// Event flags.
    pub flags: u8,
}

impl GtidEvent {
    /// The group is a single statement with no `COMMIT` or XID after it (DDL,
    /// non-transactional statements).
    pub const STANDALONE: u8 = 0x01;

    /// Parses the body of a GTID event written by server `server_id`.
    pub fn parse(data: &[u8], server_id: u32) -> Decoded<Self> {
        let mut c = Cursor::new(data);
        let seq = c.u64()?;
        let domain = c.u32()?;
        let flags = c.u8()?;
        Ok(GtidEvent {
            gtid: MariaGtid {
                domain,
                server: server_id,
                seq,
            },
            flags,
        })
    }

    /// Whether the group ends with this event's statement.
    pub fn is_standalone(&self) -> bool {
        self.flags & Self::STANDALONE != 0
    }
}

/// Parses a GTID_LIST event: the binlog state at the start of a file.
pub fn parse_gtid_list(data: &[u8]) -> Decoded<Vec<MariaGtid>> {
    let mut c = Cursor::new(data);
    // The top 4 bits are flags; the count is the low 28 bits.
    let count = (c.u32()? & 0x0fff_ffff) as usize;
    if count.checked_mul(16).is_none_or(|need| need > c.len()) {
        return Err(DecodeError::new(format!(
            "gtid list of {count} entries exceeds event"
        )));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(MariaGtid {
            domain: c.u32()?,
            server: c.u32()?,
            seq: c.u64()?,
        });
    }
    Ok(out)
}

/// Parses a BINLOG_CHECKPOINT event: the oldest binlog file still needed for
/// crash recovery.
pub fn parse_checkpoint(data: &[u8]) -> Decoded<String> {
    let mut c = Cursor::new(data);
    let len = c.u32()? as usize;
    let name = c.take(len)?;
    String::from_utf8(name.to_vec()).map_err(|_| DecodeError::new("checkpoint file name not UTF-8"))
}

/// Parses an ANNOTATE_ROWS event: the SQL statement that produced the next rows
/// events (informational; never printed in logs as it may hold row values).
pub fn parse_annotate(data: &[u8]) -> &[u8] {
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_event_decodes_sequence_domain_and_flags() {
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend(3u32.to_le_bytes());
        data.push(0x01);
        let ev = GtidEvent::parse(&data, 7).unwrap();
        assert_eq!(ev.gtid.to_string(), "3-7-42");
        assert!(ev.is_standalone());
        assert!(GtidEvent::parse(&data[..10], 7).is_err());
    }

    #[test]
    fn gtid_list_decodes_and_rejects_overlong_counts() {
        let mut data = 1u32.to_le_bytes().to_vec();
        data.extend(0u32.to_le_bytes());
        data.extend(1u32.to_le_bytes());
        data.extend(100u64.to_le_bytes());
        assert_eq!(parse_gtid_list(&data).unwrap()[0].to_string(), "0-1-100");
        let mut bad = 0x0fff_ffffu32.to_le_bytes().to_vec();
        bad.extend([0; 16]);
        assert!(parse_gtid_list(&bad).is_err());
    }

    #[test]
    fn checkpoint_names_the_file() {
        let mut data = 3u32.to_le_bytes().to_vec();
        data.extend(b"bin");
        assert_eq!(parse_checkpoint(&data).unwrap(), "bin");
        assert!(parse_checkpoint(&data[..5]).is_err());
    }
}
