//! `airlock sandbox --explain`: what would be enforced, and why.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use airlock_policy::{Policy, Sourced};

use crate::kernel::KernelSupport;
use crate::plan::{Access, Grant, MountOp, Plan};
use crate::seccomp;
use crate::spec::SandboxSpec;

/// Describes, for a person, everything the sandbox would enforce for `spec`
/// (built from `policy`), and where each setting came from.
pub fn explain(spec: &SandboxSpec, plan: &Plan, support: &KernelSupport, policy: &Policy) -> String {
    let mut s = String::new();
    let abi = support.landlock_abi.map_or("none".to_string(), |a| a.to_string());
    let yes = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(s, "kernel:");
    let _ = writeln!(
        s,
        "  landlock ABI {abi}  seccomp {}  user namespaces {}",
        yes(support.seccomp),
        yes(support.user_namespaces)
    );
    match support.check() {
        Ok(()) => s.push_str("  every layer can be applied in full\n"),
        Err(missing) => {
            let _ = writeln!(s, "  REFUSED: {missing}");
        }
    }
    s.push_str("\nnamespaces: user (your uid and gid, nothing else mapped), mount, pid, ipc, uts,\n");
    s.push_str("  net (a new one with only a loopback that is down: no network at all)\n");
    if policy.network.mode.value == airlock_policy::NetworkMode::Proxy {
        let _ = writeln!(
            s,
            "  network mode `proxy` [{}] needs the egress broker, which is not built yet: the command gets none",
            policy.network.mode.source
        );
    }
    let _ = writeln!(s, "workspace: {} (writable; cwd {})", spec.workspace.display(), spec.cwd.display());

    let why = |path: &Path| source_of(policy, path).map(|src| format!("  [{src}]")).unwrap_or_default();
    s.push_str("\nfilesystem view (nothing else of the host exists inside):\n");
    for op in &plan.mounts {
        let line = match op {
            MountOp::Bind { path, access: Access::ReadOnly } if path.starts_with(&spec.workspace) => {
                format!("read-only   {}  [protected path]", path.display())
            }
            MountOp::Bind { path, access: Access::ReadWrite } if path.starts_with(&spec.workspace) => {
                if path == &spec.workspace {
                    format!("read-write  {}  [the workspace]", path.display())
                } else {
                    format!("pinned      {}  [holds a protected path: cannot be renamed]", path.display())
                }
            }
            MountOp::Bind { path, access: Access::ReadOnly } => format!("read-only   {}{}", path.display(), why(path)),
            MountOp::Bind { path, access: Access::ReadWrite } => format!("read-write  {}{}", path.display(), why(path)),
            MountOp::Bind { path, access: Access::Device } => format!("device      {}", path.display()),
            MountOp::Symlink { link, target } => format!("symlink     {} -> {}", link.display(), target.display()),
            MountOp::BindAt { source, target } => {
                format!("read-write  {} (shows {}: the agent's own state)", target.display(), source.display())
            }
            MountOp::Tmpfs { path, bytes } => {
                format!(
                    "tmpfs       {} ({} KiB, private: host files and sockets stay outside)",
                    path.display(),
                    bytes >> 10
                )
            }
            MountOp::Proc => "procfs      /proc (only this sandbox's processes)".to_string(),
            MountOp::Devpts => "devpts      /dev/pts (a new instance)".to_string(),
            MountOp::MaskFile { path } => format!("hidden      {} (empty file){}", path.display(), why(path)),
            MountOp::MaskDir { path } => format!("hidden      {} (empty folder){}", path.display(), why(path)),
            MountOp::Replace { path, .. } => {
                format!("cleaned     {} (a copy without registry tokens){}", path.display(), why(path))
            }
            MountOp::ShowFile { source, target } => {
                format!("read-only   {} (shows {}: executable)", target.display(), source.display())
            }
            MountOp::ReadOnly { path } => format!("sealed      {} (read-only once built)", path.display()),
        };
        let _ = writeln!(s, "  {line}");
    }
    if !plan.placeholders.is_empty() {
        s.push_str("\nmissing protected paths, created empty and read-only for the run (removed after):\n");
        for p in &plan.placeholders {
            let _ = writeln!(s, "  {}", p.path.display());
        }
    }

    s.push_str("\nlandlock (ABI 6 rights; anything not listed is denied):\n");
    for rule in &plan.landlock {
        let grant = match rule.grant {
            Grant::Read => "read, list, execute",
            Grant::ReadWrite => "read, write, create, remove, execute",
            Grant::Device => "read, write, ioctl on devices",
        };
        let _ = writeln!(s, "  {:<40} {grant}", rule.path.display());
    }
    match spec.bridges.is_empty() {
        true => s.push_str("  TCP bind and connect: denied\n"),
        false => {
            let ports: Vec<String> = spec.bridges.iter().map(|b| b.port.to_string()).collect();
            let _ = writeln!(s, "  TCP connect: only to 127.0.0.1 ports {} (bridges); bind: denied", ports.join(", "));
        }
    }
    s.push_str("  abstract unix sockets and signals: only within the sandbox\n");
    if !spec.bridges.is_empty() {
        s.push_str("\nnetwork (loopback alone; each bridge carries its port to a socket outside):\n");
        for b in &spec.bridges {
            let _ = writeln!(s, "  127.0.0.1:{:<6} -> {}", b.port, b.socket.display());
        }
    }

    s.push_str("\nseccomp (everything else allowed):\n");
    if let Some(log) = &spec.dns_log {
        let _ = writeln!(s, "  name lookups: answered REFUSED on 127.0.0.1:53, each name sent to {}", log.display());
    }
    let rules = seccomp::rules_for(spec);
    for rule in rules {
        let _ = writeln!(s, "  {}", rule.describe());
    }
    s.push_str("  other architectures: killed; x32 system calls: EPERM\n");

    let l = &spec.limits;
    let pl = &policy.limits;
    s.push_str("\nprocess:\n");
    s.push_str("  no_new_privs; no capabilities (securebits locked); a new session; inherited descriptors closed\n");
    let timeout = l.timeout.map_or("none".to_string(), |t| format!("{} s", t.as_secs()));
    let rows = [
        ("timeout (whole tree)", timeout, &pl.timeout_secs.source),
        ("memory", format!("{} MiB", l.memory_bytes >> 20), &pl.memory_mb.source),
        ("processes", l.processes.to_string(), &pl.processes.source),
        ("file size", format!("{} MiB", l.file_size_bytes >> 20), &pl.file_size_mb.source),
        ("cpu per process", format!("{} s", l.cpu_secs), &pl.cpu_secs.source),
        ("captured output", format!("{} bytes per stream", l.output_bytes), &pl.output_bytes.source),
        ("private tmpfs, each", format!("{} MiB", l.tmp_bytes >> 20), &pl.tmp_size_mb.source),
    ];
    for (what, value, source) in rows {
        let _ = writeln!(s, "  {what:<22} {value:<24} [{source}]");
    }
    let _ = writeln!(
        s,
        "  memory is capped for the whole tree (tmpfs included) by a memory cgroup where one can be made;\n  \
         elsewhere per process: {} MiB of data, {} MiB of address space (shared memory included), and no memfd",
        l.memory_bytes >> 20,
        l.address_space_bytes() >> 20
    );
    s.push_str(
        "  disk: each file up to the file size; /tmp, /dev/shm and a private home up to their tmpfs size;\n  \
         the workspace and writable roots have no total cap: they can grow until their filesystem is full\n",
    );
    let names: Vec<String> = spec.env.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
    let _ = writeln!(s, "  environment (allowlist): {}", names.join(" "));
    s
}

/// Which policy entry put `path` in the plan: the entry itself or what it resolves to.
fn source_of(policy: &Policy, path: &Path) -> Option<String> {
    let sb = &policy.sandbox;
    let lists: [&[Sourced<PathBuf>]; 4] = [&sb.writable_roots, &sb.readable_roots, &sb.toolchain_roots, &sb.deny_read];
    lists
        .into_iter()
        .flatten()
        .find(|e| e.value == path || fs_err::canonicalize(&e.value).is_ok_and(|c| c == path))
        .map(|e| e.source.to_string())
}
