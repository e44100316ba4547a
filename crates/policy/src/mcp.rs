//! `[mcp]`: the MCP servers a session may start, what each may reach, and
//! the rules for their tools; `[mcp] pinned_only` and `[mcp.pinned]` in
//! managed policy restrict servers to those pinned by digest.
//!
//! A server is defined by the first layer that names it. A lower layer that
//! names it again may only tighten it: the same command, arguments, URL and
//! environment (or none given), `read`, `write` and `hosts` replaced by
//! subsets, `enabled` only to false, `timeout_secs` only down, rules only
//! towards deny. A project (untrusted) may define a server of its own, which
//! gets no environment, no hosts, no writes, no reads outside the workspace,
//! no URL and no "allow" rule.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::Problem;
use crate::file::{Entry, FileText, LayerFile, Pos};
use crate::rules::{DefaultRule, Origin, Permission, Position, Rule};
use crate::values::{domain_allows, parse_domain, resolve_root};
use crate::{Context, PolicyError, Source, Sourced};

/// The longest `timeout_secs` a server may be given.
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// `timeout_secs` when no layer sets it.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

const PINNED_ONLY: &str = "mcp.pinned_only";
const PINNED: &str = "mcp.pinned";
const SERVERS: &str = "mcp.servers";
const COMMAND: &str = "mcp.servers.command";
const ARGS: &str = "mcp.servers.args";
const URL: &str = "mcp.servers.url";
const ENV: &str = "mcp.servers.env";
const READ: &str = "mcp.servers.read";
const WRITE: &str = "mcp.servers.write";
const HOSTS: &str = "mcp.servers.hosts";
const DIGEST: &str = "mcp.servers.digest";
const ENABLED: &str = "mcp.servers.enabled";
const TIMEOUT: &str = "mcp.servers.timeout_secs";
const TOOLS: &str = "mcp.servers.tools";
const DEFAULT: &str = "mcp.servers.default";

/// The effective `[mcp]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPolicy {
    /// Every configured server, enabled or not, in the order layers defined
    /// them (managed, user, project; file order within a file).
    pub servers: Vec<McpServer>,
    /// Managed policy only: start only the servers named in
    /// [`McpPolicy::pinned`].
    pub pinned_only: Sourced<bool>,
    /// Managed policy only: server name to its required digest
    /// (`sha256:` and 64 lowercase hex digits).
    pub pinned: BTreeMap<String, Sourced<String>>,
}

impl McpPolicy {
    pub(crate) fn defaults() -> McpPolicy {
        McpPolicy { servers: Vec::new(), pinned_only: Sourced::new(false, Source::Default), pinned: BTreeMap::new() }
    }

    /// The server named `name`, enabled or not.
    pub fn server(&self, name: &str) -> Option<&McpServer> {
        self.servers.iter().find(|s| s.name == name)
    }
}

/// One `[mcp.servers.NAME]`, with every layer that named it applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// `[A-Za-z0-9-]{1,64}`: no `_`, so `mcp__SERVER__TOOL` splits one way.
    pub name: String,
    /// The layer that defined the server (the first that named it).
    pub defined_by: Source,
    /// How to reach it: a command run in its own sandbox, or a URL.
    pub transport: Sourced<McpTransport>,
    /// The server's environment; values are resolved by the supervisor.
    pub env: Sourced<BTreeMap<String, EnvValue>>,
    /// What it may read besides its own private folders (absolute, normalized).
    pub read: Sourced<Vec<PathBuf>>,
    /// What it may write besides its own private folders (absolute, normalized).
    pub write: Sourced<Vec<PathBuf>>,
    /// Hosts it may reach through the proxy, in the allowlist's syntax.
    pub hosts: Sourced<Vec<String>>,
    /// `sha256:HEX` the server must match; a managed pin is copied here.
    pub digest: Option<Sourced<String>>,
    /// Whether it may start.
    pub enabled: Sourced<bool>,
    /// Seconds a call may take before the server is stopped; at most 3600.
    pub timeout_secs: Sourced<u64>,
    /// Per tool (the name as it appears in `mcp__SERVER__TOOL`).
    pub tools: Vec<Rule>,
    /// For tools without a rule; when absent, tools annotated read-only are
    /// allowed and others ask.
    pub default: Option<DefaultRule>,
}

/// How a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A program speaking MCP on its standard input and output.
    Stdio {
        /// The program, as written (a name is looked up on `PATH`).
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A remote server over streamable HTTP: `https://`, or `http://` to
    /// 127.0.0.1 or localhost.
    Http {
        /// The endpoint.
        url: String,
    },
}

/// One value of a server's `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `NAME = "value"`.
    Literal(String),
    /// `NAME = "${VAR}"`: the user's `VAR`, read by the supervisor.
    FromEnv(String),
    /// `NAME = { file = "PATH" }`: the file's contents, read by the supervisor.
    File(PathBuf),
}

impl fmt::Display for EnvValue {
    /// As in a policy file, with a literal hidden (it is likely a secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Literal(_) => f.write_str("a literal value"),
            EnvValue::FromEnv(var) => write!(f, "${{{var}}}"),
            EnvValue::File(path) => write!(f, "the file {}", path.display()),
        }
    }
}

// ---------------------------------------------------------------------------
// The schema.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcp {
    pinned_only: Option<Spanned<bool>>,
    #[serde(default)]
    pinned: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    servers: BTreeMap<Spanned<String>, RawServer>,
}

type RawStrings = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    command: Option<Spanned<String>>,
    args: RawStrings,
    url: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawEnv>>>>,
    read: RawStrings,
    write: RawStrings,
    hosts: RawStrings,
    digest: Option<Spanned<String>>,
    enabled: Option<Spanned<bool>>,
    timeout_secs: Option<Spanned<u64>>,
    tools: Option<BTreeMap<Spanned<String>, Spanned<Permission>>>,
    default: Option<Spanned<Permission>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawEnv {
    Value(String),
    File(RawEnvFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvFile {
    file: String,
}

// ---------------------------------------------------------------------------
// One file's `[mcp]`, validated and placed.

/// A file's `[mcp]`.
#[derive(Debug, Default)]
pub(crate) struct McpLayer {
    pinned_only: Option<Entry<bool>>,
    pinned: Vec<Entry<(String, String)>>,
    servers: Vec<ServerEntry>,
}

/// A file's `[mcp.servers.NAME]`: only what it wrote.
#[derive(Debug)]
struct ServerEntry {
    name: String,
    at: Pos,
    command: Option<Entry<String>>,
    args: Option<Entry<Vec<String>>>,
    url: Option<Entry<String>>,
    env: Option<Entry<BTreeMap<String, EnvValue>>>,
    read: Option<Entry<Vec<Entry<PathBuf>>>>,
    write: Option<Entry<Vec<Entry<PathBuf>>>>,
    hosts: Option<Entry<Vec<Entry<String>>>>,
    digest: Option<Entry<String>>,
    enabled: Option<Entry<bool>>,
    timeout_secs: Option<Entry<u64>>,
    /// In file order.
    tools: Vec<Entry<(String, Permission)>>,
    default: Option<Entry<Permission>>,
}

impl McpLayer {
    pub(crate) fn parse(raw: RawMcp, file: &FileText<'_>, cx: &Context) -> Result<McpLayer, PolicyError> {
        let mut layer = McpLayer {
            pinned_only: raw.pinned_only.map(|v| file.entry(PINNED_ONLY, v, |b| Ok(*b))).transpose()?,
            ..McpLayer::default()
        };
        for (name, digest) in raw.pinned {
            let at = file.pos(name.span());
            let server = parse_server_name(name.get_ref()).map_err(|p| file.error(at, PINNED, p))?;
            let digest = file.entry(PINNED, digest, |d: &String| parse_digest(d))?;
            layer.pinned.push(Entry { value: (server, digest.value), at });
        }
        let mut servers: Vec<_> = raw.servers.into_iter().collect();
        servers.sort_by_key(|(name, _)| name.span().start);
        for (name, server) in servers {
            layer.servers.push(parse_server(name, server, file, cx)?);
        }
        Ok(layer)
    }
}

fn parse_server(
    name: Spanned<String>,
    raw: RawServer,
    file: &FileText<'_>,
    cx: &Context,
) -> Result<ServerEntry, PolicyError> {
    let at = file.pos(name.span());
    let name = parse_server_name(name.get_ref()).map_err(|p| file.error(at, SERVERS, p))?;
    let n = name.as_str();
    // Paths relative to the workspace are allowed in every layer: a server
    // works on the workspace it is started for.
    let path = |raw: &str| resolve_root(Path::new(raw), &cx.home, Some(&cx.workspace)).map_err(|p| on_server(n, p));
    let paths = |key: &'static str, list: RawStrings| {
        list.map(|list| {
            let list_at = file.pos(list.span());
            let entries = list
                .into_inner()
                .into_iter()
                .map(|raw| file.entry(key, raw, |s: &String| path(s)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, PolicyError>(Entry { value: entries, at: list_at })
        })
        .transpose()
    };
    let hosts = raw
        .hosts
        .map(|list| {
            let list_at = file.pos(list.span());
            let entries = list
                .into_inner()
                .into_iter()
                .map(|raw| file.entry(HOSTS, raw, |s: &String| parse_domain(s).map_err(|p| on_server(n, p))))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, PolicyError>(Entry { value: entries, at: list_at })
        })
        .transpose()?;
    let command = raw.command.map(|v| file.entry(COMMAND, v, |c: &String| parse_command(n, c))).transpose()?;
    let args = raw
        .args
        .map(|list| {
            let list_at = file.pos(list.span());
            let mut args = Vec::new();
            for arg in list.into_inner() {
                args.push(file.entry(ARGS, arg, |a: &String| parse_arg(n, a))?.value);
            }
            Ok::<_, PolicyError>(Entry { value: args, at: list_at })
        })
        .transpose()?;
    let url = raw.url.map(|v| file.entry(URL, v, |u: &String| parse_url(n, u))).transpose()?;
    if let (Some(_), Some(url)) = (&command, &url) {
        return Err(file.error(
            url.at,
            URL,
            Problem::invalid(
                format!("server \"{n}\" has both a command and a url"),
                "a server is either a program (command and args) or a remote endpoint (url); keep one",
            ),
        ));
    }
    if let (None, Some(url), Some(args)) = (&command, &url, &args) {
        let _ = url;
        return Err(file.error(
            args.at,
            ARGS,
            Problem::invalid(
                format!("server \"{n}\" has args but no command"),
                "args are the command's arguments; a remote server (url) has none",
            ),
        ));
    }
    let env = raw
        .env
        .map(|table| {
            let table_at = file.pos(table.span());
            let mut env = BTreeMap::new();
            for (key, value) in table.into_inner() {
                let key_at = file.pos(key.span());
                let var = parse_env_name(key.get_ref()).map_err(|p| file.error(key_at, ENV, on_server(n, p)))?;
                let value = file.entry(ENV, value, |v: &RawEnv| parse_env_value(n, v, &cx.home))?;
                env.insert(var, value.value);
            }
            Ok::<_, PolicyError>(Entry { value: env, at: table_at })
        })
        .transpose()?;
    let mut tools: Vec<_> = raw.tools.unwrap_or_default().into_iter().collect();
    tools.sort_by_key(|(tool, _)| tool.span().start);
    let tools = tools
        .into_iter()
        .map(|(tool, permission)| {
            let tool_at = file.pos(tool.span());
            let tool = parse_tool(n, tool.get_ref()).map_err(|p| file.error(tool_at, TOOLS, p))?;
            Ok(Entry { value: (tool, *permission.get_ref()), at: tool_at })
        })
        .collect::<Result<Vec<_>, PolicyError>>()?;
    Ok(ServerEntry {
        at,
        command,
        args,
        url,
        env,
        read: paths(READ, raw.read)?,
        write: paths(WRITE, raw.write)?,
        hosts,
        digest: raw.digest.map(|v| file.entry(DIGEST, v, |d: &String| parse_digest(d))).transpose()?,
        enabled: raw.enabled.map(|v| file.entry(ENABLED, v, |b| Ok(*b))).transpose()?,
        timeout_secs: raw.timeout_secs.map(|v| file.entry(TIMEOUT, v, |t| parse_timeout(n, *t))).transpose()?,
        tools,
        default: raw.default.map(|v| file.entry(DEFAULT, v, |p| Ok(*p))).transpose()?,
        name,
    })
}

fn on_server(name: &str, problem: Problem) -> Problem {
    Problem { message: format!("server \"{name}\": {}", problem.message), ..problem }
}

/// `[A-Za-z0-9-]{1,64}`.
pub(crate) fn parse_server_name(raw: &str) -> Result<String, Problem> {
    let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        return Ok(raw.to_owned());
    }
    let hint = if raw.contains('_') {
        format!(
            "server names may not contain '_', so that mcp__SERVER__TOOL splits one way: write \"{}\"",
            raw.replace('_', "-")
        )
    } else {
        "a server name is 1 to 64 letters, digits and '-', such as \"github\"".to_owned()
    };
    Err(Problem::invalid(format!("\"{}\" is not a valid server name", raw.escape_debug()), hint))
}

/// A tool as it appears in `mcp__SERVER__TOOL`.
fn parse_tool(server: &str, raw: &str) -> Result<String, Problem> {
    let ok = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        return Ok(raw.to_owned());
    }
    Err(Problem::invalid(
        format!("server \"{server}\": \"{}\" is not a tool name as airlock shows it", raw.escape_debug()),
        format!(
            "write the TOOL of mcp__{server}__TOOL: the server's name for it with characters other than \
             letters, digits, '_' and '-' replaced by '_'"
        ),
    ))
}

fn parse_command(server: &str, raw: &str) -> Result<String, Problem> {
    if raw.trim().is_empty() {
        return Err(Problem::invalid(
            format!("server \"{server}\" has an empty command"),
            "write the program to run, such as \"npx\"; its arguments go in args",
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(Problem::invalid(
            format!("server \"{server}\": the command \"{}\" contains a control character", raw.escape_debug()),
            "write the program to run, such as \"npx\"; its arguments go in args",
        ));
    }
    Ok(raw.to_owned())
}

fn parse_arg(server: &str, raw: &str) -> Result<String, Problem> {
    if raw.contains('\0') {
        return Err(Problem::invalid(
            format!("server \"{server}\": an argument contains a NUL character"),
            "remove the NUL; a program's arguments cannot contain one",
        ));
    }
    Ok(raw.to_owned())
}

/// `https://HOST[:PORT][/...]`, or `http://` to 127.0.0.1 or localhost.
fn parse_url(server: &str, raw: &str) -> Result<String, Problem> {
    let bad = |message: String| {
        Err(Problem::invalid(
            format!("server \"{server}\": {message}"),
            "write https://host/path; plain http is only for a server on this machine (127.0.0.1 or localhost)",
        ))
    };
    let lower = raw.to_ascii_lowercase();
    let (https, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, rest)
    } else {
        return bad(format!("\"{}\" is not an https:// URL", raw.escape_debug()));
    };
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad(format!("\"{}\" contains a space or control character", raw.escape_debug()));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad(format!("\"{raw}\" carries credentials"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return bad(format!("\"{raw}\" has an invalid port"));
    }
    if https {
        if host.starts_with('*') || parse_domain(host).is_err() {
            return bad(format!("\"{raw}\" has no valid host name"));
        }
    } else if host != "127.0.0.1" && host != "localhost" {
        return bad(format!("\"{raw}\" uses plain http to another machine"));
    }
    Ok(raw.to_owned())
}

/// `sha256:` and 64 hex digits, lowercased.
pub(crate) fn parse_digest(raw: &str) -> Result<String, Problem> {
    let lower = raw.to_ascii_lowercase();
    match lower.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(lower),
        _ => Err(Problem::invalid(
            format!("\"{}\" is not a digest", raw.escape_debug()),
            "write \"sha256:\" followed by 64 hexadecimal digits, as `airlock mcp digest` prints it",
        )),
    }
}

fn parse_timeout(server: &str, secs: u64) -> Result<u64, Problem> {
    if (1..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Ok(secs);
    }
    Err(Problem::invalid(
        format!("server \"{server}\": {secs} seconds is not a usable timeout"),
        format!("use 1 to {MAX_TIMEOUT_SECS} seconds"),
    ))
}

fn is_env_name(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_env_name(raw: &str) -> Result<String, Problem> {
    if is_env_name(raw) {
        return Ok(raw.to_owned());
    }
    Err(Problem::invalid(
        format!("\"{}\" is not an environment variable name", raw.escape_debug()),
        "a name is letters, digits and '_', not starting with a digit, such as \"GITHUB_TOKEN\"",
    ))
}

fn parse_env_value(server: &str, raw: &RawEnv, home: &Path) -> Result<EnvValue, Problem> {
    match raw {
        RawEnv::File(file) => {
            resolve_root(Path::new(&file.file), home, None).map(EnvValue::File).map_err(|p| on_server(server, p))
        }
        RawEnv::Value(value) => {
            if let Some(var) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}'))
                && is_env_name(var)
            {
                return Ok(EnvValue::FromEnv(var.to_owned()));
            }
            if value.contains("${") {
                return Err(Problem::invalid(
                    format!(
                        "server \"{server}\": \"{}\" is neither a literal nor a whole \"${{VAR}}\"",
                        value.escape_debug()
                    ),
                    "write \"${VAR}\" alone to pass the variable VAR of your environment, or a literal without \"${\"",
                ));
            }
            if value.contains('\0') {
                return Err(Problem::invalid(
                    format!("server \"{server}\": a value contains a NUL character"),
                    "remove the NUL; environment values cannot contain one",
                ));
            }
            Ok(EnvValue::Literal(value.clone()))
        }
    }
}

// ---------------------------------------------------------------------------
// Layering.

/// What a server's tool rule may be at most, when the layers above set
/// neither a rule for it nor a default: tools not annotated read-only ask.
const IMPLICIT: Permission = Permission::Ask;

/// Applies a file's `[mcp]` to the effective policy.
pub(crate) fn apply(
    mcp: &mut McpPolicy,
    layer: &McpLayer,
    file: &LayerFile,
    workspace: &Path,
) -> Result<(), PolicyError> {
    let source = &file.source;
    let managed = matches!(source, Source::Managed(_));
    let project = matches!(source, Source::Project(_));
    if managed {
        if let Some(entry) = &layer.pinned_only {
            mcp.pinned_only = Sourced::new(entry.value, source.clone());
        }
        for entry in &layer.pinned {
            let (name, digest) = &entry.value;
            mcp.pinned.insert(name.clone(), Sourced::new(digest.clone(), source.clone()));
        }
    } else {
        let misplaced = layer
            .pinned_only
            .as_ref()
            .map(|e| (e.at, PINNED_ONLY))
            .or_else(|| layer.pinned.first().map(|e| (e.at, PINNED)));
        if let Some((at, key)) = misplaced {
            return Err(file.error(
                at,
                key,
                Problem::invalid(
                    "pinning servers belongs in managed policy",
                    "remove this line; an administrator pins servers in /etc/airlock/policy.toml",
                ),
            ));
        }
    }
    for entry in &layer.servers {
        let index = match mcp.servers.iter().position(|s| s.name == entry.name) {
            Some(index) => {
                tighten(&mut mcp.servers[index], entry, file)?;
                index
            }
            None => {
                if !managed && mcp.pinned_only.value && !mcp.pinned.contains_key(&entry.name) {
                    let ceiling = &mcp.pinned_only.source;
                    return Err(file.error(
                        entry.at,
                        SERVERS,
                        Problem::widening(
                            format!(
                                "adds server \"{}\", which {ceiling} does not pin (pinned_only = true)",
                                entry.name
                            ),
                            format!("only servers named in [mcp.pinned] may run; {}", crate::layering::remedy(ceiling)),
                            ceiling,
                        ),
                    ));
                }
                if project {
                    check_project_server(entry, file, workspace)?;
                }
                mcp.servers.push(define(entry, file)?);
                mcp.servers.len() - 1
            }
        };
        apply_pin(mcp, index, entry, file)?;
    }
    Ok(())
}

/// A pinned server's digest is the pin; a digest that contradicts it is an error.
fn apply_pin(mcp: &mut McpPolicy, index: usize, entry: &ServerEntry, file: &LayerFile) -> Result<(), PolicyError> {
    let Some(pin) = mcp.pinned.get(&entry.name).cloned() else {
        return Ok(());
    };
    let server = &mut mcp.servers[index];
    if let Some(digest) = &server.digest
        && digest.value != pin.value
    {
        let at = entry.digest.as_ref().map_or(entry.at, |d| d.at);
        let message =
            format!("of server \"{}\" is {}, but {} pins it to {}", entry.name, digest.value, pin.source, pin.value);
        let problem = if pin.source == file.source {
            Problem::invalid(message, "remove the server's digest or make it equal to the pin")
        } else {
            Problem::widening(
                message,
                format!("remove the digest; {}", crate::layering::remedy(&pin.source)),
                &pin.source,
            )
        };
        return Err(file.error(at, DIGEST, problem));
    }
    server.digest = Some(pin);
    Ok(())
}

/// A server no layer above named.
fn define(entry: &ServerEntry, file: &LayerFile) -> Result<McpServer, PolicyError> {
    let source = &file.source;
    let name = &entry.name;
    let transport = match (&entry.command, &entry.url) {
        (Some(command), None) => McpTransport::Stdio {
            command: command.value.clone(),
            args: entry.args.as_ref().map(|a| a.value.clone()).unwrap_or_default(),
        },
        (None, Some(url)) => McpTransport::Http { url: url.value.clone() },
        _ => {
            return Err(file.error(
                entry.at,
                SERVERS,
                Problem::invalid(
                    format!("server \"{name}\" has neither a command nor a url"),
                    "give the program to run (command = \"npx\", args = [...]) or the endpoint (url = \"https://...\")",
                ),
            ));
        }
    };
    let list = |list: &Option<Entry<Vec<Entry<PathBuf>>>>| {
        let paths = list.as_ref().map(|l| l.value.iter().map(|e| e.value.clone()).collect()).unwrap_or_default();
        Sourced::new(paths, source.clone())
    };
    Ok(McpServer {
        name: name.clone(),
        defined_by: source.clone(),
        transport: Sourced::new(transport, source.clone()),
        env: Sourced::new(entry.env.as_ref().map(|e| e.value.clone()).unwrap_or_default(), source.clone()),
        read: list(&entry.read),
        write: list(&entry.write),
        hosts: Sourced::new(
            entry.hosts.as_ref().map(|l| l.value.iter().map(|e| e.value.clone()).collect()).unwrap_or_default(),
            source.clone(),
        ),
        digest: entry.digest.as_ref().map(|d| Sourced::new(d.value.clone(), source.clone())),
        enabled: Sourced::new(entry.enabled.as_ref().is_none_or(|e| e.value), source.clone()),
        timeout_secs: Sourced::new(
            entry.timeout_secs.as_ref().map_or(DEFAULT_TIMEOUT_SECS, |t| t.value),
            source.clone(),
        ),
        tools: entry
            .tools
            .iter()
            .map(|e| Rule { pattern: e.value.0.clone(), permission: e.value.1, origin: origin(file, e.at) })
            .collect(),
        default: entry.default.as_ref().map(|d| DefaultRule { permission: d.value, origin: origin(file, d.at) }),
    })
}

fn origin(file: &LayerFile, at: Pos) -> Origin {
    Origin { source: file.source.clone(), at: Some(Position { line: at.line, column: at.column }) }
}

/// A project's own server: it runs what the repository says, so it gets
/// nothing the repository could not already reach.
fn check_project_server(entry: &ServerEntry, file: &LayerFile, workspace: &Path) -> Result<(), PolicyError> {
    let name = &entry.name;
    let refuse = |at: Pos, key: &'static str, what: String| {
        Err(file.error(
            at,
            key,
            Problem::widening(
                format!("of server \"{name}\", defined by this project, {what}"),
                format!(
                    "a project's own server gets no environment, hosts, writes, reads outside the workspace, \
                     URL or \"allow\" rule; define server \"{name}\" in your user config to give it more"
                ),
                &Source::Default,
            ),
        ))
    };
    if let Some(url) = &entry.url {
        return refuse(url.at, URL, format!("is the remote endpoint \"{}\"", url.value));
    }
    if let Some(env) = entry.env.as_ref().filter(|e| !e.value.is_empty()) {
        let names: Vec<&str> = env.value.keys().map(String::as_str).collect();
        return refuse(env.at, ENV, format!("sets {}", names.join(", ")));
    }
    if let Some(host) = entry.hosts.as_ref().and_then(|h| h.value.first()) {
        return refuse(host.at, HOSTS, format!("reaches \"{}\"", host.value));
    }
    if let Some(path) = entry.write.as_ref().and_then(|w| w.value.first()) {
        return refuse(path.at, WRITE, format!("writes \"{}\"", path.value.display()));
    }
    if let Some(path) = entry.read.as_ref().and_then(|r| r.value.iter().find(|p| !p.value.starts_with(workspace))) {
        return refuse(path.at, READ, format!("reads \"{}\", outside the workspace", path.value.display()));
    }
    if let Some(rule) = entry.tools.iter().find(|t| t.value.1 == Permission::Allow) {
        return refuse(rule.at, TOOLS, format!("allows \"{}\"", rule.value.0));
    }
    if let Some(default) = entry.default.as_ref().filter(|d| d.value == Permission::Allow) {
        return refuse(default.at, DEFAULT, "allows every tool by default".to_owned());
    }
    Ok(())
}

/// A lower layer naming a server a layer above defined: only tightening.
fn tighten(server: &mut McpServer, entry: &ServerEntry, file: &LayerFile) -> Result<(), PolicyError> {
    let source = &file.source;
    let name = &entry.name;
    let fixed = |at: Pos, key: &'static str, what: &str, ceiling: &Source| {
        file.error(
            at,
            key,
            Problem::widening(
                format!("of server \"{name}\" differs from the {what} set by {ceiling}"),
                format!(
                    "a lower layer may not change what a server runs or is given; remove the line; {}",
                    crate::layering::remedy(ceiling)
                ),
                ceiling,
            ),
        )
    };
    let transport = &server.transport;
    match &transport.value {
        McpTransport::Stdio { command, args } => {
            if let Some(url) = &entry.url {
                return Err(fixed(url.at, URL, "command", &transport.source));
            }
            if let Some(c) = entry.command.as_ref().filter(|c| c.value != *command) {
                return Err(fixed(c.at, COMMAND, "command", &transport.source));
            }
            if let Some(a) = entry.args.as_ref().filter(|a| a.value != *args) {
                return Err(fixed(a.at, ARGS, "args", &transport.source));
            }
        }
        McpTransport::Http { url } => {
            if let Some(c) = &entry.command {
                return Err(fixed(c.at, COMMAND, "url", &transport.source));
            }
            if let Some(a) = &entry.args {
                return Err(fixed(a.at, ARGS, "url", &transport.source));
            }
            if let Some(u) = entry.url.as_ref().filter(|u| u.value != *url) {
                return Err(fixed(u.at, URL, "url", &transport.source));
            }
        }
    }
    if let Some(env) = &entry.env {
        // The project never passes anything of the user's environment.
        if matches!(source, Source::Project(_)) || env.value != server.env.value {
            return Err(fixed(env.at, ENV, "env", &server.env.source));
        }
    }
    if let Some(digest) = &entry.digest {
        match &server.digest {
            Some(above) if above.value != digest.value => {
                return Err(fixed(digest.at, DIGEST, "digest", &above.source));
            }
            Some(_) => {}
            None => server.digest = Some(Sourced::new(digest.value.clone(), source.clone())),
        }
    }
    for (key, new, list) in [(READ, &entry.read, &mut server.read), (WRITE, &entry.write, &mut server.write)] {
        let Some(new) = new else { continue };
        for path in &new.value {
            if !list.value.iter().any(|allowed| path.value.starts_with(allowed)) {
                return Err(file.error(
                    path.at,
                    key,
                    narrowing(name, &path.value.display().to_string(), &list.value, &list.source, key),
                ));
            }
        }
        *list = Sourced::new(new.value.iter().map(|e| e.value.clone()).collect(), source.clone());
    }
    if let Some(new) = &entry.hosts {
        let hosts = &mut server.hosts;
        for host in &new.value {
            if !hosts.value.iter().any(|allowed| domain_allows(allowed, &host.value)) {
                return Err(file.error(
                    host.at,
                    HOSTS,
                    narrowing(name, &host.value, &hosts.value, &hosts.source, HOSTS),
                ));
            }
        }
        *hosts = Sourced::new(new.value.iter().map(|e| e.value.clone()).collect(), source.clone());
    }
    if let Some(enabled) = &entry.enabled {
        if enabled.value && !server.enabled.value {
            let ceiling = &server.enabled.source;
            return Err(file.error(
                enabled.at,
                ENABLED,
                Problem::widening(
                    format!("of server \"{name}\" is true but {ceiling} sets false"),
                    format!("this layer may only disable a server; {}", crate::layering::remedy(ceiling)),
                    ceiling,
                ),
            ));
        }
        server.enabled = Sourced::new(enabled.value, source.clone());
    }
    if let Some(timeout) = &entry.timeout_secs {
        let above = &server.timeout_secs;
        if timeout.value > above.value {
            return Err(file.error(
                timeout.at,
                TIMEOUT,
                Problem::widening(
                    format!(
                        "of server \"{name}\" raises the timeout to {}, above {} from {}",
                        timeout.value, above.value, above.source
                    ),
                    format!("this layer may only lower it; use at most {}", above.value),
                    &above.source,
                ),
            ));
        }
        server.timeout_secs = Sourced::new(timeout.value, source.clone());
    }
    // No rule and no default: the built-in behaviour, under the layer that
    // defined the server.
    let implicit = Origin { source: server.defined_by.clone(), at: None };
    if let Some(default) = &entry.default {
        let (bound, bound_origin, what) = match &server.default {
            Some(d) => (d.permission, d.origin.clone(), "default".to_owned()),
            None => (IMPLICIT, implicit.clone(), "default for tools not annotated read-only".to_owned()),
        };
        check_rule(name, "default", default.value, bound, &bound_origin, &what)
            .map_err(|p| file.error(default.at, DEFAULT, p))?;
    }
    for rule in &entry.tools {
        let (tool, permission) = &rule.value;
        let (bound, bound_origin, what) = match (server.tools.iter().find(|r| r.pattern == *tool), &server.default) {
            (Some(r), _) => (r.permission, r.origin.clone(), format!("rule for \"{tool}\"")),
            (None, Some(d)) => (d.permission, d.origin.clone(), "default".to_owned()),
            (None, None) => (IMPLICIT, implicit.clone(), "default for tools not annotated read-only".to_owned()),
        };
        check_rule(name, tool, *permission, bound, &bound_origin, &what).map_err(|p| file.error(rule.at, TOOLS, p))?;
    }
    if let Some(default) = &entry.default {
        server.default = Some(DefaultRule { permission: default.value, origin: origin(file, default.at) });
    }
    for rule in &entry.tools {
        let new = Rule { pattern: rule.value.0.clone(), permission: rule.value.1, origin: origin(file, rule.at) };
        match server.tools.iter_mut().find(|r| r.pattern == new.pattern) {
            Some(existing) => *existing = new,
            None => server.tools.push(new),
        }
    }
    Ok(())
}

fn narrowing(name: &str, value: &str, allowed: &[impl fmt::Debug], ceiling: &Source, key: &str) -> Problem {
    Problem::widening(
        format!("of server \"{name}\" adds \"{value}\", which is not within what {ceiling} allows ({allowed:?})"),
        format!("this layer may only narrow {key}; {}", crate::layering::remedy(ceiling)),
        ceiling,
    )
}

fn check_rule(
    server: &str,
    tool: &str,
    permission: Permission,
    bound: Permission,
    bound_origin: &Origin,
    what: &str,
) -> Result<(), Problem> {
    if permission.tightness() >= bound.tightness() {
        return Ok(());
    }
    Err(Problem::widening(
        format!(
            "of server \"{server}\": \"{tool}\" = \"{permission}\" is looser than \"{bound}\" (the server's {what}, from {bound_origin})"
        ),
        format!(
            "this layer may only tighten rules (allow, then ask, then deny); {}",
            crate::layering::remedy(&bound_origin.source)
        ),
        &bound_origin.source,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tempfile::TempDir;

    use super::*;
    use crate::{Policy, PolicyFiles};

    struct Fixture {
        _dir: TempDir,
        files: PolicyFiles,
        cx: Context,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let files = PolicyFiles {
                managed: dir.path().join("policy.toml"),
                user: Some(dir.path().join("config.toml")),
                project: dir.path().join("project.toml"),
            };
            let cx = Context { home: PathBuf::from("/home/u"), workspace: PathBuf::from("/home/u/work") };
            Fixture { _dir: dir, files, cx }
        }

        fn write(self, layer: crate::Layer, text: &str) -> Self {
            let path = match layer {
                crate::Layer::Managed => &self.files.managed,
                crate::Layer::User => self.files.user.as_ref().unwrap(),
                crate::Layer::Project => &self.files.project,
            };
            fs_err::write(path, text).unwrap();
            self
        }

        fn managed(self, text: &str) -> Self {
            self.write(crate::Layer::Managed, text)
        }

        fn user(self, text: &str) -> Self {
            self.write(crate::Layer::User, text)
        }

        fn project(self, text: &str) -> Self {
            self.write(crate::Layer::Project, text)
        }

        fn load(&self) -> Result<Policy, PolicyError> {
            Policy::load(&self.files, &self.cx)
        }

        fn source(&self, layer: crate::Layer) -> Source {
            match layer {
                crate::Layer::Managed => Source::Managed(self.files.managed.clone()),
                crate::Layer::User => Source::User(self.files.user.clone().unwrap()),
                crate::Layer::Project => Source::Project(self.files.project.clone()),
            }
        }
    }

    fn server<'a>(policy: &'a Policy, name: &str) -> &'a McpServer {
        policy.mcp.server(name).unwrap_or_else(|| panic!("no server {name}"))
    }

    const GH: &str = "[mcp.servers.gh]\n\
        command = \"npx\"\n\
        args = [\"-y\", \"@modelcontextprotocol/server-github\"]\n\
        env = { GITHUB_TOKEN = \"${GH_TOKEN}\", MODE = \"ro\", KEY = { file = \"~/.config/gh-key\" } }\n\
        read = [\"~/notes\", \"docs\"]\n\
        write = [\"/tmp/gh-out\"]\n\
        hosts = [\"API.github.com\", \"*.githubusercontent.com\"]\n\
        timeout_secs = 120\n\
        default = \"ask\"\n\
        [mcp.servers.gh.tools]\n\
        search_issues = \"allow\"\n\
        delete_repo = \"deny\"\n";

    #[test]
    fn a_server_is_parsed_with_every_field_and_its_source() {
        use crate::Permission::*;
        let fx = Fixture::new().user(GH);
        let policy = fx.load().unwrap();
        let user = fx.source(crate::Layer::User);
        let gh = server(&policy, "gh");
        assert_eq!(gh.defined_by, user);
        assert_eq!(
            gh.transport,
            Sourced::new(
                McpTransport::Stdio {
                    command: "npx".into(),
                    args: vec!["-y".into(), "@modelcontextprotocol/server-github".into()]
                },
                user.clone()
            )
        );
        let env: Vec<(&str, &EnvValue)> = gh.env.value.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            env,
            [
                ("GITHUB_TOKEN", &EnvValue::FromEnv("GH_TOKEN".into())),
                ("KEY", &EnvValue::File("/home/u/.config/gh-key".into())),
                ("MODE", &EnvValue::Literal("ro".into())),
            ]
        );
        assert_eq!(gh.read.value, ["/home/u/notes", "/home/u/work/docs"].map(PathBuf::from), "~ and the workspace");
        assert_eq!(gh.write.value, [PathBuf::from("/tmp/gh-out")]);
        assert_eq!(gh.hosts.value, ["api.github.com", "*.githubusercontent.com"]);
        assert_eq!((gh.timeout_secs.value, gh.enabled.value, gh.digest.clone()), (120, true, None));
        assert_eq!(gh.default.as_ref().unwrap().permission, Ask);
        assert_eq!(gh.default.as_ref().unwrap().origin.to_string(), format!("{user}:9:11"));
        let tools: Vec<_> = gh.tools.iter().map(|r| (r.pattern.as_str(), r.permission)).collect();
        assert_eq!(tools, [("search_issues", Allow), ("delete_repo", Deny)], "in file order");
        assert_eq!(gh.tools[1].origin.to_string(), format!("{user}:12:1"));
        assert_eq!(policy.mcp_servers().iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["gh"]);

        let fx = Fixture::new().user(
            "[mcp.servers.remote]\nurl = \"https://mcp.example.com/v1\"\n\
             [mcp.servers.local]\nurl = \"http://127.0.0.1:8080/mcp\"\nenabled = false\n\
             [mcp.servers.plain]\ncommand = \"/opt/srv\"\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(
            server(&policy, "remote").transport.value,
            McpTransport::Http { url: "https://mcp.example.com/v1".into() }
        );
        let plain = server(&policy, "plain");
        assert_eq!(plain.transport.value, McpTransport::Stdio { command: "/opt/srv".into(), args: vec![] });
        assert_eq!((plain.timeout_secs.value, plain.enabled.value), (DEFAULT_TIMEOUT_SECS, true), "the defaults");
        let names: Vec<_> = policy.mcp_servers().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["remote", "plain"], "a disabled server does not start");
    }

    #[test]
    fn bad_values_are_refused_naming_key_and_position() {
        let cases: &[(&str, &str, &str, usize, usize)] = &[
            ("[mcp.servers.my_server]\ncommand = \"x\"\n", "mcp.servers", "may not contain '_'", 1, 14),
            ("[mcp.servers.\"a b\"]\ncommand = \"x\"\n", "mcp.servers", "is not a valid server name", 1, 14),
            ("[mcp.servers.a]\nargs = [\"x\"]\n", "mcp.servers", "neither a command nor a url", 1, 14),
            (
                "[mcp.servers.a]\ncommand = \"x\"\nurl = \"https://a.io\"\n",
                "mcp.servers.url",
                "both a command and a url",
                3,
                7,
            ),
            ("[mcp.servers.a]\nurl = \"https://a.io\"\nargs = []\n", "mcp.servers.args", "args but no command", 3, 8),
            ("[mcp.servers.a]\ncommand = \"\"\n", "mcp.servers.command", "empty command", 2, 11),
            (
                "[mcp.servers.a]\nurl = \"http://example.com/\"\n",
                "mcp.servers.url",
                "plain http to another machine",
                2,
                7,
            ),
            ("[mcp.servers.a]\nurl = \"ftp://a.io\"\n", "mcp.servers.url", "is not an https:// URL", 2, 7),
            ("[mcp.servers.a]\nurl = \"https://u:p@a.io\"\n", "mcp.servers.url", "carries credentials", 2, 7),
            ("[mcp.servers.a]\nurl = \"https://a.io:0/\"\n", "mcp.servers.url", "invalid port", 2, 7),
            (
                "[mcp.servers.a]\ncommand = \"x\"\ndigest = \"sha256:abc\"\n",
                "mcp.servers.digest",
                "is not a digest",
                3,
                10,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\ntimeout_secs = 0\n",
                "mcp.servers.timeout_secs",
                "not a usable timeout",
                3,
                16,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\ntimeout_secs = 3601\n",
                "mcp.servers.timeout_secs",
                "not a usable timeout",
                3,
                16,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\nenv = { \"A-B\" = \"1\" }\n",
                "mcp.servers.env",
                "not an environment variable name",
                3,
                9,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\nenv = { A = \"x${B}\" }\n",
                "mcp.servers.env",
                "whole \"${VAR}\"",
                3,
                13,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\nenv = { A = { file = \"rel\" } }\n",
                "mcp.servers.env",
                "is a relative path",
                3,
                13,
            ),
            ("[mcp.servers.a]\ncommand = \"x\"\nhosts = [\"https://a.io\"]\n", "mcp.servers.hosts", "is a URL", 3, 10),
            ("[mcp.servers.a]\ncommand = \"x\"\nread = [\"../x\"]\n", "mcp.servers.read", "\"..\"", 3, 9),
            (
                "[mcp.servers.a]\ncommand = \"x\"\ntools = { \"a.b\" = \"deny\" }\n",
                "mcp.servers.tools",
                "not a tool name",
                3,
                11,
            ),
            ("[mcp]\npinned_only = true\n", "mcp.pinned_only", "belongs in managed policy", 2, 15),
            ("[mcp.pinned]\na = \"sha256:00\"\n", "mcp.pinned", "is not a digest", 2, 5),
        ];
        for (text, key, message, line, column) in cases {
            let err = Fixture::new().user(text).load().unwrap_err();
            let shown = err.to_string();
            let PolicyError::Invalid { key: k, line: l, column: c, .. } = &err else {
                panic!("{text}: expected an invalid value, got {shown}");
            };
            assert_eq!((*k, *l, *c), (*key, *line, *column), "{text}: {shown}");
            assert!(shown.contains(message), "{text}: {shown}");
            assert!(shown.contains("\nhint: "), "{shown}");
        }
        let err = Fixture::new().user("[mcp.servers.a]\ncomand = \"x\"\n").load().unwrap_err();
        assert!(err.to_string().contains("unknown field `comand`"), "{err}");
        let err = Fixture::new().user("[mcp.servers.a]\ncommand = \"x\"\ndefault = \"yes\"\n").load().unwrap_err();
        assert!(err.to_string().contains("unknown variant `yes`"), "{err}");
        // Managed policy may pin; the underscore hint suggests a name.
        let err = Fixture::new().managed("[mcp.pinned]\nmy_srv = \"sha256:00\"\n").load().unwrap_err();
        assert!(err.to_string().contains("write \"my-srv\""), "{err}");
    }

    const MANAGED: &str = "[mcp.servers.gh]\n\
        command = \"gh-mcp\"\n\
        args = [\"serve\"]\n\
        env = { TOKEN = \"${GH_TOKEN}\" }\n\
        read = [\"~/src\"]\n\
        write = [\"~/out\"]\n\
        hosts = [\"*.github.com\"]\n\
        timeout_secs = 100\n\
        [mcp.servers.gh.tools]\n\
        push = \"ask\"\n\
        wipe = \"deny\"\n";

    /// A lower layer over a server a higher one defined: each line widens.
    #[test]
    fn a_lower_layer_may_not_widen_a_server_defined_above() {
        let cases: &[(&str, &str, &str)] = &[
            ("command = \"other\"\n", "mcp.servers.command", "differs from the command"),
            ("args = [\"serve\", \"--all\"]\n", "mcp.servers.args", "differs from the args"),
            ("url = \"https://evil.io/\"\n", "mcp.servers.url", "differs from the command"),
            ("env = { TOKEN = \"${OTHER}\" }\n", "mcp.servers.env", "differs from the env"),
            ("read = [\"~/src/a\", \"/etc\"]\n", "mcp.servers.read", "adds \"/etc\""),
            ("write = [\"~/src\"]\n", "mcp.servers.write", "adds \"/home/u/src\""),
            ("hosts = [\"github.com\"]\n", "mcp.servers.hosts", "adds \"github.com\""),
            ("timeout_secs = 101\n", "mcp.servers.timeout_secs", "raises the timeout to 101"),
            (
                "default = \"allow\"\n",
                "mcp.servers.default",
                "looser than \"ask\" (the server's default for tools not annotated read-only",
            ),
            (
                "tools = { push = \"allow\" }\n",
                "mcp.servers.tools",
                "\"push\" = \"allow\" is looser than \"ask\" (the server's rule for \"push\"",
            ),
            ("tools = { wipe = \"ask\" }\n", "mcp.servers.tools", "is looser than \"deny\""),
            ("tools = { other = \"allow\" }\n", "mcp.servers.tools", "looser than \"ask\""),
        ];
        for layer in [crate::Layer::User, crate::Layer::Project] {
            for (line, key, message) in cases {
                let fx = Fixture::new().managed(MANAGED).write(layer, &format!("[mcp.servers.gh]\n{line}"));
                let err = fx.load().unwrap_err();
                let shown = err.to_string();
                let PolicyError::Widening { path, key: k, line: l, ceiling, .. } = &err else {
                    panic!("{line}: expected a widening, got {shown}");
                };
                assert_eq!((*k, *l), (*key, 2), "{line}: {shown}");
                assert_eq!(**ceiling, fx.source(crate::Layer::Managed), "{shown}");
                let lower = fx.source(layer);
                let (Source::User(lower_path) | Source::Project(lower_path)) = &lower else { unreachable!() };
                assert_eq!(path, lower_path, "{shown}");
                assert!(shown.contains(&format!("{}", fx.files.managed.display())), "names both files: {shown}");
                assert!(shown.contains(message), "{line}: {shown}");
                assert!(shown.contains("server \"gh\""), "{shown}");
            }
        }
        // Enabling what a layer above disabled.
        let fx = Fixture::new()
            .user("[mcp.servers.a]\ncommand = \"x\"\nenabled = false\n")
            .project("[mcp.servers.a]\nenabled = true\n");
        let err = fx.load().unwrap_err();
        assert!(matches!(&err, PolicyError::Widening { key: "mcp.servers.enabled", line: 2, column: 11, .. }), "{err}");
        // A managed default binds a lower layer's rules for tools it did not name.
        let fx = Fixture::new()
            .managed("[mcp.servers.a]\ncommand = \"x\"\ndefault = \"deny\"\n")
            .user("[mcp.servers.a]\ntools = { read = \"ask\" }\n");
        let err = fx.load().unwrap_err();
        assert!(err.to_string().contains("(the server's default, from managed policy"), "{err}");
    }

    #[test]
    fn a_lower_layer_may_narrow_a_server_defined_above() {
        use crate::Permission::*;
        let fx = Fixture::new().managed(MANAGED).user(
            "[mcp.servers.gh]\ncommand = \"gh-mcp\"\nargs = [\"serve\"]\nenv = { TOKEN = \"${GH_TOKEN}\" }\n\
             read = [\"~/src/one\"]\nhosts = [\"api.github.com\"]\ntimeout_secs = 50\n\
             tools = { push = \"deny\", list = \"ask\" }\n",
        );
        let policy = fx.load().unwrap();
        let (managed, user) = (fx.source(crate::Layer::Managed), fx.source(crate::Layer::User));
        let gh = server(&policy, "gh");
        assert_eq!(gh.defined_by, managed);
        assert_eq!(gh.transport.source, managed, "restating is not changing");
        assert_eq!(gh.read, Sourced::new(vec![PathBuf::from("/home/u/src/one")], user.clone()));
        assert_eq!(gh.write, Sourced::new(vec![PathBuf::from("/home/u/out")], managed.clone()));
        assert_eq!(gh.hosts, Sourced::new(vec!["api.github.com".to_owned()], user.clone()));
        assert_eq!(gh.timeout_secs, Sourced::new(50, user.clone()));
        let tools: Vec<_> =
            gh.tools.iter().map(|r| (r.pattern.as_str(), r.permission, r.origin.source.clone())).collect();
        assert_eq!(tools, [("push", Deny, user.clone()), ("wipe", Deny, managed.clone()), ("list", Ask, user.clone())]);

        // The project narrows further, disables, and adds a digest.
        let fx = Fixture::new().managed(MANAGED).project(
            "[mcp.servers.gh]\nenabled = false\nhosts = []\nwrite = []\nread = [\"~/src\"]\ndefault = \"deny\"\n\
             digest = \"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n",
        );
        let policy = fx.load().unwrap();
        let project = fx.source(crate::Layer::Project);
        let gh = server(&policy, "gh");
        assert_eq!(gh.enabled, Sourced::new(false, project.clone()));
        assert!(gh.hosts.value.is_empty() && gh.write.value.is_empty());
        assert_eq!(gh.default.as_ref().unwrap().permission, Deny);
        assert_eq!(gh.digest.as_ref().unwrap().value, format!("sha256:{}", "a".repeat(64)), "lowercased");
        assert!(policy.mcp_servers().is_empty());
    }

    #[test]
    fn a_project_server_gets_nothing_beyond_the_workspace() {
        let cases: &[(&str, &str, &str)] = &[
            ("url = \"https://mcp.example.com/\"\n", "mcp.servers.url", "is the remote endpoint"),
            ("command = \"x\"\nenv = { A = \"1\" }\n", "mcp.servers.env", "sets A"),
            ("command = \"x\"\nhosts = [\"a.io\"]\n", "mcp.servers.hosts", "reaches \"a.io\""),
            ("command = \"x\"\nwrite = [\"out\"]\n", "mcp.servers.write", "writes \"/home/u/work/out\""),
            ("command = \"x\"\nread = [\"src\", \"~/.aws\"]\n", "mcp.servers.read", "reads \"/home/u/.aws\", outside"),
            ("command = \"x\"\nread = [\"/etc\"]\n", "mcp.servers.read", "outside the workspace"),
            ("command = \"x\"\ntools = { a = \"deny\", b = \"allow\" }\n", "mcp.servers.tools", "allows \"b\""),
            ("command = \"x\"\ndefault = \"allow\"\n", "mcp.servers.default", "allows every tool by default"),
        ];
        for (body, key, message) in cases {
            let fx = Fixture::new().project(&format!("[mcp.servers.p]\n{body}"));
            let err = fx.load().unwrap_err();
            let shown = err.to_string();
            let PolicyError::Widening { key: k, ceiling, .. } = &err else {
                panic!("{body}: expected a widening, got {shown}");
            };
            assert_eq!(*k, *key, "{body}: {shown}");
            assert_eq!(**ceiling, Source::Default, "{shown}");
            assert!(shown.contains(message), "{body}: {shown}");
            assert!(shown.contains("define server \"p\" in your user config"), "{shown}");
            // The same server is fine in the user config.
            let fx = Fixture::new().user(&format!("[mcp.servers.p]\n{body}"));
            assert!(fx.load().is_ok(), "{body}");
        }
        let fx = Fixture::new().project(
            "[mcp.servers.p]\ncommand = \"./tools/mcp\"\nargs = [\"--ro\"]\nread = [\".\", \"docs\"]\nhosts = []\n\
             default = \"ask\"\ntools = { drop = \"deny\" }\ntimeout_secs = 3600\n",
        );
        let policy = fx.load().unwrap();
        let p = server(&policy, "p");
        assert_eq!(p.defined_by, fx.source(crate::Layer::Project));
        assert_eq!(p.read.value, ["/home/u/work", "/home/u/work/docs"].map(PathBuf::from));
        assert!(p.env.value.is_empty() && p.write.value.is_empty() && p.hosts.value.is_empty());
        // Not even the value a layer above gave.
        let fx = Fixture::new()
            .user("[mcp.servers.a]\ncommand = \"x\"\nenv = { A = \"1\" }\n")
            .project("[mcp.servers.a]\nenv = { A = \"1\" }\n");
        assert!(matches!(fx.load().unwrap_err(), PolicyError::Widening { key: "mcp.servers.env", .. }));
    }

    const PIN_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const PIN_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn pinned_only_starts_only_pinned_servers_with_their_pin() {
        let managed =
            format!("[mcp]\npinned_only = true\n[mcp.pinned]\ngh = \"{PIN_A}\"\n[mcp.servers.mine]\ncommand = \"m\"\n");
        let fx = Fixture::new().managed(&managed).user("[mcp.servers.gh]\ncommand = \"gh-mcp\"\n");
        let policy = fx.load().unwrap();
        let servers = policy.mcp_servers();
        assert_eq!(servers.len(), 1, "managed's own unpinned server does not start either");
        let (name, gh) = servers[0];
        assert_eq!(name, "gh");
        assert_eq!(gh.digest, Some(Sourced::new(PIN_A.to_owned(), fx.source(crate::Layer::Managed))));
        assert!(policy.render().contains(&format!("[mcp.pinned]\ngh = \"{PIN_A}\" # managed policy")));

        // An unpinned server in a lower layer is refused where it is defined.
        for layer in [crate::Layer::User, crate::Layer::Project] {
            let fx = Fixture::new().managed(&managed).write(layer, "[mcp.servers.other]\ncommand = \"o\"\n");
            let err = fx.load().unwrap_err();
            let shown = err.to_string();
            assert!(
                matches!(&err, PolicyError::Widening { key: "mcp.servers", line: 1, column: 14, ceiling, .. }
                    if **ceiling == fx.source(crate::Layer::Managed)),
                "{shown}"
            );
            assert!(shown.contains("adds server \"other\", which managed policy"), "{shown}");
        }

        // A digest that contradicts the pin.
        let fx = Fixture::new()
            .managed(&managed)
            .user(&format!("[mcp.servers.gh]\ncommand = \"gh-mcp\"\ndigest = \"{PIN_B}\"\n"));
        let err = fx.load().unwrap_err();
        assert!(matches!(&err, PolicyError::Widening { key: "mcp.servers.digest", line: 3, column: 10, .. }), "{err}");
        assert!(err.to_string().contains(&format!("pins it to {PIN_A}")), "{err}");
        let fx = Fixture::new().managed(&format!(
            "[mcp.pinned]\na = \"{PIN_A}\"\n[mcp.servers.a]\ncommand = \"x\"\ndigest = \"{PIN_B}\"\n"
        ));
        assert!(matches!(fx.load().unwrap_err(), PolicyError::Invalid { key: "mcp.servers.digest", line: 5, .. }));
        // The same digest, restated, is fine; a pin without pinned_only pins too.
        let fx = Fixture::new().managed(&format!("[mcp.pinned]\na = \"{PIN_A}\"\n")).user(&format!(
            "[mcp.servers.a]\ncommand = \"x\"\ndigest = \"{PIN_A}\"\n[mcp.servers.b]\ncommand = \"y\"\n"
        ));
        let policy = fx.load().unwrap();
        assert_eq!(server(&policy, "a").digest.as_ref().unwrap().source, fx.source(crate::Layer::Managed));
        assert_eq!(policy.mcp_servers().len(), 2);
        // A digest set above may not be changed below.
        let fx = Fixture::new()
            .user(&format!("[mcp.servers.a]\ncommand = \"x\"\ndigest = \"{PIN_A}\"\n"))
            .project(&format!("[mcp.servers.a]\ndigest = \"{PIN_B}\"\n"));
        assert!(matches!(fx.load().unwrap_err(), PolicyError::Widening { key: "mcp.servers.digest", .. }));
    }

    #[test]
    fn policy_show_renders_servers_hiding_literal_values() {
        let fx = Fixture::new().user(
            "[mcp.servers.gh]\n\
             command = \"npx\"\n\
             args = [\"-y\", \"@modelcontextprotocol/server-github\"]\n\
             hosts = [\"API.github.com\", \"*.githubusercontent.com\"]\n\
             read = [\"docs\"]\n\
             timeout_secs = 120\n\
             default = \"ask\"\n\
             [mcp.servers.gh.tools]\n\
             search_issues = \"allow\"\n\
             [mcp.servers.gh.env]\n\
             TOKEN = \"${GH_TOKEN}\"\n\
             KEY = { file = \"~/k\" }\n\
             SECRET = \"hunter2\"\n",
        );
        let policy = fx.load().unwrap();
        let shown = policy.render();
        let user = fx.source(crate::Layer::User);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[mcp]\npinned_only = false # built-in default\n"), "{shown}");
        for line in [
            "[mcp.servers.gh]".to_owned(),
            format!("command = \"npx\" # {user}"),
            format!("args = [\"-y\", \"@modelcontextprotocol/server-github\"] # {user}"),
            format!("hosts = [\"api.github.com\", \"*.githubusercontent.com\"] # {user}"),
            format!("timeout_secs = 120 # {user}"),
            format!("default = \"ask\" # {user}:7:11\n"),
            format!("search_issues = \"allow\" # {user}:9:1\n"),
            format!("TOKEN = \"${{GH_TOKEN}}\" # {user}"),
            format!("KEY = {{ file = \"/home/u/k\" }} # {user}"),
            format!("SECRET = \"(hidden)\" # {user} (a literal value, not shown)"),
        ] {
            assert!(shown.contains(&line), "missing {line:?} in\n{shown}");
        }
        // The output is a policy file that reloads to the same servers.
        let again = Fixture::new().managed(&shown).load().unwrap();
        let gh = server(&again, "gh");
        let before = server(&policy, "gh");
        assert_eq!(
            (&gh.transport.value, &gh.hosts.value, &gh.read.value),
            (&before.transport.value, &before.hosts.value, &before.read.value)
        );
        assert_eq!(gh.tools.len(), before.tools.len());
    }
}
