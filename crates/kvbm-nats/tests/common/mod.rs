//! A `nats-server` on 127.0.0.1 for the integration tests, and workers
//! doing random work with events published over it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvbm::events::{AllEventsPolicy, BatchingConfig, EventsManager, KvbmCacheEventsPublisher};
use kvbm::manager::BlockManager;
use kvbm::{BlockRegistry, ImmutableBlock, SequenceHash};
use kvbm_nats::{NatsPublisher, SnapshotResponder, DEFAULT_SNAPSHOT_PREFIX};
use kvbm_router::ClusterIndex;
use parking_lot::Mutex;

fn server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// A running `nats-server`, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    binary: PathBuf,
    /// The port it listens on (127.0.0.1 only).
    pub port: u16,
}

impl NatsServer {
    /// Starts a server on a free port; `None` (after a loud message) when
    /// `nats-server` is not installed, except under `CI=true`, where that
    /// is a failure.
    pub fn start() -> Option<Self> {
        let Some(binary) = server_binary() else {
            let msg = "nats-server not found: SKIPPING this NATS integration test \
                       (install it with `apt-get install nats-server`)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg} — but CI=true, where the server must be installed");
            }
            eprintln!("\n\n!!!!!!!! {msg} !!!!!!!!\n");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            child: None,
            binary,
            port,
        };
        server.restart();
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = Command::new(&self.binary)
                .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server starts");
            self.child = Some(child);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return;
                }
                if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                    break; // exited (port still held by the old one?): retry
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(Instant::now() < deadline, "nats-server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Debug)]
pub struct Device;

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Sequence `s` of 12 blocks; sequences share prefixes by pairs.
pub fn sequence(s: u64) -> Vec<SequenceHash> {
    let mut h = SequenceHash::root(500 + s / 2);
    let mut out = vec![h];
    for i in 1..12u64 {
        let block = if i < 4 { i } else { 1000 * s + i };
        h = h.extend(block);
        out.push(h);
    }
    out
}

/// A block manager whose events go to NATS, answering snapshot requests.
pub struct Worker {
    pub id: u128,
    pub manager: BlockManager<Device>,
    pub registry: BlockRegistry,
    pub publisher: Option<KvbmCacheEventsPublisher>,
    pub nats: Arc<NatsPublisher>,
    _responder: SnapshotResponder,
    held: Vec<Vec<ImmutableBlock<Device>>>,
    rng: Rng,
}

impl Worker {
    pub async fn start(url: &str, id: u128) -> Self {
        Self::start_with_buffers(url, id, 2048, kvbm_nats::DEFAULT_QUEUE).await
    }

    /// A worker whose client buffers at most `client_capacity` commands and
    /// whose publisher queues at most `queue` messages: while the server is
    /// away, batches beyond those are dropped (sequence numbers spent).
    pub async fn start_with_buffers(
        url: &str,
        id: u128,
        client_capacity: usize,
        queue: usize,
    ) -> Self {
        let options = async_nats::ConnectOptions::new().client_capacity(client_capacity);
        let (client, _) = kvbm_nats::connect_with_options(url, options)
            .await
            .expect("worker connects");
        let events = Arc::new(
            EventsManager::builder()
                .policy(Arc::new(AllEventsPolicy::new()))
                .channel_capacity(1 << 16)
                .build(),
        );
        let stream = events.subscribe();
        let registry = BlockRegistry::builder().event_manager(events).build();
        let manager = BlockManager::<Device>::builder()
            .registry(registry.clone())
            .block_count(24)
            .block_size(4)
            .build()
            .expect("valid settings");
        let nats = Arc::new(NatsPublisher::with_queue(client.clone(), queue));
        let publisher = KvbmCacheEventsPublisher::builder()
            .instance_id(id)
            .event_stream(stream)
            .publisher(Arc::clone(&nats))
            .batching_config(BatchingConfig::default().with_window(Duration::from_millis(2)))
            .build()
            .expect("publisher settings");
        let responder = SnapshotResponder::for_registry(
            client,
            DEFAULT_SNAPSHOT_PREFIX,
            id,
            registry.clone(),
            Arc::clone(publisher.stats()),
        )
        .await
        .expect("responder subscribes");
        Self {
            id,
            manager,
            registry,
            publisher: Some(publisher),
            nats,
            _responder: responder,
            held: Vec::new(),
            rng: Rng(id as u64 * 7919 + 1),
        }
    }

    /// `ops` random operations, pausing between them.
    pub async fn work(&mut self, ops: usize) {
        for _ in 0..ops {
            match self.rng.below(10) {
                0..=3 => {
                    let seq = sequence(self.rng.below(8));
                    let len = 1 + self.rng.below(12) as usize;
                    let matched = self.manager.match_blocks(&seq[..len]);
                    let have = matched.len();
                    self.held.push(matched);
                    if let Some(blocks) = self.manager.allocate_blocks(len - have) {
                        let staged = blocks
                            .into_iter()
                            .zip(&seq[have..len])
                            .map(|(b, &h)| b.stage(h, 4).expect("block size"))
                            .collect();
                        self.held.push(self.manager.register_blocks(staged));
                    }
                }
                4..=7 => {
                    if !self.held.is_empty() {
                        let i = self.rng.below(self.held.len() as u64) as usize;
                        self.held.swap_remove(i);
                    }
                }
                _ => {
                    let n = 1 + self.rng.below(8) as usize;
                    drop(self.manager.allocate_blocks(n));
                }
            }
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
        // Keep some blocks cached, release the rest.
        self.held.truncate(2);
    }

    /// What the index should hold for this worker.
    pub fn truth(&self) -> Vec<SequenceHash> {
        let mut v = self.registry.announced_hashes();
        v.sort();
        v
    }
}

/// Waits (at most 15 s) until the index holds exactly each worker's
/// announced hashes and nobody awaits a snapshot; returns the last
/// mismatch description if it never does.
pub async fn settle(index: &Arc<Mutex<ClusterIndex>>, workers: &[Worker]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mismatch = {
            let index = index.lock();
            let mut bad = None;
            for w in workers {
                let mut got = index.instance_hashes(w.id);
                got.sort();
                let want = w.truth();
                if got != want {
                    bad = Some(format!(
                        "worker {}: index has {} hashes, registry {}",
                        w.id,
                        got.len(),
                        want.len()
                    ));
                    break;
                }
            }
            if bad.is_none() && index.awaiting_snapshot().count() > 0 {
                bad = Some("an instance still awaits a snapshot".to_owned());
            }
            bad
        };
        match mismatch {
            None => return Ok(()),
            Some(m) if Instant::now() > deadline => return Err(m),
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
