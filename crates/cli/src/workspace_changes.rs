//! What a contained agent changed in the workspace, for the record: a
//! snapshot of every file before (size, modification time, SHA-256) and a
//! comparison after. Files that `.gitignore` leaves out (build output,
//! `node_modules`) and `.git` itself are not looked at.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use airlock_audit::event::Event;
use sha2::{Digest, Sha256};

/// Files larger than this are compared by size and time only.
const HASHED_UP_TO: u64 = 16 * 1024 * 1024;
/// A workspace with more files than this is compared up to this many.
const MAX_FILES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    size: u64,
    modified_ns: i128,
    sha256: String,
}

/// The workspace's files at one moment.
pub(crate) struct Snapshot(BTreeMap<PathBuf, Seen>);

impl Snapshot {
    /// Walks `workspace` now.
    pub(crate) fn take(workspace: &Path) -> Snapshot {
        Snapshot(walk(workspace, None))
    }

    /// `file_change` events for what differs now from the snapshot (paths
    /// relative to the workspace; an empty digest for a file created or deleted).
    pub(crate) fn changes(&self, workspace: &Path) -> Vec<Event> {
        let now = walk(workspace, Some(&self.0));
        let mut events = Vec::new();
        for (path, before) in &self.0 {
            match now.get(path) {
                Some(after) if after.sha256 == before.sha256 && after.size == before.size => {}
                Some(after) => events.push(change(path, &before.sha256, &after.sha256)),
                None => events.push(change(path, &before.sha256, "")),
            }
        }
        for (path, after) in &now {
            if !self.0.contains_key(path) {
                events.push(change(path, "", &after.sha256));
            }
        }
        events
    }
}

fn change(path: &Path, before: &str, after: &str) -> Event {
    Event::FileChange { path: path.display().to_string(), before: before.into(), after: after.into() }
}

/// Every file beneath `root`; a file whose size and time match `previous`
/// keeps its digest without being read again.
fn walk(root: &Path, previous: Option<&BTreeMap<PathBuf, Seen>>) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .parents(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walker.flatten() {
        if out.len() >= MAX_FILES {
            break;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        use std::os::unix::fs::MetadataExt;
        let modified_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let size = meta.len();
        let known = previous.and_then(|p| p.get(rel)).filter(|s| s.size == size && s.modified_ns == modified_ns);
        let sha256 = match known {
            Some(s) => s.sha256.clone(),
            None if size <= HASHED_UP_TO => digest(entry.path()).unwrap_or_default(),
            None => format!("size:{size},mtime_ns:{modified_ns}"),
        };
        out.insert(rel.to_path_buf(), Seen { size, modified_ns, sha256 });
    }
    out
}

fn digest(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_changed_and_deleted_files_are_found_and_ignored_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("keep.txt"), "same").unwrap();
        std::fs::write(ws.join("edit.txt"), "before").unwrap();
        std::fs::write(ws.join("gone.txt"), "x").unwrap();
        std::fs::write(ws.join(".gitignore"), "target/\n").unwrap();
        std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        let snap = Snapshot::take(ws);
        std::fs::write(ws.join("edit.txt"), "after!").unwrap();
        std::fs::remove_file(ws.join("gone.txt")).unwrap();
        std::fs::write(ws.join("new.txt"), "n").unwrap();
        std::fs::create_dir_all(ws.join("target")).unwrap();
        std::fs::write(ws.join("target/out"), "o").unwrap();
        std::fs::write(ws.join(".git/hooks/pre-commit"), "h").unwrap();
        let mut changed: Vec<(String, bool, bool)> = snap
            .changes(ws)
            .into_iter()
            .map(|e| match e {
                Event::FileChange { path, before, after } => (path, before.is_empty(), after.is_empty()),
                other => panic!("{other:?}"),
            })
            .collect();
        changed.sort();
        assert_eq!(
            changed,
            [("edit.txt".into(), false, false), ("gone.txt".into(), false, true), ("new.txt".into(), true, false)]
        );
    }
}
