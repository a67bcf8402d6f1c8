//! Batching rules of `kvbm::events` (close on change of kind, at maximum
//! size, when the window passes, at the end of the stream; creates sorted by
//! position ascending, removes descending), the publisher task, and exact
//! loss counts for slow subscribers.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvbm::events::{
    BatchAssembler, BatchingConfig, EventStreamRecvError, EventsManager, KvCacheEvent,
    KvCacheEvents, KvbmCacheEvents, PowerOfTwoPolicy,
};
use kvbm::{BlockRegistry, SequenceHash};
use proptest::prelude::*;

fn at(position: u64, salt: u64) -> SequenceHash {
    SequenceHash::new(
        salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        Some(salt),
        position,
    )
}

#[derive(Debug, Clone)]
struct Step {
    create: bool,
    position: u64,
    /// Time since the previous event, in ms.
    gap_ms: u64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<bool>(),
        0u64..64,
        prop_oneof![3 => Just(0u64), 2 => 0u64..15],
    )
        .prop_map(|(create, position, gap_ms)| Step {
            create,
            position,
            gap_ms,
        })
}

fn kind_and_hashes(batch: &KvbmCacheEvents) -> (bool, &[SequenceHash]) {
    match &batch.events {
        KvCacheEvents::Create(h) => (true, h),
        KvCacheEvents::Remove(h) => (false, h),
        KvCacheEvents::Shutdown => panic!("the assembler never makes Shutdown"),
    }
}

proptest! {
    #[test]
    fn assembler_follows_the_close_rules(
        steps in prop::collection::vec(step(), 1..120),
        max in 1usize..9,
        window_ms in 1u64..20,
    ) {
        let config = BatchingConfig::default()
            .with_window(Duration::from_millis(window_ms))
            .with_max_size(NonZeroUsize::new(max).unwrap());
        let mut assembler = BatchAssembler::new(config, 77);
        let start = Instant::now();
        let mut now = start;
        // (batch, arrival times of its events)
        let mut out: Vec<KvbmCacheEvents> = Vec::new();
        let mut arrivals: Vec<(Instant, KvCacheEvent)> = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            now += Duration::from_millis(s.gap_ms);
            out.extend(assembler.poll_deadline(now));
            let h = at(s.position, i as u64);
            let event = if s.create { KvCacheEvent::Create(h) } else { KvCacheEvent::Remove(h) };
            arrivals.push((now, event));
            out.extend(assembler.push(event, now));
        }
        out.extend(assembler.finish());
        prop_assert!(assembler.finish().is_none());

        // Every event in exactly one batch, batches in arrival order.
        let mut next = 0;
        let mut previous: Option<(bool, usize, Instant)> = None;
        for batch in &out {
            prop_assert_eq!(batch.instance_id, 77);
            let (create, hashes) = kind_and_hashes(batch);
            prop_assert!(!hashes.is_empty() && hashes.len() <= max);
            let members = &arrivals[next..next + hashes.len()];
            next += hashes.len();
            // One kind per batch, and the same hashes as arrived.
            prop_assert!(members.iter().all(|(_, e)| e.is_create() == create));
            let mut arrived: Vec<SequenceHash> = members.iter().map(|(_, e)| e.sequence_hash()).collect();
            let mut got = hashes.to_vec();
            arrived.sort_by_key(|h| h.as_u128());
            got.sort_by_key(|h| h.as_u128());
            prop_assert_eq!(arrived, got);
            // Sorted by position: creates ascending, removes descending.
            let positions: Vec<u64> = hashes.iter().map(|h| h.position()).collect();
            if create {
                prop_assert!(positions.windows(2).all(|w| w[0] <= w[1]));
            } else {
                prop_assert!(positions.windows(2).all(|w| w[0] >= w[1]));
            }
            // All within the window of the first event.
            let opened = members[0].0;
            let window = Duration::from_millis(window_ms);
            prop_assert!(members.iter().all(|(t, _)| *t < opened + window));
            // A batch followed by one of the same kind closed for a reason:
            // it was full, or its window had passed.
            if let Some((prev_create, prev_len, prev_opened)) = previous {
                if prev_create == create {
                    prop_assert!(prev_len == max || opened >= prev_opened + window);
                }
            }
            previous = Some((create, hashes.len(), opened));
        }
        prop_assert_eq!(next, arrivals.len());
    }
}

#[test]
fn change_of_kind_and_end_of_stream_close_batches() {
    let mut a = BatchAssembler::new(BatchingConfig::default(), 1);
    let now = Instant::now();
    let (x, y, z) = (at(3, 1), at(1, 2), at(2, 3));
    assert!(a.push(KvCacheEvent::Create(x), now).is_none());
    assert!(a.push(KvCacheEvent::Create(y), now).is_none());
    let first = a.push(KvCacheEvent::Remove(z), now).expect("kind changed");
    assert_eq!(first.events, KvCacheEvents::Create(vec![y, x]));
    assert!(a.push(KvCacheEvent::Remove(y), now).is_none());
    let last = a.finish().expect("end of stream");
    assert_eq!(last.events, KvCacheEvents::Remove(vec![z, y]));
}

/// The tokio-driven half: batcher and publisher task.
#[cfg(feature = "events-async")]
mod publishing {
    use super::*;
    use kvbm::events::wire;
    use std::sync::Mutex;

    /// Records what the publisher task sends.
    #[derive(Default)]
    struct Capture {
        sent: Mutex<Vec<(String, Vec<u8>)>>,
        flushes: Mutex<usize>,
    }

    impl kvbm::pubsub::Publisher for Capture {
        fn publish(
            &self,
            subject: &str,
            payload: Vec<u8>,
        ) -> Result<(), kvbm::pubsub::PublishError> {
            self.sent
                .lock()
                .unwrap()
                .push((subject.to_owned(), payload));
            Ok(())
        }
        fn flush(&self) -> kvbm::pubsub::FlushFuture {
            *self.flushes.lock().unwrap() += 1;
            Box::pin(async { Ok(()) })
        }
    }

    impl Capture {
        fn decoded(&self) -> Vec<wire::SequencedCacheEvents> {
            self.sent
                .lock()
                .unwrap()
                .iter()
                .map(|(_, bytes)| wire::decode(bytes).expect("valid batch"))
                .collect()
        }
    }

    type CaptureBuilder =
        kvbm::events::KvbmCacheEventsPublisherBuilder<kvbm::events::EventStream, Capture>;

    /// A publisher, under `instance_id` and whatever `settings` add, of the
    /// batches of a fresh registry's events into a fresh [`Capture`].
    fn capture_publisher(
        instance_id: kvbm::events::InstanceId,
        settings: impl FnOnce(CaptureBuilder) -> CaptureBuilder,
    ) -> (
        BlockRegistry,
        Arc<Capture>,
        kvbm::events::KvbmCacheEventsPublisher,
    ) {
        let events = Arc::new(EventsManager::builder().build());
        let capture = Arc::new(Capture::default());
        let builder = kvbm::events::KvbmCacheEventsPublisher::builder()
            .instance_id(instance_id)
            .event_stream(events.subscribe())
            .publisher(Arc::clone(&capture));
        let publisher = settings(builder).build().expect("all settings given");
        let registry = BlockRegistry::builder().event_manager(events).build();
        (registry, capture, publisher)
    }

    async fn next(
        b: &mut kvbm::events::BatchStream<kvbm::events::EventStream>,
    ) -> Option<KvbmCacheEvents> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut *b), cx))
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn batcher_closes_on_window_and_at_end_of_stream() {
        let events = Arc::new(EventsManager::builder().build());
        let stream = events.subscribe();
        let registry = BlockRegistry::builder().event_manager(events).build();
        let config = BatchingConfig::default().with_window(Duration::from_millis(10));
        let mut batches = kvbm::events::EventBatcher::new(config, 9).batch(stream);

        let a = registry.register_sequence_hash(at(1, 1));
        let b = registry.register_sequence_hash(at(0, 2));
        let first = next(&mut batches).await.expect("window closes the batch");
        assert_eq!(
            first.events,
            KvCacheEvents::Create(vec![at(0, 2), at(1, 1)])
        );

        drop((a, b));
        drop(registry); // the last holder of the events manager: the stream ends
        let second = next(&mut batches)
            .await
            .expect("end of stream closes the batch");
        assert_eq!(
            second.events,
            KvCacheEvents::Remove(vec![at(1, 1), at(0, 2)])
        );
        assert!(next(&mut batches).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn publisher_numbers_batches_and_ends_with_shutdown() {
        let (registry, capture, publisher) = capture_publisher(42, |b| {
            b.batching_config(
                BatchingConfig::default().with_max_size(NonZeroUsize::new(2).unwrap()),
            )
            .subject("test.events")
        });

        let handles: Vec<_> = (0..5)
            .map(|i| registry.register_sequence_hash(at(i, i)))
            .collect();
        drop(handles);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats = Arc::clone(publisher.stats());
        publisher.stop().await.expect("task ends");

        let got = capture.decoded();
        let sequences: Vec<Option<u64>> = got.iter().map(|b| b.sequence).collect();
        let expected: Vec<Option<u64>> = (1..=got.len() as u64).map(Some).collect();
        assert_eq!(sequences, expected, "numbered from 1 without gaps");
        assert!(got.iter().all(|b| b.batch.instance_id == 42));
        assert_eq!(got.last().unwrap().batch.events, KvCacheEvents::Shutdown);
        let creates: usize = got
            .iter()
            .map(|b| match &b.batch.events {
                KvCacheEvents::Create(h) => h.len(),
                _ => 0,
            })
            .sum();
        let removes: usize = got
            .iter()
            .map(|b| match &b.batch.events {
                KvCacheEvents::Remove(h) => h.len(),
                _ => 0,
            })
            .sum();
        assert_eq!((creates, removes), (5, 5));
        assert!(got.iter().all(|b| b.batch.events.len() <= 2));
        assert!(capture
            .sent
            .lock()
            .unwrap()
            .iter()
            .all(|(s, _)| s == "test.events"));
        assert_eq!(*capture.flushes.lock().unwrap(), 1);
        use std::sync::atomic::Ordering;
        assert_eq!(
            stats.last_sequence.load(Ordering::Relaxed),
            got.len() as u64
        );
        assert_eq!(
            stats.batches_published.load(Ordering::Relaxed),
            got.len() as u64
        );
        assert_eq!(stats.events_published.load(Ordering::Relaxed), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_publisher_still_publishes_shutdown_but_abort_does_not() {
        for abort in [false, true] {
            let (registry, capture, publisher) = capture_publisher(1, |b| b);
            let _held = registry.register_sequence_hash(at(0, 1));
            tokio::time::sleep(Duration::from_millis(1)).await;
            if abort {
                publisher.abort();
                tokio::time::sleep(Duration::from_millis(1)).await;
                assert!(publisher.is_finished());
            }
            drop(publisher);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let got = capture.decoded();
            let shutdown = got
                .iter()
                .any(|b| b.batch.events == KvCacheEvents::Shutdown);
            assert_eq!(shutdown, !abort, "abort = {abort}");
            if !abort {
                // The open batch was published before Shutdown.
                assert_eq!(got[0].batch.events, KvCacheEvents::Create(vec![at(0, 1)]));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn publisher_ends_with_shutdown_when_the_manager_goes() {
        let (registry, capture, publisher) = capture_publisher(3, |b| b);
        drop(registry.register_sequence_hash(at(0, 1)));
        drop(registry);
        publisher.join().await.expect("the task ends by itself");
        let got: Vec<KvCacheEvents> = capture
            .decoded()
            .into_iter()
            .map(|b| b.batch.events)
            .collect();
        assert_eq!(
            got,
            [
                KvCacheEvents::Create(vec![at(0, 1)]),
                KvCacheEvents::Remove(vec![at(0, 1)]),
                KvCacheEvents::Shutdown
            ]
        );
    }

    #[test]
    fn builder_reports_missing_settings() {
        let built =
            kvbm::events::KvbmCacheEventsPublisher::builder::<kvbm::events::EventStream, Capture>()
                .instance_id(1)
                .build();
        assert!(built.is_err());
    }
}

#[test]
fn slow_loss_aware_subscriber_learns_the_exact_count() {
    let events = Arc::new(EventsManager::builder().channel_capacity(4).build());
    let mut slow = events.subscribe_loss_aware();
    let mut lossy = events.subscribe();
    let registry = BlockRegistry::builder().event_manager(events).build();
    let hashes: Vec<SequenceHash> = (0..10).map(|i| at(i, i)).collect();
    let handles: Vec<_> = hashes
        .iter()
        .map(|&h| registry.register_sequence_hash(h))
        .collect();
    assert_eq!(slow.try_recv(), Some(Err(EventStreamRecvError::Lagged(6))));
    for &h in &hashes[6..] {
        assert_eq!(slow.try_recv(), Some(Ok(KvCacheEvent::Create(h))));
    }
    assert_eq!(slow.try_recv(), None);
    // The lossy subscriber skips the gap silently.
    let seen: Vec<_> = std::iter::from_fn(|| lossy.try_recv()).collect();
    assert_eq!(
        seen,
        hashes[6..]
            .iter()
            .map(|&h| KvCacheEvent::Create(h))
            .collect::<Vec<_>>()
    );
    drop(handles);
}

/// With a policy filtering events and a block subscriber filling the ring
/// with events the filtered subscriber does not want, the loss count is
/// still the number of *announced* events missed.
#[test]
fn loss_count_counts_only_announced_events() {
    let events = Arc::new(
        EventsManager::builder()
            .policy(Arc::new(PowerOfTwoPolicy::with_range(1, 64)))
            .channel_capacity(8)
            .build(),
    );
    let mut slow = events.subscribe_loss_aware();
    let _all = events.subscribe_blocks();
    let registry = BlockRegistry::builder().event_manager(events).build();
    // Positions 0..40: announced are 1, 2, 4, 8, 16, 32 (six); the ring keeps
    // the last 8 records (positions 32..40), of which one is announced.
    let handles: Vec<_> = (0..40)
        .map(|i| registry.register_sequence_hash(at(i, i)))
        .collect();
    assert_eq!(slow.try_recv(), Some(Err(EventStreamRecvError::Lagged(5))));
    assert_eq!(slow.try_recv(), Some(Ok(KvCacheEvent::Create(at(32, 32)))));
    assert_eq!(slow.try_recv(), None);
    drop(handles);
}

#[test]
fn subscriptions_end_when_the_manager_goes() {
    let events = Arc::new(EventsManager::builder().build());
    let mut sub = events.subscribe();
    let registry = BlockRegistry::builder().event_manager(events).build();
    let h = registry.register_sequence_hash(at(0, 1));
    drop(h);
    drop(registry);
    assert_eq!(sub.recv_blocking(), Some(KvCacheEvent::Create(at(0, 1))));
    assert_eq!(sub.recv_blocking(), Some(KvCacheEvent::Remove(at(0, 1))));
    assert_eq!(sub.recv_blocking(), None);
    assert_eq!(sub.recv_timeout(Duration::from_millis(1)), None);
}

#[test]
fn blocking_reader_wakes_on_push_from_another_thread() {
    let events = Arc::new(EventsManager::builder().build());
    let mut sub = events.subscribe();
    let registry = BlockRegistry::builder().event_manager(events).build();
    let writer = std::thread::spawn(move || {
        let h = registry.register_sequence_hash(at(0, 5));
        std::mem::forget(h);
    });
    assert_eq!(sub.recv_blocking(), Some(KvCacheEvent::Create(at(0, 5))));
    writer.join().unwrap();
}
