//! Source configuration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use cdc_core::event::TableName;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself, for handing to the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// TLS to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain TCP (default; loopback and trusted networks only).
    #[default]
    Disabled,
    /// TLS with certificate and host name verification, against
    /// [`MySqlConfig::ssl_root_cert`] when set, else the system roots.
    Verified,
    /// TLS without certificate verification (encrypts, does not authenticate).
    Unverified,
}

/// Where a reader with no stored position starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The server's current position: only changes from now on (default).
    #[default]
    Current,
    /// The oldest binlog file the server still has.
    Earliest,
}

/// Configuration of a [`MySqlSource`](crate::MySqlSource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MySqlConfig {
    /// Server host name or IP.
    pub host: String,
    /// Server port. Default 3306.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User with REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG MONITOR)
    /// and SELECT on the tables; an initial snapshot on MySQL also needs RELOAD
    /// (see [`SnapshotSync`](crate::snapshot::SnapshotSync)).
    pub user: String,
    /// The user's password.
    #[serde(default)]
    pub password: Password,
    /// Replica server id this reader registers with; unique among the server's
    /// replicas. Default 0x5cdc_0001.
    #[serde(default = "default_server_id")]
    pub server_id: u32,
    /// Tables to read; empty reads every table.
    #[serde(default)]
    pub tables: Vec<TableName>,
    /// TLS mode. Default disabled.
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM file of the certificate authorities that `tls = verified` trusts
    /// instead of the system roots: a private CA, or a cloud provider's bundle
    /// (Amazon RDS, Azure, Cloud SQL). Default none (the system roots).
    #[serde(default)]
    pub ssl_root_cert: Option<PathBuf>,
    /// Where to start without a stored position. Default current.
    #[serde(default)]
    pub start_from: StartFrom,
    /// Server heartbeat interval while idle. Default 5 s.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: Duration,
    /// With no event and no heartbeat for this long, the connection is
    /// presumed dead and the source reconnects: a network path that drops
    /// packets sends no reset, and the stream would wait forever. Must exceed
    /// `heartbeat` and the time the largest event takes to transfer. Default
    /// 60 s (MySQL replicas' `replica_net_timeout`).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Reconnect attempts after a dropped connection before the error is
    /// returned. Default 20 (about 30 s of server downtime).
    #[serde(default = "default_reconnects")]
    pub reconnect_attempts: u32,
    /// A transaction whose changes take more than about this many bytes in
    /// memory is spilled to disk and delivered in parts of about this size
    /// (see `cdc_core::Source`). Default 64 MiB.
    #[serde(default = "default_chunk_bytes")]
    pub transaction_chunk_bytes: u64,
    /// Directory for the spill files of large transactions. Default: the
    /// system temp dir.
    #[serde(default)]
    pub spill_dir: Option<PathBuf>,
}

fn default_port() -> u16 {
    3306
}
fn default_server_id() -> u32 {
    0x5cdc_0001
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(5)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_reconnects() -> u32 {
    20
}
fn default_chunk_bytes() -> u64 {
    64 << 20
}

impl MySqlConfig {
    /// A config with defaults for everything but the connection.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: Password,
    ) -> Self {
        MySqlConfig {
            host: host.into(),
            port,
            user: user.into(),
            password,
            server_id: default_server_id(),
            tables: Vec::new(),
            tls: TlsMode::default(),
            ssl_root_cert: None,
            start_from: StartFrom::default(),
            heartbeat: default_heartbeat(),
            idle_timeout: default_idle_timeout(),
            reconnect_attempts: default_reconnects(),
            transaction_chunk_bytes: default_chunk_bytes(),
            spill_dir: None,
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.host.is_empty() {
            return Err(Error::Config {
                field: "host",
                reason: "must not be empty".into(),
            });
        }
        if let Some(path) = &self.ssl_root_cert {
            if self.tls != TlsMode::Verified {
                return Err(Error::Config {
                    field: "ssl_root_cert",
                    reason: "is only used with tls = verified; set tls or remove it".into(),
                });
            }
            if !path.is_file() {
                return Err(Error::Config {
                    field: "ssl_root_cert",
                    reason: format!("{} is not a readable file", path.display()),
                });
            }
        }
        if self.server_id == 0 {
            return Err(Error::Config {
                field: "server_id",
                reason: "0 is reserved; choose a unique non-zero id".into(),
            });
        }
        if self.heartbeat.is_zero() || self.heartbeat > Duration::from_secs(4_294_967) {
            return Err(Error::Config {
                field: "heartbeat",
                reason: "must be between 1 ms and 4294967 s".into(),
            });
        }
        if self.idle_timeout <= self.heartbeat {
            return Err(Error::Config {
                field: "idle_timeout",
                reason: format!(
                    "must exceed heartbeat ({:?}); a few heartbeats is a good size",
                    self.heartbeat
                ),
            });
        }
        if self.transaction_chunk_bytes == 0
            || usize::try_from(self.transaction_chunk_bytes).is_err()
        {
            return Err(Error::Config {
                field: "transaction_chunk_bytes",
                reason: "must be at least 1 and fit in memory (64 MiB is a good size)".into(),
            });
        }
        Ok(())
    }

    /// Driver options for a connection.
    pub(crate) fn opts(&self) -> mysql_async::Opts {
        let mut b = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.expose().to_owned()))
            .prefer_socket(false)
            .stmt_cache_size(16);
        b = match self.tls {
            TlsMode::Disabled => b,
            TlsMode::Verified => b.ssl_opts(match &self.ssl_root_cert {
                // A pinned CA is the only trust anchor, as with PostgreSQL's
                // sslrootcert: the system roots would widen it.
                Some(ca) => mysql_async::SslOpts::default()
                    .with_root_certs(vec![ca.clone().into()])
                    .with_disable_built_in_roots(true),
                None => mysql_async::SslOpts::default(),
            }),
            TlsMode::Unverified => b.ssl_opts(
                mysql_async::SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
        };
        b.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let cfg = MySqlConfig::new("h", 1, "u", Password::new("hunter2"));
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_fields_and_zero_server_id_are_rejected() {
        let bad = r#"{"host":"h","user":"u","nope":1}"#;
        assert!(serde_json::from_str::<MySqlConfig>(bad).is_err());
        let cfg: MySqlConfig =
            serde_json::from_str(r#"{"host":"h","user":"u","server_id":0}"#).unwrap();
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn the_idle_timeout_defaults_to_a_minute_and_must_exceed_the_heartbeat() {
        let mut cfg: MySqlConfig = serde_json::from_str(r#"{"host":"h","user":"u"}"#).unwrap();
        assert_eq!(cfg.idle_timeout, Duration::from_secs(60));
        cfg.validate().unwrap();
        cfg.idle_timeout = cfg.heartbeat;
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }
}
