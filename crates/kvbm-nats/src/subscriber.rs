//! [`ClusterSubscriber`]: event batches from NATS into a shared
//! [`ClusterIndex`], with snapshot resync.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kvbm::events::{wire, InstanceId};
use kvbm_router::{Applied, ClusterIndex};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::snapshot::{request_snapshot, DEFAULT_SNAPSHOT_PREFIX};

/// Settings of a [`ClusterSubscriber`].
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// Subject the batches arrive on. Default `kvbm.events`.
    pub subject: String,
    /// Prefix of snapshot request subjects. Default `kvbm.snapshot`.
    pub snapshot_prefix: String,
    /// How long one snapshot request may take. Default 2 s.
    pub snapshot_timeout: Duration,
    /// How often instances still awaiting a snapshot are asked again.
    /// Default 250 ms.
    pub retry_interval: Duration,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            subject: crate::DEFAULT_SUBJECT.to_owned(),
            snapshot_prefix: DEFAULT_SNAPSHOT_PREFIX.to_owned(),
            snapshot_timeout: Duration::from_secs(2),
            retry_interval: Duration::from_millis(250),
        }
    }
}

/// Counters of a [`ClusterSubscriber`].
#[derive(Debug, Default)]
pub struct SubscriberStats {
    /// Well-formed batches received (stale ones included).
    pub batches: AtomicU64,
    /// Events in the well-formed batches received (stale ones included:
    /// they arrived, a snapshot had just covered them).
    pub events: AtomicU64,
    /// Messages on the subject that were not batches; skipped.
    pub malformed: AtomicU64,
    /// Batches already covered (duplicates, older than a snapshot).
    pub stale: AtomicU64,
    /// Gaps seen in instances' sequence numbers.
    pub gaps: AtomicU64,
    /// Batches those gaps skipped over.
    pub batches_lost: AtomicU64,
    /// Snapshot requests sent.
    pub snapshots_requested: AtomicU64,
    /// Snapshots applied.
    pub snapshots_applied: AtomicU64,
    /// Snapshot requests that failed (no reply, malformed); retried.
    pub snapshot_failures: AtomicU64,
    /// Reconnections after which every instance was resynchronised.
    pub reconnects: AtomicU64,
}

/// Why the subscriber could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot subscribe: {0}")]
pub struct SubscribeError(String);

/// Feeds a shared [`ClusterIndex`] from the batches on a subject, until
/// dropped.
///
/// A batch that reveals a gap, or the first batch heard from an instance
/// mid-stream, makes it request that instance's snapshot (and retry every
/// `retry_interval` until one lands). After a reconnection of its own
/// client (when given the counter of [`connect`](crate::connect)) it asks
/// every known instance, since anything may have been missed meanwhile.
pub struct ClusterSubscriber {
    index: Arc<Mutex<ClusterIndex>>,
    stats: Arc<SubscriberStats>,
    task: JoinHandle<()>,
}

impl ClusterSubscriber {
    /// Subscribes and starts applying. `reconnects` is the counter returned
    /// by [`connect`](crate::connect) (or `None` to not resync on
    /// reconnection).
    pub async fn start(
        client: async_nats::Client,
        index: Arc<Mutex<ClusterIndex>>,
        config: SubscriberConfig,
        reconnects: Option<watch::Receiver<u64>>,
    ) -> Result<Self, SubscribeError> {
        let messages = client
            .subscribe(config.subject.clone())
            .await
            .map_err(|e| SubscribeError(e.to_string()))?;
        client
            .flush()
            .await
            .map_err(|e| SubscribeError(e.to_string()))?;
        let stats = Arc::new(SubscriberStats::default());
        let worker = Worker {
            client,
            index: Arc::clone(&index),
            stats: Arc::clone(&stats),
            config,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        };
        let task = tokio::spawn(worker.run(messages, reconnects));
        Ok(Self { index, stats, task })
    }

    /// The index being fed.
    pub fn index(&self) -> &Arc<Mutex<ClusterIndex>> {
        &self.index
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<SubscriberStats> {
        &self.stats
    }
}

impl Drop for ClusterSubscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Worker {
    client: async_nats::Client,
    index: Arc<Mutex<ClusterIndex>>,
    stats: Arc<SubscriberStats>,
    config: SubscriberConfig,
    in_flight: Arc<Mutex<HashSet<InstanceId>>>,
}

impl Worker {
    async fn run(
        self,
        mut messages: async_nats::Subscriber,
        mut reconnects: Option<watch::Receiver<u64>>,
    ) {
        let mut retry = tokio::time::interval(self.config.retry_interval);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshots = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { break };
                    if let Some(instance) = self.on_message(&msg.payload) {
                        self.request(&mut snapshots, instance);
                    }
                }
                _ = retry.tick() => {
                    let waiting: Vec<InstanceId> = self.index.lock().awaiting_snapshot().collect();
                    for instance in waiting {
                        self.request(&mut snapshots, instance);
                    }
                }
                changed = async {
                    match reconnects.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => {
                    if !changed {
                        reconnects = None;
                        continue;
                    }
                    let connections = reconnects.as_mut().map_or(0, |rx| *rx.borrow_and_update());
                    if connections < 2 {
                        continue;
                    }
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    let known: Vec<InstanceId> = {
                        let mut index = self.index.lock();
                        let known: Vec<_> = index.instances().collect();
                        for &i in &known {
                            index.mark_stale(i);
                        }
                        known
                    };
                    for instance in known {
                        self.request(&mut snapshots, instance);
                    }
                }
                Some(_) = snapshots.join_next(), if !snapshots.is_empty() => {}
            }
        }
    }

    /// Applies one message; returns an instance to resync, if any.
    fn on_message(&self, payload: &[u8]) -> Option<InstanceId> {
        let Ok(decoded) = wire::decode(payload) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        // The counters are updated before the lock is released, so that
        // whoever sees the batch in the index also sees it counted.
        let mut index = self.index.lock();
        let applied = index.apply(&decoded.batch, decoded.sequence);
        let instance = decoded.batch.instance_id;
        if applied.is_ok() {
            self.stats
                .events
                .fetch_add(decoded.batch.events.len() as u64, Ordering::Relaxed);
        }
        let resync = match applied {
            Ok(Applied::Stale) => {
                self.stats.stale.fetch_add(1, Ordering::Relaxed);
                None
            }
            Ok(a) => {
                if let Applied::Gap { missed } = a {
                    self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                    self.stats.batches_lost.fetch_add(missed, Ordering::Relaxed);
                }
                a.needs_snapshot().then_some(instance)
            }
            Err(_) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        drop(index);
        resync
    }

    fn request(&self, tasks: &mut tokio::task::JoinSet<()>, instance: InstanceId) {
        if !self.in_flight.lock().insert(instance) {
            return;
        }
        self.stats
            .snapshots_requested
            .fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tasks.spawn(async move {
            let got = request_snapshot(
                &this.client,
                &this.config.snapshot_prefix,
                instance,
                this.config.snapshot_timeout,
            )
            .await;
            match got {
                Ok(snapshot) => {
                    let mut index = this.index.lock();
                    // An instance that shut down meanwhile stays dropped.
                    if index.is_awaiting_snapshot(instance)
                        && index
                            .apply_snapshot(instance, snapshot.sequence, &snapshot.hashes)
                            .is_ok()
                    {
                        this.stats.snapshots_applied.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    this.stats.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            this.in_flight.lock().remove(&instance);
        });
    }
}
