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
    /// Answered without the writer: an empty append's range, or an error.
    /// `None` once taken.
    Done(Option<Result<Range<u64>>>),
    /// Queued in the writer.
    Queued(oneshot::Receiver<Result<Range<u64>>>),
}

impl PendingAppend {
    pub(super) fn ready(range: Range<u64>) -> Self {
        Self {
            state: State::Done(Some(Ok(range))),
        }
    }

    /// An append that failed before it reached the writer.
    pub(crate) fn failed(error: Error) -> Self {
        Self {
            state: State::Done(Some(Err(error))),
        }
    }

    pub(super) fn queued(rx: oneshot::Receiver<Result<Range<u64>>>) -> Self {
        Self {
            state: State::Queued(rx),
        }
    }
}

// Nothing in it is ever pinned in place (the receiver is `Unpin`; an error is
// only moved out), so it can be polled through `&mut`.
impl Unpin for PendingAppend {}

impl Future for PendingAppend {
    type Output = Result<Range<u64>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Done(answer) => Poll::Ready(answer.take().unwrap_or(Err(Error::Closed))),
            State::Queued(rx) => {
                let answer = std::task::ready!(Pin::new(rx).poll(cx));
                // A receiver must not be polled again once it answered.
                self.state = State::Done(None);
                Poll::Ready(answer.map_err(|_| Error::Closed)?)
            }
        }
    }
}
