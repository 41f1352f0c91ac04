//! Public key lines (`.pub` files, and the key in authorized_keys and
//! known_hosts lines, as `keys::public_lines` finds them): every key found
//! writes back as a line that gives the same key, and its fingerprints and
//! randomart never panic.
//!
//! Input: file text. `public_lines` takes `&str`, so non-UTF-8 input is
//! skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use russh::keys::PublicKey;
use warren_core::keys::{FingerprintHash, fingerprint_line, public_line, public_lines, randomart};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count();
    for (key, number) in public_lines(text) {
        assert!(number >= 1 && number <= lines);
        for hash in [FingerprintHash::Sha256, FingerprintHash::Md5] {
            let _ = fingerprint_line(key.key_data(), key.comment().as_str_lossy(), hash);
            let _ = randomart(key.key_data(), hash);
        }
        let Ok(line) = public_line(&key) else {
            continue;
        };
        let again = PublicKey::from_openssh(&line).expect("a written key reads back");
        assert_eq!(again.key_data(), key.key_data(), "{line:?}");
        let found = public_lines(&line);
        let [(found, 1)] = found.as_slice() else {
            panic!("{line:?} gave {found:?}");
        };
        assert_eq!(found.key_data(), key.key_data(), "{line:?}");
    }
});
