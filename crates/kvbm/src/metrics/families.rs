//! The catalogue of metric families a [`MetricsAggregator`](super::MetricsAggregator)
//! exports: name, help text, type and how to read the value from a
//! [`MetricsSnapshot`].

use super::pool::MetricsSnapshot;

/// Whether a family is a Prometheus counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// One exported metric family.
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: Kind,
    pub(super) read: fn(&MetricsSnapshot) -> f64,
}

/// Every exported family, in export order.
pub(super) const FAMILIES: &[Family] = &[
    Family {
        name: "kvbm_allocations_total",
        help: "Blocks handed out by allocation",
        kind: Kind::Counter,
        read: |s| s.allocations as f64,
    },
    Family {
        name: "kvbm_allocations_from_reset_total",
        help: "Allocated blocks taken from the free (reset) pool",
        kind: Kind::Counter,
        read: |s| s.allocations_from_reset as f64,
    },
    Family {
        name: "kvbm_evictions_total",
        help: "Cached blocks evicted to satisfy an allocation",
        kind: Kind::Counter,
        read: |s| s.evictions as f64,
    },
    Family {
        name: "kvbm_registrations_total",
        help: "Blocks registered under a sequence hash",
        kind: Kind::Counter,
        read: |s| s.registrations as f64,
    },
    Family {
        name: "kvbm_duplicate_blocks_total",
        help: "Registrations kept as an extra block for an already registered hash",
        kind: Kind::Counter,
        read: |s| s.duplicate_blocks as f64,
    },
    Family {
        name: "kvbm_registration_dedup_total",
        help: "Registrations answered with the block already registered for the hash",
        kind: Kind::Counter,
        read: |s| s.registration_dedup as f64,
    },
    Family {
        name: "kvbm_stagings_total",
        help: "Mutable blocks completed with a sequence hash",
        kind: Kind::Counter,
        read: |s| s.stagings as f64,
    },
    Family {
        name: "kvbm_match_hashes_requested_total",
        help: "Hashes asked for by match calls",
        kind: Kind::Counter,
        read: |s| s.match_hashes_requested as f64,
    },
    Family {
        name: "kvbm_match_blocks_returned_total",
        help: "Blocks returned by match calls",
        kind: Kind::Counter,
        read: |s| s.match_blocks_returned as f64,
    },
    Family {
        name: "kvbm_scan_hashes_requested_total",
        help: "Hashes asked for by scan calls",
        kind: Kind::Counter,
        read: |s| s.scan_hashes_requested as f64,
    },
    Family {
        name: "kvbm_scan_blocks_returned_total",
        help: "Blocks returned by scan calls",
        kind: Kind::Counter,
        read: |s| s.scan_blocks_returned as f64,
    },
    Family {
        name: "kvbm_inflight_mutable",
        help: "Blocks currently held as mutable or complete blocks",
        kind: Kind::Gauge,
        read: |s| s.inflight_mutable as f64,
    },
    Family {
        name: "kvbm_inflight_immutable",
        help: "Registered blocks currently held as immutable blocks",
        kind: Kind::Gauge,
        read: |s| s.inflight_immutable as f64,
    },
    Family {
        name: "kvbm_reset_pool_size",
        help: "Blocks currently in the free (reset) pool",
        kind: Kind::Gauge,
        read: |s| s.reset_pool_size as f64,
    },
    Family {
        name: "kvbm_inactive_pool_size",
        help: "Cached blocks currently in the inactive pool",
        kind: Kind::Gauge,
        read: |s| s.inactive_pool_size as f64,
    },
];
