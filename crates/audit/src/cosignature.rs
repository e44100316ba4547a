//! C2SP tlog cosignatures (<https://c2sp.org/tlog-cosignature>), Ed25519
//! `cosignature/v1`: what a witness adds to a log's checkpoint once it has
//! checked that the checkpoint extends every one it cosigned before.
//!
//! A cosignature is a signed-note signature line,
//! `— <witness name> base64(key ID ‖ timestamp ‖ signature)`, where the key ID
//! is the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key), the
//! timestamp 8 bytes big-endian (seconds since the epoch), and the Ed25519
//! signature covers `cosignature/v1\ntime <timestamp>\n` followed by the whole
//! checkpoint body. A witness's verifier key is the signed-note vkey with
//! type byte 0x04: `<name>+<hex key ID>+<base64(0x04 ‖ public key)>`.
//!
//! ```
//! use airlock_audit::cosignature::{CosignatureSigner, verify_cosignatures};
//!
//! let witness = CosignatureSigner::generate("witness.example/w1")?;
//! let body = "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
//! let line = witness.cosign(body, 1_700_000_000)?;
//! let note = format!("{body}\n{line}\n");
//! let found = verify_cosignatures(&note, &[witness.verifier()])?;
//! assert_eq!(found[0].timestamp, 1_700_000_000);
//! # Ok::<(), airlock_audit::cosignature::CosignatureError>(())
//! ```

use std::io::{Read, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use fs_err::os::unix::fs::OpenOptionsExt as _;
use sha2::{Digest as _, Sha256};

/// The signed-note signature type of Ed25519 `cosignature/v1`.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The spec caps timestamps at 2^63 - 1.
const MAX_TIMESTAMP: u64 = (1 << 63) - 1;

/// Signature lines looked at in one note at most (as Go's note package).
const MAX_SIGNATURES: usize = 100;

/// What went wrong with a cosignature or a cosigner key.
#[derive(Debug, thiserror::Error)]
pub enum CosignatureError {
    /// A key name is empty or holds a `+` or whitespace.
    #[error("invalid witness key name {name:?}: it must be non-empty and hold no '+' or whitespace")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A key string does not have the expected shape.
    #[error(
        "malformed witness {kind} key: {reason}\nhint: a witness verifier key looks like \
         NAME+HEXKEYID+BASE64, its key starting with the type byte 0x04 (print it with `airlock witness key`)"
    )]
    MalformedKey {
        /// `"verifier"` or `"signer"`.
        kind: &'static str,
        /// What is wrong (never the secret).
        reason: String,
    },
    /// A key string's key ID does not match its name and key.
    #[error("witness key {name:?}: the key string says key ID {stated}, the key hashes to {computed}")]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// As written, hex.
        stated: String,
        /// As computed, hex.
        computed: String,
    },
    /// The text to cosign is not a note text.
    #[error("cannot cosign this text: {reason}")]
    InvalidText {
        /// Why.
        reason: &'static str,
    },
    /// A signature line or note does not have the expected shape.
    #[error("malformed cosignature: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A cosignature by a trusted witness key does not verify.
    #[error("bad cosignature by witness {name:?}: the checkpoint was altered or not cosigned by this key")]
    BadSignature {
        /// The witness.
        name: String,
    },
    /// The operating system's random source failed.
    #[error("could not get randomness for a new key: {reason}")]
    Random {
        /// The error.
        reason: String,
    },
    /// Reading or writing a key file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A key file that group or others may access.
    #[error(
        "refusing to use witness key file {}: its mode {mode:04o} lets group or others access it\nhint: chmod 600 {}",
        .path.display(), .path.display()
    )]
    KeyFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A key file that does not hold a witness signer key.
    #[error("witness key file {} does not hold a valid witness signer key: {source}", .path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<CosignatureError>,
    },
}

/// A witness's Ed25519 signing key with its name.
#[derive(Clone)]
pub struct CosignatureSigner {
    name: String,
    key: SigningKey,
}

// Hand-written so that the secret key never lands in a log line.
impl std::fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignatureSigner").field("verifier", &self.verifier().to_key_string()).finish()
    }
}

impl CosignatureSigner {
    /// A new signer named `name` with a random key from the operating system.
    pub fn generate(name: &str) -> Result<CosignatureSigner, CosignatureError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| CosignatureError::Random { reason: e.to_string() })?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(CosignatureSigner { name: name.to_owned(), key })
    }

    /// A signer from its 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<CosignatureSigner, CosignatureError> {
        check_name(name)?;
        Ok(CosignatureSigner { name: name.to_owned(), key: SigningKey::from_bytes(&seed) })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 ‖ seed)>`.
    pub fn from_key_string(skey: &str) -> Result<CosignatureSigner, CosignatureError> {
        let malformed = |reason: &str| CosignatureError::MalformedKey { kind: "signer", reason: reason.to_owned() };
        let skey = skey.trim_end_matches(['\n', '\r']);
        let rest = skey.strip_prefix("PRIVATE+KEY+").ok_or_else(|| malformed("it does not start with PRIVATE+KEY+"))?;
        let (name, stated, key) = split_key_string(rest, "signer")?;
        let seed: [u8; 32] = key.try_into().map_err(|_| malformed("an Ed25519 seed must be 32 bytes"))?;
        let signer = CosignatureSigner::from_seed(name, seed)?;
        check_key_id(name, stated, key_id(name, &signer.key.verifying_key()))?;
        Ok(signer)
    }

    /// The signer key string; it holds the secret key.
    pub fn to_key_string(&self) -> String {
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(self.key.as_bytes());
        let id = key_id(&self.name, &self.key.verifying_key());
        format!("PRIVATE+KEY+{}+{}+{}", self.name, hex::encode(id), STANDARD.encode(&key))
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier that checks this signer's cosignatures.
    pub fn verifier(&self) -> CosignatureVerifier {
        let key = self.key.verifying_key();
        CosignatureVerifier { key_id: key_id(&self.name, &key), name: self.name.clone(), key }
    }

    /// Cosigns the checkpoint body `text` (ending in a newline, no signature
    /// lines) at `timestamp` (seconds since the epoch) and returns the
    /// signature line, without its final newline.
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<String, CosignatureError> {
        check_text(text)?;
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::InvalidText { reason: "the timestamp exceeds 2^63 - 1" });
        }
        let signature = self.key.sign(&message(text, timestamp));
        let cosignature = Cosignature {
            name: self.name.clone(),
            key_id: key_id(&self.name, &self.key.verifying_key()),
            timestamp,
            signature: signature.to_bytes(),
        };
        Ok(cosignature.to_line())
    }
}

/// A witness's public key with its name: what a verifier is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses `<name>+<hex key ID>+<base64(0x04 ‖ public key)>`.
    pub fn from_key_string(vkey: &str) -> Result<CosignatureVerifier, CosignatureError> {
        let malformed = |reason: &str| CosignatureError::MalformedKey { kind: "verifier", reason: reason.to_owned() };
        let (name, stated, key) = split_key_string(vkey.trim(), "verifier")?;
        check_name(name)?;
        let public: [u8; 32] = key.try_into().map_err(|_| malformed("an Ed25519 public key must be 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| malformed("not a valid Ed25519 public key"))?;
        let computed = key_id(name, &key);
        check_key_id(name, stated, computed)?;
        Ok(CosignatureVerifier { name: name.to_owned(), key_id: computed, key })
    }

    /// The vkey string, `<name>+<hex key ID>+<base64(0x04 ‖ public key)>`.
    pub fn to_key_string(&self) -> String {
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_id), STANDARD.encode(&key))
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID: SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[..4].
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Checks one cosignature of the checkpoint body `text`.
    pub fn verify(&self, text: &str, cosignature: &Cosignature) -> Result<(), CosignatureError> {
        let bad = || CosignatureError::BadSignature { name: self.name.clone() };
        if cosignature.name != self.name || cosignature.key_id != self.key_id || cosignature.timestamp > MAX_TIMESTAMP {
            return Err(bad());
        }
        let signature = Signature::from_bytes(&cosignature.signature);
        self.key.verify_strict(&message(text, cosignature.timestamp), &signature).map_err(|_| bad())
    }
}

/// One parsed cosignature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's name.
    pub name: String,
    /// Its key ID.
    pub key_id: [u8; 4],
    /// When it cosigned, in seconds since the epoch.
    pub timestamp: u64,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

impl Cosignature {
    /// Parses `— <name> <base64(key ID ‖ timestamp ‖ signature)>` (a final
    /// newline is allowed). Returns `None` for a signature line of another
    /// length: a log's own signature, or another type's.
    pub fn parse_line(line: &str) -> Result<Option<Cosignature>, CosignatureError> {
        let malformed = |reason: String| CosignatureError::Malformed { reason };
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| malformed(format!("{line:?} does not start with an em dash (U+2014) and a space")))?;
        let (name, b64) =
            rest.split_once(' ').ok_or_else(|| malformed(format!("{line:?} has no space after the key name")))?;
        if !crate::note::is_valid_name(name) {
            return Err(malformed(format!("the key name {name:?} is not valid")));
        }
        let blob =
            STANDARD.decode(b64).map_err(|e| malformed(format!("the signature of {name:?} is not base64: {e}")))?;
        if blob.len() != 4 + 8 + 64 {
            return Ok(None);
        }
        let mut key_id = [0u8; 4];
        key_id.copy_from_slice(&blob[..4]);
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&blob[4..12]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&blob[12..]);
        Ok(Some(Cosignature { name: name.to_owned(), key_id, timestamp: u64::from_be_bytes(timestamp), signature }))
    }

    /// The signature line, without a final newline.
    pub fn to_line(&self) -> String {
        let mut blob = Vec::with_capacity(76);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&self.timestamp.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}", self.name, STANDARD.encode(&blob))
    }
}

/// A cosignature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witnessed {
    /// The witness's name.
    pub witness: String,
    /// When it cosigned (seconds since the epoch).
    pub timestamp: u64,
}

/// The message a cosignature signs: `cosignature/v1\ntime <t>\n` and the body.
pub fn message(text: &str, timestamp: u64) -> Vec<u8> {
    let mut message = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    message.extend_from_slice(text.as_bytes());
    message
}

/// Splits a signed note into its text (ending in a newline) and its
/// signature lines (without newlines).
pub fn split_note(note: &str) -> Result<(&str, Vec<&str>), CosignatureError> {
    let malformed = |reason: &str| CosignatureError::Malformed { reason: reason.to_owned() };
    let split = note.rfind("\n\n").ok_or_else(|| malformed("no blank line between the text and its signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    let signatures =
        signatures.strip_suffix('\n').ok_or_else(|| malformed("the last signature line does not end in a newline"))?;
    if signatures.is_empty() {
        return Err(malformed("no signature lines after the blank line"));
    }
    let lines: Vec<&str> = signatures.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(malformed("more than 100 signature lines"));
    }
    Ok((text, lines))
}

/// Checks the cosignatures in a signed note against `witnesses` and returns
/// the witnesses that cosigned it (each once). Lines by other keys are
/// ignored, as the spec says; a line by a trusted witness key that does not
/// verify is an error (fail closed: someone altered the checkpoint).
pub fn verify_cosignatures(note: &str, witnesses: &[CosignatureVerifier]) -> Result<Vec<Witnessed>, CosignatureError> {
    let (text, lines) = split_note(note)?;
    verify_lines(text, &lines, witnesses)
}

/// [`verify_cosignatures`] for a checkpoint body and lines kept apart from it.
pub fn verify_lines(
    text: &str,
    lines: &[&str],
    witnesses: &[CosignatureVerifier],
) -> Result<Vec<Witnessed>, CosignatureError> {
    let mut found: Vec<Witnessed> = Vec::new();
    for line in lines {
        let Some(cosignature) = Cosignature::parse_line(line)? else { continue };
        let Some(witness) = witnesses.iter().find(|w| w.name == cosignature.name && w.key_id == cosignature.key_id)
        else {
            continue;
        };
        witness.verify(text, &cosignature)?;
        if !found.iter().any(|f| f.witness == witness.name) {
            found.push(Witnessed { witness: witness.name.clone(), timestamp: cosignature.timestamp });
        }
    }
    Ok(found)
}

/// Loads the witness key at `path`, or makes one named `name` and writes it
/// there (mode 0600) when the file does not exist. An existing file keeps
/// its own name; one that group or others can access is refused.
pub fn load_or_create_cosigner(path: &Path, name: &str) -> Result<CosignatureSigner, CosignatureError> {
    match load_cosigner(path) {
        Err(CosignatureError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    check_name(name)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    let signer = CosignatureSigner::generate(name)?;
    let mut file = match fs_err::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_cosigner(path),
        Err(e) => return Err(e.into()),
    };
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(format!("{}\n", signer.to_key_string()).as_bytes())?;
    file.sync_all()?;
    Ok(signer)
}

/// Reads an existing witness key file.
pub fn load_cosigner(path: &Path) -> Result<CosignatureSigner, CosignatureError> {
    let mut file = fs_err::File::open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CosignatureError::KeyFilePermissions { path: path.to_owned(), mode });
    }
    let mut contents = String::new();
    Read::by_ref(&mut file).take(4096).read_to_string(&mut contents)?;
    CosignatureSigner::from_key_string(contents.trim_end())
        .map_err(|e| CosignatureError::KeyFile { path: path.to_owned(), source: Box::new(e) })
}

/// SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[..4].
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_COSIGNATURE_V1])
        .chain_update(key.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// `<name>+<hex key ID>+<base64(0x04 ‖ key)>` into its parts, the key
/// without its type byte.
fn split_key_string<'a>(text: &'a str, kind: &'static str) -> Result<(&'a str, [u8; 4], Vec<u8>), CosignatureError> {
    let malformed = |reason: String| CosignatureError::MalformedKey { kind, reason };
    let (name, rest) = text.split_once('+').ok_or_else(|| malformed("it has no key ID after the name".into()))?;
    let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| malformed("it has no key after the key ID".into()))?;
    check_name(name)?;
    let id = (id_hex.len() == 8)
        .then(|| hex::decode(id_hex).ok())
        .flatten()
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or_else(|| malformed("the key ID is not 8 hex digits".into()))?;
    let key = STANDARD.decode(key_b64).map_err(|_| malformed("the key is not valid base64".into()))?;
    let (&alg, key) = key.split_first().ok_or_else(|| malformed("the key is empty".into()))?;
    if alg != ALG_COSIGNATURE_V1 {
        return Err(malformed(format!(
            "its type byte is 0x{alg:02x}, a witness key's is 0x04 (0x01 is a log's key, not a witness's)"
        )));
    }
    Ok((name, id, key.to_vec()))
}

fn check_key_id(name: &str, stated: [u8; 4], computed: [u8; 4]) -> Result<(), CosignatureError> {
    if stated == computed {
        return Ok(());
    }
    Err(CosignatureError::KeyIdMismatch {
        name: name.to_owned(),
        stated: hex::encode(stated),
        computed: hex::encode(computed),
    })
}

fn check_name(name: &str) -> Result<(), CosignatureError> {
    if crate::note::is_valid_name(name) { Ok(()) } else { Err(CosignatureError::InvalidName { name: name.to_owned() }) }
}

fn check_text(text: &str) -> Result<(), CosignatureError> {
    crate::note::text_problem(text).map_or(Ok(()), |reason| Err(CosignatureError::InvalidText { reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real checkpoint of a public log, cosigned by the public witness
    /// remora.n621.de (the vkey also appears in transparency-dev/formats'
    /// tests): a known answer from an independent implementation.
    const REAL_BODY: &str =
        "arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n";
    const REAL_LINE: &str = "\u{2014} remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==";
    const REAL_VKEY: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";

    #[test]
    fn a_real_witness_cosignature_verifies() {
        let verifier = CosignatureVerifier::from_key_string(REAL_VKEY).unwrap();
        assert_eq!(verifier.key_id(), [0xda, 0x77, 0xad, 0xe7]);
        assert_eq!(verifier.to_key_string(), REAL_VKEY);
        let parsed = Cosignature::parse_line(REAL_LINE).unwrap().unwrap();
        assert_eq!(parsed.timestamp, 1_779_573_024);
        assert_eq!(parsed.to_line(), REAL_LINE);
        let note = format!("{REAL_BODY}\n{REAL_LINE}\n");
        let found = verify_cosignatures(&note, std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(found, vec![Witnessed { witness: "remora.n621.de".into(), timestamp: 1_779_573_024 }]);

        // One changed digit of the size: the cosignature no longer verifies.
        let altered = note.replace("1432088532", "1432088533");
        let err = verify_cosignatures(&altered, &[verifier]).unwrap_err();
        assert!(matches!(err, CosignatureError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn cosignatures_round_trip_and_cover_the_time_and_extensions() {
        let signer = CosignatureSigner::generate("witness.example/w1").unwrap();
        let body = "example.com/log\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n";
        let line = signer.cosign(body, 1_700_000_000).unwrap();
        let verifier = signer.verifier();
        let again = CosignatureVerifier::from_key_string(&verifier.to_key_string()).unwrap();
        assert_eq!(again, verifier);
        let skey = CosignatureSigner::from_key_string(&signer.to_key_string()).unwrap();
        assert_eq!(skey.verifier(), verifier);
        let found = verify_lines(body, &[&line], std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(found.len(), 1);

        let mut cosignature = Cosignature::parse_line(&line).unwrap().unwrap();
        cosignature.timestamp += 1;
        assert!(verifier.verify(body, &cosignature).is_err(), "the timestamp is signed");
        assert!(verify_lines(&body.replace("ext", "exu"), &[&line], std::slice::from_ref(&verifier)).is_err());
        // Another witness's line and a log's own signature are ignored, not errors.
        let other = CosignatureSigner::generate("other").unwrap().cosign(body, 1).unwrap();
        let log_line = "\u{2014} example.com/log AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(verify_lines(body, &[log_line, &other], &[verifier]).unwrap(), vec![]);
    }

    #[test]
    fn key_id_is_sha256_of_name_newline_0x04_and_key() {
        let signer = CosignatureSigner::from_seed("w", [9; 32]).unwrap();
        let verifier = signer.verifier();
        let mut preimage = b"w\n\x04".to_vec();
        preimage.extend_from_slice(verifier.key.as_bytes());
        assert_eq!(verifier.key_id(), Sha256::digest(&preimage)[..4]);
        // A log key (type 0x01) is not a witness key.
        let log_vkey = crate::note::Signer::generate("w").unwrap().verifier().to_key_string();
        let err = CosignatureVerifier::from_key_string(&log_vkey).unwrap_err();
        assert!(err.to_string().contains("0x01"), "{err}");
        let wrong_id = verifier.to_key_string().replacen(&hex::encode(verifier.key_id()), "00000000", 1);
        let err = CosignatureVerifier::from_key_string(&wrong_id).unwrap_err();
        assert!(matches!(err, CosignatureError::KeyIdMismatch { .. }), "{err}");
    }

    #[test]
    fn key_files_are_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness-key");
        let made = load_or_create_cosigner(&path, "w1").unwrap();
        let loaded = load_or_create_cosigner(&path, "ignored-when-it-exists").unwrap();
        assert_eq!(loaded.verifier(), made.verifier());
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_cosigner(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    /// Checks our cosignature with Python's hashlib and `cryptography`.
    #[test]
    #[allow(clippy::print_stderr)]
    fn python_cryptography_verifies_our_cosignature() {
        const SCRIPT: &str = r#"
import sys, base64, hashlib
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    sys.exit(77)
vkey, body, line = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
name, keyid_hex, key_b64 = vkey.split("+", 2)
key = base64.b64decode(key_b64, validate=True)
assert key[0] == 4 and len(key) == 33
keyid = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
assert keyid.hex() == keyid_hex
assert line.startswith("\u2014 " + name + " ")
blob = base64.b64decode(line.split(" ")[2], validate=True)
assert len(blob) == 76 and blob[:4] == keyid
ts = int.from_bytes(blob[4:12], "big")
Ed25519PublicKey.from_public_bytes(key[1:]).verify(blob[12:], b"cosignature/v1\ntime %d\n" % ts + body)
print(ts)
"#;
        let signer = CosignatureSigner::generate("witness.example/w1").unwrap();
        let body = "airlock.example/audit\n12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let line = signer.cosign(body, 1_712_345_678).unwrap();
        let vkey = signer.verifier().to_key_string();
        let run = |body: &str| std::process::Command::new("python3").args(["-c", SCRIPT, &vkey, body, &line]).output();
        let output = match run(body) {
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
        assert!(
            output.status.success(),
            "Python rejected our cosignature: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "1712345678\n");
        let tampered = run(&body.replace("\n12\n", "\n13\n")).unwrap();
        assert!(!tampered.status.success(), "Python accepted a cosignature of another checkpoint");
    }
}
