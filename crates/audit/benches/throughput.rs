//! Audit log throughput, against plain SQLite inserts and raw SHA-256, in
//! one run. `cargo bench -p airlock-audit` (or `bench/audit-throughput`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use airlock_audit::event::Event;
use airlock_audit::log::{AuditLog, CheckpointEvery, verify};
use airlock_audit::merkle::{self, Frontier, Hash, MerkleError, NodeSource};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, SqliteStore};
use airlock_audit::writer::AuditWriter;
use sha2::{Digest, Sha256};

const ORIGIN: &str = "airlock.bench/audit";

fn event(i: u64) -> Event {
    Event::Command {
        argv: vec!["cargo".into(), "test".into(), format!("case-{i}")],
        cwd: "/work/project".into(),
        sandbox_digest: "9f".repeat(32),
        exit_status: 0,
        duration_ms: i,
        output_digest: "a1".repeat(32),
        output_bytes: 4096,
    }
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

struct MemNodes(std::collections::HashMap<(u32, u64), Hash>);

impl NodeSource for MemNodes {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.0.get(&(level, index)).copied().ok_or(MerkleError::MissingNode { level, index })
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::generate("bench").unwrap();
    let every = CheckpointEvery::default();
    let (durable_n, batched_n, batch) = if quick { (200, 50_000, 100) } else { (2_000, 100_000, 100) };

    // Durable, one append (one fsync) at a time.
    let store = SqliteStore::open(&dir.path().join("durable.db"), Durability::Durable).unwrap();
    let mut log = AuditLog::open(store, signer.clone(), ORIGIN, [1; 32], every).unwrap();
    let t = Instant::now();
    for i in 0..durable_n {
        log.append("b", &[event(i)]).unwrap();
    }
    let durable_single = rate(durable_n, t.elapsed());

    // Durable with group commit: appends gathered into one transaction.
    let store = SqliteStore::open(&dir.path().join("group.db"), Durability::Durable).unwrap();
    let mut log = AuditLog::open(store, signer.clone(), ORIGIN, [1; 32], every).unwrap();
    let events: Vec<Event> = (0..batch).map(event).collect();
    let t = Instant::now();
    let mut n = 0;
    while n < batched_n {
        log.append("b", &events).unwrap();
        n += batch;
    }
    let group = rate(n, t.elapsed());

    // Durable, concurrent writers each appending one event at a time: the
    // writer thread commits whatever is waiting in one transaction.
    let mut concurrent = Vec::new();
    for threads in [1u64, 4, 16, 64] {
        let store = SqliteStore::open(&dir.path().join(format!("writers-{threads}.db")), Durability::Durable).unwrap();
        let log = AuditLog::open(store, signer.clone(), ORIGIN, [1; 32], every).unwrap();
        let writer = AuditWriter::spawn(log).unwrap();
        let per_thread = (if quick { 2_000 } else { 20_000 }) / threads;
        let t = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let h = writer.handle();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        h.append(&format!("w{k}"), vec![event(i)]).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let elapsed = t.elapsed();
        writer.close().unwrap();
        concurrent.push((threads, rate(per_thread * threads, elapsed)));
    }

    // Batched durability (synchronous = NORMAL) with group commit.
    let store = SqliteStore::open(&dir.path().join("batched.db"), Durability::Batched).unwrap();
    let mut log = AuditLog::open(store, signer.clone(), ORIGIN, [1; 32], every).unwrap();
    let t = Instant::now();
    let mut n = 0;
    while n < batched_n {
        log.append("b", &events).unwrap();
        n += batch;
    }
    let batched = rate(n, t.elapsed());
    log.checkpoint().unwrap();

    // Plain SQLite: the same payloads inserted in transactions of the same size, fsynced.
    let conn = rusqlite::Connection::open(dir.path().join("plain.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (idx INTEGER PRIMARY KEY, payload BLOB)",
    )
    .unwrap();
    let payloads: Vec<Vec<u8>> = events.iter().map(|e| airlock_audit::event::canonical(e).unwrap()).collect();
    let mut conn = conn;
    let t = Instant::now();
    let mut n = 0;
    while n < batched_n {
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO t (idx, payload) VALUES (?1, ?2)").unwrap();
            for (k, p) in payloads.iter().enumerate() {
                st.execute(rusqlite::params![(n + k as u64) as i64, p]).unwrap();
            }
        }
        tx.commit().unwrap();
        n += batch;
    }
    let plain = rate(n, t.elapsed());

    // Verify everything (entries, payload MACs, checkpoint signatures, roots).
    let store = SqliteStore::open(&dir.path().join("batched.db"), Durability::Batched).unwrap();
    let t = Instant::now();
    let verified = verify(&store, &signer.verifier(), ORIGIN, Some(&[1; 32]), &[]).unwrap().unwrap();
    let verify_rate = rate(verified.entries, t.elapsed());

    // Raw SHA-256 over the same entry sizes: the ceiling for verify.
    let entry = vec![0x5au8; 160];
    let t = Instant::now();
    let mut acc = [0u8; 32];
    for _ in 0..verified.entries * 2 {
        let mut h = Sha256::new();
        h.update(&entry);
        h.update(acc);
        acc = h.finalize().into();
    }
    let sha_rate = rate(verified.entries, t.elapsed());

    // Inclusion proof at 10^6 entries (tree in memory: the proof's work is the same).
    let size: u64 = if quick { 100_000 } else { 1_000_000 };
    let mut frontier = Frontier::new();
    let mut nodes = std::collections::HashMap::new();
    for i in 0..size {
        for (l, ix, h) in frontier.append(merkle::leaf_hash(&i.to_le_bytes())) {
            nodes.insert((l, ix), h);
        }
    }
    let src = MemNodes(nodes);
    let root = frontier.root();
    let probes = 10_000u64;
    let t = Instant::now();
    for k in 0..probes {
        let idx = (k * 7919) % size;
        let proof = merkle::inclusion_proof(idx, size, &src).unwrap();
        std::hint::black_box(&proof);
    }
    let proof_us = t.elapsed().as_secs_f64() * 1e6 / probes as f64;
    let proof = merkle::inclusion_proof(123_456 % size, size, &src).unwrap();
    merkle::verify_inclusion(123_456 % size, size, &merkle::leaf_hash(&(123_456 % size).to_le_bytes()), &proof, &root)
        .unwrap();

    println!("| measure | rate | against | ratio |");
    println!("|---|---:|---|---:|");
    println!(
        "| durable append, one per transaction | {durable_single:.0}/s | plain SQLite insert, same batching: {plain:.0}/s | |"
    );
    println!(
        "| durable append, group commit of {batch} | {group:.0}/s | plain SQLite insert, same batching: {plain:.0}/s | {:.2} |",
        group / plain
    );
    for (threads, r) in &concurrent {
        println!(
            "| durable append, {threads} concurrent writer(s), one event per call | {r:.0}/s | Tessera (published): 2,900/s | {:.1} |",
            r / 2_900.0
        );
    }
    println!("| batched append (synchronous=NORMAL), group commit of {batch} | {batched:.0}/s | | |");
    println!(
        "| verify ({} entries) | {verify_rate:.0}/s | raw SHA-256 of the same count: {sha_rate:.0}/s | {:.2} |",
        verified.entries,
        verify_rate / sha_rate
    );
    println!("| inclusion proof at {size} entries | {proof_us:.2} µs | target 50 µs | |");
}
