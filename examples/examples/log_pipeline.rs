//! The change log and a pipeline, end to end, on local disk.
//!
//! A tiny in-process source produces order transactions; the source runner
//! appends them durably to a change log and acknowledges them; a pipeline then
//! delivers whole transactions to a JSON-lines file and commits its cursor.
//!
//! ```text
//! cargo run -p cdc-examples --example log_pipeline -- /tmp/cdc-demo
//! ```
//!
//! Run it again with the same directory: the source resumes after the log's last
//! durable position and the pipeline after its cursor, so `changes.jsonl` gains
//! only the new transactions, with no gap and no duplicate.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cdc_core::event::{
    Begin, Change, ChangeKind, Column, Commit, DataType, Record, SourcePosition, TableName,
    TableSchema, Value,
};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig, Sink, SinkBatch, SinkEvent, Source, SourceBatch};

/// Transactions the demo source produces per run.
const TRANSACTIONS_PER_RUN: u64 = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cdc-log-pipeline-demo"));
    std::fs::create_dir_all(&dir)?;
    let log = ChangeLog::open(dir.join("log"), LogConfig::default())?;

    // 1. Source -> log: appended durably, then acknowledged to the source.
    let mut source = DemoSource::default();
    let ingested = ingest::run(&mut source, &log, &CancellationToken::new()).await?;
    println!(
        "appended {} records, source at {:?}",
        ingested.appended, ingested.last_position
    );

    // 2. Log -> sink: a pipeline with its own durable cursor.
    let sink = JsonLinesSink::open(&dir.join("changes.jsonl"))?;
    let handle = Pipeline::new(log.clone(), PipelineConfig::new("demo-files"), sink)?
        .start()
        .await?;
    // Pause exactly at the log's end: every record before it is in the file.
    let at = handle.pause_at(log.offsets().durable).await?;
    println!("paused at offset {at}; lag {:?}", handle.lag());
    let summary = handle.shutdown().await?;
    println!(
        "pipeline applied {} events in {} batches; cursor at {}; output in {}",
        summary.events,
        summary.batches,
        summary.next_offset,
        dir.join("changes.jsonl").display()
    );
    log.close().await?;
    Ok(())
}

/// A source that invents a few order transactions, resuming after a position.
#[derive(Default)]
struct DemoSource {
    tables: Vec<TableName>,
    next_lsn: u64,
    remaining: u64,
    needs_schema: bool,
}

fn orders() -> TableName {
    TableName::new("shop", "orders")
}

#[async_trait]
impl Source for DemoSource {
    type Error = std::io::Error;

    fn tables(&self) -> &[TableName] {
        &self.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), Self::Error> {
        self.tables = vec![orders()];
        self.needs_schema = resume_after.is_none();
        self.next_lsn = match resume_after {
            Some(SourcePosition::Postgres { lsn }) => lsn + 1,
            _ => 1,
        };
        self.remaining = TRANSACTIONS_PER_RUN;
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, Self::Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let lsn = self.next_lsn;
        self.next_lsn += 1;
        let position = SourcePosition::Postgres { lsn };
        let time = 1_700_000_000_000_000 + lsn as i64;
        let mut records = Vec::new();
        if std::mem::take(&mut self.needs_schema) {
            records.push(Record::Schema(orders_schema()));
        }
        records.push(Record::Begin(Begin {
            txid: None,
            position: position.clone(),
            commit_time_micros: time,
        }));
        for item in 0..2 {
            records.push(Record::Change(Change {
                table: orders(),
                kind: ChangeKind::Insert,
                before: None,
                after: Some(vec![
                    Value::Int((lsn * 10 + item) as i64),
                    Value::Text(format!("order {lsn}/{item}").into()),
                ]),
                position: position.clone(),
                txid: None,
                commit_time_micros: time,
            }));
        }
        records.push(Record::Commit(Commit {
            txid: None,
            position: position.clone(),
            commit_time_micros: time,
        }));
        Ok(Some(SourceBatch { records, position }))
    }

    async fn acknowledge(&mut self, _position: &SourcePosition) -> Result<(), Self::Error> {
        // A real source confirms the position upstream here (slot, resume token).
        Ok(())
    }
}

fn orders_schema() -> TableSchema {
    let column = |name: &str, data_type, source_type: &str| Column {
        name: name.into(),
        data_type,
        source_type: source_type.into(),
        nullable: false,
    };
    TableSchema {
        table: orders(),
        columns: vec![
            column(
                "id",
                DataType::Int {
                    bits: 64,
                    signed: true,
                },
                "bigint",
            ),
            column(
                "label",
                DataType::Text {
                    max_chars: None,
                    fixed: false,
                },
                "text",
            ),
        ],
        primary_key: vec![0],
    }
}

/// Appends each change as one JSON line and fsyncs per batch. It does not store
/// offsets, so the pipeline's cursor decides where a restart resumes
/// (at-least-once if the process dies between the fsync and the cursor commit).
struct JsonLinesSink {
    file: File,
}

impl JsonLinesSink {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file })
    }
}

#[async_trait]
impl Sink for JsonLinesSink {
    type Error = std::io::Error;

    fn stores_offsets(&self) -> bool {
        false
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>, Self::Error> {
        Ok(None)
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<(), Self::Error> {
        let mut out = Vec::new();
        for event in &batch.events {
            if let SinkEvent::Change { offset, change, .. } = event {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({ "offset": offset, "change": change }),
                )?;
                out.push(b'\n');
            }
        }
        self.file.write_all(&out)?;
        self.file.sync_data()
    }
}
