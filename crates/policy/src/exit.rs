//! Exit statuses shared by every airlock command, defined once.
//!
//! Each command documents which of these it uses; a script can rely on a
//! number meaning the same thing whichever command returned it. They are
//! `i32`, the type a process's status has everywhere else
//! ([`std::process::ExitStatus::code`], `waitpid`), and become the process's
//! own status through [`exit_code`].
//!
//! The numbers above 123 follow the conventions of `timeout(1)`, `env(1)`
//! and the shells, so that `airlock sandbox -- CMD` can stand in for `CMD`:
//! 124 timed out, 125 the wrapper itself failed, 126 found but not
//! executable, 127 not found, 128 + N killed by signal N.
//!
//! ```
//! use airlock_policy::exit;
//!
//! assert_eq!(exit::signal(2), exit::CANCELLED);
//! assert_eq!(exit::to_u8(300), 255);
//! let error = exit::WithStatus::new(exit::LIMIT, "the turn limit stopped the run");
//! assert_eq!(error.status(), exit::LIMIT);
//! ```

use std::fmt;
use std::process::ExitCode;

/// Done, and nothing was found or failed.
pub const SUCCESS: i32 = 0;
/// The command worked and its answer is "yes, there is a problem": `scan`
/// found secrets, `audit verify` found tampering, `report`'s log does not
/// verify. Never used for a failure to do the work (that is [`USAGE`]).
pub const FOUND: i32 = 1;
/// Invalid arguments or policy, or any other error that stopped the
/// command (a file that cannot be read, a log that cannot be opened).
pub const USAGE: i32 = 2;
/// A limit stopped the agent: the turn limit, the token budget, or the
/// session timeout.
pub const LIMIT: i32 = 3;
/// The model could not be reached or answered with an error.
pub const MODEL: i32 = 4;
/// The worker died, broke the protocol, or a record could not be kept.
pub const WORKER: i32 = 5;
/// The command was killed by its timeout (as `timeout(1)`).
pub const TIMEOUT: i32 = 124;
/// The sandbox refused to run: a protection layer is unavailable or failed
/// to apply, so nothing ran (as `env(1)`'s own failure).
pub const REFUSED: i32 = 125;
/// The command was found but could not be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
/// Killed by signal N: `SIGNAL_BASE + N` (see [`signal`]).
pub const SIGNAL_BASE: i32 = 128;
/// Cancelled by the person (SIGINT, Ctrl-C): `SIGNAL_BASE + 2`.
pub const CANCELLED: i32 = SIGNAL_BASE + 2;

/// The status for "ended by signal `number`".
pub const fn signal(number: i32) -> i32 {
    SIGNAL_BASE + number
}

/// A status as the byte a process can exit with: out of range values
/// (a status wider than a byte, a negative one) become 255, never a
/// wrapped-around 0 that would read as success.
pub const fn to_u8(status: i32) -> u8 {
    if status >= 0 && status <= 255 { status as u8 } else { 255 }
}

/// A status as `main`'s return value.
pub fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(to_u8(status))
}

/// An error that ends the command with its own exit status rather than
/// [`USAGE`]: the front end's one error path looks for it in the chain.
///
/// It is transparent: it shows as the error it wraps and hands on that
/// error's source, so the chain printed is the same with or without it.
#[derive(Debug)]
pub struct WithStatus {
    status: i32,
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl WithStatus {
    /// `error`, ending the command with `status`.
    pub fn new(status: i32, error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> WithStatus {
        WithStatus { status, error: error.into() }
    }

    /// The exit status this error ends the command with.
    pub fn status(&self) -> i32 {
        self.status
    }
}

impl fmt::Display for WithStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for WithStatus {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_out_of_a_bytes_range_never_read_as_success() {
        assert_eq!(to_u8(SUCCESS), 0);
        assert_eq!(to_u8(REFUSED), 125);
        assert_eq!(to_u8(signal(15)), 143);
        assert_eq!(to_u8(256), 255);
        assert_eq!(to_u8(-1), 255);
    }

    #[test]
    fn statuses_are_distinct() {
        let all = [
            SUCCESS,
            FOUND,
            USAGE,
            LIMIT,
            MODEL,
            WORKER,
            TIMEOUT,
            REFUSED,
            NOT_EXECUTABLE,
            NOT_FOUND,
            SIGNAL_BASE,
            CANCELLED,
        ];
        let mut sorted = all.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }

    #[test]
    fn a_status_error_shows_as_the_error_it_wraps() {
        #[derive(Debug)]
        struct Inner(std::io::Error);
        impl fmt::Display for Inner {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("cannot open the log")
            }
        }
        impl std::error::Error for Inner {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = WithStatus::new(WORKER, Inner(std::io::Error::other("disk full")));
        assert_eq!(e.to_string(), "cannot open the log");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
        assert_eq!(e.status(), WORKER);
    }
}
