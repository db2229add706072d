//! The MySQL/MariaDB sink against a real MariaDB 10.11 from the test kit.

mod fixture;
mod scenario;

use cdc_core::Sink;
use cdc_sinks::{Dialect, MySqlConfig, MySqlSink, TableMapping, TableRule};
use fixture::*;
use mysql_async::prelude::Queryable;
use scenario::{Db, s};

struct Maria {
    server: cdc_testkit::MariaDb,
}

impl Maria {
    fn start() -> Self {
        let server = cdc_testkit::MariaDb::start()
            .expect("MariaDB from the test kit is required for this test");
        Self { server }
    }

    async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.server.url())
            .await
            .unwrap()
    }
}

impl Db for Maria {
    type S = MySqlSink;

    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    async fn sink(&self, ns: &str, mapping: TableMapping) -> MySqlSink {
        let mut config = MySqlConfig::new(self.server.url());
        config.database = Some(ns.into());
        config.mapping = mapping;
        MySqlSink::connect(config).await.unwrap()
    }

    async fn exec(&self, ns: &str, sql: &str) {
        let mut conn = self.conn().await;
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            Dialect::MySql.ident(ns)
        ))
        .await
        .unwrap();
        conn.query_drop(sql).await.unwrap();
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut conn = self.conn().await;
        conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
        rows.into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => Some(String::from_utf8(b).unwrap()),
                        other => Some(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect()
    }

    fn truth(&self, b: bool) -> &'static str {
        if b { "1" } else { "0" }
    }
}

#[tokio::test]
async fn upserts_deletes_and_unchanged_values_commit_with_the_offset() {
    scenario::upserts_deletes_unchanged_and_offset(&Maria::start()).await;
}

#[tokio::test]
async fn copied_rows_upsert_without_moving_the_offset() {
    scenario::copied_rows_move_no_offset(&Maria::start()).await;
}

#[tokio::test]
async fn prepare_modes_keep_truncate_or_recreate_existing_tables() {
    scenario::prepare_modes(&Maria::start()).await;
}

#[tokio::test]
async fn history_and_soft_delete_modes_write_what_they_promise() {
    scenario::history_and_soft_delete_modes(&Maria::start()).await;
}

#[tokio::test]
async fn renames_overrides_filters_and_hostile_identifiers_apply() {
    scenario::renames_overrides_filters_and_hostile_identifiers(&Maria::start()).await;
}

#[tokio::test]
async fn schema_evolution_adds_widens_keeps_or_drops_and_rejects_narrowing() {
    scenario::schema_evolution(&Maria::start()).await;
}

#[tokio::test]
async fn every_value_type_is_written_with_mysql_types() {
    let db = Maria::start();
    let mapping = TableMapping {
        tables: vec![TableRule {
            schema: "app".into(),
            table: "all".into(),
            // 35 fractional digits exceed DECIMAL(65,30): keep them exact as text.
            type_overrides: [("d_free".to_string(), "LONGTEXT".to_string())].into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut sink = db.sink("types", mapping).await;
    let (cols, values): (Vec<_>, Vec<_>) = every_type().into_iter().unzip();
    let names: Vec<String> = cols
        .iter()
        .map(|c| match c.name.as_str() {
            "bytes" | "geo" => format!("HEX(`{}`)", c.name),
            "bits" => "`bits` + 0".to_string(),
            n => format!("`{n}`"),
        })
        .collect();
    let all = schema(("app", "all"), cols);
    let mut stream = Stream::new(0);
    sink.apply(&stream.batch(&all, vec![insert(&all, values)]))
        .await
        .unwrap();
    let got = db
        .rows(&format!("SELECT {} FROM types.`all`", names.join(", ")))
        .await;
    let expected = vec![
        s("1"),
        s("1"),
        s("-32768"),
        s(&i64::MIN.to_string()),
        s("4294967295"),
        s("18446744073709551615"),
        s("1.5"),
        s("-2.25e100"),
        s("-12345678901234567890.0123456789"),
        s("3.14159265358979323846264338327950288"),
        s("h\u{e9}llo 'quoted' \"x\" \\ \u{1F600}"),
        s("short"),
        s("0001FF27"),
        s("21"),
        s("2024-02-29"),
        s("13:05:09.000001"),
        s("01:00:00.000000+02:00"),
        s("2024-02-29 13:05:09.000001"),
        s("2024-02-29 13:05:09.000001"),
        s("P14M3DT3723.000007S"),
        s("abababab-abab-abab-abab-abababababab"),
        s(r#"{"a": [1, 2.5, "x"]}"#),
        s("happy"),
        s("a,c"),
        s("0101000000"),
        s("[1,null,3]"),
        s("(1,2)"),
        None,
    ];
    assert_eq!(got, vec![expected]);
    let bounded = db
        .rows(
            "SELECT column_type FROM information_schema.columns WHERE table_schema = 'types'
             AND table_name = 'all' AND column_name IN ('u64', 'd_bounded', 'tstz') ORDER BY column_name",
        )
        .await;
    assert_eq!(
        bounded,
        vec![
            vec![s("decimal(30,10)")],
            vec![s("datetime(6)")],
            vec![s("bigint(20) unsigned")],
        ]
    );
}
