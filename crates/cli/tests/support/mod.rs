//! The fixture every case uses: a fake home, a fake host folder and a
//! workspace in a fresh temp dir, and ways to run the probe bare and under
//! `airlock sandbox` with the same environment.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::probe;

/// Marker contents of the fake home's secrets.
pub const SSH_SECRET: &str = "AIRLOCK-TEST-SSH-KEY";
pub const AWS_SECRET: &str = "AIRLOCK-TEST-AWS-KEY";
pub const HOST_SECRET: &str = "AIRLOCK-TEST-HOST-SECRET";
pub const BASHRC: &str = "# AIRLOCK-TEST-BASHRC\n";

/// Longest any one run may take before the suite kills it and fails.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// How a case ended when it did not fail.
pub enum Verdict {
    /// The attack worked bare and was blocked in the sandbox.
    Passed,
    /// Only the sandboxed half could be checked; says why.
    SandboxOnly(String),
    /// Nothing could be checked on this machine; says why.
    Skipped(String),
}

/// One case's world:
///
/// ```text
/// root/home/    fake HOME (.ssh/id_rsa, .aws/credentials, .bashrc)
/// root/host/    a folder outside the workspace holding secret.txt
/// root/config/  XDG_CONFIG_HOME (user config in airlock/config.toml)
/// root/managed.toml  managed policy, absent unless written
/// root/ws/      the workspace and cwd, holding ./probe
/// ```
pub struct Case {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub host: PathBuf,
    pub ws: PathBuf,
    pub config: PathBuf,
    pub managed: PathBuf,
    runs: std::cell::Cell<u32>,
}

impl Case {
    pub fn new() -> Case {
        let dir = tempfile::Builder::new().prefix("airlock-escape-").tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let case = Case {
            home: root.join("home"),
            host: root.join("host"),
            ws: root.join("ws"),
            config: root.join("config"),
            managed: root.join("managed.toml"),
            root,
            _dir: dir,
            runs: std::cell::Cell::new(0),
        };
        write(&case.home.join(".ssh/id_rsa"), SSH_SECRET);
        write(&case.home.join(".aws/credentials"), AWS_SECRET);
        write(&case.home.join(".bashrc"), BASHRC);
        write(&case.host.join("secret.txt"), HOST_SECRET);
        std::fs::create_dir_all(&case.ws).unwrap();
        std::fs::create_dir_all(&case.config).unwrap();
        // The build folder is not visible inside the sandbox: the probe
        // travels in the workspace.
        std::fs::copy(std::env::current_exe().unwrap(), case.ws.join("probe")).unwrap();
        case
    }

    /// A case whose whole fake home is readable (so that masking, not mere
    /// absence, is what hides its secrets).
    pub fn with_home_readable() -> Case {
        let case = Case::new();
        case.write_user_config("[sandbox]\ntoolchain_roots = [\"~\"]\n");
        case
    }

    pub fn write_user_config(&self, toml: &str) {
        write(&self.config.join("airlock/config.toml"), toml);
    }

    pub fn write_project_config(&self, toml: &str) {
        write(&self.ws.join(".airlock/config.toml"), toml);
    }

    pub fn write_managed_policy(&self, toml: &str) {
        write(&self.managed, toml);
    }

    /// A command run in the workspace with this case's environment only.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.ws)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("AIRLOCK_MANAGED_POLICY", &self.managed)
            .stdin(Stdio::null());
        cmd
    }

    /// The probe run directly: the baseline.
    pub fn bare(&self, attack: &[&str]) -> Run {
        let mut cmd = self.command("./probe");
        cmd.arg("probe").args(attack);
        self.run(cmd, format!("bare: probe {}", attack.join(" ")))
    }

    /// The probe run under `airlock sandbox`.
    pub fn sandboxed(&self, attack: &[&str]) -> Run {
        let mut cmd = self.sandbox_command(&[]);
        cmd.args(["./probe", "probe"]).args(attack);
        self.run(cmd, format!("sandboxed: probe {}", attack.join(" ")))
    }

    /// `airlock sandbox FLAGS --`, ready for the command to be appended.
    pub fn sandbox_command(&self, flags: &[&str]) -> Command {
        let mut cmd = self.command(airlock_bin());
        cmd.arg("sandbox").args(flags).arg("--");
        cmd
    }

    /// `airlock ARGS...`.
    pub fn airlock(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(airlock_bin());
        cmd.args(args);
        self.run(cmd, format!("airlock {}", args.join(" ")))
    }

    /// Runs `cmd` to completion with output in files under the case root, so
    /// no reader thread is needed; kills it after [`RUN_DEADLINE`].
    pub fn run(&self, mut cmd: Command, what: String) -> Run {
        let n = self.runs.get();
        self.runs.set(n + 1);
        let out_path = self.root.join(format!("run{n}.stdout"));
        let err_path = self.root.join(format!("run{n}.stderr"));
        cmd.stdout(std::fs::File::create(&out_path).unwrap()).stderr(std::fs::File::create(&err_path).unwrap());
        let start = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > RUN_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: still running after {RUN_DEADLINE:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let run = Run {
            what,
            code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&std::fs::read(out_path).unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&std::fs::read(err_path).unwrap()).into_owned(),
            elapsed: start.elapsed(),
        };
        if std::env::var_os("AIRLOCK_ESCAPE_VERBOSE").is_some() {
            let last = run.verdict().to_owned();
            let last = if last.is_empty() { run.stderr.lines().next().unwrap_or("").to_owned() } else { last };
            println!("    {}: exit {:?}: {last}", run.what, run.code);
        }
        run
    }

    /// Names in the workspace, sorted.
    pub fn ws_listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.ws)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// The `airlock` binary: `AIRLOCK_BIN` when set (CI runs copies as an
/// unprivileged user), else the one cargo built.
pub fn airlock_bin() -> OsString {
    std::env::var_os("AIRLOCK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_airlock").into())
}

pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A unique name for things outside the case folder (host /tmp, abstract
/// sockets, network namespaces).
pub fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// How one run ended, with its output for failure messages.
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Asserts the attack worked.
    pub fn succeeded(&self) -> &Run {
        assert_eq!(self.code, Some(probe::SUCCEEDED), "the attack should work here:\n{self}");
        self
    }

    /// Asserts the attack was blocked.
    pub fn blocked(&self) -> &Run {
        assert_eq!(self.code, Some(probe::BLOCKED), "the attack was NOT blocked:\n{self}");
        self
    }

    /// Asserts the attack was blocked, or the probe killed by the seccomp
    /// filter (SIGSYS, reported as 128 + 31 by airlock).
    pub fn blocked_or_killed(&self) -> &Run {
        let killed = self.code == Some(128 + libc::SIGSYS) || self.signal == Some(libc::SIGSYS);
        assert!(self.is_blocked() || killed, "the attack was NOT blocked:\n{self}");
        self
    }

    pub fn exited(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "unexpected exit status:\n{self}");
        self
    }

    pub fn is_blocked(&self) -> bool {
        self.code == Some(probe::BLOCKED)
    }

    /// The probe's one-line verdict.
    pub fn verdict(&self) -> &str {
        self.stdout.lines().rfind(|l| l.starts_with("BLOCKED") || l.starts_with("SUCCEEDED")).unwrap_or("")
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clip = |s: &str| -> String {
            match s.char_indices().nth(2000) {
                Some((cut, _)) => format!("{}... [{} bytes]", &s[..cut], s.len()),
                None => s.into(),
            }
        };
        writeln!(f, "  {}: exit {:?} signal {:?} after {:?}", self.what, self.code, self.signal, self.elapsed)?;
        writeln!(f, "  stdout: {}", clip(self.stdout.trim_end()))?;
        write!(f, "  stderr: {}", clip(self.stderr.trim_end()))
    }
}

/// A host process started by the test, killed when dropped.
pub struct HostProcess {
    pub child: Child,
}

impl HostProcess {
    /// This binary sleeping (`probe hold`), with `marker` in its command
    /// line and `env` in its environment.
    pub fn hold(marker: &str, env: &[(&str, &str)]) -> HostProcess {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["probe", "hold", "60", marker]).envs(env.iter().copied()).stdout(Stdio::null());
        HostProcess { child: cmd.spawn().unwrap() }
    }

    pub fn spawn(mut cmd: Command) -> HostProcess {
        HostProcess { child: cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}")) }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder under the real /tmp, removed when dropped.
pub struct HostTmpDir {
    pub path: PathBuf,
}

impl HostTmpDir {
    pub fn new() -> HostTmpDir {
        let path = Path::new("/tmp").join(unique("airlock-escape-host"));
        std::fs::create_dir(&path).unwrap();
        HostTmpDir { path }
    }
}

impl Drop for HostTmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Passes `file` to the child as descriptor `fd`, not close-on-exec.
pub fn pass_fd(cmd: &mut Command, file: &std::fs::File, fd: i32) {
    use std::os::fd::AsRawFd;
    let raw = file.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; both descriptors are valid.
    unsafe {
        cmd.pre_exec(move || match libc::dup2(raw, fd) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
}

/// A path removed when dropped.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Opens a pseudo-terminal pair; returns the master and the slave's path.
pub fn open_pty() -> (std::fs::File, String) {
    use std::os::fd::FromRawFd;
    // SAFETY: standard pty allocation; the name is copied before the next call.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let slave = std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
        (std::fs::File::from_raw_fd(fd), slave)
    }
}

/// Whatever is waiting on a non-blocking descriptor.
pub fn drain(file: &std::fs::File) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut f = file;
    while let Ok(n @ 1..) = f.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
