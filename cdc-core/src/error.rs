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
    /// A record could not be serialized (a bug or resource exhaustion, not bad
    /// data); retrying will not help.
    #[error("record {index} of the append could not be serialized")]
    Encode {
        /// Position of the record within the append call.
        index: u64,
        /// What the serializer reported.
        #[source]
        source: rkyv::rancor::Error,
    },
    /// Configuration is invalid; fix the named field.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A segment of the change log was written in another format: by another
    /// release (`version`) or by a build whose rkyv features differ (`layout`:
    /// byte order, alignment and pointer width, which Cargo unifies across the
    /// host's build). Retrying does not help.
    #[error(
        "{path} is in change-log format version {version} (archive layout {layout:#x}); this build \
         reads version {expected_version} (layout {expected_layout:#x}). Read it with the release \
         and rkyv features that wrote it, or move the log directory away and re-backfill its \
         consumers"
    )]
    UnsupportedFormat {
        /// The segment file.
        path: PathBuf,
        /// Format version in its header.
        version: u32,
        /// Archive layout in its header.
        layout: u32,
        /// Format version this build writes and reads.
        expected_version: u32,
        /// Archive layout of this build.
        expected_layout: u32,
    },
    /// A file of the change log or a cursor failed its checksum or structure
    /// checks. Retrying does not help: restore the file from a backup, or remove
    /// the damaged segment (and re-backfill the consumers that needed it).
    #[error(
        "corrupt data in {path} at byte {offset}: {reason}; retrying will not help, restore or remove the file"
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position in that file where the damage starts.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The requested offset was removed by retention; re-backfill the consumer
    /// (its cursor is in the "needs backfill" state) or read from `oldest`.
    #[error(
        "offset {requested} was removed by retention (oldest retained offset is {oldest}); re-backfill the consumer"
    )]
    OffsetBehindRetention {
        /// The offset asked for.
        requested: u64,
        /// The oldest offset still in the log.
        oldest: u64,
    },
    /// A cursor with this name already exists; commit to it or delete it first.
    #[error("cursor {name:?} already exists; commit to it, or delete it first")]
    CursorExists {
        /// The cursor name.
        name: String,
    },
    /// No cursor with this name exists; create it first.
    #[error("cursor {name:?} does not exist; create it first")]
    CursorNotFound {
        /// The cursor name.
        name: String,
    },
    /// A cursor commit would move the cursor backwards, which would replay or
    /// lose records silently. Fix the caller; retrying will not help.
    #[error("cursor {name:?} is at {current}; committing {requested} would move it backwards")]
    CursorRegression {
        /// The cursor name.
        name: String,
        /// The committed offset.
        current: u64,
        /// The offset that was refused.
        requested: u64,
    },
    /// A cursor name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid cursor name {name:?}: use 1 to 128 characters of A-Z a-z 0-9 _ . -")]
    InvalidCursorName {
        /// The refused name.
        name: String,
    },
    /// One append call encodes to more bytes than a batch can hold; split it.
    #[error(
        "append of {bytes} bytes exceeds the batch limit of {max} bytes; split it into smaller appends"
    )]
    BatchTooLarge {
        /// Encoded size of the append.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// An earlier write or fsync of the log failed, so the state of the tail on
    /// disk is unknown. Retrying the append will not help: close and reopen the
    /// log, which recovers the tail from disk.
    #[error(
        "the change log writer stopped after an i/o failure ({reason}); reopen the log to recover"
    )]
    WriterFailed {
        /// What failed first.
        reason: String,
    },
    /// Another `ChangeLog` (in this or another process) has the directory open;
    /// close it first. Retrying helps once the other instance has closed.
    #[error("the change log in {path} is already open elsewhere; close the other instance first")]
    Locked {
        /// The log directory.
        path: PathBuf,
    },
    /// The change log was closed; open it again to continue.
    #[error("the change log is closed; open it again")]
    Closed,
}

/// Result alias for cdc-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A corruption error at `offset` in `path`.
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}
