//! The tools' JSON Schemas, and a validator for the subset of JSON Schema they use.
//!
//! Descriptions are short on purpose: a local model pays for every token of them in prefill on
//! every turn.

use serde_json::{Map, Value, json};

use crate::ToolSpec;

/// The tools' specifications, in the order a model should consider them.
pub fn specs() -> Vec<ToolSpec> {
    let path = json!({"type": "string", "description": "relative to the workspace root"});
    vec![
        ToolSpec {
            name: "read_file",
            description: "Read a text file. Lines are numbered: `N<TAB>text`.",
            parameters: object(
                json!({
                    "path": path,
                    "offset": {"type": "integer", "minimum": 1, "description": "first line (1-based)"},
                    "limit": {"type": "integer", "minimum": 1, "description": "max lines (default 2000)"},
                }),
                &["path"],
            ),
        },
        ToolSpec {
            name: "list_dir",
            description: "List a directory; subdirectories end in /.",
            parameters: object(json!({"path": {"type": "string", "description": "default: workspace root"}}), &[]),
        },
        ToolSpec {
            name: "glob",
            description: "Find files by glob (e.g. **/*.rs), newest first. Honors .gitignore.",
            parameters: object(
                json!({
                    "pattern": {"type": "string"},
                    "path": {"type": "string", "description": "directory to search (default: root)"},
                }),
                &["pattern"],
            ),
        },
        ToolSpec {
            name: "grep",
            description: "Search file contents by regex. Honors .gitignore. Output: path:line:text.",
            parameters: object(
                json!({
                    "pattern": {"type": "string", "description": "Rust regex"},
                    "path": {"type": "string", "description": "file or directory (default: root)"},
                    "glob": {"type": "string", "description": "file filter, e.g. *.rs"},
                    "case_insensitive": {"type": "boolean"},
                    "context": {"type": "integer", "minimum": 0, "description": "lines around each match"},
                    "max_results": {"type": "integer", "minimum": 1, "description": "default 100"},
                }),
                &["pattern"],
            ),
        },
        ToolSpec {
            name: "edit_file",
            description: "Replace exact text in a file. old_string must occur once unless replace_all.",
            parameters: object(
                json!({
                    "path": path,
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean"},
                }),
                &["path", "old_string", "new_string"],
            ),
        },
        ToolSpec {
            name: "write_file",
            description: "Create or overwrite a file.",
            parameters: object(json!({"path": path, "content": {"type": "string"}}), &["path", "content"]),
        },
        ToolSpec {
            name: "todo",
            description: "Replace your task list. At most one item in_progress.",
            parameters: object(
                json!({
                    "todos": {
                        "type": "array",
                        "items": object(
                            json!({
                                "content": {"type": "string"},
                                "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                            }),
                            &["content", "status"],
                        ),
                    },
                }),
                &["todos"],
            ),
        },
    ]
}

/// `{"type": "object", "properties": .., "required": .., "additionalProperties": false}`.
/// The schema of `run_command`, offered only when a session has a command runner.
pub fn run_command_spec() -> ToolSpec {
    ToolSpec {
        name: "run_command",
        description: "Run a shell command in the workspace (sandboxed: no network, writes only in the workspace).",
        parameters: object(
            json!({
                "command": {"type": "string"},
                "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 600, "description": "default 120"},
            }),
            &["command"],
        ),
    }
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// Checks `value` against `schema` (the subset [`specs`] uses: `type`, `properties`, `required`,
/// `additionalProperties: false`, `enum`, `minimum`, `items`). `null` for an optional property
/// counts as absent, since small models often send it. The error names the field.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "arguments")
}

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let fits = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        _ => true,
    };
    if !fits {
        return Err(format!("`{at}` must be {}, got {}", article(ty), describe(value)));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!("`{at}` must be one of {}, got {value}", names.join(", ")));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
        && value.as_i64().is_some_and(|n| n < min)
    {
        return Err(format!("`{at}` must be at least {min}, got {value}"));
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(items, item, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        check_object(schema, object, at)?;
    }
    Ok(())
}

fn check_object(schema: &Value, object: &Map<String, Value>, at: &str) -> Result<(), String> {
    let empty = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let field = |name: &str| if at == "arguments" { name.to_string() } else { format!("{at}.{name}") };
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        let mut unknown: Vec<&str> =
            object.keys().filter(|k| !properties.contains_key(*k)).map(String::as_str).collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown field{} `{}` (allowed: {})",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join("`, `"),
                known.join(", ")
            ));
        }
    }
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    for name in &required {
        if object.get(*name).is_none_or(Value::is_null) {
            return Err(format!("missing required field `{}`", field(name)));
        }
    }
    for (name, value) in object {
        if value.is_null() && !required.contains(&name.as_str()) {
            continue;
        }
        if let Some(sub) = properties.get(name) {
            check(sub, value, &field(name))?;
        }
    }
    Ok(())
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "array" | "integer" => format!("an {ty}"),
        "" => "a value".to_string(),
        _ => format!("a {ty}"),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_f64() => format!("the number {n}"),
        Value::Number(_) => "an integer".into(),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {value}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Drops `null` optional fields so serde sees them as absent.
pub(crate) fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str) -> Value {
        specs().into_iter().find(|s| s.name == name).unwrap().parameters
    }

    #[test]
    fn accepts_well_formed_arguments() {
        validate(&schema("read_file"), &json!({"path": "a", "offset": 3, "limit": null})).unwrap();
        validate(&schema("todo"), &json!({"todos": [{"content": "x", "status": "pending"}]})).unwrap();
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let cases = [
            ("read_file", json!({}), "missing required field `path`"),
            ("read_file", json!({"path": "a", "lines": 3}), "unknown field `lines`"),
            ("read_file", json!({"path": 3}), "`path` must be a string, got an integer"),
            ("read_file", json!({"path": "a", "offset": 0}), "`offset` must be at least 1"),
            ("read_file", json!({"path": "a", "offset": 1.5}), "`offset` must be an integer"),
            ("read_file", json!("a"), "`arguments` must be an object"),
            ("todo", json!({"todos": [{"content": "x", "status": "done"}]}), "`todos[0].status` must be one of"),
            ("todo", json!({"todos": [{"content": "x"}]}), "missing required field `todos[0].status`"),
        ];
        for (tool, args, want) in cases {
            let err = validate(&schema(tool), &args).unwrap_err();
            assert!(err.contains(want), "{tool} {args}: {err}");
        }
    }

    #[test]
    fn nulls_are_dropped() {
        assert_eq!(without_nulls(&json!({"a": null, "b": [{"c": null}]})), json!({"b": [{}]}));
    }
}
