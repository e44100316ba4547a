//! Secret detection and redaction for airlock.
//!
//! Everything a model sees passes through a [`Redactor`]: secrets are replaced by stable
//! placeholders (`«secret:github-pat:1»`), the same secret always by the same placeholder within
//! a session, and a [`Redaction`] report records what was replaced (by hash, never the secret).
//!
//! - [`RuleSet`] is rules as data: [`RuleSet::builtin`] (ids such as `aws-access-key-id`,
//!   `github-pat`, `private-key`, `generic-secret`, `dotenv-secret`, a rule for every provider
//!   gitleaks' default configuration covers such as `digitalocean-token` and `shopify-token`,
//!   and contexts: `url-credentials`, `basic-auth`, `docker-config-auth`, `netrc-password`,
//!   `key-assignment`) and gitleaks v8 imports.
//! - [`Scanner`] compiles a rule set once: one Aho-Corasick pass over all rules' keywords picks
//!   where each rule's regex runs, so most of the text is never touched by a regex. It also
//!   looks one level into base64, URL-encoded and JSON-escaped text, and decodes UTF-16.
//!   [`Scanner::scan`] is for reports and prefers precision (a token whose checksum fails is
//!   a fixture); [`Scanner::scan_for_redaction`], which [`Redactor`] uses on everything bound
//!   for a model, prefers recall and redacts such a token anyway.
//! - [`StreamRedactor`] redacts chunked text without splitting a secret across chunks.
//! - [`PathPolicy`] decides which files must never be read into a model's context at all.
//!
//! ```
//! use std::sync::Arc;
//! use airlock_redact::{Redactor, Scanner};
//!
//! let scanner = Arc::new(Scanner::builtin());
//! let mut redactor = Redactor::new(scanner);
//! let key_id = ["AKIA", "Z7Q2M4K5T3R6W2XB"].concat();
//! let out = redactor.redact(&format!("aws_access_key_id = {key_id}\n"));
//! assert_eq!(out.text, "aws_access_key_id = «secret:aws-access-key-id:1»\n");
//! assert_eq!(out.report[0].rule_id, "aws-access-key-id");
//! // Idempotent: placeholders never match a rule.
//! assert_eq!(redactor.redact(&out.text).text, out.text);
//! ```
#![deny(missing_docs)]

mod builtin;
mod checks;
mod encoding;
mod error;
mod path_policy;
mod providers;
mod redactor;
mod rule;
mod scanner;
mod stream;
pub mod terminal;

pub use checks::{github_token_checksum_ok, shannon_entropy};
pub use encoding::Encoding;
pub use error::RedactError;
pub use path_policy::{PathDecision, PathPolicy};
pub use redactor::{Redacted, Redaction, Redactor};
pub use rule::{Allowlist, Condition, RegexTarget, Rule, RuleSet};
pub use scanner::{Finding, Scanner};
pub use stream::{PEM_HOLD_CAP, StreamRedactor};
