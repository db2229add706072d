//! Resume tokens as change-log positions.
//!
//! A position is `SourcePosition::Mongo { resume_token, cluster_time }`. The
//! token is stored so that byte order is the server's order: a token of the
//! usual form `{_data: "<hex>"}` is stored as the hex text, whose byte order
//! is the order of the key string it encodes; any other form is stored as a
//! zero byte followed by the token document's BSON, so it cannot be mistaken
//! for hex. Positions compare by cluster time first, so the two forms never
//! need to be compared with each other in practice.

use bson::{RawBsonRef, RawDocument, RawDocumentBuf, rawdoc};
use cdc_core::event::SourcePosition;
use mongodb::change_stream::event::ResumeToken;

use crate::error::Error;

/// Marks a token stored as BSON rather than as hex text.
const RAW_FORM: u8 = 0;

/// The position of a token seen at `cluster_time` (seconds << 32 | increment).
pub(crate) fn position(token: &RawDocument, cluster_time: u64) -> SourcePosition {
    SourcePosition::Mongo {
        resume_token: stored(token),
        cluster_time,
    }
}

/// A token's stored form (see the module doc).
pub(crate) fn stored(token: &RawDocument) -> Vec<u8> {
    let mut fields = token.iter();
    if let (Some(Ok(("_data", RawBsonRef::String(hex)))), None) = (fields.next(), fields.next())
        && hex.bytes().next().is_some_and(|b| b != RAW_FORM)
    {
        return hex.as_bytes().to_vec();
    }
    let mut raw = Vec::with_capacity(token.as_bytes().len() + 1);
    raw.push(RAW_FORM);
    raw.extend_from_slice(token.as_bytes());
    raw
}

/// The token document back from its stored form.
pub(crate) fn document(stored: &[u8]) -> Result<RawDocumentBuf, Error> {
    let malformed = |reason: &str| Error::MalformedEvent {
        reason: format!("stored resume token: {reason}"),
    };
    match stored.split_first() {
        None => Err(malformed("empty")),
        Some((&RAW_FORM, bson)) => RawDocumentBuf::from_bytes(bson.to_vec())
            .map_err(|e| malformed(&format!("not a BSON document ({e})"))),
        Some(_) => {
            let hex = std::str::from_utf8(stored).map_err(|_| malformed("not UTF-8 text"))?;
            Ok(rawdoc! { "_data": hex })
        }
    }
}

/// The driver's token for a stored one.
pub(crate) fn resume_token(stored: &[u8]) -> Result<ResumeToken, Error> {
    let document = document(stored)?;
    bson::from_slice(document.as_bytes()).map_err(|e| Error::MalformedEvent {
        reason: format!("stored resume token is not one the driver accepts ({e})"),
    })
}

/// The cluster time a token of the usual form starts with: key-string type
/// byte 130 (a timestamp), then seconds and increment, big-endian.
pub(crate) fn cluster_time(token: &RawDocument) -> Option<u64> {
    let hex = token.get_str("_data").ok()?.as_bytes();
    let (kind, time) = (hex.get(..2)?, hex.get(2..18)?);
    // Bytes, not `str` slices: the text may hold multi-byte characters.
    if !kind.eq_ignore_ascii_case(b"82") || !time.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(time).ok()?, 16).ok()
}

/// A driver token as a document.
pub(crate) fn from_driver(token: &ResumeToken) -> Option<RawDocumentBuf> {
    bson::to_raw_document_buf(token).ok()
}

/// Seconds and increment in one number, ordered as the server orders them.
pub(crate) fn pack(timestamp: bson::Timestamp) -> u64 {
    (u64::from(timestamp.time) << 32) | u64::from(timestamp.increment)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8265A1B2C3000000012B022C0100296E5A1004";

    #[test]
    fn a_usual_token_is_stored_as_its_hex_and_comes_back() {
        let token = rawdoc! { "_data": HEX };
        let position = position(&token, 7);
        let SourcePosition::Mongo { resume_token, .. } = &position else {
            panic!("{position:?}");
        };
        assert_eq!(resume_token, HEX.as_bytes());
        assert_eq!(document(resume_token).unwrap(), token);
        resume_token_accepts(resume_token);
    }

    #[test]
    fn another_form_is_stored_whole() {
        let token = rawdoc! { "_data": HEX, "_typeBits": bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1] } };
        let SourcePosition::Mongo { resume_token, .. } = position(&token, 7) else {
            unreachable!()
        };
        assert_eq!(resume_token[0], RAW_FORM);
        assert_eq!(document(&resume_token).unwrap(), token);
        resume_token_accepts(&resume_token);
    }

    fn resume_token_accepts(stored: &[u8]) {
        let token = resume_token(stored).unwrap();
        let back = from_driver(&token).unwrap();
        assert_eq!(back, document(stored).unwrap());
    }

    #[test]
    fn the_cluster_time_is_read_from_the_token() {
        let token = rawdoc! { "_data": HEX };
        assert_eq!(cluster_time(&token), Some((0x65A1_B2C3 << 32) | 1));
        assert_eq!(cluster_time(&rawdoc! { "_data": "81" }), None);
        assert_eq!(cluster_time(&rawdoc! { "_data": "82zz" }), None);
        assert_eq!(cluster_time(&rawdoc! { "other": 1 }), None);
        // Found by the mongo_events fuzz target: a character across byte 2.
        assert_eq!(
            cluster_time(&rawdoc! { "_data": "8é65A1B2C3000000012B" }),
            None
        );
        assert_eq!(
            cluster_time(&rawdoc! { "_data": "82+5A1B2C3000000012B" }),
            None
        );
    }

    #[test]
    fn later_tokens_of_one_transaction_order_after_earlier_ones() {
        let first = position(&rawdoc! { "_data": "8265A1B2C3000000012B0429" }, 1);
        let second = position(&rawdoc! { "_data": "8265A1B2C3000000012B0429A" }, 1);
        let third = position(&rawdoc! { "_data": "8265A1B2C3000000012B042A" }, 1);
        assert!(first.compare(&second).unwrap().is_lt());
        assert!(second.compare(&third).unwrap().is_lt());
    }

    #[test]
    fn garbage_stored_tokens_are_errors() {
        assert!(document(&[]).is_err());
        assert!(document(&[0, 1, 2]).is_err());
        assert!(document(&[0xFF, 0xFE]).is_err());
    }
}
