//! Attacks on `airlock sandbox`, grouped by what they go after. Each one is
//! run bare first (it must work, or the case says why it cannot be checked)
//! and then in the sandbox (it must be blocked).

pub mod fs;
pub mod kernel;
pub mod limits;
pub mod net;
pub mod procs;
pub mod refusal;

use crate::support::{Case, Run, Verdict};

/// Runs `attack` bare in a case made by `setup` (it must succeed), then
/// sandboxed in a second, identical case (it must be blocked). Returns the
/// sandboxed case and run, for checks of the host afterwards.
pub fn must_block(setup: impl Fn() -> Case, attack: impl Fn(&Case) -> Vec<String>) -> (Case, Run) {
    let bare = setup();
    bare.bare(&strs(&attack(&bare))).succeeded();
    let case = setup();
    let run = case.sandboxed(&strs(&attack(&case)));
    run.blocked();
    (case, run)
}

/// Like [`must_block`], for attacks that need privileges or kernel features
/// this machine may lack: when the bare attack is blocked too, only the
/// sandboxed result is checked, and the verdict says so.
pub fn must_block_where_possible(setup: impl Fn() -> Case, attack: impl Fn(&Case) -> Vec<String>) -> Verdict {
    let bare = setup();
    let baseline = bare.bare(&strs(&attack(&bare)));
    let case = setup();
    case.sandboxed(&strs(&attack(&case))).blocked();
    match baseline.is_blocked() {
        true => Verdict::SandboxOnly(format!("not possible bare here either ({})", baseline.verdict())),
        false => {
            baseline.succeeded();
            Verdict::Passed
        }
    }
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `vec![...]` of owned strings.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($a.to_string()),*] };
}
