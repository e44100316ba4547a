//! What runs, as one digest a managed policy can pin.
//!
//! The digest is SHA-256 over a canonical JSON description:
//!
//! - the resolved executable's content (its path is not part of it: the same
//!   server installed elsewhere has the same digest);
//! - each argument in order: an absolute path naming an existing file stands
//!   for its content, one naming a folder for its whole tree (every entry by
//!   relative path, sorted: files with their executable bit and content
//!   digest, symbolic links by their target, nothing skipped); any other
//!   argument stands for itself.
//!
//! So a pin covers the interpreter (`python3`, `node`) and each script or
//! package folder named in the arguments. It does not cover what the program
//! loads from elsewhere (the interpreter's standard library, a package found
//! by a name that is not a path, the interpreter of a script run through its
//! `#!` line): name the package folder in the arguments to pin it. The
//! environment is not part of it (it holds secrets).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{McpError, ServerSpec, Transport, launch};

/// One part of the description.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Part {
    Executable { sha256: String },
    Arg { value: String },
    File { executable: bool, sha256: String },
    Folder { entries: Vec<Entry> },
}

#[derive(Serialize)]
struct Entry {
    path: String,
    #[serde(flatten)]
    node: Node,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Node {
    Folder,
    File {
        executable: bool,
        sha256: String,
    },
    Link {
        target: String,
    },
    /// A socket, pipe or device: named, with no content.
    Other,
}

/// `sha256:HEX` of what `spec` would run (see the module's documentation),
/// with a relative command resolved against `workspace`.
pub fn digest_of(spec: &ServerSpec, workspace: &Path) -> Result<String, McpError> {
    let Transport::Stdio { command, args } = &spec.transport else {
        return Err(McpError::NotSupported {
            server: spec.name.clone(),
            what: "a digest of a remote (HTTP) server".into(),
            hint: "only stdio servers can be pinned".into(),
        });
    };
    let exe = launch::resolve_command(&spec.name, command, workspace)?;
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        let server = spec.name.clone();
        move |source| McpError::Io { server, what, path, source }
    };
    let mut parts = vec![Part::Executable { sha256: file_sha256(&exe).map_err(io("read", &exe))? }];
    for arg in args {
        let path = Path::new(arg);
        let meta = if path.is_absolute() { std::fs::metadata(path).ok() } else { None };
        parts.push(match meta {
            Some(m) if m.is_dir() => Part::Folder { entries: tree(path).map_err(io("read the folder", path))? },
            Some(m) if m.is_file() => Part::File {
                executable: m.permissions().mode() & 0o111 != 0,
                sha256: file_sha256(path).map_err(io("read", path))?,
            },
            _ => Part::Arg { value: arg.clone() },
        });
    }
    let description = serde_json::to_vec(&parts).map_err(|e| McpError::Start {
        server: spec.name.clone(),
        reason: format!("cannot describe what runs: {e}"),
    })?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&description))))
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Every entry beneath `root`, sorted by relative path, links not followed.
fn tree(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for item in std::fs::read_dir(root.join(&rel))? {
            let item = item?;
            let rel = rel.join(item.file_name());
            let full = root.join(&rel);
            let meta = std::fs::symlink_metadata(&full)?;
            let kind = meta.file_type();
            let node = if kind.is_symlink() {
                Node::Link { target: std::fs::read_link(&full)?.to_string_lossy().into_owned() }
            } else if kind.is_dir() {
                pending.push(rel.clone());
                Node::Folder
            } else if kind.is_file() {
                Node::File { executable: meta.permissions().mode() & 0o111 != 0, sha256: file_sha256(&full)? }
            } else {
                Node::Other
            };
            entries.push(Entry { path: rel.to_string_lossy().into_owned(), node });
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(command: &str, args: &[&str]) -> ServerSpec {
        ServerSpec {
            name: "s".into(),
            transport: Transport::Stdio { command: command.into(), args: args.iter().map(|a| a.to_string()).collect() },
            env: Default::default(),
            read: vec![],
            write: vec![],
            hosts: vec![],
            digest: None,
            call_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_digest_follows_a_script_and_a_package_folder_named_in_the_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("interp");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pkg = dir.path().join("pkg");
        std::fs::create_dir_all(pkg.join("lib")).unwrap();
        std::fs::write(pkg.join("lib/a.js"), "a").unwrap();
        let script = dir.path().join("main.py");
        std::fs::write(&script, "print(1)").unwrap();
        let s = spec(exe.to_str().unwrap(), &[script.to_str().unwrap(), pkg.to_str().unwrap(), "--flag"]);
        let first = digest_of(&s, dir.path()).unwrap();
        assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
        assert_eq!(digest_of(&s, dir.path()).unwrap(), first);

        std::fs::write(pkg.join("lib/a.js"), "b").unwrap();
        let changed_pkg = digest_of(&s, dir.path()).unwrap();
        assert_ne!(changed_pkg, first);
        std::fs::set_permissions(pkg.join("lib/a.js"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let changed_bit = digest_of(&s, dir.path()).unwrap();
        assert_ne!(changed_bit, changed_pkg);
        std::os::unix::fs::symlink("elsewhere", pkg.join("link")).unwrap();
        let with_link = digest_of(&s, dir.path()).unwrap();
        assert_ne!(with_link, changed_bit);
        std::fs::write(&script, "print(2)").unwrap();
        assert_ne!(digest_of(&s, dir.path()).unwrap(), with_link);
        std::fs::write(&exe, "#!/bin/sh\n# changed\n").unwrap();
        let s2 = spec(exe.to_str().unwrap(), &[script.to_str().unwrap(), pkg.to_str().unwrap(), "--other"]);
        assert_ne!(digest_of(&s2, dir.path()).unwrap(), digest_of(&s, dir.path()).unwrap());
    }

    #[test]
    fn a_missing_command_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = digest_of(&spec("no-such-command-xyz", &[]), dir.path()).unwrap_err().to_string();
        assert!(err.contains("no-such-command-xyz") && err.contains("not found"), "{err}");
    }
}
