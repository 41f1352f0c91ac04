//! Test data shared by the delta tests here, in warren-core and in the
//! binary's tests (not used by the transfer itself).

/// `len` bytes without repeats (xorshift from `seed`), so every block of a
/// signature is unique and a block found at the wrong offset shows.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
