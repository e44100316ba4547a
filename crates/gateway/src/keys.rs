//! Team-gateway API keys. A key is shown once when it is made; the gateway
//! keeps only its SHA-256, with a name, in a 0600 JSON file.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The prefix of every key, so that secret scanners recognise them.
pub const KEY_PREFIX: &str = "alk_";

/// One key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Who it is for (unique).
    pub name: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// When it was made (ms since the epoch).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// The models it may ask for (patterns, `*` any run); empty: every configured model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

/// What a live key may do, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The key's name (the principal in the audit log).
    pub name: String,
    /// Model patterns it may use; empty: all.
    pub models: Vec<String>,
}

impl KeyPolicy {
    /// Whether this key may ask for `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|p| crate::config::glob_match(p, model))
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
}

/// The key file.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    keys: Vec<KeyRecord>,
}

fn now_ms() -> i64 {
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

    /// Makes a key for `name`, limited to `models` (patterns; empty: all),
    /// and returns it: the only time it is seen.
    pub fn add(&mut self, name: &str, models: &[String]) -> Result<String, KeyError> {
        if models.iter().any(String::is_empty) {
            return Err(KeyError::Name("a model pattern is empty".into()));
        }
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(KeyError::Name(format!(
                "{name:?} is not a key name\nhint: use letters, digits and - _ . @ (at most 64)"
            )));
        }
        if self.keys.iter().any(|k| k.name == name && k.revoked_ms.is_none()) {
            return Err(KeyError::Name(format!("a key named {name:?} exists\nhint: revoke it first")));
        }
        let mut raw = [0u8; 32];
        getrandom(&mut raw).map_err(|source| KeyError::Io { path: self.path.clone(), source })?;
        let key = format!("{KEY_PREFIX}{}", hex::encode(raw));
        self.keys.push(KeyRecord {
            name: name.into(),
            sha256: digest(&key),
            created_ms: now_ms(),
            revoked_ms: None,
            models: models.to_vec(),
        });
        self.save()?;
        Ok(key)
    }

    /// Revokes the live key named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), KeyError> {
        let Some(k) = self.keys.iter_mut().find(|k| k.name == name && k.revoked_ms.is_none()) else {
            return Err(KeyError::Name(format!("there is no live key named {name:?}")));
        };
        k.revoked_ms = Some(now_ms());
        self.save()
    }

    /// The live keys, by digest, for the server.
    pub fn live(&self) -> HashMap<String, KeyPolicy> {
        self.keys
            .iter()
            .filter(|k| k.revoked_ms.is_none())
            .map(|k| (k.sha256.clone(), KeyPolicy { name: k.name.clone(), models: k.models.clone() }))
            .collect()
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

    #[test]
    fn keys_are_kept_hashed_and_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut store = KeyStore::open(&path).unwrap();
        let key = store.add("alice", &[]).unwrap();
        assert!(key.starts_with("alk_") && key.len() == 68);
        assert!(store.add("alice", &[]).unwrap_err().to_string().contains("exists"));
        assert!(store.add("bad name", &[]).is_err());
        let ci = store.add("ci", &["qwen*".to_string()]).unwrap();
        let policy = store.live().remove(&digest(&ci)).unwrap();
        assert!(policy.allows("qwen2.5-coder") && !policy.allows("claude-opus-4"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&key), "the key itself was stored");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = KeyStore::open(&path).unwrap();
        assert_eq!(again.live().get(&digest(&key)).map(|p| p.name.as_str()), Some("alice"));
        assert!(again.live()[&digest(&key)].allows("anything"));
        let mut again = again;
        again.revoke("alice").unwrap();
        assert_eq!(KeyStore::open(&path).unwrap().live().len(), 1);
        assert!(again.revoke("alice").is_err());
        std::fs::write(&path, "nope").unwrap();
        assert!(KeyStore::open(&path).unwrap_err().to_string().contains("not a gateway key file"));
    }
}
