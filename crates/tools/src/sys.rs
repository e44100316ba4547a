//! The few Linux calls std does not expose: `openat2` and the `*at` family on directory fds.
//! Every `unsafe` block of the crate lives here.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `struct open_how` from `linux/openat2.h` (libc's copy is `#[non_exhaustive]`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Refuse to resolve any path component outside the directory fd (`..`, absolute paths, and
/// symlinks leading out), failing with `EXDEV`.
pub(crate) const RESOLVE_BENEATH: u64 = 0x08;
/// Refuse `/proc/*/fd`-style magic links.
pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// Refuse every symlink.
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// How often `openat2` is retried on `EAGAIN`, which `RESOLVE_BENEATH` returns when a
/// concurrent rename made the walk ambiguous.
const EAGAIN_RETRIES: usize = 16;

fn c_path(path: &OsStr) -> io::Result<CString> {
    CString::new(path.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(dir, path, flags | O_CLOEXEC, mode, resolve)`.
pub(crate) fn openat2(dir: BorrowedFd<'_>, path: &Path, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    let c = c_path(path.as_os_str())?;
    let how = OpenHow { flags: u64::from((flags | libc::O_CLOEXEC).cast_unsigned()), mode: 0, resolve };
    let mut tries = 0;
    loop {
        // SAFETY: `c` is NUL-terminated and `how` is a valid `open_how` of the size passed; both
        // outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match owned(ret) {
            Err(err) if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) && tries < EAGAIN_RETRIES => {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`; `name` is a single component.
pub(crate) fn openat(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let c = c_path(name)?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let ret = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    owned(libc::c_long::from(ret))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `mkdirat(dir, name, 0o777)` (the umask applies).
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = c_path(name)?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) })
}

/// `renameat(dir, from, dir, to)`: atomically replaces `to` (never following it if a symlink).
pub(crate) fn renameat(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    // SAFETY: both strings are NUL-terminated and outlive the call.
    check(unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) })
}

/// `unlinkat(dir, name, 0)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = c_path(name)?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })
}

/// What sits at `dir/name`, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// Nothing.
    Missing,
    /// A regular file with this mode (permission bits).
    File { mode: u32 },
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, socket or FIFO.
    Special,
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)` reduced to an [`EntryKind`].
pub(crate) fn entry_kind(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<EntryKind> {
    let c = c_path(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `c` is NUL-terminated; `st` is a valid out-pointer the kernel fills on success.
    let ret = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::ENOENT) { Ok(EntryKind::Missing) } else { Err(err) };
    }
    // SAFETY: fstatat succeeded, so the struct is initialised.
    let st = unsafe { st.assume_init() };
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => EntryKind::File { mode: st.st_mode & 0o7777 },
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Special,
    })
}

/// The magic-link path of an fd of this process.
pub(crate) fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The absolute path the kernel resolved `fd` to.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(proc_fd(fd))
}

/// The target of the symlink `dir/name`, for messages.
pub(crate) fn link_target(dir: BorrowedFd<'_>, name: &OsStr) -> String {
    std::fs::read_link(proc_fd(dir).join(name))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".to_string())
}
