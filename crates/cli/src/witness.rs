//! `airlock witness …`: a C2SP tlog-witness that a company runs on another
//! machine, and the checks `airlock audit verify` makes with witnesses'
//! cosignatures, checkpoints kept elsewhere and the developer's "latest
//! seen" file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use airlock_audit::checkpoint::Checkpoint;
use airlock_audit::cosignature::{CosignatureVerifier, load_or_create_cosigner, verify_lines};
use airlock_audit::latest::LatestCheckpoint;
use airlock_audit::merkle::{self, Hash, MerkleError, NodeSource};
use airlock_audit::note::Verifier;
use airlock_audit::store::Store;
use airlock_witness::server::{Witness, serve};
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;

/// Where a witness listens unless told.
const DEFAULT_LISTEN: &str = "127.0.0.1:7380";

#[derive(clap::Args)]
pub struct WitnessArgs {
    /// The witness's folder: its key (witness-key) and what it cosigned (witness.db)
    /// (default: $XDG_DATA_HOME/airlock/witness).
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: WitnessCommand,
}

#[derive(Subcommand)]
enum WitnessCommand {
    /// Print the witness's cosignature verifier key, making the key on first use.
    ///
    /// Give it to gateways (`[[witness]] key`) and verifiers (`airlock audit verify --witness`).
    Key {
        /// The witness's name on first use (conventionally a schema-less URL; default witness.HOST).
        #[arg(long)]
        name: Option<String>,
    },
    /// Serve the C2SP tlog-witness API: POST /add-checkpoint, and GET /checkpoint/ORIGIN
    /// (the latest checkpoint it cosigned for a log, origin percent-escaped).
    Serve {
        /// Where to listen, HOST:PORT.
        #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// A log to witness: its origin and its verifier key (`airlock audit key`), or a
        /// file holding the key; repeatable.
        #[arg(long = "log", value_name = "ORIGIN=VKEY", required = true)]
        logs: Vec<String>,
        /// The witness's name on first use (default witness.HOST).
        #[arg(long)]
        name: Option<String>,
    },
}

fn witness_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    match dir {
        Some(d) => Ok(d),
        None => Ok(crate::audit::paths(None)?.dir.join("witness")),
    }
}

fn default_name() -> String {
    format!("witness.{}", crate::audit::host()).replace(|c: char| c == '+' || c.is_whitespace(), "-")
}

pub fn run(args: WitnessArgs) -> Result<ExitCode> {
    let dir = witness_dir(args.dir)?;
    airlock_audit::store::private_folder(&dir)?;
    let key_file = dir.join("witness-key");
    match args.command {
        WitnessCommand::Key { name } => {
            let signer = load_or_create_cosigner(&key_file, &name.unwrap_or_else(default_name))?;
            writeln!(std::io::stdout().lock(), "{}", signer.verifier().to_key_string())?;
        }
        WitnessCommand::Serve { listen, logs, name } => {
            let logs = logs.iter().map(|l| parse_log(l)).collect::<Result<Vec<_>>>()?;
            let signer = load_or_create_cosigner(&key_file, &name.unwrap_or_else(default_name))?;
            init_logs();
            let vkey = signer.verifier().to_key_string();
            let witness = Arc::new(Witness::open(&dir.join("witness.db"), signer, logs.clone())?);
            let runtime =
                tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("the witness cannot listen on {listen}"))?;
                let origins: Vec<&str> = logs.iter().map(|(o, _)| o.as_str()).collect();
                tracing::info!("witness {vkey} listening on {listen} for {}", origins.join(", "));
                serve(listener, witness, shutdown_signal()).await.context("the witness stopped")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ORIGIN=VKEY`, the key given as text or as a file holding it.
fn parse_log(arg: &str) -> Result<(String, Verifier)> {
    let (origin, key) = arg.split_once('=').ok_or_else(|| {
        anyhow!("--log {arg:?}: write ORIGIN=VKEY\nhint: the origin and key of a log are printed by `airlock audit key` on its machine")
    })?;
    if origin.is_empty() || origin.contains('\n') {
        bail!("--log {arg:?}: the origin is empty");
    }
    let verifier = key_text_or_file(key, Verifier::from_key_string)
        .with_context(|| format!("--log {origin}=...: not a log verifier key, nor a file holding one"))?;
    Ok((origin.to_owned(), verifier))
}

/// A key given as text, or as a file holding it.
fn key_text_or_file<T, E: std::error::Error + Send + Sync + 'static>(
    value: &str,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    match parse(value) {
        Ok(key) => Ok(key),
        Err(err) if !Path::new(value).is_file() => Err(err.into()),
        Err(_) => {
            let text = std::fs::read_to_string(value).with_context(|| format!("cannot read {value}"))?;
            Ok(parse(text.trim())?)
        }
    }
}

/// Witnesses' cosignature verifier keys from `--witness` (text or files).
pub(crate) fn witness_keys(values: &[String]) -> Result<Vec<CosignatureVerifier>> {
    values
        .iter()
        .map(|v| key_text_or_file(v, CosignatureVerifier::from_key_string).with_context(|| format!("--witness {v}")))
        .collect()
}

/// The `--cosignatures` required of `witnesses`.
pub(crate) fn required(witnesses: &[CosignatureVerifier], cosignatures: Option<usize>) -> Result<usize> {
    match (witnesses.len(), cosignatures) {
        (0, Some(_)) => bail!("--cosignatures needs the witnesses' keys\nhint: add --witness VKEY for each"),
        (0, None) => Ok(0),
        (_, None) => Ok(1),
        (_, Some(0)) => bail!("--cosignatures 0 would check nothing\nhint: leave out --witness instead"),
        (n, Some(k)) if k > n => bail!("--cosignatures {k} but only {n} witness keys are given"),
        (_, Some(k)) => Ok(k),
    }
}

/// Merkle nodes read from a store.
struct Nodes<'a, S: Store + ?Sized>(&'a S);

impl<S: Store + ?Sized> NodeSource for Nodes<'_, S> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        match self.0.node(level, index) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(MerkleError::MissingNode { level, index }),
            Err(e) => Err(MerkleError::NodeRead { level, index, source: Box::new(e) }),
        }
    }
}

/// Whether the log in `store` extends `checkpoint` (which `what` names):
/// `Ok(None)` when it does, `Ok(Some(problem))` naming both sizes when it
/// was rolled back or forked.
pub(crate) fn extends<S: Store + ?Sized>(store: &S, checkpoint: &Checkpoint, what: &str) -> Result<Option<String>> {
    let held = store.size()?;
    if checkpoint.size > held {
        return Ok(Some(format!(
            "the log was rolled back: {what} signs {} entries, the log holds only {held}",
            checkpoint.size
        )));
    }
    let root = merkle::root_at(checkpoint.size, &Nodes(store))?;
    if root != checkpoint.root {
        return Ok(Some(format!(
            "the log was rolled back or forked: {what} signs {} entries, the log holds {held} whose first {} are not \
             the ones signed (another tree of size {})",
            checkpoint.size, checkpoint.size, checkpoint.size
        )));
    }
    Ok(None)
}

/// Checks the log against the signed checkpoints given with `--checkpoint`
/// and against the one `--remember` kept: each must be extended. Returns
/// the first problem, named.
pub(crate) fn check_kept_elsewhere<S: Store + ?Sized>(
    store: &S,
    verifier: &Verifier,
    origin: &str,
    files: &[(PathBuf, String)],
    remember: bool,
) -> Result<Option<String>> {
    let mut given: Vec<(String, &str)> =
        files.iter().map(|(path, note)| (format!("the checkpoint in {}", path.display()), note.as_str())).collect();
    let seen = if remember { LatestCheckpoint::at(seen_path(origin)?).read()? } else { None };
    if let Some(note) = &seen {
        given.push((format!("the checkpoint this machine saw last ({})", seen_path(origin)?.display()), note));
    }
    for (what, note) in given {
        let checkpoint = Checkpoint::open(note, std::slice::from_ref(verifier), origin)
            .map_err(|e| anyhow!("{what} does not open with the log's key: {e}"))?;
        if let Some(problem) = extends(store, &checkpoint, &what)? {
            return Ok(Some(problem));
        }
    }
    Ok(None)
}

/// The checkpoint that carries at least `required` cosignatures of
/// `witnesses`, the largest such: among the stored checkpoints (with the
/// cosignatures kept beside them) and those given in files.
pub(crate) struct Witnessed {
    /// Its size.
    pub(crate) size: u64,
    /// The witnesses that cosigned it.
    pub(crate) by: Vec<String>,
}

/// Finds the largest checkpoint with `required` cosignatures of `witnesses`;
/// `Err` when none has them or a cosignature by a named key does not verify.
pub(crate) fn witnessed<S: Store + ?Sized>(
    store: &S,
    verifier: &Verifier,
    origin: &str,
    witnesses: &[CosignatureVerifier],
    required: usize,
    files: &[(PathBuf, String)],
) -> Result<std::result::Result<Witnessed, String>> {
    let mut candidates: Vec<(u64, String, Vec<String>)> = Vec::new();
    for (size, note) in store.checkpoints()? {
        let lines = store.cosignatures(size)?.into_iter().map(|(_, line)| line).collect();
        candidates.push((size, note, lines));
    }
    for (_, note) in files {
        candidates.push((0, note.clone(), Vec::new()));
    }
    let mut best: Option<Witnessed> = None;
    let mut latest = (0, 0);
    for (_, note, kept) in candidates {
        let Ok(checkpoint) = Checkpoint::open(&note, std::slice::from_ref(verifier), origin) else { continue };
        let (text, lines) = airlock_audit::cosignature::split_note(&note)?;
        let mut all: Vec<&str> = lines;
        all.extend(kept.iter().map(|l| l.trim_end_matches('\n')));
        let by = match verify_lines(text, &all, witnesses) {
            Ok(found) => found.into_iter().map(|w| w.witness).collect::<Vec<_>>(),
            Err(e) => return Ok(Err(format!("the checkpoint of size {}: {e}", checkpoint.size))),
        };
        if checkpoint.size >= latest.0 {
            latest = (checkpoint.size, by.len());
        }
        if by.len() >= required && best.as_ref().is_none_or(|b| b.size < checkpoint.size) {
            best = Some(Witnessed { size: checkpoint.size, by });
        }
    }
    Ok(best.ok_or_else(|| {
        format!(
            "no checkpoint carries {required} cosignature(s) by the witnesses named (the latest, of size {}, has {})",
            latest.0, latest.1
        )
    }))
}

/// `$XDG_STATE_HOME/airlock/seen/<origin, escaped>`: the newest checkpoint of
/// a log this machine verified.
pub(crate) fn seen_path(origin: &str) -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?).join(".local/state"),
    };
    Ok(base.join("airlock/seen").join(airlock_witness::server::percent_encode(origin)))
}

/// Keeps `note` (of `size`) as the newest seen checkpoint of `origin`, unless a larger one is kept.
pub(crate) fn remember(origin: &str, note: &str, size: u64) -> Result<PathBuf> {
    let path = seen_path(origin)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        airlock_audit::store::private_folder(dir)?;
    }
    LatestCheckpoint::at(&path).write(note, size)?;
    Ok(path)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else { return std::future::pending().await };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("witness stopping");
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosignature_counts_are_checked() {
        let key = airlock_audit::cosignature::CosignatureSigner::generate("w").unwrap().verifier();
        assert_eq!(required(&[], None).unwrap(), 0);
        assert_eq!(required(std::slice::from_ref(&key), None).unwrap(), 1);
        assert!(required(&[], Some(1)).is_err());
        assert!(required(std::slice::from_ref(&key), Some(2)).is_err());
        assert!(required(std::slice::from_ref(&key), Some(0)).is_err());
    }

    #[test]
    fn log_arguments_name_origin_and_key() {
        let signer = airlock_audit::note::Signer::generate("a.test/log").unwrap();
        let (origin, key) = parse_log(&format!("a.test/log={}", signer.verifier().to_key_string())).unwrap();
        assert_eq!((origin.as_str(), key), ("a.test/log", signer.verifier()));
        assert!(parse_log("a.test/log").unwrap_err().to_string().contains("ORIGIN=VKEY"));
        assert!(parse_log("a.test/log=nope").is_err());
    }
}
