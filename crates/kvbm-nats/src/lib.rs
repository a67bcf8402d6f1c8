//! # kvbm-nats — kvbm cache events over NATS
//!
//! Both ends of a cluster's event stream over a NATS server:
//!
//! - workers publish their `kvbm::events` batches with a [`NatsPublisher`]
//!   (a `kvbm::pubsub::Publisher`) to [`DEFAULT_SUBJECT`], and answer
//!   snapshot requests on `kvbm.snapshot.<instance>` with a
//!   [`SnapshotResponder`];
//! - a router runs a [`ClusterSubscriber`], which decodes the batches into
//!   a shared `kvbm_router::ClusterIndex`, skips (and counts) malformed
//!   messages, and resynchronises an instance from its snapshot when a gap in
//!   its batch numbers shows lost batches, when it is first heard mid-stream,
//!   or after the subscriber's own reconnection.
//!
//! [`connect`] opens a client that reconnects forever with short back-off
//! and counts its (re)connections.
#![deny(missing_docs)]

mod publisher;
mod snapshot;
mod subscriber;

use std::time::Duration;

pub use publisher::{NatsPublisher, NatsPublisherStats, PublisherClosed, QueueFull, DEFAULT_QUEUE};
pub use snapshot::{
    registry_snapshot, request_snapshot, snapshot_subject, Snapshot, SnapshotAssembly,
    SnapshotError, SnapshotResponder, CHUNK_HASHES, DEFAULT_SNAPSHOT_PREFIX,
};
pub use subscriber::{ClusterSubscriber, SubscribeError, SubscriberConfig, SubscriberStats};

/// The subject event batches go to unless configured otherwise (as in
/// kvbm-logical).
pub const DEFAULT_SUBJECT: &str = "kvbm.events";

/// Connects to `url` (e.g. `nats://127.0.0.1:4222`) — failing when no
/// server answers the first time — then reconnects forever with back-off of 50 ms per attempt
/// up to 1 s. The receiver holds the number of connections made so far
/// (the first one included, reported shortly after this returns): a
/// [`ClusterSubscriber`] given it resyncs every instance when it passes 1.
pub async fn connect(
    url: &str,
) -> Result<(async_nats::Client, tokio::sync::watch::Receiver<u64>), async_nats::ConnectError> {
    connect_with_options(url, async_nats::ConnectOptions::new()).await
}

/// [`connect`] starting from `options` (for buffer sizes, credentials, …);
/// the reconnection settings and event callback are set here.
pub async fn connect_with_options(
    url: &str,
    options: async_nats::ConnectOptions,
) -> Result<(async_nats::Client, tokio::sync::watch::Receiver<u64>), async_nats::ConnectError> {
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let client = options
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((50 * attempts as u64).min(1000))
        })
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::Connected = event {
                    tx.send_modify(|n| *n += 1);
                }
            }
        })
        .connect(url)
        .await?;
    Ok((client, rx))
}
