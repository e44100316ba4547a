//! `write_file`: create or replace a whole file, atomically.

use serde::Deserialize;

use crate::workspace::{Workspace, sha256_hex, show};
use crate::{FileChange, Preview, ToolError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteArgs {
    path: String,
    content: String,
}

pub(crate) fn write_file(ws: &Workspace, args: WriteArgs) -> Result<(String, FileChange), ToolError> {
    let limit = ws.limits().edit_max_bytes;
    let size = args.content.len() as u64;
    if size > limit {
        return Err(ToolError::TooLarge { path: args.path, size, limit });
    }
    let target = ws.write_target(&args.path, true)?;
    let before = target.existing_digest()?;
    let after = sha256_hex(args.content.as_bytes());
    let lines = args.content.lines().count();
    let verb = match &before {
        Some((digest, _)) if *digest == after => "unchanged",
        Some(_) => "overwrote",
        None => "created",
    };
    if verb != "unchanged" {
        target.write_atomic(args.content.as_bytes(), before.as_ref().map(|(_, mode)| *mode))?;
    }
    let change =
        FileChange { path: show(&target.resolved), before_sha256: before.map(|(d, _)| d), after_sha256: Some(after) };
    Ok((format!("{verb} {} ({lines} lines, {size} bytes)", target.shown), change))
}

/// What `write_file` would make of the file, without writing it: for an approval.
pub(crate) fn preview(ws: &Workspace, args: WriteArgs) -> Result<Preview, ToolError> {
    let limit = ws.limits().edit_max_bytes;
    let size = args.content.len() as u64;
    if size > limit {
        return Err(ToolError::TooLarge { path: args.path, size, limit });
    }
    let target = match ws.write_target(&args.path, false) {
        Ok(target) => target,
        // A file in a folder the call would create: nothing there yet.
        Err(ToolError::NotFound { .. }) => {
            return Ok(Preview { path: args.path, before: String::new(), after: args.content });
        }
        Err(e) => return Err(e),
    };
    let before = target.read_existing(limit)?.map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned());
    Ok(Preview { path: show(&target.resolved), before: before.unwrap_or_default(), after: args.content })
}
