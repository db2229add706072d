//! The SQLite sink against real database files.

mod fixture;

use cdc_core::Sink;
use cdc_core::event::{DataType, Value};
use cdc_sinks::{
    DroppedColumns, PrepareMode, SinkError, SqliteConfig, SqliteSink, SqliteSynchronous,
    TableMapping, TableRule, WriteMode,
};
use fixture::*;
use rusqlite::Connection;
use rusqlite::types::Value as Sql;

async fn sink(dir: &tempfile::TempDir, mapping: TableMapping) -> SqliteSink {
    let mut config = SqliteConfig::new(dir.path().join("db.sqlite"));
    config.mapping = mapping;
    SqliteSink::open(config).await.unwrap()
}

fn rows(dir: &tempfile::TempDir, sql: &str) -> Vec<Vec<Sql>> {
    let conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn int(v: i64) -> Sql {
    Sql::Integer(v)
}

fn txt(v: &str) -> Sql {
    Sql::Text(v.into())
}

#[tokio::test]
async fn inserts_updates_deletes_and_the_offset_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&dir, TableMapping::default()).await;
    assert_eq!(s.stored_offset().await.unwrap(), None);
    let items = items();
    let mut stream = Stream::new(0);
    let b1 = stream.batch(
        &items,
        vec![
            insert(&items, vec![i(1), t("a"), i(10)]),
            insert(&items, vec![i(2), t("b"), i(20)]),
            insert(&items, vec![i(3), t("c"), i(30)]),
        ],
    );
    s.apply(&b1).await.unwrap();
    let b2 = stream.batch(
        &items,
        vec![
            update(&items, vec![i(1), Value::Unchanged, i(11)]),
            delete(&items, vec![i(2), Value::Null, Value::Null]),
            delete(&items, vec![i(3), Value::Null, Value::Null]),
            insert(&items, vec![i(3), t("c2"), i(33)]),
        ],
    );
    s.apply(&b2).await.unwrap();
    assert_eq!(
        rows(&dir, r#"SELECT id, name, n FROM "items" ORDER BY id"#),
        vec![
            vec![int(1), txt("a"), int(11)],
            vec![int(3), txt("c2"), int(33)]
        ]
    );
    drop(s);
    let mut reopened = sink(&dir, TableMapping::default()).await;
    assert_eq!(
        reopened.stored_offset().await.unwrap(),
        Some(b2.last_offset)
    );
}

#[tokio::test]
async fn synchronous_normal_applies_batches_and_stores_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("db.sqlite"));
    config.synchronous = SqliteSynchronous::Normal;
    let mut s = SqliteSink::open(config).await.unwrap();
    let items = items();
    let mut stream = Stream::new(0);
    let b = stream.batch(&items, vec![insert(&items, vec![i(1), t("a"), i(10)])]);
    s.apply(&b).await.unwrap();
    assert_eq!(s.stored_offset().await.unwrap(), Some(b.last_offset));
    assert_eq!(
        rows(&dir, r#"SELECT id, name, n FROM "items""#),
        vec![vec![int(1), txt("a"), int(10)]]
    );
}

#[tokio::test]
async fn a_failing_batch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&dir, TableMapping::default()).await;
    let items = items();
    let f = schema(
        ("app", "f"),
        vec![col("id", INT), col("x", DataType::Float64)],
    );
    let mut stream = Stream::new(0);
    let ok = stream.batch(&items, vec![insert(&items, vec![i(1), t("a"), i(1)])]);
    s.apply(&ok).await.unwrap();
    let bad = stream.batch_of(vec![
        (items.clone(), insert(&items, vec![i(2), t("b"), i(2)])),
        (f.clone(), insert(&f, vec![i(1), Value::Double(f64::NAN)])),
    ]);
    let err = s.apply(&bad).await.unwrap_err();
    assert!(matches!(err, SinkError::ValueOutOfRange { .. }), "{err}");
    assert_eq!(s.stored_offset().await.unwrap(), Some(ok.last_offset));
    assert_eq!(
        rows(&dir, r#"SELECT count(*) FROM "items""#),
        vec![vec![int(1)]]
    );
}

#[tokio::test]
async fn every_value_type_is_stored_faithfully() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&dir, TableMapping::default()).await;
    let (cols, values): (Vec<_>, Vec<_>) = every_type().into_iter().unzip();
    let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let all = schema(("app", "all"), cols);
    let mut stream = Stream::new(0);
    s.apply(&stream.batch(&all, vec![insert(&all, values)]))
        .await
        .unwrap();
    let got = rows(&dir, &format!("SELECT {} FROM \"all\"", names.join(", ")));
    let expected = vec![
        int(1),
        int(1),
        int(-32768),
        int(i64::MIN),
        int(u32::MAX as i64),
        txt("18446744073709551615"),
        Sql::Real(1.5),
        Sql::Real(-2.25e100),
        txt("-12345678901234567890.0123456789"),
        txt("3.14159265358979323846264338327950288"),
        txt("h\u{e9}llo 'quoted' \"x\" \\ \u{1F600}"),
        txt("short"),
        Sql::Blob(vec![0, 1, 255, 39]),
        int(0b10101),
        txt("2024-02-29"),
        txt("13:05:09.000001"),
        txt("01:00:00.000000+02:00"),
        txt("2024-02-29 13:05:09.000001"),
        txt("2024-02-29 13:05:09.000001+00:00"),
        txt("P14M3DT3723.000007S"),
        txt("abababab-abab-abab-abab-abababababab"),
        txt(r#"{"a": [1, 2.5, "x"]}"#),
        txt("happy"),
        txt(r#"["a","c"]"#),
        Sql::Blob(vec![1, 1, 0, 0, 0]),
        txt("[1,null,3]"),
        txt("(1,2)"),
        Sql::Null,
    ];
    assert_eq!(got, vec![expected]);
}

#[tokio::test]
async fn prepare_modes_keep_truncate_or_recreate_existing_tables() {
    for (mode, expected) in [
        (PrepareMode::Keep, vec![vec![int(1)], vec![int(2)]]),
        (PrepareMode::Truncate, vec![vec![int(2)]]),
        (PrepareMode::Recreate, vec![vec![int(2)]]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
            conn.execute_batch(
                r#"CREATE TABLE "items" (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, extra TEXT);
                   INSERT INTO "items" VALUES (1, 'old', 1, 'x');"#,
            )
            .unwrap();
        }
        let mapping = TableMapping {
            prepare: mode,
            ..Default::default()
        };
        let mut s = sink(&dir, mapping.clone()).await;
        let items = items();
        let mut stream = Stream::new(0);
        s.apply(&stream.batch(&items, vec![insert(&items, vec![i(2), t("b"), i(2)])]))
            .await
            .unwrap();
        assert_eq!(
            rows(&dir, r#"SELECT id FROM "items" ORDER BY id"#),
            expected,
            "{mode:?}"
        );
        let has_extra = !rows(
            &dir,
            "SELECT 1 FROM pragma_table_info('items') WHERE name = 'extra'",
        )
        .is_empty();
        assert_eq!(has_extra, mode != PrepareMode::Recreate);
        // Prepare runs once: a restarted sink does not truncate again.
        drop(s);
        let mut s = sink(&dir, mapping).await;
        s.apply(&stream.batch(&items, vec![insert(&items, vec![i(3), t("c"), i(3)])]))
            .await
            .unwrap();
        assert_eq!(
            rows(&dir, r#"SELECT count(*) FROM "items""#)[0][0],
            int(expected.len() as i64 + 1)
        );
    }
}

#[tokio::test]
async fn history_mode_appends_every_change_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(
        &dir,
        TableMapping {
            write_mode: WriteMode::History,
            ..Default::default()
        },
    )
    .await;
    let items = items();
    let mut stream = Stream::new(0);
    let b = stream.batch(
        &items,
        vec![
            insert(&items, vec![i(1), t("a"), i(1)]),
            update(&items, vec![i(1), Value::Unchanged, i(2)]),
            delete(&items, vec![i(1), Value::Null, Value::Null]),
            truncate(&items),
        ],
    );
    s.apply(&b).await.unwrap();
    assert_eq!(
        rows(
            &dir,
            r#"SELECT id, name, n, _cdc_op, _cdc_offset, _cdc_unchanged, _cdc_commit_time FROM "items" ORDER BY _cdc_offset"#
        ),
        vec![
            vec![
                int(1),
                txt("a"),
                int(1),
                txt("c"),
                int(1),
                Sql::Null,
                txt("2023-11-14 22:13:20.000000+00:00")
            ],
            vec![
                int(1),
                Sql::Null,
                int(2),
                txt("u"),
                int(2),
                txt(r#"["name"]"#),
                txt("2023-11-14 22:13:20.000000+00:00")
            ],
            vec![
                int(1),
                Sql::Null,
                Sql::Null,
                txt("d"),
                int(3),
                Sql::Null,
                txt("2023-11-14 22:13:20.000000+00:00")
            ],
            vec![
                Sql::Null,
                Sql::Null,
                Sql::Null,
                txt("t"),
                int(4),
                Sql::Null,
                txt("2023-11-14 22:13:20.000000+00:00")
            ],
        ]
    );
}

#[tokio::test]
async fn soft_delete_mode_flags_rows_and_reinserts_clear_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(
        &dir,
        TableMapping {
            write_mode: WriteMode::SoftDelete,
            ..Default::default()
        },
    )
    .await;
    let items = items();
    let mut stream = Stream::new(0);
    s.apply(&stream.batch(
        &items,
        vec![
            insert(&items, vec![i(1), t("a"), i(1)]),
            insert(&items, vec![i(2), t("b"), i(2)]),
        ],
    ))
    .await
    .unwrap();
    s.apply(&stream.batch(
        &items,
        vec![
            delete(&items, vec![i(1), Value::Null, Value::Null]),
            delete(&items, vec![i(2), Value::Null, Value::Null]),
            insert(&items, vec![i(2), t("b2"), i(22)]),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(
            &dir,
            r#"SELECT id, name, n, _cdc_deleted FROM "items" ORDER BY id"#
        ),
        vec![
            vec![int(1), txt("a"), int(1), int(1)],
            vec![int(2), txt("b2"), int(22), int(0)],
        ]
    );
    s.apply(&stream.batch(&items, vec![truncate(&items)]))
        .await
        .unwrap();
    assert_eq!(
        rows(&dir, r#"SELECT sum(_cdc_deleted) FROM "items""#),
        vec![vec![int(2)]]
    );
}

#[tokio::test]
async fn renames_exclusions_type_overrides_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = TableMapping {
        exclude: vec!["app.skip*".into()],
        tables: vec![TableRule {
            schema: "app".into(),
            table: "items".into(),
            target: Some("goods".into()),
            rename_columns: [("name".to_string(), "label".to_string())].into(),
            exclude_columns: vec!["n".into()],
            type_overrides: [("name".to_string(), "VARCHAR(200)".to_string())].into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut s = sink(&dir, mapping).await;
    let items = items();
    let skipped = schema(("app", "skipped"), vec![col("id", INT)]);
    let mut stream = Stream::new(0);
    s.apply(&stream.batch_of(vec![
        (items.clone(), insert(&items, vec![i(1), t("a"), i(1)])),
        (skipped.clone(), insert(&skipped, vec![i(1)])),
    ]))
    .await
    .unwrap();
    assert_eq!(
        rows(&dir, r#"SELECT * FROM "goods""#),
        vec![vec![int(1), txt("a")]]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT type FROM pragma_table_info('goods') WHERE name = 'label'"
        ),
        vec![vec![txt("VARCHAR(200)")]]
    );
    assert!(rows(&dir, "SELECT 1 FROM sqlite_master WHERE name = 'skipped'").is_empty());
}

#[tokio::test]
async fn hostile_identifiers_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&dir, TableMapping::default()).await;
    let hostile = schema(
        ("s\"; DROP TABLE x; --", "t\"a`b le ü"),
        vec![col("i\"d`", INT), col("na me'\"", text())],
    );
    let mut stream = Stream::new(0);
    s.apply(&stream.batch(
        &hostile,
        vec![
            insert(&hostile, vec![i(1), t("x")]),
            update(&hostile, vec![i(1), t("y")]),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(&dir, r#"SELECT "i""d`", "na me'""" FROM "t""a`b le ü""#),
        vec![vec![int(1), txt("y")]]
    );
}

#[tokio::test]
async fn schema_evolution_adds_widens_keeps_or_drops_and_rejects_narrowing() {
    for dropped in [DroppedColumns::KeepNullable, DroppedColumns::Drop] {
        let dir = tempfile::tempdir().unwrap();
        let mapping = TableMapping {
            dropped_columns: dropped,
            ..Default::default()
        };
        let mut s = sink(&dir, mapping).await;
        let v1 = schema(
            ("app", "e"),
            vec![
                col("id", INT),
                col("old", text()),
                col(
                    "w",
                    DataType::Int {
                        bits: 32,
                        signed: true,
                    },
                ),
            ],
        );
        let v2 = schema(
            ("app", "e"),
            vec![col("id", INT), col("w", INT), col("new", text())],
        );
        let mut stream = Stream::new(0);
        s.apply(&stream.batch(&v1, vec![insert(&v1, vec![i(1), t("o"), i(5)])]))
            .await
            .unwrap();
        s.apply(&stream.schema(&v2)).await.unwrap();
        s.apply(&stream.batch(&v2, vec![insert(&v2, vec![i(2), i(i64::MAX), t("n")])]))
            .await
            .unwrap();
        let names: Vec<Vec<Sql>> =
            rows(&dir, "SELECT name FROM pragma_table_info('e') ORDER BY cid");
        let expected: Vec<&str> = match dropped {
            DroppedColumns::KeepNullable => vec!["id", "old", "w", "new"],
            DroppedColumns::Drop => vec!["id", "w", "new"],
        };
        assert_eq!(
            names,
            expected.iter().map(|n| vec![txt(n)]).collect::<Vec<_>>()
        );
        assert_eq!(
            rows(&dir, r#"SELECT w FROM "e" WHERE id = 2"#),
            vec![vec![int(i64::MAX)]]
        );
        let v3 = schema(
            ("app", "e"),
            vec![
                col("id", INT),
                col(
                    "w",
                    DataType::Int {
                        bits: 16,
                        signed: true,
                    },
                ),
            ],
        );
        let err = s.apply(&stream.schema(&v3)).await.unwrap_err();
        assert!(matches!(err, SinkError::IncompatibleSchema { .. }), "{err}");
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn copied_rows_upsert_without_moving_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = sink(&dir, TableMapping::default()).await;
    let items = items();
    let mut stream = Stream::new(0);
    let copied = stream.copied(&items, vec![read(&items, vec![i(1), t("a"), i(1)])]);
    target.apply(&copied).await.unwrap();
    assert_eq!(target.stored_offset().await.unwrap(), None);
    let b = stream.batch(&items, vec![insert(&items, vec![i(2), t("b"), i(2)])]);
    target.apply(&b).await.unwrap();
    let copied = vec![
        read(&items, vec![i(2), t("b2"), i(22)]),
        read(&items, vec![i(3), t("c"), i(3)]),
    ];
    target.apply(&stream.copied(&items, copied)).await.unwrap();
    drop(target);
    let mut target = sink(&dir, TableMapping::default()).await;
    assert_eq!(target.stored_offset().await.unwrap(), Some(b.last_offset));
    assert_eq!(
        rows(&dir, "SELECT id, name, n FROM items ORDER BY id"),
        vec![
            vec![int(1), txt("a"), int(1)],
            vec![int(2), txt("b2"), int(22)],
            vec![int(3), txt("c"), int(3)]
        ]
    );
    let history = TableMapping {
        tables: vec![TableRule {
            schema: "app".into(),
            table: "items".into(),
            write_mode: Some(WriteMode::History),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut target = sink_at(&dir, "history.sqlite", history).await;
    let copied = vec![read(&items, vec![i(1), t("a"), i(1)])];
    let err = target
        .apply(&stream.copied(&items, copied))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unsupported { .. }), "{err}");
}

async fn sink_at(dir: &tempfile::TempDir, file: &str, mapping: TableMapping) -> SqliteSink {
    let mut config = SqliteConfig::new(dir.path().join(file));
    config.mapping = mapping;
    SqliteSink::open(config).await.unwrap()
}
