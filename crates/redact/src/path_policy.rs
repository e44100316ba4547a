//! Files that must never enter a model's context, in gitignore syntax.

use std::path::{Component, Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::RedactError;

/// File name of the per-project policy, read from the project root.
pub const AIRLOCK_IGNORE: &str = ".airlockignore";

/// Built-in patterns: credentials, keys and env files. Later lines win, as in `.gitignore`.
const DEFAULT_PATTERNS: &[&str] = &[
    // Environment files, but not the templates checked in next to them.
    ".env",
    ".env.*",
    "*.env",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "!.env.dist",
    "!*.env.example",
    // Keys and certificates with private material.
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "!id_*.pub",
    // Credential stores.
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".htpasswd",
    "*.kdbx",
    "credentials.json",
    "*service-account*.json",
    "**/.aws/credentials",
    "**/.docker/config.json",
    "kubeconfig",
    "**/.kube/config",
    "secrets.yml",
    "secrets.yaml",
    "*.tfstate",
    "*.tfstate.backup",
];

/// Whether a path may be read into a model's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathDecision {
    /// Nothing forbids it.
    Allowed,
    /// A pattern forbids it.
    Denied {
        /// The pattern as written (e.g. `*.pem`).
        pattern: String,
    },
}

/// Patterns for files that must never be read into a model's context.
#[derive(Debug, Clone)]
pub struct PathPolicy {
    root: PathBuf,
    matcher: Gitignore,
}

impl PathPolicy {
    /// The built-in patterns only, for paths relative to any root.
    pub fn defaults() -> PathPolicy {
        let mut builder = GitignoreBuilder::new("");
        for line in DEFAULT_PATTERNS {
            // The defaults are tested to parse (`defaults_parse`); a failure cannot happen.
            let _ = builder.add_line(None, line);
        }
        let matcher = builder.build().unwrap_or_else(|_| Gitignore::empty());
        PathPolicy { root: PathBuf::new(), matcher }
    }

    /// The built-in patterns, then `root/.airlockignore` if present, then `extra` lines (all in
    /// gitignore syntax; `!pattern` re-allows a path a previous line denied).
    pub fn with_patterns(root: &Path, extra: &[String]) -> Result<PathPolicy, RedactError> {
        let mut builder = GitignoreBuilder::new(root);
        for line in DEFAULT_PATTERNS {
            builder.add_line(None, line).map_err(|err| RedactError::IgnorePattern {
                source_name: "built-in patterns".into(),
                message: err.to_string(),
            })?;
        }
        let file = root.join(AIRLOCK_IGNORE);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    builder.add_line(Some(file.clone()), line).map_err(|err| RedactError::IgnorePattern {
                        source_name: format!("{}:{}", file.display(), n + 1),
                        message: err.to_string(),
                    })?;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RedactError::Io { path: file, source }),
        }
        for line in extra {
            builder.add_line(None, line).map_err(|err| RedactError::IgnorePattern {
                source_name: "extra patterns".into(),
                message: format!("{err}\nhint: patterns use .gitignore syntax, e.g. `*.pem` or `!public.pem`"),
            })?;
        }
        let matcher = builder.build().map_err(|err| RedactError::IgnorePattern {
            source_name: "path policy".into(),
            message: err.to_string(),
        })?;
        Ok(PathPolicy { root: root.to_path_buf(), matcher })
    }

    /// Decides whether `path` (absolute, or relative to the root) may be read. A path inside a
    /// denied directory is denied.
    pub fn check(&self, path: &Path, is_dir: bool) -> PathDecision {
        let relative = self.relative(path);
        match self.matcher.matched_path_or_any_parents(&relative, is_dir) {
            Match::Ignore(glob) => PathDecision::Denied { pattern: glob.original().to_string() },
            Match::Whitelist(_) | Match::None => PathDecision::Allowed,
        }
    }

    /// `path` relative to the root; absolute paths elsewhere lose their root so name-based
    /// patterns still apply.
    fn relative(&self, path: &Path) -> PathBuf {
        let stripped = if self.root.as_os_str().is_empty() { None } else { path.strip_prefix(&self.root).ok() };
        let path = stripped.unwrap_or(path);
        path.components()
            .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
            .filter(|c| !matches!(c, Component::ParentDir))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(policy: &PathPolicy, path: &str) -> bool {
        matches!(policy.check(Path::new(path), false), PathDecision::Denied { .. })
    }

    #[test]
    fn defaults_parse() {
        let mut builder = GitignoreBuilder::new("");
        for line in DEFAULT_PATTERNS {
            builder.add_line(None, line).unwrap();
        }
        builder.build().unwrap();
    }

    #[test]
    fn defaults_deny_credentials_and_allow_templates() {
        let p = PathPolicy::defaults();
        for path in [
            ".env",
            "app/.env.local",
            "prod.env",
            "certs/server.pem",
            "tls.key",
            "id_rsa",
            "/home/u/.ssh/id_ed25519",
            ".netrc",
            ".git-credentials",
            ".npmrc",
            "credentials.json",
            "gcp-service-account-prod.json",
            "/home/u/.aws/credentials",
            "/home/u/.docker/config.json",
            "/home/u/.kube/config",
            "kubeconfig",
            "vault.kdbx",
            "config/secrets.yml",
            ".htpasswd",
        ] {
            assert!(denied(&p, path), "{path} should be denied");
        }
        for path in [
            ".env.example",
            ".env.sample",
            ".env.template",
            "id_rsa.pub",
            "src/main.rs",
            "config.json",
            "README.md",
            ".aws/config",
        ] {
            assert!(!denied(&p, path), "{path} should be allowed");
        }
    }

    #[test]
    fn denial_names_the_pattern() {
        let p = PathPolicy::defaults();
        assert_eq!(p.check(Path::new("a/b/server.pem"), false), PathDecision::Denied { pattern: "*.pem".into() });
    }

    #[test]
    fn airlockignore_and_extra_patterns_apply_with_negation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(AIRLOCK_IGNORE), "# comment\nprivate/\n!.npmrc\n").unwrap();
        let p = PathPolicy::with_patterns(dir.path(), &["*.sqlite".to_string()]).unwrap();
        assert!(denied(&p, &dir.path().join("private/notes.txt").to_string_lossy()));
        assert!(denied(&p, "private/notes.txt"));
        assert!(denied(&p, "data/app.sqlite"));
        assert!(!denied(&p, ".npmrc"));
        assert!(denied(&p, ".env"));
        assert!(matches!(p.check(Path::new("private"), true), PathDecision::Denied { .. }));
    }

    #[test]
    fn bad_extra_pattern_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let err = PathPolicy::with_patterns(dir.path(), &["[z-a]".to_string()]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("extra patterns") && msg.contains("hint:"), "{msg}");
    }
}
