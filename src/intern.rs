//! A cache of addresses by their text form, so that decoding an envelope does not parse and
//! allocate the same two addresses for every message.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::address::Address;
use crate::error::Result;

/// An FNV-style hash, a word at a time: fast for the short keys of this cache (a peer can only
/// make it slower by colliding, and the cache is bounded).
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

/// The most addresses kept before the cache starts over (a peer cannot grow it without bound).
const CAPACITY: usize = 4096;

/// Addresses by text.
#[derive(Default)]
pub(crate) struct AddressCache {
    map: HashMap<Box<str>, Address, BuildHasherDefault<Fnv>>,
}

impl AddressCache {
    /// The address written `text`, parsed only the first time.
    pub(crate) fn get(&mut self, text: &str) -> Result<Address> {
        if let Some(a) = self.map.get(text) {
            return Ok(a.clone());
        }
        let address: Address = text.parse()?;
        if self.map.len() >= CAPACITY {
            self.map.clear();
        }
        self.map.insert(text.into(), address.clone());
        Ok(address)
    }
}
