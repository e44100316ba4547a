//! The team gateway's API keys in PostgreSQL, when the gateway has a
//! database (`[store] url`): every replica reads one `gateway_keys` table,
//! so a key made or revoked on any machine holds on all of them.
//!
//! The table holds what the key file holds ([`KeyRecord`]: never a key, only
//! its SHA-256), and the rules for adding and revoking are the file's
//! ([`crate::keys::new_key`], [`crate::keys::revoke_in`]), applied inside a
//! transaction that holds the one row of `gateway_keys_version`, so that two
//! admins at once cannot break them (a principal keeps one role). Each
//! change adds one to that row's version; the server's view ([`PgKeys`])
//! probes it every half second and reads the live keys again only when it
//! moved, so a revocation anywhere is honoured everywhere within about a
//! second. A view that has not read the database for [`PgKeys::STALE_AFTER`]
//! honours no key (fail closed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use airlock_audit::postgres::{Migration, MigrationError, apply_migrations};
use deadpool_postgres::Pool;

use crate::keys::{KeyError, KeyPolicy, KeyRecord, LiveKeys, NewKey};

/// The key table's own migrations, recorded in
/// `airlock_gateway_key_migrations` (apart from the audit log's and the
/// usage ledger's).
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "gateway_keys",
    sql: "CREATE TABLE IF NOT EXISTS gateway_keys (\
       sha256 TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'), \
       name TEXT NOT NULL, \
       role TEXT NOT NULL, \
       kind TEXT NOT NULL, \
       models TEXT NOT NULL DEFAULT '[]', \
       upstreams TEXT NOT NULL DEFAULT '[]', \
       limits TEXT NOT NULL DEFAULT '{}', \
       created_ms BIGINT NOT NULL, \
       revoked_ms BIGINT); \
     CREATE INDEX IF NOT EXISTS gateway_keys_name ON gateway_keys (name); \
     CREATE TABLE IF NOT EXISTS gateway_keys_version (\
       one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), \
       version BIGINT NOT NULL); \
     INSERT INTO gateway_keys_version (one, version) VALUES (true, 0) ON CONFLICT DO NOTHING",
}];

/// The advisory lock migrations hold ("airlock" and 4; the audit log's are
/// 1 and 2, the usage ledger's 3).
pub const MIGRATION_LOCK: i64 = 0x6169_726c_6f63_6b04;

const COLUMNS: &str = "sha256, name, role, kind, models, upstreams, limits, created_ms, revoked_ms";

/// Taken first by every change: writers one at a time, and the version moves once per change.
const LOCK_VERSION: &str = "SELECT version FROM gateway_keys_version FOR UPDATE";
const BUMP_VERSION: &str = "UPDATE gateway_keys_version SET version = version + 1";

/// The keys in PostgreSQL.
#[derive(Clone)]
pub struct PgKeyStore {
    pool: Pool,
    name: String,
}

impl std::fmt::Debug for PgKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKeyStore").field("database", &self.name).finish_non_exhaustive()
    }
}

fn database(name: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Database(format!("{name}: the gateway's keys: {e}"))
}

impl PgKeyStore {
    /// Connects to `url` (as [`airlock_audit::postgres::parse_url`] reads
    /// it) and brings the key table up to date; call from within a tokio
    /// runtime. TLS as the URL asks (`sslmode=require|verify-ca|verify-full`).
    pub async fn connect(url: &str) -> Result<PgKeyStore, KeyError> {
        let mut target = airlock_audit::postgres::parse_url(url).map_err(|e| KeyError::Database(e.to_string()))?;
        let name = target.shown.clone();
        if target.config.get_connect_timeout().is_none() {
            target.config.connect_timeout(Duration::from_secs(5));
        }
        // The log's own pool builder: TLS as the URL asks, the server's certificate verified.
        let pool = airlock_audit::postgres::pool_builder(&target)
            .map_err(|e| KeyError::Database(e.to_string()))?
            .max_size(4)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| database(&name, e))?;
        let store = PgKeyStore { pool, name };
        store.migrate().await?;
        Ok(store)
    }

    /// The database, as shown (never its password).
    pub fn database(&self) -> &str {
        &self.name
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, KeyError> {
        self.pool.get().await.map_err(|e| database(&self.name, e))
    }

    fn err(&self) -> impl Fn(tokio_postgres::Error) -> KeyError + '_ {
        |e| database(&self.name, e)
    }

    /// Applies the migrations the database lacks, under [`MIGRATION_LOCK`].
    pub async fn migrate(&self) -> Result<Vec<i64>, KeyError> {
        let mut client = self.client().await?;
        apply_migrations(&mut client, "airlock_gateway_key_migrations", MIGRATION_LOCK, MIGRATIONS).await.map_err(|e| {
            match e {
                MigrationError::Database(e) => database(&self.name, e),
                MigrationError::TooNew { found, known } => KeyError::Database(format!(
                    "{}: the key table is at version {found}, newer than this airlock knows ({known})",
                    self.name
                )),
            }
        })
    }

    fn record(&self, row: &tokio_postgres::Row) -> Result<KeyRecord, KeyError> {
        let sha256: String = row.get(0);
        let bad = |what: String| {
            KeyError::Database(format!("{}: gateway_keys row {}: {what}", self.name, &sha256[..12.min(sha256.len())]))
        };
        let json = |i: usize| -> Result<serde_json::Value, KeyError> {
            serde_json::from_str(row.get::<_, &str>(i)).map_err(|e| bad(e.to_string()))
        };
        Ok(KeyRecord {
            name: row.get(1),
            role: row.get::<_, &str>(2).parse().map_err(bad)?,
            kind: row.get::<_, &str>(3).parse().map_err(bad)?,
            models: serde_json::from_value(json(4)?).map_err(|e| bad(format!("models: {e}")))?,
            upstreams: serde_json::from_value(json(5)?).map_err(|e| bad(format!("upstreams: {e}")))?,
            limits: serde_json::from_value(json(6)?).map_err(|e| bad(format!("limits: {e}")))?,
            created_ms: row.get(7),
            revoked_ms: row.get(8),
            sha256,
        })
    }

    async fn records(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<KeyRecord>, KeyError> {
        let rows = client
            .query(&format!("SELECT {COLUMNS} FROM gateway_keys {filter} ORDER BY created_ms, sha256"), params)
            .await
            .map_err(self.err())?;
        rows.iter().map(|r| self.record(r)).collect()
    }

    async fn insert(&self, tx: &deadpool_postgres::Transaction<'_>, k: &KeyRecord) -> Result<u64, KeyError> {
        let text = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let limits = serde_json::to_string(&k.limits).map_err(|e| database(&self.name, e))?;
        tx.execute(
            &format!(
                "INSERT INTO gateway_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (sha256) DO NOTHING"
            ),
            &[
                &k.sha256,
                &k.name,
                &k.role.to_string(),
                &k.kind.to_string(),
                &text(&k.models),
                &text(&k.upstreams),
                &limits,
                &k.created_ms,
                &k.revoked_ms,
            ],
        )
        .await
        .map_err(self.err())
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let client = self.client().await?;
        self.records(&client, "", &[]).await
    }

    /// Makes a key for the principal `name` and returns it (the only time it
    /// is seen), by the key file's rules ([`crate::keys::new_key`]).
    pub async fn add(&self, name: &str, new: &NewKey) -> Result<String, KeyError> {
        let err = self.err();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(&err)?;
        tx.query_one(LOCK_VERSION, &[]).await.map_err(&err)?;
        let held = self.records(&tx, "WHERE name = $1", &[&name]).await?;
        let (key, record) = crate::keys::new_key(&held, name, new)?;
        self.insert(&tx, &record).await?;
        tx.execute(BUMP_VERSION, &[]).await.map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(key)
    }

    /// Revokes the principal `name`'s live keys (or the one whose id starts
    /// with `key`), by the key file's rules ([`crate::keys::revoke_in`]),
    /// and says how many.
    pub async fn revoke(&self, name: &str, key: Option<&str>) -> Result<usize, KeyError> {
        let err = self.err();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(&err)?;
        tx.query_one(LOCK_VERSION, &[]).await.map_err(&err)?;
        let mut held = self.records(&tx, "WHERE name = $1", &[&name]).await?;
        let now = crate::keys::now_ms();
        let revoked = crate::keys::revoke_in(&mut held, name, key, now)?;
        tx.execute(
            "UPDATE gateway_keys SET revoked_ms = $2 WHERE sha256 = ANY($1) AND revoked_ms IS NULL",
            &[&revoked, &now],
        )
        .await
        .map_err(&err)?;
        tx.execute(BUMP_VERSION, &[]).await.map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(revoked.len())
    }

    /// Stores `records` (a key file's, as they are: revoked ones too) if
    /// the table holds no key yet, and says how many; `None` if it held some
    /// (nothing is stored then: two sets of keys are never merged).
    pub async fn import_if_empty(&self, records: &[KeyRecord]) -> Result<Option<usize>, KeyError> {
        let err = self.err();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(&err)?;
        tx.query_one(LOCK_VERSION, &[]).await.map_err(&err)?;
        let held: i64 = tx.query_one("SELECT count(*) FROM gateway_keys", &[]).await.map_err(&err)?.get(0);
        if held > 0 {
            return Ok(None);
        }
        for k in records {
            if k.sha256.len() != 64 || !k.sha256.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
                return Err(KeyError::Name(format!("the key of {} to import has no valid sha256", k.name)));
            }
            self.insert(&tx, k).await?;
        }
        tx.execute(BUMP_VERSION, &[]).await.map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(Some(records.len()))
    }

    /// The change counter: one more for each add, revocation or import.
    pub async fn version(&self) -> Result<i64, KeyError> {
        let client = self.client().await?;
        Ok(client.query_one("SELECT version FROM gateway_keys_version", &[]).await.map_err(self.err())?.get(0))
    }

    /// The live keys and the version they were read at (in one snapshot).
    pub async fn live(&self) -> Result<(i64, HashMap<String, KeyPolicy>), KeyError> {
        let err = self.err();
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(&err)?;
        let version: i64 = tx.query_one("SELECT version FROM gateway_keys_version", &[]).await.map_err(&err)?.get(0);
        let live = self.records(&tx, "WHERE revoked_ms IS NULL", &[]).await?;
        tx.commit().await.map_err(&err)?;
        Ok((version, crate::keys::live_of(&live)))
    }
}

/// What a [`PgKeys`] last read.
#[derive(Debug)]
struct View {
    version: i64,
    live: Arc<HashMap<String, KeyPolicy>>,
    /// When the database last answered.
    read_at: Instant,
    /// Why the last probe failed, if it did.
    failed: Option<String>,
}

/// The server's view of the keys in the database: the live keys in memory,
/// probed every [`PgKeys::PROBE_EVERY`] (one one-row SELECT) and read again
/// when they changed.
#[derive(Debug)]
pub struct PgKeys {
    store: PgKeyStore,
    view: Mutex<View>,
}

impl PgKeys {
    /// How often the database is asked whether the keys changed.
    pub const PROBE_EVERY: Duration = Duration::from_millis(500);
    /// A view whose database has not answered for this long honours no key.
    pub const STALE_AFTER: Duration = Duration::from_secs(3);

    /// Reads the live keys now (the database must answer) and keeps them
    /// fresh on a task of the current tokio runtime, which ends when the
    /// view is dropped.
    pub async fn start(store: PgKeyStore) -> Result<Arc<PgKeys>, KeyError> {
        let (version, live) = store.live().await?;
        let keys = Arc::new(PgKeys {
            store,
            view: Mutex::new(View { version, live: Arc::new(live), read_at: Instant::now(), failed: None }),
        });
        let weak: Weak<PgKeys> = Arc::downgrade(&keys);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PgKeys::PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(keys) = weak.upgrade() else { break };
                keys.refresh().await;
            }
        });
        Ok(keys)
    }

    /// The database's name, as shown.
    pub fn database(&self) -> &str {
        self.store.database()
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        match self.view.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Probes the version and reads the live keys again if it moved; a
    /// failure is kept (and no key honoured) until a probe succeeds.
    pub async fn refresh(&self) {
        let probe = async {
            let version = self.store.version().await?;
            if version == self.view().version {
                return Ok(None);
            }
            self.store.live().await.map(Some)
        };
        let outcome = match tokio::time::timeout(Self::STALE_AFTER, probe).await {
            Ok(r) => r,
            Err(_) => Err(KeyError::Database(format!(
                "{}: the gateway's keys: no answer within {:?}",
                self.store.database(),
                Self::STALE_AFTER
            ))),
        };
        let mut view = self.view();
        match outcome {
            Ok(read) => {
                if let Some((version, live)) = read {
                    view.version = version;
                    view.live = Arc::new(live);
                }
                view.read_at = Instant::now();
                if view.failed.take().is_some() {
                    tracing::info!(database = self.store.database(), "the key table can be read again");
                }
            }
            Err(e) => {
                if view.failed.is_none() {
                    tracing::error!("{e}; no key is honoured until it can be read");
                }
                view.failed = Some(e.to_string());
            }
        }
    }
}

impl LiveKeys for PgKeys {
    fn current(&self) -> Result<Arc<HashMap<String, KeyPolicy>>, KeyError> {
        let view = self.view();
        if let Some(why) = &view.failed {
            return Err(KeyError::Database(why.clone()));
        }
        let age = view.read_at.elapsed();
        if age > Self::STALE_AFTER {
            return Err(KeyError::Database(format!(
                "{}: the gateway's keys were last read {:.1} s ago",
                self.store.database(),
                age.as_secs_f64()
            )));
        }
        Ok(Arc::clone(&view.live))
    }
}
