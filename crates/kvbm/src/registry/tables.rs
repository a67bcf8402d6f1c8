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
//!   nothing. One byte per tier and the key stored as two `u64` words make
//!   an entry 24 bytes. A tier count that reaches [`SPILLED`] moves to
//!   `spilled`, a plain map that only sees hashes held by hundreds of
//!   managers of one tier.
//!
//! Both sit behind the registry's one lock.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::handle::HandleInner;
use super::{TierId, TierMask, MAX_TIERS};
use crate::prehashed::{PackedKey, PrehashedMap};
use crate::SequenceHash;

/// A tier count byte meaning "255 or more; the exact count is spilled".
const SPILLED: u8 = u8::MAX;

/// Primary blocks holding one hash, per tier.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TierCounts([u8; MAX_TIERS]);

impl TierCounts {
    pub(super) fn held_by_blocks(&self) -> bool {
        self.0.iter().any(|&n| n > 0)
    }

    pub(super) fn present_in_any(&self, tiers: TierMask) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(tier, &n)| n > 0 && tiers & (1 << tier) != 0)
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
    /// That was the last block.
    NoLongerHeld,
}

/// Presence counts and handles.
#[derive(Default)]
pub(super) struct Tables {
    /// Count every block-held hash (an events manager is attached), not
    /// only those with a handle entry.
    pub(super) track_all: bool,
    presence: PrehashedMap<PackedKey, TierCounts>,
    spilled: HashMap<(PackedKey, TierId), u32>,
    pub(super) handles: PrehashedMap<PackedKey, HandleEntry>,
    /// Registered hashes whose Create an events manager announced (only
    /// filled with an events manager attached).
    announced: PrehashedMap<PackedKey, ()>,
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
    pub(super) fn add(&mut self, hash: SequenceHash, tier: TierId) -> Option<&mut HandleEntry> {
        let key = PackedKey::from(hash);
        if !self.track_all && !self.handles.contains_key(&key) {
            // Untracked: the stores answer for it.
            return None;
        }
        let count = &mut self.presence.entry(key).or_default().0[tier];
        match *count {
            SPILLED => *self.spilled.entry((key, tier)).or_insert(SPILLED.into()) += 1,
            n if n == SPILLED - 1 => {
                *count = SPILLED;
                self.spilled.insert((key, tier), SPILLED.into());
            }
            _ => *count += 1,
        }
        if self.handles.is_empty() {
            return None;
        }
        self.handles.get_mut(&key)
    }

    /// One block of `tier` less holds `hash`.
    pub(super) fn remove(&mut self, hash: SequenceHash, tier: TierId) -> Removal {
        let key = PackedKey::from(hash);
        let Some(counts) = self.presence.get_mut(&key) else {
            return Removal::NotPresent;
        };
        let count = &mut counts.0[tier];
        if *count == SPILLED {
            let spilled = self.spilled.entry((key, tier)).or_insert(SPILLED.into());
            *spilled -= 1;
            if *spilled < SPILLED.into() {
                *count = SPILLED - 1;
                self.spilled.remove(&(key, tier));
            }
        } else {
            *count = count.saturating_sub(1);
        }
        if counts.held_by_blocks() {
            return Removal::StillHeld;
        }
        self.presence.remove(&key);
        Removal::NoLongerHeld
    }

    /// Sets the counts of `hash`, read from every store, when its handle
    /// entry is created and tracking it begins.
    pub(super) fn set_counts(&mut self, hash: SequenceHash, counts: &[u32; MAX_TIERS]) {
        let key = PackedKey::from(hash);
        self.forget_counts(hash);
        if counts.iter().all(|&n| n == 0) {
            return;
        }
        let mut bytes = TierCounts::default();
        for (tier, &n) in counts.iter().enumerate() {
            if n >= u32::from(SPILLED) {
                bytes.0[tier] = SPILLED;
                self.spilled.insert((key, tier), n);
            } else {
                bytes.0[tier] = n as u8;
            }
        }
        self.presence.insert(key, bytes);
    }

    /// Stops tracking the counts of `hash` (its handle entry is gone).
    pub(super) fn forget_counts(&mut self, hash: SequenceHash) {
        let key = PackedKey::from(hash);
        if let Some(counts) = self.presence.remove(&key) {
            for (tier, &n) in counts.0.iter().enumerate() {
                if n == SPILLED {
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

    /// Records whether the events manager announced `hash`'s Create.
    pub(super) fn set_announced(&mut self, hash: SequenceHash, announced: bool) {
        if announced {
            self.announced.insert(hash.into(), ());
        }
    }

    /// Whether `hash`'s Create was announced, forgetting it.
    pub(super) fn take_announced(&mut self, hash: SequenceHash) -> bool {
        self.announced.remove(&PackedKey::from(hash)).is_some()
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
        self.announced.keys().map(|&key| key.into()).collect()
    }

    /// The exact count of `tier` for `hash`, spilled or not.
    pub(super) fn count(&self, hash: SequenceHash, tier: TierId) -> u32 {
        let key = PackedKey::from(hash);
        match self.presence.get(&key).map(|c| c.0[tier]) {
            None => 0,
            Some(SPILLED) => self.spilled.get(&(key, tier)).copied().unwrap_or(0),
            Some(n) => n.into(),
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
