//! Progress on stderr (indicatif), shown only once a command has run for
//! more than a second, never with `--quiet`.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One progress bar over all the simulation runs of a command.
#[derive(Debug)]
pub(crate) struct Progress {
    quiet: bool,
    start: Instant,
    total: u64,
    base: u64,
    run_len: u64,
    label: String,
    bar: Option<ProgressBar>,
    calls: u32,
}

impl Progress {
    /// Progress over `runs` runs of `requests` requests each.
    pub(crate) fn new(quiet: bool, runs: u64, requests: u64) -> Self {
        Self {
            quiet,
            start: Instant::now(),
            total: runs.saturating_mul(requests),
            base: 0,
            run_len: requests,
            label: String::new(),
            bar: None,
            calls: 0,
        }
    }

    /// A run of `label` starts.
    pub(crate) fn begin_run(&mut self, label: &str) {
        self.label = label.to_string();
        if let Some(bar) = &self.bar {
            bar.set_message(self.label.clone());
        }
    }

    /// `done` requests of the current run are finished.
    pub(crate) fn update(&mut self, done: u64) {
        self.calls = self.calls.wrapping_add(1);
        if self.quiet || self.calls % 128 != 0 {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() > Duration::from_secs(1) {
            let bar = ProgressBar::with_draw_target(
                Some(self.total),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg} (eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar.set_message(self.label.clone());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.base + done.min(self.run_len));
        }
    }

    /// The current run is over.
    pub(crate) fn end_run(&mut self) {
        self.base += self.run_len;
        if let Some(bar) = &self.bar {
            bar.set_position(self.base);
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
