//! The read-only audit endpoints (`GET /v1/audit/checkpoint`,
//! `/consistency`, `/inclusion`): what an auditor's key may read, proofs
//! that verify against the signed checkpoints, and hostile queries
//! refused with 400 rather than served, panicked on or guessed at.

use super::*;
use airlock_audit::checkpoint::Checkpoint;
use airlock_audit::event::Event;
use airlock_audit::merkle;
use airlock_gateway::keys::{KeyPolicy, Role};
use base64::Engine as _;

const AUDITOR: &str = "alk_a0d17a0d17a0d17a0d17a0d17a0d17a0d17a0d17a0d17a0d17a0d17a0d17a0d1";
const DEVELOPER: &str = "alk_de7e10de7e10de7e10de7e10de7e10de7e10de7e10de7e10de7e10de7e10de7e";
const ORIGIN: &str = "airlock.test/audit-reads";

struct Served {
    _dir: tempfile::TempDir,
    url: String,
    signer: Signer,
    db: PathBuf,
}

async fn serve_log(entries: u64) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let signer = Signer::generate("airlock-test-reads").unwrap();
    let store = SqliteStore::open(&db, Durability::Durable).unwrap();
    let mut log = AuditLog::open(store, signer.clone(), ORIGIN, [5; 32], CheckpointEvery::default()).unwrap();
    for i in 0..entries {
        let event = Event::External { source: "test".into(), data: serde_json::json!({ "i": i }) };
        log.append("reads", &[event]).unwrap();
        if i == entries / 2 {
            log.checkpoint().unwrap();
        }
    }
    log.checkpoint().unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let handle = writer.handle();
    std::mem::forget(writer);
    let config = GatewayConfig::parse(
        "[[upstream]]\nname = \"u\"\napi = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodels = [\"gpt-*\"]\n",
        Path::new("reads.toml"),
        &|_| None,
    )
    .unwrap();
    let keys = [
        (airlock_gateway::keys::digest(AUDITOR), KeyPolicy::new("audit-team", Role::Auditor)),
        (airlock_gateway::keys::digest(DEVELOPER), KeyPolicy::new("dev", Role::Developer)),
    ]
    .into_iter()
    .collect();
    let reads: airlock_gateway::witnessing::ReadStore =
        Arc::new(Mutex::new(Box::new(SqliteStore::open(&db, Durability::Durable).unwrap())));
    let scanner = Arc::new(airlock_redact::Scanner::builtin());
    let gw = Gateway::new(config, Auth::Keys(keys), handle, scanner).unwrap().with_audit_reads(reads);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let listen = airlock_gateway::config::Listen::Tcp(addr);
    tokio::spawn(async move { serve(gw, &listen, std::future::pending()).await.unwrap() });
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Served { _dir: dir, url: format!("http://{addr}"), signer, db }
}

async fn get(s: &Served, key: Option<&str>, path: &str) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", s.url));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn hashes(text: &str) -> Vec<merkle::Hash> {
    let b64 = base64::engine::general_purpose::STANDARD;
    text.lines().map(|l| b64.decode(l).unwrap().try_into().unwrap()).collect()
}

#[tokio::test]
async fn an_auditor_reads_proofs_that_verify_against_the_signed_checkpoints() {
    let s = serve_log(21).await;
    let (status, note) = get(&s, Some(AUDITOR), "/v1/audit/checkpoint").await;
    assert_eq!(status, 200, "{note}");
    let latest = Checkpoint::open(&note, &[s.signer.verifier()], ORIGIN).unwrap();
    assert_eq!(latest.size, 21);
    // The earlier checkpoint, from the database, and the proof that the latest extends it.
    let store = SqliteStore::open(&s.db, Durability::Durable).unwrap();
    let (old_size, old_note) = store.checkpoints().unwrap().into_iter().next().unwrap();
    let old = Checkpoint::open(&old_note, &[s.signer.verifier()], ORIGIN).unwrap();
    let (status, proof) = get(&s, Some(AUDITOR), &format!("/v1/audit/consistency?old={old_size}&new=21")).await;
    assert_eq!(status, 200, "{proof}");
    merkle::verify_consistency(old_size, 21, &old.root, &latest.root, &hashes(&proof)).unwrap();
    // Every entry is proved included in the latest checkpoint.
    let mut leaves = Vec::new();
    store
        .scan(0, &mut |e| {
            leaves.push(e.leaf);
            true
        })
        .unwrap();
    for (i, leaf) in leaves.iter().enumerate() {
        let (status, proof) = get(&s, Some(AUDITOR), &format!("/v1/audit/inclusion?index={i}&size=21")).await;
        assert_eq!(status, 200, "{proof}");
        merkle::verify_inclusion(i as u64, 21, leaf, &hashes(&proof), &latest.root).unwrap();
    }
}

#[tokio::test]
async fn only_readers_of_the_log_get_in_and_hostile_queries_are_refused() {
    let s = serve_log(8).await;
    assert_eq!(get(&s, None, "/v1/audit/checkpoint").await.0, 401);
    assert_eq!(get(&s, Some("alk_0000"), "/v1/audit/checkpoint").await.0, 401);
    assert_eq!(get(&s, Some(DEVELOPER), "/v1/audit/checkpoint").await.0, 403);
    assert_eq!(get(&s, Some(DEVELOPER), "/v1/audit/inclusion?index=0&size=8").await.0, 403);
    for query in [
        "/v1/audit/consistency",
        "/v1/audit/consistency?old=2",
        "/v1/audit/consistency?old=02&new=8",
        "/v1/audit/consistency?old=-1&new=8",
        "/v1/audit/consistency?old=5&new=3",
        "/v1/audit/consistency?old=2&new=9",
        "/v1/audit/consistency?old=2&new=18446744073709551616",
        "/v1/audit/consistency?old=2&new=99999999999999999999",
        "/v1/audit/consistency?old=%32&new=8",
        "/v1/audit/inclusion?index=8&size=8",
        "/v1/audit/inclusion?index=0&size=0",
        "/v1/audit/inclusion?index=0&size=1e3",
        "/v1/audit/inclusion?size=8",
    ] {
        let (status, body) = get(&s, Some(AUDITOR), query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(!body.trim().is_empty(), "{query}: a refusal says why");
    }
    // Still serving after all that.
    assert_eq!(get(&s, Some(AUDITOR), "/v1/audit/consistency?old=3&new=8").await.0, 200);
}
