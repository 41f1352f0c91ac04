//! Per-source backoff on failed authentication: a source address that keeps
//! failing waits longer and longer before each rejection and before its
//! new connections are served, which slows guessing to a crawl without
//! locking anyone out for good.
//!
//! Design choice: the table is a plain value fed with explicit instants
//! (tested without sleeping); entries are forgotten after a quiet period,
//! and the table is bounded so a spray of source addresses cannot grow it
//! without limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Failures a source may have before it is slowed down.
const FREE_FAILURES: u32 = 3;
/// The first delay, doubled with each further failure.
const BASE_DELAY: Duration = Duration::from_millis(500);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A source with no failure for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Sources remembered at most.
const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// Failed-authentication counts per source address.
#[derive(Debug, Default)]
pub struct Penalties {
    sources: HashMap<IpAddr, Record>,
}

impl Penalties {
    /// Counts one failure of `ip`; returns how long to hold the reply.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> Duration {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.sources
                .retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
            if self.sources.len() >= MAX_SOURCES {
                // Under a spray of sources: forget the quietest one.
                if let Some(oldest) = self
                    .sources
                    .iter()
                    .min_by_key(|(_, r)| r.last)
                    .map(|(k, _)| *k)
                {
                    self.sources.remove(&oldest);
                }
            }
        }
        let record = self.sources.entry(ip).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.duration_since(record.last) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        delay_for(record.failures)
    }

    /// How long a new connection from `ip` waits before it is served.
    pub fn delay(&self, ip: IpAddr, now: Instant) -> Duration {
        match self.sources.get(&ip) {
            Some(r) if now.duration_since(r.last) < FORGET_AFTER => delay_for(r.failures),
            _ => Duration::ZERO,
        }
    }

    /// A successful login from `ip` clears its record.
    pub fn clear(&mut self, ip: IpAddr) {
        self.sources.remove(&ip);
    }
}

fn delay_for(failures: u32) -> Duration {
    let Some(over) = failures.checked_sub(FREE_FAILURES + 1) else {
        return Duration::ZERO;
    };
    BASE_DELAY
        .checked_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap() {
        let cases = [
            (1, 0),
            (3, 0),
            (4, 500),
            (5, 1000),
            (6, 2000),
            (10, 30_000),
            (200, 30_000),
        ];
        for (failures, ms) in cases {
            assert_eq!(delay_for(failures), Duration::from_millis(ms), "{failures}");
        }
    }

    #[test]
    fn forgotten_after_quiet_period_and_cleared_on_success() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let mut p = Penalties::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            p.record_failure(ip, t0);
        }
        assert_eq!(p.delay(ip, t0), Duration::from_secs(1));
        assert_eq!(p.delay(other, t0), Duration::ZERO);
        let later = t0 + FORGET_AFTER;
        assert_eq!(p.delay(ip, later), Duration::ZERO);
        assert_eq!(p.record_failure(ip, later), Duration::ZERO);
        for _ in 0..5 {
            p.record_failure(ip, later);
        }
        p.clear(ip);
        assert_eq!(p.delay(ip, later), Duration::ZERO);
    }

    #[test]
    fn bounded_under_a_spray_of_sources() {
        let mut p = Penalties::default();
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            p.record_failure(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(p.sources.len() <= MAX_SOURCES);
    }
}
