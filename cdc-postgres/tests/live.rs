//! Live tests against the test kit's PostgreSQL 15.

mod support;

use std::time::Duration;

use cdc_core::Source;
use cdc_core::event::{ChangeKind, Decimal, Record, SourcePosition, Value};
use cdc_postgres::{Error, Password, PostgresSource};
use support::*;

fn lsn(p: &SourcePosition) -> u64 {
    match p {
        SourcePosition::Postgres { lsn } => *lsn,
        other => panic!("not a postgres position: {other:?}"),
    }
}

fn dec(s: &str) -> Value {
    Value::Decimal(Decimal::parse(s).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_type_round_trips_exactly() {
    let pg = server();
    pg.sql(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
         CREATE TABLE all_types (
           id int8 PRIMARY KEY, b bool, i2 int2, i4 int4, n numeric, n2 numeric(10,2),
           n_nan numeric, n_inf numeric, f4 float4, f8 float8, f8_inf float8, t text,
           vc varchar(5), c char(3), nm name, by bytea, d date, d_inf date, tm time,
           tz timetz, ts timestamp, tstz timestamptz, tstz_inf timestamptz, iv interval,
           u uuid, j json, jb jsonb, ia int4[], ta text[], m mood, dom posint,
           ma mood[], pt point, nul text)",
    )
    .unwrap();
    let mut source = PostgresSource::new(config(&pg, &["all_types"]));
    source.start(None).await.unwrap();
    pg.sql(
        "INSERT INTO all_types VALUES (
           9223372036854775807, true, -32768, 2147483647,
           '123456789012345678901234567890.000000000100', 12.30, 'NaN', '-Infinity',
           3.4028235e38, 0.1, 'Infinity', 'héllo \"quoted\" \\ back', 'abc', 'x',
           'nm', '\\x00ff10', '2024-02-29', 'infinity', '23:59:59.999999',
           '10:00:00.5-03:30', '1999-12-31 23:59:59.000001', '2000-01-01 05:30:00+05:30',
           '-infinity', '1 year 2 mons -3 days 04:05:06.000007',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', '{\"b\": null}',
           '{{1,NULL},{3,4}}', '{\"a,b\",\"\",NULL,\"NULL\"}', 'happy', 7,
           '{sad,ok}', '(1.5,2)', NULL)",
    )
    .unwrap();
    let batch = next_tx(&mut source).await;
    let schema = batch
        .records
        .iter()
        .find_map(|r| match r {
            Record::Schema(s) => Some(s.clone()),
            _ => None,
        })
        .expect("schema record before the first change");
    assert_eq!(schema.primary_key, vec![0]);
    assert_eq!(schema.columns[29].source_type, "mood");
    let change = changes(&batch)[0];
    assert_eq!(change.kind, ChangeKind::Insert);
    let expected = vec![
        Value::Int(i64::MAX),
        Value::Bool(true),
        Value::Int(-32768),
        Value::Int(i64::from(i32::MAX)),
        dec("123456789012345678901234567890.000000000100"),
        dec("12.30"),
        dec("NaN"),
        dec("-Infinity"),
        Value::Float(3.4028235e38),
        Value::Double(0.1),
        Value::Double(f64::INFINITY),
        Value::Text("héllo \"quoted\" \\ back".into()),
        Value::Text("abc".into()),
        Value::Text("x  ".into()),
        Value::Text("nm".into()),
        Value::Bytes(vec![0, 255, 16]),
        Value::Date(19782),
        Value::Date(Value::INFINITY_DAYS),
        Value::Time(86_399_999_999),
        Value::TimeTz {
            micros: 36_000_500_000,
            offset_secs: -12_600,
        },
        Value::Timestamp(946_684_799_000_001),
        Value::TimestampTz(946_684_800_000_000),
        Value::TimestampTz(i64::MIN),
        Value::Interval {
            months: 14,
            days: -3,
            micros: 14_706_000_007,
        },
        Value::Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ]),
        Value::Json("{\"a\": [1, 2]}".into()),
        Value::Json("{\"b\": null}".into()),
        Value::Array(vec![
            Value::Array(vec![Value::Int(1), Value::Null]),
            Value::Array(vec![Value::Int(3), Value::Int(4)]),
        ]),
        Value::Array(vec![
            Value::Text("a,b".into()),
            Value::Text("".into()),
            Value::Null,
            Value::Text("NULL".into()),
        ]),
        Value::Enum("happy".into()),
        Value::Int(7),
        Value::Array(vec![Value::Enum("sad".into()), Value::Enum("ok".into())]),
        Value::Text("(1.5,2)".into()),
        Value::Null,
    ];
    let after = change.after.as_ref().unwrap();
    for (i, (got, want)) in after.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "column {} ({})", i, schema.columns[i].name);
    }
    assert_eq!(after.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_toast_value_is_marked_unchanged_never_null() {
    let pg = server();
    pg.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, n int);
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;",
    )
    .unwrap();
    let mut source = PostgresSource::new(config(&pg, &["docs"]));
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO docs SELECT 1, repeat('x', 10000), 1")
        .unwrap();
    pg.sql("UPDATE docs SET n = 2 WHERE id = 1").unwrap();
    let insert = next_tx(&mut source).await;
    assert_eq!(
        changes(&insert)[0].after.as_ref().unwrap()[1],
        Value::Text("x".repeat(10000).into())
    );
    let update = next_tx(&mut source).await;
    let after = changes(&update)[0].after.clone().unwrap();
    assert_eq!(after, vec![Value::Int(1), Value::Unchanged, Value::Int(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_identity_gives_its_before_image_or_a_clear_error() {
    let pg = server();
    pg.sql(
        "CREATE TABLE d (id int PRIMARY KEY, v text);
         CREATE TABLE f (id int, v text); ALTER TABLE f REPLICA IDENTITY FULL;
         CREATE TABLE ix (a int NOT NULL, b int NOT NULL, v text);
         CREATE UNIQUE INDEX ix_ab ON ix (b, a); ALTER TABLE ix REPLICA IDENTITY USING INDEX ix_ab;
         CREATE TABLE nothing (id int PRIMARY KEY, v text); ALTER TABLE nothing REPLICA IDENTITY NOTHING;
         CREATE TABLE nokey (id int, v text);",
    )
    .unwrap();
    for (table, identity) in [("nothing", "NOTHING"), ("nokey", "DEFAULT")] {
        let mut config = config(&pg, &[table]);
        config.publication = format!("pub_{table}");
        let err = PostgresSource::new(config).start(None).await.unwrap_err();
        assert!(
            matches!(&err, Error::MissingKey { identity: i, .. } if i == identity),
            "{err}"
        );
        assert!(err.to_string().contains("REPLICA IDENTITY FULL"));
    }
    let mut source = PostgresSource::new(config(&pg, &["d", "f", "ix"]));
    source.start(None).await.unwrap();
    pg.sql(
        "INSERT INTO d VALUES (1, 'a'); INSERT INTO f VALUES (1, 'a'); INSERT INTO ix VALUES (1, 2, 'a');
         UPDATE d SET v = 'b'; UPDATE d SET id = 2;
         UPDATE f SET v = 'b'; UPDATE ix SET v = 'b'; UPDATE ix SET a = 5;
         DELETE FROM d; DELETE FROM f; DELETE FROM ix;",
    )
    .unwrap();
    let mut before = Vec::new();
    while before.len() < 11 {
        let batch = next_tx(&mut source).await;
        for c in changes(&batch) {
            before.push((c.table.name.to_string(), c.kind, c.before.clone()));
        }
    }
    let text = |s: &str| Value::Text(s.into());
    let expected = vec![
        ("d", ChangeKind::Insert, None),
        ("f", ChangeKind::Insert, None),
        ("ix", ChangeKind::Insert, None),
        // DEFAULT: no old image unless the key changed; then the old key only.
        ("d", ChangeKind::Update, None),
        (
            "d",
            ChangeKind::Update,
            Some(vec![Value::Int(1), Value::Null]),
        ),
        // FULL: the whole old row.
        (
            "f",
            ChangeKind::Update,
            Some(vec![Value::Int(1), text("a")]),
        ),
        ("ix", ChangeKind::Update, None),
        (
            "ix",
            ChangeKind::Update,
            Some(vec![Value::Int(1), Value::Int(2), Value::Null]),
        ),
        (
            "d",
            ChangeKind::Delete,
            Some(vec![Value::Int(2), Value::Null]),
        ),
        (
            "f",
            ChangeKind::Delete,
            Some(vec![Value::Int(1), text("b")]),
        ),
        // USING INDEX: the index columns of the old row.
        (
            "ix",
            ChangeKind::Delete,
            Some(vec![Value::Int(5), Value::Int(2), Value::Null]),
        ),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(t, k, b)| (t.to_owned(), k, b))
        .collect();
    assert_eq!(before, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_arrive_whole_in_commit_order_with_truncates() {
    let pg = server();
    pg.sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);")
        .unwrap();
    let mut source = PostgresSource::new(config(&pg, &["a", "b"]));
    source.start(None).await.unwrap();
    pg.sql("BEGIN; INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO a VALUES (2); COMMIT;")
        .unwrap();
    // Interleaved: the first transaction to start commits last.
    let mut client = cdc_postgres::connect_client(&config(&pg, &[]))
        .await
        .unwrap();
    let first = client.transaction().await.unwrap();
    first
        .execute("INSERT INTO a VALUES (10)", &[])
        .await
        .unwrap();
    pg.sql("INSERT INTO b VALUES (20)").unwrap();
    first
        .execute("INSERT INTO b VALUES (11)", &[])
        .await
        .unwrap();
    first.commit().await.unwrap();
    pg.sql("TRUNCATE a, b").unwrap();
    pg.sql("ALTER TABLE a ADD COLUMN note text").unwrap();
    pg.sql("INSERT INTO a VALUES (30, 'n')").unwrap();

    let multi = next_tx(&mut source).await;
    let names: Vec<_> = changes(&multi)
        .iter()
        .map(|c| {
            (
                c.table.name.to_string(),
                c.after.clone().unwrap()[0].clone(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("a".to_owned(), Value::Int(1)),
            ("b".to_owned(), Value::Int(1)),
            ("a".to_owned(), Value::Int(2))
        ]
    );
    assert!(matches!(multi.records.first(), Some(Record::Schema(_))));
    assert!(matches!(multi.records.last(), Some(Record::Commit(_))));
    let second = next_tx(&mut source).await;
    assert_eq!(changes(&second).len(), 1);
    assert_eq!(
        changes(&second)[0].after.clone().unwrap()[0],
        Value::Int(20)
    );
    let third = next_tx(&mut source).await;
    assert_eq!(changes(&third).len(), 2);
    assert!(lsn(&second.position) < lsn(&third.position));
    let truncate = next_tx(&mut source).await;
    let kinds: Vec<_> = changes(&truncate).iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![ChangeKind::Truncate, ChangeKind::Truncate]);
    // A schema change arrives as a new schema record before the change using it.
    let altered = next_tx(&mut source).await;
    let Some(Record::Schema(schema)) = altered.records.first() else {
        panic!("expected a schema record first: {:?}", altered.records)
    };
    assert_eq!(schema.columns.len(), 2);
    assert_eq!(
        changes(&altered)[0].after.clone().unwrap(),
        vec![Value::Int(30), Value::Text("n".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_reader_resumes_with_no_loss_and_no_duplicate() {
    let mut pg = server();
    pg.sql("CREATE TABLE r (id int PRIMARY KEY)").unwrap();
    let mut config = config(&pg, &["r"]);
    // The host's path: every error ends the stream, a new start resumes.
    config.reconnect_attempts = 0;
    let mut source = PostgresSource::new(config.clone());
    source.start(None).await.unwrap();
    for i in 1..=3 {
        pg.sql(&format!("INSERT INTO r VALUES ({i})")).unwrap();
    }
    let one = next_tx(&mut source).await;
    source.acknowledge(&one.position).await.unwrap();
    let two = next_tx(&mut source).await;
    // Two is "durable in the log" but its acknowledgement was lost in a crash.
    drop(source);

    let mut source = PostgresSource::new(config.clone());
    source.start(Some(two.position.clone())).await.unwrap();
    let three = next_tx(&mut source).await;
    assert_eq!(
        changes(&three)[0].after.clone().unwrap(),
        vec![Value::Int(3)]
    );
    source.acknowledge(&three.position).await.unwrap();

    // PostgreSQL restarts mid-stream: the stream errors, a new start resumes.
    pg.sql("INSERT INTO r VALUES (4)").unwrap();
    let four = next_tx(&mut source).await;
    source.acknowledge(&four.position).await.unwrap();
    // The reader keeps reading while the server restarts: a fast shutdown waits
    // for the walsender's client to confirm, which it does when it is idle.
    let restart = tokio::task::spawn_blocking(move || {
        pg.restart().unwrap();
        pg
    });
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match source.next_batch().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends when the server stops");
    assert!(
        matches!(
            ended,
            Err(Error::ConnectionClosed) | Err(Error::Server { .. }) | Ok(None)
        ),
        "{ended:?}"
    );
    let pg = restart.await.unwrap();
    pg.sql("INSERT INTO r VALUES (5)").unwrap();
    let mut source = PostgresSource::new(config);
    source.start(Some(four.position.clone())).await.unwrap();
    let five = next_tx(&mut source).await;
    assert_eq!(
        changes(&five)[0].after.clone().unwrap(),
        vec![Value::Int(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_is_absorbed_by_the_source() {
    let mut pg = server();
    pg.sql("CREATE TABLE r (id int PRIMARY KEY)").unwrap();
    let mut source = PostgresSource::new(config(&pg, &["r"]));
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO r VALUES (1)").unwrap();
    let one = next_tx(&mut source).await;
    source.acknowledge(&one.position).await.unwrap();
    // Committed but maybe not yet streamed when the server goes down.
    pg.sql("INSERT INTO r VALUES (2)").unwrap();
    let restart = tokio::task::spawn_blocking(move || {
        pg.restart().unwrap();
        pg.sql("INSERT INTO r VALUES (3)").unwrap();
        pg
    });
    // The same source goes on: no error, nothing lost, nothing repeated.
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let batch = next_tx(&mut source).await;
        source.acknowledge(&batch.position).await.unwrap();
        ids.extend(
            changes(&batch)
                .iter()
                .map(|c| c.after.clone().unwrap()[0].clone()),
        );
    }
    let _pg = restart.await.unwrap();
    assert_eq!(ids, [Value::Int(2), Value::Int(3)]);
    assert!(source.reconnects() >= 1, "the restart broke the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_or_busy_slot_is_reported_never_silently_recreated() {
    let pg = server();
    pg.sql("CREATE TABLE s (id int PRIMARY KEY)").unwrap();
    let config = config(&pg, &["s"]);
    let mut source = PostgresSource::new(config.clone());
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO s VALUES (1)").unwrap();
    let one = next_tx(&mut source).await;

    let err = PostgresSource::new(config.clone())
        .start(None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SlotInUse { .. }), "{err}");

    source.drop_slot_and_publication().await.unwrap();
    let err = PostgresSource::new(config.clone())
        .start(Some(one.position))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsBackfill { .. }), "{err}");
    assert!(err.to_string().contains("re-backfill"));
    let exists = pg.sql("SELECT count(*) FROM pg_replication_slots").unwrap();
    assert_eq!(exists.trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_whose_wal_was_removed_needs_backfill() {
    let pg = server();
    pg.sql("CREATE TABLE w (id int PRIMARY KEY, pad text)")
        .unwrap();
    let config = config(&pg, &["w"]);
    let mut source = PostgresSource::new(config.clone());
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO w VALUES (1, 'x')").unwrap();
    let one = next_tx(&mut source).await;
    drop(source);
    pg.sql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    for _ in 0..4 {
        pg.sql("INSERT INTO w SELECT g, repeat('y', 500) FROM generate_series(2, 4000) g")
            .unwrap();
        pg.sql("DELETE FROM w WHERE id > 1").unwrap();
        pg.sql("SELECT pg_switch_wal()").unwrap();
        pg.sql("CHECKPOINT").unwrap();
    }
    let status = pg
        .sql("SELECT wal_status FROM pg_replication_slots")
        .unwrap();
    assert_eq!(status.trim(), "lost");
    let err = PostgresSource::new(config)
        .start(Some(one.position))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsBackfill { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_heartbeats_advance_the_slots_confirmed_flush_lsn() {
    let pg = server();
    pg.sql("CREATE TABLE h (id int PRIMARY KEY)").unwrap();
    let mut config = config(&pg, &["h"]);
    config.heartbeat_interval = Duration::from_millis(200);
    let mut source = PostgresSource::new(config);
    source.start(None).await.unwrap();
    let confirmed = || {
        pg.sql("SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots")
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let initial = confirmed();
    let mut last = 0;
    for _ in 0..3 {
        let batch = tokio::time::timeout(Duration::from_secs(10), source.next_batch())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(batch.records.last(), Some(Record::Heartbeat(_))));
        let position = lsn(&batch.position);
        assert!(position > last);
        last = position;
        source.acknowledge(&batch.position).await.unwrap();
    }
    // The status update is asynchronous on the server; wait for it to land.
    let mut now = confirmed();
    for _ in 0..50 {
        if now >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = confirmed();
    }
    assert!(
        now > initial && now >= last,
        "{initial} -> {now}, acked {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_and_scram_users_authenticate_and_stream() {
    let pg = server();
    pg.sql("CREATE TABLE auth (id int PRIMARY KEY); GRANT SELECT ON auth TO md5_user, scram_user;")
        .unwrap();
    pg.sql("CREATE PUBLICATION cdc_pub FOR TABLE auth").unwrap();
    for (i, user) in ["md5_user", "scram_user"].into_iter().enumerate() {
        let mut config = config(&pg, &["auth"]);
        config.user = user.into();
        config.slot = format!("slot_{user}");
        let err = PostgresSource::new(config.clone())
            .start(None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Query { .. } | Error::Auth { .. }),
            "{err}"
        );
        config.password = Some(Password::new(cdc_testkit::PASSWORD));
        let mut source = PostgresSource::new(config);
        source.start(None).await.unwrap();
        pg.sql(&format!("INSERT INTO auth VALUES ({i})")).unwrap();
        let batch = next_tx(&mut source).await;
        assert_eq!(
            changes(&batch)[0].after.clone().unwrap(),
            vec![Value::Int(i as i64)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_after_part_of_a_split_transaction_is_returned_not_resumed() {
    let pg = server();
    pg.sql("CREATE TABLE big (id int PRIMARY KEY)").unwrap();
    let mut config = config(&pg, &["big"]);
    config.transaction_chunk_bytes = 64 << 10;
    let mut source = PostgresSource::new(config);
    source.start(None).await.unwrap();
    // Far more than the socket buffers hold, so the walsender is still
    // sending when it is terminated.
    pg.sql("INSERT INTO big SELECT g FROM generate_series(1, 300000) g")
        .unwrap();
    let first = next_tx(&mut source).await;
    assert!(
        !first.records.iter().any(|r| matches!(r, Record::Commit(_))),
        "the first part holds no commit"
    );
    pg.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'walsender'",
    )
    .unwrap();
    // Resuming would deliver the transaction's first parts again: the error
    // goes to the host, whose restart from its log skips what it holds.
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match source.next_batch().await {
                Ok(Some(batch)) => assert!(
                    !batch.records.iter().any(|r| matches!(r, Record::Begin(_))),
                    "the transaction began again"
                ),
                other => return other,
            }
        }
    })
    .await
    .expect("the broken stream ends");
    let error = ended.expect_err("an error, not the end of the stream");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(source.reconnects(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_table_streams_under_its_own_name() {
    let pg = server();
    pg.sql(
        "CREATE TABLE events (id int, day date, note text, PRIMARY KEY (id, day))
             PARTITION BY RANGE (day);
         CREATE TABLE events_2024 PARTITION OF events
             FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events
             FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
    )
    .unwrap();
    let mut source = PostgresSource::new(config(&pg, &["events"]));
    source.start(None).await.unwrap();
    pg.sql(
        "INSERT INTO events VALUES (1, '2024-06-01', 'a'), (2, '2025-06-01', 'b');
         UPDATE events SET day = '2025-02-01' WHERE id = 1;",
    )
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let batch = next_tx(&mut source).await;
        for change in changes(&batch) {
            assert_eq!(change.table.name.as_str(), "events");
            seen.push((change.kind, change.after.clone().map(|row| row[0].clone())));
        }
    }
    // Moving a row to another partition is a delete and an insert.
    assert_eq!(
        seen,
        [
            (ChangeKind::Insert, Some(Value::Int(1))),
            (ChangeKind::Insert, Some(Value::Int(2))),
            (ChangeKind::Delete, None),
            (ChangeKind::Insert, Some(Value::Int(1))),
        ]
    );

    // A backfill reads every partition through the table.
    let client = cdc_postgres::connect_client(source.config()).await.unwrap();
    let mut catalog = cdc_postgres::Catalog::default();
    let table = cdc_core::event::TableName::new("public", "events");
    let reader = cdc_postgres::ChunkReader::new(&client, &mut catalog, &table, 10)
        .await
        .unwrap();
    assert_eq!(reader.schema().primary_key, vec![0, 1]);
    let chunk = reader.read_chunk(&client, None).await.unwrap();
    assert_eq!(chunk.rows.len(), 2);
    assert!(chunk.next.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_table_renamed_mid_stream_stops_the_stream_never_drops_changes() {
    let pg = server();
    pg.sql("CREATE TABLE r (id int PRIMARY KEY)").unwrap();
    let mut source = PostgresSource::new(config(&pg, &["r"]));
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO r VALUES (1)").unwrap();
    let one = next_tx(&mut source).await;
    assert_eq!(changes(&one)[0].after, Some(vec![Value::Int(1)]));
    // The publication follows the table; its changes now carry the new name.
    pg.sql("ALTER TABLE r RENAME TO r2; INSERT INTO r2 VALUES (2);")
        .unwrap();
    let error = stream_error(&mut source).await;
    match &error {
        Error::TableRenamed { from, to } => {
            assert_eq!((from.name.as_str(), to.name.as_str()), ("r", "r2"));
        }
        other => panic!("expected TableRenamed, got {other}"),
    }
    assert!(!error.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_table_swapped_out_of_the_publication_stops_the_stream() {
    let pg = server();
    pg.sql("CREATE TABLE s (id int PRIMARY KEY)").unwrap();
    let mut config = config(&pg, &["s"]);
    config.heartbeat_interval = Duration::from_millis(200);
    let mut source = PostgresSource::new(config);
    source.start(None).await.unwrap();
    pg.sql("INSERT INTO s VALUES (1)").unwrap();
    next_tx(&mut source).await;
    // The swap of an online schema change: the table now named s is not the
    // one in the publication, so its changes are never sent.
    pg.sql(
        "CREATE TABLE s_new (id int PRIMARY KEY);
         BEGIN;
         ALTER TABLE s RENAME TO s_old;
         ALTER TABLE s_new RENAME TO s;
         COMMIT;
         INSERT INTO s VALUES (2);",
    )
    .unwrap();
    let error = stream_error(&mut source).await;
    match &error {
        Error::PublicationMissingTables { tables, .. } => {
            assert_eq!(tables.len(), 1);
            assert_eq!(tables[0].name.as_str(), "s");
        }
        other => panic!("expected PublicationMissingTables, got {other}"),
    }
    assert!(!error.is_retryable());
}
