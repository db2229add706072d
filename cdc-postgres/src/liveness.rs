//! Noticing a dead network path. A path that drops packets sends no reset, so
//! a read on it waits forever; and the walsender may be legitimately silent
//! for minutes while it decodes a large transaction it does not send. Silence
//! alone proves nothing, so each periodic standby status update asks for an
//! answer (the reply-requested byte): the walsender answers at once when idle,
//! and while decoding whenever it reads its client, which it does at least
//! every half `wal_sender_timeout`. A request left unanswered for the idle
//! timeout means the path is dead. PostgreSQL's own subscribers watch their
//! walsender the same way, with `wal_receiver_timeout`.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::info;

use crate::error::{Error, Result};

/// Tracks the oldest request for an answer that is still unanswered.
#[derive(Debug)]
pub(crate) struct Liveness {
    timeout: Duration,
    unanswered_since: Option<Instant>,
}

impl Liveness {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            unanswered_since: None,
        }
    }

    /// A status update asking for an answer was sent at `now`.
    pub(crate) fn asked(&mut self, now: Instant) {
        self.unanswered_since.get_or_insert(now);
    }

    /// Something came from the server: every request so far is answered.
    pub(crate) fn heard(&mut self) {
        self.unanswered_since = None;
    }

    /// When the connection is to be presumed dead, if nothing comes first.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.unanswered_since.map(|since| since + self.timeout)
    }

    /// The error for a deadline that passed.
    pub(crate) fn stalled(&self, context: &'static str) -> Error {
        Error::Stalled {
            context,
            waited: self.timeout,
        }
    }
}

/// The idle timeout to use against a server with `wal_sender_timeout` (zero
/// when disabled): the configured one, raised if need be to exceed how long a
/// decoding walsender may leave a request unread, plus one status interval.
pub(crate) fn effective_timeout(
    configured: Duration,
    wal_sender_timeout: Duration,
    status_interval: Duration,
) -> Duration {
    let needed = wal_sender_timeout / 2 + status_interval;
    if configured > needed {
        return configured;
    }
    info!(
        configured = ?configured,
        raised_to = ?needed + status_interval,
        wal_sender_timeout = ?wal_sender_timeout,
        "idle_timeout raised to exceed half the server's wal_sender_timeout plus status_interval"
    );
    needed + status_interval
}

/// Runs `work`, or gives up after `limit` with [`Error::Stalled`]: every wait
/// on the server is bounded, so a dead path cannot hang the source.
pub(crate) async fn within<T>(
    limit: Duration,
    context: &'static str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| Error::Stalled {
            context,
            waited: limit,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_runs_from_the_oldest_unanswered_request() {
        let t0 = Instant::now();
        let mut live = Liveness::new(Duration::from_secs(60));
        assert_eq!(live.deadline(), None);
        live.asked(t0);
        live.asked(t0 + Duration::from_secs(10));
        assert_eq!(live.deadline(), Some(t0 + Duration::from_secs(60)));
        live.heard();
        assert_eq!(live.deadline(), None);
        live.asked(t0 + Duration::from_secs(20));
        assert_eq!(live.deadline(), Some(t0 + Duration::from_secs(80)));
    }

    #[test]
    fn the_timeout_is_raised_only_when_a_decoding_walsender_could_exceed_it() {
        let s = Duration::from_secs;
        // The defaults: 60 s against 30 s + 10 s.
        assert_eq!(effective_timeout(s(60), s(60), s(10)), s(60));
        // wal_sender_timeout off: the walsender reads its client at every step.
        assert_eq!(effective_timeout(s(2), s(0), s(1)), s(2));
        // wal_sender_timeout of 5 min: 150 s + 10 s, plus 10 s of margin.
        assert_eq!(effective_timeout(s(60), s(300), s(10)), s(170));
    }

    #[tokio::test]
    async fn a_wait_past_its_limit_is_a_stall_naming_what_waited() {
        let err = within(Duration::from_millis(10), "emitting a heartbeat", async {
            std::future::pending::<Result<()>>().await
        })
        .await
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Stalled {
                context: "emitting a heartbeat",
                ..
            }
        ));
    }
}
