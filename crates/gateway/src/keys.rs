//! Team-gateway API keys. A key is shown once when it is made; the gateway
//! keeps only its SHA-256, with the principal it belongs to (its name, role
//! and kind) and what the key may use, in a 0600 JSON file. A principal may
//! hold several live keys (to rotate one without a gap); revoking by name
//! revokes them all.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::access::{Limits, PrincipalKind, Role};

/// The prefix of every key, so that secret scanners recognise them.
pub const KEY_PREFIX: &str = "alk_";

/// One key, as stored. Files written before principals had roles hold
/// no `role`, `kind`, `upstreams` or `limits`: such a key is a person's, a
/// `developer`, without limits of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The principal it belongs to (who or what calls with it); a principal
    /// may hold several live keys (rotation).
    pub name: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// When it was made (ms since the epoch).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// The principal's role.
    #[serde(default)]
    pub role: Role,
    /// What kind of principal it is.
    #[serde(default)]
    pub kind: PrincipalKind,
    /// The models it may ask for (patterns, `*` any run); empty: every model its role may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// The upstreams it may use (names); empty: every one its role may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// Its own limits, which can only tighten its role's.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
}

impl KeyRecord {
    /// The short id `key list` shows and `key revoke --key` takes: the
    /// first 12 hex digits of its digest.
    pub fn id(&self) -> &str {
        self.sha256.get(..12).unwrap_or(&self.sha256)
    }
}

/// What a new key is for and may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewKey {
    /// The principal's role; `None`: the role its live keys have (a new principal must name one).
    pub role: Option<Role>,
    /// What kind of principal; `None`: as its live keys, else a person.
    pub kind: Option<PrincipalKind>,
    /// Model patterns (empty: as the role).
    pub models: Vec<String>,
    /// Upstream names (empty: as the role).
    pub upstreams: Vec<String>,
    /// Limits of the key's own.
    pub limits: Limits,
}

/// What a live key may do, as the server sees it: the key's own part; the
/// role's policy is applied on top ([`crate::access::Grant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The principal (its name in the audit log, and what usage is counted against).
    pub name: String,
    /// The principal's role.
    pub role: Role,
    /// What kind of principal.
    pub kind: PrincipalKind,
    /// Model patterns the key may use; empty: all its role may.
    pub models: Vec<String>,
    /// Upstream names the key may use; empty: all its role may.
    pub upstreams: Vec<String>,
    /// The key's own limits.
    pub limits: Limits,
}

impl KeyPolicy {
    /// A principal with `role`, no narrowing of its own.
    pub fn new(name: impl Into<String>, role: Role) -> KeyPolicy {
        KeyPolicy {
            name: name.into(),
            role,
            kind: PrincipalKind::Person,
            models: Vec::new(),
            upstreams: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// A developer's key limited to `models` (patterns; empty: all), as keys were before roles.
    pub fn developer(name: impl Into<String>, models: &[&str]) -> KeyPolicy {
        KeyPolicy { models: models.iter().map(|m| m.to_string()).collect(), ..KeyPolicy::new(name, Role::Developer) }
    }

    /// Whether this key's own patterns allow `model` (its role's are checked apart).
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|p| crate::config::glob_match(p, model))
    }

    /// Whether the principal may send model requests (an `auditor` may not).
    pub fn may_use_models(&self) -> bool {
        self.role.may_use_models()
    }

    /// Whether the principal may read the audit log, checkpoints and proofs
    /// (`admin` and `auditor`).
    pub fn may_read_log(&self) -> bool {
        self.role.may_read_log()
    }
}

/// Key file errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key list.
    #[error("{path} is not a gateway key file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The name is taken or unknown, or not a valid name.
    #[error("{0}")]
    Name(String),
    /// The database holding the keys cannot be used (or holds something
    /// that is not a key).
    #[error("{0}")]
    Database(String),
}

/// The key file.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    keys: Vec<KeyRecord>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl KeyStore {
    /// Opens the key file (an absent file is an empty store).
    pub fn open(path: &Path) -> Result<KeyStore, KeyError> {
        let keys = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| KeyError::Corrupt { path: path.into(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(KeyError::Io { path: path.into(), source }),
        };
        Ok(KeyStore { path: path.into(), keys })
    }

    /// Every key, revoked ones included.
    pub fn list(&self) -> &[KeyRecord] {
        &self.keys
    }

    /// Makes a key for the principal `name` and returns it: the only time
    /// it is seen. The rules are [`new_key`]'s.
    pub fn add(&mut self, name: &str, new: &NewKey) -> Result<String, KeyError> {
        let (key, record) = new_key(&self.keys, name, new)?;
        self.keys.push(record);
        self.save()?;
        Ok(key)
    }

    /// Revokes the principal `name`'s live keys, or only the one whose id
    /// ([`KeyRecord::id`]) starts with `key` (at least 6 hex digits), and
    /// says how many. The rules are [`revoke_in`]'s.
    pub fn revoke(&mut self, name: &str, key: Option<&str>) -> Result<usize, KeyError> {
        let n = revoke_in(&mut self.keys, name, key, now_ms())?.len();
        self.save()?;
        Ok(n)
    }

    /// The live keys, by digest, for the server.
    pub fn live(&self) -> HashMap<String, KeyPolicy> {
        live_of(&self.keys)
    }

    /// Writes the file atomically, 0600.
    fn save(&self) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(&self.keys).map_err(|e| io(e.into()))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// Checks a new key for the principal `name` against the keys already
/// stored (`records`: all of them, or at least all of `name`'s), and makes
/// it: the key (shown once) and the record to store. A principal that holds
/// live keys keeps its role and kind (a new key may not change them); a new
/// one is a `developer` and a person unless `new` says otherwise. Both key
/// stores (the file, and [`crate::keys_pg`]) apply these rules.
pub fn new_key(records: &[KeyRecord], name: &str, new: &NewKey) -> Result<(String, KeyRecord), KeyError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
        return Err(KeyError::Name(format!(
            "{name:?} is not a key name\nhint: use letters, digits and - _ . @ (at most 64)"
        )));
    }
    if new.models.iter().chain(&new.upstreams).any(String::is_empty) {
        return Err(KeyError::Name("a model pattern or upstream name is empty".into()));
    }
    new.limits.check().map_err(KeyError::Name)?;
    let held = records.iter().find(|k| k.name == name && k.revoked_ms.is_none());
    let role = match (held, new.role) {
        (Some(k), Some(r)) if k.role != r => {
            return Err(KeyError::Name(format!(
                "{name} holds live keys as {}, and a principal has one role\nhint: revoke them first (airlock gateway key revoke {name}), or leave out --role",
                k.role
            )));
        }
        (Some(k), _) => k.role,
        (None, r) => r.unwrap_or_default(),
    };
    let kind = match (held, new.kind) {
        (Some(k), Some(kind)) if k.kind != kind => {
            return Err(KeyError::Name(format!(
                "{name} holds live keys as a {}, and a principal is one kind\nhint: leave out --kind",
                k.kind
            )));
        }
        (Some(k), _) => k.kind,
        (None, kind) => kind.unwrap_or_default(),
    };
    let narrows = !new.models.is_empty() || !new.upstreams.is_empty();
    if !role.may_use_models() && narrows {
        return Err(KeyError::Name(format!("{name} is an {role}, and an {role} may not use models")));
    }
    let mut raw = [0u8; 32];
    getrandom(&mut raw).map_err(|source| KeyError::Io { path: "/dev/urandom".into(), source })?;
    let key = format!("{KEY_PREFIX}{}", hex::encode(raw));
    let record = KeyRecord {
        name: name.into(),
        sha256: digest(&key),
        created_ms: now_ms(),
        revoked_ms: None,
        role,
        kind,
        models: new.models.clone(),
        upstreams: new.upstreams.clone(),
        limits: new.limits,
    };
    Ok((key, record))
}

/// Marks revoked (at `now_ms`) the principal `name`'s live keys among
/// `records`, or only the one whose id ([`KeyRecord::id`]) starts with `key`
/// (at least 6 hex digits), and returns the digests of those it revoked (at
/// least one: none is an error).
pub fn revoke_in(
    records: &mut [KeyRecord],
    name: &str,
    key: Option<&str>,
    now_ms: i64,
) -> Result<Vec<String>, KeyError> {
    if let Some(id) = key
        && (id.len() < 6 || !id.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(KeyError::Name(format!(
            "{id:?} is not a key id\nhint: give at least 6 hex digits of the id `airlock gateway key list` shows"
        )));
    }
    let mut revoked = Vec::new();
    for k in records.iter_mut().filter(|k| k.name == name && k.revoked_ms.is_none()) {
        if key.is_none_or(|id| k.sha256.starts_with(&id.to_ascii_lowercase())) {
            k.revoked_ms = Some(now_ms);
            revoked.push(k.sha256.clone());
        }
    }
    if revoked.is_empty() {
        return Err(KeyError::Name(match key {
            None => format!("there is no live key named {name:?}"),
            Some(id) => format!("{name:?} holds no live key with id {id}"),
        }));
    }
    Ok(revoked)
}

/// The live keys among `records`, by digest, as the server sees them.
pub fn live_of(records: &[KeyRecord]) -> HashMap<String, KeyPolicy> {
    records
        .iter()
        .filter(|k| k.revoked_ms.is_none())
        .map(|k| {
            let policy = KeyPolicy {
                name: k.name.clone(),
                role: k.role,
                kind: k.kind,
                models: k.models.clone(),
                upstreams: k.upstreams.clone(),
                limits: k.limits,
            };
            (k.sha256.clone(), policy)
        })
        .collect()
}

/// Where the server finds its live keys when they can change under it (the
/// database that replicas share): what they are now, or an error, in which
/// case no key is honoured.
pub trait LiveKeys: Send + Sync + std::fmt::Debug {
    /// The live keys, by digest; an error when they cannot be known now.
    fn current(&self) -> Result<Arc<HashMap<String, KeyPolicy>>, KeyError>;
}

/// SHA-256 of a presented key, hex.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut f, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(m: &[&str]) -> NewKey {
        NewKey { models: m.iter().map(|m| m.to_string()).collect(), ..NewKey::default() }
    }

    #[test]
    fn keys_are_kept_hashed_and_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut store = KeyStore::open(&path).unwrap();
        let key = store.add("alice", &NewKey::default()).unwrap();
        assert!(key.starts_with("alk_") && key.len() == 68);
        assert!(store.add("bad name", &NewKey::default()).is_err());
        let ci = store.add("ci", &models(&["qwen*"])).unwrap();
        let policy = store.live().remove(&digest(&ci)).unwrap();
        assert!(policy.allows("qwen2.5-coder") && !policy.allows("claude-opus-4"));
        assert_eq!(policy.role, Role::Developer);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&key), "the key itself was stored");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = KeyStore::open(&path).unwrap();
        assert_eq!(again.live().get(&digest(&key)).map(|p| p.name.as_str()), Some("alice"));
        assert!(again.live()[&digest(&key)].allows("anything"));
        let mut again = again;
        assert_eq!(again.revoke("alice", None).unwrap(), 1);
        assert_eq!(KeyStore::open(&path).unwrap().live().len(), 1);
        assert!(again.revoke("alice", None).is_err());
        std::fs::write(&path, "nope").unwrap();
        assert!(KeyStore::open(&path).unwrap_err().to_string().contains("not a gateway key file"));
    }

    #[test]
    fn a_principal_holds_several_keys_with_one_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut store = KeyStore::open(&path).unwrap();
        let limits = Limits { requests_per_minute: Some(5), daily_tokens: Some(1000), ..Limits::default() };
        let first = store
            .add("build", &NewKey { role: Some(Role::Ci), kind: Some(PrincipalKind::Ci), limits, ..NewKey::default() })
            .unwrap();
        // Rotation: a second key, same role and kind without saying so.
        let second = store.add("build", &NewKey::default()).unwrap();
        let live = store.live();
        assert_eq!((live[&digest(&second)].role, live[&digest(&second)].kind), (Role::Ci, PrincipalKind::Ci));
        assert_eq!(live[&digest(&first)].limits, limits);
        let err = store.add("build", &NewKey { role: Some(Role::Admin), ..NewKey::default() }).unwrap_err();
        assert!(err.to_string().contains("holds live keys as ci"), "{err}");
        // Revoke the old one only, by id.
        let id = store.list().iter().find(|k| k.sha256 == digest(&first)).unwrap().id().to_string();
        assert_eq!(store.revoke("build", Some(&id[..8])).unwrap(), 1);
        let live = KeyStore::open(&path).unwrap().live();
        assert!(!live.contains_key(&digest(&first)) && live.contains_key(&digest(&second)));
        assert!(store.revoke("build", Some("zz")).unwrap_err().to_string().contains("not a key id"));
        let auditor = NewKey { role: Some(Role::Auditor), ..models(&["gpt-*"]) };
        assert!(store.add("eve", &auditor).unwrap_err().to_string().contains("may not use models"));
        let zero = NewKey { limits: Limits { daily_tokens: Some(0), ..Limits::default() }, ..NewKey::default() };
        assert!(store.add("zed", &zero).unwrap_err().to_string().contains("daily_tokens must be at least 1"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"role\": \"ci\"") && text.contains("\"requests_per_minute\": 5"), "{text}");
    }

    /// A key file written before roles existed.
    #[test]
    fn old_key_files_are_still_read_as_developers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let key = "alk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let old = serde_json::json!([
            {"name": "alice", "sha256": digest(key), "created_ms": 1_700_000_000_000_i64, "revoked_ms": null},
            {"name": "ci", "sha256": digest("other"), "created_ms": 1_700_000_000_000_i64, "revoked_ms": null,
             "models": ["qwen*"]},
            {"name": "gone", "sha256": digest("gone"), "created_ms": 1, "revoked_ms": 2}
        ]);
        std::fs::write(&path, old.to_string()).unwrap();
        let mut store = KeyStore::open(&path).unwrap();
        let live = store.live();
        assert_eq!(live.len(), 2);
        assert_eq!(live[&digest(key)], KeyPolicy::developer("alice", &[]));
        assert_eq!(live[&digest("other")], KeyPolicy::developer("ci", &["qwen*"]));
        // Written again with the new fields, and read back the same.
        store.add("bob", &NewKey::default()).unwrap();
        assert_eq!(KeyStore::open(&path).unwrap().live()[&digest(key)], KeyPolicy::developer("alice", &[]));
    }
}
