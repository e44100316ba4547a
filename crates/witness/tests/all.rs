//! The witness over HTTP: every answer the spec defines, durability across a
//! restart, concurrent submissions, and a rolled-back log refused.

// Helpers outside #[test] functions: clippy does not see them as test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use airlock_audit::cosignature::{CosignatureSigner, verify_cosignatures};
use airlock_audit::event::Event;
use airlock_audit::log::{AuditLog, CheckpointEvery};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, SqliteStore};
use airlock_witness::client::{SubmitError, WitnessClient};
use airlock_witness::server::{Witness, percent_encode, serve};

const ORIGIN: &str = "airlock.test/audit";

struct Running {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

async fn start(db: &Path, key: &CosignatureSigner, log_key: &Signer) -> Running {
    let witness = Witness::open(db, key.clone(), vec![(ORIGIN.to_owned(), log_key.verifier())]).expect("witness opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Arc::new(witness), async move {
        let _ = stopped.await;
    }));
    Running { url, stop: Some(stop), task }
}

fn log(path: &Path, signer: &Signer) -> AuditLog<SqliteStore> {
    let store = SqliteStore::open(path, Durability::Durable).unwrap();
    AuditLog::open(store, signer.clone(), ORIGIN, [7; 32], CheckpointEvery::default()).unwrap()
}

fn append(log: &mut AuditLog<SqliteStore>, tag: &str, n: usize) -> String {
    for i in 0..n {
        let event = Event::External { source: "test".into(), data: serde_json::json!({"tag": tag, "i": i}) };
        log.append("s", &[event]).unwrap();
    }
    log.checkpoint().unwrap()
}

fn client(url: &str, key: &CosignatureSigner) -> WitnessClient {
    WitnessClient::new("w1", url, key.verifier()).unwrap()
}

async fn post(url: &str, body: String) -> (u16, String, String) {
    let response = reqwest::Client::new().post(format!("{url}/add-checkpoint")).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let ct = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_cosigns_what_extends_its_checkpoint_and_answers_each_refusal_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = Signer::generate(ORIGIN).unwrap();
    let key = CosignatureSigner::generate("witness.test/w1").unwrap();
    let running = start(&dir.path().join("witness.db"), &key, &log_key).await;
    let w = client(&running.url, &key);
    let mut audit = log(&dir.path().join("audit.db"), &log_key);

    let note5 = append(&mut audit, "a", 5);
    let line = w.submit(0, &[], &note5).await.unwrap();
    let found = verify_cosignatures(&format!("{note5}{line}\n"), &[key.verifier()]).unwrap();
    assert_eq!(found.len(), 1);

    let note9 = append(&mut audit, "a", 4);
    // The witness holds 5: a submission from 0 is a conflict naming 5, with the spec's content type.
    let (status, ct, body) = post(
        &running.url,
        airlock_witness::request::AddCheckpoint { old: 0, proof: vec![], checkpoint: note9.clone() }.to_body(),
    )
    .await;
    assert_eq!((status, ct.as_str(), body.as_str()), (409, "text/x.tlog.size", "5\n"));
    assert!(matches!(w.submit(0, &[], &note9).await, Err(SubmitError::Conflict { size: 5, .. })));

    // A wrong proof: 422.
    let mut proof = audit.consistency(5, 9).unwrap();
    proof[0][0] ^= 1;
    let err = w.submit(5, &proof, &note9).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused { status: 422, .. }), "{err}");
    // The right one: 200.
    let proof = audit.consistency(5, 9).unwrap();
    w.submit(5, &proof, &note9).await.unwrap();
    // Old above the checkpoint's size (a smaller checkpoint than it holds): 400.
    let err = w.submit(9, &[], &note5).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused { status: 400, .. }), "{err}");
    // The same checkpoint again: cosigned again (replicas submit the same one).
    w.submit(9, &[], &note9).await.unwrap();

    // Another log's key for this origin: 403. An unknown origin: 404.
    let impostor = Signer::generate(ORIGIN).unwrap();
    let mut other = log(&dir.path().join("other.db"), &impostor);
    let forged = append(&mut other, "x", 10);
    let err = w.submit(9, &other.consistency(9, 10).unwrap(), &forged).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused { status: 403, .. }), "{err}");
    let elsewhere = Signer::generate("elsewhere.test/log").unwrap();
    let store = SqliteStore::open(&dir.path().join("elsewhere.db"), Durability::Durable).unwrap();
    let mut elsewhere_log =
        AuditLog::open(store, elsewhere.clone(), "elsewhere.test/log", [1; 32], CheckpointEvery::default()).unwrap();
    let elsewhere_note = append(&mut elsewhere_log, "e", 1);
    let err = w.submit(0, &[], &elsewhere_note).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused { status: 404, .. }), "{err}");
    // Garbage: 400.
    let (status, _, body) = post(&running.url, "old 1\nnot base64\n\n".into()).await;
    assert_eq!(status, 400, "{body}");

    // Its latest, as a verifier is handed it: the log's note with the cosignature.
    let latest = w.latest(ORIGIN).await.unwrap().unwrap();
    assert!(latest.starts_with(&note9), "{latest}");
    assert_eq!(verify_cosignatures(&latest, &[key.verifier()]).unwrap().len(), 1);
    airlock_audit::checkpoint::Checkpoint::open(&latest, &[log_key.verifier()], ORIGIN).unwrap();
    assert_eq!(w.latest("nobody.test/log").await.unwrap(), None);
    // The raw escaped path works as the client builds it.
    let raw = reqwest::get(format!("{}/checkpoint/{}", running.url, percent_encode(ORIGIN))).await.unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_remembers_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("witness.db");
    let log_key = Signer::generate(ORIGIN).unwrap();
    let key = CosignatureSigner::generate("witness.test/w1").unwrap();
    let mut audit = log(&dir.path().join("audit.db"), &log_key);
    let note = append(&mut audit, "a", 3);

    let running = start(&db, &key, &log_key).await;
    client(&running.url, &key).submit(0, &[], &note).await.unwrap();
    running.stop().await;

    let running = start(&db, &key, &log_key).await;
    let w = client(&running.url, &key);
    assert!(matches!(w.submit(0, &[], &note).await, Err(SubmitError::Conflict { size: 3, .. })));
    assert!(w.latest(ORIGIN).await.unwrap().unwrap().starts_with(&note));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_from_the_same_state_cosign_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = Signer::generate(ORIGIN).unwrap();
    let key = CosignatureSigner::generate("witness.test/w1").unwrap();
    let running = start(&dir.path().join("witness.db"), &key, &log_key).await;
    let mut audit = log(&dir.path().join("audit.db"), &log_key);
    let notes: Vec<(u64, String)> = (1..=8).map(|i| (i, append(&mut audit, "a", 1))).collect();

    let mut tasks = Vec::new();
    for (size, note) in notes.clone() {
        let w = client(&running.url, &key);
        tasks.push(tokio::spawn(async move { (size, w.submit(0, &[], &note).await) }));
    }
    let mut won = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (size, Ok(_)) => won.push(size),
            (_, Err(SubmitError::Conflict { size, .. })) => conflicts.push(size),
            (_, Err(e)) => panic!("unexpected answer: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one submission from size 0 is cosigned: {won:?}");
    assert!(conflicts.iter().all(|&s| s == won[0]), "every other one learns the winner's size: {conflicts:?}");

    // From there, every replica catches up with the largest; the witness never goes back.
    let w = client(&running.url, &key);
    let proof = audit.consistency(won[0], 8).unwrap();
    w.submit(won[0], &proof, &notes[7].1).await.unwrap();
    let err = w.submit(8, &[], &notes[2].1).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused { status: 400, .. }), "{err}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = Signer::generate(ORIGIN).unwrap();
    let key = CosignatureSigner::generate("witness.test/w1").unwrap();
    let running = start(&dir.path().join("witness.db"), &key, &log_key).await;
    let w = client(&running.url, &key);

    let db = dir.path().join("audit.db");
    let mut audit = log(&db, &log_key);
    let early = append(&mut audit, "a", 4);
    w.submit(0, &[], &early).await.unwrap();
    drop(audit);
    std::fs::copy(&db, dir.path().join("early.db")).unwrap();
    let mut audit = log(&db, &log_key);
    let later = append(&mut audit, "a", 6);
    w.submit(4, &audit.consistency(4, 10).unwrap(), &later).await.unwrap();

    // The operator restores the early copy and appends other entries, past the witness's size.
    let mut rolled = log(&dir.path().join("early.db"), &log_key);
    let forked = append(&mut rolled, "b", 9);
    let err = w.submit(0, &[], &forked).await.unwrap_err();
    let SubmitError::Conflict { size, .. } = err else { panic!("{err}") };
    assert_eq!(size, 10);
    let err = w.submit(10, &rolled.consistency(10, 13).unwrap(), &forked).await.unwrap_err();
    assert!(matches!(err, SubmitError::Refused { status: 422, .. }), "{err}");
    // The same size with another root: a fork, 409 (the witness holds 10, not another 10).
    let mut short = log(&dir.path().join("short.db"), &log_key);
    let other10 = append(&mut short, "c", 10);
    let err = w.submit(10, &[], &other10).await.unwrap_err();
    assert!(matches!(err, SubmitError::Conflict { size: 10, .. }), "{err}");
    running.stop().await;
}
