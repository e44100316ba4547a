//! `read_file`: numbered lines of a text file, within a line window and a byte cap.

use std::io::{self, BufRead, BufReader, Read};

use serde::Deserialize;

use crate::ToolError;
use crate::workspace::{Limits, Workspace};

/// Bytes inspected for a NUL to call a file binary (as git and ripgrep do).
const BINARY_SNIFF: u64 = 8 * 1024;
/// Up to this size the lines after a window are counted, to tell the model the total.
const COUNT_REST_MAX: u64 = 8 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadArgs {
    path: String,
    offset: Option<u64>,
    limit: Option<u64>,
}

pub(crate) fn read_file(ws: &Workspace, args: ReadArgs) -> Result<String, ToolError> {
    let opened = ws.open_path(&args.path)?;
    let mut file = ws.read_file(&opened)?;
    let io_err = |source| ToolError::Io { path: opened.shown.clone(), source };
    let size = opened.meta.len();
    let mut head = Vec::new();
    (&mut file).take(BINARY_SNIFF).read_to_end(&mut head).map_err(io_err)?;
    if head.contains(&0) {
        return Ok(describe_binary(&head, size));
    }
    let start = args.offset.unwrap_or(1).max(1);
    let limit = args.limit.unwrap_or(ws.limits().read_default_lines).max(1);
    let reader = BufReader::new(io::Cursor::new(head).chain(file));
    let window = Window::read(reader, start, limit, ws.limits(), size <= COUNT_REST_MAX).map_err(io_err)?;
    if window.lines.is_empty() {
        if window.total == Some(0) && start == 1 {
            return Ok("(empty file)".to_string());
        }
        return Err(ToolError::OffsetPastEnd { path: opened.shown, offset: start, lines: window.total.unwrap_or(0) });
    }
    Ok(window.render(start, ws.limits()))
}

/// Why a window stopped before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Limit,
    Bytes,
}

/// The lines shown, and what is known about the rest.
#[derive(Debug)]
struct Window {
    lines: Vec<(u64, String)>,
    stop: Option<Stop>,
    /// Lines in the file, when counted.
    total: Option<u64>,
}

impl Window {
    fn read(mut reader: impl BufRead, start: u64, limit: u64, limits: &Limits, count_rest: bool) -> io::Result<Window> {
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        let mut n = 0u64;
        let mut bytes = 0usize;
        let mut stop = None;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Ok(Window { lines, stop, total: Some(n) });
            }
            n += 1;
            if n < start {
                continue;
            }
            if n - start >= limit {
                stop = Some(Stop::Limit);
                break;
            }
            let text = cut_line(&String::from_utf8_lossy(strip_eol(&buf)), limits.line_max_chars);
            let cost = text.len() + digits(n) + 2;
            if bytes + cost > limits.read_max_bytes && !lines.is_empty() {
                stop = Some(Stop::Bytes);
                break;
            }
            bytes += cost;
            lines.push((n, text));
        }
        let total = if count_rest {
            loop {
                buf.clear();
                if reader.read_until(b'\n', &mut buf)? == 0 {
                    break Some(n);
                }
                n += 1;
            }
        } else {
            None
        };
        Ok(Window { lines, stop, total })
    }

    fn render(&self, start: u64, limits: &Limits) -> String {
        let last = self.lines.last().map_or(start, |(n, _)| *n);
        let width = digits(last);
        let mut out = String::new();
        for (n, text) in &self.lines {
            out.push_str(&format!("{n:>width$}\t{text}\n"));
        }
        let of_total = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
        match self.stop {
            Some(Stop::Limit) => {
                out.push_str(&format!("[lines {start}-{last}{of_total}; read on with offset={}]\n", last + 1));
            }
            Some(Stop::Bytes) => out.push_str(&format!(
                "[truncated at {} KiB after line {last}{of_total}; read on with offset={}]\n",
                limits.read_max_bytes / 1024,
                last + 1
            )),
            None => {}
        }
        out.truncate(out.trim_end_matches('\n').len());
        out
    }
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Cuts `text` after `max` characters, with a marker saying how long it was.
pub(crate) fn cut_line(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… [line cut: {} chars]", &text[..at], text.chars().count()),
    }
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// A one-line description of a binary file, from its magic bytes.
fn describe_binary(head: &[u8], size: u64) -> String {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG", "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF8", "GIF image"),
        (b"%PDF", "PDF document"),
        (b"PK\x03\x04", "zip archive"),
        (b"\x1f\x8b", "gzip data"),
        (b"\x7fELF", "ELF executable"),
        (b"\0asm", "WebAssembly module"),
        (b"SQLite format 3\0", "SQLite database"),
        (b"\x28\xb5\x2f\xfd", "zstd data"),
    ];
    let kind = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)).map_or("binary data", |(_, kind)| kind);
    format!("(binary file: {kind}, {size} bytes; not shown)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str, start: u64, limit: u64, limits: &Limits) -> Window {
        Window::read(text.as_bytes(), start, limit, limits, true).unwrap()
    }

    #[test]
    fn numbers_lines_aligned_to_the_widest() {
        let text: String = (1..=12).map(|i| format!("l{i}\n")).collect();
        let w = window(&text, 8, 5, &Limits::default());
        assert_eq!(w.render(8, &Limits::default()), " 8\tl8\n 9\tl9\n10\tl10\n11\tl11\n12\tl12");
    }

    #[test]
    fn limit_says_how_to_read_on() {
        let w = window("a\nb\nc\n", 1, 2, &Limits::default());
        assert_eq!(w.render(1, &Limits::default()), "1\ta\n2\tb\n[lines 1-2 of 3; read on with offset=3]");
    }

    #[test]
    fn byte_cap_marks_truncation() {
        let limits = Limits { read_max_bytes: 1024, ..Limits::default() };
        let text: String = (0..100).map(|_| format!("{}\n", "x".repeat(99))).collect();
        let out = window(&text, 1, 2000, &limits).render(1, &limits);
        assert!(out.len() <= 1024 + 100, "{}", out.len());
        assert!(out.ends_with("[truncated at 1 KiB after line 10 of 100; read on with offset=11]"), "{out}");
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        assert_eq!(cut_line("héllo", 2), "hé… [line cut: 5 chars]");
        assert_eq!(cut_line("hi", 2), "hi");
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let w = window("a\r\nb", 1, 10, &Limits::default());
        assert_eq!(w.render(1, &Limits::default()), "1\ta\n2\tb");
        assert_eq!(w.total, Some(2));
    }

    #[test]
    fn binary_kinds() {
        assert_eq!(describe_binary(b"\x89PNG\r\n\x1a\n\0", 9), "(binary file: PNG image, 9 bytes; not shown)");
        assert_eq!(describe_binary(b"a\0b", 3), "(binary file: binary data, 3 bytes; not shown)");
    }
}
