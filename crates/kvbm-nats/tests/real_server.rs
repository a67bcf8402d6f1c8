//! kvbm-nats against a real `nats-server` on 127.0.0.1: ground truth after
//! quiescence, server crash and restart, consumer restart, garbage on the
//! subject. Each test runs a few seconds and a few thousand small messages.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{settle, NatsServer, Worker};
use futures_util::future::join_all;
use kvbm_nats::{ClusterSubscriber, SubscriberConfig, DEFAULT_SUBJECT};
use kvbm_router::ClusterIndex;
use parking_lot::Mutex;

async fn consumer(url: &str) -> ClusterSubscriber {
    let (client, reconnects) = kvbm_nats::connect(url).await.expect("consumer connects");
    ClusterSubscriber::start(
        client,
        Arc::new(Mutex::new(ClusterIndex::new())),
        SubscriberConfig::default(),
        Some(reconnects),
    )
    .await
    .expect("consumer subscribes")
}

async fn workers(url: &str, n: u128) -> Vec<Worker> {
    let mut out = Vec::new();
    for id in 1..=n {
        out.push(Worker::start(url, id).await);
    }
    out
}

async fn work(workers: &mut [Worker], ops: usize) {
    join_all(workers.iter_mut().map(|w| w.work(ops))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_index_equals_registries_after_quiescence() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let sub = consumer(&server.url()).await;
    let mut ws = workers(&server.url(), 3).await;
    work(&mut ws, 400).await;
    settle(sub.index(), &ws)
        .await
        .expect("index equals ground truth");
    let stats = sub.stats();
    assert!(stats.events.load(Ordering::Relaxed) > 100);
    assert_eq!(stats.malformed.load(Ordering::Relaxed), 0);
    assert_eq!(stats.gaps.load(Ordering::Relaxed), 0);
    // A worker that stops publishes Shutdown: its entries go.
    let last = ws.pop().expect("three workers");
    last.publisher
        .expect("running")
        .stop()
        .await
        .expect("publisher task");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sub.index().lock().instances().any(|i| i == last.id) {
        assert!(std::time::Instant::now() < deadline, "shutdown not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sub.index().lock().instance_len(last.id), 0);
    settle(sub.index(), &ws).await.expect("others unaffected");
}

/// Kills the server mid-stream and restarts it on the same port. With
/// `resync_on_reconnect` off, only the gaps in the sequence numbers can
/// tell the consumer it lost batches.
async fn kill_and_restart_server(resync_on_reconnect: bool) {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let (client, reconnects) = kvbm_nats::connect(&server.url())
        .await
        .expect("consumer connects");
    let sub = ClusterSubscriber::start(
        client,
        Arc::new(Mutex::new(ClusterIndex::new())),
        SubscriberConfig::default(),
        resync_on_reconnect.then_some(reconnects),
    )
    .await
    .expect("consumer subscribes");
    // Small buffers, so that batches are lost while the server is away.
    let mut ws = Vec::new();
    for id in 1..=3 {
        ws.push(Worker::start_with_buffers(&server.url(), id, 4, 4).await);
    }
    work(&mut ws, 150).await;
    server.kill();
    // Work goes on while the server is away: batches queue or get lost.
    work(&mut ws, 150).await;
    server.restart();
    work(&mut ws, 150).await;
    settle(sub.index(), &ws)
        .await
        .expect("index equals ground truth after restart");
    let stats = sub.stats();
    let dropped: u64 = ws
        .iter()
        .map(|w| w.nats.stats().dropped.load(Ordering::Relaxed))
        .sum();
    assert!(
        dropped > 0,
        "workers dropped batches while the server was away"
    );
    assert!(stats.snapshots_applied.load(Ordering::Relaxed) >= 1);
    if resync_on_reconnect {
        assert!(stats.reconnects.load(Ordering::Relaxed) >= 1);
    } else {
        assert_eq!(stats.reconnects.load(Ordering::Relaxed), 0);
        assert!(stats.gaps.load(Ordering::Relaxed) >= 1);
        assert!(stats.batches_lost.load(Ordering::Relaxed) >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_stream_gap_detected_and_resynced_by_snapshot() {
    kill_and_restart_server(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_stream_consumer_resyncs_all_on_reconnect() {
    kill_and_restart_server(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_and_restarted_catches_up() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let sub = consumer(&server.url()).await;
    let mut ws = workers(&server.url(), 3).await;
    work(&mut ws, 150).await;
    drop(sub);
    work(&mut ws, 100).await;
    // A new consumer hears every worker mid-stream and asks for snapshots.
    let sub = consumer(&server.url()).await;
    work(&mut ws, 150).await;
    settle(sub.index(), &ws)
        .await
        .expect("new consumer equals ground truth");
    assert!(sub.stats().snapshots_applied.load(Ordering::Relaxed) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_foreign_messages_do_not_disturb_the_index() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let sub = consumer(&server.url()).await;
    let mut ws = workers(&server.url(), 3).await;
    let (noise, _) = kvbm_nats::connect(&server.url()).await.expect("connects");
    let valid = kvbm::events::wire::encode(
        &kvbm::events::KvbmCacheEvents {
            events: kvbm::events::KvCacheEvents::Create(common::sequence(3)),
            instance_id: 1,
        },
        1,
    )
    .expect("encodes");
    let garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello".to_vec(),
        br#"{"events":{"Create":[1,2]},"instance_id":1}"#.to_vec(),
        vec![0xc1; 16],
        valid[..valid.len() / 2].to_vec(),
        rmp_serde::to_vec_named(&("not", "a", "batch")).expect("encodes"),
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
    ];
    let rounds = 5;
    for _ in 0..rounds {
        for g in &garbage {
            noise
                .publish(DEFAULT_SUBJECT, g.clone().into())
                .await
                .expect("publish");
        }
        work(&mut ws, 60).await;
    }
    noise.flush().await.expect("flush");
    settle(sub.index(), &ws)
        .await
        .expect("index equals ground truth");
    assert_eq!(
        sub.stats().malformed.load(Ordering::Relaxed),
        (rounds * garbage.len()) as u64
    );
}
