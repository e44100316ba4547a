//! C2SP transparency log checkpoints (<https://c2sp.org/tlog-checkpoint>).
//!
//! A checkpoint commits to the whole log: its origin (the log's name), the
//! number of leaves and the RFC 6962 Merkle root, one per line, then optional
//! extension lines. It travels as a signed note (see [`crate::note`]), so
//! anyone holding the log's verifier key can check it offline.
//!
//! ```
//! use airlock_audit::checkpoint::Checkpoint;
//! use airlock_audit::note::Signer;
//!
//! let signer = Signer::generate("example.com/log")?;
//! let checkpoint = Checkpoint { origin: "example.com/log".into(), size: 3, root: [7; 32], extensions: vec![] };
//! let signed = checkpoint.sign(&signer)?;
//! let opened = Checkpoint::open(&signed, &[signer.verifier()], "example.com/log")?;
//! assert_eq!(opened, checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::note::{self, NoteError, Signer, Verifier};

/// What went wrong while parsing, signing or opening a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint text does not follow the checkpoint format.
    #[error("malformed checkpoint: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The signed note around the checkpoint did not open.
    #[error("checkpoint signature check failed: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint is from a log other than the one expected.
    #[error("checkpoint is for log {found:?}, expected {expected:?}")]
    OriginMismatch {
        /// The origin asked for.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
}

/// A checkpoint: the state of a log at one size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, conventionally a schema-less URL such as `example.com/log`.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 6962 Merkle tree hash of those leaves.
    pub root: [u8; 32],
    /// Optional extension lines, each non-empty and without the newline.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint body: `<origin>\n<size>\n<base64 root>\n` then one line per extension.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint body strictly: non-empty origin, size in decimal
    /// without sign or leading zeros, root as padded standard base64 of
    /// exactly 32 bytes, and non-empty extension lines.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |reason: String| CheckpointError::Malformed { reason };
        let body = text.strip_suffix('\n').ok_or_else(|| malformed("it does not end with a newline".to_owned()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("the origin (line 1) is empty".to_owned()));
        }
        if let Some(c) = origin.chars().find(|c| c.is_control()) {
            return Err(malformed(format!("the origin holds the control character {c:?}")));
        }
        let size_line = lines.next().ok_or_else(|| malformed("it has no tree size (line 2)".to_owned()))?;
        let size = parse_size(size_line).ok_or_else(|| {
            malformed(format!("the tree size (line 2) {size_line:?} is not a decimal number without leading zeros"))
        })?;
        let root_line = lines.next().ok_or_else(|| malformed("it has no root hash (line 3)".to_owned()))?;
        let root =
            STANDARD.decode(root_line).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()).ok_or_else(|| {
                malformed(format!("the root hash (line 3) {root_line:?} is not 32 bytes in padded base64"))
            })?;
        let mut extensions = Vec::new();
        for (index, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(malformed(format!("extension line {} is empty", index + 4)));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root, extensions })
    }

    /// Signs the checkpoint and returns the signed note.
    ///
    /// Fails if the checkpoint would not parse back to itself, for example
    /// when the origin is empty or a field holds a newline.
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        let text = self.to_text();
        if Checkpoint::parse(&text)? != *self {
            return Err(CheckpointError::Malformed {
                reason: "a field holds a newline, so the text would not parse back to this checkpoint".to_owned(),
            });
        }
        Ok(note::sign(&text, signer)?)
    }

    /// Checks the signed note against `verifiers`, parses the checkpoint in
    /// it and checks that it is for the log `expected_origin`.
    pub fn open(signed: &str, verifiers: &[Verifier], expected_origin: &str) -> Result<Checkpoint, CheckpointError> {
        let opened = note::open(signed, verifiers)?;
        let checkpoint = Checkpoint::parse(&opened.text)?;
        if checkpoint.origin != expected_origin {
            return Err(CheckpointError::OriginMismatch {
                expected: expected_origin.to_owned(),
                found: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }
}

/// Parses a tree size: ASCII digits only, no leading zeros except "0" itself.
fn parse_size(line: &str) -> Option<u64> {
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) || (line.len() > 1 && line.starts_with('0')) {
        return None;
    }
    line.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut root = [0u8; 32];
        for (i, byte) in root.iter_mut().enumerate() {
            *byte = i as u8 * 7;
        }
        Checkpoint { origin: "airlock.example/audit".to_owned(), size: 1234, root, extensions: vec![] }
    }

    #[test]
    fn text_round_trips() {
        let mut checkpoint = sample();
        assert_eq!(Checkpoint::parse(&checkpoint.to_text()).unwrap(), checkpoint);
        checkpoint.extensions = vec!["ext one".to_owned(), "— two".to_owned()];
        let text = checkpoint.to_text();
        assert!(text.ends_with("\next one\n— two\n"), "{text}");
        assert_eq!(Checkpoint::parse(&text).unwrap(), checkpoint);
    }

    #[test]
    fn text_layout_is_origin_size_root() {
        let checkpoint = Checkpoint { origin: "o".to_owned(), size: 0, root: [0; 32], extensions: vec![] };
        assert_eq!(checkpoint.to_text(), "o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    }

    #[test]
    fn parses_a_sum_golang_org_checkpoint_body() {
        let text = "go.sum database tree\n13485\n/ZWur4obeiqK+ASdnPK+/Rmz6LPQMUeSmHh0+UkL54Y=\n";
        let checkpoint = Checkpoint::parse(text).unwrap();
        assert_eq!(checkpoint.origin, "go.sum database tree");
        assert_eq!(checkpoint.size, 13485);
        assert_eq!(checkpoint.to_text(), text);
    }

    #[test]
    fn strict_parse_rejects_malformed_bodies() {
        let root = STANDARD.encode([1u8; 32]);
        let cases = [
            (format!("o\n1\n{root}"), "newline"),
            (format!("\n1\n{root}\n"), "origin"),
            ("o\n1\n".to_owned(), "root hash"),
            ("o\n".to_owned(), "tree size"),
            (format!("o\n01\n{root}\n"), "tree size"),
            (format!("o\n+1\n{root}\n"), "tree size"),
            (format!("o\n-1\n{root}\n"), "tree size"),
            (format!("o\n\n{root}\n"), "tree size"),
            (format!("o\n 1\n{root}\n"), "tree size"),
            (format!("o\n18446744073709551616\n{root}\n"), "tree size"),
            (format!("o\n1\n{}\n", root.trim_end_matches('=')), "root hash"),
            (format!("o\n1\n{}\n", STANDARD.encode([1u8; 31])), "root hash"),
            (format!("o\n1\n{}\n", STANDARD.encode([1u8; 33])), "root hash"),
            (format!("o\n1\n{}\n", root.replace('A', "-")), "root hash"),
            (format!("o\n1\n{root}\n\n"), "extension line 4 is empty"),
        ];
        for (text, want) in cases {
            let err = Checkpoint::parse(&text).unwrap_err();
            assert!(err.to_string().contains(want), "{text:?}: {err} (want {want:?})");
        }
        assert_eq!(Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n")).unwrap().size, u64::MAX);
    }

    #[test]
    fn signed_checkpoint_opens() {
        let signer = Signer::generate("airlock.example/audit").unwrap();
        let checkpoint = sample();
        let signed = checkpoint.sign(&signer).unwrap();
        assert!(signed.starts_with(&format!("{}\n\u{2014} airlock.example/audit ", checkpoint.to_text())));
        let opened = Checkpoint::open(&signed, &[signer.verifier()], "airlock.example/audit").unwrap();
        assert_eq!(opened, checkpoint);
    }

    #[test]
    fn wrong_origin_is_rejected() {
        let signer = Signer::generate("airlock.example/audit").unwrap();
        let signed = sample().sign(&signer).unwrap();
        let err = Checkpoint::open(&signed, &[signer.verifier()], "other.example/log").unwrap_err();
        assert!(matches!(err, CheckpointError::OriginMismatch { .. }), "{err}");
    }

    #[test]
    fn checkpoint_from_another_key_or_tampered_is_rejected() {
        let signer = Signer::generate("airlock.example/audit").unwrap();
        let other = Signer::generate("someone.else").unwrap();
        let signed = sample().sign(&other).unwrap();
        let err = Checkpoint::open(&signed, &[signer.verifier()], "airlock.example/audit").unwrap_err();
        assert!(matches!(err, CheckpointError::Note(NoteError::UnknownKey { .. })), "{err}");
        assert!(err.to_string().contains("someone.else"), "{err}");

        let signed = sample().sign(&signer).unwrap().replace("\n1234\n", "\n1235\n");
        let err = Checkpoint::open(&signed, &[signer.verifier()], "airlock.example/audit").unwrap_err();
        assert!(matches!(err, CheckpointError::Note(NoteError::BadSignature { .. })), "{err}");
    }

    #[test]
    fn unsignable_checkpoints_are_refused() {
        let signer = Signer::generate("s").unwrap();
        let mut checkpoint = sample();
        checkpoint.origin = "a\nb".to_owned();
        assert!(checkpoint.sign(&signer).is_err());
        let mut checkpoint = sample();
        checkpoint.extensions = vec![String::new()];
        assert!(checkpoint.sign(&signer).is_err());
        let mut checkpoint = sample();
        checkpoint.origin.clear();
        assert!(checkpoint.sign(&signer).is_err());
    }

    /// Checks a checkpoint note from this code with an independent
    /// implementation: Python's hashlib, base64 and `cryptography`.
    #[test]
    #[allow(clippy::print_stderr)]
    fn python_cryptography_verifies_our_checkpoint() {
        const SCRIPT: &str = r#"
import sys, base64, hashlib
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    sys.exit(77)
vkey, note = sys.argv[1], sys.argv[2].encode("utf-8")
name, keyhash_hex, key_b64 = vkey.split("+", 2)
key = base64.b64decode(key_b64, validate=True)
assert key[0] == 1 and len(key) == 33, "not an Ed25519 verifier key"
keyhash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
assert keyhash.hex() == keyhash_hex, "key hash mismatch"
split = note.rindex(b"\n\n")
text, sigs = note[: split + 1], note[split + 2 :]
line = sigs.decode("utf-8").rstrip("\n")
assert line.startswith("\u2014 " + name + " "), "bad signature line"
blob = base64.b64decode(line.split(" ")[2], validate=True)
assert blob[:4] == keyhash, "signature key hash mismatch"
Ed25519PublicKey.from_public_bytes(key[1:]).verify(blob[4:], text)
lines = text.decode().split("\n")
print(lines[0], lines[1], base64.b64decode(lines[2]).hex())
"#;
        let signer = Signer::generate("airlock.example/audit").unwrap();
        let checkpoint = sample();
        let signed = checkpoint.sign(&signer).unwrap();
        let vkey = signer.verifier().to_key_string();
        let output = match std::process::Command::new("python3").args(["-c", SCRIPT, &vkey, &signed]).output() {
            Ok(output) => output,
            Err(err) => {
                eprintln!("skipping the Python cross-check: cannot run python3: {err}");
                return;
            }
        };
        if output.status.code() == Some(77) {
            eprintln!("skipping the Python cross-check: the `cryptography` module is not installed");
            return;
        }
        assert!(output.status.success(), "Python rejected our checkpoint: {}", String::from_utf8_lossy(&output.stderr));
        let expected = format!(
            "{} {} {}\n",
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

        // The same check must fail on a tampered note, or it proves nothing.
        let tampered = signed.replace("\n1234\n", "\n1235\n");
        let output = std::process::Command::new("python3").args(["-c", SCRIPT, &vkey, &tampered]).output().unwrap();
        assert!(!output.status.success(), "Python accepted a tampered checkpoint");
    }
}
