//! Where the log lives: a small trait, and SQLite behind it (WAL, one writer,
//! every append in one transaction, fsynced before it is acknowledged unless
//! batching is chosen). PostgreSQL can implement the same trait later.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::merkle::Hash;

/// Storage errors, naming the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("audit database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// The database holds something the log never writes.
    #[error("audit database {path}: {what}")]
    Corrupt {
        /// The database file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

/// One stored entry, borrowed from the store while it is visited (so a
/// scan allocates nothing per entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEntry<'a> {
    /// Position in the log (0-based).
    pub index: u64,
    /// The canonical entry bytes the leaf hash is taken over.
    pub entry: &'a [u8],
    /// The leaf hash recorded at append time.
    pub leaf: Hash,
    /// The payload, unless pruned.
    pub payload: Option<&'a [u8]>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this session.
    pub session: Option<String>,
    /// Only this kind (`command`, `tool_call`, …).
    pub kind: Option<String>,
    /// Recorded at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Recorded before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only the newest this many of those that match.
    pub last: Option<u64>,
}

/// An entry as listed for people: where, when, what, and the payload unless pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    /// Position in the log.
    pub index: u64,
    /// When it was appended (ms since the epoch).
    pub time_ms: i64,
    /// Its session.
    pub session: &'a str,
    /// Its kind.
    pub kind: &'a str,
    /// The payload, unless pruned.
    pub payload: Option<&'a [u8]>,
}

/// A new entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Canonical entry bytes.
    pub entry: Vec<u8>,
    /// Its leaf hash.
    pub leaf: Hash,
    /// The (redacted) payload.
    pub payload: Vec<u8>,
    /// Milliseconds since the epoch, for `show` and `prune`.
    pub time_ms: i64,
    /// Session id.
    pub session: String,
    /// Event kind.
    pub kind: String,
}

/// The storage the log needs.
pub trait Store {
    /// How many entries there are.
    fn size(&self) -> Result<u64, StoreError>;
    /// Appends entries and the tree nodes they complete, atomically.
    fn append(&mut self, first: u64, entries: &[NewEntry], nodes: &[(u32, u64, Hash)]) -> Result<(), StoreError>;
    /// A complete tree node.
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError>;
    /// Entries from `from` on, in order, to `visit` (which may stop early by
    /// returning false). Bytes stored as text (by an editor of the database)
    /// are read as their bytes, so verification judges them rather than failing.
    fn scan(&self, from: u64, visit: &mut dyn FnMut(StoredEntry<'_>) -> bool) -> Result<(), StoreError>;
    /// Entries that match `filter`, oldest first, to `visit` (which may stop
    /// early by returning false). For people: it checks nothing.
    fn list(&self, filter: &Filter, visit: &mut dyn FnMut(Listed<'_>) -> bool) -> Result<(), StoreError>;
    /// Records a signed checkpoint note for a tree size.
    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError>;
    /// Every checkpoint, by size.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;
    /// Deletes payloads recorded before `time_ms`; leaves stay. Returns how many.
    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError>;
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: String,
}

/// How appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before an append is acknowledged (`synchronous = FULL`).
    Durable,
    /// Let WAL checkpoints flush (`synchronous = NORMAL`): a crash may lose
    /// the last appends, never corrupt the log.
    Batched,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    leaf BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    session TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payloads (idx INTEGER PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let name = path.display().to_string();
        let err = |source| StoreError::Sqlite { path: name.clone(), source };
        let conn = Connection::open(path).map_err(err)?;
        let sync = match durability {
            Durability::Durable => "FULL",
            Durability::Batched => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; {SCHEMA}"))
            .map_err(err)?;
        Ok(SqliteStore { conn, path: name })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    fn hash(&self, bytes: &[u8], what: impl FnOnce() -> String) -> Result<Hash, StoreError> {
        bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt { path: self.path.clone(), what: format!("{} is not 32 bytes", what()) })
    }
}

impl Store for SqliteStore {
    fn size(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn append(&mut self, first: u64, entries: &[NewEntry], nodes: &[(u32, u64, Hash)]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut put_entry = tx
                .prepare_cached(
                    "INSERT INTO entries (idx, entry, leaf, time_ms, session, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            let mut put_payload =
                tx.prepare_cached("INSERT INTO payloads (idx, payload) VALUES (?1, ?2)").map_err(err)?;
            for (i, e) in entries.iter().enumerate() {
                let idx = (first + i as u64) as i64;
                put_entry.execute(params![idx, e.entry, &e.leaf[..], e.time_ms, e.session, e.kind]).map_err(err)?;
                put_payload.execute(params![idx, e.payload]).map_err(err)?;
            }
            let mut put_node =
                tx.prepare_cached("INSERT INTO nodes (level, idx, hash) VALUES (?1, ?2, ?3)").map_err(err)?;
            for (level, index, hash) in nodes {
                put_node.execute(params![level, *index as i64, &hash[..]]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")
            .and_then(|mut s| s.query_row(params![level, index as i64], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        bytes.map(|b| self.hash(&b, || format!("node ({level}, {index})"))).transpose()
    }

    fn scan(&self, from: u64, visit: &mut dyn FnMut(StoredEntry<'_>) -> bool) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.idx, e.entry, e.leaf, p.payload FROM entries e LEFT JOIN payloads p ON p.idx = e.idx \
                 WHERE e.idx >= ?1 ORDER BY e.idx",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![from as i64]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let index: i64 = row.get(0).map_err(|e| self.err(e))?;
            let entry = row.get_ref(1).and_then(|v| Ok(v.as_bytes()?)).map_err(|e| self.err(e))?;
            let leaf = row.get_ref(2).and_then(|v| Ok(v.as_bytes()?)).map_err(|e| self.err(e))?;
            let payload = row.get_ref(3).and_then(|v| Ok(v.as_bytes_or_null()?)).map_err(|e| self.err(e))?;
            let leaf = self.hash(leaf, || format!("the leaf of entry {index}"))?;
            if !visit(StoredEntry { index: index as u64, entry, leaf, payload }) {
                break;
            }
        }
        Ok(())
    }

    fn list(&self, filter: &Filter, visit: &mut dyn FnMut(Listed<'_>) -> bool) -> Result<(), StoreError> {
        // Newest first when only the last few are wanted, then put back in order.
        let order = if filter.last.is_some() { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT e.idx, e.time_ms, e.session, e.kind, p.payload FROM entries e LEFT JOIN payloads p ON p.idx = e.idx \
             WHERE (?1 IS NULL OR e.session = ?1) AND (?2 IS NULL OR e.kind = ?2) \
             AND (?3 IS NULL OR e.time_ms >= ?3) AND (?4 IS NULL OR e.time_ms < ?4) \
             ORDER BY e.idx {order} LIMIT ?5"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let limit = filter.last.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        let mut rows = stmt
            .query(params![filter.session, filter.kind, filter.since_ms, filter.until_ms, limit])
            .map_err(|e| self.err(e))?;
        type Row = (u64, i64, String, String, Option<Vec<u8>>);
        let mut newest_first: Vec<Row> = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let get = || -> rusqlite::Result<Row> {
                let payload = row.get_ref(4)?.as_bytes_or_null()?.map(<[u8]>::to_vec);
                Ok((row.get::<_, i64>(0)? as u64, row.get(1)?, row.get(2)?, row.get(3)?, payload))
            };
            let (index, time_ms, session, kind, payload) = get().map_err(|e| self.err(e))?;
            if filter.last.is_some() {
                newest_first.push((index, time_ms, session, kind, payload));
                continue;
            }
            if !visit(Listed { index, time_ms, session: &session, kind: &kind, payload: payload.as_deref() }) {
                return Ok(());
            }
        }
        for (index, time_ms, session, kind, payload) in newest_first.iter().rev() {
            if !visit(Listed { index: *index, time_ms: *time_ms, session, kind, payload: payload.as_deref() }) {
                break;
            }
        }
        Ok(())
    }

    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO checkpoints (size, note) VALUES (?1, ?2)", params![size as i64, note])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT size, note FROM checkpoints ORDER BY size").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM payloads WHERE idx IN (SELECT idx FROM entries WHERE time_ms < ?1)",
                params![before_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }
}
