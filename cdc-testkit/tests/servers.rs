//! The kit's servers start, answer, restart, and clean up after themselves.

use cdc_testkit::{MariaDb, Nats, Postgres};

#[test]
fn postgres_starts_with_logical_wal_and_survives_a_restart() {
    let mut pg = Postgres::start().expect("PostgreSQL 15 must be installed for the test suite");
    assert_eq!(pg.sql("SHOW wal_level").unwrap().trim(), "logical");
    pg.sql("CREATE TABLE kept (id int primary key); INSERT INTO kept VALUES (7)")
        .unwrap();
    let port = pg.port();
    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.sql("SELECT id FROM kept").unwrap().trim(), "7");
    let roles = pg
        .sql("SELECT rolname FROM pg_roles WHERE rolreplication ORDER BY 1")
        .unwrap();
    assert!(
        roles.contains("md5_user") && roles.contains("scram_user"),
        "{roles}"
    );
    let dir = pg.data_dir();
    drop(pg);
    assert!(!dir.exists(), "the data directory is removed on drop");
}

#[test]
fn mariadb_starts_with_a_full_row_binlog_and_survives_a_restart() {
    let mut db = MariaDb::start().expect("MariaDB must be installed for the test suite");
    let vars = db
        .sql("SELECT @@log_bin, @@binlog_format, @@binlog_row_metadata, @@binlog_row_image")
        .unwrap();
    assert_eq!(vars.trim(), "1\tROW\tFULL\tFULL");
    db.sql("CREATE TABLE test.kept (id int primary key); INSERT INTO test.kept VALUES (7)")
        .unwrap();
    db.restart().unwrap();
    assert_eq!(db.sql("SELECT id FROM test.kept").unwrap().trim(), "7");
    let grants = db.sql("SHOW GRANTS FOR 'cdc'@'%'").unwrap();
    assert!(grants.contains("ALL PRIVILEGES"), "{grants}");
    assert!(db.binlog_dir().join("mysql-bin.000001").exists());
}

#[test]
fn nats_starts_with_jetstream() {
    let nats = Nats::start().expect("nats-server must be installed for the test suite");
    assert!(nats.url().starts_with("nats://127.0.0.1:"));
}
