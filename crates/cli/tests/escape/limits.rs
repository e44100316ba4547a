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

/// Asserts the run was blocked: the probe saw an error, or the memory
/// cgroup's OOM killer ended it (SIGKILL, reported as 128 + 9 by airlock).
fn blocked_or_oom_killed(run: &crate::support::Run) {
    let killed = run.code == Some(128 + libc::SIGKILL) || run.signal == Some(libc::SIGKILL);
    assert!(run.is_blocked() || killed, "the attack was NOT blocked:\n{run}");
}

/// Shared memory is not data: `RLIMIT_DATA` alone let 512 MiB through under
/// a 64 MiB budget. The memory cgroup (root) or `RLIMIT_AS` (a user) stops it.
pub fn shared_anonymous_memory_hits_the_memory_limit() -> Verdict {
    let setup = limited("memory_mb = 64");
    setup().bare(&["alloc-shared", "512"]).succeeded();
    blocked_or_oom_killed(&setup().sandboxed(&["alloc-shared", "512"]));
    Verdict::Passed
}

pub fn a_memfd_hits_the_memory_limit() -> Verdict {
    let setup = limited("memory_mb = 64");
    setup().bare(&["memfd", "512"]).succeeded();
    blocked_or_oom_killed(&setup().sandboxed(&["memfd", "512"]));
    Verdict::Passed
}

/// What is written into a memfd with write(2) lies in no address space:
/// eight of 64 MiB are 512 MiB under a 64 MiB budget. A cgroup counts it;
/// without one, memfd_create is not available.
pub fn memfds_filled_by_write_hit_the_memory_limit() -> Verdict {
    let setup = limited("memory_mb = 64");
    setup().bare(&["memfd-write", "8", "64"]).succeeded();
    blocked_or_oom_killed(&setup().sandboxed(&["memfd-write", "8", "64"]));
    Verdict::Passed
}

/// Detached System V segments stay in memory where no process's address
/// space counts them: eight of 64 MiB are 512 MiB under a 64 MiB budget.
pub fn sysv_shared_memory_hits_the_memory_limit() -> Verdict {
    let setup = limited("memory_mb = 64");
    setup().bare(&["sysv-shm", "8", "64"]).succeeded();
    blocked_or_oom_killed(&setup().sandboxed(&["sysv-shm", "8", "64"]));
    Verdict::Passed
}

/// The private tmpfs mounts hold files in memory that no process limit
/// counts: together they get at most half of the memory budget.
pub fn the_private_tmpfs_mounts_fit_in_the_memory_budget() -> Verdict {
    let setup = limited("memory_mb = 64");
    for dir in ["/dev/shm", "/tmp"] {
        let path = format!("{dir}/{}", crate::support::unique("airlock-fill"));
        let bare = setup().bare(&["write-big", &path, "100"]);
        let _ = std::fs::remove_file(&path);
        bare.succeeded();
        let run = setup().sandboxed(&["write-big", &path, "100"]);
        run.blocked();
        assert!(run.stdout.contains("No space left on device"), "expected ENOSPC in {dir}:\n{run}");
        assert!(!std::path::Path::new(&path).exists(), "the sandbox wrote to the host's {dir}");
    }
    Verdict::Passed
}

/// The memory limits must not break what airlock runs: node (an agent under
/// `airlock wrap`; V8 reserves about 10 GiB of address space for each
/// WebAssembly memory) and a model file mapped whole (exec's engine), under
/// the default limits.
pub fn node_and_a_mapped_model_work_by_default() -> Verdict {
    let case = Case::new();
    // A sparse 6 GiB "model": mapped whole, a byte of each MiB read.
    let model = std::fs::File::create(case.ws.join("model.gguf")).unwrap();
    model.set_len(6 << 30).unwrap();
    case.sandboxed(&["map-file", "model.gguf"]).succeeded();
    if !std::path::Path::new("/usr/bin/node").exists() {
        return Verdict::SandboxOnly("checked the mapped model; node is not installed at /usr/bin/node".into());
    }
    let script = "new WebAssembly.Memory({initial: 1}); new WebAssembly.Memory({initial: 1}); console.log('node ok')";
    let mut cmd = case.sandbox_command(&[]);
    cmd.args(["/usr/bin/node", "-e", script]);
    let run = case.run(cmd, "sandboxed: node with two WebAssembly memories".into());
    assert!(run.code == Some(0) && run.stdout.contains("node ok"), "node failed under the default limits:\n{run}");
    Verdict::Passed
}

/// How the memory budget is enforced, seen from inside: as root, a memory
/// cgroup made for this run (capped at the budget, removed afterwards); as
/// a user without a delegated cgroup, each process's address space.
pub fn memory_is_capped_for_the_tree_or_per_process() -> Verdict {
    use std::io::BufRead;
    let case = limited("memory_mb = 64")();
    let mut cmd = case.sandbox_command(&[]);
    cmd.args(["/bin/sh", "-c", "cat /proc/self/cgroup /proc/self/limits; echo; read _ || true"]);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = crate::support::HostProcess::spawn(cmd);
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    // v1: `N:memory:PATH` under /sys/fs/cgroup/memory; v2: `0::PATH` under /sys/fs/cgroup.
    let ours = |path: &str| path.rsplit('/').next().is_some_and(|n| n.starts_with("airlock-"));
    let cgroup = lines.iter().find_map(|l| {
        let v1 = l.split_once(":memory:").map(|(_, p)| ("/sys/fs/cgroup/memory", p, "memory.limit_in_bytes"));
        let v2 = l.strip_prefix("0::").map(|p| ("/sys/fs/cgroup", p, "memory.max"));
        v1.or(v2).filter(|(_, p, _)| ours(p))
    });
    let address_space = lines.iter().find(|l| l.starts_with("Max address space")).cloned().unwrap_or_default();
    // Closing stdin ends the command, and so the run, normally.
    let finish = |mut child: crate::support::HostProcess| {
        drop(child.child.stdin.take());
        assert!(child.child.wait().unwrap().success(), "the sandboxed shell failed");
    };
    let Some((root, cgroup, limit_file)) = cgroup else {
        finish(child);
        let expected = (4 * 64 * MIB).to_string();
        let fields: Vec<&str> = address_space.split_whitespace().collect();
        let ok = fields.get(3) == Some(&expected.as_str());
        assert!(ok, "no memory cgroup and no RLIMIT_AS of 4 x 64 MiB:\n{lines:#?}");
        return Verdict::SandboxOnly("no memory cgroup can be made here: checked RLIMIT_AS = 4 x memory_mb".into());
    };
    let dir = std::path::Path::new(root).join(cgroup.trim_start_matches('/'));
    let limit = std::fs::read_to_string(dir.join(limit_file)).unwrap();
    assert_eq!(limit.trim(), (64 * MIB).to_string(), "the cgroup {} is not capped at the budget", dir.display());
    assert!(address_space.contains("unlimited"), "RLIMIT_AS is set under a cgroup: {address_space}");
    finish(child);
    // Removal waits for the tree to leave: give it the time it may take.
    let start = std::time::Instant::now();
    while dir.exists() && start.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!dir.exists(), "the run's memory cgroup {} was left behind", dir.display());
    Verdict::Passed
}
