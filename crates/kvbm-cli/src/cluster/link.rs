//! How event batches travel from the workers to the router's index: an
//! in-process channel, or a real NATS server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvbm::events::{wire, KvbmCacheEvents};
use kvbm::pubsub::Publisher;
use kvbm::BlockRegistry;
use kvbm_nats::{
    ClusterSubscriber, NatsPublisher, Snapshot, SnapshotResponder, SubscriberConfig,
    DEFAULT_SNAPSHOT_PREFIX, DEFAULT_SUBJECT,
};
use kvbm_router::ClusterIndex;
use parking_lot::{Mutex, MutexGuard};

use crate::error::{CliError, Result};

/// Counters of a link at the end of a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkStats {
    /// Events in the batches that reached the index.
    pub events_received: u64,
    /// Snapshot requests the router sent.
    pub snapshots_requested: u64,
    /// Messages that did not decode.
    pub malformed: u64,
    /// Events sent that the index never applied.
    pub events_lost_in_transit: u64,
}

/// A transport between workers and the router's index.
pub(crate) trait Link {
    /// The router's index, locked.
    fn index(&self) -> MutexGuard<'_, ClusterIndex>;
    /// Sends one of `batch.instance_id`'s batches (numbered here).
    fn send(&mut self, batch: &KvbmCacheEvents) -> Result<()>;
    /// Waits (briefly) until everything `worker` sent reached the index.
    fn sync(&mut self, worker: u128);
    /// Waits up to `timeout` for the index to catch up with every worker.
    fn settle(&mut self, timeout: Duration);
    /// The counters.
    fn stats(&self) -> LinkStats;
}

/// Per-worker batch numbers, shared with the snapshot responders.
#[derive(Default)]
struct Numbering(HashMap<u128, Arc<AtomicU64>>);

impl Numbering {
    fn counter(&mut self, worker: u128) -> Arc<AtomicU64> {
        Arc::clone(self.0.entry(worker).or_default())
    }

    fn next(&mut self, worker: u128) -> u64 {
        self.counter(worker).fetch_add(1, Ordering::AcqRel) + 1
    }

    fn last(&self, worker: u128) -> u64 {
        self.0.get(&worker).map_or(0, |c| c.load(Ordering::Acquire))
    }
}

/// Encoded batches through a queue, decoded and applied on `sync`.
pub(crate) struct InProcess {
    index: Mutex<ClusterIndex>,
    queue: std::collections::VecDeque<Vec<u8>>,
    numbering: Numbering,
    stats: LinkStats,
    sent: u64,
}

impl InProcess {
    pub(crate) fn new() -> Self {
        Self {
            index: Mutex::new(ClusterIndex::new()),
            queue: Default::default(),
            numbering: Numbering::default(),
            stats: LinkStats::default(),
            sent: 0,
        }
    }

    fn deliver(&mut self) {
        while let Some(bytes) = self.queue.pop_front() {
            let Ok(decoded) = wire::decode(&bytes) else {
                self.stats.malformed += 1;
                continue;
            };
            if self
                .index
                .get_mut()
                .apply(&decoded.batch, decoded.sequence)
                .is_ok()
            {
                self.stats.events_received += decoded.batch.events.len() as u64;
            }
        }
    }
}

impl Link for InProcess {
    fn index(&self) -> MutexGuard<'_, ClusterIndex> {
        self.index.lock()
    }

    fn send(&mut self, batch: &KvbmCacheEvents) -> Result<()> {
        let seq = self.numbering.next(batch.instance_id);
        let bytes = wire::encode(batch, seq).map_err(|e| CliError::Cluster(e.to_string()))?;
        self.sent += batch.events.len() as u64;
        self.queue.push_back(bytes);
        Ok(())
    }

    fn sync(&mut self, _worker: u128) {
        self.deliver();
    }

    fn settle(&mut self, _timeout: Duration) {
        self.deliver();
    }

    fn stats(&self) -> LinkStats {
        LinkStats {
            events_lost_in_transit: self.sent.saturating_sub(self.stats.events_received),
            ..self.stats
        }
    }
}

/// Batches published to a NATS server, applied by a `ClusterSubscriber`;
/// every worker answers snapshot requests.
pub(crate) struct Nats {
    runtime: tokio::runtime::Runtime,
    publisher: Arc<NatsPublisher>,
    subscriber: ClusterSubscriber,
    _responders: Vec<SnapshotResponder>,
    numbering: Numbering,
    sent: u64,
}

impl Nats {
    /// Connects workers and router to `url`.
    pub(crate) fn connect(url: &str, workers: Vec<(u128, BlockRegistry)>) -> Result<Self> {
        let err = |e: &dyn std::fmt::Display| CliError::Cluster(format!("NATS at {url}: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| err(&e))?;
        let mut numbering = Numbering::default();
        let (publisher, subscriber, responders) = runtime.block_on(async {
            let (workers_client, _) = kvbm_nats::connect(url).await.map_err(|e| err(&e))?;
            let (router_client, reconnects) = kvbm_nats::connect(url).await.map_err(|e| err(&e))?;
            let subscriber = ClusterSubscriber::start(
                router_client,
                Arc::new(Mutex::new(ClusterIndex::new())),
                SubscriberConfig::default(),
                Some(reconnects),
            )
            .await
            .map_err(|e| err(&e))?;
            let mut responders = Vec::new();
            for (id, registry) in workers {
                let counter = numbering.counter(id);
                let responder = SnapshotResponder::start(
                    workers_client.clone(),
                    DEFAULT_SNAPSHOT_PREFIX,
                    id,
                    move || {
                        // The number first, then the registry: every batch
                        // up to it is reflected.
                        let sequence = counter.load(Ordering::Acquire);
                        Snapshot {
                            sequence,
                            hashes: registry.announced_hashes(),
                        }
                    },
                )
                .await
                .map_err(|e| err(&e))?;
                responders.push(responder);
            }
            let publisher = Arc::new(NatsPublisher::new(workers_client));
            Ok::<_, CliError>((publisher, subscriber, responders))
        })?;
        Ok(Self {
            runtime,
            publisher,
            subscriber,
            _responders: responders,
            numbering,
            sent: 0,
        })
    }

    fn caught_up(&self, worker: u128) -> bool {
        let index = self.subscriber.index().lock();
        index.last_sequence(worker).unwrap_or(0) >= self.numbering.last(worker)
            && !index.is_awaiting_snapshot(worker)
    }
}

impl Link for Nats {
    fn index(&self) -> MutexGuard<'_, ClusterIndex> {
        self.subscriber.index().lock()
    }

    fn send(&mut self, batch: &KvbmCacheEvents) -> Result<()> {
        let seq = self.numbering.next(batch.instance_id);
        let bytes = wire::encode(batch, seq).map_err(|e| CliError::Cluster(e.to_string()))?;
        self.sent += batch.events.len() as u64;
        // A refused message is a lost batch: the router sees the gap.
        let _guard = self.runtime.enter();
        let _ = self.publisher.publish(DEFAULT_SUBJECT, bytes);
        Ok(())
    }

    fn sync(&mut self, worker: u128) {
        // Up to 2 s per request: the router routes on what it knows then.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.caught_up(worker) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    fn settle(&mut self, timeout: Duration) {
        let _ = self.runtime.block_on(self.publisher.flush());
        let deadline = Instant::now() + timeout;
        let workers: Vec<u128> = self.numbering.0.keys().copied().collect();
        while workers.iter().any(|&w| !self.caught_up(w)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stats(&self) -> LinkStats {
        let s = self.subscriber.stats();
        let received = s.events.load(Ordering::Relaxed);
        LinkStats {
            events_received: received,
            snapshots_requested: s.snapshots_requested.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
            events_lost_in_transit: self.sent.saturating_sub(received),
        }
    }
}
