//! A decoder for the pgoutput logical replication protocol (version 1).
//!
//! Messages borrow from the input buffer, so decoding a row copies nothing until
//! its values are converted. Every read is checked: any input, however short or
//! malformed, yields a message or a [`DecodeError`], never a panic.

mod message;
mod reader;

pub use message::{
    BeginMessage, ColumnData, CommitMessage, LogicalMessage, PgOutputMessage, RelationColumn,
    RelationMessage, ReplicaIdentity, TruncateMessage, TupleData, TypeMessage, decode,
};

/// A pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message ended before a field.
    #[error("pgoutput message truncated while reading {what} at byte {offset}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Byte offset in the message.
        offset: usize,
    },
    /// A string field is not UTF-8.
    #[error("pgoutput {what} at byte {offset} is not UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
        /// Byte offset in the message.
        offset: usize,
    },
    /// An unknown message or sub-message tag.
    #[error("unknown pgoutput {what} tag {tag:#04x} at byte {offset}")]
    UnknownTag {
        /// What kind of tag.
        what: &'static str,
        /// The tag byte.
        tag: u8,
        /// Byte offset in the message.
        offset: usize,
    },
    /// A count or length field is negative.
    #[error("negative {what} ({value}) in pgoutput message")]
    NegativeLength {
        /// The field.
        what: &'static str,
        /// The value read.
        value: i64,
    },
    /// The message is empty.
    #[error("empty pgoutput message")]
    Empty,
}
