//! Export to Dynamo's KV router: registry changes as the router's own
//! `RouterEvent`s (crate `dynamo-kv-router` 1.6.1), in JSON or MessagePack
//! with named fields, as the router reads them.
//!
//! The router keeps, per worker, a prefix tree keyed by the hash of each
//! block's tokens (`tokens_hash`, xxh3 with the router's default seed 1337:
//! our [`TokenBlock::block_hash`](crate::tokens::TokenBlock::block_hash) for
//! sequences built with salt 1337) and linked by sequence hash (`block_hash`,
//! our 64-bit [`SequenceHash64`](crate::tokens::SequenceHash64): the
//! [`current_sequence_hash`](crate::tokens::PositionalLineageHash::current_sequence_hash)
//! of the 128-bit [`SequenceHash`] the registry
//! reports, which is where the two meet). It drops a stored block whose parent it does
//! not hold, and a removed block may take its descendants with it. So the
//! exporter keeps the router's view of a worker equal to *the registered
//! blocks reachable from a root through registered blocks*, which is what
//! a prefix match on the worker finds:
//!
//! - a block is exported (`stored`) when it is registered and its parent is
//!   exported (or it is a root), contiguous from the root, every block, not
//!   a policy's subset;
//! - when an exported block is removed, it and its exported descendants are
//!   withdrawn (`removed`); descendants still registered are remembered and
//!   exported again, in one `stored` chain, if the block comes back;
//! - consecutive exported blocks that extend one chain share one `stored`
//!   event.
//!
//! **Blocks registered without tokens** (staged from a bare sequence hash
//! with [`MutableBlock::stage`](crate::MutableBlock::stage), or registered
//! as handles with
//! [`BlockRegistry::register_sequence_hash`](crate::BlockRegistry::register_sequence_hash)
//! before any block held them) have no tokens hash, so the router could
//! never match them: they are not exported, and neither are the blocks
//! below them, until they leave the registry and come back with tokens.
//! [`DynamoKvExporter::blocks_without_tokens`] counts them.
//!
//! The exporter feeds on [`EventsManager::subscribe_blocks`](super::EventsManager::subscribe_blocks).
//! If that subscription reports lost events, call
//! [`DynamoKvExporter::resync`]: it clears the worker in the router and
//! exports again what is still registered.

use serde::{Deserialize, Serialize};

use super::protocol::{BlockEvent, BlockLineage, KvCacheEvent};
use crate::prehashed::PrehashedMap;
use crate::SequenceHash;

/// Which hashes a registry still holds: all [`DynamoKvExporter::resync`]
/// asks of it.
///
/// A trait rather than [`BlockRegistry`](crate::BlockRegistry) itself
/// because the registry sits above the events layer (it emits through it);
/// the registry implements it, so `exporter.resync(&registry, &mut out)`
/// reads as before.
pub trait RegisteredHashes {
    /// Whether a block is registered under `hash`.
    fn is_registered(&self, hash: SequenceHash) -> bool;
}

impl<R: RegisteredHashes + ?Sized> RegisteredHashes for &R {
    fn is_registered(&self, hash: SequenceHash) -> bool {
        (**self).is_registered(hash)
    }
}

/// `RouterEvent` of dynamo-kv-router: one cache event of one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterEvent {
    /// The worker the event is about.
    pub worker_id: u64,
    /// Where the blocks live; kvbm exports one tier per exporter.
    #[serde(default)]
    pub storage_tier: StorageTier,
    /// The event.
    pub event: RouterCacheEvent,
}

/// The router's storage tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageTier {
    /// GPU memory.
    #[default]
    Device,
    /// Pinned host memory.
    HostPinned,
    /// Local disk.
    Disk,
    /// Remote storage.
    External,
}

/// The router's `KvCacheEvent`: an event with its per-worker id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterCacheEvent {
    /// Increases by one per event of the worker, from 0.
    pub event_id: u64,
    /// What happened.
    pub data: RouterEventData,
    /// Data-parallel rank of the worker (0 without data parallelism).
    #[serde(default)]
    pub dp_rank: u32,
}

/// The router's `KvCacheEventData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterEventData {
    /// A chain of blocks was stored.
    Stored(StoredBlocks),
    /// Blocks were removed.
    Removed(RemovedBlocks),
    /// The worker holds nothing any more.
    Cleared,
}

/// A chain of stored blocks, each the child of the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlocks {
    /// Sequence hash of the first block's parent; `None` for a root.
    pub parent_hash: Option<u64>,
    /// Position of the first block (0 for a root).
    pub start_position: Option<u32>,
    /// The blocks, parent first.
    pub blocks: Vec<StoredBlock>,
}

/// One stored block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlock {
    /// The block's 64-bit sequence hash.
    pub block_hash: u64,
    /// The hash of the block's tokens (seed 1337).
    pub tokens_hash: u64,
    /// Multimodal details; kvbm exports none (`null`).
    pub mm_extra_info: Option<()>,
}

/// Removed blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedBlocks {
    /// Sequence hashes of the removed blocks, deepest first.
    pub block_hashes: Vec<u64>,
}

/// A router event that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum RouterWireError {
    /// JSON.
    #[error("router event JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// MessagePack encoding.
    #[error("router event MessagePack: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// MessagePack decoding.
    #[error("router event MessagePack: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

impl RouterEvent {
    /// JSON, as the router reads it.
    pub fn to_json(&self) -> Result<Vec<u8>, RouterWireError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// MessagePack with named fields, as the router reads it.
    pub fn to_msgpack(&self) -> Result<Vec<u8>, RouterWireError> {
        Ok(rmp_serde::to_vec_named(self)?)
    }

    /// Decodes [`to_json`](Self::to_json)'s output.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RouterWireError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Decodes [`to_msgpack`](Self::to_msgpack)'s output.
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, RouterWireError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}

/// What the exporter knows of one registered block.
#[derive(Debug, Clone, Copy)]
struct Known {
    hash: SequenceHash,
    lineage: Option<BlockLineage>,
    exported: bool,
}

/// Turns one worker's registry changes into router events; see the
/// [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use kvbm::events::dynamo::{DynamoKvExporter, RouterEventData};
/// use kvbm::events::EventsManager;
/// use kvbm::manager::BlockManager;
/// use kvbm::tokens::TokenBlockSequence;
/// use kvbm::BlockRegistry;
///
/// #[derive(Clone)]
/// struct Device;
///
/// let events = Arc::new(EventsManager::builder().build());
/// let mut feed = events.subscribe_blocks();
/// let registry = BlockRegistry::builder().event_manager(events).build();
/// let manager = BlockManager::<Device>::builder()
///     .block_count(8)
///     .block_size(4)
///     .registry(registry)
///     .build()?;
///
/// let seq = TokenBlockSequence::try_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8], 4, Some(1337))?;
/// let staged = manager
///     .allocate_blocks(2)
///     .ok_or("pool exhausted")?
///     .into_iter()
///     .zip(seq.blocks())
///     .map(|(block, tokens)| block.complete(tokens))
///     .collect::<Result<Vec<_>, _>>()?;
/// let _held = manager.register_blocks(staged);
///
/// let mut exporter = DynamoKvExporter::new(42);
/// let mut out = Vec::new();
/// while let Some(event) = feed.try_recv() {
///     exporter.apply(event?, &mut out);
/// }
/// exporter.flush(&mut out);
/// // One `stored` event holding the whole two-block chain.
/// assert_eq!(out.len(), 1);
/// let RouterEventData::Stored(stored) = &out[0].event.data else { panic!() };
/// assert_eq!(stored.blocks.len(), 2);
/// assert_eq!(stored.parent_hash, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DynamoKvExporter {
    worker_id: u64,
    dp_rank: u32,
    storage_tier: StorageTier,
    next_event_id: u64,
    /// Registered blocks by 64-bit sequence hash.
    known: PrehashedMap<u64, Known>,
    /// Registered blocks with known lineage, by parent sequence hash.
    children: PrehashedMap<u64, Vec<u64>>,
    /// The `stored` chain being built, flushed when a block does not extend it.
    run: Option<StoredBlocks>,
    without_tokens: u64,
    stack: Vec<u64>,
}

impl DynamoKvExporter {
    /// An exporter for worker `worker_id` (data-parallel rank 0, device tier).
    pub fn new(worker_id: u64) -> Self {
        Self {
            worker_id,
            dp_rank: 0,
            storage_tier: StorageTier::Device,
            next_event_id: 0,
            known: PrehashedMap::default(),
            children: PrehashedMap::default(),
            run: None,
            without_tokens: 0,
            stack: Vec::new(),
        }
    }

    /// Sets the data-parallel rank the events carry.
    pub fn with_dp_rank(mut self, dp_rank: u32) -> Self {
        self.dp_rank = dp_rank;
        self
    }

    /// Sets the storage tier the events carry.
    pub fn with_storage_tier(mut self, tier: StorageTier) -> Self {
        self.storage_tier = tier;
        self
    }

    /// Blocks that entered the registry without tokens (never exported).
    pub fn blocks_without_tokens(&self) -> u64 {
        self.without_tokens
    }

    /// The number of blocks the router currently holds for this worker.
    pub fn exported_count(&self) -> usize {
        self.known.values().filter(|k| k.exported).count()
    }

    /// Applies one registry change, appending the router events it causes
    /// to `out`. A `stored` chain may stay open for the next block to
    /// extend: call [`flush`](Self::flush) after the last event of a batch.
    pub fn apply(&mut self, event: BlockEvent, out: &mut Vec<RouterEvent>) {
        match event.event {
            KvCacheEvent::Create(hash) => self.created(hash, event.lineage, out),
            KvCacheEvent::Remove(hash) => self.removed(hash, out),
        }
    }

    /// Emits the open `stored` chain, if any.
    pub fn flush(&mut self, out: &mut Vec<RouterEvent>) {
        if let Some(run) = self.run.take() {
            self.emit(RouterEventData::Stored(run), out);
        }
    }

    /// The event telling the router this worker holds nothing (for instance
    /// when it shuts down). The exporter forgets what it exported.
    pub fn clear(&mut self, out: &mut Vec<RouterEvent>) {
        self.run = None;
        for known in self.known.values_mut() {
            known.exported = false;
        }
        self.emit(RouterEventData::Cleared, out);
    }

    /// Recovers from lost events: clears the worker in the router, forgets
    /// blocks `registry` no longer holds, and exports again every block it
    /// still holds whose lineage is known. Blocks registered during the
    /// loss are unknown and treated as registered without tokens.
    pub fn resync<R: RegisteredHashes + ?Sized>(
        &mut self,
        registry: &R,
        out: &mut Vec<RouterEvent>,
    ) {
        self.clear(out);
        let gone: Vec<u64> = self
            .known
            .iter()
            .filter(|(_, k)| !registry.is_registered(k.hash))
            .map(|(&h, _)| h)
            .collect();
        for hash in gone {
            self.forget(hash);
        }
        let mut roots: Vec<(u64, u64)> = self
            .known
            .iter()
            .filter(|(_, k)| k.lineage.is_some_and(|l| l.parent_sequence_hash.is_none()))
            .map(|(&h, k)| (k.hash.position(), h))
            .collect();
        roots.sort_unstable();
        for (_, root) in roots {
            self.export_subtree(root, out);
        }
        self.flush(out);
    }

    fn created(
        &mut self,
        hash: SequenceHash,
        lineage: Option<BlockLineage>,
        out: &mut Vec<RouterEvent>,
    ) {
        let key = hash.current_sequence_hash();
        self.known.insert(
            key,
            Known {
                hash,
                lineage,
                exported: false,
            },
        );
        let Some(lineage) = lineage else {
            self.without_tokens += 1;
            return;
        };
        let parent_exported = match lineage.parent_sequence_hash {
            None => true,
            Some(parent) => {
                self.children.entry(parent).or_default().push(key);
                self.known.get(&parent).is_some_and(|p| p.exported)
            }
        };
        if parent_exported {
            self.export_subtree(key, out);
        }
    }

    /// Exports `root` and every registered, unexported descendant with
    /// known lineage, parents before children.
    fn export_subtree(&mut self, root: u64, out: &mut Vec<RouterEvent>) {
        let mut stack = std::mem::take(&mut self.stack);
        stack.push(root);
        while let Some(key) = stack.pop() {
            let Some(known) = self.known.get_mut(&key) else {
                continue;
            };
            let Some(lineage) = known.lineage else {
                continue;
            };
            if known.exported {
                continue;
            }
            known.exported = true;
            let position = known.hash.position();
            self.extend_run(key, position, lineage, out);
            if let Some(kids) = self.children.get(&key) {
                stack.extend(kids.iter().rev());
            }
        }
        self.stack = stack;
    }

    fn extend_run(
        &mut self,
        key: u64,
        position: u64,
        lineage: BlockLineage,
        out: &mut Vec<RouterEvent>,
    ) {
        let block = StoredBlock {
            block_hash: key,
            tokens_hash: lineage.block_hash,
            mm_extra_info: None,
        };
        let extends = self.run.as_ref().is_some_and(|run| {
            run.blocks.last().map(|b| b.block_hash) == lineage.parent_sequence_hash
        });
        if extends {
            if let Some(run) = &mut self.run {
                run.blocks.push(block);
            }
            return;
        }
        self.flush(out);
        self.run = Some(StoredBlocks {
            parent_hash: lineage.parent_sequence_hash,
            start_position: u32::try_from(position).ok(),
            blocks: vec![block],
        });
    }

    fn removed(&mut self, hash: SequenceHash, out: &mut Vec<RouterEvent>) {
        let key = hash.current_sequence_hash();
        let Some(known) = self.known.get(&key).copied() else {
            return;
        };
        if known.exported {
            // Withdraw the block and what the router reached through it.
            self.flush(out);
            let mut withdrawn = Vec::new();
            let mut stack = std::mem::take(&mut self.stack);
            stack.push(key);
            while let Some(k) = stack.pop() {
                let Some(node) = self.known.get_mut(&k) else {
                    continue;
                };
                if !node.exported {
                    continue;
                }
                node.exported = false;
                withdrawn.push((node.hash.position(), k));
                if let Some(kids) = self.children.get(&k) {
                    stack.extend(kids.iter());
                }
            }
            self.stack = stack;
            withdrawn.sort_unstable_by(|a, b| b.cmp(a));
            let block_hashes = withdrawn.into_iter().map(|(_, k)| k).collect();
            self.emit(
                RouterEventData::Removed(RemovedBlocks { block_hashes }),
                out,
            );
        }
        self.forget(key);
    }

    fn forget(&mut self, key: u64) {
        let Some(known) = self.known.remove(&key) else {
            return;
        };
        if let Some(parent) = known.lineage.and_then(|l| l.parent_sequence_hash) {
            if let Some(siblings) = self.children.get_mut(&parent) {
                siblings.retain(|&c| c != key);
                if siblings.is_empty() {
                    self.children.remove(&parent);
                }
            }
        }
    }

    fn emit(&mut self, data: RouterEventData, out: &mut Vec<RouterEvent>) {
        out.push(RouterEvent {
            worker_id: self.worker_id,
            storage_tier: self.storage_tier,
            event: RouterCacheEvent {
                event_id: self.next_event_id,
                data,
                dp_rank: self.dp_rank,
            },
        });
        self.next_event_id += 1;
    }
}
