//! `airlock wrap -- AGENT ARGS…`: another agent (Claude Code, Codex CLI,
//! Qwen Code, any OpenAI- or Anthropic-compatible tool) contained as
//! airlock's own worker is.
//!
//! This process is the supervisor: it holds the audit log, the real model
//! credential and the network. The agent runs in `airlock sandbox` with a
//! private home (only its own state folder, kept by airlock, shows), a clean
//! environment and a network namespace that holds loopback alone. Two
//! bridges carry its TCP out: one port to the broker (model requests:
//! redacted, recorded, sent with the real key, which the agent never sees)
//! and one to the egress proxy (everything else: refused unless allowlisted,
//! and recorded either way). At the end the workspace's changes go on the
//! record, and the evidence report is printed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Instant;

use airlock_audit::event::Event;
use airlock_gateway::config::{ApiStyle, GatewayConfig, Upstream};
use airlock_gateway::egress::{EgressConfig, EgressProxy, SystemResolver};
use airlock_gateway::egress_audit::AuditRecorder;
use airlock_gateway::server::{Auth, Gateway, serve_unix};
use anyhow::{Context as _, Result, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The broker's port on the sandbox's loopback.
const BROKER_PORT: u16 = 8484;
/// The egress proxy's port on the sandbox's loopback.
const PROXY_PORT: u16 = 8485;

/// How long a snapshot of the workspace may spend reading files; past it,
/// what changed and could not be compared is counted on the record.
const SNAPSHOT_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);

/// The profiles shipped in the binary; `$XDG_CONFIG_HOME/airlock/profiles/NAME.toml` overrides.
const BUILTIN: &[(&str, &str)] = &[
    ("claude", include_str!("../profiles/claude.toml")),
    ("codex", include_str!("../profiles/codex.toml")),
    ("qwen", include_str!("../profiles/qwen.toml")),
    ("gemini", include_str!("../profiles/gemini.toml")),
    ("opencode", include_str!("../profiles/opencode.toml")),
    ("aider", include_str!("../profiles/aider.toml")),
    ("generic", include_str!("../profiles/generic.toml")),
];

#[derive(clap::Args)]
#[command(after_help = "Exit status: the agent's own; 125 when the sandbox refused to start it; 2 invalid \
arguments or configuration.\n\nProfiles: claude, codex, qwen, gemini, opencode, aider, generic (chosen by the program's name unless \
--profile says); $XDG_CONFIG_HOME/airlock/profiles/NAME.toml overrides or adds one.")]
pub struct WrapArgs {
    /// The profile: what the agent needs (state folder, variables, API). Default: by the program's name, else
    /// `generic`.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// A host the agent may reach through the proxy besides the model (`github.com`, `*.pypi.org`; repeatable).
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    allow_domain: Vec<String>,
    /// Also write the evidence report to FILE (`.html`, `.json`, or text).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The model server the broker sends to (instead of models.toml or the profile's vendor API).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The model the agent asks for, where its profile sets one (`{model}`).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// The wire API of --endpoint (default: the profile's).
    #[arg(long, value_enum, value_name = "API")]
    api: Option<WrapApi>,
    /// The environment variable holding the upstream's key (read by the broker; the agent gets a placeholder).
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// The upstreams (default: $XDG_CONFIG_HOME/airlock/models.toml when it exists, in the gateway's format).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A folder the agent may read besides the system, its own installation and the workspace (repeatable).
    #[arg(long = "read", value_name = "DIR")]
    read: Vec<PathBuf>,
    /// A folder the agent may write besides the workspace (repeatable).
    #[arg(long = "write", value_name = "DIR")]
    write: Vec<PathBuf>,
    /// The folder of the audit log (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Kill the agent and everything it started after SECS seconds (0: never).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    timeout: u64,
    /// Leave the agent's own telemetry switches as they are (the profile sets them off by default): to see
    /// in the report what it tries to send. Every attempt is refused and recorded either way.
    #[arg(long)]
    vendor_telemetry: bool,
    /// No summary on standard error at the end.
    #[arg(long)]
    quiet: bool,
    /// The agent and its arguments.
    #[arg(last = true, required = true, value_name = "AGENT")]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, clap::ValueEnum, Deserialize, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum WrapApi {
    Openai,
    Anthropic,
    Gemini,
}

impl WrapApi {
    fn style(self) -> ApiStyle {
        match self {
            WrapApi::Openai => ApiStyle::OpenAi,
            WrapApi::Anthropic => ApiStyle::Anthropic,
            WrapApi::Gemini => ApiStyle::Gemini,
        }
    }
}

fn yes() -> bool {
    true
}

/// What an agent needs to run contained: data, shipped as TOML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    /// What it is for, shown in the report.
    description: String,
    /// Program names that select it.
    #[serde(default)]
    programs: Vec<String>,
    /// The API it speaks.
    api: WrapApi,
    /// Its state folders, relative to the home folder: kept by airlock, shown writable there.
    #[serde(default)]
    state: Vec<String>,
    /// The model it asks for unless --model says (`{model}`).
    model: Option<String>,
    /// Hosts it may reach through the proxy.
    #[serde(default)]
    allow_domains: Vec<String>,
    /// Whether it gets `HTTPS_PROXY` and friends (default true); without, what
    /// it sends past the broker is stopped by the kernel and only its name
    /// lookups are seen.
    #[serde(default = "yes")]
    proxy: bool,
    /// The vendor API the broker uses when nothing else is configured.
    upstream: Option<ProfileUpstream>,
    /// Variables set for it (`{base_url}`, `{proxy}`, `{key}`, `{home}`, `{model}` substituted).
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Its own switches that turn telemetry, error reports and update checks off (unless --vendor-telemetry).
    #[serde(default)]
    telemetry_off: BTreeMap<String, String>,
    /// Files written into its first state folder at every start (same substitutions).
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Appended to those files (or written alone) unless --vendor-telemetry: switches that live in its files.
    #[serde(default)]
    telemetry_off_files: BTreeMap<String, String>,
    /// Keys set at every start in JSON files of its first state folder that
    /// it also writes itself (a JSON object, same substitutions): what else
    /// the file holds stays.
    #[serde(default)]
    json: BTreeMap<String, String>,
    /// Helpers of its installation that must run (relative to the folder of
    /// the program itself, `{arch}` standing for `x64` or `arm64`): one that
    /// its package ships without the execute bit shows as an executable copy.
    #[serde(default)]
    helpers: Vec<String>,
    /// Where no memory cgroup can be made, its processes' address space as a
    /// multiple of the memory budget (default 4; Gemini CLI's WebAssembly
    /// memories need more).
    address_space_factor: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileUpstream {
    base_url: String,
    key_env: String,
}

/// The profile named, or the one whose `programs` holds the command's name, else `generic`.
fn load_profile(name: Option<&str>, program: &Path) -> Result<(String, Profile)> {
    let user_dir = crate::gateway::config_dir()?.join("profiles");
    let read = |name: &str| -> Result<Option<(String, String)>> {
        let path = user_dir.join(format!("{name}.toml"));
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(Some((path.display().to_string(), text)));
        }
        Ok(BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, t)| (format!("built-in profile {n}"), t.to_string())))
    };
    let parse =
        |origin: &str, text: &str| -> Result<Profile> { toml::from_str(text).map_err(|e| anyhow!("{origin}: {e}")) };
    if let Some(name) = name {
        let (origin, text) = read(name)?.ok_or_else(|| {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            anyhow!(
                "no profile {name:?}\nhint: the built-in ones are {}; or write {}",
                known.join(", "),
                user_dir.join(format!("{name}.toml")).display()
            )
        })?;
        return Ok((name.to_string(), parse(&origin, &text)?));
    }
    let base = program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for (builtin, _) in BUILTIN {
        if let Some((origin, text)) = read(builtin)? {
            let profile = parse(&origin, &text)?;
            if profile.programs.contains(&base) {
                return Ok((builtin.to_string(), profile));
            }
        }
    }
    let (origin, text) = read("generic")?.ok_or_else(|| anyhow!("the generic profile is missing"))?;
    Ok(("generic".into(), parse(&origin, &text)?))
}

fn substitute(text: &str, vars: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The program as `PATH` finds it, and the folders it needs to read: its
/// own installation and, for a script, its interpreter's (Node.js from nvm,
/// Python from a virtual environment).
fn installation(program: &Path, home: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let found = if program.components().count() > 1 {
        program.to_path_buf()
    } else {
        on_path(program).ok_or_else(|| anyhow!("{} is not on PATH", program.display()))?
    };
    let canonical = std::fs::canonicalize(&found).with_context(|| format!("{}", found.display()))?;
    let mut roots = Vec::new();
    let mut named = vec![found.clone(), canonical.clone()];
    if let Some(interpreter) = interpreter(&canonical) {
        if let Ok(real) = std::fs::canonicalize(&interpreter) {
            named.push(real);
        }
        named.push(interpreter);
    }
    for p in &named {
        roots.extend(install_roots(p, home));
    }
    roots.sort();
    roots.dedup();
    Ok((found, roots))
}

/// `name` as `PATH` finds it.
fn on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The interpreter a script names on its `#!` line (through `env`, as `PATH` finds it).
fn interpreter(script: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).and_then(|mut f| f.read(&mut head)).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let first = PathBuf::from(words.next()?);
    if first.file_name().is_some_and(|n| n == "env") {
        let name = words.find(|w| !w.starts_with('-'))?;
        return on_path(Path::new(name));
    }
    Some(first)
}

/// What must be readable for the program or interpreter at `p` to run: the
/// outermost `node_modules` it lives in (its package's dependencies and
/// native parts sit beside it); for one in `PREFIX/bin`, the prefix's `bin`
/// and `lib` (and a virtual environment's `pyvenv.cfg`), never the whole
/// prefix, which may be `~/.local` with every other tool's data in it; else
/// its folder. Nothing for the system's own folders, always readable, and
/// never the home folder itself.
fn install_roots(p: &Path, home: &Path) -> Vec<PathBuf> {
    if let Some(modules) = p.ancestors().filter(|a| a.file_name().is_some_and(|n| n == "node_modules")).last() {
        return vec![modules.to_path_buf()];
    }
    let Some(parent) = p.parent() else { return Vec::new() };
    let system = |d: &Path| {
        ["/", "/usr", "/usr/local", "/bin", "/sbin", "/usr/bin", "/usr/local/bin"].iter().any(|s| d == Path::new(s))
    };
    if system(parent) {
        return Vec::new();
    }
    if parent.file_name().is_some_and(|n| n == "bin")
        && let Some(prefix) = parent.parent()
        && !system(prefix)
        && prefix != home
    {
        return ["bin", "lib", "lib64", "pyvenv.cfg"].iter().map(|n| prefix.join(n)).filter(|p| p.exists()).collect();
    }
    if parent == home {
        return vec![p.to_path_buf()];
    }
    vec![parent.to_path_buf()]
}

/// The helpers of the profile that exist without an execute bit, each with
/// an executable copy to show in its place (kept under
/// `$XDG_DATA_HOME/airlock-wrap/helpers/`, made again when the original changes).
fn executable_helpers(profile: &Profile, program: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(folder) = std::fs::canonicalize(program).ok().and_then(|p| p.parent().map(Path::to_path_buf)) else {
        return Ok(Vec::new());
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut shown = Vec::new();
    for helper in &profile.helpers {
        let path = folder.join(helper.replace("{arch}", arch));
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if !meta.is_file() || meta.permissions().mode() & 0o100 != 0 {
            continue;
        }
        let path = std::fs::canonicalize(&path)?;
        use std::os::unix::ffi::OsStrExt;
        let mut id = Sha256::new();
        id.update(path.as_os_str().as_bytes());
        let stamp = (meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec());
        id.update(format!("{stamp:?}").as_bytes());
        let copy = data_home()?.join("airlock-wrap/helpers").join(hex::encode(&id.finalize()[..16]));
        if !copy.is_file() {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let parent = copy.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            airlock_core::beneath::write_nofollow(&copy, &bytes, 0o755)?;
        }
        shown.push((copy, path));
    }
    Ok(shown)
}

/// `$XDG_DATA_HOME`, or `~/.local/share`.
fn data_home() -> Result<PathBuf> {
    Ok(match std::env::var_os("XDG_DATA_HOME").map(PathBuf::from) {
        Some(x) if x.is_absolute() => x,
        _ => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?).join(".local/share"),
    })
}

/// `$XDG_DATA_HOME/airlock-wrap/PROFILE/WORKSPACE`: the agents' own state,
/// kept apart from airlock's data folder (which every sandbox hides), and one
/// per workspace (the first 16 bytes of the SHA-256 of its canonical path):
/// hooks, MCP servers or settings that a hostile repository makes its agent
/// write stay with that repository, and never run in a session on another.
fn state_root(profile: &str, workspace: &Path) -> Result<PathBuf> {
    Ok(data_home()?.join("airlock-wrap").join(profile).join(workspace_key(workspace)))
}

/// The name of a workspace's state folder.
fn workspace_key(workspace: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let canonical = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    hex::encode(&Sha256::digest(canonical.as_os_str().as_bytes())[..16])
}

/// Where airlock keeps what the agent's state folders held when its last
/// session ended: beside them, outside anything the agent can write.
fn state_manifest(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".left.json");
    PathBuf::from(name)
}

/// What the state folders hold now, by folder (as the agent sees it, `~/.claude/`).
type StateDigests = BTreeMap<String, BTreeMap<String, String>>;

/// Differences between what the last session left and what is there now:
/// something other than a session changed the agent's state in between.
fn state_changed_between(left: &StateDigests, now: &StateDigests) -> Vec<String> {
    let mut out = Vec::new();
    for (folder, files) in now {
        let empty = BTreeMap::new();
        let before = left.get(folder).unwrap_or(&empty);
        for (path, digest) in files {
            if before.get(path) != Some(digest) {
                out.push(format!("{folder}{path}"));
            }
        }
        for path in before.keys() {
            if !files.contains_key(path) {
                out.push(format!("{folder}{path} (deleted)"));
            }
        }
    }
    out
}

/// What the record flags for the person at the terminal, after the run.
fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("airlock: warning: {}", printable(w));
    }
}

/// A path or name from the agent's side, safe to print on a terminal.
fn printable(text: &str) -> String {
    airlock_redact::terminal::one_line(text)
}

/// A random placeholder the agent holds instead of the key.
fn placeholder_key(session: &str) -> Result<String> {
    let mut random = [0u8; 16];
    crate::audit::getrandom(&mut random)?;
    Ok(format!("airlock-placeholder-{session}-{}", hex::encode(random)))
}

/// Which upstreams the broker sends to: `--endpoint`, the models file, or
/// the profile's vendor API (refused when its key is not set).
fn broker_config(args: &WrapArgs, profile: &Profile) -> Result<(GatewayConfig, String)> {
    let api = args.api.unwrap_or(profile.api).style();
    if let Some(url) = &args.endpoint {
        let config = airlock_session::route::endpoint_config(url, api, args.api_key_env.as_deref())?;
        return Ok((config, format!("--endpoint {url}")));
    }
    let models = match &args.config {
        Some(p) => Some(p.clone()),
        None => Some(crate::gateway::config_dir()?.join("models.toml")).filter(|p| p.exists()),
    };
    let env = |name: &str| std::env::var(name).ok();
    if let Some(path) = models {
        let config = GatewayConfig::load(&path, &env)?;
        if config.upstreams.is_empty() {
            bail!("{} names no [[upstream]]", path.display());
        }
        return Ok((config, path.display().to_string()));
    }
    let Some(up) = &profile.upstream else {
        bail!(
            "no model server for the broker\nhint: pass --endpoint http://HOST:PORT (and --api-key-env NAME), or write \
             {} with [[upstream]] tables",
            crate::gateway::config_dir()?.join("models.toml").display()
        );
    };
    let key_env = args.api_key_env.as_deref().unwrap_or(&up.key_env);
    let key = std::env::var(key_env).map_err(|_| {
        anyhow!(
            "{key_env} is not set: the broker holds the upstream's key ({}) and the agent gets a placeholder\nhint: \
             export {key_env}=..., or pass --endpoint for a server of your own",
            up.base_url
        )
    })?;
    let mut config = GatewayConfig::parse("", Path::new("profile"), &env)?;
    config.upstreams.push(Upstream {
        name: "vendor".into(),
        api,
        base_url: up.base_url.trim_end_matches('/').to_string(),
        models: vec!["*".into()],
        api_key: Some(key),
    });
    Ok((config, up.base_url.clone()))
}

pub fn run(args: WrapArgs) -> Result<ExitCode> {
    // One malloc arena for the whole supervisor instead of one per thread
    // that allocates (the runtime's workers, the audit writer, the lookups'
    // thread): their allocations are small, and each arena keeps its own
    // high-water mark (about 0.4 MB of peak RSS together).
    // SAFETY: mallopt(3) only changes the allocator's tuning; called before any thread is started.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let program = PathBuf::from(&args.command[0]);
    let (profile_name, profile) = load_profile(args.profile.as_deref(), &program)?;
    let (mut config, upstream_origin) = broker_config(&args, &profile)?;
    config.egress = None;
    let cx = crate::context()?;
    let policy = crate::load_policy(&cx)?;
    let home = std::fs::canonicalize(&cx.home).with_context(|| format!("HOME {}", cx.home.display()))?;
    let (found, install_roots) = installation(&program, &home)?;

    let model = args.model.clone().or_else(|| profile.model.clone()).unwrap_or_default();
    let session = airlock_session::run::new_session_id().context("cannot make a session id")?;
    let key = placeholder_key(&session)?;
    let (root, warnings) = airlock_session::run::run_root().map_err(|e| anyhow!(e))?;
    for warning in warnings {
        eprintln!("airlock: warning: {}", airlock_redact::terminal::sanitize(&warning));
    }
    let run_dir = root.join(&session);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&run_dir)
            .with_context(|| format!("cannot create {}", run_dir.display()))?;
    }
    let _cleanup = airlock_session::run::RemoveOnDrop(run_dir.clone());
    let bind = |name: &str| -> Result<(PathBuf, std::os::unix::net::UnixListener)> {
        let path = run_dir.join(name);
        let (short, _folder) =
            airlock_core::ipc::socket_path(&path).with_context(|| format!("cannot open {}", run_dir.display()))?;
        let listener = std::os::unix::net::UnixListener::bind(&short)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok((path, listener))
    };
    let (broker_sock, broker_listener) = bind("broker.sock")?;
    let (proxy_sock, proxy_listener) = bind("egress.sock")?;
    let dns_sock = run_dir.join("dns.sock");
    let dns_log = {
        let (short, _folder) =
            airlock_core::ipc::socket_path(&dns_sock).with_context(|| format!("cannot open {}", run_dir.display()))?;
        std::os::unix::net::UnixDatagram::bind(&short)
            .with_context(|| format!("cannot listen on {}", dns_sock.display()))?
    };

    // The agent's own state, where it looks for it: this workspace's own.
    let state = state_root(&profile_name, &cx.workspace)?;
    let mut home_binds = Vec::new();
    // Records made before the session's start is on the record.
    let mut start_events: Vec<Event> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut state_folders: Vec<(PathBuf, String)> = Vec::new();
    for rel in &profile.state {
        let rel = rel.trim_start_matches('/');
        let kept = state.join(rel);
        std::fs::create_dir_all(&kept).with_context(|| format!("cannot create {}", kept.display()))?;
        state_folders.push((kept.clone(), format!("~/{}/", rel.trim_end_matches('/'))));
        home_binds.push((kept, home.join(rel)));
    }
    let manifest = state_manifest(&state);
    let state_now = |budget| -> Vec<airlock_core::snapshot::Snapshot> {
        state_folders.iter().map(|(dir, _)| airlock_core::snapshot::Snapshot::take(dir, budget)).collect()
    };
    let digests_of = |snaps: &[airlock_core::snapshot::Snapshot]| -> StateDigests {
        state_folders.iter().zip(snaps).map(|((_, shown), snap)| (shown.clone(), snap.digests())).collect()
    };
    // What the last session left: anything else found now was changed by
    // something outside a session (another process, another tool).
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        let left: StateDigests = serde_json::from_str(&text).unwrap_or_default();
        for path in state_changed_between(&left, &digests_of(&state_now(SNAPSHOT_BUDGET))) {
            warnings.push(format!("the agent's state changed since its last session: {path}"));
            start_events.push(Event::PolicyViolation {
                rule: "wrap.state_changed_between_sessions".into(),
                detail: format!("{path} differs from what the last session left ({})", state.display()),
            });
        }
    }
    // The profile's files, written without following anything the agent
    // left there (a link to the user's files is replaced, and recorded).
    if let Some((kept, shown)) = state_folders.first() {
        let vars = vars_for(&home, &key, &model);
        let switches = profile.telemetry_off_files.iter().filter(|_| !args.vendor_telemetry);
        let mut files: BTreeMap<&String, String> = BTreeMap::new();
        for (file, text) in profile.files.iter().chain(switches) {
            files.entry(file).or_default().push_str(&substitute(text, &vars));
        }
        for (file, text) in files {
            let replaced = airlock_core::beneath::write_beneath(kept, Path::new(file), text.as_bytes(), 0o600)?;
            if let airlock_core::beneath::Replaced::Link(target) = replaced {
                let detail = format!("{shown}{file} was a symbolic link to {target}; replaced by the profile's file");
                warnings.push(detail.clone());
                start_events.push(Event::PolicyViolation { rule: "wrap.state_link".into(), detail });
            }
        }
        for (file, patch) in &profile.json {
            let patch: serde_json::Value = serde_json::from_str(&substitute(patch, &vars))
                .with_context(|| format!("profile {profile_name}: json.{file:?} is not JSON"))?;
            let (text, found) = merged_json(kept, Path::new(file), patch)?;
            if let Some(Replaced { what, planted }) = found {
                let detail = format!("{shown}{file} was {what}; the profile's keys were written in its place");
                warnings.push(detail.clone());
                if planted {
                    start_events.push(Event::PolicyViolation { rule: "wrap.state_link".into(), detail });
                }
            }
            airlock_core::beneath::write_beneath(kept, Path::new(file), &text, 0o600)?;
        }
    }
    let state_before = state_now(SNAPSHOT_BUDGET);

    let mut allow_domains = profile.allow_domains.clone();
    allow_domains.extend(args.allow_domain.iter().cloned());
    if policy.network.mode.value == airlock_policy::NetworkMode::Proxy {
        allow_domains.extend(policy.network.allow_domains.iter().map(|d| d.value.clone()));
    }

    let audit_paths = crate::audit::paths(args.dir.clone())?;
    let log = crate::audit::open_log(&audit_paths)?;
    let writer = airlock_audit::writer::AuditWriter::spawn(log)?;
    let audit = writer.handle();
    let policy_digest = hex::encode(Sha256::digest(policy.render().as_bytes()));
    let argv: Vec<String> = args.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let destinations: Vec<String> = config.upstreams.iter().map(|u| format!("{} {}", u.name, u.base_url)).collect();
    audit.append(
        &session,
        vec![Event::SessionStart {
            policy_digest: policy_digest.clone(),
            model_endpoint: format!(
                "wrap {} ({}, profile {profile_name}) via broker to {} (from {upstream_origin}); proxy allows [{}]",
                found.display(),
                profile.description,
                destinations.join(", "),
                allow_domains.join(", ")
            ),
            airlock_version: env!("CARGO_PKG_VERSION").into(),
            user: std::env::var("USER").unwrap_or_else(|_| format!("uid:{}", crate::gateway::getuid())),
            host: crate::audit::host(),
            workspace: cx.workspace.display().to_string(),
        }],
    )?;
    if !start_events.is_empty() {
        audit.append(&session, std::mem::take(&mut start_events))?;
    }
    // What the last session here left: files untouched since are not read again.
    let saved_snapshot = state_manifest(&state).with_extension("workspace.json");
    let previous = std::fs::read(&saved_snapshot)
        .map(|b| airlock_core::snapshot::Snapshot::from_json(&b, &cx.workspace))
        .unwrap_or_default();
    let before = airlock_core::snapshot::Snapshot::take_after(&cx.workspace, &previous, SNAPSHOT_BUDGET);
    drop(previous);

    // The agent, in the sandbox.
    let exe = std::env::current_exe().context("cannot find the airlock binary")?;
    let proxy_url = format!("http://127.0.0.1:{PROXY_PORT}");
    let home_str = home.display().to_string();
    let vars = vars_for(&home, &key, &model);
    let switches = profile.telemetry_off.iter().filter(|_| !args.vendor_telemetry);
    let mut env: BTreeMap<String, String> =
        profile.env.iter().chain(switches).map(|(k, v)| (k.clone(), substitute(v, &vars))).collect();
    if profile.proxy {
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"] {
            env.insert(name.into(), proxy_url.clone());
        }
        for name in ["NO_PROXY", "no_proxy"] {
            env.insert(name.into(), "127.0.0.1,localhost".into());
        }
        // Node.js's own fetch takes the proxy from the environment only when asked.
        env.insert("NODE_USE_ENV_PROXY".into(), "1".into());
    }
    let mut sandbox = Command::new(&exe);
    sandbox
        .arg("sandbox")
        .arg("--private-home")
        .arg("--bridge")
        .arg(format!("{BROKER_PORT}={}", broker_sock.display()))
        .arg("--bridge")
        .arg(format!("{PROXY_PORT}={}", proxy_sock.display()))
        .arg("--dns-log")
        .arg(&dns_sock);
    if args.timeout > 0 {
        sandbox.arg("--timeout").arg(args.timeout.to_string());
    }
    for (src, dst) in &home_binds {
        sandbox.arg("--home-bind").arg(format!("{}:{}", src.display(), dst.display()));
    }
    for dir in install_roots.iter().chain(&args.read) {
        sandbox.arg("--read").arg(dir);
    }
    for dir in &args.write {
        sandbox.arg("--write").arg(dir);
    }
    if let Some(factor) = profile.address_space_factor {
        sandbox.arg("--address-space-factor").arg(factor.to_string());
    }
    for (copy, original) in executable_helpers(&profile, &found)? {
        sandbox.arg("--show-file").arg(format!("{}:{}", copy.display(), original.display()));
    }
    for name in env.keys() {
        sandbox.arg("--env").arg(name);
    }
    sandbox.arg("--").arg(&found).args(&args.command[1..]);
    sandbox.envs(&env).env("HOME", &home_str).current_dir(&cx.workspace).stdin(Stdio::inherit());
    // Whatever the caller's environment holds (its keys included) stays here:
    // the sandbox passes only its allowlist and the profile's variables.
    let started = Instant::now();
    let lookups = record_lookups(dns_log, audit.clone(), session.clone())?;
    let mut child = sandbox.spawn().with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id() as libc::pid_t;
    let broker = (|| -> Result<_> {
        // The broker and the proxy: the only code of this session that opens a
        // connection. Built while the agent starts (their sockets are bound
        // already: the agent's first connections wait in the backlog): compiling
        // the scanner and the HTTP client costs tens of milliseconds.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let scanner = Arc::new(airlock_redact::Scanner::builtin());
        let auth = Auth::Session { uid: crate::gateway::getuid(), session: session.clone(), key: Some(key.clone()) };
        // The turns and the tool calls of the agent, as its requests carry them: the record of a session.
        let gw = Gateway::new(config, auth, audit.clone(), scanner)?.recording_conversations();
        let egress = EgressConfig { allow_domains: allow_domains.clone(), ..EgressConfig::default() };
        let recorder = Arc::new(AuditRecorder::new(audit.clone(), session.clone()));
        let proxy = EgressProxy::new(egress, recorder, Arc::new(SystemResolver));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let broker_task = runtime.spawn(serve_unix(gw, broker_listener, until_stopped(stopped.clone())));
        let proxy_task = {
            let _guard = runtime.enter();
            proxy_listener.set_nonblocking(true)?;
            let listener = tokio::net::UnixListener::from_std(proxy_listener)?;
            runtime.spawn(proxy.serve_unix(listener, until_stopped(stopped.clone())))
        };

        Ok((runtime, stop, broker_task, proxy_task))
    })();
    let (runtime, stop, broker_task, proxy_task) = match broker {
        Ok(parts) => parts,
        Err(e) => {
            // The agent started but its model is out of reach: end its whole
            // tree (the sandbox passes SIGTERM on, as for a signal sent here).
            // SAFETY: kill(2) on our own child's pid, which is not reaped until `wait` below returns.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = child.wait();
            return Err(e);
        }
    };
    // Signals sent to this process alone (a terminal's Ctrl-C reaches both)
    // go on to the sandbox, which ends the agent's whole tree.
    let forward = runtime.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
                _ = hup.recv() => libc::SIGHUP,
            };
            // SAFETY: kill(2) on our own child's pid, which is not reaped until `wait` below returns.
            unsafe { libc::kill(pid, sig) };
        }
    });
    let status = child.wait().context("cannot wait for the sandbox")?;
    let elapsed = started.elapsed();
    forward.abort();
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));

    let _ = stop.send(true);
    lookups.stop();
    runtime.block_on(async {
        let _ = broker_task.await;
        let _ = proxy_task.await;
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));

    let after = airlock_core::snapshot::Snapshot::take_after(&cx.workspace, &before, SNAPSHOT_BUDGET);
    let changes = before.changes(&after, "");
    for path in &changes.git_control {
        warnings.push(format!("a git control file changed (it can run code at your next git command): {path}"));
    }
    if changes.not_compared > 0 {
        warnings.push(format!(
            "{} changed files could not be compared by content (recorded as changed)",
            changes.not_compared
        ));
    }
    let mut events: Vec<Event> = changes.events;
    let state_after = state_now(SNAPSHOT_BUDGET);
    for ((_, shown), (b, a)) in state_folders.iter().zip(state_before.iter().zip(&state_after)) {
        events.extend(b.changes(a, shown).events);
    }
    // What this session leaves, for the next start to compare against.
    if let (Some(bytes), Some(parent)) = (after.to_json(), saved_snapshot.parent()) {
        let saved = std::fs::create_dir_all(parent)
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(airlock_core::beneath::write_nofollow(&saved_snapshot, &bytes, 0o600)?));
        if let Err(e) = saved {
            tracing::warn!("the workspace's snapshot could not be kept for the next session: {e}");
        }
    }
    if !state_folders.is_empty() {
        let left = serde_json::to_vec(&digests_of(&state_after))?;
        if let Err(e) = airlock_core::beneath::write_nofollow(&manifest, &left, 0o600) {
            warnings.push(format!("the agent's state could not be noted for the next session: {e}"));
        }
    }
    events.push(Event::Command {
        argv,
        cwd: cx.workspace.display().to_string(),
        sandbox_digest: policy_digest,
        exit_status: i64::from(code),
        duration_ms: elapsed.as_millis() as u64,
        output_digest: String::new(),
        output_bytes: 0,
    });
    let reason = match code {
        125 => "the sandbox refused to start the agent".to_string(),
        c => format!("the agent exited with status {c}"),
    };
    events.push(Event::SessionEnd { reason });
    audit.append(&session, events)?;
    drop(audit);
    writer.close()?;

    // The report reads and verifies the whole log: only when someone will see it.
    if args.quiet && args.report.is_none() {
        print_warnings(&warnings);
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    let report = crate::report::build(args.dir.clone(), &session)?;
    if let Some(path) = &args.report {
        let text = match path.extension().and_then(|e| e.to_str()) {
            Some("html") | Some("htm") => report.html(),
            Some("json") => serde_json::to_string_pretty(&report.json())?,
            _ => report.text(),
        };
        // The path may be in the workspace, where the agent could have left a link.
        airlock_core::beneath::write_nofollow(path, text.as_bytes(), 0o644)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    print_warnings(&warnings);
    if !args.quiet {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let text = report.text();
        if color {
            eprint!("\x1b[2m{text}\x1b[0m");
        } else {
            eprint!("{text}");
        }
        eprintln!("airlock: the whole record: airlock report {session} --output report.html");
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The thread that puts each name the agent looked up on the record (once
/// per name: a retry loop does not fill the log).
struct Lookups {
    done: Arc<std::sync::atomic::AtomicBool>,
    /// The thread's socket, shut for reading to wake it at the end.
    socket: std::os::unix::net::UnixDatagram,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lookups {
    /// Stops after what has arrived is recorded: at once, not at the
    /// thread's next wake-up.
    fn stop(mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        // Datagrams already queued are still received; then a read returns 0.
        let _ = self.socket.shutdown(std::net::Shutdown::Read);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn record_lookups(
    socket: std::os::unix::net::UnixDatagram,
    audit: airlock_audit::writer::AuditHandle,
    session: String,
) -> Result<Lookups> {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let waker = socket.try_clone()?;
    let thread = std::thread::Builder::new().name("dns-log".into()).spawn(move || {
        let mut seen = std::collections::HashSet::new();
        let mut repeats: u64 = 0;
        // A name is at most 253 bytes, each escaped as up to four.
        let mut buf = [0u8; 2048];
        loop {
            // Everything waiting, in one record: the sandbox's resolver
            // holds each lookup's answer until its name is taken here.
            let mut events = Vec::new();
            let mut first = true;
            while events.len() < 1000 {
                let got = if first { socket.recv(&mut buf) } else { recv_now(&socket, &mut buf) };
                first = false;
                // 0: shut by `stop` (an empty datagram carries no name either).
                let Ok(n @ 1..) = got else { break };
                match lookup_event(&buf[..n], &mut seen) {
                    Some(event) => events.push(event),
                    None => repeats += 1,
                }
            }
            if !events.is_empty() {
                if let Err(e) = audit.append(&session, events) {
                    tracing::error!("lookups could not be recorded: {e}");
                }
            } else if flag.load(std::sync::atomic::Ordering::SeqCst) {
                // Names are recorded once; how often they were asked again is counted.
                if repeats > 0 {
                    let event = Event::BlockedEgress {
                        destination: "dns:(repeated names)".into(),
                        reason: format!("{repeats} more lookups of names already recorded, each answered REFUSED"),
                        bytes: 0,
                    };
                    if let Err(e) = audit.append(&session, vec![event]) {
                        tracing::error!("lookups could not be recorded: {e}");
                    }
                }
                return;
            }
        }
    })?;
    Ok(Lookups { done, socket: waker, thread: Some(thread) })
}

/// A datagram if one is waiting, without waiting.
fn recv_now(socket: &std::os::unix::net::UnixDatagram, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: recv into our own buffer on a socket we hold.
    let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// The record of one message from the sandbox's resolver: a name looked up
/// (once per name: a retry loop does not fill the log), or `#dropped N`, the
/// exact count of lookups whose names could not be told.
fn lookup_event(message: &[u8], seen: &mut std::collections::HashSet<String>) -> Option<Event> {
    let text = String::from_utf8_lossy(message).into_owned();
    if let Some(count) = text.strip_prefix("#dropped ") {
        return Some(Event::BlockedEgress {
            destination: "dns:(names not recorded)".into(),
            reason: format!(
                "{} lookups inside the sandbox came faster than they could be recorded and their names are not on \
                 the record; none was answered with an address",
                count.trim()
            ),
            bytes: 0,
        });
    }
    if !seen.insert(text.clone()) {
        return None;
    }
    Some(Event::BlockedEgress {
        destination: format!("dns:{text}"),
        reason: "a name looked up inside the sandbox, answered REFUSED: only the broker and its proxy lead out".into(),
        bytes: message.len() as u64,
    })
}

/// The largest state file merged: the agents' own JSON state stays far below.
const JSON_STATE_LIMIT: u64 = 64 << 20;

/// What stood where a JSON state file was expected, replaced.
struct Replaced {
    what: String,
    /// A link or a pipe: something put there, not a file the agent wrote.
    planted: bool,
}

/// `base/rel` with `patch`'s keys set in it (objects merged key by key,
/// anything else replaced), and what stood there instead of a JSON object
/// when that was replaced: a link or a pipe (planted: true), a file too
/// large, or text that is not JSON (kept beside it as `NAME.airlock-unreadable`).
fn merged_json(base: &Path, rel: &Path, patch: serde_json::Value) -> Result<(Vec<u8>, Option<Replaced>)> {
    use airlock_core::beneath::{Found, read_beneath, write_beneath};
    let empty = || serde_json::Value::Object(Default::default());
    let (mut value, found) = match read_beneath(base, rel, JSON_STATE_LIMIT)? {
        Found::Nothing => (empty(), None),
        Found::Link(target) => {
            (empty(), Some(Replaced { what: format!("a symbolic link to {target}"), planted: true }))
        }
        Found::NotAFile => (empty(), Some(Replaced { what: "not a regular file".into(), planted: true })),
        Found::TooLarge(n) => {
            (empty(), Some(Replaced { what: format!("{n} bytes, more than airlock reads"), planted: false }))
        }
        Found::File(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if v.is_object() => (v, None),
            _ => {
                let mut aside = rel.as_os_str().to_owned();
                aside.push(".airlock-unreadable");
                write_beneath(base, Path::new(&aside), &bytes, 0o600)?;
                let kept = Path::new(&aside).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                (empty(), Some(Replaced { what: format!("not a JSON object (kept as {kept})"), planted: false }))
            }
        },
    };
    merge_json(&mut value, patch);
    Ok((serde_json::to_vec_pretty(&value)?, found))
}

/// Sets `patch`'s keys in `into`: objects key by key, anything else replaced.
fn merge_json(into: &mut serde_json::Value, patch: serde_json::Value) {
    match (into, patch) {
        (serde_json::Value::Object(into), serde_json::Value::Object(patch)) => {
            for (k, v) in patch {
                merge_json(into.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (into, patch) => *into = patch,
    }
}

/// What `{name}` in a profile stands for.
fn vars_for(home: &Path, key: &str, model: &str) -> Vec<(&'static str, String)> {
    // The key's last 20 characters: how Claude Code remembers a key someone approved.
    let tail = key.get(key.len().saturating_sub(20)..).unwrap_or(key);
    vec![
        ("key_tail", tail.to_string()),
        ("model", model.to_string()),
        ("base_url", format!("http://127.0.0.1:{BROKER_PORT}")),
        ("proxy", format!("http://127.0.0.1:{PROXY_PORT}")),
        ("key", key.to_string()),
        ("home", home.display().to_string()),
    ]
}
