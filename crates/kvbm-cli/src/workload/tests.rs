use super::*;

#[test]
fn equal_id_prefixes_share_keys() {
    let mut b = WorkloadBuilder::new(512);
    b.push_block_ids(0, 1500, 10, &[1, 2, 3], None).unwrap();
    b.push_block_ids(5, 1100, 10, &[1, 2, 9], None).unwrap();
    b.push_block_ids(6, 600, 10, &[2, 1], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    let r = &w.requests;
    assert_eq!(r[0].blocks[..2], r[1].blocks[..2]);
    assert_ne!(r[0].blocks[2], r[1].blocks[2]);
    // Same id at another position (or under another parent) is another block.
    assert_ne!(r[2].blocks[0], r[0].blocks[1]);
    assert_eq!(w.unique_prompt_blocks(), 6);
    assert_eq!(w.unbounded_hits(), 2);
    assert_eq!(r[0].last_block_tokens, 476);
    assert_eq!(r[0].tokens_in_prefix(3, 512), 1500);
    assert_eq!(r[0].tokens_in_prefix(2, 512), 1024);
}

#[test]
fn explicit_output_ids_continue_the_chain() {
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(0, 8, 8, &[1, 2], Some(&[3, 4])).unwrap();
    b.push_block_ids(1, 16, 0, &[1, 2, 3, 4], None).unwrap();
    let w = b.finish("t".into(), "generated", 0);
    assert_eq!(w.requests[0].output_blocks, w.requests[1].blocks[2..]);
    assert!(w.requests[1].output_blocks.is_empty());
}

#[test]
fn synthetic_output_blocks_are_unique() {
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(0, 4, 9, &[1], None).unwrap();
    b.push_block_ids(0, 4, 9, &[1], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    assert_eq!(w.requests[0].output_blocks.len(), 2);
    assert_ne!(w.requests[0].output_blocks, w.requests[1].output_blocks);
}

#[test]
fn requests_sorted_by_arrival() {
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(9, 4, 0, &[1], None).unwrap();
    b.push_block_ids(3, 4, 0, &[2], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    assert_eq!(w.requests[0].arrival_ms, 3);
    let s = w.summary();
    assert_eq!(s.requests, 2);
    assert_eq!(s.duration_s, 0.006);
}
