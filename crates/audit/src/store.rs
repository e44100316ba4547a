//! Where the log lives: a small trait, and SQLite behind it (WAL, one writer,
//! every append in one transaction, fsynced before it is acknowledged unless
//! batching is chosen). PostgreSQL implements the same trait (`crate::postgres`).

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
    /// The log's folder or files could be read or replaced by others, or
    /// are links: the log is not opened rather than exposed.
    #[error("{path}: {what}\nhint: {hint}")]
    Unsafe {
        /// The folder or file.
        path: String,
        /// What is wrong.
        what: String,
        /// How to fix it.
        hint: String,
    },
    /// Checking or setting the permissions of the log's files failed.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// PostgreSQL failed. `database` names it without any password.
    #[error("audit database {database}: {source}")]
    Postgres {
        /// The database (`postgresql://user@host:port/name`, never the password).
        database: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another writer (another replica, another process) appended first:
    /// the log holds `size` entries, not the number the append was for.
    /// Nothing was written; reload the tree at `size` and try again.
    #[error("audit store: another writer appended first (the log now holds {size} entries); nothing was written")]
    Behind {
        /// How many entries the log holds now.
        size: u64,
    },
    /// The database's schema is newer than this program's.
    #[error(
        "audit database {database}: its schema is at version {found}, newer than version {known}, the newest this \
         airlock knows\nhint: a newer airlock migrated it; upgrade this one (every replica runs the same release)"
    )]
    SchemaTooNew {
        /// The database (never the password).
        database: String,
        /// The version the database is at.
        found: i64,
        /// The newest version this program knows.
        known: i64,
    },
    /// This store cannot do what was asked.
    #[error("audit store {path}: {what} is not supported")]
    Unsupported {
        /// The store.
        path: String,
        /// What was asked.
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
    /// The canonical entry bytes (covered by the leaf hash): what the
    /// columns above were copied from, and the entry's `source`.
    pub entry: &'a [u8],
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
    /// Several tree nodes, in the order asked for (one round trip where the
    /// store can: a replica that fell behind reloads its frontier with it).
    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Option<Hash>>, StoreError> {
        wanted.iter().map(|&(level, index)| self.node(level, index)).collect()
    }
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
    /// The checkpoint of the largest size, if any.
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self.checkpoints()?.pop())
    }
    /// Deletes payloads recorded before `time_ms`; leaves stay. Returns how
    /// many. It leaves no signed watermark, so `verify` then reports the
    /// payloads as missing: use [`crate::log::AuditLog::prune`].
    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError>;
    /// Deletes the payloads of entries below `index`; leaves stay. Returns
    /// how many. [`crate::log::AuditLog::prune`] calls it once a signed
    /// checkpoint records the watermark.
    fn prune_payloads_below(&mut self, index: u64) -> Result<u64, StoreError> {
        Err(StoreError::Unsupported { path: String::new(), what: format!("pruning payloads below entry {index}") })
    }
    /// Keeps a witness's cosignature of the checkpoint of `size`: `witness`
    /// is the witness's name, `line` the signature line (`— NAME BASE64`).
    /// A second cosignature of the same witness for the same size replaces the first.
    fn add_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        let _ = line;
        Err(StoreError::Unsupported {
            path: String::new(),
            what: format!("keeping {witness}'s cosignature of size {size}"),
        })
    }
    /// The cosignatures kept for the checkpoint of `size`, as (witness, line), by witness name.
    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let _ = size;
        Ok(Vec::new())
    }
}

/// A store chosen at run time (SQLite for one user, PostgreSQL for a team).
impl<S: Store + ?Sized> Store for Box<S> {
    fn size(&self) -> Result<u64, StoreError> {
        (**self).size()
    }
    fn append(&mut self, first: u64, entries: &[NewEntry], nodes: &[(u32, u64, Hash)]) -> Result<(), StoreError> {
        (**self).append(first, entries, nodes)
    }
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        (**self).node(level, index)
    }
    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Option<Hash>>, StoreError> {
        (**self).nodes(wanted)
    }
    fn scan(&self, from: u64, visit: &mut dyn FnMut(StoredEntry<'_>) -> bool) -> Result<(), StoreError> {
        (**self).scan(from, visit)
    }
    fn list(&self, filter: &Filter, visit: &mut dyn FnMut(Listed<'_>) -> bool) -> Result<(), StoreError> {
        (**self).list(filter, visit)
    }
    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        (**self).add_checkpoint(size, note)
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        (**self).checkpoints()
    }
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        (**self).latest_checkpoint()
    }
    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        (**self).prune_payloads(before_ms)
    }
    fn prune_payloads_below(&mut self, index: u64) -> Result<u64, StoreError> {
        (**self).prune_payloads_below(index)
    }
    fn add_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        (**self).add_cosignature(size, witness, line)
    }
    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        (**self).cosignatures(size)
    }
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
CREATE TABLE IF NOT EXISTS cosignatures (size INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness)) WITHOUT ROWID;
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// The database is created 0600 (SQLite gives its -wal and -shm files
    /// the database's mode); an existing one readable by others is narrowed
    /// to 0600, and one that is a symbolic link or another user's is refused.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let name = path.display().to_string();
        secure_file(path, true)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            secure_file(Path::new(&side), false)?;
        }
        let err = |source| StoreError::Sqlite { path: name.clone(), source };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
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
            "SELECT e.idx, e.time_ms, e.session, e.kind, p.payload, e.entry FROM entries e \
             LEFT JOIN payloads p ON p.idx = e.idx \
             WHERE (?1 IS NULL OR e.session = ?1) AND (?2 IS NULL OR e.kind = ?2) \
             AND (?3 IS NULL OR e.time_ms >= ?3) AND (?4 IS NULL OR e.time_ms < ?4) \
             ORDER BY e.idx {order} LIMIT ?5"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let limit = filter.last.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        let mut rows = stmt
            .query(params![filter.session, filter.kind, filter.since_ms, filter.until_ms, limit])
            .map_err(|e| self.err(e))?;
        type Row = (u64, i64, String, String, Option<Vec<u8>>, Vec<u8>);
        let mut newest_first: Vec<Row> = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let get = || -> rusqlite::Result<Row> {
                let payload = row.get_ref(4)?.as_bytes_or_null()?.map(<[u8]>::to_vec);
                let entry = row.get_ref(5)?.as_bytes()?.to_vec();
                Ok((row.get::<_, i64>(0)? as u64, row.get(1)?, row.get(2)?, row.get(3)?, payload, entry))
            };
            let (index, time_ms, session, kind, payload, entry) = get().map_err(|e| self.err(e))?;
            if filter.last.is_some() {
                newest_first.push((index, time_ms, session, kind, payload, entry));
                continue;
            }
            let listed =
                Listed { index, time_ms, session: &session, kind: &kind, payload: payload.as_deref(), entry: &entry };
            if !visit(listed) {
                return Ok(());
            }
        }
        for (index, time_ms, session, kind, payload, entry) in newest_first.iter().rev() {
            let listed = Listed { index: *index, time_ms: *time_ms, session, kind, payload: payload.as_deref(), entry };
            if !visit(listed) {
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

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.conn
            .query_row("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))
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

    fn prune_payloads_below(&mut self, index: u64) -> Result<u64, StoreError> {
        let below = index.min(i64::MAX as u64) as i64;
        let n = self.conn.execute("DELETE FROM payloads WHERE idx < ?1", params![below]).map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn add_cosignature(&mut self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO cosignatures (size, witness, line) VALUES (?1, ?2, ?3)",
                params![size as i64, witness, line],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT witness, line FROM cosignatures WHERE size = ?1 ORDER BY witness")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![size as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// What to do about one of the log's files or its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// It is private already.
    Private,
    /// It is ours but others may read or write it: narrow it to this mode.
    Narrow(u32),
    /// Refuse to use it, saying why and how to fix it.
    Refuse {
        /// What is wrong.
        what: String,
        /// How to fix it.
        hint: String,
    },
}

/// Decides about an existing file or folder of the log from its `lstat`:
/// `private` is 0600 for files, 0700 for the folder. A link is refused (a
/// link planted in the folder would redirect the log); so is anything not
/// owned by the user running airlock, which it may not narrow; so is a
/// shared folder with the sticky bit (`/tmp`), which must not be narrowed.
pub fn access(mode: u32, owner: u32, euid: u32, is_link: bool, is_dir: bool, private: u32) -> Access {
    let loose = mode & 0o777 & !private;
    let what_kind = if is_dir { "folder" } else { "file" };
    if is_link {
        return Access::Refuse {
            what: "is a symbolic link; the audit log's files are never opened through one".into(),
            hint: "remove the link (and check what it points to: it may have been planted)".into(),
        };
    }
    if loose == 0 {
        return Access::Private;
    }
    if owner != euid {
        return Access::Refuse {
            what: format!(
                "this {what_kind} of the audit log is not private (mode {:o}) and belongs to uid {owner}, not to you (uid {euid})",
                mode & 0o7777
            ),
            hint: format!("chmod {:o} it as its owner, or pass --dir a private folder of your own", private),
        };
    }
    if is_dir && mode & 0o1000 != 0 {
        return Access::Refuse {
            what: format!("is a shared folder (mode {:o}); the audit log needs a private one", mode & 0o7777),
            hint: "pass --dir a folder of your own".into(),
        };
    }
    Access::Narrow(mode & 0o7000 | (mode & 0o777 & private))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Applies [`access`] to `path`; `Ok(false)` when it does not exist.
fn make_private(path: &Path, private: u32) -> Result<bool, StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let shown = || path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(StoreError::Io { path: shown(), source }),
    };
    let is_link = meta.file_type().is_symlink();
    match access(meta.mode(), meta.uid(), euid(), is_link, meta.is_dir(), private) {
        Access::Private => Ok(true),
        Access::Narrow(mode) => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|source| StoreError::Io { path: shown(), source })?;
            Ok(true)
        }
        Access::Refuse { what, hint } => Err(StoreError::Unsafe { path: shown(), what, hint }),
    }
}

/// Makes an existing file of the log private, or (with `create`) creates it
/// empty with mode 0600 and without following a link, so that no moment
/// exists when it is readable by others.
fn secure_file(path: &Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if make_private(path, 0o600)? || !create {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it between the two looks: check theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => make_private(path, 0o600).map(|_| ()),
        Err(source) => Err(StoreError::Io { path: path.display().to_string(), source }),
    }
}

/// Creates the log's folder 0700 (with any missing parents), or narrows an
/// existing one of the user's to 0700, or refuses one that is shared, a
/// link, or another user's. The log's keys live there too.
pub fn private_folder(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if make_private(dir, 0o700)? {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
    // The umask may have narrowed it further, never widened it; check it as any other.
    make_private(dir, 0o700).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_or_folder_is_kept() {
        assert_eq!(access(0o100600, 1000, 1000, false, false, 0o600), Access::Private);
        assert_eq!(access(0o100400, 1000, 1000, false, false, 0o600), Access::Private);
        assert_eq!(access(0o40700, 1000, 1000, false, true, 0o700), Access::Private);
        // Another user's, but private: root may use it.
        assert_eq!(access(0o100600, 1000, 0, false, false, 0o600), Access::Private);
    }

    #[test]
    fn an_open_file_or_folder_of_ours_is_narrowed() {
        assert_eq!(access(0o100644, 1000, 1000, false, false, 0o600), Access::Narrow(0o600));
        assert_eq!(access(0o100666, 0, 0, false, false, 0o600), Access::Narrow(0o600));
        assert_eq!(access(0o40755, 1000, 1000, false, true, 0o700), Access::Narrow(0o700));
        assert_eq!(access(0o40750, 1000, 1000, false, true, 0o700), Access::Narrow(0o700));
    }

    #[test]
    fn links_shared_folders_and_others_files_are_refused() {
        let refused = |a: Access| matches!(a, Access::Refuse { .. });
        assert!(refused(access(0o120777, 1000, 1000, true, false, 0o600)));
        assert!(refused(access(0o100644, 1001, 1000, false, false, 0o600)));
        assert!(refused(access(0o41777, 0, 0, false, true, 0o700)), "/tmp must never be narrowed");
        assert!(refused(access(0o40755, 0, 1000, false, true, 0o700)));
    }
}
