//! When and how long to wait before trying a request again: exponential back-off with jitter that
//! gives way to the service's own `Retry-After`. Throttling has its own, larger budget: the waiting for
//! it happens at the shared pacer's gate (`api::pacer`), not here.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Attempts per request against failures (5xx, dropped connections, cut bodies, timeouts), the first
/// included.
pub const MAX_ATTEMPTS: u32 = 6;
/// Throttled answers one request may get before it is given up. Each refusal is followed by a pause
/// of everyone at the pacer's gate (up to 2 s, or the service's Retry-After), so this is a minute and a
/// half or more of refusals; the service's quota is per minute.
pub const THROTTLED_REFUSALS: u32 = 48;
const BASE: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(60);

/// One request's retries: failures and throttles are counted apart, so a request that was throttled
/// a few times still gets its full back-off against a 5xx.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    throttles: u32,
}

impl Backoff {
    /// The budget of a request not yet tried: [`MAX_ATTEMPTS`] attempts against failures and
    /// [`THROTTLED_REFUSALS`] throttled answers, none used.
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// The wait before the next attempt after a failure, or `None` when the attempts are used up.
    /// `hint` is the service's `Retry-After`, which wins over the computed delay (capped at a minute).
    pub fn next(&mut self, hint: Option<Duration>) -> Option<Duration> {
        if self.failures + 1 >= MAX_ATTEMPTS {
            return None;
        }
        let exp = BASE.saturating_mul(1 << self.failures.min(16)).min(CAP);
        self.failures += 1;
        Some(match hint {
            Some(h) => h.min(CAP),
            // Anywhere between half the delay and the whole of it.
            None => exp.mul_f64(rand::rng().random_range(0.5..=1.0)),
        })
    }

    /// Counts a throttled answer; `false` when the request has been refused too often.
    pub fn throttled(&mut self) -> bool {
        self.throttles += 1;
        self.throttles < THROTTLED_REFUSALS
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.to_utc() - chrono::Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stops() {
        let mut b = Backoff::new();
        let delays: Vec<_> = std::iter::from_fn(|| b.next(None)).collect();
        assert_eq!(delays.len() as u32, MAX_ATTEMPTS - 1);
        assert!(delays[0] <= BASE && delays[4] >= BASE * 4);
        let mut b = Backoff::new();
        assert_eq!(
            b.next(Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn throttles_do_not_use_up_the_failure_budget() {
        let mut b = Backoff::new();
        for _ in 0..10 {
            assert!(b.throttled());
        }
        let failures = std::iter::from_fn(|| b.next(None)).count() as u32;
        assert_eq!(failures, MAX_ATTEMPTS - 1);
        let refusals = 10 + std::iter::from_fn(|| b.throttled().then_some(())).count() as u32;
        assert_eq!(refusals, THROTTLED_REFUSALS - 1);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
