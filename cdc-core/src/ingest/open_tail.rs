//! Finding a split transaction the change log ends inside of.

use super::redelivery::OpenTail;
use crate::ChangeLog;
use crate::event::{ArchivedChangeKind, ArchivedRecord, Begin};
use crate::pipeline::PipelineError;

/// Records read per step of the backward scan.
const SCAN_STEP: u64 = 1024;

/// Scans the log backwards from its durable end to the nearest `Begin`, `Commit`
/// or heartbeat. The log ends inside a transaction exactly when that record is a
/// `Begin`. Snapshot reads never belong to a transaction, so one ends the scan as
/// well; a log of only changes and schemas has no open tail.
pub(crate) fn find_open_tail(log: &ChangeLog) -> Result<Option<OpenTail>, PipelineError> {
    let offsets = log.offsets();
    let mut end = offsets.durable;
    let mut logged_changes = 0u64;
    while end > offsets.start {
        let from = end.saturating_sub(SCAN_STEP).max(offsets.start);
        let entries = log.read(from, (end - from) as usize)?;
        for entry in entries.iter().rev() {
            match entry.archived()? {
                ArchivedRecord::Commit(_) | ArchivedRecord::Heartbeat(_) => return Ok(None),
                ArchivedRecord::Change(change)
                    if change.kind == ArchivedChangeKind::SnapshotRead =>
                {
                    return Ok(None);
                }
                ArchivedRecord::Change(_) => logged_changes += 1,
                ArchivedRecord::Schema(_) => {}
                ArchivedRecord::Begin(_) => {
                    let begin: Begin = match entry.record()? {
                        crate::event::Record::Begin(begin) => begin,
                        _ => return Ok(None),
                    };
                    return Ok(Some(OpenTail {
                        txid: begin.txid,
                        position: begin.position,
                        logged_changes,
                    }));
                }
            }
        }
        if entries.is_empty() {
            break;
        }
        end = from;
    }
    Ok(None)
}
