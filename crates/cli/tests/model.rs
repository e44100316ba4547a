//! `airlock model pull PATH`, `list`, `info` and `rm` on a store in a temp folder, as a person sees them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

/// A small valid GGUF: llama, a context length, a chat template, one F32 tensor.
fn tiny_gguf() -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(1u64.to_le_bytes());
    out.extend(3u64.to_le_bytes());
    string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes());
    string(&mut out, "llama");
    string(&mut out, "llama.context_length");
    out.extend(4u32.to_le_bytes());
    out.extend(2048u32.to_le_bytes());
    string(&mut out, "tokenizer.chat_template");
    out.extend(8u32.to_le_bytes());
    string(&mut out, "{{ bos_token }}\n{% for m in messages %}{{ m.content }}{% endfor %}");
    string(&mut out, "w");
    out.extend(1u32.to_le_bytes());
    out.extend(64u64.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.resize(out.len().next_multiple_of(32), 0);
    out.extend([7u8; 256]);
    out
}

fn airlock(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("model")
        .arg("--dir")
        .arg(store)
        .args(args)
        .env_remove("HF_TOKEN")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn pull_a_path_then_list_info_and_rm() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("models");
    let file = dir.path().join("tiny-coder.Q8_0.gguf");
    let bytes = tiny_gguf();
    std::fs::write(&file, &bytes).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };

    let out = airlock(&store, &["pull", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("added tiny-coder.Q8_0 (0.0 MB, llama, sha256 {sha})\n"));
    assert!(stderr(&out).contains("copying "), "{}", stderr(&out));

    let out = airlock(&store, &["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("NAME") && lines[0].contains("SIZE  ARCH   SHA256"), "{text}");
    assert_eq!(lines[1], format!("tiny-coder.Q8_0  0.0 MB  llama  {}  {}", &sha[..12], file.display()));

    let out = airlock(&store, &["info", "tiny-coder.Q8_0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "name:            tiny-coder.Q8_0\n",
        "architecture:    llama\n",
        "runs in airlock: yes\n",
        "parameters:      64\n",
        "context length:  2048\n",
        "quantization:    F32\n",
        "chat template:   yes, 2 lines; first: {{ bos_token }}\n",
        "tensors:         1\n",
        &format!("sha256:          {sha} (recorded when added; --verify hashes it now)\n"),
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let out = airlock(&store, &["info", "--verify", "tiny-coder.Q8_0"]);
    assert!(stdout(&out).contains(&format!("{sha} (verified now)")), "{}", stdout(&out));
    // A path is hashed and read without being added.
    let out = airlock(&store, &["info", file.to_str().unwrap()]);
    assert!(stdout(&out).contains(&format!("{sha} (hashed now)")), "{}", stdout(&out));

    // A stored model changed on disk: refused, exit 2, both digests named.
    let stored = store.join("tiny-coder.Q8_0.gguf");
    let mut changed = bytes.clone();
    *changed.last_mut().unwrap() = 8;
    std::fs::write(&stored, &changed).unwrap();
    let out = airlock(&store, &["info", "--verify", "tiny-coder.Q8_0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("but {sha} was recorded")), "{}", stderr(&out));

    let out = airlock(&store, &["rm", "tiny-coder.Q8_0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stored.exists());
    let out = airlock(&store, &["list"]);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).starts_with("no models in "), "{}", stderr(&out));
}

#[test]
fn errors_exit_2_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("models");
    let page = dir.path().join("page.gguf");
    std::fs::write(&page, "<!DOCTYPE html><html>Sign in</html>").unwrap();
    for (args, expected) in [
        (vec!["pull", page.to_str().unwrap()], "not a GGUF file"),
        (vec!["pull", "hf:owner/repo"], "invalid model source \"hf:owner/repo\""),
        (vec!["rm", "nothing"], "no model named \"nothing\""),
        (vec!["info", "nothing"], "no model named \"nothing\""),
    ] {
        let out = airlock(&store, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).starts_with("airlock: "), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    assert!(!store.join("page.gguf").exists());
}
