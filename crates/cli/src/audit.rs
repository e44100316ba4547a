//! `airlock audit …`: the tamper-evident log from the command line.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_audit::event::Event;
use airlock_audit::latest::LatestCheckpoint;
use airlock_audit::log::{AuditLog, CheckpointEvery, Tamper, verify_kept};
use airlock_audit::note::{Signer, Verifier, load_or_create_signer};
use airlock_audit::store::{Durability, Filter, SqliteStore, Store, private_folder};
use airlock_policy::exit;
use airlock_redact::terminal::sanitize;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// The folder holding the log and its keys (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// The log in PostgreSQL (`postgresql://…`, also $AIRLOCK_DATABASE_URL), as
    /// a team gateway's replicas share it; the keys stay in --dir.
    #[arg(long, value_name = "URL", global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the verifier key (C2SP signed-note format), creating the signing key on first use.
    Key,
    /// Print the log's origin: the name its checkpoints carry, which a witness is told with its key.
    Origin,
    /// Append one event from outside (hooks, CI), read as JSON from standard input.
    ///
    /// The entry is marked as external (reports never count it as the
    /// session's own), a finished session is refused, and a checkpoint is
    /// signed before this returns.
    Append {
        /// The session to file it under.
        #[arg(long, default_value = "external")]
        session: String,
    },
    /// Sign a checkpoint of the log as it is now.
    Checkpoint,
    /// Verify every entry, payload and checkpoint; exit 1 and name the first problem.
    ///
    /// Also checks the database against the checkpoint kept outside it
    /// (audit-latest-checkpoint), which catches a database rolled back or
    /// replaced by an older copy. Entries after the latest checkpoint are
    /// reported as not yet signed (a warning; an error with --require-signed).
    Verify {
        /// A verifier key file (default: the key of this log).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// A signed checkpoint kept elsewhere, to catch rollback and forgery (repeatable).
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Fail (exit 1) when entries after the latest checkpoint are not signed.
        #[arg(long)]
        require_signed: bool,
        /// A witness's cosignature verifier key (NAME+KEYID+BASE64, from `airlock witness key`),
        /// or a file holding it; repeatable. Some checkpoint must carry --cosignatures of them.
        #[arg(long = "witness", value_name = "VKEY")]
        witnesses: Vec<String>,
        /// How many of the --witness keys must have cosigned a checkpoint (default: 1 when any is named).
        #[arg(long, value_name = "N")]
        cosignatures: Option<usize>,
        /// Keep the newest verified checkpoint in $XDG_STATE_HOME/airlock/seen/ and fail when a
        /// later verification finds a log that does not extend it (rolled back or forked).
        #[arg(long)]
        remember: bool,
    },
    /// List entries: a table, or JSON Lines with --json. Reads; checks nothing (see `verify`).
    Show {
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
        /// Only this kind (session_start, session_end, model_request, model_response,
        /// tool_call, command, file_change, policy_violation, blocked_egress, external).
        #[arg(long)]
        kind: Option<String>,
        /// Recorded at or after: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (UTC), or an age like 30m, 2h, 7d.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Recorded before (same forms as --since).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only the newest N that match.
        #[arg(long, value_name = "N")]
        last: Option<u64>,
        /// One JSON object per line, with the whole payload.
        #[arg(long)]
        json: bool,
    },
    /// Write entries (JSON Lines), checkpoints and the C2SP tlog-tiles layout into a folder.
    Export {
        /// The folder (created; must be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// An inclusion proof for entry N, against the latest checkpoint (or --size).
    Prove {
        /// The entry.
        index: u64,
        /// The tree size to prove against.
        #[arg(long)]
        size: Option<u64>,
    },
    /// A consistency proof between tree sizes A and B.
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// Delete payloads recorded before a date (YYYY-MM-DD, UTC); leaves and proofs stay.
    ///
    /// The prune is signed first (a checkpoint states the entries whose payloads
    /// may be missing), so `verify` tells a pruned payload from a deleted one.
    Prune {
        /// The date.
        #[arg(long, value_name = "DATE")]
        before: String,
    },
}

pub(crate) struct Paths {
    pub(crate) db: PathBuf,
    pub(crate) signer: PathBuf,
    pub(crate) mac_key: PathBuf,
    /// The latest signed checkpoint, kept outside the database.
    pub(crate) latest: PathBuf,
    /// The folder itself.
    pub(crate) dir: PathBuf,
    /// The PostgreSQL database the log lives in, instead of `db`.
    pub(crate) database: Option<String>,
}

pub(crate) fn paths(dir: Option<PathBuf>) -> Result<Paths> {
    let dir = match dir {
        Some(d) => d,
        None => match std::env::var_os("XDG_DATA_HOME") {
            Some(x) if !x.is_empty() => PathBuf::from(x).join("airlock"),
            _ => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?)
                .join(".local/share/airlock"),
        },
    };
    Ok(Paths {
        db: dir.join("audit.db"),
        signer: dir.join("audit-signing-key"),
        mac_key: dir.join("audit-mac-key"),
        latest: dir.join("audit-latest-checkpoint"),
        dir,
        database: None,
    })
}

pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into())
}

pub(crate) fn origin() -> String {
    format!("airlock.local/audit/{}", host())
}

/// The log's origin line: the host's for a log in SQLite; for one in
/// PostgreSQL, the database's name (`airlock.local/audit/pg/NAME`), the same
/// on every replica that shares it.
pub(crate) fn origin_of(p: &Paths) -> Result<String> {
    let Some(url) = &p.database else { return Ok(origin()) };
    let target = airlock_audit::postgres::parse_url(url)?;
    let name = target.config.get_dbname().or(target.config.get_user()).unwrap_or("postgres");
    Ok(format!("airlock.local/audit/pg/{name}"))
}

/// The store `p` names: PostgreSQL when a database URL is given, else
/// SQLite in the folder.
fn connect(p: &Paths) -> Result<Box<dyn Store + Send>> {
    match &p.database {
        Some(url) => Ok(Box::new(airlock_audit::postgres::PgStore::connect(url)?)),
        None => Ok(Box::new(SqliteStore::open(&p.db, Durability::Durable)?)),
    }
}

fn key_name() -> String {
    format!("airlock-{}", host()).replace(|c: char| c == '+' || c.is_whitespace(), "-")
}

/// The 32-byte key for the payloads' keyed hashes, 0600 beside the signing key.
fn mac_key(path: &Path) -> Result<[u8; 32]> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Ok(bytes) = std::fs::read(path) {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o})\nhint: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        return bytes.try_into().map_err(|_| anyhow!("{} is not a 32-byte key", path.display()));
    }
    let mut key = [0u8; 32];
    getrandom(&mut key)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(&key)?;
    f.sync_all()?;
    Ok(key)
}

pub(crate) fn getrandom(buf: &mut [u8]) -> Result<()> {
    // SAFETY: getrandom fills the buffer it is given.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        bail!("getrandom failed: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Opens the log for appending: its folder private (0700) first, so the
/// keys, the database and the kept checkpoint are created inside it; the
/// database checked against the checkpoint kept outside it, and every
/// checkpoint signed from now on kept there too.
pub(crate) fn open_log(p: &Paths) -> Result<AuditLog<SqliteStore>> {
    private_folder(&p.dir)?;
    let signer = load_or_create_signer(&p.signer, &key_name())?;
    let key = mac_key(&p.mac_key)?;
    let store = SqliteStore::open(&p.db, Durability::Durable)?;
    let log = AuditLog::open(store, signer, &origin(), key, CheckpointEvery::default())?;
    Ok(log.keep_latest(LatestCheckpoint::at(&p.latest))?)
}

/// [`open_log`] in the store `p` names: PostgreSQL when `p.database` is set
/// (`--database`, `[store] url`), else SQLite in the folder. The keys and
/// the kept checkpoint stay in the folder: each replica has a copy of the
/// same key files, and keeps its own latest checkpoint.
pub(crate) fn open_chosen_log(p: &Paths) -> Result<AuditLog<Box<dyn Store + Send>>> {
    private_folder(&p.dir)?;
    let signer = load_or_create_signer(&p.signer, &key_name())?;
    let key = mac_key(&p.mac_key)?;
    let store = connect(p)?;
    let log = AuditLog::open(store, signer, &origin_of(p)?, key, CheckpointEvery::default())?;
    Ok(log.keep_latest(LatestCheckpoint::at(&p.latest))?)
}

/// The checkpoint kept outside the database, if one was kept yet.
pub(crate) fn kept_checkpoint(p: &Paths) -> Result<Option<String>> {
    Ok(LatestCheckpoint::at(&p.latest).read()?)
}

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    let mut p = paths(args.dir)?;
    p.database = args.database.or_else(|| std::env::var("AIRLOCK_DATABASE_URL").ok().filter(|u| !u.is_empty()));
    // Fallible writes: a reader gone (`| head`) ends the command quietly in main.
    let mut out = std::io::stdout().lock();
    match args.command {
        AuditCommand::Key => {
            private_folder(&p.dir)?;
            let signer = load_or_create_signer(&p.signer, &key_name())?;
            writeln!(out, "{}", signer.verifier().to_key_string())?;
        }
        AuditCommand::Origin => writeln!(out, "{}", origin_of(&p)?)?,
        AuditCommand::Append { session } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let event: Event = serde_json::from_str(&input).context("the event on standard input")?;
            let mut log = open_chosen_log(&p)?;
            let index = log.append_external(&session, std::slice::from_ref(&event))?;
            writeln!(out, "{index}")?;
        }
        AuditCommand::Checkpoint => {
            let mut log = open_chosen_log(&p)?;
            write!(out, "{}", log.checkpoint()?)?;
        }
        AuditCommand::Verify { key, checkpoints, require_signed, witnesses, cosignatures, remember } => {
            let verifier = match key {
                Some(file) => Verifier::from_key_string(
                    std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?.trim(),
                )?,
                None => Signer::from_key_string(
                    std::fs::read_to_string(&p.signer)
                        .with_context(|| format!("cannot read {}", p.signer.display()))?
                        .trim(),
                )?
                .verifier(),
            };
            let retained = checkpoints
                .iter()
                .map(|f| std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display())))
                .collect::<Result<Vec<_>>>()?;
            let mac = std::fs::read(&p.mac_key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            let store = open_store(&p)?;
            let kept = kept_checkpoint(&p)?;
            // Checkpoints held elsewhere (a witness's, the one this machine saw last) must be extended.
            let origin_name = origin_of(&p)?;
            let given: Vec<(PathBuf, String)> = checkpoints.iter().cloned().zip(retained.iter().cloned()).collect();
            let witness_keys = crate::witness::witness_keys(&witnesses)?;
            let quorum = crate::witness::required(&witness_keys, cosignatures)?;
            if let Some(problem) =
                crate::witness::check_kept_elsewhere(&store, &verifier, &origin_name, &given, remember)?
            {
                writeln!(out, "TAMPERED: {}", sanitize(&problem))?;
                return Ok(exit::exit_code(exit::FOUND));
            }
            match verify_kept(&store, &verifier, &origin_of(&p)?, mac.as_ref(), &retained, kept.as_deref())? {
                Ok(v) => {
                    writeln!(
                        out,
                        "ok: {} entries, {} checkpoints, {} payloads checked; {} entries not yet in a checkpoint",
                        v.entries, v.checkpoints, v.payloads, v.unsigned_tail
                    )?;
                    if quorum > 0 {
                        match crate::witness::witnessed(&store, &verifier, &origin_name, &witness_keys, quorum, &given)?
                        {
                            Ok(w) => writeln!(
                                out,
                                "witnessed: the checkpoint of size {} is cosigned by {} ({} required); {} entries after it",
                                w.size,
                                sanitize(&w.by.join(", ")),
                                quorum,
                                v.entries.saturating_sub(w.size)
                            )?,
                            Err(problem) => {
                                writeln!(out, "NOT WITNESSED: {}", sanitize(&problem))?;
                                return Ok(exit::exit_code(exit::FOUND));
                            }
                        }
                    }
                    if remember && let Some((size, note)) = store.latest_checkpoint()? {
                        let path = crate::witness::remember(&origin_name, &note, size)?;
                        writeln!(out, "remembered: the checkpoint of size {size} in {}", path.display())?;
                    }
                    if v.pruned_below > 0 {
                        writeln!(out, "pruned (signed): the payloads of entries 0 to {}", v.pruned_below - 1)?;
                    }
                    if kept.is_none() && v.checkpoints > 0 {
                        eprintln!(
                            "warning: no checkpoint is kept outside the database yet ({}), so a rollback of the \
                             database alone could not be seen\nhint: it is written at the next checkpoint: run \
                             `airlock audit checkpoint`",
                            p.latest.display()
                        );
                    }
                    if v.unsigned_tail > 0 {
                        eprintln!(
                            "warning: the newest {} entries are after the latest checkpoint: not signed yet, so \
                             their removal could not be seen (a running session or gateway signs within a second)\n\
                             hint: run `airlock audit checkpoint` to sign them",
                            v.unsigned_tail
                        );
                        if require_signed {
                            return Ok(exit::exit_code(exit::FOUND));
                        }
                    }
                }
                Err(tamper) => {
                    // What was found names sessions and paths from the log.
                    writeln!(out, "TAMPERED: {}", sanitize(&tamper.to_string()))?;
                    if let Some(hint) = tamper_hint(&tamper, &p) {
                        writeln!(out, "{}", sanitize(&hint))?;
                    }
                    return Ok(exit::exit_code(exit::FOUND));
                }
            }
        }
        AuditCommand::Show { session, kind, since, until, last, json } => {
            let now = now_ms();
            let filter = Filter {
                session,
                kind,
                since_ms: since.as_deref().map(|t| time_ms(t, now)).transpose()?,
                until_ms: until.as_deref().map(|t| time_ms(t, now)).transpose()?,
                last,
            };
            let store = open_store(&p)?;
            show(&store, &filter, json)?;
        }
        AuditCommand::Export { out } => {
            let store = open_store(&p)?;
            let done = airlock_audit::export::export(&store, &out)?;
            writeln!(
                std::io::stdout().lock(),
                "exported {} entries, {} checkpoints and {} tiles to {}",
                done.size,
                done.checkpoints,
                done.tiles,
                out.display()
            )?;
            if done.unsigned_tail > 0 {
                eprintln!(
                    "note: {} newer entries are not in a checkpoint yet and were left out\n\
                     hint: run `airlock audit checkpoint` and export again to include them",
                    done.unsigned_tail
                );
            }
        }
        AuditCommand::Prove { index, size } => {
            let log = open_chosen_log(&p)?;
            let signed = signed_roots(log.store())?;
            let size = match size {
                Some(s) => s,
                None => signed.last().map(|(s, _)| *s).unwrap_or(log.size()),
            };
            let proof = log.prove(index, size)?;
            // Never hand out a proof that does not check: the stored nodes it
            // comes from are not covered by the entries' hashes.
            if let Some((_, root)) = signed.iter().find(|(s, _)| *s == size) {
                let mut leaf = None;
                log.store().scan(index, &mut |e| {
                    leaf = Some(airlock_audit::merkle::leaf_hash(e.entry));
                    false
                })?;
                let leaf = leaf.ok_or_else(|| anyhow!("entry {index} is not in the log"))?;
                airlock_audit::merkle::verify_inclusion(index, size, &leaf, &proof, root).map_err(|e| {
                    anyhow!("the stored tree does not prove entry {index} in the tree signed at size {size}: {e}\nhint: run `airlock audit verify`")
                })?;
            }
            let hashes: Vec<String> = proof.iter().map(hex::encode).collect();
            writeln!(out, "{}", serde_json::json!({"index": index, "size": size, "proof": hashes}))?;
        }
        AuditCommand::Consistency { old, new } => {
            let log = open_chosen_log(&p)?;
            let proof = log.consistency(old, new)?;
            let signed = signed_roots(log.store())?;
            let root = |size| signed.iter().find(|(s, _)| *s == size).map(|(_, r)| *r);
            if let (Some(old_root), Some(new_root)) = (root(old), root(new)) {
                airlock_audit::merkle::verify_consistency(old, new, &old_root, &new_root, &proof).map_err(|e| {
                    anyhow!("the stored tree does not prove size {old} consistent with {new}: {e}\nhint: run `airlock audit verify`")
                })?;
            }
            let hashes: Vec<String> = proof.iter().map(hex::encode).collect();
            writeln!(out, "{}", serde_json::json!({"old": old, "new": new, "proof": hashes}))?;
        }
        AuditCommand::Prune { before } => {
            let ms = date_ms(&before)?;
            if p.database.is_none() && !p.db.exists() {
                bail!("there is no audit log at {}\nhint: pass --dir", p.db.display());
            }
            let mut log = open_chosen_log(&p)?;
            let pruned = log.prune(ms)?;
            writeln!(
                out,
                "pruned {} payloads recorded before {before} (signed: entries below {} may have none); every entry \
                 and proof stays",
                pruned.payloads, pruned.below
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What to do about a problem `verify` found, where a fix is known.
fn tamper_hint(tamper: &Tamper, p: &Paths) -> Option<String> {
    match tamper {
        Tamper::RolledBack { .. } => Some(format!(
            "the checkpoint kept outside the database is {}\nhint: restore the newer database; a rolled-back copy \
             cannot be appended to",
            p.latest.display()
        )),
        Tamper::PayloadMissing { .. } => Some(
            "hint: a payload deleted outside `airlock audit prune` is gone; a log pruned by an airlock older than \
             this one has no signed watermark: if that is the cause, run `airlock audit prune --before DATE` again \
             to sign one"
                .into(),
        ),
        _ => None,
    }
}

/// The roots the stored checkpoints sign, by size (signatures are `verify`'s job).
fn signed_roots(store: &dyn Store) -> Result<Vec<(u64, airlock_audit::merkle::Hash)>> {
    store
        .checkpoints()?
        .into_iter()
        .map(|(size, note)| {
            let text = note.split_once("\n\n").map_or(note.as_str(), |(t, _)| t);
            let cp = airlock_audit::checkpoint::Checkpoint::parse(&format!("{text}\n"))
                .with_context(|| format!("the checkpoint stored for size {size}"))?;
            Ok((size, cp.root))
        })
        .collect()
}

/// Opens the log's database for reading, refusing to create one; a folder
/// or database left readable by others (by an older airlock) is narrowed.
pub(crate) fn open_store(p: &Paths) -> Result<Box<dyn Store + Send>> {
    if p.database.is_none() && !p.db.exists() {
        bail!("there is no audit log at {}\nhint: pass --dir, or append to it first", p.db.display());
    }
    private_folder(&p.dir)?;
    connect(p)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Prints entries as a table or as JSON Lines.
fn show(store: &dyn Store, filter: &Filter, json: bool) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failure = None;
    if !json {
        writeln!(out, "{:>7}  {:<20}  {:<16}  {:<16}  DETAIL", "INDEX", "TIME (UTC)", "SESSION", "KIND")?;
    }
    store.list(filter, &mut |e| {
        let payload = e.payload.map(serde_json::from_slice::<serde_json::Value>);
        let written = if json {
            let payload = match payload {
                Some(Ok(v)) => v,
                Some(Err(_)) => {
                    serde_json::Value::String(String::from_utf8_lossy(e.payload.unwrap_or_default()).into())
                }
                None => serde_json::Value::Null,
            };
            let line = serde_json::json!({
                "index": e.index,
                "time": iso_time(e.time_ms),
                "session": e.session,
                "kind": e.kind,
                "payload": payload,
            });
            writeln!(out, "{line}")
        } else {
            let detail = match payload {
                Some(Ok(v)) => summary(&v),
                Some(Err(_)) => "(payload is not JSON)".to_string(),
                None => "(payload pruned)".to_string(),
            };
            writeln!(
                out,
                "{:>7}  {:<20}  {:<16}  {:<16}  {}",
                e.index,
                iso_time(e.time_ms),
                clip(e.session, 16),
                e.kind,
                clip(&detail, 100)
            )
        };
        match written {
            Ok(()) => true,
            Err(err) => {
                failure = Some(err);
                false
            }
        }
    })?;
    // A closed pipe (`| head`) stops the listing; main ends it quietly.
    if let Some(err) = failure {
        return Err(err.into());
    }
    out.flush()?;
    Ok(())
}

/// One line saying what an event was, for the table.
fn summary(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let n = |k: &str| v.get(k).and_then(|x| x.as_i64()).unwrap_or_default();
    match v.get("kind").and_then(|k| k.as_str()).unwrap_or_default() {
        "session_start" => format!("{} by {}@{} (model {})", s("workspace"), s("user"), s("host"), s("model_endpoint")),
        "session_end" => s("reason"),
        "model_request" => {
            let redactions = v.get("redactions").and_then(|r| r.as_array()).map_or(0, Vec::len);
            format!(
                "{} {} -> {}: {} bytes, {} redactions (by {})",
                s("route"),
                s("model"),
                s("destination"),
                n("bytes"),
                redactions,
                s("principal")
            )
        }
        "model_response" => format!(
            "{} from {}: HTTP {}, {} bytes, {} in / {} out tokens, {} ms",
            s("outcome"),
            s("destination"),
            n("status"),
            n("bytes"),
            n("input_tokens"),
            n("output_tokens"),
            n("duration_ms")
        ),
        "tool_call" => match v.get("approval") {
            // A person's answer: who, where, and the digest of what they were shown.
            Some(a) => {
                let a = |k: &str| a.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                let note = if a("note").is_empty() { String::new() } else { format!(", note: {}", a("note")) };
                format!(
                    "{} {} (by {} on {}, {}{note}; shown sha256:{})",
                    s("name"),
                    s("decision"),
                    a("person"),
                    a("terminal"),
                    a("answer"),
                    a("shown_digest").get(..12).unwrap_or_default()
                )
            }
            None => format!("{} {} (by {})", s("name"), s("decision"), s("decided_by")),
        },
        "rewind" => format!(
            "to before {} (checkpoint {}): {} files written back, {} removed, {} messages kept",
            s("label"),
            s("checkpoint"),
            n("restored"),
            n("removed"),
            n("messages_kept")
        ),
        "command" => {
            let argv: Vec<String> = v
                .get("argv")
                .and_then(|a| a.as_array())
                .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
                .unwrap_or_default();
            format!("{} -> exit {} in {} ms", argv.join(" "), n("exit_status"), n("duration_ms"))
        }
        "file_change" => {
            let what = match (s("before").is_empty(), s("after").is_empty()) {
                (true, _) => "created",
                (_, true) => "deleted",
                _ => "changed",
            };
            format!("{} {what}", s("path"))
        }
        "policy_violation" => format!("{}: {}", s("rule"), s("detail")),
        "blocked_egress" => format!("{}: {}", s("destination"), s("reason")),
        "egress_open" => format!("{} {}:{} ({}) for {}", s("method"), s("host"), n("port"), s("addr"), s("client")),
        "egress_close" => format!(
            "{}:{}: {} bytes out, {} in, {} ms",
            s("host"),
            n("port"),
            n("bytes_up"),
            n("bytes_down"),
            n("duration_ms")
        ),
        "external" => format!("{}: {}", s("source"), v.get("data").map(|d| d.to_string()).unwrap_or_default()),
        _ => v.to_string(),
    }
}

/// Cuts `text` to `max` characters, marking the cut, and keeps it on one line.
fn clip(text: &str, max: usize) -> String {
    // Event strings come from the agent: one sanitiser for every front end.
    let one_line = airlock_redact::terminal::one_line(text);
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the epoch.
pub(crate) fn iso_time(ms: i64) -> String {
    airlock_session::run::iso_time(ms)
}

/// A point in time from the command line: a UTC date, a UTC date and time,
/// or an age (`30m`, `2h`, `7d`) before `now_ms`.
fn time_ms(text: &str, now_ms: i64) -> Result<i64> {
    let bad = || {
        anyhow!(
            "{text:?} is not a time\nhint: write YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z (UTC), or an age like 30m, 2h, 7d"
        )
    };
    if let Some(unit) = text.chars().last().filter(|c| "smhdw".contains(*c))
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 7 * 86_400,
        };
        return Ok(now_ms - n.checked_mul(secs * 1000).ok_or_else(bad)?);
    }
    let (date, clock) = match text.split_once('T') {
        Some((d, c)) => (d, Some(c.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let day = date_ms(date).map_err(|_| bad())?;
    let Some(clock) = clock else { return Ok(day) };
    let parts: Vec<&str> = clock.split(':').collect();
    let field = |i: usize, max: i64| -> Result<i64> {
        match parts.get(i) {
            None if i == 2 => Ok(0),
            Some(p) if p.len() == 2 => p.parse::<i64>().ok().filter(|v| (0..max).contains(v)).ok_or_else(bad),
            _ => Err(bad()),
        }
    };
    if parts.len() > 3 {
        return Err(bad());
    }
    Ok(day + (field(0, 24)? * 3600 + field(1, 60)? * 60 + field(2, 60)?) * 1000)
}

/// Milliseconds since the epoch at the start of a UTC date `YYYY-MM-DD`.
fn date_ms(date: &str) -> Result<i64> {
    let bad = || anyhow!("{date:?} is not a date\nhint: write it as YYYY-MM-DD (UTC)");
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_since_the_epoch() {
        assert_eq!(date_ms("1970-01-01").unwrap(), 0);
        assert_eq!(date_ms("2000-03-01").unwrap(), 951_868_800_000);
        assert_eq!(date_ms("2026-11-25").unwrap(), 1_795_564_800_000);
        assert!(date_ms("2026-13-01").is_err());
        assert!(date_ms("yesterday").is_err());
    }

    #[test]
    fn times_are_dates_clock_times_or_ages() {
        let now = 1_795_600_000_000;
        assert_eq!(time_ms("2026-11-25", now).unwrap(), 1_795_564_800_000);
        assert_eq!(time_ms("2026-11-25T10:00Z", now).unwrap(), 1_795_564_800_000 + 36_000_000);
        assert_eq!(time_ms("2026-11-25T10:00:30Z", now).unwrap(), 1_795_564_800_000 + 36_030_000);
        assert_eq!(time_ms("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(time_ms("7d", now).unwrap(), now - 604_800_000);
        for bad in ["2026-11-25T25:00Z", "2026-11-25T10:00", "2026-11-25T1:00Z", "soon", "h", "2026-11-25T10:00:00:00Z"]
        {
            assert!(time_ms(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_print_as_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_795_564_800_000 + 36_030_999), "2026-11-25T10:00:30Z");
        assert_eq!(iso_time(951_868_800_000 - 1000), "2000-02-29T23:59:59Z");
    }

    #[test]
    fn the_table_says_what_each_event_was() {
        let v = serde_json::json!({"kind": "command", "argv": ["cargo", "test"], "exit_status": 1, "duration_ms": 30});
        assert_eq!(summary(&v), "cargo test -> exit 1 in 30 ms");
        let v = serde_json::json!({"kind": "file_change", "path": "src/a.rs", "before": "", "after": "ab"});
        assert_eq!(summary(&v), "src/a.rs created");
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[allow(dead_code)]
    fn uses(_: &dyn Store) {}
}
