//! `airlock report SESSION`: what one session did, read back from the audit
//! log, as a summary for a terminal, as JSON, or as one self-contained HTML
//! page for security reviewers.
//!
//! The log records digests and placeholders, never secret values, and the
//! report shows no more than the log holds. Whether the log verifies is
//! checked the way `airlock audit verify` checks it, over the whole log,
//! because a report of a session in an edited log is no evidence at all.
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
        Format::Text => report.text(),
        Format::Json => format!("{:#}\n", report.json()),
        Format::Html => report.html(),
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
                for note in notes {
                    let (count, placeholders) = redactions.row(note.rule.clone(), || {
                        (RedactionCount { rule: note.rule, count: 0, placeholders: 0 }, HashSet::new())
                    });
                    count.count += 1;
                    placeholders.insert(note.placeholder);
                }
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
            Event::Rewind { .. } => {}
        }
    }

    let started = started_ms.unwrap_or(0);
    s.started_at = audit::iso_time(started);
    s.ended_at = ended_ms.map(audit::iso_time);
    s.duration_ms = ended_ms.map(|end| end.saturating_sub(started).max(0) as u64);

    let egress = egress.rows;
    let models = models.rows;
    let refused = refused.rows;
    let redactions: Vec<RedactionCount> = redactions
        .rows
        .into_iter()
        .map(|(mut count, placeholders)| {
            count.placeholders = placeholders.len() as u64;
            count
        })
        .collect();
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
    };
    Report {
        generated_at: String::new(),
        generated_by: format!("airlock {}", env!("CARGO_PKG_VERSION")),
        log: String::new(),
        session: s,
        integrity,
        summary,
        egress,
        model_destinations: models,
        refused,
        model_requests: routes.rows,
        redactions,
        tool_calls,
        commands,
        file_changes,
        policy_violations,
        external_events,
        pruned_payloads,
        unreadable,
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
// Text

/// Aligned columns, two spaces in, cut after [`TEXT_ROWS`] rows.
fn text_table(out: &mut String, rows: &[Vec<String>], right: &[usize]) {
    let shown = &rows[..rows.len().min(TEXT_ROWS)];
    let columns = shown.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| shown.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for row in shown {
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
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows.len() > shown.len() {
        out.push_str(&format!("  … and {} more\n", rows.len() - shown.len()));
    }
}

impl Report {
    /// A compact summary for a terminal: control characters in event
    /// strings are replaced, long values clipped, long lists cut.
    pub fn text(&self) -> String {
        let s = &self.session;
        let m = &self.summary;
        let mut out = String::new();
        let field = |out: &mut String, name: &str, value: &str| out.push_str(&format!("{name:<11}{}\n", value));
        out.push_str(&format!("airlock report: session {}\n", clip(&s.id, 80)));
        field(&mut out, "Log", &self.verdict_line());
        if let Some(problem) = &self.integrity.problem {
            field(&mut out, "Problem", &clip(problem, 200));
        }
        if let Some(w) = &s.workspace {
            field(&mut out, "Workspace", &clip(w, 100));
        }
        if let Some(u) = self.user_at_host() {
            let version =
                s.airlock_version.as_deref().map(|v| format!(" (airlock {})", clip(v, 20))).unwrap_or_default();
            field(&mut out, "User", &format!("{}{version}", clip(&u, 60)));
        }
        if let Some(e) = &s.model_endpoint {
            field(&mut out, "Model", &clip(e, 100));
        }
        field(&mut out, "Time", &self.time_span());
        if let Some(r) = &s.end_reason {
            field(&mut out, "Ended", &clip(r, 100));
        }
        field(&mut out, "Entries", &format!("{} (log entries {}–{})", s.entries, s.first_index, s.last_index));
        out.push('\n');
        out.push_str(&format!(
            "Summary: {} · {} out · {} · {} · {} · {}\n",
            count(m.model_requests, "model request", "model requests"),
            bytes(m.bytes_out),
            count(m.refused_destinations, "refused destination", "refused destinations"),
            count(m.redactions, "redaction", "redactions"),
            count(m.commands, "command", "commands"),
            count(m.file_changes, "file change", "file changes"),
        ));

        let section = |out: &mut String, title: String, rows: Vec<Vec<String>>, right: &[usize]| {
            out.push('\n');
            if rows.is_empty() {
                // "Commands: 0 (0 failed)" says less than "Commands: none".
                let name = title.split(':').next().unwrap_or_default();
                out.push_str(&format!("{name}: none\n"));
            } else {
                out.push_str(&format!("{title}\n"));
                text_table(out, &rows, right);
            }
        };

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
        section(&mut out, "Destinations allowed".into(), allowed, &[]);

        let refused = self
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
        section(&mut out, "Destinations refused".into(), refused, &[2]);

        let routes = self
            .model_requests
            .iter()
            .map(|r| {
                vec![clip(&r.route, 30), clip(&r.model, 40), count(r.requests, "request", "requests"), bytes(r.bytes)]
            })
            .collect();
        let title = format!("Model requests: {} ({} sent)", m.model_requests, bytes(m.model_bytes_sent));
        section(&mut out, title, routes, &[3]);

        let redactions = self
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
        section(&mut out, format!("Redactions by rule: {}", m.redactions), redactions, &[1]);

        let tools = self
            .tool_calls
            .iter()
            .map(|t| vec![clip(&t.name, 30), clip(&t.decision, 10), clip(&t.decided_by, 50), format!("{}×", t.count)])
            .collect();
        let title = format!(
            "Tool calls: {} ({} allowed, {} denied, {} asked)",
            m.tool_calls, m.tool_calls_allowed, m.tool_calls_denied, m.tool_calls_asked
        );
        section(&mut out, title, tools, &[3]);

        let commands = self
            .commands
            .iter()
            .map(|c| vec![format!("exit {}", c.exit_status), duration(c.duration_ms), clip(&shell_words(&c.argv), 80)])
            .collect();
        section(&mut out, format!("Commands: {} ({} failed)", m.commands, m.commands_failed), commands, &[1]);

        let files = self
            .file_changes
            .iter()
            .map(|f| {
                vec![
                    f.change.clone(),
                    clip(&f.path, 60),
                    format!("{} → {}", short_digest(&f.before), short_digest(&f.after)),
                ]
            })
            .collect();
        section(&mut out, format!("File changes: {}", m.file_changes), files, &[]);

        let violations = self.policy_violations.iter().map(|v| vec![clip(&v.rule, 40), clip(&v.detail, 80)]).collect();
        section(&mut out, format!("Policy violations: {}", m.policy_violations), violations, &[]);

        let mut notes = Vec::new();
        if self.external_events > 0 {
            notes.push(count(self.external_events, "external record", "external records"));
        }
        if self.pruned_payloads > 0 {
            notes.push(format!("{} pruned (not counted above)", count(self.pruned_payloads, "payload", "payloads")));
        }
        if !self.unreadable.is_empty() {
            let first = &self.unreadable[0];
            notes.push(format!(
                "{} unreadable (first: entry {}, {})",
                count(self.unreadable.len() as u64, "entry", "entries"),
                first.index,
                clip(&first.problem, 60)
            ));
        }
        if !notes.is_empty() {
            out.push_str(&format!("\nAlso: {}\n", notes.join("; ")));
        }
        out
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

/// `text` made safe as HTML text or a quoted attribute value.
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

/// A table cell. Only [`Cell::Html`] and [`Cell::NumHtml`] are inserted as
/// is, and they are only ever built here from escaped parts.
enum Cell {
    Text(String),
    Code(String),
    Num(String),
    Html(String),
    NumHtml(String),
}

impl Report {
    /// A row's entry number, marked when verification found the problem there.
    fn entry_cell(&self, index: u64) -> Cell {
        if self.integrity.problem_entry == Some(index) {
            return Cell::NumHtml(format!("<span class=\"pill bad\">{}</span> {index}", esc("edited")));
        }
        Cell::Num(index.to_string())
    }
}

fn pill(kind: &str, text: &str) -> Cell {
    Cell::Html(format!("<span class=\"pill {kind}\">{}</span>", esc(text)))
}

/// A table with `headers` (a leading `#` marks a numeric column), cut after [`HTML_ROWS`] rows.
fn html_table(out: &mut String, headers: &[&str], rows: Vec<Vec<Cell>>) {
    out.push_str("<table><thead><tr>");
    for h in headers {
        match h.strip_prefix('#') {
            Some(h) => out.push_str(&format!("<th class=\"num\">{}</th>", esc(h))),
            None => out.push_str(&format!("<th>{}</th>", esc(h))),
        }
    }
    out.push_str("</tr></thead><tbody>");
    let total = rows.len();
    for row in rows.into_iter().take(HTML_ROWS) {
        out.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Text(t) => out.push_str(&format!("<td>{}</td>", esc(&t))),
                Cell::Code(t) => out.push_str(&format!("<td><code>{}</code></td>", esc(&t))),
                Cell::Num(t) => out.push_str(&format!("<td class=\"num\">{}</td>", esc(&t))),
                Cell::Html(h) => out.push_str(&format!("<td>{h}</td>")),
                Cell::NumHtml(h) => out.push_str(&format!("<td class=\"num\">{h}</td>")),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if total > HTML_ROWS {
        out.push_str(&format!(
            "<p class=\"more\">… and {} more rows (the JSON report has them all)</p>",
            total - HTML_ROWS
        ));
    }
}

/// What a section's heading says: a title, its main number and a detail.
struct Heading<'a> {
    id: &'a str,
    title: &'a str,
    count: u64,
    detail: String,
    /// What the section says when it has no rows.
    empty: &'a str,
}

/// A section card: its heading, then `body` (its tables), or the line for
/// nothing when it has no `rows`.
fn html_section(out: &mut String, h: Heading<'_>, rows: usize, body: impl FnOnce(&mut String)) {
    out.push_str(&format!(
        "<section class=\"card\" id=\"{}\"><h2>{}<span class=\"count\">{}</span><span class=\"detail\">{}</span></h2>",
        esc(h.id),
        esc(h.title),
        h.count,
        esc(&h.detail)
    ));
    if rows == 0 {
        out.push_str(&format!("<p class=\"empty\">{}</p>", esc(h.empty)));
    } else {
        body(out);
    }
    out.push_str("</section>");
}

const CSS: &str = r##"
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;background:#f2f4f7;color:#1d2433;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans",Arial,sans-serif}
.wrap{max-width:1240px;margin:0 auto;padding:0 32px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12.5px}
header.top{background:#0f1b2d;color:#dfe6f0;padding:26px 0 28px;border-bottom:4px solid #2f6fdf}
header.top.ok{border-bottom-color:#1f9d55}
header.top.bad{border-bottom-color:#d64545}
.brand{font-size:12px;letter-spacing:.16em;text-transform:uppercase;color:#8ea2bd;font-weight:600}
.brand b{color:#fff;letter-spacing:.2em}
.head{display:flex;justify-content:space-between;align-items:center;gap:28px;margin-top:12px}
h1{margin:0;font-size:24px;font-weight:650;color:#fff;overflow-wrap:anywhere}
h1 code{font-size:22px}
.sub{margin:6px 0 0;color:#a9b7ca;overflow-wrap:anywhere}
.verdict{display:flex;align-items:center;gap:14px;padding:12px 20px 12px 14px;border-radius:12px;flex-shrink:0;max-width:440px}
.verdict.ok{background:#e3f5e9;color:#14532d;border:1px solid #8fd5a6}
.verdict.bad{background:#fde8e8;color:#7f1d1d;border:1px solid #f0a3a3}
.verdict svg{width:34px;height:34px;flex-shrink:0}
.verdict strong{display:block;font-size:17px;letter-spacing:.01em}
.verdict small{display:block;font-size:12px;opacity:.85}
.alert{margin:22px 0 0;padding:14px 18px;border-radius:10px;background:#fdecec;border:1px solid #f3b8b8;border-left:6px solid #c62828;color:#7f1d1d}
.alert strong{display:block;margin-bottom:2px}
.card{background:#fff;border:1px solid #e0e5ec;border-radius:12px;padding:20px 24px;margin-top:20px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
dl.grid{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:14px 32px;margin:0}
dl.grid dt{font-size:11px;text-transform:uppercase;letter-spacing:.08em;color:#6b7586;font-weight:600}
dl.grid dd{margin:2px 0 0;overflow-wrap:anywhere}
dl.grid .wide{grid-column:span 2}
.stats{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:14px;margin-top:20px}
.stat{background:#fff;border:1px solid #e0e5ec;border-radius:12px;padding:14px 16px 16px;border-top:4px solid #2f6fdf;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.stat.warn{border-top-color:#d98a06}
.stat.alarm{border-top-color:#d64545}
.stat.quiet{border-top-color:#b8c2d0}
.stat .label{font-size:12.5px;color:#526070;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.stat .value{font-size:30px;font-weight:700;line-height:1.2;margin-top:6px;font-variant-numeric:tabular-nums;color:#101828}
.stat .note{font-size:12px;color:#6b7586;margin-top:2px}
h2{font-size:16px;margin:0 0 14px;display:flex;align-items:center;gap:10px;color:#101828}
h2 .count{font-size:12px;font-weight:600;background:#edf1f6;color:#475467;border-radius:999px;padding:1px 10px}
h2 .detail{margin-left:auto;font-size:12.5px;font-weight:500;color:#6b7586}
h3{font-size:11px;text-transform:uppercase;letter-spacing:.08em;color:#6b7586;margin:18px 0 6px;font-weight:600}
h3:first-of-type{margin-top:0}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#667085;font-weight:600;padding:8px 12px;border-bottom:1px solid #e0e5ec;background:#f7f9fb}
td{padding:8px 12px;border-bottom:1px solid #edf0f4;vertical-align:top;overflow-wrap:anywhere}
tbody tr:last-child td{border-bottom:0}
tbody tr:nth-child(even) td{background:#fbfcfd}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
.pill.good{background:#e3f5e9;color:#166534}
.pill.bad{background:#fde8e8;color:#991b1b}
.pill.warn{background:#fff3dc;color:#8a4b05}
.pill.neutral{background:#edf1f6;color:#475467}
.muted{color:#8a94a6}
.empty{color:#8a94a6;margin:0}
.more{color:#6b7586;font-size:12px;margin:10px 0 0}
.two{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:20px}
.two>.card{margin-top:20px}
footer{color:#8a94a6;font-size:12px;padding:26px 32px 44px;max-width:1240px;margin:0 auto}
@media (max-width:960px){.stats{grid-template-columns:repeat(3,minmax(0,1fr))}dl.grid{grid-template-columns:1fr 1fr}.two{grid-template-columns:1fr}.head{flex-direction:column;align-items:flex-start}}
@media print{body{background:#fff}.card,.stat{box-shadow:none;break-inside:avoid}}
"##;

const ICON_OK: &str = r##"<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="11" fill="#1f9d55"/><path d="M7 12.5l3.2 3.2L17.5 8.5" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;
const ICON_BAD: &str = r##"<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="11" fill="#d64545"/><path d="M8 8l8 8M16 8l-8 8" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/></svg>"##;

impl Report {
    /// One self-contained page: inline CSS, no scripts, no external
    /// resources (a Content-Security-Policy forbids them too), every event
    /// string escaped.
    pub fn html(&self) -> String {
        let s = &self.session;
        let m = &self.summary;
        let i = &self.integrity;
        let ok = i.verifies;
        let mut out = String::with_capacity(32 * 1024);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        // Defence in depth: were an event string ever inserted unescaped, it
        // could still neither run nor fetch anything.
        out.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        );
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        out.push_str(&format!("<title>airlock report · {}</title><style>{CSS}</style></head><body>", esc(&s.id)));

        // Header: which session, and whether the evidence holds.
        let state = if ok { "ok" } else { "bad" };
        out.push_str(&format!("<header class=\"top {state}\"><div class=\"wrap\">"));
        out.push_str("<div class=\"brand\"><b>airlock</b> · session evidence report</div><div class=\"head\"><div>");
        out.push_str(&format!("<h1>Session <code>{}</code></h1>", esc(&s.id)));
        let mut sub = Vec::new();
        if let Some(w) = &s.workspace {
            sub.push(format!("<code>{}</code>", esc(w)));
        }
        if let Some(u) = self.user_at_host() {
            sub.push(esc(&u));
        }
        sub.push(esc(&s.started_at));
        out.push_str(&format!("<p class=\"sub\">{}</p></div>", sub.join(" · ")));
        let (icon, headline, detail) = match i.verdict {
            Verdict::Verified => (
                ICON_OK,
                "Log verifies",
                format!(
                    "{} entries · {} · session {}",
                    i.log_entries,
                    count(i.checkpoints_checked, "checkpoint", "checkpoints"),
                    if i.session_signed { "signed" } else { "not yet signed" }
                ),
            ),
            Verdict::Tampered => (ICON_BAD, "Log does NOT verify", "the log was changed after it was written".into()),
            Verdict::Unverifiable => (ICON_BAD, "Log does NOT verify", "the log could not be checked".into()),
        };
        out.push_str(&format!(
            "<div class=\"verdict {state}\" id=\"verdict\">{icon}<div><strong>{}</strong><small>{}</small></div></div>",
            esc(headline),
            esc(&detail)
        ));
        out.push_str("</div></div></header><main class=\"wrap\">");

        if let Some(problem) = &i.problem {
            let what = match i.verdict {
                Verdict::Tampered => "This log has been tampered with. Nothing below can be relied on.",
                _ => "This log could not be verified. Nothing below can be relied on.",
            };
            out.push_str(&format!(
                "<div class=\"alert\" id=\"problem\"><strong>{}</strong>First problem found: {}</div>",
                esc(what),
                esc(problem)
            ));
        }

        // The session.
        out.push_str("<section class=\"card\" id=\"session\"><dl class=\"grid\">");
        let dd = |out: &mut String, name: &str, value: Option<String>, code: bool, wide: bool| {
            let class = if wide { " class=\"wide\"" } else { "" };
            let value = match value {
                Some(v) if code => format!("<code>{}</code>", esc(&v)),
                Some(v) => esc(&v),
                None => "<span class=\"muted\">not recorded</span>".into(),
            };
            out.push_str(&format!("<div{class}><dt>{}</dt><dd>{value}</dd></div>", esc(name)));
        };
        dd(&mut out, "Workspace", s.workspace.clone(), true, true);
        dd(&mut out, "User", self.user_at_host(), false, false);
        dd(&mut out, "Model endpoint", s.model_endpoint.clone(), true, true);
        dd(&mut out, "airlock version", s.airlock_version.clone(), false, false);
        dd(&mut out, "Started", Some(s.started_at.clone()), false, false);
        dd(&mut out, "Ended", s.ended_at.clone(), false, false);
        dd(&mut out, "Duration", s.duration_ms.map(duration), false, false);
        dd(&mut out, "End reason", s.end_reason.clone(), false, false);
        dd(
            &mut out,
            "Entries",
            Some(format!("{} (log entries {}–{})", s.entries, s.first_index, s.last_index)),
            false,
            false,
        );
        dd(&mut out, "Policy digest", s.policy_digest.as_deref().map(short_digest), true, false);
        out.push_str("</dl></section>");

        // The headline numbers.
        out.push_str("<section class=\"stats\" id=\"summary\">");
        let stat = |out: &mut String, tone: &str, label: &str, value: String, note: String| {
            out.push_str(&format!(
                "<div class=\"stat {tone}\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"note\">{}</div></div>",
                esc(label),
                esc(&value),
                esc(&note)
            ));
        };
        let model_bytes_out = m.bytes_out - self.egress.iter().map(|e| e.bytes_up).sum::<u64>();
        stat(
            &mut out,
            "",
            "Model requests",
            m.model_requests.to_string(),
            format!("{} in / {} out tokens", m.input_tokens, m.output_tokens),
        );
        stat(
            &mut out,
            "",
            "Bytes out",
            bytes(m.bytes_out),
            format!("model {} · egress {}", bytes(model_bytes_out), bytes(m.bytes_out - model_bytes_out)),
        );
        stat(
            &mut out,
            if m.refused_destinations > 0 { "warn" } else { "quiet" },
            "Refused destinations",
            m.refused_destinations.to_string(),
            count(m.refused_attempts, "attempt", "attempts"),
        );
        stat(
            &mut out,
            if m.redactions > 0 { "warn" } else { "quiet" },
            "Redactions",
            m.redactions.to_string(),
            count(self.redactions.len() as u64, "rule", "rules"),
        );
        stat(
            &mut out,
            if m.commands_failed > 0 { "warn" } else { "" },
            "Commands",
            m.commands.to_string(),
            format!("{} failed", m.commands_failed),
        );
        stat(
            &mut out,
            "",
            "File changes",
            m.file_changes.to_string(),
            format!("{} new · {} changed · {} deleted", m.files_created, m.files_modified, m.files_deleted),
        );
        out.push_str("</section>");

        // Integrity.
        out.push_str("<section class=\"card\" id=\"integrity\"><h2>Integrity</h2><dl class=\"grid\">");
        let verdict = match i.verdict {
            Verdict::Verified => "<span class=\"pill good\">verifies</span>",
            Verdict::Tampered => "<span class=\"pill bad\">tampered</span>",
            Verdict::Unverifiable => "<span class=\"pill bad\">cannot be verified</span>",
        };
        out.push_str(&format!("<div><dt>Verdict</dt><dd>{verdict}</dd></div>"));
        dd(&mut out, "Entries in the log", Some(i.log_entries.to_string()), false, false);
        dd(
            &mut out,
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
            false,
            false,
        );
        dd(
            &mut out,
            "Signed checkpoint",
            Some(format!("covers the first {}", count(i.signed_entries, "entry", "entries"))),
            false,
            false,
        );
        let coverage = if ok { self.coverage() } else { format!("{} (unverified)", self.coverage()) };
        dd(&mut out, "This session", Some(coverage), false, true);
        if let Some(p) = &i.problem {
            dd(&mut out, "First problem", Some(p.clone()), false, true);
        }
        out.push_str("</dl><p class=\"more\">Checked as <code>airlock audit verify</code> does, with this log's own key. \
             To rule out a log rewritten by someone holding that key, verify with a verifier key and checkpoints kept elsewhere.</p></section>");

        // Destinations allowed.
        let allowed = self.egress.len() + self.model_destinations.len();
        let heading = Heading {
            id: "allowed",
            title: "Destinations allowed",
            count: allowed as u64,
            detail: format!(
                "{} · {}",
                count(m.egress_connections, "connection", "connections"),
                count(m.model_requests, "model request", "model requests")
            ),
            empty: "No destination was contacted.",
        };
        html_section(&mut out, heading, allowed, |out| {
            if !self.egress.is_empty() {
                out.push_str("<h3>Network egress</h3>");
                let rows = self
                    .egress
                    .iter()
                    .map(|e| {
                        vec![
                            Cell::Code(e.destination.clone()),
                            Cell::Num(e.connections.to_string()),
                            Cell::Num(bytes(e.bytes_up)),
                            Cell::Num(bytes(e.bytes_down)),
                        ]
                    })
                    .collect();
                html_table(out, &["Host:port", "#Connections", "#Bytes up", "#Bytes down"], rows);
            }
            if !self.model_destinations.is_empty() {
                out.push_str("<h3>Model destinations</h3>");
                let rows = self
                    .model_destinations
                    .iter()
                    .map(|d| {
                        let kind = if d.local { pill("neutral", "local") } else { pill("warn", "network") };
                        vec![
                            Cell::Code(d.destination.clone()),
                            kind,
                            Cell::Num(d.requests.to_string()),
                            Cell::Num(bytes(d.bytes_sent)),
                            Cell::Num(bytes(d.bytes_received)),
                            Cell::Num(d.input_tokens.to_string()),
                            Cell::Num(d.output_tokens.to_string()),
                            Cell::Num(d.failed.to_string()),
                        ]
                    })
                    .collect();
                html_table(
                    out,
                    &[
                        "Destination",
                        "Where",
                        "#Requests",
                        "#Sent",
                        "#Received",
                        "#Tokens in",
                        "#Tokens out",
                        "#Failed",
                    ],
                    rows,
                );
            }
        });

        // Destinations refused.
        let heading = Heading {
            id: "refused",
            title: "Destinations refused",
            count: m.refused_destinations,
            detail: count(m.refused_attempts, "attempt", "attempts"),
            empty: "Nothing was refused.",
        };
        html_section(&mut out, heading, self.refused.len(), |out| {
            let rows = self
                .refused
                .iter()
                .map(|r| {
                    vec![
                        Cell::Code(r.destination.clone()),
                        Cell::Text(r.reason.clone()),
                        Cell::Num(r.count.to_string()),
                        Cell::Num(if r.bytes == 0 { "—".into() } else { bytes(r.bytes) }),
                    ]
                })
                .collect();
            html_table(out, &["Destination", "Reason", "#Attempts", "#Bytes"], rows);
        });

        // Model requests and redactions, side by side.
        out.push_str("<div class=\"two\">");
        let heading = Heading {
            id: "models",
            title: "Model requests",
            count: m.model_requests,
            detail: format!("{} sent · {} received", bytes(m.model_bytes_sent), bytes(m.model_bytes_received)),
            empty: "No model requests.",
        };
        html_section(&mut out, heading, self.model_requests.len(), |out| {
            let rows = self
                .model_requests
                .iter()
                .map(|r| {
                    vec![
                        Cell::Code(r.route.clone()),
                        Cell::Code(r.model.clone()),
                        Cell::Num(r.requests.to_string()),
                        Cell::Num(bytes(r.bytes)),
                    ]
                })
                .collect();
            html_table(out, &["Route", "Model", "#Requests", "#Bytes"], rows);
        });
        let heading = Heading {
            id: "redactions",
            title: "Redactions by rule",
            count: m.redactions,
            detail: count(self.redactions.len() as u64, "rule", "rules"),
            empty: "Nothing was redacted.",
        };
        html_section(&mut out, heading, self.redactions.len(), |out| {
            let rows = self
                .redactions
                .iter()
                .map(|r| {
                    vec![
                        Cell::Code(r.rule.clone()),
                        Cell::Num(r.count.to_string()),
                        Cell::Num(r.placeholders.to_string()),
                    ]
                })
                .collect();
            html_table(out, &["Rule", "#Replaced", "#Distinct secrets"], rows);
        });
        out.push_str("</div>");

        // Tool calls.
        let heading = Heading {
            id: "tools",
            title: "Tool calls",
            count: m.tool_calls,
            detail: format!(
                "{} allowed · {} denied · {} asked",
                m.tool_calls_allowed, m.tool_calls_denied, m.tool_calls_asked
            ),
            empty: "No tool calls.",
        };
        html_section(&mut out, heading, self.tool_calls.len(), |out| {
            let rows = self
                .tool_calls
                .iter()
                .map(|t| {
                    let tone = match t.decision.as_str() {
                        "allow" => "good",
                        "deny" => "bad",
                        "ask" => "warn",
                        _ => "neutral",
                    };
                    vec![
                        Cell::Code(t.name.clone()),
                        pill(tone, &t.decision),
                        Cell::Code(t.decided_by.clone()),
                        Cell::Num(t.count.to_string()),
                    ]
                })
                .collect();
            html_table(out, &["Tool", "Decision", "Decided by", "#Calls"], rows);
        });

        // Commands.
        let heading = Heading {
            id: "commands",
            title: "Commands",
            count: m.commands,
            detail: format!("{} failed", m.commands_failed),
            empty: "No commands ran.",
        };
        html_section(&mut out, heading, self.commands.len(), |out| {
            let rows = self
                .commands
                .iter()
                .map(|c| {
                    let tone = if c.exit_status == 0 { "good" } else { "bad" };
                    vec![
                        self.entry_cell(c.index),
                        Cell::Code(shell_words(&c.argv)),
                        pill(tone, &format!("exit {}", c.exit_status)),
                        Cell::Num(duration(c.duration_ms)),
                        Cell::Num(bytes(c.output_bytes)),
                        Cell::Text(c.time.clone()),
                    ]
                })
                .collect();
            html_table(out, &["#Entry", "Command", "Status", "#Duration", "#Output", "Recorded (UTC)"], rows);
        });

        // File changes.
        let heading = Heading {
            id: "files",
            title: "File changes",
            count: m.file_changes,
            detail: format!("{} new · {} changed · {} deleted", m.files_created, m.files_modified, m.files_deleted),
            empty: "No files were written.",
        };
        html_section(&mut out, heading, self.file_changes.len(), |out| {
            let rows = self
                .file_changes
                .iter()
                .map(|f| {
                    let tone = match f.change.as_str() {
                        "created" => "good",
                        "deleted" => "bad",
                        _ => "warn",
                    };
                    let digest =
                        |d: &str| Cell::Html(format!("<code title=\"{}\">{}</code>", esc(d), esc(&short_digest(d))));
                    vec![
                        self.entry_cell(f.index),
                        Cell::Code(f.path.clone()),
                        pill(tone, &f.change),
                        digest(&f.before),
                        digest(&f.after),
                    ]
                })
                .collect();
            html_table(out, &["#Entry", "Path", "Change", "Before (SHA-256)", "After (SHA-256)"], rows);
        });

        // Policy violations.
        let heading = Heading {
            id: "violations",
            title: "Policy violations",
            count: m.policy_violations,
            detail: String::new(),
            empty: "No policy violations.",
        };
        html_section(&mut out, heading, self.policy_violations.len(), |out| {
            let rows = self
                .policy_violations
                .iter()
                .map(|v| {
                    vec![
                        self.entry_cell(v.index),
                        Cell::Code(v.rule.clone()),
                        Cell::Text(v.detail.clone()),
                        Cell::Text(v.time.clone()),
                    ]
                })
                .collect();
            html_table(out, &["#Entry", "Rule", "What was attempted", "Recorded (UTC)"], rows);
        });

        if !self.unreadable.is_empty() || self.pruned_payloads > 0 || self.external_events > 0 {
            let n = self.unreadable.len();
            out.push_str("<section class=\"card\" id=\"other\"><h2>Other entries</h2><p class=\"empty\">");
            out.push_str(&esc(&format!(
                "{} · {} (not counted above) · {} this airlock cannot read",
                count(self.external_events, "external record", "external records"),
                count(self.pruned_payloads, "pruned payload", "pruned payloads"),
                count(n as u64, "entry", "entries"),
            )));
            out.push_str("</p>");
            if n > 0 {
                let rows = self
                    .unreadable
                    .iter()
                    .map(|u| vec![self.entry_cell(u.index), Cell::Code(u.kind.clone()), Cell::Text(u.problem.clone())])
                    .collect();
                html_table(&mut out, &["#Entry", "Kind", "Problem"], rows);
            }
            out.push_str("</section>");
        }

        out.push_str(&format!(
            "</main><footer>Generated by {} at {} from <code>{}</code>. The audit log records digests and placeholders, \
             never secret values, and neither does this report.</footer></body></html>\n",
            esc(&self.generated_by),
            esc(&self.generated_at),
            esc(&self.log)
        ));
        out
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
        let text = assemble("s", &entries, verified(&entries)).text();
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
}
