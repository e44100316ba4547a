//! Results rendered as text for the model: pure functions over the JSON the
//! server sent (so a new content type from a newer server still renders).

use serde_json::Value;

use crate::MAX_RESULT_TEXT;

/// A `tools/call` result: text content joined, other content described,
/// `structuredContent` as JSON when there is no text.
pub(crate) fn call_result(result: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(blocks) = result.get("content").and_then(Value::as_array) {
        parts.extend(blocks.iter().map(content_block));
    }
    let has_text = parts.iter().any(|p| !p.is_empty());
    if !has_text && let Some(structured) = result.get("structuredContent") {
        parts.push(structured.to_string());
    }
    cap(parts.join("\n"))
}

/// One content block (of a tool result or a prompt message).
fn content_block(block: &Value) -> String {
    let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
    match text("type") {
        "text" => text("text").to_owned(),
        kind @ ("image" | "audio") => {
            format!("[{kind}: {}, {} bytes]", or_unknown(text("mimeType")), base64_len(text("data")))
        }
        "resource" => block.get("resource").map(resource_contents).unwrap_or_default(),
        "resource_link" => format!("[resource link: {} {}]", text("uri"), text("name")),
        other => format!("[content of type {other:?}]"),
    }
}

/// One resource's contents: its text, or what its blob is.
fn resource_contents(contents: &Value) -> String {
    let field = |key: &str| contents.get(key).and_then(Value::as_str);
    match (field("text"), field("blob")) {
        (Some(text), _) => text.to_owned(),
        (None, Some(blob)) => {
            format!("[blob: {}, {} bytes]", or_unknown(field("mimeType").unwrap_or("")), base64_len(blob))
        }
        (None, None) => String::new(),
    }
}

/// A `resources/read` result: each resource's contents, headed by its URI when there are several.
pub(crate) fn read_resource(result: &Value) -> String {
    let items = result.get("contents").and_then(Value::as_array).cloned().unwrap_or_default();
    let several = items.len() > 1;
    let parts: Vec<String> = items
        .iter()
        .map(|c| {
            let body = resource_contents(c);
            match (several, c.get("uri").and_then(Value::as_str)) {
                (true, Some(uri)) => format!("--- {uri}\n{body}"),
                _ => body,
            }
        })
        .collect();
    cap(parts.join("\n"))
}

/// Listed resources, one a line: `URI  NAME (MIME): DESCRIPTION`.
pub(crate) fn resource_list(resources: &[Value]) -> String {
    let lines: Vec<String> = resources
        .iter()
        .map(|r| {
            let field = |key: &str| r.get(key).and_then(Value::as_str).unwrap_or("");
            let mut line = format!("{}  {}", field("uri"), field("name"));
            if !field("mimeType").is_empty() {
                line.push_str(&format!(" ({})", field("mimeType")));
            }
            if !field("description").is_empty() {
                line.push_str(&format!(": {}", field("description")));
            }
            line
        })
        .collect();
    if lines.is_empty() { cap("(no resources)".into()) } else { cap(lines.join("\n")) }
}

/// Listed prompts, one a line: `NAME(ARG, ARG?): DESCRIPTION` (`?` marks an optional argument).
pub(crate) fn prompt_list(prompts: &[Value]) -> String {
    let lines: Vec<String> = prompts
        .iter()
        .map(|p| {
            let args: Vec<String> = p
                .get("arguments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|arg| {
                            let name = arg.get("name").and_then(Value::as_str).unwrap_or("");
                            let required = arg.get("required").and_then(Value::as_bool) == Some(true);
                            if required { name.to_owned() } else { format!("{name}?") }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let description = p.get("description").and_then(Value::as_str).unwrap_or("");
            format!(
                "{name}({}){}",
                args.join(", "),
                if description.is_empty() { String::new() } else { format!(": {description}") }
            )
        })
        .collect();
    if lines.is_empty() { cap("(no prompts)".into()) } else { cap(lines.join("\n")) }
}

/// A `prompts/get` result: each message as `ROLE: CONTENT`.
pub(crate) fn prompt(result: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(d) = result.get("description").and_then(Value::as_str) {
        parts.push(d.to_owned());
    }
    for message in result.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("?");
        let content = message.get("content").map(content_block).unwrap_or_default();
        parts.push(format!("{role}: {content}"));
    }
    cap(parts.join("\n"))
}

fn or_unknown(mime: &str) -> &str {
    if mime.is_empty() { "unknown type" } else { mime }
}

/// How many bytes base64 `data` decodes to.
fn base64_len(data: &str) -> usize {
    let data = data.trim_end();
    let padding = data.bytes().rev().take_while(|b| *b == b'=').count();
    (data.len() / 4 * 3 + data.len() % 4 * 3 / 4).saturating_sub(padding)
}

/// At most [`MAX_RESULT_TEXT`] bytes, cut on a character boundary with a marker.
pub(crate) fn cap(mut text: String) -> String {
    if text.len() <= MAX_RESULT_TEXT {
        return text;
    }
    let total = text.len();
    let mut end = MAX_RESULT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("\n[airlock: result cut: {} of {total} bytes not shown]", total - end));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_joined_and_other_content_described() {
        let result = json!({"content": [
            {"type": "text", "text": "one"},
            {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
            {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}},
            {"type": "resource", "resource": {"uri": "file:///b", "blob": "AAECAw==", "mimeType": "application/x"}},
            {"type": "text", "text": "two"}
        ]});
        assert_eq!(
            call_result(&result),
            "one\n[image: image/png, 5 bytes]\n[audio: audio/wav, 3 bytes]\ninside\n[blob: application/x, 4 bytes]\ntwo"
        );
    }

    #[test]
    fn structured_content_shows_only_without_text() {
        let only = json!({"content": [], "structuredContent": {"n": 1}});
        assert_eq!(call_result(&only), "{\"n\":1}");
        let both = json!({"content": [{"type": "text", "text": "t"}], "structuredContent": {"n": 1}});
        assert_eq!(call_result(&both), "t");
    }

    #[test]
    fn a_long_result_is_cut_with_a_marker() {
        let text = "é".repeat(MAX_RESULT_TEXT);
        let out = cap(text);
        assert!(out.len() < MAX_RESULT_TEXT + 100);
        let marker = format!("\n[airlock: result cut: {MAX_RESULT_TEXT} of {} bytes not shown]", 2 * MAX_RESULT_TEXT);
        assert!(out.ends_with(&marker), "{}", &out[out.len() - 80..]);
    }

    #[test]
    fn prompts_and_resources_list_one_a_line() {
        let prompts = [json!({"name": "greet", "description": "say hi", "arguments": [
            {"name": "who", "required": true}, {"name": "tone"}]})];
        assert_eq!(prompt_list(&prompts), "greet(who, tone?): say hi");
        let resources = [json!({"uri": "mem://a", "name": "a", "mimeType": "text/plain"})];
        assert_eq!(resource_list(&resources), "mem://a  a (text/plain)");
        let got = json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]});
        assert_eq!(prompt(&got), "user: hi");
    }
}
