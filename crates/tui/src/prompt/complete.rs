//! Completion for `@path` mentions and `/` commands.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Most candidates a completion offers.
pub const MAX_CANDIDATES: usize = 50;

/// Most paths the workspace index holds: past this (a home folder, say) the
/// tree is too large for a list to help, and memory stays bounded (a few
/// MiB).
pub const MAX_INDEXED: usize = 100_000;

/// Completes the partial path after an `@` (without the `@`) to workspace
/// paths, best first; a directory ends with `/`. Called on a keystroke, so
/// it must answer quickly.
pub trait PathCompleter: Send {
    /// Candidates for `partial`.
    fn complete(&self, partial: &str) -> Vec<String>;
}

impl<F> PathCompleter for F
where
    F: Fn(&str) -> Vec<String> + Send,
{
    fn complete(&self, partial: &str) -> Vec<String> {
        self(partial)
    }
}

/// A slash command offered by completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    /// The name without the `/`.
    pub name: String,
    /// One line of help.
    pub help: String,
}

impl SlashCommand {
    /// A command named `name` (without `/`).
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> SlashCommand {
        SlashCommand { name: name.into(), help: help.into() }
    }
}

/// The interactive session's commands.
pub fn default_commands() -> Vec<SlashCommand> {
    [
        ("help", "what the keys and commands do"),
        ("model", "the model in use and where it runs; switch model"),
        ("mode", "set the permission mode: ask, edits, plan, auto"),
        ("permissions", "the rules in force and where each comes from"),
        ("rewind", "undo turns: restore files and the conversation"),
        ("diff", "everything changed in this session"),
        ("audit", "this session's audit records, and whether the log verifies"),
        ("report", "write the evidence report"),
        ("compact", "summarise the conversation to free context"),
        ("clear", "start a new conversation"),
        ("resume", "resume an earlier session"),
        ("mcp", "the MCP servers' tools, and servers that did not start"),
        ("exit", "leave airlock"),
    ]
    .into_iter()
    .map(|(name, help)| SlashCommand::new(name, help))
    .collect()
}

/// The commands whose names start with `partial` (ignoring case), in the
/// order given.
pub(crate) fn match_commands<'a>(commands: &'a [SlashCommand], partial: &str) -> Vec<&'a SlashCommand> {
    let partial = partial.to_lowercase();
    commands.iter().filter(|c| c.name.to_lowercase().starts_with(&partial)).collect()
}

/// The workspace's files and directories, listed once in the background
/// (honouring `.gitignore`, `.ignore` and hidden files as `rg` does) and
/// matched in memory on each keystroke.
///
/// Listing a large tree takes a while; until it is done, completion offers
/// the previous listing (nothing at first), so a keystroke never waits for
/// the disk. [`refresh`](Self::refresh) lists again after a turn.
#[derive(Debug, Clone)]
pub struct WorkspaceFiles {
    root: PathBuf,
    index: Arc<(Mutex<Index>, Condvar)>,
}

#[derive(Debug, Default)]
struct Index {
    /// Relative paths with `/` separators, directories ending with `/`,
    /// sorted.
    paths: Vec<IndexedPath>,
    done: bool,
    /// Counts listings started: only the newest may publish its result.
    generation: u64,
    /// Recent queries (lowercase), newest last, each with the indices of
    /// every path containing it: a query containing one of them can only
    /// match among those, so typing on narrows a small set, and Backspace
    /// finds the shorter query's set again.
    recent: Vec<(String, Vec<u32>)>,
}

/// How many recent queries keep their matches.
const RECENT_QUERIES: usize = 8;

/// A path and, only where it differs, its lowercase form (most paths are
/// lowercase already: storing them once halves the index).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct IndexedPath {
    path: Box<str>,
    lower: Option<Box<str>>,
}

impl IndexedPath {
    fn new(path: String) -> IndexedPath {
        let lower = path.to_lowercase();
        let lower = (lower != path).then(|| lower.into_boxed_str());
        IndexedPath { path: path.into_boxed_str(), lower }
    }

    fn lower(&self) -> &str {
        self.lower.as_deref().unwrap_or(&self.path)
    }
}

impl WorkspaceFiles {
    /// Starts listing `root` in the background.
    pub fn new(root: impl Into<PathBuf>) -> WorkspaceFiles {
        let files = WorkspaceFiles { root: root.into(), index: Arc::default() };
        files.refresh();
        files
    }

    /// Lists the workspace again (after a turn changed files).
    pub fn refresh(&self) {
        let root = self.root.clone();
        let index = Arc::clone(&self.index);
        let generation = {
            let mut guard = self.index.0.lock().unwrap_or_else(PoisonError::into_inner);
            guard.done = false;
            guard.generation += 1;
            guard.generation
        };
        let spawned = std::thread::Builder::new()
            .name("airlock-workspace-files".into())
            .spawn(move || build_index(&root, &index, generation));
        if spawned.is_err() {
            // No thread to be had: list now rather than offer nothing.
            build_index(&self.root, &self.index, generation);
        }
    }

    /// Waits until the listing is complete (for tests and tools that want
    /// the whole list rather than a quick answer).
    pub fn wait_until_listed(&self) {
        let (lock, ready) = &*self.index;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !guard.done {
            guard = ready.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn build_index(root: &Path, index: &(Mutex<Index>, Condvar), generation: u64) {
    let mut paths = Vec::new();
    let walker =
        ignore::WalkBuilder::new(root).hidden(true).git_ignore(true).require_git(false).follow_links(false).build();
    for entry in walker.flatten() {
        if paths.len() >= MAX_INDEXED {
            break;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else { continue };
        if relative.as_os_str().is_empty() {
            continue;
        }
        // A name that is not UTF-8 cannot be typed in a prompt; skip it.
        let Some(relative) = relative.to_str() else { continue };
        let mut path = relative.replace(std::path::MAIN_SEPARATOR, "/");
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            path.push('/');
        }
        paths.push(IndexedPath::new(path));
    }
    paths.sort();
    let (lock, ready) = index;
    let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
    // A listing started later is newer than this one: let it publish.
    if guard.generation == generation {
        guard.paths = paths;
        guard.recent.clear();
        guard.done = true;
        ready.notify_all();
    }
}

impl PathCompleter for WorkspaceFiles {
    fn complete(&self, partial: &str) -> Vec<String> {
        let mut guard = self.index.0.lock().unwrap_or_else(PoisonError::into_inner);
        let index = &mut *guard;
        let query = partial.to_lowercase();
        let paths = &index.paths;
        let contains = |&i: &u32| paths.get(i as usize).is_some_and(|p| p.lower().contains(&query));
        // Indices fit in u32: the index holds at most MAX_INDEXED paths.
        // The narrowest recent set that must hold every match.
        let within = index
            .recent
            .iter()
            .filter(|(recent, _)| query.contains(recent.as_str()))
            .min_by_key(|(_, within)| within.len());
        let containing: Vec<u32> = match within {
            Some((recent, within)) if *recent == query => within.clone(),
            Some((_, within)) => within.iter().copied().filter(contains).collect(),
            None => (0..paths.len() as u32).filter(contains).collect(),
        };
        let ranked = rank_paths(
            containing.iter().filter_map(|&i| paths.get(i as usize)).map(|p| (&*p.path, p.lower())),
            partial,
        );
        // A set of every path saves nothing; the others are kept, newest last.
        if containing.len() < paths.len() {
            index.recent.retain(|(recent, _)| *recent != query);
            if index.recent.len() >= RECENT_QUERIES {
                index.recent.remove(0);
            }
            index.recent.push((query, containing));
        }
        ranked
    }
}

/// The best [`MAX_CANDIDATES`] of `paths` (each with its lowercase form) for
/// `partial`: paths starting with it, then paths with a component starting
/// with it, then paths containing it; shallower first within each, then by
/// name. An empty `partial` offers the top level.
pub(crate) fn rank_paths<'a>(paths: impl Iterator<Item = (&'a str, &'a str)>, partial: &str) -> Vec<String> {
    let query = partial.to_lowercase();
    let mut ranked: Vec<(u8, usize, &str)> = Vec::new();
    for (path, lower) in paths {
        let rank = if query.is_empty() {
            let top_level = !path.trim_end_matches('/').contains('/');
            if top_level { 0 } else { continue }
        } else {
            match lower.find(&query) {
                None => continue,
                Some(0) => 0,
                Some(_) if lower.match_indices(&query).any(|(i, _)| lower[..i].ends_with('/')) => 1,
                Some(_) => 2,
            }
        };
        let depth = path.trim_end_matches('/').matches('/').count();
        ranked.push((rank, depth, path));
    }
    // Only the best few are shown: select them in linear time rather than
    // sort every match (a one-letter query matches most of a large tree).
    if ranked.len() > MAX_CANDIDATES {
        ranked.select_nth_unstable(MAX_CANDIDATES);
        ranked.truncate(MAX_CANDIDATES);
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, _, p)| p.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(paths: &[&str], partial: &str) -> Vec<String> {
        let lowered: Vec<(String, String)> = paths.iter().map(|p| (p.to_string(), p.to_lowercase())).collect();
        rank_paths(lowered.iter().map(|(p, l)| (p.as_str(), l.as_str())), partial)
    }

    #[test]
    fn prefix_matches_come_before_component_and_substring_matches() {
        let paths = ["src/", "src/main.rs", "docs/src.md", "crates/mainframe.rs", "README.md", "tests/amain.rs"];
        assert_eq!(rank(&paths, "main"), ["crates/mainframe.rs", "src/main.rs", "tests/amain.rs"]);
        assert_eq!(rank(&paths, "src"), ["src/", "src/main.rs", "docs/src.md"]);
        assert_eq!(rank(&paths, ""), ["README.md", "src/"]);
        assert_eq!(rank(&paths, "READ"), ["README.md"]);
    }

    #[test]
    fn commands_match_by_prefix() {
        let commands = default_commands();
        let names: Vec<&str> = match_commands(&commands, "re").iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rewind", "report", "resume"]);
        assert_eq!(match_commands(&commands, "").len(), 13);
        assert!(match_commands(&commands, "zz").is_empty());
    }

    #[test]
    fn closures_are_completers() {
        let completer = |partial: &str| vec![format!("{partial}.rs")];
        assert_eq!(PathCompleter::complete(&completer, "lib"), ["lib.rs"]);
    }
}
