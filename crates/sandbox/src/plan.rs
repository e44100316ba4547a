//! The filesystem view of a sandbox as data: which mounts make up its root
//! and which Landlock rules confine it. Both are computed by pure functions
//! from the spec and a snapshot of what the host paths are.

use std::path::{Component, Path, PathBuf};

use airlock_policy::PathKind;

use crate::SandboxError;
use crate::spec::SandboxSpec;

/// What a host path is, as far as planning cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file (or anything else that is not a directory).
    File,
    /// A symbolic link, with its fully resolved target (`None` if dangling).
    Symlink(Option<PathBuf>),
    /// Nothing there.
    Missing,
}

/// How a bind mount may be used inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only, no setuid, no devices.
    ReadOnly,
    /// Writable, no setuid, no devices.
    ReadWrite,
    /// A device node: writable, devices allowed, no setuid.
    Device,
}

/// One step in building the sandbox's root. Paths are as seen inside the
/// sandbox, which are the same as on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// Bind the host path at the same place (recursively).
    Bind {
        /// Host and sandbox path.
        path: PathBuf,
        /// Read-only or writable.
        access: Access,
    },
    /// Bind a host folder at another place inside, writable (an agent's own
    /// state folder at the path it expects, in a private home).
    BindAt {
        /// The host folder.
        source: PathBuf,
        /// Where it shows inside.
        target: PathBuf,
    },
    /// A symbolic link in the new root.
    Symlink {
        /// Where the link is.
        link: PathBuf,
        /// What it points at.
        target: PathBuf,
    },
    /// A fresh, writable tmpfs.
    Tmpfs {
        /// Mount point.
        path: PathBuf,
        /// Size limit.
        bytes: u64,
    },
    /// A new procfs for the sandbox's pid namespace, at `/proc`.
    Proc,
    /// A new devpts instance at `/dev/pts`.
    Devpts,
    /// Hide a denied file behind an empty read-only file.
    MaskFile {
        /// The denied file.
        path: PathBuf,
    },
    /// Hide a denied folder behind an empty read-only folder.
    MaskDir {
        /// The denied folder.
        path: PathBuf,
    },
    /// Show a read-only copy of a file with its secrets taken out (cargo's
    /// configuration without its registry tokens).
    Replace {
        /// The file.
        path: PathBuf,
        /// What shows instead.
        contents: String,
    },
    /// Show a host file, read-only, in place of a file inside a readable
    /// root: an executable copy of a helper that an agent's installation
    /// ships without its execute bit.
    ShowFile {
        /// The copy on the host.
        source: PathBuf,
        /// The file it shows at (which exists, inside a readable root).
        target: PathBuf,
    },
    /// Make a mount point read-only once everything beneath it is in place.
    ReadOnly {
        /// The mount point.
        path: PathBuf,
    },
}

impl MountOp {
    fn path(&self) -> &Path {
        match self {
            MountOp::Bind { path, .. }
            | MountOp::Tmpfs { path, .. }
            | MountOp::MaskFile { path }
            | MountOp::MaskDir { path }
            | MountOp::Replace { path, .. }
            | MountOp::ReadOnly { path } => path,
            MountOp::Symlink { link, .. } => link,
            MountOp::BindAt { target, .. } | MountOp::ShowFile { target, .. } => target,
            MountOp::Proc => Path::new("/proc"),
            MountOp::Devpts => Path::new("/dev/pts"),
        }
    }
}

/// A protected path that does not exist yet: airlock creates an empty one
/// before the command runs so that a read-only mount can cover it, and removes
/// it afterwards if it is still empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Absolute host path.
    pub path: PathBuf,
    /// Folder or file.
    pub kind: PathKind,
    /// What a file placeholder holds (it is removed only if it still does).
    pub contents: &'static str,
}

/// Access granted by a Landlock rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Read files, list folders, execute.
    Read,
    /// Everything, including create, remove, rename and truncate.
    ReadWrite,
    /// Read and write device files, and their ioctls (`/dev`).
    Device,
}

/// One Landlock rule: a path and what is allowed beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockRule {
    /// Absolute path inside the sandbox.
    pub path: PathBuf,
    /// Allowed access beneath it.
    pub grant: Grant,
}

/// The whole filesystem plan of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Empty protected paths to create before the run.
    pub placeholders: Vec<Placeholder>,
    /// Mount steps, in order.
    pub mounts: Vec<MountOp>,
    /// Landlock rules; everything else is denied.
    pub landlock: Vec<LandlockRule>,
}

/// The device nodes of the sandbox's minimal `/dev`.
pub const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];

/// The resolver configuration, hidden when the sandbox answers lookups itself.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Computes the plan from what `host` says about the host's files (see
/// [`crate::host::HostFs`]; a bare `Fn(&Path) -> Node` answers what paths
/// are and finds nothing else).
pub fn plan(spec: &SandboxSpec, host: &dyn Host) -> Result<Plan, SandboxError> {
    let node = &|p: &Path| host.node(p);
    let denied = |p: &Path| spec.deny_read.iter().any(|d| p.starts_with(d));
    let resolve = |p: &Path| -> Option<PathBuf> {
        match node(p) {
            Node::Dir | Node::File => Some(p.to_path_buf()),
            Node::Symlink(target) => target,
            Node::Missing => None,
        }
    };
    if let Some(d) = spec.deny_read.iter().find(|d| spec.workspace.starts_with(d)) {
        return Err(SandboxError::Policy(format!(
            "the workspace {} is inside the read-denied path {}",
            spec.workspace.display(),
            d.display()
        )));
    }

    let mut mounts = Vec::new();
    let mut landlock = Vec::new();
    let mut bound: Vec<PathBuf> = vec![spec.workspace.clone()];
    mounts.push(MountOp::Bind { path: spec.workspace.clone(), access: Access::ReadWrite });
    landlock.push(LandlockRule { path: spec.workspace.clone(), grant: Grant::ReadWrite });

    // Writable roots first, so that the same path listed as readable stays writable.
    let roots = spec
        .writable_roots
        .iter()
        .map(|r| (r, Access::ReadWrite, Grant::ReadWrite))
        .chain(spec.readable_roots.iter().map(|r| (r, Access::ReadOnly, Grant::Read)));
    let mut symlinks = Vec::new();
    for (root, access, grant) in roots {
        let Some(target) = resolve(root) else {
            continue;
        };
        if denied(&target) || target == Path::new("/") {
            continue;
        }
        if &target != root {
            symlinks.push((root.clone(), target.clone()));
        }
        // Already visible through a root bound before it (writable roots
        // come first, so a writable root inside a readable one is kept).
        if bound.iter().any(|b| target.starts_with(b)) {
            continue;
        }
        mounts.push(MountOp::Bind { path: target.clone(), access });
        landlock.push(LandlockRule { path: target.clone(), grant });
        bound.push(target);
    }
    // A symlinked root (such as /lib -> usr/lib) appears as the same link,
    // unless the link already shows through another bind.
    for (link, target) in symlinks {
        let shows_through = link.parent().is_some_and(|parent| bound.iter().any(|b| parent.starts_with(b)));
        if !shows_through && !bound.contains(&link) {
            mounts.push(MountOp::Symlink { link, target });
        }
    }

    // A private home under everything bound inside it (mounts are sorted
    // parents first below).
    if let Some(home) = &spec.home_view {
        if home.parent().is_none() || denied(home) {
            return Err(SandboxError::Policy(format!("{} cannot be a private home", home.display())));
        }
        mounts.push(MountOp::Tmpfs { path: home.clone(), bytes: spec.limits.tmp_bytes });
        landlock.push(LandlockRule { path: home.clone(), grant: Grant::ReadWrite });
        for (source, target) in &spec.home_binds {
            if !target.starts_with(home) || target == home || denied(source) {
                return Err(SandboxError::Policy(format!(
                    "{} cannot show at {}: the source must not be read-denied and the target must be inside the \
                     private home {}",
                    source.display(),
                    target.display(),
                    home.display()
                )));
            }
            mounts.push(MountOp::BindAt { source: source.clone(), target: target.clone() });
            landlock.push(LandlockRule { path: target.clone(), grant: Grant::ReadWrite });
        }
    } else if !spec.home_binds.is_empty() {
        return Err(SandboxError::Policy("folders can be shown at other places only in a private home".into()));
    }

    // Files shown in place of others inside the readable roots.
    for (source, target) in &spec.file_binds {
        let inside_root = bound.iter().any(|b| target.starts_with(b) && b != &spec.workspace);
        if denied(source) || denied(target) || !inside_root || node(target) != Node::File || node(source) != Node::File
        {
            return Err(SandboxError::Policy(format!(
                "{} cannot show at {}: both must be files, neither read-denied, and the target inside a readable root \
                 other than the workspace",
                source.display(),
                target.display()
            )));
        }
        mounts.push(MountOp::ShowFile { source: source.clone(), target: target.clone() });
    }

    // The private /tmp, /proc and a minimal /dev.
    mounts.push(MountOp::Tmpfs { path: "/tmp".into(), bytes: spec.limits.tmp_bytes });
    landlock.push(LandlockRule { path: "/tmp".into(), grant: Grant::ReadWrite });
    mounts.push(MountOp::Proc);
    landlock.push(LandlockRule { path: "/proc".into(), grant: Grant::Read });
    mounts.push(MountOp::Tmpfs { path: "/dev".into(), bytes: 64 * 1024 });
    for dev in DEVICES {
        mounts.push(MountOp::Bind { path: dev.into(), access: Access::Device });
    }
    mounts.push(MountOp::Devpts);
    mounts.push(MountOp::Tmpfs { path: "/dev/shm".into(), bytes: spec.limits.tmp_bytes });
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        mounts.push(MountOp::Symlink { link: link.into(), target: target.into() });
    }
    landlock.push(LandlockRule { path: "/dev".into(), grant: Grant::Device });
    landlock.push(LandlockRule { path: "/dev/shm".into(), grant: Grant::ReadWrite });

    // Lookups go to the sandbox's own resolver: an empty resolv.conf means
    // 127.0.0.1 to every resolver.
    let resolv = match (&spec.dns_log, node(Path::new(RESOLV_CONF))) {
        (None, _) => None,
        (Some(_), Node::File) => Some(PathBuf::from(RESOLV_CONF)),
        (Some(_), Node::Symlink(Some(target))) => Some(target),
        (Some(_), _) => None,
    };
    if let Some(path) = resolv.filter(|p| bound.iter().any(|b| p.starts_with(b))) {
        mounts.push(MountOp::MaskFile { path });
    }

    // Denied paths that show through a bound root are masked.
    for deny in &spec.deny_read {
        if !bound.iter().any(|b| deny.starts_with(b)) {
            continue; // not in the sandbox's view at all
        }
        match node(deny) {
            Node::Dir => mounts.push(MountOp::MaskDir { path: deny.clone() }),
            Node::File => mounts.push(MountOp::MaskFile { path: deny.clone() }),
            // `deny_read` holds canonical paths, so a link here is dangling or racing: refuse.
            Node::Symlink(_) => {
                return Err(SandboxError::Policy(format!(
                    "the read-denied path {} changed into a symbolic link while planning",
                    deny.display()
                )));
            }
            Node::Missing => {}
        }
    }

    // Host sockets and pipes, and for a root caller what is not world-readable,
    // in the roots that are walked (see `walked_roots`).
    let skip = walk_skips(spec);
    for root in walked_roots(&bound[1..], node) {
        for (path, exposed) in host.exposed(&root, &skip) {
            // Inside a denied folder it is masked already; above a bound root
            // a mask would cover that root.
            if denied(&path) || bound.iter().any(|b| b.starts_with(&path)) {
                continue;
            }
            // A socket the caller hands over on purpose (its own broker).
            if exposed == Exposed::Endpoint && spec.sockets.contains(&path) {
                continue;
            }
            mounts.push(match exposed {
                Exposed::PrivateDir => MountOp::MaskDir { path },
                Exposed::PrivateFile | Exposed::Endpoint => MountOp::MaskFile { path },
            });
        }
    }

    // Registry tokens in cargo's configuration.
    for path in cargo_configs(spec) {
        if denied(&path) || !bound[1..].iter().any(|b| path.starts_with(b)) || node(&path) != Node::File {
            continue;
        }
        mounts.push(match host.read(&path).map(|text| without_registry_tokens(&text)) {
            Some(Ok(None)) => continue,
            Some(Ok(Some(contents))) if contents.len() <= MAX_REPLACED_BYTES => MountOp::Replace { path, contents },
            // Unreadable, too big or not TOML: hidden whole.
            _ => MountOp::MaskFile { path },
        });
    }

    // Protected paths in the workspace, then git's control files wherever
    // a repository lies in a writable place.
    let mut placeholders = Vec::new();
    for protected in &spec.protected {
        let target = Target {
            path: spec.workspace.join(&protected.path),
            kind: protected.kind,
            when_missing: Missing::Placeholder(""),
        };
        protect(&spec.workspace, &target, node, &mut mounts, &mut placeholders)?;
    }
    let writable: Vec<PathBuf> = std::iter::once(spec.workspace.clone())
        .chain(spec.writable_roots.iter().filter_map(|r| resolve(r)).filter(|t| !denied(t) && t != Path::new("/")))
        .collect();
    for target in git_surface(spec, host, &writable)? {
        if let Some(base) = writable.iter().find(|w| target.path.starts_with(w)) {
            protect(base, &target, node, &mut mounts, &mut placeholders)?;
        }
    }

    mounts.push(MountOp::ReadOnly { path: "/dev".into() });
    // Parents before children; the sort is stable, so equal depths keep their order.
    mounts.sort_by_key(|m| match m {
        MountOp::ReadOnly { .. } => usize::MAX,
        other => depth(other.path()),
    });
    let mut seen = Vec::with_capacity(mounts.len());
    mounts.retain(|m| {
        let new = !seen.contains(m);
        if new {
            seen.push(m.clone());
        }
        new
    });
    Ok(Plan { placeholders, mounts, landlock })
}

/// A path that must stay read-only, and what to do if it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// Absolute host path.
    path: PathBuf,
    /// Folder or file.
    kind: PathKind,
    /// Whether a missing one gets a placeholder.
    when_missing: Missing,
}

/// What a missing protected path becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// An empty folder, or a file with these contents.
    Placeholder(&'static str),
    /// Nothing: git reads it only where something protected points at it.
    Absent,
}

/// Plans the read-only cover of one protected path inside the writable
/// `base`: every existing folder on the way is bound onto itself so it
/// cannot be renamed away (a mount point cannot be renamed), and the first
/// missing component gets a placeholder.
fn protect(
    base: &Path,
    target: &Target,
    node: &dyn Fn(&Path) -> Node,
    mounts: &mut Vec<MountOp>,
    placeholders: &mut Vec<Placeholder>,
) -> Result<(), SandboxError> {
    let relative = target.path.strip_prefix(base).unwrap_or(&target.path);
    let components: Vec<Component> = relative.components().collect();
    let mut path = base.to_path_buf();
    for (i, component) in components.iter().enumerate() {
        let Component::Normal(name) = component else {
            return Err(SandboxError::Policy(format!(
                "protected path {} is not a plain relative path",
                relative.display()
            )));
        };
        path.push(name);
        let last = i + 1 == components.len();
        match node(&path) {
            Node::Symlink(_) => {
                return Err(SandboxError::Policy(format!(
                    "protected path {} is a symbolic link; airlock cannot keep what it points at read-only\n\
                     hint: replace the link with the folder or file itself",
                    path.display()
                )));
            }
            Node::Missing => {
                let Missing::Placeholder(contents) = target.when_missing else {
                    return Ok(());
                };
                let (kind, contents) = if last { (target.kind, contents) } else { (PathKind::Dir, "") };
                if !placeholders.iter().any(|p| p.path == path) {
                    placeholders.push(Placeholder { path: path.clone(), kind, contents });
                    mounts.push(MountOp::Bind { path, access: Access::ReadOnly });
                }
                return Ok(());
            }
            Node::File if !last => return Ok(()), // e.g. `.git` of a worktree is a file: nothing beneath it
            Node::Dir | Node::File if last => {
                mounts.push(MountOp::Bind { path, access: Access::ReadOnly });
                return Ok(());
            }
            Node::Dir | Node::File => mounts.push(MountOp::Bind { path: path.clone(), access: Access::ReadWrite }),
        }
    }
    Ok(())
}

// --- git's control surface ---------------------------------------------------

/// What git reads from a git folder that can run code or point elsewhere,
/// with what a missing one becomes. A missing `commondir` cannot be an empty
/// file (git refuses to run), so its placeholder names the folder itself.
const GIT_DIR_CONTROL: &[(&str, PathKind, Missing)] = &[
    ("config", PathKind::File, Missing::Placeholder("")),
    ("config.worktree", PathKind::File, Missing::Placeholder("")),
    ("hooks", PathKind::Dir, Missing::Placeholder("")),
    ("commondir", PathKind::File, Missing::Placeholder(".\n")),
    ("info", PathKind::Dir, Missing::Placeholder("")),
    ("gitdir", PathKind::File, Missing::Absent),
];

/// How deep git folders may point at each other (modules of modules,
/// includes of includes) before the plan stops following.
const GIT_MAX_DEPTH: usize = 8;

/// Git's control surface in the writable places: every `.git` folder or file
/// beneath them, what a `.git` file or `commondir` points at, submodule and
/// worktree git folders, configuration files that config includes, and the
/// hooks folder that `core.hooksPath` names. Objects, refs, logs, the index
/// and the lock files stay writable, since commits need them.
fn git_surface(spec: &SandboxSpec, host: &dyn Host, writable: &[PathBuf]) -> Result<Vec<Target>, SandboxError> {
    let in_writable = |p: &Path| writable.iter().any(|w| p.starts_with(w));
    let home = env_path(spec, "HOME");
    let mut targets = Vec::new();
    // (git folder, the work tree it belongs to, depth)
    let mut queue: Vec<(PathBuf, PathBuf, usize)> = Vec::new();
    for base in writable {
        for (entry, node) in host.git_entries(base) {
            let worktree = entry.parent().map(Path::to_path_buf).unwrap_or_default();
            match node {
                Node::Dir => queue.push((entry, worktree, 0)),
                Node::File => {
                    targets.push(Target { path: entry.clone(), kind: PathKind::File, when_missing: Missing::Absent });
                    if let Some(dir) = host.read(&entry).and_then(|t| gitdir_of(&t).map(str::to_owned)) {
                        queue.push((normalize(&worktree.join(dir)), worktree, 0));
                    }
                }
                Node::Symlink(_) => {
                    return Err(SandboxError::Policy(format!(
                        "{} is a symbolic link; airlock cannot keep the git folder it points at read-only\n\
                         hint: replace the link with the folder itself, or a `.git` file (`gitdir: PATH`)",
                        entry.display()
                    )));
                }
                Node::Missing => {}
            }
        }
    }
    // Global configuration can name a relative hooks folder for every repository.
    let global: Vec<PathBuf> = [
        home.as_ref().map(|h| h.join(".gitconfig")),
        home.as_ref().map(|h| h.join(".config/git/config")),
        Some(PathBuf::from("/etc/gitconfig")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let global_hooks: Vec<String> =
        global.iter().filter_map(|g| host.read(g)).flat_map(|t| git_config_refs(&t).hooks_paths).collect();

    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some((dir, worktree, depth)) = queue.pop() {
        if depth > GIT_MAX_DEPTH || seen.contains(&dir) || !in_writable(&dir) {
            continue;
        }
        seen.push(dir.clone());
        for (name, kind, when_missing) in GIT_DIR_CONTROL {
            targets.push(Target { path: dir.join(name), kind: *kind, when_missing: *when_missing });
        }
        if let Some(common) = host.read(&dir.join("commondir")) {
            let common = common.trim_end_matches(['\n', '\r']);
            if !common.is_empty() {
                queue.push((normalize(&dir.join(common)), worktree.clone(), depth + 1));
            }
        }
        // Configuration and what it includes; hooks folders it names.
        let mut configs = vec![(dir.join("config"), 0), (dir.join("config.worktree"), 0)];
        let mut hooks = global_hooks.clone();
        while let Some((config, level)) = configs.pop() {
            let Some(text) = host.read(&config) else { continue };
            let refs = git_config_refs(&text);
            hooks.extend(refs.hooks_paths);
            for include in refs.includes {
                let Some(path) = expand(&include, config.parent().unwrap_or(&dir), home.as_deref()) else { continue };
                if level < GIT_MAX_DEPTH {
                    targets.push(Target {
                        path: path.clone(),
                        kind: PathKind::File,
                        when_missing: Missing::Placeholder(""),
                    });
                    configs.push((path, level + 1));
                }
            }
        }
        for hooks_path in hooks {
            if let Some(path) = expand(&hooks_path, &worktree, home.as_deref()) {
                targets.push(Target { path, kind: PathKind::Dir, when_missing: Missing::Placeholder("") });
            }
        }
        // Submodules' git folders (a name with slashes nests), worktrees' git folders.
        let mut namespaces = vec![(dir.join("modules"), 0)];
        while let Some((folder, level)) = namespaces.pop() {
            for (child, node) in host.list(&folder) {
                if node != Node::Dir {
                    continue;
                }
                if host.node(&child.join("HEAD")) == Node::Missing && level < GIT_MAX_DEPTH {
                    namespaces.push((child, level + 1));
                } else {
                    queue.push((child, worktree.clone(), depth + 1));
                }
            }
        }
        for (child, node) in host.list(&dir.join("worktrees")) {
            if node == Node::Dir {
                let tree = host
                    .read(&child.join("gitdir"))
                    .and_then(|t| Path::new(t.trim_end_matches(['\n', '\r'])).parent().map(Path::to_path_buf))
                    .unwrap_or_else(|| worktree.clone());
                queue.push((child, tree, depth + 1));
            }
        }
    }
    targets.retain(|t| in_writable(&t.path));
    Ok(targets)
}

/// The folder a `.git` file points at (`gitdir: PATH`), as written.
fn gitdir_of(text: &str) -> Option<&str> {
    let line = text.lines().next()?;
    let dir = line.strip_prefix("gitdir:")?.trim();
    (!dir.is_empty()).then_some(dir)
}

/// What a git configuration file points at, as written.
#[derive(Debug, Default, PartialEq, Eq)]
struct GitConfigRefs {
    /// `include.path` and `includeIf.*.path` values.
    includes: Vec<String>,
    /// `core.hooksPath` values.
    hooks_paths: Vec<String>,
}

/// Reads the include and hooks-folder entries of a git configuration file.
/// Conditions of `includeIf` are ignored: whatever might be included is
/// protected.
fn git_config_refs(text: &str) -> GitConfigRefs {
    let mut refs = GitConfigRefs::default();
    let mut section = String::new();
    for raw in text.lines() {
        let mut line = raw.trim_start();
        if let Some(rest) = line.strip_prefix('[') {
            let Some(end) = rest.find(']') else { continue };
            let header = &rest[..end];
            let name = header.split(|c: char| c == '.' || c == '"' || c.is_whitespace()).next().unwrap_or("");
            section = name.to_ascii_lowercase();
            line = rest[end + 1..].trim_start();
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), config_value(v)),
            None => continue,
        };
        match (section.as_str(), key.as_str()) {
            ("include" | "includeif", "path") => refs.includes.push(value),
            ("core", "hookspath") => refs.hooks_paths.push(value),
            _ => {}
        }
    }
    refs
}

/// A git configuration value: quotes removed, escapes read, a comment cut.
fn config_value(raw: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = raw.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !quoted => break,
            other => out.push(other),
        }
    }
    out.trim_end().to_owned()
}

/// A path from git configuration: `~/` is the home folder, a relative path
/// is relative to `base`; `..` is resolved by name.
fn expand(value: &str, base: &Path, home: Option<&Path>) -> Option<PathBuf> {
    if value.is_empty() {
        return None;
    }
    let path = match value.strip_prefix("~/") {
        Some(rest) => home?.join(rest),
        None if value.starts_with('~') => return None,
        None => base.join(value),
    };
    Some(normalize(&path))
}

/// Resolves `.` and `..` by name (symbolic links on the way are refused
/// later, when the path is protected).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn env_path(spec: &SandboxSpec, name: &str) -> Option<PathBuf> {
    spec.env.iter().find(|(k, _)| k == name).map(|(_, v)| PathBuf::from(v)).filter(|p| p.is_absolute())
}

// --- what the walk of readable roots hides -----------------------------------

/// An entry of a walked root that must not show inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposed {
    /// A unix socket or a named pipe: a way to talk to a host process.
    /// Landlock (up to ABI 7) has no right for connecting to a socket by
    /// path, so hiding it is what keeps it out of reach.
    Endpoint,
    /// A file others may not read, seen by a root caller (uid 0 reads it as
    /// its owner even without capabilities).
    PrivateFile,
    /// A folder others may not list or enter, seen by a root caller.
    PrivateDir,
}

/// Decides from an entry's `st_mode` whether it must be hidden. A root
/// caller sees only what every user may see; anyone sees no endpoints.
pub fn exposure(st_mode: u32, root_caller: bool) -> Option<Exposed> {
    let kind = st_mode & libc::S_IFMT;
    if kind == libc::S_IFSOCK || kind == libc::S_IFIFO {
        return Some(Exposed::Endpoint);
    }
    if !root_caller || kind == libc::S_IFLNK {
        return None;
    }
    match kind {
        libc::S_IFDIR if st_mode & 0o005 != 0o005 => Some(Exposed::PrivateDir),
        libc::S_IFDIR => None,
        _ if st_mode & 0o004 == 0 => Some(Exposed::PrivateFile),
        _ => None,
    }
}

/// System roots whose content a package manager writes: not walked. They
/// hold no sockets (those live in /run) and no host secrets by convention
/// (FHS: /usr is shareable, read-only data), and a walk of /usr costs
/// seconds with a stat of each file. `/usr/local` is the admin's and is walked.
const PACKAGE_MANAGED: &[&str] = &["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"];

/// The bound roots (besides the workspace) whose entries are checked for
/// [`Exposed`] ones.
fn walked_roots(bound: &[PathBuf], node: &dyn Fn(&Path) -> Node) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> =
        bound.iter().filter(|b| !PACKAGE_MANAGED.iter().any(|p| b == &Path::new(p))).cloned().collect();
    if bound.iter().any(|b| b == Path::new("/usr")) && node(Path::new("/usr/local")) == Node::Dir {
        roots.push("/usr/local".into());
    }
    roots
}

/// Trees inside walked roots that are not walked: the toolchains and
/// registries that rustup and cargo unpack from checked archives (tens of
/// thousands of files, no sockets or host secrets).
fn walk_skips(spec: &SandboxSpec) -> Vec<PathBuf> {
    let home = env_path(spec, "HOME");
    let cargo = env_path(spec, "CARGO_HOME").or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    let rustup = env_path(spec, "RUSTUP_HOME").or_else(|| home.as_ref().map(|h| h.join(".rustup")));
    let mut skip = vec![spec.workspace.clone()];
    if let Some(c) = cargo {
        skip.extend([c.join("registry"), c.join("git")]);
    }
    if let Some(r) = rustup {
        skip.extend([r.join("toolchains"), r.join("downloads")]);
    }
    skip
}

// --- cargo's registry tokens ---------------------------------------------------

/// Largest configuration file shown as a cleaned copy (the copy lives in a
/// small staging tmpfs); a bigger one with tokens is hidden whole.
const MAX_REPLACED_BYTES: usize = 64 * 1024;

/// Cargo's user configuration files, where `cargo login` used to put tokens.
fn cargo_configs(spec: &SandboxSpec) -> Vec<PathBuf> {
    let home = env_path(spec, "HOME");
    let mut homes: Vec<PathBuf> =
        env_path(spec, "CARGO_HOME").into_iter().chain(home.map(|h| h.join(".cargo"))).collect();
    homes.dedup();
    homes.iter().flat_map(|h| [h.join("config.toml"), h.join("config")]).collect()
}

/// Cargo configuration without registry credentials (`token` and
/// `secret-key` under `[registry]` and `[registries.NAME]`). `Ok(None)`: there
/// were none; `Err`: not TOML, so the file cannot be cleaned.
pub fn without_registry_tokens(text: &str) -> Result<Option<String>, String> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    const SECRET_KEYS: [&str; 2] = ["token", "secret-key"];
    let mut removed = false;
    let mut strip = |t: &mut toml::Table| {
        for key in SECRET_KEYS {
            removed |= t.remove(key).is_some();
        }
    };
    if let Some(toml::Value::Table(registry)) = table.get_mut("registry") {
        strip(registry);
    }
    if let Some(toml::Value::Table(registries)) = table.get_mut("registries") {
        for (_, value) in registries.iter_mut() {
            if let toml::Value::Table(r) = value {
                strip(r);
            }
        }
    }
    Ok(removed.then(|| table.to_string()))
}

fn depth(path: &Path) -> usize {
    path.components().count()
}

/// What the plan may learn about the host's files, all read before the
/// sandbox starts; [`plan`] decides from these answers alone.
pub trait Host {
    /// What a path is.
    fn node(&self, path: &Path) -> Node;
    /// The text of a small file (git's pointer and configuration files,
    /// cargo's configuration); `None` if missing, unreadable or too big.
    fn read(&self, _path: &Path) -> Option<String> {
        None
    }
    /// The entries of a folder, with what each is; empty if not a folder.
    fn list(&self, _dir: &Path) -> Vec<(PathBuf, Node)> {
        Vec::new()
    }
    /// Every entry named `.git` beneath `dir`, not looking inside `.git`
    /// folders, through symbolic links or into other mounts.
    fn git_entries(&self, _dir: &Path) -> Vec<(PathBuf, Node)> {
        Vec::new()
    }
    /// The entries beneath `root` that must be hidden (see [`exposure`]),
    /// not looking inside `skip`, through symbolic links or into other mounts.
    fn exposed(&self, _root: &Path, _skip: &[PathBuf]) -> Vec<(PathBuf, Exposed)> {
        Vec::new()
    }
}

impl<F: Fn(&Path) -> Node> Host for F {
    fn node(&self, path: &Path) -> Node {
        self(path)
    }
}

/// Reads what a host path is, for [`plan`].
pub fn host_node(path: &Path) -> Node {
    match fs_err::symlink_metadata(path) {
        Err(_) => Node::Missing,
        Ok(m) if m.file_type().is_symlink() => Node::Symlink(fs_err::canonicalize(path).ok()),
        Ok(m) if m.is_dir() => Node::Dir,
        Ok(_) => Node::File,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::spec::{Limits, Protected};

    fn spec() -> SandboxSpec {
        SandboxSpec {
            workspace: "/home/u/proj".into(),
            cwd: "/home/u/proj".into(),
            writable_roots: vec![],
            readable_roots: vec!["/usr".into(), "/lib".into(), "/etc".into(), "/home/u/.cargo".into()],
            deny_read: vec!["/etc/shadow".into(), "/home/u/.ssh".into(), "/home/u/.cargo/credentials.toml".into()],
            protected: vec![
                Protected { path: ".git/hooks".into(), kind: PathKind::Dir },
                Protected { path: ".git/config".into(), kind: PathKind::File },
                Protected { path: ".claude".into(), kind: PathKind::Dir },
                Protected { path: ".envrc".into(), kind: PathKind::File },
            ],
            limits: Limits {
                timeout: None,
                memory_bytes: 1 << 30,
                processes: 100,
                file_size_bytes: 1 << 30,
                cpu_secs: 100,
                output_bytes: 1 << 20,
                tmp_bytes: 1 << 28,
                address_space_factor: crate::spec::ADDRESS_SPACE_FACTOR,
            },
            env: vec![],
            bridges: vec![],
            home_view: None,
            home_binds: vec![],
            file_binds: vec![],
            dns_log: None,
            allow_openat2: false,
            sockets: vec![],
        }
    }

    fn host(entries: &[(&str, Node)]) -> impl Fn(&Path) -> Node + use<> {
        let map: HashMap<PathBuf, Node> = entries.iter().map(|(p, n)| (PathBuf::from(p), n.clone())).collect();
        move |p: &Path| map.get(p).cloned().unwrap_or(Node::Missing)
    }

    fn standard_host() -> impl Fn(&Path) -> Node {
        host(&[
            ("/usr", Node::Dir),
            ("/lib", Node::Symlink(Some("/usr/lib".into()))),
            ("/usr/lib", Node::Dir),
            ("/etc", Node::Dir),
            ("/etc/shadow", Node::File),
            ("/home/u/.cargo", Node::Dir),
            ("/home/u/.cargo/credentials.toml", Node::File),
            ("/home/u/.ssh", Node::Dir),
            ("/home/u/proj", Node::Dir),
            ("/home/u/proj/.git", Node::Dir),
            ("/home/u/proj/.git/config", Node::File),
        ])
    }

    fn index(plan: &Plan, op: &MountOp) -> usize {
        plan.mounts.iter().position(|m| m == op).unwrap_or_else(|| panic!("{op:?} missing from {:#?}", plan.mounts))
    }

    #[test]
    fn workspace_is_writable_and_system_roots_read_only() {
        let plan = plan(&spec(), &standard_host()).unwrap();
        index(&plan, &MountOp::Bind { path: "/home/u/proj".into(), access: Access::ReadWrite });
        index(&plan, &MountOp::Bind { path: "/usr".into(), access: Access::ReadOnly });
        index(&plan, &MountOp::Bind { path: "/home/u/.cargo".into(), access: Access::ReadOnly });
        assert!(plan.landlock.contains(&LandlockRule { path: "/home/u/proj".into(), grant: Grant::ReadWrite }));
        assert!(plan.landlock.contains(&LandlockRule { path: "/usr".into(), grant: Grant::Read }));
        assert!(plan.landlock.contains(&LandlockRule { path: "/tmp".into(), grant: Grant::ReadWrite }));
    }

    #[test]
    fn the_home_folder_is_not_in_the_view() {
        let plan = plan(&spec(), &standard_host()).unwrap();
        assert!(!plan.mounts.iter().any(|m| m.path() == Path::new("/home/u") || m.path() == Path::new("/home")));
        assert!(!plan.landlock.iter().any(|r| r.path == Path::new("/home/u")));
    }

    #[test]
    fn symlinked_system_roots_become_links_to_their_bound_target() {
        let plan = plan(&spec(), &standard_host()).unwrap();
        // /usr is already bound, so /usr/lib shows through it and only the link is added.
        assert!(plan.mounts.contains(&MountOp::Symlink { link: "/lib".into(), target: "/usr/lib".into() }));
    }

    #[test]
    fn denied_paths_inside_bound_roots_are_masked_and_others_left_out() {
        let plan = plan(&spec(), &standard_host()).unwrap();
        let shadow = index(&plan, &MountOp::MaskFile { path: "/etc/shadow".into() });
        assert!(shadow > index(&plan, &MountOp::Bind { path: "/etc".into(), access: Access::ReadOnly }));
        index(&plan, &MountOp::MaskFile { path: "/home/u/.cargo/credentials.toml".into() });
        // ~/.ssh is not under any bound root: it simply does not exist inside.
        assert!(!plan.mounts.iter().any(|m| m.path() == Path::new("/home/u/.ssh")));
    }

    #[test]
    fn roots_inside_denied_paths_are_dropped() {
        let mut s = spec();
        s.readable_roots.push("/home/u/.ssh/keys".into());
        let h = host(&[("/home/u/.ssh/keys", Node::Dir), ("/home/u/proj", Node::Dir)]);
        let plan = plan(&s, &h).unwrap();
        assert!(!plan.mounts.iter().any(|m| m.path().starts_with("/home/u/.ssh")));
        assert!(!plan.landlock.iter().any(|r| r.path.starts_with("/home/u/.ssh")));
    }

    #[test]
    fn roots_under_the_host_tmp_are_bound_over_the_private_tmp() {
        let mut s = spec();
        s.workspace = "/tmp/x/ws".into();
        s.readable_roots = vec!["/tmp/x/home".into()];
        s.deny_read = vec!["/tmp/x/home/.ssh".into()];
        let h = host(&[("/tmp/x/ws", Node::Dir), ("/tmp/x/home", Node::Dir), ("/tmp/x/home/.ssh", Node::Dir)]);
        let plan = plan(&s, &h).unwrap();
        let tmp = index(&plan, &MountOp::Tmpfs { path: "/tmp".into(), bytes: s.limits.tmp_bytes });
        let home = index(&plan, &MountOp::Bind { path: "/tmp/x/home".into(), access: Access::ReadOnly });
        let mask = index(&plan, &MountOp::MaskDir { path: "/tmp/x/home/.ssh".into() });
        assert!(tmp < home && home < mask);
    }

    #[test]
    fn a_workspace_inside_a_denied_path_is_refused() {
        let mut s = spec();
        s.workspace = "/home/u/.ssh/proj".into();
        let err = plan(&s, &standard_host()).unwrap_err().to_string();
        assert!(err.contains("inside the read-denied path /home/u/.ssh"), "{err}");
    }

    #[test]
    fn existing_protected_paths_are_bound_read_only_and_their_parents_pinned() {
        let plan = plan(&spec(), &standard_host()).unwrap();
        let git = index(&plan, &MountOp::Bind { path: "/home/u/proj/.git".into(), access: Access::ReadWrite });
        let config = index(&plan, &MountOp::Bind { path: "/home/u/proj/.git/config".into(), access: Access::ReadOnly });
        let ws = index(&plan, &MountOp::Bind { path: "/home/u/proj".into(), access: Access::ReadWrite });
        assert!(ws < git && git < config);
    }

    #[test]
    fn missing_protected_paths_get_placeholders() {
        let plan = plan(&spec(), &standard_host()).unwrap();
        assert!(plan.placeholders.contains(&Placeholder {
            path: "/home/u/proj/.git/hooks".into(),
            kind: PathKind::Dir,
            contents: ""
        }));
        assert!(plan.placeholders.contains(&Placeholder {
            path: "/home/u/proj/.claude".into(),
            kind: PathKind::Dir,
            contents: ""
        }));
        assert!(plan.placeholders.contains(&Placeholder {
            path: "/home/u/proj/.envrc".into(),
            kind: PathKind::File,
            contents: ""
        }));
        index(&plan, &MountOp::Bind { path: "/home/u/proj/.claude".into(), access: Access::ReadOnly });
    }

    #[test]
    fn a_missing_parent_of_a_protected_path_is_the_placeholder() {
        let h = host(&[("/usr", Node::Dir), ("/home/u/proj", Node::Dir)]);
        let plan = plan(&spec(), &h).unwrap();
        // No .git at all: .git itself becomes an empty read-only folder, once.
        let git: Vec<_> = plan.placeholders.iter().filter(|p| p.path.starts_with("/home/u/proj/.git")).collect();
        assert_eq!(git, [&Placeholder { path: "/home/u/proj/.git".into(), kind: PathKind::Dir, contents: "" }]);
        let binds = plan.mounts.iter().filter(|m| m.path() == Path::new("/home/u/proj/.git")).count();
        assert_eq!(binds, 1);
    }

    #[test]
    fn a_protected_symlink_is_refused() {
        let h = host(&[
            ("/home/u/proj", Node::Dir),
            ("/home/u/proj/.claude", Node::Symlink(Some("/home/u/.claude".into()))),
        ]);
        let err = plan(&spec(), &h).unwrap_err().to_string();
        assert!(err.contains(".claude is a symbolic link"), "{err}");
    }

    #[test]
    fn mounts_come_parents_first_and_dev_is_sealed_last() {
        let mut s = spec();
        s.workspace = "/tmp/ws".into();
        let h = host(&[("/tmp/ws", Node::Dir), ("/usr", Node::Dir)]);
        let plan = plan(&s, &h).unwrap();
        let tmp = index(&plan, &MountOp::Tmpfs { path: "/tmp".into(), bytes: s.limits.tmp_bytes });
        let ws = index(&plan, &MountOp::Bind { path: "/tmp/ws".into(), access: Access::ReadWrite });
        assert!(tmp < ws, "the private /tmp must not cover a workspace inside it");
        assert_eq!(plan.mounts.last(), Some(&MountOp::ReadOnly { path: "/dev".into() }));
        let dev = index(&plan, &MountOp::Tmpfs { path: "/dev".into(), bytes: 64 * 1024 });
        let null = index(&plan, &MountOp::Bind { path: "/dev/null".into(), access: Access::Device });
        assert!(dev < null);
    }

    #[test]
    fn a_private_home_is_a_tmpfs_mounted_before_what_is_bound_inside_it() {
        let mut spec = spec();
        spec.home_view = Some("/home/u".into());
        let nodes = HashMap::from([("/home/u/.cargo", Node::Dir), ("/home/u/proj", Node::Dir), ("/usr", Node::Dir)]);
        let plan = plan(&spec, &|p: &Path| nodes.get(p.to_str().unwrap()).cloned().unwrap_or(Node::Missing)).unwrap();
        let at = |op: &MountOp| plan.mounts.iter().position(|m| m == op);
        let home = at(&MountOp::Tmpfs { path: "/home/u".into(), bytes: spec.limits.tmp_bytes }).expect("home tmpfs");
        let ws = at(&MountOp::Bind { path: "/home/u/proj".into(), access: Access::ReadWrite }).unwrap();
        let cargo = at(&MountOp::Bind { path: "/home/u/.cargo".into(), access: Access::ReadOnly }).unwrap();
        assert!(home < ws && home < cargo, "{:?}", plan.mounts);
        assert!(plan.landlock.contains(&LandlockRule { path: "/home/u".into(), grant: Grant::ReadWrite }));
        // An agent's state shows where it expects it, even where the real one is denied.
        spec.home_binds = vec![("/var/state/claude".into(), "/home/u/.ssh".into())];
        let plan = super::plan(&spec, &|_: &Path| Node::Dir).unwrap();
        let bind = MountOp::BindAt { source: "/var/state/claude".into(), target: "/home/u/.ssh".into() };
        assert!(
            plan.mounts.iter().position(|m| m == &bind)
                > plan
                    .mounts
                    .iter()
                    .position(|m| matches!(m, MountOp::Tmpfs { path, .. } if path == Path::new("/home/u")))
        );
        assert!(!plan.mounts.contains(&MountOp::MaskDir { path: "/home/u/.ssh".into() }));
        spec.home_binds = vec![("/home/u/.ssh".into(), "/home/u/.x".into())];
        assert!(super::plan(&spec, &|_: &Path| Node::Dir).is_err(), "a denied source");
        spec.home_binds = vec![("/var/s".into(), "/etc/x".into())];
        assert!(super::plan(&spec, &|_: &Path| Node::Dir).is_err(), "a target outside the home");
        spec.home_view = Some("/".into());
        assert!(super::plan(&spec, &|_: &Path| Node::Dir).is_err());
    }

    #[test]
    fn a_file_shows_in_place_of_another_only_inside_a_readable_root() {
        let mut spec = spec();
        spec.readable_roots.push("/opt/agent".into());
        let nodes = HashMap::from([
            ("/usr", Node::Dir),
            ("/opt/agent", Node::Dir),
            ("/opt/agent/vendor/rg", Node::File),
            ("/var/run/airlock/rg", Node::File),
            ("/home/u/proj/rg", Node::File),
        ]);
        let node = |p: &Path| nodes.get(p.to_str().unwrap()).cloned().unwrap_or(Node::Missing);
        spec.file_binds = vec![("/var/run/airlock/rg".into(), "/opt/agent/vendor/rg".into())];
        let plan = super::plan(&spec, &node).unwrap();
        let show = MountOp::ShowFile { source: "/var/run/airlock/rg".into(), target: "/opt/agent/vendor/rg".into() };
        let root = MountOp::Bind { path: "/opt/agent".into(), access: Access::ReadOnly };
        let at = |op: &MountOp| plan.mounts.iter().position(|m| m == op).unwrap();
        assert!(at(&root) < at(&show), "{:?}", plan.mounts);
        for (source, target, why) in [
            ("/var/run/airlock/rg", "/home/u/proj/rg", "the workspace is not a readable root"),
            ("/var/run/airlock/rg", "/etc/passwd", "outside every root"),
            ("/var/run/airlock/rg", "/opt/agent/vendor/missing", "no file there"),
            ("/home/u/.ssh/id", "/opt/agent/vendor/rg", "a denied source"),
        ] {
            spec.file_binds = vec![(source.into(), target.into())];
            assert!(super::plan(&spec, &node).is_err(), "{why}");
        }
    }

    #[test]
    fn with_a_dns_log_the_hosts_resolver_configuration_is_hidden() {
        let mut spec = spec();
        let nodes = HashMap::from([("/etc", Node::Dir), ("/etc/resolv.conf", Node::File), ("/usr", Node::Dir)]);
        let node = |p: &Path| nodes.get(p.to_str().unwrap()).cloned().unwrap_or(Node::Missing);
        let mask = MountOp::MaskFile { path: "/etc/resolv.conf".into() };
        assert!(!plan(&spec, &node).unwrap().mounts.contains(&mask));
        spec.dns_log = Some("/run/a/dns.sock".into());
        assert!(plan(&spec, &node).unwrap().mounts.contains(&mask));
        let linked = HashMap::from([
            ("/etc", Node::Dir),
            ("/etc/resolv.conf", Node::Symlink(Some("/etc/resolvconf/run/resolv.conf".into()))),
        ]);
        let node = |p: &Path| linked.get(p.to_str().unwrap()).cloned().unwrap_or(Node::Missing);
        let target = MountOp::MaskFile { path: "/etc/resolvconf/run/resolv.conf".into() };
        assert!(plan(&spec, &node).unwrap().mounts.contains(&target));
    }

    /// A host with files, texts, `.git` entries and exposed entries.
    #[derive(Default)]
    struct FakeHost {
        nodes: HashMap<PathBuf, Node>,
        texts: HashMap<PathBuf, String>,
        exposed: Vec<(PathBuf, Exposed)>,
    }

    impl FakeHost {
        fn dir(mut self, p: &str) -> Self {
            let mut path = PathBuf::from(p);
            loop {
                self.nodes.entry(path.clone()).or_insert(Node::Dir);
                if !path.pop() || path == Path::new("/") {
                    break;
                }
            }
            self
        }
        fn file(mut self, p: &str, text: &str) -> Self {
            let path = PathBuf::from(p);
            self = self.dir(path.parent().unwrap().to_str().unwrap());
            self.nodes.insert(path.clone(), Node::File);
            self.texts.insert(path, text.into());
            self
        }
    }

    impl Host for FakeHost {
        fn node(&self, path: &Path) -> Node {
            self.nodes.get(path).cloned().unwrap_or(Node::Missing)
        }
        fn read(&self, path: &Path) -> Option<String> {
            self.texts.get(path).cloned()
        }
        fn list(&self, dir: &Path) -> Vec<(PathBuf, Node)> {
            self.nodes.iter().filter(|(p, _)| p.parent() == Some(dir)).map(|(p, n)| (p.clone(), n.clone())).collect()
        }
        fn git_entries(&self, dir: &Path) -> Vec<(PathBuf, Node)> {
            let mut found: Vec<_> = self
                .nodes
                .iter()
                .filter(|(p, _)| p.starts_with(dir) && p.file_name() == Some(".git".as_ref()))
                .filter(|(p, _)| !p.parent().unwrap().ancestors().any(|a| a.file_name() == Some(".git".as_ref())))
                .map(|(p, n)| (p.clone(), n.clone()))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        }
        fn exposed(&self, root: &Path, skip: &[PathBuf]) -> Vec<(PathBuf, Exposed)> {
            self.exposed
                .iter()
                .filter(|(p, _)| p.starts_with(root) && !skip.iter().any(|s| p.starts_with(s)))
                .cloned()
                .collect()
        }
    }

    fn read_only(plan: &Plan, path: &str) -> bool {
        plan.mounts.contains(&MountOp::Bind { path: path.into(), access: Access::ReadOnly })
    }

    fn placeholder<'a>(plan: &'a Plan, path: &str) -> Option<&'a Placeholder> {
        plan.placeholders.iter().find(|p| p.path == Path::new(path))
    }

    fn repo(host: FakeHost, git: &str) -> FakeHost {
        host.file(&format!("{git}/HEAD"), "ref: refs/heads/main\n")
            .file(&format!("{git}/config"), "[core]\n")
            .dir(&format!("{git}/objects"))
    }

    #[test]
    fn every_git_folder_in_the_workspace_keeps_its_control_files_read_only() {
        let host = repo(repo(FakeHost::default().dir("/usr"), "/home/u/proj/.git"), "/home/u/proj/vendor/lib/.git");
        let plan = plan(&spec(), &host).unwrap();
        for git in ["/home/u/proj/.git", "/home/u/proj/vendor/lib/.git"] {
            assert!(read_only(&plan, &format!("{git}/config")), "{git}/config: {:#?}", plan.mounts);
            for name in ["hooks", "info", "config.worktree", "commondir"] {
                let path = format!("{git}/{name}");
                assert!(placeholder(&plan, &path).is_some() && read_only(&plan, &path), "{path}");
            }
            // What commits need stays writable.
            assert!(!plan.mounts.iter().any(|m| m.path() == Path::new(&format!("{git}/objects"))));
        }
        // A missing commondir cannot be an empty file: git would refuse to run.
        assert_eq!(placeholder(&plan, "/home/u/proj/.git/commondir").unwrap().contents, ".\n");
        // The folders on the way are pinned, so the repository cannot be renamed away.
        assert!(
            plan.mounts.contains(&MountOp::Bind { path: "/home/u/proj/vendor/lib".into(), access: Access::ReadWrite })
        );
    }

    #[test]
    fn what_git_files_and_commondir_point_at_is_protected_where_writable() {
        let host = repo(FakeHost::default(), "/home/u/proj/.git")
            .file("/home/u/proj/wt/.git", "gitdir: ../.git/worktrees/wt\n")
            .file("/home/u/proj/.git/worktrees/wt/commondir", "../../../shared\n")
            .file("/home/u/proj/.git/worktrees/wt/gitdir", "/home/u/proj/wt/.git\n")
            .file("/home/u/proj/.git/worktrees/wt/HEAD", "x")
            .file("/home/u/proj/shared/config", "[core]\n")
            .file("/home/u/proj/sub/.git", "gitdir: ../.git/modules/libs/sub\n")
            .file("/home/u/proj/.git/modules/libs/sub/HEAD", "x")
            .file("/home/u/proj/.git/modules/libs/sub/config", "[core]\n")
            .file("/home/u/elsewhere/.git", "gitdir: /home/u/other/.git\n");
        let plan = plan(&spec(), &host).unwrap();
        for path in [
            "/home/u/proj/wt/.git",
            "/home/u/proj/sub/.git",
            "/home/u/proj/.git/worktrees/wt/commondir",
            "/home/u/proj/.git/worktrees/wt/gitdir",
            "/home/u/proj/shared/config",
            "/home/u/proj/.git/modules/libs/sub/config",
        ] {
            assert!(read_only(&plan, path), "{path} is not read-only: {:#?}", plan.mounts);
        }
        assert!(placeholder(&plan, "/home/u/proj/.git/modules/libs/sub/hooks").is_some());
        assert!(placeholder(&plan, "/home/u/proj/.git/worktrees/wt/config.worktree").is_some());
        assert!(placeholder(&plan, "/home/u/proj/shared/hooks").is_some());
        // Nothing outside the writable places.
        assert!(!plan.mounts.iter().any(|m| m.path().starts_with("/home/u/other")));
    }

    #[test]
    fn included_configuration_and_a_hooks_folder_in_the_tree_are_protected() {
        let config = "[include]\n\tpath = ../team.gitconfig\n[includeIf \"onbranch:main\"]\n  path = \"conf/extra\" # why\n\
                      [core]\n\thooksPath = .husky/_\n";
        let host = repo(FakeHost::default(), "/home/u/proj/.git")
            .file("/home/u/proj/.git/config", config)
            .file("/home/u/proj/team.gitconfig", "[core]\n\tHooksPath = /home/u/proj/tools/hooks\n")
            .file("/home/u/proj/.husky/_/.gitignore", "*\n");
        let plan = plan(&spec(), &host).unwrap();
        assert!(read_only(&plan, "/home/u/proj/team.gitconfig"));
        assert!(read_only(&plan, "/home/u/proj/.husky/_"));
        // Missing but named: placeholders, so that they cannot be created.
        assert!(placeholder(&plan, "/home/u/proj/.git/conf").is_some(), "{:#?}", plan.placeholders);
        assert!(placeholder(&plan, "/home/u/proj/tools").is_some(), "{:#?}", plan.placeholders);
    }

    #[test]
    fn a_git_symlink_in_the_tree_is_refused() {
        let mut host = repo(FakeHost::default(), "/home/u/proj/.git").dir("/home/u/proj/sub");
        host.nodes.insert("/home/u/proj/sub/.git".into(), Node::Symlink(Some("/home/u/x".into())));
        let err = plan(&spec(), &host).unwrap_err().to_string();
        assert!(err.contains("sub/.git is a symbolic link") && err.contains("hint:"), "{err}");
    }

    #[test]
    fn git_config_refs_reads_includes_and_hooks_paths() {
        let refs = git_config_refs(
            "; c\n[Include]\npath=a\n[includeIf \"gitdir:~/w/\"]\n path = \"b c\" ; x\n[core] hookspath = h\n[other]\npath = no\n",
        );
        assert_eq!(refs.includes, ["a", "b c"]);
        assert_eq!(refs.hooks_paths, ["h"]);
        assert_eq!(gitdir_of("gitdir: ../x\n"), Some("../x"));
        assert_eq!(gitdir_of("nonsense"), None);
        assert_eq!(expand("~/x", Path::new("/w"), Some(Path::new("/h"))), Some("/h/x".into()));
        assert_eq!(expand("../x/./y", Path::new("/w/a"), None), Some("/w/x/y".into()));
    }

    #[test]
    fn exposure_hides_endpoints_for_all_and_private_entries_for_root() {
        use libc::{S_IFDIR, S_IFIFO, S_IFREG, S_IFSOCK};
        assert_eq!(exposure(S_IFSOCK | 0o777, false), Some(Exposed::Endpoint));
        assert_eq!(exposure(S_IFIFO | 0o644, false), Some(Exposed::Endpoint));
        assert_eq!(exposure(S_IFREG | 0o600, false), None);
        assert_eq!(exposure(S_IFREG | 0o600, true), Some(Exposed::PrivateFile));
        assert_eq!(exposure(S_IFREG | 0o640, true), Some(Exposed::PrivateFile));
        assert_eq!(exposure(S_IFREG | 0o644, true), None);
        assert_eq!(exposure(S_IFDIR | 0o700, true), Some(Exposed::PrivateDir));
        assert_eq!(exposure(S_IFDIR | 0o711, true), Some(Exposed::PrivateDir));
        assert_eq!(exposure(S_IFDIR | 0o755, true), None);
    }

    #[test]
    fn exposed_entries_are_masked_except_in_package_managed_or_denied_places() {
        let mut s = spec();
        s.readable_roots.push("/opt".into());
        s.env = vec![("HOME".into(), "/home/u".into())];
        let mut host =
            FakeHost::default().dir("/usr").dir("/etc").dir("/opt").dir("/home/u/proj").dir("/home/u/.cargo");
        host.nodes.insert("/etc/shadow".into(), Node::File);
        host.exposed = vec![
            ("/opt/app/run.sock".into(), Exposed::Endpoint),
            ("/etc/wireguard".into(), Exposed::PrivateDir),
            ("/etc/krb5.keytab".into(), Exposed::PrivateFile),
            ("/etc/shadow".into(), Exposed::PrivateFile),
            ("/usr/share/x.sock".into(), Exposed::Endpoint),
            ("/home/u/.cargo/registry/x.sock".into(), Exposed::Endpoint),
        ];
        let plan = plan(&s, &host).unwrap();
        assert!(plan.mounts.contains(&MountOp::MaskFile { path: "/opt/app/run.sock".into() }));
        assert!(plan.mounts.contains(&MountOp::MaskDir { path: "/etc/wireguard".into() }));
        assert!(plan.mounts.contains(&MountOp::MaskFile { path: "/etc/krb5.keytab".into() }));
        assert_eq!(plan.mounts.iter().filter(|m| m.path() == Path::new("/etc/shadow")).count(), 1);
        assert!(!plan.mounts.iter().any(|m| m.path() == Path::new("/usr/share/x.sock")), "/usr is not walked");
        assert!(
            !plan.mounts.iter().any(|m| m.path().starts_with("/home/u/.cargo/registry")),
            "cargo's registry is not walked"
        );
        // A socket handed over on purpose (the caller's broker) shows; a
        // private file of that name would still be hidden from root.
        s.sockets = vec!["/opt/app/run.sock".into(), "/etc/krb5.keytab".into()];
        let plan = super::plan(&s, &host).unwrap();
        assert!(!plan.mounts.iter().any(|m| m.path() == Path::new("/opt/app/run.sock")));
        assert!(plan.mounts.contains(&MountOp::MaskFile { path: "/etc/krb5.keytab".into() }));
    }

    #[test]
    fn registry_tokens_are_taken_out_of_cargos_configuration() {
        let text = "[registry]\ntoken = \"cio_secret\"\n[registries.corp]\nindex = \"https://x\"\ntoken = \"t2\"\n\
                    [registries]\nother = { index = \"y\", secret-key = \"k\" }\n[build]\njobs = 2\n";
        let clean = without_registry_tokens(text).unwrap().unwrap();
        assert!(!clean.contains("cio_secret") && !clean.contains("t2") && !clean.contains("\"k\""), "{clean}");
        assert!(without_registry_tokens("[registry]\ntoken = ").is_err(), "not TOML: hidden whole");
        let text = "[registry]\ntoken = \"cio_secret\"\n[registries.corp]\nindex = \"https://x\"\ntoken = \"t2\"\n[build]\njobs = 2\n";
        let clean = without_registry_tokens(text).unwrap().unwrap();
        assert!(!clean.contains("cio_secret") && !clean.contains("t2"), "{clean}");
        assert!(clean.contains("jobs = 2") && clean.contains("https://x"), "{clean}");
        assert_eq!(without_registry_tokens("[build]\njobs = 2\n").unwrap(), None);
        let inline = "registries = { corp = { index = \"y\", token = \"t3\" } }\n";
        assert!(!without_registry_tokens(inline).unwrap().unwrap().contains("t3"));

        let mut s = spec();
        s.env = vec![("HOME".into(), "/home/u".into())];
        let host = FakeHost::default()
            .dir("/home/u/proj")
            .file("/home/u/.cargo/config.toml", text)
            .file("/home/u/.cargo/config", "not [ toml");
        let plan = plan(&s, &host).unwrap();
        let replaced = plan.mounts.iter().find_map(|m| match m {
            MountOp::Replace { path, contents } if path == Path::new("/home/u/.cargo/config.toml") => Some(contents),
            _ => None,
        });
        assert!(replaced.is_some_and(|c| !c.contains("cio_secret")), "{:#?}", plan.mounts);
        assert!(plan.mounts.contains(&MountOp::MaskFile { path: "/home/u/.cargo/config".into() }));
    }
}
