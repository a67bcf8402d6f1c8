//! The registry's two maps, kept small because one entry exists per cached
//! block.
//!
//! - `presence`: for every hash a block holds as its primary, how many such
//!   blocks each tier has. One byte per tier and the key stored as two
//!   `u64` words make an entry 24 bytes (a `u128` key and `u32` counts made
//!   it 64 together with the handle pointers). A tier count that reaches
//!   [`SPILLED`] moves to `spilled`, a plain map that only sees hashes held
//!   by hundreds of managers of one tier.
//! - `handles`: the registration handle of a hash, only for hashes that have
//!   one alive; most cached blocks never do.
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
    presence: PrehashedMap<PackedKey, TierCounts>,
    spilled: HashMap<(PackedKey, TierId), u32>,
    pub(super) handles: PrehashedMap<PackedKey, HandleEntry>,
    /// Registered hashes whose Create an events manager announced (only
    /// filled with an events manager attached).
    announced: PrehashedMap<PackedKey, ()>,
}

impl Tables {
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
    #[cfg(test)]
    pub(super) fn count(&self, hash: SequenceHash, tier: TierId) -> u32 {
        let key = PackedKey::from(hash);
        match self.presence.get(&key).map(|c| c.0[tier]) {
            None => 0,
            Some(SPILLED) => self.spilled.get(&(key, tier)).copied().unwrap_or(0),
            Some(n) => n.into(),
        }
    }

    /// Counts that live in the spill map.
    #[cfg(test)]
    pub(super) fn spilled_len(&self) -> usize {
        self.spilled.len()
    }
}
