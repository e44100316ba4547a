//! Errors raised while loading rules, compiling them, or building a path policy.

use std::path::PathBuf;

/// Everything that can go wrong in `airlock-redact`.
///
/// Scanning and redacting never fail; only building a [`crate::Scanner`], importing rules or
/// building a [`crate::PathPolicy`] can.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// A rule's regex (or one of its allowlist / path regexes) does not compile.
    #[error(
        "rule `{rule_id}`: invalid {what} regex `{pattern}`: {message}\nhint: rules use Rust `regex` syntax (RE2-like, as in gitleaks); look-around and backreferences are not supported"
    )]
    InvalidRegex {
        /// Id of the rule that owns the regex (`<global allowlist>` for the global allowlist).
        rule_id: String,
        /// Which regex: `secret`, `path`, `allowlist` or `allowlist path`.
        what: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The compiler's explanation.
        message: String,
    },
    /// A rule is well-formed TOML but makes no sense (e.g. `secretGroup` beyond the regex's groups).
    #[error("rule `{rule_id}`: {message}")]
    InvalidRule {
        /// Id of the offending rule.
        rule_id: String,
        /// What is wrong, with a `hint:` where one is known.
        message: String,
    },
    /// A gitleaks configuration file could not be parsed.
    #[error(
        "gitleaks config, line {line}: {message}\nhint: the file must be gitleaks v8 TOML (`[[rules]]` tables with `id` and `regex`)"
    )]
    GitleaksConfig {
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// The parser's explanation.
        message: String,
    },
    /// A gitignore-syntax pattern for the path policy is invalid.
    #[error("{source_name}: invalid ignore pattern: {message}")]
    IgnorePattern {
        /// Where the pattern came from: a file path or `extra patterns`.
        source_name: String,
        /// The parser's explanation (names the pattern and line).
        message: String,
    },
    /// A policy file exists but could not be read.
    #[error("{path}: could not read: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
