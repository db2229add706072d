//! A network path that goes silent: packets dropped, no reset sent, as when a
//! firewall forgets a connection or a host vanishes. The source must notice by
//! the missing heartbeats and resume on a new connection.

mod support;

use std::time::Duration;

use cdc_core::Source;
use cdc_core::event::Value;
use cdc_mysql::MySqlSource;
use cdc_testkit::SilentPathProxy;
use support::*;

/// A server with table `test.t`, a proxy to it, and a source of `t` started
/// through the proxy (heartbeat 200 ms, idle timeout 1 s).
async fn through_proxy() -> (cdc_testkit::MariaDb, SilentPathProxy, MySqlSource) {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY)");
    let proxy = SilentPathProxy::start(db.port()).expect("proxy");
    let mut cfg = config(&db, &["t"]);
    cfg.host = "127.0.0.1".into();
    cfg.port = proxy.port();
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
    assert!(proxy.accepted() >= 4, "no attempt was retried");
}
