//! `airlock policy show`: the effective policy as a commented policy file.

use std::path::Path;

use crate::rules::{Origin, RuleKind};
use crate::{EnvValue, LimitKey, McpPolicy, McpTransport, PathKind, Policy, Source, Sourced};

pub(crate) fn render(policy: &Policy) -> String {
    let sandbox = &policy.sandbox;
    let sources = &policy.list_sources;
    let path = |p: &Path| quote(&p.to_string_lossy());
    let mut lines = vec![
        "# Effective airlock policy; each value is followed by where it came from.".to_owned(),
        String::new(),
        "[sandbox]".to_owned(),
    ];
    list(&mut lines, "writable_roots", &sandbox.writable_roots, Some(&sources.writable_roots), |p| path(p));
    list(&mut lines, "readable_roots", &sandbox.readable_roots, Some(&sources.readable_roots), |p| path(p));
    list(&mut lines, "toolchain_roots", &sandbox.toolchain_roots, Some(&sources.toolchain_roots), |p| path(p));
    list(&mut lines, "deny_read", &sandbox.deny_read, None, |p| path(p));
    list(&mut lines, "protected", &sandbox.protected, None, |p| {
        let slash = if p.kind == PathKind::Dir { "/" } else { "" };
        quote(&format!("{}{slash}", p.path.to_string_lossy()))
    });
    let unsafe_ok = &sandbox.allow_unsafe_no_sandbox;
    lines.push(format!("allow_unsafe_no_sandbox = {} {}", unsafe_ok.value, comment(&unsafe_ok.source)));

    lines.extend([String::new(), "[network]".to_owned()]);
    let mode = &policy.network.mode;
    lines.push(format!("mode = {} {}", quote(&mode.value.to_string()), comment(&mode.source)));
    list(&mut lines, "allow_domains", &policy.network.allow_domains, Some(&sources.allow_domains), |d| quote(d));

    lines.extend([String::new(), "[limits]".to_owned()]);
    for key in LimitKey::ALL {
        let limit = policy.limits.get(key);
        lines.push(format!("{} = {} {}", key.field(), limit.value, comment(&limit.source)));
    }

    for kind in [RuleKind::Tool, RuleKind::Command] {
        lines.extend([String::new(), format!("[{}]", kind.table())]);
        let default = policy.rules.default_of(kind);
        lines.push(format!("default = {} {}", quote(default.permission.as_str()), origin(&default.origin)));
        for rule in policy.rules.of(kind) {
            lines.push(format!(
                "{} = {} {}",
                key(&rule.pattern),
                quote(rule.permission.as_str()),
                origin(&rule.origin)
            ));
        }
    }

    lines.extend([String::new(), "[agent]".to_owned()]);
    let agent = &policy.agent;
    lines.push(format!(
        "default_mode = {} {}",
        quote(agent.default_mode.value.as_str()),
        comment(&agent.default_mode.source)
    ));
    let modes: Vec<String> = agent.modes.value.iter().map(|m| quote(m.as_str())).collect();
    lines.push(format!("modes = [{}] {}", modes.join(", "), comment(&agent.modes.source)));
    mcp(&mut lines, &policy.mcp);
    lines.push(String::new());
    lines.join("\n")
}

/// `[mcp]`, the pins and each server. A literal environment value is
/// likely a secret, so it is not shown.
fn mcp(lines: &mut Vec<String>, mcp: &McpPolicy) {
    lines.extend([String::new(), "[mcp]".to_owned()]);
    lines.push(format!("pinned_only = {} {}", mcp.pinned_only.value, comment(&mcp.pinned_only.source)));
    if !mcp.pinned.is_empty() {
        lines.extend([String::new(), "[mcp.pinned]".to_owned()]);
        for (name, digest) in &mcp.pinned {
            lines.push(format!("{} = {} {}", key(name), quote(&digest.value), comment(&digest.source)));
        }
    }
    for server in &mcp.servers {
        let table = format!("mcp.servers.{}", key(&server.name));
        lines.extend([String::new(), format!("[{table}]"), format!("# defined by {}", strip(&server.defined_by))]);
        let from = comment(&server.transport.source);
        match &server.transport.value {
            McpTransport::Stdio { command, args } => {
                lines.push(format!("command = {} {from}", quote(command)));
                lines.push(format!("args = {} {from}", array(args.iter().map(|a| quote(a)))));
            }
            McpTransport::Http { url } => lines.push(format!("url = {} {from}", quote(url))),
        }
        let paths =
            |list: &Sourced<Vec<std::path::PathBuf>>| array(list.value.iter().map(|p| quote(&p.to_string_lossy())));
        lines.push(format!("read = {} {}", paths(&server.read), comment(&server.read.source)));
        lines.push(format!("write = {} {}", paths(&server.write), comment(&server.write.source)));
        lines.push(format!(
            "hosts = {} {}",
            array(server.hosts.value.iter().map(|h| quote(h))),
            comment(&server.hosts.source)
        ));
        if let Some(digest) = &server.digest {
            lines.push(format!("digest = {} {}", quote(&digest.value), comment(&digest.source)));
        }
        lines.push(format!("enabled = {} {}", server.enabled.value, comment(&server.enabled.source)));
        lines.push(format!("timeout_secs = {} {}", server.timeout_secs.value, comment(&server.timeout_secs.source)));
        match &server.default {
            Some(d) => lines.push(format!("default = {} {}", quote(d.permission.as_str()), origin(&d.origin))),
            None => lines
                .push("# default: tools annotated read-only \"allow\", others \"ask\" (built-in default)".to_owned()),
        }
        if !server.env.value.is_empty() {
            lines.extend([String::new(), format!("[{table}.env]")]);
            let from = comment(&server.env.source);
            for (name, value) in &server.env.value {
                let shown = match value {
                    EnvValue::Literal(_) => format!("\"(hidden)\" {from} (a literal value, not shown)"),
                    EnvValue::FromEnv(var) => format!("{} {from}", quote(&format!("${{{var}}}"))),
                    EnvValue::File(path) => format!("{{ file = {} }} {from}", quote(&path.to_string_lossy())),
                };
                lines.push(format!("{} = {shown}", key(name)));
            }
        }
        if !server.tools.is_empty() {
            lines.extend([String::new(), format!("[{table}.tools]")]);
            for rule in &server.tools {
                lines.push(format!(
                    "{} = {} {}",
                    key(&rule.pattern),
                    quote(rule.permission.as_str()),
                    origin(&rule.origin)
                ));
            }
        }
    }
}

fn array(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// A source on a comment line of its own.
fn strip(source: &Source) -> String {
    source.to_string().chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A list, one entry per line so each can carry its source. An empty list
/// that a layer replaced names that layer.
fn list<T>(
    lines: &mut Vec<String>,
    key: &str,
    entries: &[Sourced<T>],
    list_source: Option<&Source>,
    show: impl Fn(&T) -> String,
) {
    if entries.is_empty() {
        let note = list_source.map(|s| format!(" {}", comment(s))).unwrap_or_default();
        lines.push(format!("{key} = []{note}"));
        return;
    }
    lines.push(format!("{key} = ["));
    for entry in entries {
        lines.push(format!("    {}, {}", show(&entry.value), comment(&entry.source)));
    }
    lines.push("]".to_owned());
}

/// A comment must stay on its line, whatever a file name contains.
fn comment(source: &Source) -> String {
    let text: String = source.to_string().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    format!("# {text}")
}

/// Like [`comment`], with the line and column when the rule came from a file.
fn origin(origin: &Origin) -> String {
    let text: String = origin.to_string().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    format!("# {text}")
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(s: &str) -> String {
    let bare = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { s.to_owned() } else { quote(s) }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
        let parsed: toml::Table = toml::from_str(&format!("k = {}", quote("a\"b\\c\n"))).unwrap();
        assert_eq!(parsed["k"].as_str(), Some("a\"b\\c\n"));
    }

    #[test]
    fn comments_stay_on_one_line() {
        assert_eq!(comment(&Source::User("/a\nb".into())), "# user config /a?b");
    }

    #[test]
    fn rule_keys_are_bare_only_when_toml_allows() {
        assert_eq!(key("run_command"), "run_command");
        assert_eq!(key("git push"), "\"git push\"");
        assert_eq!(key("echo \"x\""), "\"echo \\\"x\\\"\"");
        assert_eq!(key("a.b"), "\"a.b\"");
        let line = format!("[commands]\n{} = \"deny\"\n", key("echo \"x\""));
        let parsed: toml::Table = toml::from_str(&line).unwrap();
        assert!(parsed["commands"].as_table().unwrap().contains_key("echo \"x\""));
    }
}
