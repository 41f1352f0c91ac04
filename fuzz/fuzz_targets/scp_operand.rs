//! `warren cp` operands: `[user@]host:path`, `[user@][v6]:path`,
//! `scp://[user@]host[:port]/path` or a local path, from any bytes. An
//! operand either parses or is refused with a reason; a remote one has a
//! text user and host (they go through ssh_config), a non-empty path, and
//! a home-relative form that is a suffix of it or `.`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_config::Operand;

fuzz_target!(|data: &[u8]| {
    let Ok(op) = Operand::parse(data) else {
        return;
    };
    match op {
        Operand::Local(p) => assert_eq!(p, data, "a local operand is the argument itself"),
        Operand::Remote(r) => {
            assert!(!r.path.is_empty(), "an empty remote path is `.`");
            assert!(!r.host.is_empty(), "a remote operand names a host");
            if let Some(rel) = r.relative_to_home() {
                assert!(
                    rel == b"." || r.path.ends_with(rel),
                    "the home-relative path comes from the path"
                );
            }
        }
    }
});
