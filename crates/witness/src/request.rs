//! The body of a C2SP tlog-witness `add-checkpoint` request: `old <size>`,
//! zero to 63 consistency-proof hashes in base64, one per line, a blank
//! line, then the signed checkpoint note.

use airlock_audit::merkle::Hash;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The spec's cap on consistency proof lines.
pub const MAX_PROOF_LINES: usize = 63;

/// A request body larger than this is not a checkpoint (a note of 100
/// signatures and 63 proof lines stays far below it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the latest checkpoint the client believes the witness cosigned (0 at first).
    pub old: u64,
    /// The RFC 6962 consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note (text, blank line, signature lines).
    pub checkpoint: String,
}

/// Why a request body was refused (a 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed add-checkpoint request: {0}")]
pub struct MalformedRequest(pub String);

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> String {
        let mut body = format!("old {}\n", self.old);
        for hash in &self.proof {
            body.push_str(&STANDARD.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.checkpoint);
        body
    }

    /// Parses a request body strictly.
    pub fn parse(body: &str) -> Result<AddCheckpoint, MalformedRequest> {
        let bad = |what: String| MalformedRequest(what);
        if body.len() > MAX_BODY_BYTES {
            return Err(bad(format!("the body is larger than {MAX_BODY_BYTES} bytes")));
        }
        let (old_line, mut rest) = body.split_once('\n').ok_or_else(|| bad("it has no old size line".into()))?;
        let digits = old_line
            .strip_prefix("old ")
            .ok_or_else(|| bad(format!("the first line {old_line:?} is not `old <size>`")))?;
        let old = parse_size(digits)
            .ok_or_else(|| bad(format!("the old size {digits:?} is not a decimal number without leading zeros")))?;
        let mut proof = Vec::new();
        loop {
            let (line, after) =
                rest.split_once('\n').ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!("more than {MAX_PROOF_LINES} consistency proof lines")));
            }
            let hash = STANDARD
                .decode(line)
                .ok()
                .and_then(|b| <Hash>::try_from(b).ok())
                .ok_or_else(|| bad(format!("proof line {} is not a 32-byte hash in base64", proof.len() + 1)))?;
            proof.push(hash);
        }
        if old == 0 && !proof.is_empty() {
            return Err(bad("the proof must be empty when the old size is 0".into()));
        }
        if rest.is_empty() {
            return Err(bad("no checkpoint after the blank line".into()));
        }
        Ok(AddCheckpoint { old, proof, checkpoint: rest.to_owned() })
    }
}

/// A tree size: ASCII digits, no leading zeros except `0` itself.
pub fn parse_size(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str =
        "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} example.com/log sig\n";

    #[test]
    fn requests_round_trip_in_the_spec_layout() {
        let request = AddCheckpoint { old: 3, proof: vec![[1; 32], [2; 32]], checkpoint: NOTE.into() };
        let body = request.to_body();
        assert!(body.starts_with(&format!(
            "old 3\n{}\n{}\n\nexample.com/log\n",
            STANDARD.encode([1; 32]),
            STANDARD.encode([2; 32])
        )));
        assert_eq!(AddCheckpoint::parse(&body).unwrap(), request);
        let first = AddCheckpoint { old: 0, proof: vec![], checkpoint: NOTE.into() };
        assert_eq!(first.to_body(), format!("old 0\n\n{NOTE}"));
        assert_eq!(AddCheckpoint::parse(&first.to_body()).unwrap(), first);
    }

    #[test]
    fn malformed_requests_are_refused_saying_why() {
        let h = STANDARD.encode([1; 32]);
        let cases = [
            (format!("old 01\n\n{NOTE}"), "leading zeros"),
            (format!("old -1\n\n{NOTE}"), "leading zeros"),
            (format!("new 1\n\n{NOTE}"), "old <size>"),
            (format!("old 1\n{h}\n{NOTE}"), "proof line 2"),
            (format!("old 0\n{h}\n\n{NOTE}"), "must be empty"),
            (format!("old 1\n{}\n\n{NOTE}", STANDARD.encode([1; 31])), "proof line 1"),
            ("old 1\n\n".to_owned(), "no checkpoint"),
            ("old 1".to_owned(), "no old size line"),
            (format!("old 1\n{}\n{NOTE}", format!("{h}\n").repeat(64)), "more than 63"),
        ];
        for (body, want) in cases {
            let err = AddCheckpoint::parse(&body).unwrap_err();
            assert!(err.to_string().contains(want), "{body:?}: {err}");
        }
    }
}
