//! The crate's error type.

use cdc_core::event::TableName;
use mongodb::error::ErrorKind;

/// Errors from the MongoDB source. Each variant says what to do about it and
/// whether retrying can help ([`Error::is_retryable`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range. Fix the field.
    #[error("invalid configuration: {field} {reason}")]
    InvalidConfig {
        /// The field to fix.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The driver or the server failed; [`Error::is_retryable`] tells whether a
    /// new `start` may help.
    #[error("mongodb {context} failed: {source}")]
    Driver {
        /// What the source was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },
    /// The server is a standalone `mongod`, which has no change streams.
    #[error(
        "the server has no change streams: run it as a replica set (a one-node \
         one will do: `mongod --replSet rs0`, then `rs.initiate()`)"
    )]
    NotReplicaSet,
    /// The user lacks a privilege the change stream needs.
    #[error(
        "the user may not open a change stream: grant it the `changeStream` and \
         `find` actions on the declared collections ({message})"
    )]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The resume point fell out of the server's oplog: changes after it are
    /// gone. Backfill the collections, then start from the current point.
    #[error(
        "the oplog no longer holds the resume point (cluster time {cluster_time}); \
         backfill the collections and start without a position, and make the \
         oplog longer (`replSetResizeOplog`) so this reader can lag further"
    )]
    NeedsBackfill {
        /// The cluster time (seconds << 32 | increment) of the lost position.
        cluster_time: u64,
    },
    /// Post-images were asked for and the server has none for a collection.
    #[error(
        "the server keeps no post-images for a declared collection: run \
         `collMod` with `changeStreamPreAndPostImages: {{enabled: true}}` on it, \
         or use full_document = update_lookup ({message})"
    )]
    NoPostImages {
        /// The server's message.
        message: String,
    },
    /// The position to resume from is not a MongoDB position.
    #[error("cannot resume a MongoDB stream from a {found} position")]
    ForeignPosition {
        /// The kind of position given.
        found: &'static str,
    },
    /// A change event did not have the documented shape. Retrying does not
    /// help; report it with the server version.
    #[error("malformed change event: {reason}")]
    MalformedEvent {
        /// What was wrong.
        reason: String,
    },
    /// A declared collection was renamed; its changes now come under a name
    /// this reader does not read. Declare the new name (and backfill it), or
    /// rename it back.
    #[error(
        "declared collection {from} was renamed to {to}; declare {to} instead \
         and backfill it, or rename it back"
    )]
    CollectionRenamed {
        /// The declared name.
        from: TableName,
        /// The new name.
        to: TableName,
    },
    /// Another collection was renamed onto a declared name, replacing its
    /// documents with ones this reader never saw. Backfill the collection.
    #[error(
        "collection {by} was renamed onto declared collection {table}, replacing \
         its documents; backfill {table}"
    )]
    CollectionReplaced {
        /// The declared name.
        table: TableName,
        /// The collection renamed onto it.
        by: TableName,
    },
    /// The server did not answer within the idle timeout: the network path is
    /// probably dead. Retryable.
    #[error("mongodb did not answer while {context} for {waited:?}; the network path may be down")]
    Stalled {
        /// What the source was waiting for.
        context: &'static str,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// `next_batch` was called before `start`, or after an error.
    #[error("the source is not started: call start first")]
    NotStarted,
}

/// Server error codes after which a new change stream may succeed.
const RETRYABLE_CODES: [i32; 17] = [
    6,     // HostUnreachable
    7,     // HostNotFound
    63,    // StaleShardVersion
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    133,   // FailedToSatisfyReadPreference
    150,   // StaleEpoch
    189,   // PrimarySteppedDown
    234,   // RetryChangeStream
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13388, // StaleConfig
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

impl Error {
    /// Whether calling `start` again may succeed without a change elsewhere:
    /// dropped connections, elections, shutdowns and stale routing are; bad
    /// configuration, missing privileges, a lost resume point and renamed
    /// collections are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Driver { source, .. } => driver_error_is_retryable(source),
            Error::Stalled { .. } => true,
            _ => false,
        }
    }

    /// Maps a driver error to the variant that names the fix, where there is one.
    pub(crate) fn driver(
        context: &'static str,
        source: mongodb::error::Error,
        cluster_time: u64,
    ) -> Error {
        if let ErrorKind::Command(command) = source.kind.as_ref() {
            match command.code {
                // ChangeStreamHistoryLost, and the older "resume point no longer in oplog".
                286 | 280 => return Error::NeedsBackfill { cluster_time },
                // "The $changeStream stage is only supported on replica sets".
                40573 => return Error::NotReplicaSet,
                // Unauthorized.
                13 => {
                    return Error::Unauthorized {
                        message: command.message.clone(),
                    };
                }
                // NoMatchingDocument: a required post-image is missing.
                47 if command.message.contains("post-image") => {
                    return Error::NoPostImages {
                        message: command.message.clone(),
                    };
                }
                _ => {}
            }
        }
        Error::Driver { context, source }
    }
}

/// Awaits a driver call for at most `waited`: past it, the retryable
/// [`Error::Stalled`] (a dead network path sends no reset); a driver error
/// becomes the variant that names its fix ([`Error::driver`]).
pub(crate) async fn within<T>(
    waited: std::time::Duration,
    context: &'static str,
    cluster_time: u64,
    call: impl std::future::Future<Output = mongodb::error::Result<T>>,
) -> Result<T> {
    tokio::time::timeout(waited, call)
        .await
        .map_err(|_| Error::Stalled { context, waited })?
        .map_err(|e| Error::driver(context, e, cluster_time))
}

fn driver_error_is_retryable(error: &mongodb::error::Error) -> bool {
    if error.contains_label("ResumableChangeStreamError")
        || error.contains_label("RetryableWriteError")
    {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::DnsResolve { .. } => true,
        ErrorKind::Command(command) => RETRYABLE_CODES.contains(&command.code),
        _ => false,
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
