//! Captured output with a size cap: the head and the tail are kept, the
//! middle is dropped and counted, so truncation is always visible.

use std::collections::VecDeque;

/// Output captured from one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The bytes kept: the head, then (when truncated) the tail.
    pub head: Vec<u8>,
    /// The last bytes, when the stream was longer than the cap.
    pub tail: Vec<u8>,
    /// How many bytes were dropped between head and tail.
    pub dropped: u64,
}

impl Captured {
    /// Whether anything was dropped.
    pub fn truncated(&self) -> bool {
        self.dropped > 0
    }

    /// The kept bytes with a marker where the middle was dropped.
    pub fn to_bytes_marked(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        if self.truncated() {
            out.extend(format!("\n[airlock: output truncated: {} bytes omitted]\n", self.dropped).as_bytes());
        }
        out.extend(&self.tail);
        out
    }
}

/// Accumulates a stream, keeping at most `limit` bytes.
#[derive(Debug)]
pub struct CappedBuffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_limit: usize,
    tail_limit: usize,
    dropped: u64,
}

impl CappedBuffer {
    /// A buffer that keeps `limit` bytes: half from the start, half from the end.
    pub fn new(limit: usize) -> CappedBuffer {
        let head_limit = limit - limit / 2;
        CappedBuffer { head: Vec::new(), tail: VecDeque::new(), head_limit, tail_limit: limit / 2, dropped: 0 }
    }

    /// Appends a chunk.
    pub fn push(&mut self, mut chunk: &[u8]) {
        let room = self.head_limit.saturating_sub(self.head.len());
        let take = room.min(chunk.len());
        self.head.extend_from_slice(&chunk[..take]);
        chunk = &chunk[take..];
        if chunk.is_empty() {
            return;
        }
        self.tail.extend(chunk);
        let excess = self.tail.len().saturating_sub(self.tail_limit);
        if excess > 0 {
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The captured result.
    pub fn finish(self) -> Captured {
        Captured { head: self.head, tail: self.tail.into(), dropped: self.dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut b = CappedBuffer::new(10);
        b.push(b"hello");
        let c = b.finish();
        assert_eq!(c.to_bytes_marked(), b"hello");
        assert!(!c.truncated());
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_counts_the_rest() {
        let mut b = CappedBuffer::new(10);
        for chunk in [b"0123".as_slice(), b"456789abcdef", b"ghij"] {
            b.push(chunk);
        }
        let c = b.finish();
        assert_eq!(c.head, b"01234");
        assert_eq!(c.tail, b"fghij");
        assert_eq!(c.dropped, 10);
        let marked = String::from_utf8(c.to_bytes_marked()).unwrap();
        assert_eq!(marked, "01234\n[airlock: output truncated: 10 bytes omitted]\nfghij");
    }

    #[test]
    fn a_zero_cap_drops_everything_but_counts_it() {
        let mut b = CappedBuffer::new(0);
        b.push(b"abc");
        assert_eq!(b.finish().dropped, 3);
    }
}
