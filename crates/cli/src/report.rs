//! `airlock report SESSION`: what one session did, read back from the audit
//! log, as a summary for a terminal, as JSON, or as one self-contained HTML
//! page for security reviewers.
//!
//! The log records digests and placeholders, never secret values, and the
//! report shows no more than the log holds. Whether the log verifies is
//! checked the way `airlock audit verify` checks it, over the whole log,
//! because a report of a session in an edited log is no evidence at all.
//!
//! What is counted, grouped and decided is decided here, by pure functions
//! ([`assemble`], then a view model per format: [`Report::page`],
//! [`Report::text_view`]). The layout is in minijinja templates
//! (`crates/cli/templates/`), embedded in the binary and rendered with no
//! loader, a fuel limit, and a formatter that escapes every value for HTML
//! or makes it visible on a terminal; no template can print a string raw.
//!
//! ```text
//! airlock report 7f3a…                       # a summary on the terminal
//! airlock report 7f3a… --output review.html  # the page (format from the extension)
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_audit::event::Event;
use airlock_audit::log::{EntryHeader, Source, Tamper, Verified, verify_kept};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, Filter, SqliteStore, Store};
use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior};
use serde::Serialize;

use crate::audit;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The session's id (`airlock audit show` lists them).
    session: String,
    /// The folder holding the log and its keys (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The output format (default: from the --output extension, .html or .json, else text).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A compact summary for a terminal.
    Text,
    /// The whole report, as one JSON object.
    Json,
    /// One self-contained page (no scripts, no external resources).
    Html,
}

impl Format {
    /// The format a file name asks for, so `--output review.html` needs no `--format`.
    fn for_path(path: Option<&Path>) -> Format {
        let ext = path.and_then(Path::extension).and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("html" | "htm") => Format::Html,
            Some("json") => Format::Json,
            _ => Format::Text,
        }
    }
}

/// Runs `airlock report`. Exit status: 0 when the log verifies, 1 when it
/// does not (or cannot be checked), errors are the caller's (2).
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let format = args.format.unwrap_or_else(|| Format::for_path(args.output.as_deref()));
    let report = build(args.dir, &args.session)?;
    let rendered = match format {
        Format::Text => report.render_text()?,
        Format::Json => format!("{:#}\n", report.json()),
        Format::Html => report.render_html()?,
    };
    match &args.output {
        Some(path) => {
            // Often written into the workspace, where an agent could have left a link.
            airlock_core::beneath::write_nofollow(path, rendered.as_bytes(), 0o644)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("airlock report: wrote {}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(rendered.as_bytes()).and_then(|()| out.flush()) {
                // A closed pipe (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(if report.integrity.verifies { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Reads session `session` from the log in `dir` (default: airlock's data
/// folder), verifies the whole log, and gathers what the session did.
pub fn build(dir: Option<PathBuf>, session: &str) -> Result<Report> {
    let p = audit::paths(dir)?;
    if !p.db.exists() {
        bail!("there is no audit log at {}\nhint: pass --dir, or run a session first", p.db.display());
    }
    let store = SqliteStore::open(&p.db, Durability::Durable)?;
    let mut entries = Vec::new();
    // The session is read from each entry's own bytes (covered by its leaf
    // hash), not from the store's session column, which nothing covers: an
    // event moved to another session by editing the column stays here.
    store.list(&Filter::default(), &mut |e| {
        if let Some(header) = EntryHeader::parse(e.entry).filter(|h| h.session == session) {
            entries.push(Entry {
                index: e.index,
                time_ms: header.time_ms,
                kind: header.kind,
                payload: e.payload.map(<[u8]>::to_vec),
                external: header.source == Source::External,
                missing: false,
            });
        }
        true
    })?;
    if entries.is_empty() {
        bail!(
            "the audit log at {} has no entries for session {session:?}\nhint: `airlock audit show` lists the sessions it holds",
            p.db.display()
        );
    }
    let check = check_log(&p, &store);
    // A payload gone below the signed prune watermark was pruned; any other
    // is missing, and shown as such (unknown watermark: every one is).
    let pruned_below = match &check {
        LogCheck::Verified(v) => v.pruned_below,
        _ => 0,
    };
    for e in &mut entries {
        e.missing = e.payload.is_none() && e.index >= pruned_below;
    }
    let signed_size = store.checkpoints()?.last().map_or(0, |(size, _)| *size);
    let integrity = Integrity::new(check, store.size()?, signed_size, &entries);
    let mut report = assemble(session, &entries, integrity);
    report.log = p.db.display().to_string();
    report.generated_at = audit::iso_time(audit::now_ms());
    Ok(report)
}

// ---------------------------------------------------------------------------
// Verification

/// What checking the whole log said.
enum LogCheck {
    Verified(Verified),
    Tampered(Tamper),
    Unverifiable(String),
}

/// The checks `airlock audit verify` makes with no options: this log's own
/// key, its payload key when present, and its stored checkpoints. A problem
/// is part of the report, not an error: the report of a tampered log must
/// still be shown, saying so.
fn check_log(p: &audit::Paths, store: &SqliteStore) -> LogCheck {
    let key_path = &p.signer;
    let verifier = match std::fs::read_to_string(key_path) {
        Ok(text) => match Signer::from_key_string(text.trim()) {
            Ok(signer) => signer.verifier(),
            Err(e) => return LogCheck::Unverifiable(format!("the signing key {}: {e}", key_path.display())),
        },
        Err(e) => return LogCheck::Unverifiable(format!("cannot read the signing key {}: {e}", key_path.display())),
    };
    let mac = std::fs::read(&p.mac_key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    let origin = audit::origin();
    let kept = match audit::kept_checkpoint(p) {
        Ok(kept) => kept,
        Err(e) => return LogCheck::Unverifiable(e.to_string()),
    };
    match verify_kept(store, &verifier, &origin, mac.as_ref(), &[], kept.as_deref()) {
        Ok(Ok(v)) => LogCheck::Verified(v),
        Ok(Err(tamper)) => LogCheck::Tampered(tamper),
        Err(e) => LogCheck::Unverifiable(e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// The report

/// Everything the report says about one session.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the report was made (UTC).
    pub generated_at: String,
    /// The airlock that made it.
    pub generated_by: String,
    /// The log it was read from.
    pub log: String,
    /// Who, where, when.
    pub session: Session,
    /// Whether the log verifies, and whether a signed checkpoint covers the session.
    pub integrity: Integrity,
    /// The headline numbers.
    pub summary: Summary,
    /// The session as it went, when a broker recorded a wrapped agent's
    /// conversation: the person's turns in order, each with the model
    /// requests it took, the tool calls the agent ran and what was refused
    /// meanwhile. Empty when no turn was recorded.
    pub turns: Vec<Turn>,
    /// Connections the egress proxy let through, by host and port.
    pub egress: Vec<EgressDestination>,
    /// Where model requests went.
    pub model_destinations: Vec<ModelDestination>,
    /// Connections and requests refused, by destination and reason.
    pub refused: Vec<RefusedDestination>,
    /// Model requests by route and model.
    pub model_requests: Vec<ModelRoute>,
    /// Secrets replaced before requests left, counted by rule.
    pub redactions: Vec<RedactionCount>,
    /// Tool calls by name, decision and decider.
    pub tool_calls: Vec<ToolCalls>,
    /// Commands that ran, in order.
    pub commands: Vec<CommandRun>,
    /// The session's MCP servers, in the order they were first recorded:
    /// started, refused or stopped, and what their calls returned. Empty
    /// when the session had none.
    pub mcp_servers: Vec<McpServerRun>,
    /// Files written, in order.
    pub file_changes: Vec<FileChange>,
    /// Actions refused for breaking policy, in order.
    pub policy_violations: Vec<PolicyViolation>,
    /// Records appended from outside (hooks, CI).
    pub external_events: u64,
    /// Entries whose payload was pruned (their leaves remain).
    pub pruned_payloads: u64,
    /// Entries whose payload is not an event this airlock knows.
    pub unreadable: Vec<UnreadableEntry>,
}

/// The session's identity and time span.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// The workspace, from `session_start`.
    pub workspace: Option<String>,
    /// Who ran it.
    pub user: Option<String>,
    /// On which host.
    pub host: Option<String>,
    /// The airlock that ran it.
    pub airlock_version: Option<String>,
    /// Where the model ran.
    pub model_endpoint: Option<String>,
    /// Digest of the effective policy.
    pub policy_digest: Option<String>,
    /// When it started (the `session_start` entry, else the first entry).
    pub started_at: String,
    /// When it ended (the `session_end` entry), if it has.
    pub ended_at: Option<String>,
    /// Milliseconds from start to end.
    pub duration_ms: Option<u64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Its entries in the log.
    pub entries: u64,
    /// Its first entry's index.
    pub first_index: u64,
    /// Its last entry's index.
    pub last_index: u64,
}

/// What checking the log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every entry, payload and checkpoint checked.
    Verified,
    /// Something was changed: `problem` names the first thing found.
    Tampered,
    /// The log could not be checked (a key is missing, the database is unreadable).
    Unverifiable,
}

/// Whether the evidence holds.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    /// The verdict.
    pub verdict: Verdict,
    /// True only when the whole log verified.
    pub verifies: bool,
    /// The first problem found, when it did not.
    pub problem: Option<String>,
    /// The entry that problem is in, when it is in one.
    pub problem_entry: Option<u64>,
    /// Entries in the whole log.
    pub log_entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints_checked: u64,
    /// Payloads checked against their keyed hash.
    pub payloads_checked: u64,
    /// Entries under the latest stored checkpoint (the first this many).
    pub signed_entries: u64,
    /// Every entry of the session is under that checkpoint.
    pub session_signed: bool,
    /// The session's entries after it (not signed yet).
    pub session_unsigned_entries: u64,
}

impl Integrity {
    fn new(check: LogCheck, log_entries: u64, signed_entries: u64, entries: &[Entry]) -> Integrity {
        let unsigned = entries.iter().filter(|e| e.index >= signed_entries).count() as u64;
        let (verdict, problem, checked) = match &check {
            LogCheck::Verified(v) => (Verdict::Verified, None, Some(v)),
            LogCheck::Tampered(tamper) => (Verdict::Tampered, Some(tamper.to_string()), None),
            LogCheck::Unverifiable(what) => (Verdict::Unverifiable, Some(what.clone()), None),
        };
        let problem_entry = match check {
            LogCheck::Tampered(
                Tamper::Missing { index, .. }
                | Tamper::BadEntry { index, .. }
                | Tamper::EntryEdited { index }
                | Tamper::PayloadEdited { index }
                | Tamper::PayloadMissing { index, .. },
            ) => Some(index),
            _ => None,
        };
        Integrity {
            verdict,
            verifies: verdict == Verdict::Verified,
            problem,
            problem_entry,
            log_entries,
            checkpoints_checked: checked.map_or(0, |v| v.checkpoints),
            payloads_checked: checked.map_or(0, |v| v.payloads),
            signed_entries,
            session_signed: unsigned == 0,
            session_unsigned_entries: unsigned,
        }
    }
}

/// The headline numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Model requests sent.
    pub model_requests: u64,
    /// Their bytes (after redaction), local models included.
    pub model_bytes_sent: u64,
    /// Bytes of model answers, local models included.
    pub model_bytes_received: u64,
    /// Prompt tokens reported.
    pub input_tokens: u64,
    /// Completion tokens reported.
    pub output_tokens: u64,
    /// Connections through the egress proxy.
    pub egress_connections: u64,
    /// Bytes that left the machine: model requests to remote models and egress bytes up.
    pub bytes_out: u64,
    /// Bytes that came in: remote model answers and egress bytes down.
    pub bytes_in: u64,
    /// Distinct destinations refused.
    pub refused_destinations: u64,
    /// Refusals in all.
    pub refused_attempts: u64,
    /// Secrets replaced.
    pub redactions: u64,
    /// Tool calls decided.
    pub tool_calls: u64,
    /// Of them allowed.
    pub tool_calls_allowed: u64,
    /// Denied.
    pub tool_calls_denied: u64,
    /// Left to a person.
    pub tool_calls_asked: u64,
    /// Commands run.
    pub commands: u64,
    /// Of them with a non-zero exit status.
    pub commands_failed: u64,
    /// Files written.
    pub file_changes: u64,
    /// Of them created.
    pub files_created: u64,
    /// Changed.
    pub files_modified: u64,
    /// Deleted.
    pub files_deleted: u64,
    /// Policy violations.
    pub policy_violations: u64,
    /// Turns of the person driving a wrapped agent.
    pub turns: u64,
    /// Tool calls a wrapped agent ran, as its requests showed them.
    pub agent_tool_calls: u64,
}

/// One turn of the session: what the person asked, and what followed
/// until the next turn.
#[derive(Debug, Clone, Serialize)]
pub struct Turn {
    /// 1 for the first turn; 0 for what came before it (an agent's start-up
    /// requests, its side requests).
    pub number: u64,
    /// Its `agent_turn` log entry (none for turn 0).
    pub index: Option<u64>,
    /// When it was recorded (with the request that carried it).
    pub time: String,
    /// What the person asked, as it left (redacted), cut at the broker's limit.
    pub text: String,
    /// Whether `text` was cut.
    pub clipped: bool,
    /// Characters in the whole text.
    pub chars: u64,
    /// SHA-256 of the whole text.
    pub digest: String,
    /// The conversation it is in (a digest of its first message).
    pub conversation: String,
    /// Model requests it took.
    pub model_requests: u64,
    /// Their bytes (after redaction).
    pub bytes_sent: u64,
    /// Prompt tokens reported for them.
    pub input_tokens: u64,
    /// Completion tokens reported for them.
    pub output_tokens: u64,
    /// What happened in it, in order.
    pub steps: Vec<TurnStep>,
}

/// Something that happened during a turn.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TurnStep {
    /// A tool call the agent ran (seen in the request that sent its result back).
    ToolCall {
        /// Its log entry.
        index: u64,
        /// When it was recorded.
        time: String,
        /// The tool (empty when only the result was seen).
        name: String,
        /// Its id in the conversation.
        call_id: String,
        /// The command, or the arguments as JSON, redacted and maybe cut.
        arguments: String,
        /// Whether `arguments` was cut.
        clipped: bool,
        /// Whether a result came back.
        answered: bool,
        /// The result's size.
        result_bytes: u64,
    },
    /// A connection or request refused.
    Refused {
        /// Its log entry.
        index: u64,
        /// When it was recorded.
        time: String,
        /// Where to.
        destination: String,
        /// Why.
        reason: String,
    },
}

/// One host and port the egress proxy connected to.
#[derive(Debug, Clone, Serialize)]
pub struct EgressDestination {
    /// `host:port`.
    pub destination: String,
    /// Connections opened.
    pub connections: u64,
    /// Of them closed (with their byte counts recorded).
    pub closed: u64,
    /// Bytes sent.
    pub bytes_up: u64,
    /// Bytes received.
    pub bytes_down: u64,
}

/// One model destination.
#[derive(Debug, Clone, Serialize)]
pub struct ModelDestination {
    /// The upstream's name and URL, or the embedded model.
    pub destination: String,
    /// An embedded model: its requests never left the machine.
    pub local: bool,
    /// Requests sent.
    pub requests: u64,
    /// Answers (or failed exchanges) recorded.
    pub responses: u64,
    /// Exchanges that did not end `complete`.
    pub failed: u64,
    /// Bytes sent (after redaction).
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Prompt tokens reported.
    pub input_tokens: u64,
    /// Completion tokens reported.
    pub output_tokens: u64,
}

/// Refusals of one destination for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedDestination {
    /// Where to.
    pub destination: String,
    /// Why refused.
    pub reason: String,
    /// How many times.
    pub count: u64,
    /// Bytes of the refused requests that reached airlock, none of which
    /// went further (0 for refused connections, and in older records).
    pub bytes: u64,
}

/// Model requests on one route to one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRoute {
    /// The API route.
    pub route: String,
    /// The model asked for.
    pub model: String,
    /// Requests.
    pub requests: u64,
    /// Their bytes (after redaction).
    pub bytes: u64,
}

/// Secrets one rule replaced.
#[derive(Debug, Clone, Serialize)]
pub struct RedactionCount {
    /// The rule's id.
    pub rule: String,
    /// Replacements.
    pub count: u64,
    /// Distinct placeholders among them (one per distinct secret).
    pub placeholders: u64,
}

/// Tool calls with the same name, decision and decider.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCalls {
    /// The tool.
    pub name: String,
    /// allow, ask or deny.
    pub decision: String,
    /// What decided: a rule id, a person, a mode.
    pub decided_by: String,
    /// How many calls.
    pub count: u64,
}

/// A command that ran.
#[derive(Debug, Clone, Serialize)]
pub struct CommandRun {
    /// Its log entry.
    pub index: u64,
    /// When it was recorded.
    pub time: String,
    /// The argument vector.
    pub argv: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// The exit status (124: timed out).
    pub exit_status: i64,
    /// Wall-clock milliseconds.
    pub duration_ms: u64,
    /// Bytes of output.
    pub output_bytes: u64,
}

/// A file written.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// Its log entry.
    pub index: u64,
    /// When it was recorded.
    pub time: String,
    /// The path.
    pub path: String,
    /// created, modified or deleted.
    pub change: String,
    /// Digest before (empty when created).
    pub before: String,
    /// Digest after (empty when deleted).
    pub after: String,
}

/// An action refused for breaking policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyViolation {
    /// Its log entry.
    pub index: u64,
    /// When it was recorded.
    pub time: String,
    /// The rule.
    pub rule: String,
    /// What was attempted.
    pub detail: String,
}

/// An entry the report could not read.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadableEntry {
    /// Its log entry.
    pub index: u64,
    /// The kind its entry names.
    pub kind: String,
    /// Why it could not be read.
    pub problem: String,
}

/// One MCP server of the session, from its `mcp_server` records, the
/// `mcp_result` of each call to it and the name lookups it was refused.
/// Its name and every reason come from a third-party program.
#[derive(Debug, Clone, Serialize)]
pub struct McpServerRun {
    /// Its name, as configured.
    pub server: String,
    /// What became of it last: `started`, `stopped`, `refused`, or
    /// `unknown` when only its calls or lookups were recorded.
    pub state: String,
    /// `sha256:…` of what ran (empty when none was recorded).
    pub digest: String,
    /// The tools it offered when it started.
    pub tools: Vec<String>,
    /// Why it was refused (not started), when it was.
    pub refused: Option<String>,
    /// Why it was stopped, when it was.
    pub stopped: Option<String>,
    /// Tools it offered that were not passed on to the model, and why.
    pub tools_refused: Vec<String>,
    /// Records of an action this airlock does not know, as `ACTION: detail`.
    pub notes: Vec<String>,
    /// Calls that returned (or failed).
    pub calls: u64,
    /// Of them failed (the server said so, or it was stopped).
    pub errors: u64,
    /// Bytes of results the model got (after redaction).
    pub result_bytes: u64,
    /// Secrets replaced in its results before the model saw them, by rule.
    pub redactions: Vec<RedactionCount>,
    /// Name lookups it tried and was refused (it has no network).
    pub lookups_refused: u64,
    /// The names it tried to look up, each once.
    pub lookup_hosts: Vec<String>,
}

impl McpServerRun {
    fn new(server: String) -> McpServerRun {
        McpServerRun {
            server,
            state: "unknown".into(),
            digest: String::new(),
            tools: Vec::new(),
            refused: None,
            stopped: None,
            tools_refused: Vec::new(),
            notes: Vec::new(),
            calls: 0,
            errors: 0,
            result_bytes: 0,
            redactions: Vec::new(),
            lookups_refused: 0,
            lookup_hosts: Vec::new(),
        }
    }

    /// Replacements in its results, over every rule.
    fn redacted(&self) -> u64 {
        self.redactions.iter().map(|r| r.count).sum()
    }

    /// Why it is not running, or what was held back from it, in one line.
    fn why(&self) -> String {
        let mut why: Vec<String> = Vec::new();
        if let Some(r) = &self.refused {
            why.push(format!("refused: {r}"));
        }
        if let Some(r) = &self.stopped {
            why.push(format!("stopped: {r}"));
        }
        why.extend(self.tools_refused.iter().map(|t| format!("tool not offered: {t}")));
        why.extend(self.notes.iter().cloned());
        why.join("; ")
    }
}

/// An MCP server's records as they are read, before its redactions are counted.
struct McpTally {
    run: McpServerRun,
    redactions: Tally<String, (RedactionCount, HashSet<String>)>,
    hosts: HashSet<String>,
}

impl McpTally {
    fn new(server: String) -> McpTally {
        McpTally { run: McpServerRun::new(server), redactions: Tally::new(), hosts: HashSet::new() }
    }

    fn finish(self) -> McpServerRun {
        let mut run = self.run;
        run.redactions = counted(self.redactions);
        run
    }
}

/// Redaction rows with their distinct placeholders counted.
fn counted(tally: Tally<String, (RedactionCount, HashSet<String>)>) -> Vec<RedactionCount> {
    tally
        .rows
        .into_iter()
        .map(|(mut count, placeholders)| {
            count.placeholders = placeholders.len() as u64;
            count
        })
        .collect()
}

/// Counts `notes` into `tally`, by rule.
fn tally_redactions(
    tally: &mut Tally<String, (RedactionCount, HashSet<String>)>,
    notes: Vec<airlock_audit::event::RedactionNote>,
) {
    for note in notes {
        let (count, placeholders) = tally
            .row(note.rule.clone(), || (RedactionCount { rule: note.rule, count: 0, placeholders: 0 }, HashSet::new()));
        count.count += 1;
        placeholders.insert(note.placeholder);
    }
}

/// The MCP server a refused destination was refused to, when its reason
/// names one (`MCP server NAME has no network (…)`, as the session records
/// a server's name lookups).
fn mcp_lookup_server(reason: &str) -> Option<&str> {
    let rest = reason.strip_prefix("MCP server ")?;
    rest.rfind(" has no network").map(|end| &rest[..end])
}

/// One entry of the session, as listed from the store.
struct Entry {
    index: u64,
    time_ms: i64,
    kind: String,
    payload: Option<Vec<u8>>,
    /// Appended from outside (`airlock audit append`): never the session's own.
    external: bool,
    /// No payload, and no signed prune covers it.
    missing: bool,
}

/// Rows keyed by what they count, in the order their keys first appear.
struct Tally<K, V> {
    at: HashMap<K, usize>,
    rows: Vec<V>,
}

impl<K: Hash + Eq, V> Tally<K, V> {
    fn new() -> Self {
        Tally { at: HashMap::new(), rows: Vec::new() }
    }

    fn row(&mut self, key: K, new: impl FnOnce() -> V) -> &mut V {
        let rows = &mut self.rows;
        let i = *self.at.entry(key).or_insert_with(|| {
            rows.push(new());
            rows.len() - 1
        });
        &mut rows[i]
    }
}

/// The report of `entries` (one session's, oldest first): a pure function
/// of what the log holds, so it is tested without a log.
fn assemble(session: &str, entries: &[Entry], integrity: Integrity) -> Report {
    let mut s = Session {
        id: session.to_string(),
        entries: entries.len() as u64,
        first_index: entries.first().map_or(0, |e| e.index),
        last_index: entries.last().map_or(0, |e| e.index),
        ..Session::default()
    };
    let mut started_ms = entries.first().map(|e| e.time_ms);
    let mut ended_ms = None;
    let mut egress = Tally::new();
    let mut models = Tally::new();
    let mut refused = Tally::new();
    let mut routes = Tally::new();
    let mut redactions: Tally<String, (RedactionCount, HashSet<String>)> = Tally::new();
    let mut tools = Tally::new();
    let mut commands = Vec::new();
    let mut file_changes = Vec::new();
    let mut policy_violations = Vec::new();
    let mut unreadable = Vec::new();
    let (mut external_events, mut pruned_payloads) = (0, 0);
    let mut timeline = Timeline::default();
    let mut mcp: Tally<String, McpTally> = Tally::new();

    for entry in entries {
        if entry.missing {
            unreadable.push(UnreadableEntry {
                index: entry.index,
                kind: entry.kind.clone(),
                problem: "its payload is missing: deleted, not pruned (no signed prune covers it)".into(),
            });
            continue;
        }
        if entry.external {
            external_events += 1;
            continue;
        }
        let Some(payload) = &entry.payload else {
            pruned_payloads += 1;
            continue;
        };
        let event = match serde_json::from_slice::<Event>(payload) {
            Ok(event) => event,
            Err(e) => {
                unreadable.push(UnreadableEntry {
                    index: entry.index,
                    kind: entry.kind.clone(),
                    problem: e.to_string(),
                });
                continue;
            }
        };
        let time = audit::iso_time(entry.time_ms);
        timeline.see(entry.index, &time, &event);
        match event {
            Event::SessionStart { policy_digest, model_endpoint, airlock_version, user, host, workspace } => {
                if s.workspace.is_none() {
                    s.workspace = Some(workspace);
                    s.user = Some(user);
                    s.host = Some(host);
                    s.airlock_version = Some(airlock_version);
                    s.model_endpoint = Some(model_endpoint);
                    s.policy_digest = Some(policy_digest);
                    started_ms = Some(entry.time_ms);
                }
            }
            Event::SessionEnd { reason } => {
                s.end_reason = Some(reason);
                ended_ms = Some(entry.time_ms);
            }
            Event::ModelRequest { route, model, destination, bytes, redactions: notes, .. } => {
                let local = route == "embedded";
                let d = models.row(destination.clone(), || ModelDestination::new(destination));
                d.requests += 1;
                d.bytes_sent += bytes;
                d.local |= local;
                let r =
                    routes.row((route.clone(), model.clone()), || ModelRoute { route, model, requests: 0, bytes: 0 });
                r.requests += 1;
                r.bytes += bytes;
                tally_redactions(&mut redactions, notes);
            }
            Event::ModelResponse { destination, bytes, input_tokens, output_tokens, outcome, .. } => {
                let d = models.row(destination.clone(), || ModelDestination::new(destination));
                d.responses += 1;
                d.failed += u64::from(outcome != "complete");
                d.bytes_received += bytes;
                d.input_tokens += input_tokens;
                d.output_tokens += output_tokens;
            }
            Event::ToolCall { name, decision, decided_by, .. } => {
                let key = (name.clone(), decision.clone(), decided_by.clone());
                tools.row(key, || ToolCalls { name, decision, decided_by, count: 0 }).count += 1;
            }
            Event::Command { argv, cwd, exit_status, duration_ms, output_bytes, .. } => {
                commands.push(CommandRun {
                    index: entry.index,
                    time,
                    argv,
                    cwd,
                    exit_status,
                    duration_ms,
                    output_bytes,
                });
            }
            Event::FileChange { path, before, after } => {
                let change = match (before.is_empty(), after.is_empty()) {
                    (true, _) => "created",
                    (_, true) => "deleted",
                    _ => "modified",
                };
                file_changes.push(FileChange { index: entry.index, time, path, change: change.into(), before, after });
            }
            Event::PolicyViolation { rule, detail } => {
                policy_violations.push(PolicyViolation { index: entry.index, time, rule, detail });
            }
            Event::BlockedEgress { destination, reason, bytes } => {
                if let Some(server) = mcp_lookup_server(&reason) {
                    let m = mcp.row(server.to_string(), || McpTally::new(server.to_string()));
                    m.run.lookups_refused += 1;
                    if m.hosts.insert(destination.clone()) {
                        m.run.lookup_hosts.push(destination.clone());
                    }
                }
                let row = refused.row((destination.clone(), reason.clone()), || RefusedDestination {
                    destination,
                    reason,
                    count: 0,
                    bytes: 0,
                });
                row.count += 1;
                row.bytes += bytes;
            }
            Event::EgressOpen { host, port, .. } => {
                let key = format!("{host}:{port}");
                egress.row(key.clone(), || EgressDestination::new(key)).connections += 1;
            }
            Event::EgressClose { host, port, bytes_up, bytes_down, .. } => {
                let key = format!("{host}:{port}");
                let d = egress.row(key.clone(), || EgressDestination::new(key));
                d.closed += 1;
                d.bytes_up += bytes_up;
                d.bytes_down += bytes_down;
            }
            Event::External { .. } => external_events += 1,
            Event::Rewind { .. }
            | Event::AgentTurn { .. }
            | Event::AgentToolCall { .. }
            | Event::WitnessRefused { .. }
            | Event::McpHttp { .. } => {}
            Event::McpServer { server, action, digest, detail } => {
                let m = &mut mcp.row(server.clone(), || McpTally::new(server)).run;
                if !digest.is_empty() {
                    m.digest = digest;
                }
                match action.as_str() {
                    "started" => {
                        m.state = action;
                        let offered = detail.strip_prefix("tools:").unwrap_or(&detail);
                        m.tools =
                            offered.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
                    }
                    "stopped" => {
                        m.state = action;
                        m.stopped = Some(detail);
                    }
                    "refused" => {
                        m.state = action;
                        m.refused = Some(detail);
                    }
                    "tool_refused" => m.tools_refused.push(detail),
                    // An action this airlock does not know: shown, not dropped.
                    _ => m.notes.push(format!("{action}: {detail}")),
                }
            }
            Event::McpResult { server, is_error, result_bytes, redactions: notes, .. } => {
                let m = mcp.row(server.clone(), || McpTally::new(server));
                m.run.calls += 1;
                m.run.errors += u64::from(is_error);
                m.run.result_bytes += result_bytes;
                tally_redactions(&mut m.redactions, notes);
            }
        }
    }
    let turns = timeline.finish();

    let started = started_ms.unwrap_or(0);
    s.started_at = audit::iso_time(started);
    s.ended_at = ended_ms.map(audit::iso_time);
    s.duration_ms = ended_ms.map(|end| end.saturating_sub(started).max(0) as u64);

    let egress = egress.rows;
    let models = models.rows;
    let refused = refused.rows;
    let redactions = counted(redactions);
    let mcp_servers: Vec<McpServerRun> = mcp.rows.into_iter().map(McpTally::finish).collect();
    let tool_calls = tools.rows;
    let decided = |d: &str| tool_calls.iter().filter(|t| t.decision == d).map(|t| t.count).sum();
    let changed = |c: &str| file_changes.iter().filter(|f: &&FileChange| f.change == c).count() as u64;
    let remote = || models.iter().filter(|m| !m.local);
    let summary = Summary {
        model_requests: models.iter().map(|m| m.requests).sum(),
        model_bytes_sent: models.iter().map(|m| m.bytes_sent).sum(),
        model_bytes_received: models.iter().map(|m| m.bytes_received).sum(),
        input_tokens: models.iter().map(|m| m.input_tokens).sum(),
        output_tokens: models.iter().map(|m| m.output_tokens).sum(),
        egress_connections: egress.iter().map(|e| e.connections).sum(),
        bytes_out: remote().map(|m| m.bytes_sent).sum::<u64>() + egress.iter().map(|e| e.bytes_up).sum::<u64>(),
        bytes_in: remote().map(|m| m.bytes_received).sum::<u64>() + egress.iter().map(|e| e.bytes_down).sum::<u64>(),
        refused_destinations: refused.iter().map(|r| &r.destination).collect::<HashSet<_>>().len() as u64,
        refused_attempts: refused.iter().map(|r| r.count).sum(),
        redactions: redactions.iter().map(|r| r.count).sum(),
        tool_calls: tool_calls.iter().map(|t| t.count).sum(),
        tool_calls_allowed: decided("allow"),
        tool_calls_denied: decided("deny"),
        tool_calls_asked: decided("ask"),
        commands: commands.len() as u64,
        commands_failed: commands.iter().filter(|c| c.exit_status != 0).count() as u64,
        file_changes: file_changes.len() as u64,
        files_created: changed("created"),
        files_modified: changed("modified"),
        files_deleted: changed("deleted"),
        policy_violations: policy_violations.len() as u64,
        turns: turns.iter().filter(|t| t.number > 0).count() as u64,
        agent_tool_calls: turns.iter().flat_map(|t| &t.steps).filter(|s| matches!(s, TurnStep::ToolCall { .. })).count()
            as u64,
    };
    Report {
        generated_at: String::new(),
        generated_by: format!("airlock {}", env!("CARGO_PKG_VERSION")),
        log: String::new(),
        session: s,
        integrity,
        summary,
        turns,
        egress,
        model_destinations: models,
        refused,
        model_requests: routes.rows,
        redactions,
        tool_calls,
        commands,
        mcp_servers,
        file_changes,
        policy_violations,
        external_events,
        pruned_payloads,
        unreadable,
    }
}

/// The turns of a session, built as its events go by.
#[derive(Default)]
struct Timeline {
    turns: Vec<Turn>,
    /// A turn was recorded (else there is no timeline).
    any: bool,
    /// The last event was a model request, or what its batch added after
    /// it: a turn in that batch came with that request, which is the turn's.
    request_bytes: Option<u64>,
}

impl Timeline {
    /// The turn events go to now (turn 0 until the first turn).
    fn current(&mut self, time: &str) -> &mut Turn {
        if self.turns.is_empty() {
            self.turns.push(Turn::new(0, None, time));
        }
        let last = self.turns.len() - 1;
        &mut self.turns[last]
    }

    fn see(&mut self, index: u64, time: &str, event: &Event) {
        let request_bytes = self.request_bytes.take();
        match event {
            Event::ModelRequest { bytes, .. } => {
                let turn = self.current(time);
                turn.model_requests += 1;
                turn.bytes_sent += bytes;
                self.request_bytes = Some(*bytes);
            }
            Event::ModelResponse { input_tokens, output_tokens, .. } => {
                let turn = self.current(time);
                turn.input_tokens += input_tokens;
                turn.output_tokens += output_tokens;
            }
            Event::AgentToolCall { name, call_id, arguments, clipped, answered, result_bytes } => {
                self.current(time).steps.push(TurnStep::ToolCall {
                    index,
                    time: time.to_string(),
                    name: name.clone(),
                    call_id: call_id.clone(),
                    arguments: arguments.clone(),
                    clipped: *clipped,
                    answered: *answered,
                    result_bytes: *result_bytes,
                });
                // The previous answer's calls come between a request and its turn.
                self.request_bytes = request_bytes;
            }
            Event::AgentTurn { text, clipped, chars, digest, conversation, .. } => {
                self.any = true;
                let number = self.turns.iter().filter(|t| t.number > 0).count() as u64 + 1;
                let mut turn = Turn::new(number, Some(index), time);
                (turn.text, turn.clipped, turn.chars) = (text.clone(), *clipped, *chars);
                (turn.digest, turn.conversation) = (digest.clone(), conversation.clone());
                if let Some(bytes) = request_bytes {
                    // The request that carried the turn is the turn's, not the one before's.
                    let before = self.current(time);
                    before.model_requests = before.model_requests.saturating_sub(1);
                    before.bytes_sent = before.bytes_sent.saturating_sub(bytes);
                    turn.model_requests += 1;
                    turn.bytes_sent += bytes;
                }
                self.turns.push(turn);
            }
            Event::BlockedEgress { destination, reason, .. } => {
                self.current(time).steps.push(TurnStep::Refused {
                    index,
                    time: time.to_string(),
                    destination: destination.clone(),
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
    }

    /// The turns, or none when no turn was recorded; what came before the
    /// first turn only when something did.
    fn finish(mut self) -> Vec<Turn> {
        if !self.any {
            return Vec::new();
        }
        if self.turns.first().is_some_and(|t| t.number == 0 && t.model_requests == 0 && t.steps.is_empty()) {
            self.turns.remove(0);
        }
        self.turns
    }
}

impl Turn {
    fn new(number: u64, index: Option<u64>, time: &str) -> Turn {
        Turn {
            number,
            index,
            time: time.to_string(),
            text: String::new(),
            clipped: false,
            chars: 0,
            digest: String::new(),
            conversation: String::new(),
            model_requests: 0,
            bytes_sent: 0,
            input_tokens: 0,
            output_tokens: 0,
            steps: Vec::new(),
        }
    }
}

impl ModelDestination {
    fn new(destination: String) -> ModelDestination {
        ModelDestination {
            destination,
            local: false,
            requests: 0,
            responses: 0,
            failed: 0,
            bytes_sent: 0,
            bytes_received: 0,
            input_tokens: 0,
            output_tokens: 0,
        }
    }
}

impl EgressDestination {
    fn new(destination: String) -> EgressDestination {
        EgressDestination { destination, connections: 0, closed: 0, bytes_up: 0, bytes_down: 0 }
    }
}

// ---------------------------------------------------------------------------
// Shared formatting

/// Rows a text list shows before it is cut.
const TEXT_ROWS: usize = 20;
/// Rows an HTML table shows before it is cut (the JSON has them all).
const HTML_ROWS: usize = 500;
/// Turns the terminal summary shows, and steps of each.
const TEXT_TURNS: usize = 40;
const TEXT_STEPS: usize = 8;
/// Steps the page shows over all its turns (each turn's table cut when they run out).
const HTML_STEPS: usize = 2_000;

/// `text` with control characters and bidirectional overrides replaced:
/// event strings come from the agent and must not move the cursor, recolour
/// the terminal or reorder what a reviewer reads (one sanitiser for every
/// front end: [`airlock_redact::terminal`]).
fn visible(text: &str) -> String {
    airlock_redact::terminal::one_line(text)
}

/// `visible(text)` cut to `max` characters, marking the cut.
fn clip(text: &str, max: usize) -> String {
    let text = visible(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A byte count for people: exact below 1 KiB, else one decimal.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration for people.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// `n thing` or `n things`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The start of a digest, enough to tell digests apart by eye.
fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    if hex.is_empty() {
        return "—".into();
    }
    hex.chars().take(12).collect()
}

/// The time of day of an ISO time (`05:00:04` of `2026-12-07T05:00:04Z`).
fn time_of_day(iso: &str) -> String {
    iso.get(11..19).map_or_else(|| visible(iso), str::to_string)
}

/// What a turn took, in a few words: `3 model requests · 12 KiB sent · 310 in / 42 out tokens`.
fn turn_meta(t: &Turn) -> String {
    format!(
        "{} · {} sent · {} in / {} out tokens",
        count(t.model_requests, "model request", "model requests"),
        bytes(t.bytes_sent),
        t.input_tokens,
        t.output_tokens
    )
}

/// An argument vector as a shell would read it back.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c) || !c.is_ascii());
            if plain { a.clone() } else { format!("'{}'", a.replace('\'', r"'\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    /// One line on whether the log verifies, for the top of the report.
    fn verdict_line(&self) -> String {
        let i = &self.integrity;
        match i.verdict {
            Verdict::Verified => format!(
                "VERIFIES: {} entries, {} checked; {}",
                i.log_entries,
                count(i.checkpoints_checked, "checkpoint", "checkpoints"),
                self.coverage()
            ),
            Verdict::Tampered => "DOES NOT VERIFY: the log was changed".to_string(),
            Verdict::Unverifiable => "DOES NOT VERIFY: it could not be checked".to_string(),
        }
    }

    /// Whether a signed checkpoint covers the session's entries.
    fn coverage(&self) -> String {
        let i = &self.integrity;
        if i.session_signed {
            format!(
                "all {} of this session are under a signed checkpoint",
                count(self.session.entries, "entry", "entries")
            )
        } else if i.session_unsigned_entries == self.session.entries {
            "no entry of this session is under a signed checkpoint yet".to_string()
        } else {
            format!(
                "{} of {} entries of this session are not under a signed checkpoint yet",
                i.session_unsigned_entries, self.session.entries
            )
        }
    }

    fn user_at_host(&self) -> Option<String> {
        match (&self.session.user, &self.session.host) {
            (Some(u), Some(h)) => Some(format!("{u}@{h}")),
            (Some(u), None) => Some(u.clone()),
            (None, Some(h)) => Some(h.clone()),
            (None, None) => None,
        }
    }

    fn time_span(&self) -> String {
        let s = &self.session;
        match (&s.ended_at, s.duration_ms) {
            (Some(end), Some(ms)) => format!("{} → {end} ({})", s.started_at, duration(ms)),
            _ => format!("{} → (no session_end recorded)", s.started_at),
        }
    }
}

// ---------------------------------------------------------------------------
// Templates

/// The page: layout only, over [`Page`].
const HTML_TEMPLATE: Template =
    Template { name: "report.html.j2", source: include_str!("../templates/report.html.j2") };
/// The terminal summary: layout only, over [`TextView`].
const TEXT_TEMPLATE: Template = Template { name: "report.txt.j2", source: include_str!("../templates/report.txt.j2") };

/// A template embedded in the binary: there is no loader, so nothing on disk
/// (a workspace an agent wrote, say) can stand in for it.
#[derive(Clone, Copy)]
struct Template {
    /// Its name, which also chooses its escaping ([`escaping_for`]).
    name: &'static str,
    source: &'static str,
}

/// Template instructions one rendering may run. The largest page (twelve
/// tables, the MCP servers' included, each cut at [`HTML_ROWS`] rows, and a
/// timeline of as many turns with [`HTML_STEPS`] tool calls) takes over a
/// million, under a third (`the_largest_page_renders_within_the_fuel`
/// checks a third); a
/// template that loops away stops with an error instead of running on.
const FUEL: u64 = 4_000_000;

/// The escaping that marks a template for a terminal (handled by [`format_value`]).
const TERMINAL: &str = "terminal";

/// What a template's `{{ value }}` is escaped for, chosen by its name:
/// HTML for `.html.j2`, the terminal for `.txt.j2`, and for anything else
/// nothing, which [`format_value`] refuses.
fn escaping_for(name: &str) -> AutoEscape {
    if name.ends_with(".html.j2") {
        AutoEscape::Html
    } else if name.ends_with(".txt.j2") {
        AutoEscape::Custom(TERMINAL)
    } else {
        AutoEscape::None
    }
}

/// Writes one `{{ value }}`: made visible and escaped in HTML, made visible
/// on a terminal. Safe strings pass only in HTML, and only macros make them
/// there, from output this function escaped ([`environment`] removes the
/// filters that make them). A
/// template without escaping (`{% autoescape false %}`, or a name that is
/// neither) is an error, not a page with raw strings in it.
fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    if value.is_none() {
        return Ok(());
    }
    let text = value.to_string();
    let written = match state.auto_escape() {
        AutoEscape::Html if value.is_safe() => out.write_str(&text),
        AutoEscape::Html => out.write_str(&esc(&text)),
        AutoEscape::Custom(TERMINAL) => out.write_str(&visible(&text)),
        other => {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!(
                    "report templates escape for HTML or a terminal; {other:?} would print strings from the log raw"
                ),
            ));
        }
    };
    written.map_err(minijinja::Error::from)
}

/// The environment the report's templates render in: no loader, strict
/// about undefined names (a misspelt field is an error, not a blank),
/// bounded by `fuel` instructions, and without the filters whose output is
/// marked as markup: `safe`; `tojson`, whose output may hold `"`; and
/// `escape`, whose output skips [`visible`] (a bidi override would pass).
fn environment(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(escaping_for);
    env.set_formatter(format_value);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(fuel));
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    for markup in ["safe", "tojson", "escape", "e"] {
        env.remove_filter(markup);
    }
    env
}

/// `template` rendered over `view`.
fn render(template: Template, view: &impl Serialize) -> Result<String> {
    render_with_fuel(template, view, FUEL)
}

/// `template` rendered over `view` with at most `fuel` instructions.
fn render_with_fuel(template: Template, view: &impl Serialize, fuel: u64) -> Result<String> {
    let mut env = environment(fuel);
    env.add_template(template.name, template.source)
        .with_context(|| format!("the embedded report template {} does not parse", template.name))?;
    env.get_template(template.name)
        .and_then(|t| t.render(view))
        .with_context(|| format!("cannot render the report template {}", template.name))
}

// ---------------------------------------------------------------------------
// Text

/// What the terminal summary shows, every value clipped and every list
/// aligned and cut: the template only places it.
#[derive(Debug, Serialize)]
struct TextView {
    id: String,
    verdict: String,
    problem: Option<String>,
    workspace: Option<String>,
    /// `user@host (airlock VERSION)`.
    user: Option<String>,
    model: Option<String>,
    time: String,
    ended: Option<String>,
    entries: String,
    summary: String,
    sections: Vec<TextSection>,
    /// Entries not counted above, when there are any.
    also: Option<String>,
}

/// One list of the summary.
#[derive(Debug, Serialize)]
struct TextSection {
    /// `Commands: 2 (1 failed)`.
    title: String,
    /// What it is called when it is empty (`Commands: none` says more than
    /// `Commands: 0 (0 failed)`).
    name: String,
    /// Its rows, aligned.
    lines: Vec<String>,
    /// Rows cut after [`TEXT_ROWS`].
    more: usize,
}

/// `rows` as aligned columns, two spaces in, cut after [`TEXT_ROWS`] rows;
/// and how many were cut. Columns in `right` are aligned right.
fn text_table(rows: &[Vec<String>], right: &[usize]) -> (Vec<String>, usize) {
    let shown = &rows[..rows.len().min(TEXT_ROWS)];
    let columns = shown.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| shown.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let lines = shown
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str("  ");
                if right.contains(&c) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else if c + 1 < row.len() {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(cell);
                }
            }
            line.trim_end().to_string()
        })
        .collect();
    (lines, rows.len() - shown.len())
}

/// A list titled `title` (its name is what comes before the colon).
fn text_section(title: String, rows: &[Vec<String>], right: &[usize]) -> TextSection {
    let name = title.split(':').next().unwrap_or_default().to_string();
    let (lines, more) = text_table(rows, right);
    TextSection { title, name, lines, more }
}

impl Report {
    /// What the terminal summary shows: control characters in event strings
    /// replaced, long values clipped, long lists cut.
    fn text_view(&self) -> TextView {
        let s = &self.session;
        let m = &self.summary;
        let user = self.user_at_host().map(|u| {
            let version =
                s.airlock_version.as_deref().map(|v| format!(" (airlock {})", clip(v, 20))).unwrap_or_default();
            format!("{}{version}", clip(&u, 60))
        });
        let turns = if m.turns > 0 {
            format!(
                "{} · {} · ",
                count(m.turns, "turn", "turns"),
                count(m.agent_tool_calls, "agent tool call", "agent tool calls")
            )
        } else {
            String::new()
        };
        let summary = format!(
            "{turns}{} · {} out · {} · {} · {} · {}",
            count(m.model_requests, "model request", "model requests"),
            bytes(m.bytes_out),
            count(m.refused_destinations, "refused destination", "refused destinations"),
            count(m.redactions, "redaction", "redactions"),
            count(m.commands, "command", "commands"),
            count(m.file_changes, "file change", "file changes"),
        );

        let mut allowed: Vec<Vec<String>> = self
            .egress
            .iter()
            .map(|e| {
                vec![
                    "egress".into(),
                    clip(&e.destination, 60),
                    count(e.connections, "connection", "connections"),
                    format!("{} up", bytes(e.bytes_up)),
                    format!("{} down", bytes(e.bytes_down)),
                ]
            })
            .collect();
        allowed.extend(self.model_destinations.iter().map(|d| {
            vec![
                if d.local { "model (local)".into() } else { "model".into() },
                clip(&d.destination, 60),
                count(d.requests, "request", "requests"),
                format!("{} sent", bytes(d.bytes_sent)),
                format!("{} received", bytes(d.bytes_received)),
                format!("{} in / {} out tokens", d.input_tokens, d.output_tokens),
            ]
        }));
        let refused: Vec<Vec<String>> = self
            .refused
            .iter()
            .map(|r| {
                let mut row = vec![clip(&r.destination, 50), clip(&r.reason, 60), format!("{}×", r.count)];
                if r.bytes > 0 {
                    row.push(format!("{} held back", bytes(r.bytes)));
                }
                row
            })
            .collect();
        let routes: Vec<Vec<String>> = self
            .model_requests
            .iter()
            .map(|r| {
                vec![clip(&r.route, 30), clip(&r.model, 40), count(r.requests, "request", "requests"), bytes(r.bytes)]
            })
            .collect();
        let redactions: Vec<Vec<String>> = self
            .redactions
            .iter()
            .map(|r| {
                vec![
                    clip(&r.rule, 50),
                    r.count.to_string(),
                    format!("({})", count(r.placeholders, "placeholder", "placeholders")),
                ]
            })
            .collect();
        let tools: Vec<Vec<String>> = self
            .tool_calls
            .iter()
            .map(|t| vec![clip(&t.name, 30), clip(&t.decision, 10), clip(&t.decided_by, 50), format!("{}×", t.count)])
            .collect();
        let commands: Vec<Vec<String>> = self
            .commands
            .iter()
            .map(|c| vec![format!("exit {}", c.exit_status), duration(c.duration_ms), clip(&shell_words(&c.argv), 80)])
            .collect();
        let files: Vec<Vec<String>> = self
            .file_changes
            .iter()
            .map(|f| {
                vec![
                    clip(&f.change, 10),
                    clip(&f.path, 60),
                    format!("{} → {}", short_digest(&f.before), short_digest(&f.after)),
                ]
            })
            .collect();
        let violations: Vec<Vec<String>> =
            self.policy_violations.iter().map(|v| vec![clip(&v.rule, 40), clip(&v.detail, 80)]).collect();
        let mut sections: Vec<TextSection> = self.text_timeline().into_iter().collect();
        sections.extend([
            text_section("Destinations allowed".into(), &allowed, &[]),
            text_section("Destinations refused".into(), &refused, &[2]),
            text_section(
                format!("Model requests: {} ({} sent)", m.model_requests, bytes(m.model_bytes_sent)),
                &routes,
                &[3],
            ),
            text_section(format!("Redactions by rule: {}", m.redactions), &redactions, &[1]),
            text_section(
                format!(
                    "Tool calls: {} ({} allowed, {} denied, {} asked)",
                    m.tool_calls, m.tool_calls_allowed, m.tool_calls_denied, m.tool_calls_asked
                ),
                &tools,
                &[3],
            ),
        ]);
        // Only for a session that had MCP servers: the summary of any other stays as it was.
        sections.extend(self.text_mcp());
        sections.extend([
            text_section(format!("Commands: {} ({} failed)", m.commands, m.commands_failed), &commands, &[1]),
            text_section(format!("File changes: {}", m.file_changes), &files, &[]),
            text_section(format!("Policy violations: {}", m.policy_violations), &violations, &[]),
        ]);

        let mut notes = Vec::new();
        if self.external_events > 0 {
            notes.push(count(self.external_events, "external record", "external records"));
        }
        if self.pruned_payloads > 0 {
            notes.push(format!("{} pruned (not counted above)", count(self.pruned_payloads, "payload", "payloads")));
        }
        if let Some(first) = self.unreadable.first() {
            notes.push(format!(
                "{} unreadable (first: entry {}, {})",
                count(self.unreadable.len() as u64, "entry", "entries"),
                first.index,
                clip(&first.problem, 60)
            ));
        }
        TextView {
            id: clip(&s.id, 80),
            verdict: self.verdict_line(),
            problem: self.integrity.problem.as_deref().map(|p| clip(p, 200)),
            workspace: s.workspace.as_deref().map(|w| clip(w, 100)),
            user,
            model: s.model_endpoint.as_deref().map(|e| clip(e, 100)),
            time: self.time_span(),
            ended: s.end_reason.as_deref().map(|r| clip(r, 100)),
            entries: format!("{} (log entries {}–{})", s.entries, s.first_index, s.last_index),
            summary,
            sections,
            also: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }

    /// The session's MCP servers (none when it had none): a row each, aligned,
    /// then what it offered, why it stopped or was refused, what was redacted
    /// from its results and the names it was refused, each a line under it.
    fn text_mcp(&self) -> Option<TextSection> {
        if self.mcp_servers.is_empty() {
            return None;
        }
        let rows: Vec<Vec<String>> = self
            .mcp_servers
            .iter()
            .map(|s| {
                vec![
                    clip(&s.server, 30),
                    clip(&s.state, 10),
                    short_digest(&s.digest),
                    count(s.calls, "call", "calls"),
                    format!("{} failed", s.errors),
                    format!("{} returned", bytes(s.result_bytes)),
                    count(s.redacted(), "redaction", "redactions"),
                    count(s.lookups_refused, "lookup refused", "lookups refused"),
                ]
            })
            .collect();
        let (rows, more) = text_table(&rows, &[3, 4, 5, 6, 7]);
        let mut lines = Vec::new();
        for (line, s) in rows.into_iter().zip(&self.mcp_servers) {
            lines.push(line);
            let mut details = Vec::new();
            if s.state == "started" || !s.tools.is_empty() {
                let tools = if s.tools.is_empty() { "none".to_string() } else { s.tools.join(", ") };
                details.push(format!("tools: {tools}"));
            }
            let why = s.why();
            if !why.is_empty() {
                details.push(why);
            }
            if !s.redactions.is_empty() {
                let rules: Vec<String> = s.redactions.iter().map(|r| format!("{} ×{}", r.rule, r.count)).collect();
                details.push(format!("redacted from results: {}", rules.join(", ")));
            }
            if !s.lookup_hosts.is_empty() {
                details.push(format!("names refused: {}", s.lookup_hosts.join(", ")));
            }
            lines.extend(details.iter().map(|d| format!("      {}", clip(d, 110))));
        }
        let all = |f: fn(&McpServerRun) -> u64| self.mcp_servers.iter().map(f).sum::<u64>();
        Some(TextSection {
            title: format!(
                "MCP servers: {} ({}, {} failed, {} returned, {}, {})",
                self.mcp_servers.len(),
                count(all(|s| s.calls), "call", "calls"),
                all(|s| s.errors),
                bytes(all(|s| s.result_bytes)),
                count(all(McpServerRun::redacted), "redaction", "redactions"),
                count(all(|s| s.lookups_refused), "lookup refused", "lookups refused"),
            ),
            name: "MCP servers".into(),
            lines,
            more,
        })
    }

    /// The session's turns as lines (none when no turn was recorded): each
    /// turn's time, text and what it took, then its tool calls and refusals.
    fn text_timeline(&self) -> Option<TextSection> {
        if self.turns.is_empty() {
            return None;
        }
        let m = &self.summary;
        let mut lines = Vec::new();
        for t in self.turns.iter().take(TEXT_TURNS) {
            let said = if t.number == 0 {
                "before the first turn".to_string()
            } else {
                let cut = if t.clipped { " (cut)" } else { "" };
                format!("#{} {}", t.number, clip(&format!("“{}”{cut}", t.text), 100))
            };
            lines.push(format!("  {}  {said}  ({})", time_of_day(&t.time), turn_meta(t)));
            for step in t.steps.iter().take(TEXT_STEPS) {
                lines.push(match step {
                    TurnStep::ToolCall { name, arguments, answered, result_bytes, .. } => {
                        let name = if name.is_empty() { "(result only)".to_string() } else { clip(name, 30) };
                        let result =
                            if *answered { format!("→ {}", bytes(*result_bytes)) } else { "→ no result".into() };
                        format!("      {name}  {}  {result}", clip(arguments, 90))
                    }
                    TurnStep::Refused { destination, reason, .. } => {
                        format!("      refused  {}  {}", clip(destination, 50), clip(reason, 60))
                    }
                });
            }
            if t.steps.len() > TEXT_STEPS {
                lines.push(format!("      … and {} more", t.steps.len() - TEXT_STEPS));
            }
        }
        Some(TextSection {
            title: format!(
                "Session: {} · {}",
                count(m.turns, "turn", "turns"),
                count(m.agent_tool_calls, "tool call by the agent", "tool calls by the agent")
            ),
            name: "Session".into(),
            lines,
            more: self.turns.len().saturating_sub(TEXT_TURNS),
        })
    }

    /// A compact summary for a terminal, from `report.txt.j2`: every string
    /// from the log made visible ([`airlock_redact::terminal::one_line`]),
    /// long values clipped, long lists cut.
    pub fn render_text(&self) -> Result<String> {
        render(TEXT_TEMPLATE, &self.text_view())
    }

    /// [`Report::render_text`] for callers without an error path: a failure
    /// to render (a bug: the template is embedded and tested) is one line
    /// that says so.
    pub fn text(&self) -> String {
        self.render_text()
            .unwrap_or_else(|e| format!("airlock report: cannot show the report: {}\n", visible(&format!("{e:#}"))))
    }

    /// The whole report as JSON (every row; nothing is cut).
    pub fn json(&self) -> serde_json::Value {
        // Every map key in the report is a string field name, so this
        // cannot fail; say so in the output rather than panic if it ever does.
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}

// ---------------------------------------------------------------------------
// HTML

/// `text` made visible, then safe as HTML text or a quoted attribute value:
/// what [`format_value`] writes for every `{{ value }}` of the page.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in visible(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the page shows, decided and formatted: `report.html.j2` only
/// places it, and its formatter escapes every string.
#[derive(Debug, Serialize)]
struct Page {
    id: String,
    /// The log verifies.
    ok: bool,
    /// `ok` or `bad`: the header's and the verdict's colour.
    state: &'static str,
    /// Under the title: workspace, user, start.
    sub: Vec<Sub>,
    verdict: VerdictBox,
    /// The warning at the top when the log does not verify.
    alert: Option<Alert>,
    session: Vec<Field>,
    stats: Vec<Stat>,
    integrity: IntegrityCard,
    /// The session as it went, when turns were recorded.
    timeline: Option<TimelineCard>,
    sections: Sections,
    other: Option<Other>,
    footer: Footer,
}

/// A piece of the line under the title.
#[derive(Debug, Serialize)]
struct Sub {
    text: String,
    code: bool,
}

/// The verdict box in the header.
#[derive(Debug, Serialize)]
struct VerdictBox {
    headline: &'static str,
    detail: String,
}

/// Why nothing on the page can be relied on.
#[derive(Debug, Serialize)]
struct Alert {
    what: &'static str,
    problem: String,
}

/// A name and a value in a grid.
#[derive(Debug, Serialize)]
struct Field {
    name: &'static str,
    /// `None`: shown as not recorded.
    value: Option<String>,
    code: bool,
    /// Two columns wide.
    wide: bool,
}

impl Field {
    fn new(name: &'static str, value: Option<String>) -> Field {
        Field { name, value, code: false, wide: false }
    }

    fn code(self) -> Field {
        Field { code: true, ..self }
    }

    fn wide(self) -> Field {
        Field { wide: true, ..self }
    }
}

/// A headline number.
#[derive(Debug, Serialize)]
struct Stat {
    /// The colour of its top border: `""`, `warn` or `quiet`.
    tone: &'static str,
    label: &'static str,
    value: String,
    note: String,
}

/// The integrity card: its verdict, then its fields.
#[derive(Debug, Serialize)]
struct IntegrityCard {
    verdict: Pill,
    fields: Vec<Field>,
}

/// A coloured label.
#[derive(Debug, Serialize)]
struct Pill {
    tone: &'static str,
    text: &'static str,
}

/// The session's turns.
#[derive(Debug, Serialize)]
struct TimelineCard {
    count: u64,
    detail: String,
    turns: Vec<TurnView>,
    /// Turns cut after [`HTML_ROWS`].
    more: usize,
}

/// One turn on the page.
#[derive(Debug, Serialize)]
struct TurnView {
    /// `Turn 3`, or `Before the first turn`.
    label: String,
    time: String,
    /// What the person asked (none for what came before the first turn).
    text: Option<String>,
    /// Why the text ends early, when it was cut.
    cut: Option<String>,
    /// What it took.
    meta: String,
    /// Its tool calls and refusals (none when it had none).
    steps: Option<Table>,
}

/// The page's section cards, each placed by name in the template.
#[derive(Debug, Serialize)]
struct Sections {
    allowed: Section,
    refused: Section,
    models: Section,
    redactions: Section,
    tools: Section,
    commands: Section,
    files: Section,
    violations: Section,
}

/// A section card: a heading with its main number and a detail, then its
/// tables, or the line for nothing when it has none.
#[derive(Debug, Serialize)]
struct Section {
    id: &'static str,
    title: &'static str,
    count: u64,
    detail: String,
    /// What it says when it has no rows.
    empty: &'static str,
    /// Only tables with rows.
    tables: Vec<Table>,
}

impl Section {
    fn new(id: &'static str, title: &'static str, count: u64, detail: String, empty: &'static str) -> Section {
        Section { id, title, count, detail, empty, tables: Vec::new() }
    }

    /// This section with `table`, unless it has no rows.
    fn with(mut self, table: Table) -> Section {
        if !table.rows.is_empty() {
            self.tables.push(table);
        }
        self
    }
}

/// A table, cut after [`HTML_ROWS`] rows.
#[derive(Debug, Serialize)]
struct Table {
    heading: Option<&'static str>,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
    /// Rows cut.
    more: usize,
}

/// A column heading.
#[derive(Debug, Serialize)]
struct Column {
    name: &'static str,
    /// Numbers, aligned right.
    num: bool,
}

impl Table {
    /// A table with `headers` (a leading `#` marks a numeric column) and `rows`, cut after [`HTML_ROWS`].
    fn new(headers: &[&'static str], rows: Vec<Vec<Cell>>) -> Table {
        Table::cut(headers, rows, HTML_ROWS)
    }

    /// A table with `headers` and `rows`, cut after `limit` rows.
    fn cut(headers: &[&'static str], mut rows: Vec<Vec<Cell>>, limit: usize) -> Table {
        let columns = headers
            .iter()
            .map(|h| match h.strip_prefix('#') {
                Some(name) => Column { name, num: true },
                None => Column { name: h, num: false },
            })
            .collect();
        let more = rows.len().saturating_sub(limit);
        rows.truncate(limit);
        Table { heading: None, columns, rows, more }
    }

    fn heading(self, heading: &'static str) -> Table {
        Table { heading: Some(heading), ..self }
    }
}

/// A table cell; the template picks its markup by `kind`.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Cell {
    Text {
        text: String,
    },
    Code {
        text: String,
    },
    Num {
        text: String,
    },
    Pill {
        tone: &'static str,
        text: String,
    },
    /// The start of a digest, the whole digest on hover.
    Digest {
        full: String,
        short: String,
    },
    /// A log entry's index, marked when verification found the problem there.
    Entry {
        index: u64,
        edited: bool,
    },
}

impl Cell {
    fn text(text: &str) -> Cell {
        Cell::Text { text: text.to_string() }
    }

    fn code(text: &str) -> Cell {
        Cell::Code { text: text.to_string() }
    }

    fn num(text: impl ToString) -> Cell {
        Cell::Num { text: text.to_string() }
    }

    fn pill(tone: &'static str, text: &str) -> Cell {
        Cell::Pill { tone, text: text.to_string() }
    }

    fn digest(digest: &str) -> Cell {
        Cell::Digest { full: digest.to_string(), short: short_digest(digest) }
    }
}

/// Entries the sections do not count.
#[derive(Debug, Serialize)]
struct Other {
    note: String,
    table: Option<Table>,
}

/// Who made the page, when, from which log.
#[derive(Debug, Serialize)]
struct Footer {
    generated_by: String,
    generated_at: String,
    log: String,
}

/// The colour of a tool call's decision.
fn decision_tone(decision: &str) -> &'static str {
    match decision {
        "allow" => "good",
        "deny" => "bad",
        "ask" => "warn",
        _ => "neutral",
    }
}

/// The colour of what became of an MCP server.
fn mcp_state_tone(state: &str) -> &'static str {
    match state {
        "started" => "good",
        "stopped" | "refused" => "bad",
        _ => "neutral",
    }
}

/// The colour of a file change.
fn change_tone(change: &str) -> &'static str {
    match change {
        "created" => "good",
        "deleted" => "bad",
        _ => "warn",
    }
}

/// The colour of a command's exit status.
fn exit_tone(status: i64) -> &'static str {
    if status == 0 { "good" } else { "bad" }
}

/// A headline number's colour: `busy` when something is worth a look, else `calm`.
fn stat_tone(worth_a_look: bool, busy: &'static str, calm: &'static str) -> &'static str {
    if worth_a_look { busy } else { calm }
}

impl Report {
    /// A row's entry number, marked when verification found the problem there.
    fn entry_cell(&self, index: u64) -> Cell {
        Cell::Entry { index, edited: self.integrity.problem_entry == Some(index) }
    }

    /// What the page shows.
    fn page(&self) -> Page {
        let s = &self.session;
        let m = &self.summary;
        let i = &self.integrity;
        let ok = i.verifies;

        let mut sub = Vec::new();
        if let Some(w) = &s.workspace {
            sub.push(Sub { text: w.clone(), code: true });
        }
        if let Some(u) = self.user_at_host() {
            sub.push(Sub { text: u, code: false });
        }
        sub.push(Sub { text: s.started_at.clone(), code: false });
        let verdict = match i.verdict {
            Verdict::Verified => VerdictBox {
                headline: "Log verifies",
                detail: format!(
                    "{} entries · {} · session {}",
                    i.log_entries,
                    count(i.checkpoints_checked, "checkpoint", "checkpoints"),
                    if i.session_signed { "signed" } else { "not yet signed" }
                ),
            },
            Verdict::Tampered => VerdictBox {
                headline: "Log does NOT verify",
                detail: "the log was changed after it was written".into(),
            },
            Verdict::Unverifiable => {
                VerdictBox { headline: "Log does NOT verify", detail: "the log could not be checked".into() }
            }
        };
        let alert = i.problem.as_ref().map(|problem| Alert {
            what: match i.verdict {
                Verdict::Tampered => "This log has been tampered with. Nothing below can be relied on.",
                _ => "This log could not be verified. Nothing below can be relied on.",
            },
            problem: problem.clone(),
        });

        let session = vec![
            Field::new("Workspace", s.workspace.clone()).code().wide(),
            Field::new("User", self.user_at_host()),
            Field::new("Model endpoint", s.model_endpoint.clone()).code().wide(),
            Field::new("airlock version", s.airlock_version.clone()),
            Field::new("Started", Some(s.started_at.clone())),
            Field::new("Ended", s.ended_at.clone()),
            Field::new("Duration", s.duration_ms.map(duration)),
            Field::new("End reason", s.end_reason.clone()),
            Field::new("Entries", Some(format!("{} (log entries {}–{})", s.entries, s.first_index, s.last_index))),
            Field::new("Policy digest", s.policy_digest.as_deref().map(short_digest)).code(),
        ];

        let egress_bytes_out = self.egress.iter().map(|e| e.bytes_up).sum::<u64>();
        let model_bytes_out = m.bytes_out.saturating_sub(egress_bytes_out);
        let stats = vec![
            Stat {
                tone: "",
                label: "Model requests",
                value: m.model_requests.to_string(),
                note: format!("{} in / {} out tokens", m.input_tokens, m.output_tokens),
            },
            Stat {
                tone: "",
                label: "Bytes out",
                value: bytes(m.bytes_out),
                note: format!("model {} · egress {}", bytes(model_bytes_out), bytes(m.bytes_out - model_bytes_out)),
            },
            Stat {
                tone: stat_tone(m.refused_destinations > 0, "warn", "quiet"),
                label: "Refused destinations",
                value: m.refused_destinations.to_string(),
                note: count(m.refused_attempts, "attempt", "attempts"),
            },
            Stat {
                tone: stat_tone(m.redactions > 0, "warn", "quiet"),
                label: "Redactions",
                value: m.redactions.to_string(),
                note: count(self.redactions.len() as u64, "rule", "rules"),
            },
            Stat {
                tone: stat_tone(m.commands_failed > 0, "warn", ""),
                label: "Commands",
                value: m.commands.to_string(),
                note: format!("{} failed", m.commands_failed),
            },
            Stat {
                tone: "",
                label: "File changes",
                value: m.file_changes.to_string(),
                note: format!("{} new · {} changed · {} deleted", m.files_created, m.files_modified, m.files_deleted),
            },
        ];

        let mut fields = vec![
            Field::new("Entries in the log", Some(i.log_entries.to_string())),
            Field::new(
                "Checked",
                Some(if ok {
                    format!(
                        "{} · {}",
                        count(i.checkpoints_checked, "checkpoint", "checkpoints"),
                        count(i.payloads_checked, "payload", "payloads")
                    )
                } else {
                    "stopped at the first problem".into()
                }),
            ),
            Field::new(
                "Signed checkpoint",
                Some(format!("covers the first {}", count(i.signed_entries, "entry", "entries"))),
            ),
            Field::new(
                "This session",
                Some(if ok { self.coverage() } else { format!("{} (unverified)", self.coverage()) }),
            )
            .wide(),
        ];
        if let Some(p) = &i.problem {
            fields.push(Field::new("First problem", Some(p.clone())).wide());
        }
        let integrity = IntegrityCard {
            verdict: match i.verdict {
                Verdict::Verified => Pill { tone: "good", text: "verifies" },
                Verdict::Tampered => Pill { tone: "bad", text: "tampered" },
                Verdict::Unverifiable => Pill { tone: "bad", text: "cannot be verified" },
            },
            fields,
        };

        Page {
            id: s.id.clone(),
            ok,
            state: if ok { "ok" } else { "bad" },
            sub,
            verdict,
            alert,
            session,
            stats,
            integrity,
            timeline: self.timeline(),
            sections: self.sections(),
            other: self.other(),
            footer: Footer {
                generated_by: self.generated_by.clone(),
                generated_at: self.generated_at.clone(),
                log: self.log.clone(),
            },
        }
    }

    /// The session's turns, when any were recorded: each with what the
    /// person asked and what it took, then its tool calls and refusals in
    /// order (all of them cut at [`HTML_STEPS`] over the page).
    fn timeline(&self) -> Option<TimelineCard> {
        if self.turns.is_empty() {
            return None;
        }
        let m = &self.summary;
        let mut budget = HTML_STEPS;
        let turns = self
            .turns
            .iter()
            .take(HTML_ROWS)
            .map(|t| {
                let rows: Vec<Vec<Cell>> = t
                    .steps
                    .iter()
                    .map(|step| match step {
                        TurnStep::ToolCall { index, name, arguments, clipped, answered, result_bytes, .. } => {
                            let arguments = if *clipped { format!("{arguments}…") } else { arguments.clone() };
                            vec![
                                self.entry_cell(*index),
                                if name.is_empty() {
                                    Cell::pill("neutral", "result only")
                                } else {
                                    Cell::pill("neutral", name)
                                },
                                Cell::code(&arguments),
                                Cell::num(if *answered { bytes(*result_bytes) } else { "no result".into() }),
                            ]
                        }
                        TurnStep::Refused { index, destination, reason, .. } => vec![
                            self.entry_cell(*index),
                            Cell::pill("bad", "refused"),
                            Cell::code(destination),
                            Cell::text(reason),
                        ],
                    })
                    .collect();
                let shown = rows.len().min(budget);
                budget -= shown;
                let mut meta = turn_meta(t);
                if shown == 0 && !rows.is_empty() {
                    meta.push_str(&format!(" · {} not shown (the JSON report has them all)", rows.len()));
                }
                let steps = (shown > 0)
                    .then(|| Table::cut(&["#Entry", "Tool", "Command or arguments", "#Result"], rows, shown));
                TurnView {
                    label: if t.number == 0 { "Before the first turn".into() } else { format!("Turn {}", t.number) },
                    time: t.time.clone(),
                    text: (t.number > 0).then(|| t.text.clone()),
                    cut: t.clipped.then(|| format!("… (cut: {} characters in all)", t.chars)),
                    meta,
                    steps,
                }
            })
            .collect();
        Some(TimelineCard {
            count: m.turns,
            detail: format!(
                "{} · {} refused · as the agent's requests showed them",
                count(m.agent_tool_calls, "tool call", "tool calls"),
                self.turns.iter().flat_map(|t| &t.steps).filter(|s| matches!(s, TurnStep::Refused { .. })).count()
            ),
            turns,
            more: self.turns.len().saturating_sub(HTML_ROWS),
        })
    }

    /// The page's section cards.
    fn sections(&self) -> Sections {
        let m = &self.summary;
        let allowed = Section::new(
            "allowed",
            "Destinations allowed",
            (self.egress.len() + self.model_destinations.len()) as u64,
            format!(
                "{} · {}",
                count(m.egress_connections, "connection", "connections"),
                count(m.model_requests, "model request", "model requests")
            ),
            "No destination was contacted.",
        )
        .with(
            Table::new(
                &["Host:port", "#Connections", "#Bytes up", "#Bytes down"],
                self.egress
                    .iter()
                    .map(|e| {
                        vec![
                            Cell::code(&e.destination),
                            Cell::num(e.connections),
                            Cell::num(bytes(e.bytes_up)),
                            Cell::num(bytes(e.bytes_down)),
                        ]
                    })
                    .collect(),
            )
            .heading("Network egress"),
        )
        .with(
            Table::new(
                &["Destination", "Where", "#Requests", "#Sent", "#Received", "#Tokens in", "#Tokens out", "#Failed"],
                self.model_destinations
                    .iter()
                    .map(|d| {
                        vec![
                            Cell::code(&d.destination),
                            if d.local { Cell::pill("neutral", "local") } else { Cell::pill("warn", "network") },
                            Cell::num(d.requests),
                            Cell::num(bytes(d.bytes_sent)),
                            Cell::num(bytes(d.bytes_received)),
                            Cell::num(d.input_tokens),
                            Cell::num(d.output_tokens),
                            Cell::num(d.failed),
                        ]
                    })
                    .collect(),
            )
            .heading("Model destinations"),
        );

        let refused = Section::new(
            "refused",
            "Destinations refused",
            m.refused_destinations,
            count(m.refused_attempts, "attempt", "attempts"),
            "Nothing was refused.",
        )
        .with(Table::new(
            &["Destination", "Reason", "#Attempts", "#Bytes"],
            self.refused
                .iter()
                .map(|r| {
                    vec![
                        Cell::code(&r.destination),
                        Cell::text(&r.reason),
                        Cell::num(r.count),
                        Cell::num(if r.bytes == 0 { "—".into() } else { bytes(r.bytes) }),
                    ]
                })
                .collect(),
        ));

        let models = Section::new(
            "models",
            "Model requests",
            m.model_requests,
            format!("{} sent · {} received", bytes(m.model_bytes_sent), bytes(m.model_bytes_received)),
            "No model requests.",
        )
        .with(Table::new(
            &["Route", "Model", "#Requests", "#Bytes"],
            self.model_requests
                .iter()
                .map(|r| {
                    vec![Cell::code(&r.route), Cell::code(&r.model), Cell::num(r.requests), Cell::num(bytes(r.bytes))]
                })
                .collect(),
        ));

        let redactions = Section::new(
            "redactions",
            "Redactions by rule",
            m.redactions,
            count(self.redactions.len() as u64, "rule", "rules"),
            "Nothing was redacted.",
        )
        .with(Table::new(
            &["Rule", "#Replaced", "#Distinct secrets"],
            self.redactions
                .iter()
                .map(|r| vec![Cell::code(&r.rule), Cell::num(r.count), Cell::num(r.placeholders)])
                .collect(),
        ));

        let decisions = Table::new(
            &["Tool", "Decision", "Decided by", "#Calls"],
            self.tool_calls
                .iter()
                .map(|t| {
                    vec![
                        Cell::code(&t.name),
                        Cell::pill(decision_tone(&t.decision), &t.decision),
                        Cell::code(&t.decided_by),
                        Cell::num(t.count),
                    ]
                })
                .collect(),
        );
        let mut tools = Section::new(
            "tools",
            "Tool calls",
            m.tool_calls,
            format!("{} allowed · {} denied · {} asked", m.tool_calls_allowed, m.tool_calls_denied, m.tool_calls_asked),
            "No tool calls.",
        );
        // The MCP servers' tables go under the tool calls, headed, only for
        // a session that had MCP servers: the page of any other stays as it was.
        match self.mcp_section() {
            Some(mcp) => {
                tools = tools.with(decisions.heading("Decisions"));
                tools.tables.extend(mcp.tables);
            }
            None => tools = tools.with(decisions),
        }

        let commands = Section::new(
            "commands",
            "Commands",
            m.commands,
            format!("{} failed", m.commands_failed),
            "No commands ran.",
        )
        .with(Table::new(
            &["#Entry", "Command", "Status", "#Duration", "#Output", "Recorded (UTC)"],
            self.commands
                .iter()
                .map(|c| {
                    vec![
                        self.entry_cell(c.index),
                        Cell::code(&shell_words(&c.argv)),
                        Cell::pill(exit_tone(c.exit_status), &format!("exit {}", c.exit_status)),
                        Cell::num(duration(c.duration_ms)),
                        Cell::num(bytes(c.output_bytes)),
                        Cell::text(&c.time),
                    ]
                })
                .collect(),
        ));

        let files = Section::new(
            "files",
            "File changes",
            m.file_changes,
            format!("{} new · {} changed · {} deleted", m.files_created, m.files_modified, m.files_deleted),
            "No files were written.",
        )
        .with(Table::new(
            &["#Entry", "Path", "Change", "Before (SHA-256)", "After (SHA-256)"],
            self.file_changes
                .iter()
                .map(|f| {
                    vec![
                        self.entry_cell(f.index),
                        Cell::code(&f.path),
                        Cell::pill(change_tone(&f.change), &f.change),
                        Cell::digest(&f.before),
                        Cell::digest(&f.after),
                    ]
                })
                .collect(),
        ));

        let violations = Section::new(
            "violations",
            "Policy violations",
            m.policy_violations,
            String::new(),
            "No policy violations.",
        )
        .with(Table::new(
            &["#Entry", "Rule", "What was attempted", "Recorded (UTC)"],
            self.policy_violations
                .iter()
                .map(|v| {
                    vec![self.entry_cell(v.index), Cell::code(&v.rule), Cell::text(&v.detail), Cell::text(&v.time)]
                })
                .collect(),
        ));

        Sections { allowed, refused, models, redactions, tools, commands, files, violations }
    }

    /// The session's MCP servers, when it had any: a row each (what ran,
    /// what it offered, its calls, what they returned, why it stopped or
    /// was refused), then the secrets redacted from their results by rule.
    fn mcp_section(&self) -> Option<Section> {
        if self.mcp_servers.is_empty() {
            return None;
        }
        let servers = &self.mcp_servers;
        let calls: u64 = servers.iter().map(|s| s.calls).sum();
        let section = Section::new(
            "mcp",
            "MCP servers",
            servers.len() as u64,
            format!(
                "{} · {} failed · {} returned · {} redacted",
                count(calls, "call", "calls"),
                servers.iter().map(|s| s.errors).sum::<u64>(),
                bytes(servers.iter().map(|s| s.result_bytes).sum()),
                servers.iter().map(McpServerRun::redacted).sum::<u64>()
            ),
            "No MCP servers.",
        )
        .with(
            Table::new(
                &[
                    "Server",
                    "State",
                    "Digest",
                    "Tools offered",
                    "#Calls",
                    "#Failed",
                    "#Returned",
                    "#Redacted",
                    "#Lookups refused",
                    "Why",
                ],
                servers
                    .iter()
                    .map(|s| {
                        vec![
                            Cell::code(&s.server),
                            Cell::pill(mcp_state_tone(&s.state), &s.state),
                            Cell::digest(&s.digest),
                            Cell::code(&s.tools.join(", ")),
                            Cell::num(s.calls),
                            Cell::num(s.errors),
                            Cell::num(bytes(s.result_bytes)),
                            Cell::num(s.redacted()),
                            Cell::num(s.lookups_refused),
                            Cell::text(&s.why()),
                        ]
                    })
                    .collect(),
            )
            .heading("MCP servers"),
        )
        .with(
            Table::new(
                &["Server", "Rule", "#Replaced", "#Distinct secrets"],
                servers
                    .iter()
                    .flat_map(|s| {
                        s.redactions.iter().map(|r| {
                            vec![
                                Cell::code(&s.server),
                                Cell::code(&r.rule),
                                Cell::num(r.count),
                                Cell::num(r.placeholders),
                            ]
                        })
                    })
                    .collect(),
            )
            .heading("Secrets redacted from MCP results"),
        );
        Some(section)
    }

    /// The card for entries the sections do not count, when there are any.
    fn other(&self) -> Option<Other> {
        if self.unreadable.is_empty() && self.pruned_payloads == 0 && self.external_events == 0 {
            return None;
        }
        let note = format!(
            "{} · {} (not counted above) · {} this airlock cannot read",
            count(self.external_events, "external record", "external records"),
            count(self.pruned_payloads, "pruned payload", "pruned payloads"),
            count(self.unreadable.len() as u64, "entry", "entries"),
        );
        let table = (!self.unreadable.is_empty()).then(|| {
            Table::new(
                &["#Entry", "Kind", "Problem"],
                self.unreadable
                    .iter()
                    .map(|u| vec![self.entry_cell(u.index), Cell::code(&u.kind), Cell::text(&u.problem)])
                    .collect(),
            )
        });
        Some(Other { note, table })
    }

    /// One self-contained page, from `report.html.j2`: inline CSS, no
    /// scripts, no external resources (a Content-Security-Policy forbids
    /// them too), every string from the log made visible and escaped.
    pub fn render_html(&self) -> Result<String> {
        render(HTML_TEMPLATE, &self.page())
    }

    /// [`Report::render_html`] for callers without an error path: a failure
    /// to render (a bug: the template is embedded and tested) is a page that
    /// says so, not a page without its evidence that looks whole.
    pub fn html(&self) -> String {
        self.render_html().unwrap_or_else(|e| {
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">\
                 <title>airlock report</title></head><body><p>airlock could not render this report: {}</p></body></html>\n",
                esc(&format!("{e:#}"))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, event: serde_json::Value) -> Entry {
        Entry {
            index,
            time_ms: 1_795_564_800_000 + index as i64 * 1000,
            kind: event["kind"].as_str().unwrap_or_default().to_string(),
            payload: Some(serde_json::to_vec(&event).unwrap()),
            external: false,
            missing: false,
        }
    }

    fn verified(entries: &[Entry]) -> Integrity {
        let v = Verified { entries: 10, checkpoints: 1, payloads: 10, unsigned_tail: 0, pruned_below: 0 };
        Integrity::new(LogCheck::Verified(v), 10, 10, entries)
    }

    #[test]
    fn model_traffic_is_summed_by_destination_and_route() {
        let note = |rule: &str, p: &str| serde_json::json!({"rule": rule, "field": "/m", "placeholder": p, "secret_sha256": "ab"});
        let req = |n: u64, route: &str, dest: &str, notes: serde_json::Value| {
            serde_json::json!({"kind": "model_request", "principal": "uid:1", "route": route, "model": "m",
                "destination": dest, "bytes": n, "content_digest": "00", "redactions": notes})
        };
        let entries = [
            entry(
                0,
                req(100, "openai.chat", "up https://a", serde_json::json!([note("aws", "[A1]"), note("aws", "[A1]")])),
            ),
            entry(1, req(50, "openai.chat", "up https://a", serde_json::json!([note("gh", "[G1]")]))),
            entry(2, req(7, "embedded", "embedded m sha256:1", serde_json::json!([]))),
            entry(
                3,
                serde_json::json!({"kind": "model_response", "principal": "uid:1", "destination": "up https://a",
                    "status": 200, "bytes": 300, "content_digest": "11", "input_tokens": 4, "output_tokens": 2,
                    "duration_ms": 5, "outcome": "complete"}),
            ),
        ];
        let r = assemble("s", &entries, verified(&entries));
        assert_eq!(r.summary.model_requests, 3);
        assert_eq!(r.summary.model_bytes_sent, 157);
        // The embedded model's bytes never left the machine.
        assert_eq!(r.summary.bytes_out, 150);
        assert_eq!(r.summary.bytes_in, 300);
        assert_eq!(r.model_destinations.len(), 2);
        assert!(r.model_destinations[1].local);
        assert_eq!(r.model_requests.len(), 2);
        assert_eq!((r.model_requests[0].requests, r.model_requests[0].bytes), (2, 150));
        assert_eq!(r.redactions.len(), 2);
        assert_eq!((r.redactions[0].rule.as_str(), r.redactions[0].count, r.redactions[0].placeholders), ("aws", 2, 1));
        assert_eq!(r.summary.redactions, 3);
    }

    #[test]
    fn refusals_are_counted_by_destination_and_reason() {
        let entries = [
            entry(0, serde_json::json!({"kind": "blocked_egress", "destination": "x:443", "reason": "no"})),
            entry(
                1,
                serde_json::json!({"kind": "blocked_egress", "destination": "x:443", "reason": "no", "bytes": 40}),
            ),
            entry(2, serde_json::json!({"kind": "blocked_egress", "destination": "y:80", "reason": "no"})),
        ];
        let r = assemble("s", &entries, verified(&entries));
        assert_eq!(r.refused.len(), 2);
        assert_eq!((r.refused[0].count, r.refused[0].bytes), (2, 40));
        assert_eq!((r.summary.refused_destinations, r.summary.refused_attempts), (2, 3));
    }

    #[test]
    fn pruned_and_unknown_payloads_are_counted_not_guessed() {
        let mut pruned = entry(0, serde_json::json!({"kind": "session_end", "reason": "done"}));
        pruned.payload = None;
        let odd = entry(1, serde_json::json!({"kind": "teleport", "to": "mars"}));
        let entries = [pruned, odd];
        let r = assemble("s", &entries, verified(&entries));
        assert_eq!(r.pruned_payloads, 1);
        assert_eq!(r.unreadable.len(), 1);
        assert_eq!(r.unreadable[0].kind, "teleport");
        assert!(r.session.end_reason.is_none());
    }

    #[test]
    fn external_records_are_not_the_sessions_and_missing_payloads_are_shown() {
        let mut external = entry(0, serde_json::json!({"kind": "session_end", "reason": "forged"}));
        external.external = true;
        let mut forged_command = entry(
            1,
            serde_json::json!({"kind": "command", "argv": ["rm"], "cwd": "/",
            "sandbox_digest": "", "exit_status": 0, "duration_ms": 1, "output_digest": "", "output_bytes": 0}),
        );
        forged_command.external = true;
        let mut missing = entry(2, serde_json::json!({"kind": "tool_call"}));
        missing.payload = None;
        missing.missing = true;
        let entries = [external, forged_command, missing];
        let r = assemble("s", &entries, verified(&entries));
        assert_eq!(r.external_events, 2);
        assert!(r.commands.is_empty() && r.session.end_reason.is_none());
        assert_eq!(r.pruned_payloads, 0);
        assert_eq!((r.unreadable[0].index, r.unreadable[0].kind.as_str()), (2, "tool_call"));
        assert!(r.unreadable[0].problem.contains("missing"));
    }

    #[test]
    fn the_checkpoint_coverage_counts_the_sessions_unsigned_entries() {
        let entries = [
            entry(4, serde_json::json!({"kind": "session_end", "reason": "done"})),
            entry(9, serde_json::json!({"kind": "session_end", "reason": "done"})),
        ];
        let i = Integrity::new(LogCheck::Tampered(Tamper::PayloadEdited { index: 9 }), 10, 5, &entries);
        assert!(!i.verifies && !i.session_signed);
        assert_eq!(i.session_unsigned_entries, 1);
        assert_eq!(i.problem_entry, Some(9));
        assert!(i.problem.unwrap().contains("entry 9 was edited"));
    }

    #[test]
    fn text_lists_are_cut() {
        let entries: Vec<Entry> = (0..25)
            .map(|n| {
                entry(
                    n,
                    serde_json::json!({"kind": "command", "argv": ["echo", n.to_string()], "cwd": "/w",
                        "sandbox_digest": "0", "exit_status": 0, "duration_ms": 1, "output_digest": "0", "output_bytes": 2}),
                )
            })
            .collect();
        let text = assemble("s", &entries, verified(&entries)).render_text().unwrap();
        assert!(text.contains("echo 19\n"), "{text}");
        assert!(!text.contains("echo 20\n"), "{text}");
        assert!(text.contains("… and 5 more"), "{text}");
    }

    #[test]
    fn strings_are_made_harmless() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(visible("a\x1b[31mb\u{202E}c\nd"), "a\u{FFFD}[31mb\u{FFFD}c d");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(
            shell_words(&["sh".into(), "-c".into(), "cargo test".into(), "it's".into()]),
            r"sh -c 'cargo test' 'it'\''s'"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(duration(12), "12 ms");
        assert_eq!(duration(1500), "1.5 s");
        assert_eq!(duration(125_000), "2 min 5 s");
        assert_eq!(duration(3_723_000), "1 h 2 min");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest(""), "—");
    }

    #[test]
    fn the_format_follows_the_output_extension() {
        assert_eq!(Format::for_path(Some(Path::new("r.HTML"))), Format::Html);
        assert_eq!(Format::for_path(Some(Path::new("r.json"))), Format::Json);
        assert_eq!(Format::for_path(Some(Path::new("r.txt"))), Format::Text);
        assert_eq!(Format::for_path(None), Format::Text);
    }

    // -----------------------------------------------------------------------
    // Rendering

    /// A string that tries everything a page or a terminal could act on:
    /// closing the style sheet, a script, an attribute and an event handler,
    /// bidirectional and C1 controls, an escape sequence, a line break, and
    /// template syntax that must stay text.
    const HOSTILE: &str = "</style><script>alert(1)</script>\"onload=alert(2) x='y' \
        \u{202E}rtl\u{2066}iso\u{0085}nel\u{009B}31mcsi\x1b[2Jesc {{ 7*7 }} {% if true %}IF{% endif %}\r\n line";

    /// A session with [`HOSTILE`] in every string the report shows.
    fn hostile_report() -> Report {
        let h = HOSTILE;
        let events = [
            serde_json::json!({"kind": "session_start", "policy_digest": h, "model_endpoint": h,
                "airlock_version": h, "user": h, "host": h, "workspace": h}),
            serde_json::json!({"kind": "model_request", "principal": h, "route": h, "model": h, "destination": h,
                "bytes": 10, "content_digest": h,
                "redactions": [{"rule": h, "field": h, "placeholder": h, "secret_sha256": h}]}),
            serde_json::json!({"kind": "model_request", "principal": h, "route": "embedded", "model": h,
                "destination": format!("local {h}"), "bytes": 10, "content_digest": h, "redactions": []}),
            serde_json::json!({"kind": "model_response", "principal": h, "destination": h, "status": 200,
                "bytes": 20, "content_digest": h, "input_tokens": 1, "output_tokens": 1, "duration_ms": 1,
                "outcome": h}),
            serde_json::json!({"kind": "tool_call", "name": h, "argument_digest": h, "decision": h, "decided_by": h}),
            serde_json::json!({"kind": "command", "argv": [h, h], "cwd": h, "sandbox_digest": h, "exit_status": 3,
                "duration_ms": 1, "output_digest": h, "output_bytes": 1}),
            serde_json::json!({"kind": "file_change", "path": h, "before": h, "after": h}),
            serde_json::json!({"kind": "policy_violation", "rule": h, "detail": h}),
            serde_json::json!({"kind": "agent_turn", "text": h, "clipped": true, "chars": 9, "digest": h,
                "conversation": h, "position": 1}),
            serde_json::json!({"kind": "agent_tool_call", "name": h, "call_id": h, "arguments": h, "clipped": false,
                "answered": true, "result_bytes": 3}),
            serde_json::json!({"kind": "blocked_egress", "destination": h, "reason": h, "bytes": 5}),
            serde_json::json!({"kind": "egress_open", "client": h, "method": h, "host": h, "port": 443, "addr": h}),
            serde_json::json!({"kind": "egress_close", "client": h, "host": h, "port": 443, "bytes_up": 1,
                "bytes_down": 2, "duration_ms": 1}),
            serde_json::json!({"kind": h, "what": h}),
            serde_json::json!({"kind": "mcp_server", "server": h, "action": "started", "digest": h,
                "detail": format!("tools: {h}")}),
            serde_json::json!({"kind": "mcp_result", "server": h, "tool": h, "is_error": true, "result_bytes": 4,
                "result_digest": h, "duration_ms": 1,
                "redactions": [{"rule": h, "field": h, "placeholder": h, "secret_sha256": h}]}),
            serde_json::json!({"kind": "blocked_egress", "destination": h,
                "reason": format!("MCP server {h} has no network (a name lookup was refused)")}),
            serde_json::json!({"kind": "mcp_server", "server": h, "action": "stopped", "detail": h}),
            serde_json::json!({"kind": "session_end", "reason": h}),
        ];
        let mut entries: Vec<Entry> = events.into_iter().enumerate().map(|(n, e)| entry(n as u64, e)).collect();
        // An entry the header names with the hostile kind, its payload gone.
        let mut missing = entry(entries.len() as u64, serde_json::json!({"kind": h}));
        (missing.payload, missing.missing) = (None, true);
        entries.push(missing);
        let integrity = Integrity::new(LogCheck::Unverifiable(h.to_string()), 20, 0, &entries);
        let mut report = assemble(h, &entries, integrity);
        report.integrity.problem_entry = Some(5);
        (report.log, report.generated_at, report.generated_by) = (h.into(), h.into(), h.into());
        report
    }

    /// Characters a reader's screen could act on: C0 controls but the line
    /// break, C1 controls, and bidirectional controls.
    fn acts_on_a_screen(c: char) -> bool {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }

    /// The tags of `html`, each as written (`<td class="num">`).
    fn tags(html: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').map_or(rest.len(), |e| start + e + 1);
            found.push(&rest[start..end]);
            rest = &rest[end..];
        }
        found
    }

    /// A tag's name: `td` for `<td class="num">`, `/td` for `</td>`.
    fn tag_name(tag: &str) -> &str {
        tag.trim_start_matches('<').split([' ', '>', '{']).next().unwrap_or_default()
    }

    #[test]
    fn hostile_strings_stay_text_in_the_page() {
        let report = hostile_report();
        // Every section has the hostile string in a row, so every cell kind is exercised.
        assert!(!report.tool_calls.is_empty() && !report.unreadable.is_empty() && !report.egress.is_empty());
        assert_eq!(report.mcp_servers.len(), 1, "{:?}", report.mcp_servers);
        let html = report.render_html().unwrap();

        // Every tag in the page is one the template writes: none came from the log.
        let own: HashSet<&str> = tags(HTML_TEMPLATE.source).into_iter().map(tag_name).collect();
        for tag in tags(&html) {
            assert!(own.contains(tag_name(tag)), "the page has a tag the template does not: {tag:?}");
            let lower = tag.to_ascii_lowercase();
            assert!(
                !lower.split_whitespace().skip(1).any(|a| a.starts_with("on")),
                "an event handler attribute: {tag:?}"
            );
        }
        assert_eq!(html.matches("<style>").count(), 1);
        assert_eq!(html.matches("</style>").count(), 1);
        assert!(!html.to_ascii_lowercase().contains("<script"), "a script element");
        assert!(!html.contains("\"onload="), "an attribute was closed");
        assert!(!html.contains("x='y'"), "a quote was not escaped");
        if let Some(c) = html.chars().find(|&c| acts_on_a_screen(c)) {
            panic!("the page holds {c:?}");
        }
        // Template syntax from the log stays text: it was never a template.
        assert!(html.contains("{{ 7*7 }} {% if true %}IF{% endif %}"), "{html}");
        // The hostile string is shown, escaped, where each field is shown.
        let shown = esc(HOSTILE);
        assert!(
            shown.contains("&lt;/style&gt;&lt;script&gt;") && shown.contains("&quot;onload=alert(2) x=&#39;y&#39;")
        );
        for (place, needle) in [
            ("title", format!("<title>airlock report · {shown}</title>")),
            ("heading", format!("<h1>Session <code>{shown}</code></h1>")),
            ("workspace", format!("<p class=\"sub\"><code>{shown}</code>")),
            ("problem", format!("First problem found: {shown}</div>")),
            ("endpoint", format!("<dt>Model endpoint</dt><dd><code>{shown}</code></dd>")),
            ("version", format!("<dt>airlock version</dt><dd>{shown}</dd>")),
            ("end reason", format!("<dt>End reason</dt><dd>{shown}</dd>")),
            ("destination", format!("<td><code>{shown}</code></td><td><span class=\"pill warn\">network</span>")),
            ("egress host", format!("<td><code>{}:443</code></td>", shown)),
            ("refusal", format!("<td><code>{shown}</code></td><td>{shown}</td>")),
            ("tool", format!("<td><span class=\"pill neutral\">{shown}</span></td><td><code>{shown}</code></td>")),
            ("digest", format!("<code title=\"{shown}\">")),
            ("violation", format!("<td><code>{shown}</code></td><td>{shown}</td><td>")),
            ("edited", "<td class=\"num\"><span class=\"pill bad\">edited</span> 5</td>".to_string()),
            ("turn", format!("<p class=\"said\">{shown} <span class=\"muted\">")),
            (
                "agent call",
                format!(
                    "<td><span class=\"pill neutral\">{shown}</span></td><td><code>{shown}</code></td><td class=\"num\">3 B</td>"
                ),
            ),
            (
                "refused in a turn",
                format!(
                    "<td><span class=\"pill bad\">refused</span></td><td><code>{shown}</code></td><td>{shown}</td>"
                ),
            ),
            ("footer", format!("Generated by {shown} at {shown} from <code>{shown}</code>.")),
            (
                "MCP server",
                format!(
                    "<td><code>{shown}</code></td><td><span class=\"pill bad\">stopped</span></td><td><code title=\"{shown}\">"
                ),
            ),
            ("MCP tools", format!("<td><code>{shown}</code></td><td class=\"num\">1</td><td class=\"num\">1</td>")),
            ("MCP stop", format!("<td>stopped: {shown}</td>")),
            (
                "MCP redaction",
                format!("<td><code>{shown}</code></td><td><code>{shown}</code></td><td class=\"num\">1</td>"),
            ),
        ] {
            assert!(html.contains(&needle), "the {place} is not shown escaped: {needle}\n{html}");
        }
    }

    #[test]
    fn hostile_strings_stay_text_on_the_terminal() {
        let report = hostile_report();
        let text = report.render_text().unwrap();
        if let Some(c) = text.chars().find(|&c| acts_on_a_screen(c)) {
            panic!("the summary holds {c:?}:\n{text}");
        }
        // The line break in the string did not start a line of its own.
        assert!(!text.lines().any(|l| l.trim_start().starts_with("line")), "{text}");
        assert!(text.contains("{{ 7*7 }}"), "{text}");
        let visible_start = visible(&HOSTILE[..40]);
        for (place, prefix) in [
            ("id", "airlock report: session "),
            ("problem", "Problem    "),
            ("workspace", "Workspace  "),
            ("user", "User       "),
            ("model", "Model      "),
            ("end reason", "Ended      "),
        ] {
            let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {place}:\n{text}"));
            assert!(line.contains(&visible_start), "the {place} is not shown: {line}");
        }
        for title in [
            "Tool calls: 1",
            "MCP servers: 1",
            "Commands: 1",
            "File changes: 1",
            "Policy violations: 1",
            "Destinations refused",
        ] {
            let at = text.find(title).unwrap_or_else(|| panic!("no {title}:\n{text}"));
            let row = text[at..].lines().nth(1).unwrap_or_default();
            assert!(row.contains("</style><script>"), "{title}: {row}");
        }
        assert!(text.contains("Also: "), "{text}");
    }

    /// A small session, the same every time: what the snapshots show.
    fn small_report() -> Report {
        let entries = [
            entry(
                3,
                serde_json::json!({"kind": "session_start", "policy_digest": "sha256:9f86d081884c7d659a2feaa0c55ad015",
                    "model_endpoint": "gpt-4o via broker to openai https://api.openai.com/v1",
                    "airlock_version": "0.1.0", "user": "alice", "host": "devbox", "workspace": "/home/alice/greeter"}),
            ),
            entry(
                4,
                serde_json::json!({"kind": "model_request", "principal": "uid:1000", "route": "openai.chat",
                    "model": "gpt-4o", "destination": "openai https://api.openai.com/v1", "bytes": 1200,
                    "content_digest": "00", "redactions": [{"rule": "github-token", "field": "/messages/1/content",
                    "placeholder": "[REDACTED:github-token:1]", "secret_sha256": "ab"}]}),
            ),
            entry(
                5,
                serde_json::json!({"kind": "model_response", "principal": "uid:1000",
                    "destination": "openai https://api.openai.com/v1", "status": 200, "bytes": 3400,
                    "content_digest": "11", "input_tokens": 310, "output_tokens": 42, "duration_ms": 900,
                    "outcome": "complete"}),
            ),
            entry(
                6,
                serde_json::json!({"kind": "tool_call", "name": "run_command", "argument_digest": "22",
                    "decision": "allow", "decided_by": "rule:allow-cargo"}),
            ),
            entry(
                7,
                serde_json::json!({"kind": "command", "argv": ["sh", "-c", "cargo test"], "cwd": "/home/alice/greeter",
                    "sandbox_digest": "33", "exit_status": 101, "duration_ms": 61_500, "output_digest": "44",
                    "output_bytes": 5000}),
            ),
            entry(
                8,
                serde_json::json!({"kind": "file_change", "path": "src/greet.rs", "before": "",
                    "after": "sha256:0123456789abcdef0123"}),
            ),
            entry(
                9,
                serde_json::json!({"kind": "blocked_egress", "destination": "evil.example:443",
                    "reason": "no rule allows it", "bytes": 517}),
            ),
            entry(10, serde_json::json!({"kind": "session_end", "reason": "completed"})),
        ];
        let mut report = assemble("s-2026-greeter", &entries, verified(&entries));
        report.generated_at = "2026-12-07T05:00:00Z".into();
        report.generated_by = "airlock (test)".into();
        report.log = "/home/alice/.local/share/airlock/audit.db".into();
        report
    }

    #[test]
    fn the_page_of_a_small_session() {
        insta::assert_snapshot!("report_html", small_report().render_html().unwrap());
    }

    #[test]
    fn the_summary_of_a_small_session() {
        insta::assert_snapshot!("report_text", small_report().render_text().unwrap());
    }

    #[test]
    fn a_report_renders_the_same_with_the_infallible_forms() {
        let report = small_report();
        assert_eq!(report.text(), report.render_text().unwrap());
        assert_eq!(report.html(), report.render_html().unwrap());
    }

    /// An interactive session under `airlock wrap`: a start-up request, two
    /// turns, the agent's commands, a refusal, a file change.
    fn interactive_report() -> Report {
        let req = |bytes: u64| {
            serde_json::json!({"kind": "model_request", "principal": "uid:1000", "route": "anthropic.messages",
                "model": "claude-sonnet-4", "destination": "anthropic https://api.anthropic.com", "bytes": bytes,
                "content_digest": "00", "redactions": []})
        };
        let resp = |input: u64, output: u64| {
            serde_json::json!({"kind": "model_response", "principal": "uid:1000",
                "destination": "anthropic https://api.anthropic.com", "status": 200, "bytes": 900,
                "content_digest": "11", "input_tokens": input, "output_tokens": output, "duration_ms": 800,
                "outcome": "complete"})
        };
        let turn = |text: &str, position: u64| {
            serde_json::json!({"kind": "agent_turn", "text": text, "clipped": false, "chars": text.chars().count(),
                "digest": "5e1f", "conversation": "c0ffee0123456789", "position": position})
        };
        let call = |id: &str, name: &str, arguments: &str, result: u64| {
            serde_json::json!({"kind": "agent_tool_call", "name": name, "call_id": id, "arguments": arguments,
                "clipped": false, "answered": true, "result_bytes": result})
        };
        let events = [
            serde_json::json!({"kind": "session_start", "policy_digest": "sha256:9f86d081884c7d659a2feaa0c55ad015",
                "model_endpoint": "claude-sonnet-4 via broker to anthropic https://api.anthropic.com",
                "airlock_version": "0.1.0", "user": "alice", "host": "devbox", "workspace": "/home/alice/greeter"}),
            // Claude Code's start-up check, before anything was typed.
            req(120),
            resp(5, 1),
            req(2048),
            turn("fix the failing test in src/greet.rs", 0),
            resp(3100, 80),
            req(4096),
            call("toolu_01", "Bash", "cargo test", 5120),
            resp(4200, 120),
            serde_json::json!({"kind": "blocked_egress", "destination": "crates.io:443",
                "reason": "no rule allows it", "bytes": 0}),
            req(6144),
            call("toolu_02", "Edit", r#"{"file_path":"src/greet.rs","new_string":"Hello","old_string":"Helo"}"#, 60),
            call("toolu_03", "Bash", "cargo test", 2048),
            resp(5000, 40),
            req(7000),
            turn("now commit it with a <short> message", 4),
            resp(5200, 30),
            req(7400),
            call("toolu_04", "Bash", "git commit -am 'fix greeting'", 120),
            resp(5300, 10),
            serde_json::json!({"kind": "file_change", "path": "src/greet.rs", "before": "sha256:aa", "after": "sha256:bb"}),
            serde_json::json!({"kind": "session_end", "reason": "completed"}),
        ];
        let entries: Vec<Entry> = events.into_iter().enumerate().map(|(n, e)| entry(20 + n as u64, e)).collect();
        let mut report = assemble("s-2026-interactive", &entries, verified(&entries));
        report.generated_at = "2026-12-07T05:00:00Z".into();
        report.generated_by = "airlock (test)".into();
        report.log = "/home/alice/.local/share/airlock/audit.db".into();
        report
    }

    #[test]
    fn an_interactive_session_reads_as_its_turns() {
        let r = interactive_report();
        assert_eq!((r.summary.turns, r.summary.agent_tool_calls), (2, 4));
        let shape: Vec<(u64, u64, usize)> =
            r.turns.iter().map(|t| (t.number, t.model_requests, t.steps.len())).collect();
        // The start-up request before the first turn; the request that
        // carried a turn is that turn's; the calls of an answer are the turn's
        // that asked for them.
        assert_eq!(shape, [(0, 1, 0), (1, 3, 4), (2, 2, 1)]);
        assert_eq!(r.turns[1].text, "fix the failing test in src/greet.rs");
        assert_eq!(r.turns[1].bytes_sent, 2048 + 4096 + 6144);
        assert_eq!((r.turns[1].input_tokens, r.turns[1].output_tokens), (3100 + 4200 + 5000, 80 + 120 + 40));
        let TurnStep::ToolCall { name, arguments, .. } = &r.turns[1].steps[0] else { panic!("{:?}", r.turns[1]) };
        assert_eq!((name.as_str(), arguments.as_str()), ("Bash", "cargo test"));
        assert!(
            matches!(&r.turns[1].steps[1], TurnStep::Refused { destination, .. } if destination == "crates.io:443")
        );
        // Requests sum the same as without turns.
        assert_eq!(r.turns.iter().map(|t| t.model_requests).sum::<u64>(), r.summary.model_requests);
        let json = r.json();
        assert_eq!(json["turns"][2]["steps"][0]["kind"], "tool_call");
        assert_eq!(json["turns"][2]["steps"][0]["arguments"], "git commit -am 'fix greeting'");
        // File changes and refusals are listed as before.
        assert_eq!((r.file_changes.len(), r.refused.len()), (1, 1));
    }

    #[test]
    fn a_session_without_turns_has_no_timeline() {
        let r = small_report();
        assert!(r.turns.is_empty() && r.page().timeline.is_none() && r.text_timeline().is_none());
        assert!(!r.render_html().unwrap().contains("id=\"timeline\""));
    }

    #[test]
    fn a_one_shot_wrapped_session_is_one_turn() {
        let entries = [
            entry(
                0,
                serde_json::json!({"kind": "model_request", "principal": "u", "route": "openai.responses",
                "model": "gpt-5", "destination": "d", "bytes": 10, "content_digest": "0", "redactions": []}),
            ),
            entry(
                1,
                serde_json::json!({"kind": "agent_turn", "text": "say hi", "clipped": false, "chars": 6,
                "digest": "d", "conversation": "c", "position": 3}),
            ),
        ];
        let r = assemble("s", &entries, verified(&entries));
        assert_eq!(r.turns.len(), 1);
        assert_eq!((r.turns[0].number, r.turns[0].model_requests, r.turns[0].index), (1, 1, Some(1)));
    }

    #[test]
    fn mcp_servers_are_counted_by_server() {
        let result = |server: &str, is_error: bool, bytes: u64, rules: &[(&str, &str)]| {
            let notes: Vec<serde_json::Value> = rules
                .iter()
                .map(|(rule, p)| serde_json::json!({"rule": rule, "field": "result", "placeholder": p, "secret_sha256": "ab"}))
                .collect();
            serde_json::json!({"kind": "mcp_result", "server": server, "tool": "read", "is_error": is_error,
                "result_bytes": bytes, "result_digest": "cd", "redactions": notes, "duration_ms": 3})
        };
        let server = |server: &str, action: &str, digest: &str, detail: &str| serde_json::json!({"kind": "mcp_server", "server": server, "action": action, "digest": digest, "detail": detail});
        let events = [
            server("files", "started", "sha256:abcdef0123456789", "tools: read, list"),
            server("files", "tool_refused", "", "tool `huge` not offered: its description is over 8 KiB"),
            server("pinned", "refused", "", "its digest does not match the pin"),
            result("files", false, 100, &[("aws", "[A1]"), ("aws", "[A1]"), ("gh", "[G1]")]),
            result("files", true, 20, &[]),
            serde_json::json!({"kind": "blocked_egress", "destination": "evil.example",
                "reason": "MCP server files has no network (a name lookup was refused)"}),
            serde_json::json!({"kind": "blocked_egress", "destination": "evil.example",
                "reason": "MCP server files has no network (a name lookup was refused)"}),
            serde_json::json!({"kind": "blocked_egress", "destination": "crates.io:443", "reason": "no rule allows it"}),
            server("files", "stopped", "", "it sent malformed JSON-RPC"),
        ];
        let entries: Vec<Entry> = events.into_iter().enumerate().map(|(n, e)| entry(n as u64, e)).collect();
        let r = assemble("s", &entries, verified(&entries));
        assert_eq!(r.mcp_servers.len(), 2);
        let files = &r.mcp_servers[0];
        assert_eq!((files.server.as_str(), files.state.as_str()), ("files", "stopped"));
        assert_eq!(
            (files.digest.as_str(), files.tools.clone()),
            ("sha256:abcdef0123456789", vec!["read".into(), "list".into()])
        );
        assert_eq!((files.calls, files.errors, files.result_bytes), (2, 1, 120));
        assert_eq!((files.lookups_refused, files.lookup_hosts.clone()), (2, vec!["evil.example".to_string()]));
        assert_eq!(files.stopped.as_deref(), Some("it sent malformed JSON-RPC"));
        assert_eq!(files.tools_refused.len(), 1);
        let rules: Vec<(&str, u64, u64)> =
            files.redactions.iter().map(|c| (c.rule.as_str(), c.count, c.placeholders)).collect();
        assert_eq!(rules, [("aws", 2, 1), ("gh", 1, 1)]);
        let pinned = &r.mcp_servers[1];
        assert_eq!(
            (pinned.state.as_str(), pinned.refused.as_deref()),
            ("refused", Some("its digest does not match the pin"))
        );
        // Redactions in results are the servers', not the requests'; refusals are listed as before.
        assert_eq!((r.summary.redactions, r.refused.len()), (0, 2));
        assert_eq!(r.json()["mcp_servers"][0]["redactions"][0]["rule"], "aws");

        let text = r.render_text().unwrap();
        assert!(
            text.contains("MCP servers: 2 (2 calls, 1 failed, 120 B returned, 3 redactions, 2 lookups refused)\n"),
            "{text}"
        );
        let row = text.lines().find(|l| l.starts_with("  files")).unwrap_or_default();
        for part in ["stopped", "abcdef012345", "2 calls", "1 failed", "120 B returned", "3 redactions"] {
            assert!(row.contains(part), "{part} not in {row:?}");
        }
        for line in [
            "      tools: read, list",
            "      stopped: it sent malformed JSON-RPC; tool not offered: tool `huge` not offered: its description is over 8 KiB",
            "      redacted from results: aws ×2, gh ×1",
            "      names refused: evil.example",
            "      refused: its digest does not match the pin",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
        let html = r.render_html().unwrap();
        assert!(html.contains("<h3>MCP servers</h3>") && html.contains("<h3>Secrets redacted from MCP results</h3>"));
        assert!(html.contains("<td><code>files</code></td><td><span class=\"pill bad\">stopped</span></td>"), "{html}");
        assert!(html.contains("<td><code>read, list</code></td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">120 B</td><td class=\"num\">3</td><td class=\"num\">2</td>"), "{html}");
        assert!(html.contains(
            "<td><code>files</code></td><td><code>aws</code></td><td class=\"num\">2</td><td class=\"num\">1</td>"
        ));
    }

    #[test]
    fn a_session_without_mcp_servers_has_no_mcp_part() {
        let r = small_report();
        assert!(r.mcp_servers.is_empty() && r.text_mcp().is_none() && r.mcp_section().is_none());
        assert_eq!(r.json()["mcp_servers"], serde_json::json!([]));
        assert!(!r.render_text().unwrap().contains("MCP") && !r.render_html().unwrap().contains("MCP"));
    }

    #[test]
    fn the_page_of_an_interactive_session() {
        insta::assert_snapshot!("report_session_html", interactive_report().render_html().unwrap());
    }

    #[test]
    fn the_summary_of_an_interactive_session() {
        insta::assert_snapshot!("report_session_text", interactive_report().render_text().unwrap());
    }

    /// A report whose every table is longer than the page shows.
    fn largest_report() -> Report {
        let mut report = small_report();
        let n = HTML_ROWS as u64 + 1;
        let name = |k: u64| format!("item-{k}");
        report.egress = (0..n).map(|k| EgressDestination::new(name(k))).collect();
        report.model_destinations = (0..n).map(|k| ModelDestination::new(name(k))).collect();
        report.refused =
            (0..n).map(|k| RefusedDestination { destination: name(k), reason: name(k), count: 1, bytes: k }).collect();
        report.model_requests =
            (0..n).map(|k| ModelRoute { route: name(k), model: name(k), requests: 1, bytes: k }).collect();
        report.redactions = (0..n).map(|k| RedactionCount { rule: name(k), count: 1, placeholders: 1 }).collect();
        report.tool_calls = (0..n)
            .map(|k| ToolCalls { name: name(k), decision: "deny".into(), decided_by: name(k), count: 1 })
            .collect();
        report.commands = (0..n)
            .map(|k| CommandRun {
                index: k,
                time: name(k),
                argv: vec![name(k)],
                cwd: name(k),
                exit_status: 1,
                duration_ms: k,
                output_bytes: k,
            })
            .collect();
        report.file_changes = (0..n)
            .map(|k| FileChange {
                index: k,
                time: name(k),
                path: name(k),
                change: "modified".into(),
                before: name(k),
                after: name(k),
            })
            .collect();
        report.policy_violations =
            (0..n).map(|k| PolicyViolation { index: k, time: name(k), rule: name(k), detail: name(k) }).collect();
        report.unreadable = (0..n).map(|k| UnreadableEntry { index: k, kind: name(k), problem: name(k) }).collect();
        report.mcp_servers = (0..n)
            .map(|k| {
                let mut s = McpServerRun::new(name(k));
                s.redactions = vec![RedactionCount { rule: name(k), count: 1, placeholders: 1 }];
                s
            })
            .collect();
        report.turns = (0..n)
            .map(|k| {
                let mut turn = Turn::new(k + 1, Some(k), &name(k));
                (turn.text, turn.clipped, turn.chars) = ("t".repeat(500), true, 9000);
                turn.steps = (0..5)
                    .map(|s| TurnStep::ToolCall {
                        index: k,
                        time: name(k),
                        name: name(s),
                        call_id: name(s),
                        arguments: "a".repeat(500),
                        clipped: true,
                        answered: true,
                        result_bytes: s,
                    })
                    .collect();
                turn
            })
            .collect();
        report.summary.turns = n;
        report
    }

    #[test]
    fn the_largest_page_renders_within_the_fuel() {
        let report = largest_report();
        let html = report.render_html().unwrap();
        assert_eq!(html.matches("… and 1 more rows (the JSON report has them all)").count(), 12, "every table is cut");
        assert!(html.contains("item-499") && !html.contains("item-500<"));
        assert!(html.contains("… and 1 more turns (the JSON report has them all)"), "the timeline is cut");
        assert!(html.contains("5 not shown (the JSON report has them all)"), "steps past the page's budget");
        assert_eq!(html.matches("<h3>Turn ").count(), HTML_ROWS);
        let text = report.render_text().unwrap();
        assert!(text.contains(&format!("… and {} more", HTML_ROWS + 1 - TEXT_ROWS)), "{text}");
        // The limit leaves room for the page to grow.
        assert!(render_with_fuel(HTML_TEMPLATE, &report.page(), FUEL / 3).is_ok(), "the page needs over FUEL / 3");
        assert!(render_with_fuel(TEXT_TEMPLATE, &report.text_view(), FUEL / 100).is_ok());
    }

    /// A template of the report's kind, rendered the way the report's are.
    fn try_template(name: &'static str, source: &'static str) -> Result<String> {
        render_with_fuel(Template { name, source }, &serde_json::json!({"s": "<b>x</b>"}), 10_000)
    }

    #[test]
    fn a_template_that_loops_away_runs_out_of_fuel() {
        let e =
            try_template("t.html.j2", "{% for a in range(1000) %}{% for b in range(1000) %}.{% endfor %}{% endfor %}")
                .unwrap_err();
        assert!(format!("{e:#}").contains("fuel"), "{e:#}");
    }

    #[test]
    fn a_template_cannot_print_a_string_raw() {
        assert_eq!(try_template("t.html.j2", "{{ s }}").unwrap(), "&lt;b&gt;x&lt;/b&gt;");
        assert_eq!(try_template("t.txt.j2", "{{ s }}").unwrap(), "<b>x</b>");
        for (name, source, why) in [
            ("t.html.j2", "{{ s|safe }}", "safe"),
            ("t.html.j2", "{{ s|tojson }}", "tojson"),
            ("t.html.j2", "{{ s|escape }}", "escape"),
            ("t.html.j2", "{{ s|e }}", "unknown filter"),
            ("t.html.j2", "{% autoescape false %}{{ s }}{% endautoescape %}", "escape"),
            ("t.j2", "{{ s }}", "escape"),
            ("t.html.j2", "{{ missing }}", "undefined"),
        ] {
            let e = try_template(name, source).unwrap_err();
            assert!(format!("{e:#}").contains(why), "{source} in {name}: {e:#}");
        }
        // Macros return markup they escaped themselves, so they still work.
        let m = "{% macro b(x) %}<b>{{ x }}</b>{% endmacro %}{{ b(s) }}";
        assert_eq!(try_template("t.html.j2", m).unwrap(), "<b>&lt;b&gt;x&lt;/b&gt;</b>");
    }

    #[test]
    fn the_templates_load_nothing_and_mark_nothing_safe() {
        for t in [HTML_TEMPLATE, TEXT_TEMPLATE] {
            let source = t.source.to_ascii_lowercase();
            for banned in [
                "|safe",
                "| safe",
                "tojson",
                "autoescape",
                "include",
                "import",
                "extends",
                "<script",
                "src=",
                "href=",
                "url(",
                "@import",
                "@font-face",
            ] {
                assert!(!source.contains(banned), "{} has {banned:?}", t.name);
            }
        }
        assert!(HTML_TEMPLATE.source.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        ));
        assert_eq!(escaping_for(HTML_TEMPLATE.name), AutoEscape::Html);
        assert_eq!(escaping_for(TEXT_TEMPLATE.name), AutoEscape::Custom(TERMINAL));
    }

    #[test]
    fn tables_are_aligned_and_cut() {
        let rows: Vec<Vec<String>> =
            (0..TEXT_ROWS + 2).map(|n| vec![format!("r{n}"), "x".repeat(n % 3), format!("{n}×")]).collect();
        let (lines, more) = text_table(&rows, &[2]);
        assert_eq!((lines.len(), more), (TEXT_ROWS, 2));
        assert_eq!(lines[0], "  r0        0×");
        assert_eq!(lines[2], "  r2   xx   2×");
        assert_eq!(lines[10], "  r10  x   10×");
        let section = text_section("Commands: 0 (0 failed)".into(), &[], &[]);
        assert_eq!((section.name.as_str(), section.lines.len()), ("Commands", 0));
    }

    #[test]
    fn colours_follow_the_decision() {
        assert_eq!(["allow", "deny", "ask", "<b>"].map(decision_tone), ["good", "bad", "warn", "neutral"]);
        assert_eq!(["created", "deleted", "modified"].map(change_tone), ["good", "bad", "warn"]);
        assert_eq!((exit_tone(0), exit_tone(124)), ("good", "bad"));
        assert_eq!((stat_tone(true, "warn", "quiet"), stat_tone(false, "warn", "quiet")), ("warn", "quiet"));
    }

    #[test]
    fn a_log_that_does_not_verify_says_so_first() {
        let mut report = small_report();
        let entries = [entry(7, serde_json::json!({"kind": "session_end", "reason": "x"}))];
        report.integrity = Integrity::new(LogCheck::Tampered(Tamper::PayloadEdited { index: 7 }), 10, 10, &entries);
        let text = report.render_text().unwrap();
        let mut lines = text.lines().skip(1);
        assert_eq!(lines.next(), Some("Log        DOES NOT VERIFY: the log was changed"), "{text}");
        assert!(lines.next().is_some_and(|l| l.starts_with("Problem    ") && l.contains("entry 7")), "{text}");
        let html = report.render_html().unwrap();
        assert!(
            html.contains("<header class=\"top bad\">") && html.contains("<div class=\"verdict bad\" id=\"verdict\">")
        );
        assert!(html.contains("<strong>This log has been tampered with. Nothing below can be relied on.</strong>"));
        assert!(html.contains("<span class=\"pill bad\">tampered</span>") && !html.contains("Log verifies"));
        assert!(html.contains("<dt>Checked</dt><dd>stopped at the first problem</dd>"), "{html}");
        assert!(html.contains("<td class=\"num\"><span class=\"pill bad\">edited</span> 7</td>"), "{html}");
    }

    #[test]
    fn an_edited_entry_is_marked_where_it_is_listed() {
        let mut report = small_report();
        report.integrity.problem_entry = Some(7);
        let html = report.render_html().unwrap();
        assert!(html.contains("<td class=\"num\"><span class=\"pill bad\">edited</span> 7</td>"), "{html}");
        assert!(html.contains("<td class=\"num\">8</td>"), "{html}");
    }
}
