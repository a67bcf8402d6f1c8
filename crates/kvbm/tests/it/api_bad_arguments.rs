//! Public functions given absurd arguments: each returns an error (or works)
//! instead of panicking or aborting the process, and the panicking
//! conveniences panic with a message rather than abort, as their `# Panics`
//! sections say.

use std::panic::catch_unwind;

use kvbm::events::{EventsBuildError, EventsManager};
use kvbm::integrations::RequestSequence;
use kvbm::sequence::BlockSequence;
use kvbm::tokens::{TokenBlockError, TokenBlockSequence};

/// A block size of 2^32 − 1 tokens used to reserve 16 GiB for the partial
/// block up front (an allocation failure aborts the process); now the
/// partial block grows with the tokens it gets.
#[test]
fn huge_block_sizes_reserve_nothing_up_front() {
    let mut seq = TokenBlockSequence::try_from_slice(&[1, 2, 3], u32::MAX, None).unwrap();
    assert!(seq.blocks().is_empty());
    assert_eq!(seq.current_block().tokens().as_slice(), &[1, 2, 3]);
    assert_eq!(seq.extend((4..=6).collect()), Ok(None));
    assert_eq!(seq.total_tokens(), 6);
    assert_eq!(seq.current_block().remaining(), u32::MAX as usize - 6);

    let blocks = BlockSequence::try_new(vec![7; 10], u32::MAX, Some(5)).unwrap();
    assert!(blocks.blocks().is_empty());
    let (full, partial) = TokenBlockSequence::try_split_tokens(&[1; 5], u32::MAX, 0).unwrap();
    assert!(full.is_empty());
    assert_eq!(partial.len(), 5);
}

#[test]
fn zero_block_sizes_are_errors_everywhere() {
    assert_eq!(
        TokenBlockSequence::try_from_slice(&[1], 0, None),
        Err(TokenBlockError::ZeroBlockSize)
    );
    assert!(BlockSequence::try_new(vec![1], 0, None).is_err());
    assert!(RequestSequence::<()>::try_new(vec![1, 2], 4, 0).is_err());
    let Err(panic) = catch_unwind(|| RequestSequence::<()>::new(vec![1, 2], 4, 0)) else {
        panic!("new panics on a zero block size");
    };
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains("cannot build a request sequence"),
        "{message}"
    );
}

#[test]
fn request_sequence_try_new_matches_new() {
    let tokens: Vec<u32> = (0..11).collect();
    let a = RequestSequence::<()>::try_new(tokens.clone(), 5, 4).unwrap();
    let b = RequestSequence::<()>::new(tokens, 5, 4);
    assert_eq!(a.num_blocks(), 2);
    assert_eq!(
        (a.num_blocks(), a.num_input_tokens(), a.max_output_tokens()),
        (b.num_blocks(), b.num_input_tokens(), b.max_output_tokens())
    );
    assert_eq!(a.page_indices(), b.page_indices());
}

/// An event channel capacity of `usize::MAX` used to abort in the ring's
/// allocation; `try_build` reports it and `build` panics with the reason.
#[test]
fn an_unallocatable_event_capacity_is_an_error() {
    let Err(err) = EventsManager::builder()
        .channel_capacity(usize::MAX)
        .try_build()
    else {
        panic!("usize::MAX slots cannot be allocated");
    };
    assert_eq!(
        err,
        EventsBuildError {
            capacity: usize::MAX
        }
    );
    assert!(err.to_string().contains(&usize::MAX.to_string()));
    let Err(panic) = catch_unwind(|| {
        EventsManager::builder()
            .channel_capacity(usize::MAX / 2)
            .build()
    }) else {
        panic!("build panics");
    };
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("event ring"), "{message}");

    let small = EventsManager::builder()
        .channel_capacity(0)
        .try_build()
        .unwrap();
    assert_eq!(small.channel_capacity(), 1, "capacity is at least one");
}

#[test]
fn absurd_counts_and_hashes_are_answered_not_fatal() {
    use kvbm::{BlockManager, SequenceHash};
    let manager = BlockManager::<()>::builder()
        .block_count(4)
        .block_size(4)
        .build()
        .unwrap();
    assert!(manager.allocate_blocks(usize::MAX).is_none());
    assert!(manager.allocate_blocks_with_evictions(5).is_none());
    assert_eq!(
        manager.available_blocks(),
        4,
        "a refused allocation takes nothing"
    );
    let unknown: Vec<SequenceHash> = (0..1000).map(SequenceHash::root).collect();
    assert!(manager.match_blocks(&unknown).is_empty());
    assert!(manager
        .match_blocks_scattered(&unknown)
        .iter()
        .all(Option::is_none));
    assert!(manager.scan_matches(&unknown, true).is_empty());
    assert!(manager.match_blocks(&[]).is_empty());
    manager.validate().unwrap();
}

/// Building the events publisher outside a tokio runtime is an error (it
/// used to panic inside `tokio::spawn`).
#[cfg(feature = "events-async")]
#[test]
fn an_events_publisher_outside_a_runtime_is_an_error() {
    use kvbm::events::{KvbmCacheEventsPublisher, MissingSetting};
    use std::sync::Arc;

    struct Discard;
    impl kvbm::pubsub::Publisher for Discard {
        fn publish(&self, _: &str, _: Vec<u8>) -> Result<(), kvbm::pubsub::PublishError> {
            Ok(())
        }
        fn flush(&self) -> kvbm::pubsub::FlushFuture {
            Box::pin(async { Ok(()) })
        }
    }

    let events = EventsManager::builder().build();
    let built = KvbmCacheEventsPublisher::builder()
        .instance_id(1)
        .event_stream(events.subscribe())
        .publisher(Arc::new(Discard))
        .build();
    assert_eq!(built.err(), Some(MissingSetting("a tokio runtime")));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let publisher = runtime.block_on(async {
        KvbmCacheEventsPublisher::builder()
            .instance_id(1)
            .event_stream(events.subscribe())
            .publisher(Arc::new(Discard))
            .build()
            .expect("inside a runtime")
    });
    publisher.abort();
}
