//! Policy names and construction.

use kvbm::metrics::MetricsAggregator;

use crate::error::{CliError, Result};
use crate::sim::belady::BeladyOrder;
use crate::sim::manager::{self, EvictionPolicy};
use crate::sim::prefix_cache::{LruOrder, PrefixCache};
use crate::sim::{ReleaseOrder, SimCache, Timing};
use crate::workload::Workload;

/// A policy the simulator can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// The block manager with one of its inactive backends.
    Manager(EvictionPolicy),
    /// The simulator's own array-based LRU, a reference model.
    SimLru,
    /// Belady's offline optimum.
    Belady,
    /// A cache that never evicts: the trace's maximum.
    Unbounded,
}

impl Contender {
    /// The policy's name.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Manager(b) => b.name(),
            Contender::SimLru => "sim-lru",
            Contender::Belady => "belady",
            Contender::Unbounded => "unbounded",
        }
    }

    /// Every named policy, in report order.
    pub fn known() -> Vec<Contender> {
        let mut v: Vec<Contender> = EvictionPolicy::ALL
            .into_iter()
            .map(Contender::Manager)
            .collect();
        v.extend([Contender::Belady, Contender::SimLru, Contender::Unbounded]);
        v
    }

    /// The policies `all` stands for: every manager backend and Belady (the
    /// unbounded reference is added to every report anyway).
    pub fn all() -> Vec<Contender> {
        let mut v: Vec<Contender> = EvictionPolicy::ALL
            .into_iter()
            .map(Contender::Manager)
            .collect();
        v.push(Contender::Belady);
        v
    }
}

/// Parses a comma-separated policy list; `all` expands to every policy.
pub fn parse_contenders(spec: &str) -> Result<Vec<Contender>> {
    let mut out = Vec::new();
    for name in spec.split(',').map(str::trim) {
        let kinds = if name.eq_ignore_ascii_case("all") {
            Contender::all()
        } else {
            let found = Contender::known()
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(name));
            match found {
                Some(k) => vec![k],
                None => {
                    let mut known: Vec<&str> =
                        Contender::known().iter().map(|k| k.name()).collect();
                    known.push("all");
                    return Err(CliError::UnknownPolicy {
                        name: name.to_string(),
                        known: known.join(", "),
                    });
                }
            }
        };
        for k in kinds {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    Ok(out)
}

/// Builds a policy with `capacity` blocks for a workload. Manager-backed
/// policies report their metrics to `aggregator` when one is given.
pub fn build<'w>(
    kind: Contender,
    w: &'w Workload,
    capacity: usize,
    release: ReleaseOrder,
    timing: Timing,
    aggregator: Option<&MetricsAggregator>,
) -> Result<Box<dyn SimCache + 'w>> {
    let keys = w.key_count();
    // A cache larger than every block of every request can never fill up;
    // building it smaller gives identical results without allocating
    // memory for blocks that would never be used.
    let all_blocks: usize = w
        .requests
        .iter()
        .map(|r| r.blocks.len() + r.output_blocks.len())
        .sum();
    let capacity = capacity.min(all_blocks.max(1));
    Ok(match kind {
        Contender::Manager(backend) => {
            return manager::build(
                backend,
                capacity,
                w.block_tokens,
                &w.hashes,
                release,
                aggregator,
            )
        }
        Contender::SimLru => Box::new(PrefixCache::new(
            kind.name(),
            capacity,
            keys,
            LruOrder::new(keys),
            release,
        )),
        Contender::Belady => Box::new(PrefixCache::new(
            kind.name(),
            capacity,
            keys,
            BeladyOrder::new(w, capacity, matches!(timing, Timing::Serve(_))),
            release,
        )),
        // Room for every block of every request at once: never evicts, even
        // with requests in flight under serve timing.
        Contender::Unbounded => Box::new(PrefixCache::new(
            kind.name(),
            usize::MAX / 4,
            keys,
            LruOrder::new(keys),
            release,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_all() {
        assert_eq!(parse_contenders("belady").unwrap(), vec![Contender::Belady]);
        assert_eq!(parse_contenders("all").unwrap(), Contender::all());
        assert_eq!(
            parse_contenders("Belady, belady,unbounded").unwrap(),
            vec![Contender::Belady, Contender::Unbounded]
        );
        let err = parse_contenders("lfu").unwrap_err().to_string();
        assert!(
            err.contains("unknown policy `lfu`") && err.contains("belady"),
            "{err}"
        );
    }
}
