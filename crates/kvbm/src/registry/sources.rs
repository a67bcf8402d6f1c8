//! Presence sources: the stores whose hash indexes answer "which tier holds
//! this hash", so that the registry need not keep a copy of every index.
//!
//! Each manager's store registers itself here (weakly: the registry must
//! not keep a dropped manager alive). Queries lock one store at a time and
//! never hold the registry's table lock meanwhile. Creating a handle entry
//! is the one place that needs a consistent cut over every store at once:
//! it locks all of them, in registration order, and only then the registry
//! tables — the same order (stores, then registry) in which a store reports
//! its changes, so the two never wait for each other in a cycle. While a
//! store's lock is held, no other handle entry can be half created over it.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::{TierId, TierMask, MAX_TIERS};
use crate::SequenceHash;

/// A view of one source's index, valid while the source is locked.
pub(crate) trait PresenceView {
    /// How many primaries of the source hold `hash` (a store: 0 or 1).
    fn count(&self, hash: SequenceHash) -> u32;
    /// Calls `f` with every hash the source holds a primary for.
    fn for_each_hash(&self, f: &mut dyn FnMut(SequenceHash));
}

/// Something that holds hashes for one tier: a manager's store.
pub(crate) trait PresenceSource: Send + Sync {
    /// Locks the source and calls `f` with a view of it; nothing the view
    /// shows changes until `f` returns.
    fn with_locked(&self, f: &mut dyn FnMut(&dyn PresenceView));
}

/// The registered sources.
#[derive(Default)]
pub(super) struct Sources {
    list: Mutex<SourceList>,
}

#[derive(Default)]
struct SourceList {
    sources: Vec<(TierId, Weak<dyn PresenceSource>)>,
    /// Whether a source was ever dropped: counts the registry tracked for
    /// its blocks then stay (as the registrations do).
    lost_any: bool,
}

/// Live sources, upgraded for one query; dropped with no lock held.
pub(super) type LiveSources = Vec<(TierId, Arc<dyn PresenceSource>)>;

impl Sources {
    /// Adds a source of `tier`, forgetting sources that are gone.
    pub(super) fn add(&self, tier: TierId, source: Weak<dyn PresenceSource>) {
        let mut list = self.list.lock();
        let before = list.sources.len();
        list.sources.retain(|(_, s)| s.strong_count() > 0);
        list.lost_any |= list.sources.len() < before;
        list.sources.push((tier, source));
    }

    /// Every live source, and whether no source was ever lost.
    pub(super) fn live_checked(&self) -> (LiveSources, bool) {
        let mut list = self.list.lock();
        let live: LiveSources = list
            .sources
            .iter()
            .filter_map(|(tier, s)| s.upgrade().map(|s| (*tier, s)))
            .collect();
        list.lost_any |= live.len() < list.sources.len();
        let complete = !list.lost_any;
        drop(list);
        (live, complete)
    }

    /// The live sources of the tiers in `tiers`, in registration order.
    pub(super) fn live(&self, tiers: TierMask) -> LiveSources {
        self.list
            .lock()
            .sources
            .iter()
            .filter(|(tier, _)| tiers & (1 << tier) != 0)
            .filter_map(|(tier, s)| s.upgrade().map(|s| (*tier, s)))
            .collect()
    }
}

/// Every tier.
pub(super) const ALL_TIERS: TierMask = TierMask::MAX;

/// Sources locked by [`with_all_locked`], each view beside its tier.
pub(super) type LockedViews<'a> = [(TierId, &'a dyn PresenceView)];

/// Locks every source in `sources` (in order, each inside the last) and
/// calls `then` with their views, each beside its tier, while they are all
/// locked.
pub(super) fn with_all_locked(
    sources: &[(TierId, Arc<dyn PresenceSource>)],
    then: &mut dyn FnMut(&LockedViews<'_>),
) {
    fn step(
        sources: &[(TierId, Arc<dyn PresenceSource>)],
        locked: &LockedViews<'_>,
        then: &mut dyn FnMut(&LockedViews<'_>),
    ) {
        match sources.split_first() {
            None => then(locked),
            Some(((tier, source), rest)) => source.with_locked(&mut |view| {
                // The view is valid only inside this call, so the sources
                // after it are locked (and `then` runs) from in here.
                let mut deeper = Vec::with_capacity(locked.len() + 1);
                deeper.extend_from_slice(locked);
                deeper.push((*tier, view));
                step(rest, &deeper, then);
            }),
        }
    }
    step(sources, &[], then);
}

/// The per-tier counts of `hash` over locked views.
pub(super) fn counts_of(
    views: &[(TierId, &dyn PresenceView)],
    hash: SequenceHash,
) -> [u32; MAX_TIERS] {
    let mut counts = [0; MAX_TIERS];
    for (tier, view) in views {
        counts[*tier] += view.count(hash);
    }
    counts
}
