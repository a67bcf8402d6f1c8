//! Asking the CPU to start loading a cache line before it is needed.
//!
//! Once a cache outgrows the CPU caches, every structure a block touches
//! (its slot, its share count, the hash index's buckets) is a miss to
//! DRAM. Taken one block at a time, each miss waits for the one before it;
//! an operation on a batch of blocks that first asks for every line it
//! will touch lets the misses overlap (memory-level parallelism), and the
//! work that follows finds the lines on their way or already there.
//!
//! A prefetch is only a hint: it never faults, reads nothing into the
//! program and changes no value, so any address may be passed, even one
//! that is stale or outside every allocation. Where no hint instruction is
//! available (or under miri, which does not model caches), it does nothing.

/// Pools of fewer blocks do not prefetch (the store's registration and
/// allocation, the lineage backend's next victim): their slots, counts,
/// index and backend records fit in the CPU caches, where prefetches (and
/// the store's registration ring) only cost time — about a tenth of a fill
/// at 4K blocks.
pub(crate) const PREFETCH_MIN_BLOCKS: usize = 1 << 16;

/// Hints that the line holding `addr` will be read or written soon.
#[inline(always)]
pub(crate) fn prefetch<T>(addr: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `_mm_prefetch` is `unsafe` only because it is an SSE
    // intrinsic, and SSE is part of the x86_64 baseline that every x86_64
    // build of this crate targets. The instruction (PREFETCHT0) does not
    // dereference `addr` in the language's sense: it cannot fault, reads
    // nothing into the program and writes nothing, whatever the address;
    // so no address, valid or not, makes it undefined behaviour. Exercised
    // (as the no-op that miri runs) by
    // `prefetch::tests::prefetching_any_address_changes_nothing` and
    // `id_index::tests::prefetch_loads_the_home_group` under
    // `cargo +nightly miri test -p kvbm --lib prefetch id_index` (.ci/run).
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_any_address_changes_nothing() {
        let data: Vec<u64> = (0..1024).collect();
        for i in [0usize, 1, 511, 1023] {
            prefetch(&data[i]);
        }
        // Past the end, null and a wild address: hints only.
        prefetch(data.as_ptr().wrapping_add(1 << 20));
        prefetch(std::ptr::null::<u8>());
        prefetch(usize::MAX as *const u8);
        assert!(data.iter().copied().eq(0..1024));
    }
}
