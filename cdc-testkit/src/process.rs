//! Spawning server processes that die with the test, running helper commands,
//! and waiting for readiness.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// How long a server may take to accept connections.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A system account to run a server as (PostgreSQL refuses to run as root).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Account {
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// `None` when this process is not root (servers then run as ourselves);
    /// otherwise the named system account, which must exist.
    pub(crate) fn unprivileged(name: &str, install: &'static str) -> Result<Option<Self>, Error> {
        let me = fs::metadata("/proc/self").map_err(Error::io("reading /proc/self"))?;
        if me.uid() != 0 {
            return Ok(None);
        }
        let passwd = fs::read_to_string("/etc/passwd").map_err(Error::io("reading /etc/passwd"))?;
        passwd
            .lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                (fields.next() == Some(name)).then(|| {
                    let uid = fields.nth(1)?.parse().ok()?;
                    let gid = fields.next()?.parse().ok()?;
                    Some(Account { uid, gid })
                })?
            })
            .map(Some)
            .ok_or(Error::MissingBinary {
                server: "a system account for the server",
                path: PathBuf::from(format!("/etc/passwd entry `{name}`")),
                install,
            })
    }

    /// Hands `path` (recursively) to this account.
    pub(crate) fn own(&self, path: &Path) -> Result<(), Error> {
        let chown = |p: &Path| {
            std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid))
                .map_err(Error::io(format!("chown {}", p.display())))
        };
        chown(path)?;
        if path.is_dir() {
            for entry in fs::read_dir(path).map_err(Error::io("listing a data directory"))? {
                let entry = entry.map_err(Error::io("listing a data directory"))?;
                self.own(&entry.path())?;
            }
        }
        Ok(())
    }

    pub(crate) fn apply(&self, command: &mut Command) {
        command.uid(self.uid).gid(self.gid);
    }
}

/// Fails with an install hint when `path` does not exist.
pub(crate) fn require(
    server: &'static str,
    path: PathBuf,
    install: &'static str,
) -> Result<PathBuf, Error> {
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            server,
            path,
            install,
        })
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("finding a free port"))?
        .port();
    Ok(port)
}

/// Runs a helper command to completion; its output on success.
pub(crate) fn run(command: &mut Command) -> Result<String, Error> {
    let describe = format!("{:?}", command.get_program());
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io(format!("running {describe}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    Err(Error::Command {
        command: describe,
        status: output.status.to_string(),
        output: format!("{}{}", String::from_utf8_lossy(&output.stderr), stdout),
    })
}

/// A running server process that receives SIGKILL if the test process dies.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Spawns `command` with its output appended to `log`.
    pub(crate) fn spawn(mut command: Command, log: PathBuf) -> Result<Self, Error> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(Error::io(format!("opening {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(Error::io("duplicating a log handle"))?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the forked child before exec and only calls
        // prctl(2), which is async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(Error::io("spawning a server"))?;
        Ok(Self { child, log })
    }

    /// Whether the process has exited.
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (a name such as `INT`) and waits for the process to exit.
    pub(crate) fn stop_with(&mut self, signal: &str) {
        if self.exited() {
            return;
        }
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the server's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `ready` until it returns true, failing if the process exits or time runs out.
    pub(crate) fn wait_ready(
        &mut self,
        server: &'static str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if self.exited() {
                break;
            }
            if ready() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::NotReady {
            server,
            waited: started.elapsed(),
            log_tail: self.log_tail(),
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
