//! What a sandboxed server can and cannot reach.

use airlock_mcp::{Hub, ServerEvent};
use serde_json::json;

use super::support::{Session, spec};

#[test]
fn a_server_sees_the_workspace_read_only_and_nothing_else_of_the_users() {
    let session = Session::new();
    let ws = &session.launcher.workspace;
    std::fs::write(ws.join("notes.txt"), "workspace notes").unwrap();
    // A secret outside the workspace, and one in the user's home (hidden by the private home).
    let outside = session.dir.path().join("outside-secret.txt");
    std::fs::write(&outside, "outside-secret-value").unwrap();
    let home = std::env::var_os("HOME").expect("HOME is set");
    let in_home = tempfile::tempdir_in(&home).unwrap();
    let home_secret = in_home.path().join("id_rsa");
    std::fs::write(&home_secret, "home-secret-value").unwrap();
    // A folder given to read, one given to write.
    let shared = session.dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("data.txt"), "shared data").unwrap();
    let out = session.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    let mut s = spec("box", "good");
    s.env.insert("MCP_TEST_TOKEN".into(), "tok-123".into());
    s.read.push(shared.clone());
    s.write.push(out.clone());
    let (hub, errors) = Hub::start(&[s], &session.launcher);
    assert!(errors.is_empty(), "{errors:?}");
    let call = |tool: &str, args: serde_json::Value| hub.call(&format!("mcp__box__{tool}"), &args).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();

    let read = call("read_file", json!({"path": path(&ws.join("notes.txt"))}));
    assert_eq!((read.text.as_str(), read.is_error), ("workspace notes", false));
    let read = call("read_file", json!({"path": path(&shared.join("data.txt"))}));
    assert_eq!(read.text, "shared data");
    for secret in [&outside, &home_secret] {
        let got = call("read_file", json!({"path": path(secret)}));
        assert!(got.is_error && !got.text.contains("secret-value"), "{} was readable: {}", secret.display(), got.text);
    }

    let wrote = call("write_file", json!({"path": path(&ws.join("planted.txt")), "text": "x"}));
    assert!(wrote.is_error, "the workspace was writable: {}", wrote.text);
    assert!(!ws.join("planted.txt").exists());
    // Outside its grants a write fails or lands in its private /tmp view, never on the host's file.
    call("write_file", json!({"path": path(&outside), "text": "overwritten"}));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside-secret-value");
    let wrote = call("write_file", json!({"path": path(&out.join("result.txt")), "text": "made"}));
    assert!(!wrote.is_error, "{}", wrote.text);
    assert_eq!(std::fs::read_to_string(out.join("result.txt")).unwrap(), "made");
    let wrote = call("write_file", json!({"path": "scratch.txt", "text": "own"}));
    assert!(!wrote.is_error, "its own folder is writable: {}", wrote.text);
    let own = session.launcher.run_dir.join("mcp/box/work/scratch.txt");
    assert_eq!(std::fs::read_to_string(own).unwrap(), "own");

    // The given variable is there; one of the parent's that was not given is not.
    assert_eq!(call("env", json!({"name": "MCP_TEST_TOKEN"})).text, "tok-123");
    // (cargo sets the first; scripts/test's unprivileged run sets the others.)
    let parents = ["CARGO_MANIFEST_DIR", "AIRLOCK_BIN", "AIRLOCK_MCP_SERVERS"];
    let parent = parents.iter().find(|v| std::env::var_os(v).is_some()).expect("the test's own environment has one");
    assert_eq!(call("env", json!({"name": parent})).text, "(unset)");

    // No network: a loopback port of the host cannot be reached, a name cannot be resolved.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the port is open outside");
    let got = call("connect", json!({"port": port.to_string()}));
    assert!(got.is_error && got.text.contains("cannot connect"), "{}", got.text);
    let got = call("resolve", json!({"host": "exfil.example.com"}));
    assert!(got.is_error && got.text.contains("cannot resolve"), "{}", got.text);
    let events = hub.take_events();
    let attempt = ServerEvent::EgressAttempt { server: "box".into(), host: "exfil.example.com".into() };
    assert_eq!(events.iter().filter(|e| **e == attempt).count(), 1, "once for all record types: {events:?}");
    hub.shutdown();
}

#[test]
fn unsupported_transports_and_hosts_are_refused_clearly() {
    let session = Session::new();
    let mut with_hosts = spec("net", "good");
    with_hosts.hosts.push("api.example.com".into());
    let mut remote = spec("remote", "good");
    remote.transport = airlock_mcp::Transport::Http { url: "https://mcp.example.com".into() };
    let bad_name = spec("../x", "good");
    let (hub, errors) = Hub::start(&[with_hosts, remote, bad_name, spec("ok", "good")], &session.launcher);
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("MCP server net: network access (hosts = [\"api.example.com\"]) is not supported yet"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("a remote server needs the session's record"), "{}", errors[1]);
    assert!(errors[2].contains("\"../x\"") && errors[2].contains("only letters, digits"), "{}", errors[2]);
    assert_eq!(hub.call("mcp__ok__echo", &json!({"text": "on"})).unwrap().text, "on");
    let refused = hub.take_events().iter().filter(|e| matches!(e, ServerEvent::Refused { .. })).count();
    assert_eq!(refused, 3);
    hub.shutdown();
}
