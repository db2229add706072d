//! An append queued in the writer, waiting to become durable.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// The answer to [`ChangeLog::submit`](super::ChangeLog::submit): resolves with
/// the records' offsets once they are durable under the fsync policy, or with the
/// error that stopped them. Dropping it does not withdraw the append.
#[derive(Debug)]
#[must_use = "an append is only known durable once this resolves"]
pub struct PendingAppend {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Nothing to write (an empty append): the range is known at once.
    Ready(Option<Range<u64>>),
    /// Queued in the writer.
    Queued(oneshot::Receiver<Result<Range<u64>>>),
}

impl PendingAppend {
    pub(super) fn ready(range: Range<u64>) -> Self {
        Self {
            state: State::Ready(Some(range)),
        }
    }

    pub(super) fn queued(rx: oneshot::Receiver<Result<Range<u64>>>) -> Self {
        Self {
            state: State::Queued(rx),
        }
    }
}

impl Future for PendingAppend {
    type Output = Result<Range<u64>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Ready(range) => Poll::Ready(range.take().ok_or(Error::Closed)),
            State::Queued(rx) => {
                let answer = std::task::ready!(Pin::new(rx).poll(cx));
                // A receiver must not be polled again once it answered.
                self.state = State::Ready(None);
                Poll::Ready(answer.map_err(|_| Error::Closed)?)
            }
        }
    }
}
