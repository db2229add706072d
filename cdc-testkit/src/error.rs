use std::path::PathBuf;
use std::time::Duration;

/// Why a test server could not be started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server's binary is not installed; the message names the package.
    #[error("{server} is not installed ({path} not found); install it with `{install}`")]
    MissingBinary {
        /// Which server.
        server: &'static str,
        /// Where the binary was looked for.
        path: PathBuf,
        /// The command that installs it.
        install: &'static str,
    },
    /// A test-data file from a Debian package is not installed.
    #[error("{path} not found; install it with `{install}`")]
    MissingTestData {
        /// Where the file was looked for.
        path: PathBuf,
        /// The command that installs it.
        install: &'static str,
    },
    /// A file-system or process call failed.
    #[error("{action}: {source}")]
    Io {
        /// What the kit was doing.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (initdb, psql, mariadb, ...) exited with an error.
    #[error("`{command}` failed with {status}: {output}")]
    Command {
        /// The program and its first arguments.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (and stdout).
        output: String,
    },
    /// The server did not accept connections in time; the tail of its log says why.
    #[error("{server} did not become ready within {waited:?}; last log lines:\n{log_tail}")]
    NotReady {
        /// Which server.
        server: &'static str,
        /// How long the kit waited.
        waited: Duration,
        /// The end of the server's log.
        log_tail: String,
    },
}

impl Error {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
