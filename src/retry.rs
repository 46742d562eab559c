//! When and how long to wait before trying a request again: exponential back-off with jitter that
//! gives way to the service's own `Retry-After`.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: u32 = 6;
/// Attempts per request when the service is throttling. The waiting happens at the shared pacer's gate
/// (pauses up to 2 s, or the service's Retry-After), so this is about a minute and a half of refusals
/// before the request is given up; the service's quota is per minute.
pub const THROTTLED_ATTEMPTS: u32 = 48;
const BASE: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(60);

/// The delays of one request's retries.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { attempt: 1 }
    }

    /// The wait before the next attempt, or `None` when the attempts are used up. `hint` is the
    /// service's `Retry-After`, which wins over the computed delay (capped at one minute).
    pub fn next(&mut self, hint: Option<Duration>) -> Option<Duration> {
        self.next_after(false, hint)
    }

    /// As [`Backoff::next`], after a throttled answer (a larger budget).
    pub fn next_throttled(&mut self, hint: Option<Duration>) -> Option<Duration> {
        self.next_after(true, hint)
    }

    fn next_after(&mut self, throttled: bool, hint: Option<Duration>) -> Option<Duration> {
        let budget = if throttled {
            THROTTLED_ATTEMPTS
        } else {
            MAX_ATTEMPTS
        };
        if self.attempt >= budget {
            return None;
        }
        let exp = BASE
            .saturating_mul(1 << (self.attempt - 1).min(16))
            .min(CAP);
        self.attempt += 1;
        Some(match hint {
            Some(h) => h.min(CAP),
            // "Full jitter": anywhere between half the delay and the whole of it.
            None => exp.mul_f64(rand::rng().random_range(0.5..=1.0)),
        })
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
        let mut b = Backoff::new();
        let throttled = std::iter::from_fn(|| b.next_throttled(None)).count() as u32;
        assert_eq!(throttled, THROTTLED_ATTEMPTS - 1);
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
