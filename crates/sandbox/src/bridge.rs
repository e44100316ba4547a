//! Bridges: TCP ports on the sandbox's own loopback whose connections are
//! carried to Unix sockets outside it (the broker).
//!
//! Init brings `lo` up, binds the listeners and opens each socket's folder
//! before it builds the new root; then it forks the bridge process, which
//! confines itself (no capabilities, Landlock with no file or TCP rights,
//! the sandbox's seccomp filter) and copies bytes both ways until the
//! namespace ends. It parses nothing: what the bytes mean is the broker's
//! business. The command can reach a bridged port and nothing else over
//! TCP (Landlock), and the namespace holds no other interface.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use crate::spec::Bridge;

/// Connections carried at once; more are accepted and closed at once.
const MAX_CONNECTIONS: usize = 256;
/// Bytes in flight per direction of one connection.
const BUFFER: usize = 64 * 1024;

/// One bridge, ready in init: the bound listener and the socket's folder.
pub(crate) struct Ready {
    listener: OwnedFd,
    folder: OwnedFd,
    name: CString,
}

/// Brings up loopback and binds every bridge. Runs in init, in the new
/// network namespace, before the root is replaced (the sockets' folders are
/// opened on the host's paths).
pub(crate) fn prepare(bridges: &[Bridge]) -> Result<Vec<Ready>, (&'static str, io::Error)> {
    if bridges.is_empty() {
        return Ok(Vec::new());
    }
    loopback_up().map_err(|e| ("bring up loopback", e))?;
    bridges
        .iter()
        .map(|b| {
            let folder = b
                .socket
                .parent()
                .ok_or(("open a bridge's socket folder", io::Error::from_raw_os_error(libc::EINVAL)))?;
            let name = b
                .socket
                .file_name()
                .ok_or(("open a bridge's socket folder", io::Error::from_raw_os_error(libc::EINVAL)))?;
            let name = CString::new(name.as_bytes())
                .map_err(|_| ("bridge socket name", io::Error::from_raw_os_error(libc::EINVAL)))?;
            let folder_c = CString::new(folder.as_os_str().as_bytes())
                .map_err(|_| ("bridge socket name", io::Error::from_raw_os_error(libc::EINVAL)))?;
            // SAFETY: a valid NUL-terminated path; the returned fd is ours.
            let fd = unsafe { libc::open(folder_c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(("open a bridge's socket folder", io::Error::last_os_error()));
            }
            // SAFETY: just opened, owned by nobody else.
            let folder = unsafe { OwnedFd::from_raw_fd(fd) };
            let listener = listen(b.port).map_err(|e| ("listen on a bridge port", e))?;
            Ok(Ready { listener, folder, name })
        })
        .collect()
}

/// `ip link set lo up`: a new network namespace starts with it down.
fn loopback_up() -> io::Result<()> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM)?;
    // SAFETY: ifreq is plain data; the name is NUL-padded by zeroing.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS with a valid ifreq on our socket.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn socket(domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the returned fd is ours.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A listener on 127.0.0.1:`port`.
fn listen(port: u16) -> io::Result<OwnedFd> {
    let sock = socket(libc::AF_INET, libc::SOCK_STREAM)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a valid sockaddr_in of the given length, on our socket.
    unsafe {
        if libc::bind(sock.as_raw_fd(), (&addr as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::listen(sock.as_raw_fd(), 128) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(sock)
}

/// One direction of a connection.
struct Pipe {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The source said end of file.
    eof: bool,
    /// The end of file was passed on (`shutdown(SHUT_WR)` on the destination).
    done: bool,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe { buf: vec![0; BUFFER], start: 0, end: 0, eof: false, done: false }
    }

    fn wants_read(&self) -> bool {
        !self.eof && self.start == self.end
    }

    fn wants_write(&self) -> bool {
        self.start < self.end
    }
}

/// A client on the bridge port and its connection to the Unix socket.
struct Connection {
    tcp: OwnedFd,
    unix: OwnedFd,
    up: Pipe,
    down: Pipe,
}

enum Step {
    Open,
    Closed,
}

/// Moves what it can from `src` to `dst` through `pipe`.
fn pump(src: RawFd, dst: RawFd, pipe: &mut Pipe, readable: bool) -> Step {
    if readable && pipe.wants_read() {
        // SAFETY: reading into our own buffer from an fd we own.
        let n = unsafe { libc::read(src, pipe.buf.as_mut_ptr().cast(), pipe.buf.len()) };
        match n {
            0 => pipe.eof = true,
            n if n > 0 => {
                pipe.start = 0;
                pipe.end = n as usize;
            }
            _ if would_block() => {}
            _ => return Step::Closed,
        }
    }
    // Sockets are non-blocking: try at once, and poll for room only when full.
    if pipe.wants_write() {
        let chunk = &pipe.buf[pipe.start..pipe.end];
        // SAFETY: writing from our own buffer to an fd we own; MSG_NOSIGNAL
        // turns a closed peer into EPIPE instead of a signal.
        let n = unsafe { libc::send(dst, chunk.as_ptr().cast(), chunk.len(), libc::MSG_NOSIGNAL) };
        match n {
            n if n >= 0 => pipe.start += n as usize,
            _ if would_block() => {}
            _ => return Step::Closed,
        }
    }
    if pipe.eof && !pipe.wants_write() && !pipe.done {
        // SAFETY: shutdown on an fd we own.
        unsafe { libc::shutdown(dst, libc::SHUT_WR) };
        pipe.done = true;
    }
    Step::Open
}

fn would_block() -> bool {
    matches!(io::Error::last_os_error().raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR))
}

/// Opens a connection to the bridge's Unix socket, through its folder.
fn connect(ready: &Ready) -> io::Result<OwnedFd> {
    let sock = socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let name = ready.name.as_bytes();
    if name.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: fchdir to a folder fd we own (so the relative name resolves in
    // it), then connect with a valid sockaddr_un.
    unsafe {
        if libc::fchdir(ready.folder.as_raw_fd()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::connect(sock.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
    }
    Ok(sock)
}

/// The bridge process's loop: accept, connect, copy. Never returns; the
/// namespace's end kills it.
pub(crate) fn serve(bridges: Vec<Ready>) -> ! {
    let mut connections: Vec<Connection> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        fds.clear();
        for b in &bridges {
            fds.push(libc::pollfd { fd: b.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        for c in &connections {
            let events = |read: bool, write: bool| {
                (if read { libc::POLLIN } else { 0 }) | (if write { libc::POLLOUT } else { 0 })
            };
            fds.push(libc::pollfd {
                fd: c.tcp.as_raw_fd(),
                events: events(c.up.wants_read(), c.down.wants_write()),
                revents: 0,
            });
            fds.push(libc::pollfd {
                fd: c.unix.as_raw_fd(),
                events: events(c.down.wants_read(), c.up.wants_write()),
                revents: 0,
            });
        }
        // SAFETY: `fds` is a valid array for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if would_block() {
                continue;
            }
            // SAFETY: leaving the bridge process.
            unsafe { libc::_exit(125) }
        }
        let ready_flags = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
        let mut i = bridges.len();
        let mut keep = Vec::with_capacity(connections.len());
        for mut c in connections.drain(..) {
            let (t, u) = (fds[i].revents, fds[i + 1].revents);
            i += 2;
            let up = pump(c.tcp.as_raw_fd(), c.unix.as_raw_fd(), &mut c.up, t & ready_flags != 0);
            let down = pump(c.unix.as_raw_fd(), c.tcp.as_raw_fd(), &mut c.down, u & ready_flags != 0);
            // An error, or a hang-up from a side whose end of file was already
            // read, means nothing more can move: poll would report it forever.
            let dead = (t | u) & libc::POLLERR != 0
                || (t & libc::POLLHUP != 0 && c.up.eof)
                || (u & libc::POLLHUP != 0 && c.down.eof);
            let finished = c.up.done && c.down.done;
            if matches!((up, down), (Step::Open, Step::Open)) && !finished && !dead {
                keep.push(c);
            }
        }
        connections = keep;
        for (b, p) in bridges.iter().zip(&fds) {
            if p.revents & libc::POLLIN == 0 {
                continue;
            }
            // SAFETY: accept4 on our listener; the returned fd is ours.
            let fd = unsafe {
                libc::accept4(
                    b.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                continue;
            }
            // SAFETY: just accepted, owned by nobody else.
            let tcp = unsafe { OwnedFd::from_raw_fd(fd) };
            if connections.len() >= MAX_CONNECTIONS {
                continue;
            }
            // A socket that cannot be reached closes the client's connection:
            // it sees a reset, never another destination.
            if let Ok(unix) = connect(b) {
                connections.push(Connection { tcp, unix, up: Pipe::new(), down: Pipe::new() });
            }
        }
    }
}
