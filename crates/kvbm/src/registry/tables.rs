//! The registry's own maps.
//!
//! - `handles`: the registration handle of a hash, only for hashes that have
//!   one alive; most cached blocks never do.
//! - `presence`: how many primaries of each tier hold a hash, kept only
//!   where the registry must notice the last block of a hash going away
//!   without asking the stores: for hashes with a handle entry (whose
//!   attachments live while blocks hold the hash) and, with an events
//!   manager attached (`track_all`), for every block-held hash, since
//!   events follow the registration of a hash across all tiers. Without
//!   either, the stores' own indexes answer presence queries (see
//!   `sources`) and this map stays empty: a cached block costs the registry
//!   nothing. The same entry remembers whether the events manager announced
//!   the hash's Create, so that events cost no second table. An entry is
//!   the key as four `u32` words and one `u32` of 3-bit tier counts plus
//!   the announced bit: 20 bytes. A tier count that reaches [`SPILLED`]
//!   moves to `spilled`, a map that only sees hashes held by several
//!   managers of one tier.
//! - `announced_unheld`: the announced bit of hashes registered by a
//!   handle alone, which have no `presence` entry to carry it; a few at
//!   most.
//!
//! All sit behind the registry's one lock.

use std::collections::hash_map::Entry;
use std::sync::{Arc, Weak};

use super::handle::HandleInner;
use super::{TierId, TierMask, MAX_TIERS};
use crate::prehashed::{PackedKey, PrehashedMap};
use crate::SequenceHash;

/// Bits of one tier's count.
const COUNT_BITS: usize = 3;
const COUNT_MASK: u32 = (1 << COUNT_BITS) - 1;
/// A tier count meaning "this many or more; the exact count is spilled".
/// Several primaries of one tier hold a hash only when several managers of
/// that tier share the registry.
const SPILLED: u32 = COUNT_MASK;
/// The count bits of every tier.
const ALL_COUNTS: u32 = (1 << (COUNT_BITS * MAX_TIERS)) - 1;
/// Set when the events manager announced the hash's Create.
const ANNOUNCED: u32 = 1 << 31;
const _: () = assert!(COUNT_BITS * MAX_TIERS < 31);

/// Primary blocks holding one hash, per tier, and whether its Create was
/// announced.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TierCounts(u32);

impl TierCounts {
    /// The count of `tier` ([`SPILLED`] for "see the spill map").
    #[inline]
    fn tier(self, tier: TierId) -> u32 {
        self.0 >> (tier * COUNT_BITS) & COUNT_MASK
    }

    #[inline]
    fn set_tier(&mut self, tier: TierId, n: u32) {
        let shift = tier * COUNT_BITS;
        self.0 = self.0 & !(COUNT_MASK << shift) | n << shift;
    }

    #[inline]
    fn announced(self) -> bool {
        self.0 & ANNOUNCED != 0
    }

    #[inline]
    pub(super) fn held_by_blocks(&self) -> bool {
        self.0 & ALL_COUNTS != 0
    }

    pub(super) fn present_in_any(&self, tiers: TierMask) -> bool {
        (0..MAX_TIERS).any(|tier| tiers & (1 << tier) != 0 && self.tier(tier) > 0)
    }
}

/// The handle of a registered hash.
#[derive(Default)]
pub(super) struct HandleEntry {
    /// Kept while a block holds the hash, so attachments live as long as
    /// the data they describe.
    pub(super) strong: Option<Arc<HandleInner>>,
    /// Whatever handle is alive, held by callers or by `strong`.
    pub(super) weak: Weak<HandleInner>,
}

/// What removing one block's presence left.
pub(super) enum Removal {
    /// No block held the hash.
    NotPresent,
    /// Blocks still hold it.
    StillHeld,
    /// That was the last block; `announced` is the hash's announced bit,
    /// which left the tables with its counts.
    NoLongerHeld { announced: bool },
}

/// Presence counts, announced bits and handles.
#[derive(Default)]
pub(super) struct Tables {
    /// Count every block-held hash (an events manager is attached), not
    /// only those with a handle entry.
    pub(super) track_all: bool,
    presence: PrehashedMap<PackedKey, TierCounts>,
    spilled: PrehashedMap<(PackedKey, TierId), u32>,
    pub(super) handles: PrehashedMap<PackedKey, HandleEntry>,
    /// Announced hashes that no block holds (registered by a handle alone).
    announced_unheld: PrehashedMap<PackedKey, ()>,
}

impl Tables {
    /// Empty tables; `track_all` counts every block-held hash.
    pub(super) fn new(track_all: bool) -> Self {
        Self {
            track_all,
            ..Self::default()
        }
    }

    /// Room for `additional` more block-held hashes.
    pub(super) fn reserve(
        &mut self,
        additional: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        self.presence.try_reserve(additional)
    }

    /// The presence counts of `hash`, if any block holds it.
    pub(super) fn presence(&self, hash: SequenceHash) -> Option<&TierCounts> {
        self.presence.get(&PackedKey::from(hash))
    }

    /// Whether a block of any tier holds `hash`.
    pub(super) fn held_by_blocks(&self, hash: SequenceHash) -> bool {
        self.presence(hash).is_some_and(TierCounts::held_by_blocks)
    }

    /// Whether `hash` is registered: held by a block or by a live handle.
    pub(super) fn is_registered(&self, hash: SequenceHash) -> bool {
        let key = PackedKey::from(hash);
        self.presence.contains_key(&key) || self.handles.contains_key(&key)
    }

    /// The number of registered hashes.
    pub(super) fn registered_count(&self) -> usize {
        let handles_only = self
            .handles
            .keys()
            .filter(|key| !self.presence.contains_key(key))
            .count();
        self.presence.len() + handles_only
    }

    /// One more block of `tier` holds `hash`; returns the handle entry of
    /// `hash` if it has one.
    ///
    /// When `hash` was not registered at all (no block, no handle), it
    /// enters the registry now: `created` runs and returns whether the
    /// events manager announced it. A hash that a handle alone registered
    /// keeps the announced bit it had.
    #[inline]
    pub(super) fn add(
        &mut self,
        hash: SequenceHash,
        tier: TierId,
        created: impl FnOnce() -> bool,
    ) -> Option<&mut HandleEntry> {
        let key = PackedKey::from(hash);
        if !self.track_all && !self.handles.contains_key(&key) {
            // Untracked: the stores answer for it.
            return None;
        }
        let counts = match self.presence.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let announced = if !self.handles.is_empty() && self.handles.contains_key(&key) {
                    self.announced_unheld.remove(&key).is_some()
                } else {
                    created()
                };
                entry.insert(TierCounts(if announced { ANNOUNCED } else { 0 }))
            }
        };
        match counts.tier(tier) {
            SPILLED => *self.spilled.entry((key, tier)).or_insert(SPILLED) += 1,
            n if n == SPILLED - 1 => {
                counts.set_tier(tier, SPILLED);
                self.spilled.insert((key, tier), SPILLED);
            }
            n => counts.set_tier(tier, n + 1),
        }
        if self.handles.is_empty() {
            return None;
        }
        self.handles.get_mut(&key)
    }

    /// One block of `tier` less holds `hash`.
    #[inline]
    pub(super) fn remove(&mut self, hash: SequenceHash, tier: TierId) -> Removal {
        let key = PackedKey::from(hash);
        let Entry::Occupied(mut entry) = self.presence.entry(key) else {
            return Removal::NotPresent;
        };
        let counts = entry.get_mut();
        match counts.tier(tier) {
            SPILLED => {
                let spilled = self.spilled.entry((key, tier)).or_insert(SPILLED);
                *spilled -= 1;
                if *spilled < SPILLED {
                    counts.set_tier(tier, *spilled);
                    self.spilled.remove(&(key, tier));
                }
            }
            n => counts.set_tier(tier, n.saturating_sub(1)),
        }
        if counts.held_by_blocks() {
            return Removal::StillHeld;
        }
        let announced = entry.remove().announced();
        Removal::NoLongerHeld { announced }
    }

    /// Sets the counts of `hash`, read from every store, when its handle
    /// entry is created and tracking it begins. Only without an events
    /// manager: with one, every block-held hash is tracked from the start.
    pub(super) fn set_counts(&mut self, hash: SequenceHash, counts: &[u32; MAX_TIERS]) {
        debug_assert!(
            !self.track_all,
            "counts set from the stores while tracking all"
        );
        let key = PackedKey::from(hash);
        self.forget_counts(hash);
        if counts.iter().all(|&n| n == 0) {
            return;
        }
        let mut packed = TierCounts::default();
        for (tier, &n) in counts.iter().enumerate() {
            if n >= SPILLED {
                packed.set_tier(tier, SPILLED);
                self.spilled.insert((key, tier), n);
            } else {
                packed.set_tier(tier, n);
            }
        }
        self.presence.insert(key, packed);
    }

    /// Stops tracking the counts of `hash` (its handle entry is gone).
    /// Only without an events manager, so no announced bit is lost.
    pub(super) fn forget_counts(&mut self, hash: SequenceHash) {
        debug_assert!(!self.track_all, "counts forgotten while tracking all");
        let key = PackedKey::from(hash);
        if let Some(counts) = self.presence.remove(&key) {
            for tier in 0..MAX_TIERS {
                if counts.tier(tier) == SPILLED {
                    self.spilled.remove(&(key, tier));
                }
            }
        }
    }

    /// The exact per-tier counts of `hash`, spilled or not.
    pub(super) fn counts(&self, hash: SequenceHash) -> [u32; MAX_TIERS] {
        let mut out = [0; MAX_TIERS];
        for (tier, n) in out.iter_mut().enumerate() {
            *n = self.count(hash, tier);
        }
        out
    }

    /// Every hash with tracked counts.
    pub(super) fn tracked(&self) -> impl Iterator<Item = SequenceHash> + '_ {
        self.presence.keys().map(|&key| key.into())
    }

    /// Remembers the announced bit of `hash`, registered while no block
    /// holds it: by a new handle, or by a handle that outlived the last
    /// block.
    pub(super) fn set_unheld_announced(&mut self, hash: SequenceHash, announced: bool) {
        if announced {
            self.announced_unheld.insert(hash.into(), ());
        }
    }

    /// Whether `hash`, registered while no block holds it, was announced;
    /// forgets it (its registration ends).
    pub(super) fn take_unheld_announced(&mut self, hash: SequenceHash) -> bool {
        if self.announced_unheld.is_empty() {
            return false;
        }
        self.announced_unheld
            .remove(&PackedKey::from(hash))
            .is_some()
    }

    /// Every registered hash.
    pub(super) fn registered_hashes(&self) -> Vec<SequenceHash> {
        let handles_only = self
            .handles
            .keys()
            .filter(|key| !self.presence.contains_key(key));
        self.presence
            .keys()
            .chain(handles_only)
            .map(|&key| key.into())
            .collect()
    }

    /// The hashes whose Create was announced and whose Remove has not
    /// happened.
    pub(super) fn announced_hashes(&self) -> Vec<SequenceHash> {
        let held = self
            .presence
            .iter()
            .filter(|(_, counts)| counts.announced())
            .map(|(key, _)| key);
        held.chain(self.announced_unheld.keys())
            .map(|&key| key.into())
            .collect()
    }

    /// Checks where the announced bits live: a bit outside `presence`
    /// belongs to a hash that a handle alone registers, and without an
    /// events manager there are none.
    pub(super) fn check_announced(&self) -> Result<(), String> {
        for &key in self.announced_unheld.keys() {
            let hash = SequenceHash::from(key);
            if self.presence.contains_key(&key) {
                return Err(format!(
                    "registry: {hash:?} held by blocks has its announced bit outside its counts"
                ));
            }
            if !self.handles.contains_key(&key) {
                return Err(format!(
                    "registry: announced {hash:?} is registered by neither a block nor a handle"
                ));
            }
        }
        if !self.track_all
            && (!self.announced_unheld.is_empty()
                || self.presence.values().any(|counts| counts.announced()))
        {
            return Err("registry: announced bits without an events manager".into());
        }
        Ok(())
    }

    /// The exact count of `tier` for `hash`, spilled or not.
    pub(super) fn count(&self, hash: SequenceHash, tier: TierId) -> u32 {
        let key = PackedKey::from(hash);
        match self.presence.get(&key).map(|c| c.tier(tier)) {
            None => 0,
            Some(SPILLED) => self.spilled.get(&(key, tier)).copied().unwrap_or(0),
            Some(n) => n,
        }
    }

    /// Hashes with tracked counts.
    #[cfg(test)]
    pub(super) fn tracked_len(&self) -> usize {
        self.presence.len()
    }

    /// Counts that live in the spill map.
    #[cfg(test)]
    pub(super) fn spilled_len(&self) -> usize {
        self.spilled.len()
    }
}
