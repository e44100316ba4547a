//! The attack probe: this test binary, run as `<exe> probe ATTACK ARGS...`,
//! performs one attack with plain system calls and exits 0 if it SUCCEEDED,
//! 3 if it was BLOCKED, and anything else if the probe itself went wrong.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub const SUCCEEDED: i32 = 0;
pub const BLOCKED: i32 = 3;

fn blocked(what: &str) -> ! {
    println!("BLOCKED {what}: {}", std::io::Error::last_os_error());
    std::process::exit(BLOCKED)
}

fn blocked_with(what: &str, e: impl std::fmt::Display) -> ! {
    println!("BLOCKED {what}: {e}");
    std::process::exit(BLOCKED)
}

fn succeeded(what: &str) -> ! {
    println!("SUCCEEDED {what}");
    std::process::exit(SUCCEEDED)
}

#[allow(dead_code)]
fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn socket(domain: i32, kind: i32, proto: i32) -> OwnedFd {
    let fd = unsafe { libc::socket(domain, kind, proto) };
    if fd < 0 {
        blocked("socket");
    }
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn sockaddr_in(addr: &str) -> (libc::sockaddr_storage, libc::socklen_t) {
    let sa: std::net::SocketAddr = addr.parse().unwrap();
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        std::net::SocketAddr::V4(v4) => {
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as u16;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as u16;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn unix_addr(path: &[u8]) -> (libc::sockaddr_un, libc::socklen_t) {
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as u16;
    for (i, b) in path.iter().enumerate() {
        sun.sun_path[i] = *b as libc::c_char;
    }
    (sun, (std::mem::size_of::<libc::sa_family_t>() + path.len()) as libc::socklen_t)
}

fn read_file(path: &str) -> ! {
    match std::fs::read(path) {
        Ok(bytes) => {
            println!("read {} bytes: {}", bytes.len(), String::from_utf8_lossy(&bytes[..bytes.len().min(60)]));
            if bytes.is_empty() { blocked_with("read", "empty (masked)") } else { succeeded("read") }
        }
        Err(e) => blocked_with("read", e),
    }
}

pub fn main(args: &[String]) -> ! {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "read" => read_file(arg(1)),
        "cat" => match std::fs::read_to_string(arg(1)) {
            Ok(text) => {
                print!("{text}");
                std::process::exit(SUCCEEDED)
            }
            Err(e) => blocked_with("cat", e),
        },
        "write" => match std::fs::OpenOptions::new().create(true).append(true).open(arg(1)) {
            Ok(mut f) => match f.write_all(b"pwned\n") {
                Ok(()) => succeeded("write"),
                Err(e) => blocked_with("write", e),
            },
            Err(e) => blocked_with("open for write", e),
        },
        "mkdir-write" => {
            // Create the folder (if missing) and a file in it.
            let dir = std::path::Path::new(arg(1));
            if let Err(e) = std::fs::create_dir_all(dir) {
                blocked_with("mkdir", e);
            }
            match std::fs::write(dir.join(arg(2)), b"#!/bin/sh\necho pwned\n") {
                Ok(()) => succeeded("mkdir-write"),
                Err(e) => blocked_with("write", e),
            }
        }
        "symlink-read" => {
            let _ = std::fs::remove_file(arg(1));
            if let Err(e) = std::os::unix::fs::symlink(arg(2), arg(1)) {
                blocked_with("symlink", e);
            }
            read_file(arg(1))
        }
        "hardlink-write" => {
            let _ = std::fs::remove_file(arg(2));
            if let Err(e) = std::fs::hard_link(arg(1), arg(2)) {
                blocked_with("link", e);
            }
            match std::fs::OpenOptions::new().append(true).open(arg(2)).and_then(|mut f| f.write_all(b"pwned\n")) {
                Ok(()) => succeeded("write through hardlink"),
                Err(e) => blocked_with("write through hardlink", e),
            }
        }
        "rename" => match std::fs::rename(arg(1), arg(2)) {
            Ok(()) => succeeded("rename"),
            Err(e) => blocked_with("rename", e),
        },
        "swap-symlink" => {
            // Move a protected folder away and put a link to a folder we own in its place.
            if let Err(e) = std::fs::rename(arg(1), format!("{}.old", arg(1))) {
                blocked_with("rename", e);
            }
            if let Err(e) = std::os::unix::fs::symlink(arg(2), arg(1)) {
                blocked_with("symlink", e);
            }
            succeeded("swap")
        }
        "fd-read" => {
            let fd: i32 = arg(1).parse().unwrap();
            read_file(&format!("/dev/fd/{fd}"))
        }
        "tcp" => {
            let (ss, len) = sockaddr_in(arg(1));
            let s = socket(ss.ss_family as i32, libc::SOCK_STREAM, 0);
            if unsafe { libc::connect(s.as_raw_fd(), &ss as *const _ as *const libc::sockaddr, len) } != 0 {
                blocked("connect");
            }
            succeeded("tcp connect")
        }
        "udp" => {
            let (ss, len) = sockaddr_in(arg(1));
            let s = socket(ss.ss_family as i32, libc::SOCK_DGRAM, 0);
            let msg = b"airlock-udp-probe";
            let n = unsafe {
                libc::sendto(
                    s.as_raw_fd(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    0,
                    &ss as *const _ as *const libc::sockaddr,
                    len,
                )
            };
            if n < 0 {
                blocked("sendto");
            }
            succeeded("udp send")
        }
        "raw" => {
            let _s = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
            succeeded("raw socket")
        }
        "packet" => {
            let _s = socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32);
            succeeded("packet socket")
        }
        "vsock" => {
            let _s = socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0);
            succeeded("vsock socket")
        }
        "netlink" => {
            let _s = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE);
            succeeded("netlink socket")
        }
        "io-uring" => {
            let mut params = [0u8; 120];
            let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
            if fd < 0 {
                blocked("io_uring_setup");
            }
            succeeded("io_uring_setup")
        }
        "unix" => {
            let s = socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let (sun, len) = unix_addr(arg(1).as_bytes());
            if unsafe { libc::connect(s.as_raw_fd(), &sun as *const _ as *const libc::sockaddr, len) } != 0 {
                blocked("connect");
            }
            succeeded("unix connect")
        }
        "abstract" => {
            let s = socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let mut name = vec![0u8];
            name.extend_from_slice(arg(1).as_bytes());
            let (sun, len) = unix_addr(&name);
            if unsafe { libc::connect(s.as_raw_fd(), &sun as *const _ as *const libc::sockaddr, len) } != 0 {
                blocked("connect");
            }
            succeeded("abstract connect")
        }
        "ptrace-child" => {
            let child = unsafe { libc::fork() };
            if child == 0 {
                std::thread::sleep(Duration::from_secs(5));
                unsafe { libc::_exit(0) };
            }
            let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, child, 0, 0) };
            let e = std::io::Error::last_os_error();
            unsafe { libc::kill(child, libc::SIGKILL) };
            if rc != 0 {
                blocked_with("ptrace attach", e);
            }
            succeeded("ptrace attach")
        }
        "kill" => {
            let pid: i32 = arg(1).parse().unwrap();
            let sig: i32 = arg(2).parse().unwrap_or(0);
            if unsafe { libc::kill(pid, sig) } != 0 {
                blocked("kill");
            }
            succeeded("kill")
        }
        "tiocsti" => tiocsti(),
        "userns" => {
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
                blocked("unshare(CLONE_NEWUSER)");
            }
            succeeded("new user namespace")
        }
        "fork" => {
            let n: usize = arg(1).parse().unwrap();
            let mut made = 0;
            for _ in 0..n {
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    std::thread::sleep(Duration::from_secs(2));
                    unsafe { libc::_exit(0) };
                }
                if pid < 0 {
                    break;
                }
                made += 1;
            }
            if made < n {
                blocked_with("fork", format!("stopped after {made} of {n}"));
            }
            succeeded("fork")
        }
        "alloc" => {
            let mib: usize = arg(1).parse().unwrap();
            let mut kept = Vec::new();
            for i in 0..mib {
                let mut v: Vec<u8> = Vec::new();
                if v.try_reserve_exact(1 << 20).is_err() {
                    blocked_with("alloc", format!("stopped after {i} MiB"));
                }
                v.resize(1 << 20, 1);
                kept.push(v);
            }
            succeeded("alloc")
        }
        "fill" => {
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            let mib: usize = arg(2).parse().unwrap();
            let mut f = std::fs::File::create(arg(1)).unwrap();
            let chunk = vec![b'x'; 1 << 20];
            for i in 0..mib {
                if let Err(e) = f.write_all(&chunk) {
                    blocked_with("write", format!("after {i} MiB: {e}"));
                }
            }
            succeeded("fill")
        }
        "cmdline-scan" => {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(arg(1))
                    && !String::from_utf8_lossy(&cmdline).contains("cmdline-scan")
                {
                    succeeded(&format!("found in /proc/{}", entry.file_name().to_string_lossy()));
                }
            }
            blocked_with("cmdline scan", "no process shows the marker")
        }
        "environ" => {
            let mut buf = Vec::new();
            match std::fs::File::open(format!("/proc/{}/environ", arg(1))).and_then(|mut f| f.read_to_end(&mut buf)) {
                Ok(_) if String::from_utf8_lossy(&buf).contains(arg(2)) => succeeded("environ"),
                Ok(_) => blocked_with("environ", "marker not in it"),
                Err(e) => blocked_with("environ", e),
            }
        }
        "euid" => {
            let euid = unsafe { libc::geteuid() };
            let want: u32 = arg(1).parse().unwrap();
            if euid == want {
                succeeded(&format!("euid {euid}"))
            } else {
                blocked_with("setuid", format!("euid {euid}"))
            }
        }
        "daemon" => {
            // Leave a grandchild in its own session writing a heartbeat for 3 s.
            if unsafe { libc::fork() } == 0 {
                unsafe { libc::setsid() };
                if unsafe { libc::fork() } == 0 {
                    // As daemons do: let go of the terminal and of the caller's pipes.
                    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").unwrap();
                    for fd in 0..3 {
                        unsafe { libc::dup2(null.as_raw_fd(), fd) };
                    }
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_secs(3) {
                        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(arg(1)).unwrap();
                        let _ = f.write_all(b".");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                unsafe { libc::_exit(0) };
            }
            std::thread::sleep(Duration::from_millis(200));
            succeeded("daemon started")
        }
        "sleep" => {
            std::thread::sleep(Duration::from_secs(arg(1).parse().unwrap()));
            succeeded("slept")
        }
        other => {
            eprintln!("unknown probe {other}");
            std::process::exit(2)
        }
    }
}

fn tiocsti() -> ! {
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if master < 0 || libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            blocked("openpt");
        }
        let name = libc::ptsname(master);
        if name.is_null() {
            blocked("ptsname");
        }
        let name = std::ffi::CStr::from_ptr(name).to_owned();
        // A child makes the terminal its controlling one, then injects.
        let child = libc::fork();
        if child == 0 {
            libc::setsid();
            let slave = libc::open(name.as_ptr(), libc::O_RDWR);
            if slave < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
                libc::_exit(4);
            }
            let byte = b'x';
            if libc::ioctl(slave, libc::TIOCSTI, &byte) != 0 {
                libc::_exit(BLOCKED);
            }
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
        match libc::WEXITSTATUS(status) {
            0 => succeeded("TIOCSTI"),
            3 => blocked_with("TIOCSTI", "ioctl refused"),
            code => {
                println!("probe error {code}");
                std::process::exit(2)
            }
        }
    }
}
