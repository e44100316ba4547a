//! Applying layers: what each may change, and the checks that keep a lower
//! layer from widening what a higher one allows.
//!
//! A [`Ceiling`] holds, for each key, the value a layer may not exceed, or
//! nothing when the layer may set the key freely. Managed policy faces no
//! ceiling; the user config and the command line face the keys managed
//! policy set; the project config faces every effective value.

use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::file::{Entry, LayerFile, check_limit};
use crate::values::{domain_allows, resolve_root};
use crate::{LimitKey, NetworkMode, Policy, PolicyError, Source, Sourced};

const WRITABLE_ROOTS: &str = "sandbox.writable_roots";
const READABLE_ROOTS: &str = "sandbox.readable_roots";
const TOOLCHAIN_ROOTS: &str = "sandbox.toolchain_roots";
const ALLOW_UNSAFE: &str = "sandbox.allow_unsafe_no_sandbox";
const NETWORK_MODE: &str = "network.mode";
const ALLOW_DOMAINS: &str = "network.allow_domains";

/// Which source last replaced each list that a layer replaces as a whole.
/// Needed because an empty list has no entries to carry a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListSources {
    pub(crate) writable_roots: Source,
    pub(crate) readable_roots: Source,
    pub(crate) toolchain_roots: Source,
    pub(crate) allow_domains: Source,
}

impl Default for ListSources {
    fn default() -> Self {
        ListSources {
            writable_roots: Source::Default,
            readable_roots: Source::Default,
            toolchain_roots: Source::Default,
            allow_domains: Source::Default,
        }
    }
}

/// Per key, the value a layer may only tighten; `None` means free.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ceiling {
    writable_roots: Option<Sourced<Vec<PathBuf>>>,
    readable_roots: Option<Sourced<Vec<PathBuf>>>,
    toolchain_roots: Option<Sourced<Vec<PathBuf>>>,
    allow_domains: Option<Sourced<Vec<String>>>,
    network_mode: Option<Sourced<NetworkMode>>,
    allow_unsafe_no_sandbox: Option<Sourced<bool>>,
    limits: [Option<Sourced<u64>>; 7],
}

impl Ceiling {
    /// Every effective value of `policy` is a ceiling.
    fn everything(policy: &Policy) -> Ceiling {
        let list = |entries: &[Sourced<PathBuf>], source: &Source| {
            Some(Sourced::new(entries.iter().map(|e| e.value.clone()).collect(), source.clone()))
        };
        let sandbox = &policy.sandbox;
        let sources = &policy.list_sources;
        Ceiling {
            writable_roots: list(&sandbox.writable_roots, &sources.writable_roots),
            readable_roots: list(&sandbox.readable_roots, &sources.readable_roots),
            toolchain_roots: list(&sandbox.toolchain_roots, &sources.toolchain_roots),
            allow_domains: Some(Sourced::new(
                policy.network.allow_domains.iter().map(|d| d.value.clone()).collect(),
                sources.allow_domains.clone(),
            )),
            network_mode: Some(policy.network.mode.clone()),
            allow_unsafe_no_sandbox: Some(sandbox.allow_unsafe_no_sandbox.clone()),
            limits: LimitKey::ALL.map(|key| Some(policy.limits.get(key).clone())),
        }
    }

    /// The effective values of `policy` for the keys `layer` set.
    fn set_by(policy: &Policy, layer: &LayerFile) -> Ceiling {
        let all = Ceiling::everything(policy);
        Ceiling {
            writable_roots: all.writable_roots.filter(|_| layer.writable_roots.is_some()),
            readable_roots: all.readable_roots.filter(|_| layer.readable_roots.is_some()),
            toolchain_roots: all.toolchain_roots.filter(|_| layer.toolchain_roots.is_some()),
            allow_domains: all.allow_domains.filter(|_| layer.allow_domains.is_some()),
            network_mode: all.network_mode.filter(|_| layer.network_mode.is_some()),
            allow_unsafe_no_sandbox: all.allow_unsafe_no_sandbox.filter(|_| layer.allow_unsafe_no_sandbox.is_some()),
            limits: LimitKey::ALL.map(|key| {
                let is_set = layer.limits.iter().any(|(k, _)| *k == key);
                all.limits[key as usize].clone().filter(|_| is_set)
            }),
        }
    }
}

/// What a layer is checked against.
struct Rules<'a> {
    ceiling: &'a Ceiling,
    /// `deny_read` entries of higher layers and defaults: no root of this
    /// layer may be equal to or inside one.
    denied: &'a [Sourced<PathBuf>],
    /// Always readable and writable, so a root inside it widens nothing.
    workspace: &'a Path,
}

/// Managed policy is the administrator: it may set anything. The keys it
/// sets become ceilings for the user config and the command line.
pub(crate) fn apply_managed(policy: &mut Policy, file: &LayerFile) -> Result<(), PolicyError> {
    let workspace = policy.context.workspace.clone();
    let rules = Rules { ceiling: &Ceiling::default(), denied: &[], workspace: &workspace };
    apply(policy, file, &rules)?;
    policy.managed_ceiling = Ceiling::set_by(policy, file);
    Ok(())
}

/// The user config may change what managed policy left alone, and only
/// tighten what it set.
pub(crate) fn apply_user(policy: &mut Policy, file: &LayerFile) -> Result<(), PolicyError> {
    let ceiling = policy.managed_ceiling.clone();
    let denied = policy.sandbox.deny_read.clone();
    let workspace = policy.context.workspace.clone();
    let rules = Rules { ceiling: &ceiling, denied: &denied, workspace: &workspace };
    apply(policy, file, &rules)
}

/// The project config comes with a cloned repository: it may only tighten
/// the effective values, wherever they came from.
pub(crate) fn apply_project(policy: &mut Policy, file: &LayerFile) -> Result<(), PolicyError> {
    let ceiling = Ceiling::everything(policy);
    let denied = policy.sandbox.deny_read.clone();
    let workspace = policy.context.workspace.clone();
    let rules = Rules { ceiling: &ceiling, denied: &denied, workspace: &workspace };
    apply(policy, file, &rules)
}

fn apply(policy: &mut Policy, file: &LayerFile, rules: &Rules<'_>) -> Result<(), PolicyError> {
    let source = &file.source;
    let sandbox = &mut policy.sandbox;
    let sources = &mut policy.list_sources;
    let ceiling = rules.ceiling;
    let roots = [
        (
            WRITABLE_ROOTS,
            &file.writable_roots,
            &ceiling.writable_roots,
            &mut sandbox.writable_roots,
            &mut sources.writable_roots,
        ),
        (
            READABLE_ROOTS,
            &file.readable_roots,
            &ceiling.readable_roots,
            &mut sandbox.readable_roots,
            &mut sources.readable_roots,
        ),
        (
            TOOLCHAIN_ROOTS,
            &file.toolchain_roots,
            &ceiling.toolchain_roots,
            &mut sandbox.toolchain_roots,
            &mut sources.toolchain_roots,
        ),
    ];
    for (key, new, ceiling, list, list_source) in roots {
        let Some(new) = new else { continue };
        for entry in new {
            check_root(key, &entry.value, ceiling.as_ref(), rules).map_err(|p| file.error(entry.at, key, p))?;
        }
        *list = sourced(new, source);
        *list_source = source.clone();
    }

    // Union lists: a layer can add entries, and there is no way to remove one.
    for entry in &file.deny_read {
        if !sandbox.deny_read.iter().any(|d| d.value == entry.value) {
            sandbox.deny_read.push(Sourced::new(entry.value.clone(), source.clone()));
        }
    }
    for entry in &file.protected {
        if !sandbox.protected.iter().any(|p| p.value == entry.value) {
            sandbox.protected.push(Sourced::new(entry.value.clone(), source.clone()));
        }
    }

    if let Some(entry) = &file.allow_unsafe_no_sandbox {
        check_bool(ALLOW_UNSAFE, entry.value, ceiling.allow_unsafe_no_sandbox.as_ref())
            .map_err(|p| file.error(entry.at, ALLOW_UNSAFE, p))?;
        sandbox.allow_unsafe_no_sandbox = Sourced::new(entry.value, source.clone());
    }

    if let Some(entry) = &file.network_mode {
        check_mode(entry.value, ceiling.network_mode.as_ref()).map_err(|p| file.error(entry.at, NETWORK_MODE, p))?;
        policy.network.mode = Sourced::new(entry.value, source.clone());
    }
    if let Some(new) = &file.allow_domains {
        for entry in new {
            check_domain(&entry.value, ceiling.allow_domains.as_ref())
                .map_err(|p| file.error(entry.at, ALLOW_DOMAINS, p))?;
        }
        policy.network.allow_domains = sourced(new, source);
        sources.allow_domains = source.clone();
    }

    for (key, entry) in &file.limits {
        check_limit_lowered(*key, entry.value, ceiling.limits[*key as usize].as_ref())
            .map_err(|p| file.error(entry.at, key.name(), p))?;
        *policy.limits.get_mut(*key) = Sourced::new(entry.value, source.clone());
    }
    Ok(())
}

pub(crate) fn add_writable_root(policy: &mut Policy, path: &Path) -> Result<(), PolicyError> {
    let cx = &policy.context;
    let root = resolve_root(path, &cx.home, None).map_err(|p| {
        Problem { hint: "pass an absolute path, or one starting with ~/".to_owned(), ..p }
            .on_command_line(WRITABLE_ROOTS)
    })?;
    // The person outranks the project, so only higher layers' denials bind.
    let denied: Vec<_> =
        policy.sandbox.deny_read.iter().filter(|d| !matches!(d.source, Source::Project(_))).cloned().collect();
    let rules = Rules { ceiling: &policy.managed_ceiling, denied: &denied, workspace: &cx.workspace };
    check_root(WRITABLE_ROOTS, &root, rules.ceiling.writable_roots.as_ref(), &rules)
        .map_err(|p| p.on_command_line(WRITABLE_ROOTS))?;
    if !policy.sandbox.writable_roots.iter().any(|r| r.value == root) {
        policy.sandbox.writable_roots.push(Sourced::new(root, Source::CommandLine));
    }
    Ok(())
}

pub(crate) fn set_network_mode(policy: &mut Policy, mode: NetworkMode) -> Result<(), PolicyError> {
    check_mode(mode, policy.managed_ceiling.network_mode.as_ref()).map_err(|p| p.on_command_line(NETWORK_MODE))?;
    policy.network.mode = Sourced::new(mode, Source::CommandLine);
    Ok(())
}

pub(crate) fn set_timeout_secs(policy: &mut Policy, secs: u64) -> Result<(), PolicyError> {
    let key = LimitKey::TimeoutSecs;
    check_limit(secs)
        .and_then(|secs| check_limit_lowered(key, secs, policy.managed_ceiling.limits[key as usize].as_ref()))
        .map_err(|p| p.on_command_line(key.name()))?;
    policy.limits.timeout_secs = Sourced::new(secs, Source::CommandLine);
    Ok(())
}

fn sourced<T: Clone>(entries: &[Entry<T>], source: &Source) -> Vec<Sourced<T>> {
    entries.iter().map(|e| Sourced::new(e.value.clone(), source.clone())).collect()
}

fn check_root(
    key: &'static str,
    root: &Path,
    ceiling: Option<&Sourced<Vec<PathBuf>>>,
    rules: &Rules<'_>,
) -> Result<(), Problem> {
    if let Some(denied) = rules.denied.iter().find(|d| root.starts_with(&d.value)) {
        return Err(Problem::widening(
            format!(
                "adds \"{}\" which is inside \"{}\", denied by {} (sandbox.deny_read)",
                root.display(),
                denied.value.display(),
                denied.source
            ),
            format!("a denied path cannot be made readable or writable by {key}; remove the entry"),
            &denied.source,
        ));
    }
    let Some(ceiling) = ceiling else {
        return Ok(());
    };
    if root.starts_with(rules.workspace) || ceiling.value.iter().any(|allowed| root.starts_with(allowed)) {
        return Ok(());
    }
    let allowed: Vec<_> = ceiling.value.iter().map(|p| p.display().to_string()).collect();
    Err(Problem::widening(
        format!("adds \"{}\" which is not inside what {} allows ({allowed:?})", root.display(), ceiling.source),
        format!("this layer may only narrow {key}: use a path inside one of those; {}", remedy(&ceiling.source)),
        &ceiling.source,
    ))
}

fn check_domain(domain: &str, ceiling: Option<&Sourced<Vec<String>>>) -> Result<(), Problem> {
    let Some(ceiling) = ceiling else {
        return Ok(());
    };
    if ceiling.value.iter().any(|pattern| domain_allows(pattern, domain)) {
        return Ok(());
    }
    Err(Problem::widening(
        format!("adds \"{domain}\" which is not matched by what {} allows ({:?})", ceiling.source, ceiling.value),
        format!("this layer may only narrow network.allow_domains; {}", remedy(&ceiling.source)),
        &ceiling.source,
    ))
}

fn check_mode(mode: NetworkMode, ceiling: Option<&Sourced<NetworkMode>>) -> Result<(), Problem> {
    match ceiling {
        Some(ceiling) if mode == NetworkMode::Proxy && ceiling.value == NetworkMode::None => Err(Problem::widening(
            format!("sets \"proxy\" but {} sets \"none\"", ceiling.source),
            format!("this layer may only narrow network.mode; {}", remedy(&ceiling.source)),
            &ceiling.source,
        )),
        _ => Ok(()),
    }
}

fn check_bool(key: &'static str, value: bool, ceiling: Option<&Sourced<bool>>) -> Result<(), Problem> {
    match ceiling {
        Some(ceiling) if value && !ceiling.value => Err(Problem::widening(
            format!("sets true but {} sets false", ceiling.source),
            format!("this layer may only narrow {key}; remove the line or set it to false"),
            &ceiling.source,
        )),
        _ => Ok(()),
    }
}

fn check_limit_lowered(key: LimitKey, value: u64, ceiling: Option<&Sourced<u64>>) -> Result<(), Problem> {
    match ceiling {
        Some(ceiling) if value > ceiling.value => Err(Problem::widening(
            format!("raises the limit to {value}, above what {} allows ({})", ceiling.source, ceiling.value),
            format!("this layer may only lower {}; use at most {}", key.name(), ceiling.value),
            &ceiling.source,
        )),
        _ => Ok(()),
    }
}

/// How to get past a ceiling legitimately, given where it came from.
fn remedy(source: &Source) -> &'static str {
    match source {
        Source::Default => "to widen a built-in default, set it in your user config",
        Source::Managed(_) => "only an administrator can widen what managed policy allows",
        Source::User(_) => "to allow it, widen your user config",
        Source::Project(_) | Source::CommandLine => "to allow it, widen the layer above",
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use tempfile::TempDir;

    use crate::{Context, NetworkMode, PathKind, Policy, PolicyError, PolicyFiles, ProtectedPath, Source};

    /// Three policy files in a temporary folder; `home` and `workspace` are
    /// fixed so that expected paths read plainly.
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

        fn managed(self, text: &str) -> Self {
            fs_err::write(&self.files.managed, text).unwrap();
            self
        }

        fn user(self, text: &str) -> Self {
            fs_err::write(self.files.user.as_ref().unwrap(), text).unwrap();
            self
        }

        fn project(self, text: &str) -> Self {
            fs_err::write(&self.files.project, text).unwrap();
            self
        }

        fn load(&self) -> Result<Policy, PolicyError> {
            Policy::load(&self.files, &self.cx)
        }

        fn managed_source(&self) -> Source {
            Source::Managed(self.files.managed.clone())
        }

        fn user_source(&self) -> Source {
            Source::User(self.files.user.clone().unwrap())
        }

        fn project_source(&self) -> Source {
            Source::Project(self.files.project.clone())
        }

        /// Loads and expects a widening error; checks that it names both the
        /// lower file (with the key) and the ceiling's source.
        fn widening(&self, lower: &Source, key: &str, ceiling: &Source) -> String {
            let err = self.load().unwrap_err();
            let text = err.to_string();
            let PolicyError::Widening { path, key: err_key, ceiling: err_ceiling, .. } = &err else {
                panic!("expected a widening error, got {text}");
            };
            let lower_path = match lower {
                Source::User(p) | Source::Project(p) => p,
                other => panic!("not a lower file: {other}"),
            };
            assert_eq!(path, lower_path, "{text}");
            assert_eq!(*err_key, key, "{text}");
            assert_eq!(**err_ceiling, *ceiling, "{text}");
            assert!(text.starts_with(&format!("{}:", lower_path.display())), "{text}");
            assert!(text.contains(&ceiling.to_string()), "{text}");
            assert!(text.contains("\nhint: "), "{text}");
            text
        }
    }

    fn values<T: Clone>(list: &[crate::Sourced<T>]) -> Vec<T> {
        list.iter().map(|s| s.value.clone()).collect()
    }

    #[test]
    fn no_files_is_the_default_policy() {
        let fx = Fixture::new();
        assert_eq!(fx.load().unwrap(), Policy::defaults(&fx.cx));
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let fx = Fixture::new();
        fs_err::create_dir(&fx.files.project).unwrap();
        let err = fx.load().unwrap_err();
        assert!(matches!(&err, PolicyError::Read { path, .. } if *path == fx.files.project), "{err}");
        assert!(err.to_string().contains(&fx.files.project.display().to_string()), "{err}");
    }

    #[test]
    fn project_tightenings_are_accepted() {
        let fx = Fixture::new()
            .user(
                "[sandbox]\nwritable_roots = [\"~/scratch\"]\n\
                 [network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\", \"*.github.com\"]\n",
            )
            .project(
                "[sandbox]\n\
                 writable_roots = [\"~/scratch/build\", \"target\"]\n\
                 readable_roots = [\"/usr\", \"/etc/ssl\", \"docs\"]\n\
                 toolchain_roots = [\"~/.cargo/bin\"]\n\
                 allow_unsafe_no_sandbox = false\n\
                 [network]\nmode = \"none\"\nallow_domains = [\"api.github.com\", \"*.raw.github.com\", \"crates.io\"]\n\
                 [limits]\ntimeout_secs = 60\nmemory_mb = 8192\n",
            );
        let policy = fx.load().unwrap();
        let sandbox = &policy.sandbox;
        assert_eq!(
            values(&sandbox.writable_roots),
            ["/home/u/scratch/build", "/home/u/work/target"].map(PathBuf::from)
        );
        assert_eq!(values(&sandbox.readable_roots), ["/usr", "/etc/ssl", "/home/u/work/docs"].map(PathBuf::from));
        assert_eq!(values(&sandbox.toolchain_roots), [PathBuf::from("/home/u/.cargo/bin")]);
        assert!(!sandbox.allow_unsafe_no_sandbox.value);
        assert_eq!(policy.network.mode.value, NetworkMode::None);
        assert_eq!(values(&policy.network.allow_domains), ["api.github.com", "*.raw.github.com", "crates.io"]);
        assert_eq!(policy.limits.timeout_secs.value, 60);
        assert_eq!(policy.limits.memory_mb.value, 8192);
    }

    #[test]
    fn project_may_not_add_a_writable_root() {
        let fx = Fixture::new().project("[sandbox]\nwritable_roots = [\"/home/u\"]\n");
        let text = fx.widening(&fx.project_source(), "sandbox.writable_roots", &Source::Default);
        assert!(text.contains("adds \"/home/u\" which is not inside what built-in default allows ([])"), "{text}");
    }

    #[test]
    fn widening_error_text_is_exact() {
        let fx = Fixture::new()
            .managed("[sandbox]\nwritable_roots = [\"/srv/build\"]\n")
            .project("# untrusted\n[sandbox]\nwritable_roots = [\"/home/u\"]\n");
        let err = fx.load().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3:19: sandbox.writable_roots adds \"/home/u\" which is not inside what managed policy {} allows ([\"/srv/build\"])\n\
                 hint: this layer may only narrow sandbox.writable_roots: use a path inside one of those; \
                 only an administrator can widen what managed policy allows",
                fx.files.project.display(),
                fx.files.managed.display()
            )
        );
    }

    #[test]
    fn project_may_not_read_a_path_denied_above() {
        let fx = Fixture::new()
            .managed("[sandbox]\ndeny_read = [\"/srv/secrets\"]\nreadable_roots = [\"/usr\", \"/srv\"]\n")
            .project("[sandbox]\nreadable_roots = [\"/srv/secrets/keys\"]\n");
        let text = fx.widening(&fx.project_source(), "sandbox.readable_roots", &fx.managed_source());
        assert!(text.contains("inside \"/srv/secrets\", denied by managed policy"), "{text}");

        // A denial from the defaults binds the project too.
        let fx = Fixture::new().project("[sandbox]\ntoolchain_roots = [\"~/.cargo/credentials\"]\n");
        fx.widening(&fx.project_source(), "sandbox.toolchain_roots", &Source::Default);
    }

    #[test]
    fn user_may_not_read_a_default_denied_path() {
        let fx = Fixture::new().user("[sandbox]\nreadable_roots = [\"/usr\", \"~/.ssh\"]\n");
        let text = fx.widening(&fx.user_source(), "sandbox.readable_roots", &Source::Default);
        assert!(text.contains("denied by built-in default"), "{text}");
    }

    #[test]
    fn project_may_not_add_a_domain_outside_the_managed_allowlist() {
        let fx = Fixture::new()
            .managed("[network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\", \"*.github.com\"]\n")
            .project("[network]\nallow_domains = [\"crates.io\", \"github.com\"]\n");
        let text = fx.widening(&fx.project_source(), "network.allow_domains", &fx.managed_source());
        assert!(text.contains(":2:31: network.allow_domains adds \"github.com\" which is not matched"), "{text}");
    }

    #[test]
    fn project_may_not_enable_the_proxy_when_managed_set_none() {
        let fx = Fixture::new().managed("[network]\nmode = \"none\"\n").project("[network]\nmode = \"proxy\"\n");
        let text = fx.widening(&fx.project_source(), "network.mode", &fx.managed_source());
        assert!(text.contains("sets \"proxy\" but managed policy"), "{text}");
    }

    #[test]
    fn project_may_not_raise_a_limit() {
        let fx = Fixture::new().user("[limits]\nprocesses = 100\n").project("[limits]\nprocesses = 101\n");
        let text = fx.widening(&fx.project_source(), "limits.processes", &fx.user_source());
        assert!(text.contains("raises the limit to 101, above what user config"), "{text}");
        assert!(text.contains("allows (100)"), "{text}");
    }

    #[test]
    fn project_may_not_allow_running_without_sandbox_when_forbidden() {
        let fx = Fixture::new()
            .managed("[sandbox]\nallow_unsafe_no_sandbox = false\n")
            .project("[sandbox]\nallow_unsafe_no_sandbox = true\n");
        fx.widening(&fx.project_source(), "sandbox.allow_unsafe_no_sandbox", &fx.managed_source());
    }

    #[test]
    fn project_may_not_widen_a_default() {
        let fx = Fixture::new().project("[limits]\ntimeout_secs = 601\n");
        let text = fx.widening(&fx.project_source(), "limits.timeout_secs", &Source::Default);
        assert!(text.contains("above what built-in default allows (600)"), "{text}");
        assert!(text.contains("hint: this layer may only lower limits.timeout_secs; use at most 600"), "{text}");

        let fx = Fixture::new().project("[sandbox]\nreadable_roots = [\"/usr\", \"/home\"]\n");
        fx.widening(&fx.project_source(), "sandbox.readable_roots", &Source::Default);

        let fx = Fixture::new().project("[network]\nmode = \"proxy\"\n");
        fx.widening(&fx.project_source(), "network.mode", &Source::Default);

        let fx = Fixture::new().project("[network]\nallow_domains = [\"evil.example\"]\n");
        fx.widening(&fx.project_source(), "network.allow_domains", &Source::Default);
    }

    #[test]
    fn user_may_not_widen_a_managed_key() {
        let fx = Fixture::new()
            .managed("[sandbox]\nwritable_roots = [\"/srv/build\"]\n[limits]\nmemory_mb = 2048\n")
            .user("[sandbox]\nwritable_roots = [\"/srv/build/a\", \"/tmp/x\"]\n");
        let text = fx.widening(&fx.user_source(), "sandbox.writable_roots", &fx.managed_source());
        assert!(text.contains("adds \"/tmp/x\""), "{text}");

        let fx = Fixture::new().managed("[limits]\nmemory_mb = 2048\n").user("[limits]\nmemory_mb = 4096\n");
        fx.widening(&fx.user_source(), "limits.memory_mb", &fx.managed_source());
    }

    #[test]
    fn user_may_widen_defaults_and_keys_managed_left_alone() {
        let fx = Fixture::new().managed("[limits]\nmemory_mb = 2048\n").user(
            "[sandbox]\nwritable_roots = [\"~/scratch\"]\nreadable_roots = [\"/usr\", \"/nix\"]\n\
             [network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\"]\n\
             [limits]\ntimeout_secs = 7200\nmemory_mb = 1024\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(values(&policy.sandbox.writable_roots), [PathBuf::from("/home/u/scratch")]);
        assert_eq!(values(&policy.sandbox.readable_roots), ["/usr", "/nix"].map(PathBuf::from));
        assert_eq!(policy.network.mode.value, NetworkMode::Proxy);
        assert_eq!(policy.limits.timeout_secs.value, 7200);
        assert_eq!(policy.limits.memory_mb.value, 1024);
    }

    #[test]
    fn managed_may_set_anything() {
        let fx = Fixture::new().managed(
            "[sandbox]\nwritable_roots = [\"/srv\"]\n[network]\nmode = \"proxy\"\n[limits]\ntimeout_secs = 99999\n",
        );
        let policy = fx.load().unwrap();
        assert_eq!(policy.limits.timeout_secs.value, 99999);
        assert_eq!(policy.network.mode.value, NetworkMode::Proxy);
    }

    #[test]
    fn deny_read_and_protected_only_grow() {
        let fx = Fixture::new()
            .managed("[sandbox]\ndeny_read = [\"/srv/secrets\"]\n")
            .user("[sandbox]\ndeny_read = [\"~/private\", \"~/.ssh\"]\nprotected = [\"Makefile\"]\n")
            .project("[sandbox]\ndeny_read = []\nprotected = [\"ci/\", \".envrc\"]\n");
        let policy = fx.load().unwrap();
        let deny = &policy.sandbox.deny_read;
        assert_eq!(deny.len(), 36 + 2, "defaults kept, duplicates not repeated: {deny:?}");
        let source_of = |path: &str| deny.iter().find(|d| d.value == Path::new(path)).map(|d| d.source.clone());
        assert_eq!(source_of("/home/u/.ssh"), Some(Source::Default));
        assert_eq!(source_of("/srv/secrets"), Some(fx.managed_source()));
        assert_eq!(source_of("/home/u/private"), Some(fx.user_source()));

        let protected = &policy.sandbox.protected;
        assert_eq!(protected.len(), 11 + 2);
        let ci = protected.iter().find(|p| p.value.path == Path::new("ci")).unwrap();
        assert_eq!(ci.value, ProtectedPath { path: "ci".into(), kind: PathKind::Dir });
        assert_eq!(ci.source, fx.project_source());
        let makefile = protected.iter().find(|p| p.value.path == Path::new("Makefile")).unwrap();
        assert_eq!(makefile.source, fx.user_source());
    }

    #[test]
    fn each_value_keeps_its_source() {
        let fx = Fixture::new()
            .managed("[limits]\nmemory_mb = 4096\n")
            .user("[sandbox]\nwritable_roots = [\"~/scratch\"]\n[limits]\ncpu_secs = 100\n")
            .project("[limits]\ncpu_secs = 50\n[network]\nmode = \"none\"\n");
        let policy = fx.load().unwrap();
        assert_eq!(policy.limits.memory_mb.source, fx.managed_source());
        assert_eq!(policy.limits.cpu_secs.source, fx.project_source());
        assert_eq!(policy.limits.timeout_secs.source, Source::Default);
        assert_eq!(policy.network.mode.source, fx.project_source());
        assert_eq!(policy.sandbox.writable_roots[0].source, fx.user_source());
        assert_eq!(policy.sandbox.readable_roots[0].source, Source::Default);
    }

    #[test]
    fn command_line_obeys_managed_ceilings() {
        let fx = Fixture::new()
            .managed("[sandbox]\nwritable_roots = [\"/srv/build\"]\n[network]\nmode = \"none\"\n[limits]\ntimeout_secs = 300\n")
            .user("[sandbox]\nwritable_roots = [\"/srv/build/a\"]\n");
        let mut policy = fx.load().unwrap();

        // Inside the managed root (though not the user's), or the workspace: fine.
        policy.add_writable_root("/srv/build/b".as_ref()).unwrap();
        policy.add_writable_root("/home/u/work/target".as_ref()).unwrap();
        let last = policy.sandbox.writable_roots.last().unwrap();
        assert_eq!(last.source, Source::CommandLine);

        let err = policy.add_writable_root("/x".as_ref()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "command line: sandbox.writable_roots: adds \"/x\" which is not inside what managed policy"
            ),
            "{text}"
        );
        assert!(text.contains(&fx.files.managed.display().to_string()), "{text}");

        let err = policy.set_network_mode(NetworkMode::Proxy).unwrap_err();
        assert!(err.to_string().contains("sets \"proxy\" but managed policy"), "{err}");
        policy.set_network_mode(NetworkMode::None).unwrap();

        assert!(policy.set_timeout_secs(301).is_err());
        policy.set_timeout_secs(120).unwrap();
        assert_eq!(policy.limits.timeout_secs.value, 120);
        // The ceiling is managed policy's value, not the last one set.
        policy.set_timeout_secs(300).unwrap();
        assert!(policy.set_timeout_secs(0).is_err());
    }

    #[test]
    fn command_line_is_free_where_managed_is_silent() {
        let fx = Fixture::new().project("[limits]\ntimeout_secs = 10\n[sandbox]\ndeny_read = [\"/data\"]\n");
        let mut policy = fx.load().unwrap();
        policy.set_timeout_secs(3600).unwrap();
        policy.set_network_mode(NetworkMode::Proxy).unwrap();
        // The person outranks the project's own denials, but not the defaults.
        policy.add_writable_root("/data/out".as_ref()).unwrap();
        let err = policy.add_writable_root("~/.ssh".as_ref()).unwrap_err();
        assert!(err.to_string().contains("denied by built-in default"), "{err}");
        let err = policy.add_writable_root("relative".as_ref()).unwrap_err();
        assert!(err.to_string().contains("relative path"), "{err}");
        assert_eq!(policy.network.mode.source, Source::CommandLine);
    }

    #[test]
    fn render_shows_sources_and_reloads_to_the_same_values() {
        let fx = Fixture::new()
            .managed("[limits]\nmemory_mb = 4096\n[sandbox]\nwritable_roots = []\n")
            .user("[network]\nmode = \"proxy\"\nallow_domains = [\"crates.io\"]\n")
            .project("[sandbox]\nprotected = [\"ci/\"]\n");
        let mut policy = fx.load().unwrap();
        policy.set_timeout_secs(60).unwrap();
        let shown = policy.render();
        let managed = fx.managed_source().to_string();
        assert!(shown.contains(&format!("memory_mb = 4096 # {managed}")), "{shown}");
        assert!(shown.contains(&format!("writable_roots = [] # {managed}")), "{shown}");
        assert!(shown.contains(&format!("    \"crates.io\", # {}", fx.user_source())), "{shown}");
        assert!(shown.contains(&format!("    \"ci/\", # {}", fx.project_source())), "{shown}");
        assert!(shown.contains("    \"/usr\", # built-in default"), "{shown}");
        assert!(shown.contains("timeout_secs = 60 # command line"), "{shown}");
        assert!(shown.contains("mode = \"proxy\" # user config"), "{shown}");

        // The output is itself a valid policy file meaning the same thing.
        let again = Fixture::new().managed(&shown).load().unwrap();
        assert_eq!(again.sandbox.readable_roots.len(), policy.sandbox.readable_roots.len());
        assert_eq!(values(&again.sandbox.protected), values(&policy.sandbox.protected));
        assert_eq!(values(&again.sandbox.deny_read), values(&policy.sandbox.deny_read));
        assert_eq!(values(&again.network.allow_domains), values(&policy.network.allow_domains));
        assert_eq!(again.limits.timeout_secs.value, 60);
        assert_eq!(again.network.mode.value, NetworkMode::Proxy);
    }
}
