//! Tool and command rules, and permission modes: the policy's half of the
//! decision on each tool call (airlock-core's `decide` is the other half).
//!
//! A rule names a tool (`read_file`) or a command prefix of whole words
//! (`git push`) and says allow, ask or deny. Tightness runs
//! allow → ask → deny, so a lower layer may move a rule only to the right.
//! A command prefix is bound by the longest prefix above it (or the default),
//! because the longest matching prefix decides: `git push --dry-run = "ask"`
//! under `git push = "deny"` would loosen it.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::{Source, Sourced};

/// What a rule says about a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Run it.
    Allow,
    /// Ask the person.
    Ask,
    /// Never run it.
    Deny,
}

impl Permission {
    /// Higher is tighter.
    pub(crate) fn tightness(self) -> u8 {
        match self {
            Permission::Allow => 0,
            Permission::Ask => 1,
            Permission::Deny => 2,
        }
    }

    /// As written in a policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Allow => "allow",
            Permission::Ask => "ask",
            Permission::Deny => "deny",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much the agent may do without asking; chosen per session among the
/// modes policy allows (`[agent] modes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reading is free; edits and commands ask. The default.
    Ask,
    /// Edits are free; commands ask.
    Edits,
    /// Read-only: edits and commands are refused.
    Plan,
    /// What policy allows or asks about runs without asking.
    Auto,
}

impl Mode {
    /// Every mode, in the order a front end cycles through them.
    pub const ALL: [Mode; 4] = [Mode::Ask, Mode::Edits, Mode::Plan, Mode::Auto];

    /// As written in a policy file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ask => "ask",
            Mode::Edits => "edits",
            Mode::Plan => "plan",
            Mode::Auto => "auto",
        }
    }

    /// Higher runs more without asking; a lower layer's `default_mode` may
    /// only go down.
    pub(crate) fn latitude(self) -> u8 {
        match self {
            Mode::Plan => 0,
            Mode::Ask => 1,
            Mode::Edits => 2,
            Mode::Auto => 3,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of `ask`, `edits`, `plan`, `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission mode \"{0}\"\nhint: the modes are ask, edits, plan and auto")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Mode, UnknownMode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// A 1-based line and column (in characters) inside a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a rule came from: the layer's source and, for a file, where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The layer.
    pub source: Source,
    /// The value's line and column in the layer's file; `None` for the
    /// built-in defaults.
    pub at: Option<Position>,
}

impl Origin {
    pub(crate) fn default_layer() -> Origin {
        Origin { source: Source::Default, at: None }
    }
}

impl fmt::Display for Origin {
    /// `managed policy /etc/airlock/policy.toml:4:1`, or `built-in default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{}:{at}", self.source),
            None => write!(f, "{}", self.source),
        }
    }
}

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `[tools]`: a tool name, matched exactly.
    Tool,
    /// `[commands]`: a command prefix, matched on whole words.
    Command,
}

impl RuleKind {
    /// The table's name, also the key in error messages.
    pub fn table(self) -> &'static str {
        match self {
            RuleKind::Tool => "tools",
            RuleKind::Command => "commands",
        }
    }
}

/// One effective rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// A tool name, or a command prefix with single spaces between its words.
    pub pattern: String,
    /// What it says.
    pub permission: Permission,
    /// Where it came from.
    pub origin: Origin,
}

/// A default with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRule {
    /// What it says.
    pub permission: Permission,
    /// Where it came from.
    pub origin: Origin,
}

/// One line of [`ToolRules::in_force`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLine<'a> {
    /// Tool or command.
    pub kind: RuleKind,
    /// The tool name or command prefix; `None` for the default.
    pub pattern: Option<&'a str>,
    /// What it says.
    pub permission: Permission,
    /// Where it came from.
    pub origin: &'a Origin,
}

/// The effective tool and command rules, each with its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRules {
    /// Per tool name.
    pub tools: Vec<Rule>,
    /// For tools without a rule.
    pub default_tool: DefaultRule,
    /// Per command prefix; the longest matching prefix wins.
    pub commands: Vec<Rule>,
    /// For commands no prefix matches.
    pub default_command: DefaultRule,
}

const DEFAULT_TOOLS: &[(&str, Permission)] = &[
    ("read_file", Permission::Allow),
    ("list_dir", Permission::Allow),
    ("glob", Permission::Allow),
    ("grep", Permission::Allow),
    ("todo", Permission::Allow),
    ("edit_file", Permission::Ask),
    ("write_file", Permission::Ask),
    ("run_command", Permission::Ask),
];

const DEFAULT_COMMANDS: &[(&str, Permission)] = &[
    ("git push", Permission::Deny),
    ("curl", Permission::Deny),
    ("wget", Permission::Deny),
    ("ssh", Permission::Deny),
    ("scp", Permission::Deny),
];

impl ToolRules {
    /// The built-in layer: reading is allowed, edits and commands ask,
    /// `git push` and network tools are denied, unknown tools are denied.
    pub fn defaults() -> ToolRules {
        let rules = |list: &[(&str, Permission)]| {
            list.iter()
                .map(|(p, permission)| Rule {
                    pattern: (*p).to_owned(),
                    permission: *permission,
                    origin: Origin::default_layer(),
                })
                .collect()
        };
        ToolRules {
            tools: rules(DEFAULT_TOOLS),
            default_tool: DefaultRule { permission: Permission::Deny, origin: Origin::default_layer() },
            commands: rules(DEFAULT_COMMANDS),
            default_command: DefaultRule { permission: Permission::Ask, origin: Origin::default_layer() },
        }
    }

    /// The rules of one kind.
    pub fn of(&self, kind: RuleKind) -> &[Rule] {
        match kind {
            RuleKind::Tool => &self.tools,
            RuleKind::Command => &self.commands,
        }
    }

    pub(crate) fn of_mut(&mut self, kind: RuleKind) -> (&mut Vec<Rule>, &mut DefaultRule) {
        match kind {
            RuleKind::Tool => (&mut self.tools, &mut self.default_tool),
            RuleKind::Command => (&mut self.commands, &mut self.default_command),
        }
    }

    /// Every rule with its origin: the tool default, the tool rules, the
    /// command default, the command rules.
    pub fn in_force(&self) -> Vec<RuleLine<'_>> {
        let mut lines = Vec::new();
        for kind in [RuleKind::Tool, RuleKind::Command] {
            let default = self.default_of(kind);
            lines.push(RuleLine { kind, pattern: None, permission: default.permission, origin: &default.origin });
            for rule in self.of(kind) {
                lines.push(RuleLine {
                    kind,
                    pattern: Some(&rule.pattern),
                    permission: rule.permission,
                    origin: &rule.origin,
                });
            }
        }
        lines
    }

    /// The default of one kind.
    pub fn default_of(&self, kind: RuleKind) -> &DefaultRule {
        match kind {
            RuleKind::Tool => &self.default_tool,
            RuleKind::Command => &self.default_command,
        }
    }
}

/// The effective `[agent]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPolicy {
    /// The mode a session starts in; always one of [`AgentPolicy::modes`].
    pub default_mode: Sourced<Mode>,
    /// The modes a person may choose, in [`Mode::ALL`] order; never empty.
    pub modes: Sourced<Vec<Mode>>,
}

impl AgentPolicy {
    pub(crate) fn defaults() -> AgentPolicy {
        AgentPolicy {
            default_mode: Sourced::new(Mode::Ask, Source::Default),
            modes: Sourced::new(Mode::ALL.to_vec(), Source::Default),
        }
    }

    /// Whether a person may choose `mode`.
    pub fn allows(&self, mode: Mode) -> bool {
        self.modes.value.contains(&mode)
    }
}

/// A tool name as a key: letters, digits, `_`, `-`, `.`.
pub(crate) fn parse_tool_name(raw: &str) -> Result<String, crate::error::Problem> {
    let ok = !raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(crate::error::Problem::invalid(
            format!("\"{raw}\" is not a tool name"),
            "tool names are letters, digits and '_', such as \"run_command\"; command prefixes go in [commands]",
        ))
    }
}

/// A command prefix as a key: whole words, single spaces between them.
pub(crate) fn parse_command_prefix(raw: &str) -> Result<String, crate::error::Problem> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if words.is_empty() {
        return Err(crate::error::Problem::invalid(
            "the command prefix is empty",
            "write the words a command starts with, such as \"cargo test\"",
        ));
    }
    if raw.chars().any(|c| c.is_control() && c != '\t') {
        return Err(crate::error::Problem::invalid(
            format!("\"{}\" contains a control character", raw.escape_debug()),
            "write the words a command starts with, such as \"cargo test\"",
        ));
    }
    // Commands are decided on the program's name, whatever folder it is run
    // from (`/usr/bin/curl` is `curl`), and so are prefixes; comparing
    // prefixes as written would let `"/usr/bin/git push --dry-run"` escape
    // the ceiling of `"git push"` while still winning over it.
    let mut words = words;
    let program = words[0].rsplit('/').next().unwrap_or_default();
    if program.is_empty() {
        return Err(crate::error::Problem::invalid(
            format!("\"{}\" names a folder, not a program", words[0]),
            "write the program's name, such as \"cargo\"; folders are ignored when commands are decided",
        ));
    }
    words[0] = program;
    Ok(words.join(" "))
}

/// Whether the command prefix `prefix` starts `words`, on whole words.
pub(crate) fn prefix_covers(prefix: &str, command: &str) -> bool {
    let p: Vec<&str> = prefix.split(' ').collect();
    let c: Vec<&str> = command.split(' ').collect();
    c.len() >= p.len() && p.iter().zip(&c).all(|(a, b)| a == b)
}

/// The rule a new rule for `pattern` may not loosen: for a tool, the rule of
/// that name; for a command, the longest prefix covering it; else the default.
pub(crate) fn binding<'a>(
    kind: RuleKind,
    pattern: &str,
    rules: &'a [Rule],
    default: Option<&'a DefaultRule>,
) -> Option<(String, Permission, &'a Origin)> {
    let named = match kind {
        RuleKind::Tool => rules.iter().find(|r| r.pattern == pattern),
        RuleKind::Command => rules
            .iter()
            .filter(|r| prefix_covers(&r.pattern, pattern))
            .max_by_key(|r| (r.pattern.split(' ').count(), r.permission.tightness())),
    };
    match named {
        Some(rule) => Some((format!("{} \"{}\"", kind.table(), rule.pattern), rule.permission, &rule.origin)),
        None => default.map(|d| (format!("{}.default", kind.table()), d.permission, &d.origin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_display_as_written() {
        for mode in Mode::ALL {
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
        }
        assert_eq!("plan".parse::<Mode>(), Ok(Mode::Plan));
        let err = "Auto".parse::<Mode>().unwrap_err();
        assert!(err.to_string().starts_with("unknown permission mode \"Auto\"\nhint: "), "{err}");
    }

    #[test]
    fn command_prefixes_are_normalized_whole_words() {
        assert_eq!(parse_command_prefix("  cargo   test ").unwrap(), "cargo test");
        assert_eq!(parse_command_prefix("/usr/bin/git push --dry-run").unwrap(), "git push --dry-run");
        assert_eq!(parse_command_prefix("./x a/b").unwrap(), "x a/b");
        assert!(parse_command_prefix("/usr/bin/ x").is_err());
        assert!(parse_command_prefix(" ").is_err());
        assert!(parse_command_prefix("a\u{1b}[31m").is_err());
        assert!(prefix_covers("cargo test", "cargo test -p x"));
        assert!(prefix_covers("cargo", "cargo test"));
        assert!(!prefix_covers("cargo test", "cargo testy"));
        assert!(!prefix_covers("cargo test", "cargo"));
        assert!(parse_tool_name("run_command").is_ok());
        assert!(parse_tool_name("git push").is_err());
    }

    #[test]
    fn a_command_is_bound_by_its_longest_covering_prefix() {
        let rules = ToolRules::defaults();
        let (what, p, _) =
            binding(RuleKind::Command, "git push --dry-run", &rules.commands, Some(&rules.default_command)).unwrap();
        assert_eq!((what.as_str(), p), ("commands \"git push\"", Permission::Deny));
        let (what, p, _) = binding(RuleKind::Command, "git", &rules.commands, Some(&rules.default_command)).unwrap();
        assert_eq!((what.as_str(), p), ("commands.default", Permission::Ask));
        assert_eq!(binding(RuleKind::Command, "git", &rules.commands, None), None);
        let (what, p, _) = binding(RuleKind::Tool, "edit_file", &rules.tools, None).unwrap();
        assert_eq!((what.as_str(), p), ("tools \"edit_file\"", Permission::Ask));
    }
}
