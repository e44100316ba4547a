//! The escape suite. Every case first shows the attack working without the
//! sandbox, against targets this test creates (a fake home, a fake host
//! folder, listeners it starts), so that the case can fail; then shows it
//! blocked inside, and where it matters that the host target is unchanged.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use airlock_policy::{Context, Policy, Source, Sourced};
use airlock_sandbox::{SandboxSpec, Status, Stdio, run};

use crate::probe::{BLOCKED, SUCCEEDED};

/// A fake world for one attack: `home/` (a fake HOME with an SSH key and an
/// rc file), `host/` (a folder outside the workspace with a secret), `ws/`
/// (the workspace, holding a copy of the probe).
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub host: PathBuf,
    pub ws: PathBuf,
}

pub const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY----- fake";

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (home, host, ws) = (root.join("home"), root.join("host"), root.join("ws"));
        for d in [home.join(".ssh"), home.join(".aws"), host.clone(), ws.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join(".ssh/id_rsa"), KEY).unwrap();
        std::fs::write(home.join(".bashrc"), "export PATH\n").unwrap();
        std::fs::write(home.join(".aws/credentials"), "aws_secret_access_key = fake\n").unwrap();
        std::fs::write(host.join("secret.txt"), "HOST-SECRET\n").unwrap();
        let probe = ws.join("probe");
        std::fs::copy(std::env::current_exe().unwrap(), &probe).unwrap();
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Everything under the fixture must be reachable by an unprivileged
        // run too (tempdir makes it 0700 for the user running the test).
        Fixture { _dir: dir, root, home, host, ws }
    }

    /// The default policy, with the whole fake home made readable so that
    /// what hides `~/.ssh` is the deny list and not mere absence.
    pub fn spec(&self) -> SandboxSpec {
        let cx = Context { home: self.home.clone(), workspace: self.ws.clone() };
        let mut policy = Policy::defaults(&cx);
        policy.sandbox.toolchain_roots.push(Sourced::new(self.home.clone(), Source::CommandLine));
        let env = [("PATH".into(), "/usr/bin:/bin".into())];
        SandboxSpec::from_policy(&policy, &self.ws, &self.ws, env, &[]).unwrap()
    }

    /// Runs the probe without any sandbox; returns its exit status and output.
    pub fn bare(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(self.ws.join("probe")).arg("probe").args(args).current_dir(&self.ws).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs the probe in the sandbox.
    pub fn boxed(&self, args: &[&str]) -> (i32, String) {
        self.boxed_with(&self.spec(), args)
    }

    pub fn boxed_with(&self, spec: &SandboxSpec, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["./probe".into(), "probe".into()];
        argv.extend(args.iter().map(|a| a.into()));
        let out = run(spec, &argv, Stdio::Capture).unwrap();
        let text = String::from_utf8_lossy(&out.stdout.to_bytes_marked()).into_owned()
            + &String::from_utf8_lossy(&out.stderr.to_bytes_marked());
        match out.status {
            Status::Exited(code) => (code, text),
            Status::TimedOut => (-2, text),
        }
    }
}

/// The attack works bare, and is blocked in the sandbox. Each side gets its
/// own fixture (prepared by `setup`), since the bare run changes things.
fn blocked(setup: impl Fn(&Fixture), args: impl Fn(&Fixture) -> Vec<String>) -> (Fixture, String) {
    let bare = Fixture::new();
    setup(&bare);
    let bare_args = args(&bare);
    let (code, out) = bare.bare(&bare_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, SUCCEEDED, "the attack must work without the sandbox first: {bare_args:?}: {out}");
    let boxed = Fixture::new();
    setup(&boxed);
    let boxed_args = args(&boxed);
    let (code, out) = boxed.boxed(&boxed_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, BLOCKED, "the attack must be blocked in the sandbox: {boxed_args:?}: {out}");
    (boxed, out)
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

// --- files --------------------------------------------------------------------

pub fn write_to_an_rc_file_in_home() {
    let (fx, _) = blocked(|_| {}, |fx| args(&["write", &fx.home.join(".bashrc").to_string_lossy()]));
    assert_eq!(std::fs::read_to_string(fx.home.join(".bashrc")).unwrap(), "export PATH\n");
}

pub fn write_to_the_host_tmp_lands_in_the_private_tmp() {
    let target = std::env::temp_dir().join(format!("airlock-escape-{}", std::process::id()));
    std::fs::write(&target, "host\n").unwrap();
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["write", &target.to_string_lossy()]);
    assert_eq!(code, SUCCEEDED, "{out}");
    std::fs::write(&target, "host\n").unwrap();
    let (_, out) = fx.boxed(&["write", &target.to_string_lossy()]);
    let after = std::fs::read_to_string(&target).unwrap();
    std::fs::remove_file(&target).unwrap();
    assert_eq!(after, "host\n", "the host's /tmp was written from the sandbox: {out}");
}

pub fn write_to_a_host_folder() {
    let (fx, _) = blocked(|_| {}, |fx| args(&["write", &fx.host.join("secret.txt").to_string_lossy()]));
    assert_eq!(std::fs::read_to_string(fx.host.join("secret.txt")).unwrap(), "HOST-SECRET\n");
}

pub fn create_a_git_hook_when_hooks_is_missing() {
    let (fx, _) = blocked(
        |fx| std::fs::create_dir_all(fx.ws.join(".git")).unwrap(),
        |_| args(&["mkdir-write", ".git/hooks", "pre-commit"]),
    );
    assert!(!fx.ws.join(".git/hooks/pre-commit").exists());
    assert!(!fx.ws.join(".git/hooks").exists(), "the placeholder was left behind");
}

pub fn create_a_git_hook_when_hooks_exists() {
    let (fx, _) = blocked(
        |fx| std::fs::create_dir_all(fx.ws.join(".git/hooks")).unwrap(),
        |_| args(&["mkdir-write", ".git/hooks", "pre-commit"]),
    );
    assert!(!fx.ws.join(".git/hooks/pre-commit").exists());
}

pub fn create_a_git_hook_without_any_git_folder() {
    let (fx, _) = blocked(|_| {}, |_| args(&["mkdir-write", ".git/hooks", "pre-commit"]));
    assert!(!fx.ws.join(".git").exists(), "the placeholder was left behind");
}

pub fn create_claude_settings_when_missing() {
    let (fx, _) = blocked(|_| {}, |_| args(&["mkdir-write", ".claude", "settings.json"]));
    assert!(!fx.ws.join(".claude").exists(), "the placeholder was left behind");
}

pub fn create_claude_settings_when_present() {
    let (fx, _) = blocked(
        |fx| std::fs::create_dir_all(fx.ws.join(".claude")).unwrap(),
        |_| args(&["mkdir-write", ".claude", "settings.json"]),
    );
    assert!(!fx.ws.join(".claude/settings.json").exists());
}

pub fn write_an_envrc() {
    let (fx, _) = blocked(|_| {}, |_| args(&["write", ".envrc"]));
    assert!(!fx.ws.join(".envrc").exists());
}

pub fn symlink_to_a_denied_file() {
    blocked(|_| {}, |fx| args(&["symlink-read", "link", &fx.home.join(".ssh/id_rsa").to_string_lossy()]));
}

pub fn symlink_to_a_host_file() {
    blocked(|_| {}, |fx| args(&["symlink-read", "link", &fx.host.join("secret.txt").to_string_lossy()]));
}

pub fn hardlink_to_a_protected_file() {
    let setup = |fx: &Fixture| {
        std::fs::create_dir_all(fx.ws.join(".git")).unwrap();
        std::fs::write(fx.ws.join(".git/config"), "[core]\n").unwrap();
    };
    let (fx, _) = blocked(setup, |_| args(&["hardlink-write", ".git/config", "cfg"]));
    assert_eq!(std::fs::read_to_string(fx.ws.join(".git/config")).unwrap(), "[core]\n");
}

pub fn rename_a_protected_folder_away() {
    let (fx, _) = blocked(
        |fx| std::fs::create_dir_all(fx.ws.join(".claude")).unwrap(),
        |_| args(&["rename", ".claude", "elsewhere"]),
    );
    assert!(fx.ws.join(".claude").is_dir());
}

pub fn rename_the_folder_that_holds_a_protected_one() {
    blocked(|fx| std::fs::create_dir_all(fx.ws.join(".git/hooks")).unwrap(), |_| args(&["rename", ".git", "git2"]));
}

pub fn swap_a_protected_folder_for_a_symlink() {
    let setup = |fx: &Fixture| {
        std::fs::create_dir_all(fx.ws.join(".git/hooks")).unwrap();
        std::fs::create_dir_all(fx.ws.join("myhooks")).unwrap();
    };
    let (fx, _) = blocked(setup, |fx| {
        args(&[".git/hooks", &fx.ws.join("myhooks").to_string_lossy()]).into_iter().fold(
            vec!["swap-symlink".to_string()],
            |mut v, a| {
                v.push(a);
                v
            },
        )
    });
    assert!(fx.ws.join(".git/hooks").is_dir() && !fx.ws.join(".git/hooks").is_symlink());
}

pub fn read_a_denied_file_directly() {
    blocked(|_| {}, |fx| args(&["read", &fx.home.join(".ssh/id_rsa").to_string_lossy()]));
    blocked(|_| {}, |fx| args(&["read", &fx.home.join(".aws/credentials").to_string_lossy()]));
}

pub fn read_a_denied_file_through_proc_self_root() {
    blocked(|_| {}, |fx| args(&["read", &format!("/proc/self/root{}", fx.home.join(".ssh/id_rsa").display())]));
}

pub fn read_an_inherited_descriptor_through_dev_fd() {
    // The caller holds the secret open without close-on-exec.
    let secret = Fixture::new();
    let file = std::fs::File::open(secret.host.join("secret.txt")).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let (code, out) = secret.bare(&["fd-read", &fd.to_string()]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let (code, out) = secret.boxed(&["fd-read", &fd.to_string()]);
    assert_eq!(code, BLOCKED, "{out}");
    drop(file);
}

// --- processes ----------------------------------------------------------------

struct Victim(Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn victim(marker_arg: &str, env_marker: &str) -> Victim {
    let child = Command::new("sleep").arg(marker_arg).env("AIRLOCK_TEST_SECRET", env_marker).spawn().unwrap();
    Victim(child)
}

pub fn read_the_environment_of_init_and_of_a_host_process() {
    let v = victim("31.4159", "env-marker-27182");
    let pid = v.0.id().to_string();
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["environ", &pid, "env-marker-27182"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let (code, out) = fx.boxed(&["environ", &pid, "env-marker-27182"]);
    assert_eq!(code, BLOCKED, "{out}");
    // Inside, pid 1 is airlock's init, which carries the caller's environment.
    // SAFETY: single-threaded test binary.
    unsafe { std::env::set_var("AIRLOCK_TEST_CALLER_SECRET", "caller-marker-1618") };
    let (code, out) = fx.boxed(&["environ", "1", "caller-marker-1618"]);
    // SAFETY: as above.
    unsafe { std::env::remove_var("AIRLOCK_TEST_CALLER_SECRET") };
    assert_eq!(code, BLOCKED, "{out}");
}

pub fn see_the_command_line_of_a_host_process() {
    let _v = victim("31.4159", "");
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["cmdline-scan", "31.4159"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let (code, out) = fx.boxed(&["cmdline-scan", "31.4159"]);
    assert_eq!(code, BLOCKED, "{out}");
}

pub fn kill_a_host_process() {
    let mut v = victim("31.4159", "");
    let pid = v.0.id().to_string();
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["kill", &pid, "0"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let (code, out) = fx.boxed(&["kill", &pid, "9"]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(v.0.try_wait().unwrap().is_none(), "the host process was killed from the sandbox");
}

pub fn ptrace_a_sibling() {
    blocked(|_| {}, |_| args(&["ptrace-child"]));
}

pub fn inject_terminal_input_with_tiocsti() {
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").unwrap_or_default();
    if legacy.trim() == "0" && !is_root() {
        crate::skip("TIOCSTI is disabled by this kernel (dev.tty.legacy_tiocsti = 0) for non-root: no baseline");
    }
    blocked(|_| {}, |_| args(&["tiocsti"]));
}

pub fn gain_privileges_from_a_setuid_binary() {
    if !is_root() {
        // Without root the test cannot make a setuid binary of another user;
        // what blocks one is no_new_privs plus nosuid mounts: check both.
        let fx = Fixture::new();
        let (code, out) = fx.boxed(&["cat", "/proc/self/status"]);
        assert_eq!(code, SUCCEEDED, "{out}");
        assert!(out.contains("NoNewPrivs:\t1"), "{out}");
        let (_, out) = fx.boxed(&["cat", "/proc/self/mountinfo"]);
        // Every mount of the view is nosuid (field 6 of mountinfo holds the mount options).
        let mounts: Vec<&str> = out.lines().filter(|l| l.split(' ').count() > 6).collect();
        assert!(mounts.len() > 5, "{out}");
        assert!(
            mounts.iter().all(|l| l.split(' ').nth(5).is_some_and(|o| o.split(',').any(|o| o == "nosuid"))),
            "{out}"
        );
        crate::skip("needs root to create a setuid binary of another user; checked no_new_privs instead");
    }
    let setup = |fx: &Fixture| {
        let setuid = fx.ws.join("probe");
        let c = std::ffi::CString::new(setuid.to_string_lossy().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    };
    blocked(setup, |_| args(&["euid", "65534"]));
}

pub fn create_a_nested_user_namespace() {
    blocked(|_| {}, |_| args(&["userns"]));
}

pub fn a_daemon_outlives_the_command() {
    let grows = |fx: &Fixture| {
        let len = || std::fs::metadata(fx.ws.join("beat")).map(|m| m.len()).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(300));
        let before = len();
        std::thread::sleep(Duration::from_millis(400));
        len() > before
    };
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["daemon", "beat"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    assert!(grows(&fx), "the bare daemon should keep running");
    let fx = Fixture::new();
    let (code, out) = fx.boxed(&["daemon", "beat"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    assert!(!grows(&fx), "the daemon outlived the sandboxed command");
}

pub fn a_fork_bomb() {
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["fork", "200"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let mut spec = fx.spec();
    spec.limits.processes = 64;
    let (code, out) = fx.boxed_with(&spec, &["fork", "200"]);
    assert_eq!(code, BLOCKED, "{out}");
}

pub fn a_memory_bomb() {
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["alloc", "512"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let mut spec = fx.spec();
    spec.limits.memory_bytes = 256 << 20;
    let (code, out) = fx.boxed_with(&spec, &["alloc", "512"]);
    assert_eq!(code, BLOCKED, "{out}");
}

pub fn fill_the_disk_beyond_the_file_size_limit() {
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["fill", "big", "32"]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.limits.file_size_bytes = 8 << 20;
    let (code, out) = fx.boxed_with(&spec, &["fill", "big", "32"]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(std::fs::metadata(fx.ws.join("big")).unwrap().len() <= 8 << 20);
}

pub fn outlive_the_timeout() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.limits.timeout = Some(Duration::from_millis(500));
    let (code, out) = fx.boxed_with(&spec, &["sleep", "30"]);
    assert_eq!(code, -2, "not killed by the timeout: {out}");
}

// --- network ------------------------------------------------------------------

pub fn tcp_to_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    blocked(|_| {}, |_| args(&["tcp", &addr]));
}

pub fn tcp_to_ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        crate::skip("no IPv6 loopback on this machine: no baseline");
    };
    let addr = listener.local_addr().unwrap().to_string();
    blocked(|_| {}, |_| args(&["tcp", &addr]));
}

pub fn udp_to_loopback_and_a_local_resolver() {
    // A listener standing in for a DNS resolver on loopback.
    let resolver = UdpSocket::bind("127.0.0.1:0").unwrap();
    resolver.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let addr = resolver.local_addr().unwrap().to_string();
    let fx = Fixture::new();
    let (code, out) = fx.bare(&["udp", &addr]);
    assert_eq!(code, SUCCEEDED, "{out}");
    let mut buf = [0u8; 64];
    assert!(resolver.recv(&mut buf).is_ok(), "the bare datagram should arrive");
    let (code, out) = fx.boxed(&["udp", &addr]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(resolver.recv(&mut buf).is_err(), "a datagram left the sandbox");
}

/// Raw, packet, vsock and netlink sockets: without root the bare attempt
/// fails too for some of them; the sandboxed one must fail in every case.
pub fn raw_packet_vsock_and_netlink_sockets() {
    let fx = Fixture::new();
    for kind in ["raw", "packet", "vsock", "netlink"] {
        let (bare, out) = fx.bare(&[kind]);
        if bare != SUCCEEDED {
            println!("    note: {kind} is refused without the sandbox too here ({})", out.trim());
        }
        let (code, out) = fx.boxed(&[kind]);
        assert_eq!(code, BLOCKED, "{kind}: {out}");
    }
}

pub fn io_uring() {
    blocked(|_| {}, |_| args(&["io-uring"]));
}

pub fn connect_to_a_host_unix_socket() {
    let fx = Fixture::new();
    let in_host = std::os::unix::net::UnixListener::bind(fx.host.join("agent.sock")).unwrap();
    let tmp_path = std::env::temp_dir().join(format!("airlock-escape-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&tmp_path);
    let in_tmp = std::os::unix::net::UnixListener::bind(&tmp_path).unwrap();
    for path in [fx.host.join("agent.sock"), tmp_path.clone()] {
        let (code, out) = fx.bare(&["unix", &path.to_string_lossy()]);
        assert_eq!(code, SUCCEEDED, "{out}");
        let (code, out) = fx.boxed(&["unix", &path.to_string_lossy()]);
        assert_eq!(code, BLOCKED, "{}: {out}", path.display());
    }
    drop((in_host, in_tmp));
    let _ = std::fs::remove_file(tmp_path);
}

pub fn connect_to_a_host_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("airlock-escape-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    blocked(|_| {}, |_| args(&["abstract", &name]));
}

/// A host on a network namespace this test makes, reached over a veth pair.
pub fn tcp_to_a_test_host_in_another_network_namespace() {
    if !is_root() {
        crate::skip("needs root to create a network namespace with a veth pair (ip netns)");
    }
    let ns = format!("airlock-t{}", std::process::id() % 100_000);
    let ip = |args: &[&str]| Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
            let _ = Command::new("ip").args(["link", "del", &format!("{}a", self.0)]).status();
        }
    }
    if !ip(&["netns", "add", &ns]) {
        crate::skip("`ip netns add` failed (iproute2 missing?)");
    }
    let _cleanup = Cleanup(ns.clone());
    let (a, b) = (format!("{ns}a"), format!("{ns}b"));
    assert!(ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]));
    assert!(ip(&["link", "set", &b, "netns", &ns]));
    assert!(ip(&["addr", "add", "10.213.7.1/30", "dev", &a]));
    assert!(ip(&["link", "set", &a, "up"]));
    assert!(ip(&["-n", &ns, "addr", "add", "10.213.7.2/30", "dev", &b]));
    assert!(ip(&["-n", &ns, "link", "set", &b, "up"]));
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns, "python3", "-c"])
        .arg("import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('10.213.7.2', 8731)); s.listen(8); print('up', flush=True); time.sleep(20)")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = [0u8; 3];
    server.stdout.take().unwrap().read_exact(&mut up).unwrap();
    let result = std::panic::catch_unwind(|| blocked(|_| {}, |_| args(&["tcp", "10.213.7.2:8731"])));
    let _ = server.kill();
    let _ = server.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Makes the fixtures reachable when the suite runs as an unprivileged
/// user from a folder it owns: nothing to do but keep paths absolute.
#[allow(dead_code)]
pub fn fixture_root(fx: &Fixture) -> &Path {
    &fx.root
}
