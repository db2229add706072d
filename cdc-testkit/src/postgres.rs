//! A throwaway PostgreSQL 15 server with logical replication enabled.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::process::{Account, ServerProcess, free_port, require, run};
use crate::{Error, PASSWORD};

const INSTALL: &str = "apt-get install -y postgresql";
const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL 15 server on 127.0.0.1; stopped and deleted on drop.
///
/// Configured with `wal_level=logical`, 10 replication slots and WAL senders, and
/// `fsync=off` (tests do not survive power loss; restarts are clean shutdowns).
/// Authentication: the superuser `postgres` is trusted; `md5_user` (md5) and
/// `scram_user` (SCRAM-SHA-256) have password [`PASSWORD`] and `REPLICATION`.
/// The binaries come from `$CDC_PG_BIN` or `/usr/lib/postgresql/15/bin`.
#[derive(Debug)]
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    account: Option<Account>,
    server: Option<ServerProcess>,
}

impl Postgres {
    /// Initializes a data directory and starts the server.
    pub fn start() -> Result<Self, Error> {
        let bin = std::env::var_os("CDC_PG_BIN")
            .map_or_else(|| PathBuf::from(DEFAULT_BIN), PathBuf::from);
        require("PostgreSQL 15", bin.join("postgres"), INSTALL)?;
        require(
            "PostgreSQL client tools",
            PathBuf::from("/usr/bin/psql"),
            INSTALL,
        )?;
        let account = Account::unprivileged("postgres", INSTALL)?;
        let dir = tempfile::Builder::new()
            .prefix("cdc-pg-")
            .tempdir()
            .map_err(Error::io("creating a temporary directory"))?;
        let data = dir.path().join("data");
        if let Some(account) = &account {
            account.own(dir.path())?;
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.args([
            "--no-sync",
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
        ]);
        initdb.arg(&data);
        if let Some(account) = &account {
            account.apply(&mut initdb);
        }
        run(&mut initdb)?;

        let mut pg = Self {
            dir,
            bin,
            port: 0,
            account,
            server: None,
        };
        pg.write_config()?;
        pg.launch_with_retries()?;
        pg.create_roles()?;
        Ok(pg)
    }

    fn data_path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_config(&self) -> Result<(), Error> {
        let data = self.data_path();
        let hba = "\
local all all trust
host all md5_user 127.0.0.1/32 md5
host all scram_user 127.0.0.1/32 scram-sha-256
host replication md5_user 127.0.0.1/32 md5
host replication scram_user 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
";
        fs::write(data.join("pg_hba.conf"), hba).map_err(Error::io("writing pg_hba.conf"))?;
        let conf = format!(
            "\n# cdc-testkit\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = logical\nmax_replication_slots = 10\nmax_wal_senders = 10\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 60\nshared_buffers = 64MB\nlog_min_messages = warning\n",
            data.display()
        );
        let mut existing = fs::read_to_string(data.join("postgresql.conf"))
            .map_err(Error::io("reading postgresql.conf"))?;
        existing.push_str(&conf);
        fs::write(data.join("postgresql.conf"), existing)
            .map_err(Error::io("writing postgresql.conf"))
    }

    fn launch_with_retries(&mut self) -> Result<(), Error> {
        let mut last = None;
        for _ in 0..3 {
            self.port = free_port()?;
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::NotReady {
            server: "PostgreSQL",
            waited: Default::default(),
            log_tail: String::new(),
        }))
    }

    fn launch(&mut self) -> Result<(), Error> {
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.data_path())
            .arg("-p")
            .arg(self.port.to_string());
        if let Some(account) = &self.account {
            account.apply(&mut command);
        }
        let log = self.dir.path().join("server.log");
        let mut server = ServerProcess::spawn(command, log)?;
        if let Some(account) = &self.account {
            account.own(&self.dir.path().join("server.log"))?;
        }
        let (bin, port) = (self.bin.clone(), self.port);
        let ready = server.wait_ready("PostgreSQL", || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
                .status()
                .is_ok_and(|s| s.success())
        });
        self.server = Some(server);
        ready
    }

    fn create_roles(&self) -> Result<(), Error> {
        self.sql(&format!(
            "SET password_encryption = 'md5';
             CREATE ROLE md5_user LOGIN REPLICATION PASSWORD '{PASSWORD}';
             SET password_encryption = 'scram-sha-256';
             CREATE ROLE scram_user LOGIN REPLICATION PASSWORD '{PASSWORD}';
             GRANT ALL ON SCHEMA public TO md5_user, scram_user;
             GRANT CREATE ON DATABASE postgres TO md5_user, scram_user;"
        ))
        .map(drop)
    }

    /// Runs SQL as the superuser through `psql`; returns unaligned, tuples-only output
    /// (`|` between columns). Stops at the first error.
    pub fn sql(&self, sql: &str) -> Result<String, Error> {
        self.sql_in("postgres", sql)
    }

    /// [`sql`](Self::sql) in another database of the server.
    pub fn sql_in(&self, database: &str, sql: &str) -> Result<String, Error> {
        run(Command::new("/usr/bin/psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql]))
    }

    /// Turns TLS on with a PEM certificate (chain) and its private key, and
    /// restarts the server on the same port. Plain connections keep working,
    /// so a client chooses with its `sslmode`.
    pub fn enable_tls(&mut self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data_path();
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        fs::write(&cert, cert_pem).map_err(Error::io("writing server.crt"))?;
        fs::write(&key, key_pem).map_err(Error::io("writing server.key"))?;
        // PostgreSQL refuses a key others can read.
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .map_err(Error::io("restricting server.key"))?;
        if let Some(account) = &self.account {
            account.own(&cert)?;
            account.own(&key)?;
        }
        let mut conf = fs::read_to_string(data.join("postgresql.conf"))
            .map_err(Error::io("reading postgresql.conf"))?;
        conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        fs::write(data.join("postgresql.conf"), conf)
            .map_err(Error::io("writing postgresql.conf"))?;
        self.restart()
    }

    /// Stops the server with a fast shutdown (clients disconnected, clean checkpoint).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop_with("INT");
        }
    }

    /// Stops the server and starts it again on the same port and data directory.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.launch()
    }

    /// The host to connect to (`127.0.0.1`).
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser name (`postgres`, trusted, no password).
    pub fn user(&self) -> &str {
        "postgres"
    }

    /// The database name (`postgres`).
    pub fn database(&self) -> &str {
        "postgres"
    }

    /// A tokio-postgres / libpq key-value connection string for the superuser.
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_path()
    }

    /// The directory holding `postgres`, `pg_ctl`, `pg_recvlogical` and friends.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop_with("QUIT");
        }
    }
}
