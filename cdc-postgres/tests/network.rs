//! A network path that goes silent: packets dropped, no reset sent, as when a
//! firewall forgets a connection or a host vanishes. The source must notice by
//! its unanswered requests, and a new start must resume although the server
//! still believes the old connection alive.

mod support;

use std::time::Duration;

use cdc_core::event::Value;
use cdc_core::{Source, SourceBatch};
use cdc_postgres::{Error, PostgresConfig, PostgresSource};
use cdc_testkit::{Postgres, SilentPathProxy};
use support::*;

/// A server with table `t`, a proxy to it, and a config of `t` through the
/// proxy that asks for an answer every 200 ms.
fn through_proxy(idle_timeout: Duration) -> (Postgres, SilentPathProxy, PostgresConfig) {
    let pg = server();
    pg.sql("CREATE TABLE t (id int PRIMARY KEY)").unwrap();
    let proxy = SilentPathProxy::start(pg.port()).expect("proxy");
    let mut config = config(&pg, &["t"]);
    config.port = proxy.port();
    config.status_interval = Duration::from_millis(200);
    config.idle_timeout = idle_timeout;
    (pg, proxy, config)
}

fn first_id(batch: &cdc_core::SourceBatch) -> Value {
    changes(batch)[0].after.clone().unwrap()[0].clone()
}

/// A source through the proxy that delivered row 1, then went silent while
/// row 2 commits. The server's wal_sender_timeout of 10 s keeps the silenced
/// walsender holding the slot well past the stall (5.5 s) and past a start's
/// two seconds of waiting for a holder.
async fn silenced_after_row_one(
    reconnect_attempts: u32,
) -> (Postgres, SilentPathProxy, PostgresSource, SourceBatch) {
    let (pg, proxy, mut config) = through_proxy(Duration::from_millis(5500));
    config.reconnect_attempts = reconnect_attempts;
    pg.sql("ALTER SYSTEM SET wal_sender_timeout = '10s'")
        .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    let mut source = PostgresSource::new(config);
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO t VALUES (1)").unwrap();
    let one = next_tx(&mut source).await;
    source.acknowledge(&one.position).await.unwrap();
    assert_eq!(first_id(&one), Value::Int(1));
    proxy.silence_open_connections();
    pg.sql("INSERT INTO t VALUES (2)").unwrap();
    (pg, proxy, source, one)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_resumed_on_a_new_connection_by_the_source() {
    let (_pg, _proxy, mut source, _) = silenced_after_row_one(20).await;
    // Without the watch, next_batch would wait forever.
    let two = next_tx(&mut source).await;
    assert_eq!(first_id(&two), Value::Int(2));
    assert_eq!(source.reconnects(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_stalls_and_a_new_start_ends_its_walsender_and_resumes() {
    let (_pg, _proxy, mut source, one) = silenced_after_row_one(0).await;
    let error = stream_error(&mut source).await;
    assert!(
        matches!(
            error,
            Error::Stalled {
                context: "streaming",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_retryable());

    // Still held by the silenced walsender: without ending it, this start
    // fails with SlotInUse.
    source.start(Some(one.position.clone())).await.unwrap();
    let two = next_tx(&mut source).await;
    assert_eq!(first_id(&two), Value::Int(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_silent_path_fails_in_bounded_time_and_the_next_one_streams() {
    let (pg, proxy, config) = through_proxy(Duration::from_secs(1));
    proxy.silence_all();
    let mut source = PostgresSource::new(config);
    let error = tokio::time::timeout(Duration::from_secs(30), source.start(None))
        .await
        .expect("the start gives up within 30 s")
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Stalled {
                context: "connecting",
                ..
            }
        ),
        "{error}"
    );

    // New connections go through again. The server's wal_sender_timeout of
    // 60 s raises the 1 s idle timeout, which must not fail a quiet stream.
    proxy.silence_open_connections();
    source.start(None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.sql("INSERT INTO t VALUES (1)").unwrap();
    let one = next_tx(&mut source).await;
    assert_eq!(first_id(&one), Value::Int(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_answers_its_requests_and_is_not_taken_for_a_dead_one() {
    let (pg, _proxy, mut config) = through_proxy(Duration::from_millis(800));
    // Half of 1 s plus the 200 ms status interval stays below 800 ms, so
    // the idle timeout is not raised: only the walsender's answers keep the
    // stream alive through 4 s of quiet.
    pg.sql("ALTER SYSTEM SET wal_sender_timeout = '1s'")
        .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    config.heartbeat_interval = Duration::from_secs(60);
    let mut source = PostgresSource::new(config);
    source.start(None).await.unwrap();
    let quiet = async {
        loop {
            source.next_batch().await?;
        }
    };
    let quiet: Result<Result<(), Error>, _> =
        tokio::time::timeout(Duration::from_secs(4), quiet).await;
    assert!(quiet.is_err(), "the quiet stream ended: {quiet:?}");
    assert_eq!(
        source.reconnects(),
        0,
        "the quiet stream was taken for dead"
    );
    pg.sql("INSERT INTO t VALUES (1)").unwrap();
    let one = next_tx(&mut source).await;
    assert_eq!(first_id(&one), Value::Int(1));
}
