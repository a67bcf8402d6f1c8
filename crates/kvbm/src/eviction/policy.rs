//! [`EvictionPolicy`]: the built-in eviction policies by name, for
//! configuration files, command lines and reports.

use std::fmt;
use std::str::FromStr;

use super::DEFAULT_FREQUENCY_THRESHOLDS;

/// A built-in eviction policy, chosen by value rather than by builder method
/// (see [`BlockManagerConfigBuilder::eviction_policy`](crate::manager::BlockManagerConfigBuilder::eviction_policy)).
///
/// ```
/// use kvbm::eviction::EvictionPolicy;
///
/// let policy: EvictionPolicy = "multi-lru".parse().unwrap();
/// assert_eq!(policy, EvictionPolicy::MULTI_LRU);
/// assert!(policy.needs_frequency_tracker());
/// assert_eq!(policy.to_string(), "multi-lru");
/// assert!("lfu".parse::<EvictionPolicy>().is_err());
///
/// // A policy's settings travel with it.
/// let custom = EvictionPolicy::MultiLru { thresholds: [2, 4, 8] };
/// assert_eq!(custom.name(), "multi-lru");
/// assert_ne!(custom, EvictionPolicy::MULTI_LRU);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EvictionPolicy {
    /// Least recently released first ([`LruBackend`](super::LruBackend)).
    Lru,
    /// Four LRU tiers by TinyLFU access count, coldest first
    /// ([`MultiLruBackend`](super::MultiLruBackend)); needs a registry with
    /// a frequency tracker. [`MULTI_LRU`](Self::MULTI_LRU) is this policy
    /// with the default thresholds.
    MultiLru {
        /// The access counts at which a block moves up to the next tier:
        /// they must strictly increase, start above 0 and not exceed 15
        /// (checked when the manager is built). Default
        /// [`DEFAULT_FREQUENCY_THRESHOLDS`](super::DEFAULT_FREQUENCY_THRESHOLDS).
        thresholds: [u8; 3],
    },
    /// Leaves of the cached prefix tree only, least recently released first
    /// ([`LineageBackend`](super::LineageBackend)). The default.
    #[default]
    Lineage,
    /// Release order ([`FifoBackend`](super::FifoBackend); kvbm-logical's
    /// "hashmap" backend).
    Fifo,
    /// A small recency window in front of a segmented LRU; a block leaving
    /// the window enters the main cache only if its hash was seen more often
    /// than the block it would displace ([`AdmissionBackend`](super::AdmissionBackend),
    /// W-TinyLFU with a self-tuning window).
    Admission,
}

impl EvictionPolicy {
    /// Multi-LRU with the default tier thresholds (what `"multi-lru"`
    /// parses to).
    pub const MULTI_LRU: EvictionPolicy = EvictionPolicy::MultiLru {
        thresholds: DEFAULT_FREQUENCY_THRESHOLDS,
    };

    /// Every built-in policy with its default settings, in the order
    /// reports list them.
    pub const ALL: [EvictionPolicy; 5] = [
        EvictionPolicy::Lru,
        EvictionPolicy::MULTI_LRU,
        EvictionPolicy::Lineage,
        EvictionPolicy::Fifo,
        EvictionPolicy::Admission,
    ];

    /// The policy's name, without its settings: `lru`, `multi-lru`,
    /// `lineage`, `fifo` or `admission` (also
    /// what the manager's [`eviction_policy`](crate::manager::BlockManager::eviction_policy)
    /// reports).
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::Lru => "lru",
            EvictionPolicy::MultiLru { .. } => "multi-lru",
            EvictionPolicy::Lineage => "lineage",
            EvictionPolicy::Fifo => "fifo",
            EvictionPolicy::Admission => "admission",
        }
    }

    /// Whether the policy needs a registry with a frequency tracker.
    pub fn needs_frequency_tracker(self) -> bool {
        matches!(self, EvictionPolicy::MultiLru { .. })
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one of [`EvictionPolicy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown eviction policy `{0}` (known: lru, multi-lru, lineage, fifo, admission)")]
pub struct UnknownEvictionPolicy(pub String);

impl FromStr for EvictionPolicy {
    type Err = UnknownEvictionPolicy;

    /// Parses a policy name, case-insensitively, into the policy with its
    /// default settings; `multi_lru` and `hashmap` are accepted as the
    /// kvbm-logical spellings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "lru" => Ok(EvictionPolicy::Lru),
            "multi-lru" | "multi_lru" | "multilru" => Ok(EvictionPolicy::MULTI_LRU),
            "lineage" => Ok(EvictionPolicy::Lineage),
            "fifo" | "hashmap" => Ok(EvictionPolicy::Fifo),
            "admission" | "w-tinylfu" | "wtinylfu" => Ok(EvictionPolicy::Admission),
            _ => Err(UnknownEvictionPolicy(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for policy in EvictionPolicy::ALL {
            assert_eq!(policy.name().parse::<EvictionPolicy>(), Ok(policy));
        }
        assert_eq!("HashMap".parse(), Ok(EvictionPolicy::Fifo));
        assert_eq!("multi_lru".parse(), Ok(EvictionPolicy::MULTI_LRU));
        assert_eq!("W-TinyLFU".parse(), Ok(EvictionPolicy::Admission));
        let err = "lfu".parse::<EvictionPolicy>().unwrap_err();
        assert!(err.to_string().contains("`lfu`"));
    }
}
