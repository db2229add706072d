//! TLS against the test kit's PostgreSQL with `ssl = on` and a self-signed
//! certificate made by the `openssl` command line tool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdc_core::event::{Record, TableName, Value};
use cdc_core::{Source, SourceBatch};
use cdc_postgres::{Error, Password, PostgresConfig, PostgresSource, SslMode, connect_client};
use cdc_testkit::Postgres;

/// A self-signed certificate for `localhost` and `127.0.0.1`; returns the
/// certificate's path and its PEM certificate and key.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let cert = cdc_testkit::self_signed_cert(dir, name)
        .expect("a test certificate (needs the openssl command line tool)");
    (cert.cert_path, cert.cert_pem, cert.key_pem)
}

fn tls_config(pg: &Postgres, mode: SslMode, slot: &str) -> PostgresConfig {
    let mut config = PostgresConfig::new(
        "scram_user",
        pg.database(),
        slot,
        "tls_pub",
        vec![TableName::new("public", "t")],
    );
    config.port = pg.port();
    config.password = Some(Password::new(cdc_testkit::PASSWORD));
    config.ssl_mode = mode;
    config
}

async fn next_tx(source: &mut PostgresSource) -> SourceBatch {
    let wait = async {
        loop {
            let batch = source.next_batch().await.unwrap().unwrap();
            if batch.records.iter().any(|r| matches!(r, Record::Change(_))) {
                return batch;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("a transaction within 30 s")
}

/// Whether a query connection made with `config` runs over TLS, per `pg_stat_ssl`.
async fn query_uses_tls(config: &PostgresConfig) -> bool {
    let client = connect_client(config).await.unwrap();
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    row.get::<_, bool>(0)
}

/// Whether the walsender serving `slot` runs over TLS, per `pg_stat_ssl`.
fn replication_ssl(pg: &Postgres, slot: &str) -> String {
    pg.sql(&format!(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_replication_slots r ON r.active_pid = s.pid \
         WHERE r.slot_name = '{slot}'"
    ))
    .unwrap()
    .trim()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_and_verify_full_encrypt_replication_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = self_signed(dir.path(), "server");
    let mut pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.enable_tls(&cert, &key).unwrap();
    pg.sql("CREATE TABLE t (id int PRIMARY KEY); GRANT SELECT ON t TO scram_user; CREATE PUBLICATION tls_pub FOR TABLE t")
        .unwrap();

    for (i, mode) in [SslMode::Require, SslMode::VerifyFull]
        .into_iter()
        .enumerate()
    {
        let slot = format!("tls_slot_{i}");
        let mut config = tls_config(&pg, mode, &slot);
        config.ssl_root_cert = Some(ca.clone());
        assert!(!format!("{config:?}").contains(cdc_testkit::PASSWORD));

        assert!(
            query_uses_tls(&config).await,
            "{mode}: the query connection uses tls"
        );

        let mut source = PostgresSource::new(config);
        source.start(None).await.unwrap();
        pg.sql(&format!("INSERT INTO t VALUES ({i})")).unwrap();
        let batch = next_tx(&mut source).await;
        let Some(Record::Change(change)) = batch
            .records
            .iter()
            .find(|r| matches!(r, Record::Change(_)))
        else {
            unreachable!("next_tx returns a batch with a change")
        };
        assert_eq!(change.after, Some(vec![Value::Int(i as i64)]));
        assert_eq!(
            replication_ssl(&pg, &slot),
            "t",
            "{mode}: the walsender uses tls"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_rejects_an_unknown_certificate_and_require_a_plain_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = self_signed(dir.path(), "server");
    let (other_ca, _, _) = self_signed(dir.path(), "other");
    let plain = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    let mut config = tls_config(&plain, SslMode::Require, "plain_slot");
    let err = PostgresSource::new(config.clone())
        .start(None)
        .await
        .unwrap_err();
    // Whichever connection opens first says the server declined tls.
    let chain = error_chain(&err).to_lowercase();
    assert!(
        matches!(err, Error::Tls { .. } | Error::Query { .. }) && chain.contains("tls"),
        "{chain}"
    );
    config.ssl_mode = SslMode::VerifyFull;
    assert!(matches!(
        config.validate(),
        Err(Error::Config {
            field: "ssl_root_cert",
            ..
        })
    ));
    drop(plain);

    let mut pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.enable_tls(&cert, &key).unwrap();
    let mut config = tls_config(&pg, SslMode::VerifyFull, "wrong_ca_slot");
    config.ssl_root_cert = Some(other_ca);
    let err = PostgresSource::new(config.clone())
        .start(None)
        .await
        .unwrap_err();
    // The query connection is opened first; its error carries the handshake's.
    let chain = error_chain(&err);
    assert!(
        chain.contains("UnknownIssuer") || chain.contains("unknown issuer"),
        "{chain}"
    );
    config.ssl_mode = SslMode::Prefer;
    config.ssl_root_cert = None;
    assert!(
        query_uses_tls(&config).await,
        "prefer uses tls when offered"
    );
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
