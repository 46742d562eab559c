//! One pace for all of a run's requests. The tenant's quota (about 2,000 requests a minute,
//! management-api.md §2.4) is shared by every concurrent fetch, so throttling is answered by the whole
//! run, not only by the request that was refused.
//!
//! Two mechanisms:
//! - **Pace**: at most `requests_per_minute` a minute on average, with a minute's worth as burst
//!   (generic cell rate: each request pushes a theoretical arrival time one interval further; a request
//!   may go while that time is less than a burst ahead of now). A short run is never slowed; a long one
//!   settles at the configured rate.
//! - **Gate**: a throttled answer (403/429 AF429) closes the gate for everyone, for the `Retry-After` the
//!   service gave, or else for a pause that starts at 250 ms and doubles while throttling goes on (up to
//!   2 s). When it reopens a single request goes first, as a probe; the others follow once an answer to
//!   it arrives that is not a throttle. So a service's sliding window is found again within a couple of
//!   seconds of freeing up, without a burst of refusals in between.
//!
//! Fixed-quota limiters (`governor`) cover the pace but not the gate; both are a few fields here.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

struct State {
    /// Spacing at the configured rate.
    interval: Duration,
    /// How far ahead of now the theoretical arrival time may run (a minute's quota).
    burst: Duration,
    /// Theoretical arrival time of the next request.
    tat: Instant,
    /// The gate is closed until then.
    closed_until: Option<Instant>,
    /// The next pause, should the service throttle again.
    pause: Duration,
    /// After a closed gate: a probe is out, and the others wait for its answer.
    probing: bool,
    /// After a closed gate: the next request to go is the probe.
    probe_next: bool,
}

pub struct Pacer {
    state: Mutex<State>,
    answered: Notify,
}

/// How the service answered a request the pacer admitted.
#[derive(Debug, Clone, Copy)]
pub enum Answered {
    Throttled(Option<Duration>),
    /// Anything else: a success, another error, no answer at all.
    Other,
}

impl Pacer {
    /// A pacer for `per_minute` requests a minute.
    pub fn new(per_minute: u32) -> Pacer {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        Pacer {
            state: Mutex::new(State {
                interval,
                burst: interval * (per_minute - 1),
                tat: Instant::now(),
                closed_until: None,
                pause: FIRST_PAUSE,
                probing: false,
                probe_next: false,
            }),
            answered: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for this request's turn. Every admitted request must be followed by [`Pacer::answered`].
    pub async fn admit(&self) {
        enum Wait {
            Gate(Instant),
            Probe,
            Slot(Instant),
        }
        loop {
            // Created before the state is read, so an answer in between is not missed.
            let answered = self.answered.notified();
            let wait = {
                let mut s = self.state();
                let now = Instant::now();
                match s.closed_until {
                    Some(t) if t > now => Wait::Gate(t),
                    _ if s.probing => Wait::Probe,
                    _ => {
                        if s.probe_next {
                            s.probe_next = false;
                            s.probing = true;
                        }
                        let slot = s.tat.checked_sub(s.burst).unwrap_or(now).max(now);
                        s.tat = s.tat.max(slot) + s.interval;
                        Wait::Slot(slot)
                    }
                }
            };
            match wait {
                Wait::Gate(t) => tokio::time::sleep_until(t).await,
                Wait::Probe => answered.await,
                Wait::Slot(t) => return tokio::time::sleep_until(t).await,
            }
        }
    }

    /// Reports the answer to an admitted request.
    pub fn answered(&self, answer: Answered) {
        {
            let mut s = self.state();
            let now = Instant::now();
            match answer {
                Answered::Throttled(retry_after) => {
                    let pause = retry_after.unwrap_or(s.pause);
                    s.closed_until = Some(s.closed_until.unwrap_or(now).max(now + pause));
                    s.pause = (s.pause * 2).min(LONGEST_PAUSE);
                    s.probing = false;
                    s.probe_next = true;
                    // Whatever burst was left is spent: the service says so.
                    s.tat = s.tat.max(now + s.burst);
                }
                Answered::Other => {
                    s.probing = false;
                    s.pause = FIRST_PAUSE;
                }
            }
        }
        self.answered.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_short_run_goes_at_once_and_a_long_one_at_the_configured_rate() {
        let pacer = Pacer::new(600); // 10 a second, a burst of 600
        let start = Instant::now();
        for _ in 0..600 {
            pacer.admit().await;
            pacer.answered(Answered::Other);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst");
        for _ in 0..10 {
            pacer.admit().await;
            pacer.answered(Answered::Other);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1), "then 10 a second");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_closes_the_gate_for_everyone_then_one_probe_goes_first() {
        let pacer = Arc::new(Pacer::new(60_000));
        pacer.admit().await;
        pacer.answered(Answered::Throttled(Some(Duration::from_secs(3))));
        let start = Instant::now();

        // Three requests wait; the first through the reopened gate is a probe.
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let p = pacer.clone();
            waiting.push(tokio::spawn(async move {
                p.admit().await;
                Instant::now()
            }));
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        let done: Vec<_> = waiting.iter().filter(|h| h.is_finished()).collect();
        assert_eq!(done.len(), 1, "one probe after Retry-After");
        assert!(start.elapsed() >= Duration::from_secs(3));

        // The probe went through: the rest follow.
        pacer.answered(Answered::Other);
        for h in waiting {
            h.await.unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_grow_while_throttling_goes_on_and_reset_after() {
        let pacer = Pacer::new(60_000);
        let start = Instant::now();
        for _ in 0..4 {
            pacer.admit().await;
            pacer.answered(Answered::Throttled(None));
        }
        pacer.admit().await;
        // 0.25 + 0.5 + 1 + 2 s of pauses before the fifth request.
        assert_eq!(start.elapsed(), Duration::from_millis(3750));
        pacer.answered(Answered::Other);
        pacer.admit().await;
        pacer.answered(Answered::Throttled(None));
        let t = Instant::now();
        pacer.admit().await;
        assert_eq!(t.elapsed(), FIRST_PAUSE, "a success resets the pause");
    }
}
