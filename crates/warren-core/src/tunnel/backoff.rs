//! Capped, jittered exponential backoff between reconnect attempts.
//!
//! Attempt `n` (from 0) waits `min(max, initial * 2^n)`, of which the upper
//! half is random ("equal jitter"): tunnels cut by the same outage do not
//! all come back in the same instant, and no wait is ever shorter than half
//! the nominal one. The random part is passed in, so the sequence is tested
//! without randomness.

use std::time::Duration;

/// How reconnect attempts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The state of one run of failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff { policy, attempt: 0 }
    }

    /// Failures since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The wait before the next attempt, with fresh randomness.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }

    /// The wait before the next attempt; `unit` in `[0, 1)` picks the point
    /// in the jitter range.
    pub fn next_with(&mut self, unit: f64) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        half + (nominal - half).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// `min(max, initial * 2^attempt)` without overflow.
    fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial
            .checked_mul(factor)
            .map_or(self.policy.max, |d| d.min(self.policy.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: secs(1.0),
            max: secs(10.0),
        });
        // unit 1.0: the top of each range, the nominal delay itself.
        let top: Vec<Duration> = (0..6).map(|_| b.next_with(1.0)).collect();
        let want = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0].map(secs);
        assert_eq!(top, want);
        assert_eq!(b.attempts(), 6);
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        let policy = BackoffPolicy {
            initial: secs(2.0),
            max: secs(60.0),
        };
        let cases = [
            (0.0, 1.0),
            (0.5, 1.5),
            (0.999, 1.999),
            (7.0, 2.0),
            (-1.0, 1.0),
        ];
        for (unit, want) in cases {
            let mut b = Backoff::new(policy);
            let got = b.next_with(unit).as_secs_f64();
            assert!((got - want).abs() < 1e-6, "unit {unit}: {got} vs {want}");
        }
        let mut b = Backoff::new(policy);
        for _ in 0..200 {
            let attempt = b.attempts();
            let nominal = secs(2.0 * 2f64.powi(attempt.min(10) as i32)).min(secs(60.0));
            let d = b.next_delay();
            assert!(d >= nominal / 2 && d <= nominal, "{d:?} vs {nominal:?}");
        }
    }

    #[test]
    fn reset_starts_over_and_huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        });
        for _ in 0..10_000 {
            b.next_with(0.0);
        }
        assert_eq!(b.next_with(1.0), Duration::from_secs(30));
        b.reset();
        assert_eq!(b.next_with(1.0), Duration::from_millis(100));
    }
}
