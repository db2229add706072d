//! A throwaway nats-server with JetStream.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::Error;
use crate::process::{ServerProcess, free_port, require};

const INSTALL: &str = "apt-get install -y nats-server";

/// A running nats-server with JetStream on 127.0.0.1; stopped and deleted on drop.
#[derive(Debug)]
pub struct Nats {
    _dir: TempDir,
    port: u16,
    _server: ServerProcess,
}

impl Nats {
    /// Starts the server with JetStream storage in a temporary directory.
    pub fn start() -> Result<Self, Error> {
        let bin = require(
            "nats-server",
            PathBuf::from("/usr/sbin/nats-server"),
            INSTALL,
        )?;
        let dir = tempfile::Builder::new()
            .prefix("cdc-nats-")
            .tempdir()
            .map_err(Error::io("creating a temporary directory"))?;
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let mut command = Command::new(&bin);
            command
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(dir.path());
            let mut server = ServerProcess::spawn(command, dir.path().join("server.log"))?;
            match server.wait_ready("nats-server", || greets(port)) {
                Ok(()) => {
                    return Ok(Self {
                        _dir: dir,
                        port,
                        _server: server,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::NotReady {
            server: "nats-server",
            waited: Duration::ZERO,
            log_tail: String::new(),
        }))
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Whether a NATS server answers on `port` with its `INFO` greeting.
fn greets(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO")
}
