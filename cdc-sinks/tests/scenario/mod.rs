//! Behaviour scenarios shared by the server-backed sinks (PostgreSQL, MariaDB).
#![allow(dead_code)]

use cdc_core::Sink;
use cdc_core::event::{DataType, Value};
use cdc_sinks::{
    Dialect, DroppedColumns, PrepareMode, SinkError, TableMapping, TableRule, WriteMode,
};

use crate::fixture::*;

/// A destination under test: makes sinks in a namespace and reads rows as text.
pub trait Db {
    /// The sink type.
    type S: Sink<Error = SinkError>;
    /// Identifier quoting of the destination.
    fn dialect(&self) -> Dialect;
    /// A sink writing into namespace `ns` (a schema or database) with `mapping`.
    async fn sink(&self, ns: &str, mapping: TableMapping) -> Self::S;
    /// Runs a statement (creating `ns` first if needed).
    async fn exec(&self, ns: &str, sql: &str);
    /// Rows as text, NULL as `None`.
    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>>;
    /// Text form of a boolean column value.
    fn truth(&self, b: bool) -> &'static str;
}

pub fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn q<D: Db>(db: &D, ns: &str, table: &str) -> String {
    db.dialect().qualified(ns, table)
}

pub async fn upserts_deletes_unchanged_and_offset(db: &impl Db) {
    let ns = "sc_upsert";
    let mut sink = db.sink(ns, TableMapping::default()).await;
    assert_eq!(sink.stored_offset().await.unwrap(), None);
    let items = items();
    let mut stream = Stream::new(0);
    let b1 = stream.batch(
        &items,
        vec![
            insert(&items, vec![i(1), t("a"), i(10)]),
            insert(&items, vec![i(2), t("b"), i(20)]),
            insert(&items, vec![i(3), t("c"), i(30)]),
            update(&items, vec![i(3), t("c1"), i(31)]),
        ],
    );
    sink.apply(&b1).await.unwrap();
    let b2 = stream.batch(
        &items,
        vec![
            update(&items, vec![i(1), Value::Unchanged, i(11)]),
            update(&items, vec![i(1), Value::Unchanged, i(12)]),
            delete(&items, vec![i(2), Value::Null, Value::Null]),
            delete(&items, vec![i(3), Value::Null, Value::Null]),
            insert(&items, vec![i(3), t("c2"), i(33)]),
            insert(&items, vec![i(4), t("d"), i(40)]),
            delete(&items, vec![i(4), Value::Null, Value::Null]),
        ],
    );
    sink.apply(&b2).await.unwrap();
    let table = q(db, ns, "items");
    let select = format!("SELECT id, name, n FROM {table} ORDER BY id");
    assert_eq!(
        db.rows(&select).await,
        vec![
            vec![s("1"), s("a"), s("12")],
            vec![s("3"), s("c2"), s("33")]
        ]
    );
    drop(sink);
    let mut sink = db.sink(ns, TableMapping::default()).await;
    assert_eq!(sink.stored_offset().await.unwrap(), Some(b2.last_offset));

    // A batch failing half-way leaves nothing and keeps the offset.
    let small = schema(
        ("app", "small"),
        vec![
            col("id", INT),
            col(
                "v",
                DataType::Int {
                    bits: 16,
                    signed: true,
                },
            ),
        ],
    );
    let bad = stream.batch_of(vec![
        (items.clone(), insert(&items, vec![i(9), t("z"), i(9)])),
        (small.clone(), insert(&small, vec![i(1), i(70_000)])),
    ]);
    assert!(sink.apply(&bad).await.is_err());
    assert_eq!(sink.stored_offset().await.unwrap(), Some(b2.last_offset));
    assert_eq!(db.rows(&select).await.len(), 2);
    // The sink recovers from the failed transaction.
    let b3 = stream.batch(&items, vec![insert(&items, vec![i(5), t("e"), i(50)])]);
    sink.apply(&b3).await.unwrap();
    assert_eq!(db.rows(&select).await.len(), 3);
}

pub async fn prepare_modes(db: &impl Db) {
    for (mode, expected) in [
        (PrepareMode::Keep, vec!["1", "2"]),
        (PrepareMode::Truncate, vec!["2"]),
        (PrepareMode::Recreate, vec!["2"]),
    ] {
        let ns = format!("sc_prepare_{mode:?}").to_lowercase();
        let table = q(db, &ns, "items");
        db.exec(
            &ns,
            &format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, n BIGINT, extra TEXT)"
            ),
        )
        .await;
        db.exec(
            &ns,
            &format!("INSERT INTO {table} VALUES (1, 'old', 1, 'x')"),
        )
        .await;
        let mapping = TableMapping {
            prepare: mode,
            ..Default::default()
        };
        let mut sink = db.sink(&ns, mapping.clone()).await;
        let items = items();
        let mut stream = Stream::new(0);
        sink.apply(&stream.batch(&items, vec![insert(&items, vec![i(2), t("b"), i(2)])]))
            .await
            .unwrap();
        let ids = db
            .rows(&format!("SELECT id FROM {table} ORDER BY id"))
            .await;
        let expected_rows: Vec<Vec<Option<String>>> = expected.iter().map(|e| vec![s(e)]).collect();
        assert_eq!(ids, expected_rows, "{mode:?}");
        // Prepare runs once: a restarted sink does not truncate again.
        drop(sink);
        let mut sink = db.sink(&ns, mapping).await;
        sink.apply(&stream.batch(&items, vec![insert(&items, vec![i(3), t("c"), i(3)])]))
            .await
            .unwrap();
        let count = db.rows(&format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(
            count[0][0],
            s(&(expected.len() + 1).to_string()),
            "{mode:?}"
        );
    }
}

pub async fn history_and_soft_delete_modes(db: &impl Db) {
    let ns = "sc_modes";
    let mapping = TableMapping {
        tables: vec![
            TableRule {
                schema: "app".into(),
                table: "items".into(),
                target: Some("items_history".into()),
                write_mode: Some(WriteMode::History),
                ..Default::default()
            },
            TableRule {
                schema: "app".into(),
                table: "soft".into(),
                write_mode: Some(WriteMode::SoftDelete),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut sink = db.sink(ns, mapping).await;
    let items = items();
    let soft = schema(("app", "soft"), items.columns.clone());
    let mut stream = Stream::new(0);
    let b = stream.batch_of(vec![
        (items.clone(), insert(&items, vec![i(1), t("a"), i(1)])),
        (
            items.clone(),
            update(&items, vec![i(1), Value::Unchanged, i(2)]),
        ),
        (
            items.clone(),
            delete(&items, vec![i(1), Value::Null, Value::Null]),
        ),
        (items.clone(), truncate(&items)),
        (soft.clone(), insert(&soft, vec![i(1), t("a"), i(1)])),
        (soft.clone(), insert(&soft, vec![i(2), t("b"), i(2)])),
        (
            soft.clone(),
            delete(&soft, vec![i(1), Value::Null, Value::Null]),
        ),
    ]);
    sink.apply(&b).await.unwrap();
    let b2 = stream.batch(
        &soft,
        vec![
            delete(&soft, vec![i(2), Value::Null, Value::Null]),
            insert(&soft, vec![i(2), t("b2"), i(22)]),
        ],
    );
    sink.apply(&b2).await.unwrap();
    let history = db
        .rows(&format!(
            "SELECT id, name, n, _cdc_op, _cdc_offset, _cdc_unchanged FROM {} ORDER BY _cdc_offset",
            q(db, ns, "items_history")
        ))
        .await;
    assert_eq!(
        history,
        vec![
            vec![s("1"), s("a"), s("1"), s("c"), s("1"), None],
            vec![s("1"), None, s("2"), s("u"), s("2"), s(r#"["name"]"#)],
            vec![s("1"), None, None, s("d"), s("3"), None],
            vec![None, None, None, s("t"), s("4"), None],
        ]
    );
    let softs = db
        .rows(&format!(
            "SELECT id, name, n, _cdc_deleted FROM {} ORDER BY id",
            q(db, ns, "soft")
        ))
        .await;
    assert_eq!(
        softs,
        vec![
            vec![s("1"), s("a"), s("1"), s(db.truth(true))],
            vec![s("2"), s("b2"), s("22"), s(db.truth(false))],
        ]
    );
    sink.apply(&stream.batch(&soft, vec![truncate(&soft)]))
        .await
        .unwrap();
    let flags = db
        .rows(&format!("SELECT _cdc_deleted FROM {}", q(db, ns, "soft")))
        .await;
    assert!(flags.iter().all(|r| r[0] == s(db.truth(true))));
}

pub async fn renames_overrides_filters_and_hostile_identifiers(db: &impl Db) {
    let ns = "sc map \"`'ü";
    let mapping = TableMapping {
        exclude: vec!["app.skip*".into()],
        tables: vec![TableRule {
            schema: "app".into(),
            table: "items".into(),
            target: Some("goods \"`'ü".into()),
            rename_columns: [("name".to_string(), "la`bel \"x\"".to_string())].into(),
            exclude_columns: vec!["n".into()],
            type_overrides: [("id".to_string(), "VARCHAR(40)".to_string())].into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut sink = db.sink(ns, mapping).await;
    let items = items();
    let skipped = schema(("app", "skipped"), vec![col("id", INT)]);
    let hostile = schema(
        ("s\"; DROP TABLE x; --", "t\"a`b le ü"),
        vec![col("i\"d`", INT), col("na me'\"", text())],
    );
    let mut stream = Stream::new(0);
    sink.apply(&stream.batch_of(vec![
        (
            items.clone(),
            insert(&items, vec![i(1), t("a'); DROP TABLE x; --"), i(1)]),
        ),
        (skipped.clone(), insert(&skipped, vec![i(1)])),
        (hostile.clone(), insert(&hostile, vec![i(1), t("x")])),
        (hostile.clone(), update(&hostile, vec![i(1), t("y")])),
    ]))
    .await
    .unwrap();
    let d = db.dialect();
    assert_eq!(
        db.rows(&format!(
            "SELECT {}, {} FROM {}",
            d.ident("id"),
            d.ident("la`bel \"x\""),
            q(db, ns, "goods \"`'ü")
        ))
        .await,
        vec![vec![s("1"), s("a'); DROP TABLE x; --")]]
    );
    assert_eq!(
        db.rows(&format!(
            "SELECT {}, {} FROM {}",
            d.ident("i\"d`"),
            d.ident("na me'\""),
            q(db, ns, "t\"a`b le ü")
        ))
        .await,
        vec![vec![s("1"), s("y")]]
    );
    let skipped_exists = db
        .rows("SELECT count(*) FROM information_schema.tables WHERE table_name = 'skipped'")
        .await;
    assert_eq!(skipped_exists, vec![vec![s("0")]]);
}

pub async fn schema_evolution(db: &impl Db) {
    for dropped in [DroppedColumns::KeepNullable, DroppedColumns::Drop] {
        let ns = format!("sc_evolve_{dropped:?}").to_lowercase();
        let mapping = TableMapping {
            dropped_columns: dropped,
            ..Default::default()
        };
        let mut sink = db.sink(&ns, mapping).await;
        let narrow = DataType::Text {
            max_chars: Some(5),
            fixed: false,
        };
        let wide = DataType::Text {
            max_chars: Some(50),
            fixed: false,
        };
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
                col("s", narrow),
            ],
        );
        let v2 = schema(
            ("app", "e"),
            vec![
                col("id", INT),
                col("w", INT),
                col("s", wide),
                col("new", text()),
            ],
        );
        let mut stream = Stream::new(0);
        sink.apply(&stream.batch(&v1, vec![insert(&v1, vec![i(1), t("o"), i(5), t("abc")])]))
            .await
            .unwrap();
        sink.apply(&stream.schema(&v2)).await.unwrap();
        let long = "x".repeat(40);
        sink.apply(&stream.batch(
            &v2,
            vec![insert(&v2, vec![i(2), i(i64::MAX), t(&long), t("n")])],
        ))
        .await
        .unwrap();
        let table = q(db, &ns, "e");
        let d = db.dialect();
        let rows = db
            .rows(&format!(
                "SELECT {}, {}, {}, {} FROM {table} ORDER BY {}",
                d.ident("id"),
                d.ident("w"),
                d.ident("s"),
                d.ident("new"),
                d.ident("id")
            ))
            .await;
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("5"), s("abc"), None],
                vec![s("2"), s(&i64::MAX.to_string()), s(&long), s("n")],
            ]
        );
        let old = db
            .rows(&format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{ns}'
                 AND table_name = 'e' AND column_name = 'old'"
            ))
            .await;
        let expected = if dropped == DroppedColumns::Drop {
            "0"
        } else {
            "1"
        };
        assert_eq!(old, vec![vec![s(expected)]], "{dropped:?}");
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
        let err = sink.apply(&stream.schema(&v3)).await.unwrap_err();
        assert!(matches!(err, SinkError::IncompatibleSchema { .. }), "{err}");
        assert!(!err.is_retryable());
    }
}

/// Rows a backfill copies land like upserts, in one transaction, and never
/// move the stored offset; a history table refuses them.
pub async fn copied_rows_move_no_offset(db: &impl Db) {
    let ns = "sc_copied";
    let items = items();
    let table = q(db, ns, "items");
    let select = format!("SELECT id, name, n FROM {table} ORDER BY id");

    // Copied before anything was applied: still no offset.
    let mut sink = db.sink(ns, TableMapping::default()).await;
    let mut stream = Stream::new(0);
    let first = stream.copied(&items, vec![read(&items, vec![i(1), t("a"), i(10)])]);
    sink.apply(&first).await.unwrap();
    assert_eq!(sink.stored_offset().await.unwrap(), None);

    let b1 = stream.batch(&items, vec![insert(&items, vec![i(2), t("b"), i(20)])]);
    sink.apply(&b1).await.unwrap();
    // Over a row the target holds, and a new one.
    let rows = vec![
        read(&items, vec![i(2), t("b2"), i(21)]),
        read(&items, vec![i(3), t("c"), i(30)]),
    ];
    sink.apply(&stream.copied(&items, rows)).await.unwrap();
    drop(sink);
    let mut sink = db.sink(ns, TableMapping::default()).await;
    assert_eq!(sink.stored_offset().await.unwrap(), Some(b1.last_offset));
    assert_eq!(
        db.rows(&select).await,
        vec![
            vec![s("1"), s("a"), s("10")],
            vec![s("2"), s("b2"), s("21")],
            vec![s("3"), s("c"), s("30")]
        ]
    );

    // A truncate first, then rows, as a truncate-first backfill copies them.
    let truncate = change(&items, cdc_core::event::ChangeKind::Truncate, None, None);
    sink.apply(&stream.copied(&items, vec![truncate]))
        .await
        .unwrap();
    let rows = vec![read(&items, vec![i(3), t("c3"), i(33)])];
    sink.apply(&stream.copied(&items, rows)).await.unwrap();
    assert_eq!(db.rows(&select).await, vec![vec![s("3"), s("c3"), s("33")]]);
    assert_eq!(sink.stored_offset().await.unwrap(), Some(b1.last_offset));

    let history = TableMapping {
        tables: vec![TableRule {
            schema: "app".into(),
            table: "items".into(),
            target: Some("items_history".into()),
            write_mode: Some(WriteMode::History),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut sink = db.sink("sc_copied_history", history).await;
    let rows = vec![read(&items, vec![i(1), t("a"), i(10)])];
    let err = sink.apply(&stream.copied(&items, rows)).await.unwrap_err();
    assert!(matches!(err, SinkError::Unsupported { .. }), "{err}");
}
