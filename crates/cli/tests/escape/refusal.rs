//! A missing protection layer makes airlock refuse, never run with less.

use crate::support::{Case, Verdict, airlock_bin};

const EXIT_REFUSED: i32 = 125;

pub fn a_missing_layer_refuses_instead_of_downgrading() -> Verdict {
    let bare = Case::new();
    bare.bare(&["create", "marker"]).succeeded();
    assert!(bare.ws.join("marker").exists());

    for (layer, named) in
        [("landlock", "landlock"), ("landlock-abi5", "landlock"), ("seccomp", "seccomp"), ("userns", "namespace")]
    {
        let case = Case::new();
        let mut cmd = case.sandbox_command(&[]);
        cmd.env("AIRLOCK_SANDBOX_SIMULATE_MISSING", layer).args(["./probe", "probe", "create", "marker"]);
        let run = case.run(cmd, format!("sandboxed, {layer} missing: create marker"));
        run.exited(EXIT_REFUSED);
        let stderr = run.stderr.to_lowercase();
        assert!(stderr.contains(named), "the refusal does not name {named}:\n{run}");
        assert!(stderr.contains("hint:"), "the refusal has no hint:\n{run}");
        assert!(!case.ws.join("marker").exists(), "{layer} missing: the command ran anyway");
    }
    Verdict::Passed
}

/// A real missing layer: inside a user namespace of its own (which any user
/// may make), the suite sets `user.max_user_namespaces` to 0 there.
pub fn no_user_namespaces_refuses() -> Verdict {
    let case = Case::new();
    let airlock = airlock_bin().into_string().unwrap();
    let script = "echo 0 > /proc/sys/user/max_user_namespaces || exit 99; \
                  exec \"$0\" sandbox -- ./probe probe create marker";
    let mut cmd = case.command("unshare");
    cmd.args(["-U", "--map-root-user", "sh", "-c", script, &airlock]);
    let run = case.run(cmd, "airlock sandbox with user.max_user_namespaces = 0".into());
    if run.code == Some(99) || run.stderr.contains("unshare failed") {
        return Verdict::Skipped(format!("cannot set user.max_user_namespaces in a user namespace:\n{run}"));
    }
    run.exited(EXIT_REFUSED);
    assert!(run.stderr.contains("hint:"), "the refusal has no hint:\n{run}");
    assert!(!case.ws.join("marker").exists(), "the command ran without a user namespace");
    Verdict::Passed
}
