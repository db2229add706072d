//! Connection and replication settings.

use std::fmt;
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
    /// confirmed position keeps advancing. Default 10 s.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval: Duration,
    /// Send a standby status update at least this often. Default 10 s.
    #[serde(default = "default_status")]
    pub status_interval: Duration,
    /// Largest transaction (decoded bytes) buffered before it is handed over
    /// whole; bigger ones fail with a clear error. Default 1 GiB.
    #[serde(default = "default_max_tx")]
    pub max_transaction_bytes: u64,
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
fn default_max_tx() -> u64 {
    1 << 30
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
            slot: slot.into(),
            publication: publication.into(),
            tables,
            create_publication: true,
            heartbeat_interval: default_heartbeat(),
            status_interval: default_status(),
            max_transaction_bytes: default_max_tx(),
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
