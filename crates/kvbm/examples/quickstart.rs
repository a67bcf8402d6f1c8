//! A tour of the block manager: allocate, register, reuse a cached prefix,
//! force evictions, and print what happened and the metrics.
//!
//! Run with `cargo run --release -p kvbm --example quickstart`.

use kvbm::manager::BlockManager;
use kvbm::metrics::{MetricsAggregator, StatsCollector, StatsConfig};
use kvbm::tokens::TokenBlockSequence;
use kvbm::{ImmutableBlock, SequenceHash};

/// The storage tier of this manager's blocks.
#[derive(Clone)]
struct Device;

const BLOCK_SIZE: u32 = 16;

/// One request: reuse what is cached, fill the rest, register it all.
fn serve(
    manager: &BlockManager<Device>,
    name: &str,
    tokens: &[u32],
) -> Result<Vec<ImmutableBlock<Device>>, Box<dyn std::error::Error>> {
    let sequence = TokenBlockSequence::try_from_slice(tokens, BLOCK_SIZE, None)?;
    let hashes: Vec<SequenceHash> = sequence
        .blocks()
        .iter()
        .map(|b| b.positional_lineage_hash())
        .collect();
    let mut held = manager.match_blocks(&hashes);
    let cached = held.len();
    let missing = &sequence.blocks()[cached..];
    let (fresh, evicted) = manager
        .allocate_blocks_with_evictions(missing.len())
        .ok_or("not enough free or cached blocks")?;
    let complete = fresh
        .into_iter()
        .zip(missing)
        .map(|(block, tokens)| block.complete(tokens))
        .collect::<Result<Vec<_>, _>>()?;
    held.extend(manager.register_blocks(complete));
    println!(
        "{name:<28} {:>3} blocks: {cached:>3} reused from cache, {:>3} filled, {:>3} evicted",
        hashes.len(),
        missing.len(),
        evicted.len()
    );
    Ok(held)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let aggregator = MetricsAggregator::new();
    let manager = BlockManager::<Device>::builder()
        .block_count(64)
        .block_size(BLOCK_SIZE as usize)
        .aggregator(aggregator.clone())
        .build()?;
    let stats = StatsCollector::new(manager.metrics().clone(), StatsConfig::default());
    stats.set_enabled(true);
    stats.sample();

    println!(
        "{} blocks of {} tokens, eviction policy {}\n",
        manager.total_blocks(),
        manager.block_size(),
        manager.eviction_policy()
    );

    // A system prompt of 20 blocks shared by two conversations.
    let system: Vec<u32> = (0..20 * BLOCK_SIZE).collect();
    let with_question = |q: u32, blocks: u32| -> Vec<u32> {
        let mut t = system.clone();
        t.extend((0..blocks * BLOCK_SIZE).map(|i| 1_000_000 * q + i));
        t
    };

    let first = serve(&manager, "conversation 1", &with_question(1, 8))?;
    drop(first); // finished: its blocks stay cached
    let second = serve(
        &manager,
        "conversation 2 (same prompt)",
        &with_question(2, 8),
    )?;
    drop(second);

    // The first conversation comes back for another turn: all of it is cached.
    let again = serve(&manager, "conversation 1, next turn", &with_question(1, 9))?;
    drop(again);

    // Unrelated long documents push the cache past its capacity.
    for doc in 0..3u32 {
        let tokens: Vec<u32> = (0..30 * BLOCK_SIZE)
            .map(|i| 5_000_000 * (doc + 3) + i)
            .collect();
        drop(serve(&manager, &format!("document {doc}"), &tokens)?);
    }
    let late = serve(&manager, "conversation 2 after docs", &with_question(2, 8))?;
    drop(late);

    stats.sample();
    let m = manager.metrics().snapshot();
    println!("\nmetrics:");
    println!("  allocations            {:>6}", m.allocations);
    println!("  evictions              {:>6}", m.evictions);
    println!("  registrations          {:>6}", m.registrations);
    println!(
        "  prefix hit rate        {:>6.1}%  ({} of {} blocks asked for)",
        100.0 * m.match_blocks_returned as f64 / m.match_hashes_requested.max(1) as f64,
        m.match_blocks_returned,
        m.match_hashes_requested
    );
    println!(
        "  pool now               {:>6} free, {} cached, {} held",
        m.reset_pool_size, m.inactive_pool_size, m.inflight_immutable
    );
    if let Some(s) = stats.latest() {
        println!(
            "  allocation rate        {:>6.0}/s over the run",
            s.allocation_rate
        );
    }

    let registry = prometheus::Registry::new();
    aggregator.register_with(&registry)?;
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather())?;
    let evictions = text
        .lines()
        .find(|l| l.starts_with("kvbm_evictions_total"))
        .unwrap_or("kvbm_evictions_total (missing)");
    println!("\nprometheus: {evictions}");

    manager.validate()?;
    manager.reset_inactive_pool()?;
    Ok(())
}
