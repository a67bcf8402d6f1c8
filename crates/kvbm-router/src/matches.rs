//! [`Matches`]: the answer of [`ClusterIndex::find_matches`](crate::ClusterIndex::find_matches).

use kvbm::events::InstanceId;

/// Per instance, how many leading blocks of a query it holds. Instances
/// holding none are absent. Reuse one across queries with
/// [`find_matches_into`](crate::ClusterIndex::find_matches_into).
#[derive(Debug, Clone, Default)]
pub struct Matches {
    pub(crate) scores: Vec<(InstanceId, usize)>,
    /// Scratch: instances still matching, one bit per slot.
    pub(crate) alive: Vec<u64>,
}

impl Matches {
    /// `(instance, leading blocks held)` pairs, in no particular order.
    pub fn scores(&self) -> &[(InstanceId, usize)] {
        &self.scores
    }

    /// Leading blocks `instance` holds (0 when absent).
    pub fn get(&self, instance: InstanceId) -> usize {
        self.scores
            .iter()
            .find(|(i, _)| *i == instance)
            .map_or(0, |&(_, d)| d)
    }

    /// The deepest match of any instance.
    pub fn best(&self) -> usize {
        self.scores.iter().map(|&(_, d)| d).max().unwrap_or(0)
    }

    /// Whether no instance holds the query's first indexed block.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.scores.clear();
    }
}
