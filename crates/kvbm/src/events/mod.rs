//! Cache events: what a block manager tells the world about the prefixes
//! it holds.
//!
//! An [`EventsManager`] attached to a [`BlockRegistry`](crate::BlockRegistry)
//! sees every sequence hash enter the registry (a [`KvCacheEvent::Create`])
//! and leave it (a [`KvCacheEvent::Remove`], once no block and no handle
//! holds it). Its [`EventEmissionPolicy`] picks which of them subscribers of
//! [`EventsManager::subscribe`] hear about; a [`BatchAssembler`] (or, with a
//! runtime, an [`EventBatcher`]) groups them into [`KvbmCacheEvents`]
//! batches, and a [`KvbmCacheEventsPublisher`] sends those, encoded by
//! [`wire`], through a [`Publisher`](crate::pubsub::Publisher).
//!
//! Names, module paths (`events::{batcher, manager, policy, protocol,
//! publisher}`) and wire format are those of kvbm-logical 1.6.1's `events`
//! module, so code ports by changing the crate path and messages
//! cross between the two; our one addition on the wire is a per-instance
//! batch sequence number that kvbm-logical decoders skip (see [`wire`]).
//!
//! [`dynamo`] turns the same registry changes into the events Dynamo's KV
//! router applies.
//!
//! # Without an async runtime
//!
//! Everything here except [`EventBatcher`] and [`KvbmCacheEventsPublisher`]
//! is synchronous and runtime-free: subscriptions can be read with
//! `try_recv`/`recv_blocking`/`recv_timeout`, awaited with `recv()` on any
//! executor, and batched with [`BatchAssembler`] and your own clock. The
//! cargo feature `events-async` (on by default, pulls in tokio and
//! `futures-core`) adds the `futures_core::Stream` impls, the time-windowed
//! batcher and the publisher task.
//!
//! # Cost
//!
//! Without an events manager the registry pays one `Option` check per
//! operation. With one, each new or vanished hash costs a policy call and,
//! when some subscriber wants the event, a slot write in a ring locked once
//! per registry operation. Figures are in the repository README.

mod batch;
pub mod batcher;
pub mod dynamo;
pub mod manager;
pub mod policy;
pub mod protocol;
#[cfg(feature = "events-async")]
pub mod publisher;
mod ring;
mod subscription;
pub mod wire;

pub use batch::{BatchAssembler, BatchingConfig};
#[cfg(feature = "events-async")]
pub use batcher::{BatchStream, EventBatcher};
pub(crate) use manager::Emitter;
pub use manager::{EventsBuildError, EventsManager, EventsManagerBuilder};
pub use policy::{AllEventsPolicy, EventEmissionPolicy, PowerOfTwoPolicy};
pub use protocol::{
    BlockEvent, BlockLineage, InstanceId, KvCacheEvent, KvCacheEvents, KvbmCacheEvents,
};
#[cfg(feature = "events-async")]
pub use publisher::{
    KvbmCacheEventsPublisher, KvbmCacheEventsPublisherBuilder, MissingSetting, PublisherStats,
};
pub use subscription::{
    AllBlocks, BlockEventStream, EventStream, EventStreamRecvError, LossAwareEventStream, Recv,
    ReportLost, SkipLost, Subscription, SubscriptionKind,
};
