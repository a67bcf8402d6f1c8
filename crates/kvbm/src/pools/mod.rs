//! Pool-level vocabulary shared with `kvbm-logical`: the duplication policy
//! and the inactive-pool (eviction) backends.
//!
//! The pools themselves — free list, hash index of registered blocks and the
//! cached-block order — live together in the block store behind
//! [`BlockManager`](crate::manager::BlockManager).

pub use crate::blocks::BlockDuplicationPolicy;
pub use crate::eviction::{InactiveBackend, LruBackend};
