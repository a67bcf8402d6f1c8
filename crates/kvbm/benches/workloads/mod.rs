//! Benchmark workloads, written once and run by the criterion benches of this
//! crate and by the `kvbm-bench` comparison binary (which includes this file
//! with `#[path]`).
//!
//! A workload is generic over [`Pool`], a small adapter over a block
//! manager: build one with an eviction backend, hash a chain of blocks,
//! match a prefix, fill (allocate, stage and register) blocks. Every workload
//! is turned into a [`Workload`], whose [`run`](Workload::run) performs a
//! number of iterations on state prepared beforehand and returns the time
//! they took; setup is never timed.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tokens per block in every workload.
pub const BLOCK_SIZE: usize = 16;

/// Blocks in the managers of the churn workloads.
pub const CHURN_CAPACITY: usize = 1024;
/// Distinct system prompts shared by the churn requests.
pub const CHURN_PROMPTS: u64 = 8;
/// Blocks per system prompt.
pub const CHURN_PROMPT_BLOCKS: usize = 16;
/// Smallest and largest suffix, in blocks, after the system prompt.
pub const CHURN_SUFFIX_BLOCKS: (usize, usize) = (4, 28);
/// Requests whose blocks are held at once.
pub const CHURN_IN_FLIGHT: usize = 16;
/// Requests generated per churn stream (then replayed in a loop; by then
/// their suffixes have long been evicted).
pub const CHURN_REQUESTS: usize = 2048;

/// Tokens hashed by the hashing workload.
pub const HASH_TOKENS: usize = 4096;

/// The eviction backends of a manager (the library's own policy names
/// double as benchmark ids).
pub use kvbm::eviction::EvictionPolicy as Backend;

/// The operations the workloads need from a block manager.
pub trait Pool: Send + Sync + Sized + 'static {
    /// A block's sequence (positional lineage) hash.
    type Hash: Copy + Send + Sync + 'static;
    /// A held (registered, immutable) block.
    type Held: Send + 'static;

    /// A manager of `blocks` blocks of [`BLOCK_SIZE`] tokens.
    fn build(backend: Backend, blocks: usize) -> Self;
    /// The hash of a first block whose block hash is `block_hash`.
    fn root(block_hash: u64) -> Self::Hash;
    /// The hash of the block after `parent` whose block hash is `block_hash`.
    fn extend(parent: &Self::Hash, block_hash: u64) -> Self::Hash;
    /// Held blocks for the longest registered prefix of `hashes`.
    fn match_prefix(&self, hashes: &[Self::Hash]) -> Vec<Self::Held>;
    /// Allocates one block per hash (evicting cached blocks when needed),
    /// stages and registers them; `None` if there are not enough blocks.
    fn fill(&self, hashes: &[Self::Hash]) -> Option<Vec<Self::Held>>;
    /// Splits `tokens` into hashed blocks of [`BLOCK_SIZE`] and returns a
    /// value that depends on every hash (so nothing is optimised away).
    fn hash_tokens(tokens: &[u32]) -> u64;
    /// Gives back the blocks of a request (or of a match) that is done
    /// with them: dropped one by one, unless [`BATCH_RELEASE`] is on and
    /// the library has a batch release.
    fn release(held: Vec<Self::Held>) {
        drop(held);
    }
}

/// Whether [`Pool::release`] uses the library's batch release where it has
/// one (kvbm's `ImmutableBlock::release_all`; kvbm-logical has none). Off
/// unless kvbm-bench's `--batch-release` turns it on.
pub static BATCH_RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Something to time: each call performs `iters` iterations on prepared
/// state and returns how long they took.
pub trait Workload {
    /// Runs `iters` iterations; returns the time they took.
    fn run(&mut self, iters: u64) -> Duration;

    /// What the runs did, to check that two libraries did the same work
    /// (e.g. how many blocks a churn reused from the cache).
    // Read by kvbm-bench's table only; the criterion benches do not print it.
    #[allow(dead_code)]
    fn summary(&self) -> Option<String> {
        None
    }
}

/// A deterministic generator (SplitMix64), so that every library and every
/// run sees the same requests.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// The lineage hashes of a sequence of blocks with the given block hashes.
pub fn lineage<P: Pool>(block_hashes: impl IntoIterator<Item = u64>) -> Vec<P::Hash> {
    let mut out: Vec<P::Hash> = Vec::new();
    for b in block_hashes {
        let next = match out.last() {
            None => P::root(b),
            Some(parent) => P::extend(parent, b),
        };
        out.push(next);
    }
    out
}

/// A sequence of `n` blocks, distinct for each `seed`.
pub fn sequence<P: Pool>(seed: u64, n: usize) -> Vec<P::Hash> {
    lineage::<P>((0..n as u64).map(|i| (seed << 32) | i))
}

/// Fills `hashes` into `pool`, panicking if it does not fit.
fn fill_all<P: Pool>(pool: &P, hashes: &[P::Hash]) -> Vec<P::Held> {
    let held = pool
        .fill(hashes)
        .expect("the pool has room for the workload");
    assert_eq!(held.len(), hashes.len());
    held
}

/// Times `op` run `iters` times.
fn time_loop(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------
// Prefix match with every block held.

/// Matching a sequence of `n` blocks that are all held by someone else: the
/// match only hands out more references to active blocks.
pub struct MatchHeld<P: Pool> {
    pool: P,
    hashes: Vec<P::Hash>,
    _held: Vec<P::Held>,
}

impl<P: Pool> MatchHeld<P> {
    /// `n` registered and held blocks in an LRU manager of 1024 blocks.
    pub fn new(n: usize) -> Self {
        let pool = P::build(Backend::Lru, CHURN_CAPACITY);
        let hashes = sequence::<P>(1, n);
        let held = fill_all(&pool, &hashes);
        assert_eq!(pool.match_prefix(&hashes).len(), n);
        MatchHeld {
            pool,
            hashes,
            _held: held,
        }
    }
}

impl<P: Pool> Workload for MatchHeld<P> {
    fn run(&mut self, iters: u64) -> Duration {
        time_loop(iters, || {
            P::release(black_box(self.pool.match_prefix(black_box(&self.hashes))));
        })
    }
}

// ---------------------------------------------------------------------------
// Match that revives cached blocks, then releases them again.

/// Matching a sequence of `n` cached (registered, unheld) blocks and dropping
/// the result: each block leaves the eviction order and goes back into it.
pub struct MatchRevive<P: Pool> {
    pool: P,
    hashes: Vec<P::Hash>,
}

impl<P: Pool> MatchRevive<P> {
    /// `n` cached blocks in a manager of 1024 blocks using `backend`.
    pub fn new(backend: Backend, n: usize) -> Self {
        let pool = P::build(backend, CHURN_CAPACITY);
        let hashes = sequence::<P>(2, n);
        drop(fill_all(&pool, &hashes));
        assert_eq!(pool.match_prefix(&hashes).len(), n);
        MatchRevive { pool, hashes }
    }
}

impl<P: Pool> Workload for MatchRevive<P> {
    fn run(&mut self, iters: u64) -> Duration {
        time_loop(iters, || {
            P::release(black_box(self.pool.match_prefix(black_box(&self.hashes))));
        })
    }
}

// ---------------------------------------------------------------------------
// Dropping held blocks.

/// Dropping the only handles to `n` registered blocks, which returns them to
/// the eviction order. Only the drop is timed; the blocks are revived by a
/// match before each drop.
pub struct DropHeld<P: Pool> {
    pool: P,
    hashes: Vec<P::Hash>,
}

impl<P: Pool> DropHeld<P> {
    /// `n` cached blocks in a manager of 1024 blocks using `backend`.
    pub fn new(backend: Backend, n: usize) -> Self {
        let pool = P::build(backend, CHURN_CAPACITY);
        let hashes = sequence::<P>(3, n);
        drop(fill_all(&pool, &hashes));
        DropHeld { pool, hashes }
    }
}

impl<P: Pool> Workload for DropHeld<P> {
    fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let held = self.pool.match_prefix(&self.hashes);
            assert_eq!(held.len(), self.hashes.len());
            let start = Instant::now();
            P::release(black_box(held));
            total += start.elapsed();
        }
        total
    }
}

// ---------------------------------------------------------------------------
// Serving-like churn.

/// The lineage hashes of a stream of churn requests: one of
/// [`CHURN_PROMPTS`] shared system prompts of [`CHURN_PROMPT_BLOCKS`] blocks
/// followed by a fresh suffix of 4–28 blocks.
pub fn churn_requests<P: Pool>(seed: u64, count: usize) -> Vec<Vec<P::Hash>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let prompt = rng.next_u64() % CHURN_PROMPTS;
            let suffix = rng.range(CHURN_SUFFIX_BLOCKS.0, CHURN_SUFFIX_BLOCKS.1);
            let prompt_blocks = (0..CHURN_PROMPT_BLOCKS as u64).map(move |i| (prompt << 8) | i);
            // Suffix block hashes have a bit the prompt hashes never have.
            let suffix_blocks: Vec<u64> = (0..suffix).map(|_| rng.next_u64() | 1 << 63).collect();
            lineage::<P>(prompt_blocks.chain(suffix_blocks))
        })
        .collect()
}

/// One client of a churn workload: replays its requests, keeping the blocks
/// of the last `depth` requests held.
pub struct ChurnClient<P: Pool> {
    requests: Vec<Vec<P::Hash>>,
    next: usize,
    in_flight: VecDeque<Vec<P::Held>>,
    depth: usize,
    /// Blocks reused from a prefix match, over every step.
    pub reused: u64,
    /// Blocks allocated and registered, over every step.
    pub filled: u64,
}

impl<P: Pool> ChurnClient<P> {
    /// A client with its own request stream (from `seed`) and `depth`
    /// requests in flight.
    pub fn new(seed: u64, depth: usize) -> Self {
        ChurnClient {
            requests: churn_requests::<P>(seed, CHURN_REQUESTS),
            next: 0,
            in_flight: VecDeque::with_capacity(depth),
            depth,
            reused: 0,
            filled: 0,
        }
    }

    /// Serves one request: finishes the oldest request if `depth` are in
    /// flight, reuses the cached prefix, fills the rest of the blocks
    /// (evicting cached blocks under pressure) and holds them all.
    pub fn step(&mut self, pool: &P) {
        if self.in_flight.len() >= self.depth {
            if let Some(done) = self.in_flight.pop_front() {
                P::release(done);
            }
        }
        let hashes = &self.requests[self.next];
        self.next = (self.next + 1) % self.requests.len();
        let mut held = pool.match_prefix(hashes);
        self.reused += held.len() as u64;
        self.filled += (hashes.len() - held.len()) as u64;
        if held.len() < hashes.len() {
            let filled = pool
                .fill(&hashes[held.len()..])
                .expect("in-flight requests always fit in the pool");
            held.extend(filled);
        }
        self.in_flight.push_back(held);
    }

    /// Serves requests until the cache is full and evicting.
    pub fn warm_up(&mut self, pool: &P) {
        for _ in 0..CHURN_REQUESTS / 4 {
            self.step(pool);
        }
    }
}

/// The share of requested blocks found in the cache by `clients`.
// For `summary`: kvbm-bench's table only.
#[allow(dead_code)]
fn reuse_summary<'a, P: Pool>(clients: impl IntoIterator<Item = &'a ChurnClient<P>>) -> String {
    let (mut reused, mut filled) = (0, 0);
    for c in clients {
        reused += c.reused;
        filled += c.filled;
    }
    format!(
        "{:.1}% of {} blocks reused",
        100.0 * reused as f64 / (reused + filled).max(1) as f64,
        reused + filled
    )
}

/// The churn mix on one thread: [`CHURN_IN_FLIGHT`] requests in flight on a
/// manager of [`CHURN_CAPACITY`] blocks. One iteration is one request.
pub struct Churn<P: Pool> {
    pool: P,
    client: ChurnClient<P>,
}

impl<P: Pool> Churn<P> {
    /// A warmed-up churn workload on `backend`.
    pub fn new(backend: Backend) -> Self {
        let pool = P::build(backend, CHURN_CAPACITY);
        let mut client = ChurnClient::new(7, CHURN_IN_FLIGHT);
        client.warm_up(&pool);
        Churn { pool, client }
    }
}

impl<P: Pool> Workload for Churn<P> {
    fn run(&mut self, iters: u64) -> Duration {
        time_loop(iters, || self.client.step(&self.pool))
    }

    fn summary(&self) -> Option<String> {
        Some(reuse_summary([&self.client]))
    }
}

/// The churn mix from two threads sharing one manager, each with half of
/// [`CHURN_IN_FLIGHT`] requests in flight and its own request stream. One
/// iteration is one request on each thread; the time is wall-clock.
pub struct ChurnThreads<P: Pool> {
    pool: Arc<P>,
    clients: Vec<ChurnClient<P>>,
}

/// Threads of [`ChurnThreads`].
pub const CHURN_THREADS: usize = 2;

impl<P: Pool> ChurnThreads<P> {
    /// A warmed-up two-thread churn workload on `backend`.
    pub fn new(backend: Backend) -> Self {
        let pool = Arc::new(P::build(backend, CHURN_CAPACITY));
        let mut clients: Vec<ChurnClient<P>> = (0..CHURN_THREADS as u64)
            .map(|t| ChurnClient::new(11 + t, CHURN_IN_FLIGHT / CHURN_THREADS))
            .collect();
        for client in &mut clients {
            client.warm_up(&pool);
        }
        ChurnThreads { pool, clients }
    }
}

impl<P: Pool> Workload for ChurnThreads<P> {
    fn run(&mut self, iters: u64) -> Duration {
        let barrier = std::sync::Barrier::new(self.clients.len() + 1);
        std::thread::scope(|s| {
            for client in &mut self.clients {
                let pool = &*self.pool;
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for _ in 0..iters {
                        client.step(pool);
                    }
                });
            }
            barrier.wait();
            let start = Instant::now();
            // The scope joins the threads before returning.
            start
        })
        .elapsed()
    }

    fn summary(&self) -> Option<String> {
        Some(reuse_summary(&self.clients))
    }
}

// ---------------------------------------------------------------------------
// Hashing.

/// Splitting [`HASH_TOKENS`] tokens into hashed blocks of [`BLOCK_SIZE`].
pub struct Hashing<P: Pool> {
    tokens: Vec<u32>,
    _pool: std::marker::PhantomData<fn() -> P>,
}

impl<P: Pool> Hashing<P> {
    /// A fixed pseudo-random token sequence.
    pub fn new() -> Self {
        let mut rng = Rng::new(5);
        let tokens = (0..HASH_TOKENS)
            .map(|_| (rng.next_u64() % 128_000) as u32)
            .collect();
        Hashing {
            tokens,
            _pool: std::marker::PhantomData,
        }
    }
}

impl<P: Pool> Workload for Hashing<P> {
    fn run(&mut self, iters: u64) -> Duration {
        time_loop(iters, || {
            black_box(P::hash_tokens(black_box(&self.tokens)));
        })
    }
}

// ---------------------------------------------------------------------------
// The workload list.

/// Every workload, by kind and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Each bench binary builds only its own workloads from this shared list.
#[allow(dead_code)]
pub enum Spec {
    /// [`MatchHeld`] of n blocks.
    MatchHeld(usize),
    /// [`MatchRevive`] of n blocks.
    MatchRevive(Backend, usize),
    /// [`DropHeld`] of n blocks.
    DropHeld(Backend, usize),
    /// [`Churn`].
    Churn(Backend),
    /// [`ChurnThreads`].
    ChurnThreads(Backend),
    /// [`Hashing`].
    Hashing,
}

// `all`, `name` and `backend` drive kvbm-bench's table; the criterion
// benches name their own workloads.
#[allow(dead_code)]
impl Spec {
    /// Every workload of the comparison, in table order.
    pub fn all() -> Vec<Spec> {
        let mut out = vec![
            Spec::MatchHeld(8),
            Spec::MatchHeld(32),
            Spec::MatchHeld(128),
        ];
        for n in [8, 128] {
            out.extend(Backend::ALL.map(|b| Spec::MatchRevive(b, n)));
        }
        out.extend(Backend::ALL.map(|b| Spec::DropHeld(b, 128)));
        out.extend(Backend::ALL.map(Spec::Churn));
        out.push(Spec::ChurnThreads(Backend::Lru));
        out.push(Spec::Hashing);
        out
    }

    /// The criterion group this workload belongs to.
    pub fn group(&self) -> &'static str {
        match self {
            Spec::MatchHeld(_) => "match_held",
            Spec::MatchRevive(..) => "match_revive",
            Spec::DropHeld(..) => "drop_held",
            Spec::Churn(_) => "churn",
            Spec::ChurnThreads(_) => "churn_2_threads",
            Spec::Hashing => "hashing",
        }
    }

    /// The parameter within the group (backend and/or size).
    pub fn param(&self) -> String {
        match self {
            Spec::MatchHeld(n) => format!("{n}"),
            Spec::MatchRevive(b, n) | Spec::DropHeld(b, n) => format!("{}/{n}", b.name()),
            Spec::Churn(b) | Spec::ChurnThreads(b) => b.name().to_string(),
            Spec::Hashing => format!("{HASH_TOKENS}_tokens"),
        }
    }

    /// `group/param`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.group(), self.param())
    }

    /// Whether the workload runs on a manager with `backend` (the ones a
    /// library lacks are skipped).
    pub fn backend(&self) -> Option<Backend> {
        match self {
            Spec::MatchHeld(_) => Some(Backend::Lru),
            Spec::MatchRevive(b, _)
            | Spec::DropHeld(b, _)
            | Spec::Churn(b)
            | Spec::ChurnThreads(b) => Some(*b),
            Spec::Hashing => None,
        }
    }

    /// Sets the workload up on `P`.
    pub fn make<P: Pool>(&self) -> Box<dyn Workload> {
        match *self {
            Spec::MatchHeld(n) => Box::new(MatchHeld::<P>::new(n)),
            Spec::MatchRevive(b, n) => Box::new(MatchRevive::<P>::new(b, n)),
            Spec::DropHeld(b, n) => Box::new(DropHeld::<P>::new(b, n)),
            Spec::Churn(b) => Box::new(Churn::<P>::new(b)),
            Spec::ChurnThreads(b) => Box::new(ChurnThreads::<P>::new(b)),
            Spec::Hashing => Box::new(Hashing::<P>::new()),
        }
    }
}

// ---------------------------------------------------------------------------
// The adapter for kvbm.

/// The tier type of the benchmark managers.
#[derive(Clone, Debug)]
pub struct BenchTier;

impl Pool for kvbm::BlockManager<BenchTier> {
    type Hash = kvbm::SequenceHash;
    type Held = kvbm::ImmutableBlock<BenchTier>;

    fn build(backend: Backend, blocks: usize) -> Self {
        kvbm::BlockManager::<BenchTier>::builder()
            .block_count(blocks)
            .block_size(BLOCK_SIZE)
            .eviction_policy(backend)
            .frequency_tracking_capacity(kvbm::manager::FrequencyTrackingCapacity::Small)
            .build()
            .expect("valid benchmark manager")
    }

    fn root(block_hash: u64) -> Self::Hash {
        kvbm::SequenceHash::root(block_hash)
    }

    fn extend(parent: &Self::Hash, block_hash: u64) -> Self::Hash {
        parent.extend(block_hash)
    }

    fn match_prefix(&self, hashes: &[Self::Hash]) -> Vec<Self::Held> {
        self.match_blocks(hashes)
    }

    fn fill(&self, hashes: &[Self::Hash]) -> Option<Vec<Self::Held>> {
        let blocks = self.allocate_blocks(hashes.len())?;
        let staged = blocks
            .into_iter()
            .zip(hashes)
            .map(|(b, h)| b.stage(*h, BLOCK_SIZE).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(self.register_blocks(staged))
    }

    fn release(held: Vec<Self::Held>) {
        if BATCH_RELEASE.load(std::sync::atomic::Ordering::Relaxed) {
            kvbm::ImmutableBlock::release_all(held);
        } else {
            drop(held);
        }
    }

    fn hash_tokens(tokens: &[u32]) -> u64 {
        let seq = kvbm::tokens::TokenBlockSequence::from_slice(tokens, BLOCK_SIZE as u32, None);
        seq.blocks()
            .last()
            .map_or(0, |b| b.positional_lineage_hash().as_u128() as u64)
    }
}

/// The kvbm manager the workloads run on.
pub type Kvbm = kvbm::BlockManager<BenchTier>;
