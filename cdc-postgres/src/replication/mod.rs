//! The replication connection: startup, authentication, replication commands
//! and the CopyBoth stream.

mod connection;
mod frame;

pub(crate) use connection::ReplicationConnection;
pub(crate) use frame::{CopyMessage, PG_EPOCH_OFFSET_MICROS};
#[cfg(feature = "internals")]
pub(crate) use frame::{parse_copy_data, split_frame};

/// Formats an LSN the way PostgreSQL prints it (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Parses PostgreSQL's `16/B374D848` LSN form.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some(u64::from(hi) << 32 | u64::from(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("zz"), None);
    }
}
