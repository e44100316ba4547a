//! The tools through `Tools::call`, as the agent loop uses them: each tool's happy path and
//! errors, confinement to the workspace, the never-read policy, and the JSON Schemas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use airlock_tools::{Limits, PathPolicy, ToolOutput, Tools, Workspace, specs};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A temporary workspace with files laid out before the tools open it.
struct Fixture {
    dir: TempDir,
    tools: Tools,
}

fn fixture(files: &[(&str, &str)]) -> Fixture {
    fixture_with(files, Limits::default())
}

fn fixture_with(files: &[(&str, &str)], limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        write(dir.path(), path, content.as_bytes());
    }
    let policy = PathPolicy::with_patterns(dir.path(), &[]).unwrap();
    let tools = Tools::new(Workspace::open(dir.path(), policy).unwrap().with_limits(limits));
    Fixture { dir, tools }
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

impl Fixture {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn symlink(&self, target: impl AsRef<Path>, link: &str) {
        std::os::unix::fs::symlink(target, self.path(link)).unwrap();
    }

    fn call(&mut self, name: &str, args: Value) -> ToolOutput {
        self.tools.call(name, &args)
    }

    /// The content of a call that must succeed.
    fn ok(&mut self, name: &str, args: Value) -> String {
        let out = self.call(name, args.clone());
        assert!(!out.is_error, "{name} {args} failed: {}", out.content);
        out.content
    }

    /// The message of a call that must fail.
    fn err(&mut self, name: &str, args: Value) -> String {
        let out = self.call(name, args.clone());
        assert!(out.is_error, "{name} {args} should fail, got: {}", out.content);
        assert!(out.changed.is_none());
        out.content
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "expected `{needle}` in:\n{haystack}");
}

mod read_file {
    use super::*;

    #[test]
    fn numbers_lines_and_honours_offset_and_limit() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let mut f = fixture(&[("src/a.txt", &text)]);
        let all = f.ok("read_file", json!({"path": "src/a.txt"}));
        assert!(all.starts_with(" 1\tline 1\n 2\tline 2\n"), "{all}");
        assert!(all.ends_with("30\tline 30"), "{all}");
        let window = f.ok("read_file", json!({"path": "src/a.txt", "offset": 10, "limit": 2}));
        assert_eq!(window, "10\tline 10\n11\tline 11\n[lines 10-11 of 30; read on with offset=12]");
    }

    #[test]
    fn truncates_at_the_byte_cap_with_a_marker() {
        let text: String = (0..200).map(|_| format!("{}\n", "y".repeat(100))).collect();
        let limits = Limits { read_max_bytes: 2048, ..Limits::default() };
        let mut f = fixture_with(&[("big.txt", &text)], limits);
        let out = f.ok("read_file", json!({"path": "big.txt"}));
        assert!(out.len() < 2048 + 120);
        assert_contains(&out, "[truncated at 2 KiB after line 19 of 200; read on with offset=20]");
    }

    #[test]
    fn cuts_long_lines() {
        let mut f = fixture(&[("min.js", &"z".repeat(5000))]);
        let out = f.ok("read_file", json!({"path": "min.js"}));
        assert!(out.ends_with("… [line cut: 5000 chars]"), "{}", &out[out.len() - 40..]);
        assert!(out.len() < 2100);
    }

    #[test]
    fn describes_binary_files_instead_of_showing_them() {
        let mut f = fixture(&[]);
        write(f.dir.path(), "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        write(f.dir.path(), "blob.bin", b"abc\0def");
        assert_eq!(f.ok("read_file", json!({"path": "logo.png"})), "(binary file: PNG image, 16 bytes; not shown)");
        assert_eq!(f.ok("read_file", json!({"path": "blob.bin"})), "(binary file: binary data, 7 bytes; not shown)");
    }

    #[test]
    fn errors_name_the_path_and_hint() {
        let mut f = fixture(&[("src/lib.rs", "x\n"), ("empty.txt", "")]);
        assert_contains(
            &f.err("read_file", json!({"path": "nope.rs"})),
            "`nope.rs` does not exist\nhint: use list_dir",
        );
        assert_contains(&f.err("read_file", json!({"path": "src"})), "`src` is a directory\nhint: use list_dir");
        assert_contains(
            &f.err("read_file", json!({"path": "src/lib.rs", "offset": 5})),
            "offset 5 is past the end of `src/lib.rs` (1 lines)",
        );
        assert_eq!(f.ok("read_file", json!({"path": "empty.txt"})), "(empty file)");
    }
}

mod list_dir {
    use super::*;

    #[test]
    fn lists_sorted_with_dirs_marked_and_denied_entries_flagged() {
        let mut f = fixture(&[("b.rs", ""), ("a/x.rs", ""), (".env", "K=v"), ("server.pem", ""), (".gitignore", "")]);
        f.symlink("b.rs", "link");
        let out = f.ok("list_dir", json!({}));
        assert_eq!(
            out,
            ".env  (not readable by policy)\n.gitignore\na/\nb.rs\nlink -> b.rs\nserver.pem  (not readable by policy)"
        );
        assert_eq!(f.ok("list_dir", json!({"path": "a"})), "x.rs");
        assert_eq!(f.ok("list_dir", json!({"path": "a/"})), "x.rs");
    }

    #[test]
    fn caps_entries_with_a_count() {
        let files: Vec<(String, &str)> = (0..12).map(|i| (format!("f{i:02}"), "")).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let mut f = fixture_with(&files, Limits { list_max_entries: 10, ..Limits::default() });
        let out = f.ok("list_dir", json!({"path": "."}));
        assert_eq!(out.lines().count(), 11);
        assert!(out.ends_with("f09\n[2 more entries not shown]"), "{out}");
    }

    #[test]
    fn marks_symlinks_leading_out_or_to_secrets() {
        let mut f = fixture(&[(".env", "K=v"), ("d/keep", "")]);
        f.symlink("/etc/passwd", "passwd");
        f.symlink(".env", "settings.txt");
        f.symlink("d", "dlink");
        f.symlink("missing", "dangling");
        let out = f.ok("list_dir", json!({}));
        assert_contains(&out, "passwd -> /etc/passwd  (outside the workspace)");
        assert_contains(&out, "settings.txt -> .env  (not readable by policy)");
        assert_contains(&out, "dlink -> d/");
        assert_contains(&out, "dangling -> missing  (broken)");
    }

    #[test]
    fn errors() {
        let mut f = fixture(&[("file", "")]);
        assert_contains(&f.err("list_dir", json!({"path": "file"})), "`file` is not a directory");
        assert_contains(&f.err("list_dir", json!({"path": "nope"})), "`nope` does not exist");
        assert_eq!(f.ok("list_dir", json!({"path": null})), "file");
        std::fs::create_dir(f.path("empty")).unwrap();
        assert_eq!(f.ok("list_dir", json!({"path": "empty"})), "(empty directory)");
    }
}

mod glob {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn age(f: &Fixture, rel: &str, secs_ago: u64) {
        let file = std::fs::File::options().write(true).open(f.path(rel)).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(secs_ago)).unwrap();
    }

    #[test]
    fn matches_newest_first_and_honours_gitignore() {
        let mut f = fixture(&[
            ("src/old.rs", ""),
            ("src/new.rs", ""),
            ("src/deep/mid.rs", ""),
            ("target/gen.rs", ""),
            (".gitignore", "target/\n"),
            (".hidden/h.rs", ""),
            (".git/hooks/x.rs", ""),
            ("README.md", ""),
        ]);
        age(&f, "src/old.rs", 300);
        age(&f, "src/deep/mid.rs", 200);
        age(&f, ".hidden/h.rs", 250);
        age(&f, "src/new.rs", 100);
        assert_eq!(
            f.ok("glob", json!({"pattern": "**/*.rs"})),
            "src/new.rs\nsrc/deep/mid.rs\n.hidden/h.rs\nsrc/old.rs"
        );
        assert_eq!(f.ok("glob", json!({"pattern": "*.rs", "path": "src"})), "src/new.rs\nsrc/old.rs");
        assert_eq!(f.ok("glob", json!({"pattern": "*.md"})), "README.md");
    }

    #[test]
    fn marks_denied_files_and_caps() {
        let files: Vec<String> = (0..5).map(|i| format!("k{i}.pem")).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|p| (p.as_str(), "")).collect();
        let mut f = fixture_with(&files, Limits { glob_max_results: 3, ..Limits::default() });
        let out = f.ok("glob", json!({"pattern": "*.pem"}));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[..3].iter().all(|l| l.ends_with(".pem  (not readable by policy)")), "{out}");
        assert!(out.ends_with("[2 more files not shown; narrow the pattern or path]"), "{out}");
    }

    #[test]
    fn errors_and_empty_results() {
        let mut f = fixture(&[("a.rs", "")]);
        assert_eq!(f.ok("glob", json!({"pattern": "*.py"})), "no files match `*.py` in .");
        assert_contains(&f.err("glob", json!({"pattern": "a[.rs"})), "invalid pattern `a[.rs`");
        assert_contains(&f.err("glob", json!({"pattern": "*", "path": "a.rs"})), "`a.rs` is not a directory");
        assert_contains(&f.err("glob", json!({"pattern": "*", "path": "../"})), "outside the workspace");
    }
}

mod grep {
    use super::*;

    #[test]
    fn reports_path_line_text_and_honours_gitignore() {
        let mut f = fixture(&[
            ("src/a.rs", "fn main() {\n    todo!()\n}\n"),
            ("src/b.rs", "// TODO later\n"),
            ("build/out.rs", "todo!()\n"),
            (".gitignore", "build/\n"),
            (".git/config", "todo\n"),
        ]);
        assert_eq!(f.ok("grep", json!({"pattern": "todo"})), "src/a.rs:2:    todo!()");
        let out = f.ok("grep", json!({"pattern": "todo", "case_insensitive": true}));
        assert_eq!(out, "src/a.rs:2:    todo!()\nsrc/b.rs:1:// TODO later");
        assert_eq!(f.ok("grep", json!({"pattern": "todo", "path": "build/out.rs"})), "build/out.rs:1:todo!()");
        assert_eq!(f.ok("grep", json!({"pattern": "nothing-here"})), "no matches");
    }

    #[test]
    fn context_and_glob_filter() {
        let mut f = fixture(&[("a.rs", "1\n2\nhit\n4\n5\n6\n7\nhit\n9\n"), ("a.txt", "hit\n")]);
        let out = f.ok("grep", json!({"pattern": "hit", "glob": "*.rs", "context": 1}));
        assert_eq!(out, "a.rs-2-2\na.rs:3:hit\na.rs-4-4\n--\na.rs-7-7\na.rs:8:hit\na.rs-9-9");
    }

    #[test]
    fn caps_results_with_a_count() {
        let text: String = (0..10).map(|i| format!("match {i}\n")).collect();
        let mut f = fixture(&[("m.txt", &text)]);
        let out = f.ok("grep", json!({"pattern": "match", "max_results": 3}));
        assert_eq!(
            out,
            "m.txt:1:match 0\nm.txt:2:match 1\nm.txt:3:match 2\n[7 more matches not shown; narrow the pattern, path or glob]"
        );
    }

    #[test]
    fn skips_binary_files_and_counts_policy_skips() {
        let mut f = fixture(&[(".env", "SECRET=needle\n"), ("deploy/key.pem", "needle\n"), ("ok.txt", "needle\n")]);
        write(f.dir.path(), "blob.bin", b"needle\0needle\n");
        f.symlink(".env", "innocent.txt");
        // Walks do not follow symlinks, so `innocent.txt` is not even opened.
        let out = f.ok("grep", json!({"pattern": "needle"}));
        assert_eq!(out, "ok.txt:1:needle\n[2 files skipped: not readable by policy]");
    }

    #[test]
    fn bad_regex_is_explained() {
        let mut f = fixture(&[]);
        let err = f.err("grep", json!({"pattern": "fn main("}));
        assert_contains(&err, "invalid pattern `fn main(`");
        assert_contains(&err, "hint: Rust regex syntax");
    }
}

mod edit_file {
    use super::*;

    const CODE: &str = "fn a() {\n    let x = 1;\n}\n\nfn b() {\n    let x = 1;\n}\n";

    #[test]
    fn replaces_a_unique_string_and_reports_digests() {
        let mut f = fixture(&[("src/lib.rs", "fn a() {\n    let x = 1;\n}\n")]);
        let out = f.call(
            "edit_file",
            json!({"path": "src/lib.rs", "old_string": "let x = 1;", "new_string": "let x = 2;\n    let y = 3;"}),
        );
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(out.content, "edited src/lib.rs: replaced 1 occurrence at line 2 (-1 +2 lines)");
        assert_eq!(f.read("src/lib.rs"), "fn a() {\n    let x = 2;\n    let y = 3;\n}\n");
        let change = out.changed.unwrap();
        assert_eq!(change.path, "src/lib.rs");
        assert_eq!(change.before_sha256.unwrap().len(), 64);
        assert_ne!(change.after_sha256, None);
    }

    #[test]
    fn refuses_ambiguous_strings_naming_each_line() {
        let mut f = fixture(&[("lib.rs", CODE)]);
        let err = f.err("edit_file", json!({"path": "lib.rs", "old_string": "let x = 1;", "new_string": "let x = 2;"}));
        assert_contains(&err, "old_string occurs 2 times in `lib.rs` (lines 2, 6)");
        assert_contains(&err, "set replace_all");
        assert_eq!(f.read("lib.rs"), CODE);
        let out = f.ok(
            "edit_file",
            json!({"path": "lib.rs", "old_string": "let x = 1;", "new_string": "let x = 2;", "replace_all": true}),
        );
        assert_eq!(out, "edited lib.rs: replaced 2 occurrences at lines 2, 6 (-1 +1 lines each)");
        assert_eq!(f.read("lib.rs").matches("let x = 2;").count(), 2);
    }

    #[test]
    fn not_found_quotes_the_closest_match_with_line_numbers() {
        let mut f = fixture(&[("lib.rs", CODE)]);
        let err =
            f.err("edit_file", json!({"path": "lib.rs", "old_string": "fn b() {\nlet x = 1;\n}", "new_string": "x"}));
        assert_contains(
            &err,
            "old_string not found in `lib.rs`; closest match (lines 5-7, differs only in whitespace/indentation):\n5\tfn b() {\n6\t    let x = 1;\n7\t}\nhint:",
        );
        let err = f.err("edit_file", json!({"path": "lib.rs", "old_string": "fn bb() {", "new_string": "x"}));
        assert_contains(&err, "closest match (line 5):\n5\tfn b() {");
        let err = f.err("edit_file", json!({"path": "lib.rs", "old_string": "   5\tfn b() {", "new_string": "x"}));
        assert_contains(&err, "leave them out");
    }

    #[test]
    fn other_errors() {
        let mut f = fixture(&[("lib.rs", CODE), ("real.rs", "abc")]);
        f.symlink("real.rs", "link.rs");
        let same = f.err("edit_file", json!({"path": "lib.rs", "old_string": "fn", "new_string": "fn"}));
        assert_contains(&same, "identical");
        assert_contains(
            &f.err("edit_file", json!({"path": "lib.rs", "old_string": "", "new_string": "x"})),
            "old_string is empty",
        );
        assert_contains(
            &f.err("edit_file", json!({"path": "nope.rs", "old_string": "a", "new_string": "b"})),
            "`nope.rs` does not exist",
        );
        let link = f.err("edit_file", json!({"path": "link.rs", "old_string": "abc", "new_string": "b"}));
        assert_contains(&link, "`link.rs` is a symbolic link to `real.rs`; writes never follow links");
        assert_eq!(f.read("real.rs"), "abc");
    }

    #[test]
    fn keeps_crlf_line_endings_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let mut f = fixture(&[("run.sh", "#!/bin/sh\r\necho a\r\necho b\r\n")]);
        std::fs::set_permissions(f.path("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        f.ok("edit_file", json!({"path": "run.sh", "old_string": "echo a\necho b", "new_string": "echo c\necho d"}));
        assert_eq!(f.read("run.sh"), "#!/bin/sh\r\necho c\r\necho d\r\n");
        assert_eq!(std::fs::metadata(f.path("run.sh")).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn refuses_binary_files() {
        let mut f = fixture(&[]);
        write(f.dir.path(), "b.bin", b"a\0b");
        assert_contains(
            &f.err("edit_file", json!({"path": "b.bin", "old_string": "a", "new_string": "c"})),
            "edit_file only edits text",
        );
    }
}

mod write_file {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                found.extend(leftovers(&entry.path()));
            } else if entry.file_name().to_string_lossy().contains("airlock") {
                found.push(entry.path().display().to_string());
            }
        }
        found
    }

    #[test]
    fn creates_parents_then_overwrites_atomically() {
        let mut f = fixture(&[]);
        let out = f.call("write_file", json!({"path": "a/b/c.txt", "content": "one\ntwo\n"}));
        assert_eq!(out.content, "created a/b/c.txt (2 lines, 8 bytes)");
        let change = out.changed.unwrap();
        assert_eq!((change.path.as_str(), change.before_sha256), ("a/b/c.txt", None));
        let first = change.after_sha256.unwrap();
        let out = f.call("write_file", json!({"path": "a/b/c.txt", "content": "three\n"}));
        assert_eq!(out.content, "overwrote a/b/c.txt (1 lines, 6 bytes)");
        assert_eq!(out.changed.unwrap().before_sha256, Some(first));
        assert_eq!(f.read("a/b/c.txt"), "three\n");
        assert_eq!(
            f.ok("write_file", json!({"path": "a/b/c.txt", "content": "three\n"})),
            "unchanged a/b/c.txt (1 lines, 6 bytes)"
        );
        assert_eq!(leftovers(f.dir.path()), Vec::<String>::new());
    }

    #[test]
    fn accepts_absolute_paths_beneath_the_root() {
        let mut f = fixture(&[]);
        let abs = f.path("x.txt").to_string_lossy().into_owned();
        assert_eq!(f.ok("write_file", json!({"path": abs, "content": ""})), "created x.txt (0 lines, 0 bytes)");
        let err = f.err("write_file", json!({"path": "/tmp/airlock-should-not-exist.txt", "content": ""}));
        assert_contains(&err, "outside the workspace");
        assert!(!Path::new("/tmp/airlock-should-not-exist.txt").exists());
    }

    #[test]
    fn never_follows_a_final_symlink() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim.txt");
        std::fs::write(&victim, "original").unwrap();
        let mut f = fixture(&[("inside.txt", "in")]);
        f.symlink(&victim, "out.txt");
        f.symlink("inside.txt", "in.txt");
        assert_contains(&f.err("write_file", json!({"path": "out.txt", "content": "pwned"})), "is a symbolic link");
        assert_contains(
            &f.err("write_file", json!({"path": "in.txt", "content": "x"})),
            "is a symbolic link to `inside.txt`",
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
        assert_eq!(f.read("inside.txt"), "in");
    }

    #[test]
    fn refuses_git_internals_directly_and_through_a_symlinked_dir() {
        let mut f = fixture(&[(".git/hooks/.keep", "")]);
        f.symlink(".git/hooks", "scripts");
        let direct = f.err("write_file", json!({"path": ".git/hooks/pre-commit", "content": "#!/bin/sh"}));
        assert_contains(&direct, "is inside .git");
        let via = f.err("write_file", json!({"path": "scripts/pre-commit", "content": "#!/bin/sh"}));
        assert_contains(&via, "`scripts/pre-commit` -> `.git/hooks/pre-commit` is inside .git");
        assert!(!f.path(".git/hooks/pre-commit").exists());
        assert_eq!(
            f.ok("write_file", json!({"path": ".gitignore", "content": "target/\n"})),
            "created .gitignore (1 lines, 8 bytes)"
        );
    }

    #[test]
    fn refuses_writes_through_symlinked_dirs_leading_out() {
        let outside = tempfile::tempdir().unwrap();
        let mut f = fixture(&[]);
        f.symlink(outside.path(), "out");
        assert_contains(&f.err("write_file", json!({"path": "out/x.txt", "content": "x"})), "outside the workspace");
        assert_contains(
            &f.err("write_file", json!({"path": "out/new/x.txt", "content": "x"})),
            "outside the workspace",
        );
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn refuses_directories_and_policy_paths() {
        let mut f = fixture(&[("d/x", "")]);
        assert_contains(&f.err("write_file", json!({"path": "d", "content": "x"})), "`d` is a directory");
        assert_contains(&f.err("write_file", json!({"path": ".", "content": "x"})), "`.` is a directory");
        assert_contains(&f.err("write_file", json!({"path": "d/x/y/z", "content": "x"})), "`d/x/y` is not a directory");
        assert_contains(
            &f.err("write_file", json!({"path": "prod.env", "content": "x"})),
            "not readable by policy (matches `*.env`)",
        );
    }
}

mod escapes {
    use super::*;

    #[test]
    fn symlink_to_etc_passwd_is_refused() {
        let mut f = fixture(&[]);
        f.symlink("/etc/passwd", "passwd");
        let err = f.err("read_file", json!({"path": "passwd"}));
        assert_contains(&err, "`passwd` is outside the workspace");
        assert!(!err.contains("root:"));
    }

    #[test]
    fn relative_symlink_climbing_out_is_refused() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::create_dir(outer.path().join("ws")).unwrap();
        std::fs::write(outer.path().join("secret.txt"), "outside").unwrap();
        std::os::unix::fs::symlink("../secret.txt", outer.path().join("ws/s.txt")).unwrap();
        std::os::unix::fs::symlink("..", outer.path().join("ws/up")).unwrap();
        let ws = outer.path().join("ws");
        let mut tools = Tools::new(Workspace::open(&ws, PathPolicy::with_patterns(&ws, &[]).unwrap()).unwrap());
        for (tool, args) in [
            ("read_file", json!({"path": "s.txt"})),
            ("read_file", json!({"path": "up/secret.txt"})),
            ("list_dir", json!({"path": "up"})),
            ("grep", json!({"pattern": "outside", "path": "up"})),
        ] {
            let out = tools.call(tool, &args);
            assert!(out.is_error && out.content.contains("outside the workspace"), "{tool} {args}: {}", out.content);
        }
    }

    #[test]
    fn dotdot_and_absolute_paths_elsewhere_are_refused() {
        let mut f = fixture(&[("a/x", "x")]);
        for path in ["../x", "a/../../x", "/etc/passwd", "/"] {
            assert_contains(&f.err("read_file", json!({"path": path})), "outside the workspace");
        }
        assert_contains(&f.err("list_dir", json!({"path": ".."})), "outside the workspace");
        let abs = f.path("a/x").to_string_lossy().into_owned();
        assert_eq!(f.ok("read_file", json!({"path": abs})), "1\tx");
        assert_eq!(f.ok("read_file", json!({"path": "a/../a/./x"})), "1\tx");
    }

    #[test]
    fn symlinks_within_the_workspace_work() {
        let mut f = fixture(&[("src/real.rs", "fn real() {}\n")]);
        f.symlink("src/real.rs", "alias.rs");
        f.symlink("src", "code");
        assert_eq!(f.ok("read_file", json!({"path": "alias.rs"})), "1\tfn real() {}");
        assert_eq!(f.ok("read_file", json!({"path": "code/real.rs"})), "1\tfn real() {}");
        assert_eq!(f.ok("list_dir", json!({"path": "code"})), "real.rs");
        f.ok("edit_file", json!({"path": "code/real.rs", "old_string": "real", "new_string": "renamed"}));
        assert_eq!(f.read("src/real.rs"), "fn renamed() {}\n");
    }
}

mod policy {
    use super::*;

    #[test]
    fn secrets_are_refused_naming_the_pattern() {
        let mut f = fixture(&[(".env", "K=v"), ("keys/id_rsa", "k"), ("tls/server.pem", "p"), (".env.example", "K=")]);
        for (path, pattern) in [(".env", "*.env"), ("keys/id_rsa", "id_rsa*"), ("tls/server.pem", "*.pem")] {
            let err = f.err("read_file", json!({"path": path}));
            assert_contains(&err, &format!("`{path}` is not readable by policy (matches `{pattern}`)"));
        }
        assert_eq!(f.ok("read_file", json!({"path": ".env.example"})), "1\tK=");
        let edit = f.err("edit_file", json!({"path": ".env", "old_string": "K", "new_string": "J"}));
        assert_contains(&edit, "not readable by policy");
        assert_eq!(f.read(".env"), "K=v");
    }

    #[test]
    fn an_innocent_symlink_to_a_secret_is_refused() {
        let mut f = fixture(&[("config/.env", "TOKEN=hunter2\n")]);
        f.symlink("config/.env", "notes.txt");
        f.symlink("config", "cfg");
        let err = f.err("read_file", json!({"path": "notes.txt"}));
        assert_contains(&err, "`notes.txt` -> `config/.env` is not readable by policy (matches `*.env`)");
        assert!(!err.contains("hunter2"));
        assert_contains(&f.err("read_file", json!({"path": "cfg/.env"})), "not readable by policy");
        let err = f.err("edit_file", json!({"path": "notes.txt", "old_string": "TOKEN", "new_string": "X"}));
        assert_contains(&err, "symbolic link");
    }

    #[test]
    fn airlockignore_patterns_apply_to_dirs() {
        let mut f = fixture(&[(".airlockignore", "private/\n"), ("private/notes.md", "n"), ("public.md", "p")]);
        assert_contains(&f.err("read_file", json!({"path": "private/notes.md"})), "(matches `private/`)");
        assert_contains(&f.err("list_dir", json!({"path": "private"})), "not readable by policy");
        assert_contains(&f.ok("list_dir", json!({})), "private/  (not readable by policy)");
    }
}

mod calls {
    use super::*;

    #[test]
    fn bad_arguments_and_unknown_tools_are_errors_not_panics() {
        let mut f = fixture(&[("a", "x")]);
        let cases = [
            ("read_file", json!({}), "invalid arguments for read_file: missing required field `path`"),
            ("read_file", json!({"path": "a", "extra": 1}), "unknown field `extra` (allowed: "),
            ("read_file", json!({"path": ["a"]}), "`path` must be a string, got an array"),
            ("read_file", json!({"path": "a", "limit": -1}), "`limit` must be at least 1"),
            ("read_file", Value::Null, "`arguments` must be an object, got null"),
            ("grep", json!({"pattern": "x", "case_insensitive": "yes"}), "`case_insensitive` must be a boolean"),
            ("run_command", json!({}), "unknown tool `run_command`\nhint: available tools: read_file, list_dir"),
        ];
        for (tool, args, want) in cases {
            assert_contains(&f.err(tool, args), want);
        }
    }

    #[test]
    fn todo_replaces_and_echoes_the_list() {
        let mut f = fixture(&[]);
        let out = f.ok(
            "todo",
            json!({"todos": [{"content": "read code", "status": "completed"}, {"content": "fix bug", "status": "in_progress"}, {"content": "test", "status": "pending"}]}),
        );
        assert_eq!(out, "todos (1/3 done):\n[x] read code\n[>] fix bug\n[ ] test");
        assert_eq!(f.tools.todos().len(), 3);
        let err = f.err(
            "todo",
            json!({"todos": [{"content": "a", "status": "in_progress"}, {"content": "b", "status": "in_progress"}]}),
        );
        assert_contains(&err, "2 items are in_progress; at most one may be");
        assert_contains(
            &f.err("todo", json!({"todos": [{"content": "a", "status": "doing"}]})),
            "`todos[0].status` must be one of",
        );
        assert_eq!(f.tools.todos().len(), 3);
    }
}

mod schemas {
    use super::*;

    /// The shape every tool schema (and nested object schema) must have.
    fn assert_object_schema(tool: &str, schema: &Value) {
        assert_eq!(schema["type"], "object", "{tool}");
        assert_eq!(schema["additionalProperties"], false, "{tool}");
        let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("{tool}: properties"));
        let required = schema["required"].as_array().unwrap_or_else(|| panic!("{tool}: required"));
        for name in required {
            assert!(properties.contains_key(name.as_str().unwrap()), "{tool}: required {name} is not a property");
        }
        for (name, property) in properties {
            let ty = property["type"].as_str().unwrap_or_else(|| panic!("{tool}.{name}: type"));
            assert!(["string", "integer", "boolean", "array", "object"].contains(&ty), "{tool}.{name}: {ty}");
            if ty == "array" {
                assert_object_schema(&format!("{tool}.{name}[]"), &property["items"]);
            }
        }
    }

    #[test]
    fn every_tool_has_a_valid_object_schema() {
        let specs = specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(names, ["read_file", "list_dir", "glob", "grep", "edit_file", "write_file", "todo"]);
        for spec in &specs {
            assert_object_schema(spec.name, &spec.parameters);
            assert!(spec.description.len() <= 80, "{}: keep descriptions lean", spec.name);
        }
    }

    #[test]
    fn schemas_stay_lean() {
        let total: usize = specs().iter().map(|s| s.description.len() + s.parameters.to_string().len()).sum();
        assert!(total < 3000, "all tool specs are {total} bytes; every byte is prefill on a CPU");
    }
}

mod preview {
    use super::*;

    #[test]
    fn an_edit_is_shown_as_it_would_be_without_being_made() {
        let mut f = fixture(&[("a.txt", "one\ntwo\n")]);
        let p = f.tools.preview("edit_file", &json!({"path": "a.txt", "old_string": "two", "new_string": "2"}));
        let p = p.unwrap().unwrap();
        assert_eq!((p.path.as_str(), p.before.as_str(), p.after.as_str()), ("a.txt", "one\ntwo\n", "one\n2\n"));
        assert_eq!(f.read("a.txt"), "one\ntwo\n", "a preview writes nothing");
        let p = f.tools.preview("write_file", &json!({"path": "new/b.txt", "content": "hi"})).unwrap().unwrap();
        assert_eq!((p.before.as_str(), p.after.as_str()), ("", "hi"));
        assert!(!f.path("new").exists());
        assert!(f.tools.preview("read_file", &json!({"path": "a.txt"})).is_none());
        // What the edit itself would refuse, the preview refuses too.
        f.symlink("/etc/passwd", "link");
        let through_link = f.tools.preview("write_file", &json!({"path": "link", "content": "x"})).unwrap();
        assert!(
            through_link.is_err() || through_link.is_ok_and(|p| !p.before.contains("root:")),
            "never read through a link"
        );
        assert!(
            f.tools
                .preview("edit_file", &json!({"path": "missing", "old_string": "a", "new_string": "b"}))
                .unwrap()
                .is_err()
        );
        assert!(
            f.tools
                .preview("edit_file", &json!({"path": "../x", "old_string": "a", "new_string": "b"}))
                .unwrap()
                .is_err()
        );
        let _ = f.ok("read_file", json!({"path": "a.txt"}));
    }
}
