//! What can go wrong in a tool call, worded for the model reading it.

use std::io;
use std::path::PathBuf;

/// A failed tool call or workspace setup. Variants name the path (as the model wrote it) and
/// carry a `hint:` line where a fix is known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The workspace root could not be opened.
    #[error("cannot open workspace root {}: {source}", root.display())]
    WorkspaceOpen {
        /// The root as given.
        root: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The host lacks something path confinement depends on.
    #[error("{what}\nhint: {hint}")]
    Unsupported {
        /// What is missing.
        what: &'static str,
        /// How to get it.
        hint: &'static str,
    },
    /// The path leads out of the workspace (`..`, an absolute path elsewhere, or a symlink).
    #[error(
        "`{path}` is outside the workspace\nhint: paths are relative to the workspace root; `..` and symlinks may not \
         lead out of it"
    )]
    OutsideWorkspace {
        /// The path as given.
        path: String,
    },
    /// The path policy forbids reading the file.
    #[error(
        "`{path}` is not readable by policy (matches `{pattern}`)\nhint: credentials never enter the model's context"
    )]
    Denied {
        /// The path as given (or as resolved, when a symlink led there).
        path: String,
        /// The policy pattern that matched.
        pattern: String,
    },
    /// Nothing exists at the path.
    #[error("`{path}` does not exist\nhint: use list_dir or glob to find the right path")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// A file was expected, a directory found.
    #[error("`{path}` is a directory\nhint: use list_dir to see its entries")]
    IsADirectory {
        /// The path as given.
        path: String,
    },
    /// A directory was expected.
    #[error("`{path}` is not a directory")]
    NotADirectory {
        /// The path as given.
        path: String,
    },
    /// A device, socket or FIFO.
    #[error("`{path}` is not a regular file (device, socket or FIFO)")]
    SpecialFile {
        /// The path as given.
        path: String,
    },
    /// Writes never follow a final symlink.
    #[error(
        "`{path}` is a symbolic link to `{target}`; writes never follow links\nhint: write to the target path instead"
    )]
    Symlink {
        /// The path as given.
        path: String,
        /// Where the link points.
        target: String,
    },
    /// Writes inside `.git` could plant hooks or corrupt the repository.
    #[error("`{path}` is inside .git; tools do not write there\nhint: use git through run_command instead")]
    GitInternals {
        /// The path as given (or as resolved).
        path: String,
    },
    /// An I/O error on a path.
    #[error("`{path}`: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The arguments do not fit the tool's JSON Schema.
    #[error("invalid arguments for {tool}: {message}")]
    InvalidArguments {
        /// The tool called.
        tool: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// No tool has this name.
    #[error("unknown tool `{name}`\nhint: available tools: {known}")]
    UnknownTool {
        /// The name called.
        name: String,
        /// The tools that exist, comma-separated.
        known: String,
    },
    /// A regex or glob did not parse.
    #[error("invalid pattern `{pattern}`: {message}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
        /// The parser's complaint, with a hint.
        message: String,
    },
    /// `read_file` was asked to start beyond the last line.
    #[error("offset {offset} is past the end of `{path}` ({lines} lines)")]
    OffsetPastEnd {
        /// The path as given.
        path: String,
        /// The requested first line.
        offset: u64,
        /// Lines in the file.
        lines: u64,
    },
    /// `edit_file` only edits UTF-8 text.
    #[error("`{path}` is binary or not UTF-8; edit_file only edits text\nhint: use write_file to replace it whole")]
    NotText {
        /// The path as given.
        path: String,
    },
    /// The file or content is over the tool's size limit.
    #[error("`{path}` is {size} bytes, over this tool's limit of {limit} bytes")]
    TooLarge {
        /// The path as given.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// `old_string` does not occur in the file; `detail` quotes the closest match.
    #[error("old_string not found in `{path}`{detail}")]
    EditNoMatch {
        /// The path as given.
        path: String,
        /// The closest region of the file, with line numbers, and a hint.
        detail: String,
    },
    /// `old_string` occurs more than once and `replace_all` is not set.
    #[error(
        "old_string occurs {count} times in `{path}` (lines {lines})\nhint: include more surrounding lines to make it \
         unique, or set replace_all"
    )]
    EditAmbiguous {
        /// The path as given.
        path: String,
        /// How many times it occurs.
        count: usize,
        /// The first line of each occurrence, comma-separated.
        lines: String,
    },
    /// `old_string == new_string`.
    #[error("old_string and new_string are identical; nothing to change")]
    EditNoChange,
    /// An empty `old_string` matches everywhere.
    #[error("old_string is empty\nhint: use write_file to create a file or replace it whole")]
    EmptyOldString,
    /// More than one todo item is `in_progress`.
    #[error("{count} items are in_progress; at most one may be\nhint: mark finished work completed first")]
    TodoInProgress {
        /// How many were in progress.
        count: usize,
    },
}

impl ToolError {
    /// Classifies an I/O error from opening `path` beneath the root.
    pub(crate) fn from_open(path: &str, source: io::Error) -> ToolError {
        let path = path.to_string();
        match source.raw_os_error() {
            Some(libc::ENOENT) => ToolError::NotFound { path },
            Some(libc::EXDEV) => ToolError::OutsideWorkspace { path },
            Some(libc::ENOTDIR) => ToolError::NotFound { path },
            Some(libc::ENOSYS) => ToolError::Unsupported {
                what: "openat2(2) is not available, so paths cannot be confined to the workspace",
                hint: "airlock's file tools need Linux 5.6 or newer",
            },
            _ => ToolError::Io { path, source },
        }
    }
}
