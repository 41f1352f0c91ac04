//! `warren demo -v` with stdout and stderr on one stream, as a terminal
//! shows them: the table must stay in one piece, the log after it.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::text;

use std::process::Command;

#[test]
fn demo_verbose_prints_its_log_after_the_table() {
    // Catches: -v log lines interleaved with the table's rows.
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .args(["-c", "exec \"$0\" demo -v 2>&1"])
        .arg(env!("CARGO_BIN_EXE_warren"))
        .env("HOME", home.path())
        .env("TMPDIR", tmp.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("WARREN_LOG")
        .output()
        .unwrap();
    let all = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let lines: Vec<&str> = all.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.starts_with("STEP "))
        .unwrap_or_else(|| panic!("no table header in:\n{all}"));
    let summary = lines
        .iter()
        .position(|l| l.starts_with("all 8 steps ok"))
        .unwrap_or_else(|| panic!("no summary in:\n{all}"));
    // Eight rows, then the blank line before the summary.
    assert_eq!(
        summary - head,
        10,
        "the table is interrupted:\n{}",
        lines[head..=summary].join("\n")
    );
    let log = lines[summary..].join("\n");
    assert!(
        log.contains("log (-v)") && log.contains("INFO"),
        "no log after the table:\n{all}"
    );
}
