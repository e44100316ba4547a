//! The compiled scanner: keyword prefilter, windowed regexes, encodings, overlap resolution.

use std::ops::Range;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{CaptureLocations, Regex, RegexBuilder};
use serde::Serialize;

use crate::RedactError;
use crate::checks::{self, shannon_entropy};
use crate::encoding::{self, Decoded, Encoding};
use crate::rule::{Allowlist, Check, Condition, RegexTarget, Rule, RuleSet, Scope, Tier};

/// One detected secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Id of the rule that found it.
    pub rule_id: String,
    /// Byte range of the secret (the rule's capture group, or the encoded run) in the input.
    pub range: Range<usize>,
    /// 1-based line of `range.start`.
    pub line: usize,
    /// 1-based byte column of `range.start`.
    pub column: usize,
    /// How the secret was encoded in the input.
    pub encoding: Encoding,
}

/// The opening of a redaction placeholder; text inside placeholders is never reported.
pub(crate) const PLACEHOLDER_OPEN: &str = "«secret:";
const PLACEHOLDER_CLOSE: &[u8] = "»".as_bytes();
/// Longest placeholder we recognise (rule ids are short).
const MAX_PLACEHOLDER: usize = 256;

/// How far before a keyword hit a line-scoped match may start.
const MAX_BACK: usize = 512;
/// How far after a keyword hit a line-scoped match may end.
const MAX_FORWARD: usize = 4 * 1024;
/// JWTs and similar can be long; they get a larger forward reach.
const LONG_FORWARD: usize = 16 * 1024;

/// How much of the line around an encoded run is kept as context for the decoded text.
const DECODE_CONTEXT: usize = 256;

/// Regex compilation limits: generous for real rules, bounded for hostile configs.
const REGEX_SIZE_LIMIT: usize = 16 * 1024 * 1024;
/// Also each regex's lazy DFA cache, which grows with the text scanned: 1 MiB
/// instead of 8 took about 0.8 MiB off a wrapped agent's supervisor and
/// left `airlock scan` as fast (bench/scan, 200 MB: 370-388 MB/s either way,
/// the same findings).
const DFA_SIZE_LIMIT: usize = 1024 * 1024;

struct CompiledAllowlist {
    regexes: Vec<LazyRegex>,
    target: RegexTarget,
    stopwords: Vec<String>,
    paths: Vec<Regex>,
    condition: Condition,
}

/// A rule's regex, compiled at its first use: a text seldom wakes more than
/// a few of the built-in rules, and each compiled regex holds its automata
/// (hundreds of kilobytes for some), so the others cost neither start-up
/// time nor memory. `None` inside: it did not compile (only for a rule set
/// that was not checked at [`Scanner::new`]); it then matches nothing.
struct LazyRegex {
    pattern: String,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn get(&self) -> Option<&Regex> {
        self.compiled.get_or_init(|| compile("", "secret", &self.pattern).ok()).as_ref()
    }
}

struct CompiledRule {
    id: String,
    regex: LazyRegex,
    secret_group: usize,
    entropy: Option<f32>,
    path: Option<Regex>,
    allowlists: Vec<CompiledAllowlist>,
    tier: Tier,
    scope: Scope,
    check: Check,
    forward: usize,
}

/// A compiled [`RuleSet`]. Immutable, `Send + Sync`; share it behind an `Arc`.
pub struct Scanner {
    rules: Vec<CompiledRule>,
    global: Vec<CompiledAllowlist>,
    keywords: Option<AhoCorasick>,
    /// Keyword pattern index -> rules using it.
    keyword_rules: Vec<Vec<u32>>,
    /// Pattern index of [`PLACEHOLDER_OPEN`] in `keywords`.
    placeholder_pattern: usize,
    /// Rules without keywords; they run on every text.
    always: Vec<u32>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner").field("rules", &self.rules.iter().map(|r| &r.id).collect::<Vec<_>>()).finish()
    }
}

#[derive(Debug, Clone)]
struct Candidate {
    rule: u32,
    range: Range<usize>,
    tier: Tier,
    encoding: Encoding,
    /// A specific rule matched here but rejected the match (bad checksum, placeholder,
    /// allowlisted): it claims the span so a generic rule cannot report it, then is dropped.
    veto: bool,
}

/// What a scan is for. Scanning for a report prefers precision; redacting text bound for a
/// model prefers recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `airlock scan` and other reports: a token-shaped string that fails its format's
    /// checksum is a fake (fixture, documentation) and is not reported.
    Report,
    /// Outbound redaction: a token-shaped string is redacted even when its checksum fails, since
    /// formats change and a leaked near-miss costs more than a redacted fixture.
    Redact,
}

/// Per-scan inputs that do not change while scanning one text.
struct ScanContext<'a> {
    path: Option<&'a str>,
    active: &'a [bool],
    purpose: Purpose,
}

fn compile(rule_id: &str, what: &'static str, pattern: &str) -> Result<Regex, RedactError> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|err| RedactError::InvalidRegex {
            rule_id: rule_id.to_string(),
            what,
            pattern: pattern.to_string(),
            message: err.to_string(),
        })
}

/// `eager` as for [`compile_rule`]: an allowlist's regexes are only needed once its rule matched.
fn compile_allowlist(rule_id: &str, al: &Allowlist, eager: bool) -> Result<CompiledAllowlist, RedactError> {
    let lazy = |r: &String| -> Result<LazyRegex, RedactError> {
        let compiled = std::sync::OnceLock::new();
        if eager {
            let _ = compiled.set(Some(compile(rule_id, "allowlist", r)?));
        }
        Ok(LazyRegex { pattern: r.clone(), compiled })
    };
    Ok(CompiledAllowlist {
        regexes: al.regexes.iter().map(lazy).collect::<Result<_, _>>()?,
        target: al.regex_target,
        stopwords: al.stopwords.iter().map(|s| s.to_ascii_lowercase()).collect(),
        paths: al.paths.iter().map(|r| compile(rule_id, "allowlist path", r)).collect::<Result<_, _>>()?,
        condition: al.condition,
    })
}

/// `eager`: compile the rule's regex now, and check its groups (a rule set
/// from a file); else at its first use (the built-in rules, checked by tests).
fn compile_rule(rule: &Rule, eager: bool) -> Result<CompiledRule, RedactError> {
    let compiled = std::sync::OnceLock::new();
    if eager {
        let regex = compile(&rule.id, "secret", &rule.regex)?;
        let groups = regex.captures_len() - 1;
        if rule.secret_group > groups {
            return Err(RedactError::InvalidRule {
                rule_id: rule.id.clone(),
                message: format!(
                    "secretGroup {} but the regex has {groups} capture group(s)\nhint: count the `(` that are not `(?:`",
                    rule.secret_group
                ),
            });
        }
        let _ = compiled.set(Some(regex));
    }
    Ok(CompiledRule {
        id: rule.id.clone(),
        regex: LazyRegex { pattern: rule.regex.clone(), compiled },
        secret_group: rule.secret_group,
        entropy: rule.entropy,
        path: rule.path.as_deref().map(|p| compile(&rule.id, "path", p)).transpose()?,
        allowlists: rule
            .allowlists
            .iter()
            .map(|al| compile_allowlist(&rule.id, al, eager))
            .collect::<Result<_, _>>()?,
        tier: rule.tier,
        // Rules without keywords cannot be windowed.
        scope: if rule.keywords.is_empty() { Scope::Whole } else { rule.scope },
        check: rule.check,
        forward: if rule.id == "jwt" { LONG_FORWARD } else { MAX_FORWARD },
    })
}

impl Scanner {
    /// Compiles `rules`. Fails naming the rule whose regex does not compile.
    pub fn new(rules: RuleSet) -> Result<Scanner, RedactError> {
        Scanner::compile(rules, true)
    }

    fn compile(rules: RuleSet, eager: bool) -> Result<Scanner, RedactError> {
        let compiled = rules.rules.iter().map(|r| compile_rule(r, eager)).collect::<Result<Vec<_>, _>>()?;
        let global = rules
            .allowlists
            .iter()
            .map(|al| compile_allowlist("<global allowlist>", al, eager))
            .collect::<Result<_, _>>()?;
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<u32>> = Vec::new();
        let mut always = Vec::new();
        for (index, rule) in rules.rules.iter().enumerate() {
            let index = index as u32;
            if rule.keywords.is_empty() {
                always.push(index);
            }
            for keyword in &rule.keywords {
                let keyword = keyword.to_ascii_lowercase();
                match patterns.iter().position(|p| *p == keyword) {
                    Some(p) => keyword_rules[p].push(index),
                    None => {
                        patterns.push(keyword);
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        // The prefilter reports non-overlapping leftmost-longest hits (much faster than all
        // overlapping hits), so a keyword also triggers the rules of every keyword inside it.
        let closure: Vec<Vec<u32>> = patterns
            .iter()
            .map(|outer| {
                let mut rules: Vec<u32> = patterns
                    .iter()
                    .zip(&keyword_rules)
                    .filter(|(inner, _)| outer.contains(inner.as_str()))
                    .flat_map(|(_, r)| r.iter().copied())
                    .collect();
                rules.sort_unstable();
                rules.dedup();
                rules
            })
            .collect();
        let mut keyword_rules = closure;
        let placeholder_pattern = patterns.len();
        patterns.push(PLACEHOLDER_OPEN.to_string());
        keyword_rules.push(Vec::new());
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|err| RedactError::InvalidRule { rule_id: "<keywords>".into(), message: err.to_string() })?;
        Ok(Scanner { rules: compiled, global, keywords: Some(keywords), keyword_rules, placeholder_pattern, always })
    }

    /// The built-in rules, compiled.
    pub fn builtin() -> Scanner {
        // The built-in rules are compiled in tests (`builtin_rules_compile`), so this cannot fail
        // in a shipped build; fall back to an empty scanner rather than panic regardless. Their
        // regexes are compiled at first use.
        Scanner::compile(RuleSet::builtin(), false).unwrap_or_else(|_| Scanner {
            rules: Vec::new(),
            global: Vec::new(),
            keywords: None,
            keyword_rules: Vec::new(),
            placeholder_pattern: usize::MAX,
            always: Vec::new(),
        })
    }

    /// Ids of the compiled rules in order.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// Finds secrets in `text`. Path-scoped rules (e.g. `dotenv-secret`) do not apply.
    ///
    /// Findings are sorted by start and do not overlap; where candidates overlap the more
    /// specific rule wins, then the longer match.
    pub fn scan(&self, text: &[u8]) -> Vec<Finding> {
        self.scan_text(text, Purpose::Report)
    }

    /// Like [`Scanner::scan`] for the contents of the file at `path`: path-scoped rules apply
    /// when their path regex matches, and allowlist paths are honoured.
    pub fn scan_file(&self, path: &Path, text: &[u8]) -> Vec<Finding> {
        self.scan_path(path, text, Purpose::Report)
    }

    /// Like [`Scanner::scan`], tuned for recall: what [`crate::Redactor`] uses on text bound
    /// for a model. A token whose shape matches a provider's format is reported even when its
    /// checksum does not verify (a classic GitHub token with a wrong CRC32 tail, the jwt.io
    /// sample); placeholders (`ghp_xxxx…`, `EXAMPLE`) are still left alone.
    pub fn scan_for_redaction(&self, text: &[u8]) -> Vec<Finding> {
        self.scan_text(text, Purpose::Redact)
    }

    /// [`Scanner::scan_for_redaction`] for the contents of the file at `path`.
    pub fn scan_file_for_redaction(&self, path: &Path, text: &[u8]) -> Vec<Finding> {
        self.scan_path(path, text, Purpose::Redact)
    }

    fn scan_text(&self, text: &[u8], purpose: Purpose) -> Vec<Finding> {
        let active: Vec<bool> = self.rules.iter().map(|r| r.path.is_none()).collect();
        self.scan_with(text, &ScanContext { path: None, active: &active, purpose })
    }

    fn scan_path(&self, path: &Path, text: &[u8], purpose: Purpose) -> Vec<Finding> {
        let path = path.to_string_lossy().replace('\\', "/");
        let active: Vec<bool> =
            self.rules.iter().map(|r| r.path.as_ref().is_none_or(|p| p.is_match(path.as_bytes()))).collect();
        self.scan_with(text, &ScanContext { path: Some(&path), active: &active, purpose })
    }

    fn scan_with(&self, text: &[u8], ctx: &ScanContext<'_>) -> Vec<Finding> {
        let mut candidates = Vec::new();
        let mut placeholders = Vec::new();
        self.collect(text, ctx, &mut candidates, Some(&mut placeholders));
        self.collect_encoded(text, ctx, &mut candidates);
        self.collect_utf16(text, ctx, &mut candidates);
        for c in &mut candidates {
            c.range = snap_to_chars(text, c.range.clone());
        }
        if !placeholders.is_empty() {
            candidates.retain(|c| !placeholders.iter().any(|p| p.start < c.range.end && c.range.start < p.end));
        }
        let mut accepted = resolve_overlaps(candidates);
        accepted.retain(|c| !c.veto);
        self.to_findings(text, accepted)
    }

    /// Runs every active rule over `text` (one encoding level: plain bytes).
    fn collect(
        &self,
        text: &[u8],
        ctx: &ScanContext<'_>,
        out: &mut Vec<Candidate>,
        mut placeholders: Option<&mut Vec<Range<usize>>>,
    ) {
        let mut hits: Vec<(u32, usize)> = Vec::new();
        if let Some(keywords) = &self.keywords {
            for m in keywords.find_iter(text) {
                let pattern = m.pattern().as_usize();
                if pattern == self.placeholder_pattern {
                    if let Some(spans) = placeholders.as_deref_mut() {
                        let end = (m.end() + MAX_PLACEHOLDER).min(text.len());
                        if let Some(close) =
                            text[m.end()..end].windows(PLACEHOLDER_CLOSE.len()).position(|w| w == PLACEHOLDER_CLOSE)
                        {
                            spans.push(m.start()..m.end() + close + PLACEHOLDER_CLOSE.len());
                        }
                    }
                    continue;
                }
                for &rule in &self.keyword_rules[pattern] {
                    if ctx.active[rule as usize] {
                        hits.push((rule, m.start()));
                    }
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        for group in hits.chunk_by(|a, b| a.0 == b.0) {
            let rule = group[0].0;
            self.run_rule(rule, text, ctx, group.iter().map(|h| h.1), out);
        }
        for &rule in &self.always {
            if ctx.active[rule as usize] {
                self.run_rule(rule, text, ctx, std::iter::once(0), out);
            }
        }
    }

    fn run_rule(
        &self,
        index: u32,
        text: &[u8],
        ctx: &ScanContext<'_>,
        hits: impl Iterator<Item = usize>,
        out: &mut Vec<Candidate>,
    ) {
        let rule = &self.rules[index as usize];
        let Some(regex) = rule.regex.get() else { return };
        let mut locs = regex.capture_locations();
        match rule.scope {
            Scope::Whole => {
                self.run_window(index, text, 0, ctx, &mut locs, out);
            }
            Scope::FromHit => {
                let mut pos = 0;
                for hit in hits {
                    if hit < pos {
                        continue;
                    }
                    match regex.captures_read_at(&mut locs, text, hit) {
                        Some(m) => {
                            pos = m.end().max(m.start() + 1);
                            self.consider(index, text, ctx, &locs, out);
                        }
                        None => break,
                    }
                }
            }
            Scope::Line => {
                let mut scanned_to = 0;
                let mut last_end = 0;
                for hit in hits {
                    if hit < scanned_to {
                        continue;
                    }
                    let lo = hit.saturating_sub(MAX_BACK);
                    let start = text[lo..hit].iter().rposition(|&c| c == b'\n').map_or(lo, |p| lo + p + 1);
                    let hi = (hit + rule.forward).min(text.len());
                    let end = text[hit..hi].iter().position(|&c| c == b'\n').map_or(hi, |p| hit + p);
                    let window = &text[..end];
                    last_end = self.run_window(index, window, start.max(last_end), ctx, &mut locs, out).max(last_end);
                    scanned_to = end.max(hit + 1);
                }
            }
        }
    }

    /// Runs rule `index` on `haystack` from `start`; returns the end of the last match.
    fn run_window(
        &self,
        index: u32,
        haystack: &[u8],
        mut start: usize,
        ctx: &ScanContext<'_>,
        locs: &mut CaptureLocations,
        out: &mut Vec<Candidate>,
    ) -> usize {
        let Some(regex) = self.rules[index as usize].regex.get() else { return start };
        let mut last_end = start;
        while start <= haystack.len() {
            // Find the match with the DFA first; resolve groups only on its span, which is far
            // cheaper than a capturing search over the whole window.
            let Some(found) = regex.find_at(haystack, start) else { break };
            let Some(m) = regex.captures_read_at(locs, &haystack[..found.end()], found.start()) else { break };
            self.consider(index, haystack, ctx, locs, out);
            last_end = m.end();
            start = m.end().max(m.start() + 1);
        }
        last_end
    }

    /// Validates one regex match and records it as a candidate.
    fn consider(
        &self,
        index: u32,
        text: &[u8],
        ctx: &ScanContext<'_>,
        locs: &CaptureLocations,
        out: &mut Vec<Candidate>,
    ) {
        let rule = &self.rules[index as usize];
        let Some((ms, me)) = locs.get(0) else { return };
        let secret = if rule.secret_group > 0 {
            locs.get(rule.secret_group)
        } else if locs.len() == 1 {
            Some((ms, me))
        } else {
            (1..locs.len()).filter_map(|g| locs.get(g)).find(|(s, e)| e > s)
        };
        let Some((ss, se)) = secret else { return };
        if se <= ss {
            return;
        }
        let secret = &text[ss..se];
        let matched = &text[ms..me];
        if rule.entropy.is_some_and(|min| shannon_entropy(secret) <= min) {
            return;
        }
        let format_ok =
            checks::passes(rule.check, matched, secret) || (ctx.purpose == Purpose::Redact && rule.check.is_checksum());
        let rejected = checks::is_placeholder_like(secret) || !format_ok;
        let allowed = !rejected
            && rule
                .allowlists
                .iter()
                .chain(&self.global)
                .any(|al| allowlist_allows(al, text, ss..se, ms..me, ctx.path));
        let veto = allowed || (rejected && rule.tier >= Tier::Specific);
        if (rejected || allowed) && !veto {
            return;
        }
        out.push(Candidate { rule: index, range: ss..se, tier: rule.tier, encoding: classify(rule, secret), veto });
    }

    /// Decodes encoded runs one level deep and scans the decoded text in its line's context
    /// (so `AWS_SECRET_KEY: <base64>` is still an AWS key).
    fn collect_encoded(&self, text: &[u8], ctx: &ScanContext<'_>, out: &mut Vec<Candidate>) {
        let mut inner: Vec<Candidate> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut map: Vec<usize> = Vec::new();
        encoding::for_each_decoded(text, |decoded: &Decoded| {
            let run = decoded.range.clone();
            let lo = run.start.saturating_sub(DECODE_CONTEXT);
            let line_start = text[lo..run.start].iter().rposition(|&c| c == b'\n').map_or(lo, |p| lo + p + 1);
            let hi = (run.end + DECODE_CONTEXT).min(text.len());
            let line_end = text[run.end..hi].iter().position(|&c| c == b'\n').map_or(hi, |p| run.end + p);
            buf.clear();
            map.clear();
            buf.extend_from_slice(&text[line_start..run.start]);
            map.extend(line_start..run.start);
            let decoded_start = buf.len();
            buf.extend_from_slice(&decoded.text);
            match &decoded.map {
                Some(m) => map.extend_from_slice(&m[..m.len() - 1]),
                None => map.extend(std::iter::repeat_n(run.start, decoded.text.len())),
            }
            let decoded_end = buf.len();
            buf.extend_from_slice(&text[run.end..line_end]);
            map.extend(run.end..line_end);
            map.push(line_end);
            inner.clear();
            self.collect(&buf, ctx, &mut inner, None);
            for c in &inner {
                if c.range.end <= decoded_start || c.range.start >= decoded_end {
                    continue;
                }
                let range = encoding::source_range(&map, &c.range);
                // Decoding did not change the secret's bytes: it is plain text that only the
                // decoded context revealed (e.g. a notebook cell's escaped quotes).
                let encoding = if text.get(range.clone()) == buf.get(c.range.clone()) {
                    Encoding::Plain
                } else {
                    decoded.encoding
                };
                out.push(Candidate { rule: c.rule, range, tier: c.tier, encoding, veto: c.veto });
            }
        });
    }

    /// Scans UTF-16 text (LE or BE, with or without a byte-order mark) as the text it encodes:
    /// a secret in a file saved by a Windows editor is still a secret. Each run is scanned
    /// plainly and one encoding level deep, and findings cover the run's bytes.
    fn collect_utf16(&self, text: &[u8], ctx: &ScanContext<'_>, out: &mut Vec<Candidate>) {
        encoding::for_each_utf16_run(text, |decoded: &Decoded| {
            let Some(map) = &decoded.map else { return };
            let mut inner: Vec<Candidate> = Vec::new();
            self.collect(&decoded.text, ctx, &mut inner, None);
            self.collect_encoded(&decoded.text, ctx, &mut inner);
            for c in inner {
                let range = encoding::source_range(map, &c.range);
                out.push(Candidate { rule: c.rule, range, tier: c.tier, encoding: Encoding::Utf16, veto: c.veto });
            }
        });
    }

    fn to_findings(&self, text: &[u8], accepted: Vec<Candidate>) -> Vec<Finding> {
        let mut line = 1;
        let mut line_start = 0;
        let mut pos = 0;
        accepted
            .into_iter()
            .map(|c| {
                for (i, &b) in text[pos..c.range.start].iter().enumerate() {
                    if b == b'\n' {
                        line += 1;
                        line_start = pos + i + 1;
                    }
                }
                pos = c.range.start;
                Finding {
                    rule_id: self.rules[c.rule as usize].id.clone(),
                    line,
                    column: c.range.start - line_start + 1,
                    range: c.range,
                    encoding: c.encoding,
                }
            })
            .collect()
    }
}

fn allowlist_allows(
    al: &CompiledAllowlist,
    text: &[u8],
    secret: Range<usize>,
    matched: Range<usize>,
    path: Option<&str>,
) -> bool {
    let mut results: [Option<bool>; 3] = [None; 3];
    if !al.regexes.is_empty() {
        let target = match al.target {
            RegexTarget::Secret => &text[secret.clone()],
            RegexTarget::Match => &text[matched.clone()],
            RegexTarget::Line => {
                let start = text[..matched.start].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
                let end = text[matched.end..].iter().position(|&c| c == b'\n').map_or(text.len(), |p| matched.end + p);
                &text[start..end]
            }
        };
        results[0] = Some(al.regexes.iter().any(|r| r.get().is_some_and(|r| r.is_match(target))));
    }
    if !al.stopwords.is_empty() {
        let lower = text[secret].to_ascii_lowercase();
        results[1] = Some(al.stopwords.iter().any(|w| lower.windows(w.len().max(1)).any(|x| x == w.as_bytes())));
    }
    if !al.paths.is_empty() {
        results[2] = Some(path.is_some_and(|p| al.paths.iter().any(|r| r.is_match(p.as_bytes()))));
    }
    let mut present = results.iter().flatten();
    match al.condition {
        Condition::Or => present.any(|&r| r),
        Condition::And => {
            let all: Vec<bool> = present.copied().collect();
            !all.is_empty() && all.iter().all(|&r| r)
        }
    }
}

/// Widens `range` so it does not split a UTF-8 sequence.
fn snap_to_chars(text: &[u8], mut range: Range<usize>) -> Range<usize> {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    let mut back = 0;
    while range.start > 0 && range.start < text.len() && is_continuation(text[range.start]) && back < 3 {
        range.start -= 1;
        back += 1;
    }
    let mut fwd = 0;
    while range.end < text.len() && is_continuation(text[range.end]) && fwd < 3 {
        range.end += 1;
        fwd += 1;
    }
    range
}

/// How a plainly matched secret is written: a JSON-escaped value or PEM block, a
/// percent-encoded URL password, or as is.
fn classify(rule: &CompiledRule, secret: &[u8]) -> Encoding {
    if rule.tier == Tier::Container {
        // The service-account rule reports the JSON value itself.
        return Encoding::Plain;
    }
    let json_escape = secret.windows(2).any(|w| {
        w[0] == b'\\' && (matches!(w[1], b'"' | b'\\' | b'/' | b'u') || (w[1] == b'n' && rule.check == Check::PemBody))
    });
    if json_escape {
        return Encoding::JsonEscape;
    }
    let percent = secret.windows(3).any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    if percent && rule.check == Check::UrlPassword {
        return Encoding::Url;
    }
    Encoding::Plain
}

/// Picks non-overlapping candidates: higher tier first, then longer, then encoded, then earlier.
fn resolve_overlaps(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        b.tier
            .cmp(&a.tier)
            .then(b.range.len().cmp(&a.range.len()))
            // Same range found plainly and through a decoding: the decoding describes it better
            // (the encoded candidate exists only when decoding changed the bytes).
            .then((b.encoding != Encoding::Plain).cmp(&(a.encoding != Encoding::Plain)))
            .then(a.range.start.cmp(&b.range.start))
            .then(a.rule.cmp(&b.rule))
    });
    let mut accepted: Vec<Candidate> = Vec::new();
    for c in candidates {
        let at = accepted.partition_point(|a| a.range.start < c.range.start);
        let overlaps_prev = at > 0 && accepted[at - 1].range.end > c.range.start;
        let overlaps_next = at < accepted.len() && accepted[at].range.start < c.range.end;
        if !overlaps_prev && !overlaps_next {
            accepted.insert(at, c);
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine as _;

    use super::*;
    use crate::builtin::tests::random;

    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    fn found(scanner: &Scanner, text: &str) -> Vec<(String, String, Encoding)> {
        scanner.scan(text.as_bytes()).into_iter().map(|f| (f.rule_id, text[f.range].to_string(), f.encoding)).collect()
    }

    #[test]
    fn bad_regex_error_names_the_rule() {
        let mut set = RuleSet::empty();
        set.push(Rule::new("broken-rule", "x", "ab(c"));
        let err = Scanner::new(set).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("rule `broken-rule`") && msg.contains("hint:"), "{msg}");
        let text = "[[rules]]\nid = \"bad-group\"\nregex = '''a(b)'''\nsecretGroup = 3\n";
        let err = Scanner::new(RuleSet::from_gitleaks_toml(text).unwrap()).unwrap_err();
        assert!(err.to_string().contains("rule `bad-group`"), "{err}");
    }

    #[test]
    fn gitleaks_rules_scan_with_allowlists_and_paths() {
        let text = r#"
[allowlist]
paths = ['''^vendor/''']

[[rules]]
id = "acme-token"
description = "ACME token"
regex = '''acme_(?:live|test)_([0-9a-z]{24})'''
secretGroup = 1
keywords = ["acme_"]
entropy = 3.0
[rules.allowlist]
stopwords = ["qqqq"]

[[rules]]
id = "widget-key"
description = "Widget key"
regex = '''(?i)widget[_-]?key\s*=\s*["']?([A-Za-z0-9]{16,})'''
keywords = ["widget"]
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''#\s*ignore-me''']
"#;
        let scanner = Scanner::new(RuleSet::from_gitleaks_toml(text).unwrap()).unwrap();
        let acme = random("abcdefghijklmnopqrstuvwxyz0123456789", 24, 7);
        let input = format!(
            "a = ACME_LIVE_x\nb = acme_live_{acme}\nc = acme_test_qqqqqqqqqqqqqqqqqqqqqqqq\nWIDGET_KEY={acme}\nwidget_key = \"{acme}\" # ignore-me\n"
        );
        let got = found(&scanner, &input);
        assert_eq!(
            got,
            vec![
                ("acme-token".into(), acme.clone(), Encoding::Plain),
                ("widget-key".into(), acme.clone(), Encoding::Plain)
            ]
        );
        assert!(scanner.scan_file(Path::new("vendor/lib.txt"), input.as_bytes()).is_empty());
        assert_eq!(scanner.scan_file(Path::new("src/lib.txt"), input.as_bytes()).len(), 2);
        // Imported and built-in rules combine.
        let mut set = RuleSet::builtin();
        set.extend(RuleSet::from_gitleaks_toml(text).unwrap());
        let scanner = Scanner::new(set).unwrap();
        assert_eq!(found(&scanner, &input).len(), 2);
    }

    #[test]
    fn base64_url_and_json_encoded_secrets_are_found() {
        let scanner = Scanner::builtin();
        let token = crate::builtin::tests::checksummed("ghp_", 5);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{{\"auth\":\"{token}\"}}"));
        let text = format!("config: {b64}\n");
        assert_eq!(found(&scanner, &text), vec![("github-pat".into(), b64.clone(), Encoding::Base64)]);

        let url = format!("https://api.test/cb?t={}%5F{}&x=1", &token[..3], &token[4..]);
        let text = format!("GET {url} HTTP/1.1");
        let encoded = format!("{}%5F{}", &token[..3], &token[4..]);
        assert_eq!(found(&scanner, &text), vec![("github-pat".into(), encoded, Encoding::Url)]);

        let hook = format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            random("ABCDEF0123", 8, 1),
            random("ABCDEF0123", 8, 2),
            random(ALNUM, 24, 3)
        );
        let escaped = hook.replace('/', "\\/");
        let text = format!("{{\"webhook\": \"{escaped}\"}}");
        assert_eq!(found(&scanner, &text), vec![("slack-webhook".into(), escaped.clone(), Encoding::JsonEscape)]);

        let text = format!("{{\"k\": \"\\u0067hp_{}\"}}", &token[4..]);
        let got = found(&scanner, &text);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, Encoding::JsonEscape);
        assert!(got[0].1.starts_with("\\u0067hp_"));
    }

    #[test]
    fn findings_are_sorted_non_overlapping_with_line_and_column() {
        let scanner = Scanner::builtin();
        let a = format!("AKIA{}", random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 3));
        let g = crate::builtin::tests::checksummed("ghp_", 4);
        let text = format!("first line\n  key = {a}\nü token={g}\n");
        let findings = scanner.scan(text.as_bytes());
        assert_eq!(findings.len(), 2);
        assert_eq!((findings[0].line, findings[0].column), (2, 9));
        assert_eq!((findings[1].line, findings[1].column), (3, 10));
        assert!(findings[0].range.end <= findings[1].range.start);
    }

    #[test]
    fn private_key_block_wins_over_what_it_contains() {
        let scanner = Scanner::builtin();
        let body = format!("{}\npassword={}\n{}", random(ALNUM, 64, 1), random(ALNUM, 20, 2), random(ALNUM, 64, 3));
        let pem = format!("-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----");
        let text = format!("x\n{pem}\ny\n");
        assert_eq!(found(&scanner, &text), vec![("private-key".into(), pem, Encoding::Plain)]);
        // A truncated block is still redacted.
        let truncated = format!("-----BEGIN PRIVATE KEY-----\n{}\n{}", random(ALNUM, 64, 4), random(ALNUM, 30, 5));
        assert_eq!(found(&scanner, &truncated), vec![("private-key".into(), truncated.clone(), Encoding::Plain)]);
    }

    #[test]
    fn scanner_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Scanner>();
    }
}
