//! Running a command in the sandbox.
//!
//! Three processes:
//!
//! ```text
//! airlock (the caller)        keeps its own namespaces; keeps the timeout,
//!   |                         captures output, removes placeholders
//!   +-- init (pid 1)          cloned into new user, pid, net, ipc and uts
//!         |                   namespaces; maps its uid, unshares the mount
//!         |                   namespace, builds the root, pivots; when the
//!         |                   command exits, init exits and the kernel kills
//!         |                   everything left in the namespace
//!         +-- command (pid 2) setsid, limits, Landlock, no capabilities,
//!                             seccomp, exec
//! ```
//!
//! The caller must be single-threaded (the CLI is; a multi-threaded program
//! runs `airlock sandbox` as a child), so the forked processes may allocate.

use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::SandboxError;
use crate::bridge;
use crate::capture::{CappedBuffer, Captured};
use crate::cgroup::{MemoryCgroup, PidsCgroup};
use crate::kernel::KernelSupport;
use crate::plan::{self, Grant, Plan};
use crate::root::build_root;
use crate::seccomp;
use crate::spec::SandboxSpec;

/// What to do with the command's standard output and error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// Share the caller's.
    Inherit,
    /// Capture each stream, keeping at most `limits.output_bytes` of it.
    Capture,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code (128 + N when killed by signal N, as shells report).
    Exited(i32),
    /// It ran past the timeout; the whole process tree was killed.
    TimedOut,
    /// The caller got this signal (SIGINT, SIGTERM, SIGHUP or SIGQUIT) while
    /// the command ran; the whole process tree was killed and cleaned up.
    Interrupted(i32),
}

/// The result of a sandboxed run.
#[derive(Debug)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Captured standard output (empty when inherited).
    pub stdout: Captured,
    /// Captured standard error (empty when inherited).
    pub stderr: Captured,
    /// Wall-clock time from start to end.
    pub elapsed: Duration,
}

/// Landlock ABI whose rights the sandbox handles (see `kernel::MIN_LANDLOCK_ABI`).
const LANDLOCK_ABI: ABI = ABI::V6;

/// Runs `argv` confined by `spec` and waits for it.
pub fn run(spec: &SandboxSpec, argv: &[OsString], stdio: Stdio) -> Result<Outcome, SandboxError> {
    if argv.is_empty() {
        return Err(SandboxError::Usage("no command given".into()));
    }
    KernelSupport::probe().check().map_err(SandboxError::Unavailable)?;
    ensure_single_threaded()?;
    let plan = plan::plan(spec, &crate::host::HostFs::new(crate::kernel::real_root()))?;
    let rules = seccomp::rules_for(spec);
    let filter = seccomp::program(&rules);
    let filter_without_cgroup = seccomp::program(&seccomp::without_memory_cgroup(rules));
    // The bridge process needs no socket but Unix ones.
    let bridge_filter = seccomp::program(&seccomp::rules());
    let prepared = Prepared::new(spec, argv)?;

    // From here a Ctrl-C or a kill of the caller ends the command and still
    // removes the placeholders, instead of killing the caller midway.
    let signals = Signals::block()?;
    let workspace_lock = WorkspaceLock::acquire(&spec.workspace)?;
    let created = create_placeholders(&plan)?;
    let filters = Filters { command: &filter, command_without_cgroup: &filter_without_cgroup, bridge: &bridge_filter };
    let result = run_prepared(spec, &plan, filters, &prepared, stdio, &signals);
    workspace_lock.remove_placeholders_if_alone(&created);
    result
}

/// The signals that end a run early, blocked in the caller and read from a
/// signalfd while the command runs; the mask is restored on drop (and in the
/// command before exec).
struct Signals {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

const ENDING_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

impl Signals {
    fn block() -> Result<Signals, SandboxError> {
        let setup = |source| SandboxError::Setup { step: "block signals".into(), source };
        // SAFETY: sigset_t is plain data, initialised by sigemptyset.
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid sigset pointers; signalfd returns a new fd we own.
        unsafe {
            libc::sigemptyset(&mut mask);
            for sig in ENDING_SIGNALS {
                libc::sigaddset(&mut mask, sig);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &mask, &mut old_mask) != 0 {
                return Err(setup(io::Error::last_os_error()));
            }
            let fd = libc::signalfd(-1, &mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let e = io::Error::last_os_error();
                libc::sigprocmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
                return Err(setup(e));
            }
            Ok(Signals { fd: OwnedFd::from_raw_fd(fd), old_mask })
        }
    }

    /// The signal that arrived, if any.
    fn take(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data; we read at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading into our own struct from an fd we own.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in `block`.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// Everything the children need, allocated before forking.
struct Prepared {
    argv: Vec<CString>,
    env: Vec<CString>,
    /// Candidate paths for the program, in `PATH` order.
    program: Vec<CString>,
}

impl Prepared {
    fn new(spec: &SandboxSpec, argv: &[OsString]) -> Result<Prepared, SandboxError> {
        let c = |s: &[u8]| CString::new(s).map_err(|_| SandboxError::Usage("an argument contains a NUL byte".into()));
        let argv_c = argv.iter().map(|a| c(a.as_bytes())).collect::<Result<Vec<_>, _>>()?;
        let env = spec
            .env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                c(&kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = argv[0].as_bytes();
        let program = if name.contains(&b'/') {
            vec![c(name)?]
        } else {
            let path =
                spec.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_bytes()).unwrap_or(b"/usr/bin:/bin");
            path.split(|b| *b == b':')
                .map(|dir| {
                    let dir = if dir.is_empty() { b".".as_slice() } else { dir };
                    let mut full = dir.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(name);
                    c(&full)
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(Prepared { argv: argv_c, env, program })
    }
}

/// The seccomp programs of the command and of the bridge process.
#[derive(Clone, Copy)]
struct Filters<'a> {
    command: &'a [libc::sock_filter],
    /// The command's, where no memory cgroup limits the tree.
    command_without_cgroup: &'a [libc::sock_filter],
    bridge: &'a [libc::sock_filter],
}

fn run_prepared(
    spec: &SandboxSpec,
    plan: &Plan,
    filters: Filters,
    prepared: &Prepared,
    stdio: Stdio,
    signals: &Signals,
) -> Result<Outcome, SandboxError> {
    let start = Instant::now();
    let (status_r, status_w) = pipe()?;
    let capture = match stdio {
        Stdio::Inherit => None,
        Stdio::Capture => Some((pipe()?, pipe()?)),
    };

    // RLIMIT_NPROC does not bind root of the machine: such a caller gets a
    // pids cgroup. (A uid 0 in another user namespace is bound by the limit.)
    let pids = match crate::kernel::real_root() {
        true => Some(PidsCgroup::create(spec.limits.processes).map_err(SandboxError::Unavailable)?),
        false => None,
    };
    // Memory: a cgroup for the whole tree wherever one can be made, else
    // each process's address space is capped (spec::Limits::address_space_bytes).
    let memory = MemoryCgroup::create(spec.limits.memory_bytes);
    let (pids, memory) = crate::cgroup::one_cgroup_on_v2(pids, memory, spec.limits.processes);
    let address_space = match memory {
        Some(_) => None,
        None => Some(spec.limits.address_space_bytes()),
    };
    let filters = match memory {
        Some(_) => filters,
        None => Filters { command: filters.command_without_cgroup, ..filters },
    };
    // The cgroups are joined before any process they limit exists. On v1,
    // init joins them itself, first thing, through `tasks` files opened
    // here (cheap: see cgroup::open_tasks); on v2 the caller moves init, and
    // init waits on `go` before it starts the command.
    let pids_tasks = pids.as_ref().and_then(PidsCgroup::tasks);
    let memory_tasks = memory.as_ref().and_then(MemoryCgroup::tasks);
    let join_fds: Vec<RawFd> = pids_tasks.iter().chain(&memory_tasks).map(AsRawFd::as_raw_fd).collect();
    let caller_joins_pids = pids.as_ref().filter(|_| pids_tasks.is_none());
    let caller_joins_memory = memory.as_ref().filter(|_| memory_tasks.is_none());
    let go = match caller_joins_pids.is_some() || caller_joins_memory.is_some() {
        true => Some(pipe()?),
        false => None,
    };
    // SAFETY: geteuid and getegid have no preconditions.
    let ids = unsafe { (libc::geteuid(), libc::getegid()) };

    let init = clone_into_namespaces()?;
    if init == 0 {
        drop(status_r);
        let capture_fds = capture.as_ref().map(|((_, ow), (_, ew))| (ow.as_raw_fd(), ew.as_raw_fd()));
        let inside = Inside {
            spec,
            plan,
            filters,
            prepared,
            ids,
            status_fd: status_w.as_raw_fd(),
            go_fd: go.as_ref().map(|(r, _)| r.as_raw_fd()),
            join_fds: &join_fds,
            address_space,
            capture: capture_fds,
            signal_mask: signals.old_mask,
        };
        init_main(&inside)
    }
    drop((pids_tasks, memory_tasks));
    if let Some((_, go_w)) = &go {
        let joined = caller_joins_pids.map_or(Ok(()), |c| c.add(init));
        let joined = joined.and_then(|()| caller_joins_memory.map_or(Ok(()), |c| c.add(init)));
        let joined = joined.and_then(|()| {
            // SAFETY: writing one byte from our buffer to our pipe.
            match unsafe { libc::write(go_w.as_raw_fd(), [1u8].as_ptr().cast(), 1) } {
                1 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            }
        });
        if let Err(source) = joined {
            // SAFETY: `init` is our child and has not been reaped yet.
            unsafe { libc::kill(init, libc::SIGKILL) };
            let _ = wait_for(init);
            return Err(SandboxError::Setup { step: "join the sandbox's cgroups".into(), source });
        }
    }
    drop(go);
    drop(status_w);
    // Landlock ABI 6 means Linux 6.12, so pidfd_open (5.3) is there; without
    // it the timeout could not be kept, so refuse rather than run unbounded.
    let Some(init_pidfd) = pidfd_open(init) else {
        let source = io::Error::last_os_error();
        // SAFETY: `init` is our child and has not been reaped yet.
        unsafe { libc::kill(init, libc::SIGKILL) };
        let _ = wait_for(init);
        return Err(SandboxError::Setup { step: "pidfd_open".into(), source });
    };
    let (out_r, err_r) = match capture {
        Some(((out_r, out_w), (err_r, err_w))) => {
            drop((out_w, err_w));
            (Some(out_r), Some(err_r))
        }
        None => (None, None),
    };

    // The status pipe closes when the command has been exec'd; anything
    // written to it first is a setup failure.
    let mut report = Vec::new();
    let _ = std::fs::File::from(status_r).read_to_end(&mut report);
    if !report.is_empty() {
        let _ = wait_for(init);
        return Err(ChildReport::decode(&report).into_error(&prepared.argv[0]));
    }

    let deadline = spec.limits.timeout.map(|t| start + t);
    let limit = spec.limits.output_bytes as usize;
    let mut stdout = CappedBuffer::new(limit);
    let mut stderr = CappedBuffer::new(limit);
    let ending = supervise(init, &init_pidfd, signals, deadline, out_r, err_r, &mut stdout, &mut stderr)?;
    let code = wait_for(init)?;
    Ok(Outcome {
        status: match ending {
            Ending::Exited => Status::Exited(code),
            Ending::Killed(status) => status,
        },
        stdout: stdout.finish(),
        stderr: stderr.finish(),
        elapsed: start.elapsed(),
    })
}

/// How supervision ended.
enum Ending {
    /// Init exited by itself.
    Exited,
    /// The caller killed it, for this reason.
    Killed(Status),
}

/// Waits for init to exit, reading captured output as it comes; kills init
/// (and so the whole namespace) at the deadline or on an ending signal.
#[allow(clippy::too_many_arguments)]
fn supervise(
    init: libc::pid_t,
    pidfd: &OwnedFd,
    signals: &Signals,
    deadline: Option<Instant>,
    mut out: Option<OwnedFd>,
    mut err: Option<OwnedFd>,
    stdout: &mut CappedBuffer,
    stderr: &mut CappedBuffer,
) -> Result<Ending, SandboxError> {
    let mut ending = Ending::Exited;
    let mut exited = false;
    let mut buf = vec![0u8; 64 * 1024];
    let kill = |why: Status, ending: &mut Ending| {
        if matches!(ending, Ending::Exited) {
            // SAFETY: `init` is our child and has not been reaped yet.
            unsafe { libc::kill(init, libc::SIGKILL) };
            *ending = Ending::Killed(why);
        }
    };
    loop {
        if exited && out.is_none() && err.is_none() {
            return Ok(ending);
        }
        let mut fds = Vec::with_capacity(4);
        fds.push(libc::pollfd { fd: signals.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        if !exited {
            fds.push(libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        for fd in [&out, &err].into_iter().flatten() {
            fds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let timeout_ms = match (deadline, &ending) {
            (Some(d), Ending::Exited) => {
                d.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32
            }
            _ => -1,
        };
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SandboxError::Setup { step: "poll".into(), source: e });
        }
        if n == 0 {
            // Deadline: killing init makes the kernel kill the whole namespace.
            kill(Status::TimedOut, &mut ending);
            continue;
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == signals.fd.as_raw_fd() {
                if let Some(sig) = signals.take() {
                    kill(Status::Interrupted(sig), &mut ending);
                }
                continue;
            }
            if p.fd == pidfd.as_raw_fd() {
                exited = true;
                continue;
            }
            let (slot, sink) = if out.as_ref().is_some_and(|o| o.as_raw_fd() == p.fd) {
                (&mut out, &mut *stdout)
            } else {
                (&mut err, &mut *stderr)
            };
            // SAFETY: reading into our own buffer from an fd we own.
            let r = unsafe { libc::read(p.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                sink.push(&buf[..r as usize]);
            } else if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                *slot = None;
            }
        }
    }
}

fn wait_for(pid: libc::pid_t) -> Result<i32, SandboxError> {
    let mut status = 0;
    loop {
        // SAFETY: plain waitpid on our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(SandboxError::Setup { step: "waitpid".into(), source: e });
        }
    }
    Ok(exit_code(status))
}

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) }
}

/// Starts init in new user, pid, net, ipc and uts namespaces. Returns 0 in
/// init and init's pid in the caller, whose own namespaces do not change (so
/// a program may run many sandboxes, and start threads afterwards).
fn clone_into_namespaces() -> Result<libc::pid_t, SandboxError> {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::SIGCHLD;
    // SAFETY: without CLONE_VM and with no new stack, clone behaves as fork;
    // the caller is single-threaded (checked), so the child may allocate.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if pid < 0 {
        let e = io::Error::last_os_error();
        return Err(SandboxError::Unavailable(crate::kernel::Missing {
            layer: "user namespaces",
            reason: format!("clone(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS) failed: {e}"),
            hint: "enable unprivileged user namespaces (sysctl user.max_user_namespaces, \
                   kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns)",
        }));
    }
    Ok(pid as libc::pid_t)
}

/// Maps the caller's uid and gid to themselves in init's new user namespace,
/// and nothing else.
fn map_ids((uid, gid): (libc::uid_t, libc::gid_t)) -> io::Result<()> {
    // /proc/self files of a non-dumpable process belong to root: be dumpable
    // just long enough to write the maps.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    let result = (|| {
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
    })();
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    result
}

// ---------------------------------------------------------------------------
// Inside: init and the command. Errors go to the status pipe, then _exit.

/// A failure reported from inside over the status pipe.
struct ChildReport {
    kind: u8,
    errno: i32,
    message: String,
}

const REPORT_SETUP: u8 = b'S';
const REPORT_EXEC: u8 = b'E';
const REPORT_REFUSED: u8 = b'R';

impl ChildReport {
    fn encode(kind: u8, errno: i32, message: &str) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend(errno.to_le_bytes());
        v.extend(message.as_bytes());
        v
    }

    fn decode(bytes: &[u8]) -> ChildReport {
        let kind = bytes[0];
        let errno = bytes.get(1..5).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes).unwrap_or(0);
        let message = String::from_utf8_lossy(bytes.get(5..).unwrap_or_default()).into_owned();
        ChildReport { kind, errno, message }
    }

    fn into_error(self, program: &CString) -> SandboxError {
        let source = io::Error::from_raw_os_error(self.errno);
        match self.kind {
            REPORT_EXEC => SandboxError::Exec { program: program.to_string_lossy().into_owned(), source },
            REPORT_REFUSED => SandboxError::Unavailable(crate::kernel::Missing {
                layer: "sandbox layer",
                reason: format!("{}: {source}", self.message),
                hint: "airlock refuses to run a command it cannot confine in full",
            }),
            _ => SandboxError::Setup { step: self.message, source },
        }
    }
}

fn report(fd: RawFd, kind: u8, errno: i32, message: &str) -> ! {
    let bytes = ChildReport::encode(kind, errno, message);
    // SAFETY: writing our own buffer to the status pipe, then exiting without
    // running the caller's destructors or atexit handlers.
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(125)
    }
}

/// What init and the command need, all prepared before the fork.
struct Inside<'a> {
    spec: &'a SandboxSpec,
    plan: &'a Plan,
    filters: Filters<'a>,
    prepared: &'a Prepared,
    /// The caller's effective uid and gid, mapped to themselves.
    ids: (libc::uid_t, libc::gid_t),
    /// Setup failures are written here (close-on-exec).
    status_fd: RawFd,
    /// When set, init waits for a byte here before starting the command.
    go_fd: Option<RawFd>,
    /// v1 cgroups' `tasks` files, which init writes itself into first.
    join_fds: &'a [RawFd],
    /// `RLIMIT_AS` of the command, where no memory cgroup limits the tree.
    address_space: Option<u64>,
    /// Write ends of the capture pipes, when output is captured.
    capture: Option<(RawFd, RawFd)>,
    /// The caller's signal mask, restored in the command before exec.
    signal_mask: libc::sigset_t,
}

fn init_main(inside: &Inside) -> ! {
    let Inside { spec, plan, ids, status_fd, go_fd, join_fds, capture, .. } = *inside;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // Init is single-threaded: joining moves it, and all it will start.
    for &fd in join_fds {
        if let Err(e) = crate::cgroup::join_self(fd) {
            report(status_fd, REPORT_SETUP, e.raw_os_error().unwrap_or(0), "join the sandbox's cgroups");
        }
        // SAFETY: closing an fd init owns and no longer needs.
        unsafe { libc::close(fd) };
    }
    if let Err(e) = map_ids(ids) {
        report(status_fd, REPORT_REFUSED, e.raw_os_error().unwrap_or(0), "user namespace id maps");
    }
    // Before the new root: the bridges' socket folders are opened on the host's paths.
    let bridges = match bridge::prepare(&spec.bridges, spec.dns_log.as_deref()) {
        Ok(b) => b,
        Err((step, e)) => report(status_fd, REPORT_REFUSED, e.raw_os_error().unwrap_or(0), step),
    };
    if let Err((step, e)) = build_root(plan, &spec.cwd) {
        report(status_fd, REPORT_SETUP, e.raw_os_error().unwrap_or(0), step);
    }
    let hostname = b"airlock";
    // SAFETY: valid buffer and length.
    if unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) } != 0 {
        report(status_fd, REPORT_SETUP, errno(), "set hostname");
    }
    if let Some(fd) = go_fd {
        let mut byte = [0u8; 1];
        // SAFETY: reading one byte into our buffer.
        if unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) } != 1 {
            report(status_fd, REPORT_SETUP, errno(), "wait for the sandbox's cgroups");
        }
    }
    // Init holds the write end while the command runs; closing it lets the
    // bridge tell the lookups still waiting before the namespace ends.
    let mut bridges = bridges;
    let mut bridge_finish: Option<(libc::pid_t, RawFd)> = None;
    if !bridges.is_empty() {
        let mut finish = [0; 2];
        // SAFETY: valid array of two ints.
        if unsafe { libc::pipe2(finish.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            report(status_fd, REPORT_SETUP, errno(), "bridge finish pipe");
        }
        // SAFETY: the read end was just created and is owned by nobody else.
        bridges.finish_on_hangup(unsafe { OwnedFd::from_raw_fd(finish[0]) }, finish[1]);
        bridge_finish = Some((start_bridge(inside, bridges), finish[1]));
    }
    // SAFETY: init is single-threaded.
    let command = unsafe { libc::fork() };
    if command < 0 {
        report(status_fd, REPORT_SETUP, errno(), "fork command");
    }
    if command == 0 {
        command_main(inside);
    }
    // Init keeps nothing open that the caller waits on.
    // SAFETY: closing fds init owns and no longer needs.
    unsafe {
        libc::close(status_fd);
        if let Some((o, e)) = capture {
            libc::close(o);
            libc::close(e);
        }
    }
    // Reap everything; leave with the command's status. Exiting kills the
    // rest of the namespace, daemons included.
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == command {
            if let Some((bridge, finish)) = bridge_finish {
                finish_bridge(bridge, finish);
            }
            // SAFETY: exiting init.
            unsafe { libc::_exit(exit_code(status)) }
        }
        if pid < 0 && errno() != libc::EINTR {
            // SAFETY: as above.
            unsafe { libc::_exit(125) }
        }
    }
}

/// Tells the bridge the command is gone and gives it a moment (at most
/// `bridge::FINISH_WAIT_SECS`) to put the lookups still waiting on the record.
fn finish_bridge(bridge: libc::pid_t, finish: RawFd) {
    // SAFETY: closing our own pipe end.
    unsafe { libc::close(finish) };
    let deadline = Instant::now() + Duration::from_secs(bridge::FINISH_WAIT_SECS);
    while Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child, without blocking.
        match unsafe { libc::waitpid(bridge, &mut status, libc::WNOHANG) } {
            0 => std::thread::sleep(Duration::from_millis(5)),
            _ => return,
        }
    }
}

/// Forks the bridge process and waits until it is confined and serving, so
/// that the command never runs beside a bridge that failed. Returns its pid.
fn start_bridge(inside: &Inside, bridges: bridge::Network) -> libc::pid_t {
    let status_fd = inside.status_fd;
    let mut ready = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        report(status_fd, REPORT_SETUP, errno(), "bridge pipe");
    }
    // SAFETY: init is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        report(status_fd, REPORT_SETUP, errno(), "fork bridge");
    }
    if pid == 0 {
        // SAFETY: closing the read end, which the bridge does not use.
        unsafe { libc::close(ready[0]) };
        bridge_main(inside, bridges, ready[1]);
    }
    // The listeners and folders now belong to the bridge alone.
    drop(bridges);
    let mut byte = [0u8; 1];
    // SAFETY: closing our write end, then reading one byte into our buffer.
    let n = unsafe {
        libc::close(ready[1]);
        let n = libc::read(ready[0], byte.as_mut_ptr().cast(), 1);
        libc::close(ready[0]);
        n
    };
    if n != 1 {
        // The bridge reported why on the status pipe.
        // SAFETY: leaving init; the command was never started.
        unsafe { libc::_exit(125) }
    }
    pid
}

/// The bridge process: stdio to /dev/null, every layer the command gets but
/// with no file or TCP rights at all, then the copy loop.
fn bridge_main(inside: &Inside, bridges: bridge::Network, ready_fd: RawFd) -> ! {
    let status_fd = inside.status_fd;
    // SAFETY: opening /dev/null and duplicating it onto stdio of this process.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 || libc::dup2(null, 0) < 0 || libc::dup2(null, 1) < 0 || libc::dup2(null, 2) < 0 {
            report(status_fd, REPORT_SETUP, errno(), "bridge stdio");
        }
        libc::close(null);
        if let Some(fd) = inside.go_fd {
            libc::close(fd);
        }
        if let Some((o, e)) = inside.capture {
            libc::close(o);
            libc::close(e);
        }
    }
    if let Err(message) = restrict_landlock_fully() {
        report(status_fd, REPORT_REFUSED, 0, &message);
    }
    if let Err(e) = drop_capabilities() {
        report(status_fd, REPORT_SETUP, e.raw_os_error().unwrap_or(0), "drop capabilities (bridge)");
    }
    if let Err(e) = seccomp::install(inside.filters.bridge) {
        report(status_fd, REPORT_REFUSED, e.raw_os_error().unwrap_or(0), "seccomp filter (bridge)");
    }
    // SAFETY: telling init we are ready, then closing what the caller waits on.
    unsafe {
        if libc::write(ready_fd, [1u8].as_ptr().cast(), 1) != 1 {
            libc::_exit(125);
        }
        libc::close(ready_fd);
        libc::close(status_fd);
    }
    bridge::serve(bridges)
}

fn command_main(inside: &Inside) -> ! {
    let Inside { spec, plan, filters, prepared, status_fd, capture, .. } = *inside;
    // SAFETY: the calls below act on this process only, with valid arguments.
    unsafe {
        if libc::setsid() < 0 {
            report(status_fd, REPORT_SETUP, errno(), "setsid");
        }
        if let Some((o, e)) = capture
            && (libc::dup2(o, 1) < 0 || libc::dup2(e, 2) < 0)
        {
            report(status_fd, REPORT_SETUP, errno(), "close file descriptors");
        }
        // Every inherited descriptor beyond stdio closes at exec (the status
        // pipe is already close-on-exec).
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
            report(status_fd, REPORT_SETUP, errno(), "close file descriptors");
        }
    }
    if let Err((what, e)) = set_limits(spec, inside.address_space) {
        report(status_fd, REPORT_SETUP, e.raw_os_error().unwrap_or(0), what);
    }
    if let Err(message) = restrict_landlock(plan, &spec.bridges) {
        report(status_fd, REPORT_REFUSED, 0, &message);
    }
    if let Err(e) = drop_capabilities() {
        report(status_fd, REPORT_SETUP, e.raw_os_error().unwrap_or(0), "drop capabilities");
    }
    if let Err(e) = seccomp::install(filters.command) {
        report(status_fd, REPORT_REFUSED, e.raw_os_error().unwrap_or(0), "seccomp filter");
    }
    // The caller blocks the signals that end a run; the command gets its
    // original mask back.
    // SAFETY: restoring a mask saved by the caller.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &inside.signal_mask, std::ptr::null_mut()) };
    exec(prepared, status_fd)
}

fn exec(prepared: &Prepared, status_fd: RawFd) -> ! {
    let mut argv: Vec<*const libc::c_char> = prepared.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = prepared.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // As execvp does: remember a permission error, report it if nothing runs.
    let mut last = libc::ENOENT;
    for candidate in &prepared.program {
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(candidate.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = errno();
        if e != libc::ENOENT && e != libc::ENOTDIR {
            last = e;
        }
    }
    report(status_fd, REPORT_EXEC, last, "exec")
}

fn set_limits(spec: &SandboxSpec, address_space: Option<u64>) -> Result<(), (&'static str, io::Error)> {
    let l = &spec.limits;
    let mut limits = vec![
        (libc::RLIMIT_DATA, l.memory_bytes),
        (libc::RLIMIT_NPROC, l.processes),
        (libc::RLIMIT_FSIZE, l.file_size_bytes),
        (libc::RLIMIT_CPU, l.cpu_secs),
        (libc::RLIMIT_CORE, 0),
    ];
    if let Some(bytes) = address_space {
        let mut current = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: valid rlimit struct. A lower limit the caller already has is kept.
        unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut current) };
        limits.push((libc::RLIMIT_AS, bytes.min(current.rlim_max)));
    }
    for (resource, value) in limits {
        let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
        // SAFETY: valid rlimit struct.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(("set resource limit", io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn restrict_landlock(plan: &Plan, bridges: &[crate::spec::Bridge]) -> Result<(), String> {
    let abi = LANDLOCK_ABI;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .and_then(|r| r.create())
        .map_err(|e| format!("Landlock ruleset: {e}"))?;
    // TCP: connecting to a bridged port on the sandbox's loopback, nothing else.
    for b in bridges {
        ruleset = ruleset
            .add_rule(NetPort::new(b.port, AccessNet::ConnectTcp))
            .map_err(|e| format!("Landlock rule for bridge port {}: {e}", b.port))?;
    }
    for rule in &plan.landlock {
        let access = match rule.grant {
            Grant::Read => AccessFs::from_read(abi),
            Grant::ReadWrite => AccessFs::from_all(abi),
            Grant::Device => {
                AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::ReadDir | AccessFs::Truncate | AccessFs::IoctlDev
            }
        };
        let fd = match PathFd::new(&rule.path) {
            Ok(fd) => fd,
            // A root that vanished between planning and now grants nothing.
            Err(_) => continue,
        };
        let is_dir = std::fs::metadata(&rule.path).map(|m| m.is_dir()).unwrap_or(false);
        let access = if is_dir { access } else { access & AccessFs::from_file(abi) };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("Landlock rule for {}: {e}", rule.path.display()))?;
    }
    let status = ruleset.restrict_self().map_err(|e| format!("Landlock restrict_self: {e}"))?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(format!(
            "Landlock is only partly enforced ({:?}, no_new_privs {})",
            status.ruleset, status.no_new_privs
        ));
    }
    Ok(())
}

/// Landlock with every file and TCP right handled and none granted (the
/// bridge process needs only the descriptors it already holds).
fn restrict_landlock_fully() -> Result<(), String> {
    let abi = LANDLOCK_ABI;
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self())
        .map_err(|e| format!("Landlock (bridge): {e}"))?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(format!("Landlock is only partly enforced for the bridge ({:?})", status.ruleset));
    }
    Ok(())
}

/// Drops every capability for good, so that even uid 0 inside (when the
/// caller is root) has none after exec.
fn drop_capabilities() -> io::Result<()> {
    const SECBITS_LOCKED_NOROOT: libc::c_ulong = 0xef; // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, all locked; KEEP_CAPS locked off
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    // SAFETY: prctl/capset with valid arguments on this thread.
    unsafe {
        if libc::prctl(libc::PR_SET_SECUREBITS, SECBITS_LOCKED_NOROOT, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cap = 0;
        while libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 {
            cap += 1;
        }
        if errno() != libc::EINVAL || cap == 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let header = CapHeader { version: 0x2008_0522, pid: 0 };
        let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

// --- the caller's side ------------------------------------------------------

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SandboxError::Setup { step: "pipe".into(), source: io::Error::last_os_error() });
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a returned fd is ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: as above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ensure_single_threaded() -> Result<(), SandboxError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|source| SandboxError::Setup { step: "read /proc/self/status".into(), source })?;
    let threads =
        status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(0);
    if threads != 1 {
        return Err(SandboxError::Usage(format!(
            "the sandbox must be started from a single-threaded process (this one has {threads} threads)\n\
             hint: run `airlock sandbox -- CMD` as a child process instead"
        )));
    }
    Ok(())
}

/// A shared lock on the workspace held for the whole run, so that
/// placeholders are only removed when no other sandbox uses them.
struct WorkspaceLock(std::fs::File);

impl WorkspaceLock {
    fn acquire(workspace: &Path) -> Result<WorkspaceLock, SandboxError> {
        let dir = std::fs::File::open(workspace)
            .map_err(|source| SandboxError::Setup { step: "open workspace".into(), source })?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_SH) } != 0 {
            return Err(SandboxError::Setup { step: "lock workspace".into(), source: io::Error::last_os_error() });
        }
        Ok(WorkspaceLock(dir))
    }

    fn remove_placeholders_if_alone(self, created: &[plan::Placeholder]) {
        if created.is_empty() {
            return;
        }
        // SAFETY: flock on an fd we own. Upgrading fails (and we keep the
        // placeholders, which is safe) while another run holds its lock.
        if unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return;
        }
        for plan::Placeholder { path, kind, contents } in created.iter().rev() {
            crate::placeholder::remove_if_unchanged(path, *kind, contents.as_bytes());
        }
    }
}

fn create_placeholders(plan: &Plan) -> Result<Vec<plan::Placeholder>, SandboxError> {
    let mut created = Vec::new();
    for p in &plan.placeholders {
        match crate::placeholder::create(&p.path, p.kind, p.contents.as_bytes()) {
            Ok(()) => created.push(p.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(SandboxError::Placeholder { path: p.path.clone(), source });
            }
        }
    }
    Ok(created)
}
