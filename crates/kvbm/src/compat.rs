//! Small root-level names of kvbm-logical's API that belong to no module
//! of their own here.

use crate::tokens::TokenBlock;
use crate::SequenceHash;

/// Anything that knows the hash a block manager registers it under.
pub trait KvbmSequenceHashProvider {
    /// The [`SequenceHash`] (positional lineage hash) to register and
    /// match under.
    fn kvbm_sequence_hash(&self) -> SequenceHash;
}

impl KvbmSequenceHashProvider for TokenBlock {
    fn kvbm_sequence_hash(&self) -> SequenceHash {
        self.positional_lineage_hash()
    }
}

/// The storage tier a logical layout lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LogicalLayoutHandle {
    /// Device (GPU) memory.
    G1,
    /// Host (CPU) memory.
    G2,
    /// Local disk.
    G3,
    /// Storage outside this process's control (a remote service).
    G4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_blocks_provide_their_lineage_hash() {
        let block = TokenBlock::new(vec![1, 2, 3, 4], 0, None).expect("a full block");
        assert_eq!(block.kvbm_sequence_hash(), block.positional_lineage_hash());
    }

    #[test]
    fn layout_handles_round_trip_through_serde() {
        for h in [
            LogicalLayoutHandle::G1,
            LogicalLayoutHandle::G2,
            LogicalLayoutHandle::G3,
            LogicalLayoutHandle::G4,
        ] {
            let json = serde_json::to_string(&h).expect("serializes");
            assert_eq!(
                serde_json::from_str::<LogicalLayoutHandle>(&json).ok(),
                Some(h)
            );
        }
    }
}
