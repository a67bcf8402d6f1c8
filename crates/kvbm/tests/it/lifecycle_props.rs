//! Property tests: random interleavings of schedule / apply / revert /
//! release / reacquire for several sequences sharing one small manager.
//!
//! After every step: the pool accounts for every block (free + cached +
//! held = total, `validate()` clean, the gauges match what the sequences
//! hold), each sequence's block table is its blocks in order, and every
//! registered block carries the hash of the tokens it covers, all of
//! which have KV. A refused call changes neither the sequence nor the
//! pool. A release followed by a reacquire gets back every block of the
//! prefix that was registered at release time.

use std::collections::HashSet;

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::integrations::{SchedulableSequence, SequenceState};
use kvbm::manager::BlockManager;
use kvbm::testing::Device;
use kvbm::tokens::Token;
use proptest::prelude::*;

const BLOCK_SIZE: usize = 4;
const BLOCKS: usize = 14;
const SEQS: usize = 3;

type Seq = SchedulableSequence<Device>;

#[derive(Debug, Clone)]
enum Op {
    Match,
    SchedulePrefill(usize),
    SchedulePrefillRest,
    ScheduleDecode,
    ScheduleSpeculative(usize),
    Apply(usize),
    Revert,
    Release,
    Reacquire,
    ReleaseThenReacquire,
    DropUnassigned(usize),
    /// Drop the sequence, whatever its state, and start a new request.
    Restart(usize),
    /// A call that breaks the protocol in the current state; it must be
    /// refused.
    Misuse,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Match),
        2 => (1usize..9).prop_map(Op::SchedulePrefill),
        2 => Just(Op::SchedulePrefillRest),
        5 => Just(Op::ScheduleDecode),
        2 => (0usize..7).prop_map(Op::ScheduleSpeculative),
        8 => (0usize..8).prop_map(Op::Apply),
        1 => Just(Op::Revert),
        1 => Just(Op::Release),
        1 => Just(Op::Reacquire),
        1 => Just(Op::ReleaseThenReacquire),
        1 => (0usize..3).prop_map(Op::DropUnassigned),
        1 => (0usize..4).prop_map(Op::Restart),
        2 => Just(Op::Misuse),
    ]
}

/// Prompts that share prefixes: four templates over one common stem.
fn prompt(template: usize) -> Vec<Token> {
    let mut p: Vec<Token> = (0..8).collect();
    match template {
        0 => p.extend([100, 101, 102]),
        1 => p.extend([100, 101, 102]),
        2 => p.extend([200, 201, 202, 203, 204]),
        _ => p.truncate(6),
    }
    p
}

fn new_seq(template: usize) -> Seq {
    Seq::builder()
        .tokens(prompt(template))
        .max_output_tokens(3 + template * 4)
        .block_size(BLOCK_SIZE as u32)
        .build()
        .expect("valid settings")
}

/// The fake model: the next token depends only on the sequence so far, so
/// equal prompts generate equal (shareable) blocks.
fn model_token(s: &Seq, offset: usize) -> Token {
    ((s.total_tokens() + offset) * 7 % 5) as Token
}

/// Everything a refused call must leave alone.
fn snapshot(s: &Seq, m: &BlockManager<Device>) -> impl PartialEq + std::fmt::Debug {
    (
        s.state(),
        s.kv_position(),
        s.prefill_position(),
        s.total_tokens(),
        s.generated_tokens(),
        s.inner().page_indices(),
        m.available_blocks(),
    )
}

fn check_sequence(s: &Seq) {
    crate::integrations::check_blocks(s);
    let ids = s.inner().page_indices();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert!(s.kv_position() <= s.total_tokens());
}

fn check_pool(m: &BlockManager<Device>, seqs: &[Seq]) {
    if let Err(e) = m.validate() {
        panic!("{e}");
    }
    let g = m.metrics().snapshot();
    let total =
        g.reset_pool_size + g.inactive_pool_size + g.inflight_mutable + g.inflight_immutable;
    assert_eq!(total, BLOCKS as i64, "{g:?}");
    let mutable: usize = seqs
        .iter()
        .map(|s| s.staged_blocks() + s.unassigned_blocks())
        .sum();
    assert_eq!(g.inflight_mutable, mutable as i64);
    let mut immutable: HashSet<usize> = HashSet::new();
    let mut hashes = Vec::new();
    for (&id, block) in seqs
        .iter()
        .flat_map(|s| s.inner().assignments().assigned_iter())
    {
        immutable.insert(id);
        hashes.push(block.sequence_hash());
    }
    // A duplicate (`Allow`) keeps its primary held too, assigned or not;
    // the primaries are what a scan finds (all held: nothing changes).
    for primary in m.scan_matches(&hashes, false).values() {
        immutable.insert(primary.block_id());
    }
    assert_eq!(g.inflight_immutable, immutable.len() as i64);
}

/// How often the interesting paths were taken.
#[derive(Debug, Default)]
struct Coverage {
    refused_schedules: usize,
    reacquired_hits: usize,
}

fn step(m: &BlockManager<Device>, s: &mut Seq, op: &Op, cov: &mut Coverage) {
    let before = snapshot(s, m);
    let refused = match *op {
        Op::Match => s.match_and_add_prefix(m).is_err(),
        Op::SchedulePrefill(n) => s.schedule_prefill(n, m).is_err(),
        Op::SchedulePrefillRest => {
            let rest = s.num_input_tokens() - s.prefill_position().min(s.num_input_tokens());
            s.schedule_prefill(rest, m).is_err()
        }
        Op::ScheduleDecode => s.schedule_decode(m).is_err(),
        Op::ScheduleSpeculative(k) => s.schedule_speculative(k, m).is_err(),
        Op::Apply(accept) => match s.state() {
            SequenceState::Idle => s.apply_decode(1, m).is_err(),
            SequenceState::PrefillScheduled { num_tokens, .. } => {
                let last = s.prefill_position() + num_tokens >= s.num_input_tokens();
                let token = (last && s.max_output_tokens() > 0).then(|| model_token(s, 0));
                let applied = s.apply_prefill(token, m);
                assert!(applied.is_ok(), "{applied:?}");
                false
            }
            SequenceState::DecodeScheduled { .. } => {
                let applied = s.apply_decode(model_token(s, 0), m);
                assert!(applied.is_ok(), "{applied:?}");
                assert_eq!(s.tail_tokens(), 1);
                false
            }
            SequenceState::SpeculativeScheduled { num_tokens, .. } => {
                let accepted: Vec<Token> = (0..accept.min(num_tokens))
                    .map(|i| model_token(s, i))
                    .collect();
                let applied = s.apply_speculative(&accepted, m);
                assert!(applied.is_ok(), "{applied:?}");
                assert_eq!(s.tail_tokens(), 1);
                // Rejected drafts hold no block beyond the next token's.
                let needed =
                    (s.total_tokens() + usize::from(!s.is_complete())).div_ceil(BLOCK_SIZE);
                assert!(s.inner().page_indices().len() <= needed);
                false
            }
        },
        Op::Revert => s.revert_schedule().is_err(),
        Op::Release => s.release().is_err(),
        Op::Reacquire => !matches!(s.reacquire(m), Ok(true)),
        Op::ReleaseThenReacquire => {
            if s.state() != SequenceState::Idle {
                s.release().is_err()
            } else {
                let computed = s.kv_position() / BLOCK_SIZE;
                let hashes = s.inner().sequence().all_sequence_hashes();
                // Everything registered now must come back as a cache hit.
                let registered = m.match_blocks(&hashes[..computed]).len();
                s.release().expect("idle");
                let ok = s.reacquire(m).expect("idle");
                if ok {
                    cov.reacquired_hits += s.prefix_matched_blocks();
                    assert_eq!(s.prefix_matched_blocks(), registered);
                    assert_eq!(s.assigned_blocks(), computed);
                }
                false
            }
        }
        Op::DropUnassigned(n) => {
            s.drop_unassigned(n);
            false
        }
        Op::Misuse => {
            let refused = match s.state() {
                SequenceState::Idle => {
                    s.revert_schedule().is_err() && s.apply_decode(1, m).is_err()
                }
                SequenceState::PrefillScheduled { num_tokens, .. } => {
                    let last = s.prefill_position() + num_tokens >= s.num_input_tokens();
                    // The wrong token presence, then calls of other states.
                    let wrong = if last && s.max_output_tokens() > 0 {
                        None
                    } else {
                        Some(1)
                    };
                    s.apply_prefill(wrong, m).is_err()
                        && s.apply_decode(1, m).is_err()
                        && s.schedule_decode(m).is_err()
                }
                SequenceState::DecodeScheduled { .. } => {
                    s.apply_prefill(None, m).is_err() && s.apply_speculative(&[], m).is_err()
                }
                SequenceState::SpeculativeScheduled { num_tokens, .. } => {
                    s.apply_speculative(&vec![0; num_tokens + 1], m).is_err()
                        && s.release().is_err()
                        && s.append_tokens(&[1]).is_err()
                }
            };
            assert!(
                refused,
                "a protocol violation was accepted in {:?}",
                s.state()
            );
            true
        }
        Op::Restart(_) => unreachable!("handled by the driver"),
    };
    if refused && matches!(op, Op::ScheduleDecode | Op::SchedulePrefillRest) {
        cov.refused_schedules += 1;
    }
    if refused {
        assert_eq!(before, snapshot(s, m), "a refused {op:?} changed something");
    }
    check_sequence(s);
}

fn run(backend: Backend, reject: bool, ops: Vec<(usize, Op)>) -> Coverage {
    use kvbm::blocks::BlockDuplicationPolicy;
    let mut cov = Coverage::default();
    let policy = if reject {
        BlockDuplicationPolicy::Reject
    } else {
        BlockDuplicationPolicy::Allow
    };
    let m = kvbm::testing::builder(backend)
        .duplication_policy(policy)
        .block_count(BLOCKS)
        .block_size(BLOCK_SIZE)
        .build()
        .expect("valid settings");
    let mut seqs: Vec<Seq> = (0..SEQS).map(new_seq).collect();
    for (i, op) in &ops {
        let i = i % SEQS;
        if let Op::Restart(template) = op {
            seqs[i] = new_seq(*template);
        } else {
            step(&m, &mut seqs[i], op, &mut cov);
        }
        check_pool(&m, &seqs);
    }
    drop(seqs);
    check_pool(&m, &[]);
    assert_eq!(m.available_blocks(), BLOCKS);
    cov
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn interleaved_lifecycles_never_leak_or_mishash(
        backend in 0..Backend::ALL.len(),
        reject in any::<bool>(),
        ops in prop::collection::vec((0..SEQS, op()), 1..80),
    ) {
        run(Backend::ALL[backend], reject, ops);
    }
}

/// A scripted run that must hit the interesting paths at least once:
/// allocation failure under pressure, preemption, and a resumed sequence
/// finding its prefix in the cache.
#[test]
fn scripted_pressure_preempt_and_resume() {
    use Op::*;
    let script = vec![
        (0, Match),
        (0, SchedulePrefillRest),
        (0, Apply(0)),
        (1, Match),
        (1, SchedulePrefillRest),
        (1, Apply(0)),
        (2, SchedulePrefillRest),
        (2, Apply(0)),
        (0, ScheduleSpeculative(6)),
        (0, Apply(6)),
        (2, ScheduleDecode),
        (2, Apply(0)),
        (0, ReleaseThenReacquire),
        (1, Release),
        (2, ReleaseThenReacquire),
        (1, Reacquire),
        (1, ScheduleDecode),
        (1, Apply(0)),
        // A long request joins: 19+ blocks wanted from 14.
        (0, Restart(2)),
        (0, SchedulePrefillRest),
        (0, Apply(0)),
    ];
    let mut script = script;
    for _ in 0..10 {
        for i in 0..SEQS {
            script.push((i, ScheduleDecode));
            script.push((i, Apply(0)));
        }
    }
    let cov = run(Backend::Lru, false, script);
    assert!(cov.refused_schedules > 0, "{cov:?}");
    assert!(cov.reacquired_hits > 0, "{cov:?}");
}
