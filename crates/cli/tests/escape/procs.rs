//! Processes: other processes' secrets, signals, privilege gain, and
//! processes that try to outlive the command or its timeout.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::must_block;
use crate::args;
use crate::support::{Case, HostProcess, Verdict, is_root, unique};

const SECRET_VAR: &str = "AIRLOCK_ESCAPE_SECRET";

pub fn a_host_process_environment_is_unreadable() -> Verdict {
    let secret = unique("env-secret");
    let helper = HostProcess::hold("environ-helper", &[(SECRET_VAR, &secret)]);
    let environ = format!("/proc/{}/environ", helper.pid());
    Case::new().bare(&["read", &environ, &secret]).succeeded();

    // airlock itself gets the secret too: its init is pid 1 inside.
    let case = Case::new();
    for target in [environ.as_str(), "/proc/1/environ", "/proc/1/task/1/environ"] {
        let mut cmd = case.sandbox_command(&[]);
        cmd.env(SECRET_VAR, &secret).args(["./probe", "probe", "read", target, &secret]);
        case.run(cmd, format!("sandboxed: read {target}")).blocked();
    }
    Verdict::Passed
}

pub fn the_environment_is_an_allowlist() -> Verdict {
    let case = Case::new();
    let mut cmd = case.command("./probe");
    cmd.env(SECRET_VAR, "x").args(["probe", "env-has", SECRET_VAR]);
    case.run(cmd, "bare: env-has".into()).succeeded();
    let mut cmd = case.sandbox_command(&[]);
    cmd.env(SECRET_VAR, "x").args(["./probe", "probe", "env-has", SECRET_VAR]);
    case.run(cmd, "sandboxed: env-has".into()).blocked();
    Verdict::Passed
}

pub fn a_host_process_command_line_is_invisible() -> Verdict {
    let marker = unique("cmdline-marker");
    let _helper = HostProcess::hold(&marker, &[]);
    let (head, tail) = marker.split_at(8);
    must_block(Case::new, |_| args!["find-cmdline", head, tail]);
    Verdict::Passed
}

pub fn a_host_process_cannot_be_killed() -> Verdict {
    let mut victim = HostProcess::hold("kill-victim", &[]);
    Case::new().bare(&["kill", &victim.pid().to_string()]).succeeded();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!victim.is_running(), "the bare kill did not kill");

    let mut victim = HostProcess::hold("kill-victim", &[]);
    Case::new().sandboxed(&["kill", &victim.pid().to_string()]).blocked();
    std::thread::sleep(Duration::from_millis(100));
    assert!(victim.is_running(), "the sandbox killed a host process");
    Verdict::Passed
}

pub fn a_setuid_binary_gains_nothing() -> Verdict {
    // NoNewPrivs is what makes a setuid binary inert, as any user.
    must_block(Case::new, |_| args!["no-new-privs"]);
    if !is_root() {
        return Verdict::SandboxOnly(
            "checked NoNewPrivs: 1 inside; making a setuid binary owned by another user needs root".into(),
        );
    }
    // As root: a copy of the probe owned by nobody, with the setuid bit.
    let setuid_probe = || {
        let case = Case::new();
        let path = case.ws.join("probe-suid");
        std::fs::copy(case.ws.join("probe"), &path).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4755)).unwrap();
        case
    };
    let bare = setuid_probe();
    let mut cmd = bare.command("./probe-suid");
    cmd.args(["probe", "euid"]);
    bare.run(cmd, "bare: ./probe-suid euid".into()).succeeded();
    let case = setuid_probe();
    let mut cmd = case.sandbox_command(&[]);
    cmd.args(["./probe-suid", "probe", "euid"]);
    case.run(cmd, "sandboxed: ./probe-suid euid".into()).blocked();
    Verdict::Passed
}

/// Files under `dir` (at any depth, links not followed) that have the setuid
/// or setgid bit.
fn setid_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            found.extend(setid_files(&entry.path()));
        } else if meta.permissions().mode() & 0o6000 != 0 {
            found.push(entry.path());
        }
    }
    found
}

/// As root the sandbox runs as uid 0, so a copy it makes belongs to root:
/// `chmod 4755` on it would leave a setuid-root binary in the workspace for
/// anyone to run after the sandbox is gone (`nosuid` holds only inside).
pub fn a_setuid_bit_cannot_be_set_in_the_workspace() -> Verdict {
    let (case, run) = must_block(Case::new, |_| args!["setuid-chmod", "./probe", "./probe-suid"]);
    assert_eq!(setid_files(&case.ws), Vec::<std::path::PathBuf>::new(), "a setuid or setgid file was left:\n{run}");
    Verdict::Passed
}

pub fn a_file_cannot_be_created_setuid() -> Verdict {
    for how in ["openat", "creat", "mknod", "tmpfile"] {
        let (case, run) = must_block(Case::new, |_| args!["setuid-create", "made-suid", how]);
        assert_eq!(setid_files(&case.ws), Vec::<std::path::PathBuf>::new(), "{how} left a setuid file:\n{run}");
    }
    Verdict::Passed
}

/// `setcap cap_setuid+ep` on a root-owned copy of an interpreter is a setuid
/// binary by other means. It needs CAP_SETFCAP, which the command never has.
pub fn a_file_capability_cannot_be_set_in_the_workspace() -> Verdict {
    let setup = || {
        let case = Case::new();
        std::fs::copy(case.ws.join("probe"), case.ws.join("probe-cap")).unwrap();
        case
    };
    super::must_block_where_possible(setup, |_| args!["file-cap", "probe-cap"])
}

/// Heartbeat file written by the daemon the probe leaves behind.
const BEAT: &str = "beat";

fn beat_len(case: &Case) -> u64 {
    std::fs::metadata(case.ws.join(BEAT)).map(|m| m.len()).unwrap_or(0)
}

/// Whether the heartbeat grows over 300 ms.
fn still_beating(case: &Case) -> bool {
    let before = beat_len(case);
    std::thread::sleep(Duration::from_millis(300));
    beat_len(case) > before
}

/// The baseline of both daemon cases.
fn a_bare_daemon_outlives_its_parent() {
    let bare = Case::new();
    bare.bare(&["daemon", BEAT, "1500", "300"]).succeeded();
    assert!(still_beating(&bare), "bare, the daemon should outlive the probe");
    // Let it finish before its folder is removed.
    std::thread::sleep(Duration::from_millis(1200));
}

pub fn a_daemon_dies_with_the_command() -> Verdict {
    a_bare_daemon_outlives_its_parent();

    let case = Case::new();
    case.sandboxed(&["daemon", BEAT, "3000", "300"]).succeeded();
    assert!(beat_len(&case) > 0, "the daemon never ran");
    assert!(!still_beating(&case), "a daemon outlived the sandboxed command");
    Verdict::Passed
}

pub fn the_timeout_kills_the_whole_tree() -> Verdict {
    // Bare there is no timeout: the daemon outlives its parent.
    a_bare_daemon_outlives_its_parent();

    let case = Case::new();
    let mut cmd = case.sandbox_command(&["--timeout", "1"]);
    cmd.args(["./probe", "probe", "daemon", BEAT, "5000", "30000"]);
    let run = case.run(cmd, "sandboxed --timeout 1: daemon, then sleep 30 s".into());
    run.exited(124);
    assert!(run.elapsed < Duration::from_secs(10), "the timeout took too long:\n{run}");
    assert!(beat_len(&case) > 0, "the daemon never ran");
    assert!(!still_beating(&case), "a grandchild outlived the timeout");
    Verdict::Passed
}
