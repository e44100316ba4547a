//! Finding encoded runs (base64, URL percent-encoding, JSON string escapes) and decoding them
//! one level deep, so a secret hidden by an encoding is still found.
//!
//! Everything here is cheap to reject: a run is only decoded when it is plausible, and sizes
//! are capped, so ordinary source code costs one table lookup per byte.

use std::ops::Range;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;

/// How the secret appeared in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// As is.
    Plain,
    /// Inside a base64 (standard or URL-safe) run; the finding covers the whole run.
    Base64,
    /// Percent-encoded (`%XX`); the finding covers the encoded form of the secret.
    Url,
    /// Inside a JSON string with escapes (`\uXXXX`, `\/`); the finding covers the escaped form.
    JsonEscape,
    /// In UTF-16 text (LE or BE); the finding covers the secret's code units.
    Utf16,
}

/// Shortest base64 run worth decoding.
const MIN_BASE64_RUN: usize = 20;
/// Longest run or segment decoded; larger blobs are data, not credentials.
const MAX_DECODED_RUN: usize = 64 * 1024;
/// How far a URL or JSON segment extends around its first escape.
const MAX_SEGMENT_REACH: usize = 4 * 1024;

/// A decoded region of the input.
pub(crate) struct Decoded {
    /// Range in the input.
    pub range: Range<usize>,
    /// Decoded bytes.
    pub text: Vec<u8>,
    /// For each decoded byte, the input offset of the escape that produced it, plus one final
    /// entry for the end of the range. `None` for base64, where findings cover the whole run.
    pub map: Option<Vec<usize>>,
    /// Which encoding.
    pub encoding: Encoding,
}

/// Maps `range` of a decoded buffer back to the input, given for each buffer byte the input
/// offset that produced it (plus one final end offset).
pub(crate) fn source_range(map: &[usize], range: &Range<usize>) -> Range<usize> {
    let last_index = map.len().saturating_sub(1);
    let start = map[range.start.min(last_index)];
    let last = range.end.saturating_sub(1).max(range.start).min(last_index);
    let end = map[last..].iter().copied().find(|&p| p != map[last]).unwrap_or(map[last_index]);
    start..end.max(start)
}

const fn base64_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_';
        i += 1;
    }
    t
}

static BASE64_CHAR: [bool; 256] = base64_table();

fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        _ => 62,
    }
}

fn engine(url_safe: bool) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    if url_safe {
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
    } else {
        GeneralPurpose::new(&base64::alphabet::STANDARD, config)
    }
}

fn is_texty(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && bytes.iter().all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Decodes `run` if it plausibly is base64 of text.
fn decode_base64_run(run: &[u8]) -> Option<Vec<u8>> {
    let body_len = run.iter().take_while(|&&c| c != b'=').count();
    if !(MIN_BASE64_RUN..=MAX_DECODED_RUN).contains(&body_len) || body_len % 4 == 1 {
        return None;
    }
    let body = &run[..body_len];
    // Each 4-char group's first sextet holds the top bits of a decoded byte: for ASCII text it
    // is below 32. This rejects identifiers, hex and random tokens without decoding them.
    if body.chunks(4).any(|g| sextet(g[0]) >= 32) {
        return None;
    }
    let standard = body.iter().any(|c| matches!(c, b'+' | b'/'));
    let url_safe = body.iter().any(|c| matches!(c, b'-' | b'_'));
    if standard && url_safe {
        return None;
    }
    let decoded = engine(url_safe).decode(run).ok()?;
    (decoded.len() >= 8 && is_texty(&decoded)).then_some(decoded)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_pct_escape(text: &[u8], i: usize) -> bool {
    text.get(i) == Some(&b'%')
        && text.get(i + 1).and_then(|&c| hex_val(c)).is_some()
        && text.get(i + 2).and_then(|&c| hex_val(c)).is_some()
}

fn url_segment_char(c: u8) -> bool {
    c > b' ' && !matches!(c, b'"' | b'\'' | b'<' | b'>' | b'`' | 0x7f)
}

fn decode_url_segment(text: &[u8], at: usize) -> Decoded {
    let lo = at.saturating_sub(MAX_SEGMENT_REACH);
    let start = text[lo..at].iter().rposition(|&c| !url_segment_char(c)).map_or(lo, |p| lo + p + 1);
    let hi = (at + MAX_SEGMENT_REACH).min(text.len());
    let end = text[at..hi].iter().position(|&c| !url_segment_char(c)).map_or(hi, |p| at + p);
    let mut out = Vec::with_capacity(end - start);
    let mut map = Vec::with_capacity(end - start + 1);
    let mut i = start;
    while i < end {
        if i + 2 < end && is_pct_escape(text, i) {
            let (Some(h), Some(l)) = (hex_val(text[i + 1]), hex_val(text[i + 2])) else { break };
            out.push(h << 4 | l);
            map.push(i);
            i += 3;
        } else {
            out.push(text[i]);
            map.push(i);
            i += 1;
        }
    }
    map.push(end);
    Decoded { range: start..end, text: out, map: Some(map), encoding: Encoding::Url }
}

fn is_escaped(text: &[u8], i: usize) -> bool {
    text[..i].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1
}

fn decode_json_segment(text: &[u8], at: usize) -> Decoded {
    let lo = at.saturating_sub(MAX_SEGMENT_REACH);
    let mut start = lo;
    for p in (lo..at).rev() {
        if text[p] == b'\n' || (text[p] == b'"' && !is_escaped(text, p)) {
            start = p + 1;
            break;
        }
    }
    let hi = (at + MAX_SEGMENT_REACH).min(text.len());
    let mut end = hi;
    let mut p = at;
    while p < hi {
        match text[p] {
            b'\\' => p += 2,
            b'"' | b'\n' => {
                end = p;
                break;
            }
            _ => p += 1,
        }
    }
    let end = end.min(hi);
    let mut out = Vec::with_capacity(end - start);
    let mut map = Vec::with_capacity(end - start + 1);
    let mut i = start;
    while i < end {
        if text[i] != b'\\' || i + 1 >= end {
            out.push(text[i]);
            map.push(i);
            i += 1;
            continue;
        }
        let simple = match text[i + 1] {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            map.push(i);
            i += 2;
            continue;
        }
        let Some(unit) = json_hex4(text, i, end) else {
            out.push(text[i]);
            map.push(i);
            i += 1;
            continue;
        };
        let (ch, len) = if (0xD800..0xDC00).contains(&unit) {
            match json_hex4(text, i + 6, end).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                Some(low) => (char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), 12),
                None => (None, 6),
            }
        } else {
            (char::from_u32(unit), 6)
        };
        let mut buf = [0u8; 4];
        for &b in ch.unwrap_or(char::REPLACEMENT_CHARACTER).encode_utf8(&mut buf).as_bytes() {
            out.push(b);
            map.push(i);
        }
        i += len;
    }
    map.push(end);
    Decoded { range: start..end, text: out, map: Some(map), encoding: Encoding::JsonEscape }
}

fn json_hex4(text: &[u8], i: usize, end: usize) -> Option<u32> {
    if i + 6 > end || text[i] != b'\\' || text[i + 1] != b'u' {
        return None;
    }
    text[i + 2..i + 6].iter().try_fold(0u32, |acc, &c| hex_val(c).map(|v| acc << 4 | u32::from(v)))
}

/// `%XX` or a JSON `\\uXXXX` / `\\/` escape: where URL and JSON segments start. The regex's
/// literal prefilter (`%`, `\\`) skips ordinary text at memchr speed.
fn escape_regex() -> Option<&'static regex::bytes::Regex> {
    static RE: std::sync::OnceLock<Option<regex::bytes::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::bytes::Regex::new(r#"%[0-9A-Fa-f]{2}|\\(?:u[0-9A-Fa-f]{4}|[/"\\])"#).ok()).as_ref()
}

/// Finds plausible encoded regions in `text` and decodes them, calling `f` for each.
pub(crate) fn for_each_decoded(text: &[u8], mut f: impl FnMut(&Decoded)) {
    for_each_base64_run(text, |range| {
        if let Some(decoded) = decode_base64_run(&text[range.clone()]) {
            f(&Decoded { range, text: decoded, map: None, encoding: Encoding::Base64 });
        }
    });
    let Some(escapes) = escape_regex() else { return };
    let mut url_done = 0;
    let mut json_done = 0;
    for m in escapes.find_iter(text) {
        let at = m.start();
        if text[at] == b'%' {
            if at >= url_done {
                let decoded = decode_url_segment(text, at);
                url_done = decoded.range.end.max(at + 1);
                // Real percent-encoding escapes reserved characters (`%3D`, `%2F`, `%40`…) or sits
                // in a URL / query string; `%5A` alone inside a literal is just part of a value.
                let segment = &text[decoded.range.clone()];
                let escapes_reserved = decoded
                    .text
                    .iter()
                    .zip(decoded.map.iter().flatten())
                    .any(|(&b, &src)| text[src] == b'%' && !b.is_ascii_alphanumeric());
                if escapes_reserved
                    || segment.windows(3).any(|w| w == b"://")
                    || segment.contains(&b'?')
                    || segment.contains(&b'&')
                {
                    f(&decoded);
                }
            }
        } else if at >= json_done && !is_escaped(text, at) {
            let decoded = decode_json_segment(text, at);
            json_done = decoded.range.end.max(at + 1);
            f(&decoded);
        }
    }
}

/// Shortest run of UTF-16 code units worth decoding (a key and a short secret).
const MIN_UTF16_UNITS: usize = 8;

/// Calls `f` with each run of UTF-16 text in `text`: code units whose high byte is zero (ASCII
/// and Latin-1, which is what keys and secrets are written in), alternating with their zero
/// byte. Text without a NUL byte costs one `memchr`.
///
/// Little- and big-endian text look alike once a run has started (`a\0b\0` and `\0a\0b`);
/// what differs is which side of each character its zero byte is on, so a run is big-endian
/// when the byte before its first character is zero. Each decoded byte maps to the start of
/// its code unit, so findings cover whole code units.
pub(crate) fn for_each_utf16_run(text: &[u8], mut f: impl FnMut(&Decoded)) {
    if !text.contains(&0) {
        return;
    }
    let n = text.len();
    let is_char = |b: u8| (0x01..0x80).contains(&b);
    let mut i = 0;
    while i + 1 < n {
        if !is_char(text[i]) || text[i + 1] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end + 1 < n && is_char(text[end]) && text[end + 1] == 0 {
            end += 2;
        }
        // Code units are aligned to the start of the text (a byte-order mark is two bytes,
        // and three-byte U+FFFD after lossy decoding twice), so big-endian characters sit at
        // odd offsets after their zero byte.
        let big_endian = start % 2 == 1 && text[start - 1] == 0;
        // Big-endian: the last character may have no zero byte after it (end of input).
        let mut last = end;
        if big_endian && end < n && is_char(text[end]) && text[end - 1] == 0 {
            last = end + 1;
        }
        let chars: Vec<usize> = (start..last).step_by(2).collect();
        if chars.len() >= MIN_UTF16_UNITS && chars.len() <= MAX_DECODED_RUN {
            let unit = |p: usize| if big_endian { p - 1 } else { p };
            let mut map: Vec<usize> = chars.iter().map(|&p| unit(p)).collect();
            let last_char = chars.last().copied().unwrap_or(start);
            let range_end = if big_endian { last_char + 1 } else { last_char + 2 };
            map.push(range_end);
            let decoded = chars.iter().map(|&p| text[p]).collect();
            f(&Decoded { range: unit(start)..range_end, text: decoded, map: Some(map), encoding: Encoding::Utf16 });
        }
        i = end.max(i + 1);
    }
}

/// Calls `f` with each maximal base64-alphabet run of at least [`MIN_BASE64_RUN`] characters
/// (plus up to two `=`). Skips ahead: if the byte `MIN_BASE64_RUN - 1` ahead is not in the
/// alphabet, no long run can start before it.
fn for_each_base64_run(text: &[u8], mut f: impl FnMut(Range<usize>)) {
    let n = text.len();
    // Invariant: `i == 0` or `text[i - 1]` is not in the alphabet, so runs start at or after `i`.
    let mut i = 0;
    while i + MIN_BASE64_RUN <= n {
        let probe = i + MIN_BASE64_RUN - 1;
        if !BASE64_CHAR[text[probe] as usize] {
            i = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > i && BASE64_CHAR[text[start - 1] as usize] {
            start -= 1;
        }
        let mut end = probe + 1;
        while end < n && BASE64_CHAR[text[end] as usize] {
            end += 1;
        }
        let mut padded = end;
        while padded < n && padded - end < 2 && text[padded] == b'=' {
            padded += 1;
        }
        if end - start >= MIN_BASE64_RUN {
            f(start..padded);
        }
        i = if padded > end { padded } else { end + 1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(Range<usize>, String, Encoding)> {
        let mut v = Vec::new();
        for_each_decoded(text.as_bytes(), |d| {
            v.push((d.range.clone(), String::from_utf8_lossy(&d.text).into_owned(), d.encoding))
        });
        v
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(if big_endian { &[0xFE, 0xFF] } else { &[0xFF, 0xFE] });
        }
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() });
        }
        out
    }

    #[test]
    fn utf16_runs_decode_in_both_byte_orders_and_map_to_code_units() {
        for (big_endian, bom) in [(false, false), (false, true), (true, false), (true, true)] {
            let bytes = utf16("key = \"abcdefgh\"\r\nnext", big_endian, bom);
            let mut runs = Vec::new();
            for_each_utf16_run(&bytes, |d| runs.push((d.range.clone(), d.text.clone(), d.map.clone())));
            assert_eq!(runs.len(), 1, "{big_endian} {bom}");
            let (range, text, map) = &runs[0];
            assert_eq!(text, b"key = \"abcdefgh\"\r\nnext");
            assert_eq!(*range, usize::from(bom) * 2..bytes.len(), "{big_endian} {bom}");
            let at = 7;
            let src = source_range(map.as_ref().unwrap(), &(at..at + 8));
            assert_eq!(bytes[src].to_vec(), utf16("abcdefgh", big_endian, false));
        }
        let mut none = true;
        for_each_utf16_run(b"plain ascii text with no nul bytes at all", |_| none = false);
        for_each_utf16_run(b"\0\0\0\x01\x02\x03\0", |_| none = false);
        assert!(none);
    }

    #[test]
    fn base64_of_text_is_decoded() {
        let enc = base64::engine::general_purpose::STANDARD.encode("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789");
        let text = format!("data: {enc} end");
        let found = all(&text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].0.clone()], enc);
        assert!(found[0].1.starts_with("token=ghp_"));
    }

    #[test]
    fn identifiers_hex_and_binary_are_not_decoded() {
        let text = "some_really_long_function_name_here da39a3ee5e6b4b0d3255bfef95601890afd80709 iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB";
        assert!(all(text).is_empty(), "{:?}", all(text));
    }

    #[test]
    fn url_segment_maps_back_exactly() {
        let text = "see https://x.test/cb?t=ghp%5Fabc&y=1 now";
        let mut seen = false;
        for_each_decoded(text.as_bytes(), |d| {
            assert_eq!(d.encoding, Encoding::Url);
            let decoded = std::str::from_utf8(&d.text).unwrap();
            let at = decoded.find("ghp_abc").unwrap();
            let src = source_range(d.map.as_ref().unwrap(), &(at..at + 7));
            assert_eq!(&text[src], "ghp%5Fabc");
            seen = true;
        });
        assert!(seen);
    }

    #[test]
    fn json_escapes_are_decoded_with_surrogates() {
        let text = r#"{"url": "https:\/\/hooks.slack.com\/x", "e": "\ud83d\ude00\u0041"}"#;
        let found = all(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1, "https://hooks.slack.com/x");
        assert_eq!(found[1].1, "😀A");
        assert_eq!(found[0].2, Encoding::JsonEscape);
    }
}
