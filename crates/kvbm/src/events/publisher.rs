//! [`KvbmCacheEventsPublisher`]: a tokio task that batches a subscription
//! and publishes the batches.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_core::Stream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::batch::BatchingConfig;
use super::batcher::{BatchStream, EventBatcher};
use super::protocol::{InstanceId, KvCacheEvent, KvCacheEvents, KvbmCacheEvents};
use super::wire;
use crate::pubsub::Publisher;

/// A required setting was not given to the builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("KvbmCacheEventsPublisher needs {0}")]
pub struct MissingSetting(pub &'static str);

/// Counters of a running publisher.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Sequence number of the last batch handed to the publisher (0 before
    /// the first). Read it *before* taking a registry snapshot
    /// ([`BlockRegistry::announced_hashes`](crate::BlockRegistry::announced_hashes)):
    /// every event of batches up to this number is then in the snapshot, so
    /// a consumer that applies the batches numbered above it ends up exact.
    pub last_sequence: AtomicU64,
    /// Batches published (the final `Shutdown` included).
    pub batches_published: AtomicU64,
    /// Events in published batches.
    pub events_published: AtomicU64,
    /// Batches the publisher refused, or that failed to encode; their
    /// sequence numbers are spent, so consumers see the gap.
    pub publish_errors: AtomicU64,
}

/// Builds a [`KvbmCacheEventsPublisher`].
pub struct KvbmCacheEventsPublisherBuilder<S, P: ?Sized> {
    instance_id: Option<InstanceId>,
    event_stream: Option<S>,
    publisher: Option<Arc<P>>,
    batching_config: BatchingConfig,
    subject: String,
}

impl<S, P: ?Sized> Default for KvbmCacheEventsPublisherBuilder<S, P> {
    fn default() -> Self {
        Self {
            instance_id: None,
            event_stream: None,
            publisher: None,
            batching_config: BatchingConfig::default(),
            subject: "kvbm.events".to_owned(),
        }
    }
}

impl<S, P> KvbmCacheEventsPublisherBuilder<S, P>
where
    S: Stream<Item = KvCacheEvent> + Send + 'static,
    P: Publisher + ?Sized + 'static,
{
    /// A builder; `instance_id`, `event_stream` and `publisher` are required.
    pub fn new() -> Self {
        Self::default()
    }

    /// The instance the batches are stamped with.
    pub fn instance_id(mut self, id: InstanceId) -> Self {
        self.instance_id = Some(id);
        self
    }

    /// The events to publish, typically
    /// [`EventsManager::subscribe`](super::EventsManager::subscribe).
    pub fn event_stream(mut self, stream: S) -> Self {
        self.event_stream = Some(stream);
        self
    }

    /// Where batches go.
    pub fn publisher(mut self, publisher: Arc<P>) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// How events are batched. Default: [`BatchingConfig::default`].
    pub fn batching_config(mut self, config: BatchingConfig) -> Self {
        self.batching_config = config;
        self
    }

    /// The subject batches are published to. Default: `kvbm.events`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Spawns the publishing task on the current tokio runtime. Called
    /// outside a runtime, it fails with `MissingSetting("a tokio runtime")`
    /// (where `tokio::spawn` would panic).
    pub fn build(self) -> Result<KvbmCacheEventsPublisher, MissingSetting> {
        let instance_id = self.instance_id.ok_or(MissingSetting("an instance_id"))?;
        let stream = self.event_stream.ok_or(MissingSetting("an event_stream"))?;
        let publisher = self.publisher.ok_or(MissingSetting("a publisher"))?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| MissingSetting("a tokio runtime"))?;
        let stats = Arc::new(PublisherStats::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = PublishTask {
            publisher,
            subject: self.subject,
            instance_id,
            stats: Arc::clone(&stats),
        };
        let batches = EventBatcher::new(self.batching_config, instance_id).batch(Box::pin(stream));
        let handle = runtime.spawn(task.run(batches, stop_rx));
        Ok(KvbmCacheEventsPublisher {
            handle,
            stop: Some(stop_tx),
            stats,
        })
    }
}

struct PublishTask<P: ?Sized> {
    publisher: Arc<P>,
    subject: String,
    instance_id: InstanceId,
    stats: Arc<PublisherStats>,
}

impl<P: Publisher + ?Sized> PublishTask<P> {
    async fn run<S>(self, mut batches: BatchStream<Pin<Box<S>>>, mut stop: oneshot::Receiver<()>)
    where
        S: Stream<Item = KvCacheEvent> + Send,
    {
        let mut stopping = false;
        loop {
            let next = poll_fn(|cx| {
                if !stopping && Pin::new(&mut stop).poll(cx).is_ready() {
                    // Stop asked (or the handle dropped): take what is
                    // already queued, then drain the batches.
                    stopping = true;
                    batches.close();
                }
                Pin::new(&mut batches).poll_next(cx)
            })
            .await;
            match next {
                Some(batch) => self.send(&batch),
                None => break,
            }
        }
        self.send(&KvbmCacheEvents {
            events: KvCacheEvents::Shutdown,
            instance_id: self.instance_id,
        });
        if self.publisher.flush().await.is_err() {
            self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn send(&self, batch: &KvbmCacheEvents) {
        let sequence = self.stats.last_sequence.load(Ordering::Relaxed) + 1;
        self.stats.last_sequence.store(sequence, Ordering::Relaxed);
        let sent = wire::encode(batch, sequence)
            .map_err(|e| Box::new(e) as crate::pubsub::PublishError)
            .and_then(|payload| self.publisher.publish(&self.subject, payload));
        match sent {
            Ok(()) => {
                self.stats.batches_published.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .events_published
                    .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Publishes an event stream in batches, from a tokio task.
///
/// The task ends — publishing the open batch, then
/// [`KvCacheEvents::Shutdown`], then flushing — when the event stream ends
/// (the [`EventsManager`](super::EventsManager) was dropped), when
/// [`stop`](Self::stop) is called, or when this handle is dropped.
/// [`abort`](Self::abort) ends it at once, publishing nothing more.
///
/// Batches carry a per-instance sequence number (see
/// [`wire`]).
pub struct KvbmCacheEventsPublisher {
    handle: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    stats: Arc<PublisherStats>,
}

impl KvbmCacheEventsPublisher {
    /// A builder.
    pub fn builder<S, P>() -> KvbmCacheEventsPublisherBuilder<S, P>
    where
        S: Stream<Item = KvCacheEvent> + Send + 'static,
        P: Publisher + ?Sized + 'static,
    {
        KvbmCacheEventsPublisherBuilder::new()
    }

    /// Stops gracefully: publishes what is pending and `Shutdown`, flushes,
    /// and returns when the task has ended.
    pub async fn stop(mut self) -> Result<(), tokio::task::JoinError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await
    }

    /// Waits until the task ends on its own (its event stream ended).
    pub async fn join(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.handle).await
    }

    /// Ends the task at once, without publishing `Shutdown`.
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The task's counters.
    pub fn stats(&self) -> &Arc<PublisherStats> {
        &self.stats
    }
}

impl Drop for KvbmCacheEventsPublisher {
    fn drop(&mut self) {
        // Dropping `stop` tells the task to finish gracefully.
        self.stop.take();
    }
}
