//! The store's choice when a hash is registered twice.

/// What registering a hash that is already registered does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockDuplicationPolicy {
    /// Keep the new block as a duplicate beside the registered one. The
    /// duplicate is matched by no one and goes back to the free pool, not
    /// the cache, when dropped. While it lives it keeps the registered
    /// block held (reviving it if it was cached), so the copy that matches
    /// find is not evicted while identical data is in use.
    #[default]
    Allow,
    /// Hand back the registered block and return the new one to the free
    /// pool.
    Reject,
}
