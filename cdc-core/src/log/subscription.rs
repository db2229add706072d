//! Subscriptions: streams that follow the durable end of the log.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::BoxStream;
use tokio::sync::watch;

use super::read::LogEntry;
use super::{Durable, Shared};
use crate::error::Result;

/// Records read per refill of a subscription's buffer.
const REFILL: usize = 4096;

/// Every durable record from a starting offset on, in order; waits for appends
/// at the end (woken by the writer's durability notice, never by polling) and
/// ends when the log is closed. An error (retention overtook the subscriber,
/// corruption) is yielded once and ends the stream.
pub struct Subscription {
    inner: BoxStream<'static, Result<LogEntry>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

struct State {
    shared: Arc<Shared>,
    next: u64,
    buffered: std::vec::IntoIter<LogEntry>,
    rx: watch::Receiver<Durable>,
    done: bool,
}

impl Subscription {
    pub(crate) fn new(shared: Arc<Shared>, from: u64) -> Self {
        let rx = shared.durable.subscribe();
        let state = State {
            shared,
            next: from,
            buffered: Vec::new().into_iter(),
            rx,
            done: false,
        };
        let inner = futures::stream::unfold(state, |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                if let Some(entry) = st.buffered.next() {
                    st.next = entry.offset + 1;
                    return Some((Ok(entry), st));
                }
                let durable = *st.rx.borrow_and_update();
                if st.next < durable.next {
                    match st.shared.read(st.next, REFILL) {
                        Ok(entries) => st.buffered = entries.into_iter(),
                        Err(e) => {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                    }
                    continue;
                }
                if durable.closed || st.rx.changed().await.is_err() {
                    return None;
                }
            }
        });
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for Subscription {
    type Item = Result<LogEntry>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
