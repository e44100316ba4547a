//! `airlock scan`: find secrets in files or standard input with the same
//! engine that redacts what goes to a model.
//!
//! Exit status: 0 when nothing is found, 1 when secrets are found, 2 on
//! error (including a file that could not be read: the scan is incomplete).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use airlock_policy::exit;
use airlock_redact::terminal::one_line;
use airlock_redact::{Encoding, RuleSet, Scanner};
use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;
use sha2::{Digest, Sha256};

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Files or folders to scan (default: the current folder). Folders are
    /// walked in parallel, skipping what .gitignore excludes and `.git`.
    #[arg(value_name = "PATH", conflicts_with = "stdin")]
    paths: Vec<PathBuf>,
    /// Scan standard input instead.
    #[arg(long)]
    stdin: bool,
    /// How to print findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Extra rules in gitleaks v8 TOML, added to the built-in ones (repeatable).
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Use only the rules given with --rules.
    #[arg(long, requires = "rules")]
    no_builtin: bool,
    /// Also scan files that .gitignore and .ignore exclude.
    #[arg(long)]
    no_ignore: bool,
    /// Skip files larger than this many bytes (they are listed on stderr).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    max_file_size: u64,
    /// Worker threads (default: the cores available).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// `path:line:column: rule-id` per finding.
    Text,
    /// A JSON array of findings.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// One finding as printed: never the secret itself, only its digest and length.
#[derive(Debug, Clone, serde::Serialize)]
struct Record {
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    rule: String,
    encoding: Encoding,
    secret_sha256: String,
    length: usize,
    #[serde(skip)]
    offset: usize,
}

#[derive(Default)]
struct Tally {
    records: Vec<Record>,
    files: u64,
    bytes: u64,
    skipped: Vec<String>,
    errors: Vec<String>,
}

pub fn run(args: ScanArgs) -> Result<ExitCode> {
    let (scanner, descriptions) = scanner(&args)?;
    let scanner = Arc::new(scanner);
    let started = Instant::now();
    let mut tally = if args.stdin {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input).context("cannot read standard input")?;
        let mut tally = Tally { files: 1, bytes: input.len() as u64, ..Tally::default() };
        tally.records = findings(&scanner, None, "<stdin>", &input);
        tally
    } else {
        walk(&args, &scanner)?
    };
    tally.records.sort_by(|a, b| a.path.cmp(&b.path).then(a.offset.cmp(&b.offset)));

    // Errors propagate: a reader gone (`| head`) ends the scan quietly in main.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Text => {
            for r in &tally.records {
                let encoded = match r.encoding {
                    Encoding::Plain => String::new(),
                    other => format!(" ({} encoded)", serde_json::to_value(other)?.as_str().unwrap_or_default()),
                };
                writeln!(
                    out,
                    "{}:{}:{}: {}{encoded} [{} bytes, sha256 {}]",
                    one_line(&r.path),
                    r.line,
                    r.column,
                    r.rule,
                    r.length,
                    &r.secret_sha256[..12]
                )?;
            }
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &tally.records)?;
            writeln!(out)?;
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut out, &sarif(&tally.records, &descriptions))?;
            writeln!(out)?;
        }
    }
    out.flush()?;

    for path in &tally.skipped {
        eprintln!("airlock scan: skipped {}: larger than --max-file-size {}", one_line(path), args.max_file_size);
    }
    for e in &tally.errors {
        eprintln!("airlock scan: {}", one_line(e));
    }
    let files_with: std::collections::BTreeSet<&str> = tally.records.iter().map(|r| r.path.as_str()).collect();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "airlock scan: {} secrets in {} files; {} files, {:.1} MB scanned in {:.2} s ({:.0} MB/s)",
        tally.records.len(),
        files_with.len(),
        tally.files,
        tally.bytes as f64 / 1e6,
        secs,
        tally.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    if !tally.errors.is_empty() {
        eprintln!("airlock scan: the scan is incomplete: {} files could not be read", tally.errors.len());
        return Ok(exit::exit_code(exit::USAGE));
    }
    Ok(exit::exit_code(if tally.records.is_empty() { exit::SUCCESS } else { exit::FOUND }))
}

/// The rules: built-in unless --no-builtin, plus every --rules file.
fn scanner(args: &ScanArgs) -> Result<(Scanner, Vec<(String, String)>)> {
    let mut rules = if args.no_builtin { RuleSet::empty() } else { RuleSet::builtin() };
    for file in &args.rules {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let extra = RuleSet::from_gitleaks_toml(&text).with_context(|| format!("in {}", file.display()))?;
        rules.extend(extra);
    }
    if rules.rules().is_empty() {
        bail!("there are no rules to scan with\nhint: the --rules files define no [[rules]]");
    }
    let descriptions = rules.rules().iter().map(|r| (r.id.clone(), r.description.clone())).collect();
    Ok((Scanner::new(rules)?, descriptions))
}

fn walk(args: &ScanArgs, scanner: &Arc<Scanner>) -> Result<Tally> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    for p in &paths {
        if std::fs::symlink_metadata(p).is_err() {
            bail!("{} does not exist", p.display());
        }
    }
    let mut builder = ignore::WalkBuilder::new(&paths[0]);
    for p in &paths[1..] {
        builder.add(p);
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    builder
        .hidden(false) // .env files are where secrets live
        .git_ignore(!args.no_ignore)
        .git_exclude(!args.no_ignore)
        .git_global(!args.no_ignore)
        .ignore(!args.no_ignore)
        .parents(!args.no_ignore)
        .threads(threads)
        .filter_entry(|e| e.file_name() != ".git");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let max = args.max_file_size;
    builder.build_parallel().run(|| {
        let tally = Arc::clone(&tally);
        let scanner = Arc::clone(scanner);
        // Each worker keeps its own tally and merges it when the walk drops it.
        let mut merge = Merge { into: tally, local: Tally::default() };
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    merge.local.errors.push(e.to_string());
                    return ignore::WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            let path = entry.path();
            let shown = path.strip_prefix("./").unwrap_or(path).display().to_string();
            match entry.metadata() {
                Ok(m) if m.len() > max => {
                    merge.local.skipped.push(shown);
                    return ignore::WalkState::Continue;
                }
                Ok(_) => {}
                Err(e) => {
                    merge.local.errors.push(format!("{shown}: {e}"));
                    return ignore::WalkState::Continue;
                }
            }
            match std::fs::read(path) {
                Ok(bytes) => {
                    merge.local.files += 1;
                    merge.local.bytes += bytes.len() as u64;
                    if !is_binary(&bytes) {
                        merge.local.records.extend(findings(&scanner, Some(path), &shown, &bytes));
                    }
                }
                Err(e) => merge.local.errors.push(format!("{shown}: {e}")),
            }
            ignore::WalkState::Continue
        })
    });
    let mut tally = tally.lock().map_err(|_| anyhow::anyhow!("a scanning thread panicked"))?;
    Ok(std::mem::take(&mut *tally))
}

/// A worker's tally, added to the shared one when the worker is done.
struct Merge {
    into: Arc<Mutex<Tally>>,
    local: Tally,
}

impl Drop for Merge {
    fn drop(&mut self) {
        if let Ok(mut t) = self.into.lock() {
            let local = std::mem::take(&mut self.local);
            t.records.extend(local.records);
            t.files += local.files;
            t.bytes += local.bytes;
            t.skipped.extend(local.skipped);
            t.errors.extend(local.errors);
        }
    }
}

/// As ripgrep and git decide: a NUL byte in the first 8 KiB.
fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

fn findings(scanner: &Scanner, path: Option<&Path>, shown: &str, bytes: &[u8]) -> Vec<Record> {
    let found = match path {
        Some(p) => scanner.scan_file(p, bytes),
        None => scanner.scan(bytes),
    };
    found
        .into_iter()
        .map(|f| {
            let secret = &bytes[f.range.clone()];
            let (end_line, end_column) = end_position(bytes, &f.range, f.line, f.column);
            Record {
                path: shown.to_string(),
                line: f.line,
                column: f.column,
                end_line,
                end_column,
                rule: f.rule_id,
                encoding: f.encoding,
                secret_sha256: hex::encode(Sha256::digest(secret)),
                length: secret.len(),
                offset: f.range.start,
            }
        })
        .collect()
}

/// The 1-based line and column just past the secret (SARIF's endColumn is exclusive).
fn end_position(bytes: &[u8], range: &std::ops::Range<usize>, line: usize, column: usize) -> (usize, usize) {
    let secret = &bytes[range.clone()];
    match secret.iter().rposition(|&b| b == b'\n') {
        None => (line, column + secret.len()),
        Some(last) => (line + secret.iter().filter(|&&b| b == b'\n').count(), secret.len() - last),
    }
}

/// A SARIF 2.1.0 log: one run, the rules used, one result per finding.
fn sarif(records: &[Record], rules: &[(String, String)]) -> serde_json::Value {
    let index: std::collections::HashMap<&str, usize> =
        rules.iter().enumerate().map(|(i, (id, _))| (id.as_str(), i)).collect();
    let results: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let mut result = serde_json::json!({
                "ruleId": r.rule,
                "level": "error",
                "message": { "text": format!("A secret ({}) was found: {} bytes, SHA-256 {}.", r.rule, r.length, r.secret_sha256) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&r.path) },
                        "region": {
                            "startLine": r.line,
                            "startColumn": r.column,
                            "endLine": r.end_line,
                            "endColumn": r.end_column,
                        },
                    },
                }],
                "partialFingerprints": { "secretSha256/v1": r.secret_sha256 },
            });
            if let Some(i) = index.get(r.rule.as_str()) {
                result["ruleIndex"] = (*i).into();
            }
            result
        })
        .collect();
    let rules: Vec<serde_json::Value> = rules
        .iter()
        .map(|(id, description)| {
            serde_json::json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": if description.is_empty() { id.as_str() } else { description.as_str() } },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "airlock",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": rules,
                },
            },
            "columnKind": "utf16CodeUnits",
            "results": results,
        }],
    })
}

/// A relative URI reference for a path: forward slashes, percent-encoded
/// where URI syntax requires it.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_uri_syntax_needs() {
        assert_eq!(uri("src/a b/ü.rs"), "src/a%20b/%C3%BC.rs");
        assert_eq!(uri("config/.env"), "config/.env");
    }

    #[test]
    fn the_end_of_a_multiline_secret_is_on_its_last_line() {
        let text = b"k = -----BEGIN\nabc\n-----END\n";
        assert_eq!(end_position(text, &(4..27), 1, 5), (3, 9));
        assert_eq!(end_position(b"x = abcd", &(4..8), 1, 5), (1, 9));
    }

    #[test]
    fn binary_files_are_recognised_by_a_nul_byte() {
        assert!(is_binary(b"\x7fELF\x00\x01"));
        assert!(!is_binary(b"plain text"));
    }
}
