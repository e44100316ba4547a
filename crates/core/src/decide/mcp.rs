//! Decisions on MCP tools, named `mcp__SERVER__TOOL`.
//!
//! Server names cannot contain `_` (policy refuses them), so the server is
//! everything up to the first `__` after the prefix and the tool is the rest.

use airlock_policy::McpServer;

use super::{Decided, Decision, Grant, Mode, Rules, rank};

/// What every MCP tool name starts with.
pub(super) const PREFIX: &str = "mcp__";

/// The source shown for a server without a `default`.
pub(super) const IMPLICIT_DEFAULT: &str = "built-in default (tools annotated read-only allow, others ask)";

/// One MCP server's rules, from its `[mcp.servers.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerRules {
    /// The server's name.
    pub server: String,
    /// Per tool, as in `mcp__SERVER__TOOL`.
    pub tools: Vec<(String, Decision)>,
    /// For tools without a rule; `None`: read-only tools allow, others ask.
    pub default: Option<Decision>,
}

impl McpServerRules {
    /// The rules policy gives `server`.
    pub fn from_server(server: &McpServer) -> McpServerRules {
        McpServerRules {
            server: server.name.clone(),
            tools: server.tools.iter().map(|r| (r.pattern.clone(), r.permission.into())).collect(),
            default: server.default.as_ref().map(|d| d.permission.into()),
        }
    }
}

/// `mcp__SERVER__TOOL` split into `(SERVER, TOOL)`; `None` unless the name
/// has the prefix, a server and a tool.
pub fn split_mcp_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

/// See [`super::decide_in_mode`].
pub(super) fn decide(rules: &Rules, mode: Mode, qualified: &str) -> Decided {
    let decided = |decision, source: String| Decided { decision, source };
    let Some((server, tool)) = split_mcp_name(qualified) else {
        return decided(Decision::Deny, "mcp:unknown-server".to_owned());
    };
    let Some(config) = rules.mcp.iter().find(|s| s.server == server) else {
        return decided(Decision::Deny, "mcp:unknown-server".to_owned());
    };
    let read_only = rules.mcp_read_only.contains(qualified);
    let (mut decision, mut source) = match (config.tools.iter().find(|(t, _)| t == tool), config.default) {
        (Some((_, d)), _) => (*d, format!("rule:mcp:{server}:{tool}")),
        (None, Some(d)) => (d, format!("rule:mcp:{server}:default")),
        (None, None) if read_only => (Decision::Allow, "mcp:read-only".to_owned()),
        (None, None) => (Decision::Ask, "mcp:not-read-only".to_owned()),
    };
    // A `[tools]` rule for the qualified name may only make it stricter: the
    // server's own rules are where MCP tools are opened.
    if let Some((_, d)) = rules.tools.iter().find(|(t, _)| t == qualified)
        && rank(*d) > rank(decision)
    {
        decision = *d;
        source = format!("rule:tool:{qualified}");
    }
    if decision == Decision::Deny {
        return decided(Decision::Deny, source);
    }
    if mode == Mode::Plan && !read_only {
        let says = decision.as_str();
        return decided(Decision::Deny, format!("mode:plan (read-only; {source} says {says})"));
    }
    if decision == Decision::Allow {
        return decided(Decision::Allow, source);
    }
    if let Some(grant) = granted(rules, server, qualified) {
        return decided(Decision::Allow, grant);
    }
    if mode == Mode::Auto {
        return decided(Decision::Allow, format!("mode:auto ({source} says ask)"));
    }
    if rules.headless {
        return decided(Decision::Deny, format!("mode:headless ({source} says ask)"));
    }
    decided(Decision::Ask, source)
}

/// `granted:NAME` or `approved:session:NAME`, where NAME is the qualified
/// tool or `mcp__SERVER__*`.
fn granted(rules: &Rules, server: &str, qualified: &str) -> Option<String> {
    let every = format!("{PREFIX}{server}__*");
    let names = [qualified, every.as_str()];
    if let Some(name) = names.iter().find(|n| rules.granted.iter().any(|g| g == *n)) {
        return Some(format!("granted:{name}"));
    }
    names
        .iter()
        .find(|n| rules.session.iter().any(|g| *g == Grant::Tool((**n).to_owned())))
        .map(|name| format!("approved:session:{name}"))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::decide::{Subject, decide_in_mode, session_grants};

    const RO: &str = "mcp__gh__list_issues";
    const RW: &str = "mcp__gh__create_issue";

    fn server(name: &str, tools: &[(&str, Decision)], default: Option<Decision>) -> McpServerRules {
        McpServerRules {
            server: name.to_owned(),
            tools: tools.iter().map(|(t, d)| ((*t).to_owned(), *d)).collect(),
            default,
        }
    }

    /// A person present, server `gh` with no rules; `list_issues` read-only.
    fn rules() -> Rules {
        let mut rules = Rules { headless: false, ..Rules::default() };
        rules.mcp.push(server("gh", &[], None));
        rules.set_mcp_read_only([RO.to_owned(), "mcp__other__x".to_owned()]);
        rules
    }

    fn d(rules: &Rules, mode: Mode, tool: &str) -> Decided {
        decide_in_mode(rules, mode, tool, &Value::Null)
    }

    fn is(decision: Decision, source: &str) -> Decided {
        Decided { decision, source: source.to_owned() }
    }

    #[test]
    fn names_split_at_the_first_separator_after_the_server() {
        assert_eq!(split_mcp_name("mcp__gh__list_issues"), Some(("gh", "list_issues")));
        assert_eq!(split_mcp_name("mcp__gh__a__b"), Some(("gh", "a__b")));
        assert_eq!(split_mcp_name("mcp__my-srv__t"), Some(("my-srv", "t")));
        for bad in ["mcp__gh", "mcp____t", "mcp__gh__", "gh__t", "read_file"] {
            assert_eq!(split_mcp_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn without_rules_read_only_tools_are_allowed_and_others_asked() {
        let rules = rules();
        assert_eq!(d(&rules, Mode::Ask, RO), is(Decision::Allow, "mcp:read-only"));
        assert_eq!(d(&rules, Mode::Ask, RW), is(Decision::Ask, "mcp:not-read-only"));
        // Read-only as announced by the server: a name alone is not enough.
        let mut forgot = rules.clone();
        forgot.set_mcp_read_only(Vec::new());
        assert_eq!(d(&forgot, Mode::Ask, RO), is(Decision::Ask, "mcp:not-read-only"));
    }

    #[test]
    fn a_server_that_is_not_configured_is_denied() {
        let rules = rules();
        for tool in ["mcp__other__x", "mcp__gh", "mcp____x", "mcp__GH__list_issues"] {
            assert_eq!(d(&rules, Mode::Auto, tool), is(Decision::Deny, "mcp:unknown-server"), "{tool}");
        }
        // Not even a grant or a [tools] allow rule opens one.
        let mut granted = rules.clone();
        granted.granted.push("mcp__other__x".into());
        granted.tools.push(("mcp__other__x".into(), Decision::Allow));
        assert_eq!(d(&granted, Mode::Ask, "mcp__other__x").decision, Decision::Deny);
    }

    #[test]
    fn the_tool_rule_then_the_server_default_then_the_annotation() {
        let mut rules = rules();
        rules.mcp[0] = server("gh", &[("create_issue", Decision::Allow), ("list_issues", Decision::Ask)], None);
        assert_eq!(d(&rules, Mode::Ask, RW), is(Decision::Allow, "rule:mcp:gh:create_issue"));
        assert_eq!(d(&rules, Mode::Ask, RO), is(Decision::Ask, "rule:mcp:gh:list_issues"), "a rule beats read-only");
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__close"), is(Decision::Ask, "mcp:not-read-only"));
        rules.mcp[0].default = Some(Decision::Deny);
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__close"), is(Decision::Deny, "rule:mcp:gh:default"));
        assert_eq!(d(&rules, Mode::Ask, RW).source, "rule:mcp:gh:create_issue", "the tool's rule first");
        rules.mcp[0].default = Some(Decision::Allow);
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__close"), is(Decision::Allow, "rule:mcp:gh:default"));
    }

    #[test]
    fn a_tools_rule_for_the_qualified_name_wins_only_if_stricter() {
        let mut rules = rules();
        rules.tools.push((RO.into(), Decision::Deny));
        rules.tools.push((RW.into(), Decision::Allow));
        assert_eq!(d(&rules, Mode::Ask, RO), is(Decision::Deny, &format!("rule:tool:{RO}")));
        assert_eq!(d(&rules, Mode::Ask, RW), is(Decision::Ask, "mcp:not-read-only"), "an allow does not loosen");
        rules.tools.push(("mcp__gh__t".into(), Decision::Ask));
        rules.mcp[0].tools.push(("t".into(), Decision::Allow));
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__t"), is(Decision::Ask, "rule:tool:mcp__gh__t"));
        // The [tools] default (deny) is not a rule for MCP tools.
        assert_eq!(rules.default_tool, Decision::Deny);
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__u").source, "mcp:not-read-only");
    }

    #[test]
    fn plan_runs_only_read_only_tools() {
        let mut rules = rules();
        assert_eq!(d(&rules, Mode::Plan, RO), is(Decision::Allow, "mcp:read-only"));
        assert_eq!(d(&rules, Mode::Plan, RW), is(Decision::Deny, "mode:plan (read-only; mcp:not-read-only says ask)"));
        rules.mcp[0].tools.push(("create_issue".into(), Decision::Allow));
        rules.granted.push(RW.into());
        assert_eq!(
            d(&rules, Mode::Plan, RW),
            is(Decision::Deny, "mode:plan (read-only; rule:mcp:gh:create_issue says allow)")
        );
        // A read-only tool that a rule asks about is still asked.
        rules.mcp[0].tools.push(("list_issues".into(), Decision::Ask));
        assert_eq!(d(&rules, Mode::Plan, RO), is(Decision::Ask, "rule:mcp:gh:list_issues"));
    }

    #[test]
    fn edits_frees_no_mcp_tool_and_auto_runs_what_asks() {
        let mut rules = rules();
        assert_eq!(d(&rules, Mode::Edits, RW), is(Decision::Ask, "mcp:not-read-only"));
        assert_eq!(d(&rules, Mode::Auto, RW), is(Decision::Allow, "mode:auto (mcp:not-read-only says ask)"));
        rules.mcp[0].default = Some(Decision::Deny);
        assert_eq!(d(&rules, Mode::Auto, RW), is(Decision::Deny, "rule:mcp:gh:default"), "never a deny");
        let headless = Rules { headless: true, ..self::rules() };
        assert_eq!(d(&headless, Mode::Edits, RW), is(Decision::Deny, "mode:headless (mcp:not-read-only says ask)"));
        assert_eq!(d(&headless, Mode::Auto, RW).decision, Decision::Allow);
    }

    #[test]
    fn headless_asks_are_denied_unless_granted_by_name_or_server() {
        let mut rules = Rules { headless: true, ..self::rules() };
        rules.mcp.push(server("fs", &[], None));
        assert_eq!(d(&rules, Mode::Ask, RW), is(Decision::Deny, "mode:headless (mcp:not-read-only says ask)"));
        assert_eq!(d(&rules, Mode::Ask, RO).decision, Decision::Allow);
        let mut named = rules.clone();
        named.granted.push(RW.into());
        assert_eq!(d(&named, Mode::Ask, RW), is(Decision::Allow, &format!("granted:{RW}")));
        assert_eq!(d(&named, Mode::Ask, "mcp__gh__close").decision, Decision::Deny);
        let mut server_wide = rules.clone();
        server_wide.granted.push("mcp__gh__*".into());
        assert_eq!(d(&server_wide, Mode::Ask, RW), is(Decision::Allow, "granted:mcp__gh__*"));
        assert_eq!(d(&server_wide, Mode::Ask, "mcp__fs__write").decision, Decision::Deny, "another server");
        // A grant does not lift a deny.
        server_wide.mcp[0].tools.push(("create_issue".into(), Decision::Deny));
        assert_eq!(d(&server_wide, Mode::Ask, RW), is(Decision::Deny, "rule:mcp:gh:create_issue"));
    }

    #[test]
    fn a_person_may_approve_a_tool_or_a_server_for_the_session() {
        let mut rules = self::rules();
        assert_eq!(session_grants(RW, &Value::Null), [Grant::Tool(RW.into()), Grant::Tool("mcp__gh__*".into())]);
        rules.allow_for_session(Grant::Tool(RW.into()));
        assert_eq!(d(&rules, Mode::Ask, RW), is(Decision::Allow, &format!("approved:session:{RW}")));
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__close").decision, Decision::Ask);
        rules.allow_for_session(Grant::Tool("mcp__gh__*".into()));
        assert_eq!(d(&rules, Mode::Ask, "mcp__gh__close"), is(Decision::Allow, "approved:session:mcp__gh__*"));
    }

    #[test]
    fn rules_from_policy_keep_the_servers_that_may_start_and_list_their_rules() {
        let dir = tempfile::tempdir().unwrap();
        let cx = airlock_policy::Context { home: "/home/u".into(), workspace: "/home/u/work".into() };
        let user = dir.path().join("config.toml");
        std::fs::write(
            &user,
            "[mcp.servers.gh]\ncommand = \"gh-mcp\"\ndefault = \"deny\"\n\
             [mcp.servers.gh.tools]\nlist_issues = \"allow\"\n\
             [mcp.servers.fs]\ncommand = \"fs-mcp\"\n\
             [mcp.servers.off]\ncommand = \"x\"\nenabled = false\n",
        )
        .unwrap();
        let files = airlock_policy::PolicyFiles {
            managed: dir.path().join("policy.toml"),
            user: Some(user.clone()),
            project: dir.path().join("project.toml"),
        };
        let policy = airlock_policy::Policy::load(&files, &cx).unwrap();
        let mut rules = Rules { headless: false, ..Rules::from_policy(&policy) };
        rules.set_mcp_read_only(["mcp__fs__read".to_owned()]);
        assert_eq!(d(&rules, Mode::Ask, RO), is(Decision::Allow, "rule:mcp:gh:list_issues"));
        assert_eq!(d(&rules, Mode::Ask, RW), is(Decision::Deny, "rule:mcp:gh:default"));
        assert_eq!(d(&rules, Mode::Ask, "mcp__fs__read"), is(Decision::Allow, "mcp:read-only"));
        assert_eq!(d(&rules, Mode::Ask, "mcp__fs__write"), is(Decision::Ask, "mcp:not-read-only"));
        assert_eq!(d(&rules, Mode::Auto, "mcp__off__x"), is(Decision::Deny, "mcp:unknown-server"), "disabled");

        let lines = rules.in_force();
        let find = |subject: Subject| lines.iter().find(|l| l.subject == subject).cloned();
        let user = format!("user config {}", user.display());
        let gh_default = find(Subject::McpDefault("gh".into())).unwrap();
        assert_eq!((gh_default.decision, gh_default.source), (Decision::Deny, format!("{user}:3:11")));
        let list = find(Subject::McpTool { server: "gh".into(), tool: "list_issues".into() }).unwrap();
        assert_eq!((list.decision, list.source), (Decision::Allow, format!("{user}:5:1")));
        let fs_default = find(Subject::McpDefault("fs".into())).unwrap();
        assert_eq!((fs_default.decision, fs_default.source.as_str()), (Decision::Ask, IMPLICIT_DEFAULT));
        assert_eq!(find(Subject::McpDefault("off".into())), None);
        assert_eq!(lines.len(), Rules::default().in_force().len() + 3);
    }

    /// Whatever a project config says about MCP servers, if it loads, no
    /// tool of a server above is decided more loosely, and a tool of the
    /// project's own server is only allowed when its server annotated it
    /// read-only.
    #[test]
    fn no_project_config_that_loads_loosens_an_mcp_decision() {
        let dir = tempfile::tempdir().unwrap();
        let cx = airlock_policy::Context { home: "/home/u".into(), workspace: "/home/u/work".into() };
        let user = dir.path().join("user.toml");
        std::fs::write(
            &user,
            "[mcp.servers.gh]\ncommand = \"gh-mcp\"\nhosts = [\"api.github.com\"]\ndefault = \"allow\"\n\
             [mcp.servers.gh.tools]\nask = \"ask\"\nno = \"deny\"\n\
             [mcp.servers.plain]\ncommand = \"plain-mcp\"\n",
        )
        .unwrap();
        let files = airlock_policy::PolicyFiles {
            managed: dir.path().join("none.toml"),
            user: Some(user),
            project: dir.path().join("project.toml"),
        };
        let read_only = ["mcp__gh__ro", "mcp__plain__ro", "mcp__p__ro"].map(str::to_owned);
        let load = || {
            let policy = airlock_policy::Policy::load(&files, &cx).ok()?;
            let mut rules = Rules { headless: false, ..Rules::from_policy(&policy) };
            rules.set_mcp_read_only(read_only.clone());
            Some(rules)
        };
        let base = load().unwrap();
        let above = ["mcp__gh__ask", "mcp__gh__no", "mcp__gh__other", "mcp__gh__ro", "mcp__plain__x", "mcp__plain__ro"];
        // Dotted keys, so that any two lines make one valid file.
        let mut lines = Vec::new();
        for permission in ["allow", "ask", "deny"] {
            for server in ["gh", "plain", "p"] {
                for key in ["ask", "no", "other", "ro", "x"] {
                    lines.push(format!("mcp.servers.{server}.tools.{key} = \"{permission}\"\n"));
                }
                lines.push(format!("mcp.servers.{server}.default = \"{permission}\"\n"));
            }
            for tool in ["mcp__gh__ask", "mcp__gh__other", "mcp__plain__x"] {
                lines.push(format!("tools.{tool} = \"{permission}\"\n"));
            }
        }
        for line in ["enabled = true", "enabled = false", "command = \"other\"", "hosts = []", "hosts = [\"evil.io\"]"]
        {
            lines.push(format!("mcp.servers.gh.{line}\n"));
        }
        lines.push("mcp.servers.p.command = \"./mcp\"\n".to_owned());
        let (mut loaded, mut refused) = (0, 0);
        for (i, a) in lines.iter().enumerate() {
            for b in &lines[i..] {
                let text = if a == b { a.clone() } else { format!("{a}{b}") };
                std::fs::write(&files.project, &text).unwrap();
                let Some(rules) = load() else {
                    refused += 1;
                    continue;
                };
                loaded += 1;
                for mode in Mode::ALL {
                    for tool in above {
                        let (before, after) = (d(&base, mode, tool), d(&rules, mode, tool));
                        assert!(
                            rank(after.decision) >= rank(before.decision),
                            "{text}loosened {tool} in {mode}: {before:?} -> {after:?}"
                        );
                    }
                    let own = d(&rules, Mode::Ask, "mcp__p__x");
                    assert_ne!(own.decision, Decision::Allow, "{text}: {own:?}");
                }
            }
        }
        assert!(loaded > 50 && refused > 50, "loaded {loaded}, refused {refused}");
    }
}
