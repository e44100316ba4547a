//! `write_file`: create or replace a whole file, atomically.

use serde::Deserialize;

use crate::workspace::{Workspace, sha256_hex, show};
use crate::{FileChange, ToolError};

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
