//! # cdc-testkit
//!
//! Starts real, throwaway database servers for tests: PostgreSQL 15 with
//! `wal_level=logical`, MariaDB 10.11 with a ROW binlog and full row metadata, and
//! nats-server with JetStream. Each listens on 127.0.0.1 at a random free port,
//! keeps its data in a temporary directory, and is stopped and deleted when the
//! handle drops, also when a test panics. Servers also die with the test process
//! (parent-death signal), so a killed test run leaves nothing behind.
//!
//! A missing server binary is an error that names the package to install; tests
//! must fail with it, never skip.
//!
//! ```no_run
//! let pg = cdc_testkit::Postgres::start()?;
//! let client_config = pg.connection_string();
//! pg.sql("CREATE TABLE t (id int primary key)")?;
//! # Ok::<(), cdc_testkit::Error>(())
//! ```

mod error;
mod mariadb;
mod nats;
mod postgres;
mod process;
mod proxy;
mod test_data;
mod tls;

pub use error::Error;
pub use mariadb::MariaDb;
pub use nats::Nats;
pub use postgres::Postgres;
pub use proxy::SilentPathProxy;
pub use test_data::mariadb_test_file;
pub use tls::{TestCert, self_signed_cert};

/// Password of the non-superuser test accounts (`md5_user`, `scram_user` on
/// PostgreSQL, `cdc` on MariaDB). Test-only, never a real secret.
pub const PASSWORD: &str = "cdc-test-pw";
