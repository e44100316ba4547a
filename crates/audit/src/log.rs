//! The audit log: appends, signed checkpoints, and verification.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::checkpoint::Checkpoint;
use crate::event::{Event, canonical};
use crate::merkle::{self, Frontier, Hash, MerkleError, NodeSource};
use crate::note::{Signer, Verifier};
use crate::store::{NewEntry, Store, StoreError};

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
}

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
        let signed_size = store.checkpoints()?.last().map_or(0, |(s, _)| *s);
        Ok(AuditLog {
            store,
            frontier,
            signer,
            origin: origin.to_string(),
            mac_key,
            every,
            signed_size,
            last_signed: Instant::now(),
        })
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Appends events in one transaction (group commit). Returns the index of
    /// the first. If this fails, nothing was recorded and the caller must not
    /// perform the actions.
    pub fn append(&mut self, session: &str, events: &[Event]) -> Result<u64, AuditError> {
        let first = self.frontier.size();
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut frontier = self.frontier.clone();
        let mut entries = Vec::with_capacity(events.len());
        let mut nodes = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let payload = canonical(event)?;
            let mac = payload_mac(&self.mac_key, &payload);
            let entry = canonical(&serde_json::json!({
                "v": 1,
                "index": first + i as u64,
                "time_ms": time_ms,
                "session": session,
                "kind": event.kind(),
                "payload_mac": hex::encode(mac),
            }))?;
            let leaf = merkle::leaf_hash(&entry);
            nodes.extend(frontier.append(leaf));
            entries.push(NewEntry {
                entry,
                leaf,
                payload,
                time_ms,
                session: session.to_string(),
                kind: event.kind().into(),
            });
        }
        self.store.append(first, &entries, &nodes)?;
        self.frontier = frontier;
        let due = self.frontier.size() - self.signed_size >= self.every.entries
            || self.last_signed.elapsed() >= self.every.interval;
        if due {
            self.checkpoint()?;
        }
        Ok(first)
    }

    /// Signs and stores a checkpoint of the current tree. Returns the note.
    pub fn checkpoint(&mut self) -> Result<String, AuditError> {
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: self.frontier.size(),
            root: self.frontier.root(),
            extensions: vec![],
        };
        let note = cp.sign(&self.signer).map_err(|e| AuditError::Sign(e.to_string()))?;
        self.store.add_checkpoint(cp.size, &note)?;
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
}

/// Verifies everything: every entry's bytes against its leaf, every payload
/// (when `mac_key` is given) against its keyed hash, every checkpoint's
/// signature, and the root the entries produce at every checkpoint, which
/// also proves each checkpoint consistent with the next. `retained` are
/// checkpoints kept elsewhere (their notes), which catch a rolled-back or
/// wholly forged log.
pub fn verify<S: Store>(
    store: &S,
    verifier: &Verifier,
    origin: &str,
    mac_key: Option<&[u8; 32]>,
    retained: &[String],
) -> Result<Result<Verified, Tamper>, AuditError> {
    let mut checkpoints = Vec::new();
    for (size, note) in store.checkpoints()? {
        match Checkpoint::open(&note, std::slice::from_ref(verifier), origin) {
            Ok(cp) if cp.size == size => checkpoints.push(cp),
            Ok(cp) => {
                let what = format!("stored for size {size} but it signs size {}", cp.size);
                return Ok(Err(Tamper::BadCheckpoint { size, what }));
            }
            Err(e) => return Ok(Err(Tamper::BadCheckpoint { size, what: e.to_string() })),
        }
    }
    for note in retained {
        match Checkpoint::open(note, std::slice::from_ref(verifier), origin) {
            Ok(cp) => checkpoints.push(cp),
            Err(e) => {
                let size = note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
                return Ok(Err(Tamper::BadCheckpoint { size, what: format!("retained checkpoint: {e}") }));
            }
        }
    }
    checkpoints.sort_by_key(|c| c.size);
    let held = store.size()?;
    if let Some(last) = checkpoints.last()
        && last.size > held
    {
        return Ok(Err(Tamper::Truncated { size: last.size, held }));
    }

    let mut frontier = Frontier::new();
    let mut next_checkpoint = 0;
    let mut previous_size = 0;
    let mut payloads = 0;
    let mut problem: Option<Tamper> = None;
    let check_roots = |frontier: &Frontier, next: &mut usize, previous: &mut u64| -> Option<Tamper> {
        // Several checkpoints may sign the same size (stored and retained).
        let mut matched = None;
        while let Some(cp) = checkpoints.get(*next) {
            if cp.size != frontier.size() {
                break;
            }
            if cp.root != frontier.root() {
                return Some(Tamper::RootMismatch { size: cp.size, from: *previous });
            }
            matched = Some(cp.size);
            *next += 1;
        }
        if let Some(size) = matched {
            *previous = size;
        }
        None
    };
    if let Some(t) = check_roots(&frontier, &mut next_checkpoint, &mut previous_size) {
        return Ok(Err(t));
    }
    store.scan(0, &mut |e| {
        let expected = frontier.size();
        if e.index != expected {
            problem = Some(Tamper::Missing { index: expected, found: e.index });
            return false;
        }
        match serde_json::from_slice::<serde_json::Value>(&e.entry) {
            Ok(v) if v.get("index").and_then(|i| i.as_u64()) == Some(e.index) => {
                if let (Some(key), Some(payload)) = (mac_key, &e.payload) {
                    let recorded = v.get("payload_mac").and_then(|m| m.as_str()).unwrap_or_default();
                    if hex::encode(payload_mac(key, payload)) != recorded {
                        problem = Some(Tamper::PayloadEdited { index: e.index });
                        return false;
                    }
                    payloads += 1;
                }
            }
            Ok(v) => {
                let claims = v.get("index").map(|i| i.to_string()).unwrap_or_else(|| "no index".into());
                problem = Some(Tamper::BadEntry { index: e.index, what: format!("it says it is entry {claims}") });
                return false;
            }
            Err(err) => {
                problem = Some(Tamper::BadEntry { index: e.index, what: format!("not valid JSON: {err}") });
                return false;
            }
        }
        let leaf = merkle::leaf_hash(&e.entry);
        if leaf != e.leaf {
            problem = Some(Tamper::EntryEdited { index: e.index });
            return false;
        }
        frontier.append(leaf);
        if let Some(t) = check_roots(&frontier, &mut next_checkpoint, &mut previous_size) {
            problem = Some(t);
            return false;
        }
        true
    })?;
    if let Some(t) = problem {
        return Ok(Err(t));
    }
    if frontier.size() != held {
        return Ok(Err(Tamper::Missing { index: frontier.size(), found: held }));
    }
    Ok(Ok(Verified {
        entries: held,
        checkpoints: checkpoints.len() as u64,
        payloads,
        unsigned_tail: held - checkpoints.last().map_or(0, |c| c.size),
    }))
}
