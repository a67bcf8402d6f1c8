//! [`NatsPublisher`]: `kvbm::pubsub::Publisher` over a NATS connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvbm::pubsub::{FlushFuture, PublishError, Publisher};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Messages queued for the connection before `publish` refuses more.
pub const DEFAULT_QUEUE: usize = 8192;

enum Command {
    Publish(String, Vec<u8>),
    Flush(oneshot::Sender<Result<(), PublishError>>),
}

/// The publisher's queue is full (the server has been away for long): the
/// message was dropped and its batch number is lost, which consumers see
/// as a gap.
#[derive(Debug, thiserror::Error)]
#[error("NATS publish queue full ({0} messages)")]
pub struct QueueFull(pub usize);

/// The connection task has ended.
#[derive(Debug, thiserror::Error)]
#[error("NATS publisher task has stopped")]
pub struct PublisherClosed;

/// Counters of a [`NatsPublisher`].
#[derive(Debug, Default)]
pub struct NatsPublisherStats {
    /// Messages handed to the client.
    pub sent: AtomicU64,
    /// Messages refused because the queue was full.
    pub dropped: AtomicU64,
    /// Messages the client failed to take.
    pub errors: AtomicU64,
}

/// Publishes through one `async_nats::Client`, in call order.
///
/// [`publish`](Publisher::publish) only queues (it is called from the
/// synchronous side of `kvbm::events`); a task on the runtime hands the
/// messages to the client, which buffers them while the server is away and
/// reconnects on its own. [`flush`](Publisher::flush) resolves once
/// everything queued before it reached the server's socket: the
/// `KvbmCacheEventsPublisher` calls it after `Shutdown`.
pub struct NatsPublisher {
    tx: mpsc::Sender<Command>,
    stats: Arc<NatsPublisherStats>,
    capacity: usize,
    task: JoinHandle<()>,
}

impl NatsPublisher {
    /// A publisher over `client` with a queue of [`DEFAULT_QUEUE`] messages.
    /// Spawns its task on the current tokio runtime.
    pub fn new(client: async_nats::Client) -> Self {
        Self::with_queue(client, DEFAULT_QUEUE)
    }

    /// A publisher with a queue of `capacity` messages (at least 1).
    pub fn with_queue(client: async_nats::Client, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (tx, mut rx) = mpsc::channel::<Command>(capacity);
        let stats = Arc::new(NatsPublisherStats::default());
        let task_stats = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Command::Publish(subject, payload) => {
                        match client.publish(subject, payload.into()).await {
                            Ok(()) => task_stats.sent.fetch_add(1, Ordering::Relaxed),
                            Err(_) => task_stats.errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    Command::Flush(done) => {
                        let r = client
                            .flush()
                            .await
                            .map_err(|e| Box::new(e) as PublishError);
                        let _ = done.send(r);
                    }
                }
            }
        });
        Self {
            tx,
            stats,
            capacity,
            task,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<NatsPublisherStats> {
        &self.stats
    }
}

impl Drop for NatsPublisher {
    fn drop(&mut self) {
        // The task drains what is queued and ends when the last sender goes;
        // nothing to do unless the runtime is gone.
        if self.tx.is_closed() {
            self.task.abort();
        }
    }
}

impl Publisher for NatsPublisher {
    fn publish(&self, subject: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        match self
            .tx
            .try_send(Command::Publish(subject.to_owned(), payload))
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Err(Box::new(QueueFull(self.capacity)))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Box::new(PublisherClosed)),
        }
    }

    fn flush(&self) -> FlushFuture {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            tx.send(Command::Flush(done))
                .await
                .map_err(|_| Box::new(PublisherClosed) as PublishError)?;
            wait.await
                .map_err(|_| Box::new(PublisherClosed) as PublishError)?
        })
    }
}
