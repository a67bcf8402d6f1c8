//! [`EventsManager`]: turns registry changes into events for subscribers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::policy::{AllEventsPolicy, EventEmissionPolicy};
use super::protocol::{BlockLineage, KvCacheEvent};
use super::ring::{Record, Ring, RingWriter};
use super::subscription::{BlockEventStream, EventStream, LossAwareEventStream, Subscription};
use crate::SequenceHash;

/// Broadcasts the changes of one [`BlockRegistry`](crate::BlockRegistry)'s
/// contents: a [`KvCacheEvent::Create`] when a hash enters the registry,
/// a [`KvCacheEvent::Remove`] when it leaves.
///
/// Attach it with
/// [`BlockRegistry::builder().event_manager(..)`](crate::registry::BlockRegistryBuilder::event_manager)
/// and hand that registry to the block managers. Events are written under
/// the registry's lock, so for every hash the stream alternates strictly
/// Create, Remove, Create, … in the order the registry changed.
///
/// Subscribers read from a bounded ring of
/// [`channel_capacity`](EventsManagerBuilder::channel_capacity) events; one
/// that falls further behind loses the oldest events (and learns how many
/// with [`subscribe_loss_aware`](Self::subscribe_loss_aware)). Nothing is
/// buffered while nobody subscribes. When the manager is dropped (with the
/// last registry holding it), subscriptions end after their last event.
///
/// Waiting async subscribers are woken right after the events are written,
/// while the registry's lock is still held: fine for executors whose wakers
/// only schedule the task (tokio, `futures::executor`, …), not for a waker
/// that polls the task inline and reaches into the same registry.
///
/// ```
/// use std::sync::Arc;
/// use kvbm::events::{EventsManager, KvCacheEvent, PowerOfTwoPolicy};
/// use kvbm::{BlockRegistry, SequenceHash};
///
/// let events = Arc::new(
///     EventsManager::builder()
///         .policy(Arc::new(PowerOfTwoPolicy::with_range(1, 4)))
///         .channel_capacity(64)
///         .build(),
/// );
/// let mut stream = events.subscribe();
/// let registry = BlockRegistry::builder().event_manager(events).build();
///
/// let root = SequenceHash::root(7);
/// let child = root.extend(8); // position 1: announced
/// let h_root = registry.register_sequence_hash(root);
/// let h_child = registry.register_sequence_hash(child);
/// drop((h_root, h_child));
///
/// assert_eq!(stream.try_recv(), Some(KvCacheEvent::Create(child)));
/// assert_eq!(stream.try_recv(), Some(KvCacheEvent::Remove(child)));
/// assert_eq!(stream.try_recv(), None);
/// ```
pub struct EventsManager {
    policy: Arc<dyn EventEmissionPolicy>,
    ring: Arc<Ring>,
    capacity: usize,
    /// Policy calls that panicked (each counted as "do not announce").
    policy_panics: AtomicU64,
}

/// Builds an [`EventsManager`].
pub struct EventsManagerBuilder {
    policy: Arc<dyn EventEmissionPolicy>,
    capacity: usize,
}

impl Default for EventsManagerBuilder {
    fn default() -> Self {
        Self {
            policy: Arc::new(AllEventsPolicy),
            capacity: 1024,
        }
    }
}

impl EventsManagerBuilder {
    /// A builder with the defaults: [`AllEventsPolicy`], capacity 1024.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which hashes [`subscribe`](EventsManager::subscribe) subscribers hear
    /// about. Default: [`AllEventsPolicy`].
    pub fn policy(mut self, policy: Arc<dyn EventEmissionPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// How many events a subscriber may fall behind before it loses the
    /// oldest (at least 1). Default: 1024.
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Builds the manager.
    ///
    /// # Panics
    /// If the [`channel_capacity`](Self::channel_capacity) is too large to
    /// allocate; [`try_build`](Self::try_build) returns that as an error.
    pub fn build(self) -> EventsManager {
        match self.try_build() {
            Ok(manager) => manager,
            Err(e) => panic!("{e}"),
        }
    }

    /// Builds the manager, or fails when the event ring of
    /// [`channel_capacity`](Self::channel_capacity) slots cannot be
    /// allocated.
    ///
    /// ```
    /// use kvbm::events::EventsManager;
    ///
    /// assert!(EventsManager::builder().channel_capacity(usize::MAX).try_build().is_err());
    /// assert_eq!(EventsManager::builder().try_build().unwrap().channel_capacity(), 1024);
    /// ```
    pub fn try_build(self) -> Result<EventsManager, EventsBuildError> {
        let ring = Ring::try_new(self.capacity).map_err(|_| EventsBuildError {
            capacity: self.capacity,
        })?;
        Ok(EventsManager {
            policy: self.policy,
            ring: Arc::new(ring),
            capacity: self.capacity,
            policy_panics: AtomicU64::new(0),
        })
    }
}

/// An [`EventsManager`] whose event ring could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate an event ring of {capacity} slots")]
pub struct EventsBuildError {
    /// The requested channel capacity.
    pub capacity: usize,
}

impl EventsManager {
    /// A builder.
    pub fn builder() -> EventsManagerBuilder {
        EventsManagerBuilder::new()
    }

    /// The events the policy announces, from now on. A subscriber that
    /// falls behind by more than the capacity silently skips what it
    /// missed; see [`subscribe_loss_aware`](Self::subscribe_loss_aware).
    pub fn subscribe(&self) -> EventStream {
        Subscription::new(self.ring.reader(true))
    }

    /// Like [`subscribe`](Self::subscribe), but a subscriber that fell behind
    /// first receives `Err(Lagged(n))`, `n` being exactly the number of
    /// announced events it missed.
    pub fn subscribe_loss_aware(&self) -> LossAwareEventStream {
        Subscription::new(self.ring.reader(true))
    }

    /// Every registry change, whatever the policy, with the lineage of each
    /// created block where it is known: the feed of exporters that rebuild
    /// a token-keyed prefix tree, such as
    /// [`DynamoKvExporter`](super::dynamo::DynamoKvExporter). Loss-aware.
    pub fn subscribe_blocks(&self) -> BlockEventStream {
        Subscription::new(self.ring.reader(false))
    }

    /// The emission policy.
    pub fn policy(&self) -> &Arc<dyn EventEmissionPolicy> {
        &self.policy
    }

    /// How many events a subscriber may fall behind.
    pub fn channel_capacity(&self) -> usize {
        self.capacity
    }

    /// How many times the policy panicked. A panicking policy never breaks
    /// the registry (it runs mid-update, under the registry's lock): the
    /// panic is caught and the hash is not announced.
    pub fn policy_panics(&self) -> u64 {
        self.policy_panics.load(Ordering::Relaxed)
    }

    /// Starts emitting the changes of one registry operation; the ring is
    /// locked at the first event that some subscriber wants and released
    /// when the emitter drops.
    #[inline]
    pub(crate) fn emitter(&self) -> Emitter<'_> {
        Emitter {
            manager: self,
            writer: None,
        }
    }
}

impl Drop for EventsManager {
    fn drop(&mut self) {
        self.ring.close();
    }
}

impl std::fmt::Debug for EventsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsManager")
            .field("channel_capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Emits the registry changes of one operation; used by the registry with
/// its map lock held.
pub(crate) struct Emitter<'a> {
    manager: &'a EventsManager,
    writer: Option<RingWriter<'a>>,
}

impl Emitter<'_> {
    /// `hash` entered the registry. Returns whether the policy announced
    /// it, for the registry to remember until the matching removal.
    #[inline]
    pub(crate) fn created(&mut self, hash: SequenceHash, lineage: Option<BlockLineage>) -> bool {
        let policy = &self.manager.policy;
        let announced =
            catch_unwind(AssertUnwindSafe(|| policy.should_emit(hash))).unwrap_or_else(|_| {
                self.manager.policy_panics.fetch_add(1, Ordering::Relaxed);
                false
            });
        self.push(Record {
            event: KvCacheEvent::Create(hash),
            lineage,
            announced,
        });
        announced
    }

    /// `hash` left the registry; `announced` is what
    /// [`created`](Self::created) returned for it.
    #[inline]
    pub(crate) fn removed(&mut self, hash: SequenceHash, announced: bool) {
        self.push(Record {
            event: KvCacheEvent::Remove(hash),
            lineage: None,
            announced,
        });
    }

    #[inline]
    fn push(&mut self, record: Record) {
        let ring = &self.manager.ring;
        if !ring.wants(record.announced) {
            return;
        }
        self.writer
            .get_or_insert_with(|| ring.writer())
            .push(record);
    }
}
