//! Batching rules, as a synchronous state machine: the async
//! [`EventBatcher`](super::EventBatcher) drives it with a timer, and
//! callers without a runtime can drive it with their own clock.
//!
//! Consecutive events of one kind form a batch. A batch closes when an
//! event of the other kind arrives, when it reaches the maximum size, when
//! its window (counted from its first event) has passed, or when the stream
//! ends. Creates leave sorted by position ascending, removes descending;
//! the sort is stable, so hashes at one position keep their arrival order.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::protocol::{InstanceId, KvCacheEvent, KvCacheEvents, KvbmCacheEvents};
use crate::SequenceHash;

/// How events are grouped into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchingConfig {
    /// How long a batch stays open after its first event. Default 10 ms.
    pub window_duration: Duration,
    /// The most events in one batch. Default 1024.
    pub max_batch_size: NonZeroUsize,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            window_duration: Duration::from_millis(10),
            max_batch_size: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl BatchingConfig {
    /// Sets the window.
    pub fn with_window(mut self, duration: Duration) -> Self {
        self.window_duration = duration;
        self
    }

    /// Sets the maximum batch size.
    pub fn with_max_size(mut self, size: NonZeroUsize) -> Self {
        self.max_batch_size = size;
        self
    }
}

/// Collects events into batches by the rules of this module.
///
/// ```
/// use std::time::Instant;
/// use kvbm::events::{BatchAssembler, BatchingConfig, KvCacheEvent, KvCacheEvents};
/// use kvbm::SequenceHash;
///
/// let mut batches = BatchAssembler::new(BatchingConfig::default(), 7);
/// let (a, b) = (SequenceHash::root(1), SequenceHash::root(2));
/// let now = Instant::now();
/// assert!(batches.push(KvCacheEvent::Create(a), now).is_none());
/// // A change of kind closes the open batch.
/// let closed = batches.push(KvCacheEvent::Remove(b), now).unwrap();
/// assert_eq!(closed.events, KvCacheEvents::Create(vec![a]));
/// assert_eq!(batches.finish().unwrap().events, KvCacheEvents::Remove(vec![b]));
/// ```
#[derive(Debug)]
pub struct BatchAssembler {
    config: BatchingConfig,
    instance_id: InstanceId,
    hashes: Vec<SequenceHash>,
    /// The kind of the open batch (`true` = creates) and when it closes.
    open: Option<(bool, Instant)>,
}

impl BatchAssembler {
    /// An assembler with no open batch.
    pub fn new(config: BatchingConfig, instance_id: InstanceId) -> Self {
        Self {
            config,
            instance_id,
            hashes: Vec::new(),
            open: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BatchingConfig {
        &self.config
    }

    /// Adds an event arriving at `now`. Returns the batch it closed, if
    /// any: the open batch on a change of kind, or the batch this event
    /// filled. An open batch whose window passed before `now` should have
    /// been taken with [`poll_deadline`](Self::poll_deadline) first.
    pub fn push(&mut self, event: KvCacheEvent, now: Instant) -> Option<KvbmCacheEvents> {
        let create = event.is_create();
        let closed = match self.open {
            Some((kind, _)) if kind != create => self.take(),
            _ => None,
        };
        if self.open.is_none() {
            let deadline = now.checked_add(self.config.window_duration).unwrap_or(now);
            self.open = Some((create, deadline));
        }
        self.hashes.push(event.sequence_hash());
        if self.hashes.len() >= self.config.max_batch_size.get() {
            // At most one batch closes per push: after a change of kind the
            // new batch holds one event, which fills it only at maximum size
            // 1, and at that size no batch is ever left open to be closed by
            // a change of kind. (Were both to close, the full one would stay
            // open for the next call rather than be lost.)
            return closed.or_else(|| self.take());
        }
        closed
    }

    /// When the open batch's window ends, if a batch is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.open.map(|(_, deadline)| deadline)
    }

    /// Closes the open batch if its window ended by `now`.
    pub fn poll_deadline(&mut self, now: Instant) -> Option<KvbmCacheEvents> {
        match self.open {
            Some((_, deadline)) if deadline <= now => self.take(),
            _ => None,
        }
    }

    /// Closes the open batch, if any (end of stream).
    pub fn finish(&mut self) -> Option<KvbmCacheEvents> {
        self.take()
    }

    fn take(&mut self) -> Option<KvbmCacheEvents> {
        let (create, _) = self.open.take()?;
        let mut hashes = std::mem::take(&mut self.hashes);
        let events = if create {
            hashes.sort_by_key(|h| h.position());
            KvCacheEvents::Create(hashes)
        } else {
            hashes.sort_by_key(|h| std::cmp::Reverse(h.position()));
            KvCacheEvents::Remove(hashes)
        };
        Some(KvbmCacheEvents {
            events,
            instance_id: self.instance_id,
        })
    }
}
