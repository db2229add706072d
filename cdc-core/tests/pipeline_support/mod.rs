//! Shared support for the pipeline and ingest tests: a real transactional file
//! sink, record builders and a scripted source.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

pub mod file_sink;
pub mod records;
pub mod scripted_source;

use std::time::Duration;

pub use file_sink::{FileSink, Line};
pub use records::*;
pub use scripted_source::ScriptedSource;

/// Polls `cond` until it holds; fails the test after 20 s (a hang, not a speed check).
pub async fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    if !holds_within_20s(cond).await {
        panic!("timed out waiting for {what}");
    }
}

/// Polls `cond` for up to 20 s and tells whether it came to hold: for a wait
/// that must be followed by clean-up (releasing a disk, stopping a runner)
/// whatever its outcome.
pub async fn holds_within_20s(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A pipeline config with a short batch delay so tests do not wait long.
pub fn config(name: &str) -> cdc_core::pipeline::PipelineConfig {
    let mut config = cdc_core::pipeline::PipelineConfig::new(name);
    config.max_batch_delay = Duration::from_millis(10);
    config.max_batch_records = 5;
    config
}

/// Starts a pipeline and waits until it has applied everything durable now.
pub async fn run_to_end(
    log: &cdc_core::ChangeLog,
    config: cdc_core::pipeline::PipelineConfig,
    sink: FileSink,
) -> cdc_core::pipeline::PipelineHandle {
    let handle = cdc_core::pipeline::Pipeline::new(log.clone(), config, sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    let end = log.offsets().durable;
    wait_until("the pipeline to catch up", || handle.next_offset() >= end).await;
    handle
}
