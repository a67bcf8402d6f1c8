//! Frequency-tiered LRU: four LRU lists, evicting the coldest tier first.
//!
//! When a block is released, its hash's access count from a shared
//! [`FrequencyTracker`] picks one of four tiers (cold, warm, hot, very hot).
//! Victims come from the front of the coldest non-empty tier, so a block
//! that was reused often survives a scan of one-off blocks. The tier is
//! fixed at release time; the count is not consulted again until the block
//! is released next.
//!
//! The four lists share one set of link arrays (a block is in at most one
//! tier), and the list tag doubles as the block's tier.

use std::fmt;
use std::sync::Arc;

use super::list::IndexLists;
use super::InactiveBackend;
use crate::tinylfu::{FrequencyTracker, MAX_COUNT};
use crate::{BlockId, SequenceHash};

/// Tier boundaries `[cold→warm, warm→hot, hot→very hot]` used when none are
/// configured.
pub const DEFAULT_FREQUENCY_THRESHOLDS: [u8; 3] = [3, 8, 15];

const TIERS: usize = 4;

/// Rejected [`MultiLruBackend`] thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MultiLruConfigError {
    /// Thresholds must be strictly increasing.
    #[error("frequency thresholds {0:?} are not strictly increasing")]
    NotIncreasing([u8; 3]),
    /// A count of 0 must map to the cold tier, so the first threshold is ≥ 1.
    #[error("frequency thresholds {0:?} start at 0, leaving the cold tier unreachable")]
    ZeroColdThreshold([u8; 3]),
    /// Counts saturate at 15, so higher thresholds are unreachable.
    #[error("frequency thresholds {0:?} exceed the maximum count of 15")]
    AboveMaxCount([u8; 3]),
}

/// Evicts from the least frequently used tier, least recently released
/// first within a tier.
///
/// ```
/// use std::sync::Arc;
/// use kvbm::eviction::{InactiveBackend, MultiLruBackend, DEFAULT_FREQUENCY_THRESHOLDS};
/// use kvbm::tinylfu::{FrequencyTracker, TinyLFUTracker};
/// use kvbm::SequenceHash;
///
/// let tracker = Arc::new(TinyLFUTracker::<u128>::new(1024));
/// let popular = SequenceHash::root(1);
/// for _ in 0..3 {
///     tracker.touch(popular.as_u128());
/// }
/// let mut backend = MultiLruBackend::new(8, DEFAULT_FREQUENCY_THRESHOLDS, tracker)?;
/// backend.insert(0, popular);
/// backend.insert(1, SequenceHash::root(2));
/// assert_eq!(backend.pop_victim(), Some(1));
/// # Ok::<(), kvbm::eviction::MultiLruConfigError>(())
/// ```
pub struct MultiLruBackend {
    tiers: IndexLists<TIERS>,
    tracker: Arc<dyn FrequencyTracker<u128>>,
    thresholds: [u8; 3],
}

impl MultiLruBackend {
    /// An empty backend for block ids below `capacity` whose tiers are split
    /// at `thresholds` (`count < t[0]` is cold, `< t[1]` warm, `< t[2]` hot,
    /// else very hot).
    ///
    /// # Errors
    /// If the thresholds are not strictly increasing, start at 0 or exceed 15.
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX`.
    pub fn new(
        capacity: usize,
        thresholds: [u8; 3],
        tracker: Arc<dyn FrequencyTracker<u128>>,
    ) -> Result<Self, MultiLruConfigError> {
        let [t1, t2, t3] = thresholds;
        if !(t1 < t2 && t2 < t3) {
            return Err(MultiLruConfigError::NotIncreasing(thresholds));
        }
        if t1 == 0 {
            return Err(MultiLruConfigError::ZeroColdThreshold(thresholds));
        }
        if u32::from(t3) > MAX_COUNT {
            return Err(MultiLruConfigError::AboveMaxCount(thresholds));
        }
        Ok(Self {
            tiers: IndexLists::new(capacity),
            tracker,
            thresholds,
        })
    }

    /// The configured tier boundaries.
    pub fn thresholds(&self) -> [u8; 3] {
        self.thresholds
    }

    /// Cached blocks per tier, coldest first.
    pub fn tier_lens(&self) -> [usize; 4] {
        [0, 1, 2, 3].map(|tier| self.tiers.len(tier))
    }

    /// The tier a block with this access count joins (0 = cold).
    fn tier_for(&self, count: u32) -> usize {
        self.thresholds
            .iter()
            .take_while(|&&t| count >= u32::from(t))
            .count()
    }
}

impl fmt::Debug for MultiLruBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiLruBackend")
            .field("thresholds", &self.thresholds)
            .field("tier_lens", &self.tier_lens())
            .finish_non_exhaustive()
    }
}

impl InactiveBackend for MultiLruBackend {
    fn name(&self) -> &'static str {
        "multi-lru"
    }

    fn insert(&mut self, block: BlockId, hash: SequenceHash) {
        let tier = self.tier_for(self.tracker.count(hash.as_u128()));
        self.tiers.push_back(tier, block as u32);
    }

    fn remove(&mut self, block: BlockId, _hash: SequenceHash) {
        let tier = self.tiers.remove(block as u32);
        debug_assert!(tier.is_some(), "block {block} removed but not cached");
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        (0..TIERS)
            .find_map(|tier| self.tiers.pop_front(tier))
            .map(|id| id as BlockId)
    }

    fn len(&self) -> usize {
        self.tiers.total_len()
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        while let Some(id) = self.pop_victim() {
            sink(id);
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.tiers.validate("multi-lru")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tinylfu::{NoOpTracker, TinyLFUTracker};

    fn h(i: u64) -> SequenceHash {
        SequenceHash::root(i)
    }

    fn tracker() -> Arc<TinyLFUTracker<u128>> {
        Arc::new(TinyLFUTracker::new(4096))
    }

    fn touch(tracker: &TinyLFUTracker<u128>, i: u64, times: usize) {
        for _ in 0..times {
            tracker.touch(h(i).as_u128());
        }
    }

    #[test]
    fn rejects_bad_thresholds() {
        let noop = || Arc::new(NoOpTracker::<u128>::new()) as Arc<dyn FrequencyTracker<u128>>;
        let err = |t| MultiLruBackend::new(4, t, noop()).err();
        assert_eq!(
            err([3, 3, 8]),
            Some(MultiLruConfigError::NotIncreasing([3, 3, 8]))
        );
        assert_eq!(
            err([5, 4, 8]),
            Some(MultiLruConfigError::NotIncreasing([5, 4, 8]))
        );
        assert_eq!(
            err([0, 4, 8]),
            Some(MultiLruConfigError::ZeroColdThreshold([0, 4, 8]))
        );
        assert_eq!(
            err([1, 4, 16]),
            Some(MultiLruConfigError::AboveMaxCount([1, 4, 16]))
        );
        assert!(err([1, 2, 15]).is_none());
        assert!(err(DEFAULT_FREQUENCY_THRESHOLDS).is_none());
        let message = MultiLruConfigError::AboveMaxCount([1, 4, 16]).to_string();
        assert!(message.contains("15"), "{message}");
    }

    #[test]
    fn tiers_follow_thresholds() {
        let tracker = tracker();
        // Counts 0, 2 → cold; 3, 7 → warm; 8, 14 → hot; 15 → very hot.
        let counts = [0, 2, 3, 7, 8, 14, 15];
        for (i, &n) in counts.iter().enumerate() {
            touch(&tracker, i as u64, n);
        }
        let mut backend = MultiLruBackend::new(8, DEFAULT_FREQUENCY_THRESHOLDS, tracker).unwrap();
        // Release the hottest first so LRU order alone would evict it first.
        for i in (0..counts.len()).rev() {
            backend.insert(i, h(i as u64));
        }
        backend.validate().unwrap();
        assert_eq!(backend.tier_lens(), [2, 2, 2, 1]);
        let order: Vec<_> = std::iter::from_fn(|| backend.pop_victim()).collect();
        assert_eq!(order, vec![1, 0, 3, 2, 5, 4, 6]);
        backend.validate().unwrap();
    }

    #[test]
    fn tier_is_fixed_at_release() {
        let tracker = tracker();
        let mut backend = MultiLruBackend::new(
            4,
            [1, 2, 3],
            tracker.clone() as Arc<dyn FrequencyTracker<u128>>,
        )
        .unwrap();
        backend.insert(0, h(0));
        backend.insert(1, h(1));
        touch(&tracker, 0, 5);
        assert_eq!(
            backend.pop_victim(),
            Some(0),
            "count after release is ignored"
        );
        backend.remove(1, h(1));
        backend.insert(1, h(1));
        backend.insert(0, h(0));
        assert_eq!(backend.tier_lens(), [1, 0, 0, 1]);
        let mut drained = Vec::new();
        backend.drain(&mut |id| drained.push(id));
        assert_eq!(drained, vec![1, 0]);
        assert!(backend.is_empty());
        backend.validate().unwrap();
        assert_eq!(backend.name(), "multi-lru");
        assert_eq!(backend.thresholds(), [1, 2, 3]);
    }
}
