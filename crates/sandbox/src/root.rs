//! Building the sandbox's root: a private mount namespace, a new root
//! assembled on a tmpfs from the mount plan, and two `pivot_root`s into it.
//! Runs in init, after the fork.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::plan::{Access as MountAccess, MountOp, Plan};

const STAGING: &str = "/tmp";
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

type Step = (&'static str, io::Error);

/// Builds the new root in a private mount namespace and enters it.
pub(crate) fn build_root(plan: &Plan, cwd: &Path) -> Result<(), Step> {
    // SAFETY: unshare of the mount namespace in this single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(("make mounts private", io::Error::last_os_error()));
    }
    mount(None::<&str>, "/", None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(|e| ("make mounts private", e))?;
    // Stage on a tmpfs: the host root moves to /oldroot, the new root is
    // assembled in /newroot, binding from /oldroot.
    mount(Some("tmpfs"), STAGING, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some("mode=0755,size=1m"))
        .map_err(|e| ("mount staging tmpfs", e))?;
    std::env::set_current_dir(STAGING).map_err(|e| ("chdir", e))?;
    for dir in ["newroot", "oldroot", "empty-dir"] {
        std::fs::create_dir(dir).map_err(|e| ("create mount point", e))?;
    }
    std::fs::write("empty-file", b"").map_err(|e| ("create mount point", e))?;
    mount(Some("tmpfs"), "newroot", Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some("mode=0755"))
        .map_err(|e| ("mount new root", e))?;
    pivot_root(".", "oldroot").map_err(|e| ("pivot_root", e))?;
    std::env::set_current_dir("/").map_err(|e| ("chdir", e))?;

    for (n, op) in plan.mounts.iter().enumerate() {
        apply(op, n)?;
    }
    setattr("/newroot", false, MOUNT_ATTR_RDONLY).map_err(|e| ("make mount read-only", e))?;

    mount(None::<&str>, "/oldroot", None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(|e| ("detach old root", e))?;
    umount("/oldroot").map_err(|e| ("detach old root", e))?;
    std::env::set_current_dir("/newroot").map_err(|e| ("enter new root", e))?;
    pivot_root(".", ".").map_err(|e| ("enter new root", e))?;
    umount(".").map_err(|e| ("enter new root", e))?;
    std::env::set_current_dir(cwd).map_err(|e| ("chdir", e))?;
    Ok(())
}

fn apply(op: &MountOp, n: usize) -> Result<(), Step> {
    let inside = |p: &Path| -> PathBuf { Path::new("/newroot").join(p.strip_prefix("/").unwrap_or(p)) };
    match op {
        MountOp::Bind { path, access } => {
            let src = Path::new("/oldroot").join(path.strip_prefix("/").unwrap_or(path));
            let dst = inside(path);
            let attrs = match access {
                MountAccess::ReadOnly => MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                MountAccess::ReadWrite => MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                MountAccess::Device => MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            };
            let tree = clone_tree(&src, attrs).map_err(|e| ("bind mount", e))?;
            let mut st: libc::stat = unsafe_zeroed();
            // SAFETY: fstat into a stat buffer we own.
            if unsafe { libc::fstat(tree.as_raw_fd(), &mut st) } != 0 {
                return Err(("bind mount", io::Error::last_os_error()));
            }
            make_mount_point(&dst, st.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
            move_tree(&tree, &dst).map_err(|e| ("bind mount", e))
        }
        MountOp::BindAt { source, target } => {
            let src = Path::new("/oldroot").join(source.strip_prefix("/").unwrap_or(source));
            let tree = clone_tree(&src, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV).map_err(|e| ("bind mount", e))?;
            let dst = inside(target);
            make_mount_point(&dst, true)?;
            move_tree(&tree, &dst).map_err(|e| ("bind mount", e))
        }
        MountOp::ShowFile { source, target } => {
            let src = Path::new("/oldroot").join(source.strip_prefix("/").unwrap_or(source));
            let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            let tree = clone_tree(&src, attrs).map_err(|e| ("show file", e))?;
            move_tree(&tree, &inside(target)).map_err(|e| ("show file", e))
        }
        MountOp::Symlink { link, target } => {
            let dst = inside(link);
            let mut made = std::os::unix::fs::symlink(target, &dst);
            if made.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
                && let Some(parent) = dst.parent()
            {
                std::fs::create_dir_all(parent).map_err(|e| ("create mount point", e))?;
                made = std::os::unix::fs::symlink(target, &dst);
            }
            match made {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(("create symlink", e)),
                _ => Ok(()),
            }
        }
        MountOp::Tmpfs { path, bytes } => {
            let dst = inside(path);
            make_mount_point(&dst, true)?;
            // /tmp and /dev/shm are shared within the sandbox; a private home is the user's.
            let mode = match path.to_str() {
                Some("/dev") => "0755",
                Some("/tmp") | Some("/dev/shm") => "1777",
                _ => "0700",
            };
            let data = format!("mode={mode},size={bytes}");
            mount(Some("tmpfs"), &dst, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some(&data))
                .map_err(|e| ("mount tmpfs", e))
        }
        MountOp::Proc => {
            let dst = inside(Path::new("/proc"));
            make_mount_point(&dst, true)?;
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            mount(Some("proc"), &dst, Some("proc"), flags, None).map_err(|e| ("mount proc", e))
        }
        MountOp::Devpts => {
            let dst = inside(Path::new("/dev/pts"));
            make_mount_point(&dst, true)?;
            mount(
                Some("devpts"),
                &dst,
                Some("devpts"),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620"),
            )
            .map_err(|e| ("mount devpts", e))
        }
        MountOp::MaskFile { path } => {
            let dst = inside(path);
            match mount(Some("/empty-file"), &dst, None, libc::MS_BIND, None) {
                // Gone since it was planned (a build's lock file, say): nothing is left to hide.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                other => other.map_err(|e| ("mask denied path", e))?,
            }
            setattr(&dst, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
                .map_err(|e| ("mask denied path", e))
        }
        MountOp::MaskDir { path } => {
            let dst = inside(path);
            match mount(Some("/empty-dir"), &dst, None, libc::MS_BIND, None) {
                // Gone since it was planned (a build's lock file, say): nothing is left to hide.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                other => other.map_err(|e| ("mask denied path", e))?,
            }
            setattr(&dst, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
                .map_err(|e| ("mask denied path", e))
        }
        MountOp::Replace { path, contents } => {
            // The copy lives on the staging tmpfs, which stays alive under the bind.
            let copy = format!("/replace-{n}");
            std::fs::write(&copy, contents).map_err(|e| ("write cleaned copy", e))?;
            let dst = inside(path);
            mount(Some(&copy), &dst, None, libc::MS_BIND, None).map_err(|e| ("show cleaned copy", e))?;
            setattr(&dst, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
                .map_err(|e| ("show cleaned copy", e))
        }
        MountOp::ReadOnly { path } => {
            setattr(inside(path), false, MOUNT_ATTR_RDONLY).map_err(|e| ("make mount read-only", e))
        }
    }
}

fn make_mount_point(dst: &Path, dir: bool) -> Result<(), Step> {
    if dir {
        return std::fs::create_dir_all(dst).map_err(|e| ("create mount point", e));
    }
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ("create mount point", e))?;
    }
    match std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(dst) {
        Ok(_) => Ok(()),
        // Already there (read-only because a parent bind is): fine.
        Err(_) if dst.exists() => Ok(()),
        Err(e) => Err(("create mount point", e)),
    }
}

fn cstr(p: impl AsRef<Path>) -> io::Result<CString> {
    CString::new(p.as_ref().as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn mount(
    src: Option<impl AsRef<Path>>,
    dst: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(cstr).transpose()?;
    let dst = cstr(dst)?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are NUL-terminated strings or null.
    let rc = unsafe { libc::mount(ptr(&src), dst.as_ptr(), ptr(&fstype), flags, ptr(&data).cast()) };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn umount(path: &str) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn pivot_root(new_root: &str, put_old: &str) -> io::Result<()> {
    let (n, o) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: valid C strings.
    if unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) } != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C structs (stat), for which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Clones the mount tree at `src` into a detached mount with `attrs` set on
/// every mount of it. The path is resolved without following any symbolic
/// link: every bound path is canonical, so a link found now means something
/// was swapped since planning, and the bind fails instead of following it.
fn clone_tree(src: &Path, attrs: u64) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let c = cstr(src)?;
    // SAFETY: open_how is plain data.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = RESOLVE_NO_SYMLINKS;
    // SAFETY: valid path and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const libc::open_how,
            size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd we own.
    let path_fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | AT_RECURSIVE as libc::c_uint;
    // SAFETY: an empty path relative to an fd we own.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, path_fd.as_raw_fd(), c"".as_ptr(), flags) };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd we own.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    setattr_fd(&tree, attrs)?;
    Ok(tree)
}

/// Attaches a detached mount tree at `dst`.
fn move_tree(tree: &OwnedFd, dst: &Path) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    let c = cstr(dst)?;
    // SAFETY: an fd we own, an empty path, and a valid destination path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Sets mount attributes with `mount_setattr(2)`, which only adds the given
/// flags and so never trips over flags the kernel locked on host mounts.
fn setattr(path: impl AsRef<Path>, recursive: bool, set: u64) -> io::Result<()> {
    let p = cstr(path)?;
    mount_setattr(libc::AT_FDCWD, &p, if recursive { AT_RECURSIVE } else { 0 }, set)
}

fn setattr_fd(tree: &OwnedFd, set: u64) -> io::Result<()> {
    mount_setattr(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH | AT_RECURSIVE, set)
}

const AT_RECURSIVE: libc::c_int = 0x8000;

fn mount_setattr(dirfd: RawFd, path: &std::ffi::CStr, flags: libc::c_int, set: u64) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr { attr_set: set, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: valid path and attribute struct of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}
