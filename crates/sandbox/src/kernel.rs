//! What the running kernel offers, and the decision whether that is enough.

use std::fmt;

/// The oldest Landlock ABI the sandbox accepts: 6 adds the scoping of
/// abstract unix sockets and signals, which the sandbox relies on.
pub const MIN_LANDLOCK_ABI: i32 = 6;

/// Environment variable that makes airlock believe a layer is missing, to
/// test the refusal path. It can only make airlock refuse, never weaken it.
pub const SIMULATE_MISSING_ENV: &str = "AIRLOCK_SANDBOX_SIMULATE_MISSING";

/// The kernel features the sandbox needs, as probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSupport {
    /// Landlock ABI version, or `None` when Landlock is absent or disabled.
    pub landlock_abi: Option<i32>,
    /// Whether seccomp filters can be installed.
    pub seccomp: bool,
    /// Whether unprivileged user namespaces can be created, as far as a probe
    /// without creating one can tell (the real test is `unshare` itself).
    pub user_namespaces: bool,
}

/// A protection layer that cannot be applied, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The layer.
    pub layer: &'static str,
    /// What is wrong.
    pub reason: String,
    /// How to fix it.
    pub hint: &'static str,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} unavailable: {}\nhint: {}", self.layer, self.reason, self.hint)
    }
}

impl KernelSupport {
    /// Probes the running kernel, then applies [`SIMULATE_MISSING_ENV`].
    pub fn probe() -> KernelSupport {
        let mut support = KernelSupport {
            landlock_abi: landlock_abi(),
            seccomp: crate::seccomp::supported(),
            user_namespaces: user_namespaces_allowed(),
        };
        if let Ok(missing) = std::env::var(SIMULATE_MISSING_ENV) {
            for layer in missing.split(',').map(str::trim) {
                match layer {
                    "landlock" => support.landlock_abi = None,
                    "landlock-abi5" => support.landlock_abi = Some(5),
                    "seccomp" => support.seccomp = false,
                    "userns" => support.user_namespaces = false,
                    _ => {}
                }
            }
        }
        support
    }

    /// Decides whether every layer can be applied in full. Never downgrades:
    /// the first missing layer is an error.
    pub fn check(&self) -> Result<(), Missing> {
        if !self.user_namespaces {
            return Err(Missing {
                layer: "user namespaces",
                reason: "this kernel does not let an unprivileged process create a user namespace".into(),
                hint: "enable them: sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 \
                       on Debian kernels, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)",
            });
        }
        match self.landlock_abi {
            None => {
                return Err(Missing {
                    layer: "Landlock",
                    reason: "Landlock is not enabled in this kernel".into(),
                    hint: "use Linux 6.12 or newer with CONFIG_SECURITY_LANDLOCK=y and `landlock` in the lsm= boot list",
                });
            }
            Some(abi) if abi < MIN_LANDLOCK_ABI => {
                return Err(Missing {
                    layer: "Landlock",
                    reason: format!("the kernel has Landlock ABI {abi}; airlock needs ABI {MIN_LANDLOCK_ABI} or newer"),
                    hint: "use Linux 6.12 or newer",
                });
            }
            Some(_) => {}
        }
        if !self.seccomp {
            return Err(Missing {
                layer: "seccomp",
                reason: "this kernel does not support seccomp filters".into(),
                hint: "use a kernel built with CONFIG_SECCOMP_FILTER=y",
            });
        }
        Ok(())
    }
}

fn landlock_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag the kernel reads no attribute and returns the ABI.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (abi > 0).then_some(abi as i32)
}

fn user_namespaces_allowed() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let max_ok = read("/proc/sys/user/max_user_namespaces").is_none_or(|v| v != "0");
    let debian_ok = read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v != "0");
    let apparmor_ok = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_none_or(|v| v != "1");
    // The Debian and AppArmor switches do not bind root.
    max_ok && (real_root() || (debian_ok && apparmor_ok))
}

/// Whether this process is root of the whole machine: uid 0 in the initial
/// user namespace. A uid 0 inside another user namespace (`unshare -r`) has
/// no privilege outside it: the kernel still applies `RLIMIT_NPROC` and the
/// unprivileged user-namespace switches to it, and it cannot make cgroups.
pub fn real_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    is_initial_uid_map(&map)
}

/// The initial user namespace maps every uid to itself: `0 0 4294967295`.
fn is_initial_uid_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map.lines().map(|l| l.split_whitespace().collect()).collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_initial_user_namespace_is_real_root() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"), "unshare -r");
        assert!(!is_initial_uid_map("0 0 1\n"));
        assert!(!is_initial_uid_map(""));
    }

    fn full() -> KernelSupport {
        KernelSupport { landlock_abi: Some(7), seccomp: true, user_namespaces: true }
    }

    #[test]
    fn a_complete_kernel_passes() {
        assert_eq!(full().check(), Ok(()));
    }

    #[test]
    fn each_missing_layer_is_refused_by_name() {
        let cases = [
            (KernelSupport { user_namespaces: false, ..full() }, "user namespaces"),
            (KernelSupport { landlock_abi: None, ..full() }, "Landlock"),
            (KernelSupport { landlock_abi: Some(5), ..full() }, "Landlock"),
            (KernelSupport { seccomp: false, ..full() }, "seccomp"),
        ];
        for (support, layer) in cases {
            let missing = support.check().unwrap_err();
            assert_eq!(missing.layer, layer);
            assert!(missing.to_string().contains("hint:"));
        }
    }

    #[test]
    fn an_old_landlock_names_both_versions() {
        let err = KernelSupport { landlock_abi: Some(4), ..full() }.check().unwrap_err().to_string();
        assert!(err.contains("ABI 4") && err.contains("ABI 6"), "{err}");
    }
}
