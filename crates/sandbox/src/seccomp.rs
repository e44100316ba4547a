//! The seccomp filter: a pure function that builds the BPF program, and one
//! small function that installs it.
//!
//! The program is written out by hand rather than through a filter compiler
//! because it needs a different errno per rule (`EAFNOSUPPORT` for sockets so
//! that resolvers fall back cleanly, `ENOSYS` for `clone3` so that libc falls
//! back to `clone`, whose flags a filter can inspect) and it must refuse the
//! x32 syscall numbers, which share the x86-64 audit architecture.

use std::io;

/// What the filter does with one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the call through.
    Allow,
    /// Fail the call with this errno.
    Errno(i32),
    /// Kill the process (foreign architecture).
    Kill,
}

impl Verdict {
    fn ret(self) -> u32 {
        match self {
            Verdict::Allow => SECCOMP_RET_ALLOW,
            // The errno lives in the low 16 bits (SECCOMP_RET_DATA).
            Verdict::Errno(errno) => SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
            Verdict::Kill => SECCOMP_RET_KILL_PROCESS,
        }
    }
}

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const BPF_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

// Offsets into `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// Offset of the low 32 bits of argument `i` (little-endian targets).
const fn data_arg_low(i: u32) -> u32 {
    16 + 8 * i
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The namespace flags of `clone(2)`. `CLONE_NEWTIME` (0x80) is left out: in
/// `clone(2)` the low byte is the exit signal.
const CLONE_NEW_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;
/// The namespace flags of `unshare(2)`, which also takes `CLONE_NEWTIME`.
const UNSHARE_NEW_FLAGS: u32 = CLONE_NEW_FLAGS | 0x80;

/// The mode bits that make an executable run with its owner's or group's
/// ids. A root caller's sandbox runs as uid 0 (mapped to itself), so a file
/// it creates belongs to root: with these bits it would be a setuid-root
/// binary that outlives the sandbox (`nosuid` holds only inside).
const SETID_BITS: u32 = libc::S_ISUID | libc::S_ISGID;
/// The `open` flags under which the mode argument is used: `O_CREAT`, and
/// `O_TMPFILE` (whose own bit, without `O_DIRECTORY`, is enough to tell it).
const CREATE_FLAGS: u32 = (libc::O_CREAT | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u32;

/// One rule of the table: a system call and what happens to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Always fail with `EPERM`.
    Deny(i64, &'static str),
    /// `socket`/`socketpair`: only `AF_UNIX` is allowed, others fail with `EAFNOSUPPORT`.
    UnixSocketsOnly(i64, &'static str),
    /// `socket`: `AF_UNIX`, `AF_INET` and `AF_INET6` are allowed, others fail with
    /// `EAFNOSUPPORT`. For a sandbox with bridges: its network namespace holds
    /// loopback alone and Landlock limits TCP to the bridged ports.
    LoopbackSockets(i64, &'static str),
    /// `clone`/`unshare`: fail with `EPERM` when any flag of the mask is set in argument 0.
    DenyFlags(i64, &'static str, u32),
    /// `ioctl`: fail with `EPERM` for these requests (argument 1).
    DenyIoctls(i64, &'static [u32]),
    /// Fail with `ENOSYS`, so that libc falls back to an older call the
    /// filter can inspect (the second name).
    NotImplemented(i64, &'static str, &'static str),
    /// `chmod` family, `mknod`, `creat`: fail with `EPERM` when the mode
    /// (this argument) has `S_ISUID` or `S_ISGID`.
    DenySetidMode(i64, &'static str, u32),
    /// `open`/`openat`: fail with `EPERM` when the flags (first argument
    /// index) create a file and the mode (second index) has `S_ISUID` or
    /// `S_ISGID`. Without `O_CREAT`/`O_TMPFILE` the kernel ignores the mode.
    DenySetidCreate(i64, &'static str, u32, u32),
    /// `shmget`: fail with `ENOSPC` (the error of a full shared memory
    /// limit) when the size (this argument, 64-bit) is over the maximum.
    MaxSize(i64, &'static str, u32, u32),
}

/// The largest System V shared memory segment a sandbox may make. Segments
/// stay in memory when detached, where no process limit counts them, and
/// the namespace's own limits cannot be lowered by an ordinary user: with one
/// page each, the namespace's 4096 segments hold at most 16 MiB. Programs that
/// use System V memory today use it for a small interlock (PostgreSQL) and map
/// their real shared memory, which the limits count.
const SYSV_SHM_MAX: u32 = 4096;

/// The ioctls that inject input into a terminal or reach the console.
const DENIED_IOCTLS: &[u32] = &[libc::TIOCSTI as u32, libc::TIOCLINUX as u32];

/// The table the sandbox enforces, as data. Everything not listed is allowed:
/// the other layers (namespaces, Landlock, dropped capabilities) confine the
/// rest, and this filter removes the kernel surface those layers do not cover.
pub fn rules() -> Vec<Rule> {
    use Rule::*;
    let mut rules = vec![
        // Reading or changing other processes.
        Deny(libc::SYS_ptrace, "ptrace"),
        Deny(libc::SYS_process_vm_readv, "process_vm_readv"),
        Deny(libc::SYS_process_vm_writev, "process_vm_writev"),
        Deny(libc::SYS_kcmp, "kcmp"),
        // Large kernel attack surface, and io_uring bypasses this very filter.
        Deny(libc::SYS_io_uring_setup, "io_uring_setup"),
        Deny(libc::SYS_io_uring_enter, "io_uring_enter"),
        Deny(libc::SYS_io_uring_register, "io_uring_register"),
        Deny(libc::SYS_bpf, "bpf"),
        Deny(libc::SYS_perf_event_open, "perf_event_open"),
        Deny(libc::SYS_userfaultfd, "userfaultfd"),
        // The kernel keyring is shared outside the sandbox.
        Deny(libc::SYS_keyctl, "keyctl"),
        Deny(libc::SYS_add_key, "add_key"),
        Deny(libc::SYS_request_key, "request_key"),
        // The mount family.
        Deny(libc::SYS_mount, "mount"),
        Deny(libc::SYS_umount2, "umount2"),
        Deny(libc::SYS_pivot_root, "pivot_root"),
        Deny(libc::SYS_chroot, "chroot"),
        Deny(libc::SYS_open_tree, "open_tree"),
        Deny(libc::SYS_move_mount, "move_mount"),
        Deny(libc::SYS_fsopen, "fsopen"),
        Deny(libc::SYS_fsconfig, "fsconfig"),
        Deny(libc::SYS_fsmount, "fsmount"),
        Deny(libc::SYS_fspick, "fspick"),
        Deny(libc::SYS_mount_setattr, "mount_setattr"),
        // Namespaces: joining any, creating any (see DenyFlags below).
        Deny(libc::SYS_setns, "setns"),
        // The kernel itself.
        Deny(libc::SYS_kexec_load, "kexec_load"),
        Deny(libc::SYS_kexec_file_load, "kexec_file_load"),
        Deny(libc::SYS_init_module, "init_module"),
        Deny(libc::SYS_finit_module, "finit_module"),
        Deny(libc::SYS_delete_module, "delete_module"),
        Deny(libc::SYS_reboot, "reboot"),
        Deny(libc::SYS_swapon, "swapon"),
        Deny(libc::SYS_swapoff, "swapoff"),
        Deny(libc::SYS_acct, "acct"),
        Deny(libc::SYS_syslog, "syslog"),
        Deny(libc::SYS_quotactl, "quotactl"),
        // File handles bypass path-based checks.
        Deny(libc::SYS_open_by_handle_at, "open_by_handle_at"),
        Deny(libc::SYS_name_to_handle_at, "name_to_handle_at"),
        UnixSocketsOnly(libc::SYS_socket, "socket"),
        UnixSocketsOnly(libc::SYS_socketpair, "socketpair"),
        DenyFlags(libc::SYS_clone, "clone", CLONE_NEW_FLAGS),
        DenyFlags(libc::SYS_unshare, "unshare", UNSHARE_NEW_FLAGS),
        NotImplemented(libc::SYS_clone3, "clone3", "clone"),
        DenyIoctls(libc::SYS_ioctl, DENIED_IOCTLS),
        // No setuid or setgid file may be made: every call that sets a mode.
        // (mkdir needs no rule: the kernel keeps only the permission and
        // sticky bits of its mode.) File capabilities, the other way to mark
        // a binary privileged, need CAP_SETFCAP, which the command never has.
        DenySetidMode(libc::SYS_fchmod, "fchmod", 1),
        DenySetidMode(libc::SYS_fchmodat, "fchmodat", 2),
        DenySetidMode(libc::SYS_fchmodat2, "fchmodat2", 2),
        DenySetidMode(libc::SYS_mknodat, "mknodat", 2),
        DenySetidCreate(libc::SYS_openat, "openat", 2, 3),
        // openat2 passes its mode inside a struct the filter cannot read.
        NotImplemented(libc::SYS_openat2, "openat2", "openat"),
        MaxSize(libc::SYS_shmget, "shmget", 1, SYSV_SHM_MAX),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        Deny(libc::SYS_uselib, "uselib"),
        Deny(libc::SYS_ioperm, "ioperm"),
        Deny(libc::SYS_iopl, "iopl"),
        DenySetidMode(libc::SYS_chmod, "chmod", 1),
        DenySetidMode(libc::SYS_mknod, "mknod", 1),
        DenySetidMode(libc::SYS_creat, "creat", 1),
        DenySetidCreate(libc::SYS_open, "open", 1, 2),
    ]);
    rules.shrink_to_fit();
    rules
}

/// The table for a sandbox that has bridges: [`rules`] with IP sockets
/// allowed (they can reach only the sandbox's own loopback).
pub fn rules_with_loopback() -> Vec<Rule> {
    rules()
        .into_iter()
        .map(|r| match r {
            Rule::UnixSocketsOnly(nr, name) if nr == libc::SYS_socket => Rule::LoopbackSockets(nr, name),
            other => other,
        })
        .collect()
}

/// The table for `spec`: IP sockets only where the sandbox has its own
/// loopback to reach (bridges, the name-lookup log), `openat2` only where
/// the spec allows it (airlock's own worker).
pub fn rules_for(spec: &crate::SandboxSpec) -> Vec<Rule> {
    table(!spec.bridges.is_empty() || spec.dns_log.is_some(), spec.allow_openat2)
}

fn table(loopback: bool, openat2: bool) -> Vec<Rule> {
    let rules = match loopback {
        false => rules(),
        true => rules_with_loopback(),
    };
    match openat2 {
        true => rules
            .into_iter()
            .filter(|r| !matches!(r, Rule::NotImplemented(nr, _, _) if *nr == libc::SYS_openat2))
            .collect(),
        false => rules,
    }
}

/// `rules` for a sandbox whose tree no memory cgroup limits: `memfd_create`
/// also fails, with `ENOSYS` so that callers fall back to a file in `/dev/shm`
/// or `/tmp` (whose tmpfs sizes are within the budget). What is written into
/// a memfd with `write` lies in no process's address space, so without a
/// cgroup nothing else would count it.
pub fn without_memory_cgroup(mut rules: Vec<Rule>) -> Vec<Rule> {
    rules.push(Rule::NotImplemented(libc::SYS_memfd_create, "memfd_create", "a file in /dev/shm"));
    rules
}

/// Compiles the rule table into a classic BPF program for `seccomp(2)`.
pub fn program(rules: &[Rule]) -> Vec<libc::sock_filter> {
    let mut p = Vec::with_capacity(rules.len() * 3 + 8);
    // A foreign architecture would give our syscall numbers other meanings.
    p.push(stmt(BPF_LD_W_ABS, DATA_ARCH));
    p.push(jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0));
    p.push(ret(Verdict::Kill));
    p.push(stmt(BPF_LD_W_ABS, DATA_NR));
    #[cfg(target_arch = "x86_64")]
    {
        // x32 numbers share AUDIT_ARCH_X86_64: refuse them all.
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(ret(Verdict::Errno(libc::EPERM)));
    }
    for rule in rules {
        // Each block starts with the syscall number in A and either returns
        // or falls through to the next block with A unchanged.
        let block: Vec<libc::sock_filter> = match *rule {
            Rule::Deny(_, _) => vec![ret(Verdict::Errno(libc::EPERM))],
            Rule::NotImplemented(_, _, _) => vec![ret(Verdict::Errno(libc::ENOSYS))],
            Rule::DenySetidMode(_, _, mode) => vec![
                stmt(BPF_LD_W_ABS, data_arg_low(mode)),
                jump(BPF_JSET_K, SETID_BITS, 0, 1),
                ret(Verdict::Errno(libc::EPERM)),
                ret(Verdict::Allow),
            ],
            Rule::MaxSize(_, _, arg, max) => vec![
                // Any high bit, or a low word over the maximum: too big.
                stmt(BPF_LD_W_ABS, data_arg_low(arg) + 4),
                jump(BPF_JEQ_K, 0, 0, 3),
                stmt(BPF_LD_W_ABS, data_arg_low(arg)),
                jump(BPF_JGE_K, max.saturating_add(1), 1, 0),
                ret(Verdict::Allow),
                ret(Verdict::Errno(libc::ENOSPC)),
            ],
            Rule::DenySetidCreate(_, _, flags, mode) => vec![
                stmt(BPF_LD_W_ABS, data_arg_low(flags)),
                // Not creating: the mode is ignored, allow.
                jump(BPF_JSET_K, CREATE_FLAGS, 0, 3),
                stmt(BPF_LD_W_ABS, data_arg_low(mode)),
                jump(BPF_JSET_K, SETID_BITS, 0, 1),
                ret(Verdict::Errno(libc::EPERM)),
                ret(Verdict::Allow),
            ],
            Rule::UnixSocketsOnly(_, _) => vec![
                stmt(BPF_LD_W_ABS, data_arg_low(0)),
                jump(BPF_JEQ_K, libc::AF_UNIX as u32, 0, 1),
                ret(Verdict::Allow),
                ret(Verdict::Errno(libc::EAFNOSUPPORT)),
            ],
            Rule::LoopbackSockets(_, _) => vec![
                stmt(BPF_LD_W_ABS, data_arg_low(0)),
                jump(BPF_JEQ_K, libc::AF_UNIX as u32, 2, 0),
                jump(BPF_JEQ_K, libc::AF_INET as u32, 1, 0),
                jump(BPF_JEQ_K, libc::AF_INET6 as u32, 0, 1),
                ret(Verdict::Allow),
                ret(Verdict::Errno(libc::EAFNOSUPPORT)),
            ],
            Rule::DenyFlags(_, _, mask) => vec![
                stmt(BPF_LD_W_ABS, data_arg_low(0)),
                jump(BPF_JSET_K, mask, 0, 1),
                ret(Verdict::Errno(libc::EPERM)),
                ret(Verdict::Allow),
            ],
            Rule::DenyIoctls(_, requests) => {
                let mut b = vec![stmt(BPF_LD_W_ABS, data_arg_low(1))];
                for (i, req) in requests.iter().enumerate() {
                    // Jump to the final `ret EPERM` on a match.
                    let to_deny = (requests.len() - i) as u8;
                    b.push(jump(BPF_JEQ_K, *req, to_deny, 0));
                }
                b.push(ret(Verdict::Allow));
                b.push(ret(Verdict::Errno(libc::EPERM)));
                b
            }
        };
        p.push(jump(BPF_JEQ_K, rule.nr() as u32, 0, block.len() as u8));
        p.extend(block);
    }
    p.push(ret(Verdict::Allow));
    p
}

impl Rule {
    fn nr(&self) -> i64 {
        match *self {
            Rule::Deny(nr, _)
            | Rule::UnixSocketsOnly(nr, _)
            | Rule::LoopbackSockets(nr, _)
            | Rule::DenyFlags(nr, _, _)
            | Rule::NotImplemented(nr, _, _)
            | Rule::DenySetidMode(nr, _, _)
            | Rule::DenySetidCreate(nr, _, _, _)
            | Rule::MaxSize(nr, _, _, _)
            | Rule::DenyIoctls(nr, _) => nr,
        }
    }

    /// A one-line description for `airlock sandbox --explain`.
    pub fn describe(&self) -> String {
        match *self {
            Rule::Deny(_, name) => format!("{name}: EPERM"),
            Rule::UnixSocketsOnly(_, name) => format!("{name}: AF_UNIX only, others EAFNOSUPPORT"),
            Rule::LoopbackSockets(_, name) => {
                format!("{name}: AF_UNIX, AF_INET, AF_INET6 only (loopback alone exists), others EAFNOSUPPORT")
            }
            Rule::DenyFlags(_, name, mask) => {
                format!("{name}: EPERM when flags & {mask:#x} (new namespaces)")
            }
            Rule::NotImplemented(_, name, fallback) => format!("{name}: ENOSYS (callers fall back to {fallback})"),
            Rule::DenySetidMode(_, name, _) => format!("{name}: EPERM for a mode with setuid or setgid"),
            Rule::MaxSize(_, name, _, max) => format!("{name}: ENOSPC over {max} bytes"),
            Rule::DenySetidCreate(_, name, _, _) => {
                format!("{name}: EPERM when creating with setuid or setgid in the mode")
            }
            Rule::DenyIoctls(_, _) => "ioctl: TIOCSTI and TIOCLINUX EPERM".to_string(),
        }
    }
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn ret(v: Verdict) -> libc::sock_filter {
    stmt(BPF_RET_K, v.ret())
}

/// Installs the program on the calling thread. `no_new_privs` must already be
/// set (Landlock sets it). Fails if the kernel refuses the filter.
pub fn install(program: &[libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel
    // copies the filter.
    let rc =
        unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The filter of a process that must reach no network at all (airlock's
/// offline mode): sockets other than `AF_UNIX` fail with `EAFNOSUPPORT`.
pub fn offline_rules() -> Vec<Rule> {
    vec![Rule::UnixSocketsOnly(libc::SYS_socket, "socket"), Rule::UnixSocketsOnly(libc::SYS_socketpair, "socketpair")]
}

/// Puts the calling thread, and every thread and process it starts after,
/// under [`offline_rules`] (setting `no_new_privs`). Call it before any other
/// thread exists: threads already running are not covered.
pub fn forbid_network() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    install(&program(&offline_rules()))
}

/// Whether this kernel supports seccomp filters.
pub fn supported() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    rc >= 0
}

#[cfg(test)]
// Ioctl request types differ between targets (c_ulong, c_int): keep the casts.
#[allow(clippy::unnecessary_cast)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the subset the program uses, so the
    /// table can be checked without installing it.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Verdict {
        let mut data = Vec::new();
        data.extend(nr.to_le_bytes());
        data.extend(arch.to_le_bytes());
        data.extend(0u64.to_le_bytes());
        for a in args {
            data.extend(a.to_le_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    let k = ins.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                    let taken = match ins.code {
                        BPF_JEQ_K => a == ins.k,
                        BPF_JGE_K => a >= ins.k,
                        _ => a & ins.k != 0,
                    };
                    pc += 1 + if taken { ins.jt as usize } else { ins.jf as usize };
                }
                BPF_RET_K => {
                    return match ins.k & 0xffff_0000 {
                        SECCOMP_RET_ALLOW => Verdict::Allow,
                        SECCOMP_RET_ERRNO => Verdict::Errno((ins.k & 0xffff) as i32),
                        SECCOMP_RET_KILL_PROCESS => Verdict::Kill,
                        other => panic!("unexpected return {other:#x}"),
                    };
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn eval(nr: i64, args: [u64; 6]) -> Verdict {
        run(&program(&rules()), AUDIT_ARCH, nr as u32, args)
    }

    #[test]
    fn with_bridges_ip_sockets_are_allowed_and_nothing_else_changes() {
        let prog = program(&rules_with_loopback());
        let socket = |family: i32| run(&prog, AUDIT_ARCH, libc::SYS_socket as u32, [family as u64, 1, 0, 0, 0, 0]);
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            assert_eq!(socket(family), Verdict::Allow, "family {family}");
        }
        for family in [libc::AF_PACKET, libc::AF_NETLINK, libc::AF_VSOCK, libc::AF_BLUETOOTH] {
            assert_eq!(socket(family), Verdict::Errno(libc::EAFNOSUPPORT), "family {family}");
        }
        let pair = run(&prog, AUDIT_ARCH, libc::SYS_socketpair as u32, [libc::AF_INET as u64, 1, 0, 0, 0, 0]);
        assert_eq!(pair, Verdict::Errno(libc::EAFNOSUPPORT));
        assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_ptrace as u32, [0; 6]), Verdict::Errno(libc::EPERM));
        assert_eq!(rules_with_loopback().len(), rules().len());
    }

    #[test]
    fn ordinary_calls_are_allowed() {
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_openat, libc::SYS_execve, libc::SYS_exit_group] {
            assert_eq!(eval(nr, [0; 6]), Verdict::Allow, "syscall {nr}");
        }
    }

    #[test]
    fn every_denied_call_fails_with_eperm() {
        for rule in rules() {
            if let Rule::Deny(nr, name) = rule {
                assert_eq!(eval(nr, [0; 6]), Verdict::Errno(libc::EPERM), "{name}");
            }
        }
        for nr in [libc::SYS_ptrace, libc::SYS_io_uring_setup, libc::SYS_bpf, libc::SYS_mount, libc::SYS_keyctl] {
            assert_eq!(eval(nr, [0; 6]), Verdict::Errno(libc::EPERM));
        }
    }

    #[test]
    fn openat2_passes_only_for_the_worker() {
        for loopback in [false, true] {
            let command = program(&table(loopback, false));
            let worker = program(&table(loopback, true));
            let openat2 = |prog: &[libc::sock_filter]| run(prog, AUDIT_ARCH, libc::SYS_openat2 as u32, [0; 6]);
            assert_eq!(openat2(&command), Verdict::Errno(libc::ENOSYS));
            assert_eq!(openat2(&worker), Verdict::Allow);
            // Everything else stays as it is: one rule fewer, the setuid rules kept.
            assert_eq!(table(loopback, true).len() + 1, table(loopback, false).len());
            let chmod = run(&worker, AUDIT_ARCH, libc::SYS_fchmodat as u32, [0, 0, 0o4755, 0, 0, 0]);
            assert_eq!(chmod, Verdict::Errno(libc::EPERM));
        }
    }

    #[test]
    fn offline_allows_unix_sockets_and_nothing_else_of_the_network() {
        let prog = program(&offline_rules());
        let eval = |nr: i64, family: i32| run(&prog, AUDIT_ARCH, nr as u32, [family as u64, 1, 0, 0, 0, 0]);
        assert_eq!(eval(libc::SYS_socket, libc::AF_UNIX), Verdict::Allow);
        for family in [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET, libc::AF_NETLINK] {
            assert_eq!(eval(libc::SYS_socket, family), Verdict::Errno(libc::EAFNOSUPPORT), "family {family}");
        }
        assert_eq!(eval(libc::SYS_unshare, 0), Verdict::Allow, "the sandbox can still be built under it");
    }

    #[test]
    fn only_unix_sockets_are_allowed() {
        let unix = libc::AF_UNIX as u64;
        assert_eq!(eval(libc::SYS_socket, [unix, 1, 0, 0, 0, 0]), Verdict::Allow);
        assert_eq!(eval(libc::SYS_socketpair, [unix, 1, 0, 0, 0, 0]), Verdict::Allow);
        for family in [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET, libc::AF_NETLINK, libc::AF_VSOCK] {
            assert_eq!(
                eval(libc::SYS_socket, [family as u64, 1, 0, 0, 0, 0]),
                Verdict::Errno(libc::EAFNOSUPPORT),
                "family {family}"
            );
        }
    }

    #[test]
    fn new_namespaces_are_denied_but_fork_and_threads_are_not() {
        let fork = libc::SIGCHLD as u64;
        let thread =
            (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD) as u64;
        assert_eq!(eval(libc::SYS_clone, [fork, 0, 0, 0, 0, 0]), Verdict::Allow);
        assert_eq!(eval(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), Verdict::Allow);
        let user = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
        assert_eq!(eval(libc::SYS_clone, [user, 0, 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        assert_eq!(eval(libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        assert_eq!(eval(libc::SYS_unshare, [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        assert_eq!(eval(libc::SYS_unshare, [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]), Verdict::Allow);
        assert_eq!(eval(libc::SYS_clone3, [0; 6]), Verdict::Errno(libc::ENOSYS));
    }

    #[test]
    fn terminal_injection_ioctls_are_denied() {
        let tiocsti = libc::TIOCSTI as u64;
        assert_eq!(eval(libc::SYS_ioctl, [0, tiocsti, 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        assert_eq!(eval(libc::SYS_ioctl, [0, libc::TIOCLINUX as u64, 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        // The upper half of the request is ignored by the kernel, so by us too.
        assert_eq!(eval(libc::SYS_ioctl, [0, tiocsti | (1 << 32), 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        assert_eq!(eval(libc::SYS_ioctl, [0, libc::TCGETS as u64, 0, 0, 0, 0]), Verdict::Allow);
    }

    #[test]
    fn setuid_and_setgid_modes_are_refused_through_the_whole_chmod_family() {
        let eperm = Verdict::Errno(libc::EPERM);
        let mut calls = vec![(libc::SYS_fchmod, 1), (libc::SYS_fchmodat, 2), (libc::SYS_fchmodat2, 2)];
        #[cfg(target_arch = "x86_64")]
        calls.push((libc::SYS_chmod, 1));
        for (nr, mode_arg) in calls {
            let with_mode = |mode: u32| {
                let mut args = [0u64; 6];
                args[mode_arg] = mode as u64;
                eval(nr, args)
            };
            assert_eq!(with_mode(0o4755), eperm, "syscall {nr}: setuid");
            assert_eq!(with_mode(0o2755), eperm, "syscall {nr}: setgid");
            assert_eq!(with_mode(0o6777), eperm, "syscall {nr}: both");
            assert_eq!(with_mode(0o755), Verdict::Allow, "syscall {nr}: ordinary mode");
            assert_eq!(with_mode(0o1777), Verdict::Allow, "syscall {nr}: sticky is harmless");
        }
    }

    #[test]
    fn creating_a_file_with_setuid_or_setgid_is_refused() {
        let eperm = Verdict::Errno(libc::EPERM);
        let creat = libc::O_CREAT as u64 | libc::O_WRONLY as u64;
        let tmpfile = libc::O_TMPFILE as u64 | libc::O_RDWR as u64;
        // openat(dirfd, path, flags, mode)
        let openat = |flags: u64, mode: u64| eval(libc::SYS_openat, [0, 0, flags, mode, 0, 0]);
        assert_eq!(openat(creat, 0o4755), eperm);
        assert_eq!(openat(creat | libc::O_EXCL as u64, 0o2755), eperm);
        assert_eq!(openat(tmpfile, 0o4755), eperm);
        assert_eq!(openat(creat, 0o755), Verdict::Allow);
        // Without O_CREAT the mode is ignored, and may hold anything.
        assert_eq!(openat(libc::O_RDONLY as u64, 0o4755), Verdict::Allow);
        assert_eq!(openat(libc::O_DIRECTORY as u64, 0o6777), Verdict::Allow, "O_DIRECTORY alone is no O_TMPFILE");
        // mknodat(dirfd, path, mode, dev): a regular file made with the bits.
        let regular = libc::S_IFREG as u64;
        assert_eq!(eval(libc::SYS_mknodat, [0, 0, regular | 0o4755, 0, 0, 0]), eperm);
        assert_eq!(eval(libc::SYS_mknodat, [0, 0, libc::S_IFIFO as u64 | 0o644, 0, 0, 0]), Verdict::Allow);
        // openat2 carries its mode in a struct: it is not implemented, so
        // libc and runtimes use openat, which the filter can read.
        assert_eq!(eval(libc::SYS_openat2, [0; 6]), Verdict::Errno(libc::ENOSYS));
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(eval(libc::SYS_open, [0, creat, 0o4755, 0, 0, 0]), eperm);
            assert_eq!(eval(libc::SYS_open, [0, creat, 0o644, 0, 0, 0]), Verdict::Allow);
            assert_eq!(eval(libc::SYS_open, [0, libc::O_RDONLY as u64, 0o4755, 0, 0, 0]), Verdict::Allow);
            assert_eq!(eval(libc::SYS_creat, [0, 0o2755, 0, 0, 0, 0]), eperm);
            assert_eq!(eval(libc::SYS_creat, [0, 0o644, 0, 0, 0, 0]), Verdict::Allow);
            assert_eq!(eval(libc::SYS_mknod, [0, regular | 0o6755, 0, 0, 0, 0]), eperm);
        }
    }

    #[test]
    fn only_small_sysv_shared_memory_segments_can_be_made() {
        let shmget = |size: u64| eval(libc::SYS_shmget, [0, size, 0o600, 0, 0, 0]);
        assert_eq!(shmget(56), Verdict::Allow, "PostgreSQL's interlock");
        assert_eq!(shmget(4096), Verdict::Allow);
        assert_eq!(shmget(4097), Verdict::Errno(libc::ENOSPC));
        assert_eq!(shmget(512 << 20), Verdict::Errno(libc::ENOSPC));
        assert_eq!(shmget(1 << 32), Verdict::Errno(libc::ENOSPC), "a size in the high word alone");
        assert_eq!(shmget((1 << 32) | 16), Verdict::Errno(libc::ENOSPC));
    }

    #[test]
    fn without_a_memory_cgroup_memfd_is_not_implemented_and_nothing_else_changes() {
        let prog = program(&without_memory_cgroup(rules()));
        let memfd = run(&prog, AUDIT_ARCH, libc::SYS_memfd_create as u32, [0; 6]);
        assert_eq!(memfd, Verdict::Errno(libc::ENOSYS));
        assert_eq!(eval(libc::SYS_memfd_create, [0; 6]), Verdict::Allow, "a cgroup counts memfd pages");
        assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_ptrace as u32, [0; 6]), Verdict::Errno(libc::EPERM));
        assert_eq!(without_memory_cgroup(rules()).len(), rules().len() + 1);
    }

    #[test]
    fn the_upper_half_of_a_mode_does_not_hide_the_bits() {
        // The kernel reads a mode as a 16-bit umode_t: the filter checks the low word.
        let high = 1u64 << 32;
        assert_eq!(eval(libc::SYS_fchmod, [0, high | 0o4755, 0, 0, 0, 0]), Verdict::Errno(libc::EPERM));
        assert_eq!(eval(libc::SYS_fchmod, [0, high | 0o755, 0, 0, 0, 0]), Verdict::Allow);
    }

    #[test]
    fn foreign_architectures_are_killed() {
        let prog = program(&rules());
        assert_eq!(run(&prog, 0x4000_0003 /* i386 */, libc::SYS_read as u32, [0; 6]), Verdict::Kill);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_syscall_numbers_are_denied() {
        let x32_socket = X32_SYSCALL_BIT | libc::SYS_socket as u32;
        assert_eq!(
            run(&program(&rules()), AUDIT_ARCH, x32_socket, [libc::AF_INET as u64, 0, 0, 0, 0, 0]),
            Verdict::Errno(libc::EPERM)
        );
    }

    #[test]
    fn jumps_stay_in_range() {
        let prog = program(&rules());
        assert!(prog.len() < u16::MAX as usize);
        for (pc, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == 0x05 {
                assert!(pc + 1 + (ins.jt.max(ins.jf) as usize) < prog.len(), "jump at {pc} leaves the program");
            }
        }
    }
}
