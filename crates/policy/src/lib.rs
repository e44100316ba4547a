//! airlock's policy: the TOML file format, its three layers and the
//! effective policy a sandbox is built from.
//!
//! Three files may exist, from most to least authority:
//!
//! - the **managed policy** (`/etc/airlock/policy.toml`, or the file named by
//!   `AIRLOCK_MANAGED_POLICY`), written by an administrator;
//! - the **user config** (`$XDG_CONFIG_HOME/airlock/config.toml`);
//! - the **project config** (`<workspace>/.airlock/config.toml`), which
//!   arrives with a cloned repository and is therefore untrusted.
//!
//! [`Policy::load`] starts from the built-in defaults and applies them in that
//! order. Managed policy may set anything. The user config may change
//! anything managed policy did not set, and may only tighten what it did. The
//! project config may only tighten, always. Command-line overrides obey the
//! same ceilings as the user config. Every effective value remembers its
//! [`Source`], so `airlock policy show` can say where it came from and an
//! error can name both the file that tried to widen and the one it may not
//! exceed.
//!
//! Besides the sandbox, the network and the limits, the layers decide tool
//! calls: `[tools]` (a tool name, or `default`) and `[commands]` (a command
//! prefix on whole words, or `default`) say `"allow"`, `"ask"` or `"deny"`,
//! and tighten in that order; `[agent]` sets `default_mode` and the `modes`
//! a person may choose (a lower layer may only remove modes). The user config
//! may hold `[workspace."/abs/path".tools]` and `.commands`, applied as its
//! own rules only in that workspace; [`add_workspace_rule`] writes them
//! ("allow for this project") without touching the person's other settings.
//!
//! `[mcp.servers.NAME]` configures MCP servers (see [`McpServer`]); a lower
//! layer may only tighten a server a higher one defined, a project's own
//! servers get nothing beyond the workspace, and managed policy may restrict
//! servers to those it pins by digest ([`Policy::mcp_servers`]).
//!
//! ```
//! use std::path::Path;
//! use airlock_policy::{Context, NetworkMode, Policy, PolicyFiles, Source};
//!
//! let cx = Context { home: "/home/u".into(), workspace: "/home/u/work".into() };
//! // The environment is injected so that tests never read /etc.
//! let env = |name: &str| match name {
//!     "AIRLOCK_MANAGED_POLICY" => Some("/nonexistent/policy.toml".to_owned()),
//!     "HOME" => Some("/nonexistent/home".to_owned()),
//!     _ => None,
//! };
//! let files = PolicyFiles::discover(&cx.workspace, &env);
//! // Missing files are absent layers: this is the built-in default policy.
//! let mut policy = Policy::load(&files, &cx)?;
//! assert_eq!(policy.network.mode.value, NetworkMode::None);
//!
//! // `--timeout 60`: allowed, no managed policy set a ceiling.
//! policy.set_timeout_secs(60)?;
//! assert_eq!(policy.limits.timeout_secs.value, 60);
//! assert_eq!(policy.limits.timeout_secs.source, Source::CommandLine);
//! assert!(policy.render().contains("timeout_secs = 60 # command line"));
//! # Ok::<(), airlock_policy::PolicyError>(())
//! ```
#![deny(missing_docs)]

mod error;
pub mod exit;
mod file;
mod layering;
pub mod mcp;
mod render;
mod rules;
mod values;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::PolicyError;
use file::LayerFile;
use layering::{Ceiling, ListSources};
pub use mcp::{DEFAULT_TIMEOUT_SECS, EnvValue, MAX_TIMEOUT_SECS, McpPolicy, McpServer, McpTransport};
pub use rules::{
    AgentPolicy, DefaultRule, Mode, Origin, Permission, Position, Rule, RuleKind, RuleLine, ToolRules, UnknownMode,
};
pub use write::add_workspace_rule;

/// Where a value of the effective policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built into airlock.
    Default,
    /// The administrator's managed policy file.
    Managed(PathBuf),
    /// The person's own config file.
    User(PathBuf),
    /// The workspace's `.airlock/config.toml`.
    Project(PathBuf),
    /// An option given on the command line.
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("built-in default"),
            Source::Managed(path) => write!(f, "managed policy {}", path.display()),
            Source::User(path) => write!(f, "user config {}", path.display()),
            Source::Project(path) => write!(f, "project config {}", path.display()),
            Source::CommandLine => f.write_str("command line"),
        }
    }
}

/// A value together with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    /// Pairs a value with its source.
    pub fn new(value: T, source: Source) -> Self {
        Sourced { value, source }
    }
}

/// Which of the three files a policy file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The administrator's managed policy.
    Managed,
    /// The person's own config.
    User,
    /// The workspace's `.airlock/config.toml`.
    Project,
}

impl Layer {
    fn source(self, path: &Path) -> Source {
        let path = path.to_owned();
        match self {
            Layer::Managed => Source::Managed(path),
            Layer::User => Source::User(path),
            Layer::Project => Source::Project(path),
        }
    }
}

/// Whether a protected path names a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Written without a trailing `/`.
    File,
    /// Written with a trailing `/`.
    Dir,
}

/// A workspace path that stays read-only, even if it does not exist yet (so
/// a command cannot create `.git/hooks/pre-commit` or `.envrc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedPath {
    /// Relative to the workspace, normalized, without `..`.
    pub path: PathBuf,
    /// File or directory.
    pub kind: PathKind,
}

/// Whether commands get a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// No network at all. Tighter than `Proxy`.
    None,
    /// Only through airlock's proxy, to the allowed domains.
    Proxy,
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::None => "none",
            NetworkMode::Proxy => "proxy",
        })
    }
}

/// What commands may read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// Writable besides the workspace and a private tmp.
    pub writable_roots: Vec<Sourced<PathBuf>>,
    /// Readable system folders.
    pub readable_roots: Vec<Sourced<PathBuf>>,
    /// Readable toolchain folders.
    pub toolchain_roots: Vec<Sourced<PathBuf>>,
    /// Never readable, whatever root contains them.
    pub deny_read: Vec<Sourced<PathBuf>>,
    /// Workspace paths that stay read-only.
    pub protected: Vec<Sourced<ProtectedPath>>,
    /// Whether `--unsafe-no-sandbox` may be used.
    pub allow_unsafe_no_sandbox: Sourced<bool>,
}

/// Network access of commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// None or proxy.
    pub mode: Sourced<NetworkMode>,
    /// Lowercase host names, `*.`-wildcards or IP literals the proxy lets through.
    pub allow_domains: Vec<Sourced<String>>,
}

impl NetworkPolicy {
    /// Whether a command may reach `host` through the proxy. Always false in
    /// mode `none`.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.mode.value == NetworkMode::Proxy
            && self.allow_domains.iter().any(|pattern| values::domain_allows(&pattern.value, &host))
    }
}

/// Resource limits of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock seconds.
    pub timeout_secs: Sourced<u64>,
    /// Memory in MiB.
    pub memory_mb: Sourced<u64>,
    /// Number of processes.
    pub processes: Sourced<u64>,
    /// Largest file a command may write, in MiB.
    pub file_size_mb: Sourced<u64>,
    /// CPU seconds.
    pub cpu_secs: Sourced<u64>,
    /// Bytes of output kept.
    pub output_bytes: Sourced<u64>,
    /// Size of the private tmp, in MiB.
    pub tmp_size_mb: Sourced<u64>,
}

/// The keys of `[limits]`, so the layering code can treat them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKey {
    TimeoutSecs,
    MemoryMb,
    Processes,
    FileSizeMb,
    CpuSecs,
    OutputBytes,
    TmpSizeMb,
}

impl LimitKey {
    pub(crate) const ALL: [LimitKey; 7] = [
        LimitKey::TimeoutSecs,
        LimitKey::MemoryMb,
        LimitKey::Processes,
        LimitKey::FileSizeMb,
        LimitKey::CpuSecs,
        LimitKey::OutputBytes,
        LimitKey::TmpSizeMb,
    ];

    /// The full key, as in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LimitKey::TimeoutSecs => "limits.timeout_secs",
            LimitKey::MemoryMb => "limits.memory_mb",
            LimitKey::Processes => "limits.processes",
            LimitKey::FileSizeMb => "limits.file_size_mb",
            LimitKey::CpuSecs => "limits.cpu_secs",
            LimitKey::OutputBytes => "limits.output_bytes",
            LimitKey::TmpSizeMb => "limits.tmp_size_mb",
        }
    }

    /// The key inside `[limits]`.
    pub(crate) fn field(self) -> &'static str {
        self.name().trim_start_matches("limits.")
    }

    fn default_value(self) -> u64 {
        match self {
            LimitKey::TimeoutSecs => 600,
            LimitKey::MemoryMb => 8192,
            LimitKey::Processes => 4096,
            LimitKey::FileSizeMb => 4096,
            LimitKey::CpuSecs => 3600,
            LimitKey::OutputBytes => 1_048_576,
            LimitKey::TmpSizeMb => 1024,
        }
    }
}

impl Limits {
    pub(crate) fn get(&self, key: LimitKey) -> &Sourced<u64> {
        match key {
            LimitKey::TimeoutSecs => &self.timeout_secs,
            LimitKey::MemoryMb => &self.memory_mb,
            LimitKey::Processes => &self.processes,
            LimitKey::FileSizeMb => &self.file_size_mb,
            LimitKey::CpuSecs => &self.cpu_secs,
            LimitKey::OutputBytes => &self.output_bytes,
            LimitKey::TmpSizeMb => &self.tmp_size_mb,
        }
    }

    pub(crate) fn get_mut(&mut self, key: LimitKey) -> &mut Sourced<u64> {
        match key {
            LimitKey::TimeoutSecs => &mut self.timeout_secs,
            LimitKey::MemoryMb => &mut self.memory_mb,
            LimitKey::Processes => &mut self.processes,
            LimitKey::FileSizeMb => &mut self.file_size_mb,
            LimitKey::CpuSecs => &mut self.cpu_secs,
            LimitKey::OutputBytes => &mut self.output_bytes,
            LimitKey::TmpSizeMb => &mut self.tmp_size_mb,
        }
    }
}

/// Where the three policy files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFiles {
    /// The managed policy.
    pub managed: PathBuf,
    /// The user config; `None` when neither `XDG_CONFIG_HOME` nor `HOME` is set.
    pub user: Option<PathBuf>,
    /// The project config.
    pub project: PathBuf,
}

impl PolicyFiles {
    /// Where the managed policy is unless `AIRLOCK_MANAGED_POLICY` names
    /// another file.
    pub const DEFAULT_MANAGED: &str = "/etc/airlock/policy.toml";

    /// Finds the files for `workspace`, reading environment variables through
    /// `env` (so tests never depend on the real environment or on /etc):
    /// `AIRLOCK_MANAGED_POLICY`, `XDG_CONFIG_HOME` (ignored unless absolute,
    /// as XDG says) and `HOME`. Empty variables count as unset.
    pub fn discover(workspace: &Path, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let managed = var("AIRLOCK_MANAGED_POLICY").map_or_else(|| PathBuf::from(Self::DEFAULT_MANAGED), PathBuf::from);
        // XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
        let config_home = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config")));
        PolicyFiles {
            managed,
            user: config_home.map(|dir| dir.join("airlock").join("config.toml")),
            project: workspace.join(".airlock").join("config.toml"),
        }
    }
}

/// What `~` and project-relative paths mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The home directory, for `~`.
    pub home: PathBuf,
    /// The workspace, for paths in the project config.
    pub workspace: PathBuf,
}

/// The effective policy: defaults with the layers and command-line overrides
/// applied, each value with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Filesystem access.
    pub sandbox: SandboxPolicy,
    /// Network access.
    pub network: NetworkPolicy,
    /// Resource limits.
    pub limits: Limits,
    /// Allow, ask or deny per tool and per command prefix.
    pub rules: ToolRules,
    /// Permission modes.
    pub agent: AgentPolicy,
    /// MCP servers and the rules for their tools.
    pub mcp: McpPolicy,
    /// The values managed policy set: ceilings for command-line overrides.
    managed_ceiling: Ceiling,
    /// Which source last replaced each replaceable list, even if it is empty.
    list_sources: ListSources,
    context: Context,
}

const DEFAULT_READABLE_ROOTS: &[&str] = &["/usr", "/etc", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt"];
const DEFAULT_TOOLCHAIN_ROOTS: &[&str] = &["~/.cargo", "~/.rustup"];
const DEFAULT_DENY_READ: &[&str] = &[
    "~/.ssh",
    "~/.aws",
    "~/.config/gcloud",
    "~/.azure",
    "~/.kube",
    "~/.docker/config.json",
    "~/.netrc",
    "~/.gnupg",
    "~/.password-store",
    "~/.local/share/keyrings",
    "~/.config/gh",
    "~/.claude",
    "~/.claude.json",
    "~/.codex",
    "~/.qwen",
    "~/.cargo/credentials",
    "~/.cargo/credentials.toml",
    "~/.npmrc",
    "~/.pypirc",
    "~/.git-credentials",
    "~/.gem/credentials",
    "~/.local/share/gem/credentials",
    "~/.config/containers/auth.json",
    "~/.terraform.d/credentials.tfrc.json",
    "~/.config/git/credentials",
    "~/.vault-token",
    "~/.local/share/airlock",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    // Root-only secrets a sandbox started by root could otherwise read as owner.
    "/etc/ssl/private",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/security/opasswd",
];
const DEFAULT_PROTECTED: &[&str] = &[
    ".git/hooks/",
    ".git/config",
    ".gitmodules",
    ".airlock/",
    ".claude/",
    ".codex/",
    ".qwen/",
    ".mcp.json",
    ".vscode/",
    ".idea/",
    ".envrc",
];

impl Policy {
    /// The built-in policy, before any file is applied.
    pub fn defaults(cx: &Context) -> Policy {
        let paths = |list: &[&str]| {
            list.iter().map(|raw| Sourced::new(values::expand_home(raw, &cx.home), Source::Default)).collect()
        };
        let limit = |key: LimitKey| Sourced::new(key.default_value(), Source::Default);
        Policy {
            sandbox: SandboxPolicy {
                writable_roots: Vec::new(),
                readable_roots: paths(DEFAULT_READABLE_ROOTS),
                toolchain_roots: paths(DEFAULT_TOOLCHAIN_ROOTS),
                deny_read: paths(DEFAULT_DENY_READ),
                protected: DEFAULT_PROTECTED
                    .iter()
                    .map(|raw| {
                        let kind = if raw.ends_with('/') { PathKind::Dir } else { PathKind::File };
                        let path = PathBuf::from(raw.trim_end_matches('/'));
                        Sourced::new(ProtectedPath { path, kind }, Source::Default)
                    })
                    .collect(),
                allow_unsafe_no_sandbox: Sourced::new(true, Source::Default),
            },
            network: NetworkPolicy {
                mode: Sourced::new(NetworkMode::None, Source::Default),
                allow_domains: Vec::new(),
            },
            limits: Limits {
                timeout_secs: limit(LimitKey::TimeoutSecs),
                memory_mb: limit(LimitKey::MemoryMb),
                processes: limit(LimitKey::Processes),
                file_size_mb: limit(LimitKey::FileSizeMb),
                cpu_secs: limit(LimitKey::CpuSecs),
                output_bytes: limit(LimitKey::OutputBytes),
                tmp_size_mb: limit(LimitKey::TmpSizeMb),
            },
            rules: ToolRules::defaults(),
            agent: AgentPolicy::defaults(),
            mcp: McpPolicy::defaults(),
            managed_ceiling: Ceiling::default(),
            list_sources: ListSources::default(),
            context: cx.clone(),
        }
    }

    /// Loads the effective policy: defaults, then the managed, user and
    /// project files that exist. A file that exists but cannot be read or is
    /// invalid is an error; so is any attempt to widen a ceiling.
    pub fn load(files: &PolicyFiles, cx: &Context) -> Result<Policy, PolicyError> {
        let managed = LayerFile::read(&files.managed, Layer::Managed, cx)?;
        let user = match &files.user {
            Some(path) => LayerFile::read(path, Layer::User, cx)?,
            None => None,
        };
        let project = LayerFile::read(&files.project, Layer::Project, cx)?;

        let mut policy = Policy::defaults(cx);
        if let Some(managed) = &managed {
            layering::apply_managed(&mut policy, managed)?;
        }
        if let Some(user) = &user {
            layering::apply_user(&mut policy, user)?;
        }
        if let Some(project) = &project {
            layering::apply_project(&mut policy, project)?;
        }
        Ok(policy)
    }

    /// `--write DIR`: adds a writable root. It may not be inside a denied
    /// path, and if managed policy set `writable_roots` it must be inside one
    /// of them (or inside the workspace). `DIR` must be absolute or start
    /// with `~`; the front end resolves relative paths against its current
    /// directory.
    pub fn add_writable_root(&mut self, path: &Path) -> Result<(), PolicyError> {
        layering::add_writable_root(self, path)
    }

    /// `--net MODE`: sets the network mode; `proxy` is refused if managed
    /// policy set `none`.
    pub fn set_network_mode(&mut self, mode: NetworkMode) -> Result<(), PolicyError> {
        layering::set_network_mode(self, mode)
    }

    /// `--timeout SECS`: sets the timeout; it may not exceed one set by
    /// managed policy.
    pub fn set_timeout_secs(&mut self, secs: u64) -> Result<(), PolicyError> {
        layering::set_timeout_secs(self, secs)
    }

    /// `--mode MODE` (or a mode chosen during a session): refused unless
    /// `[agent] modes` allows it.
    pub fn check_mode(&self, mode: Mode) -> Result<(), PolicyError> {
        layering::check_mode_allowed(self, mode)
    }

    /// Whether the user config may say `pattern = permission` (what
    /// [`add_workspace_rule`] would write): refused when it would loosen
    /// what managed policy set, so a front end can leave out "allow for this
    /// project" where it cannot work. Nothing is read or written.
    pub fn check_user_rule(&self, kind: RuleKind, pattern: &str, permission: Permission) -> Result<(), PolicyError> {
        let key = kind.table();
        let pattern = match kind {
            RuleKind::Tool => rules::parse_tool_name(pattern),
            RuleKind::Command => rules::parse_command_prefix(pattern),
        }
        .map_err(|p| p.on_command_line(key))?;
        layering::check_user_rule(self, kind, &pattern, permission).map_err(|p| p.on_command_line(key))
    }

    /// The MCP servers that may start, in the order they were defined:
    /// enabled, and when managed policy sets `pinned_only`, pinned. A pinned
    /// server's [`McpServer::digest`] is its pin, for the launcher to compare
    /// with what it is about to run.
    pub fn mcp_servers(&self) -> Vec<(&str, &McpServer)> {
        let mcp = &self.mcp;
        mcp.servers
            .iter()
            .filter(|s| s.enabled.value && (!mcp.pinned_only.value || mcp.pinned.contains_key(&s.name)))
            .map(|s| (s.name.as_str(), s))
            .collect()
    }

    /// Every tool and command rule in force with where it came from (file
    /// and line:column), defaults first, for `/permissions`.
    pub fn rules_with_sources(&self) -> Vec<RuleLine<'_>> {
        self.rules.in_force()
    }

    /// The effective policy as TOML, each value followed by a `# <source>`
    /// comment, for `airlock policy show`. The output is a valid policy file.
    pub fn render(&self) -> String {
        render::render(self)
    }
}

/// `airlock policy check FILE`: parses and validates one file on its own, as
/// the given layer (which decides whether relative paths are allowed).
/// Ceilings from other layers are not checked. A missing file is an error.
pub fn check_file(path: &Path, layer: Layer, cx: &Context) -> Result<(), PolicyError> {
    let text = fs_err::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_owned(), source })?;
    LayerFile::parse(&text, path, layer, cx).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context {
        Context { home: PathBuf::from("/home/u"), workspace: PathBuf::from("/home/u/work") }
    }

    fn paths(list: &[Sourced<PathBuf>]) -> Vec<&Path> {
        list.iter().map(|s| s.value.as_path()).collect()
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let policy = Policy::defaults(&cx());
        let sandbox = &policy.sandbox;
        assert!(sandbox.writable_roots.is_empty());
        assert_eq!(
            paths(&sandbox.readable_roots),
            ["/usr", "/etc", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt"].map(Path::new)
        );
        assert_eq!(paths(&sandbox.toolchain_roots), ["/home/u/.cargo", "/home/u/.rustup"].map(Path::new));
        assert_eq!(sandbox.deny_read.len(), 36);
        let deny = paths(&sandbox.deny_read);
        for expected in [
            "/home/u/.ssh",
            "/home/u/.local/share/airlock",
            "/home/u/.cargo/credentials.toml",
            "/etc/ssh",
            "/etc/ssl/private",
        ] {
            assert!(deny.contains(&Path::new(expected)), "{expected} missing from {deny:?}");
        }
        assert_eq!(sandbox.protected.len(), 11);
        assert_eq!(sandbox.protected[0].value, ProtectedPath { path: ".git/hooks".into(), kind: PathKind::Dir });
        assert_eq!(sandbox.protected[10].value, ProtectedPath { path: ".envrc".into(), kind: PathKind::File });
        assert!(sandbox.allow_unsafe_no_sandbox.value);
        assert_eq!(policy.network.mode.value, NetworkMode::None);
        assert!(policy.network.allow_domains.is_empty());
        let limits: Vec<u64> = LimitKey::ALL.iter().map(|k| policy.limits.get(*k).value).collect();
        assert_eq!(limits, [600, 8192, 4096, 4096, 3600, 1_048_576, 1024]);
        assert!(sandbox.readable_roots.iter().chain(&sandbox.deny_read).all(|s| s.source == Source::Default));
        assert_eq!(policy.limits.tmp_size_mb.source, Source::Default);
    }

    #[test]
    fn sources_display_as_documented() {
        assert_eq!(Source::Default.to_string(), "built-in default");
        assert_eq!(Source::Managed("/etc/a.toml".into()).to_string(), "managed policy /etc/a.toml");
        assert_eq!(Source::User("/u.toml".into()).to_string(), "user config /u.toml");
        assert_eq!(Source::Project("/w/c.toml".into()).to_string(), "project config /w/c.toml");
        assert_eq!(Source::CommandLine.to_string(), "command line");
    }

    #[test]
    fn discover_reads_the_injected_environment() {
        let ws = Path::new("/w");
        let files = PolicyFiles::discover(ws, &|name| match name {
            "AIRLOCK_MANAGED_POLICY" => Some("/tmp/m.toml".into()),
            "XDG_CONFIG_HOME" => Some("/xdg".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        });
        assert_eq!(files.managed, PathBuf::from("/tmp/m.toml"));
        assert_eq!(files.user, Some(PathBuf::from("/xdg/airlock/config.toml")));
        assert_eq!(files.project, PathBuf::from("/w/.airlock/config.toml"));

        let files = PolicyFiles::discover(ws, &|name| match name {
            "XDG_CONFIG_HOME" => Some("relative".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        });
        assert_eq!(files.managed, PathBuf::from("/etc/airlock/policy.toml"));
        assert_eq!(files.user, Some(PathBuf::from("/home/u/.config/airlock/config.toml")));

        let files = PolicyFiles::discover(ws, &|_| None);
        assert_eq!(files.user, None);
    }

    #[test]
    fn allows_host_needs_proxy_mode_and_a_matching_pattern() {
        let mut network = Policy::defaults(&cx()).network;
        network.allow_domains = vec![Sourced::new("*.github.com".to_owned(), Source::Default)];
        assert!(!network.allows_host("api.github.com"));
        network.mode.value = NetworkMode::Proxy;
        assert!(network.allows_host("API.github.com"));
        assert!(!network.allows_host("github.com"));
    }

    #[test]
    fn check_file_validates_one_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs_err::write(&path, "[sandbox]\nwritable_roots = [\"out\"]\n").unwrap();
        assert!(check_file(&path, Layer::Project, &cx()).is_ok());
        let err = check_file(&path, Layer::User, &cx()).unwrap_err();
        assert!(err.to_string().contains(":2:19: sandbox.writable_roots: \"out\" is a relative path"), "{err}");
        let missing = dir.path().join("missing.toml");
        let err = check_file(&missing, Layer::Managed, &cx()).unwrap_err();
        assert!(matches!(&err, PolicyError::Read { path, .. } if *path == missing), "{err}");
    }
}
