//! A throwaway MariaDB 10.11 server with a ROW binlog and full row metadata.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::process::{ServerProcess, free_port, require, run};
use crate::{Error, PASSWORD};

const INSTALL: &str = "apt-get install -y mariadb-server";

/// A running MariaDB server on 127.0.0.1; stopped and deleted on drop.
///
/// Started with `--log-bin --binlog-format=ROW --binlog-row-metadata=FULL
/// --binlog-row-image=FULL --server-id=1 --gtid-strict-mode=1`. The account `cdc`
/// (password [`PASSWORD`]) has all privileges from any host, and the database
/// `test` exists. [`MariaDb::sql`] runs statements as root over the Unix socket.
#[derive(Debug)]
pub struct MariaDb {
    dir: TempDir,
    port: u16,
    server: Option<ServerProcess>,
    extra_args: Vec<String>,
}

impl MariaDb {
    /// Initializes a data directory and starts the server.
    pub fn start() -> Result<Self, Error> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with extra server options appended to the
    /// command line (e.g. `--log-bin-compress=ON`); they are kept on restart.
    pub fn start_with(extra_args: &[&str]) -> Result<Self, Error> {
        require(
            "MariaDB server",
            PathBuf::from("/usr/sbin/mariadbd"),
            INSTALL,
        )?;
        let install_db = require(
            "MariaDB server",
            PathBuf::from("/usr/bin/mariadb-install-db"),
            INSTALL,
        )?;
        require("MariaDB client", PathBuf::from("/usr/bin/mariadb"), INSTALL)?;
        let dir = tempfile::Builder::new()
            .prefix("cdc-mariadb-")
            .tempdir()
            .map_err(Error::io("creating a temporary directory"))?;
        std::fs::create_dir(dir.path().join("binlog"))
            .map_err(Error::io("creating the binlog directory"))?;
        // A private tmpdir: servers started at once must not share /tmp files.
        std::fs::create_dir(dir.path().join("tmp"))
            .map_err(Error::io("creating the server's tmpdir"))?;
        run(Command::new(install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .arg(format!("--tmpdir={}", dir.path().join("tmp").display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]))?;
        let mut db = Self {
            dir,
            port: 0,
            server: None,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
        };
        let mut last = None;
        for _ in 0..3 {
            db.port = free_port()?;
            match db.launch() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        db.sql(&format!(
            "CREATE USER 'cdc'@'%' IDENTIFIED BY '{PASSWORD}';
             GRANT ALL PRIVILEGES ON *.* TO 'cdc'@'%' WITH GRANT OPTION;
             CREATE DATABASE IF NOT EXISTS test;"
        ))?;
        Ok(db)
    }

    fn launch(&mut self) -> Result<(), Error> {
        let path = self.dir.path();
        let mut command = Command::new("/usr/sbin/mariadbd");
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", path.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                path.join("mariadbd.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", path.join("tmp").display()))
            .arg(format!(
                "--log-bin={}",
                path.join("binlog").join("mysql-bin").display()
            ))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--server-id=1",
                "--binlog-format=ROW",
                "--binlog-row-metadata=FULL",
                "--binlog-row-image=FULL",
                "--gtid-strict-mode=1",
                "--sync-binlog=0",
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=100",
                "--local-infile=1",
            ])
            .args(&self.extra_args);
        let mut server = ServerProcess::spawn(command, path.join("server.log"))?;
        let socket = self.socket();
        let ready = server.wait_ready("MariaDB", || {
            Command::new("/usr/bin/mariadb-admin")
                .arg("--no-defaults")
                .arg(format!("--socket={}", socket.display()))
                .args(["-uroot", "--connect-timeout=1", "ping"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        self.server = Some(server);
        ready
    }

    /// Runs SQL as root over the Unix socket through the `mariadb` client; returns
    /// its batch output (tab-separated columns, no headers).
    pub fn sql(&self, sql: &str) -> Result<String, Error> {
        run(Command::new("/usr/bin/mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", sql]))
    }

    /// Shuts the server down cleanly.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop_with("TERM");
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

    /// The test account (`cdc`).
    pub fn user(&self) -> &str {
        "cdc"
    }

    /// The test account's password ([`PASSWORD`]).
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The test database (`test`).
    pub fn database(&self) -> &str {
        "test"
    }

    /// A `mysql://` URL for the test account and database.
    pub fn url(&self) -> String {
        format!("mysql://cdc:{PASSWORD}@127.0.0.1:{}/test", self.port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding the binlog files (`mysql-bin.000001`, ...).
    pub fn binlog_dir(&self) -> PathBuf {
        self.dir.path().join("binlog")
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mariadbd.sock")
    }

    /// The temporary root directory of this instance.
    pub fn root_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop_with("KILL");
        }
    }
}
