//! Text from outside (a model, a tool, a file, a command line) made safe to
//! show on a terminal.
//!
//! A terminal obeys what it prints: `ESC ] 52 ; c ; …` writes the clipboard,
//! `ESC ] 0 ;` and `ESC ] 2 ;` set the window title, `ESC [ …` moves the
//! cursor and rewrites lines already shown, `ESC P` starts a device control
//! string, and the 8-bit C1 forms (U+009B is CSI, U+009D is OSC) do the same
//! on terminals that honour them. Rather than parse sequences (a parser that
//! misses one form lets it through), every control character is replaced by
//! U+FFFD, so no sequence can start: the rest of it is printed as plain text,
//! which also shows the reader that something tried. Only `\n` and `\t` are
//! kept (`\r\n` becomes `\n`; a lone `\r`, which returns to the line's start
//! and lets later text hide earlier text, is replaced).
//!
//! Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, and
//! the marks U+200E, U+200F, U+061C) are replaced too: terminals with bidi
//! support (VTE, for one) reorder what follows them, so a command line could
//! read differently from what runs ("Trojan Source", CVE-2021-42574). They
//! have no use in code, commands or logs that outweighs that. The line and
//! paragraph separators U+2028/U+2029 are replaced as some terminals break
//! lines at them.
//!
//! ```
//! use airlock_redact::terminal;
//!
//! assert_eq!(terminal::sanitize("a\x1b]52;c;aGk=\x07b\n"), "a\u{FFFD}]52;c;aGk=\u{FFFD}b\n");
//! assert_eq!(terminal::one_line("a\nb\tc"), "a b c");
//! ```

use std::borrow::Cow;

/// What replaces a character a terminal could act on.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether a terminal could act on `c` (or reorder the text after it).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2028}' | '\u{2029}'
        )
}

/// `text` for a terminal, its lines kept: every control character but `\n`
/// and `\t`, and every bidirectional control, replaced by U+FFFD; `\r\n` is `\n`.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            c if is_unsafe(c) => out.push(REPLACEMENT),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` for one line of a terminal: as [`sanitize`], and `\n`, `\r` and
/// `\t` become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if is_unsafe(c) => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// A line of JSON with every character a terminal could act on written as a
/// `\uXXXX` escape. JSON serialisers escape C0 controls but leave C1 and
/// bidirectional controls raw; those occur only inside strings, where the
/// escape means the same character, so the line stays the same JSON.
pub fn escape_for_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`sanitize`] for text that arrives in pieces (a model's streamed answer).
/// Each character is judged alone, so a sequence split across pieces is
/// caught like a whole one; only a `\r` at the end of a piece waits for the
/// next, to know whether a `\n` follows.
#[derive(Debug, Default)]
pub struct TerminalStream {
    pending_cr: bool,
}

impl TerminalStream {
    /// A stream with nothing pending.
    pub fn new() -> TerminalStream {
        TerminalStream::default()
    }

    /// The safe text of `piece` (what can be shown of it now).
    pub fn push(&mut self, piece: &str) -> String {
        let mut text = String::with_capacity(piece.len() + 1);
        if std::mem::take(&mut self.pending_cr) {
            text.push('\r');
        }
        text.push_str(piece);
        if text.ends_with('\r') {
            text.pop();
            self.pending_cr = true;
        }
        sanitize(&text).into_owned()
    }

    /// What is still held at the end of the stream.
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.pending_cr) { REPLACEMENT.to_string() } else { String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESC: char = '\x1b';

    #[test]
    fn escape_sequences_are_neutralised() {
        for (attack, what) in [
            ("\x1b]52;c;Y3VybCBldmls\x07", "OSC 52 clipboard write"),
            ("\x1b]52;c;Y3VybCBldmls\x1b\\", "OSC 52 with ST"),
            ("\x1b]0;pwned\x07", "OSC 0 title"),
            ("\x1b]2;pwned\x07", "OSC 2 title"),
            ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "OSC 8 hyperlink"),
            ("\x1b[2J\x1b[H", "CSI clear and home"),
            ("\x1b[1A\x1b[2K", "CSI cursor up, erase line"),
            ("\x1b[31m", "SGR colour"),
            ("\x1bP+q544e\x1b\\", "DCS"),
            ("\x1b_apc\x1b\\", "APC"),
            ("\x1bc", "RIS reset"),
            ("\u{9b}2J", "8-bit CSI"),
            ("\u{9d}52;c;eA==\u{9c}", "8-bit OSC and ST"),
            ("\u{90}q\u{9c}", "8-bit DCS"),
            ("a\x08\x08b", "backspace"),
            ("\x07", "bell"),
            ("\x7f", "DEL"),
            ("\x00\x05\x0e\x0f", "NUL, ENQ (answerback), shift out/in"),
            ("rm -rf x\rls", "lone carriage return"),
            ("safe\u{202E}txt.exe", "right-to-left override"),
            ("\u{2066}x\u{2069}", "isolates"),
            ("\u{200F}\u{061C}", "marks"),
        ] {
            let out = sanitize(attack);
            assert!(!out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{what}: {out:?}");
            assert!(!out.contains(['\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}']), "{what}");
            assert!(out.contains(REPLACEMENT), "{what}: {out:?}");
            let line = one_line(attack);
            assert!(!line.chars().any(char::is_control), "{what}: {line:?}");
        }
    }

    #[test]
    fn json_lines_keep_their_meaning_without_raw_controls() {
        let value = serde_json::json!({"text": "a\u{9b}2J\u{202E}b\x1b]0;t\x07", "n": 1});
        let line = value.to_string();
        let escaped = escape_for_json(&line);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&escaped).unwrap(), value);
        assert!(matches!(escape_for_json("{\"a\":\"b\"}"), Cow::Borrowed(_)));
    }

    #[test]
    fn ordinary_text_passes_unchanged() {
        let text = "fn main() {\n\tprintln!(\"héllo, 世界 👋\");\n}\r\n";
        assert_eq!(sanitize(text), "fn main() {\n\tprintln!(\"héllo, 世界 👋\");\n}\n");
        assert!(matches!(sanitize("plain\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\r\nb"), "a  b");
    }

    #[test]
    fn a_sequence_split_across_pieces_is_caught() {
        let whole = "say \x1b]52;c;Y3VybA==\x07 and \x1b]2;title\x07 done\r\n";
        // Every split point of the stream, in two and in single characters.
        for cut in 0..=whole.len() {
            if !whole.is_char_boundary(cut) {
                continue;
            }
            let mut s = TerminalStream::new();
            let shown = s.push(&whole[..cut]) + &s.push(&whole[cut..]) + &s.finish();
            assert!(!shown.contains(ESC) && !shown.contains('\x07'), "{cut}: {shown:?}");
            assert_eq!(shown, sanitize(whole), "{cut}");
        }
        let mut s = TerminalStream::new();
        let shown: String = whole.chars().map(|c| s.push(&c.to_string())).collect::<String>() + &s.finish();
        assert_eq!(shown, sanitize(whole));
        let mut s = TerminalStream::new();
        assert_eq!(s.push("a\r") + &s.push("b") + &s.finish(), "a\u{FFFD}b");
        let mut s = TerminalStream::new();
        assert_eq!(s.push("a\r") + &s.finish(), "a\u{FFFD}");
    }
}
