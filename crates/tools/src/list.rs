//! `list_dir`: one directory's entries, sorted, with policy-denied ones marked rather than hidden
//! so the model knows why it cannot read them.

use serde::Deserialize;

use airlock_redact::PathDecision;

use crate::ToolError;
use crate::workspace::Workspace;

/// The mark on entries the model may not read.
pub(crate) const DENIED_MARK: &str = "  (not readable by policy)";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArgs {
    path: Option<String>,
}

pub(crate) fn list_dir(ws: &Workspace, args: ListArgs) -> Result<String, ToolError> {
    let opened = ws.open_path(args.path.as_deref().unwrap_or("."))?;
    let entries = ws.read_dir(&opened)?;
    let mut lines = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ToolError::Io { path: opened.shown.clone(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = opened.resolved.join(entry.file_name());
        let file_type = entry.file_type().map_err(|source| ToolError::Io { path: name.clone(), source })?;
        let line = if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path()).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
            // Follow the link the way read_file would, to mark where it cannot go.
            match ws.open_rel(&rel) {
                Ok(target_opened) if target_opened.meta.is_dir() => format!("{name} -> {target}/"),
                Ok(_) => format!("{name} -> {target}"),
                Err(ToolError::Denied { .. }) => format!("{name} -> {target}{DENIED_MARK}"),
                Err(ToolError::OutsideWorkspace { .. }) => format!("{name} -> {target}  (outside the workspace)"),
                Err(_) => format!("{name} -> {target}  (broken)"),
            }
        } else {
            let is_dir = file_type.is_dir();
            let slash = if is_dir { "/" } else { "" };
            match ws.decide(&rel, is_dir) {
                PathDecision::Allowed => format!("{name}{slash}"),
                PathDecision::Denied { .. } => format!("{name}{slash}{DENIED_MARK}"),
            }
        };
        lines.push(line);
    }
    if lines.is_empty() {
        return Ok("(empty directory)".to_string());
    }
    lines.sort_unstable();
    let max = ws.limits().list_max_entries;
    let rest = lines.len().saturating_sub(max);
    lines.truncate(max);
    if rest > 0 {
        lines.push(format!("[{rest} more entries not shown]"));
    }
    Ok(lines.join("\n"))
}
