//! A pids cgroup for callers that `RLIMIT_NPROC` does not bind.
//!
//! The kernel exempts the global root user from `RLIMIT_NPROC`, and a
//! sandbox started by root runs as root (uid 0 mapped to itself, with no
//! capabilities). So when the caller is root the process limit is enforced
//! with the pids controller instead, which counts the whole tree. If no pids
//! controller can be used, the sandbox refuses rather than run unlimited.

use std::io;
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
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
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

    #[test]
    fn no_pids_controller_is_none() {
        let only_cpu = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(pids_hierarchy(only_cpu, &|_| None), None);
    }
}
