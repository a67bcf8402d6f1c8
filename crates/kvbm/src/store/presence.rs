//! The store as the registry's presence source: its hash index of
//! registered primaries is the one record of which hashes this tier holds.

use super::{State, Store};
use crate::registry::{PresenceSource, PresenceView};
use crate::SequenceHash;

impl<T> PresenceView for State<T> {
    #[inline]
    fn count(&self, hash: SequenceHash) -> u32 {
        u32::from(
            self.index
                .get(hash, |i| self.slots[i as usize].hash())
                .is_some(),
        )
    }

    fn for_each_hash(&self, f: &mut dyn FnMut(SequenceHash)) {
        for id in self.index.ids() {
            f(self.slots[id as usize].hash());
        }
    }
}

impl<T: super::BlockMetadata> PresenceSource for Store<T> {
    fn with_locked(&self, f: &mut dyn FnMut(&dyn PresenceView)) {
        let st = self.lock();
        f(&*st);
    }
}
