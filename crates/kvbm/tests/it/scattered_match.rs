//! `BlockManager::match_blocks_scattered`: aligned with its input, no stop
//! at a miss, duplicates kept, counted in the match metrics.

use kvbm::testing::{chain, check, fill, manager};

#[test]
fn aligned_with_input_and_keeps_duplicates() {
    let m = manager(8);
    let hashes = chain(1, 4);
    // Register positions 0 and 2 only; 1 and 3 are misses.
    let held = fill(&m, &[hashes[0], hashes[2]]);
    let ids: Vec<_> = held.iter().map(|b| b.block_id()).collect();
    drop(held);
    let before = m.metrics().snapshot();
    let query = [hashes[0], hashes[1], hashes[2], hashes[3], hashes[0]];
    let got = m.match_blocks_scattered(&query);
    let got_ids: Vec<_> = got
        .iter()
        .map(|b| b.as_ref().map(|b| b.block_id()))
        .collect();
    assert_eq!(
        got_ids,
        vec![Some(ids[0]), None, Some(ids[1]), None, Some(ids[0])]
    );
    assert_eq!(
        got[4].as_ref().unwrap().use_count(),
        2,
        "two handles on one block"
    );
    let after = m.metrics().snapshot();
    assert_eq!(
        after.match_hashes_requested - before.match_hashes_requested,
        5
    );
    assert_eq!(
        after.match_blocks_returned - before.match_blocks_returned,
        3
    );
    // Matched blocks were revived from the cache and are held now.
    assert_eq!(m.available_blocks(), 6);
    check(&m);
    drop(got);
    assert_eq!(m.available_blocks(), 8);
    assert!(m.match_blocks_scattered(&[]).is_empty());
    check(&m);
}

#[test]
fn agrees_with_match_blocks_on_a_registered_prefix() {
    let m = manager(8);
    let hashes = chain(9, 3);
    drop(fill(&m, &hashes));
    let prefix: Vec<_> = m
        .match_blocks(&hashes)
        .iter()
        .map(|b| b.block_id())
        .collect();
    let scattered: Vec<_> = m
        .match_blocks_scattered(&hashes)
        .into_iter()
        .map(|b| b.expect("registered").block_id())
        .collect();
    assert_eq!(prefix, scattered);
    check(&m);
}
