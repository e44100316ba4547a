//! The witness: for each log it knows (origin and verifier key) it keeps the
//! latest checkpoint it cosigned, in SQLite (synchronous = FULL), and
//! cosigns a new checkpoint only when the log's signature verifies and a
//! consistency proof shows it extends that one. The check and the write are
//! one step under one lock, and the write is on disk before the answer
//! leaves, so the witness never goes back, across requests and restarts.
//!
//! HTTP (C2SP tlog-witness, <https://c2sp.org/tlog-witness>):
//! - `POST /add-checkpoint`: the spec's call; `200` with the cosignature
//!   line, `400` malformed or old size above the checkpoint's, `403` no
//!   signature by the log's key, `404` unknown origin, `409` with
//!   `text/x.tlog.size` (the size it holds) when `old` is not that size or a
//!   checkpoint of that size has another root, `422` bad consistency proof.
//! - `GET /checkpoint/<origin, percent-escaped>` (not in the spec): the
//!   latest checkpoint it cosigned for that log, the log's note with the
//!   witness's cosignature line appended, for a verifier to be handed
//!   (`airlock audit verify --checkpoint`); `404` when it holds none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use airlock_audit::checkpoint::{Checkpoint, CheckpointError};
use airlock_audit::cosignature::CosignatureSigner;
use airlock_audit::merkle::{self, Hash};
use airlock_audit::note::{NoteError, Verifier};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rusqlite::{Connection, OptionalExtension, params};

use crate::request::{AddCheckpoint, MAX_BODY_BYTES};

/// The content type of a 409's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Opening or reading the witness's state failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// SQLite failed.
    #[error("witness database {path}: {source}")]
    Database {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// The database holds something the witness never writes.
    #[error("witness database {path}: {what}")]
    Corrupt {
        /// The database file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// The configuration names a log twice or none.
    #[error("witness configuration: {0}")]
    Config(String),
}

/// Why a checkpoint was not cosigned, with the HTTP status the spec gives it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// 400: the request or the checkpoint cannot be parsed, or `old` is above the checkpoint's size.
    #[error("{0}")]
    BadRequest(String),
    /// 403: no signature by a key the witness trusts for this origin verifies.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the witness does not know this log.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// 409: `old` is not the size the witness holds, or that size has another root.
    #[error("{message}")]
    Conflict {
        /// The size of the latest checkpoint the witness cosigned (0 when none).
        size: u64,
        /// What did not match.
        message: String,
    },
    /// 422: the consistency proof does not lead from the witness's checkpoint to this one.
    #[error("{0}")]
    BadProof(String),
    /// 500: the witness could not read or write its state.
    #[error("{0}")]
    Internal(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::UnknownOrigin(_) => StatusCode::NOT_FOUND,
            Refusal::Conflict { .. } => StatusCode::CONFLICT,
            Refusal::BadProof(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Refusal::Conflict { size, .. } => {
                let mut response = (status, format!("{size}\n")).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SIZE_CONTENT_TYPE));
                response
            }
            other => (status, format!("{other}\n")).into_response(),
        }
    }
}

/// What the witness holds for one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The size of the latest checkpoint it cosigned.
    pub size: u64,
    /// Its root.
    pub root: Hash,
    /// The log's signed note, as submitted.
    pub note: String,
    /// The witness's cosignature line of it.
    pub cosignature: String,
}

impl Held {
    /// The note with the witness's cosignature appended: a checkpoint that
    /// opens with the log's key and carries the witness's cosignature.
    pub fn cosigned_note(&self) -> String {
        format!("{}{}\n", self.note, self.cosignature)
    }
}

/// A witness: its key, the logs it knows, and its durable state.
pub struct Witness {
    signer: CosignatureSigner,
    logs: HashMap<String, Vec<Verifier>>,
    db: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    cosignature TEXT NOT NULL
);
";

impl Witness {
    /// Opens (creating if needed) the witness state at `db`. `logs` are the
    /// logs it witnesses: each origin with the verifier keys it trusts.
    pub fn open(db: &Path, signer: CosignatureSigner, logs: Vec<(String, Verifier)>) -> Result<Witness, WitnessError> {
        if logs.is_empty() {
            return Err(WitnessError::Config("no log to witness: name at least one origin and its key".into()));
        }
        let mut map: HashMap<String, Vec<Verifier>> = HashMap::new();
        for (origin, verifier) in logs {
            map.entry(origin).or_default().push(verifier);
        }
        let path = db.display().to_string();
        let sql = |source| WitnessError::Database { path: path.clone(), source };
        let conn = Connection::open(db).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        // The answer promises the state is on disk: fsync every commit.
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Witness { signer, logs: map, db: Mutex::new(conn), path: db.to_owned() })
    }

    /// The witness's name (its key's).
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// What the witness holds for `origin`.
    pub fn held(&self, origin: &str) -> Result<Option<Held>, WitnessError> {
        let conn = self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.read(&conn, origin)
    }

    fn read(&self, conn: &Connection, origin: &str) -> Result<Option<Held>, WitnessError> {
        let path = self.path.display().to_string();
        let row = conn
            .query_row(
                "SELECT size, root, note, cosignature FROM checkpoints WHERE origin = ?1",
                params![origin],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
            )
            .optional()
            .map_err(|source| WitnessError::Database { path: path.clone(), source })?;
        let Some((size, root, note, cosignature)) = row else { return Ok(None) };
        let corrupt = |what: String| WitnessError::Corrupt { path: path.clone(), what };
        let size = u64::try_from(size).map_err(|_| corrupt(format!("log {origin:?} has a negative size")))?;
        let root = Hash::try_from(root).map_err(|_| corrupt(format!("log {origin:?} has a root not 32 bytes long")))?;
        Ok(Some(Held { size, root, note, cosignature }))
    }

    /// Handles one `add-checkpoint` request: checks it, stores the new
    /// checkpoint durably and returns the cosignature line (no newline).
    /// `now` is the time to cosign at, in seconds since the epoch.
    pub fn add_checkpoint(&self, request: &AddCheckpoint, now: u64) -> Result<String, Refusal> {
        let (text, _) = airlock_audit::cosignature::split_note(&request.checkpoint)
            .map_err(|e| Refusal::BadRequest(format!("the checkpoint is not a signed note: {e}")))?;
        let origin = text.split('\n').next().unwrap_or_default();
        let verifiers = self.logs.get(origin).ok_or_else(|| Refusal::UnknownOrigin(origin.to_owned()))?;
        let checkpoint = match Checkpoint::open(&request.checkpoint, verifiers, origin) {
            Ok(checkpoint) => checkpoint,
            Err(CheckpointError::Note(e @ (NoteError::UnknownKey { .. } | NoteError::BadSignature { .. }))) => {
                return Err(Refusal::Forbidden(format!("the checkpoint of {origin:?} is not signed by its key: {e}")));
            }
            Err(e) => return Err(Refusal::BadRequest(e.to_string())),
        };
        if request.old > checkpoint.size {
            return Err(Refusal::BadRequest(format!(
                "the old size {} is larger than the checkpoint's size {}",
                request.old, checkpoint.size
            )));
        }
        // Check and write under one lock: two requests must not both pass
        // against the same old state (the spec's rollback race).
        let mut conn = self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = self.read(&conn, origin).map_err(|e| Refusal::Internal(e.to_string()))?;
        let (held_size, held_root) = held.as_ref().map_or((0, merkle::empty_root()), |h| (h.size, h.root));
        if request.old != held_size {
            return Err(Refusal::Conflict {
                size: held_size,
                message: format!("the witness holds size {held_size} of {origin:?}, the request says {}", request.old),
            });
        }
        if request.old == checkpoint.size && held.is_some() && held_root != checkpoint.root {
            return Err(Refusal::Conflict {
                size: held_size,
                message: format!(
                    "the witness cosigned another root for size {held_size} of {origin:?}: the log forked"
                ),
            });
        }
        merkle::verify_consistency(held_size, checkpoint.size, &held_root, &checkpoint.root, &request.proof).map_err(
            |e| {
                Refusal::BadProof(format!(
                    "the checkpoint of size {} of {origin:?} does not extend the one of size {held_size} this \
                     witness cosigned: {e}",
                    checkpoint.size
                ))
            },
        )?;
        let line = self.signer.cosign(text, now).map_err(|e| Refusal::Internal(e.to_string()))?;
        let size = i64::try_from(checkpoint.size).map_err(|_| Refusal::BadRequest("the size is too large".into()))?;
        let stored = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO checkpoints (origin, size, root, note, cosignature) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (origin) DO UPDATE SET size = ?2, root = ?3, note = ?4, cosignature = ?5",
                params![origin, size, checkpoint.root.to_vec(), request.checkpoint, line],
            )?;
            tx.commit()
        })();
        stored.map_err(|e| Refusal::Internal(format!("the witness could not store the checkpoint: {e}")))?;
        tracing::info!(origin, size = checkpoint.size, "cosigned");
        Ok(line)
    }
}

/// The routes: `POST /add-checkpoint`, `GET /checkpoint/<origin>`.
pub fn router(witness: Arc<Witness>) -> axum::Router {
    axum::Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/checkpoint/{*origin}", get(latest))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(witness)
}

/// Serves `router(witness)` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    witness: Arc<Witness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness)).with_graceful_shutdown(shutdown).await
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return Refusal::BadRequest("the body is not UTF-8".into()).into_response();
    };
    let request = match AddCheckpoint::parse(&body) {
        Ok(request) => request,
        Err(e) => return Refusal::BadRequest(e.to_string()).into_response(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // SQLite's fsync blocks: off the async workers.
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&request, now)).await;
    match answer {
        Ok(Ok(line)) => (StatusCode::OK, format!("{line}\n")).into_response(),
        Ok(Err(refusal)) => {
            tracing::warn!(status = refusal.status().as_u16(), "refused: {refusal}");
            refusal.into_response()
        }
        Err(e) => Refusal::Internal(format!("the witness failed: {e}")).into_response(),
    }
}

async fn latest(State(witness): State<Arc<Witness>>, uri: Uri) -> Response {
    // Decode the raw path ourselves: an origin holds slashes, escaped or not.
    let raw = uri.path().strip_prefix("/checkpoint/").unwrap_or_default();
    let Some(origin) = percent_decode(raw) else {
        return Refusal::BadRequest("the origin in the path is not valid percent-encoded UTF-8".into()).into_response();
    };
    let held = tokio::task::spawn_blocking(move || witness.held(&origin).map(|h| (origin, h))).await;
    match held {
        Ok(Ok((_, Some(held)))) => (StatusCode::OK, held.cosigned_note()).into_response(),
        Ok(Ok((origin, None))) => {
            (StatusCode::NOT_FOUND, format!("this witness has cosigned no checkpoint of {origin:?}\n")).into_response()
        }
        Ok(Err(e)) => Refusal::Internal(e.to_string()).into_response(),
        Err(e) => Refusal::Internal(format!("the witness failed: {e}")).into_response(),
    }
}

/// `%XX` escapes to bytes, then UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes every byte but the URL-unreserved ones, so an origin is one path segment.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_escape_to_one_segment_and_back() {
        let origin = "airlock.local/audit/host name+ü";
        let escaped = percent_encode(origin);
        assert!(!escaped.contains('/'), "{escaped}");
        assert_eq!(percent_decode(&escaped).as_deref(), Some(origin));
        assert_eq!(percent_decode("a/b").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("%zz"), None);
    }
}
