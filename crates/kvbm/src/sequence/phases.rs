//! The three ordered phases a sequence's blocks go through — pending,
//! staged, assigned — keyed by block id, shared by the identity-level and
//! the guard-level assignment trackers.
//!
//! Each phase keeps insertion order (a block's place in it is its place in
//! the sequence); one set of every id present makes the duplicate checks
//! O(1) instead of a scan of all three phases.

use std::collections::{HashSet, VecDeque};

use crate::BlockId;

/// The block counts both public trackers (`ExternalBlockAssignments`,
/// `LogicalBlockAssignments`) expose, read off their `phases` field: one
/// definition for the two kvbm-logical-compatible method sets.
macro_rules! phase_counts {
    () => {
        /// Assigned (registered) blocks.
        pub fn assigned_count(&self) -> usize {
            self.phases.assigned_len()
        }

        /// Staged blocks.
        pub fn staged_count(&self) -> usize {
            self.phases.staged_len()
        }

        /// Pending (unassigned) blocks.
        pub fn unassigned_count(&self) -> usize {
            self.phases.pending_len()
        }
    };
}
pub(super) use phase_counts;

/// Pending (`P`), staged (`S`) and assigned (`A`) entries, in order.
pub(crate) struct Phases<P, S, A> {
    assigned: Vec<(BlockId, A)>,
    staged: VecDeque<(BlockId, S)>,
    pending: VecDeque<(BlockId, P)>,
    ids: HashSet<BlockId>,
}

impl<P, S, A> Phases<P, S, A> {
    pub(crate) fn new() -> Self {
        Self {
            assigned: Vec::new(),
            staged: VecDeque::new(),
            pending: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    pub(crate) fn assigned_len(&self) -> usize {
        self.assigned.len()
    }

    pub(crate) fn staged_len(&self) -> usize {
        self.staged.len()
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn contains(&self, id: BlockId) -> bool {
        self.ids.contains(&id)
    }

    pub(crate) fn assigned(&self, i: usize) -> Option<&(BlockId, A)> {
        self.assigned.get(i)
    }

    pub(crate) fn staged(&self, i: usize) -> Option<&(BlockId, S)> {
        self.staged.get(i)
    }

    pub(crate) fn pending(&self, i: usize) -> Option<&(BlockId, P)> {
        self.pending.get(i)
    }

    pub(crate) fn assigned_iter(&self) -> std::slice::Iter<'_, (BlockId, A)> {
        self.assigned.iter()
    }

    pub(crate) fn staged_iter(&self) -> std::collections::vec_deque::Iter<'_, (BlockId, S)> {
        self.staged.iter()
    }

    pub(crate) fn pending_iter(&self) -> std::collections::vec_deque::Iter<'_, (BlockId, P)> {
        self.pending.iter()
    }

    /// The first id of `ids` that is already present or repeats an earlier
    /// one in `ids`; `None` if all are new and distinct.
    pub(crate) fn first_duplicate(&self, ids: impl Iterator<Item = BlockId>) -> Option<BlockId> {
        let mut seen = HashSet::new();
        ids.into_iter()
            .find(|&id| self.ids.contains(&id) || !seen.insert(id))
    }

    /// Appends to the pending phase; the caller checked the id is new.
    pub(crate) fn push_pending(&mut self, id: BlockId, value: P) {
        debug_assert!(!self.ids.contains(&id));
        self.ids.insert(id);
        self.pending.push_back((id, value));
    }

    /// Appends to the assigned phase; the caller checked the id is new.
    pub(crate) fn push_assigned(&mut self, id: BlockId, value: A) {
        debug_assert!(!self.ids.contains(&id));
        self.ids.insert(id);
        self.assigned.push((id, value));
    }

    /// Moves the oldest pending entry to the end of the staged phase,
    /// converting its value; `None` if nothing is pending. On `Err` the
    /// entry has left the phases and the caller owns what `f` returned.
    pub(crate) fn stage_front<E>(
        &mut self,
        f: impl FnOnce(P) -> Result<S, E>,
    ) -> Option<Result<(), E>> {
        let (id, value) = self.pending.pop_front()?;
        Some(match f(value) {
            Ok(staged) => {
                self.staged.push_back((id, staged));
                Ok(())
            }
            Err(e) => {
                self.ids.remove(&id);
                Err(e)
            }
        })
    }

    /// Moves every staged entry, in order, to the end of the assigned phase.
    pub(crate) fn commit_staged(&mut self, mut f: impl FnMut(S) -> A) -> usize {
        let n = self.staged.len();
        self.assigned.reserve(n);
        while let Some((id, value)) = self.staged.pop_front() {
            self.assigned.push((id, f(value)));
        }
        n
    }

    /// Removes the newest pending entry.
    pub(crate) fn pop_pending_back(&mut self) -> Option<(BlockId, P)> {
        let entry = self.pending.pop_back()?;
        self.ids.remove(&entry.0);
        Some(entry)
    }

    pub(crate) fn take_assigned(&mut self) -> Vec<(BlockId, A)> {
        for (id, _) in &self.assigned {
            self.ids.remove(id);
        }
        std::mem::take(&mut self.assigned)
    }

    pub(crate) fn take_staged(&mut self) -> Vec<(BlockId, S)> {
        for (id, _) in &self.staged {
            self.ids.remove(id);
        }
        std::mem::take(&mut self.staged).into()
    }

    pub(crate) fn take_pending(&mut self) -> Vec<(BlockId, P)> {
        for (id, _) in &self.pending {
            self.ids.remove(id);
        }
        std::mem::take(&mut self.pending).into()
    }

    /// [`clear`](Self::clear), handing the assigned entries, newest first,
    /// to `release` (which must consume them) to give back as one batch.
    pub(crate) fn clear_releasing(
        &mut self,
        release: impl FnOnce(std::iter::Rev<std::vec::Drain<'_, (BlockId, A)>>),
    ) {
        while self.pending.pop_back().is_some() {}
        while self.staged.pop_back().is_some() {}
        release(self.assigned.drain(..).rev());
        self.ids.clear();
    }

    /// Drops every entry. Pending first, then staged, then assigned: the
    /// newest blocks go back first, like a stack unwinding.
    pub(crate) fn clear(&mut self) {
        self.clear_releasing(|assigned| assigned.for_each(drop));
    }
}
