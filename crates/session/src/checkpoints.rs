//! Checkpoints of the workspace before each turn, for `/rewind`: the
//! content-addressed store of `airlock_core::rewind`, kept in airlock's data
//! folder (hidden from the worker and from commands by the sandbox), one
//! store per session and workspace.

use std::path::Path;

use airlock_core::rewind::{CheckpointOptions, CheckpointStore};
use airlock_core::supervisor::Checkpoints;
use sha2::{Digest, Sha256};

/// What the person is told about what a rewind does not cover.
pub use airlock_core::rewind::GIT_NOT_REWOUND;

struct Store(CheckpointStore);

impl Checkpoints for Store {
    fn take(&mut self, label: &str) -> Result<String, String> {
        self.0.checkpoint(label).map(|report| report.info.id.to_string()).map_err(|e| e.to_string())
    }

    fn restore(&mut self, id: &str) -> Result<(u64, u64), String> {
        let id = id.parse().map_err(|_| format!("{id:?} is not a checkpoint"))?;
        let report = self.0.restore(id).map_err(|e| e.to_string())?;
        if let Some(first) = report.not_restorable.first() {
            return Err(format!(
                "{} entries could not be put back (first: {}: {})",
                report.not_restorable.len(),
                first.path,
                first.reason
            ));
        }
        Ok((report.written.len() as u64, report.removed.len() as u64))
    }

    fn changed_since(&mut self, id: &str) -> Result<Vec<String>, String> {
        let id = id.parse().map_err(|_| format!("{id:?} is not a checkpoint"))?;
        let changes = self.0.changes_since(id).map_err(|e| e.to_string())?;
        Ok(changes.added.into_iter().chain(changes.modified).chain(changes.deleted).collect())
    }
}

/// The store of session `session` in `workspace`, under `data_dir/checkpoints/`.
pub fn open(data_dir: &Path, workspace: &Path, session: &str) -> Result<Box<dyn Checkpoints>, String> {
    let key = hex::encode(&Sha256::digest(workspace.as_os_str().as_encoded_bytes())[..8]);
    let dir = data_dir.join("checkpoints").join(key).join(session);
    let store = CheckpointStore::open(&dir, workspace, CheckpointOptions::default()).map_err(|e| e.to_string())?;
    Ok(Box::new(Store(store)))
}

/// Names excluded from checkpoints by default (`target/`, `node_modules/`, …), for the UI.
pub fn excluded_by_default() -> Vec<String> {
    CheckpointOptions::default().excluded_names
}
