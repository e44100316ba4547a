//! The client a log uses to ask a witness for its cosignature
//! (`add-checkpoint`) and to read the witness's latest cosigned checkpoint.

use std::time::Duration;

use airlock_audit::cosignature::{CosignatureVerifier, verify_lines};
use airlock_audit::merkle::Hash;

use crate::request::{AddCheckpoint, parse_size};
use crate::server::{SIZE_CONTENT_TYPE, percent_encode};

/// An answer bodies larger than this is not a witness's.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a witness gave no cosignature.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// 409 with the size the witness holds: submit again from that size.
    #[error("witness {witness}: conflict, it holds size {size}")]
    Conflict {
        /// The witness.
        witness: String,
        /// The size of the latest checkpoint it cosigned.
        size: u64,
    },
    /// Any other refusal (400, 403, 404, 422, ...).
    #[error("witness {witness} refused the checkpoint: HTTP {status}: {message}")]
    Refused {
        /// The witness.
        witness: String,
        /// The HTTP status.
        status: u16,
        /// What it said (its body, cut and on one line).
        message: String,
    },
    /// The witness could not be reached or did not answer in time.
    #[error("witness {witness} at {url} cannot be reached: {reason}")]
    Unreachable {
        /// The witness.
        witness: String,
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// It answered 200 with no cosignature by its key that verifies.
    #[error("witness {witness} answered without a valid cosignature by its key: {reason}")]
    BadAnswer {
        /// The witness.
        witness: String,
        /// What was wrong.
        reason: String,
    },
}

/// One witness, as a log's configuration names it.
#[derive(Clone, Debug)]
pub struct WitnessClient {
    name: String,
    url: String,
    verifier: CosignatureVerifier,
    http: reqwest::Client,
}

impl WitnessClient {
    /// A client for the witness at `url` (its submission prefix, e.g.
    /// `http://witness.internal:7380`), whose cosignatures `verifier` checks.
    /// `name` is what the log calls it (kept beside its cosignatures).
    pub fn new(name: &str, url: &str, verifier: CosignatureVerifier) -> Result<WitnessClient, SubmitError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SubmitError::Unreachable {
                witness: name.to_owned(),
                url: url.to_owned(),
                reason: format!("cannot make an HTTP client: {e}"),
            })?;
        Ok(WitnessClient { name: name.to_owned(), url: url.trim_end_matches('/').to_owned(), verifier, http })
    }

    /// The name the log calls it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL (submission prefix).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key its cosignatures are checked with.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// Submits `checkpoint` (a signed note) with the consistency proof from
    /// `old`, and returns the witness's cosignature line (no newline), checked
    /// against its key.
    pub async fn submit(&self, old: u64, proof: &[Hash], checkpoint: &str) -> Result<String, SubmitError> {
        let body = AddCheckpoint { old, proof: proof.to_vec(), checkpoint: checkpoint.to_owned() }.to_body();
        let url = format!("{}/add-checkpoint", self.url);
        let unreachable =
            |reason: String| SubmitError::Unreachable { witness: self.name.clone(), url: url.clone(), reason };
        let response = self.http.post(&url).body(body).send().await.map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.map_err(|e| unreachable(error_chain(&e)))?;
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER_BYTES)]).into_owned();
        if status == reqwest::StatusCode::CONFLICT && content_type.starts_with(SIZE_CONTENT_TYPE) {
            let size = text.strip_suffix('\n').and_then(parse_size).ok_or_else(|| SubmitError::BadAnswer {
                witness: self.name.clone(),
                reason: format!("a 409 whose body {:?} is not a size", one_line(&text)),
            })?;
            return Err(SubmitError::Conflict { witness: self.name.clone(), size });
        }
        if !status.is_success() {
            return Err(SubmitError::Refused {
                witness: self.name.clone(),
                status: status.as_u16(),
                message: one_line(&text),
            });
        }
        let bad = |reason: String| SubmitError::BadAnswer { witness: self.name.clone(), reason };
        let (note_text, _) = airlock_audit::cosignature::split_note(checkpoint)
            .map_err(|e| bad(format!("the checkpoint submitted is not a note: {e}")))?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        let verified =
            verify_lines(note_text, &lines, std::slice::from_ref(&self.verifier)).map_err(|e| bad(e.to_string()))?;
        if verified.is_empty() {
            return Err(bad(format!("no line is a cosignature by {}", self.verifier.to_key_string())));
        }
        // The first line that verified: find it again to hand it on verbatim.
        for line in &lines {
            if verify_lines(note_text, &[line], std::slice::from_ref(&self.verifier)).is_ok_and(|v| !v.is_empty()) {
                return Ok((*line).to_owned());
            }
        }
        Err(bad("no cosignature line verified".into()))
    }

    /// The latest checkpoint the witness cosigned for `origin` (the log's
    /// note with its cosignature appended), or `None` when it holds none.
    pub async fn latest(&self, origin: &str) -> Result<Option<String>, SubmitError> {
        let url = format!("{}/checkpoint/{}", self.url, percent_encode(origin));
        let unreachable =
            |reason: String| SubmitError::Unreachable { witness: self.name.clone(), url: url.clone(), reason };
        let response = self.http.get(&url).send().await.map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| unreachable(error_chain(&e)))?;
        match status {
            reqwest::StatusCode::OK => Ok(Some(text)),
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            other => Err(SubmitError::Refused {
                witness: self.name.clone(),
                status: other.as_u16(),
                message: one_line(&text),
            }),
        }
    }
}

/// An error and its causes on one line (reqwest hides the useful part in sources).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A witness's words, on one line and cut at 300 characters, for a log line or a record.
fn one_line(text: &str) -> String {
    let flat: String = text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    flat.chars().take(300).collect()
}
