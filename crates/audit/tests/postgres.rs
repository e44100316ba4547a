//! The log on a real PostgreSQL (a private cluster per test, see
//! `airlock_test_support::postgres`): appends, proofs and verification
//! through `AuditLog`; several writers sharing one database, as a team
//! gateway's replicas do; a connection killed mid-transaction; migrations.
//! Skipped (with a printed reason) where PostgreSQL is not installed,
//! failed under CI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use airlock_audit::checkpoint::Checkpoint;
use airlock_audit::event::Event;
use airlock_audit::log::{AuditError, AuditLog, CheckpointEvery, verify};
use airlock_audit::merkle;
use airlock_audit::note::Signer;
use airlock_audit::postgres::{PgStore, schema_version};
use airlock_audit::store::{Filter, NewEntry, Store, StoreError};
use airlock_test_support::postgres::Cluster;

const ORIGIN: &str = "airlock.test/audit";
const MAC_KEY: [u8; 32] = [7; 32];

fn event(replica: u64, i: u64) -> Event {
    Event::Command {
        argv: vec!["cargo".into(), "test".into(), format!("replica-{replica}-case-{i}")],
        cwd: "/w".into(),
        sandbox_digest: "00".into(),
        exit_status: 0,
        duration_ms: i,
        output_digest: "11".into(),
        output_bytes: replica,
    }
}

fn open(url: &str, signer: &Signer, every: u64) -> AuditLog<PgStore> {
    let store = PgStore::connect(url).unwrap();
    let every = CheckpointEvery { entries: every, interval: Duration::from_secs(3600) };
    AuditLog::open(store, signer.clone(), ORIGIN, MAC_KEY, every).unwrap()
}

/// Every entry's argv case name, from the payloads, in log order.
fn cases(store: &PgStore) -> Vec<String> {
    let mut names = Vec::new();
    store
        .scan(0, &mut |e| {
            let v: serde_json::Value = serde_json::from_slice(e.payload.unwrap()).unwrap();
            names.push(v["argv"][2].as_str().unwrap().to_string());
            true
        })
        .unwrap();
    names
}

#[test]
fn a_log_on_postgres_appends_proves_and_verifies() {
    let Some(cluster) = Cluster::start() else { return };
    let url = cluster.url();
    let signer = Signer::generate("airlock-test").unwrap();
    let mut log = open(&url, &signer, 10);
    let mut firsts = Vec::new();
    for i in 0..25 {
        let events: Vec<Event> = (0..(i % 4 + 1)).map(|j| event(0, i * 10 + j)).collect();
        firsts.push(log.append("s1", &events).unwrap());
    }
    log.append("s2", &[event(9, 0)]).unwrap();
    let note = log.checkpoint().unwrap();
    let size = log.size();
    assert_eq!(size, (0..25).map(|i| i % 4 + 1).sum::<u64>() + 1);
    assert_eq!(firsts[0], 0);
    assert_eq!(firsts[1], 1);

    // A second connection sees it all, and the tree reopens from stored nodes.
    let reader = PgStore::connect(&url).unwrap();
    assert_eq!(reader.size().unwrap(), size);
    let verified = verify(&reader, &signer.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap().unwrap();
    assert_eq!(verified.entries, size);
    assert_eq!(verified.payloads, size);
    assert!(verified.checkpoints >= 6, "{verified:?}");
    let reopened = AuditLog::open(reader.clone(), signer.clone(), ORIGIN, MAC_KEY, CheckpointEvery::default()).unwrap();
    assert_eq!(reopened.size(), size);

    // Every entry's inclusion in the signed root, and consistency with earlier checkpoints.
    let cp = Checkpoint::open(&note, &[signer.verifier()], ORIGIN).unwrap();
    let mut leaves = Vec::new();
    reader
        .scan(0, &mut |e| {
            leaves.push(e.leaf);
            true
        })
        .unwrap();
    for (i, leaf) in leaves.iter().enumerate() {
        let proof = reopened.prove(i as u64, size).unwrap();
        merkle::verify_inclusion(i as u64, size, leaf, &proof, &cp.root).unwrap();
    }
    for (old_size, old_note) in reader.checkpoints().unwrap() {
        let old = Checkpoint::open(&old_note, &[signer.verifier()], ORIGIN).unwrap();
        let proof = reopened.consistency(old_size, size).unwrap();
        merkle::verify_consistency(old_size, size, &old.root, &cp.root, &proof).unwrap();
    }

    // Listing by session, and only the last few.
    let mut listed = Vec::new();
    let filter = Filter { session: Some("s2".into()), ..Filter::default() };
    reader
        .list(&filter, &mut |l| {
            listed.push((l.index, l.session.to_string(), l.kind.to_string()));
            true
        })
        .unwrap();
    assert_eq!(listed, vec![(size - 1, "s2".to_string(), "command".to_string())]);
    let mut last = Vec::new();
    reader
        .list(&Filter { last: Some(3), ..Filter::default() }, &mut |l| {
            last.push(l.index);
            true
        })
        .unwrap();
    assert_eq!(last, vec![size - 3, size - 2, size - 1]);
    // A visitor that stops early stops the stream.
    let mut seen = 0;
    reader
        .scan(0, &mut |_| {
            seen += 1;
            seen < 5
        })
        .unwrap();
    assert_eq!(seen, 5);

    // Checkpoints replace by size; cosignatures by witness and size, listed by name.
    let mut store = PgStore::connect(&url).unwrap();
    store.add_checkpoint(size, &note).unwrap();
    assert_eq!(store.latest_checkpoint().unwrap(), Some((size, note.clone())));
    store.add_cosignature(size, "witness-b", "— witness-b AAAA").unwrap();
    store.add_cosignature(size, "witness-a", "— witness-a BBBB").unwrap();
    store.add_cosignature(size, "witness-b", "— witness-b CCCC").unwrap();
    assert_eq!(
        store.cosignatures(size).unwrap(),
        vec![("witness-a".into(), "— witness-a BBBB".into()), ("witness-b".into(), "— witness-b CCCC".into())]
    );
    assert!(store.cosignatures(size - 1).unwrap().is_empty());

    // A signed prune, then verify still passes and knows the watermark.
    let mut log = reopened;
    let pruned = log.prune(i64::MAX).unwrap();
    assert_eq!(pruned.below, size);
    assert_eq!(pruned.payloads, size);
    let verified = verify(&reader, &signer.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap().unwrap();
    assert_eq!(verified.pruned_below, size);
}

#[test]
fn an_append_behind_the_log_is_refused_and_writes_nothing() {
    let Some(cluster) = Cluster::start() else { return };
    let signer = Signer::generate("airlock-test").unwrap();
    let mut log = open(&cluster.url(), &signer, 100);
    log.append("s", &[event(0, 0), event(0, 1)]).unwrap();
    let mut store = PgStore::connect(&cluster.url()).unwrap();
    let reader = store.clone();
    let stale = NewEntry {
        entry: b"{}".to_vec(),
        leaf: [1; 32],
        payload: b"x".to_vec(),
        time_ms: 0,
        session: "s".into(),
        kind: "command".into(),
    };
    match store.append(1, std::slice::from_ref(&stale), &[]) {
        Err(StoreError::Behind { size: 2 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(cluster.psql("airlock", "SELECT count(*) FROM payloads"), "2");
    // It kept the sequencer lock for its retry; dropped, it lets go.
    assert_eq!(cluster.psql("airlock", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"), "1");
    drop(store);
    assert_eq!(cluster.psql("airlock", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
    let store = reader;
    // The log itself, behind another writer, catches up and appends after it.
    let mut other = open(&cluster.url(), &signer, 100);
    other.append("t", &[event(1, 0)]).unwrap();
    assert_eq!(log.append("s", &[event(0, 2)]).unwrap(), 3);
    assert_eq!(cases(&store), ["replica-0-case-0", "replica-0-case-1", "replica-1-case-0", "replica-0-case-2"]);
    verify(&store, &signer.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap().unwrap();
}

/// Three gateway replicas, each with its own connection, appending at once:
/// one sequence, every entry exactly once, and every replica's checkpoints
/// consistent with every other's.
#[test]
fn three_replicas_append_concurrently_into_one_log() {
    const REPLICAS: u64 = 3;
    const BATCHES: u64 = 500;
    let Some(cluster) = Cluster::start_with(&[("fsync", "off")]) else { return };
    let url = cluster.url();
    let signer = Signer::generate("airlock-test").unwrap();
    let start = Arc::new(Barrier::new(REPLICAS as usize));
    let threads: Vec<_> = (0..REPLICAS)
        .map(|r| {
            let (url, signer, start) = (url.clone(), signer.clone(), start.clone());
            std::thread::spawn(move || {
                let mut log = open(&url, &signer, 64);
                start.wait();
                let mut mine = Vec::new();
                for b in 0..BATCHES {
                    let events: Vec<Event> = (0..(b % 3 + 1)).map(|j| event(r, b * 3 + j)).collect();
                    let first = log.append(&format!("replica-{r}"), &events).unwrap();
                    for j in 0..events.len() as u64 {
                        mine.push((first + j, format!("replica-{r}-case-{}", b * 3 + j)));
                    }
                }
                (mine, log.checkpoint().unwrap())
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().unwrap_or_else(|_| panic!("a replica failed; the server said:\n{}", cluster.server_log())))
        .collect();

    let reader = PgStore::connect(&url).unwrap();
    let expected: u64 = REPLICAS * (0..BATCHES).map(|b| b % 3 + 1).sum::<u64>();
    assert_eq!(reader.size().unwrap(), expected);
    let stored = cases(&reader);
    assert_eq!(stored.len() as u64, expected);
    assert_eq!(stored.iter().collect::<BTreeSet<_>>().len() as u64, expected, "an entry is in the log twice");
    // Each replica's acknowledged indexes hold exactly its entries.
    for (mine, _) in &results {
        for (index, case) in mine {
            assert_eq!(&stored[*index as usize], case);
        }
    }
    verify(&reader, &signer.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap().unwrap();

    // Every checkpoint any replica signed (stored, and each one's last) is
    // consistent with every later one, by consistency proofs.
    let log = AuditLog::open(reader.clone(), signer.clone(), ORIGIN, MAC_KEY, CheckpointEvery::default()).unwrap();
    let mut notes: Vec<String> = reader.checkpoints().unwrap().into_iter().map(|(_, n)| n).collect();
    notes.extend(results.iter().map(|(_, note)| note.clone()));
    let mut signed: Vec<Checkpoint> =
        notes.iter().map(|n| Checkpoint::open(n, &[signer.verifier()], ORIGIN).unwrap()).collect();
    signed.sort_by_key(|c| c.size);
    assert!(signed.len() > 20, "{} checkpoints", signed.len());
    assert_eq!(signed.last().unwrap().size, expected);
    for pair in signed.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        let proof = log.consistency(old.size, new.size).unwrap();
        merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).unwrap();
    }
}

#[test]
fn a_connection_killed_mid_transaction_leaves_no_partial_batch() {
    let Some(cluster) = Cluster::start() else { return };
    let signer = Signer::generate("airlock-test").unwrap();
    let mut log = open(&cluster.url(), &signer, 1000);
    log.append("s", &[event(0, 0), event(0, 1), event(0, 2)]).unwrap();
    // Entries and payloads are in, then the nodes' insert sleeps: the
    // connection is killed there, inside the append's transaction.
    cluster.psql(
        "airlock",
        "CREATE FUNCTION slow_nodes() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$; \
         CREATE TRIGGER slow AFTER INSERT ON nodes FOR EACH STATEMENT EXECUTE FUNCTION slow_nodes();",
    );
    let appending = std::thread::spawn(move || {
        let result = log.append("s", &(3..40).map(|i| event(0, i)).collect::<Vec<_>>());
        (log, result)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let pid = cluster.psql(
            "airlock",
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'airlock-audit' AND wait_event = 'PgSleep'",
        );
        if !pid.is_empty() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the append never reached the nodes' insert");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The rows of the batch exist inside the transaction, visible to it alone.
    assert_eq!(cluster.psql("airlock", "SELECT count(*) FROM entries"), "3");
    assert_eq!(cluster.psql("airlock", &format!("SELECT pg_terminate_backend({pid})")), "t");
    let (mut log, result) = appending.join().unwrap();
    match result {
        Err(AuditError::Store(StoreError::Postgres { database, .. })) => {
            assert!(database.contains("airlock"), "{database}")
        }
        other => panic!("{other:?}"),
    }
    for table in ["entries", "payloads"] {
        assert_eq!(cluster.psql("airlock", &format!("SELECT count(*) FROM {table}")), "3", "{table}");
    }
    assert_eq!(cluster.psql("airlock", "SELECT count(*) FROM nodes WHERE level = 0"), "3");
    // The log goes on (on a new connection) at the same place.
    cluster.psql("airlock", "DROP TRIGGER slow ON nodes");
    assert_eq!(log.append("s", &[event(0, 99)]).unwrap(), 3);
    log.checkpoint().unwrap();
    let reader = PgStore::connect(&cluster.url()).unwrap();
    verify(&reader, &signer.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap().unwrap();
}

#[test]
fn migrations_apply_once_refuse_a_newer_schema_and_take_turns() {
    let Some(cluster) = Cluster::start() else { return };
    let migrated = |db: &str| {
        cluster.psql(db, "SELECT string_agg(version::text || ' ' || name, ',') FROM airlock_schema_migrations")
    };

    // Fresh, then again: nothing more to do.
    let url = cluster.create_database("fresh");
    let store = PgStore::connect(&url).unwrap();
    assert_eq!(migrated("fresh"), "1 audit_log");
    assert_eq!(store.migrate().unwrap(), Vec::<i64>::new());
    drop(store);
    PgStore::connect(&url).unwrap();
    assert_eq!(migrated("fresh"), "1 audit_log");

    // A database a newer airlock migrated is refused, naming both versions.
    cluster.psql("fresh", "INSERT INTO airlock_schema_migrations (version, name) VALUES (999, 'future')");
    match PgStore::connect(&url) {
        Err(e @ StoreError::SchemaTooNew { found: 999, .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("version {}", schema_version())), "{text}");
            assert!(text.contains("postgresql://airlock@") && text.contains("/fresh"), "{text}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema was taken"),
    }

    // Replicas starting together: each migration once, nobody fails.
    let url = cluster.create_database("together");
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                PgStore::connect(&url).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(migrated("together"), "1 audit_log");
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let Some(cluster) = Cluster::start() else { return };
    let url = format!("postgresql://airlock:s3cret@/nosuchdb?host={}", cluster.socket_dir().display());
    let Err(e) = PgStore::connect(&url) else { panic!("connected to a missing database") };
    let text = e.to_string();
    assert!(text.contains("postgresql://airlock@") && text.contains("/nosuchdb"), "{text}");
    assert!(text.contains("nosuchdb\" does not exist"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// TLS to the database: the log over TCP with `sslmode=verify-full` and the
/// cluster's own CA; the wrong CA, or a host name the certificate does not
/// name, is refused with the reason, never connected to without TLS.
#[test]
fn the_log_reaches_its_database_over_verified_tls() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let Some(cluster) = Cluster::start_tls(port) else { return };
    let ca = cluster.tls_ca();
    let url = cluster.tls_url(port, &format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    let signer = Signer::generate("airlock-test-tls").unwrap();
    let mut log = open(&url, &signer, 4);
    for i in 0..10 {
        log.append("s", &[event(0, i)]).unwrap();
    }
    log.checkpoint().unwrap();
    let report = verify(log.store(), &signer.verifier(), ORIGIN, Some(&MAC_KEY), &[]).unwrap().unwrap();
    assert_eq!(report.entries, 10);
    let ssl = cluster.psql("airlock", "SELECT count(*) FROM pg_stat_ssl WHERE ssl");
    assert_ne!(ssl, "0", "no connection used TLS");
    // Another CA: the server's certificate does not verify.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-subj", "/CN=other-ca", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "1", "-keyout"])
        .arg(other.path().join("k"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(made.status.success());
    let wrong = cluster.tls_url(port, &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()));
    let Err(e) = PgStore::connect(&wrong) else { panic!("connected with a certificate from another CA") };
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // The same server by a name its certificate does not carry (only `localhost`).
    let renamed = url.replace("@localhost:", "@127.0.0.1:");
    let Err(e) = PgStore::connect(&renamed) else { panic!("connected to a host the certificate does not name") };
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

/// Appends per second: one log with groups of 1 and 64 entries, and three
/// logs at once (durable commits, the server's defaults). Run with
/// `cargo test -p airlock-audit --test postgres -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_appends_per_second() {
    let Some(cluster) = Cluster::start() else { return };
    let signer = Signer::generate("airlock-test").unwrap();
    let run = |db: &str, logs: u64, group: u64| {
        let url = cluster.create_database(db);
        let window = Duration::from_secs(3);
        let start = Arc::new(Barrier::new(logs as usize));
        let threads: Vec<_> = (0..logs)
            .map(|r| {
                let (url, signer, start) = (url.clone(), signer.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut log = open(&url, &signer, 256);
                    let events: Vec<Event> = (0..group).map(|i| event(r, i)).collect();
                    start.wait();
                    let began = Instant::now();
                    let mut appends = 0u64;
                    while began.elapsed() < window {
                        log.append("bench", &events).unwrap();
                        appends += 1;
                    }
                    appends
                })
            })
            .collect();
        let appends: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let per_s = appends as f64 / window.as_secs_f64();
        println!(
            "{logs} log(s), groups of {group:>2}: {per_s:>7.0} appends/s, {:>8.0} entries/s",
            per_s * group as f64
        );
    };
    run("one_by_1", 1, 1);
    run("one_by_64", 1, 64);
    run("three_by_1", 3, 1);
    run("three_by_64", 3, 64);
}
