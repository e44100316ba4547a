//! The workspace root and the one way tools reach files beneath it.
//!
//! Every open goes through `openat2(root_fd, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, so
//! `..`, absolute symlinks and symlinks leading out of the root are refused by the kernel, not by
//! string checks that a racing rename could defeat. The path policy is checked on the path as
//! given and again on the path the kernel actually resolved (read back from `/proc/self/fd`), so a
//! symlink with an innocent name cannot smuggle `.env` into the model's context.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_redact::{PathDecision, PathPolicy};
use sha2::{Digest, Sha256};

use crate::ToolError;
use crate::sys::{self, EntryKind, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};

/// Size caps that keep a tool result affordable for a local model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of output `read_file` returns before cutting off with a marker.
    pub read_max_bytes: usize,
    /// Lines `read_file` returns when no `limit` is given.
    pub read_default_lines: u64,
    /// Characters after which `read_file` cuts a line.
    pub line_max_chars: usize,
    /// Entries `list_dir` shows.
    pub list_max_entries: usize,
    /// Paths `glob` shows.
    pub glob_max_results: usize,
    /// Matches `grep` shows when no `max_results` is given.
    pub grep_default_results: usize,
    /// Upper bound on `grep`'s `max_results`.
    pub grep_max_results: usize,
    /// Characters after which `grep` cuts a line.
    pub grep_line_max_chars: usize,
    /// Upper bound on `grep`'s `context`.
    pub grep_max_context: usize,
    /// Largest file `edit_file` loads, and largest `content` `write_file` accepts.
    pub edit_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            read_max_bytes: 256 * 1024,
            read_default_lines: 2000,
            line_max_chars: 2000,
            list_max_entries: 1000,
            glob_max_results: 500,
            grep_default_results: 100,
            grep_max_results: 1000,
            grep_line_max_chars: 500,
            grep_max_context: 10,
            edit_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The directory tools work in: an `O_PATH` fd of the root, the never-read path policy, limits.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    real_root: PathBuf,
    root_fd: OwnedFd,
    policy: PathPolicy,
    limits: Limits,
}

/// A path opened `O_PATH` beneath the root, with what the kernel resolved it to.
#[derive(Debug)]
pub(crate) struct Opened {
    file: File,
    /// The path as the model gave it (normalised), for messages.
    pub shown: String,
    /// Where it really is, relative to the root.
    pub resolved: PathBuf,
    pub meta: Metadata,
}

/// Where a write goes: the parent directory (opened beneath the root) and the final name, which
/// is never followed if it is a symlink.
#[derive(Debug)]
pub(crate) struct WriteTarget {
    dir: OwnedFd,
    name: OsString,
    /// The path as the model gave it (normalised).
    pub shown: String,
    /// Where it really is, relative to the root.
    pub resolved: PathBuf,
    kind: EntryKind,
}

impl Workspace {
    /// Opens `root` (`O_PATH | O_DIRECTORY`) and checks that the kernel can confine paths to it.
    pub fn open(root: &Path, policy: PathPolicy) -> Result<Workspace, ToolError> {
        let root = std::fs::canonicalize(root)
            .map_err(|source| ToolError::WorkspaceOpen { root: root.to_path_buf(), source })?;
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let root_fd = sys::openat2(cwd(), &root, flags, 0).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOSYS) => ToolError::from_open("", source),
            _ => ToolError::WorkspaceOpen { root: root.clone(), source },
        })?;
        let real_root = sys::fd_path(root_fd.as_fd()).map_err(|_| ToolError::Unsupported {
            what: "/proc/self/fd is not readable, so resolved paths cannot be checked against the path policy",
            hint: "mount /proc (airlock's file tools need it)",
        })?;
        Ok(Workspace { root, real_root, root_fd, policy, limits: Limits::default() })
    }

    /// Replaces the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> Workspace {
        self.limits = limits;
        self
    }

    /// The root, canonicalised.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The size caps in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The root as the kernel names it; walks start here so their paths strip to relative ones.
    pub(crate) fn real_root(&self) -> &Path {
        &self.real_root
    }

    /// The path argument made relative to the root, `.` and `..` resolved lexically.
    pub(crate) fn relative(&self, arg: &str) -> Result<PathBuf, ToolError> {
        lexical_relative(&[&self.root, &self.real_root], arg)
    }

    /// Refuses `rel` if the path policy denies it.
    pub(crate) fn check_policy(&self, rel: &Path, is_dir: bool, shown: &str) -> Result<(), ToolError> {
        match decide(&self.policy, rel, is_dir) {
            PathDecision::Allowed => Ok(()),
            PathDecision::Denied { pattern } => Err(ToolError::Denied { path: shown.to_string(), pattern }),
        }
    }

    /// What the policy says about `rel` (relative to the root).
    pub(crate) fn decide(&self, rel: &Path, is_dir: bool) -> PathDecision {
        decide(&self.policy, rel, is_dir)
    }

    /// Opens the path argument `O_PATH` beneath the root and checks the policy on both the given
    /// and the resolved path.
    pub(crate) fn open_path(&self, arg: &str) -> Result<Opened, ToolError> {
        let rel = self.relative(arg)?;
        self.open_rel(&rel)
    }

    /// Like [`Workspace::open_path`] for an already relative, normalised path.
    pub(crate) fn open_rel(&self, rel: &Path) -> Result<Opened, ToolError> {
        let shown = show(rel);
        self.check_policy(rel, false, &shown)?;
        let target = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let fd = sys::openat2(self.root_fd.as_fd(), target, libc::O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
            .map_err(|err| ToolError::from_open(&shown, err))?;
        let resolved = self.resolved(fd.as_fd(), &shown)?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|source| ToolError::Io { path: shown.clone(), source })?;
        self.check_policy(rel, meta.is_dir(), &shown)?;
        if resolved != rel {
            self.check_policy(&resolved, meta.is_dir(), &format!("{shown}` -> `{}", show(&resolved)))?;
        }
        Ok(Opened { file, shown, resolved, meta })
    }

    /// Where the kernel resolved `fd`, relative to the root.
    fn resolved(&self, fd: std::os::fd::BorrowedFd<'_>, shown: &str) -> Result<PathBuf, ToolError> {
        let real = sys::fd_path(fd).map_err(|source| ToolError::Io { path: shown.to_string(), source })?;
        match real.strip_prefix(&self.real_root) {
            Ok(rel) => Ok(rel.to_path_buf()),
            Err(_) => Err(ToolError::OutsideWorkspace { path: shown.to_string() }),
        }
    }

    /// Opens an [`Opened`] regular file for reading (through its `/proc/self/fd` link, so the
    /// same inode is read that was checked).
    pub(crate) fn read_file(&self, opened: &Opened) -> Result<File, ToolError> {
        if opened.meta.is_dir() {
            return Err(ToolError::IsADirectory { path: opened.shown.clone() });
        }
        if !opened.meta.is_file() {
            return Err(ToolError::SpecialFile { path: opened.shown.clone() });
        }
        File::open(sys::proc_fd(opened.file.as_fd()))
            .map_err(|source| ToolError::Io { path: opened.shown.clone(), source })
    }

    /// Lists an [`Opened`] directory.
    pub(crate) fn read_dir(&self, opened: &Opened) -> Result<std::fs::ReadDir, ToolError> {
        if !opened.meta.is_dir() {
            return Err(ToolError::NotADirectory { path: opened.shown.clone() });
        }
        std::fs::read_dir(sys::proc_fd(opened.file.as_fd()))
            .map_err(|source| ToolError::Io { path: opened.shown.clone(), source })
    }

    /// Resolves the parent of the path argument beneath the root (creating missing directories if
    /// asked), refusing `.git` internals, policy-denied paths and a final symlink.
    pub(crate) fn write_target(&self, arg: &str, create_parents: bool) -> Result<WriteTarget, ToolError> {
        let rel = self.relative(arg)?;
        let shown = show(&rel);
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            return Err(ToolError::IsADirectory { path: if shown.is_empty() { ".".into() } else { shown } });
        };
        if in_git_dir(&rel) {
            return Err(ToolError::GitInternals { path: shown });
        }
        self.check_policy(&rel, false, &shown)?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = self.open_parent(parent, create_parents, &shown)?;
        let resolved = self.resolved(dir.as_fd(), &shown)?.join(&name);
        if resolved != rel {
            let via = format!("{shown}` -> `{}", show(&resolved));
            if in_git_dir(&resolved) {
                return Err(ToolError::GitInternals { path: via });
            }
            self.check_policy(&resolved, false, &via)?;
        }
        let kind =
            sys::entry_kind(dir.as_fd(), &name).map_err(|source| ToolError::Io { path: shown.clone(), source })?;
        match kind {
            EntryKind::Symlink => Err(ToolError::Symlink { target: sys::link_target(dir.as_fd(), &name), path: shown }),
            EntryKind::Dir => Err(ToolError::IsADirectory { path: shown }),
            EntryKind::Special => Err(ToolError::SpecialFile { path: shown }),
            EntryKind::Missing | EntryKind::File { .. } => Ok(WriteTarget { dir, name, shown, resolved, kind }),
        }
    }

    /// Opens `parent` beneath the root; missing components are made with `mkdirat` one at a time
    /// and reopened without following symlinks.
    fn open_parent(&self, parent: &Path, create: bool, shown: &str) -> Result<OwnedFd, ToolError> {
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        let root = self.root_fd.as_fd();
        let target = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let open_err = |err: io::Error| match err.raw_os_error() {
            // A file where a directory should be: name the parent, not the file being written.
            Some(libc::ENOTDIR) | Some(libc::EEXIST) => ToolError::NotADirectory { path: show(parent) },
            _ => ToolError::from_open(shown, err),
        };
        match sys::openat2(root, target, flags, resolve) {
            Ok(fd) => return Ok(fd),
            Err(err) if create && err.raw_os_error() == Some(libc::ENOENT) => {}
            Err(err) => return Err(open_err(err)),
        }
        let mut dir = sys::openat2(root, Path::new("."), flags, resolve).map_err(open_err)?;
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            let name = component.as_os_str();
            prefix.push(name);
            dir = match sys::openat2(root, &prefix, flags, resolve) {
                Ok(fd) => fd,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    match sys::mkdirat(dir.as_fd(), name) {
                        Err(err) if err.raw_os_error() != Some(libc::EEXIST) => {
                            return Err(ToolError::Io { path: show(&prefix), source: err });
                        }
                        _ => {}
                    }
                    sys::openat2(dir.as_fd(), Path::new(name), flags, resolve | RESOLVE_NO_SYMLINKS)
                        .map_err(open_err)?
                }
                Err(err) => return Err(open_err(err)),
            };
        }
        Ok(dir)
    }
}

impl WriteTarget {
    /// The existing file opened for reading (never through a symlink), its mode and size.
    fn open_existing(&self) -> Result<Option<(File, u32, u64)>, ToolError> {
        let EntryKind::File { mode } = self.kind else { return Ok(None) };
        let io_err = |source| ToolError::Io { path: self.shown.clone(), source };
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let file = File::from(sys::openat(self.dir.as_fd(), &self.name, flags, 0).map_err(io_err)?);
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(ToolError::SpecialFile { path: self.shown.clone() });
        }
        Ok(Some((file, mode, meta.len())))
    }

    /// The current content and permission bits, if the file exists; refuses files over `max`.
    pub(crate) fn read_existing(&self, max: u64) -> Result<Option<(Vec<u8>, u32)>, ToolError> {
        let Some((file, mode, len)) = self.open_existing()? else { return Ok(None) };
        if len > max {
            return Err(ToolError::TooLarge { path: self.shown.clone(), size: len, limit: max });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ToolError::Io { path: self.shown.clone(), source })?;
        Ok(Some((bytes, mode)))
    }

    /// The SHA-256 and permission bits of the existing file, streamed, if it exists.
    pub(crate) fn existing_digest(&self) -> Result<Option<(String, u32)>, ToolError> {
        let Some((mut file, mode, _)) = self.open_existing()? else { return Ok(None) };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(ToolError::Io { path: self.shown.clone(), source }),
            }
        }
        Ok(Some((hex::encode(hasher.finalize()), mode)))
    }

    /// Writes `bytes` to a temporary file in the same directory, then renames it over the target,
    /// so readers see the old or the new content, never a mix. `mode` keeps an existing file's
    /// permissions; new files get `0o666` less the umask.
    pub(crate) fn write_atomic(&self, bytes: &[u8], mode: Option<u32>) -> Result<(), ToolError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let io_err = |source| ToolError::Io { path: self.shown.clone(), source };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let mut attempt = 0;
        let (tmp, fd) = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = OsString::from(format!(".airlock-{}-{n}.tmp", std::process::id()));
            match sys::openat(self.dir.as_fd(), &tmp, flags, 0o666) {
                Ok(fd) => break (tmp, fd),
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) && attempt < 16 => attempt += 1,
                Err(err) => return Err(io_err(err)),
            }
        };
        let mut file = File::from(fd);
        let written = (|| -> io::Result<()> {
            file.write_all(bytes)?;
            if let Some(mode) = mode {
                file.set_permissions(Permissions::from_mode(mode))?;
            }
            file.sync_all()?;
            sys::renameat(self.dir.as_fd(), &tmp, &self.name)
        })();
        if let Err(err) = written {
            let _ = sys::unlinkat(self.dir.as_fd(), &tmp);
            return Err(io_err(err));
        }
        Ok(())
    }
}

/// The current directory as a dirfd, for opening the (absolute) root.
fn cwd() -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a sentinel the kernel accepts wherever a dirfd is; it is never closed.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

fn decide(policy: &PathPolicy, rel: &Path, is_dir: bool) -> PathDecision {
    if rel.as_os_str().is_empty() { PathDecision::Allowed } else { policy.check(rel, is_dir) }
}

/// A relative path for messages; the root shows as `.`.
pub(crate) fn show(rel: &Path) -> String {
    if rel.as_os_str().is_empty() { ".".to_string() } else { rel.to_string_lossy().into_owned() }
}

/// Whether any component is `.git` (writes there could plant hooks).
pub(crate) fn in_git_dir(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str().eq_ignore_ascii_case(".git"))
}

/// `arg` relative to the root: absolute paths must start with one of `roots`; `.` is dropped and
/// `..` pops a component, refusing to climb above the root. The empty path is the root.
pub(crate) fn lexical_relative(roots: &[&Path], arg: &str) -> Result<PathBuf, ToolError> {
    let outside = || ToolError::OutsideWorkspace { path: arg.to_string() };
    let path = Path::new(arg);
    let rest = if path.is_absolute() {
        roots.iter().find_map(|root| path.strip_prefix(root).ok()).ok_or_else(outside)?
    } else {
        path
    };
    let mut out = PathBuf::new();
    for component in rest.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(outside());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    Ok(out)
}

/// Lowercase hex SHA-256, for the audit log.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(arg: &str) -> Result<PathBuf, ToolError> {
        lexical_relative(&[Path::new("/ws/root")], arg)
    }

    #[test]
    fn lexical_relative_normalises_and_refuses_climbing_out() {
        assert_eq!(rel("src/./a/../lib.rs").unwrap(), PathBuf::from("src/lib.rs"));
        assert_eq!(rel("").unwrap(), PathBuf::new());
        assert_eq!(rel(".").unwrap(), PathBuf::new());
        assert_eq!(rel("/ws/root/src").unwrap(), PathBuf::from("src"));
        assert_eq!(rel("/ws/root").unwrap(), PathBuf::new());
        for bad in ["../x", "a/../../x", "/etc/passwd", "/ws/rootx/a", "/ws/root/../x"] {
            assert!(matches!(rel(bad), Err(ToolError::OutsideWorkspace { .. })), "{bad}");
        }
    }

    #[test]
    fn git_dir_detection() {
        assert!(in_git_dir(Path::new(".git/hooks/pre-commit")));
        assert!(in_git_dir(Path::new("sub/.GIT/config")));
        assert!(!in_git_dir(Path::new(".gitignore")));
        assert!(!in_git_dir(Path::new("src/git/x")));
    }

    #[test]
    fn kernel_refuses_dotdot_even_without_the_lexical_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let ws = Workspace::open(&dir.path().join("ws"), PathPolicy::defaults()).unwrap();
        let err =
            sys::openat2(ws.root_fd.as_fd(), Path::new("../secret"), libc::O_RDONLY, RESOLVE_BENEATH).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV));
        assert!(matches!(ws.open_rel(Path::new("../secret")), Err(ToolError::OutsideWorkspace { .. })));
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
