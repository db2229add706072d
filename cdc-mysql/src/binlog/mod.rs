//! Binlog framing: event headers, generic events, checked byte reading, and
//! the frame reader for binlog files.

pub mod cursor;
pub mod event;
pub mod frame;
pub mod gtid_event;
pub mod payload;
#[doc(hidden)]
pub mod writer;
