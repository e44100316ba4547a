//! `airlock gateway`: the egress broker (a Unix socket for one user) or the
//! team gateway (TCP, API keys), and its keys.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use airlock_gateway::config::{GatewayConfig, Listen};
use airlock_gateway::egress::{EgressProxy, SystemResolver};
use airlock_gateway::egress_audit::AuditRecorder;
use airlock_gateway::keys::KeyStore;
use airlock_gateway::ops::{LiveGateway, LogFormat};
use airlock_gateway::server::{Auth, Gateway, KeyFile, serve_live};
use airlock_gateway::telemetry::Telemetry;
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// The configuration (default: $XDG_CONFIG_HOME/airlock/gateway.toml).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Where to listen: HOST:PORT (team gateway, API keys) or unix:PATH (local broker,
    /// this user only). Overrides the configuration.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Let a server-side tool (one the vendor runs, outside the egress allowlist:
    /// web_search, web_fetch, code_execution, mcp, mcp_servers, ...) through, by type
    /// or family; repeatable. Added to the configuration's gateway.allow_server_tools.
    /// Others are removed from requests and the removal recorded.
    #[arg(long = "allow-server-tool", value_name = "TOOL")]
    allow_server_tools: Vec<String>,
    /// The folder holding the audit log and the key file (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// Log lines as `text` or `json` (one object a line; each request's line has its
    /// principal, route, model, status, duration and tokens, never its content).
    /// Overrides the configuration's gateway.log_format.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<GatewayCommand>,
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// API keys for the team gateway.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a key for the principal NAME and print it (it is shown this once; only its
    /// hash is kept). A principal may hold several keys (to rotate one): a new key
    /// for a principal that holds live keys keeps its role and kind. The key's own
    /// models, upstreams and limits can only narrow its role's ([roles.ROLE] in gateway.toml).
    Add {
        /// Who or what it is for.
        name: String,
        /// admin, developer, ci or auditor (an auditor reads the log, never uses models).
        /// Default: the role of NAME's live keys, else developer.
        #[arg(long, value_name = "ROLE")]
        role: Option<airlock_gateway::keys::Role>,
        /// person, ci or service. Default: as NAME's live keys, else person.
        #[arg(long, value_name = "KIND")]
        kind: Option<airlock_gateway::keys::PrincipalKind>,
        /// Only these models (patterns, `*` matches any run; repeatable). Default: every model the role may use.
        #[arg(long = "model", value_name = "PATTERN")]
        models: Vec<String>,
        /// Only these upstreams (names; repeatable). Default: every upstream the role may use.
        #[arg(long = "upstream", value_name = "NAME")]
        upstreams: Vec<String>,
        /// Requests per UTC minute.
        #[arg(long, value_name = "N")]
        requests_per_minute: Option<u64>,
        /// Tokens (input and output, as upstreams report them) per UTC minute.
        #[arg(long, value_name = "N")]
        tokens_per_minute: Option<u64>,
        /// Tokens per UTC day; a stream that spends them is ended.
        #[arg(long, value_name = "N")]
        daily_tokens: Option<u64>,
        /// The largest request body, in bytes.
        #[arg(long, value_name = "N")]
        max_request_bytes: Option<u64>,
    },
    /// List keys: principal, key id, role, kind, dates, models, upstreams and limits (never the keys).
    List,
    /// Revoke NAME's live keys (or one of them, with --key).
    Revoke {
        /// Whose keys.
        name: String,
        /// Only the key whose id (as `key list` shows it) starts with this (at least 6 hex digits).
        #[arg(long, value_name = "ID")]
        key: Option<String>,
    },
}

/// `$XDG_CONFIG_HOME/airlock`.
pub(crate) fn config_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(base.join("airlock"))
}

fn config_path(explicit: Option<PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p),
        None => Ok(config_dir()?.join("gateway.toml")),
    }
}

pub fn run(args: GatewayArgs) -> Result<ExitCode> {
    let audit_paths = crate::audit::paths(args.dir)?;
    let key_file = audit_paths.dir.join("gateway-keys.json");
    if let Some(GatewayCommand::Key(cmd)) = args.command {
        // In the database when the gateway has one (its replicas share the keys), else in the file.
        let mut store = match key_database(&config_path(args.config.clone())?)? {
            Some(url) => Keys::database(&url, &key_file)?,
            None => Keys::File(KeyStore::open(&key_file)?),
        };
        let mut out = std::io::stdout().lock();
        match cmd {
            KeyCommand::Add {
                name,
                role,
                kind,
                models,
                upstreams,
                requests_per_minute,
                tokens_per_minute,
                daily_tokens,
                max_request_bytes,
            } => {
                let limits = airlock_gateway::keys::Limits {
                    requests_per_minute,
                    tokens_per_minute,
                    daily_tokens,
                    max_request_bytes,
                };
                let new = airlock_gateway::keys::NewKey { role, kind, models, upstreams, limits };
                let key = store.add(&name, &new)?;
                writeln!(out, "{key}")?;
                eprintln!(
                    "the key for {name} is shown only now; the gateway keeps its SHA-256 in {}",
                    store.place(&key_file)
                );
            }
            KeyCommand::List => {
                for k in &store.list()? {
                    let state = match k.revoked_ms {
                        Some(ms) => format!("revoked {}", crate::audit::iso_time(ms)),
                        None => "live".into(),
                    };
                    let or_all = |v: &[String]| if v.is_empty() { "(role's)".to_string() } else { v.join(",") };
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\tcreated {}\t{state}\tmodels {}\tupstreams {}\tlimits {}",
                        k.name,
                        k.id(),
                        k.role,
                        k.kind,
                        crate::audit::iso_time(k.created_ms),
                        or_all(&k.models),
                        or_all(&k.upstreams),
                        k.limits.describe()
                    )?;
                }
            }
            KeyCommand::Revoke { name, key } => {
                let n = store.revoke(&name, key.as_deref())?;
                let what = if n == 1 { "1 key".to_string() } else { format!("{n} keys") };
                let when = match store {
                    Keys::File(_) => "from its next request",
                    Keys::Database(..) => "within about a second, on every replica",
                };
                writeln!(out, "revoked {what} of {name}; a running gateway refuses it {when}")?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let path = config_path(args.config)?;
    if !path.exists() {
        bail!(
            "there is no gateway configuration at {}\nhint: write one naming the upstreams (see `airlock gateway --help` and the README), or pass --config FILE",
            path.display()
        );
    }
    // Read the same way at start and on each SIGHUP.
    let (listen_flag, extra_tools) = (args.listen, args.allow_server_tools);
    let read_config = move || -> Result<GatewayConfig> {
        let env = |name: &str| std::env::var(name).ok();
        let mut config = GatewayConfig::load(&path, &env)?;
        if let Some(listen) = &listen_flag {
            config.listen = listen.parse()?;
        }
        config.allow_server_tools.extend(extra_tools.iter().cloned());
        if config.upstreams.is_empty() {
            bail!("{} names no [[upstream]]: the gateway would refuse every request", path.display());
        }
        Ok(config)
    };
    let config = read_config()?;
    // `[store] url` (or $AIRLOCK_DATABASE_URL): the log, the usage ledger and the keys in PostgreSQL.
    let database =
        config.store_url.clone().or_else(|| std::env::var("AIRLOCK_DATABASE_URL").ok().filter(|u| !u.is_empty()));
    // `None`: the keys in the database, opened in the runtime below.
    let auth = match &config.listen {
        Listen::Unix(_) => Some(Auth::Peer { uid: getuid() }),
        Listen::Tcp(_) if database.is_some() => None,
        Listen::Tcp(_) => {
            if KeyStore::open(&key_file)?.live().is_empty() {
                bail!(
                    "the team gateway needs API keys and {} has none\nhint: airlock gateway key add NAME",
                    key_file.display()
                );
            }
            // Read again whenever it changes: `key revoke` takes effect at once.
            Some(Auth::KeyFile(KeyFile::open(&key_file)?))
        }
    };
    init_logs(args.log_format.unwrap_or(config.log_format));
    // Before the runtime: the exporters' HTTP client blocks on its own threads.
    let telemetry = match &config.telemetry {
        Some(t) => {
            tracing::info!(endpoint = t.otlp_endpoint, "exporting traces and metrics over OTLP/HTTP");
            Some(Arc::new(Telemetry::start(t)?))
        }
        None => None,
    };
    // The log in PostgreSQL when there is a database, shared by every replica (as are the keys).
    let mut audit_paths = audit_paths;
    audit_paths.database = database;
    // Usage (requests and tokens per principal) in the same database, so that
    // every replica counts against one budget.
    let ledger_url = audit_paths.database.clone();
    let log = crate::audit::open_chosen_log(&audit_paths)?;
    let writer = airlock_audit::writer::AuditWriter::spawn(log)?;
    let scanner = Arc::new(airlock_redact::Scanner::builtin());
    let listen = config.listen.clone();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let handle = writer.handle();
    // A second store connection, for reads: the witnessing task and the audit endpoints.
    let reads: airlock_gateway::witnessing::ReadStore =
        Arc::new(std::sync::Mutex::new(crate::audit::open_store(&audit_paths)?));
    let witnessing = match config.witnesses.is_empty() {
        true => None,
        false => Some(airlock_gateway::witnessing::Witnessing::new(reads.clone(), &config.witnesses, handle.clone())?),
    };
    let egress = config.egress.clone();
    let exporting = telemetry.clone();
    let result = runtime.block_on(async move {
        // One signal stops both servers; the handlers are in place before either listens.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signals = Signals::install()?;
        let when = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let proxy = match egress {
            None => None,
            Some(e) => {
                let recorder = Arc::new(AuditRecorder::new(handle.clone(), "egress"));
                let proxy = EgressProxy::new(e.config, recorder, Arc::new(SystemResolver));
                let shutdown = when(stopped.clone());
                Some(match e.listen {
                    Listen::Tcp(addr) => {
                        let listener = tokio::net::TcpListener::bind(addr)
                            .await
                            .with_context(|| format!("egress proxy: cannot listen on {addr}"))?;
                        tracing::info!("egress proxy listening on {addr}");
                        tokio::spawn(proxy.serve_tcp(listener, shutdown))
                    }
                    Listen::Unix(path) => {
                        use std::os::unix::fs::FileTypeExt;
                        if let Ok(meta) = std::fs::symlink_metadata(&path) {
                            if !meta.file_type().is_socket() {
                                bail!("egress proxy: {} exists and is not a socket", path.display());
                            }
                            std::fs::remove_file(&path)?;
                        }
                        let listener = tokio::net::UnixListener::bind(&path)
                            .with_context(|| format!("egress proxy: cannot listen on {}", path.display()))?;
                        tracing::info!("egress proxy listening on unix:{}", path.display());
                        tokio::spawn(proxy.serve_unix(listener, shutdown))
                    }
                })
            }
        };
        let auth = match (auth, &ledger_url) {
            (Some(auth), _) => auth,
            (None, Some(url)) => {
                let (store, note) = database_keys(url, &key_file).await?;
                if let Some(note) = note {
                    tracing::warn!("{note}");
                }
                let keys = airlock_gateway::keys_pg::PgKeys::start(store).await?;
                use airlock_gateway::keys::LiveKeys as _;
                if keys.current()?.is_empty() {
                    bail!(
                        "the team gateway needs API keys and the database {} has none\nhint: airlock gateway key add NAME",
                        keys.database()
                    );
                }
                Auth::Live(keys)
            }
            (None, None) => bail!("the team gateway has no key source"),
        };
        let gw = Gateway::new(config, auth, handle, scanner)?.with_audit_reads(reads);
        if let Some(url) = &ledger_url {
            let ledger = airlock_gateway::access::postgres::PgLedger::connect(url)
                .await
                .context("cannot open the usage ledger in the database")?;
            gw.access().set_ledger(Arc::new(ledger));
        }
        if let Some(witnessing) = witnessing {
            tokio::spawn(witnessing.run(when(stopped.clone())));
        }
        if let Some(t) = exporting {
            gw.operations().set_telemetry(t);
        }
        let live = LiveGateway::new(gw);
        tokio::spawn(signals.run(Arc::clone(&live), read_config, stop));
        serve_live(live, &listen, when(stopped)).await?;
        if let Some(proxy) = proxy {
            proxy.await.context("the egress proxy stopped abnormally")??;
        }
        anyhow::Ok(())
    });
    // Stop every task (and with them every handle on the log) before closing it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    if let Some(t) = telemetry
        && let Err(e) = t.shutdown()
    {
        tracing::warn!("{e}");
    }
    result?;
    // Sign what the gateway recorded before exiting.
    writer.close()?;
    tracing::info!("stopped; the audit log is signed up to its last entry");
    Ok(ExitCode::SUCCESS)
}

/// The database the gateway keeps its keys in, as the server chooses it:
/// the configuration's `[store] url` (when the file exists and names one),
/// else `$AIRLOCK_DATABASE_URL`. Only `[store]` is read: `key` commands need
/// not have the upstreams' credentials.
fn key_database(config: &std::path::Path) -> Result<Option<String>> {
    let from_env = || std::env::var("AIRLOCK_DATABASE_URL").ok().filter(|u| !u.is_empty());
    let text = match std::fs::read_to_string(config) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(from_env()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config.display())),
    };
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not TOML", config.display()))?;
    let Some(url) = doc.get("store").and_then(|s| s.get("url")) else { return Ok(from_env()) };
    let url = url.as_str().with_context(|| format!("{}: store.url must be a string", config.display()))?;
    let env = |name: &str| std::env::var(name).ok();
    let url = airlock_gateway::config::expand_env(url, &env)
        .map_err(|e| anyhow::anyhow!("{}: store.url: {e}", config.display()))?;
    Ok(Some(url))
}

/// Opens the keys in the database. A key file beside the log (the keys of
/// a gateway before it had a database) is imported once, if the database
/// holds no key yet, and renamed `gateway-keys.json.imported`; else it is
/// left alone, unread. Returns what happened to the file, to be said.
async fn database_keys(
    url: &str,
    key_file: &std::path::Path,
) -> Result<(airlock_gateway::keys_pg::PgKeyStore, Option<String>)> {
    let store = airlock_gateway::keys_pg::PgKeyStore::connect(url)
        .await
        .context("cannot open the gateway's keys in the database")?;
    if !key_file.exists() {
        return Ok((store, None));
    }
    let records = KeyStore::open(key_file)?.list().to_vec();
    let note = match store.import_if_empty(&records).await? {
        Some(n) => {
            let moved = key_file.with_extension("json.imported");
            std::fs::rename(key_file, &moved)
                .with_context(|| format!("imported {n} keys, but cannot rename {}", key_file.display()))?;
            format!(
                "imported the {n} keys of {} into the database {}; the file is now {} and is not read",
                key_file.display(),
                store.database(),
                moved.display()
            )
        }
        None => format!(
            "{} is not read: the gateway's keys are in the database {}, which already holds keys\nhint: remove the file, or make its keys again with `airlock gateway key add`",
            key_file.display(),
            store.database()
        ),
    };
    Ok((store, Some(note)))
}

/// Where `key` commands keep keys: the file, or the database.
enum Keys {
    File(KeyStore),
    Database(airlock_gateway::keys_pg::PgKeyStore, tokio::runtime::Runtime),
}

impl Keys {
    fn database(url: &str, key_file: &std::path::Path) -> Result<Keys> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
        let (store, note) = runtime.block_on(database_keys(url, key_file))?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
        Ok(Keys::Database(store, runtime))
    }

    fn add(&mut self, name: &str, new: &airlock_gateway::keys::NewKey) -> Result<String> {
        Ok(match self {
            Keys::File(f) => f.add(name, new)?,
            Keys::Database(db, rt) => rt.block_on(db.add(name, new))?,
        })
    }

    fn list(&self) -> Result<Vec<airlock_gateway::keys::KeyRecord>> {
        Ok(match self {
            Keys::File(f) => f.list().to_vec(),
            Keys::Database(db, rt) => rt.block_on(db.list())?,
        })
    }

    fn revoke(&mut self, name: &str, key: Option<&str>) -> Result<usize> {
        Ok(match self {
            Keys::File(f) => f.revoke(name, key)?,
            Keys::Database(db, rt) => rt.block_on(db.revoke(name, key))?,
        })
    }

    /// Where they are, for messages.
    fn place(&self, key_file: &std::path::Path) -> String {
        match self {
            Keys::File(_) => key_file.display().to_string(),
            Keys::Database(db, _) => format!("the database {}", db.database()),
        }
    }
}

pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The signals the gateway answers: SIGTERM and SIGINT drain and stop it,
/// SIGHUP reloads its configuration.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    /// Reloads on SIGHUP until SIGTERM or SIGINT; then drains: `/readyz`
    /// answers 503 at once, requests are served for `gateway.drain_seconds`
    /// more (a second signal cuts that short), and `stop` tells the servers
    /// to stop accepting and finish what is in flight.
    async fn run(
        mut self,
        live: Arc<LiveGateway>,
        read_config: impl Fn() -> Result<GatewayConfig>,
        stop: tokio::sync::watch::Sender<bool>,
    ) {
        loop {
            tokio::select! {
                _ = self.term.recv() => break,
                _ = self.int.recv() => break,
                _ = self.hup.recv() => reload(&live, &read_config),
            }
        }
        live.drain();
        let grace = live.current().config().drain;
        tracing::info!(
            "draining: /readyz answers 503; serving {}s more (gateway.drain_seconds), then finishing requests in flight",
            grace.as_secs_f64()
        );
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop.send(true);
    }
}

/// Reads the configuration again and serves it from the next request on;
/// a file that does not load leaves the running configuration in force.
fn reload(live: &LiveGateway, read_config: &impl Fn() -> Result<GatewayConfig>) {
    let config = match read_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, the running configuration stays: {e:#}");
            return;
        }
    };
    match live.reload(config) {
        Ok(restart) => {
            tracing::info!("reloaded the configuration: new requests use it");
            for setting in restart {
                tracing::warn!(setting, "reload: {setting} changed; it takes effect only after a restart");
            }
        }
        Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
    }
}

/// Logs to stderr, as text or JSON lines; `RUST_LOG` filters (default info); `NO_COLOR` respected.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(color).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(false).try_init(),
    };
}
