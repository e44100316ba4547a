//! Redacting text that arrives in chunks (model output, tool output) without missing a secret
//! split across chunk boundaries, in bounded memory.

use crate::{Redacted, Redaction, Redactor};

/// Bytes always held back: no single-line secret is longer, and the regexes' right context
/// fits. Text is emitted only up to the last line break before this tail.
const TAIL: usize = 512;
/// If no line break is near, cut at whitespace within this distance before the tail.
const MAX_LINE_SEARCH: usize = 8 * 1024;
/// Raw text kept from before a mid-line cut so regexes still see their left context.
const CONTEXT: usize = 1024;
/// A private key block is held until its END line, up to this size.
pub const PEM_HOLD_CAP: usize = 64 * 1024;

const PEM_BEGIN: &str = "-----BEGIN";
const PEM_END: &str = "-----END";

/// Wraps a [`Redactor`] for streamed text.
///
/// Each [`StreamRedactor::push`] returns the text that is safe to emit now; the rest is held
/// (at most about 512 bytes plus the current line, or a private key block up to
/// [`PEM_HOLD_CAP`]). Concatenating every push and the final [`StreamRedactor::finish`] gives
/// the same text as redacting the whole stream at once, and report ranges refer to the
/// concatenated input stream.
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    /// Input not yet emitted.
    pending: String,
    /// Stream offset of `pending[0]`.
    offset: usize,
    /// Emitted raw input kept as left context after a mid-line cut (empty after a line break).
    context: String,
    /// Index in `pending` of an unterminated private key block, and how far END was searched.
    pem_hold: Option<(usize, usize)>,
    /// An oversized private key is being dropped until its END line; holds its placeholder and
    /// the last bytes seen (to find an END marker split across chunks).
    swallow: Option<(String, String)>,
}

impl StreamRedactor {
    /// Starts a stream; placeholders continue the redactor's numbering.
    pub fn new(redactor: Redactor) -> Self {
        StreamRedactor {
            redactor,
            pending: String::new(),
            offset: 0,
            context: String::new(),
            pem_hold: None,
            swallow: None,
        }
    }

    /// Adds a chunk; returns the redacted text that can be emitted now.
    pub fn push(&mut self, chunk: &str) -> Redacted {
        let mut out = Redacted::default();
        let chunk = match self.swallow.take() {
            Some(state) => match self.swallow_chunk(state, chunk, &mut out) {
                Some(rest) => rest,
                None => return out,
            },
            None => chunk,
        };
        self.pending.push_str(chunk);
        if let Some((hold, searched)) = self.pem_hold {
            let from = floor_boundary(&self.pending, searched.saturating_sub(PEM_END.len()).max(hold));
            if !self.pending[from..].contains(PEM_END) {
                if self.pending.len() - hold > PEM_HOLD_CAP {
                    self.drop_oversized_key(hold, &mut out);
                } else {
                    self.pem_hold = Some((hold, self.pending.len()));
                }
                return out;
            }
            self.pem_hold = None;
        }
        let mut limit = self.pending.len().saturating_sub(TAIL);
        if let Some(hold) = unterminated_private_key(&self.pending) {
            limit = limit.min(hold);
            self.pem_hold = Some((hold, self.pending.len()));
        }
        let cut = choose_cut(&self.pending, limit);
        self.emit(cut, &mut out);
        if let Some((hold, searched)) = &mut self.pem_hold {
            *hold -= cut;
            *searched -= cut;
        }
        out
    }

    /// Ends the stream; returns everything still held, redacted.
    pub fn finish(&mut self) -> Redacted {
        let mut out = Redacted::default();
        if self.swallow.take().is_some() {
            // The oversized key never ended; what remains of it was already dropped.
            return out;
        }
        self.pem_hold = None;
        self.emit(self.pending.len(), &mut out);
        self.context.clear();
        out
    }

    /// Returns the inner redactor (with its placeholder numbering), dropping held text.
    pub fn into_redactor(self) -> Redactor {
        self.redactor
    }

    /// Redacts and emits `pending[..cut]`, moving the cut back if a secret straddles it.
    fn emit(&mut self, mut cut: usize, out: &mut Redacted) {
        if cut == 0 {
            return;
        }
        let ctx_len = self.context.len();
        let mut buf = String::with_capacity(ctx_len + self.pending.len());
        buf.push_str(&self.context);
        buf.push_str(&self.pending);
        let mut findings = self.redactor.scanner().scan_for_redaction(buf.as_bytes());
        // Never emit part of a secret: move the cut before any finding that straddles it.
        while let Some(f) = findings.iter().find(|f| f.range.start < ctx_len + cut && ctx_len + cut < f.range.end) {
            let start = f.range.start.saturating_sub(ctx_len);
            let moved = self.pending[..start].rfind('\n').map_or(start, |p| p + 1);
            cut = floor_boundary(&self.pending, moved.min(start));
            if cut == 0 {
                return;
            }
        }
        findings.retain(|f| f.range.end > ctx_len && f.range.start < ctx_len + cut);
        for f in &mut findings {
            f.range = f.range.start.max(ctx_len) - ctx_len..f.range.end - ctx_len;
        }
        let emitted = self.redactor.apply(&self.pending[..cut], &findings, self.offset);
        out.text.push_str(&emitted.text);
        out.report.extend(emitted.report);
        if self.pending[..cut].ends_with('\n') {
            self.context.clear();
        } else {
            self.context.push_str(&self.pending[..cut]);
            let keep_from = floor_boundary(&self.context, self.context.len().saturating_sub(CONTEXT));
            self.context.drain(..keep_from);
        }
        self.pending.drain(..cut);
        self.offset += cut;
    }

    /// The held key block passed [`PEM_HOLD_CAP`]: emit what precedes it, replace the block with
    /// one `private-key` placeholder and drop input until its END line.
    fn drop_oversized_key(&mut self, hold: usize, out: &mut Redacted) {
        self.pem_hold = None;
        self.emit(hold, out);
        let block = std::mem::take(&mut self.pending);
        let (secret_sha256, placeholder) = self.redactor.placeholder("private-key", block.as_bytes());
        out.text.push_str(&placeholder);
        out.report.push(Redaction {
            rule_id: "private-key".into(),
            range: self.offset..self.offset + block.len(),
            secret_sha256,
            placeholder: placeholder.clone(),
        });
        self.offset += block.len();
        self.context.clear();
        let tail_from = floor_boundary(&block, block.len().saturating_sub(64));
        self.swallow = Some((placeholder, block[tail_from..].to_string()));
    }

    /// Drops `chunk` while inside an oversized key; returns the part after the key's END line.
    fn swallow_chunk<'a>(
        &mut self,
        (placeholder, tail): (String, String),
        chunk: &'a str,
        out: &mut Redacted,
    ) -> Option<&'a str> {
        let joined = format!("{tail}{chunk}");
        let end_in_joined = joined.find(PEM_END).and_then(|at| {
            let after = at + PEM_END.len();
            joined[after..].find("-----").map(|p| after + p + "-----".len())
        });
        let consumed = match end_in_joined {
            Some(end) => end.saturating_sub(tail.len()).min(chunk.len()),
            None => chunk.len(),
        };
        if consumed > 0 {
            let dropped = &chunk[..consumed];
            out.report.push(Redaction {
                rule_id: "private-key".into(),
                range: self.offset..self.offset + consumed,
                secret_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(dropped.as_bytes())),
                placeholder: placeholder.clone(),
            });
            self.offset += consumed;
        }
        if end_in_joined.is_some() {
            return Some(&chunk[consumed..]);
        }
        let tail_from = floor_boundary(&joined, joined.len().saturating_sub(64));
        self.swallow = Some((placeholder, joined[tail_from..].to_string()));
        None
    }
}

/// Index of the first `-----BEGIN … PRIVATE KEY` header in `text` with no `-----END` after it.
fn unterminated_private_key(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(PEM_BEGIN).map(|p| from + p) {
        let header_end = floor_boundary(text, (at + 120).min(text.len()));
        let header = &text[at..header_end];
        let header = header.split('\n').next().unwrap_or(header);
        let after = at + PEM_BEGIN.len();
        match text[after..].find(PEM_END) {
            None if header.contains("PRIVATE KEY") => return Some(at),
            None => return None,
            Some(end) => from = after + end + PEM_END.len(),
        }
    }
    None
}

/// Where to cut `text` so everything before can be emitted: at the last line break before
/// `limit`, else at whitespace, else at `limit` (on a char boundary).
fn choose_cut(text: &str, limit: usize) -> usize {
    if limit == 0 {
        return 0;
    }
    let limit = floor_boundary(text, limit);
    let bytes = text.as_bytes();
    let lo = limit.saturating_sub(MAX_LINE_SEARCH);
    if let Some(p) = bytes[lo..limit].iter().rposition(|&c| c == b'\n') {
        return lo + p + 1;
    }
    let lo = limit.saturating_sub(TAIL);
    if let Some(p) = bytes[lo..limit].iter().rposition(|c| c.is_ascii_whitespace()) {
        return lo + p + 1;
    }
    limit
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::Scanner;
    use crate::builtin::tests::{positives, random};

    /// One compiled scanner for all tests (compiling per case dominates debug-mode test time).
    fn redactor() -> Redactor {
        static SCANNER: std::sync::LazyLock<Arc<Scanner>> = std::sync::LazyLock::new(|| Arc::new(Scanner::builtin()));
        Redactor::new(Arc::clone(&SCANNER))
    }

    fn streamed(text: &str, cuts: &[usize]) -> Redacted {
        let mut s = StreamRedactor::new(redactor());
        let mut out = Redacted::default();
        let mut prev = 0;
        for &cut in cuts {
            let part = s.push(&text[prev..cut]);
            out.text.push_str(&part.text);
            out.report.extend(part.report);
            prev = cut;
        }
        let part = s.push(&text[prev..]);
        out.text.push_str(&part.text);
        out.report.extend(part.report);
        let part = s.finish();
        out.text.push_str(&part.text);
        out.report.extend(part.report);
        out
    }

    /// Several kinds of secret spread over ~2 KB, with multi-byte characters around them.
    fn sample() -> (String, Vec<String>) {
        let p = positives();
        let picks = [0usize, 8, 21, 30, 31, 34, 37];
        let mut text = String::new();
        let mut secrets = Vec::new();
        for (n, &i) in picks.iter().enumerate() {
            text.push_str(&format!("line {n} — some prose é {}\n", random("abc def ghi ", 60, n as u64)));
            text.push_str(&p[i].1);
            text.push('\n');
            secrets.push(p[i].2.clone());
        }
        (text, secrets)
    }

    #[test]
    fn split_at_every_offset_equals_one_shot() {
        let (text, secrets) = sample();
        let one_shot = redactor().redact(&text);
        for secret in &secrets {
            assert!(!one_shot.text.contains(secret.as_str()));
        }
        for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            assert_eq!(streamed(&text, &[cut]), one_shot, "split at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_stream_equals_one_shot() {
        let (text, _) = sample();
        let cuts: Vec<usize> = (1..text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        assert_eq!(streamed(&text, &cuts), redactor().redact(&text));
    }

    #[test]
    fn private_key_is_held_until_its_end() {
        let p = positives();
        let pem = &p.iter().find(|x| x.0 == "private-key").unwrap().2;
        let text = format!("intro\n{}\n{pem}\noutro\n", random("xyz ", 2000, 1));
        let mut s = StreamRedactor::new(redactor());
        let mut emitted = String::new();
        for line in text.split_inclusive('\n') {
            emitted.push_str(&s.push(line).text);
            assert!(!emitted.contains("-----BEGIN"), "key header emitted before END arrived");
        }
        emitted.push_str(&s.finish().text);
        assert_eq!(emitted, redactor().redact(&text).text);
    }

    #[test]
    fn oversized_private_key_is_redacted_whole() {
        let mut s = StreamRedactor::new(redactor());
        let mut out = s.push("before\n-----BEGIN RSA PRIVATE KEY-----\n").text;
        let line = format!("{}\n", random("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/", 64, 3));
        for _ in 0..(PEM_HOLD_CAP / line.len() + 10) {
            out.push_str(&s.push(&line).text);
        }
        out.push_str(&s.push("-----END RSA PRIVATE KEY-----\nafter\n").text);
        out.push_str(&s.finish().text);
        assert_eq!(out, "before\n«secret:private-key:1»\nafter\n");
    }

    #[test]
    fn report_ranges_are_stream_offsets() {
        let (text, _) = sample();
        let cuts: Vec<usize> = (1..text.len()).step_by(37).filter(|&i| text.is_char_boundary(i)).collect();
        let out = streamed(&text, &cuts);
        let one_shot = redactor().redact(&text);
        assert_eq!(out.report, one_shot.report);
        assert!(!out.report.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_chunks_equal_one_shot(seed in 0u64..1000, cuts in proptest::collection::vec(0usize..4000, 0..12)) {
            let (text, _) = sample();
            let text = format!("{}\n{text}", random("lorem ipsum ", (seed % 300) as usize, seed));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).filter(|&c| text.is_char_boundary(c)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(streamed(&text, &cuts), redactor().redact(&text));
        }

        #[test]
        fn planted_secrets_are_removed_and_nothing_else_changes(
            filler in proptest::collection::vec("[a-z ]{0,40}\n?", 1..20),
            picks in proptest::collection::vec(0usize..1000, 1..6),
        ) {
            let p = positives();
            let mut text = String::new();
            let mut planted = Vec::new();
            for (i, f) in filler.iter().enumerate() {
                text.push_str(f);
                if let Some(&k) = picks.get(i) {
                    let (_, example, secret) = &p[k % p.len()];
                    text.push('\n');
                    text.push_str(example);
                    text.push('\n');
                    planted.push(secret.clone());
                }
            }
            let out = redactor().redact(&text);
            for s in &planted {
                prop_assert!(!out.text.contains(s.as_str()));
            }
            // Undo the redactions using the report: the result must be the input.
            let mut restored = String::new();
            let mut pos = 0;
            let mut out_pos = 0;
            for r in &out.report {
                let gap = r.range.start - pos;
                restored.push_str(&out.text[out_pos..out_pos + gap]);
                restored.push_str(&text[r.range.clone()]);
                out_pos += gap + r.placeholder.len();
                pos = r.range.end;
            }
            restored.push_str(&out.text[out_pos..]);
            prop_assert_eq!(restored, text.clone());
            prop_assert_eq!(redactor().redact(&out.text).text, out.text);
        }
    }
}
