//! What a run has done so far: counters the stages share, and the progress bar drawn from them on a
//! terminal (stderr; none under cron).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters shared by the stages.
#[derive(Default)]
pub(crate) struct Counters {
    /// Segments of a stream listed to their end (or given up).
    pub(crate) segments_listed: AtomicUsize,
    /// Listing pages read.
    pub(crate) pages: AtomicUsize,
    /// Units listed (blobs, duplicates included).
    pub(crate) listed: AtomicUsize,
    /// Units fetched and parsed.
    pub(crate) fetched: AtomicUsize,
    /// Events kept from them.
    pub(crate) kept: AtomicUsize,
}

impl Counters {
    /// Adds `n` to one counter.
    pub(crate) fn add(counter: &AtomicUsize, n: usize) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One counter's value.
    pub(crate) fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }
}

/// The progress bar: hidden unless asked for (a terminal on stderr, no `-q`).
pub(crate) struct Progress {
    bar: ProgressBar,
    segments: usize,
}

impl Progress {
    /// A bar for `segments` segments (of all streams), drawn only when `show`.
    pub(crate) fn new(show: bool, segments: usize) -> Progress {
        let bar = if show {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, segments }
    }

    /// Redraws the message from the counters.
    pub(crate) fn update(&self, c: &Counters) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_message(format!(
            "segments {}/{} · blobs {} fetched of {} listed · events {}",
            Counters::get(&c.segments_listed),
            self.segments,
            Counters::get(&c.fetched),
            Counters::get(&c.listed),
            Counters::get(&c.kept),
        ));
    }

    /// Removes the bar before the summary is printed.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
