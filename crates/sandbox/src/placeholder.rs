//! Creating and removing placeholders (empty protected paths, see
//! [`crate::plan::Placeholder`]) without following a symbolic link. They lie
//! in the workspace, which sandboxed processes write: a folder on the way
//! swapped for a link since planning must not make airlock create or delete
//! anything elsewhere. Every path is canonical, so the folder holding the
//! placeholder is opened with `RESOLVE_NO_SYMLINKS` and the placeholder is
//! made and removed relative to it.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use airlock_policy::PathKind;

/// The folder holding `path`, opened without following any link, and the
/// last component's name.
fn parent(path: &Path) -> io::Result<(OwnedFd, CString)> {
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(invalid());
    };
    let dir = CString::new(dir.as_os_str().as_bytes()).map_err(|_| invalid())?;
    let name = CString::new(name.as_bytes()).map_err(|_| invalid())?;
    // SAFETY: open_how is plain data.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = RESOLVE_NO_SYMLINKS;
    // SAFETY: a valid C string and an open_how of the size passed.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, dir.as_ptr(), &how as *const libc::open_how, size_of_val(&how))
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    Ok((unsafe { OwnedFd::from_raw_fd(fd as RawFd) }, name))
}

fn open_at(dir: &OwnedFd, name: &CString, flags: libc::c_int) -> io::Result<std::fs::File> {
    // SAFETY: a valid descriptor and C string.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Creates an empty folder, or a file holding `contents`; fails with
/// `AlreadyExists` if something is there, and with `ELOOP`/`ENOTDIR` if a
/// folder on the way is a link now.
pub(crate) fn create(path: &Path, kind: PathKind, contents: &[u8]) -> io::Result<()> {
    let (dir, name) = parent(path)?;
    match kind {
        // SAFETY: a valid descriptor and C string.
        PathKind::Dir => check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) }),
        PathKind::File => open_at(&dir, &name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)?.write_all(contents),
    }
}

/// Removes a placeholder if it is still what was created: a folder only if
/// empty, a file only if it holds `contents` (and is not a link). Anything
/// else is left alone.
pub(crate) fn remove_if_unchanged(path: &Path, kind: PathKind, contents: &[u8]) {
    let Ok((dir, name)) = parent(path) else {
        return;
    };
    match kind {
        // Fails, and so keeps it, if anything was put inside.
        PathKind::Dir => {
            // SAFETY: a valid descriptor and C string.
            let _ = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
        }
        PathKind::File => {
            let mut now = Vec::new();
            let unchanged = open_at(&dir, &name, libc::O_RDONLY)
                .and_then(|f| f.take(contents.len() as u64 + 1).read_to_end(&mut now))
                .is_ok_and(|_| now == contents);
            if unchanged {
                // SAFETY: a valid descriptor and C string.
                let _ = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_made_and_removed_in_place() {
        let ws = tempfile::tempdir().unwrap();
        let dir = ws.path().join("hooks");
        let file = ws.path().join("commondir");
        create(&dir, PathKind::Dir, b"").unwrap();
        create(&file, PathKind::File, b".").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b".");
        assert_eq!(create(&file, PathKind::File, b".").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        remove_if_unchanged(&dir, PathKind::Dir, b"");
        remove_if_unchanged(&file, PathKind::File, b".");
        assert!(!dir.exists() && !file.exists());
        // Changed since: kept.
        create(&file, PathKind::File, b"").unwrap();
        std::fs::write(&file, "[core]\n").unwrap();
        remove_if_unchanged(&file, PathKind::File, b"");
        assert!(file.exists());
    }

    #[test]
    fn a_folder_swapped_for_a_link_is_not_followed() {
        let ws = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(victim.path(), ws.path().join(".git")).unwrap();
        // Through a plain path the link is followed (the attack).
        let through = ws.path().join(".git/config.worktree");
        std::fs::write(&through, "").unwrap();
        assert!(victim.path().join("config.worktree").exists());
        std::fs::remove_file(&through).unwrap();
        // Here it is not: nothing is made there, and nothing there is removed.
        assert!(create(&through, PathKind::File, b"").is_err());
        assert!(create(&ws.path().join(".git/hooks"), PathKind::Dir, b"").is_err());
        assert!(!victim.path().join("config.worktree").exists() && !victim.path().join("hooks").exists());
        std::fs::write(victim.path().join("keep"), "").unwrap();
        std::fs::create_dir(victim.path().join("empty")).unwrap();
        remove_if_unchanged(&ws.path().join(".git/keep"), PathKind::File, b"");
        remove_if_unchanged(&ws.path().join(".git/empty"), PathKind::Dir, b"");
        assert!(victim.path().join("keep").exists() && victim.path().join("empty").exists());
        // A link in the placeholder's own place is not written through either.
        std::fs::write(victim.path().join("target"), "x").unwrap();
        std::os::unix::fs::symlink(victim.path().join("target"), ws.path().join("envrc")).unwrap();
        assert!(create(&ws.path().join("envrc"), PathKind::File, b"").is_err());
        remove_if_unchanged(&ws.path().join("envrc"), PathKind::File, b"x");
        assert_eq!(std::fs::read(victim.path().join("target")).unwrap(), b"x");
        assert!(ws.path().join("envrc").symlink_metadata().is_ok());
    }
}
