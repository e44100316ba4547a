//! The audit log: appends, signed checkpoints, and verification.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::checkpoint::Checkpoint;
use crate::event::{Event, canonical};
use crate::latest::{LatestCheckpoint, LatestError};
use crate::merkle::{self, Frontier, Hash, MerkleError, NodeSource};
use crate::note::{Signer, Verifier};
use crate::store::{Filter, NewEntry, Store, StoreError, StoredEntry};

/// The checkpoint extension line that signs a prune: payloads of entries
/// below N may be missing. Every later checkpoint carries it forward, so
/// the latest one always states it. (C2SP checkpoints allow extension
/// lines; clients that do not know this one ignore it.)
pub const PRUNED_BELOW: &str = "airlock-pruned-below";

/// The prune watermark a checkpoint states (0 when it states none).
pub fn pruned_below(checkpoint: &Checkpoint) -> u64 {
    checkpoint
        .extensions
        .iter()
        .filter_map(|line| line.strip_prefix(PRUNED_BELOW)?.strip_prefix(' ')?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// The checkpoint in a signed note, parsed without checking the signature
/// (for the writer's own state; `verify` checks signatures).
fn unchecked(note: &str) -> Option<Checkpoint> {
    let text = note.split_once("\n\n").map_or(note, |(t, _)| t);
    Checkpoint::parse(&format!("{text}\n")).ok()
}

/// Who appended an entry, as the entry (covered by its leaf hash) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// airlock's own writer for the session (entries without a `source`
    /// field, as every entry was before the field existed).
    Session,
    /// Appended from outside (`airlock audit append`: hooks, CI): filed
    /// under a session, never counted as its own events.
    External,
}

impl Source {
    /// The source an entry's canonical bytes name. Anything but an entry
    /// without the field counts as external, so an unreadable entry is
    /// never taken for the session's own.
    pub fn of_entry(entry: &[u8]) -> Source {
        match serde_json::from_slice::<serde_json::Value>(entry) {
            Ok(v) if v.get("source").is_none() => Source::Session,
            _ => Source::External,
        }
    }
}

/// The fields of an entry that people select by, read from its canonical
/// bytes (which its leaf hash covers and `verify` checks), not from the
/// store's columns, which nothing covers: a report that trusted the
/// `session` column could be made to lose an event moved to another session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// Its session.
    pub session: String,
    /// Its kind.
    pub kind: String,
    /// When it was appended (ms since the epoch).
    pub time_ms: i64,
    /// Who appended it.
    pub source: Source,
}

impl EntryHeader {
    /// Reads an entry's header; `None` when the bytes are not an entry
    /// (`verify` names such an entry).
    pub fn parse(entry: &[u8]) -> Option<EntryHeader> {
        #[derive(serde::Deserialize)]
        struct Raw {
            session: String,
            kind: String,
            time_ms: i64,
            source: Option<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(entry).ok()?;
        let source = if raw.source.is_none() { Source::Session } else { Source::External };
        Some(EntryHeader { session: raw.session, kind: raw.kind, time_ms: raw.time_ms, source })
    }
}

/// What [`AuditLog::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Payloads of entries below this index may now be missing (signed).
    pub below: u64,
    /// Payloads deleted.
    pub payloads: u64,
}

/// When to sign a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointEvery {
    /// After this many entries.
    pub entries: u64,
    /// Or after this long since the last one.
    pub interval: Duration,
}

impl Default for CheckpointEvery {
    fn default() -> Self {
        CheckpointEvery { entries: 256, interval: Duration::from_secs(1) }
    }
}

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed; the action that was to be recorded must not happen.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tree could not be computed.
    #[error("merkle tree: {0}")]
    Merkle(#[from] MerkleError),
    /// An event could not be serialized canonically.
    #[error("event: {0}")]
    Event(#[from] crate::event::CanonicalError),
    /// Signing failed.
    #[error("signing a checkpoint: {0}")]
    Sign(String),
    /// The writer thread failed or has stopped.
    #[error("audit writer: {0}")]
    Writer(String),
    /// The checkpoint kept outside the database could not be read or written.
    #[error(transparent)]
    Latest(#[from] LatestError),
    /// The checkpoint kept outside the database does not open with this log's key.
    #[error(
        "the checkpoint kept outside the database, {path}, does not open with this log's key: {what}\n\
         hint: if the key was replaced on purpose, move that file aside; otherwise run `airlock audit verify`"
    )]
    KeptUnreadable {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// The database is not an extension of the checkpoint kept outside it:
    /// it was rolled back, replaced or forked. Nothing is appended to it.
    #[error(
        "the audit database was rolled back or replaced: the checkpoint kept in {path} signs {kept} entries, \
         the database {what}\nhint: run `airlock audit verify`; restore the database, or move it aside to start a new log"
    )]
    RolledBack {
        /// The kept checkpoint's file.
        path: String,
        /// The size it signs.
        kept: u64,
        /// What the database holds instead.
        what: String,
    },
    /// An external append was refused.
    #[error("{0}")]
    Refused(String),
    /// Other writers appended first every time this one tried.
    #[error(
        "audit log: other writers appended first {tries} times in a row (the log holds {size} entries); nothing \
         was recorded\nhint: too many writers share this database for the rate of appends; retry later"
    )]
    Contended {
        /// Appends tried.
        tries: u32,
        /// Entries the log held at the last try.
        size: u64,
    },
}

/// How many times one append is tried when other writers keep appending first.
pub const APPEND_TRIES: u32 = 64;

type HmacSha256 = Hmac<Sha256>;

/// The keyed hash a leaf commits to, so that a pruned payload cannot be
/// confirmed by guessing it.
pub fn payload_mac(key: &[u8; 32], payload: &[u8]) -> Hash {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        // HMAC accepts keys of any length; this cannot happen.
        return [0; 32];
    };
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// An open audit log: one writer.
pub struct AuditLog<S: Store> {
    store: S,
    frontier: Frontier,
    signer: Signer,
    origin: String,
    mac_key: [u8; 32],
    every: CheckpointEvery,
    signed_size: u64,
    last_signed: Instant,
    pruned_below: u64,
    latest: Option<LatestCheckpoint>,
}

/// What one append will add: entries, the tree after them, and its new nodes.
struct Appending {
    frontier: Frontier,
    entries: Vec<NewEntry>,
    nodes: Vec<(u32, u64, Hash)>,
    firsts: Vec<u64>,
    session_ended: bool,
}

struct StoreNodes<'a, S: Store>(&'a S);

impl<S: Store> NodeSource for StoreNodes<'_, S> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        match self.0.node(level, index) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(MerkleError::MissingNode { level, index }),
            Err(e) => Err(MerkleError::NodeRead { level, index, source: Box::new(e) }),
        }
    }

    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Hash>, MerkleError> {
        let (level, index) = wanted.first().copied().unwrap_or((0, 0));
        let found = self.0.nodes(wanted).map_err(|e| MerkleError::NodeRead { level, index, source: Box::new(e) })?;
        wanted
            .iter()
            .zip(found)
            .map(|(&(level, index), h)| h.ok_or(MerkleError::MissingNode { level, index }))
            .collect()
    }
}

impl<S: Store> AuditLog<S> {
    /// Opens a log over `store`, restoring the tree state in O(log n).
    pub fn open(
        store: S,
        signer: Signer,
        origin: &str,
        mac_key: [u8; 32],
        every: CheckpointEvery,
    ) -> Result<Self, AuditError> {
        let size = store.size()?;
        let frontier = Frontier::from_nodes(size, &StoreNodes(&store))?;
        let stored = store.checkpoints()?;
        // Another writer may have appended and signed beyond `size` since.
        let signed_size = stored.iter().rev().map(|(s, _)| *s).find(|s| *s <= size).unwrap_or(0);
        let pruned = stored.iter().filter_map(|(_, note)| unchecked(note)).map(|c| pruned_below(&c)).max();
        Ok(AuditLog {
            store,
            frontier,
            signer,
            origin: origin.to_string(),
            mac_key,
            every,
            signed_size,
            last_signed: Instant::now(),
            pruned_below: pruned.unwrap_or(0),
            latest: None,
        })
    }

    /// Keeps every signed checkpoint also in `file`, outside the database,
    /// and first checks that the database extends the checkpoint kept there
    /// (by a consistency proof): a database rolled back or replaced by an
    /// older or other copy is refused, not appended to, since a checkpoint
    /// of it would overwrite the evidence.
    pub fn keep_latest(mut self, file: LatestCheckpoint) -> Result<Self, AuditError> {
        if let Some(note) = file.read()? {
            let path = file.path().display().to_string();
            let kept = Checkpoint::open(&note, &[self.signer.verifier()], &self.origin)
                .map_err(|e| AuditError::KeptUnreadable { path: path.clone(), what: e.to_string() })?;
            let held = self.frontier.size();
            if kept.size > held {
                return Err(AuditError::RolledBack { path, kept: kept.size, what: format!("holds {held}") });
            }
            let extends = merkle::consistency_proof(kept.size, held, &StoreNodes(&self.store)).and_then(|proof| {
                merkle::verify_consistency(kept.size, held, &kept.root, &self.frontier.root(), &proof)
            });
            if extends.is_err() {
                return Err(AuditError::RolledBack {
                    path,
                    kept: kept.size,
                    what: format!("holds {held} whose first {} are not the ones signed", kept.size),
                });
            }
        }
        self.latest = Some(file);
        Ok(self)
    }

    /// Payloads of entries below this index may be missing (signed by a prune).
    pub fn pruned_below(&self) -> u64 {
        self.pruned_below
    }

    /// Deletes the payloads recorded before `before_ms` (the entries before
    /// the first one recorded at or after it); leaves and proofs stay. The
    /// watermark is signed in a checkpoint before anything is deleted, so a
    /// payload missing above it is tampering that `verify` names.
    pub fn prune(&mut self, before_ms: i64) -> Result<Pruned, AuditError> {
        // The time is read from the entries' own bytes, not from the store's
        // time column, which nothing covers and which could be edited to
        // make a prune take more than the person asked for.
        let mut first_kept = self.frontier.size();
        self.store.scan(0, &mut |e| match EntryHeader::parse(e.entry) {
            Some(header) if header.time_ms < before_ms => true,
            _ => {
                first_kept = e.index;
                false
            }
        })?;
        let below = first_kept.max(self.pruned_below);
        self.pruned_below = below;
        self.checkpoint()?;
        let payloads = self.store.prune_payloads_below(below)?;
        Ok(Pruned { below, payloads })
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Appends events in one transaction (group commit). Returns the index of
    /// the first. If this fails, nothing was recorded and the caller must not
    /// perform the actions.
    pub fn append(&mut self, session: &str, events: &[Event]) -> Result<u64, AuditError> {
        let firsts = self.append_many(&[(session, events)])?;
        Ok(firsts.first().copied().unwrap_or(self.frontier.size()))
    }

    /// Appends several callers' events in one transaction (one fsync for
    /// all). Returns the index of each group's first event. Either every
    /// event is recorded or none is. A session's end is signed at once.
    pub fn append_many(&mut self, groups: &[(&str, &[Event])]) -> Result<Vec<u64>, AuditError> {
        self.append_from(groups, Source::Session)
    }

    /// Appends events from outside (hooks, CI) under `session`, marked
    /// `"source":"external"` in each entry so no report counts them as the
    /// session's own, and signs a checkpoint before returning: an external
    /// appender is a short-lived process with no timer to sign later.
    /// Refused for a session that has ended, and for the session lifecycle
    /// events, which only airlock's own writer records.
    pub fn append_external(&mut self, session: &str, events: &[Event]) -> Result<u64, AuditError> {
        for event in events {
            if matches!(event, Event::SessionStart { .. } | Event::SessionEnd { .. }) {
                return Err(AuditError::Refused(format!(
                    "a {} event is recorded only by airlock's own session writer, not appended from outside",
                    event.kind()
                )));
            }
        }
        let mut ended = None;
        let filter =
            Filter { session: Some(session.to_string()), kind: Some("session_end".into()), ..Filter::default() };
        self.store.list(&filter, &mut |e| {
            ended = (Source::of_entry(e.entry) == Source::Session).then_some(e.index);
            ended.is_none()
        })?;
        if let Some(index) = ended {
            return Err(AuditError::Refused(format!(
                "session {session:?} ended at entry {index}; nothing more is filed under a finished session\n\
                 hint: append under another session id (the default is \"external\")"
            )));
        }
        let first = self.append_from(&[(session, events)], Source::External)?;
        if self.unsigned() > 0 {
            self.checkpoint()?;
        }
        Ok(first.first().copied().unwrap_or(self.frontier.size()))
    }

    fn append_from(&mut self, groups: &[(&str, &[Event])], source: Source) -> Result<Vec<u64>, AuditError> {
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut batch = self.batch(groups, source, time_ms)?;
        if batch.entries.is_empty() {
            return Ok(batch.firsts);
        }
        let mut tries = 1;
        while let Err(e) = self.store.append(self.frontier.size(), &batch.entries, &batch.nodes) {
            // Another writer appended to the same database since this log
            // last looked (`airlock audit append` beside a running session,
            // another gateway replica): take its entries into the tree and
            // try again at the new end. PostgreSQL says so (`Behind`, under
            // its sequencer lock); SQLite's insert fails on the taken index.
            // Any other failure stands: nothing was recorded.
            let size = match e {
                StoreError::Behind { size } => size,
                StoreError::Postgres { .. } => return Err(e.into()),
                _ => match self.store.size()? {
                    size if size == self.frontier.size() => return Err(e.into()),
                    size => size,
                },
            };
            if tries == APPEND_TRIES {
                return Err(AuditError::Contended { tries, size });
            }
            tries += 1;
            self.reload(size)?;
            batch = self.batch(groups, source, time_ms)?;
        }
        self.frontier = batch.frontier;
        if batch.session_ended || self.unsigned() >= self.every.entries {
            self.checkpoint()?;
        } else {
            self.checkpoint_if_due()?;
        }
        Ok(batch.firsts)
    }

    /// Restores the tree and the signed state from the store, at `size`.
    fn reload(&mut self, size: u64) -> Result<(), AuditError> {
        self.frontier = Frontier::from_nodes(size, &StoreNodes(&self.store))?;
        // The latest checkpoint alone (one row, however long the log): it
        // carries every prune's watermark forward. One signed beyond `size`
        // (another writer appended and signed since) covers this tree too.
        let latest = self.store.latest_checkpoint()?;
        self.signed_size = latest.as_ref().map_or(0, |(s, _)| (*s).min(size));
        let pruned = latest.and_then(|(_, note)| unchecked(&note)).map(|c| pruned_below(&c));
        self.pruned_below = self.pruned_below.max(pruned.unwrap_or(0));
        Ok(())
    }

    /// The entries and tree nodes for `groups`, appended after the current tree.
    fn batch(&self, groups: &[(&str, &[Event])], source: Source, time_ms: i64) -> Result<Appending, AuditError> {
        let mut frontier = self.frontier.clone();
        let mut entries = Vec::new();
        let mut nodes = Vec::new();
        let mut firsts = Vec::with_capacity(groups.len());
        let mut session_ended = false;
        for (session, events) in groups {
            firsts.push(frontier.size());
            for event in *events {
                let payload = canonical(event)?;
                let mac = payload_mac(&self.mac_key, &payload);
                let mut fields = serde_json::json!({
                    "v": 1,
                    "index": frontier.size(),
                    "time_ms": time_ms,
                    "session": session,
                    "kind": event.kind(),
                    "payload_mac": hex::encode(mac),
                });
                // Only external entries carry the field: entries of the
                // session's own writer keep the format of older logs.
                if source == Source::External {
                    fields["source"] = "external".into();
                }
                let entry = canonical(&fields)?;
                let leaf = merkle::leaf_hash(&entry);
                nodes.extend(frontier.append(leaf));
                session_ended |= matches!(event, Event::SessionEnd { .. });
                entries.push(NewEntry {
                    entry,
                    leaf,
                    payload,
                    time_ms,
                    session: session.to_string(),
                    kind: event.kind().into(),
                });
            }
        }
        Ok(Appending { frontier, entries, nodes, firsts, session_ended })
    }

    /// Signs a checkpoint when entries are waiting and the interval has
    /// passed since the last one. Returns the note if one was signed. A
    /// writer calls this on a timer so a quiet log is still signed within
    /// the interval of its last append.
    pub fn checkpoint_if_due(&mut self) -> Result<Option<String>, AuditError> {
        if self.frontier.size() > self.signed_size && self.last_signed.elapsed() >= self.every.interval {
            return self.checkpoint().map(Some);
        }
        Ok(None)
    }

    /// Entries appended since the last checkpoint.
    pub fn unsigned(&self) -> u64 {
        self.frontier.size().saturating_sub(self.signed_size)
    }

    /// The checkpoint schedule.
    pub fn schedule(&self) -> CheckpointEvery {
        self.every
    }

    /// Signs and stores a checkpoint of the current tree. Returns the note.
    pub fn checkpoint(&mut self) -> Result<String, AuditError> {
        // Another process may have pruned since this log was opened: carry
        // its watermark forward, so a checkpoint of the same size never
        // replaces the prune's note with one that forgets it.
        if let Some((_, note)) = self.store.latest_checkpoint()? {
            let stored = unchecked(&note).map_or(0, |c| pruned_below(&c));
            self.pruned_below = self.pruned_below.max(stored);
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: self.frontier.size(),
            root: self.frontier.root(),
            extensions: match self.pruned_below {
                0 => vec![],
                n => vec![format!("{PRUNED_BELOW} {n}")],
            },
        };
        let note = cp.sign(&self.signer).map_err(|e| AuditError::Sign(e.to_string()))?;
        self.store.add_checkpoint(cp.size, &note)?;
        if let Some(latest) = &self.latest {
            latest.write(&note, cp.size)?;
        }
        self.signed_size = cp.size;
        self.last_signed = Instant::now();
        Ok(note)
    }

    /// The store (for reads).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// An inclusion proof for entry `index` in the tree of `size`.
    pub fn prove(&self, index: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        Ok(merkle::inclusion_proof(index, size, &StoreNodes(&self.store))?)
    }

    /// A consistency proof between two tree sizes.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        Ok(merkle::consistency_proof(old, new, &StoreNodes(&self.store))?)
    }
}

/// What verification found wrong: the first problem, located.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Tamper {
    /// An entry is missing from the sequence.
    #[error("entry {index} is missing (the next stored entry is {found})")]
    Missing {
        /// The expected index.
        index: u64,
        /// The index found instead.
        found: u64,
    },
    /// An entry's bytes do not parse or name another position.
    #[error("entry {index}: {what}")]
    BadEntry {
        /// The entry.
        index: u64,
        /// What is wrong.
        what: String,
    },
    /// An entry's bytes no longer hash to the leaf recorded when it was appended.
    #[error("entry {index} was edited: its bytes do not hash to the leaf recorded at append")]
    EntryEdited {
        /// The entry.
        index: u64,
    },
    /// A payload is gone that no signed prune covers.
    #[error(
        "the payload of entry {index} is missing: it was deleted, not pruned (signed prunes cover only entries below \
         {pruned_below})"
    )]
    PayloadMissing {
        /// The entry.
        index: u64,
        /// The signed prune watermark.
        pruned_below: u64,
    },
    /// The database is not an extension of the checkpoint kept outside it.
    #[error(
        "the database was rolled back or replaced: the checkpoint kept outside it signs {kept} entries, the \
         database holds {held}"
    )]
    RolledBack {
        /// The size the kept checkpoint signs.
        kept: u64,
        /// Entries the database holds.
        held: u64,
    },
    /// A payload no longer matches the keyed hash its entry commits to.
    #[error("the payload of entry {index} was edited: it does not match the hash its entry commits to")]
    PayloadEdited {
        /// The entry.
        index: u64,
    },
    /// A checkpoint's signature does not verify with the key.
    #[error("checkpoint at size {size}: {what}")]
    BadCheckpoint {
        /// Its tree size.
        size: u64,
        /// What is wrong.
        what: String,
    },
    /// The entries do not produce the root a signed checkpoint recorded.
    #[error(
        "the entries do not produce the root signed at size {size}: an entry between {from} and {} was changed, \
         removed, reordered or inserted",
        size - 1
    )]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The previous checkpoint's size (the change is after it).
        from: u64,
    },
    /// A signed checkpoint covers more entries than the log holds.
    #[error("the log was truncated or rolled back: a checkpoint signs {size} entries, the log holds {held}")]
    Truncated {
        /// The checkpoint's size.
        size: u64,
        /// Entries held.
        held: u64,
    },
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Payloads checked against their keyed hash (pruned ones are skipped).
    pub payloads: u64,
    /// Entries after the last checkpoint: in the log, not yet signed.
    pub unsigned_tail: u64,
    /// Payloads of entries below this index may be missing: a signed prune.
    pub pruned_below: u64,
}

/// Verifies everything: every entry's bytes against its leaf, every payload
/// (when `mac_key` is given) against its keyed hash, every checkpoint's
/// signature, and the root the entries produce at every checkpoint, which
/// also proves each checkpoint consistent with the next. `retained` are
/// checkpoints kept elsewhere (their notes), which catch a rolled-back or
/// wholly forged log.
///
/// The store is read on the calling thread while a second thread checks
/// signatures, hashes and roots, so reading and hashing overlap.
pub fn verify<S: Store>(
    store: &S,
    verifier: &Verifier,
    origin: &str,
    mac_key: Option<&[u8; 32]>,
    retained: &[String],
) -> Result<Result<Verified, Tamper>, AuditError> {
    verify_kept(store, verifier, origin, mac_key, retained, None)
}

/// [`verify`], and also against `kept`, the checkpoint kept outside the
/// database (see [`crate::latest`]): a database holding fewer entries is
/// [`Tamper::RolledBack`]; one whose entries do not produce its root is
/// [`Tamper::RootMismatch`] at its size. The root is recomputed from the
/// entries themselves, which proves more than a consistency proof from the
/// stored nodes would.
pub fn verify_kept<S: Store>(
    store: &S,
    verifier: &Verifier,
    origin: &str,
    mac_key: Option<&[u8; 32]>,
    retained: &[String],
    kept: Option<&str>,
) -> Result<Result<Verified, Tamper>, AuditError> {
    let held = store.size()?;
    let mut retained = retained.to_vec();
    if let Some(note) = kept {
        match Checkpoint::open(note, std::slice::from_ref(verifier), origin) {
            Ok(cp) if cp.size > held => return Ok(Err(Tamper::RolledBack { kept: cp.size, held })),
            Ok(_) => retained.push(note.to_string()),
            Err(e) => {
                let size = unchecked(note).map_or(0, |c| c.size);
                return Ok(Err(Tamper::BadCheckpoint {
                    size,
                    what: format!("the checkpoint kept outside the database: {e}"),
                }));
            }
        }
    }
    let retained = retained.as_slice();
    let stored = store.checkpoints()?;
    let mac = match mac_key {
        Some(key) => Some(HmacSha256::new_from_slice(key).map_err(|e| AuditError::Sign(e.to_string()))?),
        None => None,
    };
    std::thread::scope(|scope| {
        // Batches go to the checker and come back empty to be refilled, so
        // entries cross threads as bytes in a reused buffer, not as
        // allocations freed on the other thread.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Batch>();
        let checker = scope.spawn(move || {
            let checkpoints = open_checkpoints(&stored, retained, verifier, origin, held)?;
            let mut check = Checker::new(checkpoints, mac);
            check.pruned_below = check.checkpoints.iter().map(pruned_below).max().unwrap_or(0);
            check.roots()?;
            for mut batch in full_rx {
                for item in &batch.items {
                    check.entry(batch.get(item))?;
                }
                batch.clear();
                let _ = empty_tx.send(batch);
            }
            check.finish(held)
        });
        let mut batch = Batch::default();
        let mut checker_gone = false;
        let scanned = store.scan(0, &mut |e| {
            batch.push(e);
            if batch.items.len() == VERIFY_BATCH {
                let next = empty_rx.try_recv().unwrap_or_default();
                // The checker stops reading at the first problem.
                checker_gone = full_tx.send(std::mem::replace(&mut batch, next)).is_err();
            }
            !checker_gone
        });
        if !checker_gone && !batch.items.is_empty() {
            let _ = full_tx.send(batch);
        }
        drop(full_tx);
        let verdict = checker.join().map_err(|_| AuditError::Writer("the verifying thread panicked".into()))?;
        match (verdict, scanned) {
            // Reading stopped because the checker found a problem: that problem is the answer.
            (Err(tamper), _) if checker_gone => Ok(Err(tamper)),
            // Reading failed on its own (a corrupt page): the checker saw only part of the log.
            (_, Err(e)) => Err(e.into()),
            (verdict, Ok(())) => Ok(verdict),
        }
    })
}

/// Entries copied out of the store, in one buffer.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    items: Vec<BatchItem>,
}

struct BatchItem {
    index: u64,
    leaf: Hash,
    entry: std::ops::Range<usize>,
    payload: Option<std::ops::Range<usize>>,
}

impl Batch {
    fn push(&mut self, e: StoredEntry<'_>) {
        let mut copy = |b: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(b);
            start..self.bytes.len()
        };
        let entry = copy(e.entry);
        let payload = e.payload.map(copy);
        self.items.push(BatchItem { index: e.index, leaf: e.leaf, entry, payload });
    }

    fn get(&self, item: &BatchItem) -> StoredEntry<'_> {
        StoredEntry {
            index: item.index,
            entry: &self.bytes[item.entry.clone()],
            leaf: item.leaf,
            payload: item.payload.clone().map(|p| &self.bytes[p]),
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }
}

/// Batches in flight between the threads.
const BATCHES: usize = 8;

/// Entries handed from the reading thread to the checking thread at a time.
const VERIFY_BATCH: usize = 512;

/// Opens every stored and retained checkpoint with the key, sorted by size.
fn open_checkpoints(
    stored: &[(u64, String)],
    retained: &[String],
    verifier: &Verifier,
    origin: &str,
    held: u64,
) -> Result<Vec<Checkpoint>, Tamper> {
    let mut checkpoints = Vec::new();
    for (size, note) in stored {
        let size = *size;
        match Checkpoint::open(note, std::slice::from_ref(verifier), origin) {
            Ok(cp) if cp.size == size => checkpoints.push(cp),
            Ok(cp) => {
                let what = format!("stored for size {size} but it signs size {}", cp.size);
                return Err(Tamper::BadCheckpoint { size, what });
            }
            Err(e) => return Err(Tamper::BadCheckpoint { size, what: e.to_string() }),
        }
    }
    for note in retained {
        match Checkpoint::open(note, std::slice::from_ref(verifier), origin) {
            Ok(cp) => checkpoints.push(cp),
            Err(e) => {
                let size = note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
                return Err(Tamper::BadCheckpoint { size, what: format!("retained checkpoint: {e}") });
            }
        }
    }
    checkpoints.sort_by_key(|c| c.size);
    if let Some(last) = checkpoints.last()
        && last.size > held
    {
        return Err(Tamper::Truncated { size: last.size, held });
    }
    Ok(checkpoints)
}

/// Recomputes the tree entry by entry and compares it with the checkpoints.
struct Checker {
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    previous_size: u64,
    frontier: Frontier,
    mac: Option<HmacSha256>,
    payloads: u64,
    pruned_below: u64,
}

impl Checker {
    fn new(checkpoints: Vec<Checkpoint>, mac: Option<HmacSha256>) -> Checker {
        Checker {
            checkpoints,
            next_checkpoint: 0,
            previous_size: 0,
            frontier: Frontier::new(),
            mac,
            payloads: 0,
            pruned_below: 0,
        }
    }

    /// Compares the root with every checkpoint of the current size (several
    /// may sign the same size: stored and retained).
    fn roots(&mut self) -> Result<(), Tamper> {
        let mut matched = None;
        while let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            if cp.size != self.frontier.size() {
                break;
            }
            if cp.root != self.frontier.root() {
                return Err(Tamper::RootMismatch { size: cp.size, from: self.previous_size });
            }
            matched = Some(cp.size);
            self.next_checkpoint += 1;
        }
        if let Some(size) = matched {
            self.previous_size = size;
        }
        Ok(())
    }

    fn entry(&mut self, e: StoredEntry<'_>) -> Result<(), Tamper> {
        let expected = self.frontier.size();
        if e.index != expected {
            return Err(Tamper::Missing { index: expected, found: e.index });
        }
        let recorded_mac = match entry_fields(e.entry) {
            Some((index, mac)) if index == e.index => mac,
            _ => return Err(bad_entry(&e)),
        };
        if e.payload.is_none() && e.index >= self.pruned_below {
            return Err(Tamper::PayloadMissing { index: e.index, pruned_below: self.pruned_below });
        }
        if let (Some(base), Some(payload)) = (&self.mac, &e.payload) {
            let mut mac = base.clone();
            mac.update(payload);
            if mac.finalize().into_bytes()[..] != recorded_mac[..] {
                return Err(Tamper::PayloadEdited { index: e.index });
            }
            self.payloads += 1;
        }
        if merkle::leaf_hash(e.entry) != e.leaf {
            return Err(Tamper::EntryEdited { index: e.index });
        }
        self.frontier.push(e.leaf);
        self.roots()
    }

    fn finish(self, held: u64) -> Result<Verified, Tamper> {
        if self.frontier.size() != held {
            return Err(Tamper::Missing { index: self.frontier.size(), found: held });
        }
        Ok(Verified {
            entries: held,
            checkpoints: self.checkpoints.len() as u64,
            payloads: self.payloads,
            unsigned_tail: held - self.checkpoints.last().map_or(0, |c| c.size),
            pruned_below: self.pruned_below,
        })
    }
}

/// The index and payload MAC of an entry, read from its canonical bytes
/// without a JSON parser: `{"index":N,"kind":…,"payload_mac":"<64 hex>",…}`.
/// RFC 8785 fixes the key order and number format, so any entry the log
/// wrote parses here; anything else is `None` and gets a precise diagnosis
/// from [`bad_entry`].
fn entry_fields(entry: &[u8]) -> Option<(u64, Hash)> {
    let rest = entry.strip_prefix(b"{\"index\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') || rest.get(digits) != Some(&b',') {
        return None;
    }
    let index = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    const KEY: &[u8] = b"\"payload_mac\":\"";
    let at = rest.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let hex_mac = rest.get(at..at + 64)?;
    if rest.get(at + 64) != Some(&b'"') {
        return None;
    }
    let mut mac = [0u8; 32];
    hex::decode_to_slice(hex_mac, &mut mac).ok()?;
    Some((index, mac))
}

/// Says exactly what is wrong with an entry [`entry_fields`] rejected.
fn bad_entry(e: &StoredEntry<'_>) -> Tamper {
    let what = match serde_json::from_slice::<serde_json::Value>(e.entry) {
        Err(err) => format!("not valid JSON: {err}"),
        Ok(v) => match v.get("index").and_then(|i| i.as_u64()) {
            Some(i) if i != e.index => format!("it says it is entry {i}"),
            None => "it names no index".to_string(),
            Some(_) => match v.get("payload_mac").and_then(|m| m.as_str()) {
                Some(m) if m.len() == 64 && hex::decode(m).is_ok() => "it is not in canonical form".to_string(),
                _ => "it has no valid payload_mac".to_string(),
            },
        },
    };
    Tamper::BadEntry { index: e.index, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, mac: &str) -> Vec<u8> {
        canonical(&serde_json::json!({
            "v": 1, "index": index, "time_ms": 5, "session": "s\"x", "kind": "command", "payload_mac": mac,
        }))
        .unwrap()
    }

    #[test]
    fn the_fast_reader_takes_every_canonical_entry() {
        let mac = "ab".repeat(32);
        for index in [0, 7, 10, 123_456_789] {
            assert_eq!(entry_fields(&entry(index, &mac)), Some((index, [0xab; 32])));
        }
    }

    #[test]
    fn the_fast_reader_refuses_what_the_log_never_writes() {
        let mac = "ab".repeat(32);
        let good = String::from_utf8(entry(12, &mac)).unwrap();
        for bad in [
            good.replace("\"index\":12", "\"index\":012"),
            good.replace("\"index\":12", "\"index\":-12"),
            good.replace("\"index\":12", "\"index\":\"12\""),
            good.replace(&mac, &"ab".repeat(31)),
            good.replace(&mac, &"zz".repeat(32)),
            good.replace("{\"index\"", "{ \"index\""),
            good.replace("payload_mac", "payload_maq"),
        ] {
            assert_eq!(entry_fields(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_rejected_entry_is_diagnosed_precisely() {
        let stored = |bytes: &'static [u8]| StoredEntry { index: 3, entry: bytes, leaf: [0; 32], payload: None };
        let what = |t: Tamper| match t {
            Tamper::BadEntry { index: 3, what } => what,
            other => panic!("{other:?}"),
        };
        assert!(what(bad_entry(&stored(b"{nope"))).starts_with("not valid JSON"));
        assert_eq!(what(bad_entry(&stored(b"{\"index\":4}"))), "it says it is entry 4");
        assert_eq!(what(bad_entry(&stored(b"{\"kind\":\"x\"}"))), "it names no index");
        assert_eq!(what(bad_entry(&stored(b"{\"index\":3,\"payload_mac\":\"00\"}"))), "it has no valid payload_mac");
        let spaced: &'static [u8] = Box::leak(
            format!("{{ \"index\": 3, \"payload_mac\": \"{}\" }}", "00".repeat(32)).into_bytes().into_boxed_slice(),
        );
        assert_eq!(what(bad_entry(&stored(spaced))), "it is not in canonical form");
    }
}
