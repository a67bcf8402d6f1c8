//! The store's invariant checker.

use super::{SlotState, State, Store};
use crate::eviction::BlockHashes;

/// A broken store invariant, described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block store invariant violated: {0}")]
pub struct InvariantViolation(pub String);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(InvariantViolation(format!($($fmt)*)));
        }
    };
}

impl<T: super::BlockMetadata> Store<T> {
    /// Checks every invariant of the store:
    /// - free + cached + checked out + held = total, and each count matches
    ///   the slots' states;
    /// - the free list, threaded through the free slots, holds each free
    ///   block exactly once and nothing else;
    /// - the hash index points at exactly the registered primaries, under
    ///   their own hashes;
    /// - the backend holds exactly the cached blocks and is internally
    ///   consistent;
    /// - share counts are zero for blocks nobody can hold, and at least one
    ///   for held blocks;
    /// - every duplicate's primary is held, with at least one share per
    ///   live duplicate (see `duplicates`);
    /// - a poisoned store has no backend and nothing cached;
    /// - the metrics gauges equal the counts;
    /// - the registry's presence counts agree with the stores' indexes
    ///   (checked with every store of the registry locked, this one
    ///   unlocked first).
    ///
    /// Meant for tests and debugging; it is O(blocks).
    pub(crate) fn validate(&self) -> Result<(), InvariantViolation> {
        {
            let mut st = self.lock();
            self.validate_locked(&mut st)?;
        }
        self.registry
            .validate_presence()
            .map_err(InvariantViolation)
    }

    fn validate_locked(&self, st: &mut State<T>) -> Result<(), InvariantViolation> {
        let total = st.slots.len();
        let mut counts = [0usize; 5];
        for (id, slot) in st.slots.iter().enumerate() {
            let shares = self.shares[id].count();
            let k = match slot.state {
                SlotState::Free => 0,
                SlotState::CheckedOut => 1,
                SlotState::Held => 2,
                SlotState::Cached => 3,
                SlotState::Duplicate => 4,
            };
            counts[k] += 1;
            match slot.state {
                SlotState::Held | SlotState::Cached => ensure!(
                    st.index.get(slot.hash(), |i| st.slots[i as usize].hash()) == Some(id as u32),
                    "registered block {id} is not indexed under its hash {:?}",
                    slot.hash()
                ),
                _ => {}
            }
            if matches!(
                slot.state,
                SlotState::Free | SlotState::CheckedOut | SlotState::Cached
            ) {
                ensure!(
                    shares == 0,
                    "block {id} in state {:?} has {shares} shares",
                    slot.state
                );
            } else {
                ensure!(
                    shares > 0,
                    "block {id} in state {:?} has no share",
                    slot.state
                );
            }
        }
        let [free, checked_out, held, cached, duplicate] = counts;
        if duplicate > 0 {
            self.validate_duplicates(st)?;
        }
        ensure!(
            free + checked_out + held + cached + duplicate == total,
            "states do not add up to {total}"
        );
        ensure!(
            st.free.len() == free,
            "free list has {} entries, {free} blocks are free",
            st.free.len()
        );
        st.free.validate(&st.slots).map_err(InvariantViolation)?;
        ensure!(
            st.index.len() == held + cached,
            "index has {} entries for {} registered primaries",
            st.index.len(),
            held + cached
        );
        ensure!(
            st.cached == cached,
            "cached count {} but {cached} blocks are cached",
            st.cached
        );
        let addr = self.addr();
        let hashes = BlockHashes::from_store(&st.slots);
        match st.backend.as_deref_mut() {
            None => ensure!(
                st.poisoned.is_some() && cached == 0,
                "no backend, but {cached} cached blocks and poisoned {:?}",
                st.poisoned
            ),
            Some(backend) => {
                // The backend is user code: a panic in its `len` or
                // `validate` is a finding, not a reason to unwind here.
                let checked = super::user_code::call(addr, || {
                    (backend.len(), backend.validate_with_hashes(hashes))
                })
                .map_err(|_| InvariantViolation("backend: panicked while validated".into()))?;
                let (len, valid) = checked;
                ensure!(
                    len == cached,
                    "backend holds {len} blocks, {cached} are cached"
                );
                valid.map_err(|e| InvariantViolation(format!("backend: {e}")))?;
            }
        }
        ensure!(
            st.checked_out == checked_out,
            "checked-out count {} but {checked_out} blocks are out",
            st.checked_out
        );
        ensure!(
            st.held == held + duplicate,
            "held count {} but {} blocks are held",
            st.held,
            held + duplicate
        );
        ensure!(
            st.lease.is_some() == (checked_out + held + duplicate > 0),
            "lease {} with {} blocks out or held",
            if st.lease.is_some() {
                "held"
            } else {
                "not held"
            },
            checked_out + held + duplicate
        );
        let m = self.metrics.snapshot();
        ensure!(
            m.reset_pool_size == free as i64
                && m.inactive_pool_size == cached as i64
                && m.inflight_mutable == checked_out as i64
                && m.inflight_immutable == (held + duplicate) as i64,
            "gauges {m:?} disagree with free {free}, cached {cached}, checked out {checked_out}, held {}",
            held + duplicate
        );
        Ok(())
    }

    /// Every duplicate's primary is indexed under its hash and held, with
    /// one share at least per live duplicate of it.
    fn validate_duplicates(&self, st: &State<T>) -> Result<(), InvariantViolation> {
        let mut duplicates = vec![0u32; st.slots.len()];
        for (id, slot) in st.slots.iter().enumerate() {
            if slot.state != SlotState::Duplicate {
                continue;
            }
            let hash = slot.hash();
            let primary = st.index.get(hash, |i| st.slots[i as usize].hash());
            let Some(primary) = primary else {
                return Err(InvariantViolation(format!(
                    "duplicate {id} of {hash:?} has no registered primary"
                )));
            };
            let state = st.slots[primary as usize].state;
            ensure!(
                state == SlotState::Held,
                "duplicate {id} of {hash:?}: its primary {primary} is {state:?}, not held"
            );
            duplicates[primary as usize] += 1;
        }
        for (primary, &n) in duplicates.iter().enumerate() {
            let shares = self.shares[primary].count();
            ensure!(
                shares >= n,
                "primary {primary} has {shares} shares but {n} live duplicates hold it"
            );
        }
        Ok(())
    }
}
