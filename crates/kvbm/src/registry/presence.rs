//! Batch presence queries: which of several hashes a tier holds.

use std::any::TypeId;

use super::BlockRegistry;
use crate::SequenceHash;

impl BlockRegistry {
    /// For each of `seq_hashes`, in order, whether a block of tier `T`
    /// holds it (in use or cached).
    ///
    /// The answer comes from the managers' own hash indexes, each locked
    /// once for the whole batch; a block registered or evicted concurrently
    /// may or may not be seen. Does not count as a touch, and creates no handles.
    ///
    /// ```
    /// use kvbm::{manager::BlockManager, SequenceHash};
    ///
    /// #[derive(Clone)]
    /// struct Device;
    ///
    /// let manager = BlockManager::<Device>::builder()
    ///     .block_count(1)
    ///     .block_size(4)
    ///     .build()
    ///     .unwrap();
    /// let (a, b) = (SequenceHash::root(1), SequenceHash::root(2));
    /// let block = manager.allocate_blocks(1).unwrap().pop().unwrap();
    /// let _held = manager.register_block(block.stage(a, 4).unwrap());
    ///
    /// let presence = manager.block_registry().check_presence::<Device>(&[a, b]);
    /// assert_eq!(presence, vec![(a, true), (b, false)]);
    /// ```
    pub fn check_presence<T: 'static>(
        &self,
        seq_hashes: &[SequenceHash],
    ) -> Vec<(SequenceHash, bool)> {
        self.check_presence_any(seq_hashes, &[TypeId::of::<T>()])
    }

    /// For each of `seq_hashes`, in order, whether a block of any of the
    /// tiers `type_ids` (block metadata types) holds it.
    ///
    /// Same consistency as [`check_presence`](Self::check_presence); types
    /// that no manager of this registry uses never match.
    pub fn check_presence_any(
        &self,
        seq_hashes: &[SequenceHash],
        type_ids: &[TypeId],
    ) -> Vec<(SequenceHash, bool)> {
        let tiers = self.inner.tier_mask(type_ids);
        let mut out: Vec<(SequenceHash, bool)> = seq_hashes.iter().map(|&h| (h, false)).collect();
        if tiers == 0 {
            return out;
        }
        let sources = self.inner.sources.live(tiers);
        for (_, source) in &sources {
            source.with_locked(&mut |view| {
                for (hash, present) in out.iter_mut() {
                    *present = *present || view.count(*hash) > 0;
                }
            });
        }
        // Dropped with no lock held: the last reference may drop a store.
        drop(sources);
        out
    }
}
