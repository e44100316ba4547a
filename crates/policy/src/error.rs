//! The one error type of the crate.

use std::path::PathBuf;

use crate::Source;

/// Why a policy file could not be loaded or a policy could not be changed.
///
/// Every variant names the file (or the command line) and, for problems
/// inside a file, the 1-based line and column of the offending value. The
/// `Display` text is the full message for a person, ending in a `hint:` line.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file exists but could not be read.
    #[error(
        "could not read {}: {}\nhint: fix the file's permissions, or remove it to drop this layer",
        path.display(),
        source.kind()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A policy file is not valid TOML or does not match the schema
    /// (unknown key, wrong type).
    #[error("{}:{line}:{column}: {message}\nhint: {hint}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What the TOML parser said.
        message: String,
        /// How to fix it.
        hint: String,
    },

    /// A value is well-typed but malformed: a bad path, domain or limit.
    #[error("{}:{line}:{column}: {key}: {message}\nhint: {hint}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column (in characters) of the value.
        column: usize,
        /// The key, such as `sandbox.writable_roots`.
        key: &'static str,
        /// What is wrong with the value.
        message: String,
        /// How to fix it.
        hint: String,
    },

    /// A layer tried to allow more than a layer above it does.
    #[error("{}:{line}:{column}: {key} {message}\nhint: {hint}", path.display())]
    Widening {
        /// The lower file, the one that tried to widen.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column (in characters) of the value.
        column: usize,
        /// The key, such as `sandbox.writable_roots`.
        key: &'static str,
        /// What the value tried and what the ceiling allows; names the ceiling's source.
        message: String,
        /// Where the ceiling came from (boxed to keep the error small).
        ceiling: Box<Source>,
        /// How to fix it.
        hint: String,
    },

    /// The user config could not be edited; it is unchanged.
    #[error("{}: {message}\nhint: {hint}", path.display())]
    ConfigWrite {
        /// The user config.
        path: PathBuf,
        /// Why not.
        message: String,
        /// How to fix it.
        hint: String,
    },

    /// The edited user config could not be written; the old file is unchanged.
    #[error(
        "could not write {}: {}\nhint: check that the folder is writable by you",
        path.display(),
        source.kind()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A command-line override was malformed or went above a ceiling.
    #[error("command line: {key}: {message}\nhint: {hint}")]
    CommandLine {
        /// The key the option sets, such as `sandbox.writable_roots`.
        key: &'static str,
        /// What is wrong; names the ceiling's source when there is one.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

/// A problem with one value, before it is placed in a file or on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) message: String,
    pub(crate) hint: String,
    /// Set when the problem is that a ceiling was exceeded.
    pub(crate) ceiling: Option<Source>,
}

impl Problem {
    pub(crate) fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem { message: message.into(), hint: hint.into(), ceiling: None }
    }

    pub(crate) fn widening(message: impl Into<String>, hint: impl Into<String>, ceiling: &Source) -> Self {
        Problem { message: message.into(), hint: hint.into(), ceiling: Some(ceiling.clone()) }
    }

    /// Places the problem on the command line.
    pub(crate) fn on_command_line(self, key: &'static str) -> PolicyError {
        PolicyError::CommandLine { key, message: self.message, hint: self.hint }
    }
}
