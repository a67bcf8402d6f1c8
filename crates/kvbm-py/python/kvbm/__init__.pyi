"""Type stubs of the `kvbm` package (the Rust extension `kvbm._kvbm`)."""

import os
from types import TracebackType
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple, Type, TypeVar, Union, final, overload

_Self = TypeVar("_Self")

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

#: Names of the built-in eviction policies (`lru`, `multi-lru`, `lineage`, `fifo`, …).
EVICTION_POLICIES: List[str]
#: Seed of the sequence-hash chain.
CHAIN_SEED: int

class BlockReleasedError(RuntimeError):
    """A block object was used after it was released (explicitly, by its
    context manager, or by a transition that consumed it)."""

class _Releasable:
    @property
    def released(self) -> bool:
        """Whether the object was released or moved on to another state."""
    def release(self) -> None:
        """Returns what the object holds to the pool. Idempotent."""
    def __enter__(self: _Self) -> _Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

@final
class MutableBlock(_Releasable):
    """A block from `BlockManager.allocate`, to be filled and registered.
    Released, it goes back to the free pool."""
    @property
    def block_id(self) -> int:
        """The block's index in its pool."""
    @property
    def block_size(self) -> int:
        """Tokens the block holds."""
    def complete(self, token_block: TokenBlock) -> CompleteBlock:
        """Stages the block with a full token block's sequence hash (this
        object is spent); a size mismatch raises ValueError and keeps it."""
    def stage(self, sequence_hash: int, block_size: Optional[int] = None) -> CompleteBlock:
        """Stages the block under a 128-bit sequence hash."""

@final
class CompleteBlock(_Releasable):
    """A filled block waiting for `BlockManager.register`. Released, it goes
    back to the free pool."""
    @property
    def block_id(self) -> int:
        """The block's index in its pool."""
    @property
    def block_size(self) -> int:
        """Tokens the block holds."""
    @property
    def sequence_hash(self) -> int:
        """The sequence hash the block was staged with."""
    def reset(self) -> MutableBlock:
        """Discards the staged identity (this object is spent)."""

@final
class ImmutableBlock(_Releasable):
    """A handle on a registered block. The last handle released leaves the
    block cached and matchable until evicted."""
    @property
    def block_id(self) -> int:
        """The block's index in its pool."""
    @property
    def block_size(self) -> int:
        """Tokens the block holds."""
    @property
    def sequence_hash(self) -> int:
        """The sequence hash the block is registered under."""
    @property
    def use_count(self) -> int:
        """Live handles on the block, this one included."""
    def downgrade(self) -> WeakBlock:
        """A weak reference to the block."""
    def clone(self) -> ImmutableBlock:
        """Another handle on the same block."""
    def set_evict_on_reset(self, value: bool) -> None:
        """Whether the block is freed instead of cached when its last handle goes."""

@final
class WeakBlock:
    """A weak reference to a registered block; holds nothing."""
    @property
    def block_id(self) -> int:
        """The block's index in its pool."""
    @property
    def sequence_hash(self) -> int:
        """The sequence hash the block was registered under."""
    def upgrade(self) -> Optional[ImmutableBlock]:
        """A new handle while the block is registered (held or cached), else None."""

@final
class ImmutableBlockList(_Releasable, Sequence[ImmutableBlock]):
    """A request's registered blocks in order, held in Rust (what `match` and
    `register` return). Indexing and iteration give new handles."""
    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> ImmutableBlock:  # type: ignore[override]
        """A new handle on block `index` (no slices)."""
    def __iter__(self) -> Iterator[ImmutableBlock]: ...
    def block_ids(self) -> List[int]:
        """The blocks' ids in order (a paged-attention block table row)."""
    def sequence_hashes(self) -> SequenceHashes:
        """The blocks' sequence hashes in order."""
    def extend(self, other: ImmutableBlockList) -> None:
        """Moves every handle of `other` (same manager) to the end; `other` ends released."""

@final
class SequenceHashes(Sequence[int]):
    """An immutable list of 128-bit sequence hashes stored in Rust."""
    def __new__(cls, hashes: Optional[Iterable[int]] = None) -> SequenceHashes: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int, /) -> int: ...
    @overload
    def __getitem__(self, index: slice, /) -> SequenceHashes: ...
    def __iter__(self) -> Iterator[int]: ...
    def to_list(self) -> List[int]:
        """The hashes as a list of ints."""

_Hashes = Union[SequenceHashes, Iterable[int]]
_Block = Union[MutableBlock, CompleteBlock, ImmutableBlock, WeakBlock, ImmutableBlockList]

@final
class BlockManager:
    """A pool of KV-cache blocks: allocation, prefix registration, prefix
    matching and eviction of cached blocks. Bad arguments raise ValueError
    with the Rust library's message."""
    def __new__(
        cls,
        block_count: int,
        block_size: Optional[int] = None,
        policy: str = "lineage",
        duplication: str = "allow",
    ) -> BlockManager: ...
    @staticmethod
    def policies() -> List[str]:
        """The names of the built-in eviction policies."""
    def allocate(self, n: int) -> Optional[List[MutableBlock]]:
        """`n` blocks, or None (nothing allocated) if fewer are free or cached."""
    def match(self, hashes: _Hashes) -> ImmutableBlockList:
        """The longest registered prefix of `hashes`."""
    def register(
        self,
        blocks: Iterable[Union[MutableBlock, CompleteBlock]],
        token_blocks: Optional[Union[SequenceHashes, Iterable[Union[TokenBlock, int]]]] = None,
    ) -> ImmutableBlockList:
        """Stages (if needed) and registers blocks, all or nothing."""
    def block_ids(self, blocks: Union[ImmutableBlockList, Iterable[_Block]]) -> List[int]:
        """Block ids in order, as a list of ints."""
    def release(self, blocks: Union[ImmutableBlockList, Iterable[_Block]]) -> None:
        """Releases every block object or list in one call."""
    def metrics(self) -> dict[str, int]:
        """Every counter and gauge of the pool."""
    def stats_collector(self, window_size: int = 60) -> StatsCollector:
        """A StatsCollector over this pool's metrics (enabled)."""
    def validate(self) -> None:
        """Checks every invariant; raises RuntimeError on a violation."""
    def reset_inactive_pool(self) -> None:
        """Empties the cache into the free pool; RuntimeError if blocks are held."""
    @property
    def total_blocks(self) -> int: ...
    @property
    def available_blocks(self) -> int:
        """Free plus cached blocks."""
    @property
    def block_size(self) -> int: ...
    @property
    def policy(self) -> str: ...
    @property
    def duplication(self) -> str: ...

@final
class StatsCollector:
    """Rates, hit ratios and gradients derived from a pool's counters."""
    def sample(self) -> None:
        """Records a sample now."""
    def latest(self) -> Optional[dict[str, float]]:
        """The newest statistics, or None before the first sample."""
    def window(self, n: int) -> List[dict[str, float]]:
        """The newest `n` statistics, oldest first."""
    enabled: bool
    @property
    def window_size(self) -> int: ...

@final
class TokenBlock:
    """A full block of tokens and its block, sequence and lineage hashes."""
    def __new__(cls, tokens: Sequence[int], salt_hash: int = 0, parent: Optional[TokenBlock] = None) -> TokenBlock: ...
    @property
    def tokens(self) -> List[int]: ...
    @property
    def block_hash(self) -> int: ...
    @property
    def sequence_hash(self) -> int: ...
    @property
    def parent_sequence_hash(self) -> Optional[int]: ...
    @property
    def positional_lineage_hash(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def salt_hash(self) -> int: ...
    def __len__(self) -> int: ...

@final
class TokenBlockSequence:
    """Tokens split into full TokenBlocks plus a partial tail, hashed as in Rust."""
    def __new__(cls, tokens: Sequence[int], block_size: int, salt_hash: Optional[int] = None) -> TokenBlockSequence: ...
    def extend(self, tokens: Sequence[int]) -> Optional[Tuple[int, int]]:
        """Appends tokens; the range of blocks completed, or None."""
    def append(self, token: int) -> Optional[int]:
        """Appends a token; the index of the block completed, or None."""
    def truncate(self, length: int) -> None: ...
    def unwind(self, count: int) -> None: ...
    def pop(self) -> Optional[int]: ...
    def reset(self) -> None: ...
    @property
    def blocks(self) -> List[TokenBlock]: ...
    def block(self, index: int) -> TokenBlock: ...
    def sequence_hashes(self) -> SequenceHashes:
        """The full blocks' sequence hashes, for match and register."""
    def block_hashes(self) -> List[int]: ...
    def tokens(self) -> List[int]: ...
    @property
    def current_block_tokens(self) -> List[int]: ...
    @property
    def total_tokens(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def salt_hash(self) -> int: ...
    def __len__(self) -> int: ...

def compute_block_hash(tokens: Sequence[int], salt_hash: int = 0) -> int:
    """xxh3-64 of the tokens' little-endian bytes, seeded with the salt."""

def compute_salt_hash(payload: bytes) -> int:
    """The block-hash seed for a salt payload."""

def compute_next_sequence_hash(parent: int, block_hash: int) -> int:
    """One step of the sequence-hash chain."""

def positional_lineage_hash(sequence_hash: int, parent_sequence_hash: Optional[int], position: int) -> int:
    """Packs a 128-bit positional lineage hash."""

def replay(
    trace: Optional[Union[str, os.PathLike[str]]] = None,
    capacity_blocks: Optional[int] = None,
    block_size: int = 512,
    policy: str = "all",
    timing: str = "instant",
    requests: Optional[int] = None,
    seed: Optional[int] = None,
    report: bool = False,
) -> Any:
    """`kvbm replay --json` from Python: the per-policy results as a list of
    dicts (the whole report as a dict with `report=True`)."""
