//! Writing a file into a folder that a sandboxed process could write,
//! without following a link it planted there.
//!
//! A plain `write` to `STATE/config.toml` follows `config.toml` if it is a
//! symbolic link, so a link left by one session turns the next start into a
//! write to any file of the user. Here every folder below the trusted base
//! is opened `O_DIRECTORY|O_NOFOLLOW` relative to the one above it, the
//! content goes to a new temporary file (`O_CREAT|O_EXCL|O_NOFOLLOW`) in the
//! last one, and `renameat` puts it in place: a rename replaces a link
//! rather than writing through it, and never leaves a half-written file.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What a write found in place of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replaced {
    /// Nothing, or a regular file.
    Nothing,
    /// A symbolic link (to the text given), now replaced by a regular file.
    Link(String),
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// The relative path leaves the folder or is empty.
    #[error("{0}: not a plain relative path")]
    NotRelative(PathBuf),
    /// A folder on the way is a link or not a folder.
    #[error("{path}: {source}\nhint: a sandboxed process may have put a link or a file there; remove it")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn cstr(s: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn openat(dir: libc::c_int, name: &CString, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated name relative to a dir fd we hold (or AT_FDCWD); the fd returned is ours.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `base` (trusted: the caller's own folder) and then each folder of
/// `rel` below it without following links, creating missing ones (0700).
/// Returns the last folder and the file name.
fn open_parent(base: &Path, rel: &Path) -> Result<(OwnedFd, CString), BeneathError> {
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(BeneathError::NotRelative(rel.to_path_buf())),
        })
        .collect::<Result<_, _>>()?;
    let Some((file, dirs)) = parts.split_last() else {
        return Err(BeneathError::NotRelative(rel.to_path_buf()));
    };
    let folder_err = |path: PathBuf| move |source| BeneathError::Folder { path, source };
    let mut dir = openat(
        libc::AT_FDCWD,
        &cstr(base.as_os_str()).map_err(folder_err(base.to_path_buf()))?,
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    )
    .map_err(folder_err(base.to_path_buf()))?;
    let mut at = base.to_path_buf();
    for name in dirs {
        at.push(name);
        let c = cstr(name).map_err(folder_err(at.clone()))?;
        // SAFETY: mkdirat on a dir fd we hold and a valid name; EEXIST is checked by the open below.
        unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) };
        dir = openat(dir.as_raw_fd(), &c, libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY, 0)
            .map_err(folder_err(at.clone()))?;
    }
    Ok((dir, cstr(file).map_err(folder_err(at))?))
}

/// What is at `name` in `dir` now, without following it.
fn what_is(dir: &OwnedFd, name: &CString) -> Replaced {
    let mut buf = vec![0u8; 4096];
    // SAFETY: readlinkat into our own buffer; fails (EINVAL, ENOENT) for anything that is not a link.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Replaced::Nothing;
    }
    buf.truncate(n as usize);
    Replaced::Link(String::from_utf8_lossy(&buf).into_owned())
}

/// Writes `bytes` to `base/rel` (mode `mode`) without following any link
/// below `base`; says whether a link stood there (it is replaced).
pub fn write_beneath(base: &Path, rel: &Path, bytes: &[u8], mode: u32) -> Result<Replaced, BeneathError> {
    let path = base.join(rel);
    let (dir, name) = open_parent(base, rel)?;
    let found = what_is(&dir, &name);
    let write_err = |source| BeneathError::Write { path: path.clone(), source };
    let mut random = [0u8; 8];
    // SAFETY: getrandom into our own buffer.
    if unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) } != random.len() as isize {
        return Err(write_err(io::Error::last_os_error()));
    }
    let tmp = CString::new(format!(".airlock-tmp-{}", hex::encode(random)))
        .map_err(|_| write_err(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let fd = openat(
        dir.as_raw_fd(),
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        mode as libc::mode_t,
    )
    .map_err(write_err)?;
    let mut file = std::fs::File::from(fd);
    let written = {
        use std::io::Write;
        file.write_all(bytes).and_then(|()| file.sync_all())
    };
    drop(file);
    let unlink_tmp = || {
        // SAFETY: removing our own temporary file by name in a dir fd we hold.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
    };
    if let Err(e) = written {
        unlink_tmp();
        return Err(write_err(e));
    }
    // SAFETY: renaming within one dir fd we hold; names are valid C strings.
    if unsafe { libc::renameat(dir.as_raw_fd(), tmp.as_ptr(), dir.as_raw_fd(), name.as_ptr()) } != 0 {
        let e = io::Error::last_os_error();
        unlink_tmp();
        return Err(write_err(e));
    }
    Ok(found)
}

/// What [`read_beneath`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing there.
    Nothing,
    /// A regular file's bytes.
    File(Vec<u8>),
    /// A symbolic link (to the text given), not followed.
    Link(String),
    /// A folder, a device or a pipe, not opened for reading.
    NotAFile,
    /// A regular file larger than the limit (its size), not read.
    TooLarge(u64),
}

/// Reads `base/rel` without following any link below `base`, nor opening
/// anything but a regular file of at most `limit` bytes (a pipe planted
/// there would block the read; a link would read the user's files).
pub fn read_beneath(base: &Path, rel: &Path, limit: u64) -> Result<Found, BeneathError> {
    use std::io::Read;
    let path = base.join(rel);
    let (dir, name) = open_parent(base, rel)?;
    let read_err = |source| BeneathError::Read { path: path.clone(), source };
    let fd = match openat(dir.as_raw_fd(), &name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Found::Nothing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let Replaced::Link(target) = what_is(&dir, &name) else { return Err(read_err(e)) };
            return Ok(Found::Link(target));
        }
        Err(e) => return Err(read_err(e)),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(read_err)?;
    if !meta.file_type().is_file() {
        return Ok(Found::NotAFile);
    }
    if meta.len() > limit {
        return Ok(Found::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Ok(Found::TooLarge(bytes.len() as u64));
    }
    Ok(Found::File(bytes))
}

/// Writes `bytes` to `path` (chosen by the person running airlock, its
/// folder trusted) without following a link at its last component.
pub fn write_nofollow(path: &Path, bytes: &[u8], mode: u32) -> Result<Replaced, BeneathError> {
    let not_relative = || BeneathError::NotRelative(path.to_path_buf());
    let name = path.file_name().ok_or_else(not_relative)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    write_beneath(parent, Path::new(name), bytes, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_replaced_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::symlink(&victim, state.join("config.toml")).unwrap();
        // What a plain write does: the attack.
        let bare = dir.path().join("bare");
        std::fs::create_dir(&bare).unwrap();
        std::os::unix::fs::symlink(&victim, bare.join("config.toml")).unwrap();
        std::fs::write(bare.join("config.toml"), "owned").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "owned");
        std::fs::write(&victim, "precious").unwrap();

        let found = write_beneath(&state, Path::new("config.toml"), b"ours", 0o600).unwrap();
        assert_eq!(found, Replaced::Link(victim.display().to_string()));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(state.join("config.toml")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read_to_string(state.join("config.toml")).unwrap(), "ours");
        assert_eq!(write_beneath(&state, Path::new("config.toml"), b"again", 0o600).unwrap(), Replaced::Nothing);
    }

    #[test]
    fn reading_follows_no_link_and_opens_no_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        assert_eq!(read_beneath(&state, Path::new("a.json"), 100).unwrap(), Found::Nothing);
        std::fs::write(state.join("a.json"), "{}").unwrap();
        assert_eq!(read_beneath(&state, Path::new("a.json"), 100).unwrap(), Found::File(b"{}".to_vec()));
        assert_eq!(read_beneath(&state, Path::new("a.json"), 1).unwrap(), Found::TooLarge(2));
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "key").unwrap();
        std::os::unix::fs::symlink(&secret, state.join("b.json")).unwrap();
        assert_eq!(read_beneath(&state, Path::new("b.json"), 100).unwrap(), Found::Link(secret.display().to_string()));
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "key");
        let fifo = std::ffi::CString::new(state.join("c.json").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(read_beneath(&state, Path::new("c.json"), 100).unwrap(), Found::NotAFile);
    }

    #[test]
    fn a_linked_folder_on_the_way_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::symlink(&elsewhere, state.join("sub")).unwrap();
        let err = write_beneath(&state, Path::new("sub/settings.json"), b"x", 0o600).unwrap_err();
        assert!(matches!(err, BeneathError::Folder { .. }), "{err}");
        assert!(!elsewhere.join("settings.json").exists());
        assert!(matches!(write_beneath(&state, Path::new("../x"), b"x", 0o600), Err(BeneathError::NotRelative(_))));
        // New folders are made (without following anything).
        write_beneath(&state, Path::new("a/b/c.json"), b"x", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(state.join("a/b/c.json")).unwrap(), "x");
    }
}
