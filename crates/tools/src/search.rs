//! `glob` and `grep`: walks that honour `.gitignore` (hidden files included, `.git` skipped),
//! reading every file through the workspace so the path policy and confinement apply.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use globset::{GlobBuilder, GlobMatcher};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkMatch};
use ignore::WalkBuilder;
use serde::Deserialize;

use airlock_redact::PathDecision;

use crate::ToolError;
use crate::list::DENIED_MARK;
use crate::read::cut_line;
use crate::workspace::{Opened, Workspace, show};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobArgs {
    pattern: String,
    path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrepArgs {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
    case_insensitive: Option<bool>,
    context: Option<u64>,
    max_results: Option<u64>,
}

/// Files beneath `base` (a file or directory), as paths relative to the root, in walk order.
/// Symlinks are not followed; `.gitignore`, `.ignore` and git excludes apply even outside a git
/// repository.
fn walk(ws: &Workspace, base: &Opened) -> Vec<(PathBuf, Option<SystemTime>)> {
    let start = ws.real_root().join(&base.resolved);
    let walker = WalkBuilder::new(&start)
        .hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    let mut files = Vec::new();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(ws.real_root()) else { continue };
        let mtime = entry.metadata().ok().and_then(|m| m.modified().ok());
        files.push((rel.to_path_buf(), mtime));
    }
    files
}

fn compile_glob(pattern: &str) -> Result<GlobMatcher, ToolError> {
    let glob = GlobBuilder::new(pattern.strip_prefix("./").unwrap_or(pattern))
        .literal_separator(true)
        .build()
        .map_err(|err| ToolError::BadPattern { pattern: pattern.to_string(), message: err.kind().to_string() })?;
    Ok(glob.compile_matcher())
}

pub(crate) fn glob(ws: &Workspace, args: GlobArgs) -> Result<String, ToolError> {
    let matcher = compile_glob(&args.pattern)?;
    let base = ws.open_path(args.path.as_deref().unwrap_or("."))?;
    if !base.meta.is_dir() {
        return Err(ToolError::NotADirectory { path: base.shown });
    }
    let mut found: Vec<(PathBuf, Option<SystemTime>)> = walk(ws, &base)
        .into_iter()
        .filter(|(rel, _)| rel.strip_prefix(&base.resolved).is_ok_and(|under| matcher.is_match(under)))
        .collect();
    if found.is_empty() {
        return Ok(format!("no files match `{}` in {}", args.pattern, base.shown));
    }
    // Newest first: what the model (or the user) touched last is most likely what it wants.
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let max = ws.limits().glob_max_results;
    let rest = found.len().saturating_sub(max);
    let mut lines: Vec<String> = found
        .iter()
        .take(max)
        .map(|(rel, _)| match ws.decide(rel, false) {
            PathDecision::Allowed => show(rel),
            PathDecision::Denied { .. } => format!("{}{DENIED_MARK}", show(rel)),
        })
        .collect();
    if rest > 0 {
        lines.push(format!("[{rest} more files not shown; narrow the pattern or path]"));
    }
    Ok(lines.join("\n"))
}

/// A file filter in ripgrep's `--glob` sense: without a `/` it matches the file name at any depth.
struct FileFilter {
    matcher: GlobMatcher,
    by_name: bool,
}

impl FileFilter {
    fn new(pattern: &str) -> Result<FileFilter, ToolError> {
        Ok(FileFilter { matcher: compile_glob(pattern)?, by_name: !pattern.contains('/') })
    }

    fn matches(&self, under_base: &Path) -> bool {
        if self.by_name {
            under_base.file_name().is_some_and(|name| self.matcher.is_match(name))
        } else {
            self.matcher.is_match(under_base)
        }
    }
}

pub(crate) fn grep(ws: &Workspace, args: GrepArgs) -> Result<String, ToolError> {
    let limits = ws.limits();
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(args.case_insensitive.unwrap_or(false))
        .line_terminator(Some(b'\n'))
        .build(&args.pattern)
        .map_err(|err| ToolError::BadPattern {
            pattern: args.pattern.clone(),
            message: format!("{err}\nhint: Rust regex syntax; escape ( ) [ ] {{ }} . * + ? | with \\"),
        })?;
    let filter = args.glob.as_deref().map(FileFilter::new).transpose()?;
    let base = ws.open_path(args.path.as_deref().unwrap_or("."))?;
    let context = usize::try_from(args.context.unwrap_or(0)).unwrap_or(usize::MAX).min(limits.grep_max_context);
    let max = usize::try_from(args.max_results.unwrap_or(limits.grep_default_results as u64))
        .unwrap_or(usize::MAX)
        .clamp(1, limits.grep_max_results);
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(0))
        .before_context(context)
        .after_context(context)
        .build();
    let mut report = GrepReport { max, max_bytes: limits.read_max_bytes, ..GrepReport::default() };
    let files = if base.meta.is_dir() { walk(ws, &base) } else { vec![(base.resolved.clone(), None)] };
    for (rel, _) in files {
        // An explicitly named file is searched whatever the filter says, as in ripgrep.
        if let Some(filter) = &filter
            && base.meta.is_dir()
            && !rel.strip_prefix(&base.resolved).is_ok_and(|under| filter.matches(under))
        {
            continue;
        }
        let file = match ws.open_rel(&rel).and_then(|opened| ws.read_file(&opened)) {
            Ok(file) => file,
            Err(ToolError::Denied { .. }) => {
                report.denied += 1;
                continue;
            }
            Err(_) => {
                report.unreadable += 1;
                continue;
            }
        };
        let mut sink = FileSink { path: show(&rel), line_max: limits.grep_line_max_chars, ..FileSink::default() };
        if searcher.search_file(&matcher, &file, &mut sink).is_err() {
            report.unreadable += 1;
            continue;
        }
        if !sink.binary {
            report.add(sink, context > 0);
        }
    }
    Ok(report.render())
}

/// Matches across files, capped.
#[derive(Debug, Default)]
struct GrepReport {
    out: String,
    max: usize,
    max_bytes: usize,
    shown: usize,
    not_shown: usize,
    denied: usize,
    unreadable: usize,
}

impl GrepReport {
    fn add(&mut self, sink: FileSink, separate: bool) {
        if sink.lines.is_empty() {
            return;
        }
        if separate && !self.out.is_empty() && self.shown < self.max {
            self.out.push_str("--\n");
        }
        for line in sink.lines {
            match line {
                GrepLine::Match(text) => {
                    if self.shown < self.max && self.out.len() + text.len() < self.max_bytes {
                        self.shown += 1;
                        self.out.push_str(&text);
                        self.out.push('\n');
                    } else {
                        self.not_shown += 1;
                    }
                }
                GrepLine::Context(text) if self.shown < self.max && self.out.len() + text.len() < self.max_bytes => {
                    self.out.push_str(&text);
                    self.out.push('\n');
                }
                GrepLine::Context(_) => {}
            }
        }
    }

    fn render(mut self) -> String {
        if self.shown == 0 && self.not_shown == 0 {
            self.out.push_str("no matches\n");
        }
        if self.not_shown > 0 {
            self.out
                .push_str(&format!("[{} more matches not shown; narrow the pattern, path or glob]\n", self.not_shown));
        }
        if self.denied > 0 {
            self.out.push_str(&format!("[{} files skipped: not readable by policy]\n", self.denied));
        }
        if self.unreadable > 0 {
            self.out.push_str(&format!("[{} files skipped: could not be read]\n", self.unreadable));
        }
        self.out.truncate(self.out.trim_end_matches('\n').len());
        self.out
    }
}

#[derive(Debug)]
enum GrepLine {
    Match(String),
    Context(String),
}

/// Collects one file's lines in ripgrep's format (`path:N:text` for matches, `path-N-text` for
/// context, `--` between groups); a file turning out binary is dropped whole.
#[derive(Debug, Default)]
struct FileSink {
    path: String,
    line_max: usize,
    lines: Vec<GrepLine>,
    binary: bool,
}

impl FileSink {
    fn format(&self, sep: char, number: Option<u64>, bytes: &[u8]) -> String {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = cut_line(&String::from_utf8_lossy(bytes), self.line_max);
        format!("{}{sep}{}{sep}{text}", self.path, number.unwrap_or(0))
    }
}

impl Sink for FileSink {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, io::Error> {
        let first = mat.line_number();
        for (i, line) in mat.lines().enumerate() {
            let line = self.format(':', first.map(|n| n + i as u64), line);
            self.lines.push(GrepLine::Match(line));
        }
        Ok(true)
    }

    fn context(&mut self, _: &Searcher, ctx: &SinkContext<'_>) -> Result<bool, io::Error> {
        let line = self.format('-', ctx.line_number(), ctx.bytes());
        self.lines.push(GrepLine::Context(line));
        Ok(true)
    }

    fn context_break(&mut self, _: &Searcher) -> Result<bool, io::Error> {
        self.lines.push(GrepLine::Context("--".to_string()));
        Ok(true)
    }

    fn binary_data(&mut self, _: &Searcher, _: u64) -> Result<bool, io::Error> {
        self.binary = true;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_filter_without_slash_matches_names_at_any_depth() {
        let f = FileFilter::new("*.rs").unwrap();
        assert!(f.matches(Path::new("a/b/c.rs")));
        assert!(!f.matches(Path::new("a/b/c.toml")));
        let f = FileFilter::new("src/*.rs").unwrap();
        assert!(f.matches(Path::new("src/lib.rs")));
        assert!(!f.matches(Path::new("src/x/lib.rs")));
    }

    #[test]
    fn report_caps_and_counts() {
        let mut report = GrepReport { max: 1, max_bytes: 1000, ..GrepReport::default() };
        let sink = FileSink {
            lines: vec![GrepLine::Match("a:1:x".into()), GrepLine::Match("a:2:x".into())],
            ..FileSink::default()
        };
        report.add(sink, false);
        report.denied = 2;
        assert_eq!(
            report.render(),
            "a:1:x\n[1 more matches not shown; narrow the pattern, path or glob]\n[2 files skipped: not readable by policy]"
        );
    }
}
