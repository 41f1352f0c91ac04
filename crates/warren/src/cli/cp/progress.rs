//! What `warren cp` shows while it copies: on a terminal, a bar for the
//! total and one per large file in flight (indicatif); otherwise nothing
//! until one summary line at the end. Errors are printed as they happen,
//! once, above the bars.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use warren_core::transfer::{Progress, Summary};
use warren_wire::Escaped;

/// Files smaller than this get no bar of their own (10,000 small files
/// would only flicker); they count in the total.
const OWN_BAR_FROM: u64 = 4 * 1024 * 1024;
/// File bars shown at once.
const MAX_FILE_BARS: usize = 8;

pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

pub struct Reporter {
    /// The command, before each message ("warren cp").
    name: &'static str,
    shown: bool,
    bars: Option<Bars>,
    next: AtomicU64,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    files: Mutex<HashMap<u64, ProgressBar>>,
    style: ProgressStyle,
}

impl Reporter {
    /// `shown`: bars on a terminal (false for `-q`); `name` starts each
    /// message.
    pub fn new(name: &'static str, shown: bool) -> Reporter {
        let bars = (shown && on_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let total = multi.add(ProgressBar::new(0));
            total.set_style(
                ProgressStyle::with_template(
                    "{prefix:>6} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            total.set_prefix("total");
            total.enable_steady_tick(Duration::from_millis(250));
            let style = ProgressStyle::with_template(
                "{wide_msg} [{bar:20}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            Bars {
                multi,
                total,
                files: Mutex::new(HashMap::new()),
                style,
            }
        });
        Reporter {
            name,
            shown,
            bars,
            next: AtomicU64::new(1),
        }
    }

    /// Clears the bars.
    pub fn done(&self) {
        if let Some(b) = &self.bars {
            b.total.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

impl Progress for Reporter {
    fn start(&self, name: &[u8], size: u64, done: u64) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &self.bars {
            b.total.inc_length(size);
            b.total.inc(done);
            let mut files = b.files.lock().unwrap_or_else(PoisonError::into_inner);
            if size >= OWN_BAR_FROM && files.len() < MAX_FILE_BARS {
                let bar = b.multi.add(ProgressBar::new(size));
                bar.set_style(b.style.clone());
                bar.set_message(Escaped::new(name).to_string());
                bar.set_position(done);
                files.insert(id, bar);
            }
        }
        id
    }

    fn advance(&self, id: u64, bytes: u64) {
        if let Some(b) = &self.bars {
            b.total.inc(bytes);
            if let Some(bar) = b
                .files
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
            {
                bar.inc(bytes);
            }
        }
    }

    fn finish(&self, id: u64, _ok: bool) {
        if let Some(b) = &self.bars
            && let Some(bar) = b
                .files
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id)
        {
            bar.finish_and_clear();
            b.multi.remove(&bar);
        }
    }

    fn error(&self, message: &str) {
        self.say(&format!("{}: {message}", self.name));
    }

    fn note(&self, message: &str) {
        // -q: errors only, as scp's -q.
        if self.shown {
            self.say(&format!("{}: {message}", self.name));
        }
    }
}

impl Reporter {
    fn say(&self, line: &str) {
        match &self.bars {
            Some(b) => {
                if b.multi.println(line).is_err() {
                    eprintln!("{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }
}

/// "copied 3 files, 1.2 GiB in 4.1 s, 300 MB/s" (and the failures).
pub fn summary_line(s: &Summary) -> String {
    let secs = s.elapsed.as_secs_f64().max(1e-6);
    let mut line = format!(
        "copied {} file{}, {} in {:.1} s, {}/s",
        s.files,
        if s.files == 1 { "" } else { "s" },
        size(s.bytes as f64),
        secs,
        rate(s.bytes as f64 / secs)
    );
    if s.dirs > 0 {
        line.push_str(&format!(
            "; {} director{}",
            s.dirs,
            if s.dirs == 1 { "y" } else { "ies" }
        ));
    }
    if s.links > 0 {
        line.push_str(&format!(
            "; {} symlink{}",
            s.links,
            if s.links == 1 { "" } else { "s" }
        ));
    }
    if s.failures > 0 {
        line.push_str(&format!("; {} failed", s.failures));
    }
    line
}

fn size(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn rate(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_reads_as_a_sentence() {
        let s = Summary {
            files: 3,
            bytes: 1_288_490_189,
            elapsed: Duration::from_millis(4100),
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&s),
            "copied 3 files, 1.2 GiB in 4.1 s, 314 MB/s"
        );
        let one = Summary {
            files: 1,
            failures: 2,
            dirs: 1,
            elapsed: Duration::from_secs(1),
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&one),
            "copied 1 file, 0 B in 1.0 s, 0 B/s; 1 directory; 2 failed"
        );
    }
}
