//! The attack probe: this test binary run as `all probe ATTACK ARGS...`.
//!
//! Each attack is one attempt with plain system calls. Exit status 0 means
//! the attack SUCCEEDED, 3 that it was BLOCKED (the reason, usually an errno,
//! is printed), anything else is a probe error. The suite runs every attack
//! bare first, so an attack that cannot work on this machine is noticed
//! instead of passing as "blocked".

use std::ffi::CString;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Exit status of a probe whose attack worked.
pub const SUCCEEDED: i32 = 0;
/// Exit status of a probe whose attack was stopped.
pub const BLOCKED: i32 = 3;
/// Exit status of a probe that could not attempt its attack.
pub const PROBE_ERROR: i32 = 2;

/// What the attack achieved.
enum Attack {
    Succeeded(String),
    Blocked(String),
}

/// Runs the attack named by `args[0]` and exits.
pub fn main(args: &[String]) -> ! {
    let code = match attack(args) {
        Ok(Attack::Succeeded(what)) => {
            println!("SUCCEEDED: {what}");
            SUCCEEDED
        }
        Ok(Attack::Blocked(why)) => {
            println!("BLOCKED: {why}");
            BLOCKED
        }
        Err(e) => {
            eprintln!("probe error: {e}");
            PROBE_ERROR
        }
    };
    let _ = io::stdout().flush();
    std::process::exit(code)
}

type Probe = Result<Attack, String>;

fn attack(args: &[String]) -> Probe {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or_else(|| format!("missing argument {i} in {args:?}"));
    let num = |i: usize| arg(i).and_then(|s| s.parse::<u64>().map_err(|e| format!("{s}: {e}")));
    match arg(0)? {
        "read" => read(arg(1)?, args.get(2).map(String::as_str)),
        "read-fd" => read_fd(num(1)? as i32),
        "append" => append(arg(1)?),
        "create" => create(arg(1)?),
        "write" => write_executable(arg(1)?, arg(2)?),
        "symlink-read" => symlink_read(arg(1)?, arg(2)?),
        "hardlink-read" => hardlink_read(arg(1)?, arg(2)?),
        "hardlink-write" => hardlink_write(arg(1)?, arg(2)?),
        "rename-replace" => rename_replace(arg(1)?, arg(2)?),
        "symlink-swap" => symlink_swap(arg(1)?, arg(2)?),
        "find-cmdline" => find_cmdline(&format!("{}{}", arg(1)?, arg(2)?)),
        "env-has" => Ok(match std::env::var_os(arg(1)?) {
            Some(v) => Attack::Succeeded(format!("{} = {v:?}", arg(1)?)),
            None => Attack::Blocked(format!("{} is not in the environment", arg(1)?)),
        }),
        "tcp-connect" => tcp_connect(arg(1)?),
        "udp-send" => udp_send(arg(1)?, arg(2)?),
        "unix-connect" => unix_connect(arg(1)?),
        "abstract-connect" => abstract_connect(arg(1)?),
        "raw-socket" => socket("AF_INET SOCK_RAW IPPROTO_ICMP", libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        "packet-socket" => socket(
            "AF_PACKET SOCK_RAW ETH_P_ALL",
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        ),
        "vsock" => socket("AF_VSOCK SOCK_STREAM", libc::AF_VSOCK, libc::SOCK_STREAM, 0),
        "netlink" => socket("AF_NETLINK NETLINK_ROUTE", libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
        "io-uring" => io_uring(),
        "ptrace-child" => ptrace_child(),
        "vm-read-child" => vm_read_child(),
        "kill" => kill(num(1)? as libc::pid_t),
        "tiocsti" => tiocsti(false),
        "tiocsti-high-bits" => tiocsti(true),
        "i386-unshare" => i386_unshare(),
        "x32-unshare" => x32_unshare(),
        "userns" => userns(),
        "clone3-userns" => clone3_userns(),
        "no-new-privs" => no_new_privs(),
        "euid" => euid(),
        "fork-bomb" => fork_bomb(num(1)?),
        "alloc" => alloc(num(1)?),
        "alloc-shared" => alloc_shared(num(1)?),
        "memfd" => memfd(num(1)?),
        "sysv-shm" => sysv_shm(num(1)?, num(2)?),
        "memfd-write" => memfd_write(num(1)?, num(2)?),
        "map-file" => map_file(arg(1)?),
        "setuid-chmod" => setuid_chmod(arg(1)?, arg(2)?),
        "setuid-create" => setuid_create(arg(1)?, arg(2)?),
        "file-cap" => file_cap(arg(1)?),
        "write-big" => write_big(arg(1)?, num(2)?),
        "daemon" => daemon(arg(1)?, num(2)?, num(3)?),
        "spew" => spew(num(1)?),
        "hold" => hold(num(1)?),
        "serve" => serve(arg(1)?, num(2)?),
        other => Err(format!("unknown attack {other:?}")),
    }
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

fn blocked(step: &str, e: impl std::fmt::Display) -> Probe {
    Ok(Attack::Blocked(format!("{step}: {e}")))
}

// --- Files -----------------------------------------------------------------

/// Reads PATH; with NEEDLE, only a read that contains it counts.
fn read(path: &str, needle: Option<&str>) -> Probe {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            match needle {
                Some(n) if !text.contains(n) => {
                    blocked(&format!("read {path}"), format!("{} bytes, without {n:?}", bytes.len()))
                }
                // The length only: a real secret must never reach the test log.
                _ => Ok(Attack::Succeeded(format!("read {} bytes from {path}", bytes.len()))),
            }
        }
        Err(e) => blocked(&format!("read {path}"), e),
    }
}

/// Reads from an inherited descriptor.
fn read_fd(fd: i32) -> Probe {
    let mut buf = [0u8; 256];
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return blocked(&format!("read(fd {fd})"), errno());
    }
    Ok(Attack::Succeeded(format!("read {n} bytes from fd {fd}")))
}

/// Appends to an existing file (never creates one).
fn append(path: &str) -> Probe {
    let opened = std::fs::OpenOptions::new().append(true).open(path);
    match opened.and_then(|mut f| f.write_all(b"ESCAPED\n")) {
        Ok(()) => Ok(Attack::Succeeded(format!("appended to {path}"))),
        Err(e) => blocked(&format!("append to {path}"), e),
    }
}

/// Writes CONTENTS to PATH (mode 0755, so that a planted hook runs),
/// creating its parent folders first; `\n` in CONTENTS is a newline.
fn write_executable(path: &str, contents: &str) -> Probe {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = Path::new(path).parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        return blocked(&format!("mkdir -p {}", parent.display()), e);
    }
    let opened = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o755).open(path);
    match opened.and_then(|mut f| f.write_all(contents.replace("\\n", "\n").as_bytes())) {
        Ok(()) => Ok(Attack::Succeeded(format!("wrote {path}"))),
        Err(e) => blocked(&format!("write {path}"), e),
    }
}

/// Creates (or truncates) PATH, creating its parent folders first.
fn create(path: &str) -> Probe {
    if let Some(parent) = Path::new(path).parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        return blocked(&format!("mkdir -p {}", parent.display()), e);
    }
    match std::fs::write(path, "#!/bin/sh\necho ESCAPED\n") {
        Ok(()) => Ok(Attack::Succeeded(format!("wrote {path}"))),
        Err(e) => blocked(&format!("write {path}"), e),
    }
}

fn symlink_read(target: &str, link: &str) -> Probe {
    if let Err(e) = std::os::unix::fs::symlink(target, link) {
        return blocked(&format!("symlink {link} -> {target}"), e);
    }
    read(link, None)
}

fn hardlink_read(src: &str, dst: &str) -> Probe {
    if let Err(e) = std::fs::hard_link(src, dst) {
        return blocked(&format!("link {src} {dst}"), e);
    }
    read(dst, None)
}

fn hardlink_write(src: &str, dst: &str) -> Probe {
    if let Err(e) = std::fs::hard_link(src, dst) {
        return blocked(&format!("link {src} {dst}"), e);
    }
    append(dst)
}

/// Moves a protected folder aside and puts a new one, holding FILE, in its place.
fn rename_replace(dir: &str, file: &str) -> Probe {
    let aside = format!("{dir}.moved");
    match std::fs::rename(dir, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return blocked(&format!("rename {dir} {aside}"), e),
    }
    if let Err(e) = std::fs::create_dir(dir) {
        return blocked(&format!("mkdir {dir}"), e);
    }
    create(&format!("{dir}/{file}"))
}

/// Moves a protected folder aside and puts a symlink to TARGET in its place.
fn symlink_swap(dir: &str, target: &str) -> Probe {
    let aside = format!("{dir}.moved");
    match std::fs::rename(dir, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return blocked(&format!("rename {dir} {aside}"), e),
    }
    match std::os::unix::fs::symlink(target, dir) {
        Ok(()) => Ok(Attack::Succeeded(format!("{dir} -> {target}"))),
        Err(e) => blocked(&format!("symlink {dir} -> {target}"), e),
    }
}

// --- Processes -------------------------------------------------------------

/// Looks for a process whose command line contains MARKER, given in two
/// halves so that the probe's own command line (and airlock's) do not match.
fn find_cmdline(marker: &str) -> Probe {
    let me = std::process::id().to_string();
    let entries = match std::fs::read_dir("/proc") {
        Ok(e) => e,
        Err(e) => return blocked("list /proc", e),
    };
    let mut seen = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        seen += 1;
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(marker)
        {
            return Ok(Attack::Succeeded(format!("pid {name}: {:?}", String::from_utf8_lossy(&cmdline))));
        }
    }
    blocked("scan /proc/*/cmdline", format!("{marker:?} not found among {seen} other processes"))
}

/// Forks a child that waits to be killed; returns its pid.
fn fork_sleeper() -> Result<libc::pid_t, String> {
    // SAFETY: the probe is single-threaded; the child only sleeps and exits.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", errno())),
        0 => unsafe {
            libc::sleep(30);
            libc::_exit(0)
        },
        pid => Ok(pid),
    }
}

fn reap(pid: libc::pid_t) {
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

fn ptrace_child() -> Probe {
    let pid = fork_sleeper()?;
    // SAFETY: PTRACE_ATTACH on our own child, with null address and data.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) };
    let e = errno();
    reap(pid);
    match r {
        0 => Ok(Attack::Succeeded(format!("PTRACE_ATTACH to child {pid}"))),
        _ => blocked("ptrace(PTRACE_ATTACH, child)", e),
    }
}

fn vm_read_child() -> Probe {
    let secret: [u8; 8] = *b"VMSECRET";
    let pid = fork_sleeper()?;
    let mut buf = [0u8; 8];
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // The child is a copy: `secret` is at the same address there.
    let remote = libc::iovec { iov_base: secret.as_ptr() as *mut libc::c_void, iov_len: secret.len() };
    // SAFETY: the local iovec points into `buf`; the remote one is only read by the kernel.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    let e = errno();
    reap(pid);
    match n {
        8 if buf == secret => Ok(Attack::Succeeded("process_vm_readv read the child's memory".into())),
        -1 => blocked("process_vm_readv(child)", e),
        n => Err(format!("process_vm_readv returned {n}: {buf:?}")),
    }
}

fn kill(pid: libc::pid_t) -> Probe {
    // SAFETY: kill has no memory-safety preconditions.
    match unsafe { libc::kill(pid, libc::SIGKILL) } {
        0 => Ok(Attack::Succeeded(format!("SIGKILL sent to {pid}"))),
        _ => blocked(&format!("kill({pid}, SIGKILL)"), errno()),
    }
}

/// Injects a byte into the input of a terminal made our controlling one.
/// With `high_bits`, the request has bits set above the 32 the kernel reads,
/// to catch a filter that compares all 64.
fn tiocsti(high_bits: bool) -> Probe {
    // SAFETY: setsid has no preconditions; it fails harmlessly for a session leader.
    unsafe { libc::setsid() };
    let master = ["/dev/ptmx", "/dev/pts/ptmx"].iter().find_map(|p| {
        let c = CString::new(*p).ok()?;
        // SAFETY: opening a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
        (fd >= 0).then_some(fd)
    });
    let Some(master) = master else {
        return blocked("open /dev/ptmx or /dev/pts/ptmx", errno());
    };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: master is a pty master; `name` is large enough for ptsname_r.
    let slave = unsafe {
        libc::grantpt(master);
        libc::unlockpt(master);
        if libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0 {
            return Err(format!("ptsname_r: {}", errno()));
        }
        libc::open(name.as_ptr(), libc::O_RDWR)
    };
    if slave < 0 {
        return blocked("open the pty slave", errno());
    }
    // SAFETY: ioctls on our own terminal, with a pointer to a live byte.
    let r = unsafe {
        libc::ioctl(slave, libc::TIOCSCTTY, 0);
        let c: libc::c_char = b'x' as libc::c_char;
        let request = libc::TIOCSTI | if high_bits { 1 << 32 } else { 0 };
        libc::syscall(libc::SYS_ioctl, slave, request, &c)
    };
    match r {
        0 => Ok(Attack::Succeeded("TIOCSTI pushed a byte into the terminal".into())),
        _ => blocked("ioctl(TIOCSTI)", errno()),
    }
}

fn userns() -> Probe {
    // SAFETY: unshare with a flag; affects only this process.
    match unsafe { libc::unshare(libc::CLONE_NEWUSER) } {
        0 => Ok(Attack::Succeeded("unshare(CLONE_NEWUSER)".into())),
        _ => blocked("unshare(CLONE_NEWUSER)", errno()),
    }
}

/// unshare(CLONE_NEWUSER) through the i386 system call ABI (`int 0x80`),
/// which a filter that does not check the architecture lets through.
fn i386_unshare() -> Probe {
    const I386_UNSHARE: i32 = 310;
    let ret: i32;
    // SAFETY: a system call with integer arguments only. rbx belongs to
    // LLVM, so the argument travels in rsi and is swapped in and back out;
    // the compat entry may clobber r8-r11.
    unsafe {
        std::arch::asm!(
            "xchg rsi, rbx",
            "int 0x80",
            "xchg rsi, rbx",
            inout("rsi") libc::CLONE_NEWUSER as u64 => _,
            inlateout("eax") I386_UNSHARE => ret,
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
            options(nostack),
        );
    }
    match ret {
        0 => Ok(Attack::Succeeded("i386 unshare(CLONE_NEWUSER)".into())),
        e => blocked("i386 unshare(CLONE_NEWUSER)", io::Error::from_raw_os_error(-e)),
    }
}

/// unshare(CLONE_NEWUSER) through the x32 system call numbers, which share
/// the x86-64 audit architecture.
fn x32_unshare() -> Probe {
    const X32_SYSCALL_BIT: i64 = 0x4000_0000;
    // SAFETY: unshare with a flag; affects only this process.
    match unsafe { libc::syscall(libc::SYS_unshare | X32_SYSCALL_BIT, libc::CLONE_NEWUSER) } {
        0 => Ok(Attack::Succeeded("x32 unshare(CLONE_NEWUSER)".into())),
        _ => blocked("x32 unshare(CLONE_NEWUSER)", errno()),
    }
}

/// clone3 keeps its flags in memory, out of a seccomp filter's sight.
fn clone3_userns() -> Probe {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs { flags: libc::CLONE_NEWUSER as u64, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
    // SAFETY: without CLONE_VM clone3 behaves as fork; the child exits at once.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args, std::mem::size_of::<CloneArgs>()) };
    match pid {
        0 => unsafe { libc::_exit(0) },
        -1 => blocked("clone3(CLONE_NEWUSER)", errno()),
        pid => {
            // SAFETY: reaping our child.
            unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
            Ok(Attack::Succeeded("clone3(CLONE_NEWUSER) made a child in a new user namespace".into()))
        }
    }
}

fn no_new_privs() -> Probe {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    let line = status.lines().find(|l| l.starts_with("NoNewPrivs:")).ok_or("no NoNewPrivs line")?;
    match line.split_whitespace().nth(1) {
        Some("0") => Ok(Attack::Succeeded("NoNewPrivs: 0, a setuid program would gain its owner's rights".into())),
        _ => blocked("setuid", line),
    }
}

fn euid() -> Probe {
    // SAFETY: no preconditions.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    match uid == euid {
        false => Ok(Attack::Succeeded(format!("uid {uid}, euid {euid}: the setuid bit took effect"))),
        true => blocked("setuid", format!("uid {uid}, euid {euid} unchanged")),
    }
}

// --- Sockets and kernel interfaces -----------------------------------------

fn tcp_connect(addr: &str) -> Probe {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => Ok(Attack::Succeeded(format!("connected to {addr}"))),
        Err(e) => blocked(&format!("connect {addr}"), e),
    }
}

fn udp_send(addr: &str, payload: &str) -> Probe {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = match UdpSocket::bind(local) {
        Ok(s) => s,
        Err(e) => return blocked("UDP socket", e),
    };
    match sock.send_to(payload.as_bytes(), addr) {
        Ok(_) => Ok(Attack::Succeeded(format!("sent a datagram to {addr}"))),
        Err(e) => blocked(&format!("sendto {addr}"), e),
    }
}

fn unix_connect(path: &str) -> Probe {
    match UnixStream::connect(path) {
        Ok(_) => Ok(Attack::Succeeded(format!("connected to {path}"))),
        Err(e) => blocked(&format!("connect {path}"), e),
    }
}

fn abstract_connect(name: &str) -> Probe {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(|e| e.to_string())?;
    match UnixStream::connect_addr(&addr) {
        Ok(_) => Ok(Attack::Succeeded(format!("connected to @{name}"))),
        Err(e) => blocked(&format!("connect @{name}"), e),
    }
}

fn socket(what: &str, domain: i32, ty: i32, protocol: i32) -> Probe {
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(domain, ty, protocol) };
    if fd < 0 {
        return blocked(&format!("socket({what})"), errno());
    }
    // SAFETY: closing the descriptor we just made.
    unsafe { libc::close(fd) };
    Ok(Attack::Succeeded(format!("socket({what})")))
}

fn io_uring() -> Probe {
    // struct io_uring_params is 120 bytes; zeroed asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup writes into `params`, which is large enough.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return blocked("io_uring_setup", errno());
    }
    // SAFETY: closing the ring we just made.
    unsafe { libc::close(fd as i32) };
    Ok(Attack::Succeeded("io_uring_setup made a ring".into()))
}

// --- Resources -------------------------------------------------------------

/// Starts N processes that wait; kills them all afterwards.
fn fork_bomb(n: u64) -> Probe {
    let mut children = Vec::new();
    let mut failure = None;
    for i in 0..n {
        match fork_sleeper() {
            Ok(pid) => children.push(pid),
            Err(e) => {
                failure = Some(format!("process {} of {n}: {e}", i + 1));
                break;
            }
        }
    }
    let made = children.len();
    children.into_iter().for_each(reap);
    match failure {
        None => Ok(Attack::Succeeded(format!("{made} processes running at once"))),
        Some(e) => blocked("fork", e),
    }
}

/// Maps MB MiB of private memory and touches every page.
fn alloc(mb: u64) -> Probe {
    let len = (mb * 1024 * 1024) as usize;
    // SAFETY: an anonymous private mapping, only touched within its length.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return blocked(&format!("mmap {mb} MiB"), errno());
    }
    for off in (0..len).step_by(4096) {
        // SAFETY: `off` is within the mapping.
        unsafe { *(p as *mut u8).add(off) = 1 };
    }
    Ok(Attack::Succeeded(format!("{mb} MiB mapped and touched")))
}

/// Touches every page of a shared mapping of LEN bytes at `p`.
fn touch_shared(p: *mut libc::c_void, len: usize, what: &str) -> Probe {
    if p == libc::MAP_FAILED {
        return blocked(&format!("mmap {what}"), errno());
    }
    for off in (0..len).step_by(4096) {
        // SAFETY: `off` is within the mapping.
        unsafe { *(p as *mut u8).add(off) = 1 };
    }
    Ok(Attack::Succeeded(format!("{what} mapped and touched")))
}

/// Maps MB MiB of shared anonymous memory (which RLIMIT_DATA does not count)
/// and touches every page.
fn alloc_shared(mb: u64) -> Probe {
    let len = (mb * 1024 * 1024) as usize;
    let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
    // SAFETY: an anonymous shared mapping, only touched within its length.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
    touch_shared(p, len, &format!("{mb} MiB MAP_SHARED|MAP_ANONYMOUS"))
}

/// Makes a memfd of MB MiB, maps it shared and touches every page.
fn memfd(mb: u64) -> Probe {
    let len = (mb * 1024 * 1024) as usize;
    // SAFETY: a valid name; the returned fd is ours.
    let fd = unsafe { libc::memfd_create(c"probe".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return blocked("memfd_create", errno());
    }
    // SIGXFSZ would kill the probe where the size is over RLIMIT_FSIZE.
    // SAFETY: setting a signal disposition; ftruncate on our fd.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // SAFETY: as above.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        return blocked(&format!("ftruncate memfd to {mb} MiB"), errno());
    }
    // SAFETY: a shared mapping of our memfd, only touched within its length.
    let p =
        unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
    touch_shared(p, len, &format!("{mb} MiB memfd"))
}

/// Makes COUNT memfds and writes MB MiB into each with write(2), holding
/// them all: their pages lie in no process's address space.
fn memfd_write(count: u64, mb: u64) -> Probe {
    // SAFETY: setting a signal disposition (EFBIG instead of SIGXFSZ).
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let chunk = vec![b'x'; 1024 * 1024];
    let mut held = Vec::new();
    for i in 0..count {
        // SAFETY: a valid name; the returned fd is ours.
        let fd = unsafe { libc::memfd_create(c"probe".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return blocked(&format!("memfd_create {} of {count}", i + 1), errno());
        }
        // SAFETY: `fd` was just returned to us and is owned by nothing else.
        let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        for j in 0..mb {
            if let Err(e) = file.write_all(&chunk) {
                return blocked(&format!("write MiB {} of memfd {}", j + 1, i + 1), e);
            }
        }
        held.push(file);
    }
    Ok(Attack::Succeeded(format!("{count} memfds of {mb} MiB held at once")))
}

/// Makes COUNT System V shared memory segments of MB MiB, touching each
/// while attached, then detaching it: detached, they stay in memory where no
/// process's address space counts them. Removed at the end.
fn sysv_shm(count: u64, mb: u64) -> Probe {
    let len = (mb * 1024 * 1024) as usize;
    let mut ids = Vec::new();
    let mut result = Ok(Attack::Succeeded(format!("{count} segments of {mb} MiB held at once")));
    for i in 0..count {
        // SAFETY: plain System V calls; the mapping is touched within its length, then detached.
        let failed = unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600);
            if id < 0 {
                Some(format!("shmget segment {} of {count}", i + 1))
            } else {
                ids.push(id);
                let p = libc::shmat(id, std::ptr::null(), 0);
                if p as isize == -1 {
                    Some(format!("shmat segment {} of {count}", i + 1))
                } else {
                    for off in (0..len).step_by(4096) {
                        *(p as *mut u8).add(off) = 1;
                    }
                    libc::shmdt(p);
                    None
                }
            }
        };
        if let Some(step) = failed {
            result = blocked(&step, errno());
            break;
        }
    }
    for id in ids {
        // SAFETY: removing a segment we made.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
    result
}

/// Maps a whole file read-only (as llama.cpp maps a model) and reads one
/// byte of each MiB. Succeeds when it can: the check that limits leave
/// room for what must keep working.
fn map_file(path: &str) -> Probe {
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let len = file.metadata().map_err(|e| format!("stat {path}: {e}"))?.len() as usize;
    use std::os::fd::AsRawFd;
    // SAFETY: a read-only private mapping of an open file, read within its length.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return blocked(&format!("mmap {len} bytes of {path}"), errno());
    }
    let mut sum = 0u64;
    for off in (0..len).step_by(1024 * 1024) {
        // SAFETY: `off` is within the mapping.
        sum += unsafe { *(p as *const u8).add(off) } as u64;
    }
    Ok(Attack::Succeeded(format!("mapped {len} bytes of {path} (sum {sum})")))
}

/// The mode bits of PATH that make it run as its owner or group.
fn setid_bits(path: &str) -> Result<u32, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("stat {path}: {e}"))?;
    Ok(meta.permissions().mode() & 0o6000)
}

/// Copies SRC to DST and sets the setuid bit on it (`chmod 4755`), with each
/// call of the chmod family in turn.
fn setuid_chmod(src: &str, dst: &str) -> Probe {
    std::fs::copy(src, dst).map_err(|e| format!("copy {src} {dst}: {e}"))?;
    let c = CString::new(dst).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(dst).map_err(|e| format!("open {dst}: {e}"))?;
    use std::os::fd::AsRawFd;
    let mut refused = Vec::new();
    // SAFETY: valid C strings and an fd we own.
    let calls: [(&str, i64); 4] = unsafe {
        [
            ("chmod", libc::chmod(c.as_ptr(), 0o4755) as i64),
            ("fchmod", libc::fchmod(file.as_raw_fd(), 0o4755) as i64),
            ("fchmodat", libc::fchmodat(libc::AT_FDCWD, c.as_ptr(), 0o2755, 0) as i64),
            ("fchmodat2", libc::syscall(libc::SYS_fchmodat2, libc::AT_FDCWD, c.as_ptr(), 0o6755, 0)),
        ]
    };
    for (name, rc) in calls {
        if rc != 0 {
            refused.push(format!("{name}: {}", errno()));
        }
    }
    match setid_bits(dst)? {
        0 => blocked("chmod 4755", refused.join("; ")),
        bits => Ok(Attack::Succeeded(format!("{dst} has mode bits {bits:o}"))),
    }
}

/// Creates PATH with a setuid mode in one call: HOW is `openat`, `creat`,
/// `mknod` or `tmpfile` (O_TMPFILE, then linked at PATH).
fn setuid_create(path: &str, how: &str) -> Probe {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: valid C strings; the fds returned are ours and closed.
    let rc = unsafe {
        match how {
            "openat" => libc::openat(libc::AT_FDCWD, c.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o4755),
            "creat" => libc::creat(c.as_ptr(), 0o4755),
            "mknod" => libc::mknodat(libc::AT_FDCWD, c.as_ptr(), libc::S_IFREG | 0o4755, 0),
            "tmpfile" => {
                let fd = libc::open(c".".as_ptr(), libc::O_TMPFILE | libc::O_WRONLY, 0o4755);
                if fd >= 0 {
                    let proc_path = CString::new(format!("/proc/self/fd/{fd}")).map_err(|e| e.to_string())?;
                    if libc::linkat(
                        libc::AT_FDCWD,
                        proc_path.as_ptr(),
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    ) != 0
                    {
                        return Err(format!("linkat O_TMPFILE file: {}", errno()));
                    }
                }
                fd
            }
            other => return Err(format!("unknown way to create {other:?}")),
        }
    };
    if rc < 0 {
        return blocked(&format!("{how} {path} mode 4755"), errno());
    }
    // SAFETY: closing an fd we own (mknodat returns 0, not an fd).
    if how != "mknod" {
        unsafe { libc::close(rc) };
    }
    match setid_bits(path)? {
        0 => blocked(&format!("{how} {path} mode 4755"), "created without the setuid bit"),
        bits => Ok(Attack::Succeeded(format!("{path} created with mode bits {bits:o}"))),
    }
}

/// Gives PATH the file capability `cap_setuid+ep` (what `setcap` writes):
/// a root-owned copy of an interpreter with it would give any user root.
fn file_cap(path: &str) -> Probe {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;
    const CAP_SETUID: u32 = 7;
    let setuid = 1u32 << CAP_SETUID;
    // struct vfs_cap_data: magic_etc, then {permitted, inheritable} x 2.
    let mut blob = Vec::new();
    for word in [VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, setuid, 0, 0, 0] {
        blob.extend(word.to_le_bytes());
    }
    let c = CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: valid C strings and a buffer of the length passed.
    let rc =
        unsafe { libc::setxattr(c.as_ptr(), c"security.capability".as_ptr(), blob.as_ptr().cast(), blob.len(), 0) };
    match rc {
        0 => Ok(Attack::Succeeded(format!("{path} has cap_setuid+ep"))),
        _ => blocked("setxattr security.capability", errno()),
    }
}

/// Writes MB MiB to PATH, one MiB at a time.
fn write_big(path: &str, mb: u64) -> Probe {
    // SIGXFSZ would kill the probe: ignore it and see EFBIG instead.
    // SAFETY: setting a signal disposition.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let mut file = std::fs::File::create(path).map_err(|e| format!("create {path}: {e}"))?;
    let chunk = vec![b'x'; 1024 * 1024];
    for i in 0..mb {
        if let Err(e) = file.write_all(&chunk) {
            return blocked(&format!("write MiB {} of {mb}", i + 1), e);
        }
    }
    Ok(Attack::Succeeded(format!("wrote {mb} MiB to {path}")))
}

/// Leaves behind a grandchild in its own session that appends to BEAT every
/// 50 ms for BEAT_MS, then waits PARENT_MS and exits.
fn daemon(beat: &str, beat_ms: u64, parent_ms: u64) -> Probe {
    let path = CString::new(beat).map_err(|e| e.to_string())?;
    // SAFETY: the probe is single-threaded; the children use only libc calls.
    unsafe {
        match libc::fork() {
            -1 => return Err(format!("fork: {}", errno())),
            0 => {
                libc::setsid();
                if libc::fork() == 0 {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(beat_ms) {
                        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, 0o644);
                        if fd >= 0 {
                            libc::write(fd, b"beat\n".as_ptr().cast(), 5);
                            libc::close(fd);
                        }
                        libc::usleep(50_000);
                    }
                }
                libc::_exit(0)
            }
            child => {
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(parent_ms));
    Ok(Attack::Succeeded(format!("left a daemon writing to {beat}")))
}

fn spew(bytes: u64) -> Probe {
    let mut out = io::stdout().lock();
    let chunk = [b'x'; 4096];
    let mut left = bytes as usize;
    while left > 0 {
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
        left -= n;
    }
    out.write_all(b"\nEND\n").map_err(|e| e.to_string())?;
    Ok(Attack::Succeeded(format!("wrote {bytes} bytes of output")))
}

// --- Host-side helpers (not attacks) ---------------------------------------

/// Sleeps SECS: a host process to be found, read or killed.
fn hold(secs: u64) -> Probe {
    std::thread::sleep(Duration::from_secs(secs));
    Ok(Attack::Succeeded("held".into()))
}

/// Listens on TCP ADDR for SECS, accepting and dropping connections; prints
/// "ready" once listening. Used inside a network namespace the suite makes.
fn serve(addr: &str, secs: u64) -> Probe {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    println!("ready");
    io::stdout().flush().map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        // Accepted connections are dropped at once.
        let _ = listener.accept();
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Attack::Succeeded("served".into()))
}
