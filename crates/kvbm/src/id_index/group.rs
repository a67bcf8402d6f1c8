//! One group of an [`IdIndex`](super::IdIndex): twelve ids, their tags
//! and overflow counts in one 64-byte cache line.
//!
//! A lookup reads one line per group it visits (tags and ids together),
//! where a table with its control bytes apart from its buckets reads two.
//! Tags are matched twelve at a time: with one SSE2 compare on x86_64, with
//! word arithmetic (SWAR) elsewhere. The word form alone made the
//! small-cache workloads measurably slower.

/// Ids per group: 12 four-byte ids and 12 tag bytes leave 4 bytes of the
/// line for the overflow counts.
pub(super) const SLOTS: usize = 12;

/// The tag of an empty slot; a filed id's tag is never 0 (see [`tag`]).
const EMPTY_TAG: u8 = 0;

/// Bits of the slots in a match's bitmask.
const SLOT_BITS: u32 = (1 << SLOTS) - 1;

/// A count that has saturated (see [`Group`]).
const STUCK: u8 = 0xF;

/// The tag filed with an id: the low byte of its key's mixed hash (the
/// group is chosen by the high bits), with 0 taken to 1 so that no filed
/// id looks empty.
#[inline(always)]
pub(super) fn tag(mixed: u64) -> u8 {
    let byte = mixed as u8;
    byte | u8::from(byte == EMPTY_TAG)
}

/// The class of a key's overflow count, 0–7: three bits of its mixed hash
/// that the tag (bits 0–7) and the probe step (bits 8–39) are not taken
/// from.
#[inline(always)]
pub(super) fn class(mixed: u64) -> u32 {
    (mixed >> 40) as u32 & 7
}

/// Slots found by a match, lowest first: bit `i` for slot `i`.
#[derive(Clone, Copy)]
pub(super) struct Slots(u32);

impl Iterator for Slots {
    type Item = usize;

    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let slot = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(slot)
    }
}

/// The slots of `ctrl` whose byte is `byte`, as a bitmask (bits 12–15,
/// the overflow counts' bytes, are dropped by the caller).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn bytes_equal(ctrl: &[u8; 16], byte: u8) -> u32 {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: the four intrinsics are SSE2, which every x86_64 target has
    // (it is part of the architecture's baseline), so they are available
    // in every build of this function. `_mm_loadu_si128` reads 16 bytes
    // from `ctrl`, which is a `[u8; 16]` borrowed for the call: in bounds,
    // initialized and (as `loadu` allows) of any alignment. The others
    // only compute on registers. Checked against the portable form, and
    // run under miri, by `id_index::group::tests::matching_is_exact`
    // (`cargo +nightly miri test -p kvbm --lib id_index::group`).
    unsafe {
        let word = _mm_loadu_si128(ctrl.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(word, _mm_set1_epi8(byte as i8))) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn bytes_equal(ctrl: &[u8; 16], byte: u8) -> u32 {
    portable_bytes_equal(ctrl, byte)
}

/// [`bytes_equal`] with word arithmetic (SWAR): exact, since no byte's sum
/// carries into the next (at most `0x7F + 0x7F`), unlike the shorter
/// `(x - 0x01..) & !x` form, which reports some bytes above a zero byte.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn portable_bytes_equal(ctrl: &[u8; 16], byte: u8) -> u32 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let half = |word: u64| {
        let x = word ^ (ONES * u64::from(byte));
        // 0x80 in each zero byte of x, gathered to one bit per byte.
        let zero = !(((x & (ONES * 0x7F)) + ONES * 0x7F) | x) & (ONES * 0x80);
        ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
    };
    let (low, high) = ctrl.split_at(8);
    let low = u64::from_le_bytes(low.try_into().unwrap_or([0; 8]));
    let high = u64::from_le_bytes(high.try_into().unwrap_or([0; 8]));
    half(low) | half(high) << 8
}

/// Twelve slots of ids with their tags, aligned to a cache line.
///
/// `ctrl` holds the tags of slots 0–11 in bytes 0–11 and, in bytes 12–15,
/// eight 4-bit overflow counts, one per [`class`] of keys: how many filed
/// ids of that class had their probe pass through this group (it was
/// full) to a group further along. A lookup that finds no match in a group
/// whose count for its key's class is zero stops there. Removing an id
/// takes back the counts its insertion added, so a deleted slot is a plain
/// empty slot (no tombstones) and churn does not lengthen probes.
///
/// Why eight counts and not one: under churn near a table's load limit
/// many new ids find their home group full (the free slots gather in few
/// groups) and a fifth to a third of the ids sit past their home, so a
/// single count per group is nonzero almost everywhere: in a simulation at
/// a load of 7/8 a miss then walked thirteen groups on average (3.5 at
/// 4/5); split by class, 1.6 (1.3 at 4/5). A count that reaches 15 stays
/// there (it no longer knows when it is back to zero): lookups of its
/// class then always go on past this group, which is slower but never
/// wrong.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Group {
    ctrl: [u8; 16],
    ids: [u32; SLOTS],
}

impl Group {
    /// A group with every slot empty and no overflow.
    pub(super) const EMPTY: Group = Group {
        ctrl: [0; 16],
        ids: [0; SLOTS],
    };

    /// The slots whose tag is `tag`, which must not be [`EMPTY_TAG`].
    #[inline(always)]
    pub(super) fn matching(&self, tag: u8) -> Slots {
        Slots(bytes_equal(&self.ctrl, tag) & SLOT_BITS)
    }

    /// The empty slots.
    #[inline(always)]
    fn empty(&self) -> Slots {
        Slots(bytes_equal(&self.ctrl, EMPTY_TAG) & SLOT_BITS)
    }

    /// The filed slots.
    #[inline]
    pub(super) fn filed(&self) -> Slots {
        Slots(!self.empty().0 & SLOT_BITS)
    }

    /// The first empty slot, if any.
    #[inline(always)]
    pub(super) fn first_empty(&self) -> Option<usize> {
        self.empty().next()
    }

    /// The id in `slot`.
    #[inline(always)]
    pub(super) fn id(&self, slot: usize) -> u32 {
        self.ids[slot]
    }

    /// Files `id` with `tag` in `slot`, which must be empty.
    #[inline(always)]
    pub(super) fn fill(&mut self, slot: usize, tag: u8, id: u32) {
        debug_assert!(tag != EMPTY_TAG && slot < SLOTS && self.ctrl[slot] == EMPTY_TAG);
        self.ctrl[slot] = tag;
        self.ids[slot] = id;
    }

    /// Empties `slot`.
    #[inline(always)]
    pub(super) fn clear(&mut self, slot: usize) {
        debug_assert!(slot < SLOTS);
        self.ctrl[slot] = EMPTY_TAG;
    }

    /// The byte holding class `class`'s count and the count's shift in it.
    #[inline(always)]
    fn count_at(class: u32) -> (usize, u32) {
        (SLOTS + (class as usize & 7) / 2, 4 * (class & 1))
    }

    /// The overflow count of class `class`: filed ids of that class whose
    /// probe passed through this group ([`STUCK`] once saturated).
    #[inline(always)]
    pub(super) fn overflow(&self, class: u32) -> u32 {
        let (byte, shift) = Self::count_at(class);
        u32::from(self.ctrl[byte] >> shift & STUCK)
    }

    /// One more id of class `class` passed through this group.
    #[inline(always)]
    pub(super) fn add_overflow(&mut self, class: u32) {
        if self.overflow(class) != u32::from(STUCK) {
            let (byte, shift) = Self::count_at(class);
            self.ctrl[byte] += 1 << shift;
        }
    }

    /// An id of class `class` that passed through this group left the
    /// index.
    #[inline(always)]
    pub(super) fn sub_overflow(&mut self, class: u32) {
        let count = self.overflow(class);
        debug_assert!(count > 0);
        if count != u32::from(STUCK) && count > 0 {
            let (byte, shift) = Self::count_at(class);
            self.ctrl[byte] -= 1 << shift;
        }
    }

    /// Whether class `class`'s count has saturated.
    #[cfg(test)]
    pub(super) fn stuck(&self, class: u32) -> bool {
        self.overflow(class) == u32::from(STUCK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Group>(), 64);
        assert_eq!(std::mem::align_of::<Group>(), 64);
    }

    #[test]
    fn tags_are_never_empty() {
        assert_eq!(tag(0), 1);
        assert_eq!(tag(0x1234_5600), 1);
        assert_eq!(tag(0xFF), 0xFF);
        assert_eq!(tag(0xAB01), 1);
        assert_eq!(tag(0xAB7F), 0x7F);
    }

    /// Matches are exact for every tag against every neighbour pattern,
    /// including the bytes (tag ^ 1, 0x80, 0x00) that fool the shorter
    /// zero-byte test, and the overflow count never shows up as a slot.
    #[test]
    fn matching_is_exact() {
        let fillers = [0x00u8, 0x01, 0x7F, 0x80, 0x81, 0xFE, 0xFF];
        // Every tag; under miri (slow) every 23rd.
        for tag in (1..=255u8).step_by(if cfg!(miri) { 23 } else { 1 }) {
            for &filler in &fillers {
                for filler_other in [filler, tag ^ 1, tag.wrapping_add(1)] {
                    let mut group = Group::EMPTY;
                    // Slots alternate between the tag and a filler (empty
                    // slots stay empty), and the overflow count is busy.
                    let mut expected = Vec::new();
                    for slot in 0..SLOTS {
                        let other = if slot % 3 == 0 { filler } else { filler_other };
                        let byte = if slot % 2 == 0 { tag } else { other };
                        if byte != EMPTY_TAG {
                            group.fill(slot, byte, slot as u32 * 7);
                        }
                        if byte == tag {
                            expected.push(slot);
                        }
                    }
                    group.ctrl[SLOTS..].copy_from_slice(&(u32::MAX - u32::from(tag)).to_le_bytes());
                    let found: Vec<usize> = group.matching(tag).collect();
                    for byte in [tag, EMPTY_TAG, filler, filler_other] {
                        assert_eq!(
                            bytes_equal(&group.ctrl, byte),
                            portable_bytes_equal(&group.ctrl, byte),
                            "byte {byte:#x}, ctrl {:x?}",
                            group.ctrl
                        );
                    }
                    assert_eq!(
                        found, expected,
                        "tag {tag:#x}, fillers {filler:#x}/{filler_other:#x}"
                    );
                    let filed: Vec<usize> = group.filed().collect();
                    let expected_filed: Vec<usize> =
                        (0..SLOTS).filter(|&s| group.ctrl[s] != EMPTY_TAG).collect();
                    assert_eq!(filed, expected_filed);
                    assert_eq!(
                        group.first_empty(),
                        (0..SLOTS).find(|&s| group.ctrl[s] == EMPTY_TAG)
                    );
                }
            }
        }
    }

    #[test]
    fn fill_clear_and_overflow_keep_to_their_bytes() {
        let mut group = Group::EMPTY;
        for slot in 0..SLOTS {
            assert_eq!(group.first_empty(), Some(slot));
            group.fill(slot, 0xFF, 100 + slot as u32);
        }
        assert_eq!(group.first_empty(), None);
        group.add_overflow(3);
        group.add_overflow(3);
        group.add_overflow(7);
        assert_eq!(group.overflow(3), 2);
        assert_eq!(group.overflow(7), 1);
        group.clear(5);
        assert_eq!(group.first_empty(), Some(5));
        assert_eq!(group.matching(0xFF).count(), SLOTS - 1);
        group.sub_overflow(3);
        assert_eq!(group.overflow(3), 1);
        assert_eq!(group.id(11), 111);
        group.fill(5, 0x42, 9);
        assert_eq!(group.matching(0x42).collect::<Vec<_>>(), vec![5]);
        assert_eq!(
            (0..8).map(|c| group.overflow(c)).collect::<Vec<_>>(),
            [0, 0, 0, 1, 0, 0, 0, 1]
        );
    }

    #[test]
    fn a_saturated_count_stays_and_leaves_its_neighbours_alone() {
        let mut group = Group::EMPTY;
        for _ in 0..40 {
            group.add_overflow(7);
            group.add_overflow(0);
        }
        group.add_overflow(6);
        assert!(group.stuck(7) && group.stuck(0) && !group.stuck(6));
        assert_eq!(group.overflow(6), 1);
        for _ in 0..40 {
            group.sub_overflow(7);
        }
        assert_eq!(group.overflow(7), u32::from(STUCK));
        group.sub_overflow(6);
        assert_eq!(group.overflow(6), 0);
        assert_eq!(group.first_empty(), Some(0));
        assert_eq!(class(0x0000_0700_0000_0000), 7);
        assert_eq!(class(0xFFFF_F8FF_FFFF_FFFF), 0);
    }
}
