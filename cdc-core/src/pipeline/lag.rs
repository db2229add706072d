//! How far a pipeline is behind the log and the source.

use std::time::Duration;

/// A pipeline's distance from the log's durable end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Durable log records the sink has not received yet (`durable - next offset`).
    pub events_behind: u64,
    /// How long ago the source committed the last transaction (or sent the last
    /// heartbeat) the sink has applied; zero when `events_behind` is zero, since
    /// nothing is waiting. `None` until the pipeline has applied something in this
    /// run. On an idle source without heartbeats this grows while records wait.
    pub time_behind: Option<Duration>,
}

impl Lag {
    /// Computes lag from the log's durable offset, the pipeline's next offset, the
    /// source time of the last applied transaction and the current time (all times
    /// in microseconds since the Unix epoch).
    pub fn compute(
        durable: u64,
        next_offset: u64,
        applied_source_time_micros: Option<i64>,
        now_micros: i64,
    ) -> Self {
        let events_behind = durable.saturating_sub(next_offset);
        let time_behind = applied_source_time_micros.map(|t| {
            if events_behind == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros(u64::try_from(now_micros.saturating_sub(t)).unwrap_or(0))
            }
        });
        Self {
            events_behind,
            time_behind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_durable_records_not_yet_applied() {
        let lag = Lag::compute(110, 100, Some(1_000_000), 3_500_000);
        assert_eq!(lag.events_behind, 10);
        assert_eq!(lag.time_behind, Some(Duration::from_micros(2_500_000)));
    }

    #[test]
    fn caught_up_pipeline_is_zero_seconds_behind() {
        let lag = Lag::compute(100, 100, Some(1_000_000), 9_000_000);
        assert_eq!(
            lag,
            Lag {
                events_behind: 0,
                time_behind: Some(Duration::ZERO)
            }
        );
    }

    #[test]
    fn time_lag_is_unknown_before_the_first_batch_and_never_negative() {
        assert_eq!(Lag::compute(5, 0, None, 10).time_behind, None);
        assert_eq!(
            Lag::compute(5, 0, Some(20), 10).time_behind,
            Some(Duration::ZERO)
        );
    }
}
