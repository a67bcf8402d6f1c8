//! The transport seam of [`events`](crate::events): where published batches
//! go. kvbm ships no transport; implement [`Publisher`] over NATS, a
//! channel, a file, …
//!
//! Same name and shape as kvbm-logical's `pubsub::Publisher`, with std
//! types in place of `anyhow`, `bytes` and `futures`.

use std::future::Future;
use std::pin::Pin;

/// Whatever a transport reports as failure.
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

/// The future returned by [`Publisher::flush`].
pub type FlushFuture = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'static>>;

/// Sends messages to named subjects.
pub trait Publisher: Send + Sync {
    /// Queues `payload` for delivery to `subject` and returns without
    /// waiting for it to be delivered.
    fn publish(&self, subject: &str, payload: Vec<u8>) -> Result<(), PublishError>;

    /// Resolves once everything published before was handed to the
    /// messaging system.
    fn flush(&self) -> FlushFuture;
}
