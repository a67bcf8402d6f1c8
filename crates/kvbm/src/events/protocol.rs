//! The event types: one registry change ([`KvCacheEvent`]), a batch of
//! them ([`KvCacheEvents`]) and a batch stamped with the worker that sent
//! it ([`KvbmCacheEvents`], the wire message).
//!
//! Names, shapes and serde layout are kvbm-logical 1.6.1's, so that a
//! consumer written against either crate reads the other's messages.

use serde::{Deserialize, Serialize};

use crate::SequenceHash;

/// Identifies the worker (block manager instance) a batch comes from.
pub type InstanceId = u128;

/// One change of a registry's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvCacheEvent {
    /// The hash entered the registry: some block (or handle) now holds it.
    Create(SequenceHash),
    /// The hash left the registry: no block and no handle holds it any more.
    Remove(SequenceHash),
}

impl KvCacheEvent {
    /// The hash the event is about.
    pub fn sequence_hash(&self) -> SequenceHash {
        match *self {
            KvCacheEvent::Create(h) | KvCacheEvent::Remove(h) => h,
        }
    }

    /// Whether this is a [`Create`](KvCacheEvent::Create).
    pub fn is_create(&self) -> bool {
        matches!(self, KvCacheEvent::Create(_))
    }
}

/// A batch of events of one kind, or the end of a worker's stream.
///
/// Creates are ordered by block position ascending (parents before
/// children), removes descending (children before parents), so that a
/// consumer building a prefix tree never sees an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCacheEvents {
    /// These hashes entered the registry.
    Create(Vec<SequenceHash>),
    /// These hashes left the registry.
    Remove(Vec<SequenceHash>),
    /// The publisher stopped: forget everything this instance announced.
    Shutdown,
}

impl KvCacheEvents {
    /// The number of hashes in the batch (0 for `Shutdown`).
    pub fn len(&self) -> usize {
        match self {
            KvCacheEvents::Create(h) | KvCacheEvents::Remove(h) => h.len(),
            KvCacheEvents::Shutdown => 0,
        }
    }

    /// Whether the batch carries no hash.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch as it travels between processes: the events and the instance
/// that produced them. Encoded with MessagePack (`rmp_serde`); see
/// [`wire`](super::wire) for the encoding with a batch sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvbmCacheEvents {
    /// The batched events.
    pub events: KvCacheEvents,
    /// The worker that produced them.
    pub instance_id: InstanceId,
}

/// What a registration knew about the tokens of its block: enough to
/// rebuild the block's place in a token-keyed prefix tree (Dynamo's KV
/// router keys blocks by the hash of their tokens and links them by
/// sequence hash).
///
/// Present on blocks staged with
/// [`MutableBlock::complete`](crate::MutableBlock::complete); absent on
/// blocks staged from a bare sequence hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockLineage {
    /// Hash of the block's tokens and salt
    /// ([`TokenBlock::block_hash`](crate::tokens::TokenBlock::block_hash)).
    pub block_hash: u64,
    /// 64-bit sequence hash of the parent block; `None` for a root block.
    pub parent_sequence_hash: Option<u64>,
}

impl BlockLineage {
    /// The lineage of `block`.
    pub fn of(block: &crate::tokens::TokenBlock) -> Self {
        Self {
            block_hash: block.block_hash(),
            parent_sequence_hash: block.parent_sequence_hash(),
        }
    }
}

/// A registry change with the lineage of the block behind it, delivered
/// unfiltered (every block, whatever the emission policy) by
/// [`EventsManager::subscribe_blocks`](super::EventsManager::subscribe_blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEvent {
    /// The change.
    pub event: KvCacheEvent,
    /// The block's lineage, when it entered the registry with its tokens
    /// known. Always `None` on removes.
    pub lineage: Option<BlockLineage>,
}
