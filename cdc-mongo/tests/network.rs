//! A server that accepts connections and never answers: the source must give
//! up in bounded time with a retryable error, not wait for good.

use std::net::TcpListener;
use std::time::Duration;

use cdc_core::Source;
use cdc_core::event::TableName;
use cdc_mongo::{Error, MongoConfig, MongoSource};

/// Accepts connections on a random loopback port and holds them, silent.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

#[tokio::test]
async fn a_start_over_a_silent_network_path_fails_as_stalled_and_retryable() {
    let port = silent_server();
    let mut config = MongoConfig::new(
        format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
        vec![TableName::new("shop", "orders")],
    );
    config.idle_timeout = Duration::from_secs(1);
    let mut source = MongoSource::new(config).unwrap();
    let error = source.start(None).await.unwrap_err();
    assert!(matches!(error, Error::Stalled { .. }), "{error}");
    assert!(error.is_retryable());
    assert!(matches!(source.next_batch().await, Err(Error::NotStarted)));
}
