//! A request to stop (Ctrl-C, SIGTERM), honoured between units of work: `sync` stops listing and
//! fetching, lets its writer commit what it already has and records the run as interrupted; `import` and
//! `prune` stop before their next batch. What was committed stays committed; the next run does the rest.
//!
//! The binary turns the signals into a request (`commands`); here is only the flag and its waiters.

use std::sync::Arc;

use tokio::sync::watch;

/// The signal that asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: `kill`, systemd stopping a unit, a shutdown.
    Terminate,
}

impl Signal {
    /// The exit code of a command it stopped: 128 + the signal's number, as a shell reports a process
    /// killed by it (130, 143), so that cron and scripts see a failure and can tell it from exit 1.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "Ctrl-C (SIGINT)",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// A shared stop flag: cloned into every stage that can stop; the first [`Stop::request`] wins.
#[derive(Debug, Clone)]
pub struct Stop(Arc<watch::Sender<Option<Signal>>>);

impl Default for Stop {
    fn default() -> Stop {
        Stop(Arc::new(watch::channel(None).0))
    }
}

impl Stop {
    /// A flag nobody has raised yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks every holder to stop; a second request keeps the first signal.
    pub fn request(&self, signal: Signal) {
        self.0.send_if_modified(|v| {
            let first = v.is_none();
            if first {
                *v = Some(signal);
            }
            first
        });
    }

    /// The signal that asked to stop, if one did.
    pub fn requested(&self) -> Option<Signal> {
        *self.0.borrow()
    }

    /// Resolves when a stop is requested (at once if it was already).
    pub async fn wait(&self) -> Signal {
        let mut rx = self.0.subscribe();
        let signal = rx.wait_for(Option::is_some).await.ok().and_then(|v| *v);
        match signal {
            Some(s) => s,
            // The sender lives as long as `self`: never reached.
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_request_wins_and_wakes_every_waiter() {
        let stop = Stop::new();
        assert_eq!(stop.requested(), None);
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.wait().await }
        });
        stop.request(Signal::Terminate);
        stop.request(Signal::Interrupt);
        assert_eq!(waiter.await.unwrap(), Signal::Terminate);
        assert_eq!(stop.wait().await, Signal::Terminate);
        assert_eq!(Signal::Interrupt.exit_code(), 130);
    }
}
