//! Applying layers: what each may change, and the checks that keep a lower
//! layer from widening what a higher one allows.
//!
//! A [`Ceiling`] holds, for each key, the value a layer may not exceed, or
//! nothing when the layer may set the key freely. Managed policy faces no
//! ceiling; the user config and the command line face the keys managed
//! policy set; the project config faces every effective value.

use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::file::{Entry, LayerFile, RuleSet, check_limit};
use crate::rules::{DefaultRule, Mode, Origin, Permission, Position, Rule, RuleKind, ToolRules, binding};
use crate::values::{domain_allows, normalize, resolve_root};
use crate::{LimitKey, NetworkMode, Policy, PolicyError, Source, Sourced};

const WRITABLE_ROOTS: &str = "sandbox.writable_roots";
const READABLE_ROOTS: &str = "sandbox.readable_roots";
const TOOLCHAIN_ROOTS: &str = "sandbox.toolchain_roots";
const ALLOW_UNSAFE: &str = "sandbox.allow_unsafe_no_sandbox";
const NETWORK_MODE: &str = "network.mode";
const ALLOW_DOMAINS: &str = "network.allow_domains";
const MODES: &str = "agent.modes";
const DEFAULT_MODE: &str = "agent.default_mode";

/// Which source last replaced each list that a layer replaces as a whole.
/// Needed because an empty list has no entries to carry a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListSources {
    pub(crate) writable_roots: Source,
    pub(crate) readable_roots: Source,
    pub(crate) toolchain_roots: Source,
    pub(crate) allow_domains: Source,
}

impl Default for ListSources {
    fn default() -> Self {
        ListSources {
            writable_roots: Source::Default,
            readable_roots: Source::Default,
            toolchain_roots: Source::Default,
            allow_domains: Source::Default,
        }
    }
}

/// Per key, the value a layer may only tighten; `None` means free.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ceiling {
    writable_roots: Option<Sourced<Vec<PathBuf>>>,
    readable_roots: Option<Sourced<Vec<PathBuf>>>,
    toolchain_roots: Option<Sourced<Vec<PathBuf>>>,
    allow_domains: Option<Sourced<Vec<String>>>,
    network_mode: Option<Sourced<NetworkMode>>,
    allow_unsafe_no_sandbox: Option<Sourced<bool>>,
    limits: [Option<Sourced<u64>>; 7],
    /// Tool and command rules that bind; a rule or default missing here is free.
    rules: RuleCeiling,
    modes: Option<Sourced<Vec<Mode>>>,
    default_mode: Option<Sourced<Mode>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleCeiling {
    tools: Vec<Rule>,
    commands: Vec<Rule>,
    default_tool: Option<DefaultRule>,
    default_command: Option<DefaultRule>,
}

impl RuleCeiling {
    fn of(&self, kind: RuleKind) -> (&[Rule], Option<&DefaultRule>) {
        match kind {
            RuleKind::Tool => (&self.tools, self.default_tool.as_ref()),
            RuleKind::Command => (&self.commands, self.default_command.as_ref()),
        }
    }
}

impl Ceiling {
    /// Every effective value of `policy` is a ceiling.
    fn everything(policy: &Policy) -> Ceiling {
        let list = |entries: &[Sourced<PathBuf>], source: &Source| {
            Some(Sourced::new(entries.iter().map(|e| e.value.clone()).collect(), source.clone()))
        };
        let sandbox = &policy.sandbox;
        let sources = &policy.list_sources;
        Ceiling {
            writable_roots: list(&sandbox.writable_roots, &sources.writable_roots),
            readable_roots: list(&sandbox.readable_roots, &sources.readable_roots),
            toolchain_roots: list(&sandbox.toolchain_roots, &sources.toolchain_roots),
            allow_domains: Some(Sourced::new(
                policy.network.allow_domains.iter().map(|d| d.value.clone()).collect(),
                sources.allow_domains.clone(),
            )),
            network_mode: Some(policy.network.mode.clone()),
            allow_unsafe_no_sandbox: Some(sandbox.allow_unsafe_no_sandbox.clone()),
            limits: LimitKey::ALL.map(|key| Some(policy.limits.get(key).clone())),
            rules: RuleCeiling {
                tools: policy.rules.tools.clone(),
                commands: policy.rules.commands.clone(),
                default_tool: Some(policy.rules.default_tool.clone()),
                default_command: Some(policy.rules.default_command.clone()),
            },
            modes: Some(policy.agent.modes.clone()),
            default_mode: Some(policy.agent.default_mode.clone()),
        }
    }

    /// The effective values of `policy` for the keys `layer` set.
    fn set_by(policy: &Policy, layer: &LayerFile) -> Ceiling {
        let all = Ceiling::everything(policy);
        Ceiling {
            writable_roots: all.writable_roots.filter(|_| layer.writable_roots.is_some()),
            readable_roots: all.readable_roots.filter(|_| layer.readable_roots.is_some()),
            toolchain_roots: all.toolchain_roots.filter(|_| layer.toolchain_roots.is_some()),
            allow_domains: all.allow_domains.filter(|_| layer.allow_domains.is_some()),
            network_mode: all.network_mode.filter(|_| layer.network_mode.is_some()),
            allow_unsafe_no_sandbox: all.allow_unsafe_no_sandbox.filter(|_| layer.allow_unsafe_no_sandbox.is_some()),
            limits: LimitKey::ALL.map(|key| {
                let is_set = layer.limits.iter().any(|(k, _)| *k == key);
                all.limits[key as usize].clone().filter(|_| is_set)
            }),
            // Managed policy was applied over the defaults alone, so what
            // carries its source is what it set.
            rules: {
                let by_layer = |rules: &ToolRules, kind| -> Vec<Rule> {
                    rules.of(kind).iter().filter(|r| r.origin.source == layer.source).cloned().collect()
                };
                let default = |d: &DefaultRule| Some(d.clone()).filter(|d| d.origin.source == layer.source);
                RuleCeiling {
                    tools: by_layer(&policy.rules, RuleKind::Tool),
                    commands: by_layer(&policy.rules, RuleKind::Command),
                    default_tool: default(&policy.rules.default_tool),
                    default_command: default(&policy.rules.default_command),
                }
            },
            modes: all.modes.filter(|_| layer.modes.is_some()),
            default_mode: all.default_mode.filter(|_| layer.default_mode.is_some()),
        }
    }
}

/// What a layer is checked against.
struct Rules<'a> {
    ceiling: &'a Ceiling,
    /// `deny_read` entries of higher layers and defaults: no root of this
    /// layer may be equal to or inside one.
    denied: &'a [Sourced<PathBuf>],
    /// Always readable and writable, so a root inside it widens nothing.
    workspace: &'a Path,
}

/// Managed policy is the administrator: it may set anything. The keys it
/// sets become ceilings for the user config and the command line.
pub(crate) fn apply_managed(policy: &mut Policy, file: &LayerFile) -> Result<(), PolicyError> {
    let workspace = policy.context.workspace.clone();
    let rules = Rules { ceiling: &Ceiling::default(), denied: &[], workspace: &workspace };
    apply(policy, file, &rules)?;
    policy.managed_ceiling = Ceiling::set_by(policy, file);
    Ok(())
}

/// The user config may change what managed policy left alone, and only
/// tighten what it set.
pub(crate) fn apply_user(policy: &mut Policy, file: &LayerFile) -> Result<(), PolicyError> {
    let ceiling = policy.managed_ceiling.clone();
    let denied = policy.sandbox.deny_read.clone();
    let workspace = policy.context.workspace.clone();
    let rules = Rules { ceiling: &ceiling, denied: &denied, workspace: &workspace };
    apply(policy, file, &rules)
}

/// The project config comes with a cloned repository: it may only tighten
/// the effective values, wherever they came from.
pub(crate) fn apply_project(policy: &mut Policy, file: &LayerFile) -> Result<(), PolicyError> {
    let ceiling = Ceiling::everything(policy);
    let denied = policy.sandbox.deny_read.clone();
    let workspace = policy.context.workspace.clone();
    let rules = Rules { ceiling: &ceiling, denied: &denied, workspace: &workspace };
    apply(policy, file, &rules)
}

fn apply(policy: &mut Policy, file: &LayerFile, rules: &Rules<'_>) -> Result<(), PolicyError> {
    let source = &file.source;
    let sandbox = &mut policy.sandbox;
    let sources = &mut policy.list_sources;
    let ceiling = rules.ceiling;
    let roots = [
        (
            WRITABLE_ROOTS,
            &file.writable_roots,
            &ceiling.writable_roots,
            &mut sandbox.writable_roots,
            &mut sources.writable_roots,
        ),
        (
            READABLE_ROOTS,
            &file.readable_roots,
            &ceiling.readable_roots,
            &mut sandbox.readable_roots,
            &mut sources.readable_roots,
        ),
        (
            TOOLCHAIN_ROOTS,
            &file.toolchain_roots,
            &ceiling.toolchain_roots,
            &mut sandbox.toolchain_roots,
            &mut sources.toolchain_roots,
        ),
    ];
    for (key, new, ceiling, list, list_source) in roots {
        let Some(new) = new else { continue };
        for entry in new {
            check_root(key, &entry.value, ceiling.as_ref(), rules).map_err(|p| file.error(entry.at, key, p))?;
        }
        *list = sourced(new, source);
        *list_source = source.clone();
    }

    // Union lists: a layer can add entries, and there is no way to remove one.
    for entry in &file.deny_read {
        if !sandbox.deny_read.iter().any(|d| d.value == entry.value) {
            sandbox.deny_read.push(Sourced::new(entry.value.clone(), source.clone()));
        }
    }
    for entry in &file.protected {
        if !sandbox.protected.iter().any(|p| p.value == entry.value) {
            sandbox.protected.push(Sourced::new(entry.value.clone(), source.clone()));
        }
    }

    if let Some(entry) = &file.allow_unsafe_no_sandbox {
        check_bool(ALLOW_UNSAFE, entry.value, ceiling.allow_unsafe_no_sandbox.as_ref())
            .map_err(|p| file.error(entry.at, ALLOW_UNSAFE, p))?;
        sandbox.allow_unsafe_no_sandbox = Sourced::new(entry.value, source.clone());
    }

    if let Some(entry) = &file.network_mode {
        check_mode(entry.value, ceiling.network_mode.as_ref()).map_err(|p| file.error(entry.at, NETWORK_MODE, p))?;
        policy.network.mode = Sourced::new(entry.value, source.clone());
    }
    if let Some(new) = &file.allow_domains {
        for entry in new {
            check_domain(&entry.value, ceiling.allow_domains.as_ref())
                .map_err(|p| file.error(entry.at, ALLOW_DOMAINS, p))?;
        }
        policy.network.allow_domains = sourced(new, source);
        sources.allow_domains = source.clone();
    }

    for (key, entry) in &file.limits {
        check_limit_lowered(*key, entry.value, ceiling.limits[*key as usize].as_ref())
            .map_err(|p| file.error(entry.at, key.name(), p))?;
        *policy.limits.get_mut(*key) = Sourced::new(entry.value, source.clone());
    }

    apply_rules(&mut policy.rules, &file.rules, file, &ceiling.rules)?;
    // Rules for one workspace are the layer's own rules, only here. The
    // writer records the canonical path; the workspace may be given through
    // a link.
    let workspace = normalize(&policy.context.workspace);
    let canonical = if file.workspaces.is_empty() { None } else { std::fs::canonicalize(&workspace).ok() };
    let here = |path: &Path| {
        let path = normalize(path);
        path == workspace || canonical.as_ref().is_some_and(|c| *c == path)
    };
    for section in file.workspaces.iter().filter(|w| here(&w.path)) {
        apply_rules(&mut policy.rules, &section.rules, file, &ceiling.rules)?;
    }
    crate::mcp::apply(&mut policy.mcp, &file.mcp, file, &workspace)?;
    apply_agent(policy, file, ceiling)
}

/// `[tools]` and `[commands]` (or a workspace's): each value may be at most
/// as loose as the rule that binds it in `ceiling`.
fn apply_rules(
    rules: &mut ToolRules,
    set: &RuleSet,
    file: &LayerFile,
    ceiling: &RuleCeiling,
) -> Result<(), PolicyError> {
    let origin = |at: crate::file::Pos| Origin {
        source: file.source.clone(),
        at: Some(Position { line: at.line, column: at.column }),
    };
    // A command rule decides `run_command` (an allow frees what the tool's
    // rule would ask about), so a layer above that set the tool's rule
    // bounds every command rule below it too.
    let run_command = binding(RuleKind::Tool, "run_command", &ceiling.tools, None);
    for kind in [RuleKind::Tool, RuleKind::Command] {
        let (_, bound_default) = ceiling.of(kind);
        if let Some(entry) = set.default_of(kind) {
            if let Some(bound) = bound_default {
                let what = format!("{}.default", kind.table());
                check_rule("default", entry.value, (what, bound.permission, &bound.origin))
                    .map_err(|p| file.error(entry.at, kind.table(), p))?;
            }
            if let (RuleKind::Command, Some(bound)) = (kind, run_command.clone()) {
                check_rule("default", entry.value, bound).map_err(|p| file.error(entry.at, kind.table(), p))?;
            }
            *rules.of_mut(kind).1 = DefaultRule { permission: entry.value, origin: origin(entry.at) };
        }
    }
    for (kind, entry) in &set.rules {
        let (pattern, permission) = &entry.value;
        let (bound_rules, bound_default) = ceiling.of(*kind);
        if let Some(bound) = binding(*kind, pattern, bound_rules, bound_default) {
            check_rule(pattern, *permission, bound).map_err(|p| file.error(entry.at, kind.table(), p))?;
        }
        if let (RuleKind::Command, Some(bound)) = (kind, run_command.clone()) {
            check_rule(pattern, *permission, bound).map_err(|p| file.error(entry.at, kind.table(), p))?;
        }
        let rule = Rule { pattern: pattern.clone(), permission: *permission, origin: origin(entry.at) };
        let (list, _) = rules.of_mut(*kind);
        match list.iter_mut().find(|r| r.pattern == *pattern) {
            Some(existing) => *existing = rule,
            None => list.push(rule),
        }
    }
    Ok(())
}

fn check_rule(pattern: &str, permission: Permission, bound: (String, Permission, &Origin)) -> Result<(), Problem> {
    let (what, bound_permission, bound_origin) = bound;
    if permission.tightness() >= bound_permission.tightness() {
        return Ok(());
    }
    Err(Problem::widening(
        format!("\"{pattern}\" = \"{permission}\" is looser than \"{bound_permission}\" ({what}, from {bound_origin})"),
        format!(
            "this layer may only tighten rules (allow, then ask, then deny): use {}, or remove the line; {}",
            if bound_permission == Permission::Deny {
                "\"deny\"".to_owned()
            } else {
                format!("\"{bound_permission}\" or \"deny\"")
            },
            remedy(&bound_origin.source)
        ),
        &bound_origin.source,
    ))
}

/// `[agent]`: modes may only be removed, the default mode may only move
/// towards `plan`, and the default must remain an allowed mode.
fn apply_agent(policy: &mut Policy, file: &LayerFile, ceiling: &Ceiling) -> Result<(), PolicyError> {
    let source = &file.source;
    let agent = &mut policy.agent;
    if let Some(entry) = &file.modes {
        if let Some(bound) = &ceiling.modes
            && let Some(extra) = entry.value.iter().find(|m| !bound.value.contains(m))
        {
            let problem = Problem::widening(
                format!("allows \"{extra}\", which {} does not allow ({})", bound.source, list(&bound.value)),
                format!("this layer may only remove modes; {}", remedy(&bound.source)),
                &bound.source,
            );
            return Err(file.error(entry.at, MODES, problem));
        }
        agent.modes = Sourced::new(entry.value.clone(), source.clone());
    }
    if let Some(entry) = &file.default_mode {
        if let Some(bound) = &ceiling.default_mode
            && entry.value.latitude() > bound.value.latitude()
        {
            let problem = Problem::widening(
                format!(
                    "sets \"{}\", which runs more without asking than \"{}\" from {}",
                    entry.value, bound.value, bound.source
                ),
                format!(
                    "this layer may only choose a stricter default mode (auto, edits, ask, plan); \
                     choose one at the command line with --mode instead; {}",
                    remedy(&bound.source)
                ),
                &bound.source,
            );
            return Err(file.error(entry.at, DEFAULT_MODE, problem));
        }
        agent.default_mode = Sourced::new(entry.value, source.clone());
    }
    if agent.allows(agent.default_mode.value) {
        return Ok(());
    }
    let mode = agent.default_mode.value;
    let allowed = list(&agent.modes.value);
    match (&file.default_mode, &file.modes) {
        (Some(entry), _) => {
            let message =
                format!("\"{mode}\" is not one of the allowed modes ({allowed}, from {})", agent.modes.source);
            let hint = "set agent.default_mode to one of the allowed modes";
            let problem = if agent.modes.source == *source {
                Problem::invalid(message, hint)
            } else {
                Problem::widening(message, format!("{hint}; {}", remedy(&agent.modes.source)), &agent.modes.source)
            };
            Err(file.error(entry.at, DEFAULT_MODE, problem))
        }
        (None, Some(entry)) => Err(file.error(
            entry.at,
            MODES,
            Problem::invalid(
                format!(
                    "leaves out \"{mode}\", the agent.default_mode from {} (allowed: {allowed})",
                    agent.default_mode.source
                ),
                "also set agent.default_mode in this file, to one of the allowed modes",
            ),
        )),
        // Neither was set by this layer, so the layers above were consistent.
        (None, None) => Ok(()),
    }
}

fn list(modes: &[Mode]) -> String {
    let names: Vec<String> = modes.iter().map(|m| format!("\"{m}\"")).collect();
    format!("[{}]", names.join(", "))
}

/// Whether the user config may say `pattern = permission`: only what
/// managed policy set binds it.
pub(crate) fn check_user_rule(
    policy: &Policy,
    kind: RuleKind,
    pattern: &str,
    permission: Permission,
) -> Result<(), Problem> {
    let ceiling = &policy.managed_ceiling.rules;
    let (rules, default) = ceiling.of(kind);
    if let Some(bound) = binding(kind, pattern, rules, default) {
        check_rule(pattern, permission, bound)?;
    }
    // As in `apply_rules`: a managed run_command rule bounds command rules.
    match (kind, binding(RuleKind::Tool, "run_command", &ceiling.tools, None)) {
        (RuleKind::Command, Some(bound)) => check_rule(pattern, permission, bound),
        _ => Ok(()),
    }
}

pub(crate) fn check_mode_allowed(policy: &Policy, mode: Mode) -> Result<(), PolicyError> {
    let modes = &policy.agent.modes;
    if modes.value.contains(&mode) {
        return Ok(());
    }
    Err(PolicyError::CommandLine {
        key: MODES,
        message: format!("mode \"{mode}\" is not allowed by {} (allowed: {})", modes.source, list(&modes.value)),
        hint: format!("choose one of the allowed modes; {}", remedy(&modes.source)),
    })
}

pub(crate) fn add_writable_root(policy: &mut Policy, path: &Path) -> Result<(), PolicyError> {
    let cx = &policy.context;
    let root = resolve_root(path, &cx.home, None).map_err(|p| {
        Problem { hint: "pass an absolute path, or one starting with ~/".to_owned(), ..p }
            .on_command_line(WRITABLE_ROOTS)
    })?;
    // The person outranks the project, so only higher layers' denials bind.
    let denied: Vec<_> =
        policy.sandbox.deny_read.iter().filter(|d| !matches!(d.source, Source::Project(_))).cloned().collect();
    let rules = Rules { ceiling: &policy.managed_ceiling, denied: &denied, workspace: &cx.workspace };
    check_root(WRITABLE_ROOTS, &root, rules.ceiling.writable_roots.as_ref(), &rules)
        .map_err(|p| p.on_command_line(WRITABLE_ROOTS))?;
    if !policy.sandbox.writable_roots.iter().any(|r| r.value == root) {
        policy.sandbox.writable_roots.push(Sourced::new(root, Source::CommandLine));
    }
    Ok(())
}

pub(crate) fn set_network_mode(policy: &mut Policy, mode: NetworkMode) -> Result<(), PolicyError> {
    check_mode(mode, policy.managed_ceiling.network_mode.as_ref()).map_err(|p| p.on_command_line(NETWORK_MODE))?;
    policy.network.mode = Sourced::new(mode, Source::CommandLine);
    Ok(())
}

pub(crate) fn set_timeout_secs(policy: &mut Policy, secs: u64) -> Result<(), PolicyError> {
    let key = LimitKey::TimeoutSecs;
    check_limit(secs)
        .and_then(|secs| check_limit_lowered(key, secs, policy.managed_ceiling.limits[key as usize].as_ref()))
        .map_err(|p| p.on_command_line(key.name()))?;
    policy.limits.timeout_secs = Sourced::new(secs, Source::CommandLine);
    Ok(())
}

fn sourced<T: Clone>(entries: &[Entry<T>], source: &Source) -> Vec<Sourced<T>> {
    entries.iter().map(|e| Sourced::new(e.value.clone(), source.clone())).collect()
}

fn check_root(
    key: &'static str,
    root: &Path,
    ceiling: Option<&Sourced<Vec<PathBuf>>>,
    rules: &Rules<'_>,
) -> Result<(), Problem> {
    if let Some(denied) = rules.denied.iter().find(|d| root.starts_with(&d.value)) {
        return Err(Problem::widening(
            format!(
                "adds \"{}\" which is inside \"{}\", denied by {} (sandbox.deny_read)",
                root.display(),
                denied.value.display(),
                denied.source
            ),
            format!("a denied path cannot be made readable or writable by {key}; remove the entry"),
            &denied.source,
        ));
    }
    let Some(ceiling) = ceiling else {
        return Ok(());
    };
    if root.starts_with(rules.workspace) || ceiling.value.iter().any(|allowed| root.starts_with(allowed)) {
        return Ok(());
    }
    let allowed: Vec<_> = ceiling.value.iter().map(|p| p.display().to_string()).collect();
    Err(Problem::widening(
        format!("adds \"{}\" which is not inside what {} allows ({allowed:?})", root.display(), ceiling.source),
        format!("this layer may only narrow {key}: use a path inside one of those; {}", remedy(&ceiling.source)),
        &ceiling.source,
    ))
}

fn check_domain(domain: &str, ceiling: Option<&Sourced<Vec<String>>>) -> Result<(), Problem> {
    let Some(ceiling) = ceiling else {
        return Ok(());
    };
    if ceiling.value.iter().any(|pattern| domain_allows(pattern, domain)) {
        return Ok(());
    }
    Err(Problem::widening(
        format!("adds \"{domain}\" which is not matched by what {} allows ({:?})", ceiling.source, ceiling.value),
        format!("this layer may only narrow network.allow_domains; {}", remedy(&ceiling.source)),
        &ceiling.source,
    ))
}

fn check_mode(mode: NetworkMode, ceiling: Option<&Sourced<NetworkMode>>) -> Result<(), Problem> {
    match ceiling {
        Some(ceiling) if mode == NetworkMode::Proxy && ceiling.value == NetworkMode::None => Err(Problem::widening(
            format!("sets \"proxy\" but {} sets \"none\"", ceiling.source),
            format!("this layer may only narrow network.mode; {}", remedy(&ceiling.source)),
            &ceiling.source,
        )),
        _ => Ok(()),
    }
}

fn check_bool(key: &'static str, value: bool, ceiling: Option<&Sourced<bool>>) -> Result<(), Problem> {
    match ceiling {
        Some(ceiling) if value && !ceiling.value => Err(Problem::widening(
            format!("sets true but {} sets false", ceiling.source),
            format!("this layer may only narrow {key}; remove the line or set it to false"),
            &ceiling.source,
        )),
        _ => Ok(()),
    }
}

fn check_limit_lowered(key: LimitKey, value: u64, ceiling: Option<&Sourced<u64>>) -> Result<(), Problem> {
    match ceiling {
        Some(ceiling) if value > ceiling.value => Err(Problem::widening(
            format!("raises the limit to {value}, above what {} allows ({})", ceiling.source, ceiling.value),
            format!("this layer may only lower {}; use at most {}", key.name(), ceiling.value),
            &ceiling.source,
        )),
        _ => Ok(()),
    }
}

/// How to get past a ceiling legitimately, given where it came from.
pub(crate) fn remedy(source: &Source) -> &'static str {
    match source {
        Source::Default => "to widen a built-in default, set it in your user config",
        Source::Managed(_) => "only an administrator can widen what managed policy allows",
        Source::User(_) => "to allow it, widen your user config",
        Source::Project(_) | Source::CommandLine => "to allow it, widen the layer above",
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use tempfile::TempDir;

    use crate::{Context, NetworkMode, PathKind, Policy, PolicyError, PolicyFiles, ProtectedPath, Source};

    /// Three policy files in a temporary folder; `home` and `workspace` are
    /// fixed so that expected paths read plainly.
    struct Fixture {
        _dir: TempDir,
        files: PolicyFiles,
        cx: Context,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let files = PolicyFiles {
                managed: dir.path().join("policy.toml"),
                user: Some(dir.path().join("config.toml")),
                project: dir.path().join("project.toml"),
            };
            let cx = Context { home: PathBuf::from("/home/u"), workspace: PathBuf::from("/home/u/work") };
            Fixture { _dir: dir, files, cx }
        }

        fn managed(self, text: &str) -> Self {
            fs_err::write(&self.files.managed, text).unwrap();
            self
        }

        fn user(self, text: &str) -> Self {
            fs_err::write(self.files.user.as_ref().unwrap(), text).unwrap();
            self
        }

        fn project(self, text: &str) -> Self {
            fs_err::write(&self.files.project, text).unwrap();
            self
        }

        fn load(&self) -> Result<Policy, PolicyError> {
            Policy::load(&self.files, &self.cx)
        }

        fn managed_source(&self) -> Source {
            Source::Managed(self.files.managed.clone())
        }

        fn user_source(&self) -> Source {
            Source::User(self.files.user.clone().unwrap())
        }

        fn project_source(&self) -> Source {
            Source::Project(self.files.project.clone())
        }

        /// Loads and expects a widening error; checks that it names both the
        /// lower file (with the key) and the ceiling's source.
        fn widening(&self, lower: &Source, key: &str, ceiling: &Source) -> String {
            let err = self.load().unwrap_err();
            let text = err.to_string();
            let PolicyError::Widening { path, key: err_key, ceiling: err_ceiling, .. } = &err else {
                panic!("expected a widening error, got {text}");
            };
            let lower_path = match lower {
                Source::User(p) | Source::Project(p) => p,
                other => panic!("not a lower file: {other}"),
            };
            assert_eq!(path, lower_path, "{text}");
            assert_eq!(*err_key, key, "{text}");
            assert_eq!(**err_ceiling, *ceiling, "{text}");
            assert!(text.starts_with(&format!("{}:", lower_path.display())), "{text}");
            assert!(text.contains(&ceiling.to_string()), "{text}");
            assert!(text.contains("\nhint: "), "{text}");
            text
        }
    }

    fn values<T: Clone>(list: &[crate::Sourced<T>]) -> Vec<T> {
        list.iter().map(|s| s.value.clone()).collect()
    }

    #[test]
    fn no_files_is_the_default_policy() {
        let fx = Fixture::new();
        assert_eq!(fx.load().unwrap(), Policy::defaults(&fx.cx));
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let fx = Fixture::new();
        fs_err::create_dir(&fx.files.project).unwrap();
        let err = fx.load().unwrap_err();
        assert!(matches!(&err, PolicyError::Read { path, .. } if *path == fx.files.project), "{err}");
        assert!(err.to_string().contains(&fx.files.project.display().to_string()), "{err}");
    }

    #[test]
    fn project_tightenings_are_accepted() {
        let fx = Fixture::new()
            .user(
                "[sandbox]\nwritable_roots = [\"~/scratch\"]\n\
                 [network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\", \"*.github.com\"]\n",
            )
            .project(
                "[sandbox]\n\
                 writable_roots = [\"~/scratch/build\", \"target\"]\n\
                 readable_roots = [\"/usr\", \"/etc/ssl\", \"docs\"]\n\
                 toolchain_roots = [\"~/.cargo/bin\"]\n\
                 allow_unsafe_no_sandbox = false\n\
                 [network]\nmode = \"none\"\nallow_domains = [\"api.github.com\", \"*.raw.github.com\", \"crates.io\"]\n\
                 [limits]\ntimeout_secs = 60\nmemory_mb = 8192\n",
            );
        let policy = fx.load().unwrap();
        let sandbox = &policy.sandbox;
        assert_eq!(
            values(&sandbox.writable_roots),
            ["/home/u/scratch/build", "/home/u/work/target"].map(PathBuf::from)
        );
        assert_eq!(values(&sandbox.readable_roots), ["/usr", "/etc/ssl", "/home/u/work/docs"].map(PathBuf::from));
        assert_eq!(values(&sandbox.toolchain_roots), [PathBuf::from("/home/u/.cargo/bin")]);
        assert!(!sandbox.allow_unsafe_no_sandbox.value);
        assert_eq!(policy.network.mode.value, NetworkMode::None);
        assert_eq!(values(&policy.network.allow_domains), ["api.github.com", "*.raw.github.com", "crates.io"]);
        assert_eq!(policy.limits.timeout_secs.value, 60);
        assert_eq!(policy.limits.memory_mb.value, 8192);
    }

    #[test]
    fn project_may_not_add_a_writable_root() {
        let fx = Fixture::new().project("[sandbox]\nwritable_roots = [\"/home/u\"]\n");
        let text = fx.widening(&fx.project_source(), "sandbox.writable_roots", &Source::Default);
        assert!(text.contains("adds \"/home/u\" which is not inside what built-in default allows ([])"), "{text}");
    }

    #[test]
    fn widening_error_text_is_exact() {
        let fx = Fixture::new()
            .managed("[sandbox]\nwritable_roots = [\"/srv/build\"]\n")
            .project("# untrusted\n[sandbox]\nwritable_roots = [\"/home/u\"]\n");
        let err = fx.load().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3:19: sandbox.writable_roots adds \"/home/u\" which is not inside what managed policy {} allows ([\"/srv/build\"])\n\
                 hint: this layer may only narrow sandbox.writable_roots: use a path inside one of those; \
                 only an administrator can widen what managed policy allows",
                fx.files.project.display(),
                fx.files.managed.display()
            )
        );
    }

    #[test]
    fn project_may_not_read_a_path_denied_above() {
        let fx = Fixture::new()
            .managed("[sandbox]\ndeny_read = [\"/srv/secrets\"]\nreadable_roots = [\"/usr\", \"/srv\"]\n")
            .project("[sandbox]\nreadable_roots = [\"/srv/secrets/keys\"]\n");
        let text = fx.widening(&fx.project_source(), "sandbox.readable_roots", &fx.managed_source());
        assert!(text.contains("inside \"/srv/secrets\", denied by managed policy"), "{text}");

        // A denial from the defaults binds the project too.
        let fx = Fixture::new().project("[sandbox]\ntoolchain_roots = [\"~/.cargo/credentials\"]\n");
        fx.widening(&fx.project_source(), "sandbox.toolchain_roots", &Source::Default);
    }

    #[test]
    fn user_may_not_read_a_default_denied_path() {
        let fx = Fixture::new().user("[sandbox]\nreadable_roots = [\"/usr\", \"~/.ssh\"]\n");
        let text = fx.widening(&fx.user_source(), "sandbox.readable_roots", &Source::Default);
        assert!(text.contains("denied by built-in default"), "{text}");
    }

    #[test]
    fn project_may_not_add_a_domain_outside_the_managed_allowlist() {
        let fx = Fixture::new()
            .managed("[network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\", \"*.github.com\"]\n")
            .project("[network]\nallow_domains = [\"crates.io\", \"github.com\"]\n");
        let text = fx.widening(&fx.project_source(), "network.allow_domains", &fx.managed_source());
        assert!(text.contains(":2:31: network.allow_domains adds \"github.com\" which is not matched"), "{text}");
    }

    #[test]
    fn project_may_not_enable_the_proxy_when_managed_set_none() {
        let fx = Fixture::new().managed("[network]\nmode = \"none\"\n").project("[network]\nmode = \"proxy\"\n");
        let text = fx.widening(&fx.project_source(), "network.mode", &fx.managed_source());
        assert!(text.contains("sets \"proxy\" but managed policy"), "{text}");
    }

    #[test]
    fn project_may_not_raise_a_limit() {
        let fx = Fixture::new().user("[limits]\nprocesses = 100\n").project("[limits]\nprocesses = 101\n");
        let text = fx.widening(&fx.project_source(), "limits.processes", &fx.user_source());
        assert!(text.contains("raises the limit to 101, above what user config"), "{text}");
        assert!(text.contains("allows (100)"), "{text}");
    }

    #[test]
    fn project_may_not_allow_running_without_sandbox_when_forbidden() {
        let fx = Fixture::new()
            .managed("[sandbox]\nallow_unsafe_no_sandbox = false\n")
            .project("[sandbox]\nallow_unsafe_no_sandbox = true\n");
        fx.widening(&fx.project_source(), "sandbox.allow_unsafe_no_sandbox", &fx.managed_source());
    }

    #[test]
    fn project_may_not_widen_a_default() {
        let fx = Fixture::new().project("[limits]\ntimeout_secs = 601\n");
        let text = fx.widening(&fx.project_source(), "limits.timeout_secs", &Source::Default);
        assert!(text.contains("above what built-in default allows (600)"), "{text}");
        assert!(text.contains("hint: this layer may only lower limits.timeout_secs; use at most 600"), "{text}");

        let fx = Fixture::new().project("[sandbox]\nreadable_roots = [\"/usr\", \"/home\"]\n");
        fx.widening(&fx.project_source(), "sandbox.readable_roots", &Source::Default);

        let fx = Fixture::new().project("[network]\nmode = \"proxy\"\n");
        fx.widening(&fx.project_source(), "network.mode", &Source::Default);

        let fx = Fixture::new().project("[network]\nallow_domains = [\"evil.example\"]\n");
        fx.widening(&fx.project_source(), "network.allow_domains", &Source::Default);
    }

    #[test]
    fn user_may_not_widen_a_managed_key() {
        let fx = Fixture::new()
            .managed("[sandbox]\nwritable_roots = [\"/srv/build\"]\n[limits]\nmemory_mb = 2048\n")
            .user("[sandbox]\nwritable_roots = [\"/srv/build/a\", \"/tmp/x\"]\n");
        let text = fx.widening(&fx.user_source(), "sandbox.writable_roots", &fx.managed_source());
        assert!(text.contains("adds \"/tmp/x\""), "{text}");

        let fx = Fixture::new().managed("[limits]\nmemory_mb = 2048\n").user("[limits]\nmemory_mb = 4096\n");
        fx.widening(&fx.user_source(), "limits.memory_mb", &fx.managed_source());
    }

    #[test]
    fn user_may_widen_defaults_and_keys_managed_left_alone() {
        let fx = Fixture::new().managed("[limits]\nmemory_mb = 2048\n").user(
            "[sandbox]\nwritable_roots = [\"~/scratch\"]\nreadable_roots = [\"/usr\", \"/nix\"]\n\
             [network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\"]\n\
             [limits]\ntimeout_secs = 7200\nmemory_mb = 1024\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(values(&policy.sandbox.writable_roots), [PathBuf::from("/home/u/scratch")]);
        assert_eq!(values(&policy.sandbox.readable_roots), ["/usr", "/nix"].map(PathBuf::from));
        assert_eq!(policy.network.mode.value, NetworkMode::Proxy);
        assert_eq!(policy.limits.timeout_secs.value, 7200);
        assert_eq!(policy.limits.memory_mb.value, 1024);
    }

    #[test]
    fn managed_may_set_anything() {
        let fx = Fixture::new().managed(
            "[sandbox]\nwritable_roots = [\"/srv\"]\n[network]\nmode = \"proxy\"\n[limits]\ntimeout_secs = 99999\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(policy.limits.timeout_secs.value, 99999);
        assert_eq!(policy.network.mode.value, NetworkMode::Proxy);
    }

    #[test]
    fn deny_read_and_protected_only_grow() {
        let fx = Fixture::new()
            .managed("[sandbox]\ndeny_read = [\"/srv/secrets\"]\n")
            .user("[sandbox]\ndeny_read = [\"~/private\", \"~/.ssh\"]\nprotected = [\"Makefile\"]\n")
            .project("[sandbox]\ndeny_read = []\nprotected = [\"ci/\", \".envrc\"]\n");
        let policy = fx.load().unwrap();
        let deny = &policy.sandbox.deny_read;
        assert_eq!(deny.len(), 36 + 2, "defaults kept, duplicates not repeated: {deny:?}");
        let source_of = |path: &str| deny.iter().find(|d| d.value == Path::new(path)).map(|d| d.source.clone());
        assert_eq!(source_of("/home/u/.ssh"), Some(Source::Default));
        assert_eq!(source_of("/srv/secrets"), Some(fx.managed_source()));
        assert_eq!(source_of("/home/u/private"), Some(fx.user_source()));

        let protected = &policy.sandbox.protected;
        assert_eq!(protected.len(), 11 + 2);
        let ci = protected.iter().find(|p| p.value.path == Path::new("ci")).unwrap();
        assert_eq!(ci.value, ProtectedPath { path: "ci".into(), kind: PathKind::Dir });
        assert_eq!(ci.source, fx.project_source());
        let makefile = protected.iter().find(|p| p.value.path == Path::new("Makefile")).unwrap();
        assert_eq!(makefile.source, fx.user_source());
    }

    #[test]
    fn each_value_keeps_its_source() {
        let fx = Fixture::new()
            .managed("[limits]\nmemory_mb = 4096\n")
            .user("[sandbox]\nwritable_roots = [\"~/scratch\"]\n[limits]\ncpu_secs = 100\n")
            .project("[limits]\ncpu_secs = 50\n[network]\nmode = \"none\"\n");
        let policy = fx.load().unwrap();
        assert_eq!(policy.limits.memory_mb.source, fx.managed_source());
        assert_eq!(policy.limits.cpu_secs.source, fx.project_source());
        assert_eq!(policy.limits.timeout_secs.source, Source::Default);
        assert_eq!(policy.network.mode.source, fx.project_source());
        assert_eq!(policy.sandbox.writable_roots[0].source, fx.user_source());
        assert_eq!(policy.sandbox.readable_roots[0].source, Source::Default);
    }

    #[test]
    fn command_line_obeys_managed_ceilings() {
        let fx = Fixture::new()
            .managed("[sandbox]\nwritable_roots = [\"/srv/build\"]\n[network]\nmode = \"none\"\n[limits]\ntimeout_secs = 300\n")
            .user("[sandbox]\nwritable_roots = [\"/srv/build/a\"]\n");
        let mut policy = fx.load().unwrap();

        // Inside the managed root (though not the user's), or the workspace: fine.
        policy.add_writable_root("/srv/build/b".as_ref()).unwrap();
        policy.add_writable_root("/home/u/work/target".as_ref()).unwrap();
        let last = policy.sandbox.writable_roots.last().unwrap();
        assert_eq!(last.source, Source::CommandLine);

        let err = policy.add_writable_root("/x".as_ref()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "command line: sandbox.writable_roots: adds \"/x\" which is not inside what managed policy"
            ),
            "{text}"
        );
        assert!(text.contains(&fx.files.managed.display().to_string()), "{text}");

        let err = policy.set_network_mode(NetworkMode::Proxy).unwrap_err();
        assert!(err.to_string().contains("sets \"proxy\" but managed policy"), "{err}");
        policy.set_network_mode(NetworkMode::None).unwrap();

        assert!(policy.set_timeout_secs(301).is_err());
        policy.set_timeout_secs(120).unwrap();
        assert_eq!(policy.limits.timeout_secs.value, 120);
        // The ceiling is managed policy's value, not the last one set.
        policy.set_timeout_secs(300).unwrap();
        assert!(policy.set_timeout_secs(0).is_err());
    }

    #[test]
    fn command_line_is_free_where_managed_is_silent() {
        let fx = Fixture::new().project("[limits]\ntimeout_secs = 10\n[sandbox]\ndeny_read = [\"/data\"]\n");
        let mut policy = fx.load().unwrap();
        policy.set_timeout_secs(3600).unwrap();
        policy.set_network_mode(NetworkMode::Proxy).unwrap();
        // The person outranks the project's own denials, but not the defaults.
        policy.add_writable_root("/data/out".as_ref()).unwrap();
        let err = policy.add_writable_root("~/.ssh".as_ref()).unwrap_err();
        assert!(err.to_string().contains("denied by built-in default"), "{err}");
        let err = policy.add_writable_root("relative".as_ref()).unwrap_err();
        assert!(err.to_string().contains("relative path"), "{err}");
        assert_eq!(policy.network.mode.source, Source::CommandLine);
    }

    #[test]
    fn render_shows_sources_and_reloads_to_the_same_values() {
        let fx = Fixture::new()
            .managed("[limits]\nmemory_mb = 4096\n[sandbox]\nwritable_roots = []\n")
            .user("[network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\"]\n")
            .project("[sandbox]\nprotected = [\"ci/\"]\n");
        let mut policy = fx.load().unwrap();
        policy.set_timeout_secs(60).unwrap();
        let shown = policy.render();
        let managed = fx.managed_source().to_string();
        assert!(shown.contains(&format!("memory_mb = 4096 # {managed}")), "{shown}");
        assert!(shown.contains(&format!("writable_roots = [] # {managed}")), "{shown}");
        assert!(shown.contains(&format!("    \"crates.io\", # {}", fx.user_source())), "{shown}");
        assert!(shown.contains(&format!("    \"ci/\", # {}", fx.project_source())), "{shown}");
        assert!(shown.contains("    \"/usr\", # built-in default"), "{shown}");
        assert!(shown.contains("timeout_secs = 60 # command line"), "{shown}");
        assert!(shown.contains("mode = \"proxy\" # user config"), "{shown}");

        // The output is itself a valid policy file meaning the same thing.
        let again = Fixture::new().managed(&shown).load().unwrap();
        assert_eq!(again.sandbox.readable_roots.len(), policy.sandbox.readable_roots.len());
        assert_eq!(values(&again.sandbox.protected), values(&policy.sandbox.protected));
        assert_eq!(values(&again.sandbox.deny_read), values(&policy.sandbox.deny_read));
        assert_eq!(values(&again.network.allow_domains), values(&policy.network.allow_domains));
        assert_eq!(again.limits.timeout_secs.value, 60);
        assert_eq!(again.network.mode.value, NetworkMode::Proxy);
    }

    fn rule(policy: &Policy, kind: crate::RuleKind, pattern: &str) -> Option<(crate::Permission, String)> {
        policy.rules.of(kind).iter().find(|r| r.pattern == pattern).map(|r| (r.permission, r.origin.to_string()))
    }

    #[test]
    fn default_rules_are_the_built_in_layer() {
        use crate::{Permission::*, RuleKind::*};
        let policy = Fixture::new().load().unwrap();
        let tools: Vec<_> = policy.rules.tools.iter().map(|r| (r.pattern.as_str(), r.permission)).collect();
        assert_eq!(
            tools,
            [
                ("read_file", Allow),
                ("list_dir", Allow),
                ("glob", Allow),
                ("grep", Allow),
                ("todo", Allow),
                ("edit_file", Ask),
                ("write_file", Ask),
                ("run_command", Ask)
            ]
        );
        let commands: Vec<_> = policy.rules.commands.iter().map(|r| (r.pattern.as_str(), r.permission)).collect();
        assert_eq!(commands, [("git push", Deny), ("curl", Deny), ("wget", Deny), ("ssh", Deny), ("scp", Deny)]);
        assert_eq!(policy.rules.default_tool.permission, Deny);
        assert_eq!(policy.rules.default_command.permission, Ask);
        assert_eq!(rule(&policy, Command, "curl").unwrap().1, "built-in default");
        assert_eq!(policy.agent.default_mode.value, crate::Mode::Ask);
        assert_eq!(policy.agent.modes.value, crate::Mode::ALL);
    }

    #[test]
    fn rules_keep_their_file_line_and_column() {
        use crate::{Permission::*, RuleKind::*};
        let fx = Fixture::new()
            .managed("[commands]\n\"npm publish\" = \"deny\"\n")
            .user("# mine\n[tools]\nedit_file = \"allow\"\n[commands]\ndefault = \"deny\"\n  \"cargo   test\" = \"allow\"\n")
            .project("[commands]\nmake = \"deny\"\n");
        let policy = fx.load().unwrap();
        let managed = fx.managed_source().to_string();
        let user = fx.user_source().to_string();
        assert_eq!(rule(&policy, Command, "npm publish"), Some((Deny, format!("{managed}:2:1"))));
        assert_eq!(rule(&policy, Tool, "edit_file"), Some((Allow, format!("{user}:3:1"))));
        assert_eq!(rule(&policy, Command, "cargo test"), Some((Allow, format!("{user}:6:3"))), "normalized");
        assert_eq!(policy.rules.default_command.origin.to_string(), format!("{user}:5:1"));
        assert_eq!(rule(&policy, Command, "make").unwrap().1, format!("{}:2:1", fx.project_source()));
        let lines = policy.rules_with_sources();
        let curl = lines.iter().find(|l| l.pattern == Some("curl")).unwrap();
        assert_eq!((curl.kind, curl.permission, curl.origin.to_string()), (Command, Deny, "built-in default".into()));
        assert_eq!(lines.iter().filter(|l| l.pattern.is_none()).count(), 2, "both defaults are listed");

        let shown = policy.render();
        assert!(shown.contains(&format!("\"npm publish\" = \"deny\" # {managed}:2:1")), "{shown}");
        assert!(shown.contains("[tools]\ndefault = \"deny\" # built-in default\nread_file"), "{shown}");
        assert!(shown.contains(&format!("edit_file = \"allow\" # {user}:3:1")), "{shown}");
        assert!(shown.contains("[agent]\ndefault_mode = \"ask\" # built-in default\n"), "{shown}");
        assert!(shown.contains("modes = [\"ask\", \"edits\", \"plan\", \"auto\"] # built-in default"), "{shown}");
        // The output reloads to the same rules.
        let again = Fixture::new().managed(&shown).load().unwrap();
        let strip = |p: &Policy| -> Vec<(String, crate::Permission)> {
            p.rules.tools.iter().chain(&p.rules.commands).map(|r| (r.pattern.clone(), r.permission)).collect()
        };
        assert_eq!(strip(&again), strip(&policy));
        assert_eq!(again.rules.default_command.permission, Deny);
    }

    #[test]
    fn project_may_tighten_rules_and_add_ask_or_deny() {
        use crate::{Permission::*, RuleKind::*};
        let fx = Fixture::new().project(
            "[tools]\nread_file = \"ask\"\nrun_command = \"deny\"\n\
             [commands]\ndefault = \"deny\"\n\"rm -rf\" = \"deny\"\nmake = \"ask\"\n\"git push --force\" = \"deny\"\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(rule(&policy, Tool, "read_file").unwrap().0, Ask);
        assert_eq!(rule(&policy, Tool, "run_command").unwrap().0, Deny);
        assert_eq!(rule(&policy, Command, "rm -rf").unwrap().0, Deny);
        assert_eq!(rule(&policy, Command, "make").unwrap().0, Ask);
        assert_eq!(policy.rules.default_command.permission, Deny);
    }

    #[test]
    fn project_cannot_loosen_a_rule_or_a_default() {
        let fx = Fixture::new().project("[tools]\nedit_file = \"allow\"\n");
        let text = fx.widening(&fx.project_source(), "tools", &Source::Default);
        assert!(text.contains(":2:1: tools \"edit_file\" = \"allow\" is looser than \"ask\""), "{text}");

        // An allow rule for a new command loosens the default (ask).
        let fx = Fixture::new().project("[commands]\n\"cargo test\" = \"allow\"\n");
        let text = fx.widening(&fx.project_source(), "commands", &Source::Default);
        assert!(text.contains("(commands.default, from built-in default)"), "{text}");

        // A longer prefix would win over the deny rule it extends.
        let fx = Fixture::new().project("[commands]\n\"git push --dry-run\" = \"ask\"\n");
        let text = fx.widening(&fx.project_source(), "commands", &Source::Default);
        assert!(text.contains("looser than \"deny\" (commands \"git push\""), "{text}");

        // Written with the program's folder, it is the same prefix.
        let fx = Fixture::new().project("[commands]\n\"/usr/bin/git push --dry-run\" = \"ask\"\n");
        let text = fx.widening(&fx.project_source(), "commands", &Source::Default);
        assert!(text.contains("\"git push --dry-run\" = \"ask\" is looser than \"deny\""), "{text}");

        let fx = Fixture::new().project("[commands]\ncurl = \"ask\"\n");
        fx.widening(&fx.project_source(), "commands", &Source::Default);
        let fx = Fixture::new().project("[tools]\ndefault = \"ask\"\n");
        fx.widening(&fx.project_source(), "tools", &Source::Default);
        let fx = Fixture::new().project("[tools]\nweb_fetch = \"ask\"\n");
        fx.widening(&fx.project_source(), "tools", &Source::Default);

        // What the user config allowed binds the project as well.
        let fx = Fixture::new()
            .user("[commands]\ncargo = \"allow\"\n\"cargo publish\" = \"deny\"\n")
            .project("[commands]\n\"cargo publish --dry-run\" = \"allow\"\n");
        let text = fx.widening(&fx.project_source(), "commands", &fx.user_source());
        assert!(text.contains(&format!("(commands \"cargo publish\", from {}:3:1)", fx.user_source())), "{text}");
    }

    #[test]
    fn user_may_change_rules_managed_left_alone_and_only_tighten_the_rest() {
        use crate::{Permission::*, RuleKind::*};
        let fx = Fixture::new().managed("[commands]\n\"git push\" = \"deny\"\ndocker = \"ask\"\n").user(
            "[commands]\ncurl = \"allow\"\ngit = \"allow\"\ndocker = \"deny\"\n[tools]\nwrite_file = \"allow\"\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(rule(&policy, Command, "curl").unwrap().0, Allow, "a built-in rule managed did not set");
        assert_eq!(rule(&policy, Command, "git").unwrap().0, Allow, "a shorter prefix does not loosen `git push`");
        assert_eq!(rule(&policy, Command, "git push").unwrap().0, Deny);
        assert_eq!(rule(&policy, Command, "docker").unwrap().0, Deny);
        assert_eq!(rule(&policy, Tool, "write_file").unwrap().0, Allow);

        let fx = Fixture::new()
            .managed("[commands]\n\"git push\" = \"deny\"\n")
            .user("[commands]\n\"git push\" = \"ask\"\n");
        let text = fx.widening(&fx.user_source(), "commands", &fx.managed_source());
        assert!(text.contains("only an administrator can widen"), "{text}");

        let fx = Fixture::new().managed("[commands]\ndefault = \"deny\"\n").user("[commands]\nmake = \"allow\"\n");
        let text = fx.widening(&fx.user_source(), "commands", &fx.managed_source());
        assert!(text.contains("(commands.default, from managed policy"), "{text}");

        let fx = Fixture::new().managed("[tools]\nrun_command = \"deny\"\n").user("[tools]\nrun_command = \"ask\"\n");
        fx.widening(&fx.user_source(), "tools", &fx.managed_source());

        // A command's allow rule frees what run_command would ask about: under
        // a managed run_command rule, the user may not add one (nor a looser default).
        let fx = Fixture::new().managed("[tools]\nrun_command = \"ask\"\n").user("[commands]\nmkdir = \"allow\"\n");
        let text = fx.widening(&fx.user_source(), "commands", &fx.managed_source());
        assert!(text.contains("tools \"run_command\""), "{text}");
        let fx = Fixture::new().managed("[tools]\nrun_command = \"ask\"\n").user("[commands]\ndefault = \"allow\"\n");
        fx.widening(&fx.user_source(), "commands", &fx.managed_source());
        let fx = Fixture::new().managed("[tools]\nrun_command = \"ask\"\n").user("[commands]\nmkdir = \"deny\"\n");
        assert!(fx.load().is_ok(), "tightening stays free");
    }

    #[test]
    fn rule_keys_are_checked() {
        let fx = Fixture::new().user("[tools]\n\"git push\" = \"allow\"\n");
        let err = fx.load().unwrap_err();
        assert!(matches!(err, PolicyError::Invalid { key: "tools", line: 2, column: 1, .. }), "{err}");
        let fx = Fixture::new().user("[commands]\n\"  \" = \"deny\"\n");
        assert!(fx.load().unwrap_err().to_string().contains("the command prefix is empty"));
        let fx = Fixture::new().user("[commands]\n\"a b\" = \"deny\"\n\"a  b\" = \"ask\"\n");
        assert!(fx.load().unwrap_err().to_string().contains("\"a b\" is already set at line 2"));
        let fx = Fixture::new().user("[commands]\nmake = \"yes\"\n");
        assert!(fx.load().unwrap_err().to_string().contains("unknown variant `yes`"));
    }

    #[test]
    fn managed_may_forbid_a_mode_and_lower_layers_may_only_remove_more() {
        use crate::Mode::*;
        let fx = Fixture::new().managed("[agent]\nmodes = [\"plan\", \"ask\", \"edits\"]\n");
        let policy = fx.load().unwrap();
        assert_eq!(policy.agent.modes.value, [Ask, Edits, Plan], "in the order of Mode::ALL");
        assert!(!policy.agent.allows(Auto));
        let err = policy.check_mode(Auto).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("command line: agent.modes: mode \"auto\" is not allowed by managed policy"),
            "{text}"
        );
        policy.check_mode(Plan).unwrap();

        let fx = Fixture::new()
            .managed("[agent]\nmodes = [\"plan\", \"ask\"]\n")
            .user("[agent]\nmodes = [\"ask\", \"auto\"]\n");
        let text = fx.widening(&fx.user_source(), "agent.modes", &fx.managed_source());
        assert!(text.contains("allows \"auto\", which managed policy"), "{text}");

        let fx = Fixture::new()
            .user("[agent]\nmodes = [\"ask\", \"plan\"]\n")
            .project("[agent]\nmodes = [\"auto\", \"ask\"]\n");
        fx.widening(&fx.project_source(), "agent.modes", &fx.user_source());

        let fx = Fixture::new().project("[agent]\nmodes = [\"plan\", \"ask\"]\n");
        assert_eq!(fx.load().unwrap().agent.modes.value, [Ask, Plan]);
        let fx = Fixture::new().project("[agent]\nmodes = []\n");
        assert!(fx.load().unwrap_err().to_string().contains("no mode is allowed"));
        assert!("[agent]\nmodes = [\"fast\"]\n".parse::<toml::Table>().is_ok());
        let fx = Fixture::new().user("[agent]\nmodes = [\"fast\"]\n");
        assert!(fx.load().unwrap_err().to_string().contains("unknown variant `fast`"));
    }

    #[test]
    fn a_default_mode_that_is_not_allowed_is_an_error_naming_it() {
        let fx =
            Fixture::new().managed("[agent]\nmodes = [\"ask\", \"plan\"]\n").user("[agent]\ndefault_mode = \"auto\"\n");
        let err = fx.load().unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PolicyError::Widening { key: "agent.default_mode", line: 2, column: 16, .. }), "{text}");
        assert!(
            text.contains("\"auto\" is not one of the allowed modes ([\"ask\", \"plan\"], from managed policy"),
            "{text}"
        );

        // In one file: the default must be among the modes it allows.
        let fx = Fixture::new().managed("[agent]\nmodes = [\"plan\"]\n");
        let err = fx.load().unwrap_err();
        assert!(matches!(err, PolicyError::Invalid { key: "agent.modes", .. }), "{err}");
        assert!(err.to_string().contains("leaves out \"ask\", the agent.default_mode from built-in default"), "{err}");
        let fx = Fixture::new().managed("[agent]\nmodes = [\"plan\"]\ndefault_mode = \"plan\"\n");
        assert_eq!(fx.load().unwrap().agent.default_mode.value, crate::Mode::Plan);

        // A project that removes the default mode must choose another.
        let fx = Fixture::new().project("[agent]\nmodes = [\"plan\"]\n");
        assert!(fx.load().is_err());
        let fx = Fixture::new().project("[agent]\nmodes = [\"plan\"]\ndefault_mode = \"plan\"\n");
        assert_eq!(fx.load().unwrap().agent.default_mode.source, fx.project_source());
    }

    #[test]
    fn a_project_cannot_make_auto_the_default() {
        let fx = Fixture::new().project("[agent]\ndefault_mode = \"auto\"\n");
        let text = fx.widening(&fx.project_source(), "agent.default_mode", &Source::Default);
        assert!(text.contains("sets \"auto\", which runs more without asking than \"ask\""), "{text}");
        // The user may; a managed default binds the user the same way.
        let fx = Fixture::new().user("[agent]\ndefault_mode = \"auto\"\n");
        assert_eq!(fx.load().unwrap().agent.default_mode.value, crate::Mode::Auto);
        let fx =
            Fixture::new().managed("[agent]\ndefault_mode = \"plan\"\n").user("[agent]\ndefault_mode = \"edits\"\n");
        fx.widening(&fx.user_source(), "agent.default_mode", &fx.managed_source());
    }

    #[test]
    fn a_workspace_section_applies_only_to_its_workspace() {
        use crate::{Permission::*, RuleKind::*};
        let user = "[commands]\nmake = \"deny\"\n\
                    [workspace.\"/home/u/work\".commands]\n\"cargo test\" = \"allow\"\nmake = \"allow\"\n\
                    [workspace.\"~/other\".tools]\nedit_file = \"allow\"\n";
        let fx = Fixture::new().user(user);
        let policy = fx.load().unwrap();
        assert_eq!(rule(&policy, Command, "cargo test"), Some((Allow, format!("{}:4:1", fx.user_source()))));
        assert_eq!(rule(&policy, Command, "make").unwrap().0, Allow, "the workspace's rule overrides the user's");
        assert_eq!(rule(&policy, Tool, "edit_file").unwrap().0, Ask, "another workspace's rule does not apply");

        let mut fx = Fixture::new().user(user);
        fx.cx.workspace = PathBuf::from("/home/u/other/");
        let policy = fx.load().unwrap();
        assert_eq!(rule(&policy, Tool, "edit_file").unwrap().0, Allow);
        assert_eq!(rule(&policy, Command, "cargo test"), None);
        assert_eq!(rule(&policy, Command, "make").unwrap().0, Deny);
    }

    #[test]
    fn a_workspace_reached_through_a_link_gets_its_rules() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs_err::canonicalize(dir.path()).unwrap().join("real");
        fs_err::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut fx = Fixture::new().user(&format!("[workspace.\"{}\".tools]\nedit_file = \"allow\"\n", real.display()));
        fx.cx.workspace = link;
        let policy = fx.load().unwrap();
        assert_eq!(rule(&policy, crate::RuleKind::Tool, "edit_file").unwrap().0, crate::Permission::Allow);
    }

    #[test]
    fn a_workspace_section_is_a_user_rule_under_managed_ceilings() {
        let fx = Fixture::new()
            .managed("[commands]\ncargo = \"deny\"\n")
            .user("[workspace.\"/home/u/work\".commands]\n\"cargo test\" = \"allow\"\n");
        let text = fx.widening(&fx.user_source(), "commands", &fx.managed_source());
        assert!(text.contains(":2:1: commands \"cargo test\" = \"allow\""), "{text}");
        // Not in the managed policy or a project, and only absolute paths.
        let fx = Fixture::new().project("[workspace.\"/home/u/work\".commands]\nmake = \"deny\"\n");
        let err = fx.load().unwrap_err();
        assert!(err.to_string().contains("rules for one workspace belong in the user config"), "{err}");
        let fx = Fixture::new().managed("[workspace.\"/x\".tools]\ngrep = \"deny\"\n");
        assert!(matches!(fx.load().unwrap_err(), PolicyError::Invalid { key: "workspace", line: 1, .. }));
        let fx = Fixture::new().user("[workspace.\"work\".tools]\ngrep = \"deny\"\n");
        assert!(fx.load().unwrap_err().to_string().contains("\"work\" is a relative path"));
        let fx = Fixture::new().user("[workspace.\"/w\".limits]\ncpu_secs = 1\n");
        assert!(fx.load().unwrap_err().to_string().contains("unknown field `limits`"));
    }
}
