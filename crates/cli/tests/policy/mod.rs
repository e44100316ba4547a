//! The policy front end: a project file cannot widen the sandbox, errors
//! carry positions, and `policy show` says where each value came from.

use crate::support::{Case, Verdict};

const EXIT_USAGE: i32 = 2;

/// `airlock sandbox` refuses the policy, naming both the project file and
/// the user config it tried to widen, and runs nothing.
fn refused_naming_project_and_user(case: &Case) {
    let run = case.airlock(&["sandbox", "--", "./probe", "probe", "create", "marker"]);
    run.exited(EXIT_USAGE);
    let project = case.ws.join(".airlock/config.toml").display().to_string();
    let user = case.config.join("airlock/config.toml").display().to_string();
    assert!(run.stderr.contains(&project), "the message does not name the project file:\n{run}");
    assert!(run.stderr.contains(&user), "the message does not name the user file:\n{run}");
    assert!(!case.ws.join("marker").exists());
}

pub fn a_project_config_cannot_make_everything_writable() -> Verdict {
    let case = Case::new();
    case.write_user_config("[sandbox]\nwritable_roots = [\"~/scratch\"]\n");
    case.write_project_config("[sandbox]\nwritable_roots = [\"/\"]\n");
    refused_naming_project_and_user(&case);
    assert!(!case.ws.join("marker").exists());
    Verdict::Passed
}

pub fn a_project_config_cannot_read_a_denied_folder() -> Verdict {
    let case = Case::new();
    case.write_user_config("[sandbox]\ndeny_read = [\"~/private\"]\n");
    case.write_project_config("[sandbox]\nreadable_roots = [\"/usr\", \"~/private/keys\"]\n");
    refused_naming_project_and_user(&case);
    // Built-in denials hold too.
    case.write_user_config("");
    case.write_project_config("[sandbox]\nreadable_roots = [\"~/.ssh\"]\n");
    let run = case.airlock(&["sandbox", "--", "./probe", "probe", "create", "marker"]);
    run.exited(EXIT_USAGE);
    assert!(run.stderr.contains("deny_read"), "{run}");
    assert!(!case.ws.join("marker").exists());
    Verdict::Passed
}

pub fn policy_check_reports_line_and_column() -> Verdict {
    let case = Case::new();
    let file = case.root.join("bad.toml");
    crate::support::write(&file, "[sandbox]\nwritable_roots = [\n");
    let run = case.airlock(&["policy", "check", &file.display().to_string()]);
    run.exited(EXIT_USAGE);
    assert!(run.stderr.contains(&format!("{}:2:", file.display())), "no line:column:\n{run}");
    crate::support::write(&file, "[sandbox]\nwritable_roots = []\n");
    case.airlock(&["policy", "check", &file.display().to_string()]).exited(0);
    Verdict::Passed
}

pub fn policy_show_lists_sources() -> Verdict {
    let case = Case::new();
    case.write_managed_policy("[limits]\ncpu_secs = 100\n");
    case.write_user_config("[limits]\nprocesses = 64\n");
    case.write_project_config("[limits]\ntimeout_secs = 30\n");
    let run = case.airlock(&["policy", "show"]);
    run.exited(0);
    for (line, source) in [
        ("cpu_secs = 100", case.managed.display().to_string()),
        ("processes = 64", case.config.join("airlock/config.toml").display().to_string()),
        ("timeout_secs = 30", case.ws.join(".airlock/config.toml").display().to_string()),
        ("memory_mb = ", "built-in default".to_string()),
    ] {
        let found = run.stdout.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line}:\n{run}"));
        assert!(found.contains(&source), "{line} should come from {source}: {found}");
    }
    Verdict::Passed
}

pub fn managed_policy_can_forbid_running_without_the_sandbox() -> Verdict {
    let case = Case::new();
    // Allowed by default: it runs, unconfined, with a warning.
    let run = case.airlock(&["sandbox", "--unsafe-no-sandbox", "--", "./probe", "probe", "create", "marker"]);
    run.exited(0);
    assert!(run.stderr.contains("WITHOUT any sandbox"), "no warning:\n{run}");
    assert!(case.ws.join("marker").exists());
    std::fs::remove_file(case.ws.join("marker")).unwrap();
    // Forbidden by managed policy: refused, and nothing runs.
    case.write_managed_policy("[sandbox]\nallow_unsafe_no_sandbox = false\n");
    let run = case.airlock(&["sandbox", "--unsafe-no-sandbox", "--", "./probe", "probe", "create", "marker"]);
    assert_ne!(run.code, Some(0), "ran without the sandbox against managed policy:\n{run}");
    assert!(run.stderr.contains("forbidden by managed policy"), "{run}");
    assert!(!case.ws.join("marker").exists());
    // A user config cannot lift the ban.
    case.write_user_config("[sandbox]\nallow_unsafe_no_sandbox = true\n");
    let run = case.airlock(&["sandbox", "--unsafe-no-sandbox", "--", "true"]);
    run.exited(EXIT_USAGE);
    Verdict::Passed
}

pub fn loader_variables_never_reach_the_command() -> Verdict {
    let case = Case::new();
    let mut cmd = case.sandbox_command(&["--env", "LD_PRELOAD", "--env", "LD_LIBRARY_PATH", "--env", "KEPT"]);
    cmd.env("LD_LIBRARY_PATH", "/nonexistent").env("KEPT", "yes").args(["/bin/sh", "-c", "env"]);
    let run = case.run(cmd, "airlock sandbox -- env".into());
    run.exited(0);
    assert!(run.stdout.contains("KEPT=yes"), "an allowed variable was dropped:\n{run}");
    assert!(!run.stdout.contains("LD_LIBRARY_PATH"), "a loader variable reached the command:\n{run}");
    Verdict::Passed
}

pub fn the_home_folder_is_refused_as_the_workspace() -> Verdict {
    let case = Case::new();
    let mut cmd = case.command(crate::support::airlock_bin());
    cmd.current_dir(&case.home).args(["sandbox", "--", "/bin/sh", "-c", "echo x > marker"]);
    let run = case.run(cmd, "airlock sandbox (from the home folder)".into());
    run.exited(125);
    assert!(run.stderr.contains("run airlock from a project folder"), "{run}");
    assert!(!case.home.join("marker").exists());
    Verdict::Passed
}

pub fn a_project_config_cannot_widen_a_managed_restriction() -> Verdict {
    let case = Case::new();
    case.write_managed_policy("[network]\nmode = \"none\"\n\n[limits]\ntimeout_secs = 60\n");
    case.write_project_config("[limits]\ntimeout_secs = 86400\n");
    let run = case.airlock(&["sandbox", "--", "/bin/sh", "-c", "echo x > marker"]);
    run.exited(EXIT_USAGE);
    let project = case.ws.join(".airlock/config.toml").display().to_string();
    let managed = format!("managed policy {}", case.managed.display());
    assert!(run.stderr.contains(&project), "the message does not name the project file:\n{run}");
    assert!(run.stderr.contains(&managed), "the message does not name the managed policy:\n{run}");
    assert!(run.stderr.contains("limits.timeout_secs"), "the message does not name the key:\n{run}");
    assert!(!case.ws.join("marker").exists());
    // Narrowing it is fine.
    case.write_project_config("[limits]\ntimeout_secs = 30\n");
    case.airlock(&["sandbox", "--", "/bin/sh", "-c", "echo x > marker"]).exited(0);
    assert!(case.ws.join("marker").exists());
    Verdict::Passed
}
