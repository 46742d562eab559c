//! When a run stops sending requests: after `same_failure_limit` requests in a row failed the same
//! way (a service that answers everything with the same 500, 403 or closed connection will not get
//! better within the run: retrying each of its requests six times only multiplies the wait and the
//! noise), or when the run's deadline (`run_deadline`) is reached. Once stopped, every request of the
//! client fails at once with [`Stop`], so the stages report what was not done and finish.
//!
//! "The same way" is the cause in a few words without the request's own names ([`super::ApiError::cause`]):
//! the HTTP status and the service's answer, or the network failure. Throttling is not a failure here
//! (the pacer waits it out); any answer that is not a failure, and a different failure, start the count
//! again.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Why the client sends no more requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `count` requests in a row failed with `cause` (the `same_failure_limit`).
    SameFailures {
        /// How many in a row.
        count: u32,
        /// The failure, as [`super::ApiError::cause`] words it.
        cause: String,
    },
    /// The run's deadline (`run_deadline`, this long after the run started) was reached.
    Deadline {
        /// The configured `run_deadline`.
        after: Duration,
    },
}

impl Stop {
    /// The cause of the requests it stopped, for grouping with those that failed before it: the
    /// repeated failure itself, or the deadline.
    pub fn cause(&self) -> String {
        match self {
            Stop::SameFailures { cause, .. } => cause.clone(),
            Stop::Deadline { after } => {
                format!(
                    "deadline reached (run_deadline = {})",
                    duration_words(*after)
                )
            }
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::SameFailures { count, cause } => write!(
                f,
                "the last {count} requests failed the same way ({cause}), so the run stopped sending \
                 requests (same_failure_limit); run again later, and check the service's status if it \
                 goes on"
            ),
            Stop::Deadline { after } => write!(
                f,
                "deadline reached: the run may send requests for {} (run_deadline); the next run goes on \
                 from where this one stopped",
                duration_words(*after)
            ),
        }
    }
}

/// What makes two causes "the same": the cause with every word that looks like an id, a count or a
/// time (a word holding a digit, but for a 3-digit status and an error code such as `AF50000` or
/// `AADSTS90033`) masked, so that answers differing only in a request id, a trace id or a timestamp
/// count as one failure.
pub fn cause_key(cause: &str) -> String {
    let mut out = String::with_capacity(cause.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let has_digit = word.chars().any(|c| c.is_ascii_digit());
        let status = word.len() == 3 && word.chars().all(|c| c.is_ascii_digit());
        let letters = word.chars().take_while(char::is_ascii_uppercase).count();
        let code = letters >= 2
            && word.len() > letters
            && word[letters..].chars().all(|c| c.is_ascii_digit());
        if has_digit && !status && !code {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in cause.chars() {
        // A GUID or a time with `-` is one word.
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `50m`, `90s`, `2h`: as `run_deadline` is written.
pub(super) fn duration_words(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// What [`Breaker::failed`] says about one failed attempt.
pub(super) struct Failed {
    /// This cause had not been seen before by this client (so it is worth a warning).
    pub(super) first: bool,
    /// This failure stopped the client.
    pub(super) tripped: bool,
}

struct State {
    last: Option<String>,
    run: u32,
    stopped: Option<Stop>,
    seen: HashSet<String>,
    deadline: Option<(Instant, Duration)>,
}

/// The count of identical failures in a row, the deadline, and the stop once either is reached.
pub(super) struct Breaker {
    limit: u32,
    state: Mutex<State>,
}

impl Breaker {
    /// A breaker that stops after `limit` identical failures in a row (at least 1), with no deadline.
    pub(super) fn new(limit: u32) -> Breaker {
        Breaker {
            limit: limit.max(1),
            state: Mutex::new(State {
                last: None,
                run: 0,
                stopped: None,
                seen: HashSet::new(),
                deadline: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests stop `after` from now.
    pub(super) fn set_deadline(&self, after: Duration) {
        self.state().deadline = Some((Instant::now() + after, after));
    }

    /// When requests stop, if there is a deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.state().deadline.map(|(at, _)| at)
    }

    /// Why no request may be sent any more, if none may: the deadline has passed, or the failures
    /// in a row reached the limit.
    pub(super) fn stopped(&self) -> Option<Stop> {
        let mut s = self.state();
        if s.stopped.is_none()
            && let Some((at, after)) = s.deadline
            && Instant::now() >= at
        {
            s.stopped = Some(Stop::Deadline { after });
            drop(s);
            warn_deadline(after);
            return Some(Stop::Deadline { after });
        }
        s.stopped.clone()
    }

    /// Why requests stopped, if they did, without looking at the clock: a deadline that passed after
    /// the last request is no stop.
    pub(super) fn stop(&self) -> Option<Stop> {
        self.state().stopped.clone()
    }

    /// The deadline cut a request short: stop (unless already stopped) and say why.
    pub(super) fn deadline_reached(&self) -> Stop {
        let mut s = self.state();
        if let Some(stop) = &s.stopped {
            return stop.clone();
        }
        let after = s.deadline.map_or(Duration::ZERO, |(_, after)| after);
        s.stopped = Some(Stop::Deadline { after });
        drop(s);
        warn_deadline(after);
        Stop::Deadline { after }
    }

    /// Counts a failed attempt with `cause`. The cause is kept [`redact`]ed: it is the service's
    /// answer, which may quote the request's credentials, and the [`Stop`] it makes is printed.
    ///
    /// [`redact`]: crate::redact::redact
    pub(super) fn failed(&self, cause: &str) -> Failed {
        let cause = crate::redact::redact(cause);
        let key = cause_key(&cause);
        let mut s = self.state();
        let first = s.seen.insert(key.clone());
        if s.last.as_deref() == Some(key.as_str()) {
            s.run += 1;
        } else {
            s.last = Some(key);
            s.run = 1;
        }
        let tripped = s.stopped.is_none() && s.run >= self.limit;
        if tripped {
            s.stopped = Some(Stop::SameFailures {
                count: s.run,
                cause: cause.into_owned(),
            });
        }
        Failed { first, tripped }
    }

    /// An answer that is not a failure: the count starts again.
    pub(super) fn answered(&self) {
        let mut s = self.state();
        s.last = None;
        s.run = 0;
    }
}

/// At -v, when it happens (the summary says it too).
fn warn_deadline(after: Duration) {
    tracing::debug!(
        "the run reached its deadline (run_deadline = {}): requests in flight were given up and no more \
         are sent",
        duration_words(after)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_in_a_row_stops_and_anything_else_starts_the_count_again() {
        let b = Breaker::new(3);
        assert!(b.failed("HTTP 500").first);
        assert!(!b.failed("HTTP 500").first);
        b.answered();
        b.failed("HTTP 500");
        b.failed("HTTP 500");
        b.failed("cannot connect");
        b.failed("HTTP 500");
        b.failed("HTTP 500");
        assert_eq!(b.stopped(), None);
        let third = b.failed("HTTP 500");
        assert!(third.tripped && !third.first);
        assert_eq!(
            b.stopped(),
            Some(Stop::SameFailures {
                count: 3,
                cause: "HTTP 500".into()
            })
        );
        assert!(!b.failed("HTTP 500").tripped, "it trips once");
    }

    #[test]
    fn answers_that_differ_only_in_ids_and_times_are_the_same_cause() {
        let a = "HTTP 500 Internal Server Error \"upstream timeout, request 9f1c2b3a-4e5f-6789-abcd-ef0123456789 at 2026-11-29T21:02:08Z\"";
        let b = "HTTP 500 Internal Server Error \"upstream timeout, request 0a1b2c3d-1111-2222-3333-444455556666 at 2026-11-29T21:03:41Z\"";
        assert_eq!(cause_key(a), cause_key(b));
        assert_ne!(cause_key("HTTP 500 x"), cause_key("HTTP 503 x"));
        assert_ne!(
            cause_key("HTTP 500 Internal Server Error, AF50000: x"),
            cause_key("HTTP 500 Internal Server Error, AF50005: x")
        );
        assert_ne!(cause_key("AADSTS90033"), cause_key("AADSTS90002"));
        let breaker = Breaker::new(2);
        breaker.failed(a);
        assert!(breaker.failed(b).tripped);
    }

    #[test]
    fn the_stop_keeps_the_cause_redacted() {
        let echo = "HTTP 500 Internal Server Error \"Request failed. Headers: Authorization: Bearer \
                    eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl\"";
        let b = Breaker::new(2);
        b.failed(echo);
        assert!(b.failed(echo).tripped);
        let stop = b.stopped().unwrap();
        for text in [stop.cause(), stop.to_string()] {
            assert!(!text.contains("c2lnbmF0"), "{text}");
            assert!(text.contains(crate::redact::REDACTED), "{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_requests() {
        let b = Breaker::new(10);
        b.set_deadline(Duration::from_secs(60));
        assert_eq!(b.stopped(), None);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let stop = b.stopped().unwrap();
        assert_eq!(stop.cause(), "deadline reached (run_deadline = 1m)");
        assert!(stop.to_string().starts_with("deadline reached"));
    }
}
