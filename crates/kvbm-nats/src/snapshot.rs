//! Snapshot resync over NATS: a worker answers requests on
//! `kvbm.snapshot.<instance>` with the hashes it has announced and the
//! number of its last published batch; a consumer asks when it cannot trust
//! what it has for that worker.
//!
//! A reply is one or more MessagePack chunks of at most
//! [`CHUNK_HASHES`] hashes (NATS caps a message at 1 MiB by default),
//! `{instance_id, sequence, chunk, chunks, hashes}`, all published to the
//! request's reply inbox.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kvbm::events::{InstanceId, PublisherStats};
use kvbm::{BlockRegistry, SequenceHash};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// Subject prefix of snapshot requests; the instance id (decimal) follows.
pub const DEFAULT_SNAPSHOT_PREFIX: &str = "kvbm.snapshot";

/// Hashes per reply chunk: 16 bytes each on the wire, well under 1 MiB.
pub const CHUNK_HASHES: usize = 32 * 1024;

/// A worker's announced hashes as of its batch number `sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Number of the last batch whose events the hashes reflect.
    pub sequence: u64,
    /// Every hash the worker has announced and not removed.
    pub hashes: Vec<SequenceHash>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Chunk {
    instance_id: InstanceId,
    sequence: u64,
    chunk: u32,
    chunks: u32,
    hashes: Vec<SequenceHash>,
}

/// Why a snapshot request failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No complete reply before the deadline.
    #[error("no snapshot reply within {0:?}")]
    Timeout(Duration),
    /// A reply chunk did not decode, or chunks disagreed.
    #[error("malformed snapshot reply: {0}")]
    Malformed(String),
    /// The client could not subscribe or publish.
    #[error("NATS error: {0}")]
    Nats(String),
}

/// The subject a worker's snapshot requests go to.
pub fn snapshot_subject(prefix: &str, instance: InstanceId) -> String {
    format!("{prefix}.{instance}")
}

/// Where a worker's snapshot comes from: read the publisher's last batch
/// number *before* the registry, so that every batch up to that number is
/// reflected in the hashes (see `PublisherStats::last_sequence`).
pub fn registry_snapshot(registry: &BlockRegistry, stats: &PublisherStats) -> Snapshot {
    let sequence = stats.last_sequence.load(Ordering::Acquire);
    Snapshot {
        sequence,
        hashes: registry.announced_hashes(),
    }
}

/// Answers snapshot requests for one worker until dropped.
pub struct SnapshotResponder {
    task: JoinHandle<()>,
}

impl SnapshotResponder {
    /// Subscribes to `<prefix>.<instance>` and answers each request with
    /// `source()`.
    pub async fn start<F>(
        client: async_nats::Client,
        prefix: &str,
        instance: InstanceId,
        source: F,
    ) -> Result<Self, SnapshotError>
    where
        F: Fn() -> Snapshot + Send + Sync + 'static,
    {
        let mut requests = client
            .subscribe(snapshot_subject(prefix, instance))
            .await
            .map_err(|e| SnapshotError::Nats(e.to_string()))?;
        // The subscription must be live on the server before requests come.
        client
            .flush()
            .await
            .map_err(|e| SnapshotError::Nats(e.to_string()))?;
        let task = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let Some(reply) = request.reply else { continue };
                let snapshot = source();
                for payload in encode_chunks(instance, &snapshot) {
                    // A failed reply is retried by the requester.
                    let _ = client.publish(reply.clone(), payload.into()).await;
                }
                let _ = client.flush().await;
            }
        });
        Ok(Self { task })
    }

    /// A responder for a worker whose registry feeds a
    /// `KvbmCacheEventsPublisher` with these stats.
    pub async fn for_registry(
        client: async_nats::Client,
        prefix: &str,
        instance: InstanceId,
        registry: BlockRegistry,
        stats: Arc<PublisherStats>,
    ) -> Result<Self, SnapshotError> {
        Self::start(client, prefix, instance, move || {
            registry_snapshot(&registry, &stats)
        })
        .await
    }
}

impl Drop for SnapshotResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn encode_chunks(instance: InstanceId, snapshot: &Snapshot) -> Vec<Vec<u8>> {
    let parts: Vec<&[SequenceHash]> = if snapshot.hashes.is_empty() {
        vec![&[]]
    } else {
        snapshot.hashes.chunks(CHUNK_HASHES).collect()
    };
    let chunks = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .filter_map(|(i, hashes)| {
            rmp_serde::to_vec_named(&Chunk {
                instance_id: instance,
                sequence: snapshot.sequence,
                chunk: i as u32,
                chunks,
                hashes: hashes.to_vec(),
            })
            .ok()
        })
        .collect()
}

/// Puts one instance's snapshot back together from its reply chunks, in
/// whatever order they arrive.
///
/// Chunk payloads come off the network, so every field is checked: a chunk
/// that does not decode, names another instance, disagrees with earlier
/// chunks on the batch number or the chunk count, or has an index outside
/// the count is an error. Memory grows with the chunks received, never
/// with the count a chunk claims.
#[derive(Debug)]
pub struct SnapshotAssembly {
    instance: InstanceId,
    /// `(sequence, chunks)` agreed by every chunk so far.
    shape: Option<(u64, u32)>,
    parts: std::collections::BTreeMap<u32, Vec<SequenceHash>>,
}

impl SnapshotAssembly {
    /// Waits for the chunks of `instance`'s snapshot.
    pub fn new(instance: InstanceId) -> Self {
        Self {
            instance,
            shape: None,
            parts: std::collections::BTreeMap::new(),
        }
    }

    /// Takes one reply payload; returns the snapshot once every chunk is in.
    /// A chunk received twice replaces the first copy.
    pub fn accept(&mut self, payload: &[u8]) -> Result<Option<Snapshot>, SnapshotError> {
        let chunk: Chunk =
            rmp_serde::from_slice(payload).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        let shape = (chunk.sequence, chunk.chunks);
        if chunk.instance_id != self.instance
            || chunk.chunks == 0
            || chunk.chunk >= chunk.chunks
            || self.shape.is_some_and(|s| s != shape)
        {
            return Err(SnapshotError::Malformed("inconsistent chunks".into()));
        }
        self.shape = Some(shape);
        self.parts.insert(chunk.chunk, chunk.hashes);
        if self.parts.len() < chunk.chunks as usize {
            return Ok(None);
        }
        let parts = std::mem::take(&mut self.parts);
        self.shape = None;
        Ok(Some(Snapshot {
            sequence: chunk.sequence,
            hashes: parts.into_values().flatten().collect(),
        }))
    }
}

/// Asks `instance` for its snapshot and waits up to `timeout` for all of it.
pub async fn request_snapshot(
    client: &async_nats::Client,
    prefix: &str,
    instance: InstanceId,
    timeout: Duration,
) -> Result<Snapshot, SnapshotError> {
    let nats = |e: &dyn std::fmt::Display| SnapshotError::Nats(e.to_string());
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| nats(&e))?;
    client
        .publish_with_reply(snapshot_subject(prefix, instance), inbox, Vec::new().into())
        .await
        .map_err(|e| nats(&e))?;
    client.flush().await.map_err(|e| nats(&e))?;
    let collect = async {
        let mut assembly = SnapshotAssembly::new(instance);
        while let Some(msg) = replies.next().await {
            // "No responders" arrives as an empty status message.
            if let Some(snapshot) = assembly.accept(&msg.payload)? {
                return Ok(snapshot);
            }
        }
        Err(SnapshotError::Nats("reply subscription closed".into()))
    };
    let result = tokio::time::timeout(timeout, collect)
        .await
        .unwrap_or(Err(SnapshotError::Timeout(timeout)));
    let _ = replies.unsubscribe().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_and_carry_the_sequence() {
        let hashes: Vec<SequenceHash> = (0..(CHUNK_HASHES as u64 * 2 + 5))
            .map(SequenceHash::root)
            .collect();
        let parts = encode_chunks(
            3,
            &Snapshot {
                sequence: 9,
                hashes,
            },
        );
        assert_eq!(parts.len(), 3);
        let last: Chunk = rmp_serde::from_slice(&parts[2]).unwrap();
        assert_eq!(
            (last.chunk, last.chunks, last.sequence, last.hashes.len()),
            (2, 3, 9, 5)
        );
        assert!(parts.iter().all(|p| p.len() < 1024 * 1024));
        let empty = encode_chunks(
            3,
            &Snapshot {
                sequence: 0,
                hashes: vec![],
            },
        );
        assert_eq!(empty.len(), 1);
    }

    fn chunk(instance: InstanceId, sequence: u64, index: u32, count: u32, first: u64) -> Vec<u8> {
        rmp_serde::to_vec_named(&Chunk {
            instance_id: instance,
            sequence,
            chunk: index,
            chunks: count,
            hashes: vec![SequenceHash::root(first), SequenceHash::root(first + 1)],
        })
        .unwrap()
    }

    #[test]
    fn chunks_reassemble_in_any_order() {
        let mut assembly = SnapshotAssembly::new(7);
        assert!(assembly.accept(&chunk(7, 4, 2, 3, 20)).unwrap().is_none());
        assert!(assembly.accept(&chunk(7, 4, 0, 3, 0)).unwrap().is_none());
        // A repeated chunk replaces the first copy and does not complete it.
        assert!(assembly.accept(&chunk(7, 4, 0, 3, 0)).unwrap().is_none());
        let done = assembly.accept(&chunk(7, 4, 1, 3, 10)).unwrap().unwrap();
        let want: Vec<SequenceHash> = [0, 1, 10, 11, 20, 21]
            .into_iter()
            .map(SequenceHash::root)
            .collect();
        assert_eq!(
            done,
            Snapshot {
                sequence: 4,
                hashes: want
            }
        );
    }

    #[test]
    fn inconsistent_chunks_are_errors() {
        // A second message after a good first chunk (instance 7, batch 4,
        // chunk 0 of 2) that does not continue it.
        let bad = |second: Vec<u8>| {
            let mut assembly = SnapshotAssembly::new(7);
            let _ = assembly.accept(&chunk(7, 4, 0, 2, 0));
            matches!(assembly.accept(&second), Err(SnapshotError::Malformed(_)))
        };
        let seconds = [
            (chunk(8, 4, 1, 2, 0), "other instance"),
            (chunk(7, 5, 1, 2, 0), "other batch"),
            (chunk(7, 4, 1, 3, 0), "other count"),
            (chunk(7, 4, 2, 2, 0), "index past count"),
            (chunk(7, 4, 0, 0, 0), "zero chunks"),
            (Vec::new(), "empty status message"),
        ];
        for (second, why) in seconds {
            assert!(bad(second), "{why}");
        }
    }

    /// A chunk claiming four billion siblings is kept as one chunk: nothing
    /// is sized by the count (this used to allocate ~100 GB and abort).
    #[test]
    fn a_huge_chunk_count_allocates_nothing_for_it() {
        let mut assembly = SnapshotAssembly::new(7);
        assert!(assembly
            .accept(&chunk(7, 1, u32::MAX - 1, u32::MAX, 0))
            .unwrap()
            .is_none());
        assert_eq!(assembly.parts.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..96), 1..6)
        ) {
            let mut assembly = SnapshotAssembly::new(7);
            for p in &payloads {
                if let Ok(Some(snapshot)) = assembly.accept(p) {
                    let received: usize = payloads.iter().map(Vec::len).sum();
                    proptest::prop_assert!(snapshot.hashes.len() <= received);
                }
            }
        }

        #[test]
        fn mutated_chunks_never_panic(
            count in 1u32..4,
            flips in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6)
        ) {
            let mut assembly = SnapshotAssembly::new(7);
            for index in 0..count {
                let mut bytes = chunk(7, 3, index, count, u64::from(index) * 10);
                for &(at, value) in &flips {
                    let len = bytes.len();
                    bytes[at % len] = value;
                }
                let _ = assembly.accept(&bytes);
            }
        }
    }
}
