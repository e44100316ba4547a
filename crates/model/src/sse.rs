//! Incremental server-sent-events parser (the subset model servers use: `event:` and `data:` fields).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds bytes in, takes events out. Lines may end in `\n`, `\r\n` or `\r`, and may be split anywhere across chunks.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    event: String,
    data: Option<String>,
    /// The last byte fed was a `\r` that ended a line; a `\n` right after it belongs to that line ending.
    after_cr: bool,
}

impl SseParser {
    /// Adds bytes and returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in bytes {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(&mut events),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                _ => self.buffer.push(byte),
            }
        }
        events
    }

    /// The event left when the stream ends without a final blank line (servers that forget it are forgiven).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.buffer.is_empty() {
            self.end_line(&mut events);
        }
        self.end_line(&mut events);
        events.pop()
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let line = String::from_utf8_lossy(&self.buffer).into_owned();
        self.buffer.clear();
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent { event: std::mem::take(&mut self.event), data });
            } else {
                self.event.clear();
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SseEvent, SseParser};

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.to_owned(), data: data.to_owned() }
    }

    #[test]
    fn events_split_anywhere() {
        let text = "event: a\ndata: {\"x\":1}\n\n: comment\ndata:2\r\n\r\ndata: 3\rdata: 4\r\r";
        for split in 0..text.len() {
            let mut parser = SseParser::default();
            let mut events = parser.feed(&text.as_bytes()[..split]);
            events.extend(parser.feed(&text.as_bytes()[split..]));
            assert_eq!(events, vec![ev("a", "{\"x\":1}"), ev("", "2"), ev("", "3\n4")], "split at {split}");
        }
    }

    #[test]
    fn multibyte_characters_split_across_chunks() {
        let text = "data: héllo ✓\n\n".as_bytes();
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for byte in text {
            events.extend(parser.feed(&[*byte]));
        }
        assert_eq!(events, vec![ev("", "héllo ✓")]);
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"data: [DONE]").is_empty());
        assert_eq!(parser.finish(), Some(ev("", "[DONE]")));
    }
}
