//! The whole chain: a log on SQLite, its checkpoints cosigned by a real
//! `airlock witness` over HTTP (through the gateway's witnessing task), the
//! database rolled back to an early copy and appended to: the witness
//! refuses the next checkpoint, and `airlock audit verify --witness ...
//! --checkpoint <the witness's latest>` fails, naming the rollback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_audit::cosignature::CosignatureVerifier;
use airlock_audit::log::{AuditLog, CheckpointEvery};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, SqliteStore};
use airlock_audit::writer::AuditWriter;
use airlock_gateway::witnessing::{Outcome, ReadStore, WitnessSettings, Witnessing};

fn airlock() -> PathBuf {
    std::env::var_os("AIRLOCK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_airlock").into()).into()
}

struct Env {
    home: tempfile::TempDir,
}

impl Env {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(airlock());
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("AIRLOCK_DATABASE_URL");
        cmd
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "airlock {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn log_dir(&self) -> PathBuf {
        self.home.path().join("log")
    }

    fn append(&self, n: usize, tag: &str) {
        let dir = self.log_dir();
        for i in 0..n {
            let event = format!(r#"{{"kind":"external","source":"test","data":{{"tag":"{tag}","i":{i}}}}}"#);
            self.ok(&["audit", "append", "--dir", dir.to_str().unwrap()], Some(&event));
        }
    }
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the witness did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One round of the gateway's witnessing task over the log's database.
fn witness_round(db: &Path, settings: &[WitnessSettings], recorder: &airlock_audit::writer::AuditHandle) -> Outcome {
    let reads: ReadStore = Arc::new(Mutex::new(Box::new(SqliteStore::open(db, Durability::Durable).unwrap())));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut task = Witnessing::new(reads, settings, recorder.clone()).unwrap();
        task.round().await.remove(0)
    })
}

#[test]
fn a_rolled_back_log_is_refused_by_the_witness_and_caught_by_verify() {
    let env = Env { home: tempfile::tempdir().unwrap() };
    let log_dir = env.log_dir();
    let dir = log_dir.to_str().unwrap();
    let db = log_dir.join("audit.db");
    env.append(3, "a");
    let log_vkey = env.ok(&["audit", "key", "--dir", dir], None).trim().to_owned();
    let note = env.ok(&["audit", "checkpoint", "--dir", dir], None);
    let origin = note.lines().next().unwrap().to_owned();

    // The witness, a separate process on its own folder.
    let witness_dir = env.home.path().join("witness");
    let wdir = witness_dir.to_str().unwrap();
    let witness_vkey = env.ok(&["witness", "key", "--dir", wdir, "--name", "witness.test/w1"], None).trim().to_owned();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log_arg = format!("{origin}={log_vkey}");
    let _served = Served(
        env.command(&["witness", "serve", "--dir", wdir, "--listen", &listen, "--log", &log_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port);
    let settings = [WitnessSettings {
        name: "w1".into(),
        url: format!("http://{listen}"),
        key: CosignatureVerifier::from_key_string(&witness_vkey).unwrap(),
    }];
    // Refusals go on a record of their own here (the log's own is written by the CLI).
    let side = tempfile::tempdir().unwrap();
    let side_log = AuditLog::open(
        SqliteStore::open(&side.path().join("side.db"), Durability::Durable).unwrap(),
        Signer::generate("side").unwrap(),
        "side",
        [0; 32],
        CheckpointEvery::default(),
    )
    .unwrap();
    let writer = AuditWriter::spawn(side_log).unwrap();
    let recorder = writer.handle();

    assert_eq!(witness_round(&db, &settings, &recorder), Outcome::Cosigned { size: 3 });
    // An early copy of the database, taken while nothing writes it.
    let early = env.home.path().join("early.db");
    std::fs::copy(&db, &early).unwrap();
    env.append(4, "a");
    assert_eq!(witness_round(&db, &settings, &recorder), Outcome::Cosigned { size: 7 });
    let verified = env.ok(&["audit", "verify", "--dir", dir, "--witness", &witness_vkey], None);
    assert!(verified.contains("witnessed: the checkpoint of size 7 is cosigned by witness.test/w1"), "{verified}");

    // The witness's latest, as a developer would fetch it.
    let client =
        airlock_witness::client::WitnessClient::new("w1", &format!("http://{listen}"), settings[0].key.clone())
            .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let latest = runtime.block_on(client.latest(&origin)).unwrap().unwrap();
    assert!(latest.lines().nth(1) == Some("7"), "{latest}");
    let latest_file = env.home.path().join("witness-latest");
    std::fs::write(&latest_file, &latest).unwrap();

    // The operator rolls the database back and appends other entries, past the witness's size.
    std::fs::copy(&early, &db).unwrap();
    let _ = std::fs::remove_file(log_dir.join("audit-latest-checkpoint"));
    env.append(6, "b");
    let outcome = witness_round(&db, &settings, &recorder);
    let Outcome::Refused { status, message } = outcome else {
        panic!("the witness cosigned a rolled-back log: {outcome:?}")
    };
    assert_eq!(status, 422, "{message}");

    let out = env.run(
        &["audit", "verify", "--dir", dir, "--witness", &witness_vkey, "--checkpoint", latest_file.to_str().unwrap()],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("rolled back or forked") && stdout.contains("signs 7 entries") && stdout.contains("holds 9"),
        "{stdout}"
    );
    drop(recorder);
    writer.close().unwrap();
}
