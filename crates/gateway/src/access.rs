//! Who may do what on the team gateway: roles, limits, and the usage they
//! are counted against.
//!
//! A key belongs to a principal (a person, a CI job, a service) with a
//! [`Role`]. What the role may do is fixed ([`Role::may_use_models`],
//! [`Role::may_read_log`]); what it may use and how much is configured per
//! role in `gateway.toml`, and a key can only narrow it:
//!
//! ```toml
//! [roles.developer]
//! models = ["gpt-*", "claude-*"]   # patterns; empty or absent: every configured model
//! upstreams = ["openai", "claude"] # upstream names; empty or absent: every upstream
//! requests_per_minute = 60
//! tokens_per_minute = 200000
//! daily_tokens = 5000000           # per UTC day
//! max_request_bytes = 1048576
//!
//! [roles.ci]
//! models = ["gpt-4o-mini"]
//! daily_tokens = 1000000
//! ```
//!
//! A key's own models, upstreams and limits ([`crate::keys::KeyRecord`])
//! intersect with its role's: a model must match both lists, each limit is
//! the smaller of the two ([`Grant`]). An `auditor` never uses models,
//! whatever is configured.
//!
//! Usage is counted per principal (so a rotated key does not reset a budget)
//! in fixed windows: the UTC minute for requests and tokens per minute, the
//! UTC day for the daily budget ([`UsageLedger`]; [`MemoryLedger`] for one
//! gateway). A request is admitted while its principal's budget is not yet
//! spent; its tokens are charged when its answer ends, from the usage the
//! upstream reports. A stream that spends the daily budget is ended at an
//! event boundary with an error event in the caller's API format
//! ([`Meter`]); when the upstream reports no output count yet, output is
//! estimated from the streamed text at 4 bytes per token.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::keys::KeyPolicy;

/// What a principal is allowed to be and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uses models and reads the log.
    Admin,
    /// Uses models (the role of keys made before roles existed).
    #[default]
    Developer,
    /// A CI job: uses models.
    Ci,
    /// Reads the log and its proofs; never uses models.
    Auditor,
}

impl Role {
    /// Every role, in the order they are listed.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Developer, Role::Ci, Role::Auditor];

    /// Its name, as written in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Ci => "ci",
            Role::Auditor => "auditor",
        }
    }

    /// Whether the role may send model requests at all.
    pub fn may_use_models(self) -> bool {
        !matches!(self, Role::Auditor)
    }

    /// Whether the role may read the audit log, its checkpoints and proofs.
    pub fn may_read_log(self) -> bool {
        matches!(self, Role::Admin | Role::Auditor)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role\nhint: admin, developer, ci or auditor"))
    }
}

/// What kind of caller a principal is (recorded, and shown in `key list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A person.
    #[default]
    Person,
    /// A CI job.
    Ci,
    /// A service.
    Service,
}

impl PrincipalKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Person => "person",
            PrincipalKind::Ci => "ci",
            PrincipalKind::Service => "service",
        }
    }
}

impl std::fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PrincipalKind {
    type Err = String;
    fn from_str(s: &str) -> Result<PrincipalKind, String> {
        [PrincipalKind::Person, PrincipalKind::Ci, PrincipalKind::Service]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a kind of principal\nhint: person, ci or service"))
    }
}

/// Numeric limits; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per UTC minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Tokens (input and output, as the upstream reports them) per UTC minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Tokens per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    /// The largest request body, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
}

fn smaller(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Limits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Each limit the smaller of the two: `other` can only tighten `self`.
    pub fn tighten(&self, other: &Limits) -> Limits {
        Limits {
            requests_per_minute: smaller(self.requests_per_minute, other.requests_per_minute),
            tokens_per_minute: smaller(self.tokens_per_minute, other.tokens_per_minute),
            daily_tokens: smaller(self.daily_tokens, other.daily_tokens),
            max_request_bytes: smaller(self.max_request_bytes, other.max_request_bytes),
        }
    }

    /// Whether any limit is counted in a [`UsageLedger`].
    pub fn counted(&self) -> bool {
        self.requests_per_minute.is_some() || self.tokens_per_minute.is_some() || self.daily_tokens.is_some()
    }

    /// An error naming the first limit that is zero (which would refuse everything).
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute),
            ("daily_tokens", self.daily_tokens),
            ("max_request_bytes", self.max_request_bytes),
        ] {
            if value == Some(0) {
                return Err(format!("{name} must be at least 1: 0 would refuse every request"));
            }
        }
        Ok(())
    }

    /// `requests_per_minute=60, daily_tokens=1000000`, or `none`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute),
            ("daily_tokens", self.daily_tokens),
            ("max_request_bytes", self.max_request_bytes),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
        .collect();
        if parts.is_empty() { "none".into() } else { parts.join(", ") }
    }
}

/// One role's policy in `gateway.toml` (`[roles.NAME]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// Model patterns (`*` any run); empty: every configured model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Upstream names; empty: every upstream.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Requests per UTC minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per UTC minute.
    pub tokens_per_minute: Option<u64>,
    /// Tokens per UTC day.
    pub daily_tokens: Option<u64>,
    /// The largest request body, in bytes.
    pub max_request_bytes: Option<u64>,
}

impl RolePolicy {
    /// Its limits.
    pub fn limits(&self) -> Limits {
        Limits {
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
            daily_tokens: self.daily_tokens,
            max_request_bytes: self.max_request_bytes,
        }
    }
}

/// The `[roles]` table: one policy per role, each at its default (no
/// restriction beyond the role's fixed rights) unless configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// `[roles.admin]`.
    #[serde(default)]
    pub admin: RolePolicy,
    /// `[roles.developer]`.
    #[serde(default)]
    pub developer: RolePolicy,
    /// `[roles.ci]`.
    #[serde(default)]
    pub ci: RolePolicy,
    /// `[roles.auditor]`.
    #[serde(default)]
    pub auditor: RolePolicy,
}

impl Roles {
    /// The policy of `role`.
    pub fn policy(&self, role: Role) -> &RolePolicy {
        match role {
            Role::Admin => &self.admin,
            Role::Developer => &self.developer,
            Role::Ci => &self.ci,
            Role::Auditor => &self.auditor,
        }
    }

    /// Checks the table against the configured upstreams' names: every
    /// upstream named exists, no limit is zero, no model is granted to an
    /// auditor.
    pub fn check(&self, upstreams: &[&str]) -> Result<(), String> {
        for role in Role::ALL {
            let p = self.policy(role);
            let bad = |what: String| format!("roles.{role}: {what}");
            if !role.may_use_models() && !p.models.is_empty() {
                return Err(bad("an auditor may not use models: remove `models`".into()));
            }
            if p.models.iter().any(String::is_empty) {
                return Err(bad("a model pattern is empty".into()));
            }
            if let Some(u) = p.upstreams.iter().find(|u| !upstreams.contains(&u.as_str())) {
                return Err(bad(format!(
                    "upstreams: there is no upstream named {u:?}\nhint: the configured ones are {upstreams:?}"
                )));
            }
            p.limits().check().map_err(bad)?;
        }
        Ok(())
    }
}

/// What one key may do: its role's policy narrowed by the key's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The principal.
    pub principal: String,
    /// Its role.
    pub role: Role,
    /// Model patterns of the role, then of the key; a model must match both (an empty list matches all).
    pub models: [Vec<String>; 2],
    /// Upstream names of the role, then of the key; likewise.
    pub upstreams: [Vec<String>; 2],
    /// The smaller of each limit.
    pub limits: Limits,
}

fn any_matches(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| crate::config::glob_match(p, name))
}

impl Grant {
    /// The grant of `key` under `roles`.
    pub fn new(roles: &Roles, key: &KeyPolicy) -> Grant {
        let role = roles.policy(key.role);
        Grant {
            principal: key.name.clone(),
            role: key.role,
            models: [role.models.clone(), key.models.clone()],
            upstreams: [role.upstreams.clone(), key.upstreams.clone()],
            limits: role.limits().tighten(&key.limits),
        }
    }

    /// Whether `model` at `upstream`, with a body of `bytes`, is within the
    /// grant (the counted limits are the ledger's: [`Access::admit`]).
    pub fn check(&self, model: &str, upstream: &str, bytes: u64) -> Result<(), Refusal> {
        let (principal, role) = (&self.principal, self.role);
        let destination = format!("model:{model}");
        if !role.may_use_models() {
            return Err(Refusal::forbidden(
                destination,
                format!("{principal} is an {role}: an {role} may not use models"),
            ));
        }
        if !self.models.iter().all(|m| any_matches(m, model)) {
            let whose = if any_matches(&self.models[0], model) { "its key" } else { "its role" };
            return Err(Refusal::forbidden(
                destination,
                format!("{principal} ({role}) may not use model {model:?}: {whose} does not allow it"),
            ));
        }
        if !self.upstreams.iter().all(|u| u.is_empty() || u.iter().any(|x| x == upstream)) {
            let whose = if self.upstreams[0].is_empty() || self.upstreams[0].iter().any(|x| x == upstream) {
                "its key"
            } else {
                "its role"
            };
            return Err(Refusal::forbidden(
                destination,
                format!(
                    "{principal} ({role}) may not use upstream {upstream:?}, which serves model {model:?}: {whose} does not allow it"
                ),
            ));
        }
        if let Some(max) = self.limits.max_request_bytes
            && bytes > max
        {
            return Err(Refusal {
                status: 413,
                kind: "request_too_large",
                destination,
                reason: format!(
                    "the request is {bytes} bytes, more than the {max} bytes {principal} ({role}) may send (max_request_bytes)"
                ),
                retry_after: None,
            });
        }
        Ok(())
    }
}

/// Why a request is refused, and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status: 403, 413, 429 or 503.
    pub status: u16,
    /// The error type in the caller's API (`permission_error`, `rate_limit_error`, ...).
    pub kind: &'static str,
    /// What was refused, for the audit record.
    pub destination: String,
    /// Why, for the caller and the record.
    pub reason: String,
    /// For 429: seconds until the window that is full frees up.
    pub retry_after: Option<u64>,
}

impl Refusal {
    fn forbidden(destination: String, reason: String) -> Refusal {
        Refusal { status: 403, kind: "permission_error", destination, reason, retry_after: None }
    }
}

/// The refusal of any model request by a principal whose role may not use
/// models, before its body is read for a model.
pub fn may_use_models(caller: &KeyPolicy, destination: &str) -> Result<(), Refusal> {
    if caller.may_use_models() {
        return Ok(());
    }
    let (name, role) = (&caller.name, caller.role);
    Err(Refusal::forbidden(
        destination.to_string(),
        format!("{name} is an {role}: an {role} may read the audit log but not use models"),
    ))
}

/// A limit counted in a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `requests_per_minute`.
    RequestsPerMinute,
    /// `tokens_per_minute`.
    TokensPerMinute,
    /// `daily_tokens`.
    DailyTokens,
}

impl Counted {
    /// Its name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Counted::RequestsPerMinute => "requests_per_minute",
            Counted::TokensPerMinute => "tokens_per_minute",
            Counted::DailyTokens => "daily_tokens",
        }
    }
}

/// A limit reached: which, its value, what was used, and when it frees up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    /// The limit.
    pub limit: Counted,
    /// Its value.
    pub value: u64,
    /// What the principal has used in the window.
    pub used: u64,
    /// Seconds until the window ends (at least 1).
    pub seconds: u64,
}

/// A ledger's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Admitted {
    /// Tokens left today under `daily_tokens`, if it is set: a stream is
    /// ended when its own tokens go beyond this.
    pub daily_tokens_left: Option<u64>,
}

/// Why a ledger did not admit a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A limit is reached.
    #[error("{} = {} reached ({} used); retry after {}s", .0.limit.as_str(), .0.value, .0.used, .0.seconds)]
    Limit(RetryAfter),
    /// The ledger cannot be reached: nothing is admitted (fail closed).
    #[error("the usage ledger is unavailable: {0}")]
    Unavailable(String),
}

/// A ledger's pending answer.
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'a>>;

/// Usage counters per principal, in UTC-minute and UTC-day windows, shared
/// by every replica that shares the ledger.
pub trait UsageLedger: Send + Sync {
    /// Admits one request of `principal` under `limits` at `now`, counting
    /// it, or says which limit is reached and when it frees up. A request
    /// is admitted while no budget is spent yet (its own tokens are not
    /// known in advance).
    fn admit<'a>(&'a self, principal: &'a str, limits: &'a Limits, now: SystemTime) -> LedgerFuture<'a, Admitted>;

    /// Adds `tokens` to `principal`'s minute and day at `now`.
    fn charge<'a>(&'a self, principal: &'a str, tokens: u64, now: SystemTime) -> LedgerFuture<'a, ()>;
}

/// The UTC minute and day of `now`, and the seconds left in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Minutes since the epoch.
    pub minute: i64,
    /// Days since the epoch.
    pub day: i64,
    /// Seconds until the next minute (1 to 60).
    pub minute_left: u64,
    /// Seconds until the next UTC midnight (1 to 86400).
    pub day_left: u64,
}

impl Windows {
    /// The windows `now` falls in.
    pub fn at(now: SystemTime) -> Windows {
        let ms = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis()) as i64;
        let secs_left = |period_ms: i64| -> u64 {
            let left = period_ms - ms.rem_euclid(period_ms);
            (left as u64).div_ceil(1000).max(1)
        };
        Windows {
            minute: ms.div_euclid(60_000),
            day: ms.div_euclid(86_400_000),
            minute_left: secs_left(60_000),
            day_left: secs_left(86_400_000),
        }
    }
}

/// One principal's counts in its current windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// The minute counted.
    pub minute: i64,
    /// Requests in it.
    pub minute_requests: u64,
    /// Tokens in it.
    pub minute_tokens: u64,
    /// The day counted.
    pub day: i64,
    /// Tokens in it.
    pub day_tokens: u64,
}

impl Counts {
    /// The counts moved to `w`'s windows (a past window counts nothing).
    pub fn at(self, w: &Windows) -> Counts {
        let mut c = self;
        if c.minute != w.minute {
            (c.minute, c.minute_requests, c.minute_tokens) = (w.minute, 0, 0);
        }
        if c.day != w.day {
            (c.day, c.day_tokens) = (w.day, 0);
        }
        c
    }

    /// The decision for one more request under `limits`: pure, so that
    /// every ledger decides alike. Checks budgets before the request count.
    pub fn admit(&self, limits: &Limits, w: &Windows) -> Result<Admitted, RetryAfter> {
        let over = |limit, value: Option<u64>, used: u64, seconds| match value {
            Some(value) if used >= value => Err(RetryAfter { limit, value, used, seconds }),
            _ => Ok(()),
        };
        over(Counted::DailyTokens, limits.daily_tokens, self.day_tokens, w.day_left)?;
        over(Counted::TokensPerMinute, limits.tokens_per_minute, self.minute_tokens, w.minute_left)?;
        over(Counted::RequestsPerMinute, limits.requests_per_minute, self.minute_requests, w.minute_left)?;
        Ok(Admitted { daily_tokens_left: limits.daily_tokens.map(|d| d.saturating_sub(self.day_tokens)) })
    }
}

/// The ledger of one gateway, in memory (lost on restart; not shared by replicas).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    counts: Mutex<std::collections::HashMap<String, Counts>>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }

    /// `principal`'s counts as of `now`.
    pub fn counts(&self, principal: &str, now: SystemTime) -> Counts {
        let w = Windows::at(now);
        lock(&self.counts).get(principal).copied().unwrap_or_default().at(&w)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl UsageLedger for MemoryLedger {
    fn admit<'a>(&'a self, principal: &'a str, limits: &'a Limits, now: SystemTime) -> LedgerFuture<'a, Admitted> {
        let w = Windows::at(now);
        let mut all = lock(&self.counts);
        let counts = all.entry(principal.to_string()).or_default();
        *counts = counts.at(&w);
        let decision = counts.admit(limits, &w).map_err(LedgerError::Limit);
        if decision.is_ok() {
            counts.minute_requests += 1;
        }
        Box::pin(std::future::ready(decision))
    }

    fn charge<'a>(&'a self, principal: &'a str, tokens: u64, now: SystemTime) -> LedgerFuture<'a, ()> {
        // Done now, not when polled: a charge is never lost to a future nobody polls.
        let w = Windows::at(now);
        let mut all = lock(&self.counts);
        let counts = all.entry(principal.to_string()).or_default();
        *counts = counts.at(&w);
        counts.minute_tokens = counts.minute_tokens.saturating_add(tokens);
        counts.day_tokens = counts.day_tokens.saturating_add(tokens);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The gateway's access control: the ledger its limits are counted in (the
/// roles are in its configuration, so that a reload changes them).
pub struct Access {
    ledger: RwLock<Arc<dyn UsageLedger>>,
}

impl Default for Access {
    fn default() -> Access {
        Access { ledger: RwLock::new(Arc::new(MemoryLedger::new())) }
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").finish_non_exhaustive()
    }
}

impl Access {
    /// Counts usage in `ledger` from now on (e.g. one shared by replicas).
    pub fn set_ledger(&self, ledger: Arc<dyn UsageLedger>) {
        match self.ledger.write() {
            Ok(mut l) => *l = ledger,
            Err(poisoned) => *poisoned.into_inner() = ledger,
        }
    }

    /// The ledger in use.
    pub fn ledger(&self) -> Arc<dyn UsageLedger> {
        match self.ledger.read() {
            Ok(l) => Arc::clone(&l),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Whether `caller` may send a request for `model` to `upstream` with a
    /// body of `bytes` now: its grant under `roles`, then its counted
    /// limits (the request is counted when admitted).
    pub async fn admit(
        &self,
        roles: &Roles,
        caller: &KeyPolicy,
        model: &str,
        upstream: &str,
        bytes: u64,
        now: SystemTime,
    ) -> Result<Admitted, Refusal> {
        let grant = Grant::new(roles, caller);
        grant.check(model, upstream, bytes)?;
        if !grant.limits.counted() {
            return Ok(Admitted::default());
        }
        let ledger = self.ledger();
        let destination = format!("model:{model}");
        match ledger.admit(&caller.name, &grant.limits, now).await {
            Ok(a) => Ok(a),
            Err(LedgerError::Limit(r)) => Err(Refusal {
                status: 429,
                kind: "rate_limit_error",
                destination,
                reason: format!(
                    "{} ({}) has used {} of its {} = {}{}; retry after {}s",
                    caller.name,
                    caller.role,
                    r.used,
                    r.limit.as_str(),
                    r.value,
                    if r.limit == Counted::DailyTokens { " (UTC day)" } else { " (UTC minute)" },
                    r.seconds
                ),
                retry_after: Some(r.seconds),
            }),
            Err(e @ LedgerError::Unavailable(_)) => Err(Refusal {
                status: 503,
                kind: "api_error",
                destination,
                reason: format!("{e}: the request was not sent"),
                retry_after: Some(1),
            }),
        }
    }

    /// Charges `tokens` to `principal` now; a ledger that answers later is
    /// waited for on the runtime, its failure logged.
    pub fn charge(&self, principal: &str, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let ledger = self.ledger();
        let principal = principal.to_string();
        let now = SystemTime::now();
        let run = async move {
            if let Err(e) = ledger.charge(&principal, tokens, now).await {
                tracing::error!(principal, tokens, "cannot charge usage: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(run)),
            Err(_) => tracing::error!("no runtime to charge usage on"),
        }
    }
}

/// The shape of a stream's events, for the event that ends one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// OpenAI chat completions: `data: {...}`, `data: [DONE]`.
    OpenAiChat,
    /// OpenAI responses: typed events.
    OpenAiResponses,
    /// Anthropic messages.
    Anthropic,
    /// Gemini `streamGenerateContent?alt=sse`.
    Gemini,
}

impl StreamFormat {
    /// The event that ends a stream cut for `message`, in this format.
    pub fn error_event(self, message: &str) -> Bytes {
        let text = match self {
            StreamFormat::OpenAiChat => format!(
                "data: {}\n\ndata: [DONE]\n\n",
                serde_json::json!({"error": {"message": message, "type": "rate_limit_error", "code": 429}})
            ),
            StreamFormat::OpenAiResponses => format!(
                "event: error\ndata: {}\n\n",
                serde_json::json!({"type": "error", "code": "rate_limit_exceeded", "message": message, "param": null})
            ),
            StreamFormat::Anthropic => format!(
                "event: error\ndata: {}\n\n",
                serde_json::json!({"type": "error", "error": {"type": "rate_limit_error", "message": message}})
            ),
            StreamFormat::Gemini => format!(
                "data: {}\r\n\r\n",
                serde_json::json!({"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}})
            ),
        };
        Bytes::from(text)
    }
}

/// Bytes of streamed text taken as one token where the upstream has not
/// reported its output count yet.
pub const BYTES_PER_TOKEN: u64 = 4;

/// Counts an answer's tokens as it streams, against what is left of its
/// principal's daily budget, and ends the stream at an event boundary when
/// the budget is spent.
#[derive(Debug)]
pub struct Meter {
    principal: String,
    daily_left: Option<u64>,
    daily: Option<u64>,
    /// Whether tokens are counted at all (a token limit applies).
    counted: bool,
    format: Option<StreamFormat>,
    /// Bytes of generated text seen in `data:` lines (the estimate).
    text_bytes: u64,
    line: Vec<u8>,
    /// Whether the last byte passed on ends an event (a blank line).
    at_boundary: bool,
    /// Whether the current line has had no byte but `\r` yet.
    line_empty: bool,
    /// Over budget, waiting for the end of the event in progress.
    cutting: bool,
    /// Why the stream was ended, once it was.
    cut: Option<String>,
}

/// What to pass on of one chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass {
    /// The chunk as it is.
    Whole,
    /// These bytes, the last of the stream (the end of an event, then the error event).
    Last(Bytes),
}

impl Meter {
    /// A meter that never ends a stream (no daily budget, or not a stream).
    pub fn unlimited() -> Meter {
        Meter {
            principal: String::new(),
            daily_left: None,
            daily: None,
            counted: false,
            format: None,
            text_bytes: 0,
            line: Vec::new(),
            at_boundary: true,
            line_empty: true,
            cutting: false,
            cut: None,
        }
    }

    /// A meter for `caller`'s stream, admitted with `admitted`, whose
    /// events are in `format` (`None`: not a stream the gateway can end).
    pub fn new(caller: &KeyPolicy, roles: &Roles, admitted: Admitted, format: Option<StreamFormat>) -> Meter {
        let limits = Grant::new(roles, caller).limits;
        Meter {
            principal: caller.name.clone(),
            daily_left: admitted.daily_tokens_left,
            daily: limits.daily_tokens,
            counted: limits.tokens_per_minute.is_some() || limits.daily_tokens.is_some(),
            format,
            ..Meter::unlimited()
        }
    }

    /// Tokens so far: the reported input, and the reported output or the
    /// estimate from the text, whichever is larger (output counts are often
    /// reported only at the end).
    pub fn tokens(&self, input: u64, output: u64) -> u64 {
        input + output.max(self.text_bytes.div_ceil(BYTES_PER_TOKEN))
    }

    /// The tokens to charge when the answer has ended: the reported counts
    /// when the upstream reported output and the answer was not cut, else
    /// the larger of them and the estimate.
    pub fn charged(&self, input: u64, output: u64) -> u64 {
        if output > 0 && self.cut.is_none() { input + output } else { self.tokens(input, output) }
    }

    /// Why the stream was cut, if it was.
    pub fn cut(&self) -> Option<&str> {
        self.cut.as_deref()
    }

    /// Takes in a chunk of the stream (after the reported counts, `input`
    /// and `output`, were read from it) and says what of it to pass on.
    pub fn pass(&mut self, chunk: &[u8], input: u64, output: u64) -> Pass {
        let Some(format) = self.format.filter(|_| self.counted) else {
            return Pass::Whole;
        };
        if self.cut.is_some() {
            return Pass::Last(Bytes::new());
        }
        let was_at_boundary = self.at_boundary;
        let (mut first_boundary, mut last_boundary) = (None, None);
        for (i, &b) in chunk.iter().enumerate() {
            match b {
                b'\n' => {
                    if self.line_empty {
                        first_boundary = first_boundary.or(Some(i + 1));
                        last_boundary = Some(i + 1);
                    }
                    let line = std::mem::take(&mut self.line);
                    self.text_bytes += streamed_text(&line);
                    self.line_empty = true;
                }
                b'\r' => {}
                _ => {
                    self.line_empty = false;
                    if self.line.len() < 1 << 20 {
                        self.line.push(b);
                    }
                }
            }
        }
        self.at_boundary = match last_boundary {
            Some(at) => chunk[at..].iter().all(|&b| b == b'\r'),
            None => was_at_boundary && chunk.iter().all(|&b| b == b'\r'),
        };
        let used = self.tokens(input, output);
        let Some(left) = self.daily_left else {
            return Pass::Whole;
        };
        if !self.cutting && used > left {
            self.cutting = true;
        }
        if !self.cutting {
            return Pass::Whole;
        }
        // Only the end of an event already begun passes: what follows in the
        // chunk is counted (it was generated) but not sent.
        let keep = match first_boundary {
            _ if was_at_boundary => 0,
            Some(at) => at,
            // Mid-event with no end in sight: pass it, and end at the next boundary.
            None => return Pass::Whole,
        };
        let daily = self.daily.unwrap_or(left);
        let message = format!(
            "the daily token budget of {} (daily_tokens = {daily}, UTC day) is spent: the answer was ended after about {used} tokens",
            self.principal
        );
        self.cut = Some(format!("cut: {message}"));
        let mut out = Vec::with_capacity(keep + 256);
        out.extend_from_slice(&chunk[..keep]);
        out.extend_from_slice(&format.error_event(&message));
        Pass::Last(Bytes::from(out))
    }
}

/// Bytes of generated text in one SSE `data:` line: the strings a model
/// writes (`text`, `content`, `delta`, `arguments`, `partial_json`,
/// `thinking`, `refusal`), not those of summary events that repeat them.
fn streamed_text(line: &[u8]) -> u64 {
    let Some(json) = line.strip_prefix(b"data:") else { return 0 };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json.trim_ascii()) else { return 0 };
    if let Some(kind) = v.get("type").and_then(serde_json::Value::as_str)
        && (kind.ends_with(".done") || kind.ends_with(".completed"))
    {
        return 0;
    }
    fn walk(v: &serde_json::Value, key: &str) -> u64 {
        match v {
            serde_json::Value::String(s)
                if matches!(
                    key,
                    "text" | "content" | "delta" | "arguments" | "partial_json" | "thinking" | "refusal"
                ) =>
            {
                s.len() as u64
            }
            serde_json::Value::Object(m) => m.iter().map(|(k, v)| walk(v, k)).sum(),
            serde_json::Value::Array(a) => a.iter().map(|v| walk(v, key)).sum(),
            _ => 0,
        }
    }
    walk(&v, "")
}

/// The usage ledger in PostgreSQL, shared by every replica of a gateway.
#[cfg(feature = "postgres")]
pub mod postgres {
    use std::time::SystemTime;

    use airlock_audit::postgres::{Migration, MigrationError, apply_migrations};
    use deadpool_postgres::Pool;

    use super::{Admitted, Counts, LedgerError, LedgerFuture, Limits, RetryAfter, UsageLedger, Windows};

    /// The ledger's own migrations, recorded in `airlock_gateway_migrations`
    /// (apart from the audit log's).
    pub const MIGRATIONS: &[Migration] = &[Migration {
        version: 1,
        name: "gateway_usage",
        sql: "CREATE TABLE IF NOT EXISTS gateway_usage (\
           principal TEXT NOT NULL, \
           window_kind TEXT NOT NULL CHECK (window_kind IN ('minute', 'day')), \
           window_start BIGINT NOT NULL, \
           tokens BIGINT NOT NULL DEFAULT 0, \
           requests BIGINT NOT NULL DEFAULT 0, \
           PRIMARY KEY (principal, window_kind, window_start))",
    }];

    /// The advisory lock migrations hold ("airlock" and 3; the audit log's are 1 and 2).
    pub const MIGRATION_LOCK: i64 = 0x6169_726c_6f63_6b03;

    const TOKENS: &str = "SELECT \
        COALESCE(SUM(tokens) FILTER (WHERE window_kind = 'minute' AND window_start = $2), 0)::BIGINT, \
        COALESCE(SUM(requests) FILTER (WHERE window_kind = 'minute' AND window_start = $2), 0)::BIGINT, \
        COALESCE(SUM(tokens) FILTER (WHERE window_kind = 'day' AND window_start = $3), 0)::BIGINT \
        FROM gateway_usage WHERE principal = $1 \
        AND ((window_kind = 'minute' AND window_start = $2) OR (window_kind = 'day' AND window_start = $3))";

    /// Counts the request only while the minute's count is under the limit,
    /// in one statement, so that replicas admitting at once never exceed it.
    const COUNT_REQUEST: &str = "INSERT INTO gateway_usage AS u (principal, window_kind, window_start, requests) \
        VALUES ($1, 'minute', $2, 1) ON CONFLICT (principal, window_kind, window_start) \
        DO UPDATE SET requests = u.requests + 1 WHERE u.requests < $3 RETURNING u.requests";

    /// One UPSERT per charge: the minute's row and the day's.
    const CHARGE: &str = "INSERT INTO gateway_usage AS u (principal, window_kind, window_start, tokens) \
        VALUES ($1, 'minute', $2, $4), ($1, 'day', $3, $4) ON CONFLICT (principal, window_kind, window_start) \
        DO UPDATE SET tokens = u.tokens + EXCLUDED.tokens";

    /// Minute rows older than this many minutes are deleted now and then.
    const KEEP_MINUTES: i64 = 24 * 60;

    /// The ledger in PostgreSQL.
    #[derive(Clone)]
    pub struct PgLedger {
        pool: Pool,
        name: String,
    }

    impl std::fmt::Debug for PgLedger {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PgLedger").field("database", &self.name).finish_non_exhaustive()
        }
    }

    fn unavailable(name: &str, e: impl std::fmt::Display) -> LedgerError {
        LedgerError::Unavailable(format!("{name}: {e}"))
    }

    impl PgLedger {
        /// Connects to `url` (as [`airlock_audit::postgres::parse_url`]
        /// reads it) and brings its table up to date; call from within a
        /// tokio runtime. TLS as the URL asks.
        pub async fn connect(url: &str) -> Result<PgLedger, LedgerError> {
            let mut target =
                airlock_audit::postgres::parse_url(url).map_err(|e| LedgerError::Unavailable(e.to_string()))?;
            let name = target.shown.clone();
            // Usage counts are not the record: they need not wait for the
            // disk (the audit log's commits do), and a crash loses at most
            // the last moment's counts. Charges then never queue on fsyncs.
            let options = match target.config.get_options() {
                Some(given) => format!("{given} -c synchronous_commit=off"),
                None => "-c synchronous_commit=off".to_string(),
            };
            target.config.options(&options);
            // The log's own pool builder: TLS as the URL asks, the server's certificate verified.
            let pool = airlock_audit::postgres::pool_builder(&target)
                .map_err(|e| LedgerError::Unavailable(e.to_string()))?
                .max_size(8)
                .build()
                .map_err(|e| unavailable(&name, e))?;
            let ledger = PgLedger { pool, name };
            ledger.migrate().await?;
            Ok(ledger)
        }

        /// Applies the ledger's migrations the database lacks, under [`MIGRATION_LOCK`].
        pub async fn migrate(&self) -> Result<Vec<i64>, LedgerError> {
            let mut client = self.pool.get().await.map_err(|e| unavailable(&self.name, e))?;
            apply_migrations(&mut client, "airlock_gateway_migrations", MIGRATION_LOCK, MIGRATIONS).await.map_err(|e| {
                match e {
                    MigrationError::Database(e) => unavailable(&self.name, e),
                    MigrationError::TooNew { found, known } => LedgerError::Unavailable(format!(
                        "{}: the usage table is at version {found}, newer than this airlock knows ({known})",
                        self.name
                    )),
                }
            })
        }

        async fn admit_at(&self, principal: &str, limits: &Limits, now: SystemTime) -> Result<Admitted, LedgerError> {
            let w = Windows::at(now);
            if limits.requests_per_minute.is_none()
                && limits.tokens_per_minute.is_none()
                && limits.daily_tokens.is_none()
            {
                // Nothing is counted against: no round trip on the request's path.
                return Counts::default().admit(limits, &w).map_err(LedgerError::Limit);
            }
            let err = |e: tokio_postgres::Error| unavailable(&self.name, e);
            let client = self.pool.get().await.map_err(|e| unavailable(&self.name, e))?;
            let row = client.query_one(TOKENS, &[&principal, &w.minute, &w.day]).await.map_err(err)?;
            let (minute_tokens, minute_requests, day_tokens): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let counts = Counts {
                minute: w.minute,
                minute_requests: minute_requests as u64,
                minute_tokens: minute_tokens as u64,
                day: w.day,
                day_tokens: day_tokens as u64,
            };
            let admitted = counts.admit(limits, &w).map_err(LedgerError::Limit)?;
            let limit = limits.requests_per_minute.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
            let counted = client.query_opt(COUNT_REQUEST, &[&principal, &w.minute, &limit]).await.map_err(err)?;
            if counted.is_none() {
                // Another replica took the last one in the meantime.
                return Err(LedgerError::Limit(RetryAfter {
                    limit: super::Counted::RequestsPerMinute,
                    value: limits.requests_per_minute.unwrap_or(0),
                    used: limits.requests_per_minute.unwrap_or(0),
                    seconds: w.minute_left,
                }));
            }
            Ok(admitted)
        }

        async fn charge_at(&self, principal: &str, tokens: u64, now: SystemTime) -> Result<(), LedgerError> {
            let w = Windows::at(now);
            let err = |e: tokio_postgres::Error| unavailable(&self.name, e);
            let client = self.pool.get().await.map_err(|e| unavailable(&self.name, e))?;
            let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
            client.execute(CHARGE, &[&principal, &w.minute, &w.day, &tokens]).await.map_err(err)?;
            // Now and then (about once an hour per principal that is charged
            // at the top of the hour), drop minute rows no limit looks at.
            if w.minute % 60 == 0 {
                client
                    .execute(
                        "DELETE FROM gateway_usage WHERE window_kind = 'minute' AND window_start < $1",
                        &[&(w.minute - KEEP_MINUTES)],
                    )
                    .await
                    .map_err(err)?;
            }
            Ok(())
        }
    }

    impl UsageLedger for PgLedger {
        fn admit<'a>(&'a self, principal: &'a str, limits: &'a Limits, now: SystemTime) -> LedgerFuture<'a, Admitted> {
            Box::pin(self.admit_at(principal, limits, now))
        }

        fn charge<'a>(&'a self, principal: &'a str, tokens: u64, now: SystemTime) -> LedgerFuture<'a, ()> {
            Box::pin(self.charge_at(principal, tokens, now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(role: Role, models: &[&str], limits: Limits) -> KeyPolicy {
        KeyPolicy {
            name: "k".into(),
            role,
            kind: PrincipalKind::Person,
            models: models.iter().map(|m| m.to_string()).collect(),
            upstreams: Vec::new(),
            limits,
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn each_role_has_its_fixed_rights() {
        assert!(Role::Admin.may_use_models() && Role::Admin.may_read_log());
        assert!(Role::Developer.may_use_models() && !Role::Developer.may_read_log());
        assert!(Role::Ci.may_use_models() && !Role::Ci.may_read_log());
        assert!(!Role::Auditor.may_use_models() && Role::Auditor.may_read_log());
        assert_eq!("ci".parse::<Role>(), Ok(Role::Ci));
        assert!("root".parse::<Role>().unwrap_err().contains("admin, developer, ci or auditor"));
        let r = Grant::new(&Roles::default(), &key(Role::Auditor, &[], Limits::default())).check("m", "u", 1);
        assert_eq!(r.unwrap_err().status, 403);
    }

    #[test]
    fn a_key_can_only_tighten_its_role() {
        let roles: Roles = toml::from_str(
            "[developer]\nmodels = [\"gpt-*\"]\nupstreams = [\"openai\"]\nrequests_per_minute = 10\ndaily_tokens = 1000\n",
        )
        .unwrap();
        // A key that names a wider list and a larger limit does not widen the role's.
        let wide = key(
            Role::Developer,
            &["*"],
            Limits { requests_per_minute: Some(100), tokens_per_minute: Some(50), ..Limits::default() },
        );
        let g = Grant::new(&roles, &wide);
        assert_eq!(g.limits.requests_per_minute, Some(10));
        assert_eq!(g.limits.tokens_per_minute, Some(50));
        assert_eq!(g.limits.daily_tokens, Some(1000));
        assert!(g.check("gpt-4o", "openai", 1).is_ok());
        let e = g.check("claude-opus", "openai", 1).unwrap_err();
        assert!(e.reason.contains("its role does not allow"), "{}", e.reason);
        assert!(g.check("gpt-4o", "azure", 1).unwrap_err().reason.contains("upstream \"azure\""));
        let narrow =
            key(Role::Developer, &["gpt-4o-mini"], Limits { max_request_bytes: Some(10), ..Limits::default() });
        let g = Grant::new(&roles, &narrow);
        assert!(g.check("gpt-4o", "openai", 1).unwrap_err().reason.contains("its key does not allow"));
        assert_eq!(g.check("gpt-4o-mini", "openai", 11).unwrap_err().status, 413);
        assert!(g.check("gpt-4o-mini", "openai", 10).is_ok());
    }

    #[test]
    fn role_tables_are_checked() {
        let check = |t: &str| toml::from_str::<Roles>(t).map_err(|e| e.to_string()).and_then(|r| r.check(&["openai"]));
        assert!(check("[auditor]\nmodels = [\"gpt-*\"]").unwrap_err().contains("auditor may not use models"));
        assert!(check("[ci]\nupstreams = [\"nope\"]").unwrap_err().contains("no upstream named \"nope\""));
        assert!(check("[ci]\ndaily_tokens = 0").unwrap_err().contains("daily_tokens must be at least 1"));
        assert!(check("[intern]\nmodels = []").unwrap_err().contains("unknown field"));
        assert!(check("[ci]\nrpm = 3").unwrap_err().contains("unknown field"));
        assert!(check("[ci]\nupstreams = [\"openai\"]\nrequests_per_minute = 3").is_ok());
    }

    #[test]
    fn windows_end_on_the_utc_minute_and_day() {
        let w = Windows::at(at(86_400 * 3 + 125));
        assert_eq!((w.minute_left, w.day_left), (55, 86_400 - 125));
        assert_eq!(Windows::at(at(120)).minute_left, 60);
        let w = Windows::at(SystemTime::UNIX_EPOCH + Duration::from_millis(59_001));
        assert_eq!(w.minute_left, 1);
    }

    #[tokio::test]
    async fn the_memory_ledger_counts_requests_and_tokens_in_their_windows() {
        let ledger = MemoryLedger::new();
        let limits = Limits { requests_per_minute: Some(2), daily_tokens: Some(100), ..Limits::default() };
        let t = 86_400 * 10 + 30;
        assert_eq!(ledger.admit("a", &limits, at(t)).await.unwrap().daily_tokens_left, Some(100));
        ledger.admit("a", &limits, at(t + 1)).await.unwrap();
        let Err(LedgerError::Limit(r)) = ledger.admit("a", &limits, at(t + 2)).await else { panic!() };
        assert_eq!((r.limit, r.used, r.seconds), (Counted::RequestsPerMinute, 2, 28));
        // Another principal, and the next minute, are counted apart.
        ledger.admit("b", &limits, at(t + 2)).await.unwrap();
        ledger.charge("a", 60, at(t + 31)).await.unwrap();
        assert_eq!(ledger.admit("a", &limits, at(t + 31)).await.unwrap().daily_tokens_left, Some(40));
        ledger.charge("a", 40, at(t + 32)).await.unwrap();
        let Err(LedgerError::Limit(r)) = ledger.admit("a", &limits, at(t + 100)).await else { panic!() };
        assert_eq!((r.limit, r.used, r.seconds), (Counted::DailyTokens, 100, 86_400 - 130));
        // A new UTC day.
        assert!(ledger.admit("a", &limits, at(86_400 * 11)).await.is_ok());
        let tpm = Limits { tokens_per_minute: Some(10), ..Limits::default() };
        ledger.charge("c", 10, at(t)).await.unwrap();
        let Err(LedgerError::Limit(r)) = ledger.admit("c", &tpm, at(t + 5)).await else { panic!() };
        assert_eq!((r.limit, r.seconds), (Counted::TokensPerMinute, 25));
        assert!(ledger.admit("c", &tpm, at(t + 30)).await.is_ok());
    }

    fn meter(left: u64, format: StreamFormat) -> Meter {
        let k = key(Role::Developer, &[], Limits { daily_tokens: Some(left), ..Limits::default() });
        Meter::new(&k, &Roles::default(), Admitted { daily_tokens_left: Some(left) }, Some(format))
    }

    #[test]
    fn a_stream_over_budget_ends_at_an_event_boundary_with_an_error_event() {
        let mut m = meter(5, StreamFormat::OpenAiChat);
        let event = |t: &str| format!("data: {}\n\n", serde_json::json!({"choices": [{"delta": {"content": t}}]}));
        assert_eq!(m.pass(event("abcd").as_bytes(), 0, 0), Pass::Whole);
        // Half an event, over the budget: it is passed, and the stream ends after the event's end.
        let next = event("x".repeat(40).as_str());
        let (head, tail) = next.split_at(10);
        assert_eq!(m.pass(head.as_bytes(), 0, 0), Pass::Whole);
        let Pass::Last(end) = m.pass(format!("{tail}{}", event("more")).as_bytes(), 0, 0) else { panic!() };
        let end = String::from_utf8(end.to_vec()).unwrap();
        assert!(end.starts_with(tail), "{end}");
        assert!(!end.contains("more"), "{end}");
        assert!(end.ends_with("data: [DONE]\n\n") && end.contains("\"rate_limit_error\""), "{end}");
        assert!(m.cut().unwrap().contains("daily token budget of k"));
        // Reported counts win when larger. What was generated but held back
        // ("more") is charged too: 4 + 40 + 4 bytes of text, 12 tokens.
        assert_eq!(m.charged(3, 0), 3 + 12);
        assert_eq!(m.charged(3, 70), 73);
        assert_eq!(m.charged(3, 7), 3 + 12, "a cut answer is charged at least its estimate");
        let mut whole = meter(1000, StreamFormat::OpenAiChat);
        assert_eq!(whole.pass(event("x".repeat(400).as_str()).as_bytes(), 0, 0), Pass::Whole);
        assert_eq!(whole.charged(3, 7), 10, "a whole answer is charged what the upstream reports");
        assert_eq!(whole.charged(3, 0), 103, "else its estimate");
        // Anthropic's \n\n after a reported count, at a boundary: only the error event.
        let mut m = meter(10, StreamFormat::Anthropic);
        let Pass::Last(end) = m.pass(b"event: message_delta\ndata: {\"usage\":{\"output_tokens\":30}}\n\n", 0, 30)
        else {
            panic!()
        };
        let end = String::from_utf8_lossy(&end).into_owned();
        assert!(end.starts_with("event: error\ndata: {") && end.ends_with("}\n\n"), "{end}");
        assert!(end.contains("\"type\":\"rate_limit_error\""), "{end}");
        let mut g = meter(1, StreamFormat::Gemini);
        let Pass::Last(end) = g.pass(b"data: {\"x\":1}\r\n\r\n", 5, 0) else { panic!() };
        assert!(String::from_utf8_lossy(&end).ends_with("RESOURCE_EXHAUSTED\"}}\r\n\r\n"));
        // No budget: everything passes.
        assert_eq!(Meter::unlimited().pass(b"data: {}\n\n", 1 << 40, 1 << 40), Pass::Whole);
    }

    #[test]
    fn summary_events_are_not_counted_twice() {
        assert_eq!(streamed_text(br#"data: {"type":"response.output_text.delta","delta":"hello"}"#), 5);
        assert_eq!(streamed_text(br#"data: {"type":"response.output_text.done","text":"hello"}"#), 0);
        assert_eq!(
            streamed_text(br#"data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"hey"}}"#),
            3
        );
        assert_eq!(streamed_text(br#"data: {"candidates":[{"content":{"parts":[{"text":"ab"}]}}]}"#), 2);
        assert_eq!(streamed_text(b"event: ping"), 0);
    }

    /// Two replicas' ledgers on one database count one budget.
    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_share_one_postgres_ledger() {
        let Some(cluster) = airlock_test_support::postgres::Cluster::start() else { return };
        let url = cluster.create_database("ledger");
        let a = postgres::PgLedger::connect(&url).await.unwrap();
        let b = postgres::PgLedger::connect(&url).await.unwrap();
        assert!(a.migrate().await.unwrap().is_empty(), "migrated twice");
        let limits = Limits { requests_per_minute: Some(2), daily_tokens: Some(100), ..Limits::default() };
        let t = 86_400 * 20_000 + 10;
        assert_eq!(a.admit("ci", &limits, at(t)).await.unwrap().daily_tokens_left, Some(100));
        b.admit("ci", &limits, at(t + 1)).await.unwrap();
        let Err(LedgerError::Limit(r)) = a.admit("ci", &limits, at(t + 2)).await else { panic!() };
        assert_eq!((r.limit, r.seconds), (Counted::RequestsPerMinute, 48));
        a.charge("ci", 70, at(t + 3)).await.unwrap();
        b.charge("ci", 20, at(t + 4)).await.unwrap();
        assert_eq!(b.admit("ci", &limits, at(t + 61)).await.unwrap().daily_tokens_left, Some(10));
        a.charge("ci", 10, at(t + 62)).await.unwrap();
        let Err(LedgerError::Limit(r)) = b.admit("ci", &limits, at(t + 63)).await else { panic!() };
        assert_eq!((r.limit, r.used), (Counted::DailyTokens, 100));
        // Concurrent admissions on both never pass the limit.
        let many = Limits { requests_per_minute: Some(5), ..Limits::default() };
        let tries = (0..20).map(|i| {
            let l = if i % 2 == 0 { a.clone() } else { b.clone() };
            async move { l.admit("burst", &many, at(t + 200)).await.is_ok() }
        });
        let admitted = futures_util::future::join_all(tries).await.into_iter().filter(|ok| *ok).count();
        assert_eq!(admitted, 5);
        let rows = cluster.psql("ledger", "SELECT count(*) FROM gateway_usage WHERE principal = 'ci'");
        assert_eq!(rows, "3", "a row for each of two minutes, and one for the day");
    }
}
