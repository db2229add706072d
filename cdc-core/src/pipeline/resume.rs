//! Where a starting pipeline resumes: the sink's own offset wins over the cursor.

use super::PipelineError;
use crate::LogOffsets;

/// Picks the first offset to read: after the sink's stored offset if it has one (its
/// offset is committed with its data, so it is exact), else the cursor. A sink
/// behind the cursor is re-fed from its own offset; the cursor is only committed
/// again once the pipeline passes it, so it never moves backwards.
pub(crate) fn resume_point(
    name: &str,
    cursor: u64,
    sink_offset: Option<u64>,
    offsets: LogOffsets,
) -> Result<u64, PipelineError> {
    let read_from = match sink_offset {
        Some(o) => match o.checked_add(1) {
            Some(next) if next <= offsets.durable => next,
            _ => {
                return Err(PipelineError::SinkAheadOfLog {
                    name: name.to_owned(),
                    sink_offset: o,
                    log_next: offsets.durable,
                });
            }
        },
        None => cursor,
    };
    if read_from < offsets.start {
        return Err(PipelineError::NeedsBackfill {
            name: name.to_owned(),
            offset: read_from,
            oldest_retained: offsets.start,
        });
    }
    Ok(read_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(start: u64, durable: u64) -> LogOffsets {
        LogOffsets {
            start,
            next: durable,
            durable,
        }
    }

    #[test]
    fn sink_offset_wins_over_the_cursor_in_both_directions() {
        assert_eq!(resume_point("p", 10, Some(19), offsets(0, 50)).unwrap(), 20);
        assert_eq!(resume_point("p", 10, Some(4), offsets(0, 50)).unwrap(), 5);
        assert_eq!(resume_point("p", 10, None, offsets(0, 50)).unwrap(), 10);
    }

    #[test]
    fn a_resume_point_behind_retention_needs_backfill() {
        let err = resume_point("p", 3, None, offsets(8, 50)).unwrap_err();
        assert!(matches!(
            err,
            PipelineError::NeedsBackfill {
                offset: 3,
                oldest_retained: 8,
                ..
            }
        ));
        let err = resume_point("p", 30, Some(2), offsets(8, 50)).unwrap_err();
        assert!(matches!(
            err,
            PipelineError::NeedsBackfill { offset: 3, .. }
        ));
    }

    #[test]
    fn a_sink_ahead_of_the_log_is_rejected() {
        assert!(resume_point("p", 0, Some(49), offsets(0, 50)).is_ok());
        let err = resume_point("p", 0, Some(50), offsets(0, 50)).unwrap_err();
        assert!(matches!(
            err,
            PipelineError::SinkAheadOfLog {
                sink_offset: 50,
                ..
            }
        ));
        assert!(resume_point("p", 0, Some(u64::MAX), offsets(0, 50)).is_err());
    }
}
