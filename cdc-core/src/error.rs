//! The crate's error type.

use std::path::PathBuf;

/// Errors from cdc-core. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed; retrying may help if the cause was
    /// transient (disk full, too many open files).
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record payload failed validation.
    #[error("corrupt record payload at offset {offset}")]
    Payload {
        /// Log offset of the record.
        offset: u64,
        /// What validation found.
        #[source]
        source: crate::codec::PayloadError,
    },
    /// Configuration is invalid; fix the named field.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// Result alias for cdc-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
