//! The host's files as the plan sees them: what a path is, small text files,
//! and two walks (`.git` entries in writable places; sockets, pipes and, for
//! a root caller, private entries in readable roots). The decisions are the
//! plan's (`plan::exposure`, `plan::git_surface`); this only reads.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::plan::{Exposed, Host, Node, exposure, host_node};

/// Largest text file the plan reads (git pointers and configuration, cargo's
/// configuration).
const MAX_TEXT_BYTES: u64 = 1024 * 1024;

/// What a walk calls for each entry: (folder fd, folder, name, type); it
/// returns whether to descend.
type Visit<'a> = dyn FnMut(RawFd, &Path, &[u8], u32) -> bool + 'a;

/// The real host, read once per run.
pub struct HostFs {
    root_caller: bool,
    /// Mount points, which the walks do not cross.
    mounts: HashSet<PathBuf>,
}

impl HostFs {
    /// `root_caller`: whether private entries are hidden too (see `plan::exposure`).
    pub fn new(root_caller: bool) -> HostFs {
        HostFs { root_caller, mounts: mount_points() }
    }

    /// Walks `dir` depth first without following links or crossing mounts,
    /// calling `visit(folder fd, folder, name, type)` for each entry (type as
    /// in `st_mode & S_IFMT`); `visit` returns whether to descend into a folder.
    /// Raw `getdents64` on one reused buffer and no stat unless the listing
    /// lacks the type: a tree of thousands of folders is read in milliseconds.
    /// Returns the folders beneath `dir` that could not be listed.
    fn walk(&self, dir: &Path, visit: &mut Visit) -> Vec<PathBuf> {
        let mut unlistable = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let start = dir.to_path_buf();
        let mut stack = vec![start.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else { continue };
            // SAFETY: a valid C string; the fd is ours and closed below.
            let fd = unsafe {
                libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            };
            if fd < 0 {
                if dir != start {
                    unlistable.push(dir);
                }
                continue;
            }
            // SAFETY: a new fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            loop {
                // SAFETY: reading entries into our own buffer from our own fd.
                let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
                if n <= 0 {
                    break;
                }
                let mut off = 0;
                while off + 19 < n as usize {
                    // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
                    let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                    let d_type = buf[off + 18];
                    let Some(record) = buf.get(off + 19..off + reclen) else { break };
                    off += reclen.max(1);
                    let name = match record.iter().position(|b| *b == 0) {
                        Some(end) => &record[..end],
                        None => record,
                    };
                    if name == b"." || name == b".." {
                        continue;
                    }
                    let kind = match d_type {
                        libc::DT_DIR => libc::S_IFDIR,
                        libc::DT_REG => libc::S_IFREG,
                        libc::DT_LNK => libc::S_IFLNK,
                        libc::DT_SOCK => libc::S_IFSOCK,
                        libc::DT_FIFO => libc::S_IFIFO,
                        libc::DT_CHR => libc::S_IFCHR,
                        libc::DT_BLK => libc::S_IFBLK,
                        _ => match stat_at(fd.as_raw_fd(), name) {
                            Some(st) => st.st_mode & libc::S_IFMT,
                            None => continue,
                        },
                    };
                    if visit(fd.as_raw_fd(), &dir, name, kind) && kind == libc::S_IFDIR {
                        let path = dir.join(OsStr::from_bytes(name));
                        if !self.mounts.contains(&path) {
                            stack.push(path);
                        }
                    }
                }
            }
        }
        unlistable
    }
}

/// `fstatat` of `name` in the folder `dirfd`, not following a link.
fn stat_at(dirfd: RawFd, name: &[u8]) -> Option<libc::stat> {
    let c = CString::new(name).ok()?;
    // SAFETY: stat is plain data, filled by the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd, C string and stat buffer.
    let rc = unsafe { libc::fstatat(dirfd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    (rc == 0).then_some(st)
}

impl Host for HostFs {
    fn node(&self, path: &Path) -> Node {
        host_node(path)
    }

    fn read(&self, path: &Path) -> Option<String> {
        // Not through a link: a protected file that is a link is refused by the plan.
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || meta.len() > MAX_TEXT_BYTES {
            return None;
        }
        let mut text = String::new();
        fs::File::open(path).ok()?.take(MAX_TEXT_BYTES).read_to_string(&mut text).ok()?;
        Some(text)
    }

    fn list(&self, dir: &Path) -> Vec<(PathBuf, Node)> {
        let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| {
                let kind = e.file_type().ok()?;
                let node = match () {
                    _ if kind.is_symlink() => Node::Symlink(fs::canonicalize(e.path()).ok()),
                    _ if kind.is_dir() => Node::Dir,
                    _ => Node::File,
                };
                Some((e.path(), node))
            })
            .collect()
    }

    fn git_entries(&self, dir: &Path) -> Vec<(PathBuf, Node)> {
        let mut found = Vec::new();
        // A folder this user cannot list holds no repository this user works in.
        let _unlistable = self.walk(dir, &mut |_, dir, name, kind| {
            if name != b".git" {
                return true;
            }
            let path = dir.join(".git");
            let node = match kind {
                libc::S_IFLNK => Node::Symlink(fs::canonicalize(&path).ok()),
                libc::S_IFDIR => Node::Dir,
                _ => Node::File,
            };
            found.push((path, node));
            // Inside a git folder the plan looks by name (modules/, worktrees/).
            false
        });
        found
    }

    fn exposed(&self, root: &Path, skip: &[PathBuf]) -> Vec<(PathBuf, Exposed)> {
        let mut found = Vec::new();
        let root_caller = self.root_caller;
        let unlistable = self.walk(root, &mut |dirfd, dir, name, kind| {
            if kind == libc::S_IFLNK {
                return false;
            }
            // The type from the listing is enough unless the caller is root
            // (then the mode decides): one stat per entry only then.
            let mode = match root_caller {
                true => match stat_at(dirfd, name) {
                    Some(st) => st.st_mode,
                    None => return false,
                },
                false => kind,
            };
            let path = || dir.join(OsStr::from_bytes(name));
            if kind == libc::S_IFDIR && !skip.is_empty() && skip.contains(&path()) {
                return false;
            }
            match exposure(mode, root_caller) {
                Some(what) => {
                    found.push((path(), what));
                    false
                }
                None => true,
            }
        });
        // What cannot be listed may still be entered: a socket in it is
        // reachable by name, and the walk cannot see it, so it is hidden whole.
        found.extend(unlistable.into_iter().map(|dir| (dir, Exposed::PrivateDir)));
        found
    }
}

/// Every mount point of this mount namespace (`/proc/self/mountinfo`, with
/// its octal escapes undone).
fn mount_points() -> HashSet<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return HashSet::new() };
    info.lines().filter_map(|line| line.split(' ').nth(4)).map(|p| PathBuf::from(unescape(p))).collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(code) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `AIRLOCK_WALK_DIR=/some/tree cargo test --release -p airlock-sandbox --lib walk_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn walk_cost() {
        let dir = PathBuf::from(std::env::var_os("AIRLOCK_WALK_DIR").unwrap_or_else(|| ".".into()));
        for root_caller in [false, true] {
            let host = HostFs::new(root_caller);
            let start = std::time::Instant::now();
            let git = host.git_entries(&dir).len();
            let mid = start.elapsed();
            let exposed = host.exposed(&dir, &[]).len();
            println!(
                "{}: {git} .git in {mid:?}; {exposed} exposed (root {root_caller}) in {:?}",
                dir.display(),
                start.elapsed() - mid
            );
        }
    }

    /// A folder that can be entered but not listed may hide a socket: the
    /// walk hides the folder whole where it cannot look inside.
    #[test]
    fn a_socket_in_a_folder_that_cannot_be_listed_is_hidden() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let hidden = dir.path().join("x");
        fs::create_dir(&hidden).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(hidden.join("s.sock")).unwrap();
        fs::set_permissions(&hidden, fs::Permissions::from_mode(0o311)).unwrap();
        let found = HostFs::new(false).exposed(dir.path(), &[]);
        fs::set_permissions(&hidden, fs::Permissions::from_mode(0o755)).unwrap();
        // Root lists it anyway and finds the socket; anyone else hides the folder.
        assert!(
            found == [(hidden.clone(), Exposed::PrivateDir)] || found == [(hidden.join("s.sock"), Exposed::Endpoint)],
            "{found:?}"
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn the_walks_find_git_entries_and_sockets_but_not_beyond_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b/.git/objects")).unwrap();
        fs::write(root.join("a/b/.git/objects/.git"), "").unwrap();
        fs::write(root.join("wt.git"), "").unwrap();
        fs::create_dir_all(root.join("c")).unwrap();
        fs::write(root.join("c/.git"), "gitdir: ../a/b/.git\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(outside.path().join("repo/.git")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("repo"), root.join("link")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(root.join("c/s.sock")).unwrap();
        let host = HostFs::new(false);
        let mut git = host.git_entries(root);
        git.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(git, [(root.join("a/b/.git"), Node::Dir), (root.join("c/.git"), Node::File)]);
        assert_eq!(host.exposed(root, &[]), [(root.join("c/s.sock"), Exposed::Endpoint)]);
        assert!(host.exposed(root, &[root.join("c")]).is_empty());
        assert_eq!(host.read(&root.join("c/.git")).as_deref(), Some("gitdir: ../a/b/.git\n"));
    }
}
