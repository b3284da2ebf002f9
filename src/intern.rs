//! A fast hasher for the short keys of greenroom's hot-path tables (message type names).

use std::hash::Hasher;

/// An FNV-style hash, a word at a time: fast for short keys. Only names this process itself
/// produced are looked up in tables keyed by it, so a peer cannot steer collisions.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes at a time; equal hashes are settled by comparing the keys.
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            h = (h.rotate_left(5) ^ word).wrapping_mul(0x0100_0000_01b3);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}
