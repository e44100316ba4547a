//! Sending each new checkpoint of the audit log to the witnesses the
//! configuration names (C2SP tlog-witness `add-checkpoint`), and keeping
//! their cosignatures beside the checkpoint (`Store::add_cosignature`).
//!
//! The task follows the log's latest checkpoint through its own store
//! connection (reads on the blocking pool), so requests never wait for it.
//! For each witness it remembers the size the witness holds (learned from
//! its answers; 0 at first) and sends the consistency proof from there.
//! Several replicas may send the same checkpoint: a `409` gives the
//! witness's size and the task tries once more from it. A witness that is
//! down is retried with a growing delay (1 s to 60 s). Any other refusal
//! (a bad consistency proof: the log was rolled back or forked; a signature
//! the witness does not accept; a witness ahead of the log) is logged as an
//! error and recorded in the audit log as a `witness_refused` event, once
//! per kind of refusal, and tried again a minute later.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_audit::cosignature::CosignatureVerifier;
use airlock_audit::event::Event;
use airlock_audit::merkle::{self, Hash, MerkleError, NodeSource};
use airlock_audit::store::Store;
use airlock_audit::writer::AuditHandle;
use airlock_witness::client::{SubmitError, WitnessClient};
use serde::Deserialize;

use crate::config::ConfigError;

/// A store connection for reads, shared by the witnessing task and the
/// gateway's audit endpoints.
pub type ReadStore = Arc<Mutex<Box<dyn Store + Send>>>;

/// The audit session `witness_refused` events are filed under.
pub const SESSION: &str = "witnessing";

/// How often the log's latest checkpoint is looked at.
pub const POLL: Duration = Duration::from_millis(500);

/// The longest wait before a witness that cannot be reached is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long a witness that refused is left alone before the next try.
const AFTER_REFUSAL: Duration = Duration::from_secs(60);

/// `[[witness]]` as written in gateway.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSection {
    name: String,
    url: String,
    key: String,
}

/// One configured witness.
#[derive(Debug, Clone)]
pub struct WitnessSettings {
    /// What the log calls it.
    pub name: String,
    /// Its submission prefix (`/add-checkpoint` is appended).
    pub url: String,
    /// Its cosignature verifier key.
    pub key: CosignatureVerifier,
}

/// Checks the `[[witness]]` sections of the file at `origin`.
pub fn check_witnesses(sections: Vec<WitnessSection>, origin: &Path) -> Result<Vec<WitnessSettings>, ConfigError> {
    let mut witnesses: Vec<WitnessSettings> = Vec::new();
    for w in sections {
        let bad = |what: String| ConfigError::Invalid(format!("{}: witness {:?}: {what}", origin.display(), w.name));
        if w.name.is_empty() || w.name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+') {
            return Err(bad("the name must be non-empty, without spaces or '+'".into()));
        }
        if witnesses.iter().any(|x| x.name == w.name) {
            return Err(bad("the name is used twice".into()));
        }
        let url = reqwest::Url::parse(&w.url).map_err(|e| bad(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || url.query().is_some() {
            return Err(bad("url must be an http:// or https:// URL with a host and no query".into()));
        }
        let key = CosignatureVerifier::from_key_string(&w.key).map_err(|e| bad(format!("key: {e}")))?;
        witnesses.push(WitnessSettings { name: w.name.clone(), url: w.url.trim_end_matches('/').to_owned(), key });
    }
    Ok(witnesses)
}

/// What the task knows of one witness.
struct Follower {
    client: WitnessClient,
    /// The size the witness holds, as far as we know.
    held: u64,
    /// The largest size it cosigned for us.
    cosigned: Option<u64>,
    /// Not before this.
    next_try: Instant,
    backoff: Duration,
    /// The last refusal recorded (status, the witness's size), so a
    /// refusal that repeats is recorded once.
    recorded: Option<(u16, u64)>,
}

/// What one submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The witness cosigned this size; the cosignature is kept.
    Cosigned {
        /// The size.
        size: u64,
    },
    /// Nothing to do (already cosigned, or waiting before a retry).
    Idle,
    /// The witness could not be reached; it is retried later.
    Unreachable,
    /// The witness refused (recorded in the log when new).
    Refused {
        /// The HTTP status (409 for a witness ahead of the log, 0 for an unusable answer).
        status: u16,
        /// Why.
        message: String,
    },
}

/// The witnessing task.
pub struct Witnessing {
    store: ReadStore,
    audit: AuditHandle,
    followers: Vec<Follower>,
    poll: Duration,
}

impl Witnessing {
    /// A task sending the checkpoints in `store` to `witnesses`; refusals
    /// are recorded through `audit`.
    pub fn new(store: ReadStore, witnesses: &[WitnessSettings], audit: AuditHandle) -> Result<Witnessing, SubmitError> {
        let mut followers = Vec::new();
        for w in witnesses {
            followers.push(Follower {
                client: WitnessClient::new(&w.name, &w.url, w.key.clone())?,
                held: 0,
                cosigned: None,
                next_try: Instant::now(),
                backoff: Duration::from_secs(1),
                recorded: None,
            });
        }
        Ok(Witnessing { store, audit, followers, poll: POLL })
    }

    /// Looks at the log this often (default [`POLL`]).
    pub fn poll_every(mut self, poll: Duration) -> Witnessing {
        self.poll = poll;
        self
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.round().await;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// One look at the log, and one submission to each witness that needs one.
    /// Returns what each witness's submission came to, in configuration order.
    pub async fn round(&mut self) -> Vec<Outcome> {
        let store = self.store.clone();
        let latest = tokio::task::spawn_blocking(move || lock(&store).latest_checkpoint()).await;
        let latest = match latest {
            Ok(Ok(Some(latest))) => latest,
            Ok(Ok(None)) => return vec![Outcome::Idle; self.followers.len()],
            Ok(Err(e)) => {
                tracing::error!("witnessing: cannot read the latest checkpoint: {e}");
                return vec![Outcome::Idle; self.followers.len()];
            }
            Err(e) => {
                tracing::error!("witnessing: the store read failed: {e}");
                return vec![Outcome::Idle; self.followers.len()];
            }
        };
        let mut outcomes = Vec::with_capacity(self.followers.len());
        for i in 0..self.followers.len() {
            outcomes.push(self.follow(i, &latest).await);
        }
        outcomes
    }

    async fn follow(&mut self, i: usize, (size, note): &(u64, String)) -> Outcome {
        let (size, now) = (*size, Instant::now());
        let follower = &self.followers[i];
        if follower.cosigned.is_some_and(|c| c >= size) || now < follower.next_try {
            return Outcome::Idle;
        }
        // A 409 (another replica moved the witness on) gets one more try from the size it names.
        let mut outcome = Outcome::Idle;
        for attempt in 0..2 {
            let follower = &self.followers[i];
            let old = follower.held;
            if old > size {
                let message = format!(
                    "the witness holds size {old} of this log, whose latest checkpoint is size {size}: the log was \
                     rolled back"
                );
                outcome = self.refused(i, size, 409, message).await;
                break;
            }
            let proof = match self.proof(old, size).await {
                Ok(proof) => proof,
                Err(e) => {
                    tracing::error!(
                        witness = follower.client.name(),
                        "witnessing: no consistency proof {old}..{size}: {e}"
                    );
                    outcome = Outcome::Idle;
                    break;
                }
            };
            match follower.client.submit(old, &proof, note).await {
                Ok(line) => {
                    outcome = self.cosigned(i, size, line).await;
                    break;
                }
                Err(SubmitError::Conflict { size: held, .. }) if held == old => {
                    // Same size, other root: the witness cosigned another tree of this size.
                    let message =
                        format!("the witness cosigned another root for size {held}: the log was rolled back or forked");
                    outcome = self.refused(i, size, 409, message).await;
                    break;
                }
                Err(SubmitError::Conflict { size: held, .. }) => {
                    self.followers[i].held = held;
                    if attempt == 1 {
                        outcome = Outcome::Idle;
                    }
                }
                Err(SubmitError::Refused { status, message, .. }) => {
                    outcome = self.refused(i, size, status, message).await;
                    break;
                }
                Err(SubmitError::BadAnswer { reason, .. }) => {
                    outcome = self.refused(i, size, 0, reason).await;
                    break;
                }
                Err(e @ SubmitError::Unreachable { .. }) => {
                    let follower = &mut self.followers[i];
                    tracing::warn!("witnessing: {e}; trying again in {:?}", follower.backoff);
                    follower.next_try = Instant::now() + follower.backoff;
                    follower.backoff = (follower.backoff * 2).min(MAX_BACKOFF);
                    outcome = Outcome::Unreachable;
                    break;
                }
            }
        }
        outcome
    }

    async fn proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, String> {
        let store = self.store.clone();
        let proof = tokio::task::spawn_blocking(move || {
            let store = lock(&store);
            merkle::consistency_proof(old, new, &StoreNodes(&**store))
        })
        .await;
        match proof {
            Ok(Ok(proof)) => Ok(proof),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn cosigned(&mut self, i: usize, size: u64, line: String) -> Outcome {
        let store = self.store.clone();
        let name = self.followers[i].client.name().to_owned();
        let kept = tokio::task::spawn_blocking(move || lock(&store).add_cosignature(size, &name, &line)).await;
        let follower = &mut self.followers[i];
        follower.held = size;
        follower.backoff = Duration::from_secs(1);
        follower.recorded = None;
        match kept {
            Ok(Ok(())) => {
                follower.cosigned = Some(size);
                tracing::debug!(witness = follower.client.name(), size, "cosigned");
                Outcome::Cosigned { size }
            }
            Ok(Err(e)) => {
                tracing::error!(witness = follower.client.name(), size, "witnessing: cannot keep the cosignature: {e}");
                Outcome::Idle
            }
            Err(e) => {
                tracing::error!("witnessing: the store write failed: {e}");
                Outcome::Idle
            }
        }
    }

    async fn refused(&mut self, i: usize, size: u64, status: u16, message: String) -> Outcome {
        let follower = &mut self.followers[i];
        let witness = follower.client.name().to_owned();
        tracing::error!(witness, size, status, "a witness refused the audit log's checkpoint: {message}");
        follower.next_try = Instant::now() + AFTER_REFUSAL;
        let key = (status, follower.held);
        if follower.recorded != Some(key) {
            follower.recorded = Some(key);
            let event = Event::WitnessRefused {
                witness: witness.clone(),
                size,
                status: u64::from(status),
                message: message.clone(),
            };
            let audit = self.audit.clone();
            match tokio::task::spawn_blocking(move || audit.append(SESSION, vec![event])).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(witness, "cannot record the witness's refusal: {e}"),
                Err(e) => tracing::error!(witness, "cannot record the witness's refusal: {e}"),
            }
        }
        Outcome::Refused { status, message }
    }
}

/// The gateway's read-only audit endpoints (`GET`, for a key that may read
/// the log), in the C2SP tlog conventions: `text/plain`, hashes one per line
/// in standard base64, in RFC 6962 order.
///
/// - `/v1/audit/checkpoint`: the latest signed checkpoint, with the
///   witnesses' cosignatures kept for it appended as more signature lines.
/// - `/v1/audit/consistency?old=N&new=M`: the consistency proof from size N to M.
/// - `/v1/audit/inclusion?index=I&size=N`: the inclusion proof of entry I in the tree of N.
///
/// Returns `None` for a path that is not one of them.
pub async fn audit_endpoint(store: &ReadStore, path: &str, query: Option<&str>) -> Option<(u16, String)> {
    let param = |name: &str| -> Result<u64, String> {
        let value = query
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
            .ok_or_else(|| format!("{path} needs ?{name}=N"))?;
        airlock_witness::request::parse_size(value).ok_or_else(|| format!("{name}={value:?} is not a tree size"))
    };
    let store = store.clone();
    let answer = match path {
        "/v1/audit/checkpoint" => {
            tokio::task::spawn_blocking(move || {
                let store = lock(&store);
                let Some((size, note)) = store.latest_checkpoint().map_err(|e| (500, e.to_string()))? else {
                    return Err((404, "the log has no checkpoint yet".to_owned()));
                };
                let mut note = note;
                for (_, line) in store.cosignatures(size).map_err(|e| (500, e.to_string()))? {
                    note.push_str(line.trim_end_matches('\n'));
                    note.push('\n');
                }
                Ok(note)
            })
            .await
        }
        "/v1/audit/consistency" | "/v1/audit/inclusion" => {
            let consistency = path.ends_with("consistency");
            let sizes = if consistency { (param("old"), param("new")) } else { (param("index"), param("size")) };
            let (a, b) = match sizes {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return Some((400, e)),
            };
            tokio::task::spawn_blocking(move || {
                let store = lock(&store);
                let held = store.size().map_err(|e| (500, e.to_string()))?;
                if b > held {
                    return Err((400, format!("the log holds {held} entries, fewer than {b}")));
                }
                let nodes = StoreNodes(&**store);
                let proof = if consistency {
                    merkle::consistency_proof(a, b, &nodes)
                } else {
                    merkle::inclusion_proof(a, b, &nodes)
                };
                let proof = proof.map_err(|e| match e {
                    MerkleError::SizeOrder { .. } | MerkleError::IndexOutOfRange { .. } => (400, e.to_string()),
                    other => (500, other.to_string()),
                })?;
                use base64::Engine as _;
                Ok(proof.iter().map(|h| base64::engine::general_purpose::STANDARD.encode(h) + "\n").collect())
            })
            .await
        }
        _ => return None,
    };
    Some(match answer {
        Ok(Ok(text)) => (200, text),
        Ok(Err((status, message))) => (status, format!("{message}\n")),
        Err(e) => (500, format!("{e}\n")),
    })
}

fn lock(store: &ReadStore) -> std::sync::MutexGuard<'_, Box<dyn Store + Send>> {
    store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Merkle nodes read from a store.
pub struct StoreNodes<'a>(pub &'a dyn Store);

impl NodeSource for StoreNodes<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        match self.0.node(level, index) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(MerkleError::MissingNode { level, index }),
            Err(e) => Err(MerkleError::NodeRead { level, index, source: Box::new(e) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_audit::cosignature::{CosignatureSigner, verify_lines};
    use airlock_audit::log::{AuditLog, CheckpointEvery};
    use airlock_audit::note::Signer;
    use airlock_audit::store::{Durability, SqliteStore};
    use airlock_audit::writer::AuditWriter;
    use airlock_witness::server::Witness;

    const ORIGIN: &str = "airlock.test/gateway";

    #[test]
    fn witness_sections_are_checked() {
        let key = CosignatureSigner::generate("w.example/1").unwrap().verifier().to_key_string();
        let section =
            |name: &str, url: &str, key: &str| WitnessSection { name: name.into(), url: url.into(), key: key.into() };
        let ok = check_witnesses(vec![section("w1", "http://127.0.0.1:7380/", &key)], Path::new("g.toml")).unwrap();
        assert_eq!(ok[0].url, "http://127.0.0.1:7380");
        for (sections, want) in [
            (vec![section("w 1", "http://h", &key)], "name"),
            (vec![section("w1", "ftp://h", &key)], "url"),
            (vec![section("w1", "http://h", "nope")], "key"),
            (vec![section("w1", "http://h", &key), section("w1", "http://g", &key)], "twice"),
        ] {
            let err = check_witnesses(sections, Path::new("g.toml")).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let log_key = Signer::generate("l").unwrap().verifier().to_key_string();
        let err = check_witnesses(vec![section("w1", "http://h", &log_key)], Path::new("g.toml")).unwrap_err();
        assert!(err.to_string().contains("0x01"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_are_cosigned_and_kept_and_a_refusal_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let log_key = Signer::generate(ORIGIN).unwrap();
        let witness_key = CosignatureSigner::generate("witness.test/w1").unwrap();
        let witness =
            Witness::open(&dir.path().join("w.db"), witness_key.clone(), vec![(ORIGIN.into(), log_key.verifier())])
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(airlock_witness::server::serve(listener, Arc::new(witness), std::future::pending()));

        let log = AuditLog::open(
            SqliteStore::open(&db, Durability::Durable).unwrap(),
            log_key.clone(),
            ORIGIN,
            [3; 32],
            CheckpointEvery::default(),
        )
        .unwrap();
        let writer = AuditWriter::spawn(log).unwrap();
        let handle = writer.handle();
        let read: ReadStore = Arc::new(Mutex::new(Box::new(SqliteStore::open(&db, Durability::Durable).unwrap())));
        let settings = [
            WitnessSettings { name: "w1".into(), url: url.clone(), key: witness_key.verifier() },
            // A second witness that is down: retried later, never blocking the first.
            WitnessSettings { name: "down".into(), url: "http://127.0.0.1:9".into(), key: witness_key.verifier() },
        ];
        let mut task = Witnessing::new(read.clone(), &settings, handle.clone()).unwrap();

        let append = |n: usize| {
            for i in 0..n {
                let event = Event::External { source: "t".into(), data: serde_json::json!(i) };
                handle.append("s", vec![event]).unwrap();
            }
            handle.checkpoint().unwrap()
        };
        let note = append(3);
        let outcomes = task.round().await;
        assert_eq!(outcomes, vec![Outcome::Cosigned { size: 3 }, Outcome::Unreachable]);
        let kept = read.lock().unwrap().cosignatures(3).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0, "w1");
        let text = note.split_once("\n\n").unwrap().0.to_owned() + "\n";
        assert_eq!(verify_lines(&text, &[&kept[0].1], &[witness_key.verifier()]).unwrap().len(), 1);
        // Nothing new: nothing sent; the one that is down waits its turn.
        assert_eq!(task.round().await, vec![Outcome::Idle, Outcome::Idle]);

        // Another replica (a second task, knowing nothing) submits the next one:
        // it learns the witness's size from a 409 and succeeds on its second try.
        append(2);
        let mut replica = Witnessing::new(read.clone(), &settings[..1], handle.clone()).unwrap();
        assert_eq!(replica.round().await, vec![Outcome::Cosigned { size: 5 }]);
        // The first task is behind (it thinks the witness holds 3): 409, retry, fine.
        append(1);
        assert_eq!(task.round().await[0], Outcome::Cosigned { size: 6 });

        // A witness that holds more than the log has (the log was rolled back): refused and recorded.
        let mut behind = Witnessing::new(read.clone(), &settings[..1], handle.clone()).unwrap();
        behind.followers[0].held = 100;
        let Outcome::Refused { status, message } = behind.round().await.remove(0) else { panic!() };
        assert_eq!(status, 409);
        assert!(message.contains("rolled back"), "{message}");
        drop((task, replica, behind));
        drop(handle);
        let log = writer.close().unwrap();
        let mut refusals = Vec::new();
        log.store()
            .list(
                &airlock_audit::store::Filter { kind: Some("witness_refused".into()), ..Default::default() },
                &mut |e| {
                    refusals.push(String::from_utf8_lossy(e.payload.unwrap_or_default()).into_owned());
                    true
                },
            )
            .unwrap();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(refusals[0].contains("\"witness\":\"w1\"") && refusals[0].contains("\"status\":409"), "{refusals:?}");
    }
}
