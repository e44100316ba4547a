//! Checkpoints of the workspace before each user turn, and `/rewind` to one
//! of them: a content-addressed store in airlock's private state folder.
//!
//! # Why a store and not overlayfs layers
//!
//! A per-turn overlayfs layer (workable in a user namespace with
//! `-o userxattr`) captures everything written below it, but only by the
//! processes that see the overlay. In airlock the worker edits files itself
//! and every command runs in a sandbox of its own, so the layer would have
//! to be stacked under every process of the session, merged back at the end
//! of each turn (renaming a lower folder gives `EXDEV`), and a crash would
//! leave the user's files spread across layers. The store instead looks at
//! the workspace from outside, after the fact: it works for any process that
//! wrote there (the worker, a build, a script, the user's editor), the
//! workspace stays an ordinary folder, and a rewind is an ordinary set of
//! writes that can itself be rewound.
//!
//! # What a checkpoint is
//!
//! Each file's content is kept once, named by its SHA-256
//! (`STATE/blobs/ab/cdef…`, written to a temporary name and renamed). A
//! checkpoint is a manifest (path → kind, mode, size, digest or link
//! target, and the file's identity: device, inode, modification and change
//! times) stored as the difference from the one before, with what each
//! changed entry replaced (`STATE/manifests/00000007.json`; the first holds
//! everything), and an index (`STATE/index.json`: id, label, time, totals,
//! change counts). The latest manifest is kept in memory; an older one is
//! the latest with the differences since taken back off, so listing,
//! comparing and restoring cost what changed since, not the workspace's
//! size.
//!
//! **Incremental.** A file whose inode, size, mode, modification *and
//! change* times are as the previous checkpoint saw them keeps its digest
//! without being read: the same rule as [`crate::snapshot`], whose module
//! note explains why `ctime` makes it safe. An unchanged file costs one
//! `fstatat`, and a walk keeps only what is new or different (entries found
//! unchanged are marked in a bitset, and what was not found is deleted).
//! Folders are handed to up to four threads. The identities are in the
//! manifests, so a new session resumes without reading anything again.
//!
//! **Cost** (`cargo bench -p airlock-core --bench rewind`): on a 2-CPU
//! virtual machine busy with other builds, a checkpoint of 50,000 files
//! with 10 changed took 140 to 160 ms (median; 68 ms at best), about what
//! `find` takes to stat the same tree there: nearly all of it is the
//! kernel's `fstatat`. The first checkpoint reads and stores every file (4
//! to 12 s for those 50,000 files there), so a front end takes it when the
//! session opens.
//!
//! **Durability** ([`CheckpointOptions::durable`], on by default): new
//! contents are flushed (one by one up to 16, then one `syncfs`) before the
//! manifest and the index, which are flushed too. A content lost anyway is
//! written again when its size is wrong, and found by its digest before a
//! restore uses it.
//!
//! The walk is this module's own rather than [`crate::snapshot::Snapshot`]'s:
//! a checkpoint must skip the excluded folders without entering them, list
//! folders (to restore empty ones and remove new ones), read each changed
//! file once to hash *and* keep it (a second read could see other bytes),
//! never leave a file unread because a time budget ran out, and open every
//! folder relative to its parent with `O_NOFOLLOW`, so that a link planted
//! while it walks cannot make it read (and later restore into the
//! workspace) a file from outside.
//!
//! **Excluded.** Names in [`CheckpointOptions::excluded_names`] are skipped
//! at any depth, folder and all, and never touched by a restore;
//! [`DEFAULT_EXCLUDED_NAMES`] holds git's folder (see [`GIT_NOT_REWOUND`]:
//! history is not rewound) and build and dependency folders that tools
//! regenerate and that can hold hundreds of thousands of files
//! (`node_modules`, `target`, `.venv`, `__pycache__`, tool caches). `build/`
//! and `dist/` are *not* excluded: many repositories keep sources or
//! scripts there. What a walk skipped is reported
//! ([`CheckpointReport::excluded`], [`CheckpointStore::excluded`]) so the
//! UI can say it. Sockets, FIFOs and devices are recorded but not
//! recreated; set-user-ID and set-group-ID bits of files are not restored.
//!
//! **Limits.** A file larger than [`CheckpointOptions::max_file_bytes`]
//! (64 MiB by default) is recorded by its digest but its content is not
//! kept; a restore that would need it reports it as not restorable. A file
//! that cannot be read is recorded as such and reported the same way.
//!
//! **Restore** first takes a checkpoint of the current state (so a rewind
//! can itself be undone: [`RestoreReport::undo`]), checks every stored
//! content it will need against its digest (a damaged one stops the restore
//! before anything changes: [`RewindError::CorruptBlob`]), then removes what
//! was created after the checkpoint (deepest first), creates folders, writes
//! files and links (each to a temporary name in its folder, then renamed
//! over the old entry, so a link in the way is replaced, never written
//! through), and sets folder modes last. Every folder on the way is opened
//! relative to the one above with `O_NOFOLLOW`: a folder that became a link
//! stops the restore at that path instead of writing outside the
//! workspace. Modification times are not restored: a restored file is new
//! to build tools, which is what makes them rebuild.
//!
//! **Garbage.** Everything is kept: the store grows by the content that
//! changed, and deleting the state folder drops it. Pruning is left for when
//! a session's size calls for it.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Names skipped at any depth unless the options say otherwise.
pub const DEFAULT_EXCLUDED_NAMES: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".gradle",
    ".next",
];

/// The largest file whose content is kept by default (64 MiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What the UI states about git: its folder is excluded.
pub const GIT_NOT_REWOUND: &str = "git's folder (.git) is not rewound: commits, branches, stashes and the index \
                                   stay as they are; a rewind restores the working files only";

/// A checkpoint's number (1, 2, …) in its store.
pub type CheckpointId = u64;

/// How a store walks and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// File or folder names skipped at any depth (a folder with all it
    /// holds); neither recorded nor touched by a restore.
    pub excluded_names: Vec<String>,
    /// Files larger than this are recorded by digest only.
    pub max_file_bytes: u64,
    /// Flush stored content and records to disk before a checkpoint is
    /// listed (off only for tests and benchmarks on throwaway folders).
    pub durable: bool,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            excluded_names: DEFAULT_EXCLUDED_NAMES.iter().map(|s| (*s).to_string()).collect(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            durable: true,
        }
    }
}

/// What differs between two states. Paths are relative to the workspace
/// (folders end in `/`) and come from the workspace: sanitise them before
/// they reach a terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Entries that exist only in the later state.
    pub added: Vec<String>,
    /// Entries whose kind, mode, content or link target differ.
    pub modified: Vec<String>,
    /// Entries that exist only in the earlier state.
    pub deleted: Vec<String>,
}

impl ChangeSet {
    /// How many entries changed.
    pub fn len(&self) -> usize {
        self.added.len() + self.modified.len() + self.deleted.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One checkpoint as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Its number.
    pub id: CheckpointId,
    /// What it was taken before (`turn 3`).
    pub label: String,
    /// When, in milliseconds since 1970.
    pub unix_ms: u64,
    /// Regular files recorded.
    pub files: usize,
    /// Symbolic links recorded.
    pub links: usize,
    /// Folders recorded.
    pub folders: usize,
    /// Bytes in the files recorded.
    pub bytes: u64,
    /// What changed since the checkpoint before (everything, for the first).
    pub changes: ChangeSet,
}

/// An entry whose content was not kept, or cannot be put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotKept {
    /// Relative to the workspace.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// What taking a checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// The checkpoint.
    pub info: CheckpointInfo,
    /// Files known unchanged by their metadata alone (not read).
    pub stat_only: usize,
    /// Files read and hashed.
    pub files_read: usize,
    /// Bytes read from them.
    pub bytes_read: u64,
    /// New contents added to the store.
    pub blobs_written: usize,
    /// Files recorded without their content (too large, unreadable) and
    /// folders that could not be listed.
    pub not_kept: Vec<NotKept>,
    /// Paths skipped by [`CheckpointOptions::excluded_names`].
    pub excluded: Vec<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// The checkpoint the workspace now matches.
    pub restored: CheckpointId,
    /// The checkpoint taken just before, to undo this restore.
    pub undo: CheckpointId,
    /// Files and links written (created or replaced).
    pub written: Vec<String>,
    /// Files and links removed.
    pub removed: Vec<String>,
    /// Folders created.
    pub folders_created: Vec<String>,
    /// Folders removed (created after the checkpoint, now empty).
    pub folders_removed: Vec<String>,
    /// Folders created after the checkpoint and kept because they still
    /// hold excluded entries (`node_modules/`).
    pub folders_kept: Vec<String>,
    /// Folders whose mode was set.
    pub modes_set: Vec<String>,
    /// Entries of the checkpoint that could not be put back.
    pub not_restorable: Vec<NotKept>,
}

/// Why the store failed. Each variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum RewindError {
    /// The state folder cannot be used.
    #[error("{path}: {detail}")]
    StateFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another session holds the store.
    #[error("{path}: another airlock session is using this workspace's checkpoints\nhint: end that session first")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A record of the store cannot be read.
    #[error(
        "{path}: damaged checkpoint record: {detail}\nhint: move the state folder aside to start a new store (its \
         checkpoints are then lost)"
    )]
    Damaged {
        /// The record.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// No checkpoint has that number.
    #[error("no checkpoint {0}\nhint: /rewind lists the checkpoints")]
    UnknownCheckpoint(CheckpointId),
    /// Stored content does not match its digest: nothing was changed.
    #[error("{path}: its stored content {blob} is {detail}; nothing was restored")]
    CorruptBlob {
        /// The workspace path that needed it.
        path: String,
        /// The blob.
        blob: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A restore stopped part way.
    #[error(
        "restore stopped at {path}: {source}; {done} changes were already made\nhint: rewinding to checkpoint \
         {undo} puts back the files as they were before"
    )]
    Restore {
        /// The workspace path.
        path: String,
        /// Why.
        source: io::Error,
        /// Changes made before it stopped.
        done: usize,
        /// The checkpoint taken before the restore.
        undo: CheckpointId,
    },
}

// ---------------------------------------------------------------------------
// Entries and manifests.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Link,
    Dir,
    Special,
}

/// The kernel's account of an entry: when all of it (with size and mode)
/// is unchanged, nothing wrote the entry (see [`crate::snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Identity {
    dev: u64,
    ino: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: Kind,
    /// Permission bits (`0o7777`).
    mode: u32,
    size: u64,
    /// A file's SHA-256; `None` when it could not be read.
    digest: Option<[u8; 32]>,
    /// A file's content is in the store.
    stored: bool,
    /// A link's target.
    target: Vec<u8>,
    /// A folder whose entries could not be listed (nothing beneath it is
    /// known, so a restore removes nothing beneath it).
    unlisted: bool,
    id: Identity,
}

impl Entry {
    fn from_stat(st: &libc::stat) -> Entry {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Link,
            libc::S_IFDIR => Kind::Dir,
            _ => Kind::Special,
        };
        Entry {
            kind,
            mode: st.st_mode & 0o7777,
            size: if kind == Kind::Dir { 0 } else { st.st_size as u64 },
            digest: None,
            stored: false,
            target: Vec::new(),
            unlisted: false,
            id: Identity {
                dev: st.st_dev,
                ino: st.st_ino,
                mtime_ns: st.st_mtime.saturating_mul(1_000_000_000).saturating_add(st.st_mtime_nsec),
                ctime_ns: st.st_ctime.saturating_mul(1_000_000_000).saturating_add(st.st_ctime_nsec),
            },
        }
    }

    fn untouched_since(&self, before: &Entry) -> bool {
        self.kind == before.kind && self.mode == before.mode && self.size == before.size && self.id == before.id
    }

    /// Whether a person would call them the same: kind, mode, and content
    /// or target (identity aside).
    fn same_content(&self, other: &Entry) -> bool {
        if self.kind != other.kind || self.mode != other.mode {
            return false;
        }
        match self.kind {
            Kind::File => match (self.digest, other.digest) {
                (Some(a), Some(b)) => a == b && self.size == other.size,
                _ => self.untouched_since(other),
            },
            Kind::Link => self.target == other.target,
            Kind::Dir | Kind::Special => true,
        }
    }

    /// Whether a restore can put it back.
    fn restorable(&self) -> Result<(), &'static str> {
        match self.kind {
            Kind::File if self.digest.is_none() => Err("it could not be read when the checkpoint was taken"),
            Kind::File if !self.stored => Err("it is larger than the size limit: only its digest was kept"),
            Kind::Special => Err("special files (FIFOs, sockets, devices) are not recreated"),
            _ => Ok(()),
        }
    }
}

/// Relative path (bytes, `/`-separated) → entry, in byte order: a folder
/// comes before everything beneath it.
type Manifest = BTreeMap<Vec<u8>, Entry>;

fn shown(path: &[u8], kind: Kind) -> String {
    let mut s = String::from_utf8_lossy(path).into_owned();
    if kind == Kind::Dir {
        s.push('/');
    }
    s
}

fn shown_plain(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Whether `path` is `dir` or beneath it.
fn beneath(path: &[u8], dir: &[u8]) -> bool {
    path.starts_with(dir) && path.get(dir.len()).is_some_and(|b| *b == b'/')
}

// ---------------------------------------------------------------------------
// Records on disk.

/// A path as JSON text: UTF-8 as is, with `%` and bytes that are not UTF-8
/// escaped as `%XX`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// `f` file, `l` link, `d` folder, `s` special.
    k: char,
    m: u32,
    #[serde(default)]
    z: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    s: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    u: bool,
    /// Device, inode, modification and change times (ns).
    i: (u64, u64, i64, i64),
}

impl Record {
    fn of(e: &Entry) -> Record {
        Record {
            k: match e.kind {
                Kind::File => 'f',
                Kind::Link => 'l',
                Kind::Dir => 'd',
                Kind::Special => 's',
            },
            m: e.mode,
            z: e.size,
            h: e.digest.map(hex::encode),
            s: e.stored,
            t: (e.kind == Kind::Link).then(|| escape(&e.target)),
            u: e.unlisted,
            i: (e.id.dev, e.id.ino, e.id.mtime_ns, e.id.ctime_ns),
        }
    }

    fn entry(&self) -> Option<Entry> {
        let kind = match self.k {
            'f' => Kind::File,
            'l' => Kind::Link,
            'd' => Kind::Dir,
            's' => Kind::Special,
            _ => return None,
        };
        let digest = match &self.h {
            Some(h) => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(h, &mut d).ok()?;
                Some(d)
            }
            None => None,
        };
        Some(Entry {
            kind,
            mode: self.m & 0o7777,
            size: self.z,
            digest,
            stored: self.s,
            target: match &self.t {
                Some(t) => unescape(t)?,
                None => Vec::new(),
            },
            unlisted: self.u,
            id: Identity { dev: self.i.0, ino: self.i.1, mtime_ns: self.i.2, ctime_ns: self.i.3 },
        })
    }
}

/// One checkpoint's manifest as the difference from the one before.
#[derive(Serialize, Deserialize)]
struct DeltaFile {
    v: u32,
    id: CheckpointId,
    set: BTreeMap<String, Record>,
    del: Vec<String>,
    /// What each path set or deleted was before: a restore goes back from
    /// the latest manifest through the few differences since, without
    /// reading the first (whole) one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    old: BTreeMap<String, Record>,
}

#[derive(Serialize, Deserialize, Clone)]
struct IndexRecord {
    id: CheckpointId,
    label: String,
    unix_ms: u64,
    files: usize,
    links: usize,
    folders: usize,
    bytes: u64,
    added: usize,
    modified: usize,
    deleted: usize,
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    v: u32,
    workspace: String,
    checkpoints: Vec<IndexRecord>,
}

const FORMAT: u32 = 1;

fn manifest_name(id: CheckpointId) -> String {
    format!("{id:08}.json")
}

/// Applies a stored difference; returns what it changed.
fn apply_delta(manifest: &mut Manifest, delta: &DeltaFile) -> Option<ChangeSet> {
    let mut changes = ChangeSet::default();
    for path in &delta.del {
        let p = unescape(path)?;
        if let Some(old) = manifest.remove(&p) {
            changes.deleted.push(shown(&p, old.kind));
        }
    }
    for (path, record) in &delta.set {
        let p = unescape(path)?;
        let entry = record.entry()?;
        match manifest.get(&p) {
            Some(old) if old.same_content(&entry) => {}
            Some(_) => changes.modified.push(shown(&p, entry.kind)),
            None => changes.added.push(shown(&p, entry.kind)),
        }
        manifest.insert(p, entry);
    }
    changes.added.sort();
    changes.modified.sort();
    changes.deleted.sort();
    Some(changes)
}

/// Takes a stored difference back off `manifest` (the one it produced).
fn unapply_delta(manifest: &mut Manifest, delta: &DeltaFile) -> Option<()> {
    for path in delta.set.keys() {
        let p = unescape(path)?;
        match delta.old.get(path) {
            Some(r) => manifest.insert(p, r.entry()?),
            None => manifest.remove(&p),
        };
    }
    for path in &delta.del {
        manifest.insert(unescape(path)?, delta.old.get(path)?.entry()?);
    }
    Some(())
}

/// The difference from `old` to `new`: every entry that differs at all
/// (identity included, to resume without reading) for the record, and what
/// a person would call a change.
fn compare<'a>(old: &'a Manifest, new: &'a Manifest) -> (DeltaFile, ChangeSet) {
    let mut delta = DeltaFile { v: FORMAT, id: 0, set: BTreeMap::new(), del: Vec::new(), old: BTreeMap::new() };
    let mut changes = ChangeSet::default();
    let mut a = old.iter().peekable();
    let mut b = new.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((p, e)), None) => {
                delta.del.push(escape(p));
                delta.old.insert(escape(p), Record::of(e));
                changes.deleted.push(shown(p, e.kind));
                a.next();
            }
            (None, Some((p, e))) => {
                delta.set.insert(escape(p), Record::of(e));
                changes.added.push(shown(p, e.kind));
                b.next();
            }
            (Some((pa, ea)), Some((pb, eb))) => match pa.cmp(pb) {
                std::cmp::Ordering::Less => {
                    delta.del.push(escape(pa));
                    delta.old.insert(escape(pa), Record::of(ea));
                    changes.deleted.push(shown(pa, ea.kind));
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    delta.set.insert(escape(pb), Record::of(eb));
                    changes.added.push(shown(pb, eb.kind));
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if ea != eb {
                        delta.set.insert(escape(pb), Record::of(eb));
                        delta.old.insert(escape(pb), Record::of(ea));
                        if !ea.same_content(eb) {
                            changes.modified.push(shown(pb, eb.kind));
                        }
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    (delta, changes)
}

// ---------------------------------------------------------------------------
// System calls, relative to folders held open.

fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated name relative to a dir fd we hold (or AT_FDCWD); the fd returned is ours.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed is a valid `stat`; fstatat fills it; the name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed is a valid `stat`; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above, on a fd we hold.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: readlinkat into our own buffer of the length given.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn mkdir_at(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a dir fd we hold and a valid name.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) })
}

fn unlink_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: a dir fd we hold and a valid name; unlinkat never follows a link.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) })
}

fn rename_at(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: both names in one dir fd we hold; rename replaces a link rather than following it.
    check(unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) })
}

fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: a fd we hold.
    check(unsafe { libc::fchmod(fd, mode as libc::mode_t) })
}

fn temp_name(prefix: &str) -> io::Result<CString> {
    let mut random = [0u8; 8];
    // SAFETY: getrandom into our own buffer.
    if unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) } != random.len() as isize {
        return Err(io::Error::last_os_error());
    }
    cstring(format!("{prefix}{}", hex::encode(random)).as_bytes())
}

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// A folder's entries, read from a fd opened without following links.
struct DirStream {
    dirp: *mut libc::DIR,
}

impl DirStream {
    fn new(fd: OwnedFd) -> io::Result<DirStream> {
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an open dir fd whose ownership passes to the DIR stream.
        let dirp = unsafe { libc::fdopendir(raw) };
        if dirp.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so the fd is still ours to close.
            unsafe { libc::close(raw) };
            return Err(e);
        }
        Ok(DirStream { dirp })
    }

    fn fd(&self) -> RawFd {
        // SAFETY: a DIR stream we hold.
        unsafe { libc::dirfd(self.dirp) }
    }

    fn next_name(&mut self) -> Option<io::Result<CString>> {
        loop {
            // SAFETY: errno is thread-local; clearing it tells end-of-stream from an error.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: a DIR stream we hold; the entry is read before the next call.
            let ent = unsafe { libc::readdir64(self.dirp) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                return if e.raw_os_error() == Some(0) { None } else { Some(Err(e)) };
            }
            // SAFETY: d_name is NUL-terminated within the entry returned.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            return Some(Ok(name.to_owned()));
        }
    }
}

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: closes the stream (and its fd) we own, once.
        unsafe { libc::closedir(self.dirp) };
    }
}

// ---------------------------------------------------------------------------
// The blob store.

struct Blobs {
    dir: OwnedFd,
    path: PathBuf,
    durable: bool,
}

fn blob_name(d: &[u8; 32]) -> (String, String) {
    let h = hex::encode(d);
    (h[..2].to_string(), h[2..].to_string())
}

impl Blobs {
    fn path_of(&self, d: &[u8; 32]) -> PathBuf {
        let (a, b) = blob_name(d);
        self.path.join(a).join(b)
    }

    fn io(&self, d: &[u8; 32]) -> impl Fn(io::Error) -> RewindError {
        let path = self.path_of(d);
        move |source| RewindError::Io { path: path.clone(), source }
    }

    fn prefix(&self, d: &[u8; 32], create: bool) -> io::Result<(OwnedFd, CString)> {
        let (a, b) = blob_name(d);
        let a = cstring(a.as_bytes())?;
        if create {
            match mkdir_at(self.dir.as_raw_fd(), &a, 0o700) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                _ => {}
            }
        }
        Ok((open_at(self.dir.as_raw_fd(), &a, DIR_FLAGS, 0)?, cstring(b.as_bytes())?))
    }

    /// Keeps `bytes` under their digest `d`; whether they were new. Sync
    /// is left to the caller when `sync` is false.
    fn put(&self, d: &[u8; 32], bytes: &[u8], sync: bool) -> Result<bool, RewindError> {
        let (dir, name) = self.prefix(d, true).map_err(self.io(d))?;
        // Already kept (content is named by its digest); a short one left by
        // a crash is written again.
        if let Ok(st) = stat_at(dir.as_raw_fd(), &name)
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
            && st.st_size as u64 == bytes.len() as u64
        {
            return Ok(false);
        }
        let tmp = temp_name("tmp-").map_err(self.io(d))?;
        let fd =
            open_at(dir.as_raw_fd(), &tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o400)
                .map_err(self.io(d))?;
        let mut file = std::fs::File::from(fd);
        let written = file.write_all(bytes).and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        drop(file);
        let done = written.and_then(|()| rename_at(dir.as_raw_fd(), &tmp, &name));
        if let Err(e) = done {
            let _ = unlink_at(dir.as_raw_fd(), &tmp, 0);
            return Err(self.io(d)(e));
        }
        Ok(true)
    }

    fn open(&self, d: &[u8; 32]) -> io::Result<std::fs::File> {
        let (dir, name) = self.prefix(d, false)?;
        Ok(std::fs::File::from(open_at(dir.as_raw_fd(), &name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?))
    }

    /// Checks that the content kept for `path` is there and matches.
    fn verify(&self, path: &[u8], d: &[u8; 32], size: u64) -> Result<(), RewindError> {
        let corrupt =
            |detail: String| RewindError::CorruptBlob { path: shown_plain(path), blob: self.path_of(d), detail };
        let mut file = self.open(d).map_err(|e| corrupt(format!("missing ({e})")))?;
        let mut hasher = Sha256::new();
        let n = io::copy(&mut file, &mut hasher).map_err(|e| corrupt(format!("unreadable ({e})")))?;
        if n != size || hasher.finalize().as_slice() != d {
            return Err(corrupt("damaged: its content does not match its digest".into()));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The walk.

/// The previous manifest by path, for the walk's one lookup per entry (a
/// hash map: the sorted map's lookups cost more than the `fstatat`s).
/// Each path maps to its entry and its position in the manifest (to mark
/// it seen, so what was not seen is known deleted).
type Lookup<'m> = std::collections::HashMap<&'m [u8], (usize, &'m Entry), std::hash::BuildHasherDefault<PathHasher>>;

/// A fast hash of a path (FxHash's mixing, eight bytes at a time). Names
/// chosen to collide would only slow their author's own checkpoints.
#[derive(Default)]
struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Walk<'a> {
    prev: &'a Lookup<'a>,
    excluded_names: &'a [Vec<u8>],
    /// Where changed files' content goes (`None`: hash only).
    blobs: Option<&'a Blobs>,
    max: u64,
    /// Where subfolders go to be walked by another thread.
    queue: Option<&'a Queue>,
    /// Entries new or different since the previous manifest (an entry
    /// exactly as it was is only marked in `seen`: copying fifty thousand
    /// paths costs more than their `fstatat`s).
    out: Vec<(Vec<u8>, Entry)>,
    /// The previous manifest's entries found again, one bit each.
    seen: Vec<u64>,
    excluded: Vec<Vec<u8>>,
    not_kept: Vec<(Vec<u8>, String)>,
    /// Folders whose entries could not all be listed.
    unlisted: Vec<Vec<u8>>,
    stat_only: usize,
    files_read: usize,
    bytes_read: u64,
    blobs_written: usize,
    buf: Vec<u8>,
}

/// New blobs synced one by one up to this many; past it, one `syncfs` at
/// the end is cheaper (a first checkpoint writes every file).
const SYNC_EACH_UP_TO: usize = 16;

impl<'a> Walk<'a> {
    fn new(
        prev: &'a Lookup<'a>,
        excluded_names: &'a [Vec<u8>],
        blobs: Option<&'a Blobs>,
        max: u64,
        queue: Option<&'a Queue>,
    ) -> Walk<'a> {
        Walk {
            prev,
            excluded_names,
            blobs,
            max,
            queue,
            out: Vec::new(),
            seen: vec![0; prev.len().div_ceil(64)],
            excluded: Vec::new(),
            not_kept: Vec::new(),
            unlisted: Vec::new(),
            stat_only: 0,
            files_read: 0,
            bytes_read: 0,
            blobs_written: 0,
            buf: Vec::new(),
        }
    }

    fn dir(&mut self, stream: &mut DirStream, path: &mut Vec<u8>) -> Result<(), RewindError> {
        let fd = stream.fd();
        while let Some(next) = stream.next_name() {
            let name = match next {
                Ok(name) => name,
                Err(e) => {
                    self.not_kept.push((path.clone(), format!("folder not fully listed: {e}")));
                    self.unlisted.push(path.clone());
                    break;
                }
            };
            let len = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.to_bytes());
            if self.excluded_names.iter().any(|n| n.as_slice() == name.to_bytes()) {
                self.excluded.push(path.clone());
            } else {
                self.entry(fd, &name, path)?;
            }
            path.truncate(len);
        }
        Ok(())
    }

    /// Walks a folder opened by its parent.
    fn subdir(&mut self, fd: OwnedFd, path: &mut Vec<u8>) -> Result<(), RewindError> {
        match DirStream::new(fd) {
            Ok(mut sub) => self.dir(&mut sub, path),
            Err(e) => {
                self.unlisted.push(path.clone());
                self.not_kept.push((path.clone(), format!("folder cannot be listed: {e}")));
                Ok(())
            }
        }
    }

    fn entry(&mut self, dir: RawFd, name: &CStr, path: &mut Vec<u8>) -> Result<(), RewindError> {
        let st = match stat_at(dir, name) {
            Ok(st) => st,
            // Gone since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => {
                self.not_kept.push((path.clone(), format!("cannot be examined: {e}")));
                return Ok(());
            }
        };
        let mut entry = Entry::from_stat(&st);
        match entry.kind {
            Kind::Dir => {
                self.keep(path, entry);
                let fd = match open_at(dir, name, DIR_FLAGS, 0) {
                    Ok(fd) => fd,
                    Err(e) => {
                        self.unlisted.push(path.clone());
                        self.not_kept.push((path.clone(), format!("folder cannot be listed: {e}")));
                        return Ok(());
                    }
                };
                let fd = match self.queue {
                    Some(queue) => match queue.offer(path, fd) {
                        None => return Ok(()),
                        Some(fd) => fd,
                    },
                    None => fd,
                };
                self.subdir(fd, path)?;
                return Ok(());
            }
            Kind::File => match self.prev.get(path.as_slice()).map(|(_, p)| *p) {
                Some(p) if p.digest.is_some() && entry.untouched_since(p) => {
                    entry.digest = p.digest;
                    entry.stored = p.stored;
                    self.stat_only += 1;
                }
                _ => {
                    if !self.read(dir, name, path, &mut entry)? {
                        return Ok(());
                    }
                }
            },
            Kind::Link => match self.prev.get(path.as_slice()).map(|(_, p)| *p) {
                Some(p) if entry.untouched_since(p) => entry.target = p.target.clone(),
                _ => match readlink_at(dir, name) {
                    Ok(t) => entry.target = t,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                    Err(e) => {
                        self.not_kept.push((path.clone(), format!("link cannot be read: {e}")));
                        return Ok(());
                    }
                },
            },
            Kind::Special => {}
        }
        self.keep(path, entry);
        Ok(())
    }

    /// Marks an entry seen; keeps it when it is new or differs.
    fn keep(&mut self, path: &[u8], entry: Entry) {
        if let Some(&(i, p)) = self.prev.get(path) {
            self.seen[i / 64] |= 1 << (i % 64);
            if *p == entry {
                return;
            }
        }
        self.out.push((path.to_vec(), entry));
    }

    /// Reads a changed file once: hashes it and keeps its content. Returns
    /// false when it is gone.
    fn read(&mut self, dir: RawFd, name: &CStr, path: &[u8], entry: &mut Entry) -> Result<bool, RewindError> {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = match open_at(dir, name, flags, 0) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
            Err(e) => {
                self.not_kept.push((path.to_vec(), format!("cannot be read: {e}")));
                return Ok(true);
            }
        };
        // The identity of what was opened: if it changes after this, the
        // next checkpoint sees a new ctime and reads it again.
        let st = match fstat(fd.as_raw_fd()) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => st,
            _ => {
                self.not_kept.push((path.to_vec(), "changed while it was read".into()));
                return Ok(true);
            }
        };
        *entry = Entry::from_stat(&st);
        let mut file = std::fs::File::from(fd);
        let mut content = Vec::with_capacity(entry.size.min(self.max) as usize);
        let mut hasher = Sha256::new();
        let read = (&mut file).take(self.max.saturating_add(1)).read_to_end(&mut content).and_then(|n| {
            hasher.update(&content);
            let mut total = n as u64;
            if total > self.max {
                content = Vec::new();
                self.buf.resize(256 * 1024, 0);
                loop {
                    let n = file.read(&mut self.buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&self.buf[..n]);
                    total += n as u64;
                }
            }
            Ok(total)
        });
        let total = match read {
            Ok(total) => total,
            Err(e) => {
                self.not_kept.push((path.to_vec(), format!("cannot be read: {e}")));
                return Ok(true);
            }
        };
        self.files_read += 1;
        self.bytes_read += total;
        let digest: [u8; 32] = hasher.finalize().into();
        entry.digest = Some(digest);
        entry.size = total;
        if total > self.max {
            self.not_kept.push((
                path.to_vec(),
                format!("{total} bytes, over the limit of {}: recorded by digest, content not kept", self.max),
            ));
        } else if let Some(blobs) = self.blobs {
            let sync = blobs.durable && self.blobs_written < SYNC_EACH_UP_TO;
            if blobs.put(&digest, &content, sync)? {
                self.blobs_written += 1;
            }
            entry.stored = true;
        }
        Ok(true)
    }
}

/// Folders waiting to be walked, shared by the walking threads: a thread
/// hands a subfolder over while others wait for work, and walks it itself
/// otherwise (so at most a few folders are held open in the queue).
struct Queue {
    state: std::sync::Mutex<QueueState>,
    ready: std::sync::Condvar,
    threads: usize,
}

struct QueueState {
    jobs: Vec<(Vec<u8>, OwnedFd)>,
    busy: usize,
    failed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the folder when some thread may be idle; gives it back otherwise.
    fn offer(&self, path: &[u8], fd: OwnedFd) -> Option<OwnedFd> {
        let mut state = self.lock();
        if state.jobs.len() >= self.threads {
            return Some(fd);
        }
        state.jobs.push((path.to_vec(), fd));
        drop(state);
        self.ready.notify_one();
        None
    }

    /// Walks folders from the queue until none is left and no thread is
    /// still walking one (which could add more).
    fn work(&self, walk: &mut Walk<'_>) -> Result<(), RewindError> {
        loop {
            let job = {
                let mut state = self.lock();
                loop {
                    if state.failed {
                        break None;
                    }
                    if let Some(job) = state.jobs.pop() {
                        state.busy += 1;
                        break Some(job);
                    }
                    if state.busy == 0 {
                        break None;
                    }
                    state = self.ready.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            let Some((mut path, fd)) = job else {
                self.ready.notify_all();
                return Ok(());
            };
            let result = walk.subdir(fd, &mut path);
            let mut state = self.lock();
            state.busy -= 1;
            state.failed |= result.is_err();
            let done = state.busy == 0 && state.jobs.is_empty();
            drop(state);
            if done || result.is_err() {
                self.ready.notify_all();
            }
            result?;
        }
    }
}

/// A walk's results, merged.
struct Walked {
    /// New or different entries, by path.
    changed: Vec<(Vec<u8>, Entry)>,
    /// Entries of the previous manifest not found again, by path.
    deleted: Vec<Vec<u8>>,
    excluded: Vec<Vec<u8>>,
    not_kept: Vec<(Vec<u8>, String)>,
    stat_only: usize,
    files_read: usize,
    bytes_read: u64,
    blobs_written: usize,
}

/// Threads that walk at once: stat calls dominate, and they overlap well.
const WALK_THREADS_MAX: usize = 4;

// ---------------------------------------------------------------------------
// Planning a restore (pure) and applying it.

#[derive(Debug, Default)]
struct Plan {
    /// Deepest first.
    remove: Vec<(Vec<u8>, Kind)>,
    /// Parents first: folders, files and links to create or replace.
    create: Vec<(Vec<u8>, Entry)>,
    /// Folders made writable before, and given their mode after (deepest
    /// first).
    modes: Vec<(Vec<u8>, u32)>,
    /// Existing folders to open for writing first (their mode lacks `u+wx`).
    unlock: Vec<Vec<u8>>,
    not_restorable: Vec<(Vec<u8>, &'static str)>,
}

/// What turns `cur` into `tgt`, leaving alone what `excluded` names and
/// whatever lies beneath a folder the checkpoint could not list.
fn plan(cur: &Manifest, tgt: &Manifest, excluded: &dyn Fn(&[u8]) -> bool) -> Plan {
    let mut out = Plan::default();
    let unlisted: Vec<&[u8]> =
        tgt.iter().filter(|(_, e)| e.kind == Kind::Dir && e.unlisted).map(|(p, _)| p.as_slice()).collect();
    let under_unlisted = |p: &[u8]| unlisted.iter().any(|d| beneath(p, d));
    let mut removed: BTreeSet<&[u8]> = BTreeSet::new();
    for (p, c) in cur {
        let remove = match tgt.get(p) {
            _ if excluded(p) => false,
            None => !under_unlisted(p),
            // A folder in place of a file or the reverse (a link in place of
            // a folder included): the old one goes first.
            Some(t) => (c.kind == Kind::Dir) != (t.kind == Kind::Dir) && t.restorable().is_ok(),
        };
        if remove {
            removed.insert(p);
            out.remove.push((p.clone(), c.kind));
        }
    }
    out.remove.reverse();
    for (p, t) in tgt {
        if excluded(p) {
            continue;
        }
        let c = cur.get(p).filter(|_| !removed.contains(p.as_slice()));
        if t.kind == Kind::Dir {
            match c {
                Some(c) if c.kind == Kind::Dir => {
                    if c.mode & 0o300 != 0o300 {
                        out.unlock.push(p.clone());
                    }
                    if c.mode != t.mode || c.mode & 0o300 != 0o300 {
                        out.modes.push((p.clone(), t.mode));
                    }
                }
                _ => {
                    out.create.push((p.clone(), t.clone()));
                    out.modes.push((p.clone(), t.mode));
                }
            }
            continue;
        }
        if c.is_some_and(|c| c.same_content(t)) {
            continue;
        }
        match t.restorable() {
            Ok(()) => out.create.push((p.clone(), t.clone())),
            Err(why) => out.not_restorable.push((p.clone(), why)),
        }
    }
    out.modes.reverse();
    out
}

/// The workspace's folders, opened one below the other without following
/// links (`O_PATH`: no read permission needed), the last one kept.
struct Tree {
    root: OwnedFd,
    last: Option<(Vec<u8>, OwnedFd)>,
}

impl Tree {
    fn open(workspace: &Path) -> io::Result<Tree> {
        let root =
            open_at(libc::AT_FDCWD, &cstring(workspace.as_os_str().as_bytes())?, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Tree { root, last: None })
    }

    /// The folder holding `path` and its last name.
    fn parent(&mut self, path: &[u8]) -> io::Result<(RawFd, CString)> {
        let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..0], path),
        };
        let name = cstring(name)?;
        if dir.is_empty() {
            return Ok((self.root.as_raw_fd(), name));
        }
        if let Some((p, fd)) = &self.last
            && p.as_slice() == dir
        {
            return Ok((fd.as_raw_fd(), name));
        }
        let mut fd: Option<OwnedFd> = None;
        for part in dir.split(|b| *b == b'/') {
            let at = fd.as_ref().map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
            fd = Some(open_at(at, &cstring(part)?, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?);
        }
        let fd = fd.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let raw = fd.as_raw_fd();
        self.last = Some((dir.to_vec(), fd));
        Ok((raw, name))
    }

    fn forget(&mut self) {
        self.last = None;
    }
}

/// Writes a file's kept content to a new name in `dir`, checking it
/// against its digest, and renames it over `name`.
fn write_file(dir: RawFd, name: &CStr, blobs: &Blobs, path: &[u8], e: &Entry) -> Result<(), RestoreFailure> {
    let d = e.digest.ok_or_else(|| RestoreFailure::Io(io::Error::from_raw_os_error(libc::ENODATA)))?;
    let tmp = temp_name(".airlock-rewind-")?;
    let fd = open_at(dir, &tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o600)?;
    let result = (|| {
        let mut out = std::fs::File::from(fd);
        let mut blob = blobs.open(&d)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n_total = 0u64;
        loop {
            let n = blob.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            n_total += n as u64;
        }
        if n_total != e.size || hasher.finalize().as_slice() != d {
            return Err(RestoreFailure::Corrupt(RewindError::CorruptBlob {
                path: shown_plain(path),
                blob: blobs.path_of(&d),
                detail: "damaged: its content does not match its digest".into(),
            }));
        }
        // Set-user-ID and set-group-ID bits are not given back.
        fchmod(out.as_raw_fd(), e.mode & 0o1777)?;
        drop(out);
        rename_at(dir, &tmp, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = unlink_at(dir, &tmp, 0);
    }
    result
}

fn write_link(dir: RawFd, name: &CStr, target: &[u8]) -> Result<(), RestoreFailure> {
    let tmp = temp_name(".airlock-rewind-")?;
    let target = cstring(target)?;
    // SAFETY: valid NUL-terminated strings and a dir fd we hold.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, tmp.as_ptr()) })?;
    if let Err(e) = rename_at(dir, &tmp, name) {
        let _ = unlink_at(dir, &tmp, 0);
        return Err(e.into());
    }
    Ok(())
}

enum RestoreFailure {
    Io(io::Error),
    Corrupt(RewindError),
}

impl From<io::Error> for RestoreFailure {
    fn from(e: io::Error) -> Self {
        RestoreFailure::Io(e)
    }
}

/// Carries out a plan in the workspace (after its blobs were verified).
fn apply(workspace: &Path, blobs: &Blobs, plan: &Plan, report: &mut RestoreReport) -> Result<(), RewindError> {
    let undo = report.undo;
    let mut done = 0usize;
    let fail = |path: &[u8], e: RestoreFailure, done: usize| match e {
        RestoreFailure::Io(source) => RewindError::Restore { path: shown_plain(path), source, done, undo },
        RestoreFailure::Corrupt(e) => e,
    };
    let mut tree = Tree::open(workspace).map_err(|source| RewindError::Io { path: workspace.to_path_buf(), source })?;
    let creating: BTreeSet<&[u8]> = plan.create.iter().map(|(p, _)| p.as_slice()).collect();
    for p in &plan.unlock {
        let mut step = || -> io::Result<()> {
            let (dir, name) = tree.parent(p)?;
            let fd = open_at(dir, &name, DIR_FLAGS, 0)?;
            let mode = fstat(fd.as_raw_fd())?.st_mode & 0o7777;
            fchmod(fd.as_raw_fd(), mode | 0o700)
        };
        step().map_err(|e| fail(p, e.into(), done))?;
    }
    for (p, kind) in &plan.remove {
        let (dir, name) = tree.parent(p).map_err(|e| fail(p, e.into(), done))?;
        let flags = if *kind == Kind::Dir { libc::AT_REMOVEDIR } else { 0 };
        let result = unlink_at(dir, &name, flags);
        tree.forget();
        match result {
            Ok(()) => {
                done += 1;
                if *kind == Kind::Dir {
                    report.folders_removed.push(shown(p, Kind::Dir));
                } else {
                    report.removed.push(shown_plain(p));
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            // Still holds excluded entries: kept, unless something else
            // must take its place.
            Err(e)
                if *kind == Kind::Dir
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST))
                    && !creating.contains(p.as_slice()) =>
            {
                report.folders_kept.push(shown(p, Kind::Dir));
            }
            Err(e) => return Err(fail(p, e.into(), done)),
        }
    }
    for (p, e) in &plan.create {
        let (dir, name) = tree.parent(p).map_err(|err| fail(p, err.into(), done))?;
        let result = match e.kind {
            Kind::Dir => match mkdir_at(dir, &name, 0o700) {
                Ok(()) => {
                    report.folders_created.push(shown(p, Kind::Dir));
                    Ok(())
                }
                // A folder kept above (it holds excluded entries) is fine;
                // anything else there is not.
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => match stat_at(dir, &name) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(()),
                    _ => Err(RestoreFailure::Io(err)),
                },
                Err(err) => Err(err.into()),
            },
            Kind::File => write_file(dir, &name, blobs, p, e).map(|()| report.written.push(shown_plain(p))),
            Kind::Link => write_link(dir, &name, &e.target).map(|()| report.written.push(shown_plain(p))),
            Kind::Special => Ok(()),
        };
        result.map_err(|err| fail(p, err, done))?;
        done += 1;
    }
    for (p, mode) in &plan.modes {
        let mut step = || -> io::Result<()> {
            let (dir, name) = tree.parent(p)?;
            let fd = open_at(dir, &name, DIR_FLAGS, 0)?;
            fchmod(fd.as_raw_fd(), mode & 0o3777)
        };
        step().map_err(|e| fail(p, e.into(), done))?;
        report.modes_set.push(shown(p, Kind::Dir));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The store.

/// A workspace's checkpoints, in airlock's private state folder for it.
///
/// Git's folder is excluded by default and so is not rewound: see
/// [`GIT_NOT_REWOUND`] and [`CheckpointStore::excluded`]. One store per
/// state folder at a time (a lock file says so).
pub struct CheckpointStore {
    workspace: PathBuf,
    state_dir: PathBuf,
    options: CheckpointOptions,
    excluded_names: Vec<Vec<u8>>,
    state: OwnedFd,
    manifests: OwnedFd,
    blobs: Blobs,
    /// Held (`flock`) while the store is open.
    _lock: OwnedFd,
    /// The latest checkpoint's manifest: what the next one compares with.
    current: Manifest,
    infos: Vec<CheckpointInfo>,
    records: Vec<IndexRecord>,
    excluded: Vec<String>,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore")
            .field("workspace", &self.workspace)
            .field("state_dir", &self.state_dir)
            .field("checkpoints", &self.infos.len())
            .finish_non_exhaustive()
    }
}

/// Adds an entry to a checkpoint's totals, or takes it off.
fn tally(record: &mut IndexRecord, e: &Entry, add: bool) {
    let step = |n: &mut usize| *n = if add { *n + 1 } else { n.saturating_sub(1) };
    match e.kind {
        Kind::File => {
            step(&mut record.files);
            record.bytes = if add { record.bytes + e.size } else { record.bytes.saturating_sub(e.size) };
        }
        Kind::Link => step(&mut record.links),
        Kind::Dir => step(&mut record.folders),
        Kind::Special => {}
    }
}

/// Brings a manifest up to what a walk found.
fn apply_walk(manifest: &mut Manifest, walk: Walked) {
    for p in &walk.deleted {
        manifest.remove(p);
    }
    manifest.extend(walk.changed);
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Makes `path` a private folder (0700) of ours, never through a link.
fn private_dir(path: &Path) -> Result<OwnedFd, RewindError> {
    use std::os::unix::fs::DirBuilderExt;
    let bad = |detail: String| RewindError::StateFolder { path: path.to_path_buf(), detail };
    let io = |source| RewindError::Io { path: path.to_path_buf(), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io)?;
    let fd = open_at(libc::AT_FDCWD, &cstring(path.as_os_str().as_bytes()).map_err(io)?, DIR_FLAGS, 0)
        .map_err(|e| bad(format!("not a folder of its own ({e}); a link is not followed")))?;
    let st = fstat(fd.as_raw_fd()).map_err(io)?;
    // SAFETY: geteuid cannot fail.
    if st.st_uid != unsafe { libc::geteuid() } {
        return Err(bad("belongs to another user\nhint: choose a state folder of your own".into()));
    }
    if st.st_mode & 0o077 != 0 {
        fchmod(fd.as_raw_fd(), 0o700).map_err(io)?;
    }
    Ok(fd)
}

fn sub_dir(parent: &OwnedFd, parent_path: &Path, name: &str) -> Result<OwnedFd, RewindError> {
    let path = parent_path.join(name);
    let io = |source| RewindError::Io { path: path.clone(), source };
    let c = cstring(name.as_bytes()).map_err(io)?;
    match mkdir_at(parent.as_raw_fd(), &c, 0o700) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(io(e)),
        _ => {}
    }
    open_at(parent.as_raw_fd(), &c, DIR_FLAGS, 0).map_err(io)
}

/// Replaces `name` in `dir` (ours) with `bytes`: a temporary file renamed.
fn replace_file(dir: &OwnedFd, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = temp_name("tmp-")?;
    let fd = open_at(dir.as_raw_fd(), &tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o600)?;
    let mut file = std::fs::File::from(fd);
    let written = file.write_all(bytes).and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    drop(file);
    let done = written.and_then(|()| rename_at(dir.as_raw_fd(), &tmp, &cstring(name.as_bytes())?));
    if done.is_err() {
        let _ = unlink_at(dir.as_raw_fd(), &tmp, 0);
    }
    done
}

fn read_file(dir: &OwnedFd, name: &str) -> io::Result<Vec<u8>> {
    let fd = open_at(dir.as_raw_fd(), &cstring(name.as_bytes())?, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out)?;
    Ok(out)
}

impl CheckpointStore {
    /// Opens (or starts) the store for `workspace` in `state_dir`, which
    /// must lie outside it: a command can write the workspace, and must not
    /// be able to rewrite its own checkpoints. Resumes from the last
    /// checkpoint without reading the workspace.
    pub fn open(state_dir: &Path, workspace: &Path, options: CheckpointOptions) -> Result<Self, RewindError> {
        let ws_io = |source| RewindError::Io { path: workspace.to_path_buf(), source };
        let workspace = std::fs::canonicalize(workspace).map_err(ws_io)?;
        let state = private_dir(state_dir)?;
        let state_dir = std::fs::canonicalize(state_dir)
            .map_err(|source| RewindError::Io { path: state_dir.to_path_buf(), source })?;
        if state_dir.starts_with(&workspace) {
            return Err(RewindError::StateFolder {
                path: state_dir,
                detail: format!(
                    "lies inside the workspace {}, where commands could rewrite it\nhint: keep airlock's state \
                     outside the workspace",
                    workspace.display()
                ),
            });
        }
        let lock_path = state_dir.join("lock");
        let lock_io = |source| RewindError::Io { path: lock_path.clone(), source };
        let lock = open_at(state.as_raw_fd(), c"lock", libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW, 0o600)
            .map_err(lock_io)?;
        // SAFETY: flock on a fd we hold.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                RewindError::Locked { path: lock_path }
            } else {
                lock_io(e)
            });
        }
        let manifests = sub_dir(&state, &state_dir, "manifests")?;
        let blobs_fd = sub_dir(&state, &state_dir, "blobs")?;
        let excluded_names = options.excluded_names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let mut store = CheckpointStore {
            blobs: Blobs { dir: blobs_fd, path: state_dir.join("blobs"), durable: options.durable },
            workspace,
            state_dir,
            options,
            excluded_names,
            state,
            manifests,
            _lock: lock,
            current: Manifest::new(),
            infos: Vec::new(),
            records: Vec::new(),
            excluded: Vec::new(),
        };
        store.load()?;
        Ok(store)
    }

    fn load(&mut self) -> Result<(), RewindError> {
        let index_path = self.state_dir.join("index.json");
        let bytes = match read_file(&self.state, "index.json") {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(source) => return Err(RewindError::Io { path: index_path, source }),
        };
        let damaged = |detail: String| RewindError::Damaged { path: index_path.clone(), detail };
        let index: IndexFile = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if index.v != FORMAT {
            return Err(damaged(format!("format {} (this airlock reads {FORMAT})", index.v)));
        }
        if index.workspace != self.workspace.display().to_string() {
            return Err(RewindError::StateFolder {
                path: self.state_dir.clone(),
                detail: format!("holds the checkpoints of {}, not of {}", index.workspace, self.workspace.display()),
            });
        }
        for record in index.checkpoints {
            let changes = self.read_delta(record.id)?;
            self.infos.push(self.info_of(&record, changes));
            self.records.push(record);
        }
        Ok(())
    }

    /// Reads checkpoint `id`'s difference and applies it to `current`.
    fn read_delta(&mut self, id: CheckpointId) -> Result<ChangeSet, RewindError> {
        let delta = self.delta(id)?;
        apply_delta(&mut self.current, &delta).ok_or_else(|| RewindError::Damaged {
            path: self.state_dir.join("manifests").join(manifest_name(id)),
            detail: "a path, digest or kind cannot be read".into(),
        })
    }

    fn delta(&self, id: CheckpointId) -> Result<DeltaFile, RewindError> {
        let name = manifest_name(id);
        let path = self.state_dir.join("manifests").join(&name);
        let bytes =
            read_file(&self.manifests, &name).map_err(|source| RewindError::Io { path: path.clone(), source })?;
        let delta: DeltaFile = serde_json::from_slice(&bytes)
            .map_err(|e| RewindError::Damaged { path: path.clone(), detail: e.to_string() })?;
        if delta.id != id || delta.v != FORMAT {
            return Err(RewindError::Damaged {
                path,
                detail: format!("holds checkpoint {} (format {})", delta.id, delta.v),
            });
        }
        Ok(delta)
    }

    fn info_of(&self, r: &IndexRecord, changes: ChangeSet) -> CheckpointInfo {
        CheckpointInfo {
            id: r.id,
            label: r.label.clone(),
            unix_ms: r.unix_ms,
            files: r.files,
            links: r.links,
            folders: r.folders,
            bytes: r.bytes,
            changes,
        }
    }

    /// The manifest of checkpoint `id`: the latest one with the
    /// differences since taken back off, newest first.
    fn manifest_at(&self, id: CheckpointId) -> Result<Manifest, RewindError> {
        if !self.infos.iter().any(|i| i.id == id) {
            return Err(RewindError::UnknownCheckpoint(id));
        }
        let mut manifest = self.current.clone();
        for info in self.infos.iter().rev().take_while(|i| i.id > id) {
            let delta = self.delta(info.id)?;
            unapply_delta(&mut manifest, &delta).ok_or_else(|| RewindError::Damaged {
                path: self.state_dir.join("manifests").join(manifest_name(info.id)),
                detail: "a path, digest or kind cannot be read, or an earlier entry is missing".into(),
            })?;
        }
        Ok(manifest)
    }

    fn walk(&self, blobs: Option<&Blobs>) -> Result<Walked, RewindError> {
        let ws_io = |source| RewindError::Io { path: self.workspace.clone(), source };
        let root = open_at(
            libc::AT_FDCWD,
            &cstring(self.workspace.as_os_str().as_bytes()).map_err(ws_io)?,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .map_err(ws_io)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, WALK_THREADS_MAX);
        let queue = Queue {
            state: std::sync::Mutex::new(QueueState { jobs: vec![(Vec::new(), root)], busy: 0, failed: false }),
            ready: std::sync::Condvar::new(),
            threads,
        };
        let max = self.options.max_file_bytes;
        let prev: Lookup<'_> = self.current.iter().enumerate().map(|(i, (p, e))| (p.as_slice(), (i, e))).collect();
        let new_walk = || Walk::new(&prev, &self.excluded_names, blobs, max, Some(&queue));
        let walks: Vec<(Walk<'_>, Result<(), RewindError>)> = std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut walk = new_walk();
                        let result = queue.work(&mut walk);
                        (walk, result)
                    })
                })
                .collect();
            let mut walk = new_walk();
            let result = queue.work(&mut walk);
            let mut all = vec![(walk, result)];
            for handle in others {
                match handle.join() {
                    Ok(done) => all.push(done),
                    Err(_) => all.push((
                        new_walk(),
                        Err(RewindError::Io {
                            path: self.workspace.clone(),
                            source: io::Error::other("a thread walking the workspace panicked"),
                        }),
                    )),
                }
            }
            all
        });
        let mut out = Vec::new();
        let mut seen = vec![0u64; self.current.len().div_ceil(64)];
        let mut walked = Walked {
            changed: Vec::new(),
            deleted: Vec::new(),
            excluded: Vec::new(),
            not_kept: Vec::new(),
            stat_only: 0,
            files_read: 0,
            bytes_read: 0,
            blobs_written: 0,
        };
        let mut unlisted = Vec::new();
        for (walk, result) in walks {
            result?;
            out.extend(walk.out);
            for (all, one) in seen.iter_mut().zip(&walk.seen) {
                *all |= one;
            }
            walked.excluded.extend(walk.excluded);
            walked.not_kept.extend(walk.not_kept);
            unlisted.extend(walk.unlisted);
            walked.stat_only += walk.stat_only;
            walked.files_read += walk.files_read;
            walked.bytes_read += walk.bytes_read;
            walked.blobs_written += walk.blobs_written;
        }
        walked.deleted = self
            .current
            .keys()
            .enumerate()
            .filter(|(i, _)| seen[i / 64] & (1 << (i % 64)) == 0)
            .map(|(_, p)| p.clone())
            .collect();
        // A folder seen but not fully listed is marked, whether or not it
        // changed otherwise.
        for path in unlisted {
            if let Some((_, e)) = out.iter_mut().find(|(p, _)| *p == path) {
                e.unlisted = true;
            } else if let Some(prev) = self.current.get(&path) {
                out.push((path, Entry { unlisted: true, ..prev.clone() }));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        walked.changed = out;
        walked.excluded.sort();
        walked.not_kept.sort();
        Ok(walked)
    }

    fn is_excluded(&self, path: &[u8]) -> bool {
        path.split(|b| *b == b'/').any(|part| self.excluded_names.iter().any(|n| n.as_slice() == part))
    }

    /// Records the workspace as it is now, reading only files that changed
    /// since the last checkpoint.
    pub fn checkpoint(&mut self, label: &str) -> Result<CheckpointReport, RewindError> {
        let walk = self.walk(Some(&self.blobs))?;
        let (stat_only, files_read, bytes_read, blobs_written) =
            (walk.stat_only, walk.files_read, walk.bytes_read, walk.blobs_written);
        let not_kept: Vec<NotKept> =
            walk.not_kept.iter().map(|(p, r)| NotKept { path: shown_plain(p), reason: r.clone() }).collect();
        let excluded: Vec<String> = walk.excluded.iter().map(|p| shown_plain(p)).collect();

        if self.options.durable && blobs_written > SYNC_EACH_UP_TO {
            // SAFETY: syncfs on a fd we hold.
            if unsafe { libc::syncfs(self.blobs.dir.as_raw_fd()) } != 0 {
                return Err(RewindError::Io { path: self.blobs.path.clone(), source: io::Error::last_os_error() });
            }
        }
        let (mut delta, changes) = self.delta_of(&walk);
        let id = self.infos.last().map_or(1, |i| i.id + 1);
        delta.id = id;
        let mut record = IndexRecord {
            id,
            label: label.to_string(),
            unix_ms: now_ms(),
            added: changes.added.len(),
            modified: changes.modified.len(),
            deleted: changes.deleted.len(),
            ..self.records.last().cloned().unwrap_or(IndexRecord {
                id,
                label: String::new(),
                unix_ms: 0,
                files: 0,
                links: 0,
                folders: 0,
                bytes: 0,
                added: 0,
                modified: 0,
                deleted: 0,
            })
        };
        // The totals follow the differences.
        let old = walk.deleted.iter().chain(walk.changed.iter().map(|(p, _)| p)).filter_map(|p| self.current.get(p));
        for e in old {
            tally(&mut record, e, false);
        }
        for (_, e) in &walk.changed {
            tally(&mut record, e, true);
        }
        let name = manifest_name(id);
        let bytes = serde_json::to_vec(&delta).map_err(|e| RewindError::Io {
            path: self.state_dir.join("manifests").join(&name),
            source: io::Error::other(e),
        })?;
        replace_file(&self.manifests, &name, &bytes, self.options.durable)
            .map_err(|source| RewindError::Io { path: self.state_dir.join("manifests").join(&name), source })?;
        let mut records = self.records.clone();
        records.push(record.clone());
        let index = IndexFile { v: FORMAT, workspace: self.workspace.display().to_string(), checkpoints: records };
        let index_path = self.state_dir.join("index.json");
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| RewindError::Io { path: index_path.clone(), source: io::Error::other(e) })?;
        replace_file(&self.state, "index.json", &bytes, self.options.durable)
            .map_err(|source| RewindError::Io { path: index_path, source })?;
        let info = self.info_of(&record, changes);
        self.records.push(record);
        self.infos.push(info.clone());
        apply_walk(&mut self.current, walk);
        self.excluded = excluded.clone();
        Ok(CheckpointReport { info, stat_only, files_read, bytes_read, blobs_written, not_kept, excluded })
    }

    /// The stored difference a walk makes to the latest manifest, and what
    /// a person would call a change.
    fn delta_of(&self, walk: &Walked) -> (DeltaFile, ChangeSet) {
        let mut delta = DeltaFile { v: FORMAT, id: 0, set: BTreeMap::new(), del: Vec::new(), old: BTreeMap::new() };
        let mut changes = ChangeSet::default();
        for p in &walk.deleted {
            if let Some(old) = self.current.get(p) {
                delta.del.push(escape(p));
                delta.old.insert(escape(p), Record::of(old));
                changes.deleted.push(shown(p, old.kind));
            }
        }
        for (p, e) in &walk.changed {
            delta.set.insert(escape(p), Record::of(e));
            match self.current.get(p) {
                Some(old) => {
                    delta.old.insert(escape(p), Record::of(old));
                    if !old.same_content(e) {
                        changes.modified.push(shown(p, e.kind));
                    }
                }
                None => changes.added.push(shown(p, e.kind)),
            }
        }
        (delta, changes)
    }

    /// The checkpoints, oldest first, each with what it changed.
    pub fn list(&self) -> &[CheckpointInfo] {
        &self.infos
    }

    /// What changed from checkpoint `from` to checkpoint `to`.
    pub fn diff(&self, from: CheckpointId, to: CheckpointId) -> Result<ChangeSet, RewindError> {
        let a = self.manifest_at(from)?;
        let b = self.manifest_at(to)?;
        Ok(compare(&a, &b).1)
    }

    /// What the workspace holds now that differs from checkpoint `id`
    /// (files that changed since the last checkpoint are read and hashed,
    /// not kept).
    pub fn changes_since(&self, id: CheckpointId) -> Result<ChangeSet, RewindError> {
        let then = self.manifest_at(id)?;
        let mut now = self.current.clone();
        apply_walk(&mut now, self.walk(None)?);
        Ok(compare(&then, &now).1)
    }

    /// Makes the workspace's files (all but the excluded ones) what they
    /// were at checkpoint `id`, after taking a checkpoint of the current
    /// state ([`RestoreReport::undo`]). Every kept content needed is checked
    /// against its digest before anything is changed.
    pub fn restore(&mut self, id: CheckpointId) -> Result<RestoreReport, RewindError> {
        if !self.infos.iter().any(|i| i.id == id) {
            return Err(RewindError::UnknownCheckpoint(id));
        }
        let undo = self.checkpoint(&format!("before rewinding to {id}"))?.info.id;
        let (current, target) = self.restore_view(id)?;
        let plan = plan(&current, &target, &|p| self.is_excluded(p));
        self.verify(&plan)?;
        let mut report = RestoreReport { restored: id, undo, ..RestoreReport::default() };
        report.not_restorable = plan
            .not_restorable
            .iter()
            .map(|(p, r)| NotKept { path: shown_plain(p), reason: (*r).to_string() })
            .collect();
        apply(&self.workspace, &self.blobs, &plan, &mut report)?;
        Ok(report)
    }

    /// The latest manifest and checkpoint `id`'s, each cut down to the paths
    /// that differ between them: those the differences since touched (and
    /// folders that could not be listed, which the plan must know). The
    /// cost follows what changed since, not the size of the workspace.
    fn restore_view(&self, id: CheckpointId) -> Result<(Manifest, Manifest), RewindError> {
        let mut then: BTreeMap<Vec<u8>, Option<Entry>> = BTreeMap::new();
        for info in self.infos.iter().rev().take_while(|i| i.id > id) {
            let delta = self.delta(info.id)?;
            let damaged = || RewindError::Damaged {
                path: self.state_dir.join("manifests").join(manifest_name(info.id)),
                detail: "a path, digest or kind cannot be read".into(),
            };
            for path in delta.set.keys().chain(&delta.del) {
                let before = match delta.old.get(path) {
                    Some(r) => Some(r.entry().ok_or_else(damaged)?),
                    None => None,
                };
                then.insert(unescape(path).ok_or_else(damaged)?, before);
            }
        }
        let mut current = Manifest::new();
        let mut target = Manifest::new();
        for (p, e) in self.current.iter().filter(|(_, e)| e.unlisted) {
            if !then.contains_key(p) {
                current.insert(p.clone(), e.clone());
                target.insert(p.clone(), e.clone());
            }
        }
        for (p, before) in then {
            if let Some(now) = self.current.get(&p) {
                current.insert(p.clone(), now.clone());
            }
            if let Some(before) = before {
                target.insert(p, before);
            }
        }
        Ok((current, target))
    }

    /// Checks every content a plan writes, before anything is changed.
    fn verify(&self, plan: &Plan) -> Result<(), RewindError> {
        let mut seen = BTreeSet::new();
        for (p, e) in &plan.create {
            if let (Kind::File, Some(d)) = (e.kind, e.digest)
                && seen.insert(d)
            {
                self.blobs.verify(p, &d, e.size)?;
            }
        }
        Ok(())
    }

    /// The workspace (canonical).
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The state folder (canonical).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The options in force.
    pub fn options(&self) -> &CheckpointOptions {
        &self.options
    }

    /// What the last checkpoint skipped (paths relative to the workspace),
    /// for the UI to state: these are not rewound.
    pub fn excluded(&self) -> &[String] {
        &self.excluded
    }

    /// The latest checkpoint, if any.
    pub fn latest(&self) -> Option<CheckpointId> {
        self.infos.last().map(|i| i.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn opts() -> CheckpointOptions {
        CheckpointOptions { durable: false, ..CheckpointOptions::default() }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        ws: PathBuf,
        state: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let state = dir.path().join("state");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        Fixture { ws, state, outside, _dir: dir }
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn sh(ws: &Path, script: &str) {
        let status = std::process::Command::new("sh").arg("-c").arg(script).current_dir(ws).status().unwrap();
        assert!(status.success(), "{script}");
    }

    /// Every entry under `root`: kind, mode and content or target.
    fn state_of(root: &Path) -> BTreeMap<String, String> {
        fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
            let mut names: Vec<_> =
                std::fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            for name in names {
                let rel = rel.join(&name);
                let path = root.join(&rel);
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let mode = meta.permissions().mode() & 0o7777;
                let key = rel.display().to_string();
                if meta.file_type().is_symlink() {
                    out.insert(key, format!("link -> {}", std::fs::read_link(&path).unwrap().display()));
                } else if meta.is_dir() {
                    out.insert(key, format!("dir {mode:o}"));
                    walk(root, &rel, out);
                } else if !meta.is_file() {
                    out.insert(key, "special".into());
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    out.insert(key, format!("file {mode:o} {}", String::from_utf8_lossy(&bytes)));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(root, Path::new(""), &mut out);
        out
    }

    #[test]
    fn what_a_command_did_is_undone() {
        let f = fixture();
        write(&f.ws, "src/main.rs", "fn main() {}\n");
        write(&f.ws, "src/lib.rs", "pub fn f() {}\n");
        write(&f.ws, "docs/a.md", "# a\n");
        write(&f.ws, "docs/deep/b.md", "# b\n");
        write(&f.ws, "run.sh", "echo hi\n");
        std::os::unix::fs::symlink("src/main.rs", f.ws.join("main")).unwrap();
        std::fs::create_dir(f.ws.join("empty")).unwrap();
        let before = state_of(&f.ws);
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        let first = store.checkpoint("turn 1").unwrap();
        assert_eq!(first.info.files, 5);
        assert_eq!(first.info.links, 1);
        sh(
            &f.ws,
            "echo changed > src/main.rs; rm src/lib.rs; mv docs/a.md docs/renamed.md; rm -r docs/deep; \
             ln -s /etc/passwd link; chmod +x run.sh; mkdir -p new/sub && echo n > new/sub/n.txt; \
             rm main && ln -s run.sh main; rmdir empty; mkfifo pipe",
        );
        assert_ne!(state_of(&f.ws), before);
        let report = store.restore(1).unwrap();
        assert_eq!(state_of(&f.ws), before);
        assert_eq!(report.restored, 1);
        assert_eq!(report.undo, 2);
        assert!(report.written.contains(&"src/main.rs".to_string()), "{report:?}");
        assert!(report.written.contains(&"run.sh".to_string()), "mode alone is a change: {report:?}");
        assert!(report.removed.contains(&"pipe".to_string()), "{report:?}");
        assert_eq!(report.folders_removed, ["new/sub/", "new/"]);
        assert_eq!(report.folders_created, ["docs/deep/", "empty/"]);
        assert!(report.not_restorable.is_empty());
        // What the turn changed, as listed.
        let undo = &store.list()[1];
        assert_eq!(undo.label, "before rewinding to 1");
        assert!(undo.changes.added.contains(&"new/sub/n.txt".to_string()));
        assert!(undo.changes.deleted.contains(&"src/lib.rs".to_string()));
        assert!(undo.changes.modified.contains(&"run.sh".to_string()));
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_even_after_a_restart() {
        let f = fixture();
        for i in 0..100 {
            write(&f.ws, &format!("d{}/f{i}.txt", i % 7), &format!("file {i}"));
        }
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        let first = store.checkpoint("turn 1").unwrap();
        assert_eq!((first.files_read, first.stat_only, first.blobs_written), (100, 0, 100));
        write(&f.ws, "d1/f1.txt", "edited");
        write(&f.ws, "d2/f2.txt", "file 3"); // same content as another file: no new blob
        write(&f.ws, "new.txt", "new");
        let second = store.checkpoint("turn 2").unwrap();
        assert_eq!((second.files_read, second.stat_only, second.blobs_written), (3, 98, 2));
        assert_eq!(second.info.changes.modified, ["d1/f1.txt", "d2/f2.txt"]);
        assert_eq!(second.info.changes.added, ["new.txt"]);
        drop(store);
        // A new session resumes from the manifests without reading.
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        assert_eq!(store.list().len(), 2);
        assert_eq!(store.list()[1].changes.modified, ["d1/f1.txt", "d2/f2.txt"]);
        let third = store.checkpoint("turn 3").unwrap();
        assert_eq!((third.files_read, third.stat_only), (0, 101));
        assert!(third.info.changes.is_empty());
        // A second session on the same store is refused while this one holds it.
        assert!(matches!(CheckpointStore::open(&f.state, &f.ws, opts()), Err(RewindError::Locked { .. })));
    }

    #[test]
    fn excluded_folders_are_neither_recorded_nor_touched() {
        let f = fixture();
        write(&f.ws, "src/a.rs", "a");
        write(&f.ws, ".git/HEAD", "ref: refs/heads/main\n");
        write(&f.ws, "target/debug/app", "binary v1");
        write(&f.ws, "web/node_modules/left-pad/index.js", "v1");
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        let first = store.checkpoint("turn 1").unwrap();
        assert_eq!(first.excluded, [".git", "target", "web/node_modules"]);
        assert_eq!(store.excluded(), [".git", "target", "web/node_modules"]);
        assert_eq!(first.info.files, 1);
        write(&f.ws, "src/a.rs", "b");
        write(&f.ws, ".git/HEAD", "ref: refs/heads/other\n");
        write(&f.ws, "target/debug/app", "binary v2");
        write(&f.ws, "web/node_modules/left-pad/index.js", "v2");
        // A folder made after the checkpoint that holds an excluded one stays.
        write(&f.ws, "app/node_modules/x/index.js", "x");
        write(&f.ws, "app/package.json", "{}");
        let report = store.restore(1).unwrap();
        assert_eq!(std::fs::read_to_string(f.ws.join("src/a.rs")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(f.ws.join(".git/HEAD")).unwrap(), "ref: refs/heads/other\n");
        assert_eq!(std::fs::read_to_string(f.ws.join("target/debug/app")).unwrap(), "binary v2");
        assert_eq!(std::fs::read_to_string(f.ws.join("web/node_modules/left-pad/index.js")).unwrap(), "v2");
        assert_eq!(std::fs::read_to_string(f.ws.join("app/node_modules/x/index.js")).unwrap(), "x");
        assert!(!f.ws.join("app/package.json").exists());
        assert_eq!(report.folders_kept, ["app/"]);
        assert!(GIT_NOT_REWOUND.contains(".git"));
    }

    #[test]
    fn a_link_planted_in_place_of_a_folder_does_not_lead_the_restore_outside() {
        let f = fixture();
        write(&f.ws, "dir/file.txt", "mine");
        write(&f.ws, "dir/sub/deep.txt", "deep");
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        std::fs::remove_dir_all(f.ws.join("dir")).unwrap();
        std::os::unix::fs::symlink(&f.outside, f.ws.join("dir")).unwrap();
        let report = store.restore(1).unwrap();
        assert_eq!(report.removed, ["dir"]);
        assert!(std::fs::symlink_metadata(f.ws.join("dir")).unwrap().is_dir());
        assert_eq!(std::fs::read_to_string(f.ws.join("dir/sub/deep.txt")).unwrap(), "deep");
        assert_eq!(std::fs::read_dir(&f.outside).unwrap().count(), 0, "nothing written outside");

        // Planted after the restore looked (a stale plan): the folder is
        // opened without following the link, and the restore stops there.
        store.checkpoint("turn 2").unwrap();
        let cur = store.current.clone();
        let target = store.manifest_at(1).unwrap();
        std::fs::remove_dir_all(f.ws.join("dir")).unwrap();
        std::os::unix::fs::symlink(&f.outside, f.ws.join("dir")).unwrap();
        let mut stale = cur.clone();
        stale.get_mut(b"dir/file.txt".as_slice()).unwrap().digest = Some([0; 32]);
        let p = plan(&stale, &target, &|_| false);
        assert_eq!(p.create.len(), 1);
        let mut report = RestoreReport::default();
        let err = apply(&store.workspace, &store.blobs, &p, &mut report).unwrap_err();
        assert!(matches!(&err, RewindError::Restore { path, .. } if path == "dir/file.txt"), "{err}");
        assert_eq!(std::fs::read_dir(&f.outside).unwrap().count(), 0, "nothing written outside");
    }

    #[test]
    fn a_corrupt_blob_stops_the_restore_before_anything_changes() {
        let f = fixture();
        write(&f.ws, "a.txt", "alpha");
        write(&f.ws, "b.txt", "beta");
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        write(&f.ws, "a.txt", "ALPHA");
        write(&f.ws, "b.txt", "BETA");
        let digest: [u8; 32] = Sha256::digest(b"beta").into();
        let blob = store.blobs.path_of(&digest);
        std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&blob, "bent").unwrap();
        let err = store.restore(1).unwrap_err();
        assert!(
            matches!(&err, RewindError::CorruptBlob { path, blob: b, .. } if path == "b.txt" && *b == blob),
            "{err}"
        );
        assert!(err.to_string().contains("nothing was restored"), "{err}");
        assert_eq!(std::fs::read_to_string(f.ws.join("a.txt")).unwrap(), "ALPHA");
        assert_eq!(std::fs::read_to_string(f.ws.join("b.txt")).unwrap(), "BETA");
        // A missing one too.
        std::fs::remove_file(&blob).unwrap();
        assert!(matches!(store.restore(1), Err(RewindError::CorruptBlob { .. })));
    }

    #[test]
    fn restore_to_an_older_checkpoint_then_redo_to_a_newer_one() {
        let f = fixture();
        write(&f.ws, "f.txt", "v1");
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        write(&f.ws, "f.txt", "v2");
        write(&f.ws, "g.txt", "g2");
        store.checkpoint("turn 2").unwrap();
        write(&f.ws, "f.txt", "v3");
        std::fs::remove_file(f.ws.join("g.txt")).unwrap();
        let v3 = state_of(&f.ws);
        let back = store.restore(1).unwrap();
        assert_eq!(std::fs::read_to_string(f.ws.join("f.txt")).unwrap(), "v1");
        assert!(!f.ws.join("g.txt").exists());
        let redo = store.restore(2).unwrap();
        assert_eq!(std::fs::read_to_string(f.ws.join("f.txt")).unwrap(), "v2");
        assert_eq!(std::fs::read_to_string(f.ws.join("g.txt")).unwrap(), "g2");
        assert_eq!(redo.written, ["f.txt", "g.txt"]);
        // And the state before the first rewind, which no turn recorded.
        store.restore(back.undo).unwrap();
        assert_eq!(state_of(&f.ws), v3);
        assert_eq!(store.diff(1, 2).unwrap().added, ["g.txt"]);
        assert_eq!(store.diff(1, 2).unwrap().modified, ["f.txt"]);
        assert_eq!(store.diff(2, 1).unwrap().deleted, ["g.txt"]);
        let since = store.changes_since(2).unwrap();
        assert_eq!(
            (since.modified.as_slice(), since.deleted.as_slice()),
            (["f.txt".to_string()].as_slice(), ["g.txt".to_string()].as_slice())
        );
        assert!(matches!(store.restore(99), Err(RewindError::UnknownCheckpoint(99))));
    }

    #[test]
    fn a_file_over_the_limit_is_recorded_by_digest_and_reported_not_restorable() {
        let f = fixture();
        write(&f.ws, "big.bin", &"x".repeat(2000));
        write(&f.ws, "small.txt", "s");
        let options = CheckpointOptions { max_file_bytes: 1000, ..opts() };
        let mut store = CheckpointStore::open(&f.state, &f.ws, options).unwrap();
        let first = store.checkpoint("turn 1").unwrap();
        assert_eq!(first.not_kept.len(), 1);
        assert_eq!(first.not_kept[0].path, "big.bin");
        assert!(first.not_kept[0].reason.contains("over the limit"), "{:?}", first.not_kept);
        // Unchanged: nothing to restore, nothing reported.
        write(&f.ws, "small.txt", "t");
        assert!(store.restore(1).unwrap().not_restorable.is_empty());
        write(&f.ws, "big.bin", "changed");
        let report = store.restore(1).unwrap();
        assert_eq!(report.not_restorable.len(), 1);
        assert_eq!(report.not_restorable[0].path, "big.bin");
        assert_eq!(std::fs::read_to_string(f.ws.join("big.bin")).unwrap(), "changed");
    }

    #[test]
    fn the_state_folder_must_be_outside_the_workspace_and_no_link() {
        let f = fixture();
        let err = CheckpointStore::open(&f.ws.join(".airlock"), &f.ws, opts()).unwrap_err();
        assert!(matches!(err, RewindError::StateFolder { .. }), "{err}");
        std::os::unix::fs::symlink(&f.outside, f.ws.parent().unwrap().join("linked")).unwrap();
        let err = CheckpointStore::open(&f.ws.parent().unwrap().join("linked"), &f.ws, opts()).unwrap_err();
        assert!(matches!(err, RewindError::StateFolder { .. }), "{err}");
        let store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        let mode = std::fs::metadata(store.state_dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(store);
        // Another workspace's store is refused.
        let other = f.ws.parent().unwrap().join("other");
        std::fs::create_dir(&other).unwrap();
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        drop(store);
        assert!(matches!(CheckpointStore::open(&f.state, &other, opts()), Err(RewindError::StateFolder { .. })));
    }

    #[test]
    fn names_that_are_not_utf8_survive_the_records() {
        use std::os::unix::ffi::OsStrExt;
        for raw in [b"plain".as_slice(), b"50%", b"caf\xe9", b"a\nb"] {
            assert_eq!(unescape(&escape(raw)).unwrap(), raw);
        }
        let f = fixture();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9%.txt");
        std::fs::write(f.ws.join(name), "latin-1").unwrap();
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        drop(store);
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        std::fs::write(f.ws.join(name), "changed").unwrap();
        store.restore(1).unwrap();
        assert_eq!(std::fs::read_to_string(f.ws.join(name)).unwrap(), "latin-1");
    }

    #[test]
    fn a_read_only_folder_is_opened_for_the_restore_and_closed_again() {
        let f = fixture();
        write(&f.ws, "ro/a.txt", "a");
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        write(&f.ws, "ro/a.txt", "b");
        write(&f.ws, "ro/new.txt", "n");
        std::fs::set_permissions(f.ws.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let report = store.restore(1).unwrap();
        assert_eq!(std::fs::read_to_string(f.ws.join("ro/a.txt")).unwrap(), "a");
        assert!(!f.ws.join("ro/new.txt").exists());
        let mode = std::fs::metadata(f.ws.join("ro")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{report:?}");
    }

    #[test]
    fn incremental_manifests_match_a_fresh_walk_and_every_rebuild() {
        let f = fixture();
        for i in 0..300 {
            write(&f.ws, &format!("a{}/b{}/f{i}.txt", i % 5, i % 11), &format!("file {i}"));
        }
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        let rounds = [
            "echo x > a1/b1/f1.txt; rm a2/b2/f2.txt; ln -s f3.txt a3/b3/link",
            "rm -r a4/b4; mkdir -p new/deep; echo n > new/deep/n; chmod 700 a0",
            "mv a1 moved; rm a3/b3/link; ln -s ../elsewhere a3/b3/link; echo y >> moved/b1/f1.txt",
            "true",
        ];
        for (i, script) in rounds.iter().enumerate() {
            sh(&f.ws, script);
            store.checkpoint(&format!("turn {}", i + 2)).unwrap();
        }
        // The same as a walk from nothing.
        let fresh_state = f.ws.parent().unwrap().join("fresh");
        let mut fresh = CheckpointStore::open(&fresh_state, &f.ws, opts()).unwrap();
        fresh.checkpoint("all").unwrap();
        assert_eq!(store.current, fresh.current);
        // Forward from the first difference, back from the latest manifest,
        // and the totals, all agree at every checkpoint.
        let mut forward = Manifest::new();
        for info in store.list() {
            apply_delta(&mut forward, &store.delta(info.id).unwrap()).unwrap();
            assert_eq!(store.manifest_at(info.id).unwrap(), forward, "checkpoint {}", info.id);
            // A restore plans over the paths changed since only: the same plan.
            let (cur, tgt) = store.restore_view(info.id).unwrap();
            let (small, full) = (plan(&cur, &tgt, &|_| false), plan(&store.current, &forward, &|_| false));
            assert_eq!((small.remove, small.create, small.modes), (full.remove, full.create, full.modes));
            let count = |k: Kind| forward.values().filter(|e| e.kind == k).count();
            let bytes: u64 = forward.values().filter(|e| e.kind == Kind::File).map(|e| e.size).sum();
            assert_eq!(
                (info.files, info.links, info.folders, info.bytes),
                (count(Kind::File), count(Kind::Link), count(Kind::Dir), bytes),
                "checkpoint {}",
                info.id
            );
        }
        assert!(store.list()[4].changes.is_empty());
        assert!(store.list()[2].changes.deleted.contains(&"a4/b4/".to_string()));
        // And after a restart.
        let latest = store.current.clone();
        drop(store);
        let store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        assert_eq!(store.current, latest);
    }

    #[test]
    fn a_link_to_a_folder_outside_is_recorded_as_a_link_and_not_walked() {
        let f = fixture();
        write(&f.outside, "secret/id_rsa", "private key");
        write(&f.ws, "a.txt", "a");
        std::os::unix::fs::symlink(f.outside.join("secret"), f.ws.join("keys")).unwrap();
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        let report = store.checkpoint("turn 1").unwrap();
        assert_eq!((report.files_read, report.info.files, report.info.links), (1, 1, 1));
        assert_eq!(store.current.keys().map(|k| k.as_slice()).collect::<Vec<_>>(), [b"a.txt".as_slice(), b"keys"]);
        let digest: [u8; 32] = Sha256::digest(b"private key").into();
        assert!(!store.blobs.path_of(&digest).exists(), "the key was not copied into the store");
        // Rewound, the link comes back as a link (its target is not copied).
        std::fs::remove_file(f.ws.join("keys")).unwrap();
        store.restore(1).unwrap();
        assert_eq!(std::fs::read_link(f.ws.join("keys")).unwrap(), f.outside.join("secret"));
    }

    #[test]
    fn a_name_excluded_later_is_left_alone_by_a_restore() {
        let f = fixture();
        write(&f.ws, "vendor/lib.c", "v1");
        write(&f.ws, "src.c", "s1");
        let mut store = CheckpointStore::open(&f.state, &f.ws, opts()).unwrap();
        store.checkpoint("turn 1").unwrap();
        drop(store);
        write(&f.ws, "vendor/lib.c", "v2");
        write(&f.ws, "src.c", "s2");
        let options = CheckpointOptions { excluded_names: vec!["vendor".into()], ..opts() };
        let mut store = CheckpointStore::open(&f.state, &f.ws, options).unwrap();
        let report = store.restore(1).unwrap();
        assert_eq!(std::fs::read_to_string(f.ws.join("src.c")).unwrap(), "s1");
        assert_eq!(std::fs::read_to_string(f.ws.join("vendor/lib.c")).unwrap(), "v2");
        assert_eq!(report.written, ["src.c"]);
        assert!(report.removed.is_empty() && report.folders_removed.is_empty(), "{report:?}");
    }

    #[test]
    fn the_plan_leaves_alone_what_lies_beneath_an_unlisted_folder() {
        let entry = |kind| Entry {
            kind,
            mode: 0o755,
            size: 0,
            digest: None,
            stored: false,
            target: Vec::new(),
            unlisted: false,
            id: Identity::default(),
        };
        let mut tgt = Manifest::new();
        tgt.insert(b"locked".to_vec(), Entry { unlisted: true, ..entry(Kind::Dir) });
        let mut cur = tgt.clone();
        cur.insert(b"locked/secret".to_vec(), entry(Kind::File));
        cur.insert(b"other".to_vec(), entry(Kind::File));
        let p = plan(&cur, &tgt, &|_| false);
        let removed: Vec<&[u8]> = p.remove.iter().map(|(p, _)| p.as_slice()).collect();
        assert_eq!(removed, [b"other".as_slice()]);
    }
}
