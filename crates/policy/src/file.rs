//! One policy file: its TOML schema, and its values validated and placed
//! (line and column) but not yet layered.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::Problem;
use crate::mcp::{McpLayer, RawMcp};
use crate::rules::{Mode, Permission, RuleKind, parse_command_prefix, parse_tool_name};
use crate::values::{parse_domain, parse_protected, resolve_root};
use crate::{Context, Layer, LimitKey, NetworkMode, PolicyError, ProtectedPath, Source};

/// The schema. Every key is optional; unknown keys are errors so that a typo
/// cannot silently leave a setting at a wider value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    tools: RawRules,
    #[serde(default)]
    commands: RawRules,
    #[serde(default)]
    agent: RawAgent,
    /// Rules for one workspace, keyed by its absolute path (user config only).
    #[serde(default)]
    workspace: BTreeMap<Spanned<String>, RawWorkspace>,
    /// MCP servers.
    #[serde(default)]
    mcp: RawMcp,
}

/// `name = "allow" | "ask" | "deny"`, and `default`.
type RawRules = BTreeMap<Spanned<String>, Spanned<Permission>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    default_mode: Option<Spanned<Mode>>,
    modes: Option<Spanned<Vec<Mode>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    #[serde(default)]
    tools: RawRules,
    #[serde(default)]
    commands: RawRules,
}

type RawList = Option<Vec<Spanned<String>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    writable_roots: RawList,
    readable_roots: RawList,
    toolchain_roots: RawList,
    deny_read: RawList,
    protected: RawList,
    allow_unsafe_no_sandbox: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    mode: Option<Spanned<NetworkMode>>,
    allow_domains: RawList,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_secs: Option<Spanned<u64>>,
    memory_mb: Option<Spanned<u64>>,
    processes: Option<Spanned<u64>>,
    file_size_mb: Option<Spanned<u64>>,
    cpu_secs: Option<Spanned<u64>>,
    output_bytes: Option<Spanned<u64>>,
    tmp_size_mb: Option<Spanned<u64>>,
}

/// A 1-based line and column (in characters) inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Pos {
    pub(crate) fn of(text: &str, offset: usize) -> Pos {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
    }
}

/// A value from a file with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Entry<T> {
    pub(crate) value: T,
    pub(crate) at: Pos,
}

/// One policy file, parsed and validated on its own.
#[derive(Debug)]
pub(crate) struct LayerFile {
    pub(crate) path: PathBuf,
    pub(crate) source: Source,
    pub(crate) writable_roots: Option<Vec<Entry<PathBuf>>>,
    pub(crate) readable_roots: Option<Vec<Entry<PathBuf>>>,
    pub(crate) toolchain_roots: Option<Vec<Entry<PathBuf>>>,
    pub(crate) deny_read: Vec<Entry<PathBuf>>,
    pub(crate) protected: Vec<Entry<ProtectedPath>>,
    pub(crate) allow_unsafe_no_sandbox: Option<Entry<bool>>,
    pub(crate) network_mode: Option<Entry<NetworkMode>>,
    pub(crate) allow_domains: Option<Vec<Entry<String>>>,
    pub(crate) limits: Vec<(LimitKey, Entry<u64>)>,
    pub(crate) rules: RuleSet,
    pub(crate) default_mode: Option<Entry<Mode>>,
    pub(crate) modes: Option<Entry<Vec<Mode>>>,
    pub(crate) workspaces: Vec<WorkspaceRules>,
    pub(crate) mcp: McpLayer,
}

/// The `[tools]` and `[commands]` of a file, or of one of its workspace sections.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    /// Tool rules then command rules, each in file order; positions are the keys'.
    pub(crate) rules: Vec<(RuleKind, Entry<(String, Permission)>)>,
    pub(crate) default_tool: Option<Entry<Permission>>,
    pub(crate) default_command: Option<Entry<Permission>>,
}

impl RuleSet {
    pub(crate) fn default_of(&self, kind: RuleKind) -> Option<&Entry<Permission>> {
        match kind {
            RuleKind::Tool => self.default_tool.as_ref(),
            RuleKind::Command => self.default_command.as_ref(),
        }
    }
}

/// `[workspace."/abs/path".tools]` and `.commands`: rules that apply only
/// when that folder is the workspace.
#[derive(Debug)]
pub(crate) struct WorkspaceRules {
    pub(crate) path: PathBuf,
    pub(crate) rules: RuleSet,
}

impl LayerFile {
    /// Reads `path`; a missing file is an absent layer (`None`).
    pub(crate) fn read(path: &Path, layer: Layer, cx: &Context) -> Result<Option<Self>, PolicyError> {
        match fs_err::read_to_string(path) {
            Ok(text) => Self::parse(&text, path, layer, cx).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PolicyError::Read { path: path.to_owned(), source }),
        }
    }

    /// Parses and validates `text`, the contents of `path`.
    pub(crate) fn parse(text: &str, path: &Path, layer: Layer, cx: &Context) -> Result<Self, PolicyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        let file = FileText { path, text };
        // Only the project config lives in the workspace, so only it may use
        // paths relative to it.
        let base = matches!(layer, Layer::Project).then_some(cx.workspace.as_path());
        let roots = |key: &'static str, list: RawList| {
            file.entries(key, list, |raw| resolve_root(Path::new(raw), &cx.home, base))
        };
        let sandbox = raw.sandbox;
        let limits = raw.limits;
        let mut limit_entries = Vec::new();
        for (key, value) in [
            (LimitKey::TimeoutSecs, limits.timeout_secs),
            (LimitKey::MemoryMb, limits.memory_mb),
            (LimitKey::Processes, limits.processes),
            (LimitKey::FileSizeMb, limits.file_size_mb),
            (LimitKey::CpuSecs, limits.cpu_secs),
            (LimitKey::OutputBytes, limits.output_bytes),
            (LimitKey::TmpSizeMb, limits.tmp_size_mb),
        ] {
            if let Some(value) = value {
                let entry = file.entry(key.name(), value, |n| check_limit(*n))?;
                limit_entries.push((key, entry));
            }
        }
        let rules = file.rule_set(raw.tools, raw.commands, "")?;
        let mut workspaces = Vec::new();
        for (key, section) in raw.workspace {
            let at = file.pos(key.span());
            // A repository cannot choose rules for itself, and an
            // administrator's rules apply everywhere.
            if layer != Layer::User {
                return Err(located(
                    path,
                    at,
                    "workspace",
                    Problem::invalid(
                        "rules for one workspace belong in the user config",
                        "move this section to your user config ($XDG_CONFIG_HOME/airlock/config.toml)",
                    ),
                ));
            }
            let folder = resolve_root(Path::new(key.get_ref()), &cx.home, None)
                .map_err(|problem| located(path, at, "workspace", problem))?;
            let rules = file.rule_set(section.tools, section.commands, "workspace.")?;
            workspaces.push(WorkspaceRules { path: folder, rules });
        }
        let modes = raw
            .agent
            .modes
            .map(|v| {
                file.entry("agent.modes", v, |list| {
                    let modes: Vec<Mode> = Mode::ALL.into_iter().filter(|m| list.contains(m)).collect();
                    if modes.is_empty() {
                        return Err(Problem::invalid(
                            "no mode is allowed",
                            "allow at least one mode, such as [\"plan\"] for read-only sessions",
                        ));
                    }
                    Ok(modes)
                })
            })
            .transpose()?;
        let mcp = McpLayer::parse(raw.mcp, &file, cx)?;
        Ok(LayerFile {
            mcp,
            rules,
            default_mode: raw
                .agent
                .default_mode
                .map(|v| file.entry("agent.default_mode", v, |m| Ok(*m)))
                .transpose()?,
            modes,
            workspaces,
            path: path.to_owned(),
            source: layer.source(path),
            writable_roots: roots("sandbox.writable_roots", sandbox.writable_roots)?,
            readable_roots: roots("sandbox.readable_roots", sandbox.readable_roots)?,
            toolchain_roots: roots("sandbox.toolchain_roots", sandbox.toolchain_roots)?,
            deny_read: roots("sandbox.deny_read", sandbox.deny_read)?.unwrap_or_default(),
            protected: file.entries("sandbox.protected", sandbox.protected, parse_protected)?.unwrap_or_default(),
            allow_unsafe_no_sandbox: sandbox
                .allow_unsafe_no_sandbox
                .map(|v| file.entry("sandbox.allow_unsafe_no_sandbox", v, |b| Ok(*b)))
                .transpose()?,
            network_mode: raw.network.mode.map(|v| file.entry("network.mode", v, |m| Ok(*m))).transpose()?,
            allow_domains: file.entries("network.allow_domains", raw.network.allow_domains, parse_domain)?,
            limits: limit_entries,
        })
    }

    /// The error for a value of this file that exceeds a ceiling or is invalid.
    pub(crate) fn error(&self, at: Pos, key: &'static str, problem: Problem) -> PolicyError {
        located(&self.path, at, key, problem)
    }
}

/// Limits are counts and sizes: zero would make every command fail, which is
/// far more likely a mistake than a wish.
pub(crate) fn check_limit(n: u64) -> Result<u64, Problem> {
    if n == 0 {
        return Err(Problem::invalid(
            "0 is not a usable limit",
            "limits must be at least 1; to stop commands from running, do not grant the tool",
        ));
    }
    Ok(n)
}

fn located(path: &Path, at: Pos, key: &'static str, problem: Problem) -> PolicyError {
    match problem.ceiling {
        Some(ceiling) => PolicyError::Widening {
            path: path.to_owned(),
            line: at.line,
            column: at.column,
            key,
            message: problem.message,
            ceiling: Box::new(ceiling),
            hint: problem.hint,
        },
        None => PolicyError::Invalid {
            path: path.to_owned(),
            line: at.line,
            column: at.column,
            key,
            message: problem.message,
            hint: problem.hint,
        },
    }
}

pub(crate) struct FileText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl FileText<'_> {
    pub(crate) fn pos(&self, span: Range<usize>) -> Pos {
        Pos::of(self.text, span.start)
    }

    pub(crate) fn error(&self, at: Pos, key: &'static str, problem: Problem) -> PolicyError {
        located(self.path, at, key, problem)
    }

    pub(crate) fn entry<R, T>(
        &self,
        key: &'static str,
        raw: Spanned<R>,
        parse: impl Fn(&R) -> Result<T, Problem>,
    ) -> Result<Entry<T>, PolicyError> {
        let at = self.pos(raw.span());
        match parse(raw.get_ref()) {
            Ok(value) => Ok(Entry { value, at }),
            Err(problem) => Err(located(self.path, at, key, problem)),
        }
    }

    /// `[tools]` and `[commands]`; `prefix` is `workspace.` inside a workspace section.
    fn rule_set(&self, tools: RawRules, commands: RawRules, prefix: &str) -> Result<RuleSet, PolicyError> {
        let mut set = RuleSet::default();
        for (kind, table) in [(RuleKind::Tool, tools), (RuleKind::Command, commands)] {
            let mut entries: Vec<(RuleKind, Entry<(String, Permission)>)> = Vec::new();
            // In file order, so that a repeated rule is reported where it repeats.
            let mut table: Vec<_> = table.into_iter().collect();
            table.sort_by_key(|(key, _)| key.span().start);
            for (key, value) in table {
                let at = self.pos(key.span());
                let permission = *value.get_ref();
                if key.get_ref() == "default" {
                    let entry = Some(Entry { value: permission, at });
                    match kind {
                        RuleKind::Tool => set.default_tool = entry,
                        RuleKind::Command => set.default_command = entry,
                    }
                    continue;
                }
                let parsed = match kind {
                    RuleKind::Tool => parse_tool_name(key.get_ref()),
                    RuleKind::Command => parse_command_prefix(key.get_ref()),
                };
                let name = parsed.map_err(|problem| located(self.path, at, rule_key(kind, prefix), problem))?;
                if let Some((_, earlier)) = entries.iter().find(|(_, e)| e.value.0 == name) {
                    return Err(located(
                        self.path,
                        at,
                        rule_key(kind, prefix),
                        Problem::invalid(
                            format!("\"{name}\" is already set at line {}", earlier.at.line),
                            "keep one rule per prefix; prefixes are compared word by word",
                        ),
                    ));
                }
                entries.push((kind, Entry { value: (name, permission), at }));
            }
            set.rules.extend(entries);
        }
        Ok(set)
    }

    fn entries<T>(
        &self,
        key: &'static str,
        list: RawList,
        parse: impl Fn(&str) -> Result<T, Problem>,
    ) -> Result<Option<Vec<Entry<T>>>, PolicyError> {
        list.map(|list| list.into_iter().map(|raw| self.entry(key, raw, |s: &String| parse(s))).collect()).transpose()
    }
}

fn rule_key(kind: RuleKind, prefix: &str) -> &'static str {
    match (kind, prefix.is_empty()) {
        (RuleKind::Tool, true) => "tools",
        (RuleKind::Command, true) => "commands",
        (RuleKind::Tool, false) => "workspace.tools",
        (RuleKind::Command, false) => "workspace.commands",
    }
}

fn parse_error(path: &Path, text: &str, error: &toml::de::Error) -> PolicyError {
    let at = Pos::of(text, error.span().map_or(0, |span| span.start));
    let message = error.message().trim_end().to_owned();
    let hint = if message.starts_with("unknown field") {
        "check the spelling; unknown keys are errors so that a typo cannot leave a setting wider than meant"
    } else {
        "the file is TOML with the tables [sandbox], [network], [limits], [tools], [commands], [agent] and [mcp]; \
         see `airlock policy show` for every key"
    };
    PolicyError::Parse { path: path.to_owned(), line: at.line, column: at.column, message, hint: hint.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context {
        Context { home: PathBuf::from("/home/u"), workspace: PathBuf::from("/home/u/work") }
    }

    fn parse(text: &str, layer: Layer) -> Result<LayerFile, PolicyError> {
        LayerFile::parse(text, Path::new("/cfg/policy.toml"), layer, &cx())
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(Pos::of(text, 0), Pos { line: 1, column: 1 });
        assert_eq!(Pos::of(text, 3), Pos { line: 2, column: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(Pos::of(text, 8), Pos { line: 3, column: 1 });
        assert_eq!(Pos::of(text, 7), Pos { line: 2, column: 4 });
    }

    #[test]
    fn syntax_error_points_at_line_and_column() {
        let text = "[sandbox]\nwritable_roots = [\n  \"/a\",\n  oops\n]\n";
        let err = parse(text, Layer::Managed).unwrap_err();
        let PolicyError::Parse { line, column, .. } = &err else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!((*line, *column), (4, 3), "{err}");
        assert!(err.to_string().starts_with("/cfg/policy.toml:4:3: "), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = parse("[sandbox]\nwritable_root = []\n", Layer::User).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/cfg/policy.toml:2:1: unknown field `writable_root`"), "{text}");
        assert!(text.contains("\nhint: check the spelling"), "{text}");

        let err = parse("[sandbx]\n", Layer::User).unwrap_err();
        assert!(err.to_string().contains("unknown field `sandbx`"), "{err}");
    }

    #[test]
    fn wrong_types_are_parse_errors() {
        let err = parse("[limits]\ntimeout_secs = -1\n", Layer::User).unwrap_err();
        assert!(err.to_string().starts_with("/cfg/policy.toml:2:16: "), "{err}");
        let err = parse("[network]\nmode = \"open\"\n", Layer::User).unwrap_err();
        assert!(err.to_string().contains("unknown variant `open`"), "{err}");
    }

    #[test]
    fn relative_roots_only_in_the_project_layer() {
        let text = "[sandbox]\nreadable_roots = [\"/usr\", \"docs\"]\n";
        for layer in [Layer::Managed, Layer::User] {
            let err = parse(text, layer).unwrap_err();
            assert_eq!(
                err.to_string(),
                "/cfg/policy.toml:2:27: sandbox.readable_roots: \"docs\" is a relative path\n\
                 hint: only the project config may use paths relative to the workspace; \
                 write an absolute path, or one starting with ~/"
            );
        }
        let project = parse(text, Layer::Project).unwrap();
        let roots: Vec<_> = project.readable_roots.unwrap().into_iter().map(|e| e.value).collect();
        assert_eq!(roots, [PathBuf::from("/usr"), PathBuf::from("/home/u/work/docs")]);
    }

    #[test]
    fn bad_values_are_invalid_with_position() {
        let err = parse("[network]\nallow_domains = [\"https://x.io\"]\n", Layer::User).unwrap_err();
        assert!(
            err.to_string().starts_with("/cfg/policy.toml:2:18: network.allow_domains: \"https://x.io\" is a URL"),
            "{err}"
        );
        let err = parse("[sandbox]\nprotected = [\"../x\"]\n", Layer::Project).unwrap_err();
        assert!(matches!(err, PolicyError::Invalid { key: "sandbox.protected", line: 2, .. }), "{err}");
        let err = parse("[limits]\nmemory_mb = 0\n", Layer::Managed).unwrap_err();
        assert!(matches!(err, PolicyError::Invalid { key: "limits.memory_mb", line: 2, column: 13, .. }), "{err}");
    }

    #[test]
    fn empty_file_sets_nothing() {
        let file = parse("", Layer::Project).unwrap();
        assert!(file.writable_roots.is_none() && file.allow_domains.is_none() && file.limits.is_empty());
    }
}
