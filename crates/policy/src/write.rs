//! "Allow for this project": a rule for one workspace, written to the
//! person's own config file and never to a file in the repository (a
//! repository could otherwise carry approvals for itself).
//!
//! The rule goes under `[workspace."/canonical/path".tools]` or
//! `.commands`, which the layering applies as user-layer rules only when
//! that folder is the workspace. The file is edited with `toml_edit`, so the
//! person's other settings, comments and layout survive; the result is
//! parsed as a policy file before it replaces the old one, atomically (a
//! temporary file renamed over it), readable by its owner only.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use crate::file::LayerFile;
use crate::rules::{Permission, RuleKind, parse_command_prefix, parse_tool_name};
use crate::{Context, Layer, Policy, PolicyError, layering};

/// Adds `pattern = permission` to the `[tools]` or `[commands]` of the
/// policy's workspace in the user config `user_config` (created, with its
/// folder, if missing), and returns the canonical workspace path it wrote.
///
/// Refused, with the file unchanged, when the rule would loosen what managed
/// policy set (the config would no longer load), when `user_config` is a
/// symbolic link (replacing it would silently break a dotfile manager's
/// link, and following it would write wherever it points), when the file is
/// not valid TOML, or when its `workspace` tables are written inline.
pub fn add_workspace_rule(
    user_config: &Path,
    policy: &Policy,
    kind: RuleKind,
    pattern: &str,
    permission: Permission,
) -> Result<PathBuf, PolicyError> {
    let refuse = |message: String, hint: &str| PolicyError::ConfigWrite {
        path: user_config.to_owned(),
        message,
        hint: hint.to_owned(),
    };
    let pattern = match kind {
        RuleKind::Tool => parse_tool_name(pattern),
        RuleKind::Command => parse_command_prefix(pattern),
    }
    .map_err(|p| refuse(p.message, &p.hint))?;
    layering::check_user_rule(policy, kind, &pattern, permission).map_err(|p| refuse(p.message, &p.hint))?;

    let workspace = fs_err::canonicalize(&policy.context.workspace)
        .map_err(|e| refuse(format!("cannot resolve the workspace: {e}"), "run airlock from the workspace folder"))?;
    let Some(workspace_key) = workspace.to_str().map(str::to_owned) else {
        return Err(refuse(
            format!("the workspace path {} is not UTF-8", workspace.display()),
            "a TOML key must be UTF-8; add the rule to the project's session instead",
        ));
    };

    let old = read_regular(user_config)?;
    let mut doc: DocumentMut = old.parse().map_err(|e: toml_edit::TomlError| {
        refuse(format!("the file is not valid TOML: {}", e.message()), "fix the file, then try again")
    })?;
    insert(&mut doc, &workspace_key, kind.table(), &pattern, permission).map_err(|message| {
        refuse(
            message,
            "write [workspace.\"PATH\".tools] and [workspace.\"PATH\".commands] as tables, or add the rule by hand",
        )
    })?;
    let new = doc.to_string();

    // The new file must load as a user config and say what was asked.
    let cx = Context { home: policy.context.home.clone(), workspace: workspace.clone() };
    let parsed = LayerFile::parse(&new, user_config, Layer::User, &cx)?;
    let written = parsed
        .workspaces
        .iter()
        .filter(|w| w.path == workspace)
        .any(|w| w.rules.rules.iter().any(|(k, e)| *k == kind && e.value.0 == pattern && e.value.1 == permission));
    if !written {
        return Err(refuse(
            format!("the edited file does not contain the rule {} \"{pattern}\"", kind.table()),
            "add the rule by hand",
        ));
    }
    replace_atomically(user_config, new.as_bytes())?;
    Ok(workspace)
}

/// The file's text; empty if it does not exist. A symbolic link or
/// anything but a regular file is refused.
fn read_regular(path: &Path) -> Result<String, PolicyError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(source) => return Err(PolicyError::Read { path: path.to_owned(), source }),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(PolicyError::ConfigWrite {
                path: path.to_owned(),
                message: "is a symbolic link; airlock does not write through links".to_owned(),
                hint: "add the rule by hand to the file the link points to, or replace the link with that file"
                    .to_owned(),
            });
        }
        Ok(meta) if !meta.is_file() => {
            return Err(PolicyError::ConfigWrite {
                path: path.to_owned(),
                message: "is not a regular file".to_owned(),
                hint: "move it away, then try again".to_owned(),
            });
        }
        Ok(_) => {}
    }
    fs_err::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_owned(), source })
}

/// `[workspace."<workspace>".<table>] "<pattern>" = "<permission>"`, adding
/// only the tables that are missing (as implicit tables: no empty headers).
fn insert(
    doc: &mut DocumentMut,
    workspace: &str,
    table: &str,
    pattern: &str,
    permission: Permission,
) -> Result<(), String> {
    let implicit = || {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    };
    let all = doc.as_table_mut().entry("workspace").or_insert_with(implicit);
    let all = all.as_table_mut().ok_or("`workspace` is not a table")?;
    let one = all.entry(workspace).or_insert_with(implicit);
    let one = one.as_table_mut().ok_or_else(|| format!("`workspace.\"{workspace}\"` is not a table"))?;
    let rules = one.entry(table).or_insert_with(|| Item::Table(Table::new()));
    let rules = rules.as_table_mut().ok_or_else(|| format!("`workspace.\"{workspace}\".{table}` is not a table"))?;
    // An existing rule keeps its place and its comments; only the value changes.
    match rules.get_mut(pattern).and_then(Item::as_value_mut) {
        Some(value) => {
            let decor = value.decor().clone();
            *value = permission.as_str().into();
            *value.decor_mut() = decor;
        }
        None => {
            rules.insert(pattern, toml_edit::value(permission.as_str()));
        }
    }
    Ok(())
}

/// Writes a temporary file beside `path` (0600, synced) and renames it over
/// `path`, so a reader sees the old file or the new one, never half of one.
fn replace_atomically(path: &Path, contents: &[u8]) -> Result<(), PolicyError> {
    let write_error = |source: std::io::Error| PolicyError::Write { path: path.to_owned(), source };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(write_error)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename is durable once the folder is synced.
        std::fs::File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolicyFiles;

    struct Setup {
        dir: tempfile::TempDir,
        files: PolicyFiles,
        cx: Context,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = fs_err::canonicalize(dir.path()).unwrap();
        let workspace = root.join("work");
        fs_err::create_dir(&workspace).unwrap();
        let files = PolicyFiles {
            managed: root.join("policy.toml"),
            user: Some(root.join("config/airlock/config.toml")),
            project: workspace.join(".airlock/config.toml"),
        };
        let cx = Context { home: root.join("home"), workspace };
        Setup { dir, files, cx }
    }

    impl Setup {
        fn user(&self) -> &Path {
            self.files.user.as_deref().unwrap()
        }

        fn policy(&self) -> Policy {
            Policy::load(&self.files, &self.cx).unwrap()
        }
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_config_gets_the_rule_and_it_applies_to_that_workspace_only() {
        let s = setup();
        let policy = s.policy();
        let written =
            add_workspace_rule(s.user(), &policy, RuleKind::Command, "cargo  test", Permission::Allow).unwrap();
        assert_eq!(written, s.cx.workspace);
        let text = fs_err::read_to_string(s.user()).unwrap();
        assert_eq!(
            text,
            format!("[workspace.\"{}\".commands]\n\"cargo test\" = \"allow\"\n", s.cx.workspace.display())
        );
        assert_eq!(mode_of(s.user()), 0o600);

        let policy = s.policy();
        let rule = policy.rules.commands.iter().find(|r| r.pattern == "cargo test").unwrap();
        assert_eq!(rule.permission, Permission::Allow);
        assert_eq!(rule.origin.to_string(), format!("user config {}:2:1", s.user().display()));

        let elsewhere = Context { workspace: s.dir.path().join("other"), ..s.cx.clone() };
        let other = Policy::load(&s.files, &elsewhere).unwrap();
        assert!(other.rules.commands.iter().all(|r| r.pattern != "cargo test"));
    }

    #[test]
    fn other_content_and_comments_are_kept() {
        let s = setup();
        let before = "# my settings\n[limits]\ntimeout_secs = 60 # a minute\n\n\
                      [workspace.\"/elsewhere\".tools]\nedit_file = \"allow\"\n";
        fs_err::create_dir_all(s.user().parent().unwrap()).unwrap();
        fs_err::write(s.user(), before).unwrap();
        let policy = s.policy();
        add_workspace_rule(s.user(), &policy, RuleKind::Tool, "write_file", Permission::Allow).unwrap();
        add_workspace_rule(s.user(), &policy, RuleKind::Command, "make", Permission::Allow).unwrap();
        add_workspace_rule(s.user(), &s.policy(), RuleKind::Command, "make check", Permission::Allow).unwrap();
        let after = fs_err::read_to_string(s.user()).unwrap();
        assert!(after.starts_with(before), "{after}");
        let ws = s.cx.workspace.display();
        assert!(
            after.ends_with(&format!(
                "[workspace.\"{ws}\".tools]\nwrite_file = \"allow\"\n\n\
             [workspace.\"{ws}\".commands]\nmake = \"allow\"\n\"make check\" = \"allow\"\n"
            )),
            "{after}"
        );
        let policy = s.policy();
        assert_eq!(policy.limits.timeout_secs.value, 60);
        let write = policy.rules.tools.iter().find(|r| r.pattern == "write_file").unwrap();
        assert_eq!(write.permission, Permission::Allow);
    }

    #[test]
    fn a_symbolic_link_is_refused_and_left_alone() {
        let s = setup();
        let real = s.dir.path().join("dotfiles.toml");
        fs_err::write(&real, "# managed by stow\n").unwrap();
        fs_err::create_dir_all(s.user().parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, s.user()).unwrap();
        let err =
            add_workspace_rule(s.user(), &s.policy(), RuleKind::Tool, "edit_file", Permission::Allow).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(err.to_string().contains("\nhint: "), "{err}");
        assert!(fs_err::symlink_metadata(s.user()).unwrap().file_type().is_symlink());
        assert_eq!(fs_err::read_to_string(&real).unwrap(), "# managed by stow\n");
    }

    #[test]
    fn a_rule_managed_policy_forbids_is_refused_before_writing() {
        let s = setup();
        fs_err::write(&s.files.managed, "[commands]\ncargo = \"deny\"\n").unwrap();
        let err =
            add_workspace_rule(s.user(), &s.policy(), RuleKind::Command, "cargo test", Permission::Allow).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"cargo test\" = \"allow\" is looser than \"deny\""), "{text}");
        assert!(text.contains(&s.files.managed.display().to_string()), "{text}");
        assert!(!s.user().exists(), "nothing written");
        // The same answer before trying, for a front end deciding what to offer.
        let policy = s.policy();
        assert!(policy.check_user_rule(RuleKind::Command, "cargo  test", Permission::Allow).is_err());
        assert!(policy.check_user_rule(RuleKind::Command, "cargo test", Permission::Deny).is_ok());
        assert!(policy.check_user_rule(RuleKind::Command, "make", Permission::Allow).is_ok());
        assert!(policy.check_user_rule(RuleKind::Tool, "not a tool", Permission::Deny).is_err());
    }

    #[test]
    fn an_invalid_config_is_not_touched() {
        let s = setup();
        fs_err::create_dir_all(s.user().parent().unwrap()).unwrap();
        // Valid TOML, but not a valid policy: the result would not load.
        fs_err::write(s.user(), "[sandbx]\n").unwrap();
        let err = add_workspace_rule(s.user(), &Policy::defaults(&s.cx), RuleKind::Tool, "grep", Permission::Ask)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `sandbx`"), "{err}");
        fs_err::write(s.user(), "[limits\n").unwrap();
        let err = add_workspace_rule(s.user(), &Policy::defaults(&s.cx), RuleKind::Tool, "grep", Permission::Ask)
            .unwrap_err();
        assert!(err.to_string().contains("not valid TOML"), "{err}");
        assert_eq!(fs_err::read_to_string(s.user()).unwrap(), "[limits\n");
        fs_err::write(s.user(), "workspace = 1\n").unwrap();
        let err = add_workspace_rule(s.user(), &Policy::defaults(&s.cx), RuleKind::Tool, "grep", Permission::Ask)
            .unwrap_err();
        assert!(err.to_string().contains("`workspace` is not a table"), "{err}");
        let leftovers: Vec<_> = fs_err::read_dir(s.user().parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_rule_already_there_is_changed_in_place() {
        let s = setup();
        let ws = s.cx.workspace.display().to_string();
        fs_err::create_dir_all(s.user().parent().unwrap()).unwrap();
        let before =
            format!("[workspace.\"{ws}\".commands]\n# keep me\nmake = \"deny\" # was denied\nninja = \"ask\"\n");
        fs_err::write(s.user(), &before).unwrap();
        add_workspace_rule(s.user(), &s.policy(), RuleKind::Command, "make", Permission::Allow).unwrap();
        let after = fs_err::read_to_string(s.user()).unwrap();
        assert_eq!(after, before.replace("make = \"deny\"", "make = \"allow\""));
        let policy = s.policy();
        let make = policy.rules.commands.iter().find(|r| r.pattern == "make").unwrap();
        assert_eq!(make.permission, Permission::Allow);
    }

    #[test]
    fn the_folder_is_made_private_and_bad_patterns_are_refused() {
        let s = setup();
        let policy = s.policy();
        add_workspace_rule(s.user(), &policy, RuleKind::Tool, "edit_file", Permission::Allow).unwrap();
        assert_eq!(mode_of(s.user().parent().unwrap()), 0o700);
        for (kind, bad) in [(RuleKind::Tool, "git push"), (RuleKind::Command, "  "), (RuleKind::Command, "a\nb")] {
            let err = add_workspace_rule(s.user(), &policy, kind, bad, Permission::Allow).unwrap_err();
            assert!(matches!(err, PolicyError::ConfigWrite { .. }), "{err}");
            assert!(err.to_string().contains("\nhint: "), "{err}");
        }
    }

    #[test]
    fn a_project_can_still_tighten_what_was_allowed_for_it() {
        let s = setup();
        add_workspace_rule(s.user(), &s.policy(), RuleKind::Command, "cargo", Permission::Allow).unwrap();
        fs_err::create_dir_all(s.files.project.parent().unwrap()).unwrap();
        fs_err::write(&s.files.project, "[commands]\n\"cargo publish\" = \"deny\"\n").unwrap();
        let policy = s.policy();
        let find = |p: &str| policy.rules.commands.iter().find(|r| r.pattern == p).unwrap().permission;
        assert_eq!((find("cargo"), find("cargo publish")), (Permission::Allow, Permission::Deny));
        // ...but not loosen what is under it.
        fs_err::write(&s.files.project, "[commands]\n\"curl\" = \"allow\"\n").unwrap();
        assert!(matches!(Policy::load(&s.files, &s.cx), Err(PolicyError::Widening { .. })));
    }
}
