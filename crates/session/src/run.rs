//! The session's private run folder (the broker's socket) and its id.

use std::path::{Path, PathBuf};

/// A new session id: the UTC time to the second and 24 random bits
/// (`20261207T045023-a1b2c3`).
pub fn new_session_id() -> std::io::Result<String> {
    let mut random = [0u8; 3];
    // SAFETY: getrandom fills the buffer it is given.
    let n = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    if n != random.len() as isize {
        return Err(std::io::Error::last_os_error());
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(format!("{}-{}", compact_utc(secs), hex::encode(random)))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the epoch.
pub fn iso_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYYMMDDTHHMMSS` of a Unix time, UTC.
fn compact_utc(secs: u64) -> String {
    let iso = iso_time(i64::try_from(secs).unwrap_or(i64::MAX / 1000) * 1000);
    iso.trim_end_matches('Z').replace(['-', ':'], "")
}

/// The folder for sessions' private run folders (the broker's socket): the
/// first of `$XDG_RUNTIME_DIR/airlock`, `$TMPDIR/airlock-UID` (`/tmp`) and
/// `~/.cache/airlock/run` that is, or can be made, this user's own folder
/// closed to others. Another local user can create `/tmp/airlock-UID` first
/// (a link, a folder of theirs, one open to all): that one is passed over,
/// with a warning, instead of used or refused. Returns the folder and the
/// warnings.
pub fn run_root() -> Result<(PathBuf, Vec<String>), String> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut candidates = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|x| x.is_absolute() && x.is_dir()) {
        candidates.push(x.join("airlock"));
    }
    candidates.push(std::env::temp_dir().join(format!("airlock-{uid}")));
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()) {
        candidates.push(home.join(".cache/airlock/run"));
    }
    let mut passed_over = Vec::new();
    for root in candidates {
        match private_folder(&root, uid) {
            Ok(()) => return Ok((root, passed_over.iter().map(|why| format!("not using {why}")).collect())),
            Err(why) => passed_over.push(format!("{}: {why}", root.display())),
        }
    }
    Err(format!(
        "no private folder for the session's socket:\n  {}\nhint: remove what is in the way, or set XDG_RUNTIME_DIR \
         to a folder of your own",
        passed_over.join("\n  ")
    ))
}

/// Makes `path` (mode 0700) unless it exists, then checks it is a folder of
/// `uid`, not a link (never followed), and closed to others.
pub fn private_folder(path: &Path, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(parent) = path.parent() {
        // Only the home candidate has parents to make; `mkdir -p` there is the user's own tree.
        std::fs::DirBuilder::new().mode(0o700).recursive(true).create(parent).map_err(|e| e.to_string())?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create it: {e}")),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        return Err("it is a symbolic link (another user may have planted it)".into());
    }
    if !file_type.is_dir() {
        return Err("it is not a folder".into());
    }
    if meta.uid() != uid {
        return Err(format!("it belongs to uid {}, not to this user (uid {uid})", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("it is open to others (mode {:o})", meta.mode() & 0o7777));
    }
    Ok(())
}

/// Kills and reaps a child when dropped (a session that fails half-way
/// leaves no worker behind).
pub struct KillOnDrop(pub Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes a folder and what is in it when dropped.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_then_random() {
        assert_eq!(compact_utc(0), "19700101T000000");
        assert_eq!(compact_utc(1_796_619_023), "20261207T045023");
        let id = new_session_id().unwrap();
        assert_eq!(id.len(), "20261207T045023-a1b2c3".len(), "{id}");
    }

    #[test]
    fn a_planted_run_folder_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        assert!(private_folder(&link, uid).unwrap_err().contains("symbolic link"));
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_folder(&open, uid).unwrap_err().contains("open to others"));
        assert!(private_folder(&dir.path().join("new"), uid).is_ok());
    }
}
