//! Words of a file shared between processes as memory (a ledger page).

use super::*;

/// A file mapped shared into memory as an array of 64-bit words that several processes read
/// and write with atomic operations. What one process stores is seen by every other that maps
/// the file, and survives the process: the page cache keeps it after a `kill -9`.
#[derive(Debug)]
pub(crate) struct SharedWords {
    ptr: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    words: usize,
    writable: bool,
}

// SAFETY: the mapping is only ever accessed through atomic operations.
unsafe impl Send for SharedWords {}
// SAFETY: as above; shared references give only atomic access.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Map the first `words` words of `file` (which must be at least that long), for reading
    /// only or for reading and writing.
    pub(crate) fn map(file: &File, words: usize, writable: bool) -> std::io::Result<SharedWords> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap};
        let bytes = words * 8;
        if file.metadata()?.len() < bytes as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file is shorter than its mapping",
            ));
        }
        let len = std::num::NonZeroUsize::new(bytes)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let prot = if writable {
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
        } else {
            ProtFlags::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a file checked to be long enough; it is unmapped
        // only on drop, and accessed only as atomic words within its length.
        let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, file, 0)? };
        Ok(SharedWords {
            ptr: ptr.cast(),
            words,
            writable,
        })
    }

    fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(i < self.words, "word {i} of {}", self.words);
        // SAFETY: `i` is within the mapping, which lives as long as `self`; mmap returns
        // page-aligned memory, so every word is aligned.
        unsafe { &*self.ptr.as_ptr().add(i) }
    }

    /// The value of word `i`.
    pub(crate) fn load(&self, i: usize) -> u64 {
        self.word(i).load(std::sync::atomic::Ordering::Acquire)
    }

    /// Set word `i` (a mapping made for reading only ignores this).
    pub(crate) fn store(&self, i: usize, value: u64) {
        if self.writable {
            self.word(i)
                .store(value, std::sync::atomic::Ordering::Release);
        }
    }

    /// Add to word `i` (a mapping made for reading only ignores this).
    pub(crate) fn add(&self, i: usize, value: u64) {
        if self.writable {
            self.word(i)
                .fetch_add(value, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Copy `parts`, one after the other, into the mapping from byte offset `at` (a mapping
    /// made for reading only ignores this). As [`write_bytes`](Self::write_bytes), with one
    /// bounds check for all of them.
    pub(crate) fn write_parts(&self, at: usize, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        assert!(at + len <= self.words * 8, "bytes past the mapping");
        if self.writable {
            let mut dst = at;
            for part in parts {
                // SAFETY: every part lands inside the mapping (checked above for the total),
                // which lives as long as `self`; no reference to these bytes is handed out.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        part.as_ptr(),
                        self.ptr.as_ptr().cast::<u8>().add(dst),
                        part.len(),
                    )
                };
                dst += part.len();
            }
        }
    }

    /// Copy `data` into the mapping at byte offset `at` (a mapping made for reading only
    /// ignores this). Bytes written this way are for readers that look only once the writer has
    /// published them through a word (or has died): they are not atomic.
    pub(crate) fn write_bytes(&self, at: usize, data: &[u8]) {
        assert!(at + data.len() <= self.words * 8, "bytes past the mapping");
        if self.writable {
            // SAFETY: the range is inside the mapping (checked above), which lives as long as
            // `self`; no reference to these bytes is handed out while they are written.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    self.ptr.as_ptr().cast::<u8>().add(at),
                    data.len(),
                )
            };
        }
    }

    /// Give the memory behind bytes `at..at + len` back to the system (they read as zeros
    /// afterwards, in every process that maps the file). `at` and `len` must be page-aligned; a
    /// mapping made for reading only ignores this.
    pub(crate) fn discard(&self, at: usize, len: usize) {
        assert!(at + len <= self.words * 8, "bytes past the mapping");
        if self.writable {
            // SAFETY: the range is inside the mapping (checked above); no reference into it is
            // held while it is discarded. MADV_REMOVE frees the file's pages behind it.
            let rc = unsafe {
                libc::madvise(
                    self.ptr.as_ptr().cast::<u8>().add(at).cast(),
                    len,
                    libc::MADV_REMOVE,
                )
            };
            if rc != 0 {
                log::debug!(
                    "could not give back ring memory: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }

    /// Copy `len` bytes from byte offset `at` of the mapping.
    pub(crate) fn read_bytes(&self, at: usize, len: usize) -> Vec<u8> {
        assert!(at + len <= self.words * 8, "bytes past the mapping");
        let mut out = vec![0u8; len];
        // SAFETY: the range is inside the mapping (checked above); the copy reads bytes only.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().cast::<u8>().add(at),
                out.as_mut_ptr(),
                len,
            )
        };
        out
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.words * 8) };
    }
}
