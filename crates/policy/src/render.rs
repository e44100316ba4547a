//! `airlock policy show`: the effective policy as a commented policy file.

use std::path::Path;

use crate::rules::{Origin, RuleKind};
use crate::{LimitKey, PathKind, Policy, Source, Sourced};

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
    lines.push(String::new());
    lines.join("\n")
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
