//! Batching: [`BatchingConfig`], the runtime-free [`BatchAssembler`] and,
//! with the `events-async` feature, `EventBatcher`: the assembler's rules
//! driven by a tokio timer over any stream of events.

pub use super::batch::{BatchAssembler, BatchingConfig};

#[cfg(feature = "events-async")]
pub use self::timed::{BatchStream, EventBatcher};

#[cfg(feature = "events-async")]
mod timed {

    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_core::Stream;
    use tokio::time::{Instant, Sleep};

    use super::super::batch::{BatchAssembler, BatchingConfig};
    use super::super::protocol::{InstanceId, KvCacheEvent, KvbmCacheEvents};

    /// Groups a stream of events into batches (see [`BatchAssembler`] for the
    /// rules). Needs a tokio runtime with timers.
    #[derive(Debug, Clone)]
    pub struct EventBatcher {
        config: BatchingConfig,
        instance_id: InstanceId,
    }

    impl EventBatcher {
        /// A batcher stamping batches with `instance_id`.
        pub fn new(config: BatchingConfig, instance_id: InstanceId) -> Self {
            Self {
                config,
                instance_id,
            }
        }

        /// The batches of `input`; ends after the last batch once `input` ends.
        pub fn batch<S>(self, input: S) -> BatchStream<S>
        where
            S: Stream<Item = KvCacheEvent>,
        {
            BatchStream {
                input,
                assembler: BatchAssembler::new(self.config, self.instance_id),
                timer: Box::pin(tokio::time::sleep_until(Instant::now())),
                ready: VecDeque::new(),
                input_done: false,
            }
        }
    }

    /// The stream returned by [`EventBatcher::batch`].
    pub struct BatchStream<S> {
        input: S,
        assembler: BatchAssembler,
        timer: Pin<Box<Sleep>>,
        /// Batches closed but not yet handed out.
        ready: VecDeque<KvbmCacheEvents>,
        input_done: bool,
    }

    impl<S: Stream<Item = KvCacheEvent> + Unpin> BatchStream<S> {
        /// Stops reading the input: takes the events already waiting in it
        /// (without waiting for more), after which the stream yields the
        /// remaining batches and ends.
        pub fn close(&mut self) {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            while !self.input_done {
                match Pin::new(&mut self.input).poll_next(&mut cx) {
                    Poll::Ready(Some(event)) => self.accept(event),
                    Poll::Ready(None) | Poll::Pending => self.input_done = true,
                }
            }
        }

        fn accept(&mut self, event: KvCacheEvent) {
            let now = Instant::now().into_std();
            if let Some(expired) = self.assembler.poll_deadline(now) {
                self.ready.push_back(expired);
            }
            if let Some(closed) = self.assembler.push(event, now) {
                self.ready.push_back(closed);
            }
        }
    }

    impl<S: Stream<Item = KvCacheEvent> + Unpin> Stream for BatchStream<S> {
        type Item = KvbmCacheEvents;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<KvbmCacheEvents>> {
            let this = self.get_mut();
            loop {
                if let Some(batch) = this.ready.pop_front() {
                    return Poll::Ready(Some(batch));
                }
                if this.input_done {
                    return Poll::Ready(this.assembler.finish());
                }
                // The window is checked before reading more, so that a busy
                // input cannot hold a batch open past its window.
                if let Some(expired) = this.assembler.poll_deadline(Instant::now().into_std()) {
                    return Poll::Ready(Some(expired));
                }
                match Pin::new(&mut this.input).poll_next(cx) {
                    Poll::Ready(Some(event)) => this.accept(event),
                    Poll::Ready(None) => this.input_done = true,
                    Poll::Pending => {
                        let Some(deadline) = this.assembler.deadline() else {
                            return Poll::Pending;
                        };
                        this.timer.as_mut().reset(Instant::from_std(deadline));
                        if this.timer.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        // The timer fired: the window is over whatever the clock
                        // reads now (timers are never early, but this must not
                        // spin if a clock disagrees by a tick).
                        if let Some(expired) = this.assembler.poll_deadline(deadline) {
                            return Poll::Ready(Some(expired));
                        }
                    }
                }
            }
        }
    }
}
