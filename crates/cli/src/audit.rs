//! `airlock audit …`: the tamper-evident log from the command line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_audit::event::Event;
use airlock_audit::log::{AuditLog, CheckpointEvery, verify};
use airlock_audit::note::{Signer, Verifier, load_or_create_signer};
use airlock_audit::store::{Durability, SqliteStore, Store};
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// The folder holding the log and its keys (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the verifier key (C2SP signed-note format), creating the signing key on first use.
    Key,
    /// Append one event, read as JSON from standard input.
    Append {
        /// The session to file it under.
        #[arg(long, default_value = "external")]
        session: String,
    },
    /// Sign a checkpoint of the log as it is now.
    Checkpoint,
    /// Verify every entry, payload and checkpoint; exit 1 and name the first problem.
    Verify {
        /// A verifier key file (default: the key of this log).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// A signed checkpoint kept elsewhere, to catch rollback and forgery (repeatable).
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
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
    Prune {
        /// The date.
        #[arg(long, value_name = "DATE")]
        before: String,
    },
}

struct Paths {
    db: PathBuf,
    signer: PathBuf,
    mac_key: PathBuf,
}

fn paths(dir: Option<PathBuf>) -> Result<Paths> {
    let dir = match dir {
        Some(d) => d,
        None => match std::env::var_os("XDG_DATA_HOME") {
            Some(x) if !x.is_empty() => PathBuf::from(x).join("airlock"),
            _ => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?)
                .join(".local/share/airlock"),
        },
    };
    Ok(Paths { db: dir.join("audit.db"), signer: dir.join("audit-signing-key"), mac_key: dir.join("audit-mac-key") })
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into())
}

fn origin() -> String {
    format!("airlock.local/audit/{}", host())
}

fn key_name() -> String {
    format!("airlock-{}", host()).replace(|c: char| c == '+' || c.is_whitespace(), "-")
}

/// The 32-byte key for the payloads' keyed hashes, 0600 beside the signing key.
fn mac_key(path: &Path) -> Result<[u8; 32]> {
    use std::io::Write;
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

fn getrandom(buf: &mut [u8]) -> Result<()> {
    // SAFETY: getrandom fills the buffer it is given.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        bail!("getrandom failed: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn open_log(p: &Paths) -> Result<AuditLog<SqliteStore>> {
    let signer = load_or_create_signer(&p.signer, &key_name())?;
    let key = mac_key(&p.mac_key)?;
    let store = SqliteStore::open(&p.db, Durability::Durable)?;
    Ok(AuditLog::open(store, signer, &origin(), key, CheckpointEvery::default())?)
}

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    let p = paths(args.dir)?;
    match args.command {
        AuditCommand::Key => {
            let signer = load_or_create_signer(&p.signer, &key_name())?;
            println!("{}", signer.verifier().to_key_string());
        }
        AuditCommand::Append { session } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let event: Event = serde_json::from_str(&input).context("the event on standard input")?;
            let mut log = open_log(&p)?;
            let index = log.append(&session, std::slice::from_ref(&event))?;
            println!("{index}");
        }
        AuditCommand::Checkpoint => {
            let mut log = open_log(&p)?;
            print!("{}", log.checkpoint()?);
        }
        AuditCommand::Verify { key, checkpoints } => {
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
            let store = SqliteStore::open(&p.db, Durability::Durable)?;
            match verify(&store, &verifier, &origin(), mac.as_ref(), &retained)? {
                Ok(v) => {
                    println!(
                        "ok: {} entries, {} checkpoints, {} payloads checked; {} entries not yet in a checkpoint",
                        v.entries, v.checkpoints, v.payloads, v.unsigned_tail
                    );
                }
                Err(tamper) => {
                    println!("TAMPERED: {tamper}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        AuditCommand::Prove { index, size } => {
            let log = open_log(&p)?;
            let size = match size {
                Some(s) => s,
                None => log.store().checkpoints()?.last().map(|(s, _)| *s).unwrap_or(log.size()),
            };
            let proof = log.prove(index, size)?;
            let hashes: Vec<String> = proof.iter().map(hex::encode).collect();
            println!("{}", serde_json::json!({"index": index, "size": size, "proof": hashes}));
        }
        AuditCommand::Consistency { old, new } => {
            let log = open_log(&p)?;
            let proof = log.consistency(old, new)?;
            let hashes: Vec<String> = proof.iter().map(hex::encode).collect();
            println!("{}", serde_json::json!({"old": old, "new": new, "proof": hashes}));
        }
        AuditCommand::Prune { before } => {
            let ms = date_ms(&before)?;
            let mut store = SqliteStore::open(&p.db, Durability::Durable)?;
            let n = store.prune_payloads(ms)?;
            println!("pruned {n} payloads recorded before {before}; every entry and proof stays");
        }
    }
    Ok(ExitCode::SUCCESS)
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

    #[allow(dead_code)]
    fn uses(_: &dyn Store) {}
}
