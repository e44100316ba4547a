//! Throughput of `Scanner::scan` on ~20 MB of synthetic source code, and latency of redacting a
//! 100 KB prompt. `cargo bench -p airlock-redact --bench redact [-- --quick]`.
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_redact::{Redactor, Scanner};

/// Deterministic xorshift so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn word(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char).collect()
    }
}

const LINES: &[&str] = &[
    "fn process_request(ctx: &Context, req: Request) -> Result<Response, Error> {",
    "    let token = lexer.next_token()?;",
    "    if let Some(value) = self.cache.get(&key) { return Ok(value.clone()); }",
    "def load_config(path: str) -> dict:",
    "    password = os.environ[\"DB_PASSWORD\"]",
    "    return {k: v for k, v in items if v is not None}",
    "const handler = async (req, res) => { res.json({ ok: true, count: items.length }); };",
    "  api_key: ${{ secrets.API_KEY }}",
    "  image: registry.example.com/team/service:1.24.3",
    "import { useState, useEffect } from 'react';",
    "    // TODO: refactor the secret rotation logic once the vault client lands",
    "    \"integrity\": \"sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXGOx2LmdlGmtJz1aYzLq4IBiuNkQ==\",",
    "    assert_eq!(hash, \"da39a3ee5e6b4b0d3255bfef95601890afd80709\");",
    "        logger.info(\"processed %d records in %s\", n, elapsed)",
    "SELECT id, name, created_at FROM users WHERE org_id = $1 ORDER BY created_at DESC;",
    "",
    "}",
];

fn synthetic(size: usize, seed: u64) -> (String, usize) {
    let mut rng = Rng(seed);
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut text = String::with_capacity(size + 256);
    let mut planted = 0;
    while text.len() < size {
        if rng.next().is_multiple_of(2000) {
            let secret = match rng.next() % 4 {
                0 => format!("GITHUB_TOKEN = \"{}\"", github_token(&rng.word(alnum, 30))),
                1 => format!("aws_access_key_id = AKIA{}", rng.word(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
                2 => format!("db_password: \"{}7!\"", rng.word(alnum, 16)),
                _ => format!("url = \"postgres://app:{}@db:5432/app\"", rng.word(alnum, 16)),
            };
            text.push_str(&secret);
            planted += 1;
        } else {
            let line = rng.pick(LINES);
            text.push_str(line);
            if rng.next().is_multiple_of(3) {
                text.push_str(" // ");
                text.push_str(&rng.word(b"abcdefghijklmnopqrstuvwxyz ", 30));
            }
        }
        text.push('\n');
    }
    (text, planted)
}

/// `ghp_` + `random` + its CRC32/base62 tail, as GitHub issues them (the scanner checks it).
fn github_token(random: &str) -> String {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in random.as_bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    let mut crc = !crc;
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut tail = [b'0'; 6];
    for slot in tail.iter_mut().rev() {
        *slot = alphabet[(crc % 62) as usize];
        crc /= 62;
    }
    format!("ghp_{random}{}", String::from_utf8_lossy(&tail))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (corpus_mb, scan_reps, prompt_runs) = if quick { (4, 2, 200) } else { (20, 5, 2000) };
    let scanner = Arc::new(Scanner::builtin());

    let (corpus, planted) = synthetic(corpus_mb * 1024 * 1024, 42);
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..scan_reps {
        let start = Instant::now();
        found = black_box(scanner.scan(black_box(corpus.as_bytes()))).len();
        best = best.min(start.elapsed());
    }
    let mb = corpus.len() as f64 / (1024.0 * 1024.0);

    let (prompt, _) = synthetic(100 * 1024, 7);
    let mut times = Vec::with_capacity(prompt_runs);
    for _ in 0..prompt_runs {
        let mut redactor = Redactor::new(Arc::clone(&scanner));
        let start = Instant::now();
        black_box(redactor.redact(black_box(&prompt)));
        times.push(start.elapsed());
    }
    times.sort_unstable();

    println!("{:<34} {:>14}", "benchmark", "result");
    println!("{:<34} {:>14}", "-".repeat(34), "-".repeat(14));
    println!("{:<34} {:>11.1} MB", "corpus size", mb);
    println!("{:<34} {:>8} / {:>3}", "findings / planted", found, planted);
    println!("{:<34} {:>9.0} MB/s", "Scanner::scan throughput (best)", mb / best.as_secs_f64());
    println!("{:<34} {:>11.3} ms", "redact 100 KB prompt p50", percentile(&times, 0.50).as_secs_f64() * 1e3);
    println!("{:<34} {:>11.3} ms", "redact 100 KB prompt p99", percentile(&times, 0.99).as_secs_f64() * 1e3);
    println!("{:<34} {:>14}", "prompt runs", times.len());
}
