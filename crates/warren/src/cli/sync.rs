//! `warren sync`: rsync's command line over warren's transfer engine.

use std::ffi::OsString;

/// `warren sync ARGS` (after the subcommand's name).
pub fn main(args: &[OsString]) -> u8 {
    if args.first().is_some_and(|a| a == "--server") {
        return warren_core::delta::serve_stdio(&args[1..]);
    }
    eprintln!("warren sync: not available in this build");
    1
}
