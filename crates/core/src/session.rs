//! Session transcripts: one JSON Lines file per session, `ID.jsonl`, kept by
//! the supervisor outside the workspace. The first line says what the
//! session is; then each message of the conversation as it happened, and
//! each run's end. A session that was killed keeps every line written
//! before, and `--resume ID` continues from them.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use airlock_model::Message;
use serde::{Deserialize, Serialize};

use crate::Progress;

/// The first line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The session id (also the audit log's session).
    pub session: String,
    /// The workspace it ran in.
    pub workspace: String,
    /// The model.
    pub model: String,
    /// When it began, in Unix milliseconds.
    pub started_ms: i64,
}

/// One later line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "snake_case")]
enum Line {
    Message {
        message: Message,
    },
    Done {
        progress: Progress,
    },
    /// The conversation from here on is this (a rewind, `/clear`, `/compact`).
    History {
        messages: Vec<Message>,
    },
}

/// What went wrong with a transcript.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The id cannot name a file.
    #[error("{0:?} is not a session id (letters, digits, `-` and `_` only)")]
    BadId(String),
    /// It does not exist.
    #[error("there is no session {id} in {dir}")]
    Missing {
        /// The id.
        id: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is damaged; the file is left as it is.
    #[error("{path}:{line}: {reason} (the file is left untouched)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A transcript open for appending.
pub struct Transcript {
    path: PathBuf,
    file: File,
}

/// A transcript read back.
#[derive(Debug)]
pub struct Loaded {
    /// Its header.
    pub header: Header,
    /// The conversation.
    pub messages: Vec<Message>,
}

fn check_id(id: &str) -> Result<(), SessionError> {
    let ok =
        !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(SessionError::BadId(id.to_string())) }
}

fn path_of(dir: &Path, id: &str) -> Result<PathBuf, SessionError> {
    check_id(id)?;
    Ok(dir.join(format!("{id}.jsonl")))
}

impl Transcript {
    /// Starts a new transcript in `dir` (created, private).
    pub fn create(dir: &Path, header: &Header) -> Result<Transcript, SessionError> {
        let path = path_of(dir, &header.session)?;
        let io = |source| SessionError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(|source| SessionError::Io { path: dir.to_path_buf(), source })?;
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new().create_new(true).append(true).mode(0o600).open(&path).map_err(io)?;
        let mut t = Transcript { path, file };
        t.write_line(&serde_json::to_value(header).unwrap_or_default())?;
        Ok(t)
    }

    /// Reopens session `id` in `dir` to continue it, with what it held.
    pub fn resume(dir: &Path, id: &str) -> Result<(Transcript, Loaded), SessionError> {
        let loaded = load(dir, id)?;
        let path = path_of(dir, id)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| SessionError::Io { path: path.clone(), source })?;
        Ok((Transcript { path, file }, loaded))
    }

    /// Keeps what a transcript holds of `progress` (messages and run ends).
    pub fn note(&mut self, progress: &Progress) -> Result<(), SessionError> {
        let line = match progress {
            Progress::Message { message } => Line::Message { message: message.clone() },
            Progress::Done { .. } => Line::Done { progress: progress.clone() },
            _ => return Ok(()),
        };
        self.write_line(&serde_json::to_value(&line).unwrap_or_default())
    }

    /// The conversation is replaced by `messages` (a rewind, `/clear`,
    /// `/compact`): what came before stays in the file, and loading starts
    /// again from here.
    pub fn replace(&mut self, messages: &[Message]) -> Result<(), SessionError> {
        let line = Line::History { messages: messages.to_vec() };
        self.write_line(&serde_json::to_value(&line).unwrap_or_default())
    }

    fn write_line(&mut self, value: &serde_json::Value) -> Result<(), SessionError> {
        let mut bytes = value.to_string().into_bytes();
        bytes.push(b'\n');
        self.file.write_all(&bytes).map_err(|source| SessionError::Io { path: self.path.clone(), source })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A transcript found in the sessions folder.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its header.
    pub header: Header,
    /// The first thing the person asked (the first user message), cut short.
    pub first_prompt: String,
    /// When the file was last written, in Unix milliseconds.
    pub modified_ms: i64,
}

/// The sessions in `dir` that ran in `workspace`, the most recent first.
/// Damaged transcripts are passed over (`load` names what is wrong).
pub fn list(dir: &Path, workspace: &Path) -> Result<Vec<Found>, SessionError> {
    let here = workspace.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(SessionError::Io { path: dir.to_path_buf(), source }),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else { continue };
        let Ok(loaded) = load(dir, id) else { continue };
        if loaded.header.workspace != here {
            continue;
        }
        let modified_ms = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let first_prompt = loaded
            .messages
            .iter()
            .find_map(|m| match m {
                Message::User(text) => Some(crate::clip(text.lines().next().unwrap_or_default(), 80)),
                _ => None,
            })
            .unwrap_or_default();
        found.push(Found { header: loaded.header, first_prompt, modified_ms });
    }
    found.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms).then_with(|| b.header.session.cmp(&a.header.session)));
    Ok(found)
}

/// Reads session `id` from `dir`.
pub fn load(dir: &Path, id: &str) -> Result<Loaded, SessionError> {
    let path = path_of(dir, id)?;
    let file = File::open(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SessionError::Missing { id: id.to_string(), dir: dir.to_path_buf() },
        _ => SessionError::Io { path: path.clone(), source },
    })?;
    let corrupt = |line: usize, reason: String| SessionError::Corrupt { path: path.clone(), line, reason };
    let mut header = None;
    let mut messages = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| SessionError::Io { path: path.clone(), source })?;
        if i == 0 {
            header = Some(serde_json::from_str::<Header>(&line).map_err(|e| corrupt(1, format!("not a header: {e}")))?);
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Message { message }) => messages.push(message),
            Ok(Line::Done { .. }) => {}
            Ok(Line::History { messages: replaced }) => messages = replaced,
            Err(e) => return Err(corrupt(i + 1, e.to_string())),
        }
    }
    let header = header.ok_or_else(|| corrupt(1, "the file is empty".into()))?;
    if header.session != id {
        return Err(corrupt(1, format!("the header names session {:?}", header.session)));
    }
    Ok(Loaded { header, messages })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: &str) -> Header {
        Header { session: id.into(), workspace: "/w".into(), model: "m".into(), started_ms: 1 }
    }

    #[test]
    fn a_transcript_reads_back_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Transcript::create(dir.path(), &header("s1")).unwrap();
        t.note(&Progress::Message { message: Message::User("fix it".into()) }).unwrap();
        t.note(&Progress::TurnStart { turn: 1 }).unwrap();
        t.note(&Progress::Message { message: Message::System("sys".into()) }).unwrap();
        drop(t);
        let (mut t, loaded) = Transcript::resume(dir.path(), "s1").unwrap();
        assert_eq!(loaded.messages, [Message::User("fix it".into()), Message::System("sys".into())]);
        t.note(&Progress::Message { message: Message::User("more".into()) }).unwrap();
        assert_eq!(load(dir.path(), "s1").unwrap().messages.len(), 3);
        assert!(Transcript::create(dir.path(), &header("s1")).is_err(), "an existing session is not overwritten");
        // A rewind keeps what came before in the file and loads from there.
        t.replace(&[Message::User("fix it".into())]).unwrap();
        t.note(&Progress::Message { message: Message::User("again".into()) }).unwrap();
        assert_eq!(
            load(dir.path(), "s1").unwrap().messages,
            [Message::User("fix it".into()), Message::User("again".into())]
        );
        assert!(std::fs::read_to_string(dir.path().join("s1.jsonl")).unwrap().contains("\"more\""));
        let found = list(dir.path(), Path::new("/w")).unwrap();
        assert_eq!((found.len(), found[0].first_prompt.as_str()), (1, "fix it"));
        assert!(list(dir.path(), Path::new("/elsewhere")).unwrap().is_empty());
        assert!(list(&dir.path().join("none"), Path::new("/w")).unwrap().is_empty());
    }

    #[test]
    fn bad_ids_and_damaged_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path(), "../etc/passwd"), Err(SessionError::BadId(_))));
        assert!(matches!(load(dir.path(), "nope"), Err(SessionError::Missing { .. })));
        let mut t = Transcript::create(dir.path(), &header("s2")).unwrap();
        t.note(&Progress::Message { message: Message::User("a".into()) }).unwrap();
        drop(t);
        let path = dir.path().join("s2.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"line\":\"message\",\"message\":\n");
        std::fs::write(&path, &text).unwrap();
        let err = load(dir.path(), "s2").unwrap_err().to_string();
        assert!(err.contains("s2.jsonl:3:"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the damaged file is kept");
    }
}
