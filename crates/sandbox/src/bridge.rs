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

/// The sandbox's resolver: 127.0.0.1:53 (UDP), and where each name goes.
pub(crate) struct Dns {
    socket: OwnedFd,
    folder: OwnedFd,
    name: CString,
    /// The log socket, connected on first use (blocking, with a send timeout).
    log: Option<OwnedFd>,
    /// Lookups not told yet: the kernel dropped them (the resolver's queue
    /// overflowed) or the log did not take them in time. Sent as
    /// `#dropped N` with the next name that goes through.
    dropped: u64,
    /// The kernel's count of queries dropped on the resolver's socket, as last read.
    overflowed: u32,
}

/// Everything the bridge process serves.
pub(crate) struct Network {
    ports: Vec<Ready>,
    dns: Option<Dns>,
    /// Hung up by init when the command has exited: the lookups still
    /// waiting are told (or counted) before the namespace ends.
    finish: Option<(OwnedFd, RawFd)>,
}

impl Network {
    /// Whether there is nothing to serve (no bridge process is needed).
    pub(crate) fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.dns.is_none()
    }

    /// The read end of init's pipe that says the command is gone, and the
    /// write end, which the bridge process closes (init keeps its own).
    pub(crate) fn finish_on_hangup(&mut self, fd: OwnedFd, write_end: RawFd) {
        self.finish = Some((fd, write_end));
    }
}

type SetupError = (&'static str, io::Error);

fn invalid(step: &'static str) -> SetupError {
    (step, io::Error::from_raw_os_error(libc::EINVAL))
}

/// The folder of `socket` (opened `O_PATH`, to connect through it after the
/// root is replaced) and the socket's name in it.
fn folder_of(socket: &std::path::Path) -> Result<(OwnedFd, CString), SetupError> {
    let step = "open a bridge's socket folder";
    let folder = socket.parent().ok_or(invalid(step))?;
    let name = CString::new(socket.file_name().ok_or(invalid(step))?.as_bytes()).map_err(|_| invalid(step))?;
    let folder = CString::new(folder.as_os_str().as_bytes()).map_err(|_| invalid(step))?;
    // SAFETY: a valid NUL-terminated path; the returned fd is ours.
    let fd = unsafe { libc::open(folder.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err((step, io::Error::last_os_error()));
    }
    // SAFETY: just opened, owned by nobody else.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, name))
}

/// Brings up loopback and binds every bridge. Runs in init, in the new
/// network namespace, before the root is replaced (the sockets' folders are
/// opened on the host's paths).
pub(crate) fn prepare(bridges: &[Bridge], dns_log: Option<&std::path::Path>) -> Result<Network, SetupError> {
    if bridges.is_empty() && dns_log.is_none() {
        return Ok(Network { ports: Vec::new(), dns: None, finish: None });
    }
    loopback_up().map_err(|e| ("bring up loopback", e))?;
    let dns = match dns_log {
        Some(log) => {
            let (folder, name) = folder_of(log)?;
            let socket = bind_udp(53).map_err(|e| ("listen on 127.0.0.1:53", e))?;
            resolver_options(&socket).map_err(|e| ("set the resolver's socket options", e))?;
            Some(Dns { socket, folder, name, log: None, dropped: 0, overflowed: 0 })
        }
        None => None,
    };
    let ports = bridges
        .iter()
        .map(|b| {
            let (folder, name) = folder_of(&b.socket)?;
            let listener = listen(b.port).map_err(|e| ("listen on a bridge port", e))?;
            Ok(Ready { listener, folder, name })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Network { ports, dns, finish: None })
}

/// A burst of queries fits in a large receive buffer (up to the host's
/// `rmem_max`); what overflows it is counted by the kernel (`SO_RXQ_OVFL`)
/// and that count goes on the record.
fn resolver_options(sock: &OwnedFd) -> io::Result<()> {
    let set = |option: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt with a valid int on our socket.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    };
    set(libc::SO_RCVBUF, 4 * 1024 * 1024)?;
    set(SO_RXQ_OVFL, 1)
}

/// A UDP socket on 127.0.0.1:`port`.
fn bind_udp(port: u16) -> io::Result<OwnedFd> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM)?;
    let addr = loopback(port);
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a valid sockaddr_in of the given length, on our socket.
    if unsafe { libc::bind(sock.as_raw_fd(), (&addr as *const libc::sockaddr_in).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
        sin_zero: [0; 8],
    }
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
    let addr = loopback(port);
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

/// The address of `name`, relative to the folder the caller changes into.
fn unix_addr(name: &CString) -> io::Result<libc::sockaddr_un> {
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let name = name.as_bytes();
    if name.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    Ok(addr)
}

/// Opens a connection to the bridge's Unix socket, through its folder.
fn connect(ready: &Ready) -> io::Result<OwnedFd> {
    let sock = socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    let addr = unix_addr(&ready.name)?;
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
pub(crate) fn serve(network: Network) -> ! {
    let Network { ports: bridges, mut dns, finish } = network;
    let finish = finish.map(|(fd, write_end)| {
        // SAFETY: closing this process's copy of init's write end, which it never uses.
        unsafe { libc::close(write_end) };
        fd
    });
    let mut connections: Vec<Connection> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut query = [0u8; 512];
    loop {
        fds.clear();
        for b in &bridges {
            fds.push(libc::pollfd { fd: b.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        if let Some(d) = &dns {
            fds.push(libc::pollfd { fd: d.socket.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        if let Some(f) = &finish {
            fds.push(libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 });
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
        if let Some(d) = &mut dns {
            if fds[i].revents & libc::POLLIN != 0 {
                answer_lookups(d, &mut query);
            }
            i += 1;
        }
        if finish.is_some() {
            if fds[i].revents != 0 {
                if let Some(d) = &mut dns {
                    finish_lookups(d, &mut query);
                }
                // SAFETY: leaving the bridge process; the command is gone.
                unsafe { libc::_exit(0) }
            }
            i += 1;
        }
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

/// `SO_RXQ_OVFL` and `SO_MEMINFO` (asm-generic/socket.h; the `libc` crate
/// does not name them for every target).
const SO_RXQ_OVFL: libc::c_int = 40;
const SO_MEMINFO: libc::c_int = 55;

/// Lookups answered per wake-up before the bridges get their turn.
const LOOKUPS_PER_WAKE: usize = 64;
/// How long telling one name may wait for the recorder before it is counted
/// as dropped instead.
const LOG_TIMEOUT_SECS: libc::time_t = 1;
/// After the command exits, how long the lookups still waiting are told one
/// by one (init waits [`FINISH_WAIT_SECS`]; a last send may take
/// [`LOG_TIMEOUT_SECS`] more, and the count one more).
const FINISH_TELLING_SECS: u64 = 2;
/// How long init waits for the bridge to finish.
pub(crate) const FINISH_WAIT_SECS: u64 = 5;

/// Answers the waiting lookups with REFUSED, each after its name is handed
/// to the recorder: a name is on its way to the record before the process
/// that looked it up hears back (and before it can exit).
fn answer_lookups(dns: &mut Dns, buf: &mut [u8; 512]) {
    for _ in 0..LOOKUPS_PER_WAKE {
        if !answer_lookup(dns, buf, true) {
            return;
        }
    }
}

/// After the command is gone: the lookups still waiting are told for as
/// long as init waits (less a margin), the rest counted; then the count.
fn finish_lookups(dns: &mut Dns, buf: &mut [u8; 512]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(FINISH_TELLING_SECS);
    while answer_lookup(dns, buf, std::time::Instant::now() < deadline) {}
    tell_dropped(dns);
}

/// One lookup, told and answered (`tell`) or only counted; false when none
/// was waiting.
fn answer_lookup(dns: &mut Dns, buf: &mut [u8; 512], tell_it: bool) -> bool {
    // SAFETY: sockaddr_in is plain data; recvmsg fills at most its size.
    let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: receiving into our own buffers from an fd we own.
    let n = unsafe { libc::recvmsg(dns.socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return false;
    }
    if let Some(total) = overflow_count(&msg) {
        dns.dropped += u64::from(total.wrapping_sub(dns.overflowed));
        dns.overflowed = total;
    }
    let from_len = msg.msg_namelen;
    let Some((name, reply)) = refuse(&buf[..n as usize]) else {
        return true;
    };
    if !tell_it {
        dns.dropped += 1;
        return true;
    }
    tell(dns, &name);
    // SAFETY: sending our own buffer back to the address it came from.
    unsafe {
        libc::sendto(
            dns.socket.as_raw_fd(),
            reply.as_ptr().cast(),
            reply.len(),
            0,
            (&from as *const libc::sockaddr_in).cast(),
            from_len,
        );
    }
    true
}

/// The kernel's running count of queries dropped on the socket, from a
/// message's `SO_RXQ_OVFL` control data.
fn overflow_count(msg: &libc::msghdr) -> Option<u32> {
    // SAFETY: walking the control buffer the kernel filled, with its own macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// Hands `name` (and first the count of any not told) to the recorder;
/// what it does not take in time is counted, never lost silently.
fn tell(dns: &mut Dns, name: &str) {
    if dns.log.is_none() {
        dns.log = connect_log(dns).ok();
    }
    let Some(log) = &dns.log else {
        dns.dropped += 1;
        return;
    };
    let send = |text: &[u8]| {
        // SAFETY: one datagram from our own buffer on our connected socket.
        unsafe { libc::send(log.as_raw_fd(), text.as_ptr().cast(), text.len(), libc::MSG_NOSIGNAL) >= 0 }
    };
    if dns.dropped > 0 && send(format!("#dropped {}", dns.dropped).as_bytes()) {
        dns.dropped = 0;
    }
    if !send(name.as_bytes()) {
        dns.dropped += 1;
    }
}

/// At the end: the count of lookups not told, if any (the kernel's count
/// of queries it dropped included).
fn tell_dropped(dns: &mut Dns) {
    // Drops after the last query read are in the socket's own count
    // (`SO_MEMINFO`, `SK_MEMINFO_DROPS`), not in any message.
    let mut info = [0u32; 9];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: reading the socket's memory counters into our own array of the length given.
    let rc = unsafe {
        libc::getsockopt(dns.socket.as_raw_fd(), libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len)
    };
    if rc == 0 && len as usize >= std::mem::size_of_val(&info) {
        dns.dropped += u64::from(info[libc::SK_MEMINFO_DROPS as usize].wrapping_sub(dns.overflowed));
        dns.overflowed = info[libc::SK_MEMINFO_DROPS as usize];
    }
    if dns.dropped == 0 {
        return;
    }
    if dns.log.is_none() {
        dns.log = connect_log(dns).ok();
    }
    if let Some(log) = &dns.log {
        let text = format!("#dropped {}", dns.dropped);
        // SAFETY: one datagram from our own buffer on our connected socket.
        if unsafe { libc::send(log.as_raw_fd(), text.as_ptr().cast(), text.len(), libc::MSG_NOSIGNAL) } >= 0 {
            dns.dropped = 0;
        }
    }
}

/// The recorder's socket, connected through its folder: blocking, so a burst
/// waits for the recorder to read rather than overflowing its small queue
/// (`net.unix.max_dgram_qlen`), with a timeout so a recorder that stopped
/// reading cannot stall the bridges for long.
fn connect_log(dns: &Dns) -> io::Result<OwnedFd> {
    let log = socket(libc::AF_UNIX, libc::SOCK_DGRAM)?;
    let addr = unix_addr(&dns.name)?;
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let timeout = libc::timeval { tv_sec: LOG_TIMEOUT_SECS, tv_usec: 0 };
    // SAFETY: fcntl, setsockopt, fchdir and connect on fds we own with valid arguments.
    unsafe {
        let flags = libc::fcntl(log.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(log.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setsockopt(
            log.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        ) != 0
            || libc::fchdir(dns.folder.as_raw_fd()) != 0
            || libc::connect(log.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(log)
}

/// For a DNS query: `TYPE NAME` (bytes outside printable ASCII escaped as
/// `\DDD`) and a REFUSED answer carrying its question. `None` for anything
/// that is not one well-formed query.
pub(crate) fn refuse(query: &[u8]) -> Option<(String, Vec<u8>)> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers and extended labels have no place in a question.
        if len > 63 || name.len() + len > 253 {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        for &b in query.get(at..at + len)? {
            match b {
                b'!'..=b'~' if b != b'\\' => name.push(b as char),
                _ => name.push_str(&format!("\\{b:03}")),
            }
        }
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    query.get(at + 2..at + 4)?;
    let end = at + 4;
    let kind = match qtype {
        1 => "A".to_string(),
        28 => "AAAA".into(),
        5 => "CNAME".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        n => format!("TYPE{n}"),
    };
    let mut reply = query[..end].to_vec();
    // QR, the query's opcode and RD; RA; RCODE 5 (REFUSED); one question, nothing else.
    reply[2] = 0x80 | (query[2] & 0x79);
    reply[3] = 0x80 | 5;
    reply[6..12].fill(0);
    Some((format!("{kind} {}", if name.is_empty() { "." } else { &name }), reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend(label.as_bytes());
        }
        q.push(0);
        q.extend(qtype.to_be_bytes());
        q.extend(1u16.to_be_bytes());
        q
    }

    #[test]
    fn a_lookup_is_refused_with_its_question_and_its_name_is_told() {
        let q = query(0xbeef, "statsig.anthropic.com", 1);
        let (name, reply) = refuse(&q).unwrap();
        assert_eq!(name, "A statsig.anthropic.com");
        assert_eq!(&reply[..2], &[0xbe, 0xef]);
        assert_eq!(reply[2] & 0x80, 0x80, "a response");
        assert_eq!(reply[2] & 0x01, 0x01, "recursion desired is kept");
        assert_eq!(reply[3] & 0x0f, 5, "REFUSED");
        assert_eq!(&reply[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&reply[12..], &q[12..]);
        assert_eq!(refuse(&query(1, "x.example", 28)).unwrap().0, "AAAA x.example");
    }

    #[test]
    fn anything_but_one_well_formed_query_is_ignored() {
        let good = query(1, "a.b", 1);
        assert!(refuse(&good[..good.len() - 1]).is_none(), "truncated");
        let mut answer = good.clone();
        answer[2] |= 0x80;
        assert!(refuse(&answer).is_none(), "a response");
        let mut two = good.clone();
        two[5] = 2;
        assert!(refuse(&two).is_none(), "two questions");
        let mut pointer = good.clone();
        pointer[12] = 0xc0;
        assert!(refuse(&pointer).is_none(), "a compression pointer");
        assert!(refuse(&[0; 5]).is_none());
        assert_eq!(refuse(&query(1, "a\x7fb.c", 1)).unwrap().0, "A a\\127b.c");
    }
}
