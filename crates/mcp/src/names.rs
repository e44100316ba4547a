//! Qualified tool names and the checks on what a server offers.

use crate::{MAX_DESCRIPTION, MAX_SCHEMA, McpError};

/// `name` with every character outside `[A-Za-z0-9_-]` replaced by `_`.
pub(crate) fn component(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// `mcp__SERVER__TOOL`.
pub(crate) fn qualified(server: &str, tool: &str) -> String {
    format!("mcp__{}__{}", component(server), component(tool))
}

/// A server name usable as a folder and in tool names: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub(crate) fn check_server_name(name: &str) -> Result<(), McpError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.len() > 64 {
        "the name is longer than 64 characters"
    } else if component(name) != name {
        "the name may hold only letters, digits, '_' and '-'"
    } else {
        return Ok(());
    };
    Err(McpError::InvalidName { server: name.into(), reason: reason.into() })
}

/// The description as offered: control characters replaced, or why the tool is not offered.
pub(crate) fn offered_description(description: &str) -> Result<String, String> {
    if description.len() > MAX_DESCRIPTION {
        return Err(format!("its description is {} bytes, more than the {MAX_DESCRIPTION} offered", description.len()));
    }
    Ok(airlock_redact::terminal::sanitize(description).into_owned())
}

/// The schema as offered, or why the tool is not offered.
pub(crate) fn offered_schema(schema: &serde_json::Value) -> Result<(), String> {
    let size = serde_json::to_vec(schema).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_SCHEMA {
        return Err(format!("its input schema is {size} bytes of JSON, more than the {MAX_SCHEMA} offered"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_outside_the_allowed_set_become_underscores() {
        assert_eq!(qualified("git-hub", "search.code/v2"), "mcp__git-hub__search_code_v2");
        assert_eq!(qualified("a", "héllo wörld"), "mcp__a__h_llo_w_rld");
    }

    #[test]
    fn server_names_that_are_not_plain_are_refused() {
        assert!(check_server_name("files_2-x").is_ok());
        for bad in ["", "../x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_server_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_description_over_the_cap_is_refused_and_control_characters_are_replaced() {
        assert!(offered_description(&"x".repeat(MAX_DESCRIPTION + 1)).is_err());
        assert_eq!(offered_description("a\x1b]52;c;x\x07b").unwrap(), "a\u{FFFD}]52;c;x\u{FFFD}b");
    }

    #[test]
    fn a_schema_over_the_cap_is_refused() {
        let big = serde_json::json!({"type": "object", "description": "y".repeat(MAX_SCHEMA)});
        assert!(offered_schema(&big).is_err());
        assert!(offered_schema(&serde_json::json!({"type": "object"})).is_ok());
    }
}
