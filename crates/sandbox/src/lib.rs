//! Kernel confinement for the commands airlock runs.
//!
//! A command runs in new user, mount, pid, net, ipc and uts namespaces, in a
//! root assembled from read-only system folders, the writable workspace, a
//! private `/tmp`, its own `/proc` and a minimal `/dev`; under Landlock
//! (filesystem, TCP, abstract unix sockets, signals), without capabilities,
//! under a seccomp filter, with resource limits and a timeout that kills the
//! whole process tree. If any layer cannot be applied in full, nothing runs.
//!
//! ```no_run
//! use airlock_sandbox::{SandboxSpec, Stdio, run};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cx = airlock_policy::Context { home: "/home/u".into(), workspace: "/home/u/proj".into() };
//! let policy = airlock_policy::Policy::defaults(&cx);
//! let spec = SandboxSpec::from_policy(&policy, &cx.workspace, &cx.workspace, std::env::vars_os(), &[])?;
//! let outcome = run(&spec, &["cargo".into(), "test".into()], Stdio::Capture)?;
//! println!("{:?}", outcome.status);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bridge;
mod capture;
mod cgroup;
mod explain;
pub mod host;
pub mod kernel;
mod launch;
mod placeholder;
pub mod plan;
mod root;
pub mod seccomp;
mod spec;

use std::io;
use std::path::PathBuf;

pub use capture::{CappedBuffer, Captured};
pub use explain::explain;
pub use kernel::{KernelSupport, Missing};
pub use launch::{Outcome, Status, Stdio, run};
pub use spec::{Bridge, DEFAULT_ENV_ALLOWLIST, Limits, Protected, SandboxSpec, clean_env, is_loader_variable};

/// Exit status of `airlock sandbox` when the command ran past its timeout.
pub const EXIT_TIMEOUT: i32 = airlock_policy::exit::TIMEOUT;
/// Exit status when the sandbox refused to run (a layer is unavailable or
/// failed to apply).
pub const EXIT_REFUSED: i32 = airlock_policy::exit::REFUSED;
/// Exit status when the command was found but could not be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = airlock_policy::exit::NOT_EXECUTABLE;
/// Exit status when the command was not found.
pub const EXIT_NOT_FOUND: i32 = airlock_policy::exit::NOT_FOUND;

/// Why a command could not be run in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A protection layer is not available on this system.
    #[error("sandbox refused: {0}")]
    Unavailable(Missing),
    /// Setting up the sandbox failed; nothing ran.
    #[error("sandbox refused: {step} failed")]
    Setup {
        /// The step that failed.
        step: String,
        /// The error.
        source: io::Error,
    },
    /// The command could not be executed inside the sandbox.
    #[error("cannot run `{program}` in the sandbox")]
    Exec {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The workspace is not usable.
    #[error("workspace {path}: {reason}")]
    Workspace {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A protected path's placeholder could not be created.
    #[error("cannot create the placeholder for protected path {path}")]
    Placeholder {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The policy cannot be enforced as written.
    #[error("sandbox refused: {0}")]
    Policy(String),
    /// The call was wrong.
    #[error("{0}")]
    Usage(String),
}

impl SandboxError {
    /// The exit status `airlock sandbox` reports for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            SandboxError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => EXIT_NOT_FOUND,
            SandboxError::Exec { .. } => EXIT_NOT_EXECUTABLE,
            _ => EXIT_REFUSED,
        }
    }
}

/// Hardens the calling process: not dumpable (no ptrace attach by the same
/// user, no `/proc/PID/mem`), no core files, and no loader variables left in
/// its environment. Call first thing in `main`, while single-threaded.
pub fn harden_current_process() -> io::Result<()> {
    // SAFETY: prctl and setrlimit with valid arguments on this process.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let loader: Vec<_> = std::env::vars_os().map(|(k, _)| k).filter(|k| is_loader_variable(k)).collect();
    for name in loader {
        // SAFETY: the caller promises the process is still single-threaded.
        unsafe { std::env::remove_var(name) };
    }
    Ok(())
}
