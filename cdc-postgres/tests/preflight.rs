//! The checks `start` runs before it touches a slot: each misconfiguration is
//! refused with an error that names its fix, and nothing is created.

mod support;

use cdc_core::Source;
use cdc_core::event::TableName;
use cdc_postgres::{Error, PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;
use support::server;

/// A config of `tables` for `user`.
fn config(pg: &Postgres, user: &str, tables: &[&str]) -> PostgresConfig {
    let mut config = support::config(pg, tables);
    config.user = user.to_owned();
    config
}

async fn start_err(config: PostgresConfig) -> Error {
    PostgresSource::new(config)
        .start(None)
        .await
        .expect_err("start must refuse this configuration")
}

fn slot_count(pg: &Postgres) -> String {
    pg.sql("SELECT count(*) FROM pg_replication_slots")
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn misconfigurations_are_refused_with_their_fix_and_create_nothing() {
    let pg = server();
    pg.sql(
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, v text);
         CREATE ROLE plain LOGIN;
         GRANT SELECT ON a, b TO plain;
         CREATE PUBLICATION only_a FOR TABLE a;
         CREATE TABLE p (id int PRIMARY KEY) PARTITION BY RANGE (id);
         CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
         CREATE PUBLICATION leaves FOR TABLE p;",
    )
    .unwrap();

    let err = start_err(config(&pg, "plain", &["a"])).await;
    assert!(
        matches!(&err, Error::MissingReplicationPrivilege { user } if user == "plain"),
        "{err}"
    );
    assert!(err.to_string().contains("ALTER ROLE \"plain\" REPLICATION"));

    let err = start_err(config(&pg, pg.user(), &["a", "nope"])).await;
    assert!(
        matches!(&err, Error::MissingTable { table } if table.name == "nope"),
        "{err}"
    );

    let mut no_create = config(&pg, pg.user(), &["a"]);
    no_create.create_publication = false;
    let err = start_err(no_create.clone()).await;
    assert!(
        matches!(&err, Error::MissingPublication { publication } if publication == "cdc_pub"),
        "{err}"
    );
    assert!(err.to_string().contains("CREATE PUBLICATION"));

    let mut partial = config(&pg, pg.user(), &["a", "b"]);
    partial.publication = "only_a".into();
    partial.create_publication = false;
    let err = start_err(partial).await;
    match &err {
        Error::PublicationMissingTables {
            publication,
            tables,
        } => {
            assert_eq!(publication, "only_a");
            assert_eq!(tables, &vec![TableName::new("public", "b")]);
        }
        other => panic!("expected PublicationMissingTables, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("ALTER PUBLICATION \"only_a\" ADD TABLE")
    );

    // Published under the partitions' names, p's changes would never match.
    let mut apart = config(&pg, pg.user(), &["p"]);
    apart.publication = "leaves".into();
    let err = start_err(apart).await;
    assert!(
        matches!(&err, Error::PartitionsPublishedApart { table, .. } if table.name == "p"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("publish_via_partition_root = true")
    );

    assert_eq!(slot_count(&pg), "0", "a refused start creates no slot");
    let publications = pg
        .sql("SELECT count(*) FROM pg_publication WHERE pubname = 'cdc_pub'")
        .unwrap();
    assert_eq!(
        publications.trim(),
        "0",
        "no publication for a refused start"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_logical_wal_is_refused_with_the_setting_to_change() {
    let mut pg = server();
    pg.sql("CREATE TABLE a (id int PRIMARY KEY)").unwrap();
    pg.sql("ALTER SYSTEM SET wal_level = replica").unwrap();
    pg.restart()
        .expect("PostgreSQL restarts with wal_level=replica");

    let err = start_err(config(&pg, pg.user(), &["a"])).await;
    assert!(
        matches!(&err, Error::WalLevel { actual } if actual == "replica"),
        "{err}"
    );
    assert!(err.to_string().contains("wal_level=logical"));
    assert_eq!(slot_count(&pg), "0");
}
