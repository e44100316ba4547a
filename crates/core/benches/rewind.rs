//! Rewind checkpoints on a big workspace: a 50,000-file tree, 10 files
//! changed between checkpoints (the goal: a checkpoint in 100 ms or
//! less). `cargo bench -p airlock-core --bench rewind` (`-- --quick` for a
//! 5,000-file tree, `-- --files N` for another size).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::time::{Duration, Instant};

use airlock_core::rewind::{CheckpointOptions, CheckpointStore};

/// `files` files of 200 to 4,000 bytes in folders of 50, three levels deep,
/// plus a `.git` and a `target` of 2,000 files each (excluded, not walked).
fn build_tree(ws: &Path, files: usize) {
    for i in 0..files {
        let dir = ws.join(format!("src/m{:02}/d{:03}", i / 5000, (i / 50) % 100));
        if i % 50 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let len = 200 + (i * 7919) % 3800;
        let line = format!("// file {i}\n");
        std::fs::write(dir.join(format!("f{i:05}.rs")), line.repeat(len / line.len() + 1)).unwrap();
    }
    for excluded in [".git/objects", "target/debug/deps"] {
        let dir = ws.join(excluded);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..2000 {
            std::fs::write(dir.join(format!("o{i}")), "x").unwrap();
        }
    }
}

fn change_ten(ws: &Path, files: usize, round: usize) {
    for k in 0..10 {
        let i = (k * 4999 + round * 13) % files;
        let path = ws.join(format!("src/m{:02}/d{:03}/f{i:05}.rs", i / 5000, (i / 50) % 100));
        std::fs::write(path, format!("// round {round}, change {k}\n")).unwrap();
    }
}

/// CPU time of this process (all threads), user and system.
fn cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, (Duration, Duration)) {
    let (wall, cpu0) = (Instant::now(), cpu());
    let out = f();
    (out, (wall.elapsed(), cpu() - cpu0))
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let files = args
        .iter()
        .position(|a| a == "--files")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 5_000 } else { 50_000 });
    let runs = if quick { 3 } else { 9 };
    let dir =
        tempfile::tempdir_in(std::env::var_os("AIRLOCK_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
            .unwrap();
    let ws = dir.path().join("ws");
    let started = Instant::now();
    build_tree(&ws, files);
    eprintln!("built {files} files in {:?} under {}", started.elapsed(), dir.path().display());

    println!("| rewind, {files} files, 10 changed | durable | wall median | wall min | wall max | CPU median |");
    println!("|---|---|---|---|---|---|");
    let mut round = 0;
    for durable in [true, false] {
        let state = dir.path().join(if durable { "state-durable" } else { "state-fast" });
        let options = CheckpointOptions { durable, ..CheckpointOptions::default() };
        let mut store = CheckpointStore::open(&state, &ws, options).unwrap();
        let (first, (first_wall, first_cpu)) = timed(|| store.checkpoint("turn 1").unwrap());
        assert_eq!(first.info.files, files);
        let (mut nothing, mut ten, mut restore) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (report, t) = timed(|| store.checkpoint("unchanged").unwrap());
            nothing.push(t);
            // Only what the last restore wrote is read again.
            assert!(report.files_read <= 10, "{}", report.files_read);

            round += 1;
            change_ten(&ws, files, round);
            let (report, t) = timed(|| store.checkpoint("ten changed").unwrap());
            ten.push(t);
            assert_eq!((report.files_read, report.info.changes.modified.len()), (10, 10));

            // Ten files changed again, then put back (a checkpoint of them
            // first, then ten writes).
            let back_to = report.info.id;
            round += 1;
            change_ten(&ws, files, round);
            let (restored, t) = timed(|| store.restore(back_to).unwrap());
            restore.push(t);
            assert_eq!(restored.written.len(), 10);
        }
        let yes = if durable { "yes" } else { "no" };
        println!("| first checkpoint (reads every file) | {yes} | {} | | | {} |", ms(first_wall), ms(first_cpu));
        let row = |name: &str, v: Vec<(Duration, Duration)>| {
            let wall: Vec<Duration> = v.iter().map(|t| t.0).collect();
            let cpu: Vec<Duration> = v.iter().map(|t| t.1).collect();
            let (min, max) = (*wall.iter().min().unwrap(), *wall.iter().max().unwrap());
            println!("| {name} | {yes} | {} | {} | {} | {} |", ms(median(wall)), ms(min), ms(max), ms(median(cpu)));
        };
        row("checkpoint, nothing changed", nothing);
        row("checkpoint, 10 files changed", ten);
        row("restore of 10 files (checkpoint first)", restore);
    }
    println!(
        "\n{runs} runs each; load average {} on {} CPUs",
        load(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
