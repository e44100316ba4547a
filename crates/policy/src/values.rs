//! Parsing and comparing single values: paths, protected paths and domains.
//!
//! Everything here is lexical: no file is touched, so a policy means the same
//! thing whether or not its paths exist yet.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use crate::error::Problem;
use crate::{PathKind, ProtectedPath};

const ABSOLUTE_HINT: &str = "write an absolute path, or one starting with ~/";

/// Expands a leading `~` to `home`; anything else is returned as is.
///
/// Only for the built-in defaults, which are known to be well formed.
pub(crate) fn expand_home(raw: &str, home: &Path) -> PathBuf {
    match raw.strip_prefix("~/") {
        Some(rest) => normalize(&home.join(rest)),
        None if raw == "~" => normalize(home),
        None => normalize(Path::new(raw)),
    }
}

/// Resolves a root or `deny_read` entry: `~` and `~/…` expand to `home`,
/// absolute paths stay, relative paths are joined to `base` (the workspace,
/// for the project layer) or rejected when there is no base.
pub(crate) fn resolve_root(raw: &Path, home: &Path, base: Option<&Path>) -> Result<PathBuf, Problem> {
    let shown = raw.display();
    if raw.as_os_str().is_empty() {
        return Err(Problem::invalid("the path is empty", ABSOLUTE_HINT));
    }
    let mut components = raw.components();
    let (start, rest) = match components.next() {
        Some(Component::Normal(first)) if first == "~" => (home, components.as_path()),
        Some(Component::Normal(first)) if first.as_encoded_bytes().starts_with(b"~") => {
            return Err(Problem::invalid(
                format!("\"{shown}\" uses ~user, which is not supported"),
                "write the absolute path of that user's home",
            ));
        }
        _ if raw.is_absolute() => (Path::new("/"), raw),
        _ => match base {
            Some(base) => (base, raw),
            None => {
                return Err(Problem::invalid(
                    format!("\"{shown}\" is a relative path"),
                    format!("only the project config may use paths relative to the workspace; {ABSOLUTE_HINT}"),
                ));
            }
        },
    };
    reject_parent_dir(raw)?;
    Ok(normalize(&start.join(rest)))
}

/// Parses a `protected` entry: relative to the workspace, no `..`, a
/// trailing `/` marks a directory.
pub(crate) fn parse_protected(raw: &str) -> Result<ProtectedPath, Problem> {
    if raw.starts_with('/') || raw.starts_with('~') {
        return Err(Problem::invalid(
            format!("\"{raw}\" is not relative to the workspace"),
            "protected paths name files inside the workspace, such as \".git/hooks/\" or \".envrc\"",
        ));
    }
    reject_parent_dir(Path::new(raw))?;
    let path = normalize(Path::new(raw));
    if path.as_os_str().is_empty() {
        return Err(Problem::invalid(
            format!("\"{raw}\" names the workspace itself"),
            "name a file or folder inside the workspace; the workspace as a whole cannot be protected",
        ));
    }
    let kind = if raw.ends_with('/') { PathKind::Dir } else { PathKind::File };
    Ok(ProtectedPath { path, kind })
}

/// Parses an `allow_domains` entry into its lowercase form: a host name,
/// optionally with a leading `*.` wildcard, or an IP literal.
pub(crate) fn parse_domain(raw: &str) -> Result<String, Problem> {
    let lower = raw.to_ascii_lowercase();
    if let Some((_, after_scheme)) = lower.split_once("://") {
        let host = after_scheme.split(['/', ':']).next().unwrap_or(after_scheme);
        return Err(Problem::invalid(
            format!("\"{raw}\" is a URL, not a domain"),
            format!("write only the host name: \"{host}\""),
        ));
    }
    if lower.contains('/') {
        return Err(Problem::invalid(
            format!("\"{raw}\" contains a path"),
            "write only the host name, such as \"crates.io\"",
        ));
    }
    let unbracketed = lower.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(&lower);
    if unbracketed.parse::<Ipv6Addr>().is_ok() || lower.parse::<Ipv4Addr>().is_ok() {
        return Ok(unbracketed.to_owned());
    }
    if let Some((host, _port)) = lower.rsplit_once(':') {
        return Err(Problem::invalid(
            format!("\"{raw}\" has a port"),
            format!("write \"{host}\"; the allowlist names hosts, not ports"),
        ));
    }
    let host = lower.strip_prefix("*.").unwrap_or(&lower);
    if host.contains('*') {
        return Err(Problem::invalid(
            format!("\"{raw}\" has a wildcard that is not a leading \"*.\""),
            "write \"*.example.com\" to allow every subdomain of example.com",
        ));
    }
    if !is_host_name(host) {
        return Err(Problem::invalid(
            format!("\"{raw}\" is not a valid host name"),
            "a host name is dot-separated labels of letters, digits and '-', such as \"crates.io\"",
        ));
    }
    Ok(lower)
}

/// Whether the allowlist `pattern` covers `domain`, which may itself be a
/// wildcard: `*.example.com` covers `a.example.com` and `*.a.example.com`
/// but not `example.com`.
pub(crate) fn domain_allows(pattern: &str, domain: &str) -> bool {
    if pattern == domain {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    let host = domain.strip_prefix("*.").unwrap_or(domain);
    host.strip_suffix(suffix).is_some_and(|label| label.len() > 1 && label.ends_with('.'))
}

fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn reject_parent_dir(raw: &Path) -> Result<(), Problem> {
    if raw.components().any(|c| c == Component::ParentDir) {
        return Err(Problem::invalid(
            format!("\"{}\" contains a \"..\" component", raw.display()),
            "write the path without \"..\"; policy paths are compared as written, not resolved",
        ));
    }
    Ok(())
}

/// Removes `.` components and trailing slashes, without touching the file
/// system. `..` is rejected before user-written paths get here.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(raw: &str, base: Option<&str>) -> Result<PathBuf, Problem> {
        resolve_root(Path::new(raw), Path::new("/home/u"), base.map(Path::new))
    }

    #[test]
    fn tilde_expands_to_home() {
        assert_eq!(root("~", None).unwrap(), PathBuf::from("/home/u"));
        assert_eq!(root("~/scratch/", None).unwrap(), PathBuf::from("/home/u/scratch"));
        assert_eq!(root("~/./a//b", None).unwrap(), PathBuf::from("/home/u/a/b"));
        assert_eq!(expand_home("~/.ssh", Path::new("/home/u")), PathBuf::from("/home/u/.ssh"));
    }

    #[test]
    fn tilde_user_is_rejected() {
        let problem = root("~bob/x", None).unwrap_err();
        assert!(problem.message.contains("~user"), "{problem:?}");
    }

    #[test]
    fn absolute_paths_are_normalized() {
        assert_eq!(root("/srv/./build/", None).unwrap(), PathBuf::from("/srv/build"));
        assert!(root("/srv/../etc", None).unwrap_err().message.contains(".."));
        assert!(root("", None).unwrap_err().message.contains("empty"));
    }

    #[test]
    fn relative_paths_need_a_base() {
        assert!(root("scratch", None).unwrap_err().message.contains("relative"));
        assert_eq!(root("./out/", Some("/w")).unwrap(), PathBuf::from("/w/out"));
        assert!(root("../sibling", Some("/w")).is_err());
    }

    #[test]
    fn protected_paths_are_relative_and_typed() {
        let dir = parse_protected(".git/hooks/").unwrap();
        assert_eq!(dir.path, PathBuf::from(".git/hooks"));
        assert_eq!(dir.kind, PathKind::Dir);
        let file = parse_protected("./.envrc").unwrap();
        assert_eq!(file.path, PathBuf::from(".envrc"));
        assert_eq!(file.kind, PathKind::File);
        for bad in ["/etc/passwd", "~/.bashrc", "a/../../b", ".", "./"] {
            assert!(parse_protected(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn domains_are_lowercased_and_validated() {
        assert_eq!(parse_domain("Crates.IO").unwrap(), "crates.io");
        assert_eq!(parse_domain("*.github.com").unwrap(), "*.github.com");
        assert_eq!(parse_domain("10.0.0.1").unwrap(), "10.0.0.1");
        assert_eq!(parse_domain("[::1]").unwrap(), "::1");
        for bad in ["a.*.com", "*", "-a.com", "a..com", "a b.com", ""] {
            assert!(parse_domain(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn urls_and_ports_get_a_clear_message() {
        let url = parse_domain("https://x.com/path").unwrap_err();
        assert!(url.message.contains("is a URL"), "{url:?}");
        assert!(url.hint.contains("\"x.com\""), "{url:?}");
        let port = parse_domain("x.com:443").unwrap_err();
        assert!(port.message.contains("has a port"), "{port:?}");
        assert!(port.hint.contains("\"x.com\""), "{port:?}");
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(domain_allows("crates.io", "crates.io"));
        assert!(!domain_allows("crates.io", "static.crates.io"));
        assert!(domain_allows("*.example.com", "a.example.com"));
        assert!(domain_allows("*.example.com", "*.a.example.com"));
        assert!(domain_allows("*.example.com", "*.example.com"));
        assert!(!domain_allows("*.example.com", "example.com"));
        assert!(!domain_allows("*.example.com", "badexample.com"));
        assert!(!domain_allows("a.example.com", "*.example.com"));
    }
}
