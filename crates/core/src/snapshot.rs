//! What a contained process changed in a folder, for the record: a snapshot
//! of every entry before (kind, mode, inode, size, times, and a digest of its
//! content) and a comparison after.
//!
//! Nothing is left out: files `.gitignore` names (`.env`), folders that
//! ignore themselves, `.git` and everything in it, symbolic links (by their
//! target's text) and files of any size (hashed, streamed). Git objects are
//! compared by name and size: they are named by their content.
//!
//! Reading every byte can take long on a big tree, so hashing has a time
//! budget. Past it, files are not read; a file is then taken as unchanged
//! only when its inode, size, mode, modification *and change* times are all
//! as they were. The change time (`ctime`) is set by the kernel on every
//! write, rename and metadata change and no unprivileged process can set it
//! (`utimensat` sets only the access and modification times), so a file
//! whose `ctime` is unchanged was not touched. A file that was touched and
//! could not be read is still on the record, with the exact count of such
//! files ([`Changes::not_compared`]); nothing is skipped silently.
//!
//! Changes to git's control files (configuration, hooks, `commondir`,
//! `modules/`, `worktrees/`, a `.git` file, a folder that `core.hooksPath`
//! or a `.git` file names inside the tree) are also listed apart
//! ([`Changes::git_control`]): they run code at the user's next `git`
//! command.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_audit::event::Event;
use sha2::{Digest, Sha256};

/// The rule of the record that flags a changed git control file.
pub const GIT_CONTROL_RULE: &str = "workspace.git_control";

/// One entry's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Seen {
    kind: Kind,
    mode: u32,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    /// `None` when the budget ran out before it was read.
    digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Kind {
    File,
    Symlink,
    Other,
}

impl Seen {
    /// Whether the kernel's own account says nothing touched it.
    fn untouched_since(&self, before: &Seen) -> bool {
        self.kind == before.kind
            && self.mode == before.mode
            && self.dev == before.dev
            && self.ino == before.ino
            && self.size == before.size
            && self.mtime_ns == before.mtime_ns
            && self.ctime_ns == before.ctime_ns
    }
}

/// A folder's entries at one moment (directories themselves are not listed;
/// what they hold is).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// The folder walked (to read git's pointer files).
    root: PathBuf,
    entries: BTreeMap<PathBuf, Seen>,
    /// Entries that could not be examined (unreadable folders), by path.
    unreadable: BTreeSet<PathBuf>,
}

/// What differs between two snapshots.
#[derive(Debug, Default)]
pub struct Changes {
    /// One `file_change` per created, changed or deleted entry, then one
    /// `policy_violation` ([`GIT_CONTROL_RULE`]) per git control file among
    /// them, then a note of what could not be compared.
    pub events: Vec<Event>,
    /// The git control files among them (paths relative to the root).
    pub git_control: Vec<String>,
    /// Entries that changed and whose content could not be compared (the
    /// time budget ran out, or they could not be read): recorded as changed.
    pub not_compared: usize,
}

impl Snapshot {
    /// Walks `root` now, hashing for at most `budget`.
    pub fn take(root: &Path, budget: Duration) -> Snapshot {
        Snapshot::take_after(root, &Snapshot::default(), budget)
    }

    /// Walks `root` now; an entry untouched since `previous` keeps its
    /// digest without being read again (see the module's note on `ctime`).
    pub fn take_after(root: &Path, previous: &Snapshot, budget: Duration) -> Snapshot {
        let deadline = Instant::now() + budget;
        let mut snap = Snapshot { root: root.to_path_buf(), ..Snapshot::default() };
        walk(root, Path::new(""), previous, deadline, &mut snap);
        snap
    }

    /// Saved for a later run, so that its first snapshot reads only what
    /// changed since (`None` when a path is not UTF-8).
    pub fn to_json(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    /// One saved by [`Snapshot::to_json`], for `root`; an empty one (every
    /// file read again) when it is damaged or was taken of another folder.
    /// Used only as `previous` of [`Snapshot::take_after`]: a saved digest is
    /// kept only for a file whose inode, size, mode and times (`ctime`
    /// included) are unchanged since.
    pub fn from_json(bytes: &[u8], root: &Path) -> Snapshot {
        match serde_json::from_slice::<Snapshot>(bytes) {
            Ok(snap) if snap.root == root => snap,
            _ => Snapshot::default(),
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many files it could not read within its budget.
    pub fn unread(&self) -> usize {
        self.entries.values().filter(|s| s.digest.is_none()).count()
    }

    /// Each entry's path (relative) and digest, for keeping between runs.
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.entries.iter().map(|(p, s)| (p.display().to_string(), describe(s))).collect()
    }

    /// What changed from `self` to `after`, paths prefixed by `prefix`
    /// (empty for a workspace; `~/.claude/` for an agent's state folder).
    pub fn changes(&self, after: &Snapshot, prefix: &str) -> Changes {
        let now_snapshot = after;
        let mut changed: Vec<(&Path, String, String)> = Vec::new();
        let mut not_compared = 0;
        for (path, before) in &self.entries {
            match after.entries.get(path) {
                Some(now) if now.untouched_since(before) => {}
                Some(now) => match (&before.digest, &now.digest) {
                    (Some(b), Some(a)) if b == a && before.kind == now.kind && before.mode == now.mode => {}
                    (Some(_), Some(_)) => changed.push((path, describe(before), describe(now))),
                    _ => {
                        not_compared += 1;
                        changed.push((path, describe(before), describe(now)));
                    }
                },
                None => changed.push((path, describe(before), String::new())),
            }
        }
        for (path, now) in &after.entries {
            if !self.entries.contains_key(path) {
                changed.push((path, String::new(), describe(now)));
            }
        }
        let unreadable: BTreeSet<&PathBuf> = self.unreadable.union(&after.unreadable).collect();
        not_compared += unreadable.len();
        let control_roots = control_roots(after);
        let mut out = Changes { not_compared, ..Changes::default() };
        let mut flagged = Vec::new();
        for (path, before, after) in changed {
            let shown = format!("{prefix}{}", path.display());
            // An inert file made or removed (the sandbox's own placeholders
            // over git's control files are such: empty, or a `commondir`
            // naming its own folder) holds nothing git could run.
            let inert_before = self.entries.get(path).is_none_or(|s| inert(path, s, None));
            let inert_after = after_seen(now_snapshot, path).is_none_or(|s| inert(path, s, Some(now_snapshot)));
            if !(inert_before && inert_after) && is_git_control(path, &control_roots) {
                flagged.push(Event::PolicyViolation {
                    rule: GIT_CONTROL_RULE.into(),
                    detail: format!(
                        "a git control file changed: {shown} ({} -> {}); it can run code at the next git command",
                        or_none(&before),
                        or_none(&after)
                    ),
                });
                out.git_control.push(shown.clone());
            }
            out.events.push(Event::FileChange { path: shown, before, after });
        }
        out.events.extend(flagged);
        if out.not_compared > 0 {
            let names: Vec<String> = unreadable.iter().take(20).map(|p| format!("{prefix}{}", p.display())).collect();
            out.events.push(Event::PolicyViolation {
                rule: "workspace.not_compared".into(),
                detail: format!(
                    "{} changed entries could not be compared by content (the hashing budget ran out, or they \
                     could not be read); each is recorded as changed{}",
                    out.not_compared,
                    if names.is_empty() { String::new() } else { format!("; unreadable: {}", names.join(", ")) }
                ),
            });
        }
        out
    }
}

/// Whether an entry can carry nothing git would obey: an empty file, or a
/// `commondir` that names its own folder (`.`), read from `now` when given.
fn inert(path: &Path, seen: &Seen, now: Option<&Snapshot>) -> bool {
    if seen.kind != Kind::File {
        return false;
    }
    if seen.size == 0 {
        return true;
    }
    let commondir = path.file_name().is_some_and(|n| n == "commondir");
    match now {
        Some(snap) if commondir && seen.size <= 3 => snap.read_small(path).is_some_and(|t| t.trim() == "."),
        _ => false,
    }
}

fn after_seen<'a>(after: &'a Snapshot, path: &Path) -> Option<&'a Seen> {
    after.entries.get(path)
}

fn or_none(digest: &str) -> &str {
    if digest.is_empty() { "none" } else { digest }
}

/// The digest as recorded: the content's SHA-256 (`link:` and the target's
/// for a link, `git-object:` and the size for a git object), with the mode
/// when it is not a plain one, `unread:…` past the budget.
fn describe(seen: &Seen) -> String {
    let mut out = match &seen.digest {
        Some(d) => d.clone(),
        None => format!("unread:size={},ctime_ns={}", seen.size, seen.ctime_ns),
    };
    let perm = seen.mode & 0o7777;
    if seen.kind == Kind::File && !matches!(perm, 0o644 | 0o664 | 0o600 | 0o666 | 0o640 | 0o660) {
        out.push_str(&format!(" mode={perm:o}"));
    }
    out
}

fn walk(root: &Path, rel: &Path, previous: &Snapshot, deadline: Instant, snap: &mut Snapshot) {
    let dir = root.join(rel);
    let Ok(read) = std::fs::read_dir(&dir) else {
        snap.unreadable.insert(rel.to_path_buf());
        return;
    };
    for entry in read {
        let Ok(entry) = entry else {
            snap.unreadable.insert(rel.to_path_buf());
            continue;
        };
        let path = rel.join(entry.file_name());
        // lstat: a link is itself an entry, never followed.
        let Ok(meta) = std::fs::symlink_metadata(root.join(&path)) else {
            snap.unreadable.insert(path);
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(root, &path, previous, deadline, snap);
            continue;
        }
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        let mut seen = Seen {
            kind,
            mode: meta.mode(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            digest: None,
        };
        seen.digest = match previous.entries.get(&path) {
            Some(p) if p.digest.is_some() && seen.untouched_since(p) => p.digest.clone(),
            _ => match kind {
                Kind::Symlink => std::fs::read_link(root.join(&path))
                    .ok()
                    .map(|t| format!("link:{}", hex::encode(Sha256::digest(t.as_os_str().as_bytes())))),
                Kind::Other => Some(format!("special:{:o}", seen.mode & 0o170000)),
                Kind::File if is_git_object(&path) => Some(format!("git-object:size={}", seen.size)),
                Kind::File if Instant::now() < deadline => digest(&root.join(&path), deadline),
                Kind::File => None,
            },
        };
        snap.entries.insert(path, seen);
    }
}

/// SHA-256 of a file, streamed; `None` when it cannot be read or the
/// deadline passes while reading.
fn digest(path: &Path, deadline: Instant) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if Instant::now() >= deadline {
            return None;
        }
    }
    Some(hex::encode(hasher.finalize()))
}

fn names(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn is_hex(s: &[u8], min: usize) -> bool {
    s.len() >= min && s.iter().all(|b| b.is_ascii_hexdigit())
}

/// A loose object (`objects/ab/cdef…`) or a pack (`objects/pack/pack-HEX.EXT`)
/// inside a `.git` folder: named by its content.
fn is_git_object(path: &Path) -> bool {
    let n = names(path);
    let Some(git) = n.iter().position(|c| *c == ".git") else { return false };
    let rest: Vec<&[u8]> = n[git + 1..].iter().map(|c| c.as_bytes()).collect();
    let at = rest.iter().rposition(|c| *c == b"objects");
    match at.map(|i| &rest[i + 1..]) {
        Some([dir, file]) if dir.len() == 2 && is_hex(dir, 2) && is_hex(file, 38) => true,
        Some([b"pack", file]) => {
            let Some(name) = file.strip_prefix(b"pack-") else { return false };
            let Some(dot) = name.iter().position(|b| *b == b'.') else { return false };
            is_hex(&name[..dot], 40)
                && matches!(&name[dot + 1..], b"pack" | b"idx" | b"rev" | b"keep" | b"bitmap" | b"promisor" | b"mtimes")
        }
        _ => false,
    }
}

/// Files of a repository that builds and commits write and git never runs or
/// obeys as configuration: history (objects), names (refs, packed-refs,
/// HEAD), reflogs, the index and messages.
const GIT_DATA_FILES: &[&str] = &[
    "index",
    "HEAD",
    "ORIG_HEAD",
    "FETCH_HEAD",
    "MERGE_HEAD",
    "MERGE_MSG",
    "MERGE_MODE",
    "AUTO_MERGE",
    "REBASE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "COMMIT_EDITMSG",
    "packed-refs",
    "description",
    "index.lock",
    "HEAD.lock",
];

/// Whether `path` (relative to the root) is part of git's control surface:
/// anything at or under a `.git` at any depth except the repository's data
/// (see [`GIT_DATA_FILES`], `objects/`, `refs/`, `logs/`); everything under
/// `modules/` and `worktrees/` except objects (a submodule's name may
/// contain `/refs` or `/logs`); anything under `control_roots` (a
/// `core.hooksPath` or a `.git` file's `gitdir:` inside the tree).
pub fn is_git_control(path: &Path, control_roots: &[PathBuf]) -> bool {
    if control_roots.iter().any(|r| path.starts_with(r)) {
        return true;
    }
    let n = names(path);
    let Some(git) = n.iter().position(|c| *c == ".git") else { return false };
    let rest = &n[git + 1..];
    match rest {
        // A `.git` file (a worktree's or a submodule's pointer) or the folder itself.
        [] => true,
        [first, ..] if *first == "modules" || *first == "worktrees" => !is_git_object(path),
        [first, ..] if *first == "objects" => {
            // `objects/info/alternates` and `objects/info/*` point elsewhere.
            rest.get(1).is_some_and(|c| *c == "info")
        }
        [first, _, ..] if *first == "refs" || *first == "logs" => false,
        [file] => !GIT_DATA_FILES.iter().any(|d| *file == *d),
        _ => true,
    }
}

/// Folders inside the root that git would obey as control files: each
/// `core.hooksPath` of a repository's `config`, and what a `.git` file's
/// `gitdir:` or a `commondir` names, when they resolve inside the root.
fn control_roots(after: &Snapshot) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    // Only the contents seen now can be read; `before`'s pointers are the
    // same files unless they changed, and then they are flagged themselves.
    for (path, seen) in &after.entries {
        let n = names(path);
        let Some(git) = n.iter().position(|c| *c == ".git") else { continue };
        let rest = &n[git + 1..];
        if seen.kind != Kind::File {
            continue;
        }
        let is_gitfile = rest.is_empty();
        let is_pointer = rest.last().is_some_and(|c| *c == "commondir" || *c == "gitdir");
        let is_config = rest.last().is_some_and(|c| *c == "config" || *c == "config.worktree");
        if !(is_gitfile || is_pointer || is_config) {
            continue;
        }
        let Some(text) = after.read_small(path) else { continue };
        // `core.hooksPath` is relative to the working tree; a pointer to the file's own folder.
        let work_tree: PathBuf = n[..git].iter().collect();
        let base = if is_config { work_tree.as_path() } else { path.parent().unwrap_or(Path::new("")) };
        for target in pointers(&text, is_gitfile, is_pointer, is_config) {
            if let Some(inside) = inside(&after.root, base, &target) {
                roots.push(inside);
            }
        }
    }
    roots.sort();
    roots.dedup();
    roots
}

impl Snapshot {
    /// The start of a small file under the root (never following a link).
    fn read_small(&self, path: &Path) -> Option<String> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.root.join(path))
            .ok()?;
        let mut text = String::new();
        file.take(64 * 1024).read_to_string(&mut text).ok()?;
        Some(text)
    }
}

/// The paths a pointer or a config file names.
fn pointers(text: &str, gitfile: bool, pointer: bool, config: bool) -> Vec<String> {
    let mut out = Vec::new();
    if gitfile {
        if let Some(rest) = text.trim().strip_prefix("gitdir:") {
            out.push(rest.trim().to_string());
        }
    } else if pointer {
        out.push(text.trim().to_string());
    } else if config {
        for line in text.lines() {
            let line = line.trim();
            let Some((key, value)) = line.split_once('=') else { continue };
            if key.trim().eq_ignore_ascii_case("hookspath") {
                out.push(value.trim().trim_matches('"').to_string());
            }
        }
    }
    out
}

/// `target` (relative to `base`, or absolute) as a path relative to
/// `root`, when it stays inside it (lexically).
fn inside(root: &Path, base: &Path, target: &str) -> Option<PathBuf> {
    if target.is_empty() || target.starts_with('~') {
        return None;
    }
    let joined = match Path::new(target).strip_prefix(root) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) if target.starts_with('/') => return None,
        Err(_) => base.join(target),
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    fn changed(c: &Changes) -> Vec<(String, bool, bool)> {
        let mut out: Vec<(String, bool, bool)> = c
            .events
            .iter()
            .filter_map(|e| match e {
                Event::FileChange { path, before, after } => Some((path.clone(), before.is_empty(), after.is_empty())),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn ignored_files_self_ignoring_folders_git_and_links_are_all_compared() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        write(ws, "keep.txt", "same");
        write(ws, "edit.txt", "before");
        write(ws, "gone.txt", "x");
        write(ws, ".gitignore", ".env\ntarget/\n");
        write(ws, ".env", "A=1");
        write(ws, ".git/HEAD", "ref: refs/heads/main\n");
        std::os::unix::fs::symlink("keep.txt", ws.join("link")).unwrap();
        let before = Snapshot::take(ws, LONG);
        write(ws, "edit.txt", "after!");
        std::fs::remove_file(ws.join("gone.txt")).unwrap();
        write(ws, "new.txt", "n");
        write(ws, "target/out", "o");
        write(ws, ".env", "A=2");
        write(ws, ".hidden/.gitignore", "*\n");
        write(ws, ".hidden/payload", "p");
        write(ws, ".git/hooks/pre-commit", "h");
        std::fs::remove_file(ws.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ws.join("link")).unwrap();
        let after = Snapshot::take_after(ws, &before, LONG);
        let c = before.changes(&after, "");
        let all = changed(&c);
        let paths: Vec<&str> = all.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".env",
                ".git/hooks/pre-commit",
                ".hidden/.gitignore",
                ".hidden/payload",
                "edit.txt",
                "gone.txt",
                "link",
                "new.txt",
                "target/out"
            ]
        );
        assert_eq!(c.git_control, [".git/hooks/pre-commit"]);
        assert_eq!(c.not_compared, 0);
        assert!(c.events.iter().any(|e| matches!(e, Event::PolicyViolation { rule, .. } if rule == GIT_CONTROL_RULE)));
    }

    #[test]
    fn a_big_file_restored_to_its_size_and_time_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let big = vec![b'a'; 17 * 1024 * 1024];
        std::fs::write(ws.join("big.bin"), &big).unwrap();
        let before = Snapshot::take(ws, LONG);
        let meta = std::fs::metadata(ws.join("big.bin")).unwrap();
        let mut evil = big.clone();
        evil[1000] = b'b';
        std::fs::write(ws.join("big.bin"), &evil).unwrap();
        // The old modification time back, as `touch -r` would.
        let f = std::fs::File::options().write(true).open(ws.join("big.bin")).unwrap();
        f.set_modified(meta.modified().unwrap()).unwrap();
        drop(f);
        let c = before.changes(&Snapshot::take_after(ws, &before, LONG), "");
        assert_eq!(changed(&c), [("big.bin".to_string(), false, false)]);
    }

    #[test]
    fn past_the_budget_touched_files_are_recorded_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        for i in 0..5 {
            write(ws, &format!("f{i}"), "x");
        }
        let before = Snapshot::take(ws, Duration::ZERO);
        assert_eq!(before.unread(), 5);
        write(ws, "f1", "y");
        let after = Snapshot::take_after(ws, &before, Duration::ZERO);
        let c = before.changes(&after, "");
        assert_eq!(changed(&c), [("f1".to_string(), false, false)], "untouched ones are known by ctime");
        assert_eq!(c.not_compared, 1);
        assert!(
            c.events
                .iter()
                .any(|e| matches!(e, Event::PolicyViolation { detail, .. } if detail.starts_with("1 changed")))
        );
    }

    #[test]
    fn git_control_is_everything_but_the_repositorys_data() {
        let control = |p: &str| is_git_control(Path::new(p), &[PathBuf::from(".husky")]);
        for p in [
            ".git/config",
            ".git/hooks/pre-commit",
            ".git/commondir",
            ".git/config.worktree",
            ".git/info/attributes",
            ".git/objects/info/alternates",
            ".git/modules/lib/config",
            ".git/modules/lib/refs/config",
            ".git/modules/lib/hooks/post-checkout",
            ".git/worktrees/w/commondir",
            "sub/.git",
            "sub/.git/config",
            "a/b/.git/hooks/x",
            ".husky/pre-commit",
            ".git/rebase-merge/git-rebase-todo",
        ] {
            assert!(control(p), "{p}");
        }
        for p in [
            ".git/HEAD",
            ".git/index",
            ".git/packed-refs",
            ".git/refs/heads/main",
            ".git/logs/HEAD",
            ".git/objects/ab/cdef0123456789abcdef0123456789abcdef01",
            ".git/objects/pack/pack-0123456789abcdef0123456789abcdef01234567.pack",
            ".git/modules/lib/objects/ab/cdef0123456789abcdef0123456789abcdef01",
            "src/main.rs",
            ".gitignore",
            "git/config",
        ] {
            assert!(!control(p), "{p}");
        }
    }

    #[test]
    fn a_saved_snapshot_spares_reading_and_still_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        write(ws, "a", "1");
        write(ws, "b", "2");
        let saved = Snapshot::take(ws, LONG).to_json().unwrap();
        write(ws, "b", "3");
        // No time to read anything: only the changed file is unread.
        let now = Snapshot::take_after(ws, &Snapshot::from_json(&saved, ws), Duration::ZERO);
        assert_eq!(now.unread(), 1);
        assert!(Snapshot::from_json(&saved, Path::new("/elsewhere")).is_empty());
        assert!(Snapshot::from_json(b"garbage", ws).is_empty());
    }

    #[test]
    fn an_empty_placeholder_is_recorded_but_not_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let before = Snapshot::take(ws, LONG);
        write(ws, ".git/config", "");
        write(ws, ".git/hooks/pre-commit", "x");
        let c = before.changes(&Snapshot::take_after(ws, &before, LONG), "");
        assert_eq!(changed(&c).len(), 2);
        assert_eq!(c.git_control, [".git/hooks/pre-commit"]);
        let before = Snapshot::take(ws, LONG);
        write(ws, ".git/commondir", ".\n");
        write(ws, "sub/.git/commondir", "../..\n");
        let c = before.changes(&Snapshot::take_after(ws, &before, LONG), "");
        assert_eq!(c.git_control, ["sub/.git/commondir"]);
        // Emptying a real one is flagged.
        let before = Snapshot::take(ws, LONG);
        write(ws, ".git/hooks/pre-commit", "");
        let c = before.changes(&Snapshot::take_after(ws, &before, LONG), "");
        assert_eq!(c.git_control, [".git/hooks/pre-commit"]);
    }

    #[test]
    fn hooks_paths_and_gitdir_pointers_inside_the_tree_are_control() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        write(ws, ".git/config", "[core]\n\thooksPath = .husky/_\n");
        write(ws, "wt/.git", "gitdir: ../fake\n");
        let before = Snapshot::take(ws, LONG);
        write(ws, ".husky/_/pre-commit", "evil");
        write(ws, "fake/config", "[core]\nfsmonitor = evil\n");
        write(ws, ".husky/readme", "fine");
        let c = before.changes(&Snapshot::take_after(ws, &before, LONG), "");
        assert_eq!(c.git_control, [".husky/_/pre-commit", "fake/config"]);
    }
}

/// The cost on a big tree: `AIRLOCK_SNAPSHOT_TREE=/some/tree cargo test -p
/// airlock-core --release --lib snapshot_cost -- --ignored --nocapture`.
#[cfg(test)]
mod cost {
    use super::*;

    #[test]
    #[ignore = "measures a tree named by AIRLOCK_SNAPSHOT_TREE"]
    #[allow(clippy::print_stderr)]
    fn snapshot_cost() {
        let Some(tree) = std::env::var_os("AIRLOCK_SNAPSHOT_TREE") else { return };
        let tree = PathBuf::from(tree);
        let started = Instant::now();
        let first = Snapshot::take(&tree, Duration::from_secs(600));
        let full = started.elapsed();
        let bytes: u64 = first.entries.values().filter(|s| s.kind == Kind::File).map(|s| s.size).sum();
        let started = Instant::now();
        let again = Snapshot::take_after(&tree, &first, Duration::from_secs(600));
        let stat_only = started.elapsed();
        let started = Instant::now();
        let changes = first.changes(&again, "");
        let compare = started.elapsed();
        eprintln!(
            "{} entries, {} MB: first snapshot (every byte hashed) {:?}, unread {}; second (untouched ones by \
             metadata) {:?}; comparison {:?}, {} changes",
            first.len(),
            bytes / 1_000_000,
            full,
            first.unread(),
            stat_only,
            compare,
            changes.events.len()
        );
    }
}
