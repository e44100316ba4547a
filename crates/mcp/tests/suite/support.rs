//! Servers of the tests and where they run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_mcp::{Launcher, ServerSpec, Transport};

/// The airlock binary: `$AIRLOCK_BIN`, else the workspace's `target/debug/airlock`.
pub fn airlock_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("AIRLOCK_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join("target/debug/airlock");
    assert!(
        bin.is_file(),
        "the airlock binary is missing at {}\nhint: cargo build -p airlock-cli --no-default-features, or set AIRLOCK_BIN",
        bin.display()
    );
    std::fs::canonicalize(bin).unwrap()
}

pub fn server_script() -> String {
    // A copy elsewhere when the checkout cannot be read (scripts/test, as an unprivileged user).
    let script = match std::env::var_os("AIRLOCK_MCP_SERVERS") {
        Some(dir) => Path::new(&dir).join("server.py"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/server.py"),
    };
    std::fs::canonicalize(script).unwrap().to_string_lossy().into_owned()
}

/// A workspace and a run folder of one session.
pub struct Session {
    pub dir: tempfile::TempDir,
    pub launcher: Launcher,
}

impl Session {
    pub fn new() -> Session {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        let run_dir = dir.path().join("run");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&run_dir).unwrap();
        let launcher = Launcher::new(airlock_bin(), workspace, run_dir, std::time::Duration::from_secs(3600));
        Session { dir, launcher }
    }
}

/// The system's Python (a version manager's shim would need its own folders readable).
pub fn python() -> String {
    let system = Path::new("/usr/bin/python3");
    if system.exists() { system.to_string_lossy().into_owned() } else { "python3".into() }
}

/// The test server in `mode`, named `name`.
pub fn spec(name: &str, mode: &str) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        transport: Transport::Stdio { command: python(), args: vec![server_script(), mode.into()] },
        env: BTreeMap::new(),
        read: vec![],
        write: vec![],
        hosts: vec![],
        digest: None,
        call_timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(30),
    }
}
