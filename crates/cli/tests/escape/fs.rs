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
