//! The keys in PostgreSQL: the key file's rules against the shared table,
//! two replicas that see one revocation within about a second, and a
//! database that cannot be read honouring no key.
#![cfg(feature = "postgres")]

use super::*;
use airlock_gateway::keys::{KeyError, KeyStore, LiveKeys, NewKey, PrincipalKind, Role, digest};
use airlock_gateway::keys_pg::{PgKeyStore, PgKeys};
use airlock_test_support::postgres::Cluster;
use std::time::Instant;

/// A gateway over `auth` in front of a scripted upstream that serves `gpt-*`.
async fn replica(auth: Auth) -> (tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let up = Upstream { seen: Arc::default(), db: db.clone(), gate: Arc::new(tokio::sync::Notify::new()) };
    let app = axum::Router::new().fallback(upstream_handler).with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = GatewayConfig::parse(
        &format!("[[upstream]]\nname = \"openai\"\napi = \"openai\"\nbase_url = \"http://{upstream}\"\nmodels = [\"gpt-*\"]\n"),
        Path::new("test.toml"),
        &|_| None,
    )
    .unwrap();
    let store = SqliteStore::open(&db, Durability::Durable).unwrap();
    let log =
        AuditLog::open(store, Signer::generate("t").unwrap(), "airlock.test/keys", [5; 32], CheckpointEvery::default())
            .unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let handle = writer.handle();
    std::mem::forget(writer);
    let gw = Gateway::new(config, auth, handle, Arc::new(airlock_redact::Scanner::builtin())).unwrap();
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
    (dir, addr)
}

async fn status(gateway: SocketAddr, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{gateway}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat("gpt-4o", "hi"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_the_database_follow_the_key_files_rules() {
    let Some(cluster) = Cluster::start() else { return };
    let url = cluster.create_database("keys_rules");
    let store = PgKeyStore::connect(&url).await.unwrap();
    // Migrations: applied once, recorded in their own table.
    assert!(store.migrate().await.unwrap().is_empty());
    assert_eq!(cluster.psql("keys_rules", "SELECT max(version) FROM airlock_gateway_key_migrations"), "1");

    let limits = airlock_gateway::keys::Limits { requests_per_minute: Some(5), ..Default::default() };
    let ci = NewKey { role: Some(Role::Ci), kind: Some(PrincipalKind::Ci), limits, ..NewKey::default() };
    let first = store.add("build", &ci).await.unwrap();
    assert!(first.starts_with("alk_") && first.len() == 68);
    // Rotation keeps the role and kind; another role is refused while keys are live.
    let second = store.add("build", &NewKey::default()).await.unwrap();
    let err = store.add("build", &NewKey { role: Some(Role::Admin), ..NewKey::default() }).await.unwrap_err();
    assert!(err.to_string().contains("holds live keys as ci"), "{err}");
    assert!(store.add("bad name", &NewKey::default()).await.unwrap_err().to_string().contains("not a key name"));
    let auditor = NewKey { role: Some(Role::Auditor), models: vec!["gpt-*".into()], ..NewKey::default() };
    assert!(store.add("eve", &auditor).await.unwrap_err().to_string().contains("may not use models"));
    let dev = store.add("alice", &NewKey { models: vec!["gpt-*".into()], ..NewKey::default() }).await.unwrap();

    let list = store.list().await.unwrap();
    assert_eq!(list.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["build", "build", "alice"]);
    assert_eq!((list[1].role, list[1].kind, list[0].limits), (Role::Ci, PrincipalKind::Ci, limits));
    assert_eq!(list[2].models, ["gpt-*"]);
    let table = cluster.psql("keys_rules", "SELECT string_agg(sha256 || name, ',') FROM gateway_keys");
    assert!(!table.contains(&first[4..]) && table.contains(&digest(&first)), "only digests are stored");

    // Revoke one key by id, then the principal's others.
    let id = list[0].id().to_string();
    assert_eq!(store.revoke("build", Some(&id[..8])).await.unwrap(), 1);
    assert!(store.revoke("build", Some("zz")).await.unwrap_err().to_string().contains("not a key id"));
    let (_, live) = store.live().await.unwrap();
    assert!(!live.contains_key(&digest(&first)) && live.contains_key(&digest(&second)));
    assert_eq!(live[&digest(&dev)].models, ["gpt-*"]);
    assert_eq!(store.revoke("build", None).await.unwrap(), 1);
    assert!(store.revoke("build", None).await.unwrap_err().to_string().contains("no live key named \"build\""));
    // With no live key left, the principal may take another role.
    store.add("build", &NewKey { role: Some(Role::Admin), ..NewKey::default() }).await.unwrap();
    let (version, live) = store.live().await.unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(version, 6, "one version per change: 4 adds, 2 revocations (refusals change nothing)");

    // A key file is imported only into an empty table.
    let dir = tempfile::tempdir().unwrap();
    let mut file = KeyStore::open(&dir.path().join("k.json")).unwrap();
    let old = file.add("bob", &NewKey::default()).unwrap();
    assert_eq!(store.import_if_empty(file.list()).await.unwrap(), None);
    let other = PgKeyStore::connect(&cluster.create_database("keys_import")).await.unwrap();
    file.add("gone", &NewKey::default()).unwrap();
    file.revoke("gone", None).unwrap();
    assert_eq!(other.import_if_empty(file.list()).await.unwrap(), Some(2));
    assert_eq!(other.list().await.unwrap(), file.list());
    let (_, live) = other.live().await.unwrap();
    assert_eq!(live.keys().collect::<Vec<_>>(), [&digest(&old)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second_or_two() {
    let Some(cluster) = Cluster::start() else { return };
    let url = cluster.create_database("keys_replicas");
    let admin = PgKeyStore::connect(&url).await.unwrap();
    let key = admin.add("alice", &NewKey::default()).await.unwrap();
    let one = PgKeys::start(PgKeyStore::connect(&url).await.unwrap()).await.unwrap();
    let two = PgKeys::start(PgKeyStore::connect(&url).await.unwrap()).await.unwrap();
    let (_d1, gw1) = replica(Auth::Live(one.clone())).await;
    let (_d2, gw2) = replica(Auth::Live(two.clone())).await;
    assert_eq!((status(gw1, &key).await, status(gw2, &key).await), (200, 200));
    assert_eq!(status(gw2, "alk_nope").await, 401);

    // A key made after the replicas started is honoured by both.
    let later = admin.add("bob", &NewKey::default()).await.unwrap();
    let until = |gw: SocketAddr, key: String, want: u16| async move {
        let t = Instant::now();
        while status(gw, &key).await != want {
            assert!(t.elapsed() < Duration::from_secs(5), "still not {want} after 5 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t.elapsed()
    };
    until(gw1, later.clone(), 200).await;
    until(gw2, later.clone(), 200).await;

    // Revoked through the first replica's database connection: the second refuses it soon after.
    PgKeyStore::connect(&url).await.unwrap().revoke("alice", None).await.unwrap();
    let took = until(gw2, key.clone(), 401).await;
    println!("revocation honoured by the other replica after {took:?}");
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    assert_eq!(status(gw1, &key).await, 401);
    assert_eq!(status(gw1, &later).await, 200, "the other keys stay live");
    assert!(two.current().unwrap().contains_key(&digest(&later)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_read_honours_no_key() {
    let Some(mut cluster) = Cluster::start() else { return };
    let url = cluster.create_database("keys_down");
    let admin = PgKeyStore::connect(&url).await.unwrap();
    let key = admin.add("alice", &NewKey::default()).await.unwrap();
    let keys = PgKeys::start(PgKeyStore::connect(&url).await.unwrap()).await.unwrap();
    let (_d, gw) = replica(Auth::Live(keys.clone())).await;
    assert_eq!(status(gw, &key).await, 200);

    // A table that cannot be read (its privileges or name changed under the gateway).
    cluster.psql("keys_down", "ALTER TABLE gateway_keys_version RENAME TO moved");
    let t = Instant::now();
    while status(gw, &key).await != 401 {
        assert!(t.elapsed() < Duration::from_secs(3), "the key is still honoured");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = keys.current().unwrap_err();
    assert!(matches!(&err, KeyError::Database(e) if e.contains("the gateway's keys")), "{err}");
    // Readable again: honoured again.
    cluster.psql("keys_down", "ALTER TABLE moved RENAME TO gateway_keys_version");
    let t = Instant::now();
    while status(gw, &key).await != 200 {
        assert!(t.elapsed() < Duration::from_secs(3), "the key is not honoured again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The server stopped: every key refused.
    cluster.stop();
    let t = Instant::now();
    while status(gw, &key).await != 401 {
        assert!(t.elapsed() < Duration::from_secs(5), "the key is still honoured with the database down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(keys.current().is_err());
    // And a replica cannot start without its keys.
    assert!(PgKeyStore::connect(&url).await.is_err());
}
