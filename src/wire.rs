//! Framing: a 4-byte big-endian length, then that many bytes of MessagePack with named fields.
//!
//! The length is checked against the receiver's limit *before* any buffer is grown for it, so a
//! hostile or broken peer cannot make a process allocate gigabytes. A frame over the limit or a
//! body that does not decode is an error for that connection only: the caller answers (where the
//! protocol has a way to), closes that connection, and keeps serving everyone else.

use std::io::{self, Read};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub(crate) mod strict;

/// The default largest frame a process accepts: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Room a receiver allows beyond the frame limit, so that the framework can wrap any message a
/// sender was allowed to send in a `Poison`, `DeadEnvelope` or `Wakeup` (or a `DeadLetter`
/// request) and still deliver it.
pub const WRAP_SLACK: usize = 16 * 1024;

/// The environment variable that sets the largest accepted frame, in bytes.
pub const MAX_FRAME_ENV: &str = "GREENROOM_MAX_FRAME";

/// The smallest and largest frame limits accepted.
pub const MAX_FRAME_RANGE: std::ops::RangeInclusive<usize> = 1024..=(1 << 30);

/// The frame limit in force: `GREENROOM_MAX_FRAME` if set to a number in
/// [`MAX_FRAME_RANGE`], else 64 MiB.
pub fn max_frame_from_env() -> usize {
    std::env::var(MAX_FRAME_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| MAX_FRAME_RANGE.contains(n))
        .unwrap_or(DEFAULT_MAX_FRAME)
}

/// Append one frame holding `value` to `out`: length prefix and body, ready for a single write.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    if let Err(e) = rmp_serde::encode::write_named(out, value) {
        out.truncate(start);
        return Err(Error::Encode(Box::new(e)));
    }
    let len = out.len() - start - 4;
    let Ok(len32) = u32::try_from(len) else {
        out.truncate(start);
        return Err(Error::FrameTooLarge {
            len: len as u64,
            limit: u32::MAX as usize,
        });
    };
    out[start..start + 4].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// One frame holding `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(&mut out, value)?;
    Ok(out)
}

/// Decode a frame body (without its length prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    rmp_serde::from_slice(body).map_err(|e| Error::Decode {
        what: what.to_string(),
        why: e.to_string(),
    })
}

/// What one read from a connection produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// The socket has no more bytes for now (`WouldBlock`).
    Drained,
    /// The peer closed its end.
    Eof,
    /// The read budget is spent and the socket may have more: read it again soon (an
    /// edge-triggered source will not say so again).
    More,
}

/// How many bytes one read call takes from a connection before giving the others a turn: a
/// peer that writes without pause cannot keep a process reading it forever.
pub const READ_BUDGET: usize = 256 * 1024;

/// Reassembles frames from a byte stream, enforcing the size limit.
///
/// Bytes live in `buf[start..end]`; `buf` is grown only when a frame needs more room than it has,
/// so a read never pays for zero-filling a fresh buffer.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    limit: usize,
}

const READ_CHUNK: usize = 64 * 1024;

impl FrameReader {
    /// A reader that refuses frames longer than `limit` bytes.
    pub fn new(limit: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            limit,
        }
    }

    /// Read from `src` until it would block or ends, or [`READ_BUDGET`] bytes have been read,
    /// handing each complete frame body to `on_frame`. Edge-triggered sources must be read
    /// until [`ReadStatus::Drained`] or `Eof`: on [`ReadStatus::More`] the caller reads again
    /// later. An error from `on_frame` stops the reading and is returned: the connection is to be
    /// closed.
    pub fn read_from<R: Read>(
        &mut self,
        src: &mut R,
        mut on_frame: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<ReadStatus> {
        let mut budget = READ_BUDGET;
        loop {
            if budget == 0 {
                return Ok(ReadStatus::More);
            }
            self.make_room();
            let room = (self.buf.len() - self.end).min(budget.max(READ_CHUNK));
            match src.read(&mut self.buf[self.end..self.end + room]) {
                Ok(0) => return Ok(ReadStatus::Eof),
                Ok(n) => {
                    self.end += n;
                    budget = budget.saturating_sub(n);
                    self.frames(&mut on_frame)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Ok(ReadStatus::Eof);
                }
                Err(e) => {
                    return Err(Error::Io {
                        context: "reading a frame".into(),
                        source: e,
                    });
                }
            }
        }
    }

    /// Ensure free space after `end`. The buffer grows with the bytes actually received, never
    /// with the length a header announces: a frame in progress gets at most as much new room as
    /// it already holds (or one chunk), so a peer that sends a 4-byte header promising 64 MiB
    /// costs one chunk, and a real 64 MiB frame is assembled in a logarithmic number of steps.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > 16 * READ_CHUNK {
                // Give back the room a big frame needed.
                self.buf = Vec::new();
            }
        }
        let held = self.end - self.start;
        let rest_of_frame = match self.header() {
            Some(len) if len <= self.limit => (4 + len).saturating_sub(held),
            _ => 0,
        };
        let wanted = READ_CHUNK.max(rest_of_frame.min(held));
        if self.buf.len() - self.end >= wanted {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end = held;
            self.start = 0;
        }
        if self.buf.len() - self.end < wanted {
            self.buf.resize(self.end + wanted, 0);
        }
    }

    /// The length announced by the buffered frame header, if a whole header is buffered.
    fn header(&self) -> Option<usize> {
        let h = self
            .buf
            .get(self.start..self.start + 4)
            .filter(|_| self.end - self.start >= 4)?;
        Some(u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize)
    }

    /// Hand out every complete frame in the buffer.
    fn frames(&mut self, on_frame: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while let Some(len) = self.header() {
            if len > self.limit {
                return Err(Error::FrameTooLarge {
                    len: len as u64,
                    limit: self.limit,
                });
            }
            if self.end - self.start < 4 + len {
                break;
            }
            let frame = self.start + 4..self.start + 4 + len;
            self.start += 4 + len;
            on_frame(&self.buf[frame])?;
        }
        Ok(())
    }

    /// True if a partial frame is buffered (an EOF now would cut a frame).
    pub fn has_partial(&self) -> bool {
        self.start < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut bytes = Vec::new();
        for i in 0..100u32 {
            encode_into(&mut bytes, &format!("message {i}")).unwrap();
        }
        // Feed it one byte per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                out[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let mut r = FrameReader::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        let mut src = Trickle(&bytes);
        loop {
            let status = r
                .read_from(&mut src, |f| {
                    got.push(decode::<String>(f, "test").unwrap());
                    Ok(())
                })
                .unwrap();
            if status == ReadStatus::Eof {
                break;
            }
            assert_eq!(status, ReadStatus::More);
        }
        assert_eq!(got.len(), 100);
        assert_eq!(got[99], "message 99");
        assert!(!r.has_partial());
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut r = FrameReader::new(1024);
        let mut src: &[u8] = &[0xff, 0xff, 0xff, 0xf0, 1, 2, 3];
        let err = r.read_from(&mut src, |_| panic!("no frame")).unwrap_err();
        assert!(
            matches!(err, Error::FrameTooLarge { limit: 1024, .. }),
            "{err}"
        );
        assert!(r.buf.capacity() < 1 << 20);
    }

    #[test]
    fn a_header_alone_costs_one_chunk_not_the_length_it_announces() {
        // 64 MiB - 1 announced, within the limit, and nothing else sent.
        let mut r = FrameReader::new(DEFAULT_MAX_FRAME);
        let mut src: &[u8] = &[0x03, 0xff, 0xff, 0xff];
        let status = r.read_from(&mut src, |_| panic!("no frame")).unwrap();
        assert_eq!(status, ReadStatus::Eof);
        assert!(
            r.buf.len() <= 2 * READ_CHUNK,
            "buffer grew to {}",
            r.buf.len()
        );
        assert!(r.has_partial());
    }

    #[test]
    fn a_big_frame_grows_the_buffer_with_what_arrives() {
        let body = vec![7u8; 5 << 20];
        let mut bytes = Vec::new();
        encode_into(&mut bytes, &serde_bytes::Bytes::new(&body)).unwrap();
        // Half of it: the buffer holds at most about twice what arrived.
        let half = bytes.len() / 2;
        let mut r = FrameReader::new(DEFAULT_MAX_FRAME);
        let mut src: &[u8] = &bytes[..half];
        r.read_from(&mut src, |_| panic!("not complete yet"))
            .unwrap();
        assert!(
            r.buf.len() <= 2 * half + READ_CHUNK,
            "{} for {half}",
            r.buf.len()
        );
        // All of it: one frame, intact, read a budget at a time.
        let mut r = FrameReader::new(DEFAULT_MAX_FRAME);
        let mut got = 0;
        let mut src: &[u8] = &bytes;
        let mut reads = 0;
        while r
            .read_from(&mut src, |f| {
                let back: serde_bytes::ByteBuf = decode(f, "test").unwrap();
                assert_eq!(back.as_ref(), &body[..]);
                got += 1;
                Ok(())
            })
            .unwrap()
            == ReadStatus::More
        {
            reads += 1;
        }
        assert_eq!(got, 1);
        assert!(reads >= bytes.len() / READ_BUDGET, "{reads} reads");
    }
}
