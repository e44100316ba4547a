//! The log for others to check, without airlock: every entry as JSON Lines
//! (with its payload unless pruned), every signed checkpoint, and the static
//! C2SP tlog-tiles layout (hash tiles and entry bundles) that standard
//! transparency-log clients read.
//!
//! ```text
//! OUT/checkpoint                 the latest signed checkpoint (what tlog clients start from)
//! OUT/checkpoints/<size>         every signed checkpoint
//! OUT/entries.jsonl              {"index","entry","payload"} per line, up to the checkpoint
//! OUT/tile/<L>/<N>[.p/<W>]       hash tiles, height 8
//! OUT/tile/entries/<N>[.p/<W>]   entry bundles: each entry as a big-endian u16 length + bytes
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::merkle::{self, Hash};
use crate::store::{Store, StoreError};

/// Hashes (or entries) per full tile: height 8.
pub const TILE_WIDTH: usize = 256;

/// Export errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The log has no checkpoint to export against.
    #[error("the log has no signed checkpoint yet\nhint: run `airlock audit checkpoint` first")]
    NoCheckpoint,
    /// The output folder is not empty.
    #[error("{0} is not empty\nhint: export into a new or empty folder")]
    NotEmpty(PathBuf),
    /// The log holds fewer entries than its checkpoint signs.
    #[error("the log holds {held} entries but its latest checkpoint signs {size}\nhint: run `airlock audit verify`")]
    Short {
        /// Entries found.
        held: u64,
        /// Entries signed.
        size: u64,
    },
    /// An entry is too long for an entry bundle.
    #[error("entry {0} is longer than 65535 bytes and cannot go in an entry bundle")]
    EntryTooLong(u64),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The tree size of the exported checkpoint (entries written).
    pub size: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Hash tiles written.
    pub tiles: u64,
    /// Entries appended after that checkpoint, not exported.
    pub unsigned_tail: u64,
}

/// The path of tile `index` at `level` (or of entry bundles when `level` is
/// `None`), with `width` when partial, per C2SP tlog-tiles: the index in
/// 3-digit groups, all but the last prefixed with `x`.
pub fn tile_path(level: Option<u8>, index: u64, width: usize) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut n = index / 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    let level = level.map_or_else(|| "entries".to_string(), |l| l.to_string());
    let partial = if width < TILE_WIDTH { format!(".p/{width}") } else { String::new() };
    format!("tile/{level}/{}{partial}", groups.join("/"))
}

/// Writes the export of everything up to the latest checkpoint into `out`
/// (created if missing; it must be empty).
pub fn export<S: Store>(store: &S, out: &Path) -> Result<Exported, ExportError> {
    let checkpoints = store.checkpoints()?;
    let Some((size, latest)) = checkpoints.last().cloned() else {
        return Err(ExportError::NoCheckpoint);
    };
    let held = store.size()?;
    if held < size {
        return Err(ExportError::Short { held, size });
    }
    if std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(ExportError::NotEmpty(out.to_path_buf()));
    }
    let mut files = Files { root: out.to_path_buf() };
    files.write("checkpoint", latest.as_bytes())?;
    for (s, note) in &checkpoints {
        files.write(&format!("checkpoints/{s}"), note.as_bytes())?;
    }

    let jsonl_path = out.join("entries.jsonl");
    let mut jsonl = std::io::BufWriter::new(files.create("entries.jsonl")?);
    let mut tiles = Tiles::default();
    let mut bundle: Vec<u8> = Vec::new();
    let mut in_bundle = 0usize;
    let mut failure: Option<ExportError> = None;
    store.scan(0, &mut |e| {
        if e.index >= size {
            return false;
        }
        let payload = e.payload.and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok());
        let line = serde_json::json!({
            "index": e.index,
            "entry": String::from_utf8_lossy(e.entry),
            "payload": payload,
        });
        let written = serde_json::to_writer(&mut jsonl, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| jsonl.write_all(b"\n"));
        if let Err(source) = written {
            failure = Some(ExportError::Write { path: jsonl_path.clone(), source });
            return false;
        }
        let Ok(len) = u16::try_from(e.entry.len()) else {
            failure = Some(ExportError::EntryTooLong(e.index));
            return false;
        };
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(e.entry);
        in_bundle += 1;
        if in_bundle == TILE_WIDTH {
            let path = tile_path(None, e.index / TILE_WIDTH as u64, TILE_WIDTH);
            if let Err(err) = files.write(&path, &bundle) {
                failure = Some(err);
                return false;
            }
            bundle.clear();
            in_bundle = 0;
        }
        // The leaf as the entry hashes now: a client checks it against the signed root.
        if let Err(err) = tiles.push(0, merkle::leaf_hash(e.entry), &mut files) {
            failure = Some(err);
            return false;
        }
        true
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    jsonl.flush().map_err(|source| ExportError::Write { path: jsonl_path.clone(), source })?;
    if in_bundle > 0 {
        files.write(&tile_path(None, size / TILE_WIDTH as u64, in_bundle), &bundle)?;
    }
    let written = tiles.finish(&mut files)?;
    Ok(Exported { size, checkpoints: checkpoints.len() as u64, tiles: written, unsigned_tail: held - size })
}

struct Files {
    root: PathBuf,
}

impl Files {
    fn create(&mut self, rel: &str) -> Result<std::fs::File, ExportError> {
        let path = self.root.join(rel);
        let err = |source| ExportError::Write { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::File::create(&path).map_err(err)
    }

    fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let mut f = self.create(rel)?;
        f.write_all(bytes).map_err(|source| ExportError::Write { path: self.root.join(rel), source })
    }
}

/// Hash tiles built while the leaves stream past: a full tile is written and
/// its root (a node 8 levels up) goes to the tile level above; what is left
/// at the end is written as partial tiles.
#[derive(Default)]
struct Tiles {
    /// Per tile level: the hashes of the tile being filled, and its index.
    levels: Vec<(Vec<Hash>, u64)>,
    written: u64,
}

impl Tiles {
    fn push(&mut self, level: usize, hash: Hash, files: &mut Files) -> Result<(), ExportError> {
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, || (Vec::with_capacity(TILE_WIDTH), 0));
        }
        let (hashes, index) = &mut self.levels[level];
        hashes.push(hash);
        if hashes.len() < TILE_WIDTH {
            return Ok(());
        }
        let path = tile_path(Some(level as u8), *index, TILE_WIDTH);
        files.write(&path, &hashes.concat())?;
        self.written += 1;
        let root = perfect_root(hashes);
        hashes.clear();
        *index += 1;
        self.push(level + 1, root, files)
    }

    fn finish(mut self, files: &mut Files) -> Result<u64, ExportError> {
        for (level, (hashes, index)) in self.levels.iter().enumerate() {
            if !hashes.is_empty() {
                files.write(&tile_path(Some(level as u8), *index, hashes.len()), &hashes.concat())?;
                self.written += 1;
            }
        }
        self.levels.clear();
        Ok(self.written)
    }
}

/// The root of a perfect subtree over `hashes` (a power of two of them).
fn perfect_root(hashes: &[Hash]) -> Hash {
    let mut layer = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer.chunks(2).map(|p| merkle::node_hash(&p[0], &p[p.len() - 1])).collect();
    }
    layer.first().copied().unwrap_or_else(merkle::empty_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_follow_the_tlog_tiles_encoding() {
        assert_eq!(tile_path(Some(0), 0, 256), "tile/0/000");
        assert_eq!(tile_path(Some(1), 1234, 256), "tile/1/x001/234");
        assert_eq!(tile_path(Some(0), 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(Some(2), 7, 17), "tile/2/007.p/17");
        assert_eq!(tile_path(None, 1000, 1), "tile/entries/x001/000.p/1");
    }

    #[test]
    fn a_perfect_root_is_the_tree_root_of_its_leaves() {
        let leaves: Vec<Hash> = (0u32..256).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = merkle::Frontier::new();
        for l in &leaves {
            frontier.push(*l);
        }
        assert_eq!(perfect_root(&leaves), frontier.root());
    }
}
