//! A server pinned by digest starts only when what would run matches.

use airlock_mcp::{Hub, McpError, ServerEvent, digest_of};
use serde_json::json;

use super::support::{Session, spec};

#[test]
fn a_pinned_server_starts_on_a_match_and_is_refused_on_a_mismatch() {
    let session = Session::new();
    let digest = digest_of(&spec("p", "good"), &session.launcher.workspace).unwrap();

    let mut matching = spec("pinned", "good");
    matching.digest = Some(digest.clone());
    let mut other_args = spec("changed", "hang");
    other_args.digest = Some(digest.clone());
    let mut wrong = spec("wrong", "good");
    wrong.digest = Some(format!("sha256:{}", "0".repeat(64)));
    let (hub, errors) = Hub::start(&[matching, other_args, wrong], &session.launcher);

    assert_eq!(errors.len(), 2, "{errors:?}");
    for (err, server) in errors.iter().zip(["changed", "wrong"]) {
        let McpError::DigestMismatch { server: s, expected, actual } = err else { panic!("{err}") };
        assert_eq!(s, server);
        assert_ne!(expected, actual);
        let text = err.to_string();
        assert!(
            text.contains(expected.as_str()) && text.contains(actual.as_str()) && text.contains("refused"),
            "{text}"
        );
    }
    assert_eq!(hub.call("mcp__pinned__echo", &json!({"text": "pinned"})).unwrap().text, "pinned");
    assert!(hub.call("mcp__wrong__echo", &json!({})).is_err(), "a refused server offers nothing");
    let events = hub.take_events();
    assert!(events.contains(&ServerEvent::Started {
        server: "pinned".into(),
        digest,
        tools: hub.tools().iter().map(|t| t.name.clone()).collect(),
    }));
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Refused { server, reason } if server == "wrong" && reason.contains("not the pinned"))));
    hub.shutdown();
}
