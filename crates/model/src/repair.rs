//! Safe repairs of almost-JSON tool arguments.
//!
//! Small local models often produce arguments that are nearly JSON: a trailing comma, the last `}` missing, the
//! object wrapped in a Markdown code fence, or a stray `</tool_call>` after it. Those are repaired. Anything that
//! would need a guess about a value (single quotes, unquoted keys, `True`, a key without a value, a truncated
//! literal, two objects in a row) is not: the call is returned to the model as an error instead.

use serde_json::Value;

/// Parses `raw` as JSON, applying only repairs that cannot change a value the model wrote:
///
/// - a Markdown code fence around the JSON is removed;
/// - trailing commas before `}` or `]` are removed;
/// - strings, arrays and objects left open at the very end are closed;
/// - text after one complete top-level object or array is dropped, unless it starts another object or array.
///
/// Returns `None` when the text cannot be made into JSON that way. Only objects and arrays are repaired; a scalar
/// must parse as it is.
pub fn repair_json(raw: &str) -> Option<Value> {
    let text = strip_code_fence(raw.trim());
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    if !text.starts_with(['{', '[']) {
        return None;
    }
    let fixed = fix_structure(text)?;
    serde_json::from_str(&fixed).ok()
}

/// Removes a Markdown code fence (```` ```json … ``` ````), closed or not.
fn strip_code_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    // An info string ("json") may follow the opening fence.
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let rest = rest.strip_suffix("```").unwrap_or(rest);
    rest.trim()
}

/// One pass over `text` (which starts with `{` or `[`) that drops trailing commas, closes what is left open at the
/// end and cuts text after the top-level value. `None` when the structure cannot be repaired without guessing.
fn fix_structure(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut closers: Vec<char> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' => {
                closers.push('}');
                out.push(c);
            }
            '[' => {
                closers.push(']');
                out.push(c);
            }
            '}' | ']' => {
                if closers.pop() != Some(c) {
                    return None;
                }
                drop_trailing_comma(&mut out);
                out.push(c);
                if closers.is_empty() {
                    // The top-level value is complete. What follows is junk, unless it is another value: then the
                    // model meant more than one thing and picking one would be a guess.
                    let rest = text[at + c.len_utf8()..].trim_start();
                    if rest.starts_with(['{', '[']) {
                        return None;
                    }
                    return Some(out);
                }
            }
            _ => out.push(c),
        }
    }
    // The text ended with something open.
    if in_string {
        if escaped {
            return None;
        }
        out.push('"');
    }
    for closer in closers.into_iter().rev() {
        drop_trailing_comma(&mut out);
        if out.trim_end().ends_with(':') {
            // A key without its value.
            return None;
        }
        out.push(closer);
    }
    Some(out)
}

fn drop_trailing_comma(out: &mut String) {
    let trimmed = out.trim_end().len();
    if out[..trimmed].ends_with(',') {
        out.truncate(trimmed - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::repair_json;
    use serde_json::json;

    #[test]
    fn valid_json_is_returned_as_is() {
        assert_eq!(repair_json(r#"{"a": 1, "b": [1, 2]}"#), Some(json!({"a": 1, "b": [1, 2]})));
        assert_eq!(repair_json("  [1]  "), Some(json!([1])));
        assert_eq!(repair_json("42"), Some(json!(42)));
    }

    #[test]
    fn trailing_commas_are_removed() {
        assert_eq!(repair_json(r#"{"a": 1,}"#), Some(json!({"a": 1})));
        assert_eq!(repair_json(r#"{"a": [1, 2, ], }"#), Some(json!({"a": [1, 2]})));
        assert_eq!(repair_json("{\"a\": 1,\n}"), Some(json!({"a": 1})));
    }

    #[test]
    fn commas_inside_strings_are_kept() {
        assert_eq!(repair_json(r#"{"a": "x,}", "b": 1,}"#), Some(json!({"a": "x,}", "b": 1})));
    }

    #[test]
    fn unclosed_structures_at_the_end_are_closed() {
        assert_eq!(repair_json(r#"{"a": 1"#), Some(json!({"a": 1})));
        assert_eq!(repair_json(r#"{"a": {"b": [1, 2"#), Some(json!({"a": {"b": [1, 2]}})));
        assert_eq!(repair_json(r#"{"cmd": "ls -la"#), Some(json!({"cmd": "ls -la"})));
        assert_eq!(repair_json(r#"{"a": 1,"#), Some(json!({"a": 1})));
    }

    #[test]
    fn code_fences_are_removed() {
        assert_eq!(repair_json("```json\n{\"a\": 1}\n```"), Some(json!({"a": 1})));
        assert_eq!(repair_json("```\n{\"a\": 1}\n```"), Some(json!({"a": 1})));
        assert_eq!(repair_json("```json\n{\"a\": 1,}\n"), Some(json!({"a": 1})));
    }

    #[test]
    fn junk_after_one_value_is_dropped() {
        assert_eq!(repair_json(r#"{"a": 1}</tool_call>"#), Some(json!({"a": 1})));
        assert_eq!(repair_json(r#"{"a": 1}}"#), Some(json!({"a": 1})));
        assert_eq!(repair_json(r#"{"a": "}"} and that is all"#), Some(json!({"a": "}"})));
    }

    #[test]
    fn escapes_are_respected() {
        assert_eq!(repair_json(r#"{"a": "say \"hi\", ok"#), Some(json!({"a": "say \"hi\", ok"})));
    }

    #[test]
    fn values_are_never_guessed() {
        for bad in [
            "",
            "   ",
            "not json at all",
            "{'a': 1}",
            "{a: 1}",
            r#"{"a": True}"#,
            r#"{"a": None}"#,
            r#"{"a": }"#,
            r#"{"a":"#,
            r#"{"a""#,
            r#"{"a": tru"#,
            r#"{"a": 1} {"b": 2}"#,
            r#"[1] [2]"#,
            r#"{"a": [1, 2}"#,
            r#"Here you go: {"a": 1}"#,
            r#"{"a": "b\"#,
            r#"{"a": 1 // comment
}"#,
            r#"{"a": NaN}"#,
            r#"{"a": 1 "b": 2}"#,
            "\"unterminated",
        ] {
            assert_eq!(repair_json(bad), None, "must not repair {bad:?}");
        }
    }
}
