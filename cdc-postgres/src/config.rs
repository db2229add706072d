//! Connection and replication settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use cdc_core::event::TableName;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A password that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; only for the authentication exchange.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Whether and how connections use TLS, with libpq's `sslmode` meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server accepts it, plain otherwise; the certificate is not
    /// checked (encryption against passive eavesdropping only).
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS or fail; the certificate must chain to `ssl_root_cert` and name the host.
    VerifyFull,
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// Settings of a PostgreSQL logical replication source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Server host name or address. Default `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Server port. Default 5432.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User name; needs `LOGIN REPLICATION`.
    pub user: String,
    /// Password for md5 or SCRAM-SHA-256; none for trust. Default none.
    #[serde(default)]
    pub password: Option<Password>,
    /// Database name.
    pub database: String,
    /// TLS for every connection (replication and queries). Default `prefer`.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// PEM file of the CA certificates trusted with `verify-full`. Default none.
    #[serde(default)]
    pub ssl_root_cert: Option<PathBuf>,
    /// Logical replication slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// Tables to read; the publication must include them.
    pub tables: Vec<TableName>,
    /// Create the publication for `tables` when it is missing. Default true.
    #[serde(default = "yes")]
    pub create_publication: bool,
    /// Emit a heartbeat message after this much idle time so the slot's
    /// confirmed position keeps advancing; also how often the stream checks
    /// that the publication still holds every declared table. Default 10 s.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval: Duration,
    /// Send a standby status update at least this often. Default 10 s.
    #[serde(default = "default_status")]
    pub status_interval: Duration,
    /// How long a request for an answer may go unanswered before the
    /// connection is presumed dead ([`Error::Stalled`]) and replaced (see
    /// `reconnect_attempts`): a network path that drops packets sends no
    /// reset. Also bounds connecting and every query of the stream.
    /// Each periodic status update asks the walsender to answer, which it
    /// does at once when idle, and at least every half `wal_sender_timeout`
    /// while it decodes a large transaction; so at start this is raised, with
    /// a log line, to exceed half the server's `wal_sender_timeout` plus
    /// `status_interval`. Must exceed `status_interval`. Default 60 s, as
    /// PostgreSQL's own `wal_receiver_timeout`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Reconnect attempts after the stream broke for a reason a retry can
    /// fix ([`Error::is_retryable`]: a dropped or stalled connection, a server
    /// restart) before the error is returned. The stream resumes right after
    /// the last whole transaction handed out, so nothing is lost or repeated;
    /// only a stream that broke after handing out part of a split transaction
    /// returns the error at once, for the host to restart from its log. Zero
    /// returns every error. Default 20 (about 35 s of server downtime).
    #[serde(default = "default_reconnects")]
    pub reconnect_attempts: u32,
    /// Memory (estimated decoded bytes) a transaction may buffer before it is
    /// handed to the change log in parts of about this size instead of whole,
    /// so a transaction of any size streams with bounded memory. Default 64 MiB.
    #[serde(default = "default_chunk")]
    pub transaction_chunk_bytes: u64,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    5432
}
fn yes() -> bool {
    true
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(10)
}
fn default_status() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_reconnects() -> u32 {
    20
}
fn default_chunk() -> u64 {
    64 << 20
}

/// Session settings that make every text value unambiguous for the decoder.
pub(crate) const SESSION_SETTINGS: [(&str, &str); 5] = [
    ("DateStyle", "ISO"),
    ("IntervalStyle", "iso_8601"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
];

impl PostgresConfig {
    /// A config with defaults for everything but the names.
    pub fn new(
        user: impl Into<String>,
        database: impl Into<String>,
        slot: impl Into<String>,
        publication: impl Into<String>,
        tables: Vec<TableName>,
    ) -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            user: user.into(),
            password: None,
            database: database.into(),
            ssl_mode: SslMode::default(),
            ssl_root_cert: None,
            slot: slot.into(),
            publication: publication.into(),
            tables,
            create_publication: true,
            heartbeat_interval: default_heartbeat(),
            status_interval: default_status(),
            idle_timeout: default_idle_timeout(),
            reconnect_attempts: default_reconnects(),
            transaction_chunk_bytes: default_chunk(),
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.into(),
            })
        };
        let slot_ok = !self.slot.is_empty()
            && self.slot.len() <= 63
            && self
                .slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !slot_ok {
            return bad("slot", "use 1 to 63 of [a-z0-9_]");
        }
        if self.publication.is_empty() {
            return bad("publication", "must not be empty");
        }
        if self.tables.is_empty() {
            return bad("tables", "declare at least one table");
        }
        if self.heartbeat_interval.is_zero() || self.status_interval.is_zero() {
            return bad("heartbeat_interval", "intervals must be above zero");
        }
        if self.idle_timeout <= self.status_interval {
            return bad(
                "idle_timeout",
                "must exceed status_interval (default 60 s), which paces the requests for an answer",
            );
        }
        if self.ssl_mode == SslMode::VerifyFull && self.ssl_root_cert.is_none() {
            return bad(
                "ssl_root_cert",
                "ssl_mode verify-full needs the PEM file of the CA that signed the server's certificate",
            );
        }
        if self.transaction_chunk_bytes == 0 {
            return bad(
                "transaction_chunk_bytes",
                "must be above zero (default 64 MiB)",
            );
        }
        Ok(())
    }

    /// A tokio-postgres config for ordinary queries, with the decoder's session settings.
    pub fn query_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name("cdc-postgres");
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        let options: Vec<String> = SESSION_SETTINGS
            .iter()
            .map(|(k, v)| format!("-c {k}={v}"))
            .collect();
        config.options(options.join(" "));
        config.ssl_mode(match self.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_the_password() {
        let mut config = PostgresConfig::new("u", "d", "s", "p", vec![TableName::new("a", "b")]);
        config.password = Some(Password::new("hunter2"));
        assert!(!format!("{config:?}").contains("hunter2"));
        config.validate().unwrap();
    }

    #[test]
    fn slot_names_postgres_rejects_are_rejected_up_front() {
        let config = PostgresConfig::new("u", "d", "Bad-Slot", "p", vec![TableName::new("a", "b")]);
        assert!(matches!(
            config.validate(),
            Err(Error::Config { field: "slot", .. })
        ));
    }
}
