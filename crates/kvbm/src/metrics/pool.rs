//! [`BlockPoolMetrics`]: the counters and gauges one block manager keeps.
//!
//! Plain atomics with relaxed ordering: every value is monotone (counters) or
//! a last-write-wins level (gauges) read by samplers that tolerate a value a
//! few nanoseconds old.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident => $inc:ident;)*) => {
        /// Counters and gauges of one block manager.
        ///
        /// The manager keeps them true after every operation; read them with
        /// [`snapshot`](Self::snapshot) or export them with a
        /// [`MetricsAggregator`](super::MetricsAggregator).
        #[derive(Debug, Default)]
        pub struct BlockPoolMetrics {
            label: String,
            $($name: AtomicU64,)*
            inflight_mutable: AtomicI64,
            inflight_immutable: AtomicI64,
            reset_pool_size: AtomicI64,
            inactive_pool_size: AtomicI64,
        }

        /// A point-in-time copy of every [`BlockPoolMetrics`] value.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct MetricsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
            /// Held blocks being filled: handed out as `MutableBlock` or
            /// `CompleteBlock`.
            #[doc(alias = "held")]
            pub inflight_mutable: i64,
            /// Held registered blocks: held by at least one `ImmutableBlock`.
            #[doc(alias = "held")]
            pub inflight_immutable: i64,
            /// Free blocks (kvbm-logical's name: the reset pool).
            #[doc(alias = "free")]
            pub reset_pool_size: i64,
            /// Cached blocks (kvbm-logical's name: the inactive pool).
            #[doc(alias = "cached")]
            pub inactive_pool_size: i64,
        }

        impl BlockPoolMetrics {
            $(
                #[doc = concat!("Adds `n` to `", stringify!($name), "`.")]
                #[inline]
                pub fn $inc(&self, n: u64) {
                    self.$name.fetch_add(n, Relaxed);
                }
            )*

            /// Copies every value.
            pub fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot {
                    $($name: self.$name.load(Relaxed),)*
                    inflight_mutable: self.inflight_mutable.load(Relaxed),
                    inflight_immutable: self.inflight_immutable.load(Relaxed),
                    reset_pool_size: self.reset_pool_size.load(Relaxed),
                    inactive_pool_size: self.inactive_pool_size.load(Relaxed),
                }
            }
        }
    };
}

counters! {
    /// Blocks handed out by allocation (from the free pool or by eviction).
    allocations => inc_allocations;
    /// Allocated blocks that came straight from the free pool.
    allocations_from_reset => inc_allocations_from_reset;
    /// Cached blocks evicted to satisfy an allocation.
    evictions => inc_evictions;
    /// Blocks registered under a sequence hash (new primaries and duplicates).
    registrations => inc_registrations_by;
    /// Registrations kept as a second block for an already registered hash.
    duplicate_blocks => inc_duplicate_blocks_by;
    /// Registrations answered with the existing block for the hash.
    registration_dedup => inc_registration_dedup_by;
    /// Mutable blocks staged (completed) with a sequence hash.
    stagings => inc_stagings_by;
    /// Hashes asked for by `match_blocks`.
    match_hashes_requested => inc_match_hashes_requested;
    /// Blocks returned by `match_blocks`.
    match_blocks_returned => inc_match_blocks_returned;
    /// Hashes asked for by `scan_matches`.
    scan_hashes_requested => inc_scan_hashes_requested;
    /// Blocks returned by `scan_matches`.
    scan_blocks_returned => inc_scan_blocks_returned;
}

/// The five accessors of one gauge; `$word` is kvbm's word for the blocks
/// it counts (the names are kvbm-logical's), a search alias of each.
macro_rules! gauge {
    ($word:literal: $name:ident, $inc:ident, $inc_by:ident, $dec:ident, $dec_by:ident, $set:ident) => {
        #[doc = concat!("Adds one to `", stringify!($name), "`.")]
        #[doc(alias = $word)]
        #[inline]
        pub fn $inc(&self) {
            self.$inc_by(1);
        }
        #[doc = concat!("Adds `n` to `", stringify!($name), "`.")]
        #[doc(alias = $word)]
        #[inline]
        pub fn $inc_by(&self, n: i64) {
            self.$name.fetch_add(n, Relaxed);
        }
        #[doc = concat!("Subtracts one from `", stringify!($name), "`.")]
        #[doc(alias = $word)]
        #[inline]
        pub fn $dec(&self) {
            self.$dec_by(1);
        }
        #[doc = concat!("Subtracts `n` from `", stringify!($name), "`.")]
        #[doc(alias = $word)]
        #[inline]
        pub fn $dec_by(&self, n: i64) {
            self.$name.fetch_sub(n, Relaxed);
        }
        #[doc = concat!("Sets `", stringify!($name), "`.")]
        #[doc(alias = $word)]
        #[inline]
        pub fn $set(&self, value: i64) {
            self.$name.store(value, Relaxed);
        }
    };
}

impl BlockPoolMetrics {
    /// Creates zeroed metrics; `label` becomes the `pool` label on export.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            ..Self::default()
        }
    }

    /// The `pool` label these metrics are exported under.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Adds one to `registrations`.
    #[inline]
    pub fn inc_registrations(&self) {
        self.inc_registrations_by(1);
    }

    /// Adds one to `duplicate_blocks`.
    #[inline]
    pub fn inc_duplicate_blocks(&self) {
        self.inc_duplicate_blocks_by(1);
    }

    /// Adds one to `registration_dedup`.
    #[inline]
    pub fn inc_registration_dedup(&self) {
        self.inc_registration_dedup_by(1);
    }

    /// Adds one to `stagings`.
    #[inline]
    pub fn inc_stagings(&self) {
        self.inc_stagings_by(1);
    }

    gauge!(
        "held": inflight_mutable,
        inc_inflight_mutable,
        inc_inflight_mutable_by,
        dec_inflight_mutable,
        dec_inflight_mutable_by,
        set_inflight_mutable
    );
    gauge!(
        "held": inflight_immutable,
        inc_inflight_immutable,
        inc_inflight_immutable_by,
        dec_inflight_immutable,
        dec_inflight_immutable_by,
        set_inflight_immutable
    );
    gauge!(
        "free": reset_pool_size,
        inc_reset_pool_size,
        inc_reset_pool_size_by,
        dec_reset_pool_size,
        dec_reset_pool_size_by,
        set_reset_pool_size
    );
    gauge!(
        "cached": inactive_pool_size,
        inc_inactive_pool_size,
        inc_inactive_pool_size_by,
        dec_inactive_pool_size,
        dec_inactive_pool_size_by,
        set_inactive_pool_size
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_reach_the_snapshot() {
        let m = BlockPoolMetrics::new("G1");
        m.inc_allocations(3);
        m.inc_evictions(2);
        m.inc_registrations();
        m.inc_registrations_by(4);
        m.inc_inflight_mutable_by(5);
        m.dec_inflight_mutable();
        m.set_reset_pool_size(7);
        m.inc_inactive_pool_size();
        let s = m.snapshot();
        assert_eq!(s.allocations, 3);
        assert_eq!(s.evictions, 2);
        assert_eq!(s.registrations, 5);
        assert_eq!(s.inflight_mutable, 4);
        assert_eq!(s.reset_pool_size, 7);
        assert_eq!(s.inactive_pool_size, 1);
        assert_eq!(s.match_hashes_requested, 0);
        assert_eq!(m.label(), "G1");
    }
}
