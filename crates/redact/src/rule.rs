//! Rules as data: what a secret looks like, and gitleaks v8 import.
//!
//! A [`Rule`] is plain data; nothing is compiled until a [`crate::Scanner`] is built, so rule sets
//! can be merged and inspected cheaply.

use serde::Deserialize;

use crate::RedactError;

/// How strongly a rule's match says "this is a secret". Higher tiers win when findings overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// Keyword + entropy heuristics (`generic-secret`).
    Generic = 0,
    /// Imported rules and path-aware heuristics (`dotenv-secret`).
    Contextual = 1,
    /// A token format with a distinctive prefix or structure.
    Specific = 2,
    /// A whole PEM block; contains things that look like other secrets.
    Block = 3,
    /// A container of a block (`gcp-service-account`'s `private_key` value).
    Container = 4,
}

/// Where a rule's regex runs once one of its keywords is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only on the line around each keyword hit (bounded), for short single-line secrets.
    Line,
    /// From each keyword hit onwards, for long matches that start with the keyword (PEM blocks).
    FromHit,
    /// On the whole text (gitleaks semantics), for imported rules and rules without keywords.
    Whole,
}

/// Extra validation of a built-in rule's candidate secret beyond its regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing beyond the global look-alike filter.
    None,
    /// `key = value` assignments: reject references, calls, type names, low entropy.
    Assignment,
    /// `.env` values: reject empty values, booleans, references.
    Dotenv,
    /// AWS secret keys: mixed case and digits, high entropy.
    AwsSecret,
    /// A PEM block must have a real body.
    PemBody,
    /// A database URL password must not be a placeholder word or equal the user.
    UrlPassword,
    /// Classic GitHub / npm tokens: the CRC32 tail must match.
    GithubChecksum,
    /// JWTs: not the jwt.io sample token.
    Jwt,
    /// A provider's secret named by its key (`heroku_api_key = …`): not filler, not a word.
    Keyed,
    /// `Basic <base64>` and docker's `auths.*.auth`: base64 of `user:password`.
    BasicAuth,
    /// A password after `machine … password` (`.netrc`) or `curl -u user:password`.
    NamedPassword,
    /// A quoted value under a bare `key` (`var key = "…"`): only long, random-looking values.
    KeyAssignment,
}

impl Check {
    /// Checks that verify a checksum or a published sample rather than the shape: failing one
    /// says "probably a fixture", which is enough to stay out of a report but not to let the
    /// string leave unredacted.
    pub(crate) fn is_checksum(self) -> bool {
        matches!(self, Check::GithubChecksum | Check::Jwt)
    }
}

/// Which text an allowlist's regexes are matched against (gitleaks `regexTarget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegexTarget {
    /// The secret (capture group); the default.
    #[default]
    Secret,
    /// The whole regex match.
    Match,
    /// The full line(s) containing the match.
    Line,
}

/// How an allowlist's criteria combine (gitleaks `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Any criterion matching allows the finding; the default.
    #[default]
    Or,
    /// Every criterion that is set must match.
    And,
}

/// Exceptions to a rule: a finding matching the allowlist is not reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allowlist {
    /// Optional human description.
    pub description: String,
    /// Regexes matched against [`Allowlist::regex_target`].
    pub regexes: Vec<String>,
    /// What the regexes are matched against.
    pub regex_target: RegexTarget,
    /// Words that, contained in the secret (case-insensitively), allow it.
    pub stopwords: Vec<String>,
    /// Regexes matched against the file path (only in [`crate::Scanner::scan_file`]).
    pub paths: Vec<String>,
    /// How the criteria combine.
    pub condition: Condition,
}

/// One detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable identifier, used in findings and placeholders (`aws-access-key-id`).
    pub id: String,
    /// What the rule finds, for people.
    pub description: String,
    /// Regex (Rust `regex` syntax, bytes mode, ASCII classes) matching the secret in context.
    pub regex: String,
    /// Capture group holding the secret; 0 means the first non-empty group, or the whole match
    /// if the regex has no groups (gitleaks semantics).
    pub secret_group: usize,
    /// Lowercase keywords; the regex only runs near (or, for some rules, after) a keyword hit.
    /// Empty means the regex always runs on the whole text.
    pub keywords: Vec<String>,
    /// Minimum Shannon entropy (bits per byte) of the secret, if any.
    pub entropy: Option<f32>,
    /// Regex on the file path; when set, the rule only applies in [`crate::Scanner::scan_file`]
    /// to matching paths.
    pub path: Option<String>,
    /// Exceptions.
    pub allowlists: Vec<Allowlist>,
    pub(crate) tier: Tier,
    pub(crate) scope: Scope,
    pub(crate) check: Check,
}

impl Rule {
    /// A rule with the given id, description and regex, with gitleaks defaults for the rest:
    /// no keywords (runs on the whole text), secret group 0, no entropy threshold.
    pub fn new(id: impl Into<String>, description: impl Into<String>, regex: impl Into<String>) -> Rule {
        Rule {
            id: id.into(),
            description: description.into(),
            regex: regex.into(),
            secret_group: 0,
            keywords: Vec::new(),
            entropy: None,
            path: None,
            allowlists: Vec::new(),
            tier: Tier::Contextual,
            scope: Scope::Whole,
            check: Check::None,
        }
    }

    /// Sets the keywords (stored lowercase).
    pub fn with_keywords(mut self, keywords: &[&str]) -> Rule {
        self.keywords = keywords.iter().map(|k| k.to_ascii_lowercase()).collect();
        self
    }

    /// Sets the secret capture group.
    pub fn with_secret_group(mut self, group: usize) -> Rule {
        self.secret_group = group;
        self
    }

    /// Sets the minimum entropy.
    pub fn with_entropy(mut self, entropy: f32) -> Rule {
        self.entropy = Some(entropy);
        self
    }

    /// Restricts the rule to files whose path matches `path_regex`.
    pub fn with_path(mut self, path_regex: impl Into<String>) -> Rule {
        self.path = Some(path_regex.into());
        self
    }

    /// Adds an allowlist.
    pub fn with_allowlist(mut self, allowlist: Allowlist) -> Rule {
        self.allowlists.push(allowlist);
        self
    }

    pub(crate) fn tiered(mut self, tier: Tier, scope: Scope, check: Check) -> Rule {
        self.tier = tier;
        self.scope = scope;
        self.check = check;
        self
    }
}

/// An ordered collection of rules plus global allowlists.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) allowlists: Vec<Allowlist>,
}

impl RuleSet {
    /// An empty rule set.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// airlock's built-in rules (see the crate docs for the list of ids).
    pub fn builtin() -> RuleSet {
        RuleSet { rules: crate::builtin::rules(), allowlists: Vec::new() }
    }

    /// Imports a gitleaks v8 configuration.
    ///
    /// Supported: `[[rules]]` with `id`, `description`, `regex`, `secretGroup`, `entropy`,
    /// `keywords`, `path`, `[rules.allowlist]` / `[[rules.allowlists]]` (`regexes`, `regexTarget`,
    /// `stopwords`, `paths`, `condition`), and the global `[allowlist]` / `[[allowlists]]`.
    /// Rules with only a `path` (no `regex`) flag whole files; airlock leaves those to
    /// [`crate::PathPolicy`] and skips them. `[extend]` is ignored: combine sets with
    /// [`RuleSet::extend`] instead.
    pub fn from_gitleaks_toml(text: &str) -> Result<RuleSet, RedactError> {
        let config: GlConfig = toml::from_str(text).map_err(|err| {
            let line = err.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
            RedactError::GitleaksConfig { line, message: err.message().to_string() }
        })?;
        let mut set = RuleSet::default();
        for gl in config.rules {
            if gl.id.trim().is_empty() {
                return Err(RedactError::InvalidRule {
                    rule_id: String::new(),
                    message: "a rule has an empty `id`\nhint: every [[rules]] table needs a unique id".into(),
                });
            }
            let Some(regex) = gl.regex else { continue };
            let mut rule = Rule::new(gl.id, gl.description, regex);
            rule.secret_group = gl.secret_group;
            rule.entropy = gl.entropy;
            rule.keywords = gl.keywords.iter().map(|k| k.to_ascii_lowercase()).filter(|k| !k.is_empty()).collect();
            rule.path = gl.path;
            let id = rule.id.clone();
            for al in gl.allowlist.into_iter().chain(gl.allowlists) {
                rule.allowlists.push(al.into_allowlist(&id)?);
            }
            set.push(rule);
        }
        for al in config.allowlist.into_iter().chain(config.allowlists) {
            set.allowlists.push(al.into_allowlist("<global allowlist>")?);
        }
        Ok(set)
    }

    /// Adds `other`'s rules and allowlists; a rule whose id already exists replaces it.
    pub fn extend(&mut self, other: RuleSet) {
        for rule in other.rules {
            self.push(rule);
        }
        self.allowlists.extend(other.allowlists);
    }

    /// Adds one rule, replacing any rule with the same id.
    pub fn push(&mut self, rule: Rule) {
        match self.rules.iter_mut().find(|r| r.id == rule.id) {
            Some(existing) => *existing = rule,
            None => self.rules.push(rule),
        }
    }

    /// Adds a global allowlist, applied to every rule.
    pub fn push_allowlist(&mut self, allowlist: Allowlist) {
        self.allowlists.push(allowlist);
    }

    /// Rule ids in order.
    pub fn ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The global allowlists.
    pub fn allowlists(&self) -> &[Allowlist] {
        &self.allowlists
    }
}

#[derive(Deserialize)]
struct GlConfig {
    #[serde(default)]
    rules: Vec<GlRule>,
    allowlist: Option<GlAllowlist>,
    #[serde(default)]
    allowlists: Vec<GlAllowlist>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlRule {
    id: String,
    #[serde(default)]
    description: String,
    regex: Option<String>,
    #[serde(default)]
    secret_group: usize,
    entropy: Option<f32>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<String>,
    allowlist: Option<GlAllowlist>,
    #[serde(default)]
    allowlists: Vec<GlAllowlist>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlAllowlist {
    #[serde(default)]
    description: String,
    #[serde(default)]
    regexes: Vec<String>,
    regex_target: Option<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    condition: Option<String>,
}

impl GlAllowlist {
    fn into_allowlist(self, rule_id: &str) -> Result<Allowlist, RedactError> {
        let regex_target = match self.regex_target.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("secret") => RegexTarget::Secret,
            Some("match") => RegexTarget::Match,
            Some("line") => RegexTarget::Line,
            Some(other) => {
                return Err(RedactError::InvalidRule {
                    rule_id: rule_id.to_string(),
                    message: format!("unknown allowlist regexTarget `{other}`\nhint: use `secret`, `match` or `line`"),
                });
            }
        };
        let condition = match self.condition.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("") | Some("OR") => Condition::Or,
            Some("AND") => Condition::And,
            Some(other) => {
                return Err(RedactError::InvalidRule {
                    rule_id: rule_id.to_string(),
                    message: format!("unknown allowlist condition `{other}`\nhint: use `OR` or `AND`"),
                });
            }
        };
        Ok(Allowlist {
            description: self.description,
            regexes: self.regexes,
            regex_target,
            stopwords: self.stopwords.iter().map(|s| s.to_ascii_lowercase()).collect(),
            paths: self.paths,
            condition,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITLEAKS: &str = r#"
title = "test config"

[allowlist]
description = "global"
paths = ['''vendor/''']
regexes = ['''FAKEFAKE''']

[[rules]]
id = "acme-token"
description = "ACME API token"
regex = '''acme_(?:live|test)_([0-9a-z]{24})'''
secretGroup = 1
keywords = ["ACME_"]
entropy = 3.0

[rules.allowlist]
stopwords = ["zzzz"]

[[rules]]
id = "widget-key"
description = "Widget key assignment"
regex = '''(?i)widget[_-]?key\s*=\s*["']?([A-Za-z0-9]{16,})'''
keywords = ["widget"]
path = '''\.cfg$'''

[[rules.allowlists]]
regexTarget = "line"
regexes = ['''# ignore-me''']

[[rules]]
id = "pkcs12-file"
description = "path-only rule"
path = '''\.p12$'''
"#;

    #[test]
    fn gitleaks_import_reads_rules_and_allowlists() {
        let set = RuleSet::from_gitleaks_toml(GITLEAKS).unwrap();
        assert_eq!(set.ids(), vec!["acme-token", "widget-key"]);
        let acme = &set.rules()[0];
        assert_eq!(acme.secret_group, 1);
        assert_eq!(acme.keywords, vec!["acme_"]);
        assert_eq!(acme.entropy, Some(3.0));
        assert_eq!(acme.allowlists[0].stopwords, vec!["zzzz"]);
        let widget = &set.rules()[1];
        assert_eq!(widget.path.as_deref(), Some(r"\.cfg$"));
        assert_eq!(widget.allowlists[0].regex_target, RegexTarget::Line);
        assert_eq!(set.allowlists().len(), 1);
        assert_eq!(set.allowlists()[0].paths, vec!["vendor/"]);
    }

    #[test]
    fn gitleaks_import_reports_line_of_syntax_error() {
        let err = RuleSet::from_gitleaks_toml("[[rules]]\nid = \"x\"\nregex = \n").unwrap_err();
        match err {
            RedactError::GitleaksConfig { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn gitleaks_import_rejects_unknown_regex_target() {
        let text = "[[rules]]\nid = \"x\"\nregex = \"a\"\n[[rules.allowlists]]\nregexTarget = \"commit\"\n";
        let err = RuleSet::from_gitleaks_toml(text).unwrap_err();
        assert!(err.to_string().contains("rule `x`"), "{err}");
        assert!(err.to_string().contains("hint:"), "{err}");
    }

    #[test]
    fn extend_replaces_rules_with_the_same_id() {
        let mut set = RuleSet::builtin();
        let n = set.ids().len();
        let mut other = RuleSet::empty();
        other.push(Rule::new("github-pat", "override", "ghp_[a-z]{4}"));
        other.push(Rule::new("new-rule", "new", "zz[0-9]{9}"));
        set.extend(other);
        assert_eq!(set.ids().len(), n + 1);
        assert_eq!(set.rules().iter().find(|r| r.id == "github-pat").unwrap().description, "override");
    }
}
