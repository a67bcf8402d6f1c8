//! Subscriptions to an [`EventsManager`](super::EventsManager): read
//! synchronously (`try_recv`, `recv_blocking`, `recv_timeout`) or await
//! them (`recv`, and `futures_core::Stream` with the `events-async`
//! feature) on any executor.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::protocol::{BlockEvent, KvCacheEvent};
use super::ring::{Cursor, Read};

/// A subscriber fell behind and events were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamRecvError {
    /// This many events were overwritten before the subscriber read them.
    #[error("subscriber lagged: {0} events missed")]
    Lagged(u64),
}

/// What a kind of subscription yields; see [`Subscription`].
pub trait SubscriptionKind: sealed::Sealed {
    /// The item type.
    type Item;
    #[doc(hidden)]
    fn deliver(read: BlockEvent) -> Self::Item;
    #[doc(hidden)]
    fn lagged(missed: u64) -> Option<Self::Item>;
}

mod sealed {
    pub trait Sealed {}
}
impl sealed::Sealed for SkipLost {}
impl sealed::Sealed for ReportLost {}
impl sealed::Sealed for AllBlocks {}

/// Announced events; lost ones are skipped silently.
#[derive(Debug)]
pub enum SkipLost {}
/// Announced events; lost ones are reported as [`EventStreamRecvError::Lagged`].
#[derive(Debug)]
pub enum ReportLost {}
/// Every registry change with its lineage; losses reported.
#[derive(Debug)]
pub enum AllBlocks {}

impl SubscriptionKind for SkipLost {
    type Item = KvCacheEvent;
    fn deliver(read: BlockEvent) -> KvCacheEvent {
        read.event
    }
    fn lagged(_: u64) -> Option<KvCacheEvent> {
        None
    }
}

impl SubscriptionKind for ReportLost {
    type Item = Result<KvCacheEvent, EventStreamRecvError>;
    fn deliver(read: BlockEvent) -> Self::Item {
        Ok(read.event)
    }
    fn lagged(missed: u64) -> Option<Self::Item> {
        Some(Err(EventStreamRecvError::Lagged(missed)))
    }
}

impl SubscriptionKind for AllBlocks {
    type Item = Result<BlockEvent, EventStreamRecvError>;
    fn deliver(read: BlockEvent) -> Self::Item {
        Ok(read)
    }
    fn lagged(missed: u64) -> Option<Self::Item> {
        Some(Err(EventStreamRecvError::Lagged(missed)))
    }
}

/// From [`EventsManager::subscribe`](super::EventsManager::subscribe).
pub type EventStream = Subscription<SkipLost>;
/// From [`EventsManager::subscribe_loss_aware`](super::EventsManager::subscribe_loss_aware).
pub type LossAwareEventStream = Subscription<ReportLost>;
/// From [`EventsManager::subscribe_blocks`](super::EventsManager::subscribe_blocks).
pub type BlockEventStream = Subscription<AllBlocks>;

/// A subscriber's view of the event stream. Ends (`None`) once the
/// [`EventsManager`](super::EventsManager) is dropped and every event before
/// that was read.
pub struct Subscription<K: SubscriptionKind> {
    cursor: Cursor,
    _kind: PhantomData<fn() -> K>,
}

enum Step<T> {
    Item(T),
    Empty,
    Closed,
}

impl<K: SubscriptionKind> Subscription<K> {
    pub(crate) fn new(cursor: Cursor) -> Self {
        Self {
            cursor,
            _kind: PhantomData,
        }
    }

    fn step(read: Read<BlockEvent>) -> Option<Step<K::Item>> {
        match read {
            Read::Event(e) => Some(Step::Item(K::deliver(e))),
            Read::Lagged(n) => K::lagged(n).map(Step::Item),
            Read::Empty => Some(Step::Empty),
            Read::Closed => Some(Step::Closed),
        }
    }

    /// The next item if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<K::Item> {
        loop {
            match Self::step(self.cursor.try_read()) {
                Some(Step::Item(item)) => return Some(item),
                Some(Step::Empty | Step::Closed) => return None,
                None => continue,
            }
        }
    }

    /// The next item, blocking the thread until there is one; `None` when
    /// the stream ended.
    pub fn recv_blocking(&mut self) -> Option<K::Item> {
        loop {
            match Self::step(self.cursor.read_blocking(None)) {
                Some(Step::Item(item)) => return Some(item),
                Some(Step::Closed) => return None,
                Some(Step::Empty) | None => continue,
            }
        }
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when
    /// the stream ended.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<K::Item> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            match Self::step(self.cursor.read_blocking(deadline)) {
                Some(Step::Item(item)) => return Some(item),
                Some(Step::Closed | Step::Empty) => return None,
                None => continue,
            }
        }
    }

    /// Polls for the next item; `Ready(None)` when the stream ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<K::Item>> {
        loop {
            match Self::step(self.cursor.poll_read(cx.waker())) {
                Some(Step::Item(item)) => return Poll::Ready(Some(item)),
                Some(Step::Closed) => return Poll::Ready(None),
                Some(Step::Empty) => return Poll::Pending,
                None => continue,
            }
        }
    }

    /// The next item; `None` when the stream ended. Works with any executor.
    pub fn recv(&mut self) -> Recv<'_, K> {
        Recv { sub: self }
    }
}

/// Future of [`Subscription::recv`].
pub struct Recv<'a, K: SubscriptionKind> {
    sub: &'a mut Subscription<K>,
}

impl<K: SubscriptionKind> Future for Recv<'_, K> {
    type Output = Option<K::Item>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.sub.poll_recv(cx)
    }
}

#[cfg(feature = "events-async")]
impl<K: SubscriptionKind> futures_core::Stream for Subscription<K> {
    type Item = K::Item;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<K::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<K: SubscriptionKind> std::fmt::Debug for Subscription<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}
