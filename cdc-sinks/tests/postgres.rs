//! The PostgreSQL sink against a real PostgreSQL 15 from the test kit.

mod fixture;
mod scenario;

use cdc_core::Sink;
use cdc_sinks::{Dialect, PostgresConfig, PostgresSink, TableMapping};
use fixture::*;
use scenario::{Db, s};
use tokio_postgres::{NoTls, SimpleQueryMessage};

struct Pg {
    server: cdc_testkit::Postgres,
}

impl Pg {
    fn start() -> Self {
        let server = cdc_testkit::Postgres::start()
            .expect("PostgreSQL 15 from the test kit is required for this test");
        Self { server }
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.server.connection_string(), NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

impl Db for Pg {
    type S = PostgresSink;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn sink(&self, ns: &str, mapping: TableMapping) -> PostgresSink {
        let mut config = PostgresConfig::new(self.server.connection_string());
        config.schema = ns.into();
        config.mapping = mapping;
        PostgresSink::connect(config).await.unwrap()
    }

    async fn exec(&self, ns: &str, sql: &str) {
        let client = self.client().await;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}; {sql}",
                Dialect::Postgres.ident(ns)
            ))
            .await
            .unwrap();
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let client = self.client().await;
        client
            .batch_execute("SET TIME ZONE 'UTC'; SET extra_float_digits = 1")
            .await
            .unwrap();
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    fn truth(&self, b: bool) -> &'static str {
        if b { "t" } else { "f" }
    }
}

#[tokio::test]
async fn upserts_deletes_and_unchanged_values_commit_with_the_offset() {
    scenario::upserts_deletes_unchanged_and_offset(&Pg::start()).await;
}

#[tokio::test]
async fn copied_rows_upsert_without_moving_the_offset() {
    scenario::copied_rows_move_no_offset(&Pg::start()).await;
}

#[tokio::test]
async fn prepare_modes_keep_truncate_or_recreate_existing_tables() {
    scenario::prepare_modes(&Pg::start()).await;
}

#[tokio::test]
async fn history_and_soft_delete_modes_write_what_they_promise() {
    scenario::history_and_soft_delete_modes(&Pg::start()).await;
}

#[tokio::test]
async fn renames_overrides_filters_and_hostile_identifiers_apply() {
    scenario::renames_overrides_filters_and_hostile_identifiers(&Pg::start()).await;
}

#[tokio::test]
async fn schema_evolution_adds_widens_keeps_or_drops_and_rejects_narrowing() {
    scenario::schema_evolution(&Pg::start()).await;
}

#[tokio::test]
async fn every_value_type_is_written_with_postgres_types() {
    let pg = Pg::start();
    let mut sink = pg.sink("types", TableMapping::default()).await;
    let (cols, values): (Vec<_>, Vec<_>) = every_type().into_iter().unzip();
    let names: Vec<String> = cols
        .iter()
        .map(|c| Dialect::Postgres.ident(&c.name))
        .collect();
    let all = schema(("app", "all"), cols);
    let mut stream = Stream::new(0);
    sink.apply(&stream.batch(&all, vec![insert(&all, values)]))
        .await
        .unwrap();
    let got = pg
        .rows(&format!("SELECT {} FROM types.\"all\"", names.join(", ")))
        .await;
    let expected = vec![
        s("1"),
        s("t"),
        s("-32768"),
        s(&i64::MIN.to_string()),
        s("4294967295"),
        s("18446744073709551615"),
        s("1.5"),
        s("-2.25e+100"),
        s("-12345678901234567890.0123456789"),
        s("3.14159265358979323846264338327950288"),
        s("h\u{e9}llo 'quoted' \"x\" \\ \u{1F600}"),
        s("short"),
        s("\\x0001ff27"),
        s("10101"),
        s("2024-02-29"),
        s("13:05:09.000001"),
        s("01:00:00+02"),
        s("2024-02-29 13:05:09.000001"),
        s("2024-02-29 13:05:09.000001+00"),
        s("1 year 2 mons 3 days 01:02:03.000007"),
        s("abababab-abab-abab-abab-abababababab"),
        s(r#"{"a": [1, 2.5, "x"]}"#),
        s("happy"),
        s("{a,c}"),
        s("\\x0101000000"),
        s("{1,NULL,3}"),
        s("(1,2)"),
        None,
    ];
    assert_eq!(got, vec![expected]);
    let types = pg
        .rows(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = 'types.\"all\"'::regclass AND attnum > 0 ORDER BY attnum",
        )
        .await;
    let types: Vec<String> = types.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(types[5], "numeric(20,0)");
    assert_eq!(types[9], "numeric");
    assert_eq!(types[18], "timestamp with time zone");
    assert_eq!(types[21], "jsonb");
    assert_eq!(types[25], "bigint[]");
}
