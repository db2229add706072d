//! The JSON-lines file sink.

mod fixture;

use cdc_core::Sink;
use cdc_core::event::Value;
use cdc_sinks::{JsonlConfig, JsonlSink, TableMapping, TableRule};
use fixture::*;
use serde_json::Value as Json;

fn read_lines(dir: &std::path::Path) -> Vec<Json> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn changes_are_written_as_debezium_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = JsonlConfig::new(dir.path());
    config.mapping = TableMapping {
        tables: vec![TableRule {
            schema: "app".into(),
            table: "items".into(),
            rename_columns: [("n".to_string(), "count".to_string())].into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut sink = JsonlSink::open(config).await.unwrap();
    let items = items();
    let mut stream = Stream::new(0);
    sink.apply(&stream.batch(
        &items,
        vec![
            insert(&items, vec![i(1), t("a"), Value::UInt(u64::MAX)]),
            update(&items, vec![i(1), Value::Unchanged, dec("1.50")]),
            delete(&items, vec![i(1), Value::Null, Value::Null]),
            truncate(&items),
        ],
    ))
    .await
    .unwrap();
    let lines = read_lines(dir.path());
    let ops: Vec<&str> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["c", "u", "d", "t"]);
    assert_eq!(lines[0]["before"], Json::Null);
    assert_eq!(
        lines[0]["after"]["count"].to_string(),
        "18446744073709551615"
    );
    assert_eq!(lines[1]["after"]["name"], "__debezium_unavailable_value");
    assert_eq!(lines[1]["after"]["count"], "1.50");
    assert_eq!(lines[2]["before"]["id"], 1);
    assert_eq!(lines[2]["after"], Json::Null);
    assert_eq!(lines[0]["source"]["table"], "items");
    assert_eq!(lines[0]["source"]["db"], "app");
    assert_eq!(lines[0]["source"]["offset"], 1);
    assert_eq!(lines[0]["ts_ms"], 1_700_000_000_000i64);
    assert_eq!(lines[3]["before"], Json::Null);
}

#[tokio::test]
async fn a_restart_cuts_uncommitted_lines_and_keeps_committed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = JsonlConfig::new(dir.path());
    config.max_file_bytes = 600;
    let mut sink = JsonlSink::open(config.clone()).await.unwrap();
    let items = items();
    let mut stream = Stream::new(0);
    let mut last = 0;
    for n in 0..6 {
        let b = stream.batch(
            &items,
            vec![
                insert(&items, vec![i(n), t("a"), i(n)]),
                insert(&items, vec![i(n + 100), t("b"), i(n)]),
            ],
        );
        sink.apply(&b).await.unwrap();
        last = b.last_offset;
    }
    drop(sink);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(files > 2, "files rolled: {files}");
    // A crash after writing but before the sidecar commit: a torn line in the
    // current file and a file started after the commit.
    let committed = read_lines(dir.path());
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    let current = names.last().unwrap().clone();
    let mut text = std::fs::read(&current).unwrap();
    text.extend_from_slice(b"{\"before\":null,\"after\":{\"id\":99");
    std::fs::write(&current, text).unwrap();
    std::fs::write(dir.path().join("changes-000099.jsonl"), "{}\n").unwrap();

    let mut sink = JsonlSink::open(config).await.unwrap();
    assert_eq!(sink.stored_offset().await.unwrap(), Some(last));
    assert_eq!(read_lines(dir.path()), committed);
    let b = stream.batch(&items, vec![insert(&items, vec![i(7), t("c"), i(7)])]);
    sink.apply(&b).await.unwrap();
    let offsets: Vec<u64> = read_lines(dir.path())
        .iter()
        .map(|l| l["source"]["offset"].as_u64().unwrap())
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(offsets, sorted, "every line once, in order");
    assert_eq!(offsets.len(), 13);
}

#[tokio::test]
async fn copied_rows_are_committed_lines_that_move_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = JsonlConfig::new(dir.path());
    let mut sink = JsonlSink::open(config.clone()).await.unwrap();
    let items = items();
    let mut stream = Stream::new(0);
    let copied = stream.copied(&items, vec![read(&items, vec![i(1), t("a"), i(1)])]);
    sink.apply(&copied).await.unwrap();
    assert_eq!(sink.stored_offset().await.unwrap(), None);
    let b = stream.batch(&items, vec![insert(&items, vec![i(2), t("b"), i(2)])]);
    sink.apply(&b).await.unwrap();
    let copied = stream.copied(&items, vec![read(&items, vec![i(3), t("c"), i(3)])]);
    sink.apply(&copied).await.unwrap();
    drop(sink);

    // The copied lines survive a reopen (they are committed), the offset is the batch's.
    let mut sink = JsonlSink::open(config).await.unwrap();
    assert_eq!(sink.stored_offset().await.unwrap(), Some(b.last_offset));
    let ops: Vec<_> = read_lines(dir.path())
        .iter()
        .map(|l| {
            (
                l["after"]["id"].as_i64().unwrap(),
                l["op"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(ops, [(1, "r".into()), (2, "c".into()), (3, "r".into())]);
}
