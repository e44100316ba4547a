//! The tamper suite: every kind of tampering is detected and located, and a
//! writer killed mid-burst loses nothing it acknowledged. Its own `main` (no
//! libtest threads) so that the crash test can run this binary as the writer.

// A test binary without libtest: clippy does not see it as test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_audit::event::Event;
use airlock_audit::log::{AuditLog, CheckpointEvery, Tamper, Verified, verify};
use airlock_audit::note::{Signer, Verifier};
use airlock_audit::store::{Durability, SqliteStore, StoreError};
use airlock_audit::writer::AuditWriter;
use rusqlite::{Connection, params};

const ORIGIN: &str = "airlock.test/audit";
const MAC_KEY: [u8; 32] = [7; 32];

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    signer: Signer,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        Fixture { _dir: dir, db, signer: Signer::generate("airlock-test").unwrap() }
    }

    fn log(&self, every: u64) -> AuditLog<SqliteStore> {
        let store = SqliteStore::open(&self.db, Durability::Durable).unwrap();
        let every = CheckpointEvery { entries: every, interval: Duration::from_secs(3600) };
        AuditLog::open(store, self.signer.clone(), ORIGIN, MAC_KEY, every).unwrap()
    }

    /// `n` events, a checkpoint every 10.
    fn filled(n: u64) -> Fixture {
        let fx = Fixture::new();
        let mut log = fx.log(10);
        for i in 0..n {
            log.append("s1", &[event(i)]).unwrap();
        }
        fx
    }

    fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    fn verify(&self, retained: &[String]) -> Result<Verified, Tamper> {
        let store = SqliteStore::open(&self.db, Durability::Durable).unwrap();
        verify(&store, &self.verifier(), ORIGIN, Some(&MAC_KEY), retained).unwrap()
    }

    fn sql(&self) -> Connection {
        Connection::open(&self.db).unwrap()
    }

    fn latest_checkpoint(&self) -> String {
        self.sql().query_row("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| r.get(0)).unwrap()
    }
}

fn event(i: u64) -> Event {
    Event::Command {
        argv: vec!["cargo".into(), "test".into(), format!("case-{i}")],
        cwd: "/w".into(),
        sandbox_digest: "00".into(),
        exit_status: 0,
        duration_ms: i,
        output_digest: "11".into(),
        output_bytes: i * 3,
    }
}

fn expect(result: Result<Verified, Tamper>, want: Tamper) {
    match result {
        Ok(v) => panic!("tampering not detected (verified {v:?}), expected: {want}"),
        Err(got) => assert_eq!(got, want, "detected, but located as: {got}"),
    }
}

fn an_untouched_log_verifies() {
    let fx = Fixture::filled(25);
    let v = fx.verify(&[]).unwrap();
    assert_eq!(v, Verified { entries: 25, checkpoints: 2, payloads: 25, unsigned_tail: 5 });
}

fn an_edited_payload_is_found() {
    let fx = Fixture::filled(25);
    fx.sql()
        .execute(
            "UPDATE payloads SET payload = CAST('{\"kind\":\"session_end\",\"reason\":\"x\"}' AS BLOB) WHERE idx = 13",
            [],
        )
        .unwrap();
    expect(fx.verify(&[]), Tamper::PayloadEdited { index: 13 });
}

fn an_edited_entry_is_found() {
    let fx = Fixture::filled(25);
    let entry: Vec<u8> = fx.sql().query_row("SELECT entry FROM entries WHERE idx = 7", [], |r| r.get(0)).unwrap();
    let edited = String::from_utf8(entry).unwrap().replace("\"session\":\"s1\"", "\"session\":\"s2\"");
    fx.sql().execute("UPDATE entries SET entry = ?1 WHERE idx = 7", params![edited.as_bytes()]).unwrap();
    expect(fx.verify(&[]), Tamper::EntryEdited { index: 7 });
}

fn an_edited_entry_with_a_recomputed_leaf_breaks_the_signed_root() {
    let fx = Fixture::filled(25);
    let entry: Vec<u8> = fx.sql().query_row("SELECT entry FROM entries WHERE idx = 14", [], |r| r.get(0)).unwrap();
    let edited = String::from_utf8(entry).unwrap().replace("\"session\":\"s1\"", "\"session\":\"s2\"");
    let leaf = airlock_audit::merkle::leaf_hash(edited.as_bytes());
    fx.sql()
        .execute("UPDATE entries SET entry = ?1, leaf = ?2 WHERE idx = 14", params![edited.as_bytes(), &leaf[..]])
        .unwrap();
    expect(fx.verify(&[]), Tamper::RootMismatch { size: 20, from: 10 });
}

fn a_deleted_entry_is_found() {
    let fx = Fixture::filled(25);
    fx.sql().execute("DELETE FROM entries WHERE idx = 12", []).unwrap();
    expect(fx.verify(&[]), Tamper::Missing { index: 12, found: 13 });
}

fn truncation_below_a_checkpoint_is_found() {
    let fx = Fixture::filled(25);
    fx.sql().execute("DELETE FROM entries WHERE idx >= 15", []).unwrap();
    expect(fx.verify(&[]), Tamper::Truncated { size: 20, held: 15 });
}

fn swapped_entries_are_found() {
    let fx = Fixture::filled(25);
    let sql = fx.sql();
    let row = |i: i64| -> (Vec<u8>, Vec<u8>) {
        sql.query_row("SELECT entry, leaf FROM entries WHERE idx = ?1", [i], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    let (a, b) = (row(3), row(4));
    sql.execute("UPDATE entries SET entry = ?1, leaf = ?2 WHERE idx = 3", params![b.0, b.1]).unwrap();
    sql.execute("UPDATE entries SET entry = ?1, leaf = ?2 WHERE idx = 4", params![a.0, a.1]).unwrap();
    expect(fx.verify(&[]), Tamper::BadEntry { index: 3, what: "it says it is entry 4".into() });
}

fn a_forged_log_is_caught_by_the_key_and_by_a_retained_checkpoint() {
    let real = Fixture::filled(25);
    let retained = real.latest_checkpoint();
    // A self-consistent forgery: another log, signed by another key, copied over.
    let forged = Fixture::new();
    {
        let mut log = forged.log(10);
        for i in 0..25 {
            log.append("s1", &[event(i + 1000)]).unwrap();
        }
    }
    std::fs::copy(&forged.db, &real.db).unwrap();
    let _ = std::fs::remove_file(real.db.with_extension("db-wal"));
    match real.verify(&[]) {
        Err(Tamper::BadCheckpoint { size: 10, what }) => assert!(what.contains("airlock-test") || !what.is_empty()),
        other => panic!("the forgery was not caught by the key: {other:?}"),
    }
    // Even a forger holding the key is caught by a checkpoint kept elsewhere.
    let forged_with_key =
        Fixture { _dir: tempfile::tempdir().unwrap(), db: real.db.clone(), signer: real.signer.clone() };
    std::fs::remove_file(&real.db).unwrap();
    {
        let mut log = forged_with_key.log(10);
        for i in 0..25 {
            log.append("s1", &[event(i + 2000)]).unwrap();
        }
    }
    expect(real.verify(&[retained]), Tamper::RootMismatch { size: 20, from: 10 });
}

fn a_checkpoint_signed_by_another_key_is_found() {
    let fx = Fixture::filled(25);
    let other = Signer::generate("mallory").unwrap();
    let cp =
        airlock_audit::checkpoint::Checkpoint { origin: ORIGIN.into(), size: 20, root: [9; 32], extensions: vec![] };
    let note = cp.sign(&other).unwrap();
    fx.sql().execute("UPDATE checkpoints SET note = ?1 WHERE size = 20", params![note]).unwrap();
    match fx.verify(&[]) {
        Err(Tamper::BadCheckpoint { size: 20, .. }) => {}
        other => panic!("expected checkpoint 20 to be rejected: {other:?}"),
    }
}

fn a_checkpoint_whose_root_does_not_match_is_found() {
    let fx = Fixture::filled(25);
    let cp =
        airlock_audit::checkpoint::Checkpoint { origin: ORIGIN.into(), size: 20, root: [9; 32], extensions: vec![] };
    let note = cp.sign(&fx.signer).unwrap();
    fx.sql().execute("UPDATE checkpoints SET note = ?1 WHERE size = 20", params![note]).unwrap();
    expect(fx.verify(&[]), Tamper::RootMismatch { size: 20, from: 10 });
}

fn a_rollback_to_an_older_copy_is_found() {
    let fx = Fixture::filled(15);
    let old = fx.db.with_extension("old");
    {
        // A consistent copy of the database as it was.
        let sql = fx.sql();
        sql.execute("VACUUM INTO ?1", params![old.to_string_lossy()]).unwrap();
    }
    {
        let mut log = fx.log(10);
        for i in 15..35 {
            log.append("s1", &[event(i)]).unwrap();
        }
    }
    let retained = fx.latest_checkpoint();
    std::fs::remove_file(&fx.db).unwrap();
    let _ = std::fs::remove_file(fx.db.with_extension("db-wal"));
    let _ = std::fs::remove_file(fx.db.with_extension("db-shm"));
    std::fs::rename(&old, &fx.db).unwrap();
    // Alone, the old copy is self-consistent: only the retained checkpoint reveals it.
    fx.verify(&[]).unwrap();
    expect(fx.verify(&[retained]), Tamper::Truncated { size: 30, held: 15 });
}

fn a_corrupt_database_page_is_reported() {
    let fx = Fixture::filled(300);
    {
        // Fold the WAL into the main file, then damage a page in the middle.
        fx.sql().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let mut bytes = std::fs::read(&fx.db).unwrap();
    assert!(bytes.len() > 8 * 4096, "database too small to damage a middle page");
    let page = 4096 * 4;
    for b in &mut bytes[page..page + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&fx.db, bytes).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        let store = SqliteStore::open(&fx.db, Durability::Durable)?;
        verify(&store, &fx.verifier(), ORIGIN, Some(&MAC_KEY), &[])
    });
    match outcome {
        Ok(Ok(Ok(v))) => panic!("a damaged page went unnoticed: {v:?}"),
        Ok(Ok(Err(tamper))) => println!("    detected as: {tamper}"),
        Ok(Err(e)) => {
            let msg = e.to_string();
            assert!(msg.contains(&fx.db.display().to_string()), "the error does not name the database: {msg}");
            println!("    detected as: {msg}");
        }
        Err(_) => panic!("verify panicked on a damaged database"),
    }
}

fn pruned_payloads_keep_every_proof() {
    let fx = Fixture::filled(25);
    let mut store = SqliteStore::open(&fx.db, Durability::Durable).unwrap();
    use airlock_audit::store::Store;
    let pruned = store.prune_payloads(i64::MAX).unwrap();
    assert_eq!(pruned, 25);
    let v = fx.verify(&[]).unwrap();
    assert_eq!((v.entries, v.payloads), (25, 0));
    let log = fx.log(10);
    for i in 0..20 {
        let proof = log.prove(i, 20).unwrap();
        let entry: Vec<u8> =
            fx.sql().query_row("SELECT entry FROM entries WHERE idx = ?1", [i as i64], |r| r.get(0)).unwrap();
        let root =
            airlock_audit::checkpoint::Checkpoint::open(&fx.latest_checkpoint(), &[fx.verifier()], ORIGIN).unwrap();
        assert_eq!(root.size, 20);
        airlock_audit::merkle::verify_inclusion(i, 20, &airlock_audit::merkle::leaf_hash(&entry), &proof, &root.root)
            .unwrap();
    }
}

/// Runs this binary as a writer that appends bursts and prints each
/// acknowledged index; kills it with SIGKILL at random moments, many times.
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let fx = Fixture::new();
    std::fs::write(fx.db.with_extension("key"), fx.signer.to_key_string()).unwrap();
    let mut acked_total = 0u64;
    for round in 0..12u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("writer")
            .arg(&fx.db)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // A reader thread would make this process multi-threaded, which is
        // fine here (no sandbox is started): collect acknowledgements.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(40 + (round * 37) % 150));
        child.kill().unwrap();
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let last: Option<u64> = rx.try_iter().filter_map(|l| l.parse().ok()).last();
        let store = SqliteStore::open(&fx.db, Durability::Durable).unwrap();
        use airlock_audit::store::Store;
        let size = store.size().unwrap();
        if let Some(last) = last {
            assert!(size > last, "round {round}: entry {last} was acknowledged but the log holds {size}");
            acked_total = acked_total.max(last + 1);
        }
        let v = verify(&store, &fx.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap();
        assert!(v.is_ok(), "round {round}: the log does not verify after a kill: {v:?}");
    }
    assert!(acked_total > 0, "the writer never acknowledged anything");
    println!("    {acked_total} entries acknowledged across 12 kills");
}

fn writer(db: &Path) -> ! {
    let key = std::fs::read_to_string(db.with_extension("key")).unwrap();
    let signer = Signer::from_key_string(key.trim()).unwrap();
    let store = SqliteStore::open(db, Durability::Durable).unwrap();
    let every = CheckpointEvery { entries: 7, interval: Duration::from_millis(20) };
    let mut log = AuditLog::open(store, signer, ORIGIN, MAC_KEY, every).unwrap();
    let mut out = std::io::stdout().lock();
    let mut i = 0u64;
    loop {
        let burst: Vec<Event> = (0..5).map(|k| event(i + k)).collect();
        let first = log.append("crash", &burst).unwrap();
        writeln!(out, "{}", first + burst.len() as u64 - 1).unwrap();
        out.flush().unwrap();
        i += 5;
    }
}

/// A store that can be made to fail, to show a failed group commit fails
/// every caller in it and records none of them.
struct FlakyStore {
    inner: SqliteStore,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl airlock_audit::store::Store for FlakyStore {
    fn size(&self) -> Result<u64, StoreError> {
        self.inner.size()
    }
    fn append(
        &mut self,
        first: u64,
        entries: &[airlock_audit::store::NewEntry],
        nodes: &[(u32, u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Corrupt { path: "flaky".into(), what: "disk full".into() });
        }
        self.inner.append(first, entries, nodes)
    }
    fn node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        self.inner.node(level, index)
    }
    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(airlock_audit::store::StoredEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        self.inner.scan(from, visit)
    }
    fn list(
        &self,
        filter: &airlock_audit::store::Filter,
        visit: &mut dyn FnMut(airlock_audit::store::Listed<'_>) -> bool,
    ) -> Result<(), StoreError> {
        self.inner.list(filter, visit)
    }
    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.inner.add_checkpoint(size, note)
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.checkpoints()
    }
    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        self.inner.prune_payloads(before_ms)
    }
}

fn concurrent_appends_are_group_committed_and_all_recorded() {
    let fx = Fixture::new();
    let writer = AuditWriter::spawn(fx.log(256)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = writer.handle();
            std::thread::spawn(move || {
                (0..50).map(|i| (h.append(&format!("t{t}"), vec![event(i)]).unwrap(), t)).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(u64, i32)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    acked.sort();
    assert_eq!(acked.iter().map(|a| a.0).collect::<Vec<_>>(), (0..400).collect::<Vec<_>>());
    let log = writer.close().unwrap();
    // Each acknowledged index holds that caller's entry.
    let sql = fx.sql();
    for (index, t) in &acked {
        let session: String =
            sql.query_row("SELECT session FROM entries WHERE idx = ?1", [*index as i64], |r| r.get(0)).unwrap();
        assert_eq!(session, format!("t{t}"), "entry {index}");
    }
    // Closing signed the tail.
    assert_eq!(log.unsigned(), 0);
    assert_eq!(fx.verify(&[]).unwrap(), Verified { entries: 400, checkpoints: 2, payloads: 400, unsigned_tail: 0 });
}

fn a_failed_group_commit_fails_every_caller_and_records_none() {
    let fx = Fixture::new();
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = FlakyStore { inner: SqliteStore::open(&fx.db, Durability::Durable).unwrap(), fail: fail.clone() };
    let every = CheckpointEvery { entries: 1000, interval: Duration::from_secs(3600) };
    let log = AuditLog::open(store, fx.signer.clone(), ORIGIN, MAC_KEY, every).unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let h = writer.handle();
    assert_eq!(h.append("s", vec![event(0)]).unwrap(), 0);
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let errors: Vec<String> = (0..4)
        .map(|_| {
            let h = writer.handle();
            std::thread::spawn(move || h.append("s", vec![event(1), event(2)]))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().unwrap_err().to_string())
        .collect();
    for e in &errors {
        assert!(e.contains("disk full"), "the error names the cause: {e}");
    }
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    // The failed groups left no trace: the next append is entry 1.
    assert_eq!(h.append("s", vec![event(3)]).unwrap(), 1);
    drop(h);
    writer.close().unwrap();
    assert_eq!(fx.verify(&[]).unwrap().entries, 2);
}

fn a_quiet_log_is_signed_within_the_interval() {
    let fx = Fixture::new();
    let store = SqliteStore::open(&fx.db, Durability::Durable).unwrap();
    let every = CheckpointEvery { entries: 1000, interval: Duration::from_millis(50) };
    let writer = AuditWriter::spawn(AuditLog::open(store, fx.signer.clone(), ORIGIN, MAC_KEY, every).unwrap()).unwrap();
    writer.handle().append("s", vec![event(0), event(1)]).unwrap();
    let signed = |fx: &Fixture| -> i64 {
        fx.sql().query_row("SELECT COALESCE(MAX(size), 0) FROM checkpoints", [], |r| r.get(0)).unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while signed(&fx) < 2 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint of the tail after 5 s without appends");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(writer);
}

fn a_session_end_is_signed_at_once() {
    let fx = Fixture::new();
    let mut log = fx.log(1000);
    log.append("s", &[event(0)]).unwrap();
    assert_eq!(log.unsigned(), 1);
    log.append("s", &[Event::SessionEnd { reason: "done".into() }]).unwrap();
    assert_eq!(log.unsigned(), 0);
    assert_eq!(fx.verify(&[]).unwrap().unsigned_tail, 0);
}

/// Runs the independent Python verifier on an export; None when it cannot run here.
fn python_verify(out: &Path, key: &str) -> Option<(bool, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/audit-verify-export");
    let output = std::process::Command::new("python3").arg(&script).arg(out).arg(key).output().ok()?;
    if output.status.code() == Some(2) {
        let why = String::from_utf8_lossy(&output.stderr);
        assert!(why.contains("cryptography"), "the verifier refused its arguments: {why}");
        // CI installs `cryptography`; elsewhere the check is skipped, loudly.
        assert!(std::env::var_os("CI").is_none(), "CI must have Python's cryptography: {why}");
        println!("    skipped: {why}");
        return None;
    }
    Some((output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned()))
}

fn an_export_verifies_with_an_independent_tlog_tiles_client() {
    let fx = Fixture::new();
    // Enough entries for three tile levels (256 * 256 = 65,536), with partial tiles on each.
    let store = SqliteStore::open(&fx.db, Durability::Batched).unwrap();
    let every = CheckpointEvery { entries: 20_000, interval: Duration::from_secs(3600) };
    let mut log = AuditLog::open(store, fx.signer.clone(), ORIGIN, MAC_KEY, every).unwrap();
    let events: Vec<Event> = (0..1000).map(event).collect();
    for _ in 0..66 {
        log.append("s", &events).unwrap();
    }
    log.append("s", &events[..123]).unwrap();
    log.checkpoint().unwrap();
    log.append("s", &events[..5]).unwrap(); // unsigned: not exported
    let out = fx._dir.path().join("export");
    let exported = airlock_audit::export::export(log.store(), &out).unwrap();
    assert_eq!(exported.size, 66_123);
    assert_eq!(exported.unsigned_tail, 5);
    // Level 0: 258 full + 1 partial; level 1: 1 full + 1 partial; level 2: 1 partial.
    assert_eq!(exported.tiles, 262);
    assert!(out.join("tile/0/258.p/75").is_file());
    assert!(out.join("tile/1/001.p/2").is_file());
    assert!(out.join("tile/2/000.p/1").is_file());
    let key = fx.verifier().to_key_string();
    let Some((ok, said)) = python_verify(&out, &key) else { return };
    assert!(ok, "the independent verifier rejected the export: {said}");
    assert!(said.starts_with("ok: 66123 entries"), "{said}");

    // The same client must catch a changed entry, or it proves nothing.
    let bundle = out.join(airlock_audit::export::tile_path(None, 100, 256));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(13).position(|w| w == b"\"session\":\"s\"").unwrap();
    bytes[at + 11] = b't';
    std::fs::write(&bundle, bytes).unwrap();
    let (ok, said) = python_verify(&out, &key).unwrap();
    assert!(!ok && said.contains("entry 25600 does not hash to its leaf"), "{said}");
}

fn an_export_of_an_edited_log_fails_independent_verification() {
    let fx = Fixture::filled(300);
    {
        let mut log = fx.log(10);
        log.checkpoint().unwrap();
    }
    // Edit entry 299 and recompute its stored leaf, as a careful forger would.
    let sql = fx.sql();
    let entry: Vec<u8> = sql.query_row("SELECT entry FROM entries WHERE idx = 299", [], |r| r.get(0)).unwrap();
    let forged = String::from_utf8(entry).unwrap().replace("\"s1\"", "\"s2\"").into_bytes();
    let leaf = airlock_audit::merkle::leaf_hash(&forged);
    sql.execute("UPDATE entries SET entry = ?1, leaf = ?2 WHERE idx = 299", params![forged, &leaf[..]]).unwrap();
    let out = fx._dir.path().join("export");
    let store = SqliteStore::open(&fx.db, Durability::Durable).unwrap();
    airlock_audit::export::export(&store, &out).unwrap();
    let Some((ok, said)) = python_verify(&out, &fx.verifier().to_key_string()) else { return };
    assert!(!ok && said.contains("do not produce the root the checkpoint signs at size 300"), "{said}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("writer") {
        writer(Path::new(&args[1]));
    }
    let cases: &[(&str, fn())] = &[
        ("an_untouched_log_verifies", an_untouched_log_verifies),
        ("an_edited_payload_is_found", an_edited_payload_is_found),
        ("an_edited_entry_is_found", an_edited_entry_is_found),
        (
            "an_edited_entry_with_a_recomputed_leaf_breaks_the_signed_root",
            an_edited_entry_with_a_recomputed_leaf_breaks_the_signed_root,
        ),
        ("a_deleted_entry_is_found", a_deleted_entry_is_found),
        ("truncation_below_a_checkpoint_is_found", truncation_below_a_checkpoint_is_found),
        ("swapped_entries_are_found", swapped_entries_are_found),
        (
            "a_forged_log_is_caught_by_the_key_and_by_a_retained_checkpoint",
            a_forged_log_is_caught_by_the_key_and_by_a_retained_checkpoint,
        ),
        ("a_checkpoint_signed_by_another_key_is_found", a_checkpoint_signed_by_another_key_is_found),
        ("a_checkpoint_whose_root_does_not_match_is_found", a_checkpoint_whose_root_does_not_match_is_found),
        ("a_rollback_to_an_older_copy_is_found", a_rollback_to_an_older_copy_is_found),
        ("a_corrupt_database_page_is_reported", a_corrupt_database_page_is_reported),
        ("pruned_payloads_keep_every_proof", pruned_payloads_keep_every_proof),
        ("a_killed_writer_loses_nothing_it_acknowledged", a_killed_writer_loses_nothing_it_acknowledged),
        (
            "concurrent_appends_are_group_committed_and_all_recorded",
            concurrent_appends_are_group_committed_and_all_recorded,
        ),
        (
            "a_failed_group_commit_fails_every_caller_and_records_none",
            a_failed_group_commit_fails_every_caller_and_records_none,
        ),
        ("a_quiet_log_is_signed_within_the_interval", a_quiet_log_is_signed_within_the_interval),
        ("a_session_end_is_signed_at_once", a_session_end_is_signed_at_once),
        (
            "an_export_verifies_with_an_independent_tlog_tiles_client",
            an_export_verifies_with_an_independent_tlog_tiles_client,
        ),
        (
            "an_export_of_an_edited_log_fails_independent_verification",
            an_export_of_an_edited_log_fails_independent_verification,
        ),
    ];
    airlock_test_support::run_cases(&args, cases, "")
}
