//! Starting one stdio server inside `airlock sandbox`: the command line is
//! built by a pure function, and one small function makes the folders and
//! spawns it.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Launcher, McpError, ServerSpec};

/// Folders every sandbox already shows (the system's own).
const SYSTEM: [&str; 6] = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];

/// A server's own places under the run folder.
pub(crate) struct Places {
    /// `RUN_DIR/mcp/NAME/work`: its current folder, its only writable one.
    pub(crate) work: PathBuf,
    /// `RUN_DIR/mcp/NAME/dns.sock`: where the names it looks up are sent.
    pub(crate) dns: PathBuf,
    /// `RUN_DIR/mcp/NAME/egress.sock`: its egress proxy (a server with `hosts`).
    pub(crate) egress: PathBuf,
}

impl Places {
    pub(crate) fn of(launcher: &Launcher, server: &str) -> Places {
        let base = launcher.run_dir.join("mcp").join(server);
        Places { work: base.join("work"), dns: base.join("dns.sock"), egress: base.join("egress.sock") }
    }
}

/// The executable `command` names: a path (relative to `workspace`) or a name looked up in `PATH`.
pub(crate) fn resolve_command(server: &str, command: &str, workspace: &Path) -> Result<PathBuf, McpError> {
    let not_found = |hint: String| McpError::CommandNotFound { server: server.into(), command: command.into(), hint };
    let is_program = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if command.is_empty() {
        return Err(not_found("the command is empty".into()));
    }
    if command.contains('/') {
        let path = if Path::new(command).is_absolute() { PathBuf::from(command) } else { workspace.join(command) };
        return if is_program(&path) {
            Ok(path)
        } else {
            Err(not_found(format!("{} is not an executable file", path.display())))
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(command))
        .find(|p| is_program(p))
        .ok_or_else(|| not_found(format!("it is in no folder of PATH ({})", search.to_string_lossy())))
}

fn is_system(path: &Path) -> bool {
    SYSTEM.iter().any(|s| path.starts_with(s))
}

/// What must be readable for `dir` to work: the outermost `node_modules`
/// above it (npm puts a package's dependencies beside it, not inside it),
/// else the Python virtual environment it is in (`pyvenv.cfg`), else itself.
fn package_root(dir: &Path) -> PathBuf {
    if let Some(modules) = dir.ancestors().filter(|a| a.file_name().is_some_and(|n| n == "node_modules")).last() {
        return modules.to_path_buf();
    }
    match dir.ancestors().take(3).find(|a| a.join("pyvenv.cfg").is_file()) {
        Some(venv) => venv.to_path_buf(),
        None => dir.to_path_buf(),
    }
}

/// The folders the command needs to read: the executable's (where it is
/// found and where its links lead) unless it is a system folder, and each
/// argument that is an existing absolute path (a file's folder).
pub(crate) fn needed_reads(exe: &Path, args: &[String]) -> Vec<PathBuf> {
    let mut reads = Vec::new();
    let mut add = |dir: Option<&Path>| {
        if let Some(dir) = dir.map(package_root)
            && !is_system(&dir)
            && !reads.iter().any(|r: &PathBuf| r.as_path() == dir)
        {
            reads.push(dir);
        }
    };
    add(exe.parent());
    if let Ok(real) = std::fs::canonicalize(exe) {
        add(real.parent());
    }
    for arg in args {
        let path = Path::new(arg);
        if !path.is_absolute() {
            continue;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => add(Some(path)),
            Ok(_) => add(path.parent()),
            Err(_) => {}
        }
    }
    reads
}

/// The environment a server gets: its configuration's, and for a server
/// with `hosts` the proxy's variables over it.
pub(crate) fn server_env(spec: &ServerSpec) -> std::collections::BTreeMap<String, String> {
    let mut env = spec.env.clone();
    if !spec.hosts.is_empty() {
        env.extend(crate::egress::proxy_env());
    }
    env
}

/// `airlock sandbox ...` for one server (the arguments after the airlock binary).
pub(crate) fn sandbox_args(
    spec: &ServerSpec,
    launcher: &Launcher,
    places: &Places,
    exe: &Path,
    args: &[String],
) -> Vec<OsString> {
    let absolute = |p: &PathBuf| if p.is_absolute() { p.clone() } else { launcher.workspace.join(p) };
    let mut out: Vec<OsString> = vec!["sandbox".into(), "--private-home".into(), "--net".into(), "none".into()];
    out.push("--timeout".into());
    out.push(launcher.lifetime.as_secs().max(1).to_string().into());
    let mut reads = vec![launcher.workspace.clone()];
    reads.extend(needed_reads(exe, args));
    reads.extend(spec.read.iter().map(absolute));
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in reads {
        if !seen.contains(&dir) {
            out.push("--read".into());
            out.push(dir.clone().into());
            seen.push(dir);
        }
    }
    for dir in spec.write.iter().map(absolute) {
        out.push("--write".into());
        out.push(dir.into());
    }
    for name in server_env(spec).keys() {
        out.push("--env".into());
        out.push(name.into());
    }
    if !spec.hosts.is_empty() {
        // Its one way out: TCP to this port inside, carried to its proxy.
        let mut bridge = OsString::from(format!("{}=", crate::egress::PROXY_PORT));
        bridge.push(&places.egress);
        out.push("--bridge".into());
        out.push(bridge);
    }
    out.push("--dns-log".into());
    out.push(places.dns.clone().into());
    out.push("--".into());
    out.push(exe.into());
    out.extend(args.iter().map(OsString::from));
    out
}

/// A fresh private folder (0700), what was there before removed.
pub(crate) fn fresh_folder(server: &str, path: &Path) -> Result<(), McpError> {
    let io = |what, source| McpError::Io { server: server.into(), what, path: path.to_path_buf(), source };
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove the old", e)),
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|e| io("create", e))?;
    // `recursive` leaves an existing parent's mode alone; the folder itself is new.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| io("restrict", e))
}

/// Binds the datagram socket at `path` (a path too long for a socket
/// address is reached through the folder's descriptor).
pub(crate) fn bind_datagram(server: &str, path: &Path) -> Result<std::os::unix::net::UnixDatagram, McpError> {
    use std::os::unix::ffi::OsStrExt;
    let io = |what, source| McpError::Io { server: server.into(), what, path: path.to_path_buf(), source };
    let _ = std::fs::remove_file(path);
    if path.as_os_str().as_bytes().len() < 100 {
        return std::os::unix::net::UnixDatagram::bind(path).map_err(|e| io("listen on", e));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io("listen on", std::io::Error::other("not a socket path")));
    };
    let folder = std::fs::File::open(dir).map_err(|e| io("open the folder of", e))?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", folder.as_raw_fd())).join(name);
    std::os::unix::net::UnixDatagram::bind(short).map_err(|e| io("listen on", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;
    use std::time::Duration;

    #[test]
    fn the_command_line_gives_reads_writes_env_names_and_the_dns_log() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("srv.py");
        std::fs::write(&script, "").unwrap();
        let spec = ServerSpec {
            name: "s".into(),
            transport: Transport::Stdio { command: "python3".into(), args: vec![] },
            env: [("TOKEN".to_string(), "secret-value".to_string())].into(),
            read: vec!["/data".into()],
            write: vec!["out".into()],
            hosts: vec![],
            digest: None,
            call_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(1),
        };
        let launcher = Launcher::new("/x/airlock".into(), "/ws".into(), "/run/r".into(), Duration::from_secs(3600));
        let places = Places::of(&launcher, "s");
        let args = vec![script.to_str().unwrap().to_string(), "-v".to_string()];
        let line: Vec<String> = sandbox_args(&spec, &launcher, &places, Path::new("/usr/bin/python3"), &args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let tmp = dir.path().to_str().unwrap();
        let want = [
            "sandbox",
            "--private-home",
            "--net",
            "none",
            "--timeout",
            "3600",
            "--read",
            "/ws",
            "--read",
            tmp,
            "--read",
            "/data",
            "--write",
            "/ws/out",
            "--env",
            "TOKEN",
            "--dns-log",
            "/run/r/mcp/s/dns.sock",
            "--",
            "/usr/bin/python3",
        ];
        assert_eq!(&line[..want.len()], &want[..]);
        assert_eq!(&line[want.len()..], &args[..]);
        assert!(!line.iter().any(|a| a.contains("secret-value")), "a secret's value is never on the command line");
    }

    #[test]
    fn a_server_with_hosts_gets_the_bridge_to_its_proxy_and_the_proxy_environment() {
        let mut spec = ServerSpec {
            name: "gh".into(),
            transport: Transport::Stdio { command: "python3".into(), args: vec![] },
            env: [("HTTPS_PROXY".to_string(), "http://elsewhere:1".to_string())].into(),
            read: vec![],
            write: vec![],
            hosts: vec!["api.github.com".into()],
            digest: None,
            call_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(1),
        };
        let launcher = Launcher::new("/x/airlock".into(), "/ws".into(), "/run/r".into(), Duration::from_secs(60));
        let places = Places::of(&launcher, "gh");
        let line = |spec: &ServerSpec| -> Vec<String> {
            sandbox_args(spec, &launcher, &places, Path::new("/usr/bin/python3"), &[])
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        let with = line(&spec);
        let at = with.iter().position(|a| a == "--bridge").expect("a bridge");
        assert_eq!(with[at + 1], "3128=/run/r/mcp/gh/egress.sock");
        assert_eq!(with.iter().filter(|a| *a == "--bridge").count(), 1);
        assert!(with.windows(2).any(|w| w == ["--net", "none"]), "no network of its own: {with:?}");
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"] {
            assert!(with.windows(2).any(|w| w[0] == "--env" && w[1] == name), "{name} passed: {with:?}");
        }
        // The proxy wins over the configuration's own value.
        assert_eq!(server_env(&spec)["HTTPS_PROXY"], "http://127.0.0.1:3128");
        assert_eq!(server_env(&spec)["NO_PROXY"], "");

        spec.hosts.clear();
        let without = line(&spec);
        assert!(!without.iter().any(|a| a == "--bridge" || a == "HTTP_PROXY"), "{without:?}");
        assert_eq!(server_env(&spec)["HTTPS_PROXY"], "http://elsewhere:1");
    }

    #[test]
    fn a_command_is_looked_up_in_path_or_relative_to_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(resolve_command("s", "sh", dir.path()).unwrap().is_absolute());
        let err = resolve_command("s", "bin/srv", dir.path()).unwrap_err().to_string();
        assert!(err.contains("bin/srv") && err.contains("not an executable file"), "{err}");
    }
}
