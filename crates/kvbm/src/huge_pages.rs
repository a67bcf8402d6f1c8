//! Asking the kernel to back a pool's large arrays with huge pages.
//!
//! A pool of millions of blocks reaches its per-block arrays (slots, share
//! counts, backend records) at random. With 4 KiB pages every such access
//! is also a TLB miss: the second-level TLB covers a few megabytes, the
//! arrays of a 4M-block pool hundreds. Backed by 2 MiB pages they fit the
//! TLB, and a prefetch or a load no longer waits for a page walk first.
//!
//! Linux backs anonymous memory with huge pages on request
//! (`madvise(MADV_HUGEPAGE)`) under the `madvise` transparent-huge-page
//! setting that most distributions ship, and always under `always`. The
//! request is advice: it changes no byte and no mapping the program can
//! observe, and a kernel that refuses it (THP `never`, no THP support)
//! leaves the memory as it was. So failures are ignored, and elsewhere
//! (other systems, miri) this does nothing.
//!
//! Only arrays that a pool fills at construction are advised: their every
//! page is resident anyway, so huge pages do not grow the resident set
//! (a partly used array, such as a batch buffer reserved for the whole
//! pool, would grow by a huge page where it touched one small page).

use std::mem::MaybeUninit;

/// The huge page size advised for (x86_64 and most aarch64 kernels).
const HUGE_PAGE: usize = 2 << 20;

/// Arrays smaller than this are left alone: they span at most a few huge
/// pages, which would not change their TLB footprint much.
const ADVISE_MIN_BYTES: usize = 4 * HUGE_PAGE;

/// `Vec::with_capacity`-like: an empty vector of capacity `n`, whose
/// allocation the kernel is asked to back with huge pages when it is
/// large, before any of it is touched. `Err` if the allocation fails.
pub(crate) fn try_reserve_huge<T>(n: usize) -> Result<Vec<T>, std::collections::TryReserveError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)?;
    advise(v.spare_capacity_mut());
    Ok(v)
}

/// `vec![value; n]`, with the allocation advised like
/// [`try_reserve_huge`]'s. Panics like `vec!` if it cannot allocate.
pub(crate) fn filled_huge<T: Clone>(value: T, n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise(v.spare_capacity_mut());
    v.resize(n, value);
    v
}

/// The start and length of the whole huge pages inside `[addr, addr + len)`,
/// or `None` if the range is too small to be worth advising.
fn huge_interior(addr: usize, len: usize) -> Option<(usize, usize)> {
    if len < ADVISE_MIN_BYTES {
        return None;
    }
    let start = addr.checked_add(HUGE_PAGE - 1)? & !(HUGE_PAGE - 1);
    let end = addr.checked_add(len)? & !(HUGE_PAGE - 1);
    (end > start).then(|| (start, end - start))
}

/// Asks for huge pages behind the whole huge pages of `memory`.
fn advise<T>(memory: &mut [MaybeUninit<T>]) {
    let Some((start, len)) = huge_interior(memory.as_ptr() as usize, std::mem::size_of_val(memory))
    else {
        return;
    };
    #[cfg(all(target_os = "linux", not(miri)))]
    // SAFETY: `[start, start + len)` lies inside `memory` (`huge_interior`
    // only rounds inwards; `huge_interior_stays_inside` checks it), which
    // this function borrows mutably, so no other part of the program uses
    // it. `MADV_HUGEPAGE` changes neither the contents of that range nor
    // whether it is mapped: it only tells the kernel which page size to
    // back it with. The call reads and writes no memory of the program, and
    // its result (an error if the kernel has no THP) is ignored on purpose:
    // the memory is valid either way. miri cannot call into the kernel, so
    // under it this block is compiled out; the call itself runs (outside
    // miri) in `advised_arrays_keep_their_contents` and, under valgrind, in
    // the same test in `.ci/run`.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let _ = (start, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_interior_stays_inside() {
        assert_eq!(huge_interior(0, ADVISE_MIN_BYTES - 1), None);
        assert_eq!(
            huge_interior(0, ADVISE_MIN_BYTES),
            Some((0, ADVISE_MIN_BYTES))
        );
        let (start, len) = huge_interior(4096, ADVISE_MIN_BYTES + 8192).unwrap();
        assert_eq!(start, HUGE_PAGE);
        assert!(start >= 4096 && start + len <= 4096 + ADVISE_MIN_BYTES + 8192);
        assert_eq!(len % HUGE_PAGE, 0);
        assert_eq!(huge_interior(usize::MAX - 10, ADVISE_MIN_BYTES), None);
        for addr in [1usize, 4096, HUGE_PAGE - 1, HUGE_PAGE + 17, 3 * HUGE_PAGE] {
            for len in [ADVISE_MIN_BYTES, ADVISE_MIN_BYTES + 1, 5 * HUGE_PAGE + 123] {
                if let Some((start, inner)) = huge_interior(addr, len) {
                    assert!(start >= addr && start + inner <= addr + len);
                    assert_eq!(start % HUGE_PAGE, 0);
                    assert_eq!(inner % HUGE_PAGE, 0);
                }
            }
        }
    }

    /// Large enough to be advised (outside miri, the kernel is asked).
    #[test]
    fn advised_arrays_keep_their_contents() {
        let n = ADVISE_MIN_BYTES / 8 + 1000;
        let v = filled_huge(7u64, n);
        assert_eq!(v.len(), n);
        assert!(v.iter().all(|&x| x == 7));
        let mut w: Vec<u32> = try_reserve_huge(n).unwrap();
        assert!(w.capacity() >= n);
        w.extend((0..n as u32).rev());
        assert!(w.iter().rev().copied().eq(0..n as u32));
    }
}
