//! `airlock sandbox --explain`: what would be enforced, and why.

use std::fmt::Write;

use crate::kernel::KernelSupport;
use crate::plan::{Access, Grant, MountOp, Plan};
use crate::seccomp;
use crate::spec::SandboxSpec;

/// Describes, for a person, everything the sandbox would enforce for `spec`.
pub fn explain(spec: &SandboxSpec, plan: &Plan, support: &KernelSupport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kernel:");
    let _ = writeln!(
        s,
        "  landlock ABI {}  seccomp {}  user namespaces {}",
        support
            .landlock_abi
            .map_or("none".to_string(), |a| a.to_string()),
        if support.seccomp { "yes" } else { "no" },
        if support.user_namespaces { "yes" } else { "no" }
    );
    match support.check() {
        Ok(()) => s.push_str("  every layer can be applied in full\n"),
        Err(missing) => {
            let _ = writeln!(s, "  REFUSED: {missing}");
        }
    }
    let _ = writeln!(
        s,
        "\nnamespaces: user (uid/gid mapped to yours), mount, pid, net (no interfaces up), ipc, uts"
    );
    let _ = writeln!(
        s,
        "workspace: {} (writable; cwd {})",
        spec.workspace.display(),
        spec.cwd.display()
    );

    let _ = writeln!(
        s,
        "\nfilesystem view (everything else does not exist inside):"
    );
    for op in &plan.mounts {
        let line = match op {
            MountOp::Bind {
                path,
                access: Access::ReadOnly,
            } => format!("read-only   {}", path.display()),
            MountOp::Bind {
                path,
                access: Access::ReadWrite,
            } => format!("read-write  {}", path.display()),
            MountOp::Bind {
                path,
                access: Access::Device,
            } => format!("device      {}", path.display()),
            MountOp::Symlink { link, target } => {
                format!("symlink     {} -> {}", link.display(), target.display())
            }
            MountOp::Tmpfs { path, bytes } => format!(
                "tmpfs       {} ({} KiB, private)",
                path.display(),
                bytes >> 10
            ),
            MountOp::Proc => "procfs      /proc (this sandbox's processes only)".to_string(),
            MountOp::Devpts => "devpts      /dev/pts (new instance)".to_string(),
            MountOp::MaskFile { path } => {
                format!("hidden      {} (read-denied: empty file)", path.display())
            }
            MountOp::MaskDir { path } => {
                format!("hidden      {} (read-denied: empty folder)", path.display())
            }
            MountOp::ReadOnly { path } => {
                format!("sealed      {} (read-only once built)", path.display())
            }
        };
        let _ = writeln!(s, "  {line}");
    }
    if !plan.placeholders.is_empty() {
        let _ = writeln!(
            s,
            "\nprotected paths created empty and read-only for the run (removed after if unused):"
        );
        for p in &plan.placeholders {
            let _ = writeln!(s, "  {}", p.path.display());
        }
    }

    let _ = writeln!(
        s,
        "\nlandlock (ABI 6 rights; anything not listed is denied):"
    );
    for rule in &plan.landlock {
        let grant = match rule.grant {
            Grant::Read => "read, list, execute",
            Grant::ReadWrite => "read, write, create, remove, execute",
            Grant::Device => "read, write, ioctl on devices",
        };
        let _ = writeln!(s, "  {:<40} {grant}", rule.path.display());
    }
    s.push_str("  TCP bind and connect: denied\n  abstract unix sockets and signals: scoped to the sandbox\n");

    let _ = writeln!(s, "\nseccomp (everything else allowed):");
    for rule in seccomp::rules() {
        let _ = writeln!(s, "  {}", rule.describe());
    }
    s.push_str("  other architectures: killed; x32 syscalls: EPERM\n");

    let l = &spec.limits;
    let _ = writeln!(s, "\nprocess:");
    let _ = writeln!(
        s,
        "  no_new_privs, no capabilities (securebits locked), new session, inherited descriptors closed"
    );
    let _ = writeln!(
        s,
        "  timeout {}  memory {} MiB  processes {}  file size {} MiB  cpu {} s  captured output {} bytes",
        l.timeout
            .map_or("none".to_string(), |t| format!("{} s", t.as_secs())),
        l.memory_bytes >> 20,
        l.processes,
        l.file_size_bytes >> 20,
        l.cpu_secs,
        l.output_bytes
    );
    let names: Vec<String> = spec
        .env
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    let _ = writeln!(s, "  environment: {}", names.join(" "));
    s
}
