//! TLS against the test kit's MariaDB started with a self-signed certificate,
//! with the replication user required to use TLS.

mod support;

use cdc_core::Source;
use cdc_core::event::{ChangeKind, Value};
use cdc_mysql::{Error, MySqlSource, StartFrom, TlsMode};
use cdc_testkit::{MariaDb, self_signed_cert};
use support::{changes, config, sql, transactions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_tls_with_a_pinned_ca_streams_and_anything_else_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let server = self_signed_cert(dir.path(), "server").expect("a test certificate");
    let stranger = self_signed_cert(dir.path(), "stranger").expect("a test certificate");
    let db = MariaDb::start_with(&[
        &format!("--ssl-cert={}", server.cert_path.display()),
        &format!("--ssl-key={}", server.key_path.display()),
    ])
    .unwrap_or_else(|e| panic!("MariaDB test server could not start: {e}"));
    // Every connection of the replication user must be TLS, so a stream that
    // works below cannot have been plain.
    sql(&db, "ALTER USER 'cdc'@'%' REQUIRE SSL");
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY, note TEXT)");

    let plain = config(&db, &["t"]);
    let err = MySqlSource::new(plain)
        .unwrap()
        .start(None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Mysql { .. }),
        "the server refuses a plain connection: {err}"
    );

    let mut wrong_ca = config(&db, &["t"]);
    wrong_ca.tls = TlsMode::Verified;
    wrong_ca.ssl_root_cert = Some(stranger.cert_path.clone());
    let err = MySqlSource::new(wrong_ca)
        .unwrap()
        .start(None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("ssl_root_cert"), "{err}");
    assert!(!err.is_retryable());

    let mut pinned = config(&db, &["t"]);
    pinned.tls = TlsMode::Verified;
    pinned.ssl_root_cert = Some(server.cert_path.clone());
    pinned.start_from = StartFrom::Current;
    let mut source = MySqlSource::new(pinned).unwrap();
    source
        .start(None)
        .await
        .expect("verified TLS against the pinned CA");
    sql(&db, "INSERT INTO test.t VALUES (1, 'over tls')");
    let batches = transactions(&mut source, 1).await;
    assert_eq!(
        changes(&batches),
        vec![(
            "t".to_owned(),
            ChangeKind::Insert,
            None,
            Some(vec![Value::Int(1), Value::Text("over tls".into())])
        )]
    );

    let mut misused = config(&db, &["t"]);
    misused.ssl_root_cert = Some(server.cert_path.clone());
    let err = MySqlSource::new(misused).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "ssl_root_cert",
                ..
            }
        ),
        "a pinned CA without tls = verified is a mistake: {err}"
    );
}
