//! Pacing: sleeping so simulated (trace) time advances at a fixed multiple
//! of wall-clock time.

use std::time::{Duration, Instant};

/// Sleeps so simulated time advances at `factor`× wall-clock time.
#[derive(Debug)]
pub(crate) struct Pacer {
    factor: f64,
    wall_start: Instant,
    sim_start_ms: Option<u64>,
}

impl Pacer {
    /// A pacer whose clock starts at the first call to [`Pacer::pace`].
    pub(crate) fn new(factor: f64) -> Self {
        Self {
            factor,
            wall_start: Instant::now(),
            sim_start_ms: None,
        }
    }

    /// The wall-clock time since the start at which trace time `sim_ms`
    /// is due; `None` when it is too far out to be represented.
    fn due(&mut self, sim_ms: u64) -> Option<Duration> {
        let start = *self.sim_start_ms.get_or_insert(sim_ms);
        let secs = sim_ms.saturating_sub(start) as f64 / 1000.0 / self.factor;
        Duration::try_from_secs_f64(secs).ok()
    }

    /// Waits until trace time `sim_ms` is due.
    pub(crate) fn pace(&mut self, sim_ms: u64) {
        // A target beyond `Duration` (centuries away) is not waited for.
        if let Some(target) = self.due(sim_ms) {
            let elapsed = self.wall_start.elapsed();
            if target > elapsed {
                std::thread::sleep(target - elapsed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_scale_with_the_factor_and_never_panic() {
        let mut p = Pacer::new(2.0);
        assert_eq!(p.due(1000), Some(Duration::ZERO));
        assert_eq!(p.due(3000), Some(Duration::from_secs(1)));
        let mut slow = Pacer::new(1e-300);
        slow.due(0);
        assert_eq!(slow.due(u64::MAX), None);
    }
}
