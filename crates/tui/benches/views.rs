//! How long the views take to lay out what the app redraws most: the
//! streaming answer (re-rendered on each delta), a long code block left
//! open while it streams, a command card with long output and a large diff.
//! `cargo bench -p airlock-tui --bench views` (`-- --quick` for fewer rounds).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use airlock_tui::view::card::{CardOptions, CommandExit, ToolCall, ToolCard, ToolOutcome};
use airlock_tui::view::diff::diff_lines;
use airlock_tui::view::markdown::{MarkdownStream, markdown};

/// The median of `rounds` runs of `f`.
fn median(rounds: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn answer(bytes: usize) -> String {
    let blocks = [
        "Some **bold** text with `code` and a [link](https://example.com) that goes on for a while, \
         long enough to wrap at a hundred columns.\n\n",
        "```rust\nfn main() {\n    let x = \"string\"; // comment\n    println!(\"{}\", x + 42);\n}\n```\n\n",
        "- one\n- two\n  1. nested\n  2. more\n\n| a | b |\n|---|--:|\n| x | 1 |\n\n",
    ];
    let mut text = String::new();
    while text.len() < bytes {
        text.extend(blocks);
    }
    text
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--quick") { 11 } else { 101 };
    let text = answer(4096);
    let t = median(rounds, || {
        black_box(markdown(&text, 100));
    });
    println!("markdown, 4 KiB answer, 100 columns:            {t:>10.1?} per render");

    let t = median(rounds.min(21), || {
        let mut s = MarkdownStream::new();
        for chunk in text.as_bytes().chunks(8) {
            s.push(std::str::from_utf8(chunk).unwrap());
            black_box(s.lines(100));
            black_box(s.take_finished(100));
        }
        black_box(s.finish(100));
    });
    println!("stream, 4 KiB in 8-byte deltas (512 renders):   {t:>10.1?} in all");

    let code: String = (0..1000).map(|i| format!("    let x{i} = \"{i}\"; // line {i}\n")).collect();
    let open_fence = format!("```rust\n{code}");
    let t = median(rounds, || {
        black_box(markdown(&open_fence, 100));
    });
    println!("unclosed code fence, {} KiB:                   {t:>10.1?} per render", open_fence.len() / 1024);

    let t = median(rounds.min(11), || {
        let mut s = MarkdownStream::new();
        for chunk in open_fence.as_bytes().chunks(8) {
            s.push(std::str::from_utf8(chunk).unwrap());
            black_box(s.take_finished(100));
            black_box(s.lines(100));
        }
    });
    let deltas = open_fence.len() / 8;
    println!("stream, that fence in 8-byte deltas ({deltas}):    {t:>10.1?} in all");

    let output: String = (0..10_000).map(|i| format!("   Compiling crate-{i} v0.1.0\n")).collect();
    let card = ToolCard {
        call: ToolCall::Command { command: "cargo build".into() },
        outcome: ToolOutcome::Command { exit: CommandExit::Code(0), output },
    };
    let t = median(rounds, || {
        black_box(card.lines(100, &CardOptions::default()));
    });
    println!("command card, 10,000 lines of output, folded:   {t:>10.1?}");

    let before: String = (0..5_000).map(|i| format!("line {i}\n")).collect();
    let after = before.replace("line 1000\n", "changed\n").replace("line 4000\n", "");
    let t = median(rounds, || {
        black_box(diff_lines(&before, &after, 100, Some(40)));
    });
    println!("diff of a 5,000-line file, 2 hunks:             {t:>10.1?}");
}
