//! Which registry changes are worth announcing.

use crate::SequenceHash;

/// Decides, when a hash enters the registry, whether its Create (and later
/// its Remove) is announced to [`subscribe`](super::EventsManager::subscribe)
/// subscribers.
///
/// The answer is asked once per registration and remembered, so a policy
/// may change its mind over time (for instance weigh frequency) without
/// ever producing a Remove whose Create was not announced. It runs with the
/// registry's lock held: keep it cheap, and do not call back into the
/// registry or the block manager from it.
pub trait EventEmissionPolicy: Send + Sync {
    /// Whether to announce `seq_hash`.
    fn should_emit(&self, seq_hash: SequenceHash) -> bool;
}

/// Announces every hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllEventsPolicy;

impl AllEventsPolicy {
    /// The policy.
    pub fn new() -> Self {
        Self
    }
}

impl EventEmissionPolicy for AllEventsPolicy {
    fn should_emit(&self, _seq_hash: SequenceHash) -> bool {
        true
    }
}

/// Announces only blocks whose position is a power of two within a range:
/// a sparse sample of each sequence (positions 16, 32, 64, … by default)
/// that still lets a cluster index find roughly how deep a prefix a worker
/// holds, at a small fraction of the traffic.
#[derive(Debug, Clone, Copy)]
pub struct PowerOfTwoPolicy {
    min_position: u64,
    max_position: u64,
}

impl PowerOfTwoPolicy {
    /// Powers of two in `16..=65536`.
    pub fn new() -> Self {
        Self::with_range(16, 65536)
    }

    /// Powers of two in `min_position..=max_position`.
    pub fn with_range(min_position: u64, max_position: u64) -> Self {
        Self {
            min_position,
            max_position,
        }
    }
}

impl Default for PowerOfTwoPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl EventEmissionPolicy for PowerOfTwoPolicy {
    fn should_emit(&self, seq_hash: SequenceHash) -> bool {
        let position = seq_hash.position();
        (self.min_position..=self.max_position).contains(&position) && position.is_power_of_two()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::PositionalLineageHash;

    fn at(position: u64) -> SequenceHash {
        PositionalLineageHash::new(0xabcdef, Some(0x1234), position)
    }

    #[test]
    fn power_of_two_default_range() {
        let p = PowerOfTwoPolicy::new();
        for pos in [16, 32, 64, 1024, 65536] {
            assert!(p.should_emit(at(pos)), "{pos}");
        }
        for pos in [0, 1, 2, 4, 8, 15, 17, 48, 100, 65535, 131072] {
            assert!(!p.should_emit(at(pos)), "{pos}");
        }
    }

    #[test]
    fn power_of_two_custom_range() {
        let p = PowerOfTwoPolicy::with_range(1, 4);
        let emitted: Vec<u64> = (0..10).filter(|&pos| p.should_emit(at(pos))).collect();
        assert_eq!(emitted, [1, 2, 4]);
    }

    #[test]
    fn all_events_emits_everything() {
        assert!((0..100).all(|pos| AllEventsPolicy.should_emit(at(pos))));
    }
}
