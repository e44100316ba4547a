//! The labeled corpus (`tests/corpus`, from `gen_corpus.py`): precision and
//! recall per rule, with the bars the engine must hold (recall 0.98,
//! precision 0.95), and redaction of every corpus file leaving no labeled
//! secret behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_redact::{Encoding, Redactor, Scanner};

const RECALL_BAR: f64 = 0.98;
const PRECISION_BAR: f64 = 0.95;

#[derive(serde::Deserialize)]
struct Label {
    file: String,
    rule: String,
    secret: String,
    encoding: String,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn labels() -> Vec<Label> {
    let text = std::fs::read_to_string(corpus().join("labels.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every corpus file but the labels and the README, relative to the corpus.
fn files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&corpus(), &corpus(), &mut out);
    out.retain(|f| f != "labels.jsonl" && f != "README.md");
    out.sort();
    out
}

#[derive(Default, Debug)]
struct Count {
    labeled: usize,
    found: usize,
    reported: usize,
    correct: usize,
    misses: Vec<String>,
    false_positives: Vec<String>,
}

#[test]
fn every_rule_holds_its_recall_and_precision_bars_on_the_corpus() {
    let scanner = Scanner::builtin();
    let labels = labels();
    let mut by_file: BTreeMap<&str, Vec<(std::ops::Range<usize>, &Label)>> = BTreeMap::new();
    for label in &labels {
        let text = std::fs::read(corpus().join(&label.file)).unwrap();
        let at = text
            .windows(label.secret.len())
            .position(|w| w == label.secret.as_bytes())
            .unwrap_or_else(|| panic!("label for {} names a secret not in the file", label.file));
        by_file.entry(&label.file).or_default().push((at..at + label.secret.len(), label));
    }
    let mut counts: BTreeMap<String, Count> = BTreeMap::new();
    for label in &labels {
        counts.entry(label.rule.clone()).or_default().labeled += 1;
    }
    let overlaps = |a: &std::ops::Range<usize>, b: &std::ops::Range<usize>| a.start < b.end && b.start < a.end;
    for file in files() {
        let text = std::fs::read(corpus().join(&file)).unwrap();
        let findings = scanner.scan_file(Path::new(&file), &text);
        let planted = by_file.get(file.as_str()).map(Vec::as_slice).unwrap_or_default();
        for f in &findings {
            let count = counts.entry(f.rule_id.clone()).or_default();
            count.reported += 1;
            let hit = planted.iter().any(|(range, label)| label.rule == f.rule_id && overlaps(range, &f.range));
            if hit {
                count.correct += 1;
            } else {
                let shown = String::from_utf8_lossy(&text[f.range.clone()]).chars().take(60).collect::<String>();
                count.false_positives.push(format!("{file}:{}: {shown}", f.line));
            }
        }
        for (range, label) in planted {
            let found = findings.iter().any(|f| {
                f.rule_id == label.rule
                    && overlaps(range, &f.range)
                    && (label.encoding == "plain") == (f.encoding == Encoding::Plain)
            });
            let count = counts.entry(label.rule.clone()).or_default();
            if found {
                count.found += 1;
            } else {
                count.misses.push(format!(
                    "{file} ({}): {}",
                    label.encoding,
                    label.secret.chars().take(60).collect::<String>()
                ));
            }
        }
    }

    let mut failures = Vec::new();
    println!("{:<26} {:>7} {:>7} {:>8} {:>9}", "rule", "labeled", "found", "recall", "precision");
    for (rule, c) in &counts {
        let recall = if c.labeled == 0 { 1.0 } else { c.found as f64 / c.labeled as f64 };
        let precision = if c.reported == 0 { 1.0 } else { c.correct as f64 / c.reported as f64 };
        println!("{rule:<26} {:>7} {:>7} {recall:>8.3} {precision:>9.3}", c.labeled, c.found);
        if c.labeled == 0 {
            failures.push(format!("{rule}: no labeled secrets in the corpus"));
        }
        if recall < RECALL_BAR {
            failures.push(format!("{rule}: recall {recall:.3} < {RECALL_BAR}; missed: {:#?}", c.misses));
        }
        if precision < PRECISION_BAR {
            failures
                .push(format!("{rule}: precision {precision:.3} < {PRECISION_BAR}; false: {:#?}", c.false_positives));
        }
    }
    for id in scanner.rule_ids() {
        if !counts.contains_key(id) {
            failures.push(format!("{id}: the corpus has no secret for this built-in rule"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn redacting_any_corpus_file_leaves_no_labeled_secret() {
    let scanner = Arc::new(Scanner::builtin());
    let labels = labels();
    let mut leaked = Vec::new();
    for file in files() {
        let Ok(text) = std::fs::read_to_string(corpus().join(&file)) else { continue };
        let mut redactor = Redactor::new(Arc::clone(&scanner));
        let out = redactor.redact_file(Path::new(&file), &text);
        for label in labels.iter().filter(|l| l.file == file) {
            if out.text.contains(&label.secret) {
                leaked.push(format!("{file}: {} ({})", label.rule, label.encoding));
            }
        }
        for r in &out.report {
            assert!(
                !out.text.contains(&text[r.range.clone()]) || r.range.len() < 8,
                "{file}: a reported secret is still there"
            );
        }
    }
    assert!(leaked.is_empty(), "secrets left after redaction:\n{}", leaked.join("\n"));
}
