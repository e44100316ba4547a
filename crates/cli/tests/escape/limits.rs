//! Resource limits: processes, memory, file size and output.

use crate::support::{Case, Verdict};

const MIB: u64 = 1024 * 1024;

fn limited(limits: &'static str) -> impl Fn() -> Case {
    move || {
        let case = Case::new();
        case.write_user_config(&format!("[limits]\n{limits}\n"));
        case
    }
}

pub fn a_fork_bomb_hits_the_process_limit() -> Verdict {
    let setup = limited("processes = 64");
    setup().bare(&["fork-bomb", "300"]).succeeded();
    let run = setup().sandboxed(&["fork-bomb", "300"]);
    run.blocked();
    assert!(run.stdout.contains("Resource temporarily unavailable"), "expected EAGAIN:\n{run}");
    Verdict::Passed
}

pub fn a_memory_bomb_hits_the_memory_limit() -> Verdict {
    let setup = limited("memory_mb = 256");
    setup().bare(&["alloc", "512"]).succeeded();
    let run = setup().sandboxed(&["alloc", "512"]);
    run.blocked();
    assert!(run.stdout.contains("Cannot allocate memory"), "expected ENOMEM:\n{run}");
    Verdict::Passed
}

pub fn a_big_file_hits_the_file_size_limit() -> Verdict {
    let setup = limited("file_size_mb = 8");
    let bare = setup();
    bare.bare(&["write-big", "big", "32"]).succeeded();
    assert_eq!(std::fs::metadata(bare.ws.join("big")).unwrap().len(), 32 * MIB);
    let case = setup();
    let run = case.sandboxed(&["write-big", "big", "32"]);
    run.blocked();
    assert!(run.stdout.contains("File too large"), "expected EFBIG:\n{run}");
    let size = std::fs::metadata(case.ws.join("big")).unwrap().len();
    assert!(size <= 8 * MIB, "the file grew to {size} bytes past the 8 MiB limit");
    Verdict::Passed
}

pub fn output_beyond_the_cap_is_truncated() -> Verdict {
    let bare = Case::new().bare(&["spew", "1000000"]);
    bare.succeeded();
    assert!(bare.stdout.len() > 1_000_000);
    let case = Case::new();
    let mut cmd = case.sandbox_command(&["--max-output", "1000"]);
    cmd.args(["./probe", "probe", "spew", "1000000"]);
    let run = case.run(cmd, "sandboxed --max-output 1000: spew 1 MB".into());
    run.succeeded();
    assert!(run.stdout.contains("output truncated"), "no truncation marker:\n{run}");
    assert!(run.stdout.len() < 2000, "{} bytes of output kept past a 1000-byte cap", run.stdout.len());
    Verdict::Passed
}
