//! Replacing secrets with stable placeholders.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Finding, Scanner};

/// One replaced secret. Never contains the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// Id of the rule that found the secret.
    pub rule_id: String,
    /// Byte range of the secret in the input (in stream mode: in the concatenated stream).
    pub range: Range<usize>,
    /// Hex SHA-256 of the secret's bytes, so audits can correlate without storing it.
    pub secret_sha256: String,
    /// The placeholder that replaced it, e.g. `«secret:github-pat:1»`.
    pub placeholder: String,
}

/// Redacted text plus what was replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redacted {
    /// The text with every detected secret replaced by its placeholder.
    pub text: String,
    /// The replacements, in input order.
    pub report: Vec<Redaction>,
}

/// Redacts text for one session: the same secret always gets the same placeholder, so a model
/// can still tell two secrets apart (and refer back to one) without seeing either.
#[derive(Debug)]
pub struct Redactor {
    scanner: Arc<Scanner>,
    /// Secret SHA-256 (hex) -> placeholder.
    placeholders: HashMap<String, String>,
    /// Distinct secrets seen so far; numbers placeholders across rules.
    distinct: usize,
}

impl Redactor {
    /// A redactor with a fresh placeholder numbering.
    pub fn new(scanner: Arc<Scanner>) -> Redactor {
        Redactor { scanner, placeholders: HashMap::new(), distinct: 0 }
    }

    /// The scanner in use.
    pub fn scanner(&self) -> &Arc<Scanner> {
        &self.scanner
    }

    /// Number of distinct secrets redacted so far in this session.
    pub fn distinct_secrets(&self) -> usize {
        self.distinct
    }

    /// Replaces every secret in `text` with its placeholder.
    ///
    /// Idempotent: placeholders never match a rule, so redacting redacted text changes nothing.
    pub fn redact(&mut self, text: &str) -> Redacted {
        let findings = self.scanner.scan_for_redaction(text.as_bytes());
        self.apply(text, &findings, 0)
    }

    /// Like [`Redactor::redact`] for the contents of the file at `path`, so path-aware rules
    /// (`dotenv-secret`) and allowlist paths apply.
    pub fn redact_file(&mut self, path: &Path, text: &str) -> Redacted {
        let findings = self.scanner.scan_file_for_redaction(path, text.as_bytes());
        self.apply(text, &findings, 0)
    }

    /// The placeholder for `secret` found by `rule_id`, allocating the next number if new.
    pub(crate) fn placeholder(&mut self, rule_id: &str, secret: &[u8]) -> (String, String) {
        let digest = hex::encode(Sha256::digest(secret));
        let placeholder = match self.placeholders.get(&digest) {
            Some(p) => p.clone(),
            None => {
                self.distinct += 1;
                let p = format!("«secret:{rule_id}:{}»", self.distinct);
                self.placeholders.insert(digest.clone(), p.clone());
                p
            }
        };
        (digest, placeholder)
    }

    /// Applies `findings` (sorted, non-overlapping, ranges in `text`) to `text`. Report ranges
    /// are shifted by `offset`.
    pub(crate) fn apply(&mut self, text: &str, findings: &[Finding], offset: usize) -> Redacted {
        let mut out = String::with_capacity(text.len());
        let mut report = Vec::with_capacity(findings.len());
        let mut pos = 0;
        for finding in findings {
            let range = char_range(text, finding.range.clone());
            if range.start < pos || range.is_empty() {
                continue;
            }
            out.push_str(&text[pos..range.start]);
            let (secret_sha256, placeholder) = self.placeholder(&finding.rule_id, &text.as_bytes()[range.clone()]);
            out.push_str(&placeholder);
            report.push(Redaction {
                rule_id: finding.rule_id.clone(),
                range: range.start + offset..range.end + offset,
                secret_sha256,
                placeholder,
            });
            pos = range.end;
        }
        out.push_str(&text[pos..]);
        Redacted { text: out, report }
    }
}

/// Widens `range` to char boundaries of `text` (and clamps it).
fn char_range(text: &str, range: Range<usize>) -> Range<usize> {
    let mut start = range.start.min(text.len());
    let mut end = range.end.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::tests::{negatives, positives};

    #[test]
    fn placeholders_are_stable_per_secret_and_numbered_in_order() {
        let mut r = Redactor::new(Arc::new(Scanner::builtin()));
        let p = positives();
        let (a, b) = (&p[8].2, &p[0].2);
        let out = r.redact(&format!("one {a} two {b} three {a}"));
        let names: Vec<&str> = out.report.iter().map(|x| x.placeholder.as_str()).collect();
        assert_eq!(names, vec!["«secret:github-pat:1»", "«secret:aws-access-key-id:2»", "«secret:github-pat:1»"]);
        assert_eq!(out.text, "one «secret:github-pat:1» two «secret:aws-access-key-id:2» three «secret:github-pat:1»");
        // Later calls in the same session reuse the number.
        assert_eq!(r.redact(&format!("again {a}")).text, "again «secret:github-pat:1»");
        assert_eq!(r.distinct_secrets(), 2);
    }

    #[test]
    fn redaction_removes_every_secret_is_idempotent_and_reports_no_secret() {
        let mut r = Redactor::new(Arc::new(Scanner::builtin()));
        for (id, text, secret) in positives() {
            let out = r.redact(&text);
            assert!(!out.text.contains(&secret), "{id}: {}", out.text);
            assert_eq!(r.redact(&out.text).text, out.text, "{id} not idempotent");
            let json = serde_json::to_string(&out.report).unwrap();
            assert!(!json.contains(&secret), "{id}: report leaks the secret");
            assert!(
                out.report
                    .iter()
                    .any(|x| x.rule_id == id && x.secret_sha256 == hex::encode(Sha256::digest(secret.as_bytes())))
            );
        }
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        let mut r = Redactor::new(Arc::new(Scanner::builtin()));
        for text in negatives() {
            let out = r.redact(text);
            assert_eq!(out.text, text);
            assert!(out.report.is_empty());
        }
    }

    #[test]
    fn report_serializes_with_lowercase_fields() {
        let mut r = Redactor::new(Arc::new(Scanner::builtin()));
        let p = positives();
        let out = r.redact(&p[8].1);
        let value = serde_json::to_value(&out.report[0]).unwrap();
        assert_eq!(value["rule_id"], "github-pat");
        assert_eq!(value["placeholder"], "«secret:github-pat:1»");
        assert_eq!(serde_json::to_value(crate::Encoding::JsonEscape).unwrap(), "jsonescape");
    }
}
