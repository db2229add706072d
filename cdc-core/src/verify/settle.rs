//! Which keys changed in the log between a chunk's pause and the source
//! position read after it: the keys whose difference may only be in flight.

use std::cmp::Ordering;
use std::time::Duration;

use futures::StreamExt;

use super::VerifyError;
use crate::ChangeLog;
use crate::event::{ChangeKind, Record, SourcePosition, TableName, Value};

/// The keys of a table some logged change touched.
#[derive(Debug, PartialEq)]
pub(super) enum Touched {
    /// These keys' values, in key order.
    Keys(Vec<Vec<Value>>),
    /// Any key: a truncate, a change whose key could not be read, or a log
    /// that did not get to the position in time.
    All,
}

/// The keys of `table` changed by the log's records from offset `from` up to
/// and including the first transaction (or heartbeat) at or past `position`,
/// waiting up to `timeout` for the log to get there.
pub(super) async fn touched_keys(
    log: &ChangeLog,
    table: &TableName,
    from: u64,
    position: &SourcePosition,
    timeout: Duration,
) -> Result<Touched, VerifyError> {
    let reached = |p: &SourcePosition| {
        matches!(
            p.compare(position),
            Some(Ordering::Greater | Ordering::Equal)
        )
    };
    // Read in this order, the end covers the record of the last position.
    let logged_already = log.last_source_position().is_some_and(|p| reached(&p));
    let end = log.offsets().durable;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut entries = log.subscribe(from);
    let mut keys = Vec::new();
    let mut next = from;
    loop {
        // The position's record is before `from` when the pipeline had
        // applied it already: then the records up to the end are all there is.
        if logged_already && next >= end {
            break;
        }
        let entry = match tokio::time::timeout_at(deadline, entries.next()).await {
            Ok(Some(entry)) => entry?,
            // The log closed, or did not get there in time.
            Ok(None) | Err(_) => return Ok(Touched::All),
        };
        next = entry.offset + 1;
        match entry.record()? {
            Record::Change(change) if change.table == *table => {
                if change.kind == ChangeKind::Truncate {
                    return Ok(Touched::All);
                }
                let Some(schema) = log.schema_at(table, entry.offset) else {
                    return Ok(Touched::All);
                };
                for image in [&change.before, &change.after].into_iter().flatten() {
                    let key: Option<Vec<Value>> = schema
                        .primary_key
                        .iter()
                        .map(|&k| image.get(k as usize).cloned())
                        .collect();
                    match key {
                        Some(key) => keys.push(key),
                        None => return Ok(Touched::All),
                    };
                }
            }
            Record::Commit(commit) if reached(&commit.position) => break,
            Record::Heartbeat(beat) if reached(&beat.position) => break,
            _ => {}
        }
    }
    Ok(Touched::Keys(keys))
}
