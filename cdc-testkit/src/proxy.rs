//! A TCP proxy on loopback whose connections can be made to go silent: bytes
//! are dropped and no reset is sent, as when a firewall forgets a connection
//! or a host vanishes. Sources must notice such a path by its silence.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use crate::Error;

/// A proxy from a random loopback port to `127.0.0.1:upstream`.
///
/// Connections are numbered as they are accepted. A silenced connection keeps
/// both sockets open and forwards nothing more in either direction, for good.
///
/// ```no_run
/// let pg = cdc_testkit::Postgres::start()?;
/// let proxy = cdc_testkit::SilentPathProxy::start(pg.port())?;
/// // ... connect through proxy.port(), then:
/// proxy.silence_open_connections();
/// # Ok::<(), cdc_testkit::Error>(())
/// ```
#[derive(Debug)]
pub struct SilentPathProxy {
    port: u16,
    /// Connections numbered below this forward nothing more.
    silenced_below: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
}

impl SilentPathProxy {
    /// Listens on a random loopback port and forwards to `upstream`.
    pub fn start(upstream: u16) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("binding the proxy"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("reading the proxy's address"))?
            .port();
        let silenced_below = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (silenced, count) = (silenced_below.clone(), accepted.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let id = count.fetch_add(1, Ordering::SeqCst);
                // An upstream that refuses drops the client: a reset, as the
                // server itself would give.
                if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                    forward(client, server, id, &silenced);
                }
            }
        });
        Ok(Self {
            port,
            silenced_below,
            accepted,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every connection open now forwards nothing more, and stays open.
    pub fn silence_open_connections(&self) {
        self.silenced_below.store(self.accepted(), Ordering::SeqCst);
    }

    /// Every connection, open now or opened later, forwards nothing.
    pub fn silence_all(&self) {
        self.silenced_below.store(u64::MAX, Ordering::SeqCst);
    }
}

/// Pumps both directions of one connection on threads of their own.
fn forward(client: TcpStream, server: TcpStream, id: u64, silenced: &Arc<AtomicU64>) {
    let (Ok(client_write), Ok(server_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    for (from, to) in [(client, server_write), (server, client_write)] {
        let silenced = silenced.clone();
        thread::spawn(move || pump(from, to, id, &silenced));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, id: u64, silenced: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if id < silenced.load(Ordering::SeqCst) {
            // Hold both sockets open and drop everything: a black hole.
            loop {
                thread::park();
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
