//! The block registry: which sequence hashes are held by which storage tier.
//!
//! One registry can be shared by the managers of several tiers (device,
//! host, disk, …); each manager reports the hashes its blocks hold, and
//! anyone can ask whether — and where — a hash is present.
//!
//! Which tier holds a hash is answered by the managers' stores themselves:
//! each store registers with the registry as a presence source (see
//! `sources`), and presence queries look the hashes up in the stores' hash
//! indexes, so a cached block costs the registry no memory. The registry
//! keeps a [`BlockRegistrationHandle`] only for hashes that had one asked
//! for, and per-tier counts only for those (see `tables`) — or for every
//! block-held hash while an events manager listens. Managers report their
//! changes in batches — one call per manager operation, however many blocks
//! it touches — and always from under their own store lock (lock order:
//! stores, then registry); with nothing tracked, a report returns without
//! taking the registry lock.
//!
//! With an [`EventsManager`] attached
//! ([`BlockRegistryBuilder::event_manager`]), every hash entering or leaving
//! the registry is reported to it while the registry lock is held, so that
//! events follow the order of the registry's changes; without one, the cost
//! is one `Option` check per operation.
//!
//! Handles carry the registry's extension points: typed attachments
//! ([`BlockRegistrationHandle::attach`], [`TypedAttachments`]) that live as
//! long as the registration, and touch callbacks
//! ([`BlockRegistrationHandle::on_touch`]).

mod attachments;
mod extras;
mod handle;
mod presence;
mod sources;
mod tables;
mod typed;

use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

pub use attachments::AttachmentError;
pub use handle::BlockRegistrationHandle;
use handle::HandleInner;
use sources::{counts_of, with_all_locked, Sources, ALL_TIERS};
pub(crate) use sources::{PresenceSource, PresenceView};
use tables::{HandleEntry, Removal, Tables};
pub use typed::TypedAttachments;

use crate::events::{BlockLineage, Emitter, EventsManager};
use crate::prehashed::{PackedKey, PrehashedMap};
use crate::tinylfu::FrequencyTracker;
use crate::SequenceHash;

/// The most storage tiers (distinct block metadata types) one registry serves.
pub const MAX_TIERS: usize = 8;

/// Index of a tier inside one registry.
pub(crate) type TierId = usize;

/// A set of tiers: bit `i` stands for tier `i`.
type TierMask = u32;
const _: () = assert!(MAX_TIERS <= TierMask::BITS as usize);

/// Registry of sequence hashes shared by block managers.
///
/// Cloning is cheap and yields a view of the same registry.
#[derive(Clone)]
pub struct BlockRegistry {
    pub(crate) inner: Arc<RegistryInner>,
}

/// Builds a [`BlockRegistry`].
#[derive(Default)]
pub struct BlockRegistryBuilder {
    tracker: Option<Arc<dyn FrequencyTracker<u128>>>,
    events: Option<Arc<EventsManager>>,
}

pub(crate) struct RegistryInner {
    /// The live handles and the presence counts the registry tracks.
    tables: Mutex<Tables>,
    /// `tables.handles.len()`, readable without the lock: with no handle
    /// entry (and no events manager) a store's report has nothing to
    /// update. Exact whenever the reporting store's lock is held, since a
    /// handle entry is created with every store locked.
    handle_entries: AtomicUsize,
    /// The stores that answer presence queries.
    sources: Sources,
    /// Stand-ins for stores in the registry's unit tests, one per tier.
    #[cfg(test)]
    test_sources: Mutex<Vec<Arc<tests::TestSource>>>,
    tiers: Mutex<Vec<TypeId>>,
    /// Counts registrations and hits, for frequency-aware eviction.
    tracker: Option<Arc<dyn FrequencyTracker<u128>>>,
    /// Told of every hash entering or leaving the registry, under its lock.
    events: Option<Arc<EventsManager>>,
    /// Back-reference handed to handles so that they can unregister.
    this: Weak<RegistryInner>,
}

/// A registry that cannot take another tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a block registry serves at most {MAX_TIERS} tiers")]
pub struct TooManyTiers;

impl BlockRegistryBuilder {
    /// A builder with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts how often each hash is registered and matched, for eviction
    /// policies that weigh frequency (multi-LRU). See
    /// [`FrequencyTrackingCapacity`](crate::tinylfu::FrequencyTrackingCapacity).
    pub fn frequency_tracker(mut self, tracker: Arc<dyn FrequencyTracker<u128>>) -> Self {
        self.tracker = Some(tracker);
        self
    }

    /// Reports every hash entering or leaving the registry to `manager`;
    /// see [`crate::events`].
    pub fn event_manager(mut self, manager: Arc<EventsManager>) -> Self {
        self.events = Some(manager);
        self
    }

    /// Builds the registry.
    pub fn build(self) -> BlockRegistry {
        BlockRegistry {
            inner: Arc::new_cyclic(|this| RegistryInner {
                tables: Mutex::new(Tables::new(self.events.is_some())),
                handle_entries: AtomicUsize::new(0),
                sources: Sources::default(),
                #[cfg(test)]
                test_sources: Mutex::default(),
                tiers: Mutex::new(Vec::new()),
                tracker: self.tracker,
                events: self.events,
                this: this.clone(),
            }),
        }
    }
}

impl Default for BlockRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BlockRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockRegistry")
            .field("registered", &self.registered_count())
            .finish()
    }
}

impl BlockRegistry {
    /// A builder for a registry.
    pub fn builder() -> BlockRegistryBuilder {
        BlockRegistryBuilder::new()
    }

    /// A registry with default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Registers `seq_hash` (if it is not already) and returns its handle;
    /// counts an access for frequency tracking.
    ///
    /// The registration lasts while the handle, or a block holding the hash,
    /// is alive.
    pub fn register_sequence_hash(&self, seq_hash: SequenceHash) -> BlockRegistrationHandle {
        let handle = self.handle_for(seq_hash);
        self.touch(seq_hash);
        handle
    }

    /// The handle of `seq_hash`, registering it if needed, without counting
    /// an access.
    pub(crate) fn handle_for(&self, seq_hash: SequenceHash) -> BlockRegistrationHandle {
        match self.inner.handle(seq_hash, true) {
            Some(handle) => handle,
            None => unreachable!("a handle is created when asked to be"),
        }
    }

    /// The handle of `seq_hash` if it is registered.
    ///
    /// When `touch` is `true`, frequency tracking (where configured) counts
    /// a successful lookup. Touch callbacks are not run; see
    /// [`BlockRegistrationHandle::touch`].
    pub fn match_sequence_hash(
        &self,
        seq_hash: SequenceHash,
        touch: bool,
    ) -> Option<BlockRegistrationHandle> {
        let handle = self.inner.handle(seq_hash, false)?;
        if touch {
            self.touch(seq_hash);
        }
        Some(handle)
    }

    /// Whether `seq_hash` is registered (held by a block or a live handle).
    pub fn is_registered(&self, seq_hash: SequenceHash) -> bool {
        {
            let tables = self.inner.tables.lock();
            if tables.track_all || tables.handles.contains_key(&seq_hash.into()) {
                return tables.is_registered(seq_hash);
            }
        }
        let sources = self.inner.sources.live(ALL_TIERS);
        sources.iter().any(|(_, source)| {
            let mut held = false;
            source.with_locked(&mut |view| held = view.count(seq_hash) > 0);
            held
        })
    }

    /// The number of registered hashes.
    ///
    /// Without an events manager, this collects the hashes of every
    /// manager: O(registered hashes).
    pub fn registered_count(&self) -> usize {
        {
            let tables = self.inner.tables.lock();
            if tables.track_all {
                return tables.registered_count();
            }
        }
        self.inner.registered_set().len()
    }

    /// Every registered hash, in no particular order.
    pub fn registered_hashes(&self) -> Vec<SequenceHash> {
        {
            let tables = self.inner.tables.lock();
            if tables.track_all {
                return tables.registered_hashes();
            }
        }
        let set = self.inner.registered_set();
        set.into_keys().map(SequenceHash::from).collect()
    }

    /// The hashes whose Create the attached [`EventsManager`]'s policy
    /// announced and whose Remove has not happened: what a consumer of
    /// [`EventsManager::subscribe`] that saw every event since the start
    /// holds now. Empty without an events manager.
    ///
    /// Taken under the lock that orders the events, so it is an exact cut
    /// of the stream: a consumer that takes its snapshot after
    /// subscribing, and applies to it only the events its subscription
    /// delivers after that, ends up exact (replaying a change the snapshot
    /// already shows is harmless, since each hash's last event wins).
    pub fn announced_hashes(&self) -> Vec<SequenceHash> {
        if self.inner.events.is_none() {
            return Vec::new();
        }
        self.inner.tables.lock().announced_hashes()
    }

    /// The events manager this registry reports to, if any.
    pub fn events_manager(&self) -> Option<&Arc<EventsManager>> {
        self.inner.events.as_ref()
    }

    /// Whether the registry counts access frequency.
    pub fn has_frequency_tracking(&self) -> bool {
        self.inner.tracker.is_some()
    }

    /// The frequency tracker, if one is configured.
    pub fn frequency_tracker(&self) -> Option<Arc<dyn FrequencyTracker<u128>>> {
        self.inner.tracker.clone()
    }

    /// Counts one access to `seq_hash` (no-op without a tracker).
    pub fn touch(&self, seq_hash: SequenceHash) {
        self.inner.touch_hash(seq_hash);
    }

    /// The estimated access count of `seq_hash` (0 without a tracker).
    pub fn count(&self, seq_hash: SequenceHash) -> u32 {
        self.inner
            .tracker
            .as_ref()
            .map_or(0, |t| t.count(seq_hash.as_u128()))
    }

    /// Counts accesses to many hashes, taking the tracker's lock once per
    /// batch of up to 64 without allocating.
    #[inline]
    pub(crate) fn touch_many(&self, hashes: impl Iterator<Item = SequenceHash>) {
        let Some(tracker) = &self.inner.tracker else {
            return;
        };
        let mut batch = [0u128; 64];
        let mut n = 0;
        for hash in hashes {
            batch[n] = hash.as_u128();
            n += 1;
            if n == batch.len() {
                tracker.touch_many(&batch);
                n = 0;
            }
        }
        if n > 0 {
            tracker.touch_many(&batch[..n]);
        }
    }

    /// The tier index of block metadata type `T`, assigned on first use.
    pub(crate) fn tier_for(&self, ty: TypeId) -> Result<TierId, TooManyTiers> {
        let mut tiers = self.inner.tiers.lock();
        if let Some(i) = tiers.iter().position(|t| *t == ty) {
            return Ok(i);
        }
        if tiers.len() == MAX_TIERS {
            return Err(TooManyTiers);
        }
        tiers.push(ty);
        Ok(tiers.len() - 1)
    }

    /// Makes room for `additional` more block-held hashes (a new manager's
    /// blocks), so that filling them never rehashes the presence map.
    pub(crate) fn reserve_presence(
        &self,
        additional: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        let mut tables = self.inner.tables.lock();
        if !tables.track_all {
            // Only hashes with handles are counted: nothing to make room for.
            return Ok(());
        }
        tables.reserve(additional)
    }

    /// Adds a store of `tier` to the stores that answer presence queries.
    /// Called once per store, before it holds any block.
    pub(crate) fn add_presence_source(&self, tier: TierId, source: Weak<dyn PresenceSource>) {
        self.inner.sources.add(tier, source);
    }

    /// Checks the registry's presence counts against the stores: every
    /// tracked count equals what the stores hold (at least, once a store
    /// has gone), counts are tracked only where they must be, and a handle
    /// kept for blocks belongs to a hash that blocks hold. Locks every
    /// store; call it with none held.
    pub(crate) fn validate_presence(&self) -> Result<(), String> {
        self.inner.validate_presence()
    }

    /// A block of `tier` now holds `seq_hash` as its primary (through the
    /// tier's test source, which stands in for a store).
    #[cfg(test)]
    pub(crate) fn add_presence(&self, seq_hash: SequenceHash, tier: TierId) {
        let source = self.inner.test_source(tier);
        source.change(seq_hash, 1, || {
            self.add_presence_many(&[seq_hash], &[], tier);
        });
    }

    /// Blocks of `tier` now hold each of `hashes` as their primary.
    /// `lineage[i]`, where given, describes the block of `hashes[i]` for the
    /// events manager (empty when nobody listens for lineage).
    #[inline]
    pub(crate) fn add_presence_many(
        &self,
        hashes: &[SequenceHash],
        lineage: &[Option<BlockLineage>],
        tier: TierId,
    ) {
        if hashes.is_empty() || self.inner.untracked() {
            return;
        }
        let mut tables = self.inner.tables.lock();
        let mut emitter = self.inner.emitter();
        for (i, &seq_hash) in hashes.iter().enumerate() {
            // Runs when the hash enters the registry with this block.
            let created = || match &mut emitter {
                Some(emitter) => emitter.created(seq_hash, lineage.get(i).copied().flatten()),
                None => false,
            };
            if let Some(entry) = tables.add(seq_hash, tier, created) {
                if entry.strong.is_none() {
                    entry.strong = entry.weak.upgrade();
                }
            }
        }
    }

    /// A block of `tier` no longer holds `seq_hash`; see
    /// [`remove_presence_many`](Self::remove_presence_many).
    #[cfg(test)]
    #[must_use]
    pub(crate) fn remove_presence(
        &self,
        seq_hash: SequenceHash,
        tier: TierId,
    ) -> Option<BlockRegistrationHandle> {
        let mut kept = Vec::new();
        let source = self.inner.test_source(tier);
        source.change(seq_hash, -1, || {
            self.remove_presence_many(&[seq_hash], tier, &mut kept);
        });
        kept.pop()
    }

    /// Blocks of `tier` no longer hold `hashes`.
    ///
    /// Handles the registry kept for those blocks are pushed to `kept`; the
    /// caller drops them outside its own locks, since dropping the last
    /// handle re-enters the registry.
    #[inline]
    pub(crate) fn remove_presence_many(
        &self,
        hashes: &[SequenceHash],
        tier: TierId,
        kept: &mut Vec<BlockRegistrationHandle>,
    ) {
        if hashes.is_empty() || self.inner.untracked() {
            return;
        }
        let mut tables = self.inner.tables.lock();
        let mut emitter = self.inner.emitter();
        for &seq_hash in hashes {
            let announced = match tables.remove(seq_hash, tier) {
                Removal::NotPresent | Removal::StillHeld => continue,
                Removal::NoLongerHeld { announced } => announced,
            };
            let key: PackedKey = seq_hash.into();
            let Some(entry) = tables.handles.get_mut(&key) else {
                // No handle: the registration ends with the last block.
                if let Some(emitter) = &mut emitter {
                    emitter.removed(seq_hash, announced);
                }
                continue;
            };
            let strong = entry.strong.take();
            let outside = entry.weak.strong_count() - usize::from(strong.is_some());
            if outside == 0 {
                // Nobody outside holds a handle: the registration ends now.
                tables.handles.remove(&key);
                self.inner.count_handle_entries(&tables);
                if let Some(emitter) = &mut emitter {
                    emitter.removed(seq_hash, announced);
                }
            } else {
                // A handle keeps the hash registered: its announced bit
                // outlives the counts it was kept with.
                tables.set_unheld_announced(seq_hash, announced);
            }
            if let Some(inner) = strong {
                kept.push(BlockRegistrationHandle { inner });
            }
        }
    }
}

impl RegistryInner {
    /// An emitter for one operation, if an events manager is attached.
    #[inline]
    fn emitter(&self) -> Option<Emitter<'_>> {
        self.events.as_deref().map(EventsManager::emitter)
    }

    /// Whether the store should pass block lineage along with new hashes.
    #[inline]
    pub(crate) fn wants_lineage(&self) -> bool {
        self.events.is_some()
    }

    /// The live handle of `seq_hash`, or a new one (kept by the registry
    /// while a block holds the hash).
    ///
    /// `counts`, the per-tier counts read from the (locked) stores, starts
    /// the tracking of a hash that has no handle entry yet; `None` when the
    /// tables already count every block-held hash.
    fn handle_of(
        &self,
        tables: &mut Tables,
        seq_hash: SequenceHash,
        counts: Option<&[u32; MAX_TIERS]>,
    ) -> BlockRegistrationHandle {
        let key: PackedKey = seq_hash.into();
        if !tables.handles.contains_key(&key) {
            if let Some(counts) = counts {
                tables.set_counts(seq_hash, counts);
            }
        }
        let held = tables.held_by_blocks(seq_hash);
        let entry: &mut HandleEntry = tables.handles.entry(key).or_default();
        let handle = match entry.weak.upgrade() {
            Some(inner) => BlockRegistrationHandle { inner },
            None => {
                let inner = Arc::new(HandleInner::new(seq_hash, self.this.clone()));
                entry.weak = Arc::downgrade(&inner);
                if held {
                    entry.strong = Some(inner.clone());
                }
                BlockRegistrationHandle { inner }
            }
        };
        self.count_handle_entries(tables);
        handle
    }

    /// The handle of `seq_hash`: the live one, or a new one if the hash is
    /// registered or `create` is set (`None` otherwise).
    fn handle(&self, seq_hash: SequenceHash, create: bool) -> Option<BlockRegistrationHandle> {
        let key: PackedKey = seq_hash.into();
        {
            let mut tables = self.tables.lock();
            if let Some(inner) = tables.handles.get(&key).and_then(|e| e.weak.upgrade()) {
                return Some(BlockRegistrationHandle { inner });
            }
            if tables.track_all {
                // The tables know every registered hash.
                if !tables.is_registered(seq_hash) {
                    if !create {
                        return None;
                    }
                    if let Some(mut emitter) = self.emitter() {
                        let announced = emitter.created(seq_hash, None);
                        tables.set_unheld_announced(seq_hash, announced);
                    }
                }
                return Some(self.handle_of(&mut tables, seq_hash, None));
            }
        }
        // A new handle entry: its counts come from the stores, read with
        // all of them locked so that none changes before the entry exists
        // (from then on their reports keep it exact).
        let sources = self.sources.live(ALL_TIERS);
        let mut handle = None;
        with_all_locked(&sources, &mut |views| {
            let counts = counts_of(views, seq_hash);
            let mut tables = self.tables.lock();
            let registered = tables.handles.contains_key(&key) || counts.iter().any(|&n| n > 0);
            if create || registered {
                handle = Some(self.handle_of(&mut tables, seq_hash, Some(&counts)));
            }
        });
        // The stores are unlocked; dropping a source may drop its store.
        drop(sources);
        handle
    }

    /// Publishes the number of handle entries (under the tables lock).
    fn count_handle_entries(&self, tables: &Tables) {
        self.handle_entries
            .store(tables.handles.len(), Ordering::Relaxed);
    }

    /// Whether a store's report has nothing to update: no events manager
    /// and no handle entry. Read under the reporting store's lock, which a
    /// handle entry's creation holds while it inserts the entry.
    #[inline]
    fn untracked(&self) -> bool {
        self.events.is_none() && self.handle_entries.load(Ordering::Relaxed) == 0
    }

    /// Every registered hash: held by a store's primary or a handle.
    fn registered_set(&self) -> PrehashedMap<PackedKey, ()> {
        let mut set: PrehashedMap<PackedKey, ()> = PrehashedMap::default();
        let sources = self.sources.live(ALL_TIERS);
        for (_, source) in &sources {
            source.with_locked(&mut |view| {
                view.for_each_hash(&mut |hash| {
                    set.insert(hash.into(), ());
                });
            });
        }
        drop(sources);
        let tables = self.tables.lock();
        for key in tables.handles.keys() {
            set.insert(*key, ());
        }
        set
    }

    fn validate_presence(&self) -> Result<(), String> {
        let (sources, complete) = self.sources.live_checked();
        let mut result = Ok(());
        with_all_locked(&sources, &mut |views| {
            let tables = self.tables.lock();
            result = self.check_tables(&tables, views, complete);
        });
        drop(sources);
        result
    }

    fn check_tables(
        &self,
        tables: &Tables,
        views: &[(TierId, &dyn PresenceView)],
        complete: bool,
    ) -> Result<(), String> {
        let entries = self.handle_entries.load(Ordering::Relaxed);
        if entries != tables.handles.len() {
            return Err(format!(
                "registry: {entries} handle entries published, {} exist",
                tables.handles.len()
            ));
        }
        for hash in tables.tracked() {
            let tracked = tables.counts(hash);
            let held = counts_of(views, hash);
            let agrees = if complete {
                tracked == held
            } else {
                tracked.iter().zip(&held).all(|(t, h)| t >= h)
            };
            if !agrees {
                return Err(format!(
                    "registry: counts {tracked:?} of {hash:?}, the stores hold {held:?}"
                ));
            }
            if tracked.iter().all(|&n| n == 0) {
                return Err(format!("registry: {hash:?} tracked with no block"));
            }
            if !tables.track_all && !tables.handles.contains_key(&hash.into()) {
                return Err(format!("registry: {hash:?} counted without a handle entry"));
            }
        }
        if tables.track_all {
            for (tier, view) in views {
                let mut missing = None;
                view.for_each_hash(&mut |hash| {
                    if tables.count(hash, *tier) == 0 {
                        missing.get_or_insert(hash);
                    }
                });
                if let Some(hash) = missing {
                    return Err(format!(
                        "registry: {hash:?} held by tier {tier} is not counted"
                    ));
                }
            }
        }
        tables.check_announced()?;
        for (key, entry) in &tables.handles {
            let hash = SequenceHash::from(*key);
            if entry.strong.is_some() && !tables.held_by_blocks(hash) {
                return Err(format!(
                    "registry: the handle of {hash:?} is kept with no block holding it"
                ));
            }
        }
        Ok(())
    }

    /// Counts one use of `seq_hash` for frequency tracking. Every touch —
    /// handle touches, touching lookups, matches and registrations — goes
    /// through here; it is called with no registry or store lock held.
    #[inline]
    pub(crate) fn touch_hash(&self, seq_hash: SequenceHash) {
        if let Some(tracker) = &self.tracker {
            tracker.touch(seq_hash.as_u128());
        }
    }

    /// The set of tiers among `types`, as a bit mask; types that no manager
    /// of this registry uses are left out.
    fn tier_mask(&self, types: &[TypeId]) -> TierMask {
        let tiers = self.tiers.lock();
        types
            .iter()
            .filter_map(|ty| tiers.iter().position(|t| t == ty))
            .fold(0, |mask, tier| mask | 1 << tier)
    }

    /// Whether a block of any tier in `tiers` holds `seq_hash`, from the
    /// tracked counts: exact for a hash with a live handle.
    fn present_in_any(&self, seq_hash: SequenceHash, tiers: TierMask) -> bool {
        if tiers == 0 {
            return false;
        }
        self.tables
            .lock()
            .presence(seq_hash)
            .is_some_and(|c| c.present_in_any(tiers))
    }

    /// The test source of `tier`, created and added on first use.
    #[cfg(test)]
    fn test_source(&self, tier: TierId) -> Arc<tests::TestSource> {
        let mut list = self.test_sources.lock();
        if let Some(source) = list.iter().find(|s| s.tier == tier) {
            return Arc::clone(source);
        }
        let source = Arc::new(tests::TestSource::new(tier));
        let weak: Weak<dyn PresenceSource> = Arc::downgrade(&source) as _;
        self.sources.add(tier, weak);
        list.push(Arc::clone(&source));
        source
    }

    /// Called when the last handle of `seq_hash` dropped.
    fn forget_if_unused(&self, seq_hash: SequenceHash) {
        let mut tables = self.tables.lock();
        let key = seq_hash.into();
        if let Some(entry) = tables.handles.get(&key) {
            if entry.strong.is_none() && entry.weak.strong_count() == 0 {
                tables.handles.remove(&key);
                self.count_handle_entries(&tables);
                let held = tables.held_by_blocks(seq_hash);
                if !tables.track_all {
                    // Counted only for the entry's sake; the stores answer
                    // for the hash from now on.
                    tables.forget_counts(seq_hash);
                }
                if !held {
                    if let Some(mut emitter) = self.emitter() {
                        let announced = tables.take_unheld_announced(seq_hash);
                        emitter.removed(seq_hash, announced);
                    }
                }
            }
        }
    }
}

/// What the Dynamo exporter's resync asks of a registry; the trait lives in
/// `events` so that the events layer never names the registry above it.
impl crate::events::dynamo::RegisteredHashes for BlockRegistry {
    fn is_registered(&self, hash: SequenceHash) -> bool {
        BlockRegistry::is_registered(self, hash)
    }
}

#[cfg(test)]
mod tests;
