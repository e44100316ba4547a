//! Readiness: `/readyz` answers 200 only while the audit log can take
//! appends, without a key, and is never recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use airlock_audit::log::{AuditLog, CheckpointEvery};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, Filter, Listed, NewEntry, SqliteStore, Store, StoreError, StoredEntry};
use airlock_audit::writer::AuditWriter;

use super::{Env, chat};

async fn readyz(env: &Env) -> (u16, String) {
    let r = reqwest::get(format!("http://{}/readyz", env.gateway)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_ready_without_a_key_and_is_not_recorded() {
    let env = Env::start().await;
    assert_eq!(readyz(&env).await, (200, "ready\n".to_string()));
    let healthz = reqwest::get(format!("http://{}/healthz", env.gateway)).await.unwrap();
    assert_eq!(healthz.status(), 200);
    // One recorded request, so the log is known to be written; the probes are not in it.
    env.post("/v1/chat/completions", chat("gpt-4o", "hello")).send().await.unwrap();
    let entries = env.audit(2).await;
    assert!(
        entries
            .iter()
            .all(|(_, payload)| !payload.to_string().contains("readyz") && !payload.to_string().contains("healthz")),
        "{entries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_when_the_log_cannot_take_appends() {
    // A full disk: the store reads, every append fails.
    let env = Env::start_with(false).await;
    let r = env.post("/v1/chat/completions", chat("gpt-4o", "hello")).send().await.unwrap();
    assert_eq!(r.status(), 503, "the request is refused: it cannot be recorded");
    let (status, why) = readyz(&env).await;
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("cannot take appends"), "{why}");
}

/// A store that stops answering when told (a database gone away).
struct Unreachable {
    inner: SqliteStore,
    down: Arc<AtomicBool>,
}

impl Unreachable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt { path: "audit.db".into(), what: "connection refused".into() });
        }
        Ok(())
    }
}

impl Store for Unreachable {
    fn size(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.size()
    }
    fn append(&mut self, first: u64, entries: &[NewEntry], nodes: &[(u32, u64, [u8; 32])]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append(first, entries, nodes)
    }
    fn node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        self.check()?;
        self.inner.node(level, index)
    }
    fn scan(&self, from: u64, visit: &mut dyn FnMut(StoredEntry<'_>) -> bool) -> Result<(), StoreError> {
        self.check()?;
        self.inner.scan(from, visit)
    }
    fn list(&self, filter: &Filter, visit: &mut dyn FnMut(Listed<'_>) -> bool) -> Result<(), StoreError> {
        self.check()?;
        self.inner.list(filter, visit)
    }
    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.add_checkpoint(size, note)
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.check()?;
        self.inner.checkpoints()
    }
    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_payloads(before_ms)
    }
}

#[test]
fn the_writer_is_not_ready_while_its_store_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let store = Unreachable {
        inner: SqliteStore::open(&dir.path().join("audit.db"), Durability::Durable).unwrap(),
        down: Arc::clone(&down),
    };
    let signer = Signer::generate("ops-test").unwrap();
    let log = AuditLog::open(store, signer, "airlock.test/ops", [3; 32], CheckpointEvery::default()).unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let handle = writer.handle();
    assert_eq!(handle.ready().unwrap(), 0);
    down.store(true, Ordering::SeqCst);
    let err = handle.ready().unwrap_err().to_string();
    assert!(err.contains("connection refused"), "{err}");
    down.store(false, Ordering::SeqCst);
    assert!(handle.ready().is_ok(), "ready again once the store answers");
    // A failed append makes it unready for a while, however the store reads.
    down.store(true, Ordering::SeqCst);
    let event = airlock_audit::event::Event::BlockedEgress { destination: "x".into(), reason: "y".into(), bytes: 0 };
    assert!(handle.append("s", vec![event]).is_err());
    down.store(false, Ordering::SeqCst);
    let err = handle.ready().unwrap_err().to_string();
    assert!(err.contains("last append failed"), "{err}");
    drop(handle);
    drop(writer);
}
