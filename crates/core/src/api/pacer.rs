//! One pace for all of a run's requests. The tenant's quota (about 2,000 requests a minute,
//! management-api.md §2.4) is shared by every concurrent fetch, so throttling is answered by the whole
//! run, not only by the request that was refused.
//!
//! Two mechanisms:
//! - **Pace**: at most `requests_per_minute` a minute on average, with a quarter of that as burst
//!   (generic cell rate: each request pushes a theoretical arrival time one interval further; a request
//!   may go while that time is less than the burst ahead of now). At the default 1,500 no minute sees
//!   more than 1,875 requests, under the service's 2,000; a short run is not slowed at all.
//! - **Gate**: a throttled answer (403/429 AF429) closes the gate for everyone, for the service's
//!   `Retry-After` (capped at a minute) or else for a pause that starts at 250 ms and doubles, with
//!   jitter, each time the probe is throttled again (up to 2 s). When the gate reopens a single request
//!   goes first, as the probe; the others follow once the probe is answered with anything but a
//!   throttle. So a service's window is found again soon after it frees up, without a burst of
//!   refusals in between. A request that was waiting for its slot when the gate closed looks at the
//!   gate again once the slot comes, and waits with the others.
//!
//! Every admitted request holds a [`Ticket`]; a ticket dropped without an answer (a cancelled request)
//! counts as answered, so a lost probe cannot stall the run. Fixed-quota limiters (`governor`) cover
//! the pace but not the gate; both are a few fields here.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);

struct State {
    /// Spacing at the configured rate.
    interval: Duration,
    /// How far ahead of now the theoretical arrival time may run.
    burst: Duration,
    /// Theoretical arrival time of the next request.
    tat: Instant,
    /// The gate is closed until then.
    closed_until: Option<Instant>,
    /// The pause of the next closing, should the probe be throttled.
    pause: Duration,
    /// The probe is out; the others wait for its answer.
    probing: bool,
    /// The next request to go through the gate is the probe.
    probe_next: bool,
}

pub struct Pacer {
    state: Mutex<State>,
    answered: Notify,
}

/// How the service answered a request.
#[derive(Debug, Clone, Copy)]
pub enum Answered {
    Throttled(Option<Duration>),
    /// Anything else: a success, another error, no answer at all.
    Other,
}

/// An admitted request. Report its answer with [`Ticket::answered`]; dropping it unanswered counts as
/// [`Answered::Other`].
pub struct Ticket<'a> {
    pacer: &'a Pacer,
    probe: bool,
    done: bool,
}

impl Ticket<'_> {
    pub fn answered(mut self, answer: Answered) {
        self.done = true;
        self.pacer.answer(self.probe, answer);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pacer.answer(self.probe, Answered::Other);
        }
    }
}

impl Pacer {
    /// A pacer for `per_minute` requests a minute.
    pub fn new(per_minute: u32) -> Pacer {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        Pacer {
            state: Mutex::new(State {
                interval,
                // A request may go while the arrival time is at most this far ahead: the burst is
                // this many intervals plus the one request that goes at once.
                burst: interval * (per_minute / 4).saturating_sub(1),
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

    /// Waits for this request's turn.
    pub async fn admit(&self) -> Ticket<'_> {
        enum Wait {
            Gate(Instant),
            Probe,
            Slot(Instant, bool),
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
                        let probe = std::mem::take(&mut s.probe_next);
                        s.probing = probe;
                        let slot = s.tat.checked_sub(s.burst).unwrap_or(now).max(now);
                        s.tat = s.tat.max(slot) + s.interval;
                        Wait::Slot(slot, probe)
                    }
                }
            };
            match wait {
                Wait::Gate(t) => tokio::time::sleep_until(t).await,
                Wait::Probe => answered.await,
                Wait::Slot(t, probe) => {
                    let mut ticket = Ticket {
                        pacer: self,
                        probe,
                        done: false,
                    };
                    tokio::time::sleep_until(t).await;
                    // A throttle may have closed the gate while this request waited for its slot.
                    if self.recheck(&mut ticket) {
                        return ticket;
                    }
                }
            }
        }
    }

    /// After the wait for a slot: whether the gate still lets the ticket's request go. When a
    /// throttle closed it meanwhile, the ticket is given back unanswered (a probe's turn passes on)
    /// and `admit` waits again. When the gate reopened meanwhile and its probe has not gone yet, this
    /// request goes as the probe.
    fn recheck(&self, ticket: &mut Ticket<'_>) -> bool {
        let mut s = self.state();
        let closed = s.closed_until.is_some_and(|t| t > Instant::now());
        if !closed && (ticket.probe || (!s.probing && !s.probe_next)) {
            return true;
        }
        if !closed && !s.probing {
            s.probe_next = false;
            s.probing = true;
            ticket.probe = true;
            return true;
        }
        ticket.done = true;
        if ticket.probe {
            s.probing = false;
            s.probe_next = true;
            drop(s);
            self.answered.notify_waiters();
        }
        false
    }

    fn answer(&self, probe: bool, answer: Answered) {
        {
            let mut s = self.state();
            let now = Instant::now();
            let gate_open = !s.probing && !s.probe_next && s.closed_until.is_none_or(|t| t <= now);
            match answer {
                // The first refusal closes an open gate; a refused probe closes it again, longer.
                // Refusals of requests sent before the gate closed say nothing new.
                Answered::Throttled(retry_after) if gate_open || probe => {
                    if probe {
                        s.pause = (s.pause * 2).min(LONGEST_PAUSE);
                    }
                    let jitter = rand::rng().random_range(0.8..=1.2);
                    let pause = s.pause.mul_f64(jitter);
                    let pause =
                        retry_after.map_or(pause, |r| r.min(LONGEST_RETRY_AFTER).max(pause));
                    s.closed_until = Some(now + pause);
                    s.probing = false;
                    s.probe_next = true;
                }
                Answered::Throttled(_) => {}
                Answered::Other if probe => {
                    s.probing = false;
                    s.pause = FIRST_PAUSE;
                }
                Answered::Other => {}
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
        let pacer = Pacer::new(600); // 10 a second, a burst of 150
        let start = Instant::now();
        for _ in 0..150 {
            pacer.admit().await.answered(Answered::Other);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst");
        for _ in 0..10 {
            pacer.admit().await.answered(Answered::Other);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1), "then 10 a second");
        // Any minute: at most the burst plus a minute's rate.
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(60) {
            pacer.admit().await.answered(Answered::Other);
            n += 1;
        }
        assert!(n <= 600 + 150, "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_closes_the_gate_for_everyone_then_one_probe_goes_first() {
        let pacer = Arc::new(Pacer::new(60_000));
        pacer
            .admit()
            .await
            .answered(Answered::Throttled(Some(Duration::from_secs(3))));
        let start = Instant::now();

        // Three requests wait; the first through the reopened gate is the probe.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..3 {
            let (p, tx) = (pacer.clone(), tx.clone());
            tokio::spawn(async move {
                let ticket = p.admit().await;
                tx.send(Instant::now()).unwrap();
                // The probe gets through after a second; the others at once.
                tokio::time::sleep(Duration::from_secs(1)).await;
                ticket.answered(Answered::Other);
            });
        }
        let probe = rx.recv().await.unwrap();
        assert!(
            probe - start >= Duration::from_secs(3),
            "Retry-After holds everyone back"
        );
        let second = rx.recv().await.unwrap();
        assert!(
            second - probe >= Duration::from_secs(1),
            "the others wait for the probe"
        );
        rx.recv().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_grow_while_the_probe_is_refused_and_reset_after() {
        let pacer = Pacer::new(60_000);
        let start = Instant::now();
        pacer.admit().await.answered(Answered::Throttled(None));
        for _ in 0..3 {
            pacer.admit().await.answered(Answered::Throttled(None));
        }
        pacer.admit().await.answered(Answered::Other);
        // Pauses of 0.25, 0.5, 1 and 2 s, each with up to 20% jitter.
        let waited = start.elapsed().as_secs_f64();
        assert!((3.75 * 0.8..=3.75 * 1.2).contains(&waited), "{waited}");
        pacer.admit().await.answered(Answered::Throttled(None));
        let t = Instant::now();
        pacer.admit().await.answered(Answered::Other);
        assert!(
            t.elapsed() <= FIRST_PAUSE.mul_f64(1.2),
            "a good probe resets the pause"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_for_its_slot_does_not_go_through_a_gate_closed_meanwhile() {
        // 4 a minute: one slot every 15 s, no burst beyond the first request.
        let pacer = Arc::new(Pacer::new(4));
        let start = Instant::now();
        let first = pacer.admit().await;
        let waiting = {
            let p = pacer.clone();
            tokio::spawn(async move {
                let ticket = p.admit().await;
                let at = Instant::now();
                ticket.answered(Answered::Other);
                at
            })
        };
        // The second request now waits for its slot (at 15 s); a throttle closes the gate meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
        first.answered(Answered::Throttled(Some(Duration::from_secs(40))));
        let went = waiting.await.unwrap();
        assert!(
            went - start >= Duration::from_secs(41),
            "it went at {:?}, through the closed gate",
            went - start
        );
        // It went as the probe: the next one waits for its answer, then for its own slot.
        let next = pacer.admit().await;
        assert!(Instant::now() - start >= Duration::from_secs(41));
        next.answered(Answered::Other);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_for_its_slot_waits_for_the_probe_of_a_gate_that_reopened() {
        let pacer = Arc::new(Pacer::new(4));
        let start = Instant::now();
        let first = pacer.admit().await;
        let second = {
            let p = pacer.clone();
            tokio::spawn(async move {
                let t = p.admit().await;
                (Instant::now(), t.probe)
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Closed for 2 s only: the gate is open again when the slot at 15 s comes, but a probe must
        // go first, and the request waiting for its slot is that probe (no one else is there).
        first.answered(Answered::Throttled(Some(Duration::from_secs(2))));
        let (at, probe) = second.await.unwrap();
        assert!(at - start >= Duration::from_secs(15));
        assert!(
            probe,
            "the first request through the reopened gate is the probe"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_does_not_stall_the_run() {
        let pacer = Pacer::new(60_000);
        pacer.admit().await.answered(Answered::Throttled(None));
        drop(pacer.admit().await); // the probe's request was cancelled
        tokio::time::timeout(Duration::from_secs(1), pacer.admit())
            .await
            .expect("the next request goes");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_of_earlier_requests_do_not_lengthen_the_pause() {
        let pacer = Pacer::new(60_000);
        let in_flight: Vec<_> = [(); 8].iter().map(|_| pacer.admit()).collect();
        let mut tickets = Vec::new();
        for t in in_flight {
            tickets.push(t.await);
        }
        let start = Instant::now();
        for t in tickets {
            t.answered(Answered::Throttled(None));
        }
        pacer.admit().await.answered(Answered::Other);
        assert!(
            start.elapsed() <= FIRST_PAUSE.mul_f64(1.2),
            "{:?}",
            start.elapsed()
        );
    }
}
