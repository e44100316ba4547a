//! The log in PostgreSQL, shared by several writers (a team gateway's
//! replicas): the SQLite store's tables, created by versioned migrations,
//! and one sequencer across all writers.
//!
//! Every append is one transaction that first takes a transaction-scoped
//! advisory lock ([`APPEND_LOCK`]), then reads the log's size: if another
//! writer appended since this one last looked, it answers
//! [`StoreError::Behind`] with the new size, and [`crate::log::AuditLog`]
//! takes those entries into its tree and tries again. The losing
//! transaction stays open, holding the lock, until that retry (at most
//! [`HOLD`] idle): a writer that lost once appends next, so no replica
//! starves however busy the others are. The lock ends with the
//! transaction, so it is safe behind PgBouncer in transaction mode.
//!
//! The [`Store`] trait is synchronous (the audit writer runs on its own
//! thread): a `PgStore` owns a small tokio runtime (one worker thread) on
//! which the database connections live, and each call waits for its
//! result. Do not call it from an async task; from async code, call it
//! through `tokio::task::spawn_blocking`. (Single results come back over a
//! std channel, which only blocks; streamed rows of `scan` and `list` use
//! tokio's `blocking_recv`, which panics inside an async task.)
//!
//! ```no_run
//! use airlock_audit::postgres::PgStore;
//! use airlock_audit::store::Store;
//! let store = PgStore::connect("postgresql://airlock@db.internal/airlock?sslmode=verify-full")?;
//! let reader = store.clone(); // same pool and runtime, another connection when both are busy
//! println!("{} entries", reader.size()?);
//! # Ok::<(), airlock_audit::store::StoreError>(())
//! ```
//!
//! TLS: `sslmode=require`, `verify-ca` or `verify-full` in the URL turn it
//! on, and the server's certificate is then always verified (name and
//! chain, stricter than libpq's `require`) against the roots in
//! `sslrootcert=FILE` (PEM) or else the Mozilla roots (webpki-roots).
//! Anything else (`disable`, `allow`, `prefer`, none) connects without TLS;
//! Unix sockets never use TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, config::Host};

use crate::merkle::Hash;
use crate::store::{Filter, Listed, NewEntry, Store, StoreError, StoredEntry};

/// The advisory lock every append holds for its transaction: one
/// sequencer per database ("airlock" and 1).
pub const APPEND_LOCK: i64 = 0x6169_726c_6f63_6b01;

/// The advisory lock migrations hold for their transaction ("airlock" and 2).
pub const MIGRATION_LOCK: i64 = 0x6169_726c_6f63_6b02;

/// One schema migration, embedded in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number: migrations apply in order, each once.
    pub version: i64,
    /// A short name (the file's, after the number).
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Every migration, in order (crates/audit/migrations/NNNN_name.sql).
pub const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "audit_log", sql: include_str!("../migrations/0001_audit_log.sql") }];

/// Why [`apply_migrations`] failed.
#[derive(Debug)]
pub enum MigrationError {
    /// The database failed.
    Database(tokio_postgres::Error),
    /// The database is at a newer version than these migrations know: a
    /// newer airlock migrated it.
    TooNew {
        /// Its version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
}

/// Applies the `migrations` a database lacks, in order, in one transaction
/// that first takes the advisory lock `lock` (so that processes starting
/// together take turns); `table` (created if missing) records each version
/// applied. Returns the versions applied. The log, the gateway's keys and
/// its usage counts each keep their own table and lock.
pub async fn apply_migrations(
    client: &mut tokio_postgres::Client,
    table: &str,
    lock: i64,
    migrations: &[Migration],
) -> Result<Vec<i64>, MigrationError> {
    let db = MigrationError::Database;
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({lock}); \
         CREATE TABLE IF NOT EXISTS {table} (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ))
    .await
    .map_err(db)?;
    let found: i64 =
        tx.query_one(&format!("SELECT COALESCE(MAX(version), 0) FROM {table}"), &[]).await.map_err(db)?.get(0);
    let known = migrations.last().map_or(0, |m| m.version);
    if found > known {
        return Err(MigrationError::TooNew { found, known });
    }
    let record = format!("INSERT INTO {table} (version, name) VALUES ($1, $2)");
    let mut applied = Vec::new();
    for m in migrations.iter().filter(|m| m.version > found) {
        tx.batch_execute(m.sql).await.map_err(db)?;
        tx.execute(&record, &[&m.version, &m.name]).await.map_err(db)?;
        applied.push(m.version);
    }
    tx.commit().await.map_err(db)?;
    Ok(applied)
}

/// The schema version this program brings a database to.
pub fn schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Connections per store (the writer, readers of proofs and checkpoints).
const POOL_SIZE: usize = 8;

/// Rows fetched per round trip when entries are streamed.
const CHUNK: i32 = 1024;

const SIZE: &str = "SELECT COALESCE(MAX(idx) + 1, 0) FROM entries";
const NODE: &str = "SELECT hash FROM nodes WHERE level = $1 AND idx = $2";
/// Several nodes in one round trip: the (level, idx) pairs as two arrays.
const NODES: &str = "SELECT n.level, n.idx, n.hash FROM nodes n \
     JOIN UNNEST($1::int4[], $2::int8[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx";
const LATEST: &str = "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1";
const PUT_ENTRIES: &str = "INSERT INTO entries (idx, entry, leaf, time_ms, session, kind) \
     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[], $4::bigint[], $5::text[], $6::text[])";
const PUT_PAYLOADS: &str = "INSERT INTO payloads (idx, payload) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])";
const PUT_NODES: &str =
    "INSERT INTO nodes (level, idx, hash) SELECT * FROM UNNEST($1::integer[], $2::bigint[], $3::bytea[])";

/// The audit log's store in PostgreSQL. Cloning it gives another handle on
/// the same connection pool and runtime (a reader beside the writer).
pub struct PgStore {
    db: Db,
    handle: tokio::runtime::Handle,
    _runtime: Arc<Runtime>,
    /// After [`StoreError::Behind`]: the append's transaction, still holding
    /// the sequencer lock, for this handle's retry (so a writer that lost
    /// once cannot lose again while it reloads; see [`HOLD`]).
    held: Option<Held>,
}

impl Clone for PgStore {
    fn clone(&self) -> PgStore {
        PgStore { db: self.db.clone(), handle: self.handle.clone(), _runtime: self._runtime.clone(), held: None }
    }
}

/// How long a transaction kept after [`StoreError::Behind`] may sit idle
/// before the server ends it (and so releases the lock other writers wait
/// for) should its writer not come back.
pub const HOLD: Duration = Duration::from_secs(5);

/// A connection inside an append transaction that holds [`APPEND_LOCK`].
/// Dropped unused, it is closed, never returned to the pool mid-transaction.
struct Held(Option<Object>);

impl Held {
    fn take(mut self) -> Option<Object> {
        self.0.take()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// A PostgreSQL error with its whole story (tokio-postgres shows only
/// "db error" at the top; the server's message, detail and hint are below).
#[derive(Debug)]
struct Failure {
    text: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

// No `source()`: the text tells the whole chain already, and a printer
// that walks sources (anyhow's) would tell it twice.
impl std::error::Error for Failure {}

impl Failure {
    fn new(error: impl std::error::Error + Send + Sync + 'static) -> Failure {
        let mut parts: Vec<String> = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = next {
            let text = match e.downcast_ref::<tokio_postgres::error::DbError>() {
                Some(db) => {
                    let mut t = format!("{}: {}", db.severity(), db.message());
                    if let Some(detail) = db.detail() {
                        t.push_str(&format!(" ({detail})"));
                    }
                    if let Some(hint) = db.hint() {
                        t.push_str(&format!("\nhint: {hint}"));
                    }
                    t
                }
                None => e.to_string(),
            };
            // Wrappers repeat their cause's text: keep each part once.
            if !parts.last().is_some_and(|last| last.contains(&text) || text.contains(last.as_str())) {
                parts.push(text);
            } else if parts.last().is_some_and(|last| text.len() > last.len()) {
                parts.pop();
                parts.push(text);
            }
            next = e.source();
        }
        Failure { text: parts.join(": ") }
    }
}

/// What a task on the runtime needs: the pool and the database's name for errors.
#[derive(Clone)]
struct Db {
    pool: Pool,
    name: Arc<str>,
}

/// The store's runtime, shut down without waiting when the last handle
/// goes (dropping a runtime inside another would panic).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// What the connection string asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// No TLS.
    Off,
    /// TLS, the server's certificate verified against these roots (a PEM
    /// file) or, without one, the Mozilla roots.
    Verify {
        /// `sslrootcert=`.
        roots: Option<PathBuf>,
    },
}

/// A connection string split into what tokio-postgres reads and what
/// airlock does itself (TLS), with the database named for messages.
#[derive(Debug, Clone)]
pub struct Target {
    /// For tokio-postgres.
    pub config: tokio_postgres::Config,
    /// TLS.
    pub tls: Tls,
    /// `postgresql://user@host:port/name`: never the password.
    pub shown: String,
}

/// Reads a connection string: a URL (`postgresql://user:pw@host:5432/db?sslmode=verify-full`,
/// `postgresql:///db?host=/run/postgresql`) or key=value pairs (`host=… dbname=…`).
/// An error never repeats the string, which may hold a password.
pub fn parse_url(url: &str) -> Result<Target, StoreError> {
    let bad = |what: String| StoreError::Postgres {
        database: "(the PostgreSQL URL given, not shown: it may hold a password)".into(),
        source: what.into(),
    };
    let mut sslmode = None;
    let mut rootcert = None;
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            sslmode = Some(value);
            true
        }
        "sslrootcert" => {
            rootcert = Some(PathBuf::from(value));
            true
        }
        _ => false,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = percent_decode(value).ok_or_else(|| bad(format!("bad %-escape in {key}=")))?;
                    if !take(key, value) {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) }
            }
        }
    } else {
        let mut kept = Vec::new();
        for pair in url.split_whitespace() {
            let taken = match pair.split_once('=') {
                Some((key, value)) => take(key.trim(), value.trim_matches('\'').to_string()),
                None => false,
            };
            if !taken {
                kept.push(pair);
            }
        }
        kept.join(" ")
    };
    let mut config: tokio_postgres::Config =
        rest.parse().map_err(|e: tokio_postgres::Error| bad(format!("not a PostgreSQL connection string: {e}")))?;
    let tls = match sslmode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => Tls::Off,
        Some("require" | "verify-ca" | "verify-full") => Tls::Verify { roots: rootcert },
        Some(other) => {
            return Err(bad(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    config.ssl_mode(match tls {
        Tls::Off => tokio_postgres::config::SslMode::Disable,
        Tls::Verify { .. } => tokio_postgres::config::SslMode::Require,
    });
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("airlock-audit");
    }
    let shown = shown(&config);
    Ok(Target { config, tls, shown })
}

/// `postgresql://user@host:port/name` from a configuration.
fn shown(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("postgresql://{user}{}/{db}", hosts.join(","))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn tls_connector(roots: Option<&PathBuf>, shown: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let err = |what: String| StoreError::Postgres { database: shown.to_string(), source: what.into() };
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(file) => {
            let certs =
                CertificateDer::pem_file_iter(file).map_err(|e| err(format!("sslrootcert {}: {e}", file.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| err(format!("sslrootcert {}: {e}", file.display())))?;
                store.add(cert).map_err(|e| err(format!("sslrootcert {}: {e}", file.display())))?;
            }
            if store.is_empty() {
                return Err(err(format!("sslrootcert {}: no certificate in it", file.display())));
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("TLS: {e}")))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A pool of connections to `target`, with TLS when it asks for it (the
/// server's certificate always verified), for the log and for the other
/// tables a gateway keeps in the same database (its keys, its usage
/// counts). Connections are made on the runtime that first uses the pool;
/// callers set its size and timeouts.
pub fn pool_builder(target: &Target) -> Result<deadpool_postgres::PoolBuilder, StoreError> {
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = match &target.tls {
        Tls::Off => Manager::from_config(target.config.clone(), tokio_postgres::NoTls, manager_config),
        Tls::Verify { roots } => {
            Manager::from_config(target.config.clone(), tls_connector(roots.as_ref(), &target.shown)?, manager_config)
        }
    };
    Ok(Pool::builder(manager).runtime(deadpool_postgres::Runtime::Tokio1))
}

impl Db {
    fn err(&self, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Postgres { database: self.name.to_string(), source: Box::new(Failure::new(source)) }
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| self.err(e))
    }

    fn hash(&self, bytes: &[u8], what: impl FnOnce() -> String) -> Result<Hash, StoreError> {
        bytes.try_into().map_err(|_| StoreError::Corrupt {
            path: self.name.to_string(),
            what: format!("{} is not 32 bytes", what()),
        })
    }
}

impl PgStore {
    /// Connects to the database at `url` (see [`parse_url`]) and brings its
    /// schema up to date (see [`PgStore::migrate`]). A database migrated by
    /// a newer airlock is refused ([`StoreError::SchemaTooNew`]).
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let target = parse_url(url)?;
        let name: Arc<str> = target.shown.clone().into();
        let io = |source: std::io::Error| StoreError::Postgres { database: name.to_string(), source: source.into() };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("airlock-audit-pg")
            .enable_all()
            .build()
            .map_err(io)?;
        let pool = pool_builder(&target)?
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Postgres { database: name.to_string(), source: e.into() })?;
        let handle = runtime.handle().clone();
        let store = PgStore { db: Db { pool, name }, handle, _runtime: Arc::new(Runtime(Some(runtime))), held: None };
        store.migrate()?;
        Ok(store)
    }

    /// The database, as errors name it (never with the password).
    pub fn database(&self) -> &str {
        &self.db.name
    }

    /// Applies the migrations the database lacks, all in one transaction
    /// under [`MIGRATION_LOCK`] (so replicas starting together take turns),
    /// recording each in `airlock_schema_migrations`. Returns the versions
    /// applied (none when the database is current); refuses a database at
    /// a version newer than [`schema_version`].
    pub fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            let mut client = db.client().await?;
            apply_migrations(&mut client, "airlock_schema_migrations", MIGRATION_LOCK, MIGRATIONS).await.map_err(|e| {
                match e {
                    MigrationError::Database(e) => db.err(e),
                    MigrationError::TooNew { found, known } => {
                        StoreError::SchemaTooNew { database: db.name.to_string(), found, known }
                    }
                }
            })
        })
    }

    /// Runs `work` on the store's runtime and waits for its result.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().map_err(|_| self.db.err(std::io::Error::other("the database task stopped")))?
    }

    /// Streams the rows of `sql` in chunks through a portal in a
    /// read-only, repeatable-read transaction (one consistent snapshot, and
    /// never the whole result in memory), calling `each` on every row
    /// until it returns false.
    fn stream(
        &self,
        sql: String,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
        each: &mut dyn FnMut(&Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Row>, StoreError>>(2);
        let db = self.db.clone();
        self.handle.spawn(async move {
            let result = async {
                let mut client = db.client().await?;
                let t = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(|e| db.err(e))?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
                let portal = t.bind(sql.as_str(), &refs).await.map_err(|e| db.err(e))?;
                loop {
                    let rows = t.query_portal(&portal, CHUNK).await.map_err(|e| db.err(e))?;
                    let last = rows.len() < CHUNK as usize;
                    if tx.send(Ok(rows)).await.is_err() || last {
                        return Ok(());
                    }
                }
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        while let Some(rows) = rx.blocking_recv() {
            for row in &rows? {
                if !each(row)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One row of a prepared (and per connection cached) statement.
    fn query_opt(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Option<Row>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            let client = db.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(|e| db.err(e))?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            client.query_opt(&stmt, &refs).await.map_err(|e| db.err(e))
        })
    }

    /// A statement that changes rows; returns how many.
    fn execute(&self, sql: &'static str, params: Vec<Box<dyn ToSql + Send + Sync>>) -> Result<u64, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            let client = db.client().await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            client.execute(sql, &refs).await.map_err(|e| db.err(e))
        })
    }

    fn get<'r, T: tokio_postgres::types::FromSql<'r>>(&self, row: &'r Row, i: usize) -> Result<T, StoreError> {
        row.try_get(i).map_err(|e| self.db.err(e))
    }
}

/// The columns of one append, as arrays for UNNEST.
struct Columns {
    idx: Vec<i64>,
    entry: Vec<Vec<u8>>,
    leaf: Vec<Vec<u8>>,
    time_ms: Vec<i64>,
    session: Vec<String>,
    kind: Vec<String>,
    payload: Vec<Vec<u8>>,
    node_level: Vec<i32>,
    node_idx: Vec<i64>,
    node_hash: Vec<Vec<u8>>,
}

impl Columns {
    fn new(first: u64, entries: &[NewEntry], nodes: &[(u32, u64, Hash)]) -> Columns {
        Columns {
            idx: (0..entries.len() as u64).map(|i| (first + i) as i64).collect(),
            entry: entries.iter().map(|e| e.entry.clone()).collect(),
            leaf: entries.iter().map(|e| e.leaf.to_vec()).collect(),
            time_ms: entries.iter().map(|e| e.time_ms).collect(),
            session: entries.iter().map(|e| e.session.clone()).collect(),
            kind: entries.iter().map(|e| e.kind.clone()).collect(),
            payload: entries.iter().map(|e| e.payload.clone()).collect(),
            node_level: nodes.iter().map(|n| n.0 as i32).collect(),
            node_idx: nodes.iter().map(|n| n.1 as i64).collect(),
            node_hash: nodes.iter().map(|n| n.2.to_vec()).collect(),
        }
    }
}

/// The append transaction: two round trips whatever the batch's size
/// (BEGIN, the lock and the size, pipelined; the three inserts and COMMIT,
/// pipelined), as many when the lock is held already.
async fn append(db: &Db, client: &Object, locked: bool, first: u64, c: &Columns) -> Result<(), StoreError> {
    let size_stmt = client.prepare_cached(SIZE).await.map_err(|e| db.err(e))?;
    // The size is a statement of its own after the lock's: under READ
    // COMMITTED it sees every append committed before the lock was granted.
    // Sent together, answered in order; a failed BEGIN or lock fails the size too.
    let size: i64 = if locked {
        client.query_one(&size_stmt, &[]).await.map_err(|e| db.err(e))?.get(0)
    } else {
        let begin = format!(
            "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {}; SELECT pg_advisory_xact_lock({APPEND_LOCK})",
            HOLD.as_millis()
        );
        let ((), row) =
            tokio::try_join!(client.batch_execute(&begin), client.query_one(&size_stmt, &[])).map_err(|e| db.err(e))?;
        row.get(0)
    };
    if size as u64 != first {
        // The transaction stays open, holding the lock, for the retry.
        return Err(StoreError::Behind { size: size as u64 });
    }
    let put_entries = client.prepare_cached(PUT_ENTRIES).await.map_err(|e| db.err(e))?;
    let put_payloads = client.prepare_cached(PUT_PAYLOADS).await.map_err(|e| db.err(e))?;
    let put_nodes = client.prepare_cached(PUT_NODES).await.map_err(|e| db.err(e))?;
    // Sent together, answered in order; an insert that fails aborts the
    // transaction, and the COMMIT behind it then rolls back.
    let entry_params: [&(dyn ToSql + Sync); 6] = [&c.idx, &c.entry, &c.leaf, &c.time_ms, &c.session, &c.kind];
    let payload_params: [&(dyn ToSql + Sync); 2] = [&c.idx, &c.payload];
    let node_params: [&(dyn ToSql + Sync); 3] = [&c.node_level, &c.node_idx, &c.node_hash];
    let (_, _, _, ()) = tokio::try_join!(
        client.execute(&put_entries, &entry_params),
        client.execute(&put_payloads, &payload_params),
        client.execute(&put_nodes, &node_params),
        client.batch_execute("COMMIT"),
    )
    .map_err(|e| db.err(e))?;
    Ok(())
}

fn boxed<T: ToSql + Send + Sync + 'static>(value: T) -> Box<dyn ToSql + Send + Sync> {
    Box::new(value)
}

impl Store for PgStore {
    fn size(&self) -> Result<u64, StoreError> {
        let row = self.query_opt(SIZE, vec![])?;
        let n: i64 = match &row {
            Some(row) => self.get(row, 0)?,
            None => 0,
        };
        Ok(n as u64)
    }

    fn append(&mut self, first: u64, entries: &[NewEntry], nodes: &[(u32, u64, Hash)]) -> Result<(), StoreError> {
        let columns = Columns::new(first, entries, nodes);
        let db = self.db.clone();
        let held = self.held.take().and_then(Held::take);
        let (result, held) = self.run(async move {
            let alive = match &held {
                Some(client) => client.simple_query("").await.is_ok(),
                None => false,
            };
            let (client, locked) = match held {
                Some(client) if alive => (client, true),
                stale => {
                    // The server ended the kept transaction (idle too long): start over.
                    if let Some(client) = stale {
                        drop(Object::take(client));
                    }
                    (db.client().await?, false)
                }
            };
            let result = append(&db, &client, locked, first, &columns).await;
            Ok(match result {
                Ok(()) => (Ok(()), None),
                Err(e @ StoreError::Behind { .. }) => (Err(e), Some(Held(Some(client)))),
                Err(e) => {
                    // Its transaction's state is unknown: close the connection
                    // (the server rolls back what it has not committed) rather
                    // than hand it to the next caller.
                    drop(Object::take(client));
                    (Err(e), None)
                }
            })
        })?;
        self.held = held;
        result
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        let Some(row) = self.query_opt(NODE, vec![boxed(level as i32), boxed(index as i64)])? else {
            return Ok(None);
        };
        let bytes: &[u8] = self.get(&row, 0)?;
        self.db.hash(bytes, || format!("node ({level}, {index})")).map(Some)
    }

    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Option<Hash>>, StoreError> {
        if wanted.len() <= 1 {
            return wanted.iter().map(|&(level, index)| self.node(level, index)).collect();
        }
        let levels: Vec<i32> = wanted.iter().map(|&(l, _)| l as i32).collect();
        let indexes: Vec<i64> = wanted.iter().map(|&(_, i)| i as i64).collect();
        let db = self.db.clone();
        let rows = self.run(async move {
            let client = db.client().await?;
            let stmt = client.prepare_cached(NODES).await.map_err(|e| db.err(e))?;
            client.query(&stmt, &[&levels, &indexes]).await.map_err(|e| db.err(e))
        })?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let (level, index): (i32, i64) = (self.get(row, 0)?, self.get(row, 1)?);
            let bytes: &[u8] = self.get(row, 2)?;
            found.insert((level as u32, index as u64), self.db.hash(bytes, || format!("node ({level}, {index})"))?);
        }
        Ok(wanted.iter().map(|key| found.get(key).copied()).collect())
    }

    fn scan(&self, from: u64, visit: &mut dyn FnMut(StoredEntry<'_>) -> bool) -> Result<(), StoreError> {
        let sql = "SELECT e.idx, e.entry, e.leaf, p.payload FROM entries e LEFT JOIN payloads p ON p.idx = e.idx \
                   WHERE e.idx >= $1 ORDER BY e.idx";
        let from = from.min(i64::MAX as u64) as i64;
        self.stream(sql.into(), vec![boxed(from)], &mut |row| {
            let index: i64 = self.get(row, 0)?;
            let leaf: &[u8] = self.get(row, 2)?;
            let leaf = self.db.hash(leaf, || format!("the leaf of entry {index}"))?;
            Ok(visit(StoredEntry { index: index as u64, entry: self.get(row, 1)?, leaf, payload: self.get(row, 3)? }))
        })
    }

    fn list(&self, filter: &Filter, visit: &mut dyn FnMut(Listed<'_>) -> bool) -> Result<(), StoreError> {
        // Newest first when only the last few are wanted, then put back in order.
        let order = if filter.last.is_some() { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT e.idx, e.time_ms, e.session, e.kind, p.payload, e.entry FROM entries e \
             LEFT JOIN payloads p ON p.idx = e.idx \
             WHERE ($1::text IS NULL OR e.session = $1) AND ($2::text IS NULL OR e.kind = $2) \
             AND ($3::bigint IS NULL OR e.time_ms >= $3) AND ($4::bigint IS NULL OR e.time_ms < $4) \
             ORDER BY e.idx {order} LIMIT $5"
        );
        let limit = filter.last.map(|n| n.min(i64::MAX as u64) as i64);
        let params = vec![
            boxed(filter.session.clone()),
            boxed(filter.kind.clone()),
            boxed(filter.since_ms),
            boxed(filter.until_ms),
            boxed(limit),
        ];
        let listed = |row: &Row| -> Result<(u64, i64), StoreError> {
            let index: i64 = self.get(row, 0)?;
            Ok((index as u64, self.get(row, 1)?))
        };
        if filter.last.is_none() {
            return self.stream(sql, params, &mut |row| {
                let (index, time_ms) = listed(row)?;
                Ok(visit(Listed {
                    index,
                    time_ms,
                    session: self.get(row, 2)?,
                    kind: self.get(row, 3)?,
                    payload: self.get(row, 4)?,
                    entry: self.get(row, 5)?,
                }))
            });
        }
        // At most `last` rows, asked for by a person.
        let mut newest_first = Vec::new();
        self.stream(sql, params, &mut |row| {
            newest_first.push(row.clone());
            Ok(true)
        })?;
        for row in newest_first.iter().rev() {
            let (index, time_ms) = listed(row)?;
            let item = Listed {
                index,
                time_ms,
                session: self.get(row, 2)?,
                kind: self.get(row, 3)?,
                payload: self.get(row, 4)?,
                entry: self.get(row, 5)?,
            };
            if !visit(item) {
                break;
            }
        }
        Ok(())
    }

    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note",
            vec![boxed(size as i64), boxed(note.to_string())],
        )?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let mut all = Vec::new();
        self.stream("SELECT size, note FROM checkpoints ORDER BY size".into(), vec![], &mut |row| {
            let size: i64 = self.get(row, 0)?;
            all.push((size as u64, self.get::<String>(row, 1)?));
            Ok(true)
        })?;
        Ok(all)
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let Some(row) = self.query_opt(LATEST, vec![])? else { return Ok(None) };
        let size: i64 = self.get(&row, 0)?;
        Ok(Some((size as u64, self.get(&row, 1)?)))
    }

    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM payloads WHERE idx IN (SELECT idx FROM entries WHERE time_ms < $1)",
            vec![boxed(before_ms)],
        )
    }

    fn prune_payloads_below(&mut self, index: u64) -> Result<u64, StoreError> {
        let below = index.min(i64::MAX as u64) as i64;
        self.execute("DELETE FROM payloads WHERE idx < $1", vec![boxed(below)])
    }

    fn add_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO cosignatures (size, witness, line) VALUES ($1, $2, $3) \
             ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line",
            vec![boxed(size as i64), boxed(witness.to_string()), boxed(line.to_string())],
        )?;
        Ok(())
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let mut all = Vec::new();
        // Byte order, as SQLite sorts.
        let sql = "SELECT witness, line FROM cosignatures WHERE size = $1 ORDER BY witness COLLATE \"C\"";
        self.stream(sql.into(), vec![boxed(size as i64)], &mut |row| {
            all.push((self.get(row, 0)?, self.get(row, 1)?));
            Ok(true)
        })?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let t = parse_url("postgresql://gw:s3cret@db.example:6432/audit?sslmode=verify-full").unwrap();
        assert_eq!(t.shown, "postgresql://gw@db.example:6432/audit");
        assert_eq!(t.tls, Tls::Verify { roots: None });
        let t = parse_url("postgresql:///airlock?host=/tmp/pg%20x&user=airlock").unwrap();
        assert_eq!(t.shown, "postgresql://airlock@/tmp/pg x/airlock");
        assert_eq!(t.tls, Tls::Off);
        let t =
            parse_url("host=db user=gw password=s3cret dbname=audit sslmode=require sslrootcert=/etc/ca.pem").unwrap();
        assert_eq!(t.shown, "postgresql://gw@db/audit");
        assert_eq!(t.tls, Tls::Verify { roots: Some(PathBuf::from("/etc/ca.pem")) });
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        for url in ["postgresql://gw:s3cret@db/audit?sslmode=sometimes", "postgresql://gw:s3cret@db:notaport/audit"] {
            let Err(e) = parse_url(url) else { panic!("{url} was taken") };
            let text = e.to_string();
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("not shown"), "{text}");
        }
    }

    #[test]
    fn migrations_are_numbered_like_their_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let named: Vec<String> = MIGRATIONS.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
        assert_eq!(files, named, "every file in migrations/ is in MIGRATIONS, in order");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "versions count up from 1 without gaps");
        }
    }
}
