//! Channel windows sized to the path.
//!
//! The window a client advertises is how much the server may send ahead.
//! It has to cover the bandwidth-delay product, or a long link idles
//! (OpenSSH's fixed 2 MiB caps a 50 ms link near 40 MB/s). But a window
//! far beyond it costs the server: OpenSSH's sshd reads the far end
//! ahead into its channel buffer as long as that buffer is below the
//! window, so when the client is the slower side on a fast link that
//! buffer grows to the window. Measured here on loopback: with a fixed
//! 64 MiB window sshd burned 4-5x the CPU per GB it needs at 2 MiB, and
//! on a shared machine the download fell to a third.
//!
//! So a connection starts at [`INITIAL_WINDOW`] and each channel's
//! window grows when it is consumed faster than the path can refill it,
//! the rule QUIC stacks use for their receive windows: russh re-opens a
//! window once half of it has been taken by the application; if that half
//! went in less than two round trips (the whole window in under four), the
//! window is what limits the sender, and the next target is twice as
//! large, up to the configured maximum. It never shrinks. The round trip
//! comes from keepalive pings on the connection ([`RoundTrip`]); until one
//! is measured nothing grows.
//!
//! One short interval is not enough: a reader that was briefly slower
//! takes what piled up in one go, re-opening twice within microseconds
//! (on loopback, with a round trip of ~0.1 ms, that grew windows to
//! 64 MiB in some runs, and sshd's buffering with them). A window grows
//! only after two short intervals in a row ([`SHORT_IN_A_ROW`]): a burst
//! can hold at most one window, so at most one short interval, while a
//! window-limited path gives nothing but short ones.
//!
//! russh keeps one target per connection, so a window grown by one
//! channel applies to the others' next adjustments too; they share the
//! path, so they share its bandwidth-delay product.
//!
//! Servers built on russh (`warren serve` among them) are different on
//! both counts: they send only as their window allows, reading the far
//! end no further ahead, so a large window costs them nothing; and their
//! connection loop stops reading while a channel's consumer is full, so
//! with windows re-opened only as fast as the loaded path allows, a
//! two-way transfer through such a server can starve its return path and
//! stall. Against them ([`WindowTuner::peer`]) the target starts at the
//! maximum, as before there was tuning, so there is nothing to grow.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where every channel's window starts: OpenSSH's own default.
pub const INITIAL_WINDOW: u32 = 2 * 1024 * 1024;

/// Re-openings less than two round trips apart, in a row, before a window
/// grows.
pub const SHORT_IN_A_ROW: u32 = 2;

/// The smallest round trip seen on a connection, shared between the task
/// that pings and the handler that sizes windows.
#[derive(Debug)]
pub struct RoundTrip {
    micros: AtomicU64,
}

impl Default for RoundTrip {
    fn default() -> Self {
        RoundTrip {
            micros: AtomicU64::new(u64::MAX),
        }
    }
}

impl RoundTrip {
    /// Records one measured round trip; the estimate is the smallest seen
    /// (queues and a busy CPU only ever add to it).
    pub fn record(&self, rtt: Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX - 1);
        self.micros.fetch_min(micros.max(1), Ordering::Relaxed);
    }

    /// The smallest round trip recorded, if any.
    pub fn get(&self) -> Option<Duration> {
        match self.micros.load(Ordering::Relaxed) {
            u64::MAX => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

/// Decides each next window target from how fast the last one was used.
#[derive(Debug)]
pub struct WindowTuner {
    max: u32,
    rtt: Arc<RoundTrip>,
    /// When each open channel's window was last re-opened, and how many
    /// re-openings in a row came less than two round trips apart.
    last_adjust: HashMap<u32, (Instant, u32)>,
}

impl WindowTuner {
    /// A tuner that grows windows up to `max` bytes.
    pub fn new(max: u32, rtt: Arc<RoundTrip>) -> Self {
        WindowTuner {
            max,
            rtt,
            last_adjust: HashMap::new(),
        }
    }

    /// Learns the server's software from its identification string;
    /// returns the window to start every channel at when that is not
    /// [`INITIAL_WINDOW`] (russh's `set_target_window_size`).
    pub fn peer(&self, remote_id: &[u8]) -> Option<u32> {
        let sends_only_its_window = [&b"SSH-2.0-warren"[..], b"SSH-2.0-russh"]
            .iter()
            .any(|prefix| remote_id.starts_with(prefix));
        if !sends_only_its_window {
            return None;
        }
        tracing::debug!("the server sends only what its window allows: largest window");
        Some(self.max)
    }

    /// The window a connection starts with.
    pub fn initial(max: u32) -> u32 {
        INITIAL_WINDOW.min(max)
    }

    /// russh just re-opened channel number `channel`'s window to
    /// `current`; returns the next target.
    pub fn adjusted(&mut self, channel: u32, current: u32, now: Instant) -> u32 {
        let rtt = self.rtt.get();
        let (last, short) = self.last_adjust.entry(channel).or_insert((now, 0));
        let interval = now.saturating_duration_since(*last);
        *last = now;
        let Some(rtt) = rtt else {
            return current;
        };
        // A channel's first re-opening has no interval (zero) to count.
        if interval > Duration::ZERO && interval < 2 * rtt {
            *short += 1;
        } else {
            *short = 0;
        }
        if *short >= SHORT_IN_A_ROW && current < self.max {
            *short = 0;
            let next = current.saturating_mul(2).min(self.max);
            tracing::debug!(
                "channel {channel}: window used up within two round trips ({rtt:?}); growing it to {next} bytes"
            );
            return next;
        }
        current
    }

    /// Forgets a closed channel.
    pub fn closed(&mut self, channel: u32) {
        self.last_adjust.remove(&channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 64 << 20;

    fn tuner(rtt_ms: Option<u64>) -> WindowTuner {
        let rtt = Arc::new(RoundTrip::default());
        if let Some(ms) = rtt_ms {
            rtt.record(Duration::from_millis(ms));
        }
        WindowTuner::new(MAX, rtt)
    }

    #[test]
    fn a_window_refilled_within_two_round_trips_doubles_up_to_the_maximum() {
        let mut t = tuner(Some(50));
        let start = Instant::now();
        let mut window = WindowTuner::initial(MAX);
        assert_eq!(
            t.adjusted(0, window, start),
            window,
            "first adjust: no interval yet"
        );
        let mut now = start;
        for _ in 0..10 {
            now += Duration::from_millis(30);
            window = t.adjusted(0, window, now);
        }
        assert_eq!(window, MAX);
    }

    #[test]
    fn a_window_that_outlasts_two_round_trips_stays() {
        // Loopback: 0.1 ms round trip, half a window every 2 ms.
        let mut t = tuner(None);
        t.rtt.record(Duration::from_micros(100));
        let start = Instant::now();
        let window = WindowTuner::initial(MAX);
        let mut now = start;
        for _ in 0..100 {
            assert_eq!(t.adjusted(0, window, now), window);
            now += Duration::from_millis(2);
        }
    }

    #[test]
    fn bursts_of_re_openings_do_not_grow_a_window() {
        // Loopback, a reader that lags and catches up: the window re-opens
        // twice 10 µs apart, then not for 2 ms, again and again.
        let mut t = tuner(None);
        t.rtt.record(Duration::from_micros(100));
        let window = WindowTuner::initial(MAX);
        let mut now = Instant::now();
        for _ in 0..100 {
            assert_eq!(t.adjusted(0, window, now), window);
            now += Duration::from_micros(10);
            assert_eq!(t.adjusted(0, window, now), window);
            now += Duration::from_millis(2);
        }
    }

    #[test]
    fn nothing_grows_before_a_round_trip_is_known() {
        let mut t = tuner(None);
        let now = Instant::now();
        t.adjusted(0, INITIAL_WINDOW, now);
        assert_eq!(t.adjusted(0, INITIAL_WINDOW, now), INITIAL_WINDOW);
    }

    #[test]
    fn channels_are_timed_apart() {
        // Two channels each re-opened every 40 ms on a 10 ms path,
        // interleaved 1 ms apart: neither is window-limited.
        let mut t = tuner(Some(10));
        let mut now = Instant::now();
        for _ in 0..20 {
            assert_eq!(t.adjusted(0, INITIAL_WINDOW, now), INITIAL_WINDOW);
            now += Duration::from_millis(1);
            assert_eq!(t.adjusted(1, INITIAL_WINDOW, now), INITIAL_WINDOW);
            now += Duration::from_millis(39);
        }
        t.closed(0);
        assert!(!t.last_adjust.contains_key(&0));
    }

    #[test]
    fn a_russh_server_gets_the_largest_window_at_once() {
        // russh starts every window at the target `peer` returns, and
        // each re-opening asks the tuner again.
        let mut t = tuner(Some(50));
        let start = t.peer(b"SSH-2.0-warren_0.1.0").unwrap_or(INITIAL_WINDOW);
        assert_eq!(start, MAX);
        assert_eq!(t.adjusted(0, start, Instant::now()), MAX);
        let mut t = tuner(None);
        assert_eq!(t.peer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"), None);
        assert_eq!(
            t.adjusted(0, INITIAL_WINDOW, Instant::now()),
            INITIAL_WINDOW
        );
    }

    #[test]
    fn the_smallest_round_trip_wins() {
        let rtt = RoundTrip::default();
        assert_eq!(rtt.get(), None);
        rtt.record(Duration::from_millis(5));
        rtt.record(Duration::from_millis(1));
        rtt.record(Duration::from_millis(9));
        assert_eq!(rtt.get(), Some(Duration::from_millis(1)));
    }

    #[test]
    fn a_small_maximum_caps_the_start() {
        assert_eq!(WindowTuner::initial(1 << 20), 1 << 20);
        let mut t = WindowTuner::new(1 << 20, Arc::new(RoundTrip::default()));
        t.rtt.record(Duration::from_secs(1));
        let now = Instant::now();
        t.adjusted(0, 1 << 20, now);
        assert_eq!(t.adjusted(0, 1 << 20, now), 1 << 20);
    }
}
