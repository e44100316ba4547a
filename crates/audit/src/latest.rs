//! The latest signed checkpoint, kept outside the database, as a
//! transparency log's client keeps the last tree head it saw: a database
//! file replaced by an older copy (a backup restored, a file swapped in by
//! anything that can write that one path) is then caught, because its tree
//! is not an extension of the checkpoint kept here.
//!
//! The file lives beside the keys, 0600 in the log's 0700 folder. It is
//! written by a new file and a rename (atomic, and the rename replaces a
//! link rather than writing through it), and read without following a link.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;

/// Reading or writing the kept checkpoint failed.
#[derive(Debug, thiserror::Error)]
#[error("the checkpoint kept outside the database, {path}: {what}")]
pub struct LatestError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub what: String,
}

/// Where the latest checkpoint is kept.
#[derive(Debug, Clone)]
pub struct LatestCheckpoint {
    path: PathBuf,
}

impl LatestCheckpoint {
    /// The file at `path` (conventionally `audit-latest-checkpoint` beside the keys).
    pub fn at(path: impl Into<PathBuf>) -> LatestCheckpoint {
        LatestCheckpoint { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, what: impl Into<String>) -> LatestError {
        LatestError { path: self.path.display().to_string(), what: what.into() }
    }

    /// The signed note kept, or `None` when there is none yet. Refuses a
    /// link and a file others can write.
    pub fn read(&self) -> Result<Option<String>, LatestError> {
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(self.error("it is a symbolic link; it is never read through one"));
            }
            Err(e) => return Err(self.error(e.to_string())),
        };
        let meta = file.metadata().map_err(|e| self.error(e.to_string()))?;
        if meta.mode() & 0o022 != 0 {
            return Err(self.error(format!("others may write it (mode {:o})", meta.mode() & 0o7777)));
        }
        let mut note = String::new();
        // A checkpoint note is a few hundred bytes; a huge file is not one.
        Read::by_ref(&mut file).take(64 * 1024).read_to_string(&mut note).map_err(|e| self.error(e.to_string()))?;
        Ok(Some(note))
    }

    /// The size the kept note says it signs, without checking the signature
    /// (the writer uses it only to never move the file backwards).
    fn kept_size(&self) -> Result<Option<u64>, LatestError> {
        let Some(note) = self.read()? else { return Ok(None) };
        let text = note.split_once("\n\n").map_or(note.as_str(), |(t, _)| t);
        Ok(Checkpoint::parse(&format!("{text}\n")).ok().map(|c| c.size))
    }

    /// Replaces the kept note with `note` (a checkpoint of `size`), unless
    /// the kept one signs a larger tree: the file never moves backwards.
    pub fn write(&self, note: &str, size: u64) -> Result<(), LatestError> {
        if self.kept_size()?.is_some_and(|kept| kept > size) {
            return Ok(());
        }
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| self.error(format!("no randomness for a temporary name: {e}")))?;
        let tmp = dir.join(format!(".{name}.{}", hex::encode(nonce)));
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            f.write_all(note.as_bytes())?;
            f.sync_all()?;
            // rename(2) replaces the name: a link planted there is replaced, not followed.
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.error(e.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_checkpoint_never_moves_backwards_and_replaces_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let kept = LatestCheckpoint::at(dir.path().join("latest"));
        assert_eq!(kept.read().unwrap(), None);
        let note = |size: u64| format!("o\n{size}\n{}\n\n— o sig\n", "A".repeat(43) + "=");
        kept.write(&note(5), 5).unwrap();
        kept.write(&note(3), 3).unwrap();
        assert_eq!(kept.read().unwrap().unwrap(), note(5));
        kept.write(&note(7), 7).unwrap();
        assert_eq!(kept.read().unwrap().unwrap(), note(7));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(kept.path()).unwrap().permissions().mode() & 0o777, 0o600);

        // A link planted in its place is refused on reading and replaced on writing.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::remove_file(kept.path()).unwrap();
        std::os::unix::fs::symlink(&victim, kept.path()).unwrap();
        assert!(kept.read().unwrap_err().to_string().contains("symbolic link"));
        kept.write(&note(8), 8).unwrap_err();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
