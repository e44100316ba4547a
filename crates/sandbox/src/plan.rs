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
            | MountOp::ReadOnly { path } => path,
            MountOp::Symlink { link, .. } => link,
            MountOp::BindAt { target, .. } => target,
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

/// Computes the plan. `node` tells what a host path is (see [`host_node`]).
pub fn plan(spec: &SandboxSpec, node: &dyn Fn(&Path) -> Node) -> Result<Plan, SandboxError> {
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

    // Protected paths in the workspace.
    let mut placeholders = Vec::new();
    for protected in &spec.protected {
        protect(&spec.workspace, &protected.path, protected.kind, node, &mut mounts, &mut placeholders)?;
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

/// Plans the read-only cover of one protected path: every existing folder on
/// the way is bound onto itself so it cannot be renamed away (a mount point
/// cannot be renamed), and the first missing component gets a placeholder.
fn protect(
    workspace: &Path,
    relative: &Path,
    kind: PathKind,
    node: &dyn Fn(&Path) -> Node,
    mounts: &mut Vec<MountOp>,
    placeholders: &mut Vec<Placeholder>,
) -> Result<(), SandboxError> {
    let components: Vec<Component> = relative.components().collect();
    let mut path = workspace.to_path_buf();
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
                let kind = if last { kind } else { PathKind::Dir };
                if !placeholders.iter().any(|p| p.path == path) {
                    placeholders.push(Placeholder { path: path.clone(), kind });
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

fn depth(path: &Path) -> usize {
    path.components().count()
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
            },
            env: vec![],
            bridges: vec![],
            home_view: None,
            home_binds: vec![],
            dns_log: None,
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
        assert!(
            plan.placeholders.contains(&Placeholder { path: "/home/u/proj/.git/hooks".into(), kind: PathKind::Dir })
        );
        assert!(plan.placeholders.contains(&Placeholder { path: "/home/u/proj/.claude".into(), kind: PathKind::Dir }));
        assert!(plan.placeholders.contains(&Placeholder { path: "/home/u/proj/.envrc".into(), kind: PathKind::File }));
        index(&plan, &MountOp::Bind { path: "/home/u/proj/.claude".into(), access: Access::ReadOnly });
    }

    #[test]
    fn a_missing_parent_of_a_protected_path_is_the_placeholder() {
        let h = host(&[("/usr", Node::Dir), ("/home/u/proj", Node::Dir)]);
        let plan = plan(&spec(), &h).unwrap();
        // No .git at all: .git itself becomes an empty read-only folder, once.
        let git: Vec<_> = plan.placeholders.iter().filter(|p| p.path.starts_with("/home/u/proj/.git")).collect();
        assert_eq!(git, [&Placeholder { path: "/home/u/proj/.git".into(), kind: PathKind::Dir }]);
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
}
