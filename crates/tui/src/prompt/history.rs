//! Previous prompts: walking them with Up/Down, searching them with Ctrl-R,
//! and the text the app keeps them in between sessions.

/// How many prompts are kept (the oldest go first).
pub const HISTORY_CAP: usize = 1_000;

/// The longest prompt kept, in bytes. A prompt with a large paste is not
/// worth recalling, and keeping it would make the file and every Ctrl-R
/// keystroke cost what the paste does.
pub const HISTORY_ENTRY_MAX_BYTES: usize = 16 * 1024;

/// Previous prompts, oldest first, and where a walk through them stands.
#[derive(Debug, Default)]
pub(crate) struct History {
    entries: Vec<String>,
    /// While walking: the entry shown, and the draft the walk started from.
    walk: Option<(usize, String)>,
}

impl History {
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Replaces the entries (loaded by the app), keeping the newest
    /// [`HISTORY_CAP`].
    pub fn load(&mut self, entries: Vec<String>) {
        self.entries = entries;
        self.entries.retain(|e| !e.trim().is_empty() && e.len() <= HISTORY_ENTRY_MAX_BYTES);
        self.entries.dedup();
        self.trim();
        self.walk = None;
    }

    /// Adds a submitted prompt (not an empty one, nor a repeat of the last).
    pub fn push(&mut self, entry: &str) {
        self.walk = None;
        if entry.trim().is_empty()
            || entry.len() > HISTORY_ENTRY_MAX_BYTES
            || self.entries.last().is_some_and(|last| last == entry)
        {
            return;
        }
        self.entries.push(entry.to_string());
        self.trim();
    }

    fn trim(&mut self) {
        if self.entries.len() > HISTORY_CAP {
            let excess = self.entries.len() - HISTORY_CAP;
            self.entries.drain(..excess);
        }
    }

    /// The entry before the one shown (or the newest, starting a walk from
    /// `draft`); `None` at the oldest.
    pub fn older(&mut self, draft: &str) -> Option<&str> {
        let next = match &self.walk {
            Some((0, _)) => return None,
            Some((i, _)) => i - 1,
            None => self.entries.len().checked_sub(1)?,
        };
        let draft = self.walk.take().map_or_else(|| draft.to_string(), |(_, d)| d);
        self.walk = Some((next, draft));
        self.entries.get(next).map(String::as_str)
    }

    /// The entry after the one shown, or the draft when the walk passes the
    /// newest (which ends it); `None` when not walking.
    pub fn newer(&mut self) -> Option<String> {
        let (i, draft) = self.walk.take()?;
        if i + 1 < self.entries.len() {
            let entry = self.entries[i + 1].clone();
            self.walk = Some((i + 1, draft));
            Some(entry)
        } else {
            Some(draft)
        }
    }

    /// Ends a walk (the person edited what it showed).
    pub fn stop_walk(&mut self) {
        self.walk = None;
    }

    /// The newest entry older than `before` (all when `None`) containing
    /// `query`, ignoring case.
    pub fn search(&self, query: &str, before: Option<usize>) -> Option<usize> {
        let end = before.unwrap_or(self.entries.len()).min(self.entries.len());
        let query = query.to_lowercase();
        (0..end).rev().find(|&i| self.entries[i].to_lowercase().contains(&query))
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        self.entries.get(index).map(String::as_str)
    }
}

/// History as the text of a file: one JSON string a line, so that prompts
/// of several lines stay one entry.
pub fn encode(entries: &[String]) -> String {
    let mut out = String::new();
    for entry in entries {
        // Serialising a string cannot fail; skip rather than panic if it did.
        if let Ok(line) = serde_json::to_string(entry) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The entries of a history file written by [`encode`]; a line that is not
/// a JSON string (a damaged or hand-edited file) is skipped, and a plain
/// line of text is taken as it is.
pub fn decode(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<String>(line).unwrap_or_else(|_| line.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(entries: &[&str]) -> History {
        let mut h = History::default();
        h.load(entries.iter().map(|e| e.to_string()).collect());
        h
    }

    #[test]
    fn walk_goes_back_and_returns_to_the_draft() {
        let mut h = history(&["one", "two"]);
        assert_eq!(h.older("draft"), Some("two"));
        assert_eq!(h.older("ignored"), Some("one"));
        assert_eq!(h.older("ignored"), None);
        assert_eq!(h.newer().as_deref(), Some("two"));
        assert_eq!(h.newer().as_deref(), Some("draft"));
        assert_eq!(h.newer(), None);
    }

    #[test]
    fn push_skips_empty_and_repeated_entries_and_caps() {
        let mut h = History::default();
        h.push("a");
        h.push("a");
        h.push("  ");
        h.push(&"x".repeat(HISTORY_ENTRY_MAX_BYTES + 1));
        assert_eq!(h.entries(), ["a"]);
        for i in 0..HISTORY_CAP + 5 {
            h.push(&format!("p{i}"));
        }
        assert_eq!(h.entries().len(), HISTORY_CAP);
        assert_eq!(h.entries()[0], "p5");
    }

    #[test]
    fn search_finds_newest_first_ignoring_case() {
        let h = history(&["cargo build", "git status", "Cargo test"]);
        assert_eq!(h.search("cargo", None), Some(2));
        assert_eq!(h.search("cargo", Some(2)), Some(0));
        assert_eq!(h.search("cargo", Some(0)), None);
        assert_eq!(h.search("zzz", None), None);
    }

    #[test]
    fn file_text_round_trips_multi_line_entries() {
        let entries = vec!["one".to_string(), "two\nlines".to_string(), "tab\tand \"quotes\"".to_string()];
        let text = encode(&entries);
        assert_eq!(text.lines().count(), 3);
        assert_eq!(decode(&text), entries);
        assert_eq!(decode("plain line\n\n\"ok\"\n"), ["plain line", "ok"]);
    }
}
