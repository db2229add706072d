//! A network path that goes silent: packets dropped, no reset sent, as when a
//! firewall forgets a connection or a host vanishes. The source must notice by
//! the missing heartbeats and resume on a new connection.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cdc_core::Source;
use cdc_core::event::Value;
use cdc_mysql::MySqlSource;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to the server whose connections can be made to black-hole.
struct Proxy {
    port: u16,
    /// Connections numbered below this forward nothing more.
    silenced_below: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silenced_below = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (silenced, count) = (silenced_below.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = count.fetch_add(1, Ordering::SeqCst);
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, id, silenced.clone()));
                tokio::spawn(pump(server_read, client_write, id, silenced.clone()));
            }
        });
        Proxy {
            port,
            silenced_below,
            accepted,
        }
    }

    /// Every connection open now forwards nothing more, and stays open.
    fn silence_open_connections(&self) {
        let open = self.accepted.load(Ordering::SeqCst);
        self.silenced_below.store(open, Ordering::SeqCst);
    }

    /// Every connection, open now or opened later, forwards nothing.
    fn silence_all(&self) {
        self.silenced_below.store(u64::MAX, Ordering::SeqCst);
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, id: u64, silenced: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if id < silenced.load(Ordering::SeqCst) {
            // Hold both sockets open and drop everything: a black hole.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A server with table `test.t`, a proxy to it, and a source of `t` started
/// through the proxy (heartbeat 200 ms, idle timeout 1 s).
async fn through_proxy() -> (cdc_testkit::MariaDb, Proxy, MySqlSource) {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY)");
    let proxy = Proxy::start(db.port()).await;
    let mut cfg = config(&db, &["t"]);
    cfg.host = "127.0.0.1".into();
    cfg.port = proxy.port;
    cfg.heartbeat = Duration::from_millis(200);
    cfg.idle_timeout = Duration::from_secs(1);
    let mut src = MySqlSource::new(cfg).unwrap();
    src.start(None).await.unwrap();
    (db, proxy, src)
}

/// The ids of the rows inserted by some batches.
fn ids(batches: &[cdc_core::SourceBatch]) -> Vec<Value> {
    changes(batches)
        .into_iter()
        .map(|(_, _, _, after)| after.unwrap()[0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_network_path_is_noticed_and_the_stream_resumes_on_a_new_connection() {
    let (db, proxy, mut src) = through_proxy().await;
    sql(&db, "INSERT INTO test.t VALUES (1)");
    let first = transactions(&mut src, 1).await;
    proxy.silence_open_connections();
    sql(&db, "INSERT INTO test.t VALUES (2)");
    // Without the idle timeout the stream would wait forever (the helper
    // gives up after 60 s).
    let second = transactions(&mut src, 1).await;
    assert_eq!(ids(&first), [Value::Int(1)]);
    assert_eq!(ids(&second), [Value::Int(2)]);
}

/// Silence from the very start: nothing was delivered yet, so the reconnect
/// must resume from the position the first stream was opened at (a start of
/// "current" is not read again, which would skip row 1), and the attempts
/// made while new connections are silent too must give up and retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_path_before_the_first_change_is_retried_and_skips_nothing() {
    let (db, proxy, mut src) = through_proxy().await;
    // The stream goes silent, and so does every new connection for 4 s: the
    // first reconnect attempts open connections that never answer.
    proxy.silence_all();
    sql(&db, "INSERT INTO test.t VALUES (1)");
    let restore = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        proxy.silence_open_connections();
    };
    let (batches, ()) = tokio::join!(transactions(&mut src, 1), restore);
    assert_eq!(ids(&batches), [Value::Int(1)]);
    assert!(
        proxy.accepted.load(Ordering::SeqCst) >= 4,
        "no attempt was retried"
    );
}
