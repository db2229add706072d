//! MySQL GTID events: GTID_LOG_EVENT (33, fixed layout), GTID_TAGGED_LOG_EVENT
//! (42, MySQL 8.4 tagged GTIDs in the serialization library's format) and
//! PREVIOUS_GTIDS (35, untagged and tagged set encodings). Every read is checked.
//!
//! Tagged GTID event body (MySQL `libs/mysql/serialization`, format version 2):
//!
//! ```text
//! version: u8 (= 2)
//! payload_size: varlen    bytes of the whole body, version byte included
//! last_non_ignorable_field_id: varlen
//! { field_id: varlen, value }*   0 flags, 1 uuid (16 varlen bytes), 2 gno (signed),
//!                                3 tag (varlen length + bytes), 4-5 signed, 6-11 varlen
//! ```

use super::cursor::{Cursor, DecodeError, Decoded};
use crate::gtid::{GtidSet, MySqlGtid, is_valid_tag};

/// Serialization format version of tagged GTID events written by MySQL 8.4.
const TAGGED_VERSION: u8 = 2;

/// Parses a GTID_LOG_EVENT body: flags, uuid, gno (the rest is not needed).
pub fn parse_gtid(data: &[u8]) -> Decoded<MySqlGtid> {
    let mut c = Cursor::new(data);
    let _flags = c.u8()?;
    let sid = c.array::<16>()?;
    let gno = c.u64()?;
    Ok(MySqlGtid {
        sid,
        tag: None,
        gno: check_gno(gno)?,
    })
}

fn check_gno(gno: u64) -> Decoded<u64> {
    // MySQL's gno is a positive int64.
    if gno == 0 || gno > i64::MAX as u64 {
        return Err(DecodeError::new(format!("gtid number {gno} out of range")));
    }
    Ok(gno)
}

/// Parses a GTID_TAGGED_LOG_EVENT body.
pub fn parse_tagged_gtid(data: &[u8]) -> Decoded<MySqlGtid> {
    let mut c = Cursor::new(data);
    let version = c.u8()?;
    if version != TAGGED_VERSION {
        return Err(DecodeError::new(format!(
            "tagged gtid event format version {version} is not supported (only 2, MySQL 8.4)"
        )));
    }
    let payload_size = c.varlen()?;
    let last_non_ignorable = c.varlen()?;
    let envelope = (data.len() - c.len()) as u64;
    let fields_len = payload_size
        .checked_sub(envelope)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= c.len())
        .ok_or_else(|| DecodeError::new("tagged gtid event payload size past the event"))?;
    let mut f = Cursor::new(c.take(fields_len)?);
    let mut sid = None;
    let mut gno = None;
    let mut tag = None;
    while !f.is_empty() {
        let field = f.varlen()?;
        match field {
            0 => {
                f.varlen()?;
            }
            1 => {
                let mut uuid = [0u8; 16];
                for b in &mut uuid {
                    *b = u8::try_from(f.varlen()?)
                        .map_err(|_| DecodeError::new("tagged gtid uuid byte over 255"))?;
                }
                sid = Some(uuid);
            }
            2 => {
                let n = f.varlen_signed()?;
                gno = Some(check_gno(u64::try_from(n).unwrap_or(0))?);
            }
            3 => {
                let len = usize::try_from(f.varlen()?)
                    .map_err(|_| DecodeError::new("tagged gtid tag length too large"))?;
                let text = std::str::from_utf8(f.take(len)?)
                    .map_err(|_| DecodeError::new("tagged gtid tag is not UTF-8"))?;
                // An empty tag is an untagged GTID written in the tagged format.
                if !text.is_empty() {
                    if !is_valid_tag(text) {
                        return Err(DecodeError::new("tagged gtid tag has invalid characters"));
                    }
                    tag = Some(text.to_ascii_lowercase());
                }
            }
            4 | 5 => {
                f.varlen_signed()?;
            }
            6..=11 => {
                f.varlen()?;
            }
            unknown if unknown <= last_non_ignorable => {
                return Err(DecodeError::new(format!(
                    "tagged gtid event has unknown required field {unknown}; upgrade cdc-mysql"
                )));
            }
            // An unknown ignorable field: its length is unknown, so stop here.
            _ => break,
        }
    }
    Ok(MySqlGtid {
        sid: sid.ok_or_else(|| DecodeError::new("tagged gtid event without uuid"))?,
        tag,
        gno: gno.ok_or_else(|| DecodeError::new("tagged gtid event without gno"))?,
    })
}

/// Parses a PREVIOUS_GTIDS body into `set`. The first 8 bytes hold the entry
/// count; in the tagged format (MySQL 8.4) the top byte is 1 and the count sits
/// in bits 8..56, and each uuid is followed by its tag (varlen length + bytes).
pub fn parse_previous_gtids(data: &[u8], set: &mut GtidSet) -> Decoded<()> {
    let mut c = Cursor::new(data);
    let header = c.u64()?;
    let tagged = match header >> 56 {
        0 => false,
        1 => true,
        other => {
            return Err(DecodeError::new(format!(
                "previous gtids format {other} is not supported"
            )));
        }
    };
    let n = if tagged {
        (header >> 8) & ((1 << 48) - 1)
    } else {
        header
    };
    if n.saturating_mul(24) > c.len() as u64 {
        return Err(DecodeError::new("previous gtids entry count past the end"));
    }
    for _ in 0..n {
        let sid = c.array::<16>()?;
        let mut tag = String::new();
        if tagged {
            let len = usize::try_from(c.varlen()?)
                .map_err(|_| DecodeError::new("previous gtids tag length too large"))?;
            let text = std::str::from_utf8(c.take(len)?)
                .map_err(|_| DecodeError::new("previous gtids tag is not UTF-8"))?;
            if !text.is_empty() && !is_valid_tag(text) {
                return Err(DecodeError::new(
                    "previous gtids tag has invalid characters",
                ));
            }
            tag = text.to_ascii_lowercase();
        }
        let intervals = c.u64()?;
        if intervals.saturating_mul(16) > c.len() as u64 {
            return Err(DecodeError::new(
                "previous gtids interval count past the end",
            ));
        }
        for _ in 0..intervals {
            let (start, end) = (c.u64()?, c.u64()?);
            if start == 0 || end <= start {
                return Err(DecodeError::new("invalid gtid interval"));
            }
            set.add_range(sid, &tag, start, end - 1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::writer::{tagged_gtid_body, varlen};
    use crate::gtid::parse_uuid;

    const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn a_tagged_gtid_event_decodes_uuid_tag_and_number() {
        let sid = parse_uuid(UUID).unwrap();
        let body = tagged_gtid_body(sid, "Etl_2", 123_456_789);
        let gtid = parse_tagged_gtid(&body).unwrap();
        assert_eq!(gtid.to_string(), format!("{UUID}:etl_2:123456789"));
        for cut in 0..body.len() {
            assert!(parse_tagged_gtid(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn unknown_required_fields_and_other_versions_are_refused() {
        let sid = parse_uuid(UUID).unwrap();
        let mut body = tagged_gtid_body(sid, "a", 1);
        body[0] = 3;
        assert!(parse_tagged_gtid(&body).is_err());
        // Version 2, size, last non-ignorable field 20, then field 20.
        let mut bad = vec![2u8];
        let fields = [varlen(20), varlen(0)].concat();
        let size = 1 + 1 + 1 + fields.len() as u64;
        bad.extend(varlen(size));
        bad.extend(varlen(20));
        bad.extend(fields);
        let err = parse_tagged_gtid(&bad).unwrap_err();
        assert!(err.0.contains("unknown required field 20"), "{err}");
    }

    #[test]
    fn tagged_previous_gtids_decode_into_the_set() {
        let sid = parse_uuid(UUID).unwrap();
        let mut data = ((1u64 << 56) | (2 << 8) | 1).to_le_bytes().to_vec();
        for (tag, start, end) in [("", 1u64, 11u64), ("etl", 1, 4)] {
            data.extend(sid);
            data.extend(varlen(tag.len() as u64));
            data.extend(tag.as_bytes());
            data.extend(1u64.to_le_bytes());
            data.extend(start.to_le_bytes());
            data.extend(end.to_le_bytes());
        }
        let mut set = GtidSet::default();
        parse_previous_gtids(&data, &mut set).unwrap();
        assert_eq!(set.to_string(), format!("{UUID}:1-10:etl:1-3"));
        assert!(parse_previous_gtids(&data[..data.len() - 1], &mut set).is_err());
    }
}
