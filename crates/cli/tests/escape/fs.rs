//! Files: writes outside the workspace, protected workspace paths, denied
//! files reached by other names.

use std::path::Path;

use super::{must_block, strs};
use crate::args;
use crate::support::{self, BASHRC, Case, HOST_SECRET, HostTmpDir, SSH_SECRET, Verdict, read, write};

/// Protected paths the cases attack, as the probe's `create` targets.
const PROTECTED_TARGETS: &[&str] =
    &[".git/hooks/pre-commit", ".claude/settings.json", ".envrc", ".vscode/tasks.json", ".mcp.json"];

fn p(path: &Path) -> String {
    path.display().to_string()
}

pub fn a_shell_rc_file_in_home_cannot_be_written() -> Verdict {
    // Control: the file is visible, so the write is stopped by read-only
    // access and not merely by absence.
    let visible = Case::with_home_readable();
    visible.sandboxed(&["read", &p(&visible.home.join(".bashrc")), "AIRLOCK-TEST-BASHRC"]).succeeded();

    let (case, _) = must_block(Case::with_home_readable, |c| args!["append", p(&c.home.join(".bashrc"))]);
    assert_eq!(read(&case.home.join(".bashrc")), BASHRC);
    let (case, _) = must_block(Case::with_home_readable, |c| args!["create", p(&c.home.join(".profile"))]);
    assert!(!case.home.join(".profile").exists());
    Verdict::Passed
}

pub fn the_hosts_tmp_cannot_be_written() -> Verdict {
    let dir = HostTmpDir::new();
    let target = dir.path.join("target");
    write(&target, "original\n");
    // Bare, the append lands on the host; undo it for the sandboxed half.
    let bare = Case::new();
    bare.bare(&["append", &p(&target)]).succeeded();
    write(&target, "original\n");

    let case = Case::new();
    case.sandboxed(&["append", &p(&target)]).blocked();
    assert_eq!(read(&target), "original\n", "the sandbox wrote to the host's /tmp");
    // Creating a file there may succeed inside (on the private /tmp): what
    // matters is that nothing appears on the host.
    let created = dir.path.join("created");
    case.sandboxed(&["create", &p(&created)]);
    assert!(!created.exists(), "a file created in the sandbox's /tmp appeared in the host's");
    Verdict::Passed
}

pub fn a_file_outside_the_roots_is_unreadable() -> Verdict {
    must_block(Case::new, |c| args!["read", p(&c.host.join("secret.txt")), HOST_SECRET]);
    must_block(Case::new, |c| args!["read", p(&c.home.join(".ssh/id_rsa")), SSH_SECRET]);
    Verdict::Passed
}

pub fn a_denied_file_stays_unreadable_when_home_is_readable() -> Verdict {
    let visible = Case::with_home_readable();
    visible.sandboxed(&["read", &p(&visible.home.join(".bashrc")), "AIRLOCK-TEST-BASHRC"]).succeeded();
    must_block(Case::with_home_readable, |c| args!["read", p(&c.home.join(".ssh/id_rsa")), SSH_SECRET]);
    must_block(Case::with_home_readable, |c| args!["read", p(&c.home.join(".aws/credentials")), support::AWS_SECRET]);
    Verdict::Passed
}

pub fn protected_paths_cannot_be_created_when_missing() -> Verdict {
    for target in PROTECTED_TARGETS {
        let (case, _) = must_block(Case::new, |_| args!["create", target]);
        assert_eq!(case.ws_listing(), ["probe"], "after creating {target} failed, placeholders were left behind");
    }
    Verdict::Passed
}

/// A workspace with every protected path present, as in a real checkout.
fn checkout() -> Case {
    let case = Case::new();
    write(&case.ws.join(".git/hooks/pre-commit.sample"), "sample\n");
    write(&case.ws.join(".git/config"), "[core]\n");
    write(&case.ws.join(".claude/settings.json"), "{}\n");
    write(&case.ws.join(".vscode/tasks.json"), "{}\n");
    write(&case.ws.join(".mcp.json"), "{}\n");
    write(&case.ws.join(".envrc"), "# envrc\n");
    write(&case.ws.join(".airlock/config.toml"), "");
    case
}

fn assert_checkout_unchanged(case: &Case) {
    assert_eq!(read(&case.ws.join(".git/hooks/pre-commit.sample")), "sample\n");
    assert!(!case.ws.join(".git/hooks/pre-commit").exists(), "a hook was planted");
    assert_eq!(read(&case.ws.join(".git/config")), "[core]\n");
    assert_eq!(read(&case.ws.join(".claude/settings.json")), "{}\n");
    assert_eq!(read(&case.ws.join(".vscode/tasks.json")), "{}\n");
    assert_eq!(read(&case.ws.join(".mcp.json")), "{}\n");
    assert_eq!(read(&case.ws.join(".envrc")), "# envrc\n");
    assert_eq!(read(&case.ws.join(".airlock/config.toml")), "");
}

pub fn protected_paths_cannot_be_changed_when_present() -> Verdict {
    for target in PROTECTED_TARGETS {
        let (case, _) = must_block(checkout, |_| args!["create", target]);
        assert_checkout_unchanged(&case);
    }
    for target in [".git/config", ".claude/settings.json", ".envrc", ".airlock/config.toml"] {
        let (case, _) = must_block(checkout, |_| args!["append", target]);
        assert_checkout_unchanged(&case);
    }
    let (case, _) = must_block(checkout, |_| args!["create", ".claude/settings.local.json"]);
    assert_checkout_unchanged(&case);
    Verdict::Passed
}

pub fn a_symlink_does_not_reach_a_denied_file() -> Verdict {
    must_block(Case::with_home_readable, |c| args!["symlink-read", p(&c.home.join(".ssh/id_rsa")), "link"]);
    must_block(Case::new, |c| args!["symlink-read", p(&c.host.join("secret.txt")), "link"]);
    Verdict::Passed
}

pub fn a_hardlink_does_not_reach_a_denied_or_protected_file() -> Verdict {
    // The fake home and the workspace share a file system, so bare the link works.
    must_block(Case::with_home_readable, |c| args!["hardlink-read", p(&c.home.join(".ssh/id_rsa")), "key"]);
    must_block(Case::new, |c| args!["hardlink-read", p(&c.host.join("secret.txt")), "secret"]);
    let (case, _) = must_block(checkout, |_| args!["hardlink-write", ".git/config", "config-link"]);
    assert_checkout_unchanged(&case);
    let (case, _) = must_block(checkout, |_| args!["hardlink-write", ".envrc", "envrc-link"]);
    assert_checkout_unchanged(&case);
    Verdict::Passed
}

pub fn a_protected_folder_cannot_be_renamed_away() -> Verdict {
    let (case, _) = must_block(checkout, |_| args!["rename-replace", ".git/hooks", "pre-commit"]);
    assert_checkout_unchanged(&case);
    assert!(!case.ws.join(".git/hooks.moved").exists());
    let (case, _) = must_block(checkout, |_| args!["rename-replace", ".claude", "settings.json"]);
    assert_checkout_unchanged(&case);
    let (case, _) = must_block(checkout, |_| args!["rename-replace", ".git", "config"]);
    assert_checkout_unchanged(&case);
    // Missing: the placeholder must not be movable either.
    let (case, _) = must_block(Case::new, |_| args!["rename-replace", ".claude", "settings.json"]);
    assert_eq!(case.ws_listing(), ["probe"]);
    Verdict::Passed
}

pub fn a_protected_folder_cannot_be_swapped_for_a_symlink() -> Verdict {
    let with_decoy = |case: Case| {
        write(&case.ws.join("decoy/settings.json"), "{\"hooks\": \"evil\"}\n");
        write(&case.ws.join("decoy/pre-commit"), "#!/bin/sh\n");
        case
    };
    let (case, _) = must_block(|| with_decoy(checkout()), |_| args!["symlink-swap", ".claude", "decoy"]);
    assert!(case.ws.join(".claude").symlink_metadata().unwrap().is_dir(), ".claude was replaced");
    assert_checkout_unchanged(&case);
    let (case, _) = must_block(|| with_decoy(checkout()), |_| args!["symlink-swap", ".git/hooks", "../decoy"]);
    assert!(case.ws.join(".git/hooks").symlink_metadata().unwrap().is_dir(), ".git/hooks was replaced");
    assert_checkout_unchanged(&case);
    let (case, _) = must_block(|| with_decoy(Case::new()), |_| args!["symlink-swap", ".claude", "decoy"]);
    assert_eq!(case.ws_listing(), ["decoy", "probe"], ".claude left behind or replaced");
    Verdict::Passed
}

pub fn a_denied_file_is_unreadable_through_proc_self_root() -> Verdict {
    let via_root = |c: &Case| format!("/proc/self/root{}", c.home.join(".ssh/id_rsa").display());
    must_block(Case::with_home_readable, |c| args!["read", via_root(c), SSH_SECRET]);
    must_block(Case::new, |c| args!["read", format!("/proc/self/root{}", c.host.join("secret.txt").display())]);
    // And through the probe's own working directory link.
    must_block(Case::with_home_readable, |_| args!["read", "/proc/self/cwd/../home/.ssh/id_rsa", SSH_SECRET]);
    Verdict::Passed
}

pub fn an_inherited_descriptor_does_not_leak_a_denied_file() -> Verdict {
    const FD: i32 = 9;
    let run = |case: &Case, sandboxed: bool| {
        let secret = std::fs::File::open(case.home.join(".ssh/id_rsa")).unwrap();
        let mut cmd = match sandboxed {
            true => {
                let mut cmd = case.sandbox_command(&[]);
                cmd.arg("./probe");
                cmd
            }
            false => case.command("./probe"),
        };
        cmd.args(["probe", "read-fd", &FD.to_string()]);
        support::pass_fd(&mut cmd, &secret, FD);
        case.run(cmd, format!("{} read-fd {FD}", if sandboxed { "sandboxed" } else { "bare" }))
    };
    run(&Case::new(), false).succeeded();
    run(&Case::new(), true).blocked();
    Verdict::Passed
}

/// Exit status of `airlock sandbox` when it refuses to run.
const EXIT_REFUSED: i32 = 125;

/// A symlink at a protected path must not become a read-only view of its
/// target: airlock may refuse to run, or the probe must be blocked.
pub fn a_protected_path_that_is_a_symlink_exposes_nothing() -> Verdict {
    let linked = |link: &'static str, target: fn(&Case) -> std::path::PathBuf| {
        move || {
            let case = Case::new();
            let path = case.ws.join(link);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target(&case), path).unwrap();
            case
        }
    };
    let secret = |c: &Case| c.host.join("secret.txt");
    for (setup, attack) in [
        (linked(".envrc", secret), args!["read", ".envrc", HOST_SECRET]),
        (linked(".git/config", |c| c.home.join(".ssh/id_rsa")), args!["read", ".git/config", SSH_SECRET]),
        (linked(".claude", |c| c.host.clone()), args!["read", ".claude/secret.txt", HOST_SECRET]),
        (linked(".envrc", secret), args!["append", ".envrc"]),
    ] {
        setup().bare(&strs(&attack)).succeeded();
        let case = setup();
        let run = case.sandboxed(&strs(&attack));
        assert!(run.is_blocked() || run.code == Some(EXIT_REFUSED), "the attack was NOT blocked:\n{run}");
        assert_eq!(read(&case.host.join("secret.txt")), HOST_SECRET);
    }
    Verdict::Passed
}

/// With `.git` a symlink to a folder outside the workspace, the placeholders
/// for `.git/hooks/` and `.git/config` must not be made (and removed) there.
pub fn a_placeholder_is_not_created_through_a_symlink() -> Verdict {
    let setup = || {
        let case = Case::new();
        std::fs::create_dir_all(case.host.join("repo")).unwrap();
        std::os::unix::fs::symlink(case.host.join("repo"), case.ws.join(".git")).unwrap();
        case
    };
    let bare = setup();
    bare.bare(&["create", ".git/hooks/pre-commit"]).succeeded();
    assert!(bare.host.join("repo/hooks/pre-commit").exists());

    let case = setup();
    let repo = case.host.join("repo");
    let before = std::fs::metadata(&repo).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let run = case.sandboxed(&["create", ".git/hooks/pre-commit"]);
    assert!(run.is_blocked() || run.code == Some(EXIT_REFUSED), "the attack was NOT blocked:\n{run}");
    let left: Vec<_> = std::fs::read_dir(&repo).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "airlock left {left:?} in {} outside the workspace:\n{run}", repo.display());
    assert_eq!(
        std::fs::metadata(&repo).unwrap().modified().unwrap(),
        before,
        "{} outside the workspace was written to during the run:\n{run}",
        repo.display()
    );
    Verdict::Passed
}

/// The host's /dev/shm holds other programs' shared memory and is writable
/// by all: inside, /dev/shm must be a private one.
pub fn the_hosts_dev_shm_is_out_of_reach() -> Verdict {
    let name = support::unique("airlock-escape-shm");
    let shared = std::path::PathBuf::from("/dev/shm").join(&name);
    if std::fs::write(&shared, HOST_SECRET).is_err() {
        return Verdict::Skipped("no writable /dev/shm on this host".into());
    }
    let _cleanup = support::RemoveOnDrop(shared.clone());
    must_block(Case::new, |_| args!["read", p(&shared), HOST_SECRET]);
    // Bare, the append lands on the host; undo it for the sandboxed half.
    Case::new().bare(&["append", &p(&shared)]).succeeded();
    std::fs::write(&shared, HOST_SECRET).unwrap();
    Case::new().sandboxed(&["append", &p(&shared)]).blocked();
    assert_eq!(read(&shared), HOST_SECRET, "the sandbox wrote to the host's /dev/shm");
    let created = std::path::PathBuf::from("/dev/shm").join(format!("{name}-new"));
    let _cleanup_created = support::RemoveOnDrop(created.clone());
    Case::new().sandboxed(&["create", &p(&created)]);
    assert!(!created.exists(), "a file created in the sandbox's /dev/shm appeared in the host's");
    Verdict::Passed
}

/// A terminal of the host (here one the test opens) must not be writable
/// from inside: /dev/pts must be a new instance.
pub fn a_host_terminal_is_unreachable() -> Verdict {
    let (master, slave) = support::open_pty();
    Case::new().bare(&["append", &slave]).succeeded();
    assert!(support::drain(&master).contains("ESCAPED"), "bare, the write should reach the terminal");
    Case::new().sandboxed(&["append", &slave]).blocked();
    assert!(!support::drain(&master).contains("ESCAPED"), "the sandbox wrote to a host terminal");
    Verdict::Passed
}

// --- git's control surface (issue 14, class 1) -------------------------------
//
// Each attack plants something that the user's next git command on the host
// runs. Bare, the plant works and git runs it (it leaves a marker in the
// case folder); sandboxed, the write is blocked and git runs nothing.

/// The marker a planted git setting or hook leaves.
fn pwned(case: &Case) -> std::path::PathBuf {
    case.root.join("PWNED")
}

/// A git configuration whose fsmonitor hook (run by `git status`) leaves the marker.
fn fsmonitor_config(case: &Case) -> String {
    format!("[core]\n\tfsmonitor = \"touch {} #\"\n", pwned(case).display())
}

/// Runs git on the host in `dir` (relative to the workspace), as the user would after the session.
fn host_git(case: &Case, dir: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = case.command("git");
    cmd.current_dir(case.ws.join(dir)).args(args);
    for (k, v) in [("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@t"), ("GIT_COMMITTER_NAME", "t")] {
        cmd.env(k, v);
    }
    cmd.env("GIT_COMMITTER_EMAIL", "t@t").output().unwrap()
}

fn host_git_ok(case: &Case, dir: &str, args: &[&str]) {
    let out = host_git(case, dir, args);
    assert!(out.status.success(), "git {args:?} in {dir}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A workspace that is a git repository with one commit (identity in its config).
fn git_repo() -> Case {
    let case = Case::new();
    host_git_ok(&case, ".", &["init", "-q", "-b", "main"]);
    host_git_ok(&case, ".", &["config", "user.name", "t"]);
    host_git_ok(&case, ".", &["config", "user.email", "t@t"]);
    write(&case.ws.join("README"), "readme\n");
    host_git_ok(&case, ".", &["add", "README"]);
    host_git_ok(&case, ".", &["commit", "-qm", "init"]);
    case
}

/// `git_repo` with `evil/`: a copy of its git folder whose config runs the marker.
fn git_repo_with_evil_copy() -> Case {
    let case = git_repo();
    let cp = std::process::Command::new("cp").arg("-r").arg(case.ws.join(".git")).arg(case.ws.join("evil")).status();
    assert!(cp.unwrap().success());
    write(&case.ws.join("evil/config"), &fsmonitor_config(&case));
    case
}

/// Bare, `attack` plants what `git GIT_ARGS` in `dir` then runs; sandboxed it
/// is blocked and the same git command runs nothing.
fn git_plant_is_blocked(setup: impl Fn() -> Case, attack: impl Fn(&Case) -> Vec<String>, dir: &str, git_args: &[&str]) {
    let bare = setup();
    bare.bare(&strs(&attack(&bare))).succeeded();
    host_git(&bare, dir, git_args);
    assert!(pwned(&bare).exists(), "bare, `git {git_args:?}` in {dir} should run what was planted");
    let case = setup();
    let run = case.sandboxed(&strs(&attack(&case)));
    run.blocked();
    let out = host_git(&case, dir, git_args);
    assert!(
        !pwned(&case).exists(),
        "after the sandboxed attack, `git {git_args:?}` ran planted code:\n{run}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn git_commondir_cannot_be_redirected() -> Verdict {
    git_plant_is_blocked(git_repo_with_evil_copy, |_| args!["write", ".git/commondir", "../evil\n"], ".", &["status"]);
    // The placeholder that kept it read-only is gone again.
    let case = git_repo();
    case.sandboxed(&["read", "README"]).succeeded();
    assert!(!case.ws.join(".git/commondir").exists(), "the commondir placeholder was left behind");
    Verdict::Passed
}

pub fn a_worktrees_git_file_cannot_be_redirected() -> Verdict {
    let setup = || {
        let case = git_repo_with_evil_copy();
        host_git_ok(&case, ".", &["worktree", "add", "-q", "wt"]);
        case
    };
    git_plant_is_blocked(setup, |_| args!["write", "wt/.git", "gitdir: ../evil\n"], "wt", &["status"]);
    // Nor can what it points at (the worktree's git folder) be redirected.
    git_plant_is_blocked(
        setup,
        |_| args!["write", ".git/worktrees/wt/commondir", "../../../evil\n"],
        "wt",
        &["status"],
    );
    Verdict::Passed
}

pub fn a_nested_repositorys_config_is_read_only() -> Verdict {
    let setup = || {
        let case = git_repo();
        host_git_ok(&case, ".", &["init", "-q", "vendor/sub"]);
        case
    };
    git_plant_is_blocked(
        setup,
        |c| args!["write", "vendor/sub/.git/config", fsmonitor_config(c)],
        "vendor/sub",
        &["status"],
    );
    Verdict::Passed
}

pub fn a_submodules_config_and_hooks_are_read_only() -> Verdict {
    let setup = || {
        let case = git_repo();
        let gitdir = case.ws.join(".git/modules/lib");
        std::fs::create_dir_all(case.ws.join(".git/modules")).unwrap();
        host_git_ok(&case, ".", &["init", "-q", &format!("--separate-git-dir={}", gitdir.display()), "lib"]);
        host_git_ok(&case, "lib", &["config", "user.name", "t"]);
        host_git_ok(&case, "lib", &["config", "user.email", "t@t"]);
        case
    };
    git_plant_is_blocked(setup, |c| args!["write", ".git/modules/lib/config", fsmonitor_config(c)], "lib", &["status"]);
    let hook = |c: &Case| {
        args!["write", ".git/modules/lib/hooks/pre-commit", format!("#!/bin/sh\ntouch {}\n", pwned(c).display())]
    };
    git_plant_is_blocked(setup, hook, "lib", &["commit", "-q", "--allow-empty", "-m", "x"]);
    Verdict::Passed
}

pub fn a_hooks_path_in_the_tree_is_read_only() -> Verdict {
    // The husky layout: core.hooksPath names a folder in the tree that hides itself.
    let setup = || {
        let case = git_repo();
        host_git_ok(&case, ".", &["config", "core.hooksPath", ".husky/_"]);
        write(&case.ws.join(".husky/_/.gitignore"), "*\n");
        case
    };
    let hook = |c: &Case| args!["write", ".husky/_/pre-commit", format!("#!/bin/sh\ntouch {}\n", pwned(c).display())];
    git_plant_is_blocked(setup, hook, ".", &["commit", "-q", "--allow-empty", "-m", "x"]);
    Verdict::Passed
}

pub fn git_config_included_from_the_tree_is_read_only() -> Verdict {
    // One include that exists and one that does not yet: both are read by git.
    let setup = || {
        let case = git_repo();
        host_git_ok(&case, ".", &["config", "include.path", "../team.gitconfig"]);
        host_git_ok(&case, ".", &["config", "includeIf.onbranch:main.path", "../later.gitconfig"]);
        write(&case.ws.join("team.gitconfig"), "[user]\n\tname = t\n");
        case
    };
    for file in ["team.gitconfig", "later.gitconfig"] {
        git_plant_is_blocked(setup, |c| args!["write", file, fsmonitor_config(c)], ".", &["status"]);
    }
    Verdict::Passed
}

/// What commits need stays writable: `git add` and `git commit` work inside.
pub fn git_commit_works_in_the_sandbox() -> Verdict {
    let case = git_repo();
    let mut cmd = case.sandbox_command(&[]);
    cmd.args(["sh", "-c", "echo new > new.txt && git add new.txt && git commit -q -m inside && git status --short"]);
    let run = case.run(cmd, "sandboxed: git add && git commit".into());
    run.exited(0);
    let log = host_git(&case, ".", &["log", "--format=%s"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout), "inside\ninit\n", "{run}");
    for placeholder in [".git/commondir", ".git/config.worktree"] {
        assert!(!case.ws.join(placeholder).exists(), "{placeholder} was left behind");
    }
    Verdict::Passed
}

// --- secrets in readable roots (issue 14, class 11) --------------------------

/// A folder under /etc for one case, removed when dropped.
struct EtcDir(std::path::PathBuf);

impl Drop for EtcDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Files only root may read, in /etc and in a `--read` folder: root reads
/// them bare (as their owner); inside, a root caller sees what any user sees.
pub fn root_only_files_in_readable_roots_are_hidden_from_root() -> Verdict {
    if !support::is_root() {
        return Verdict::Skipped("root-only files are unreadable to this user bare as well".into());
    }
    let etc = EtcDir(std::path::PathBuf::from("/etc").join(support::unique("airlock-escape")));
    let plant = |dir: &Path| {
        // The shapes of /etc/krb5.keytab, /etc/wireguard/ and /etc/letsencrypt/.
        write(&dir.join("krb5.keytab"), HOST_SECRET);
        chmod(&dir.join("krb5.keytab"), 0o600);
        write(&dir.join("wireguard/wg0.conf"), HOST_SECRET);
        chmod(&dir.join("wireguard/wg0.conf"), 0o644);
        chmod(&dir.join("wireguard"), 0o700);
        write(&dir.join("public.conf"), "public\n");
    };
    plant(&etc.0);
    for file in ["krb5.keytab", "wireguard/wg0.conf"] {
        must_block(Case::new, |_| args!["read", p(&etc.0.join(file)), HOST_SECRET]);
    }
    Case::new().sandboxed(&["read", &p(&etc.0.join("public.conf")), "public"]).succeeded();

    let read_folder = |c: &Case| {
        plant(&c.host.join("conf"));
        c.host.join("conf")
    };
    for file in ["krb5.keytab", "wireguard/wg0.conf"] {
        let bare = Case::new();
        bare.bare(&["read", &p(&read_folder(&bare).join(file)), HOST_SECRET]).succeeded();
        let case = Case::new();
        let dir = read_folder(&case);
        let mut cmd = case.sandbox_command(&["--read", &p(&dir)]);
        cmd.args(["./probe", "probe", "read", &p(&dir.join(file)), HOST_SECRET]);
        case.run(cmd, format!("sandboxed --read: read {file}")).blocked();
    }
    Verdict::Passed
}

/// Cargo's configuration shows without its registry tokens (and still shows the rest).
pub fn cargo_registry_tokens_are_not_readable() -> Verdict {
    const TOKEN: &str = "cio0123456789AIRLOCKTESTTOKEN";
    let setup = || {
        let case = Case::new();
        let config = format!(
            "[build]\njobs = 3\n\n[registry]\ntoken = \"{TOKEN}\"\n\n[registries.corp]\nindex = \"sparse+https://corp.example/\"\ntoken = \"{TOKEN}\"\n"
        );
        write(&case.home.join(".cargo/config.toml"), &config);
        write(&case.home.join(".cargo/config"), &format!("[registry]\ntoken = \"{TOKEN}\"\n"));
        case
    };
    must_block(setup, |c| args!["read", p(&c.home.join(".cargo/config.toml")), TOKEN]);
    must_block(setup, |c| args!["read", p(&c.home.join(".cargo/config")), TOKEN]);
    let case = setup();
    case.sandboxed(&["read", &p(&case.home.join(".cargo/config.toml")), "jobs = 3"]).succeeded();
    case.sandboxed(&["read", &p(&case.home.join(".cargo/config.toml")), "corp.example"]).succeeded();
    Verdict::Passed
}

/// Package managers' credential files stay hidden even where home is readable.
pub fn credential_files_in_readable_roots_are_hidden() -> Verdict {
    for file in [
        ".npmrc",
        ".pypirc",
        ".gem/credentials",
        ".docker/config.json",
        ".netrc",
        ".git-credentials",
        ".config/gh/hosts.yml",
    ] {
        let setup = || {
            let case = Case::with_home_readable();
            write(&case.home.join(file), HOST_SECRET);
            case
        };
        must_block(setup, |c| args!["read", p(&c.home.join(file)), HOST_SECRET]);
    }
    Verdict::Passed
}
