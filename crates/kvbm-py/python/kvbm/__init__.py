"""kvbm: a logical KV-cache block manager for LLM inference, written in Rust.

The block manager (`BlockManager`) hands out blocks of the engine's KV memory,
remembers which blocks hold which token prefix, hands cached prefixes back to
later requests and evicts cached blocks when memory runs out. Blocks are
Python objects with the Rust guards' life cycle: `MutableBlock` ->
`CompleteBlock` -> `ImmutableBlock` <-> `WeakBlock`; a block returns to its
pool when released, as a context manager, or when garbage-collected.

`TokenBlockSequence` and the `compute_*` functions hash tokens exactly as the
Rust library does; `replay` runs the `kvbm replay` simulator.
"""

from ._kvbm import (
    CHAIN_SEED,
    EVICTION_POLICIES,
    BlockManager,
    BlockReleasedError,
    CompleteBlock,
    ImmutableBlock,
    ImmutableBlockList,
    MutableBlock,
    SequenceHashes,
    StatsCollector,
    TokenBlock,
    TokenBlockSequence,
    WeakBlock,
    compute_block_hash,
    compute_next_sequence_hash,
    compute_salt_hash,
    positional_lineage_hash,
    replay,
)

__all__ = [
    "CHAIN_SEED",
    "EVICTION_POLICIES",
    "BlockManager",
    "BlockReleasedError",
    "CompleteBlock",
    "ImmutableBlock",
    "ImmutableBlockList",
    "MutableBlock",
    "SequenceHashes",
    "StatsCollector",
    "TokenBlock",
    "TokenBlockSequence",
    "WeakBlock",
    "compute_block_hash",
    "compute_next_sequence_hash",
    "compute_salt_hash",
    "positional_lineage_hash",
    "replay",
]
