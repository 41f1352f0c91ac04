//! warren: one binary for SSH tunnelling and remote access.
//!
//! The binary is thin: it parses arguments (`cli`), resolves configuration
//! through warren-config and hands plain options to warren-core. Every
//! subcommand ends a failure through `output::report`, and all printing
//! goes through `output`'s macros, which never panic on a closed stream.

// First: its print macros shadow std's in the modules declared after it.
#[macro_use]
mod output;

mod cli;
mod logging;

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_allocator();
    // Arguments are bytes: `warren cp` and `warren sync` take file names that need not be
    // UTF-8; every other subcommand wants text.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "cp") {
        return ExitCode::from(cli::cp::main(&raw[2..]));
    }
    if raw.get(1).is_some_and(|a| a == "sync") {
        return ExitCode::from(cli::sync::main(&raw[2..]));
    }
    let mut args = Vec::with_capacity(raw.len());
    for (i, a) in raw.into_iter().enumerate() {
        match a.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                use std::os::unix::ffi::OsStrExt as _;
                eprintln!(
                    "warren: argument {i} is not UTF-8: {}",
                    warren_wire::Escaped::new(a.as_bytes())
                );
                return ExitCode::from(2);
            }
        }
    }
    let code = cli::dispatch(&args);
    ExitCode::from(code)
}

/// glibc's malloc hands memory freed at the top of a thread's heap back to
/// the kernel once more than 128 KiB is free there, and serves blocks from
/// 128 KiB up with fresh mmaps. A forwarded stream allocates and frees
/// tens of KiB per packet (the payloads live until the local socket takes
/// them), so with the defaults every page of packet memory is faulted in
/// again and again: 100-190 thousand page faults per GB received, a fifth
/// of the client's CPU. Keeping up to 16 MiB free per heap and packet-sized
/// blocks off mmap brings that to a few thousand (OpenSSH's ssh: 6-15
/// thousand) without raising the idle footprint. The workspace's only
/// `unsafe`: mallopt is a plain C call with no safe binding.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets malloc parameters; it is called before any
    // other thread exists. A refused setting leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
