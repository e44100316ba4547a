//! `SandboxSpec`: what one sandboxed command may touch, built from policy.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_policy::{PathKind, Policy, Source, Sourced};

use crate::SandboxError;

/// Everything the sandbox needs to confine one command. Paths are absolute
/// and canonical; roots that do not exist on this machine are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The folder the command works in; writable.
    pub workspace: PathBuf,
    /// The working directory of the command (the workspace or inside it).
    pub cwd: PathBuf,
    /// Writable roots besides the workspace and the private `/tmp`.
    pub writable_roots: Vec<PathBuf>,
    /// Read-only roots: system folders and toolchains.
    pub readable_roots: Vec<PathBuf>,
    /// Paths hidden even inside a readable or writable root.
    pub deny_read: Vec<PathBuf>,
    /// Workspace-relative paths that stay read-only, present or not.
    pub protected: Vec<Protected>,
    /// Resource limits.
    pub limits: Limits,
    /// The command's whole environment (a clean one, from an allowlist).
    pub env: Vec<(OsString, OsString)>,
    /// Loopback ports that carry connections out to Unix sockets of the
    /// caller (the broker). Empty: no TCP/IP at all, only Unix sockets.
    pub bridges: Vec<Bridge>,
    /// A private home: an empty writable tmpfs at this path (the caller's
    /// home), in which only the roots beneath it show. What the command
    /// writes there outside those roots is gone when it ends.
    pub home_view: Option<PathBuf>,
    /// Host folders shown, writable, at other paths inside the private home
    /// (source, target): a wrapped agent's own state folder where it looks
    /// for it, while the user's real one stays hidden.
    pub home_binds: Vec<(PathBuf, PathBuf)>,
    /// Host files shown, read-only, in place of files inside the readable
    /// roots (source, target): an executable copy of a helper that a
    /// wrapped agent's installation ships without its execute bit (Qwen
    /// Code's ripgrep), so that it runs without the installation becoming
    /// writable.
    pub file_binds: Vec<(PathBuf, PathBuf)>,
    /// Answer name lookups inside on 127.0.0.1:53 (REFUSED: the proxy is the
    /// way out) and send each name asked for to this Unix datagram socket
    /// outside, so that a lookup that bypasses the proxy is still seen. The
    /// host's `/etc/resolv.conf` is hidden, which points resolvers there.
    pub dns_log: Option<PathBuf>,
    /// Let `openat2` through. Only for airlock's own worker: its file tools
    /// confine every path with `RESOLVE_BENEATH`, and it runs no program
    /// from outside (its commands run in sandboxes of their own, without
    /// this). Elsewhere `openat2` fails with `ENOSYS`, because the filter
    /// cannot read the mode it creates files with (see `seccomp::rules`).
    pub allow_openat2: bool,
    /// Unix sockets of the caller's that the command may reach through a
    /// readable root (airlock's broker for its own worker): every other
    /// socket or pipe in a walked root is masked. Canonical paths.
    pub sockets: Vec<PathBuf>,
}

/// A TCP port on the sandbox's own loopback whose connections are carried to
/// a Unix socket outside it. The sandbox's network namespace has loopback
/// alone, so a bridge is the only way out, and it leads where the caller says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// The port on `127.0.0.1` inside the sandbox.
    pub port: u16,
    /// The Unix socket outside that each connection is carried to.
    pub socket: PathBuf,
}

impl std::str::FromStr for Bridge {
    type Err = String;

    /// `PORT=SOCKET`, e.g. `8080=/run/user/1000/airlock/broker.sock`.
    fn from_str(s: &str) -> Result<Bridge, String> {
        let (port, socket) = s.split_once('=').ok_or_else(|| format!("{s:?} is not PORT=SOCKET"))?;
        let port: u16 = port.trim().parse().map_err(|_| format!("{port:?} is not a port number"))?;
        if port == 0 {
            return Err("port 0 cannot be bridged".into());
        }
        let socket = PathBuf::from(socket);
        if !socket.is_absolute() || socket.file_name().is_none() {
            return Err(format!("{} is not an absolute path to a socket", socket.display()));
        }
        Ok(Bridge { port, socket })
    }
}

/// A workspace path that stays read-only inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// Relative to the workspace, without `..`.
    pub path: PathBuf,
    /// Whether a placeholder for it is a folder or a file.
    pub kind: PathKind,
}

/// Resource limits for the whole process tree of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time after which the whole tree is killed.
    pub timeout: Option<Duration>,
    /// The memory budget of the whole tree: the limit of its memory cgroup
    /// where one can be made (every page: private, shared, tmpfs). Per
    /// process it is also the data segment limit (`RLIMIT_DATA`: heap and
    /// private mappings), and without a cgroup the address space is capped
    /// too ([`Limits::address_space_bytes`]).
    pub memory_bytes: u64,
    /// Processes and threads of the sandbox's user (`RLIMIT_NPROC`).
    pub processes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_secs: u64,
    /// Captured output kept per stream, when output is captured.
    pub output_bytes: u64,
    /// Size of each private tmpfs (`/tmp`, `/dev/shm`, a private home):
    /// `limits.tmp_size_mb`, within the memory budget ([`tmpfs_bytes`]).
    pub tmp_bytes: u64,
    /// Where no memory cgroup limits the tree, each process's address space
    /// is this many times the memory budget ([`ADDRESS_SPACE_FACTOR`] unless
    /// the caller asks for more: a wrapped agent whose runtime reserves much
    /// address space, Gemini CLI's WebAssembly).
    pub address_space_factor: u64,
}

/// How many private tmpfs mounts a sandbox may have: `/tmp`, `/dev/shm` and a
/// private home.
const PRIVATE_TMPFS_MOUNTS: u64 = 3;

/// The size of each private tmpfs. A tmpfs holds its files in memory that no
/// process's limits count, so the mounts together get at most half of the
/// memory budget (each `memory / 6`), and no more than `tmp_size_mb` each.
/// The other half is left to the processes. Under a memory cgroup tmpfs pages
/// are charged to the tree as well, so this split matters where there is none.
pub fn tmpfs_bytes(tmp_size: u64, memory: u64) -> u64 {
    tmp_size.min(memory / (2 * PRIVATE_TMPFS_MOUNTS))
}

/// How much address space each process gets where no memory cgroup limits
/// the tree, as a multiple of the memory budget.
pub const ADDRESS_SPACE_FACTOR: u64 = 4;

impl Limits {
    /// The `RLIMIT_AS` of each process where no memory cgroup can be made:
    /// `ADDRESS_SPACE_FACTOR` times the memory budget. `RLIMIT_AS` is the only
    /// limit that counts shared anonymous memory and memfd mappings; it also
    /// counts address space reserved and never touched, which runtimes take
    /// a lot of (V8 reserves about 10 GiB for each WebAssembly memory, the JVM
    /// its maximum heap, node needs about 1 GiB to start), so a limit equal to
    /// the budget would break them: 4 times the default 8 GiB budget lets a
    /// node agent keep three WebAssembly memories.
    pub fn address_space_bytes(&self) -> u64 {
        self.memory_bytes.saturating_mul(self.address_space_factor)
    }
}

/// Environment variables passed through from the caller by default.
pub const DEFAULT_ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_COLLATE",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
];

const MIB: u64 = 1024 * 1024;

impl SandboxSpec {
    /// Builds the spec for running in `workspace` under `policy`, keeping from
    /// `host_env` only the allowlisted variables (plus `extra_env` names).
    pub fn from_policy(
        policy: &Policy,
        workspace: &Path,
        cwd: &Path,
        host_env: impl IntoIterator<Item = (OsString, OsString)>,
        extra_env: &[String],
    ) -> Result<SandboxSpec, SandboxError> {
        let workspace = canonical_dir(workspace)?;
        let cwd = canonical_dir(cwd)?;
        let cwd = if cwd.starts_with(&workspace) { cwd } else { workspace.clone() };
        let sb = &policy.sandbox;
        // Roots keep the path as written (the plan resolves symlinked roots
        // such as /lib -> usr/lib); denied paths are resolved, since what
        // must be hidden is what they point at.
        let existing = |paths: &mut dyn Iterator<Item = &PathBuf>| -> Vec<PathBuf> {
            let mut out: Vec<PathBuf> = paths.filter(|p| p.exists()).cloned().collect();
            out.dedup();
            out
        };
        check_project_roots(policy, &workspace)?;
        let writable_roots = existing(&mut sb.writable_roots.iter().map(|s| &s.value));
        let readable_roots = existing(&mut sb.readable_roots.iter().chain(&sb.toolchain_roots).map(|s| &s.value));
        let mut deny_read: Vec<PathBuf> = sb
            .deny_read
            .iter()
            // Most denied paths do not exist: one stat each before resolving.
            .filter(|s| s.value.symlink_metadata().is_ok())
            .filter_map(|s| fs_err::canonicalize(&s.value).ok())
            .collect();
        deny_read.sort();
        deny_read.dedup();
        let protected =
            sb.protected.iter().map(|p| Protected { path: p.value.path.clone(), kind: p.value.kind }).collect();
        let l = &policy.limits;
        let limits = Limits {
            timeout: match l.timeout_secs.value {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            memory_bytes: l.memory_mb.value.saturating_mul(MIB),
            processes: l.processes.value,
            file_size_bytes: l.file_size_mb.value.saturating_mul(MIB),
            cpu_secs: l.cpu_secs.value,
            output_bytes: l.output_bytes.value,
            tmp_bytes: tmpfs_bytes(l.tmp_size_mb.value.saturating_mul(MIB), l.memory_mb.value.saturating_mul(MIB)),
            address_space_factor: ADDRESS_SPACE_FACTOR,
        };
        let env = clean_env(host_env, extra_env);
        let home = env.iter().find(|(k, _)| k == "HOME").and_then(|(_, v)| fs_err::canonicalize(v).ok());
        check_workspace(&workspace, home.as_deref())?;
        Ok(SandboxSpec {
            workspace,
            cwd,
            writable_roots,
            readable_roots,
            deny_read,
            protected,
            limits,
            env,
            bridges: Vec::new(),
            home_view: None,
            home_binds: Vec::new(),
            file_binds: Vec::new(),
            dns_log: None,
            allow_openat2: false,
            sockets: Vec::new(),
        })
    }
}

/// The workspace is writable from inside, and it comes from the current
/// directory, so a command started in the wrong place would get far too
/// much: refuse `/` and the home folder or any folder above it.
fn check_workspace(workspace: &Path, home: Option<&Path>) -> Result<(), SandboxError> {
    let too_wide = workspace == Path::new("/") || home.is_some_and(|h| h.starts_with(workspace));
    if too_wide {
        return Err(SandboxError::Workspace {
            path: workspace.to_path_buf(),
            reason: "it is / or holds the home folder, so the sandbox would make all of it writable (shell rc \
                     files included)\nhint: run airlock from a project folder"
                .into(),
        });
    }
    Ok(())
}

/// A project file comes with the repository, so it may only narrow what the
/// layers above allow. The policy crate checks that by the paths as written;
/// here each project root is checked again by what it resolves to, so that a
/// link committed to the repository (`docs -> ~/private`) cannot widen the view.
fn check_project_roots(policy: &Policy, workspace: &Path) -> Result<(), SandboxError> {
    let sb = &policy.sandbox;
    let from_project = |r: &Sourced<PathBuf>| matches!(r.source, Source::Project(_));
    let all = || sb.writable_roots.iter().chain(&sb.readable_roots).chain(&sb.toolchain_roots);
    if !all().any(from_project) {
        return Ok(());
    }
    let resolved = |roots: &mut dyn Iterator<Item = &Sourced<PathBuf>>| -> Vec<PathBuf> {
        roots
            .filter(|r| !matches!(r.source, Source::Project(_)))
            .filter_map(|r| fs_err::canonicalize(&r.value).ok())
            .collect()
    };
    let writable = resolved(&mut sb.writable_roots.iter());
    let readable = resolved(&mut sb.writable_roots.iter().chain(&sb.readable_roots).chain(&sb.toolchain_roots));
    let lists: [(&[Sourced<PathBuf>], &[PathBuf]); 3] =
        [(&sb.writable_roots, &writable), (&sb.readable_roots, &readable), (&sb.toolchain_roots, &readable)];
    for (roots, ceiling) in lists {
        for root in roots.iter().filter(|r| matches!(r.source, Source::Project(_))) {
            let Ok(real) = fs_err::canonicalize(&root.value) else {
                continue;
            };
            if !real.starts_with(workspace) && !ceiling.iter().any(|c| real.starts_with(c)) {
                return Err(SandboxError::Policy(format!(
                    "{} lists {}, which resolves to {}: outside the workspace and outside what the layers above allow\n\
                     hint: a project file may only narrow the sandbox; remove the entry or the symbolic link",
                    root.source,
                    root.value.display(),
                    real.display()
                )));
            }
        }
    }
    Ok(())
}

/// Keeps the allowlisted variables and points `TMPDIR` at the private tmp.
pub fn clean_env(
    host_env: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[String],
) -> Vec<(OsString, OsString)> {
    let allowed = |name: &OsStr| {
        DEFAULT_ENV_ALLOWLIST.iter().any(|a| OsStr::new(a) == name) || extra.iter().any(|e| OsStr::new(e) == name)
    };
    let mut env: Vec<(OsString, OsString)> =
        host_env.into_iter().filter(|(k, _)| allowed(k) && !is_loader_variable(k)).collect();
    env.retain(|(k, _)| k != "TMPDIR");
    env.push(("TMPDIR".into(), "/tmp".into()));
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env.sort();
    env
}

/// Variables that make the dynamic loader or a language runtime load code.
pub fn is_loader_variable(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("LD_") || name.starts_with("GCONV_") || name == "MALLOC_CHECK_" || name == "HOSTALIASES"
}

fn canonical_dir(path: &Path) -> Result<PathBuf, SandboxError> {
    let canon = fs_err::canonicalize(path)
        .map_err(|source| SandboxError::Workspace { path: path.to_path_buf(), reason: source.to_string() })?;
    if !canon.is_dir() {
        return Err(SandboxError::Workspace { path: path.to_path_buf(), reason: "not a directory".into() });
    }
    Ok(canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    fn policy_with_project_root(dir: &Path, root: PathBuf) -> Policy {
        let cx = airlock_policy::Context { home: dir.join("home"), workspace: dir.join("ws") };
        let mut policy = Policy::defaults(&cx);
        let source = Source::Project(dir.join("ws/.airlock/config.toml"));
        policy.sandbox.readable_roots.push(Sourced::new(root, source));
        policy
    }

    #[test]
    fn a_project_root_that_links_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = fs_err::canonicalize(dir.path()).unwrap();
        fs_err::create_dir_all(dir.join("ws")).unwrap();
        fs_err::create_dir_all(dir.join("private")).unwrap();
        std::os::unix::fs::symlink(dir.join("private"), dir.join("ws/docs")).unwrap();
        let policy = policy_with_project_root(&dir, dir.join("ws/docs"));
        let err = SandboxSpec::from_policy(&policy, &dir.join("ws"), &dir.join("ws"), env(&[]), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("resolves to") && msg.contains("private"), "{msg}");
    }

    #[test]
    fn a_project_root_inside_the_workspace_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let dir = fs_err::canonicalize(dir.path()).unwrap();
        fs_err::create_dir_all(dir.join("ws/docs")).unwrap();
        let policy = policy_with_project_root(&dir, dir.join("ws/docs"));
        SandboxSpec::from_policy(&policy, &dir.join("ws"), &dir.join("ws"), env(&[]), &[]).unwrap();
    }

    #[test]
    fn the_root_and_the_home_folder_are_refused_as_workspaces() {
        let home = Path::new("/home/u");
        for ws in ["/", "/home", "/home/u"] {
            let err = check_workspace(Path::new(ws), Some(home)).unwrap_err().to_string();
            assert!(err.contains("hint: run airlock from a project folder"), "{ws}: {err}");
        }
        check_workspace(Path::new("/home/u/proj"), Some(home)).unwrap();
        check_workspace(Path::new("/srv/proj"), None).unwrap();
        assert!(check_workspace(Path::new("/"), None).is_err());
    }

    #[test]
    fn clean_env_keeps_only_the_allowlist() {
        let out = clean_env(
            env(&[("PATH", "/usr/bin"), ("AWS_SECRET_ACCESS_KEY", "x"), ("ANTHROPIC_API_KEY", "y"), ("HOME", "/h")]),
            &[],
        );
        let names: Vec<_> = out.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["HOME", "PATH", "TMPDIR"]);
    }

    #[test]
    fn loader_variables_are_dropped_even_when_asked_for() {
        let out = clean_env(env(&[("LD_PRELOAD", "/x.so"), ("FOO", "1")]), &["LD_PRELOAD".into(), "FOO".into()]);
        assert!(out.iter().all(|(k, _)| k != "LD_PRELOAD"));
        assert!(out.iter().any(|(k, v)| k == "FOO" && v == "1"));
    }

    #[test]
    fn bridges_parse_port_and_absolute_socket() {
        let b: Bridge = "8080=/run/a/broker.sock".parse().unwrap();
        assert_eq!(b, Bridge { port: 8080, socket: "/run/a/broker.sock".into() });
        for bad in ["8080", "0=/a/s", "x=/a/s", "70000=/a/s", "80=rel/s", "80=/"] {
            assert!(bad.parse::<Bridge>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpdir_points_at_the_private_tmp() {
        let out = clean_env(env(&[("TMPDIR", "/host/tmp")]), &["TMPDIR".into()]);
        assert!(out.contains(&("TMPDIR".into(), "/tmp".into())));
        assert_eq!(out.iter().filter(|(k, _)| k == "TMPDIR").count(), 1);
    }

    #[test]
    fn the_private_tmpfs_mounts_fit_in_half_the_memory_budget() {
        // The defaults (1 GiB each, 8 GiB of memory) are left alone.
        assert_eq!(tmpfs_bytes(1024 * MIB, 8192 * MIB), 1024 * MIB);
        // A small budget shrinks them: three mounts, half the budget.
        let each = tmpfs_bytes(1024 * MIB, 64 * MIB);
        assert!(each * PRIVATE_TMPFS_MOUNTS <= 32 * MIB, "{each}");
        assert!(each > 0);
    }

    #[test]
    fn the_address_space_is_a_multiple_of_the_memory_budget() {
        let limits = |memory_bytes| Limits {
            timeout: None,
            memory_bytes,
            processes: 1,
            file_size_bytes: 1,
            cpu_secs: 1,
            output_bytes: 1,
            tmp_bytes: 1,
            address_space_factor: ADDRESS_SPACE_FACTOR,
        };
        assert_eq!(limits(64 * MIB).address_space_bytes(), 256 * MIB);
        assert_eq!(Limits { address_space_factor: 8, ..limits(8192 * MIB) }.address_space_bytes(), 65536 * MIB);
        assert_eq!(limits(8192 * MIB).address_space_bytes(), 32768 * MIB);
        assert_eq!(limits(u64::MAX).address_space_bytes(), u64::MAX);
    }
}
