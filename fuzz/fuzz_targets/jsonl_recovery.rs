//! Opens a JSON-lines sink directory whose offset sidecar and current file are
//! arbitrary bytes. Opening may fail with an error; it must never panic, and
//! when it succeeds the stored offset is the one the sidecar names.
#![no_main]

use std::sync::OnceLock;

use cdc_core::Sink;
use cdc_sinks::{JsonlConfig, JsonlSink};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    // First byte: where the sidecar ends and the data file begins.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (sidecar, file) = rest.split_at(usize::from(cut).min(rest.len()));
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = JsonlConfig::new(dir.path());
    std::fs::write(dir.path().join(format!("{}.offset", config.prefix)), sidecar).unwrap();
    std::fs::write(dir.path().join(format!("{}-000001.jsonl", config.prefix)), file).unwrap();
    runtime().block_on(async {
        let Ok(mut sink) = JsonlSink::open(config.clone()).await else {
            return;
        };
        let stored = sink.stored_offset().await.expect("an open sink knows its offset");
        if let Some(offset) = stored {
            let text = String::from_utf8_lossy(sidecar);
            assert!(text.contains(&offset.to_string()), "offset from the sidecar");
        }
    });
});
