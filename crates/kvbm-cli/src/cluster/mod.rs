//! `kvbm cluster`: N workers, each a `BlockManager`, behind a router that
//! learns what each caches from their event batches.
//!
//! Requests run one at a time, in arrival order (the instant timing of
//! `replay`): the router picks a worker, the worker matches the prompt's
//! prefix, allocates and registers the missing blocks and releases them
//! (they stay cached until evicted); the worker's registry events are
//! batched, encoded with `kvbm::events::wire` and sent over a [`link`] to the
//! router's `ClusterIndex` before the next request is routed.
//!
//! A worker's load is the number of blocks it has prefilled so far; the
//! kv-aware router prices a worker at `blocks to prefill + load_weight ·
//! (its load − the least loaded worker's)`.

pub(crate) mod link;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvbm::events::{
    AllEventsPolicy, BatchAssembler, BatchingConfig, EventStreamRecvError, EventsManager,
    LossAwareEventStream,
};
use kvbm::manager::BlockManager;
use kvbm::{BlockRegistry, SequenceHash};
use kvbm_router::{
    KvAwareRouter, PrefillLoadCost, RandomRouter, RoundRobinRouter, Router, WorkerLoad,
};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::workload::Workload;
use link::{Link, LinkStats};

/// The routers `kvbm cluster` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouterChoice {
    /// Cost of prefill against load, from the cluster index.
    KvAware,
    /// Request `k` to worker `k mod N`.
    RoundRobin,
    /// A uniformly drawn worker.
    Random,
}

impl RouterChoice {
    /// Every router, in report order.
    pub(crate) const ALL: [RouterChoice; 3] = [
        RouterChoice::KvAware,
        RouterChoice::RoundRobin,
        RouterChoice::Random,
    ];

    /// The name used on the command line and in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RouterChoice::KvAware => "kv-aware",
            RouterChoice::RoundRobin => "round-robin",
            RouterChoice::Random => "random",
        }
    }

    fn build(self, cfg: &ClusterConfig) -> Box<dyn Router> {
        match self {
            RouterChoice::KvAware => Box::new(KvAwareRouter::new(PrefillLoadCost {
                load_weight: cfg.load_weight,
            })),
            RouterChoice::RoundRobin => Box::new(RoundRobinRouter::default()),
            RouterChoice::Random => Box::new(RandomRouter::new(cfg.seed)),
        }
    }
}

/// A validated `kvbm cluster` run (one router).
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    /// Number of workers.
    pub workers: usize,
    /// Blocks per worker.
    pub capacity: usize,
    /// Weight of load against prefill in the kv-aware cost.
    pub load_weight: f64,
    /// Seed of the random router.
    pub seed: u64,
    /// `nats://…` to send events through a NATS server; `None` for the
    /// in-process channel.
    pub nats: Option<String>,
}

/// What one router achieved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClusterResult {
    /// Router name.
    pub router: String,
    /// Requests routed.
    pub requests: u64,
    /// Prompt blocks found cached on the chosen worker over all prompt blocks.
    pub block_hit_rate: f64,
    /// Prompt blocks hit.
    pub hits: u64,
    /// Prompt blocks prefilled.
    pub misses: u64,
    /// Most blocks prefilled by one worker over the mean.
    pub load_max_over_mean: f64,
    /// Blocks prefilled per worker.
    pub load_per_worker: Vec<u64>,
    /// Events in the batches the workers sent.
    pub events_sent: u64,
    /// Events in the batches that reached the router.
    pub events_received: u64,
    /// Events sent but never applied (lost batches, lagging subscriptions).
    pub events_lost: u64,
    /// Snapshots the router requested to resync.
    pub snapshots_requested: u64,
    /// Messages the router could not decode.
    pub malformed: u64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
}

#[derive(Clone, Debug)]
struct Tier;

/// One worker: a block manager whose registry reports to an events manager.
struct SimWorker {
    id: u128,
    manager: BlockManager<Tier>,
    registry: BlockRegistry,
    events: LossAwareEventStream,
    batches: BatchAssembler,
    prefilled: u64,
    lost: u64,
}

impl SimWorker {
    fn new(id: u128, capacity: usize, block_tokens: u32) -> Result<Self> {
        let events = Arc::new(
            EventsManager::builder()
                .policy(Arc::new(AllEventsPolicy::new()))
                .channel_capacity(1 << 16)
                .build(),
        );
        let stream = events.subscribe_loss_aware();
        let registry = BlockRegistry::builder().event_manager(events).build();
        let manager = BlockManager::<Tier>::builder()
            .registry(registry.clone())
            .block_count(capacity)
            .block_size(block_tokens as usize)
            .build()
            .map_err(|e| CliError::InvalidArgument(format!("cluster worker: {e}")))?;
        Ok(Self {
            id,
            manager,
            registry,
            events: stream,
            batches: BatchAssembler::new(BatchingConfig::default(), id),
            prefilled: 0,
            lost: 0,
        })
    }

    /// Runs one prompt; returns the blocks hit.
    fn serve(&mut self, prompt: &[SequenceHash], block_tokens: u32) -> usize {
        let n = prompt.len();
        if n > self.manager.total_blocks() {
            self.prefilled += n as u64;
            return 0;
        }
        let matched = self.manager.match_blocks(prompt);
        let hits = matched.len();
        if let Some(blocks) = self.manager.allocate_blocks(n - hits) {
            let staged: Vec<_> = blocks
                .into_iter()
                .zip(&prompt[hits..])
                .filter_map(|(b, &h)| b.stage(h, block_tokens as usize).ok())
                .collect();
            drop(self.manager.register_blocks(staged));
        }
        drop(matched);
        self.prefilled += (n - hits) as u64;
        hits
    }

    /// The batches of the events since the last call.
    fn drain(&mut self) -> Vec<kvbm::events::KvbmCacheEvents> {
        let now = Instant::now();
        let mut out = Vec::new();
        while let Some(event) = self.events.try_recv() {
            match event {
                Ok(e) => out.extend(self.batches.push(e, now)),
                Err(EventStreamRecvError::Lagged(n)) => self.lost += n,
            }
        }
        out.extend(self.batches.finish());
        out
    }
}

/// Runs the workload through `choice`; `progress` is told the requests done.
pub(crate) fn run(
    w: &Workload,
    cfg: &ClusterConfig,
    choice: RouterChoice,
    progress: &mut dyn FnMut(u64),
) -> Result<ClusterResult> {
    let start = Instant::now();
    if cfg.workers == 0 || cfg.capacity == 0 {
        return Err(CliError::InvalidArgument(
            "cluster needs at least one worker of at least one block".into(),
        ));
    }
    let mut workers = (0..cfg.workers)
        .map(|i| SimWorker::new(i as u128 + 1, cfg.capacity, w.block_tokens))
        .collect::<Result<Vec<_>>>()?;
    let mut link: Box<dyn Link> = match &cfg.nats {
        None => Box::new(link::InProcess::new()),
        Some(url) => Box::new(link::Nats::connect(
            url,
            workers.iter().map(|w| (w.id, w.registry.clone())).collect(),
        )?),
    };
    let mut router = choice.build(cfg);
    let mut loads: Vec<WorkerLoad> = workers
        .iter()
        .map(|w| WorkerLoad {
            instance: w.id,
            load: 0.0,
        })
        .collect();
    let (mut hits, mut misses, mut events_sent) = (0u64, 0u64, 0u64);
    let mut prompt: Vec<SequenceHash> = Vec::new();
    for (r, req) in w.requests.iter().enumerate() {
        prompt.clear();
        prompt.extend(req.blocks.iter().map(|&k| w.hashes[k as usize]));
        let pick = {
            let index = link.index();
            router.route(&index, &prompt, &loads).unwrap_or(0)
        };
        let worker = &mut workers[pick];
        let h = worker.serve(&prompt, w.block_tokens);
        hits += h as u64;
        misses += (prompt.len() - h) as u64;
        loads[pick].load = worker.prefilled as f64;
        for batch in worker.drain() {
            events_sent += batch.events.len() as u64;
            link.send(&batch)?;
        }
        link.sync(worker.id);
        if r % 256 == 0 {
            progress(r as u64);
        }
    }
    progress(w.requests.len() as u64);
    link.settle(Duration::from_secs(5));
    let LinkStats {
        events_received,
        snapshots_requested,
        malformed,
        events_lost_in_transit,
    } = link.stats();
    let lost_in_workers: u64 = workers.iter().map(|w| w.lost).sum();
    let per_worker: Vec<u64> = workers.iter().map(|w| w.prefilled).collect();
    let mean = per_worker.iter().sum::<u64>() as f64 / per_worker.len() as f64;
    let max = per_worker.iter().copied().max().unwrap_or(0) as f64;
    let total = hits + misses;
    Ok(ClusterResult {
        router: choice.name().to_owned(),
        requests: w.requests.len() as u64,
        block_hit_rate: if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        },
        hits,
        misses,
        load_max_over_mean: if mean > 0.0 { max / mean } else { 1.0 },
        load_per_worker: per_worker,
        events_sent,
        events_received,
        events_lost: lost_in_workers + events_lost_in_transit,
        snapshots_requested,
        malformed,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}
