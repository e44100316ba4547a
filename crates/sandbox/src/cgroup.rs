//! Cgroups for one sandbox: the process limit of a root caller, and the
//! memory limit of the whole tree wherever a memory cgroup can be made.
//!
//! The kernel exempts the global root user from `RLIMIT_NPROC`, and a
//! sandbox started by root runs as root (uid 0 mapped to itself, with no
//! capabilities). So when the caller is root the process limit is enforced
//! with the pids controller instead, which counts the whole tree. If no pids
//! controller can be used, the sandbox refuses rather than run unlimited.
//!
//! Memory: resource limits are per process, and `RLIMIT_DATA` does not count
//! shared memory (`MAP_SHARED|MAP_ANONYMOUS`, a memfd, tmpfs files). A memory
//! cgroup counts every page the tree touches, tmpfs pages included, so one is
//! made whenever the caller may: root, or a user with a delegated cgroup (the
//! memory controller enabled for a folder the user owns, as systemd's
//! `Delegate=` gives). Otherwise the launcher falls back to per-process
//! `RLIMIT_AS` (see `spec::Limits::address_space_bytes`).

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::kernel::Missing;

/// A cgroup that holds one sandbox and caps its number of tasks. Removed
/// when dropped (it is empty by then: init's exit kills the whole tree).
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Creates `airlock-<pid>` in the pids hierarchy with `pids.max = max`.
    pub(crate) fn create(max: u64) -> Result<PidsCgroup, Missing> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some(root) = pids_hierarchy(&mountinfo, &|p: &Path| std::fs::read_to_string(p).ok()) else {
            return Err(Missing {
                layer: "process limit",
                reason: "airlock runs as root, which RLIMIT_NPROC does not bind, and no cgroup pids controller \
                         is mounted"
                    .into(),
                hint: "mount the pids controller (cgroup v2 with `pids` in /sys/fs/cgroup/cgroup.subtree_control, \
                       or cgroup v1 at /sys/fs/cgroup/pids), or run airlock as an ordinary user",
            });
        };
        let dir = root.join(format!("airlock-{}", std::process::id()));
        let made = std::fs::create_dir(&dir)
            .or_else(|e| if e.kind() == io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) })
            .and_then(|()| std::fs::write(dir.join("pids.max"), max.to_string()));
        match made {
            Ok(()) => Ok(PidsCgroup { dir }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(Missing {
                    layer: "process limit",
                    reason: format!("cannot set up the pids cgroup {}: {e}", dir.display()),
                    hint: "run airlock as an ordinary user, or give root write access to the pids hierarchy",
                })
            }
        }
    }

    /// Moves a process (and so everything it will start) into the cgroup.
    pub(crate) fn add(&self, pid: libc::pid_t) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// The cgroup's v1 `tasks` file, opened for a process to join by itself
    /// ([`join_self`]); `None` on v2.
    pub(crate) fn tasks(&self) -> Option<OwnedFd> {
        open_tasks(&self.dir)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        remove_when_empty(&self.dir);
    }
}

/// The cgroup version of a hierarchy, which decides the file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// A cgroup that holds one sandbox and caps the memory of its whole tree.
/// Removed when dropped.
#[derive(Debug)]
pub(crate) struct MemoryCgroup {
    dir: PathBuf,
    version: Version,
}

impl MemoryCgroup {
    /// Creates `airlock-<pid>` next to (v2) or under (v1) the caller's own
    /// memory cgroup, so that every limit above the caller still applies,
    /// and caps it at `bytes`. `None` when no memory cgroup can be made
    /// here (no controller, or not the caller's to make): the caller then
    /// limits each process's address space instead.
    pub(crate) fn create(bytes: u64) -> Option<MemoryCgroup> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let (parent, version) = memory_parent(&mountinfo, &own, &|p: &Path| std::fs::read_to_string(p).ok())?;
        let dir = parent.join(format!("airlock-{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
        let cgroup = MemoryCgroup { dir, version };
        for (file, value) in memory_settings(version, bytes) {
            let path = cgroup.dir.join(file);
            // Swap accounting may be off: then there is no swap file to set.
            if file.contains("sw") && !path.exists() {
                continue;
            }
            if std::fs::write(&path, value).is_err() {
                // Dropping removes the folder; the fallback applies.
                return None;
            }
        }
        Some(cgroup)
    }

    /// Moves a process (and so everything it will start) into the cgroup.
    pub(crate) fn add(&self, pid: libc::pid_t) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// The cgroup's v1 `tasks` file, opened for a process to join by itself
    /// ([`join_self`]); `None` on v2.
    pub(crate) fn tasks(&self) -> Option<OwnedFd> {
        open_tasks(&self.dir)
    }
}

/// On cgroup v2 a process is in one cgroup only, so a run's pids and memory
/// cgroups must be one: where they would be two folders (the pids cgroup at
/// the hierarchy's root, the memory cgroup beside the caller's own), init,
/// moved into both, would end in the memory cgroup without its process
/// limit. The memory cgroup then carries `pids.max` too when the pids
/// controller is enabled there; if it is not, the memory cgroup is given up
/// (each process's address space is capped instead, as without one) and
/// the process limit holds. v1 hierarchies are separate: nothing changes.
pub(crate) fn one_cgroup_on_v2(
    pids: Option<PidsCgroup>,
    memory: Option<MemoryCgroup>,
    max_processes: u64,
) -> (Option<PidsCgroup>, Option<MemoryCgroup>) {
    match (pids, memory) {
        (Some(p), Some(m)) if m.version == Version::V2 && p.dir != m.dir => {
            // Without `create`: pids.max exists only where the controller is enabled.
            let limited = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(m.dir.join("pids.max"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, max_processes.to_string().as_bytes()));
            match limited {
                Ok(()) => {
                    drop(p);
                    (Some(PidsCgroup { dir: m.dir.clone() }), Some(m))
                }
                Err(_) => (Some(p), None),
            }
        }
        other => other,
    }
}

/// Opens a v1 cgroup's `tasks` file for writing (close-on-exec), or `None`
/// where there is none (v2).
///
/// Why: writing a pid to `cgroup.procs` moves a whole thread group, which
/// takes the kernel's global threadgroup lock for writing and so waits for
/// an RCU grace period (about 12 ms on an idle cgroup v1 host). A
/// single-threaded process writing `0` (itself) to `tasks` moves its only
/// thread without that lock: tens of microseconds. The kernel checks the
/// credentials of whoever opened the file, so the caller opens it and the
/// sandbox's init, single-threaded and not yet running anything, joins.
fn open_tasks(dir: &Path) -> Option<OwnedFd> {
    std::fs::OpenOptions::new().write(true).open(dir.join("tasks")).ok().map(OwnedFd::from)
}

/// Moves the calling thread into the cgroup whose `tasks` file `fd` is
/// (see [`open_tasks`]): in a single-threaded process, the process and
/// everything it starts from then on. Allocates nothing (it runs between
/// fork and exec).
pub(crate) fn join_self(fd: RawFd) -> io::Result<()> {
    // SAFETY: writing one byte from a static buffer to an fd the caller owns.
    match unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } {
        1 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        remove_when_empty(&self.dir);
    }
}

/// Removes a cgroup folder. Init has exited, but the processes the kernel
/// killed with it may still be leaving: retry for up to a second.
fn remove_when_empty(dir: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(20)),
            _ => return,
        }
    }
}

/// The files that cap a memory cgroup at `bytes`, in the order they must be
/// written (v1 refuses a memory+swap limit below the memory limit). Swap is
/// capped too, so that pushing pages out to swap does not add to the budget.
pub(crate) fn memory_settings(version: Version, bytes: u64) -> Vec<(&'static str, String)> {
    match version {
        Version::V1 => {
            vec![("memory.limit_in_bytes", bytes.to_string()), ("memory.memsw.limit_in_bytes", bytes.to_string())]
        }
        Version::V2 => vec![("memory.max", bytes.to_string()), ("memory.swap.max", "0".to_string())],
    }
}

/// Where a sandbox's memory cgroup goes, from `/proc/self/mountinfo` and
/// `/proc/self/cgroup`: under the caller's own cgroup in a v1 memory
/// hierarchy; in v2, beside it (a cgroup with processes cannot hand the
/// memory controller to children), that is in its parent, when the parent
/// enables `memory` for its children. In both the caller's own limits still
/// bind the sandbox. v1 is preferred: a v2 mount next to a v1 memory
/// hierarchy cannot have the controller.
fn memory_parent(mountinfo: &str, own: &str, read: &dyn Fn(&Path) -> Option<String>) -> Option<(PathBuf, Version)> {
    // `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`, v2 as `0::PATH`.
    let own_path = |v1: bool| {
        own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            let matches = match v1 {
                true => controllers.split(',').any(|c| c == "memory"),
                false => controllers.is_empty(),
            };
            matches.then(|| PathBuf::from(path.trim_start_matches('/')))
        })
    };
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let Some(mount_point) = left.split(' ').nth(4) else { continue };
        let mut fields = right.split(' ');
        let (Some(fstype), Some(_source)) = (fields.next(), fields.next()) else { continue };
        let options = fields.next().unwrap_or("");
        match fstype {
            "cgroup" if options.split(',').any(|o| o == "memory") => {
                return Some((Path::new(mount_point).join(own_path(true)?), Version::V1));
            }
            "cgroup2" if v2.is_none() => {
                let Some(path) = own_path(false) else { continue };
                let mine = Path::new(mount_point).join(&path);
                // The root cgroup may hold processes and delegate; any other
                // cgroup's children are made in its parent.
                let parent = match path.as_os_str().is_empty() {
                    true => mine,
                    false => mine.parent().map(Path::to_path_buf).unwrap_or(mine),
                };
                let delegated = read(&parent.join("cgroup.subtree_control"))
                    .is_some_and(|c| c.split_whitespace().any(|c| c == "memory"));
                if delegated {
                    v2 = Some((parent, Version::V2));
                }
            }
            _ => {}
        }
    }
    v2
}

/// Finds a pids hierarchy root a root process may create a child in: a
/// cgroup v1 mount with the `pids` option, or the cgroup v2 root when it
/// delegates `pids` to its children.
fn pids_hierarchy(mountinfo: &str, read: &dyn Fn(&Path) -> Option<String>) -> Option<PathBuf> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split(' ').nth(4)?;
        let mut fields = right.split(' ');
        let (fstype, _source, options) = (fields.next()?, fields.next()?, fields.next().unwrap_or(""));
        match fstype {
            "cgroup" if options.split(',').any(|o| o == "pids") => return Some(PathBuf::from(mount_point)),
            "cgroup2" if v2.is_none() => {
                let root = PathBuf::from(mount_point);
                let delegated = read(&root.join("cgroup.subtree_control"))
                    .is_some_and(|c| c.split_whitespace().any(|c| c == "pids"));
                if delegated {
                    v2 = Some(root);
                }
            }
            _ => {}
        }
    }
    v2
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                      39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n";
    const V2: &str = "25 23 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn finds_the_v1_pids_controller() {
        assert_eq!(pids_hierarchy(V1, &|_| None), Some(PathBuf::from("/sys/fs/cgroup/pids")));
    }

    #[test]
    fn uses_v2_only_when_pids_is_delegated() {
        let with = |c: &'static str| move |_: &Path| Some(c.to_string());
        assert_eq!(pids_hierarchy(V2, &with("cpu memory pids\n")), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(pids_hierarchy(V2, &with("cpu memory\n")), None);
    }

    const V1_MEMORY: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                             35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn v1_memory_goes_under_the_callers_own_cgroup() {
        let own = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n";
        assert_eq!(
            memory_parent(V1_MEMORY, own, &|_| None),
            Some((PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"), Version::V1))
        );
        let combined = "4:cpu,memory:/\n";
        assert_eq!(
            memory_parent(V1_MEMORY, combined, &|_| None),
            Some((PathBuf::from("/sys/fs/cgroup/memory"), Version::V1))
        );
    }

    #[test]
    fn v2_memory_goes_beside_the_callers_cgroup_when_delegated() {
        let own = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope\n";
        let parent = PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice");
        let delegates = |p: &Path| (p == parent.join("cgroup.subtree_control")).then(|| "cpu memory pids\n".into());
        assert_eq!(memory_parent(V2, own, &delegates), Some((parent.clone(), Version::V2)));
        assert_eq!(memory_parent(V2, own, &|_| Some("cpu pids\n".into())), None, "memory not delegated");
        // A caller in the root cgroup (a container) makes it there.
        let root = |p: &Path| (p == Path::new("/sys/fs/cgroup/cgroup.subtree_control")).then(|| "memory\n".into());
        assert_eq!(memory_parent(V2, "0::/\n", &root), Some((PathBuf::from("/sys/fs/cgroup"), Version::V2)));
    }

    #[test]
    fn no_memory_controller_is_none() {
        let only_cpu = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(memory_parent(only_cpu, "3:cpu:/\n", &|_| None), None);
        // Unified mounted beside v1 (no controllers on it): nothing to use.
        assert_eq!(memory_parent(V1_MEMORY.lines().nth(2).unwrap(), "0::/\n", &|_| Some(String::new())), None);
    }

    #[test]
    fn memory_settings_cap_swap_too_in_the_order_v1_needs() {
        let v1 = memory_settings(Version::V1, 64 << 20);
        assert_eq!(v1[0], ("memory.limit_in_bytes", "67108864".to_string()));
        assert_eq!(v1[1], ("memory.memsw.limit_in_bytes", "67108864".to_string()));
        let v2 = memory_settings(Version::V2, 64 << 20);
        assert_eq!(v2, [("memory.max", "67108864".to_string()), ("memory.swap.max", "0".to_string())]);
    }

    #[test]
    fn on_v2_the_memory_cgroup_carries_the_process_limit_or_is_given_up() {
        let root = tempfile::tempdir().unwrap();
        let pids_dir = root.path().join("airlock-1");
        let with_pids = root.path().join("slice/airlock-1");
        let without_pids = root.path().join("other/airlock-1");
        for d in [&pids_dir, &with_pids, &without_pids] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(with_pids.join("pids.max"), "max").unwrap();
        let pids = || Some(PidsCgroup { dir: pids_dir.clone() });
        let memory = |dir: &Path, version| Some(MemoryCgroup { dir: dir.to_path_buf(), version });

        let (p, m) = one_cgroup_on_v2(pids(), memory(&with_pids, Version::V2), 64);
        assert_eq!(p.as_ref().map(|p| p.dir.clone()), Some(with_pids.clone()), "one cgroup for both");
        assert!(m.is_some());
        assert_eq!(std::fs::read_to_string(with_pids.join("pids.max")).unwrap(), "64");
        drop((p, m));

        let (p, m) = one_cgroup_on_v2(pids(), memory(&without_pids, Version::V2), 64);
        assert_eq!(p.as_ref().map(|p| p.dir.clone()), Some(pids_dir.clone()), "the process limit holds");
        assert!(m.is_none(), "a memory cgroup without pids would take init out of its process limit");
        assert!(!without_pids.join("pids.max").exists());
        drop((p, m));

        // v1: separate hierarchies, both kept as they are.
        std::fs::create_dir_all(&pids_dir).unwrap();
        std::fs::create_dir_all(&without_pids).unwrap();
        let (p, m) = one_cgroup_on_v2(pids(), memory(&without_pids, Version::V1), 64);
        assert_eq!(p.map(|p| p.dir.clone()), Some(pids_dir.clone()));
        assert!(m.is_some());
    }

    #[test]
    fn no_pids_controller_is_none() {
        let only_cpu = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(pids_hierarchy(only_cpu, &|_| None), None);
    }
}
